"""Installs that mean the lock: resources/io/mlci/install_lock.py, run for real (fresh venvs with the pip
that python3.11 bundles, a package index served over HTTP on 127.0.0.1, no other network), as `make venv`
and the agents' setup.sh run it.

The index holds a small self-contained lock's wheels (pkgb 1.0 requires pkga[toml]>=1.0, pkga 1.0 is
locked) plus a newer pkga 2.0: the shape of the issue (pytest-cov requires coverage[toml], a newer
coverage was released after the lock was compiled), where the bundled pip 23.2 either refuses the lock
or reaches for the newest release. The installer must install exactly the locked versions, refuse a file
whose hash is not the lock's (2, naming the package) and say when the index is unreachable (3).

The installer (uv) is the real one pinned in requirements/installer.txt: its wheel is taken from the
cache `make venv` fills (~/.cache/mlci/installer), so the test downloads nothing."""

from __future__ import annotations

import base64
import contextlib
import functools
import hashlib
import http.server
import importlib.util
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LIBRARY = REPO / "resources" / "io" / "mlci"
INSTALL_LOCK = LIBRARY / "install_lock.py"
INSTALLER_LOCK = REPO / "requirements" / "installer.txt"
PYTHON = shutil.which("python3.11") or sys.executable


def load_installer():
    """The installer as a module (a resource file, not a package): for its lock parser and cache lookup."""
    spec = importlib.util.spec_from_file_location("mlci_resources_install_lock", INSTALL_LOCK)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


installer = load_installer()


# --- tiny wheels and a PEP 503 index over HTTP --------------------------------------------------------


def make_wheel(
    folder: Path,
    name: str,
    version: str,
    requires: tuple[str, ...] = (),
    extras: tuple[str, ...] = (),
    payload: str = "",
    scripts: dict[str, str] | None = None,
) -> Path:
    """A pure-Python wheel: package NAME with VERSION = '<version>', its metadata, console SCRIPTS."""
    info = f"{name}-{version}.dist-info"
    metadata = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
    metadata += [f"Provides-Extra: {extra}" for extra in extras] + [f"Requires-Dist: {r}" for r in requires]
    files = {
        f"{name}/__init__.py": f"VERSION = {version!r}\n{payload}",
        f"{info}/METADATA": "\n".join(metadata) + "\n",
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    if scripts:
        files[f"{info}/entry_points.txt"] = "[console_scripts]\n" + "".join(f"{k} = {v}\n" for k, v in scripts.items())
    record = []
    for path, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(text.encode())}")
    files[f"{info}/RECORD"] = "\n".join([*record, f"{info}/RECORD,,"]) + "\n"
    folder.mkdir(parents=True, exist_ok=True)
    wheel = folder / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for path, text in files.items():
            archive.writestr(zipfile.ZipInfo(path, (2020, 1, 1, 0, 0, 0)), text)
    return wheel


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def lock_text(*wheels: Path) -> str:
    """A pip-compile style lock pinning each wheel (name==version, its hash)."""
    lines = []
    for wheel in wheels:
        name, version = wheel.name.split("-")[:2]
        lines += [f"{name}=={version} \\", f"    --hash=sha256:{sha256(wheel)}", "    # via -r requirements.in"]
    return "#\n# a small lock\n#\n" + "\n".join(lines) + "\n"


def write_index(root: Path, wheels: list[Path]) -> Path:
    """ROOT/simple/<project>/ pages (PEP 503, with #sha256 fragments) for the wheels, served from ROOT/files."""
    files = root / "files"
    files.mkdir(parents=True, exist_ok=True)
    projects: dict[str, list[Path]] = {}
    for wheel in wheels:
        target = files / wheel.name
        if not target.exists():
            try:
                os.link(wheel, target)
            except OSError:
                shutil.copy2(wheel, target)
        projects.setdefault(re.sub(r"[-_.]+", "-", wheel.name.split("-")[0]).lower(), []).append(target)
    for project, found in projects.items():
        page = root / "simple" / project / "index.html"
        page.parent.mkdir(parents=True, exist_ok=True)
        links = "".join(f'<a href="../../files/{w.name}#sha256={sha256(w)}">{w.name}</a>\n' for w in found)
        page.write_text(f"<!DOCTYPE html>\n<html><body>\n{links}</body></html>\n")
    return root


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # the requests are not the test's output
        pass


@contextlib.contextmanager
def serve(root: Path) -> Iterator[str]:
    """ROOT over HTTP on 127.0.0.1 (what `python -m http.server` does), for the duration of the block."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/simple"
    finally:
        server.shutdown()
        server.server_close()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- fixtures ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def uv_wheels() -> list[Path]:
    """The real installer wheel(s) of requirements/installer.txt, from the cache `make venv` fills."""
    pin = installer.parse_lock(INSTALLER_LOCK)[0]
    cache = installer.default_cache()
    found = installer.cached_wheels(cache, pin)
    if not found:
        pytest.fail(
            f"no {pin} wheel with a hash of {INSTALLER_LOCK.relative_to(REPO)} in {cache}: `make venv` puts it "
            "there (this test downloads nothing); run `make venv` (delete .venv/.installed first if it is current)"
        )
    return found


@pytest.fixture(scope="module")
def wheels(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("wheels")
    return {
        "pkga-1.0": make_wheel(folder, "pkga", "1.0", extras=("toml",)),
        "pkga-2.0": make_wheel(folder, "pkga", "2.0", extras=("toml",)),
        "pkgb-1.0": make_wheel(folder, "pkgb", "1.0", requires=("pkga[toml]>=1.0",)),
    }


@pytest.fixture(scope="module")
def index(tmp_path_factory, wheels, uv_wheels) -> Iterator[str]:
    """The locked wheels, a newer pkga, and the real uv: what an index looks like after an upstream release."""
    root = write_index(tmp_path_factory.mktemp("index"), [*wheels.values(), *uv_wheels])
    with serve(root) as url:
        yield url


@pytest.fixture(scope="module")
def tampered_index(tmp_path_factory, wheels, uv_wheels) -> Iterator[str]:
    """The same index, but its pkga 1.0 is another file than the one locked (a re-published or altered wheel)."""
    other = make_wheel(tmp_path_factory.mktemp("other"), "pkga", "1.0", extras=("toml",), payload="ALTERED = 1\n")
    root = write_index(tmp_path_factory.mktemp("tampered"), [other, wheels["pkga-2.0"], wheels["pkgb-1.0"], *uv_wheels])
    with serve(root) as url:
        yield url


@pytest.fixture
def lock(tmp_path, wheels) -> Path:
    path = tmp_path / "requirements.txt"
    path.write_text(lock_text(wheels["pkga-1.0"], wheels["pkgb-1.0"]))
    return path


@pytest.fixture
def caches(tmp_path, uv_wheels) -> dict[str, Path]:
    """Private caches: uv's (empty) and the installer's, seeded with the uv wheel (an agent's second build)."""
    seeded = tmp_path / "installer-cache"
    seeded.mkdir()
    for wheel in uv_wheels:
        shutil.copy2(wheel, seeded / wheel.name)
    empty = tmp_path / "empty-installer-cache"
    empty.mkdir()
    return {"uv": tmp_path / "uv-cache", "installer": seeded, "empty": empty}


def environment(caches: dict[str, Path], installer_cache: str = "installer") -> dict[str, str]:
    """No pip or uv settings of this machine (its pip.conf, PIP_*, UV_*), private caches, no retries."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "UV_", "MLCI_", "VIRTUAL_ENV"))}
    env.update(
        PIP_CONFIG_FILE=os.devnull,
        PIP_NO_CACHE_DIR="1",
        PIP_RETRIES="0",
        PIP_TIMEOUT="5",
        UV_HTTP_RETRIES="0",
        UV_CACHE_DIR=str(caches["uv"]),
        MLCI_INSTALLER_CACHE=str(caches[installer_cache]),
    )
    return env


def new_venv(path: Path, with_pip: bool = True) -> Path:
    args = [PYTHON, "-m", "venv", *([] if with_pip else ["--without-pip"]), str(path)]
    subprocess.run(args, check=True, capture_output=True, timeout=120)
    return path


def install(venv: Path, lock: Path, env: dict[str, str], *options: str) -> subprocess.CompletedProcess[str]:
    args = [PYTHON, str(INSTALL_LOCK), "--venv", str(venv), "--lock", str(lock), *options]
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=300)


def imported_version(venv: Path, package: str) -> str:
    done = subprocess.run(
        [str(venv / "bin" / "python"), "-c", f"import {package}; print({package}.VERSION)"],
        capture_output=True,
        text=True,
    )
    return done.stdout.strip() or f"not importable: {done.stderr.strip().splitlines()[-1:]}"


def bundled_pip() -> str:
    done = subprocess.run(
        [PYTHON, "-c", "import ensurepip; print(ensurepip.version())"], capture_output=True, text=True
    )
    return done.stdout.strip()


# --- the issue, and the installer ------------------------------------------------------------------------


def test_the_bundled_pip_alone_does_not_install_the_lock_as_locked(tmp_path, index, lock, caches):
    """The issue itself, reproduced offline: a plain `pip install --require-hashes -r lock` of this
    Python's pip refuses the lock (or installs pkga 2.0) because pkga 2.0 exists."""
    venv = new_venv(tmp_path / "venv")
    done = subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-m",
            "pip",
            "install",
            "--require-hashes",
            "--index-url",
            index,
            "-r",
            str(lock),
        ],
        env=environment(caches),
        capture_output=True,
        text=True,
        timeout=300,
    )
    if done.returncode == 0 and imported_version(venv, "pkga") == "1.0":
        pytest.skip(f"this Python's pip {bundled_pip()} installs the lock as locked: the issue does not arise with it")
    assert done.returncode != 0 or imported_version(venv, "pkga") == "2.0", done.stdout + done.stderr


def test_the_locked_versions_are_installed_whatever_is_newer_on_the_index(tmp_path, index, lock, caches):
    venv = new_venv(tmp_path / "venv")
    pip = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "--version"], capture_output=True, text=True)
    assert pip.stdout.startswith(f"pip {bundled_pip()} "), "the venv must start with the bundled pip, never upgraded"
    # A fresh agent: uv comes from the index, hash-checked. A file in the installer's cache is used only
    # when its hash is locked: this one (same name, other content) is ignored.
    pin = installer.parse_lock(INSTALLER_LOCK)[0]
    planted = make_wheel(caches["empty"], "uv", pin.version)
    env = environment(caches, installer_cache="empty")
    # Something the lock does not hold: the venv must end up with exactly the lock.
    stray = make_wheel(tmp_path / "stray", "stray", "1.0")
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", str(stray)], env=env, check=True)

    done = install(venv, lock, env, "--index-url", index)

    assert done.returncode == 0, done.stdout + done.stderr
    assert imported_version(venv, "pkga") == "1.0"
    assert imported_version(venv, "pkgb") == "1.0"
    assert imported_version(venv, "stray").startswith("not importable")
    assert installer.installer_version(venv) == pin.version
    assert installer.cached_wheels(caches["empty"], pin), "the uv wheel is kept for the next venv"
    assert planted not in installer.cached_wheels(caches["empty"], pin)
    check = subprocess.run([str(venv / "bin" / "uv"), "pip", "check", "--python", str(venv / "bin" / "python")])
    assert check.returncode == 0

    again = install(venv, lock, env, "--index-url", index)
    assert again.returncode == 0, again.stdout + again.stderr
    assert imported_version(venv, "pkga") == "1.0"


@pytest.fixture(scope="module")
def refused_venv(tmp_path_factory) -> Path:
    """One venv for the installs that must fail (a venv costs seconds): nothing is ever installed in it
    but uv, from the seeded cache."""
    return new_venv(tmp_path_factory.mktemp("refused") / "venv")


def test_a_file_whose_hash_is_not_the_locks_is_refused_naming_the_package(tampered_index, lock, caches, refused_venv):
    venv = refused_venv

    done = install(venv, lock, environment(caches), "--index-url", tampered_index)

    assert done.returncode == 2, done.stdout + done.stderr
    assert "refusing pkga==1.0" in done.stderr
    assert "Traceback" not in done.stderr
    assert imported_version(venv, "pkga").startswith("not importable")


def test_an_installer_wheel_whose_hash_is_not_locked_is_refused(tmp_path, wheels, lock, caches):
    pin = installer.parse_lock(INSTALLER_LOCK)[0]
    fake_uv = make_wheel(tmp_path / "fake", "uv", pin.version)
    root = write_index(tmp_path / "index", [fake_uv, wheels["pkga-1.0"], wheels["pkgb-1.0"]])
    venv = new_venv(tmp_path / "venv")

    with serve(root) as url:
        done = install(venv, lock, environment(caches, installer_cache="empty"), "--index-url", url)

    assert done.returncode == 2, done.stdout + done.stderr
    assert f"refusing {pin}" in done.stderr
    assert not (venv / "bin" / "uv").exists()


def test_an_unreachable_index_is_exit_3_without_its_credentials(tmp_path, lock, caches):
    venv = new_venv(tmp_path / "venv")
    url = f"http://ci:s3cret@127.0.0.1:{closed_port()}/simple"

    # A fresh agent: pip meets the closed port, bootstrapping uv; then, uv cached: uv meets it.
    for installer_cache in ("empty", "installer"):
        done = install(venv, lock, environment(caches, installer_cache), "--index-url", url)

        assert done.returncode == 3, done.stdout + done.stderr
        assert "the package index is unreachable" in done.stderr
        assert "http://***@127.0.0.1" in done.stderr
        assert "s3cret" not in done.stdout + done.stderr
        assert "Traceback" not in done.stderr
    assert (venv / "bin" / "uv").exists(), "the second time, uv was installed from the cache and met the index"


def test_a_locked_package_missing_from_the_index_is_exit_2(tmp_path, index, wheels, caches, refused_venv):
    missing = make_wheel(tmp_path / "unpublished", "pkgc", "1.0")
    lock = tmp_path / "requirements.txt"
    lock.write_text(lock_text(wheels["pkga-1.0"], missing))
    venv = refused_venv

    done = install(venv, lock, environment(caches), "--index-url", index)

    assert done.returncode == 2, done.stdout + done.stderr
    assert "a locked package is not available from index http://127.0.0.1" in done.stderr
    assert "pkgc" in done.stderr


def test_a_lock_that_could_resolve_is_refused_before_anything_is_installed(tmp_path, caches):
    lock = tmp_path / "requirements.txt"
    lock.write_text(f"pkga>=1.0 \\\n    --hash=sha256:{'0' * 64}\npkgb==1.0\n-r other.txt\n")
    venv = new_venv(tmp_path / "venv", with_pip=False)

    done = install(venv, lock, environment(caches))

    assert done.returncode == 2
    assert "is not a fully pinned lock" in done.stderr
    assert "line 1: 'pkga>=1.0' is not pinned with == to one version" in done.stderr
    assert "line 3: pkgb==1.0 has no --hash=sha256" in done.stderr
    assert "line 4: '-r other.txt': option lines" in done.stderr
    assert not (venv / "bin" / "uv").exists()

    absent = install(venv, tmp_path / "missing.txt", environment(caches))
    assert absent.returncode == 2 and "lock file" in absent.stderr and "not found" in absent.stderr


# --- setup.sh on an agent, with the same index ---------------------------------------------------------


def run_setup(repo: Path, env: dict[str, str], **settings: str) -> subprocess.CompletedProcess[str]:
    env = {**env, "MLCI_PYTHON": PYTHON, **settings}
    return subprocess.run(
        ["bash", str(LIBRARY / "setup.sh")], cwd=repo, env=env, capture_output=True, text=True, timeout=300
    )


@pytest.fixture
def team_repo(tmp_path, lock) -> tuple[Path, Path]:
    """A team's repository with the library's lock written by mlciSetup, and a directory holding mlci."""
    repo = tmp_path / "team"
    (repo / ".mlci").mkdir(parents=True)
    shutil.copy2(lock, repo / ".mlci" / "requirements.txt")
    dist = tmp_path / "dist"
    make_wheel(
        dist, "mlci", "9.9.9", payload="def main():\n    print('mlci, version 9.9.9')\n", scripts={"mlci": "mlci:main"}
    )
    return repo, dist


def test_setup_sh_builds_the_agent_venv_from_the_lock(tmp_path, index, team_repo, caches):
    repo, dist = team_repo
    env = environment(caches)

    done = run_setup(
        repo,
        env,
        MLCI_VERSION="9.9.9",
        MLCI_INDEX_URL=index,
        MLCI_FIND_LINKS=str(dist),
        MLCI_VENV_CACHE=str(tmp_path / "venvs"),
    )

    assert done.returncode == 0, done.stdout + done.stderr
    assert imported_version(repo / ".venv", "pkga") == "1.0"
    assert imported_version(repo / ".venv", "mlci") == "9.9.9"


def test_setup_sh_refuses_a_file_whose_hash_is_not_the_locks(tmp_path, tampered_index, team_repo, caches):
    repo, dist = team_repo
    cache = tmp_path / "venvs"

    done = run_setup(
        repo, environment(caches), MLCI_VERSION="9.9.9", MLCI_INDEX_URL=tampered_index, MLCI_FIND_LINKS=str(dist),
        MLCI_VENV_CACHE=str(cache),
    )  # fmt: skip

    assert done.returncode == 2, done.stdout + done.stderr
    assert "refusing pkga==1.0" in done.stderr
    assert "could not be installed as locked" in done.stderr
    assert not [p for p in cache.iterdir() if p.is_dir()], "a refused install must not leave a venv in the cache"


# --- the project's own locks and where the installer is used -------------------------------------------


@pytest.mark.parametrize("name", ["dev", "api", "dashboard", "server", "installer"])
def test_the_project_locks_are_fully_pinned_with_hashes(name):
    pins = installer.parse_lock(REPO / "requirements" / f"{name}.txt")  # raises on a line that could resolve
    assert pins and all(pin.hashes for pin in pins)
    assert len({pin.name for pin in pins}) == len(pins), "a package is pinned twice"


def test_the_installer_lock_pins_uv_alone_and_agrees_with_the_dev_lock():
    pins = installer.parse_lock(INSTALLER_LOCK)
    assert [pin.name for pin in pins] == ["uv"]
    dev = {pin.name: pin.version for pin in installer.parse_lock(REPO / "requirements" / "dev.txt")}
    assert dev.get("uv", pins[0].version) == pins[0].version, "uv pinned twice at two versions"


def test_the_library_ships_the_installer_and_its_lock_beside_setup_sh():
    assert (LIBRARY / "installer.txt").read_bytes() == INSTALLER_LOCK.read_bytes(), (
        "resources/io/mlci/installer.txt differs from requirements/installer.txt: run `make lock`"
    )
    recipe = (REPO / "Makefile").read_text().split("\nlock:", 1)[1].split("\n\n", 1)[0]
    assert "cp requirements/installer.txt resources/io/mlci/installer.txt" in recipe
    setup = (LIBRARY / "setup.sh").read_text()
    assert "install_lock.py" in setup
    assert not re.search(r"pip install[^\n]*(\\\n[^\n]*)*-r \"\$lock\"", setup), (
        "setup.sh must not pip install the lock"
    )


def test_make_venv_installs_the_lock_with_the_installer():
    # The venv's stamp is the target that installs the lock (`make venv` depends on it).
    done = subprocess.run(
        ["make", "-n", "-B", "-s", ".venv/.installed"], cwd=REPO, capture_output=True, text=True, check=True
    )
    lines = done.stdout.splitlines()
    create = next(i for i, line in enumerate(lines) if "-m venv .venv" in line)
    locked = next(i for i, line in enumerate(lines) if "install_lock.py" in line)
    assert create < locked
    assert "--lock requirements/dev.txt" in lines[locked]
    assert "--installer-lock requirements/installer.txt" in lines[locked]
    assert not any("pip install" in line and "-r " in line for line in lines), "the lock is never pip-installed"


@pytest.mark.parametrize("dockerfile", ["api", "dashboard", "mlflow"])
def test_each_image_installs_its_lock_without_resolving_and_checks_it(dockerfile):
    text = (REPO / "docker" / f"{dockerfile}.Dockerfile").read_text().replace("\\\n", " ")
    install = next(line for line in text.splitlines() if "pip install" in line and "-r /tmp/requirements.txt" in line)
    assert "--no-deps" in install and "--require-hashes" in install
    commands = [c.strip() for c in install.split(";")]
    installed = next(i for i, c in enumerate(commands) if "pip install" in c)
    check = next(i for i, c in enumerate(commands) if c.endswith("pip check"))
    assert installed < check
    uninstall = [i for i, c in enumerate(commands) if "pip uninstall" in c]
    assert all(check < i for i in uninstall), "pip check must run before pip is removed"
