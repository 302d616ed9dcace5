"""Compile the lock files from setup.cfg (run through `make lock`).

dev.txt is the one resolution of everything (all extras); the per-image files are compiled from
one extra each, constrained by dev.txt, so a package has the same version everywhere and the API
image gets no training stack. installer.txt pins, with its hashes, the installer that installs the
locks everywhere (uv, bootstrapped by resources/io/mlci/install_lock.py): `make venv`, the agents'
setup.sh; --upgrade moves it to the newest release like the rest.
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
# What install_lock.py bootstraps from a hashed lock before installing any other lock (not a
# dependency of mlci: it is in no extra of setup.cfg).
INSTALLER = ("uv",)


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
    compile_constrained(extra, requirements, f"setup.cfg [{extra}] constrained by dev.txt")


def compile_installer(upgrade: bool) -> None:
    compile_constrained(
        "installer", list(INSTALLER), "requirements/compile.py INSTALLER constrained by dev.txt", upgrade
    )


def compile_constrained(name: str, requirements: list[str], origin: str, upgrade: bool = False) -> None:
    """requirements/NAME.txt from REQUIREMENTS constrained by dev.txt; ORIGIN names the input in the output."""
    # The input sits beside the locks only while compiling: paths in the output stay relative.
    source = HERE / f".{name}.in"
    source.write_text("\n".join(["-c dev.txt", *requirements]) + "\n")
    try:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "piptools",
                "compile",
                *COMMON,
                *(["--upgrade"] if upgrade else []),
                "-o",
                f"requirements/{name}.txt",
                f"requirements/.{name}.in",
            ],
            check=True,
            cwd=ROOT,
        )
    finally:
        source.unlink()
    text = (HERE / f"{name}.txt").read_text()
    (HERE / f"{name}.txt").write_text(text.replace(f"requirements/.{name}.in", origin))


if __name__ == "__main__":
    compile_dev(upgrade="--upgrade" in sys.argv)
    for name in IMAGES:
        compile_extra(name)
    compile_installer(upgrade="--upgrade" in sys.argv)
