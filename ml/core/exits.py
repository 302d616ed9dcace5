"""The one place that says which exit code a failure gets.

`classify` turns any exception into an `MlciError` (whose class carries the exit code) or None when
it is a bug, which must keep its traceback. The CLI's `run_command` only prints what this returns
and exits with its code; nothing else in `ml/` calls `sys.exit`.
"""

from __future__ import annotations

from mlci.core.errors import MlciError, Unreachable

# Client exceptions that mean "the server did not answer" (requests/urllib3 under MLflow's client,
# httpx under our own probes), by class name so this module imports none of those libraries. Only
# from those libraries: a builtin BrokenPipeError (stdout closed) is not a tracking server's fault.
_HTTP_LIBRARIES = frozenset({"requests", "urllib3", "httpx", "httpcore", "http"})
_CONNECTION_ERRORS = frozenset(
    {
        "ConnectionError",
        "ConnectTimeout",
        "ReadTimeout",
        "Timeout",
        "MaxRetryError",
        "NewConnectionError",
        "ProtocolError",
        "RemoteDisconnected",
        "TransportError",
    }
)
# MLflow wraps a dead server in a plain MlflowException; its message is the only sign.
_MLFLOW_CONNECTION_TEXT = ("API request to", "Max retries exceeded")


def _first_line(error: BaseException) -> str:
    text = str(error)
    return text.splitlines()[0][:300] if text else type(error).__name__


def _connection_failure(error: BaseException) -> Unreachable | None:
    mro = type(error).__mro__
    names = {cls.__name__ for cls in mro}
    dropped = any(cls.__name__ in _CONNECTION_ERRORS and cls.__module__.split(".")[0] in _HTTP_LIBRARIES for cls in mro)
    mlflow_dropped = "MlflowException" in names and any(t in str(error) for t in _MLFLOW_CONNECTION_TEXT)
    if not (dropped or mlflow_dropped):
        return None
    return Unreachable(
        f"the MLflow tracking server stopped answering: {_first_line(error)}",
        hint="check the server and MLFLOW_TRACKING_URI, then run the command again",
    )


def classify(error: BaseException) -> tuple[int, MlciError] | None:
    """(exit code, the error to print) for a failure a user can act on; None for a bug."""
    if isinstance(error, MlciError):
        return error.exit_code, error
    translated = _connection_failure(error)
    if translated is not None:
        return translated.exit_code, translated
    return None
