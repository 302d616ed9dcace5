"""`python -m api`: the container's entry point, configured by environment variables.

MLCI_BUNDLE (default /app/bundle), MLCI_BUNDLE_SHA256 (the bundle digest, baked in by mlci build),
MLCI_HOST (0.0.0.0) and MLCI_PORT (8000), or MLCI_UDS (a unix socket path: the blue/green slot mode),
MLCI_WORKERS (1); the rest as in api.main.
"""

from __future__ import annotations

import os
from pathlib import Path

from api.bundle import BundleError
from api.server import serve
from api.settings import SettingsError, exit_bad_config


def main(env: dict[str, str] | None = None) -> None:
    env = dict(os.environ if env is None else env)
    try:
        port = int(env.get("MLCI_PORT", "8000"))
        workers = int(env.get("MLCI_WORKERS", "1"))
    except ValueError:
        exit_bad_config("MLCI_PORT and MLCI_WORKERS must be integers")
    try:
        serve(
            Path(env.get("MLCI_BUNDLE", "/app/bundle")),
            host=env.get("MLCI_HOST", "0.0.0.0"),
            port=port,
            workers=workers,
            uds=env.get("MLCI_UDS") or None,
            expected_sha256=env.get("MLCI_BUNDLE_SHA256") or None,  # set in the image by mlci build
        )
    except (BundleError, SettingsError) as error:
        hint = getattr(error, "hint", None)
        exit_bad_config(f"cannot start the API: {error}" + (f" ({hint})" if hint else ""))


if __name__ == "__main__":
    main()
