"""`mlci test`: the project's pytest suite, with JUnit and coverage XML where Jenkins publishes them."""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from mlci.core import env, reports, sandbox
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
    # How the tests were confined: "off", "unavailable: ..." or "landlock ABI N: writes only beneath ...".
    sandbox: str = "off"

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


@dataclass(frozen=True)
class SandboxPlan:
    """How `mlci test` confines the tests: the launcher prefix (empty: not confined), what to say."""

    prefix: list[str] = field(default_factory=list)
    description: str = "off"


def sandbox_plan(mode: str, abi: int, writable: Sequence[str], shown: str | None = None) -> SandboxPlan:
    """MODE (off, auto, required) on a kernel with Landlock ABI ABI (0: none): the plan, writing only beneath
    WRITABLE (SHOWN: how the log names them). Required without Landlock is refused, auto without it runs
    unconfined and says so."""
    if mode == "off":
        return SandboxPlan()
    if abi < 1:
        if mode == "required":
            raise BadInput(
                "MLCI_TEST_SANDBOX=required, but this agent's kernel has no Landlock: the tests would run able to "
                "write wherever the agent's user can",
                hint="run the tests on agents with Linux >= 5.13 and Landlock enabled (lsm=...,landlock), "
                "or have the administrator set MLCI_TEST_SANDBOX=auto",
            )
        return SandboxPlan(
            description="unavailable: this kernel has no Landlock, the tests can write where the agent's user can"
        )
    prefix = [sys.executable, "-m", "mlci.core.sandbox"]
    for path in writable:
        prefix += ["--allow", path]
    return SandboxPlan(
        prefix=[*prefix, "--"],
        description=f"landlock ABI {abi}: the tests write only beneath {shown or ', '.join(writable)}",
    )


# Never writable to the tests, though in the project: what a later checkout or stage runs there (git's
# hooks and config: a post-checkout hook would run outside any sandbox), and mlci's own files and venv.
PROTECTED = frozenset({".git", ".hg", ".svn", ".mlci", ".venv"})


def project_entries(root: Path) -> list[str]:
    """The project's top-level entries the tests may write beneath: all but PROTECTED and symlinks (a
    link may point at the agents' venv cache). The project directory itself stays read-only: nothing
    new appears at its top (coverage data goes to the scratch directory)."""
    return [str(entry) for entry in sorted(root.iterdir()) if entry.name not in PROTECTED and not entry.is_symlink()]


def writable_dirs(config: Config, scratch: str) -> list[str]:
    """Where sandboxed tests may write: the project's entries (not its .git), the reports, the temp dir,
    SCRATCH (their HOME-like caches), the null and terminal devices, and MLCI_TEST_WRITABLE."""
    dirs = [*project_entries(config.root), str(config.reports_dir), tempfile.gettempdir(), scratch]
    return [str(path) for path in sandbox.allowed_paths([*dirs, "/dev/null", "/dev/tty", *env.TEST_WRITABLE.get()])]


def plan_for(config: Config, mode: str, scratch: str) -> SandboxPlan:
    """The sandbox of this project's tests under MODE: where they may write, how the log names it."""
    if mode == "off":
        return SandboxPlan()
    writable = writable_dirs(config, scratch)
    outside = [path for path in writable if not Path(path).is_relative_to(config.root.resolve())]
    shown = ", ".join([f"{config.root}/* (not {', '.join(sorted(PROTECTED))} or links)", *outside])
    return sandbox_plan(mode, sandbox.abi_version(), writable, shown)


def run(config: Config, on_line: Callable[[str], None] | None = None) -> TestResult:
    """Run the project's tests; each output line goes to `on_line` as it comes (default: this module's
    logger, which `mlci` shows: ops watch the tests live)."""
    show = on_line or log.info
    missing = [p for p in config.tests.paths if not (config.root / p.split("::")[0]).exists()]
    if missing:
        raise BadInput(f"test path(s) not found: {', '.join(missing)}", hint="fix tests.paths in mlci.yaml")
    config.reports_dir.mkdir(parents=True, exist_ok=True)
    args = command(config)
    mode = env.TEST_SANDBOX.get()
    with tempfile.TemporaryDirectory(prefix="mlci-test-home-") as scratch:
        plan = plan_for(config, mode, scratch)
        if mode != "off":
            log.info("sandbox: %s", plan.description)
        environ = dict(os.environ)
        if plan.prefix:
            # Caches the tests' libraries keep under HOME, and coverage's data file (the project's top stays
            # read-only; coverage.xml is written from it before pytest ends), go to the scratch directory.
            environ.update(XDG_CACHE_HOME=scratch, XDG_CONFIG_HOME=scratch, MPLCONFIGDIR=scratch)
            environ["COVERAGE_FILE"] = str(Path(scratch) / ".coverage")
            environ["TMPDIR"] = tempfile.gettempdir()  # the temp dir the sandbox allows, whatever the default
        returncode, lines = _stream([*plan.prefix, *args], config.root, environ, show)
    summary = next((m.group(1) for line in reversed(lines) if (m := SUMMARY.match(line))), "no summary")
    if returncode == NO_TESTS_COLLECTED:
        raise BadInput(
            f"no tests were collected from {', '.join(config.tests.paths)}",
            hint="point tests.paths in mlci.yaml at the project's tests",
        )
    coverage = config.reports_dir / "coverage.xml"
    result = TestResult(
        passed=returncode == 0,
        exit_code=returncode,
        summary=summary,
        junit=str(Path("reports") / "junit.xml"),
        coverage=str(Path("reports") / "coverage.xml") if coverage.is_file() and config.tests.coverage else None,
        command=args[1:],
        commit=provenance.collect(config.root).commit,
        build_url=provenance.collect_ci()["build_url"],
        sandbox=plan.description,
    )
    reports.write(config, "test", result.report())
    return result


def _stream(args: list[str], cwd: Path, environ: dict[str, str], show: Callable[[str], None]) -> tuple[int, list[str]]:
    """Runs ARGS, streaming each output line to SHOW as it comes (ops watch the tests live): exit code, lines."""
    lines: list[str] = []
    with subprocess.Popen(
        args, cwd=cwd, env=environ, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
            show(lines[-1])
    return proc.returncode, lines
