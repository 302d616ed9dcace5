"""`serve()`: run the API under uvicorn with uvloop and httptools (what `mlci serve` calls)."""

from __future__ import annotations

import os
from pathlib import Path

from api.bundle import load_bundle
from api.settings import Settings


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

    load_bundle(bundle, expected_sha256=expected_sha256)  # BundleError now rather than a traceback per worker
    settings = Settings.from_env()
    os.environ["MLCI_BUNDLE"] = str(Path(bundle).resolve())
    # Each worker (api.main) loads the bundle again: it checks the same digest, or none.
    if expected_sha256:
        os.environ["MLCI_BUNDLE_SHA256"] = expected_sha256
    else:
        os.environ.pop("MLCI_BUNDLE_SHA256", None)
    if uds and os.path.exists(uds):
        os.remove(uds)  # a socket left by the slot's previous container; nobody routes to it now
    uvicorn.run(
        "api.main:app",
        host=host,
        port=port,
        uds=uds,
        workers=max(1, workers),
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level=settings.log_level.lower(),
        proxy_headers=False,
        server_header=False,
        timeout_keep_alive=30,
    )


if __name__ == "__main__":  # python -m api.server BUNDLE [PORT] [WORKERS]
    import sys

    args = sys.argv[1:]
    serve(Path(args[0]), port=int(args[1]) if len(args) > 1 else 8000, workers=int(args[2]) if len(args) > 2 else 1)
