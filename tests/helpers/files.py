"""Files the tests write: CSVs for the data and init tests, a clean copy of this checkout for the
line tests (what `git clone` would give a Jenkins agent)."""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
from pathlib import Path

from tests.helpers.project import REPO


def write_csv(path: Path, header: list[str], rows: list[list[object]], delimiter: str = ",") -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, delimiter=delimiter, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
    return path


def copy_checkout(root: Path) -> Path:
    """The files git tracks (and the untracked ones it does not ignore) into root, as a clone has them;
    the host's wheel downloads hard-linked beside them, so image builds need no network."""
    files = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO, check=True, capture_output=True, text=True
    ).stdout.split()
    for name in files:
        if (REPO / name).is_file():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, root / name)
    if (REPO / "build" / "wheelhouse").is_dir():
        shutil.copytree(REPO / "build" / "wheelhouse", root / "build" / "wheelhouse", copy_function=os.link)
    return root
