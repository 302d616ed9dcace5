"""`mlci deploy`, `mlci rollback`, `mlci down`: blue/green behind an environment's router."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from mlci.cli import console
from mlci.cli.run import load_config, run_command
from mlci.core import env

if TYPE_CHECKING:  # mlci.flow.status imports MLflow's side of mlci: loaded only by the commands that need it
    pass


def _lock_timeout(option):
    return click.option(
        "--lock-timeout",
        default=300.0,
        show_default=True,
        type=click.FloatRange(0),
        help="Seconds to wait when another deploy (from any checkout or agent) holds the environment; 0: do not wait.",
    )(option)


@click.command()
@click.option("--env", "env_name", required=True, help="Environment from mlci.yaml (staging, production, …).")
@click.option("--version", default=None, help="Model version (its image must have been built).")
@click.option("--image", default=None, help="An API image reference instead.")
@click.option("--approver", envvar=env.APPROVER.name, default=None, help="Who approved (env MLCI_APPROVER).")
@click.option(
    "--force", is_flag=True, help="Deploy although the environment's policy (requires) is not met; needs --reason."
)
@click.option("--reason", default=None, help="Why the policy is overridden (recorded on the version and history).")
@_lock_timeout
@click.pass_context
@run_command("deploy")
def deploy(
    ctx: click.Context,
    env_name: str,
    version: str | None,
    image: str | None,
    approver: str | None,
    force: bool,
    reason: str | None,
    lock_timeout: float,
) -> None:
    """Blue/green deploy: idle slot up, ready, smoke-tested, router switched without a reload, verified.

    The environment's policy (`requires` in mlci.yaml; production by default: gate, staging, approver)
    is checked first: a version that does not meet it is refused (exit 1) unless --force --reason."""
    from mlci.deploy import orchestrate

    config = load_config(ctx)
    what = f"version {version}" if version else (image or "the image of the last mlci build")
    console.header("deploy", f"deploying {config.model_name} {what} to {env_name}")
    outcome = orchestrate.deploy(
        config,
        env_name,
        version=version,
        image=image,
        approver=approver,
        lock_timeout=lock_timeout,
        force=force,
        reason=reason,
    )
    console.result(
        True,
        f"{env_name} serves {outcome.model_name} v{outcome.model_version} from {outcome.colour} "
        f"at {outcome.url} (previous colour: {outcome.previous_colour or 'none'}) "
        f"in {outcome.seconds:.1f} s",
    )


@click.command()
@click.option("--env", "env_name", required=True, help="Environment from mlci.yaml.")
@_lock_timeout
@click.pass_context
@run_command("rollback")
def rollback(ctx: click.Context, env_name: str, lock_timeout: float) -> None:
    """Switch the environment back to the previous colour (or redeploy the previous image)."""
    from mlci.deploy import orchestrate

    config = load_config(ctx)
    console.header("rollback", f"rolling {env_name} back to what served before")
    outcome = orchestrate.rollback(config, env_name, lock_timeout=lock_timeout)
    console.result(
        True,
        f"{env_name} serves {outcome.model_name} v{outcome.model_version} from {outcome.colour} again at {outcome.url}",
    )


@click.command()
@click.option("--env", "env_name", required=True, help="Environment from mlci.yaml.")
@_lock_timeout
@click.pass_context
@run_command("down")
def down(ctx: click.Context, env_name: str, lock_timeout: float) -> None:
    """Remove an environment's containers, network and socket volume (and its registry alias)."""
    from mlci.deploy import orchestrate

    config = load_config(ctx)
    console.header("down", f"removing environment {env_name} of {config.project}")
    removed = orchestrate.down(config, env_name, lock_timeout=lock_timeout)
    console.result(True, f"{env_name} removed ({len(removed)} object(s))" if removed else f"{env_name} was not running")
