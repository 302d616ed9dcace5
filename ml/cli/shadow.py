"""`mlci shadow report`: how the version in staging answers production's mirrored requests."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import click

from mlci.cli import console
from mlci.cli.run import load_config, metric, run_command

if TYPE_CHECKING:  # mlci.flow.status imports MLflow's side of mlci: loaded only by the commands that need it
    pass


@click.group()
def shadow() -> None:
    """Shadow traffic: how the version in staging answers production's real requests (docs/deploy.md)."""


@shadow.command("report")
@click.option("--env", "env_name", default="staging", show_default=True, help="The environment receiving the mirror.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
@run_command("shadow report")
def shadow_report(ctx: click.Context, env_name: str, as_json: bool) -> None:
    """Join, by request id, the answers of ENV's live slot to mirrored requests with production's own:
    label agreement, probability differences, candidate latency and errors. Writes reports/shadow-ENV.json."""
    from mlci.deploy import shadow as shadow_module
    from mlci.deploy import shadow_compare

    config = load_config(ctx)
    if not as_json:  # --json prints the report alone: a header or result line would break its parsing
        source = next(iter(shadow_module.sources(config, env_name)), "production")
        console.header("shadow report", f"comparing {env_name}'s answers to mirrored requests with {source}'s")
    result = shadow_module.report(config, env_name)
    path = shadow_module.write(config, result)
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2))
        return
    c = result.comparison
    no_p99 = shadow_compare.p99_text(c).startswith("p99 n/a")
    console.table(
        [
            "mirrored",
            "compared",
            "unmatched",
            "rows",
            "agreement" if c.task != "regression" else f"within {c.tolerance or 0:g}",
            "mean |dp|" if c.task != "regression" else "mean |diff|",
            "max |dp|" if c.task != "regression" else "max |diff|",
            "p50 ms",
            "p99 ms",
            "errors",
            "production errors",
        ],
        [
            (
                c.mirrored,
                c.compared,
                c.unmatched,
                c.rows,
                "-" if c.agreement is None else f"{c.agreement:.2%}",
                metric(c.mean_abs_diff if c.task == "regression" else c.mean_probability_diff),
                metric(c.max_abs_diff if c.task == "regression" else c.max_probability_diff),
                c.candidate_p50_ms if c.candidate_p50_ms is not None else "-",
                f"n/a (<{shadow_compare.P99_MIN_ANSWERS})" if no_p99 else c.candidate_p99_ms,
                c.candidate_errors,
                c.production_errors,
            )
        ],
        title=f"shadow {result.source} -> {result.env} ({'on' if result.on else 'OFF'}, share {result.share:.2%})",
    )
    console.info(result.summary)
    console.result(
        True,
        f"{c.compared} of {c.mirrored} mirrored requests compared"
        + ("" if result.on else f" (mirror OFF: {result.source} copies nothing to {result.env} now)")
        + f"; report in {path}",
    )
