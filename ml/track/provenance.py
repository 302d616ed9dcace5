"""Who trained what, from which commit, on which build: the facts every run and version carries."""

from __future__ import annotations

import hashlib
import platform
import subprocess
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path

from mlci.core import env

LOCK_FILE = Path("requirements") / "dev.txt"
UNKNOWN = "unknown"


@dataclass(frozen=True)
class Provenance:
    commit: str
    branch: str
    dirty: bool | None
    author: str
    job_name: str | None
    build_number: str | None
    build_url: str | None
    mlci_version: str
    python_version: str
    sklearn_version: str
    lock_sha256: str
    # A Jenkins pull-request build: its number (CHANGE_ID) and the branch it comes from (CHANGE_BRANCH).
    pull_request: str | None = None
    change_branch: str | None = None

    @property
    def branch_known(self) -> bool:
        return self.branch != UNKNOWN

    @property
    def short_commit(self) -> str:
        return self.commit[:8] if self.commit != UNKNOWN else "nocommit"

    def as_dict(self) -> dict[str, object]:
        return asdict(self)

    def tags(self) -> dict[str, str]:
        """As MLflow tags (strings only; unset Jenkins facts left out)."""
        tags = {
            "mlflow.source.git.commit": self.commit,
            "mlci.commit": self.commit,
            "mlci.branch": self.branch,
            "mlci.dirty": UNKNOWN if self.dirty is None else str(self.dirty).lower(),
            "mlci.author": self.author,
            "mlflow.user": self.author,
            "mlci.version": self.mlci_version,
            "mlci.python_version": self.python_version,
            "mlci.sklearn_version": self.sklearn_version,
            "mlci.lock_sha256": self.lock_sha256,
        }
        for key in ("job_name", "build_number", "build_url"):
            if value := getattr(self, key):
                tags[f"jenkins.{key}"] = value
        for key in ("pull_request", "change_branch"):
            if value := getattr(self, key):
                tags[f"mlci.{key}"] = value
        return tags


def _git(root: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


# The Git plugin's GIT_BRANCH names the remote-tracking branch (origin/main): the branch is main.
REMOTE_PREFIXES = ("refs/remotes/origin/", "refs/heads/", "origin/")


def _branch(root: Path) -> str:
    # Jenkins checks out a detached HEAD; its multibranch jobs name the branch in the environment.
    ci = env.ci()
    if value := ci.branch_name:
        return value
    if value := ci.git_branch:
        for prefix in REMOTE_PREFIXES:
            if value.startswith(prefix):
                return value[len(prefix) :]
        return value
    name = _git(root, "rev-parse", "--abbrev-ref", "HEAD")
    return name if name and name != "HEAD" else UNKNOWN


def _author(root: Path) -> str:
    ci = env.ci()
    if user := ci.build_user_id:
        return user
    return _git(root, "log", "-1", "--format=%an <%ae>") or _git(root, "config", "user.name") or ci.user or UNKNOWN


def lock_sha256(root: Path) -> str:
    """The Python environment that trained: the project's lock when it has one (this repository), else
    the installed distributions themselves (a team's repository, where mlci came as a wheel on the
    library's lock and the checkout holds no lock) — never "unknown" for a run that did train."""
    lock = root / LOCK_FILE
    if lock.is_file():
        return hashlib.sha256(lock.read_bytes()).hexdigest()
    return environment_sha256()


def environment_sha256() -> str:
    pins = sorted({f"{(d.metadata['Name'] or '').lower()}=={d.version}" for d in metadata.distributions()})
    return hashlib.sha256("\n".join(pins).encode()).hexdigest()


def package_version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return UNKNOWN


def collect_ci() -> dict[str, str | None]:
    """The Jenkins build acting now (unset outside Jenkins)."""
    ci = env.ci()
    return {"build_url": ci.build_url, "build_number": ci.build_number, "job_name": ci.job_name}


def collect(root: Path) -> Provenance:
    commit = _git(root, "rev-parse", "HEAD") or UNKNOWN
    status = _git(root, "status", "--porcelain", "--untracked-files=no")
    ci = env.ci()
    return Provenance(
        commit=commit,
        branch=_branch(root),
        dirty=None if status is None else bool(status),
        author=_author(root),
        job_name=ci.job_name,
        build_number=ci.build_number,
        build_url=ci.build_url,
        mlci_version=package_version("mlci"),
        python_version=platform.python_version(),
        sklearn_version=package_version("scikit-learn"),
        lock_sha256=lock_sha256(root),
        pull_request=ci.change_id,
        change_branch=ci.change_branch,
    )
