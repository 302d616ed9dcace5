"""The MLflow connection: the system of record for runs, model versions and aliases.

Embedded default: SQLite under `.mlci/` with artifacts beside it (refused under Jenkins unless
tracking.allow_local_store: a workspace store is private to one build). `MLFLOW_TRACKING_URI` points at
a tracking server instead; it is checked up front (it answers, and it is MLflow) so a wrong or dead
server fails in seconds, not after MLflow's default retries (minutes) or with a traceback.
"""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path
from urllib.parse import urlparse

import httpx
from filelock import FileLock
from filelock import Timeout as LockTimeout

from mlci.contract import mlflow_reads
from mlci.contract.mlflow_reads import redact
from mlci.core import env
from mlci.core.config import Config
from mlci.core.errors import BadInput, ConfigError, Unreachable

PREFLIGHT_TIMEOUT = 5.0
# Cheapest call only an MLflow server answers with JSON (a web page or a file server does not).
MLFLOW_PROBE = "/api/2.0/mlflow/experiments/search"
# Schemes mlci runs against: a tracking server, or a database MLflow opens itself ("" is a local path).
REMOTE_SCHEMES = ("http", "https")
DATABASE_SCHEMES = ("sqlite", "postgresql", "mysql", "mssql")
SUPPORTED_SCHEMES = (*REMOTE_SCHEMES, *DATABASE_SCHEMES, "file", "")
# Two first trainings at once would both create the SQLite schema; the second waits this long at most.
STORE_LOCK_TIMEOUT = 120.0
URI_HINT = (
    "set MLFLOW_TRACKING_URI (or tracking.uri in mlci.yaml) to http(s)://host:port of an MLflow tracking "
    "server, or unset it to use the embedded store under .mlci/"
)


def _quiet() -> None:
    for name in ("alembic", "mlflow", "mlflow.store", "mlflow.tracking", "mlflow.models"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module=r"mlflow\..*")
    warnings.filterwarnings("ignore", category=UserWarning, message=r".*(Hint|signature|pip).*")


def is_remote(uri: str) -> bool:
    return urlparse(uri).scheme in REMOTE_SCHEMES


def check_scheme(uri: str) -> None:
    """A URI MLflow would reject (or mistake for a path) is a config error, named before MLflow sees it."""
    scheme = urlparse(uri).scheme.split("+")[0]  # postgresql+psycopg2 is postgresql
    if scheme not in SUPPORTED_SCHEMES:
        # host:port without a scheme parses as scheme "host": say what was probably meant.
        meant = f"did you mean http://{uri}? " if "://" not in uri and ":" in uri else ""
        raise ConfigError(
            f"{redact(uri)} is not a supported tracking URI (scheme {scheme!r}; "
            f"supported: {', '.join(s for s in SUPPORTED_SCHEMES if s)})",
            hint=meant + URI_HINT,
        )


def _http_options() -> dict:
    """Credentials and TLS settings the MLflow client would use, so the probe sees what it will see."""
    options: dict = {"timeout": PREFLIGHT_TIMEOUT, "follow_redirects": False}
    user, password = os.environ.get("MLFLOW_TRACKING_USERNAME"), os.environ.get("MLFLOW_TRACKING_PASSWORD")
    if user and password:
        options["auth"] = (user, password)
    elif token := os.environ.get("MLFLOW_TRACKING_TOKEN"):
        options["headers"] = {"Authorization": f"Bearer {token}"}
    if os.environ.get("MLFLOW_TRACKING_INSECURE_TLS", "").lower() == "true":
        options["verify"] = False
    elif cert := os.environ.get("MLFLOW_TRACKING_SERVER_CERT_PATH"):
        options["verify"] = cert
    return options


def _json_object(answer: httpx.Response) -> dict | None:
    try:
        body = answer.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def preflight(uri: str) -> None:
    """Fail within seconds, with the URI and what to check, when a tracking server does not answer
    or is not an MLflow tracking server."""
    if not is_remote(uri):
        return
    base, shown, options = uri.rstrip("/"), redact(uri), _http_options()
    try:
        httpx.get(base + "/health", **options)
    except httpx.HTTPError as error:
        raise Unreachable(
            f"MLflow tracking server {shown} is unreachable ({type(error).__name__}: {error})",
            hint="check MLFLOW_TRACKING_URI and that the server runs (mlflow server …); "
            "unset it to use the embedded store",
        ) from None
    try:
        answer = httpx.get(base + MLFLOW_PROBE, params={"max_results": 1}, **options)
    except httpx.HTTPError as error:
        raise Unreachable(
            f"the MLflow tracking server {shown} stopped answering ({type(error).__name__}: {error})",
            hint="check the server and MLFLOW_TRACKING_URI, then run the command again",
        ) from None
    _judge_probe(shown, answer)


def _judge_probe(shown: str, answer: httpx.Response) -> None:
    body = _json_object(answer)
    if answer.status_code in (401, 403):
        raise ConfigError(
            f"MLflow tracking server {shown} refused the credentials (HTTP {answer.status_code})",
            hint="set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD (or MLFLOW_TRACKING_TOKEN)",
        )
    if answer.status_code == 200 and body is not None:
        return
    if body is not None and "error_code" in body:  # MLflow itself, with a broken backend
        raise Unreachable(
            f"MLflow tracking server {shown} answers with an error: {body['error_code']}: "
            f"{str(body.get('message', ''))[:300]}",
            hint="check the tracking server's log and its database",
        )
    kind = answer.headers.get("content-type", "no content type").split(";")[0]
    # Exit 3: the dependency mlci needs (an MLflow server) is not reachable at this URI.
    raise Unreachable(
        f"{shown} answers but is not an MLflow tracking server (GET {MLFLOW_PROBE}: HTTP {answer.status_code}, {kind})",
        hint="check MLFLOW_TRACKING_URI: the host, port and any path prefix of the MLflow server; "
        "unset it to use the embedded store",
    )


def _sqlite_file(uri: str) -> Path | None:
    if not uri.startswith("sqlite:"):
        return None
    from sqlalchemy.engine import make_url

    database = make_url(uri).database
    return Path(database) if database and database != ":memory:" else None


def _broken_store(path: Path, problem: str) -> BadInput:
    return BadInput(
        f"the embedded MLflow store {path} cannot be used: {problem}",
        hint=f"move it away (e.g. mv {path} {path}.broken): it is the embedded MLflow store, and mlci "
        "creates a fresh one on the next run (the old runs and versions stay in the moved copy)",
    )


def _prepare_folder(folder: Path) -> None:
    if folder.exists() and not folder.is_dir():
        raise _broken_store(folder, "it is a file, not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise _broken_store(folder, f"cannot create the folder ({error.strerror})") from None


def _open_sqlite(uri: str, database: Path):
    """A client on the SQLite store, its two stores opened one process at a time: the first opening
    creates the schema, and two processes creating it together fail (alembic's "duplicate column")."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException
    from sqlalchemy.exc import SQLAlchemyError

    _prepare_folder(database.parent)
    if database.exists() and not database.is_file():
        raise _broken_store(database, "it is not a file")
    try:
        with FileLock(f"{database}.lock", timeout=STORE_LOCK_TIMEOUT):
            client = MlflowClient(tracking_uri=uri, registry_uri=uri)  # opens the tracking store
            client.search_registered_models(max_results=1)  # opens the registry store
    except LockTimeout:
        raise BadInput(
            f"another mlci process holds {database}.lock for more than {STORE_LOCK_TIMEOUT:.0f} s",
            hint="wait for it to finish; if none runs, delete the lock file",
        ) from None
    except (SQLAlchemyError, MlflowException, OSError) as error:
        first = (str(error).splitlines() or [type(error).__name__])[0][:300]
        raise _broken_store(database, first) from None
    return client


def _open_database(uri: str):
    """A client on a database MLflow opens itself (postgresql://, mysql://…): a missing driver is the
    user's to install (exit 2), a database that does not answer is exit 3, both named, no traceback."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException
    from sqlalchemy import create_engine
    from sqlalchemy.exc import NoSuchModuleError, SQLAlchemyError

    shown = redact(uri)
    try:
        # One connection attempt of our own first: MLflow's store retries a dead database for ~100 s.
        engine = create_engine(uri)
        try:
            with engine.connect():
                pass
        finally:
            engine.dispose()
        client = MlflowClient(tracking_uri=uri, registry_uri=uri)
        client.search_registered_models(max_results=1)
    except (ImportError, NoSuchModuleError) as error:
        raise BadInput(
            f"the database driver for {shown} is not installed ({getattr(error, 'name', None) or error})",
            hint="install the driver SQLAlchemy names (e.g. pip install psycopg2-binary) and say it in the URI "
            "(postgresql+psycopg2://…), or point MLFLOW_TRACKING_URI at the team's MLflow server (http://…)",
        ) from None
    except (SQLAlchemyError, MlflowException) as error:
        first = (str(error).strip().splitlines() or [type(error).__name__])[0][:300]
        raise Unreachable(
            f"the MLflow database {shown} is unreachable: {first}",
            hint="check the database host, port, name and credentials in MLFLOW_TRACKING_URI",
        ) from None
    return client


def local_store(config: Config) -> Path | None:
    """The file or folder of a store MLflow keeps inside this workspace (the embedded SQLite store under
    .mlci/, or any sqlite/file store below the project root); None for a server or a store elsewhere."""
    uri = config.tracking_uri
    parts = urlparse(uri)
    scheme = parts.scheme.split("+")[0]
    if scheme == "sqlite":
        path = _sqlite_file(uri)
    elif scheme in ("file", ""):
        path = Path(parts.path or uri)
    else:
        return None
    if path is None:
        return None
    resolved = (path if path.is_absolute() else config.root / path).resolve()
    return resolved if resolved.is_relative_to(config.root.resolve()) else None


def require_shared_store(config: Config) -> None:
    """Under Jenkins, a store inside the workspace is seen by no other build and wiped with the
    workspace: refused (exit 2) unless tracking.allow_local_store says the user means it."""
    if not env.ci().under_jenkins or config.tracking.allow_local_store:
        return
    store = local_store(config)
    if store is None:
        return
    raise ConfigError(
        f"this Jenkins build would track in a store inside its workspace ({store}): other builds, branches "
        "and agents would not see its runs, versions or aliases, and the next workspace wipe deletes them",
        details=[
            "start the team's MLflow server once, from a checkout of the mlci repository (README, section "
            "'The team stack: an MLflow server'; the file is not in a team's repository nor in the wheel): "
            "docker-compose -f docker/compose.team.yaml up -d",
            "point the job at it: MLFLOW_TRACKING_URI=http://HOST:5000 (credentials in MLCI_MLFLOW_CREDENTIALS_ID)",
        ],
        hint="set MLFLOW_TRACKING_URI (or tracking.uri in mlci.yaml) to the team's MLflow server; to keep a "
        "store in the workspace on purpose, set tracking.allow_local_store: true in mlci.yaml",
    )


def connect(config: Config):
    """Configure MLflow for this project and return a client (imported here: mlflow is slow to import)."""
    mlflow_reads.apply_http_defaults()
    _quiet()
    uri = config.tracking_uri
    check_scheme(uri)
    require_shared_store(config)
    preflight(uri)
    import mlflow
    from mlflow import MlflowClient

    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    database = _sqlite_file(uri)
    if database is not None:
        if database.parent.resolve() == config.state_dir.resolve():
            _prepare_folder(config.state_dir / "artifacts")  # the embedded store keeps its artifacts beside it
        return _open_sqlite(uri, database)
    if urlparse(uri).scheme.split("+")[0] in DATABASE_SCHEMES:
        return _open_database(uri)
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def experiment_id(client, config: Config) -> str:
    """The project's experiment, created on first use (by whichever of two concurrent runs gets there first)."""
    from mlflow.exceptions import MlflowException

    experiment = client.get_experiment_by_name(config.experiment_name)
    if experiment is not None:
        return experiment.experiment_id
    location = None
    if not is_remote(config.tracking_uri):
        # Keep artifacts with the embedded store, not in ./mlruns of whatever folder mlci ran from.
        location = (config.state_dir / "artifacts").resolve().as_uri()
    try:
        return client.create_experiment(config.experiment_name, artifact_location=location)
    except MlflowException as error:
        if getattr(error, "error_code", "") != "RESOURCE_ALREADY_EXISTS":
            raise
        return client.get_experiment_by_name(config.experiment_name).experiment_id
