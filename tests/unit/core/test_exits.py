"""One place maps failures to exit codes, and a user's mistake never ends in a traceback
(issue 13, item 5 and the exit-code refactor)."""

import functools
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer, SimpleHTTPRequestHandler

import pytest

from mlci.core.errors import BadInput, CheckFailed, ConfigError, DataError, MlciError, Unreachable

# --- the mapping itself ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "error, code",
    [
        (CheckFailed("gate said no"), 1),
        (BadInput("bad"), 2),
        (ConfigError("bad key"), 2),
        (DataError("bad rows"), 2),
        (Unreachable("gone"), 3),
    ],
)
def test_mlci_errors_keep_their_exit_code(error, code):
    from mlci.core import exits

    assert exits.classify(error) == (code, error)


def test_connection_failures_of_any_client_are_unreachable():
    import requests
    from mlflow.exceptions import MlflowException

    from mlci.core import exits

    for error in (
        requests.exceptions.ConnectionError("Connection refused"),
        requests.exceptions.ReadTimeout("read timed out"),
        MlflowException("API request to http://127.0.0.1:1/api/2.0/mlflow/runs/get failed with exception x"),
    ):
        code, mapped = exits.classify(error)
        assert code == 3 and isinstance(mapped, Unreachable), error
        assert "stopped answering" in mapped.message


def test_a_bug_is_not_disguised_as_a_user_error():
    from mlci.core import exits

    assert exits.classify(KeyError("x")) is None
    assert exits.classify(ValueError("Max retries exceeded")) is None  # only MLflow's own error says that


# --- markup in user text ------------------------------------------------------------------------


def test_markup_in_a_data_path_is_printed_as_is(project):
    project.edit(**{"data.path": "data/[/red]cancer[bold].csv"})
    result = project.mlci("train")
    assert result.exit_code == 2, result.stdout + result.stderr
    assert "MarkupError" not in result.stderr + result.stdout and "Traceback" not in result.stderr
    assert "data/[/red]cancer[bold].csv" in result.stdout  # the header names the file as written
    assert "[/red]cancer[bold].csv" in result.stderr  # and so does the error


def test_markup_in_a_config_path_is_printed_as_is(project):
    missing = project.root / "[/red]conf[bold]" / "mlci.yaml"
    from click.testing import CliRunner

    from mlci.cli.main import cli

    result = CliRunner().invoke(cli, ["--config", str(missing), "gate"], catch_exceptions=False)
    assert result.exit_code == 2, result.stdout + result.stderr
    assert f"config file {missing} not found" in result.stderr


def test_markup_in_a_result_line_is_printed_as_is(project):
    project.edit(**{"model.name": "cancer[/red]"})
    result = project.mlci("status")
    assert result.exit_code in (0, 2), result.stdout + result.stderr
    assert "MarkupError" not in result.stderr and "Traceback" not in result.stderr
    assert "cancer[/red]" in result.stdout + result.stderr


# --- a broken embedded store -------------------------------------------------------------------


def test_mlci_state_folder_that_is_a_file(project):
    (project.root / ".mlci").write_text("oops\n")
    result = project.mlci("status")
    assert result.exit_code == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert str(project.root / ".mlci") in result.stderr and "embedded MLflow store" in result.stderr


def test_corrupt_embedded_store(project):
    (project.root / ".mlci").mkdir()
    (project.root / ".mlci" / "mlflow.db").write_bytes(b"\x00garbage, not SQLite\xff" * 100)
    for command in (["status"], ["train"]):
        result = project.mlci(*command)
        assert result.exit_code == 2, (command, result.stdout + result.stderr)
        assert "Traceback" not in result.stderr
        assert str(project.root / ".mlci" / "mlflow.db") in result.stderr
        assert "move it away" in result.stderr


def test_embedded_artifact_folder_that_is_a_file(project):
    (project.root / ".mlci").mkdir()
    (project.root / ".mlci" / "artifacts").write_text("oops\n")
    result = project.mlci("train")
    assert result.exit_code == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert str(project.root / ".mlci" / "artifacts") in result.stderr and "move it away" in result.stderr


# --- a database URI: a driver to install, a database that does not answer ----------------------------


def test_a_database_that_does_not_answer_is_exit_3(project, monkeypatch, free_port):
    uri = f"postgresql+psycopg2://mlflow:secret@127.0.0.1:{free_port()}/mlflow"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    result = project.mlci("status")
    assert result.exit_code == 3, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert "the MLflow database" in result.stderr and "is unreachable" in result.stderr
    assert "secret" not in result.stderr  # the password is redacted


@pytest.mark.parametrize("scheme", ["postgresql+psycopg", "mysql+nosuchdriver"])
def test_a_database_driver_that_is_not_installed_is_exit_2(project, monkeypatch, scheme):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"{scheme}://mlflow:secret@127.0.0.1:1/mlflow")
    result = project.mlci("status")
    assert result.exit_code == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert "database driver" in result.stderr and "secret" not in result.stderr


# --- a tracking URI that is not MLflow ------------------------------------------------------------


@pytest.fixture
def web_server(tmp_path):
    """A plain static file server: answers HTTP, but is not MLflow."""
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "index.html").write_text("<html><body>hello</body></html>")
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(tmp_path / "site"))
    handler.log_message = lambda *args: None  # type: ignore[assignment]
    server = HTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


@pytest.fixture
def html_everywhere():
    """A web app that answers 200 with a page on every path (a login portal, a proxy's error page)."""

    class Page(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(b"<html>portal</html>")

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Page)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


@pytest.mark.parametrize("server", ["web_server", "html_everywhere"])
def test_a_tracking_uri_that_is_not_mlflow_is_exit_3(project, monkeypatch, request, server):
    uri = request.getfixturevalue(server)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    for command in (["status"], ["train"]):
        result = project.mlci(*command)
        assert result.exit_code == 3, (command, result.stdout + result.stderr)
        assert "Traceback" not in result.stderr
        assert f"{uri} answers but is not an MLflow tracking server" in result.stderr
    assert not (project.root / ".mlci").exists()


@pytest.mark.parametrize("uri", ["ftp://example.com/mlflow", "s3://bucket/mlflow", "mlflow.example.com:5000"])
def test_a_tracking_uri_with_an_unsupported_scheme_is_exit_2(project, monkeypatch, uri):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    result = project.mlci("status")
    assert result.exit_code == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert "is not a supported tracking URI" in result.stderr and "MLFLOW_TRACKING_URI" in result.stderr


def test_every_mlci_error_subclass_has_a_known_exit_code():
    def subclasses(cls):
        for sub in cls.__subclasses__():
            yield sub
            yield from subclasses(sub)

    assert {sub.exit_code for sub in subclasses(MlciError)} <= {1, 2, 3}
