"""`app` for uvicorn, built from the environment: `uvicorn mlci.api.main:app`.

MLCI_BUNDLE (required here) the bundle directory; MLCI_BUNDLE_SHA256 the bundle digest it must have (the
image sets it; unset: not checked); the other settings (batch and body limits, timeouts, log level, the
shadow token) as mlci.core.env declares them (docs/settings.md lists them). A bad value: exit 2.
"""

from __future__ import annotations

from mlci.api.app import create_app
from mlci.api.settings import Settings, describe, exit_bad_config
from mlci.contract.bundle import BundleError
from mlci.core import env
from mlci.core.env import EnvError


def app_from_env():
    if not env.BUNDLE.is_set():
        exit_bad_config(
            "MLCI_BUNDLE is not set: point it at a model bundle directory (written by `mlci package --out DIR`)"
        )
    try:
        return create_app(env.BUNDLE.get(), Settings.from_env(), expected_sha256=env.BUNDLE_SHA256.get())
    except (BundleError, EnvError) as error:
        exit_bad_config(describe(error))


app = app_from_env()
