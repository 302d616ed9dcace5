"""`mlci status`: versions, leaderboard and what each environment serves, for humans and machines."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import click

from mlci.cli import console
from mlci.cli.run import load_config, metric, run_command
from mlci.deploy.environment_status import DeployRecord, EnvironmentStatus, EnvironmentUnavailable

if TYPE_CHECKING:  # mlci.flow.status imports MLflow's side of mlci: loaded only by the commands that need it
    from mlci.flow.status import LeaderboardRow


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--env", "env_names", multiple=True, help="Only this environment's deployment (repeatable).")
@click.pass_context
@run_command("status")
def status(ctx: click.Context, as_json: bool, env_names: tuple[str, ...]) -> None:
    """Model versions with their aliases, primary metric, commit, data, author and date; the leaderboard
    (latest version of each branch, best first, with its gate result); and what each environment serves
    (colours, images, health, last deploys — read from the environment's Docker host)."""
    from mlci.flow import status as status_module

    config = load_config(ctx)
    if env_names:
        environments = [status_module.environment(config, name) for name in env_names]
        if as_json:
            click.echo(json.dumps([env.as_dict() for env in environments], indent=2))
            return
        for env in environments:
            _print_environment(env)
        return
    report = status_module.collect(config)
    if as_json:
        click.echo(json.dumps(report.as_dict(), indent=2))
        return
    console.header("status", f"model {config.model_name} in {report.tracking_uri}")
    primary = config.metrics.primary
    rows = [
        (
            v.version,
            " ".join("@" + a for a in v.aliases),
            v.branch or "-",
            metric(v.metrics.get(primary)),
            v.commit[:10],
            (v.data_sha256 or "")[:12],
            (v.author or "").split(" <")[0],
            v.created_at[:16].replace("T", " "),
            v.gate or "-",
        )
        for v in report.versions
    ]
    console.table(["version", "aliases", "branch", primary, "commit", "data sha256", "author", "created", "gate"], rows)
    _print_leaderboard(report.leaderboard, primary)
    aliases = ", ".join(f"@{a} -> v{v}" for a, v in sorted(report.aliases.items())) or "none"
    for env in report.environments:
        _print_environment(env)
    console.result(True, f"{len(rows)} version(s); aliases: {aliases}")


def _gate_cell(row: LeaderboardRow) -> str:
    if not row.gate:
        return "not gated"
    if row.gated_against is None:
        return row.gate
    return f"{row.gate} vs " + ("the floor" if row.gated_against == "none" else f"v{row.gated_against}")


def _print_leaderboard(rows: list[LeaderboardRow], primary: str) -> None:
    """Latest version per branch, best first: which branch has the best model right now."""
    if not rows:
        return
    table = [
        (
            str(place),
            row.branch + (f" (PR {row.pull_request})" if row.pull_request else ""),
            f"v{row.version}",
            metric(row.metric),
            _gate_cell(row),
            " ".join("@" + a for a in row.aliases),
            row.commit[:10],
            (row.author or "").split(" <")[0],
            row.created_at[:16].replace("T", " "),
        )
        for place, row in enumerate(rows, start=1)
    ]
    console.table(
        ["#", "branch", "version", primary, "gate (vs production)", "aliases", "commit", "author", "created"],
        table,
        title="leaderboard: latest version per branch, best first",
    )


def _print_environment(env: EnvironmentStatus | EnvironmentUnavailable) -> None:
    if isinstance(env, EnvironmentUnavailable):
        console.info(f"environment {env.env}: {env.error}")
        return
    console.out.print(
        f"environment {env.env} on {env.host}: router {env.router} at {env.url}, live colour {env.live or 'none'}",
        markup=False,
    )
    rows = [
        (
            colour,
            "live" if slot.live else "idle",
            slot.model_version,
            slot.image,
            slot.state,
            slot.health or "-",
            (slot.deployed_at or "")[:19].replace("T", " "),
        )
        for colour, slot in env.slots.items()
        if slot
    ]
    if rows:
        console.table(["slot", "role", "version", "image", "state", "health", "started"], rows)
    for record in env.last_deploys[-3:]:
        console.info(_deploy_line(record))


def _deploy_line(record: DeployRecord) -> str:
    what = f"v{record.model_version} on {record.colour}" if record.model_version else "environment removed"
    digest = record.fields.get("digest")
    return (
        f"{record.deployed_at[:19].replace('T', ' ')} {record.kind} ({record.result}): {what}, by {record.deployed_by}"
        + (f", approved by {record.approver}" if record.approver else "")
        + (f", build {record.build_url}" if record.build_url else "")
        + (f", image {digest}" if digest else "")
        + (f"; {record.reason}" if record.reason else "")
    )
