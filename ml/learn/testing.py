"""`mlci test`: the project's pytest suite, with JUnit and coverage XML where Jenkins publishes them."""

from __future__ import annotations

import logging
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from mlci.core import reports
from mlci.core.config import Config
from mlci.core.errors import BadInput
from mlci.track import provenance

log = logging.getLogger(__name__)

NO_TESTS_COLLECTED = 5
SUMMARY = re.compile(r"^=+ (.*\b(passed|failed|error|errors|skipped|no tests ran)\b.*) =+$")


@dataclass
class TestResult:
    passed: bool
    exit_code: int
    summary: str
    junit: str
    coverage: str | None
    command: list[str]
    # Which checkout and build ran the tests: `mlci train` archives these XML files to its run only when
    # they are of its own commit and build (mlci.track.archive.test_outputs), never a stale run's.
    commit: str | None = None
    build_url: str | None = None

    def report(self) -> dict[str, object]:
        return asdict(self)


def command(config: Config) -> list[str]:
    junit = config.reports_dir / "junit.xml"
    args = [sys.executable, "-m", "pytest", *config.tests.paths, f"--junitxml={junit}", "-p", "no:cacheprovider"]
    for package in config.tests.coverage:
        args.append(f"--cov={package}")
    if config.tests.coverage:
        args += ["--cov-branch", f"--cov-report=xml:{config.reports_dir / 'coverage.xml'}", "--cov-report=term"]
    return args + config.tests.args


def run(config: Config, on_line: Callable[[str], None] | None = None) -> TestResult:
    """Run the project's tests; each output line goes to `on_line` as it comes (default: this module's
    logger, which `mlci` shows: ops watch the tests live)."""
    show = on_line or log.info
    missing = [p for p in config.tests.paths if not (config.root / p.split("::")[0]).exists()]
    if missing:
        raise BadInput(f"test path(s) not found: {', '.join(missing)}", hint="fix tests.paths in mlci.yaml")
    config.reports_dir.mkdir(parents=True, exist_ok=True)
    args = command(config)
    lines: list[str] = []
    # Stream pytest's output as it comes (ops watch it live) and keep the summary line.
    with subprocess.Popen(args, cwd=config.root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
            show(lines[-1])
    summary = next((m.group(1) for line in reversed(lines) if (m := SUMMARY.match(line))), "no summary")
    if proc.returncode == NO_TESTS_COLLECTED:
        raise BadInput(
            f"no tests were collected from {', '.join(config.tests.paths)}",
            hint="point tests.paths in mlci.yaml at the project's tests",
        )
    coverage = config.reports_dir / "coverage.xml"
    result = TestResult(
        passed=proc.returncode == 0,
        exit_code=proc.returncode,
        summary=summary,
        junit=str(Path("reports") / "junit.xml"),
        coverage=str(Path("reports") / "coverage.xml") if coverage.is_file() and config.tests.coverage else None,
        command=args[1:],
        commit=provenance.collect(config.root).commit,
        build_url=provenance.collect_ci()["build_url"],
    )
    reports.write(config, "test", result.report())
    return result
