"""The Jenkins library installs mlci on top of the lock it ships (resources/io/mlci/requirements.txt);
it must be the project's own lock, byte for byte, or teams would run mlci on untested dependencies."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_the_library_ships_the_project_lock_unchanged():
    shipped = (REPO / "resources" / "io" / "mlci" / "requirements.txt").read_bytes()
    lock = (REPO / "requirements" / "dev.txt").read_bytes()
    assert shipped == lock, (
        "resources/io/mlci/requirements.txt differs from requirements/dev.txt: run `make lock` "
        "(it copies the lock into the library)"
    )


def test_make_lock_copies_the_lock_into_the_library():
    makefile = (REPO / "Makefile").read_text()
    recipe = makefile.split("\nlock:", 1)[1].split("\n\n", 1)[0]
    assert "cp requirements/dev.txt resources/io/mlci/requirements.txt" in recipe
