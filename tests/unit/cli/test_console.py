"""The build log's console: what ops grep at 3 a.m. is printed whole."""

from __future__ import annotations

import os
import subprocess
import sys

ROW = "v12 @candidate-feature-with-a-long-branch-name passed vs v11 /var/lib/jenkins/workspace/a-long/path"


def test_a_log_line_is_never_wrapped_or_cut_whatever_columns_says():
    # pytest-xdist and some agents export COLUMNS=80; the log is not a terminal, so the table keeps every cell whole.
    script = (
        "from mlci.cli import console\n"
        f"console.table(['a', 'b', 'c', 'd', 'e', 'f'], [{ROW.split()!r}], title='leaderboard')\n"
    )
    shown = subprocess.run(
        [sys.executable, "-c", script], env={**os.environ, "COLUMNS": "80"}, capture_output=True, text=True, check=True
    )
    row = shown.stdout.splitlines()[-1].split()
    assert row == ROW.split(), shown.stdout
    assert "…" not in shown.stdout
