"""`serve()`: run the API under uvicorn with uvloop and httptools (what `mlci serve` calls)."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from mlci.api.settings import Settings
from mlci.contract.bundle import load_bundle

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def check(bundle: Path, expected_sha256: str | None = None) -> Settings:
    """The bundle and the MLCI_* settings, checked once here (BundleError, EnvError) rather than
    failing with a traceback in each worker."""
    load_bundle(bundle, expected_sha256=expected_sha256)
    return Settings.from_env()


def serve(
    bundle: Path,
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: int = 1,
    uds: str | None = None,
    expected_sha256: str | None = None,
) -> None:
    """Serve `bundle` until interrupted; the bundle is checked here first, for a clear error.

    With `uds`, listen on that unix socket instead of host:port: that is how a blue/green slot
    sits behind its environment's router (the router's live socket is a symlink to it)."""
    import uvicorn

    settings = check(bundle, expected_sha256)
    os.environ["MLCI_BUNDLE"] = str(Path(bundle).resolve())
    # Each worker (mlci.api.main) loads the bundle again: it checks the same digest, or none.
    if expected_sha256:
        os.environ["MLCI_BUNDLE_SHA256"] = expected_sha256
    else:
        os.environ.pop("MLCI_BUNDLE_SHA256", None)
    if uds and os.path.exists(uds):
        os.remove(uds)  # a socket left by the slot's previous container; nobody routes to it now
    workers = max(1, workers)
    metrics_dir = _multiprocess_metrics_dir() if workers > 1 else None
    try:
        uvicorn.run(
            "mlci.api.main:app",
            host=host,
            port=port,
            uds=uds,
            workers=workers,
            loop="uvloop",
            http="mlci.api.protocol:HeaderDeadlineProtocol",
            access_log=False,
            log_level=settings.log_level.lower(),
            proxy_headers=False,
            server_header=False,
            timeout_keep_alive=settings.keepalive_timeout,  # type: ignore[arg-type]  # uvicorn takes a float
        )
    finally:
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)


def _multiprocess_metrics_dir() -> str:
    """A fresh directory for prometheus_client's multiprocess mode, so /metrics sums every worker.

    Fresh per server: files left by an earlier server would be counted as if they were ours. Under
    the system temp dir (/tmp, a tmpfs in the read-only slot containers). Workers inherit the
    variable, which prometheus_client reads when it is first imported (in the worker)."""
    path = tempfile.mkdtemp(prefix="mlci-metrics-")
    os.environ[MULTIPROC_ENV] = path
    return path


if __name__ == "__main__":  # python -m mlci.api.server BUNDLE [PORT] [WORKERS]
    import sys

    from mlci.api.settings import describe, exit_bad_config
    from mlci.contract.bundle import BundleError
    from mlci.core.env import EnvError

    args = sys.argv[1:]
    try:
        serve(Path(args[0]), port=int(args[1]) if len(args) > 1 else 8000, workers=int(args[2]) if len(args) > 2 else 1)
    except (BundleError, EnvError) as error:  # what `python -m mlci.api` does: a message and exit 2, no traceback
        exit_bad_config(describe(error))
