"""resources/io/mlci/setup.sh, run for real as mlciSetup runs it on an agent: a team's repository (no mlci
source in it) gets mlci at the library's version from a wheel built by `make dist`, on top of a hashed
lock, in a per-agent cache that a failed install never leaves half-built.

The lock used here is the part of the project's lock that `mlci --version` needs (same pins, same hashes),
so the test installs in seconds; the full lock is the same mechanism with more lines."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SETUP = REPO / "resources" / "io" / "mlci" / "setup.sh"
VERSION = (REPO / "resources" / "io" / "mlci" / "VERSION").read_text().strip()
# What `mlci --version` imports, with the dependencies pip's --require-hashes mode asks for.
STARTUP = {
    "click", "pyyaml", "pydantic", "pydantic-core", "typing-extensions", "typing-inspection",
    "annotated-types", "rich", "markdown-it-py", "mdurl", "pygments",
}  # fmt: skip


def lock_subset(names: set[str]) -> str:
    """The blocks of requirements/dev.txt pinning NAMES, hashes and all."""
    text = (REPO / "requirements" / "dev.txt").read_text()
    blocks = re.split(r"\n(?=[A-Za-z0-9])", text)
    chosen = [b.rstrip() for b in blocks if re.split(r"[=\[ ]", b, maxsplit=1)[0].lower() in names]
    assert {re.split(r"[=\[ ]", b, maxsplit=1)[0].lower() for b in chosen} == names
    return "\n".join(chosen) + "\n"


@pytest.fixture(scope="module")
def wheels(tmp_path_factory, dist) -> Path:
    """A team's wheel directory: the wheel of the session's `make dist` (tests/fixtures/release.py) alone."""
    out = tmp_path_factory.mktemp("wheels")
    for wheel in dist.glob("mlci-*.whl"):
        shutil.copy2(wheel, out)
    return out


@pytest.fixture
def consumer(tmp_path) -> Path:
    """A team's repository: mlci.yaml and data, no mlci source, no requirements/."""
    repo = tmp_path / "team-repo"
    (repo / ".mlci").mkdir(parents=True)
    (repo / "mlci.yaml").write_text("project: churn\n")
    (repo / ".mlci" / "requirements.txt").write_text(lock_subset(STARTUP))
    return repo


def run_setup(repo: Path, cache: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "MLCI_", "VIRTUAL_ENV"))}
    environ.update(
        MLCI_PYTHON=sys.executable,
        MLCI_VERSION=VERSION,
        MLCI_VENV_CACHE=str(cache),
        PIP_RETRIES="0",
        PIP_TIMEOUT="5",
    )
    environ.update(env)
    return subprocess.run(["bash", str(SETUP)], cwd=repo, env=environ, capture_output=True, text=True, timeout=600)


def test_installs_mlci_at_the_library_version_from_the_wheels_and_reuses_the_cache(consumer, wheels, tmp_path):
    cache = tmp_path / "cache"
    first = run_setup(consumer, cache, MLCI_FIND_LINKS=str(wheels))
    assert first.returncode == 0, first.stdout + first.stderr

    venv = consumer / ".venv"
    assert venv.is_symlink()
    built = venv.resolve()
    assert built.parent == cache.resolve() and built.name.startswith(f"mlci-{VERSION}-")
    assert (built / ".mlci-ready").is_file()
    version = subprocess.run([str(venv / "bin" / "mlci"), "--version"], capture_output=True, text=True)
    assert version.stdout.strip().endswith(f"version {VERSION}")
    location = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import mlci; print(mlci.__file__)"],
        cwd=consumer,
        capture_output=True,
        text=True,
    ).stdout
    assert Path(location.strip()).resolve().is_relative_to(built), "mlci must come from the wheel, not a checkout"

    again = run_setup(consumer, cache, MLCI_FIND_LINKS=str(wheels))
    assert again.returncode == 0, again.stderr
    assert "reusing" in again.stdout
    assert venv.resolve() == built


def test_a_version_that_is_not_published_is_exit_2_and_leaves_no_cache(consumer, wheels, tmp_path):
    cache = tmp_path / "cache"
    done = run_setup(consumer, cache, MLCI_FIND_LINKS=str(wheels), MLCI_VERSION="99.0.0")

    assert done.returncode == 2, done.stdout + done.stderr
    assert "mlci==99.0.0 is not available as locked" in done.stderr
    assert "make dist" in done.stderr
    assert not [p for p in cache.iterdir() if p.is_dir()], "a failed install must not leave a venv in the cache"
    assert not (consumer / ".venv").exists()


def test_an_unreachable_index_is_exit_3_and_its_credentials_are_not_printed(consumer, tmp_path):
    index = "http://ci:s3cret@127.0.0.1:9/simple"
    done = run_setup(consumer, tmp_path / "cache", MLCI_INDEX_URL=index, PIP_NO_CACHE_DIR="1")

    assert done.returncode == 3, done.stdout + done.stderr
    assert "the package index (http://***@127.0.0.1:9/simple) is unreachable" in done.stderr
    assert "s3cret" not in done.stdout + done.stderr.replace(f"Looking in indexes: {index}", "")
    assert not [p for p in (tmp_path / "cache").iterdir() if p.is_dir()]


def test_a_missing_interpreter_or_version_is_exit_2(consumer, tmp_path):
    missing = run_setup(consumer, tmp_path / "cache", MLCI_PYTHON="python3.99-not-here")
    assert missing.returncode == 2
    assert "'python3.99-not-here' not found on this agent" in missing.stderr

    unversioned = run_setup(consumer, tmp_path / "cache", MLCI_VERSION="")
    assert unversioned.returncode == 2
    assert "no mlci version given" in unversioned.stderr


def test_the_checkout_source_is_never_the_default(consumer, tmp_path):
    # A team's repository has no requirements/dev.txt: the default (index) mode must not need one.
    shutil.rmtree(consumer / ".mlci")
    done = run_setup(consumer, tmp_path / "cache")
    assert done.returncode == 2
    assert "lock file '.mlci/requirements.txt' not found" in done.stderr
