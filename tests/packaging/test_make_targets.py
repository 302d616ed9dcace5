"""The README's promise: `make test` alone works on a fresh machine, so it prepares the machine first,
and it runs lint and type checks beside the suites."""

from __future__ import annotations

import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def dry_run(target: str) -> list[str]:
    done = subprocess.run(["make", "-n", "-s", target], cwd=REPO, capture_output=True, text=True, check=True)
    return done.stdout.splitlines()


def test_make_test_prepares_the_machine_before_any_suite():
    lines = dry_run("test")
    setup = next(i for i, line in enumerate(lines) if ".ci/setup-machine" in line)
    suites = [i for i, line in enumerate(lines) if "test-python" in line or "test-groovy" in line]
    assert suites and setup < min(suites)


def test_the_machine_setup_installs_every_debian_tool_the_suites_call():
    packages = (REPO / ".ci" / "setup-machine").read_text()
    for package in ("docker.io", "docker-compose", "debootstrap", "nginx", "chromium", "wrk"):
        assert package in packages, f"{package} is used by the tests but not installed by .ci/setup-machine"


def test_make_test_runs_lint_and_type_checks():
    lint = "\n".join(dry_run("lint"))
    assert "ruff check" in lint and "ruff format --check" in lint and "mypy -p mlci" in lint
    assert "lint-imports" in lint  # the layers' contracts (setup.cfg [importlinter])
    assert any("lint" in line for line in dry_run("test"))
