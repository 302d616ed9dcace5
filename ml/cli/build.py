"""`mlci build`: the images of a model version."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from mlci.cli import console
from mlci.cli.run import load_config, run_command
from mlci.track.selection import build_version

if TYPE_CHECKING:  # mlci.flow.status imports MLflow's side of mlci: loaded only by the commands that need it
    pass


@click.command()
@click.option("--version", default=None, help="Model version number (default: the one this workspace trained).")
@click.option("--alias", default=None, help="Registry alias, e.g. candidate (read only when named).")
@click.option(
    "--only",
    "roles",
    multiple=True,
    type=click.Choice(["api", "dashboard", "router"]),
    help="Build only these images (repeatable; default all).",
)
@click.pass_context
@run_command("build")
def build(ctx: click.Context, version: str | None, alias: str | None, roles: tuple[str, ...]) -> None:
    """Package the model and build the API image (bundle baked in), the dashboard and router images."""
    from mlci.ship import images

    config = load_config(ctx)
    selection = build_version(config, version, alias)
    console.header("build", f"building the images of {config.model_name} {selection.describe()}")
    result = images.build(
        config, version=selection.version, alias=selection.alias, roles=roles or ("api", "dashboard", "router")
    )
    rows = [
        (
            role,
            i.tag,
            (i.id or "")[7:19],
            f"{(i.size or 0) / 1e6:.0f} MB",
            f"{i.cached_steps}/{i.steps} cached",
            f"{i.seconds:.1f} s",
        )
        for role, i in result.images.items()
    ]
    console.table(["image", "tag", "id", "size", "layers", "time"], rows)
    where = (
        f"pushed to {result.registry}"
        if result.pushed
        else "kept local (no registry configured: set images.registry or MLCI_REGISTRY to push)"
    )
    console.result(True, f"{len(rows)} image(s) for {result.model_name} version {result.version}, {where}")
