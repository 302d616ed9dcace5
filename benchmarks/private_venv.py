"""Benchmark: what mlciTest's private venv costs a build, against the shared venv cache it replaced.

    .venv/bin/python benchmarks/private_venv.py [--rounds 3] [--wheels dist]

Since issue 22 a build's tests never run in the agents' shared venv cache (a test could plant a .pth
there that a later deploy runs): mlciTest calls mlciSetup(isolated: true), which runs setup.sh with
MLCI_VENV_REUSE=false and a private cache directory, so every build creates a venv and installs the
library's whole lock into it, copied from uv's cache (--link-mode copy: nothing a test writes reaches
the cache). The peer is what Test did before: setup.sh reusing the ready venv of the shared cache.

Both run the real resources/io/mlci/setup.sh from a team's repository (mlci.yaml, the library's lock in
.mlci/requirements.txt, as mlciSetup writes it), with the mlci wheel of --wheels (`make dist`) and the
locked packages from the index pip is configured with; one warm-up install fills uv's cache first, as
on an agent that built once. Each round times A (shared cache, reused) and B (private, rebuilt),
alternating. Prints the times and the ratio B/A; exits 1 if a setup failed. Not a test.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LIBRARY = REPO / "resources" / "io" / "mlci"


def setup(repo: Path, cache: Path, wheels: Path, reuse: bool) -> float:
    """Runs setup.sh as mlciSetup does; returns its wall time in seconds."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("MLCI_", "VIRTUAL_ENV"))}
    environ.update(
        MLCI_PYTHON=sys.executable,
        MLCI_VERSION=(LIBRARY / "VERSION").read_text().strip(),
        MLCI_VENV_CACHE=str(cache),
        MLCI_VENV_REUSE="true" if reuse else "false",
        MLCI_VENV_SCOPE="ml",
        MLCI_FIND_LINKS=str(wheels),
        MLCI_LOCK_FILE=".mlci/requirements.txt",
    )
    started = time.perf_counter()
    done = subprocess.run(["bash", str(LIBRARY / "setup.sh")], cwd=repo, env=environ, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"setup.sh failed (exit {done.returncode}):\n{done.stderr[-2000:]}")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--wheels", type=Path, default=REPO / "dist", help="directory holding the mlci wheel")
    args = parser.parse_args()
    if not list(args.wheels.glob("mlci-*.whl")):
        sys.exit(f"no mlci wheel in {args.wheels}: run `make dist` first")
    with tempfile.TemporaryDirectory(prefix="mlci-venv-bench-") as tmp:
        root = Path(tmp)
        repo = root / "team-repo"
        (repo / ".mlci").mkdir(parents=True)
        (repo / "mlci.yaml").write_text("project: churn\n")
        shutil.copy2(LIBRARY / "requirements.txt", repo / ".mlci" / "requirements.txt")
        shared, private = root / "shared-cache", root / "private"
        lines = len((LIBRARY / "requirements.txt").read_text().splitlines())
        print(f"warm-up: building the shared venv (fills uv's cache), lock of {lines} lines")
        warm = setup(repo, shared, args.wheels, reuse=True)
        print(f"warm-up took {warm:.1f} s")
        reused, rebuilt = [], []
        for n in range(1, args.rounds + 1):
            reused.append(setup(repo, shared, args.wheels, reuse=True))
            rebuilt.append(setup(repo, private, args.wheels, reuse=False))
            print(f"round {n}: A shared reused {reused[-1]:.2f} s, B private rebuilt {rebuilt[-1]:.2f} s")
        a, b = statistics.median(reused), statistics.median(rebuilt)
        size = sum(f.stat().st_size for f in private.rglob("*") if f.is_file() and not f.is_symlink())
        print(f"median: A {a:.2f} s, B {b:.2f} s, B/A {b / a:.0f}x, B - A {b - a:.1f} s per build")
        print(f"private venv {size / 1e6:.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
