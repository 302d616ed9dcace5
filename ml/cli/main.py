"""`mlci`: the one entry point. The group and its global options; each command area is a module of
mlci.cli (project, model, status, serve, build, deploy, pipeline, shadow) that parses, calls and renders."""

from __future__ import annotations

import signal

import click

from mlci.cli import build, console, deploy, model, pipeline, project, serve, shadow, status
from mlci.core import env


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_path",
    envvar=env.CONFIG.name,
    default=env.CONFIG.default,
    show_default=True,
    help="The project config (env MLCI_CONFIG).",
)
@click.version_option(package_name="mlci")
@click.pass_context
def cli(ctx: click.Context, config_path: str) -> None:
    """mlci: test, train, track, gate, package, build and deploy ML models — the same line on a laptop and in Jenkins.

    Exit codes: 0 success, 1 a check said no, 2 bad input or config, 3 an unreachable dependency.
    """
    ctx.ensure_object(dict)
    ctx.obj["config_path"] = config_path
    console.route_logs()


for command in (
    project.init,
    project.test_command,
    model.train,
    model.gate,
    model.promote,
    status.status,
    model.package,
    serve.serve,
    build.build,
    serve.dashboard,
    deploy.deploy,
    deploy.rollback,
    deploy.down,
    pipeline.pipeline,
    shadow.shadow,
):
    cli.add_command(command)


def _terminated(signum: int, _frame: object) -> None:
    # Jenkins aborts a build with SIGTERM; as SystemExit it unwinds through every `except
    # BaseException`/`finally` (a deploy switches live traffic back, a training drops its version).
    raise SystemExit(128 + signum)


def main() -> None:
    signal.signal(signal.SIGTERM, _terminated)
    cli(prog_name="mlci")


if __name__ == "__main__":
    main()
