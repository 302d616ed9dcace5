"""Compile the lock files from setup.cfg (run through `make lock`).

dev.txt is the one resolution of everything (all extras); the per-image files are compiled from
one extra each, constrained by dev.txt, so a package has the same version everywhere and the API
image gets no training stack.
"""

import configparser
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
COMMON = [
    "--quiet",
    "--generate-hashes",
    "--allow-unsafe",
    "--strip-extras",
    "--no-emit-index-url",
    "--no-emit-find-links",
    "--resolver=backtracking",
]
IMAGES = ("api", "dashboard", "server")


def compile_dev(upgrade: bool) -> None:
    args = ["--all-extras", "-o", "requirements/dev.txt", "setup.cfg"]
    subprocess.run(
        [sys.executable, "-m", "piptools", "compile", *COMMON, *(["--upgrade"] if upgrade else []), *args],
        check=True,
        cwd=ROOT,
    )


def compile_extra(extra: str) -> None:
    parser = configparser.ConfigParser()
    parser.read(ROOT / "setup.cfg")
    requirements = [line.strip() for line in parser["options.extras_require"][extra].splitlines() if line.strip()]
    # The input sits beside the locks only while compiling: paths in the output stay relative.
    source = HERE / f".{extra}.in"
    source.write_text("\n".join(["-c dev.txt", *requirements]) + "\n")
    try:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "piptools",
                "compile",
                *COMMON,
                "-o",
                f"requirements/{extra}.txt",
                f"requirements/.{extra}.in",
            ],
            check=True,
            cwd=ROOT,
        )
    finally:
        source.unlink()
    text = (HERE / f"{extra}.txt").read_text()
    (HERE / f"{extra}.txt").write_text(
        text.replace(f"requirements/.{extra}.in", f"setup.cfg [{extra}] constrained by dev.txt")
    )


if __name__ == "__main__":
    compile_dev(upgrade="--upgrade" in sys.argv)
    for name in IMAGES:
        compile_extra(name)
