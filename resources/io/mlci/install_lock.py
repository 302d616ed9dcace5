"""Install a hash-pinned lock into a virtualenv: exactly the locked versions, whatever is newer upstream
and whatever pip the Python ships.

    python3.11 install_lock.py --venv .venv --lock requirements/dev.txt [index options]

1. The lock is checked first: every requirement must be `name==version` with at least one
   --hash=sha256 (pip-compile --generate-hashes output); nothing is installed from a lock that could
   resolve to something else.
2. The installer (uv) is bootstrapped into the venv from its own hashed lock (installer.txt beside this
   file, or --installer-lock) by the venv's bundled pip with --no-deps --require-hashes: a single
   pinned wheel, no resolution, so even pip 23.2 (Python 3.11's) cannot pick another version. Its wheel
   is kept in a cache (--wheel-cache, else $MLCI_INSTALLER_CACHE, else ~/.cache/mlci/installer) and a
   file there is used only when its sha256 is one the lock names (anyone may write to a cache).
3. `uv pip sync --require-hashes LOCK INSTALLER_LOCK`: the venv then holds exactly the locked packages
   and the installer (uv leaves the venv's own pip and setuptools when the lock does not pin them),
   nothing is resolved, every file's hash is checked.
4. `uv pip check`: the installed set is consistent (the lock holds every dependency).

Index options (--index-url, --extra-index-url, --find-links, --no-index) apply to both steps. Without
them pip's own configuration (PIP_INDEX_URL, pip.conf, ...) is used, for the bootstrap and for uv.
uv's configuration files (uv.toml, [tool.uv] in a pyproject.toml of the working directory) are ignored:
a checkout never chooses the index.

Exit codes: 0 installed; 2 bad input (lock or venv missing, a lock line not pinned, a file whose hash
is not the lock's, a locked package not on the index, an inconsistent lock); 3 the package index
cannot be reached. Standard library only: it runs before anything is installed.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
INSTALLER = "uv"
DEFAULT_INDEX = "https://pypi.org/simple/"
NAME = r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?"
PINNED = re.compile(rf"^(?P<name>{NAME})\s*(?:\[[^\]]*\])?\s*==\s*(?P<version>[A-Za-z0-9.+!_-]+)\s*(?:;.*)?$")
HASH = re.compile(r"^--hash[= ]sha256:(?P<digest>[0-9a-f]{64})$")


class Failure(Exception):
    """What failed and what to do; CODE is the exit code (2 bad input, 3 index unreachable)."""

    def __init__(self, code: int, message: str, output: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.output = output


def say(message: str) -> None:
    print(f"install_lock: {message}", flush=True)


@dataclass
class Pin:
    name: str
    version: str
    hashes: set[str]
    line: int

    def __str__(self) -> str:
        return f"{self.name}=={self.version}"


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def parse_lock(path: Path) -> list[Pin]:
    """The pins of a pip-compile --generate-hashes lock; Failure(2) naming each line that is not
    `name==version` followed by --hash=sha256 options only (no -r, -e, index options, ranges)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise Failure(2, f"lock file {path} not found: commit it, or regenerate it with `make lock`") from None
    except OSError as error:
        raise Failure(2, f"cannot read the lock file {path}: {error.strerror}") from None
    pins: list[Pin] = []
    problems: list[str] = []
    logical, start = "", 0
    lines = text.splitlines()
    for number, raw in enumerate([*lines, ""], start=1):
        content = re.sub(r"(^|\s)#.*$", "", raw).rstrip()
        if not logical:
            start = number
        if content.endswith("\\"):
            logical += content[:-1] + " "
            continue
        logical = (logical + content).strip()
        if logical:
            pin = parse_requirement(logical, start)
            if isinstance(pin, Pin):
                pins.append(pin)
            else:
                problems.append(f"line {start}: {pin}")
        logical = ""
    if problems:
        raise Failure(
            2,
            f"{path} is not a fully pinned lock; the installer takes only `name==version` lines with "
            "--hash=sha256 options (pip-compile --generate-hashes), so that nothing is resolved:\n  "
            + "\n  ".join(problems)
            + "\nrecompile it with `make lock`",
        )
    if not pins:
        raise Failure(2, f"{path} pins no package: is it a lock file? (`make lock` writes them)")
    return pins


def parse_requirement(logical: str, line: int) -> Pin | str:
    """A Pin, or what is wrong with the logical line (as a short text)."""
    if logical.startswith("-"):
        return f"'{shorten(logical)}': option lines (-r, -c, -e, index options) are not allowed in a lock"
    requirement, _, options = logical.partition(" --")
    options = f"--{options}" if options else ""
    match = PINNED.match(requirement.strip())
    if not match or "*" in match["version"]:
        return f"'{shorten(requirement)}' is not pinned with == to one version"
    hashes: set[str] = set()
    for option in re.split(r"\s+(?=--)", options.strip()) if options else []:
        found = HASH.match(option.strip())
        if not found:
            return f"'{shorten(option)}' for {match['name']}: only --hash=sha256:<digest> options are allowed"
        hashes.add(found["digest"])
    if not hashes:
        return f"{match['name']}=={match['version']} has no --hash=sha256 (compile with --generate-hashes)"
    return Pin(normalized(match["name"]), match["version"], hashes, line)


def shorten(text: str, limit: int = 80) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def redact(text: str) -> str:
    """URLs with their credentials (https://user:token@host) replaced by ***: safe to print."""
    return re.sub(r"://[^/@\s'\"]+@", "://***@", text)


@dataclass
class Sources:
    """Where packages come from: explicit options, else pip's configuration (environment and files)."""

    index_url: str | None = None
    extra_index_urls: list[str] = field(default_factory=list)
    find_links: list[str] = field(default_factory=list)
    no_index: bool = False
    cert: str | None = None
    trusted_hosts: list[str] = field(default_factory=list)

    def pip_args(self) -> list[str]:
        args: list[str] = []
        if self.no_index:
            args.append("--no-index")
        if self.index_url:
            args += ["--index-url", self.index_url]
        for url in self.extra_index_urls:
            args += ["--extra-index-url", url]
        for link in self.find_links:
            args += ["--find-links", link]
        return args

    def uv_args(self) -> list[str]:
        args = self.pip_args()
        if self.cert:
            args += ["--cert", self.cert]
        for host in self.trusted_hosts:
            args += ["--allow-insecure-host", host]
        return args

    def urls(self) -> list[str]:
        """The HTTP locations packages are looked up at (what must answer)."""
        urls = [] if self.no_index else [self.index_url or DEFAULT_INDEX, *self.extra_index_urls]
        return urls + [link for link in self.find_links if link.startswith(("http://", "https://"))]

    def described(self) -> str:
        parts = [] if self.no_index else [f"index {self.index_url or DEFAULT_INDEX}"]
        parts += [f"extra index {url}" for url in self.extra_index_urls]
        parts += [f"wheels in {link}" for link in self.find_links]
        return redact(", ".join(parts) or "no index")


def pip_configuration(python: Path) -> dict[str, str]:
    """pip's effective settings for `pip install` (environment, then [install], then [global])."""
    done = subprocess.run(
        [str(python), "-m", "pip", "config", "list"], capture_output=True, text=True, check=False, env=pip_env()
    )
    found: dict[str, tuple[int, str]] = {}
    rank = {":env:": 0, "install": 1, "global": 2}
    for line in done.stdout.splitlines():
        match = re.match(r"^(?P<section>[^.]+)\.(?P<key>[a-z-]+)='(?P<value>.*)'$", line)
        if match and match["section"] in rank:
            order = rank[match["section"]]
            if match["key"] not in found or order < found[match["key"]][0]:
                found[match["key"]] = (order, match["value"])
    return {key: value for key, (_, value) in found.items()}


def sources(options: argparse.Namespace, python: Path) -> Sources:
    explicit = Sources(
        index_url=options.index_url,
        extra_index_urls=list(options.extra_index_url or []),
        find_links=[absolute_link(link) for link in options.find_links or []],
        no_index=options.no_index,
    )
    config = pip_configuration(python)
    if not (options.index_url or options.extra_index_url or options.find_links or options.no_index):
        explicit.index_url = config.get("index-url") or None
        explicit.extra_index_urls = config.get("extra-index-url", "").split()
        explicit.find_links = [absolute_link(link) for link in config.get("find-links", "").split()]
        explicit.no_index = config.get("no-index", "").lower() in ("1", "true", "yes", "on")
    explicit.cert = options.cert or config.get("cert") or None
    explicit.trusted_hosts = config.get("trusted-host", "").split()
    return explicit


def absolute_link(link: str) -> str:
    return link if "://" in link else str(Path(link).resolve())


def pip_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env.pop("PIP_REQUIRE_VIRTUALENV", None)
    return env


def run(args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(args, capture_output=True, text=True, check=False, env=env)
    except OSError as error:
        raise Failure(2, f"cannot run {args[0]}: {error.strerror}") from None


def answers(url: str, timeout: float = 10) -> str | None:
    """None when URL answers HTTP at all (any status, credentials left out), else why it does not."""
    parts = urllib.parse.urlsplit(url)
    bare = parts._replace(netloc=(parts.hostname or "") + (f":{parts.port}" if parts.port else "")).geturl()
    try:
        urllib.request.urlopen(bare, timeout=timeout).close()
    except urllib.error.HTTPError:
        return None  # it answered (401, 404, ...)
    except (urllib.error.URLError, OSError, ValueError) as error:
        reason = getattr(error, "reason", error)
        return str(reason)
    return None


def unreachable(where: Sources) -> list[str]:
    return [f"{redact(url)} ({why})" for url in where.urls() if (why := answers(url)) is not None]


def classify(what: str, lock: Path, where: Sources, output: str, mismatched: list[str]) -> Failure:
    """The failure of an install step: a hash mismatch (2), an unreachable index (3), else not available (2)."""
    if mismatched:
        return Failure(
            2,
            f"refusing {', '.join(sorted(set(mismatched)))}: the file served by {where.described()} does not "
            f"have the sha256 that {lock} locks (a re-published file, a mirror serving another one, or "
            "tampering). Check the index; if the new file is legitimate, recompile the lock (`make lock`).",
            output,
        )
    down = unreachable(where)
    if down:
        return Failure(
            3,
            f"{what}: the package index is unreachable from {socket.gethostname()}: {'; '.join(down)}. "
            "Check the proxy, DNS, credentials or TLS certificates (SSL_CERT_FILE), then retry.",
            output,
        )
    return Failure(
        2,
        f"{what} (see above): a locked package is not available from {where.described()}, or cannot be "
        f"installed: mirror or publish exactly the versions {lock} pins, or fix the index options.",
        output,
    )


def installer_version(venv: Path) -> str | None:
    uv = venv / "bin" / INSTALLER
    if not uv.is_file():
        return None
    done = subprocess.run([str(uv), "--version"], capture_output=True, text=True, check=False)
    found = re.match(rf"^{INSTALLER} (\S+)", done.stdout)
    return found[1] if done.returncode == 0 and found else None


def cached_wheels(cache: Path, pin: Pin) -> list[Path]:
    """The files of CACHE whose sha256 is one the pin allows (any other file there is ignored)."""
    if not cache.is_dir():
        return []
    prefix = pin.name.replace("-", "_")
    found = []
    for path in sorted(cache.glob(f"{prefix}-{pin.version}-*.whl")):
        digest = hashlib.sha256()
        with path.open("rb") as stream:
            while block := stream.read(1 << 20):
                digest.update(block)
        if digest.hexdigest() in pin.hashes:
            found.append(path)
    return found


def install_from(python: Path, lock: Path, wheels: list[Path]) -> subprocess.CompletedProcess[str]:
    """pip install --no-deps --require-hashes of LOCK from exactly WHEELS (no index, no other links)."""
    with tempfile.TemporaryDirectory(prefix="install-lock-") as folder:
        for wheel in wheels:
            os.symlink(wheel, Path(folder) / wheel.name)
        # Only these files: no index or links from pip's settings (another file of the same name there
        # would be picked and fail the hash check).
        env = {key: value for key, value in pip_env().items() if not key.startswith("PIP_")}
        env.update(PIP_CONFIG_FILE=os.devnull, PIP_DISABLE_PIP_VERSION_CHECK="1")
        return run(
            [str(python), "-m", "pip", "install", "--quiet", "--no-deps", "--require-hashes", "--only-binary=:all:",
             "--no-index", "--find-links", folder, "-r", str(lock)],
            env,
        )  # fmt: skip


def pip_mismatches(output: str) -> list[str]:
    if "DO NOT MATCH THE HASHES" not in output:
        return []
    return re.findall(rf"^\s+({NAME}==\S+) from ", output, flags=re.MULTILINE)


def bootstrap(venv: Path, installer_lock: Path, cache: Path, where: Sources) -> str:
    """The pinned installer in VENV, by VENV's own pip, --no-deps --require-hashes; its version."""
    pins = parse_lock(installer_lock)
    pin = next((p for p in pins if p.name == INSTALLER), None)
    if pin is None or len(pins) != 1:
        raise Failure(2, f"{installer_lock} must pin {INSTALLER}==<version> with hashes and nothing else")
    if installer_version(venv) == pin.version:
        return pin.version
    python = venv / "bin" / "python"
    wheels = cached_wheels(cache, pin)
    if not wheels or install_from(python, installer_lock, wheels).returncode != 0:
        download(python, installer_lock, cache, where, pin)
        wheels = cached_wheels(cache, pin)
        done = install_from(python, installer_lock, wheels)
        if done.returncode != 0:
            raise Failure(
                2, f"pip could not install {pin} into {venv} from {cache} (see above)", done.stdout + done.stderr
            )
    if installer_version(venv) != pin.version:
        raise Failure(2, f"{pin} was installed into {venv} but `{INSTALLER} --version` does not say {pin.version}")
    return pin.version


def download(python: Path, installer_lock: Path, cache: Path, where: Sources, pin: Pin) -> None:
    """The installer's wheel for this platform, hash-checked by pip, into CACHE (files moved in whole)."""
    try:
        cache.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".download-", dir=cache))
    except OSError as error:
        raise Failure(2, f"cannot write the installer cache {cache}: {error.strerror}; set --wheel-cache") from None
    try:
        done = run(
            [str(python), "-m", "pip", "download", "--no-deps", "--require-hashes", "--only-binary=:all:",
             *where.pip_args(), "-r", str(installer_lock), "-d", str(staging)],
            pip_env(),
        )  # fmt: skip
        if done.returncode != 0:
            output = done.stdout + done.stderr
            raise classify(
                f"pip could not download {pin} ({installer_lock})",
                installer_lock,
                where,
                output,
                pip_mismatches(output),
            )
        for wheel in staging.iterdir():
            os.replace(wheel, cache / wheel.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def uv_mismatches(output: str) -> list[str]:
    return re.findall(r"Hash mismatch for `([^`]+)`", output)


def synchronize(venv: Path, lock: Path, installer_lock: Path, where: Sources, link_mode: str | None) -> None:
    uv = str(venv / "bin" / INSTALLER)
    python = str(venv / "bin" / "python")
    env = {key: value for key, value in os.environ.items() if key not in ("VIRTUAL_ENV", "CONDA_PREFIX")}
    sync = [uv, "--no-config", "pip", "sync", "--python", python, "--require-hashes", "--strict", *where.uv_args()]
    if link_mode:
        sync += ["--link-mode", link_mode]
    done = run([*sync, str(lock), str(installer_lock)], env)
    output = done.stdout + done.stderr
    if done.returncode != 0:
        raise classify(f"{INSTALLER} could not install {lock}", lock, where, output, uv_mismatches(output))
    summary = re.search(r"^Installed .*$", output, flags=re.MULTILINE) or re.search(r"^Audited .*$", output, flags=re.M)
    check = run([uv, "--no-config", "pip", "check", "--python", python], env)
    if check.returncode != 0:
        raise Failure(
            2,
            f"the packages installed from {lock} are not consistent (see above): the lock misses a dependency or "
            "pins an incompatible version; recompile it with `make lock`.",
            check.stdout + check.stderr,
        )
    say(f"{lock} installed in {venv} ({summary[0].lower() if summary else 'done'}; consistent)")


def default_cache() -> Path:
    if os.environ.get("MLCI_INSTALLER_CACHE"):
        return Path(os.environ["MLCI_INSTALLER_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "mlci" / "installer"


def arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="install_lock.py",
        description="Install exactly the versions a hashed lock pins into a virtualenv (uv, bootstrapped by pip).",
        epilog="Exit codes: 0 installed, 2 bad input (lock, hash, package not on the index), 3 index unreachable.",
    )
    parser.add_argument("--venv", required=True, type=Path, help="an existing virtualenv (python -m venv DIR)")
    parser.add_argument("--lock", required=True, type=Path, help="the hashed lock to install")
    parser.add_argument("--installer-lock", type=Path, default=HERE / "installer.txt", help="[%(default)s]")
    parser.add_argument("--wheel-cache", type=Path, default=None, help="where the installer's wheel is kept")
    parser.add_argument("--index-url", "-i")
    parser.add_argument("--extra-index-url", action="append")
    parser.add_argument("--find-links", "-f", action="append")
    parser.add_argument("--no-index", action="store_true")
    parser.add_argument("--cert", help="CA bundle for the index (default: pip's cert setting)")
    parser.add_argument("--link-mode", choices=("copy", "hardlink", "symlink", "clone"), help="uv's link mode")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    try:
        options = arguments(argv)
    except SystemExit as leaving:  # argparse: 2 on a usage error, 0 for --help
        return int(leaving.code or 0)
    started = time.monotonic()
    try:
        venv = options.venv.absolute()
        python = venv / "bin" / "python"
        if not python.exists():
            raise Failure(2, f"{venv} is not a virtualenv (no bin/python): create it first (python3.11 -m venv {venv})")
        pins = parse_lock(options.lock)
        parse_lock(options.installer_lock)
        where = sources(options, python)
        version = bootstrap(venv, options.installer_lock, options.wheel_cache or default_cache(), where)
        say(
            f"installing the {len(pins)} packages of {options.lock} with {INSTALLER} {version} from {where.described()}"
        )
        synchronize(venv, options.lock, options.installer_lock, where, options.link_mode)
    except Failure as failure:
        if failure.output.strip():
            print(redact(failure.output.rstrip()), file=sys.stderr)
        print(f"install_lock: {redact(failure.message)}", file=sys.stderr)
        return failure.code
    except OSError as error:
        print(f"install_lock: {error.filename or ''}: {error.strerror}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    say(f"done in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
