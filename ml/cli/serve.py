"""`mlci serve` and `mlci dashboard`: the prediction API and the dashboard, on this machine."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from mlci.cli import console
from mlci.cli.run import run_command
from mlci.core import env
from mlci.core.errors import BadInput

if TYPE_CHECKING:  # mlci.flow.status imports MLflow's side of mlci: loaded only by the commands that need it
    pass


@click.command()
@click.option("--bundle", "bundle_dir", required=True, type=click.Path(file_okay=False), help="Model bundle folder.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64))
@click.option(
    "--bundle-sha256",
    "bundle_sha256",
    envvar=env.BUNDLE_SHA256.name,
    default=None,
    help="The bundle digest mlci package recorded (reports/package.json); the bundle is refused if its files "
    "differ. Without it, integrity is not checked (env MLCI_BUNDLE_SHA256).",
)
@run_command("serve")
def serve(bundle_dir: str, host: str, port: int, workers: int, bundle_sha256: str | None) -> None:
    """Run the prediction API on a model bundle (uvicorn, uvloop, httptools)."""

    from mlci.api import server
    from mlci.api.settings import Settings
    from mlci.contract import bundle as fmt
    from mlci.core.env import EnvError

    # A missing, corrupt or altered bundle is exit 2, before uvicorn starts; checking it needs only the
    # bundle contract (no scikit-learn, no pandas), so a refusal is immediate.
    try:
        loaded = fmt.load_bundle(Path(bundle_dir), expected_sha256=bundle_sha256 or None)
    except fmt.BundleError as error:
        raise BadInput(error.message, hint=error.hint) from None
    try:
        Settings.from_env()  # so are bad MLCI_* settings (MLCI_MAX_BATCH=abc)
    except EnvError as error:
        raise BadInput(f"cannot serve: {error.message}", hint=error.hint) from None
    meta = loaded.metadata
    console.header("serve", f"serving {meta['name']} version {meta['version']} from {bundle_dir}")
    console.facts(
        {
            "listen": f"http://{host}:{port}",
            "workers": workers,
            "format": meta["format"],
            "docs": f"http://{host}:{port}/docs",
            "integrity": f"bundle sha256 {bundle_sha256.strip().lower()} checked"
            if bundle_sha256
            else "NOT checked (no --bundle-sha256: local use only)",
        }
    )
    server.serve(Path(bundle_dir), host=host, port=port, workers=workers, expected_sha256=bundle_sha256 or None)


@click.command()
@click.option(
    "--api",
    "api_url",
    default="http://127.0.0.1:8000",
    show_default=True,
    envvar=env.API_URL.name,
    help="Base URL of the prediction API (env MLCI_API_URL).",
)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8501, show_default=True, type=click.IntRange(1, 65535))
@run_command("dashboard")
def dashboard(api_url: str, host: str, port: int) -> None:
    """Run the Streamlit dashboard against a prediction API."""
    from mlci.dashboard import launch

    if not api_url.startswith(("http://", "https://")):
        raise BadInput(f"--api must be an http(s) URL, got {api_url!r}")
    console.header("dashboard", f"dashboard on http://{host}:{port} using the API at {api_url}")
    launch.run(api_url, port, host=host)
