"""resources/io/mlci/setup.sh, run for real: what keeps untrusted code and foreign packages out of the
venv that credentialed builds run (issue 12 review): no install without the team's index, a private
venv that is never reused for pull requests from forks, one cache per team folder, and a visible wait
for another build's install."""

from __future__ import annotations

import fcntl
import subprocess

from tests.packaging.test_library_setup import VERSION, consumer, run_setup, wheels

__all__ = ["consumer", "wheels"]


def test_without_an_index_or_wheels_mlci_is_never_looked_up_on_pypi(consumer, tmp_path):
    done = run_setup(consumer, tmp_path / "cache")

    assert done.returncode == 2, done.stdout + done.stderr
    assert f"no package index for mlci=={VERSION}" in done.stderr
    assert "set indexUrl (or MLCI_PIP_INDEX_URL / PIP_INDEX_URL)" in done.stderr
    assert "Looking in indexes" not in done.stdout + done.stderr, "pip must not have run"
    assert not list((tmp_path / "cache").glob("mlci-*")), "nothing may be built"


def test_a_private_venv_is_rebuilt_every_time_never_reused(consumer, wheels, tmp_path):
    cache = tmp_path / "private"
    first = run_setup(consumer, cache, MLCI_FIND_LINKS=str(wheels), MLCI_VENV_REUSE="false")
    assert first.returncode == 0, first.stdout + first.stderr
    built = (consumer / ".venv").resolve()
    planted = built / "planted-by-a-fork.txt"
    planted.write_text("a fork's test code changed this venv")

    again = run_setup(consumer, cache, MLCI_FIND_LINKS=str(wheels), MLCI_VENV_REUSE="false")

    assert again.returncode == 0, again.stdout + again.stderr
    assert "reusing" not in again.stdout
    assert "building" in again.stdout
    assert not planted.exists(), "what the previous build left in the venv must be gone"


def test_each_team_folder_has_its_own_venv_never_the_other_teams(consumer, wheels, tmp_path):
    """Two teams' builds on one agent: what team B's test code left in its venv never reaches team A."""
    cache = tmp_path / "cache"
    team_b = run_setup(consumer, cache, MLCI_FIND_LINKS=str(wheels), MLCI_VENV_SCOPE="team-b")
    assert team_b.returncode == 0, team_b.stdout + team_b.stderr
    assert "venv cache of team-b" in team_b.stdout
    planted = (consumer / ".venv").resolve() / "lib" / "python3.11" / "site-packages" / "planted.pth"
    planted.write_text("import os; os.environ['PLANTED'] = 'by team b'\n")

    team_a = run_setup(consumer, cache, MLCI_FIND_LINKS=str(wheels), MLCI_VENV_SCOPE="team-a")

    assert team_a.returncode == 0, team_a.stdout + team_a.stderr
    assert "reusing" not in team_a.stdout
    built = (consumer / ".venv").resolve()
    assert built != planted.parents[3] and not (built / "lib" / "python3.11" / "site-packages" / "planted.pth").exists()
    assert planted.parents[4] != built.parent, "each team's venvs in its own subdirectory of the cache"


def test_a_private_venv_holds_copies_not_links_into_the_installers_cache(consumer, wheels, tmp_path):
    """mlciTest's venv (mlciSetup isolated: a private cache, MLCI_VENV_REUSE=false): a test that edits a
    file of its venv in place edits a copy, never a file hard-linked into uv's cache, which every build on
    the agent installs from (install_lock --link-mode copy)."""
    done = run_setup(consumer, tmp_path / "private", MLCI_FIND_LINKS=str(wheels), MLCI_VENV_REUSE="false")

    assert done.returncode == 0, done.stdout + done.stderr
    site = (consumer / ".venv").resolve() / "lib" / "python3.11" / "site-packages"
    installed = [path for path in site.rglob("*.py") if path.is_file()]
    assert len(installed) > 100
    linked = [str(path) for path in installed if path.stat().st_nlink > 1]
    assert linked == [], f"hard-linked files in a private venv: {linked[:5]}"


def test_waiting_for_another_build_building_the_same_venv_is_said(consumer, wheels, tmp_path):
    cache = tmp_path / "cache"
    assert run_setup(consumer, cache, MLCI_FIND_LINKS=str(wheels)).returncode == 0
    lock = next(cache.glob("mlci-*.lock"))
    with lock.open("w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        waiting = subprocess.Popen(
            ["bash", "-c", f"sleep 3; flock -u {held.fileno()}"], pass_fds=(held.fileno(),)
        )  # the other build: releases the lock after 3 s
        held.close()
        done = run_setup(consumer, cache, MLCI_FIND_LINKS=str(wheels))
        waiting.wait(timeout=30)

    assert done.returncode == 0, done.stdout + done.stderr
    assert "waiting for another build preparing this venv" in done.stdout
    assert done.stdout.index("waiting for another build") < done.stdout.index("reusing")
