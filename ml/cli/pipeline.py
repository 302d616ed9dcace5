"""`mlci pipeline`: the whole line, the Jenkinsfile's stages in the same order, on this machine."""

from __future__ import annotations

import time

import click

from mlci.cli import console
from mlci.cli.run import load_config, run_command
from mlci.core.errors import MlciError


class TerminalReporter:
    """The pipeline's Reporter for a build log: one bold line per stage, tables as written, and the
    approval question asked on the terminal (mlci.flow.pipeline decides when to ask)."""

    def stage(self, index: int, total: int, name: str, state: str, seconds: float | None) -> None:
        elapsed = "" if seconds is None else f" ({seconds:.1f} s)"
        console.bold(f"── stage {index}/{total}: {name} — {state}{elapsed}")

    def block(self, text: str) -> None:
        console.out.print(text, markup=False)

    def confirm(self, question: str) -> bool:
        return click.confirm(question, default=False)


@click.group()
def pipeline() -> None:
    """The whole line: the Jenkinsfile's stages, in the same order, on this machine."""


@pipeline.command("stages")
def pipeline_stages() -> None:
    """List the stages, in order (the Jenkinsfile's stage names)."""
    from mlci.flow.pipeline import STAGES

    for name in STAGES:
        click.echo(name)


@pipeline.command("run")
@click.option("--from", "first", default=None, help="First stage to run (name or slug, e.g. train).")
@click.option("--to", "last", default=None, help="Last stage to run (e.g. gate).")
@click.option(
    "--approve/--no-approve",
    default=None,
    help="Answer the production approval without asking (default: ask on a terminal).",
)
@click.pass_context
@run_command("pipeline run")
def pipeline_run(ctx: click.Context, first: str | None, last: str | None, approve: bool | None) -> None:
    """Run test, train, gate, build, deploy staging, approve, deploy production; stop at the first failure."""
    from mlci.flow import pipeline as pipeline_module

    started = time.monotonic()
    config = load_config(ctx)
    console.header("pipeline run", f"the assembly line of {config.project} ({config.model_name})")
    try:
        state = pipeline_module.run(config, first=first, last=last, approve=approve, reporter=TerminalReporter())
    except MlciError as error:
        _pipeline_summary(config, getattr(error, "pipeline", None), started)
        raise
    _pipeline_summary(config, state, started)
    console.result(True, f"pipeline done in {time.monotonic() - started:.0f} s")


def _pipeline_summary(config, state, started: float) -> None:
    from mlci.flow import pipeline as pipeline_module

    if state is not None:
        console.table(
            ["stage", "result", "time"], [(n, r, f"{s:.1f} s") for n, r, s in state.results], title="pipeline summary"
        )
    for env_name, line in pipeline_module.serving(config):
        console.info(f"{env_name}: {line}")
    console.info(f"MLflow: {config.tracking_uri}; total {time.monotonic() - started:.0f} s")
