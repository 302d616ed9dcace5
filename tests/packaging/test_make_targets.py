"""The README's promise: `make test` alone works on a fresh machine, so it prepares the machine first,
and it runs lint and type checks beside the suites."""

from __future__ import annotations

import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def dry_run(target: str) -> list[str]:
    done = subprocess.run(["make", "-n", "-s", target], cwd=REPO, capture_output=True, text=True, check=True)
    return done.stdout.splitlines()


def recipe(target: str) -> tuple[list[str], str]:
    """(prerequisites, recipe text) of a rule, read from the Makefile. Not `make -n test`: GNU make runs
    every recipe line that names $(MAKE) even in a dry run, and test's line starts the base-image build
    and truncates reports/groovy.log of the `make test` running this very test."""
    lines = (REPO / "Makefile").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"{target}:"))
    body = []
    for line in lines[start + 1 :]:
        if not line.startswith("\t"):
            break
        body.append(line)
    return lines[start].split(":", 1)[1].split(), "\n".join(body)


def test_make_test_prepares_the_machine_before_any_suite():
    prerequisites, body = recipe("test")
    assert prerequisites[0] == "machine"  # made before the recipe starts any suite
    assert "setup-machine" in recipe("machine")[1]
    assert "test-python" in body and "test-groovy" in body


def test_the_machine_setup_installs_every_debian_tool_the_suites_call():
    packages = (REPO / ".ci" / "setup-machine").read_text()
    for package in ("docker.io", "docker-compose", "debootstrap", "nginx", "chromium", "wrk"):
        assert package in packages, f"{package} is used by the tests but not installed by .ci/setup-machine"


def test_make_test_runs_lint_and_type_checks():
    lint = "\n".join(dry_run("lint"))
    assert "ruff check" in lint and "ruff format --check" in lint and "mypy -p mlci" in lint
    assert "lint-imports" in lint  # the layers' contracts (setup.cfg [importlinter])
    assert "--no-print-directory lint" in recipe("test")[1]
