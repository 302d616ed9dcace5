"""`python -m api`: the container's entry point, configured by environment variables.

MLCI_BUNDLE (default /app/bundle), MLCI_BUNDLE_SHA256 (the bundle digest, baked in by mlci build),
MLCI_HOST (0.0.0.0) and MLCI_PORT (8000), or MLCI_UDS (a unix socket path: the blue/green slot mode),
MLCI_WORKERS (1); the rest as in mlci.api.main (all declared in mlci.core.env).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from mlci.api.server import serve
from mlci.api.settings import describe, exit_bad_config
from mlci.contract.bundle import BundleError
from mlci.core import env
from mlci.core.env import EnvError


def main(environ: Mapping[str, str] | None = None) -> None:
    try:
        serve(
            Path(env.BUNDLE.get(environ)),
            host=env.HOST.get(environ),
            port=env.PORT.get(environ),
            workers=env.WORKERS.get(environ),
            uds=env.UDS.get(environ),
            expected_sha256=env.BUNDLE_SHA256.get(environ),  # set in the image by mlci build
        )
    except (BundleError, EnvError) as error:
        exit_bad_config(describe(error))


if __name__ == "__main__":
    main()
