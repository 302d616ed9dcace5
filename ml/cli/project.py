"""`mlci init` and `mlci test`: a team's repository from a CSV, and its tests."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from mlci.cli import console
from mlci.cli.run import load_config, run_command

if TYPE_CHECKING:  # mlci.flow.status imports MLflow's side of mlci: loaded only by the commands that need it
    pass


@click.command()
@click.option("--data", "data_file", required=True, type=click.Path(dir_okay=False), help="The CSV to learn from.")
@click.option("--target", required=True, help="The column to predict: classes, or a number.")
@click.option(
    "--task",
    type=click.Choice(["classification", "regression"]),
    default=None,
    help="What the target is (default: inferred; a numeric target with over 20 distinct values is a regression).",
)
@click.option("--project", default=None, help="Project name (default: the folder's name).")
@click.option(
    "--dir",
    "directory",
    default=".",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Folder to scaffold (created if missing).",
)
@click.option("--delimiter", default=",", show_default=True, help="The CSV's field delimiter (`tab` for a tab).")
@click.option("--positive-label", default=None, help="Class f1/precision/recall are about (default: the rarer).")
@click.option("--port", type=int, default=None, help="Base router port (default: derived from the project name).")
@click.option("--force", is_flag=True, help="Replace files that already exist.")
@run_command("init")
def init(
    data_file: str,
    target: str,
    task: str | None,
    project: str | None,
    directory: str,
    delimiter: str,
    positive_label: str | None,
    port: int | None,
    force: bool,
) -> None:
    """Scaffold a team's repository from a CSV: mlci.yaml (types, categories and ranges inferred from
    the data, to review), the one-line Jenkinsfile, tests/test_data.py and .gitignore.

    Nothing is written when the data cannot train a model or a file exists (unless --force)."""

    from mlci.learn import scaffold

    console.header("init", f"scaffolding {directory} from {data_file} (target {target})")
    result = scaffold.init(
        Path(data_file), target, Path(directory), project, force, delimiter, positive_label, port, task
    )
    inference = result.inference
    rows = [
        (
            f.name,
            f.type,
            f"{f.min:g} … {f.max:g}" if f.type == "numeric" else f"{len(f.categories or [])} categories",
            str(f.missing),
        )
        for f in inference.features
    ]
    console.table(["feature", "type", "declared", "missing"], rows)
    console.facts(
        {
            "task": f"{inference.task}: {inference.task_reason}; change it with task: in mlci.yaml",
            "target": f"{inference.target}: " + target_facts(inference),
            "left out": ", ".join(f"{e.name} ({e.reason})" for e in inference.excluded) or "none",
            "positive label": result.positive
            or ("none (a regression)" if inference.task == "regression" else "none (more than two classes)"),
            "router ports": f"production {result.ports.production}, staging {result.ports.staging}, "
            f"dashboard {result.ports.dashboard} (unique per Docker host)",
            "data": result.data_path + (" (copied into the folder)" if result.data_copied else ""),
            "written": ", ".join(result.written),
        }
    )
    console.result(True, f"{result.project}: review mlci.yaml, then commit these files and push")


def target_facts(inference) -> str:
    if inference.summary is not None:
        s = inference.summary
        return f"numbers from {s.min:g} to {s.max:g}, mean {s.mean:g}, standard deviation {s.std:g}"
    return ", ".join(f"{k} ({v})" for k, v in inference.classes.items())


@click.command("test")
@click.pass_context
@run_command("test")
def test_command(ctx: click.Context) -> None:
    """Run the project's tests (tests.paths in mlci.yaml) with JUnit and coverage XML under reports/."""
    from mlci.learn import testing, verdicts

    config = load_config(ctx)
    console.header("test", f"running the tests of {config.project}: {' '.join(config.tests.paths)}")
    result = testing.run(config)
    verdicts.require_tests_passed(result)
    console.result(True, f"tests passed: {result.summary}; JUnit in {result.junit}; sandbox: {result.sandbox}")
