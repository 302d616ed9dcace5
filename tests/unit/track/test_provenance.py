"""Which Python environment trained: recorded for this repository and for a team's repository alike."""

import hashlib
from pathlib import Path

from mlci.track import provenance


def test_a_project_with_a_lock_records_the_lock(tmp_path: Path):
    (tmp_path / "requirements").mkdir()
    (tmp_path / "requirements" / "dev.txt").write_text("click==8.1.7 --hash=sha256:abc\n")
    assert provenance.lock_sha256(tmp_path) == hashlib.sha256(b"click==8.1.7 --hash=sha256:abc\n").hexdigest()


def test_a_team_repository_without_a_lock_records_the_installed_environment(tmp_path: Path):
    # A consumer repository (mlci installed as a wheel) holds no requirements/dev.txt: the run still
    # says which environment trained it, and the same environment always gives the same digest.
    recorded = provenance.lock_sha256(tmp_path)
    assert recorded != provenance.UNKNOWN and len(recorded) == 64
    assert recorded == provenance.environment_sha256()
