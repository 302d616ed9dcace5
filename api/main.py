"""`app` for uvicorn, built from the environment: `uvicorn api.main:app`.

MLCI_BUNDLE (required) the bundle directory; MLCI_BUNDLE_SHA256 the bundle digest it must have (the
image sets it; unset: not checked); MLCI_COLOUR, MLCI_ENV, MLCI_MAX_BATCH (1000),
MLCI_MAX_BODY_BYTES (1 MiB), MLCI_BATCH_WAIT_MS (0), MLCI_BATCH_MAX_ROWS (64), MLCI_LOG_LEVEL (INFO);
connection bounds in seconds: MLCI_KEEPALIVE_TIMEOUT (30, idle keep-alive), MLCI_HEADER_TIMEOUT (10,
for the request headers), MLCI_BODY_TIMEOUT (30, for the request body); MLCI_SHADOW_TOKEN (unset: GET
/shadow/answers is open; set: it needs `Authorization: Bearer <token>`). A bad value: exit 2.
"""

from __future__ import annotations

import os

from api.app import create_app
from api.bundle import BundleError
from api.settings import Settings, SettingsError, exit_bad_config


def app_from_env():
    bundle = os.environ.get("MLCI_BUNDLE")
    if not bundle:
        exit_bad_config(
            "MLCI_BUNDLE is not set: point it at a model bundle directory (written by `mlci package --out DIR`)"
        )
    try:
        return create_app(bundle, Settings.from_env(), expected_sha256=os.environ.get("MLCI_BUNDLE_SHA256") or None)
    except (BundleError, SettingsError) as error:
        hint = getattr(error, "hint", None)
        exit_bad_config(f"cannot start the API: {error}" + (f" ({hint})" if hint else ""))


app = app_from_env()
