"""The release a team pins is one that exists: resources/io/mlci/VERSION has a dated CHANGELOG section,
and every place that tells a team which release to use (`@Library('mlci@vX')`, `mlci==X`) names it."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
VERSION = (REPO / "resources" / "io" / "mlci" / "VERSION").read_text().strip()
# Where a team reads which release to pin.
PINNING = ["README.md", "docs", "examples", "vars", "Jenkinsfile", "ml/learn/templates"]


def pinned_versions() -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    files = []
    for place in PINNING:
        path = REPO / place
        files += [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    for path in files:
        text = path.read_text(errors="replace")
        for version in re.findall(r"mlci@v(\d+\.\d+\.\d+)|mlci==(\d+\.\d+\.\d+)", text):
            found.setdefault("".join(version), set()).add(str(path.relative_to(REPO)))
    return found


def test_the_version_has_a_dated_changelog_section():
    changelog = (REPO / "CHANGELOG.md").read_text()
    assert re.search(rf"^## \[{re.escape(VERSION)}\] - \d{{4}}-\d{{2}}-\d{{2}}$", changelog, re.M), (
        f"CHANGELOG.md has no dated section '## [{VERSION}] - YYYY-MM-DD' for resources/io/mlci/VERSION"
    )


def test_every_pinned_release_is_the_version():
    found = pinned_versions()
    assert VERSION in found, "no document pins the current release"
    assert set(found) == {VERSION}, {v: sorted(where) for v, where in found.items() if v != VERSION}
