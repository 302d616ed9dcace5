"""The one place mlci reads its environment: every `MLCI_*` setting, declared once with its type, default
and bounds, and the CI facts mlci records (Jenkins' BUILD_URL, BRANCH_NAME, …).

A value that does not parse is an `EnvError` (exit 2) that names the variable and what it accepts.
Nothing else in mlci, mlci.api or mlci.dashboard reads `os.environ` for these (tests/unit/core/test_env.py
holds the code to that); MLflow's own variables (MLFLOW_*) and Docker's (DOCKER_HOST) are those
libraries' business and are read where they are used. `VARIABLES` lists every setting for the docs.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar

from mlci.core.errors import BadInput

T = TypeVar("T")
Environ = Mapping[str, str]
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class EnvError(BadInput):
    """An environment variable holds a value mlci cannot use (exit 2)."""

    def __init__(self, message: str):
        super().__init__(message, hint="fix that MLCI_* environment variable (mlci's settings: docs/settings.md)")


def _environ(environ: Environ | None) -> Environ:
    return os.environ if environ is None else environ


@dataclass(frozen=True)
class Var(Generic[T]):
    """One setting: its variable, default, parser (raw text -> value, EnvError when it does not fit) and
    what it is for. An unset or empty variable means the default."""

    name: str
    default: T
    parse: Callable[[str, str], T]
    doc: str

    def get(self, environ: Environ | None = None) -> T:
        raw = _environ(environ).get(self.name)
        if raw is None or raw.strip() == "":
            return self.default
        return self.parse(self.name, raw)

    def is_set(self, environ: Environ | None = None) -> bool:
        return bool((_environ(environ).get(self.name) or "").strip())


# ---- parsers: (name, raw) -> value


def text(name: str, raw: str) -> str:
    return raw.strip()


def integer(minimum: int = 1, maximum: int | None = None) -> Callable[[str, str], int]:
    def parse(name: str, raw: str) -> int:
        try:
            value = int(raw)
        except ValueError:
            raise EnvError(f"{name} must be an integer, got {raw[:40]!r}") from None
        if value < minimum:
            raise EnvError(f"{name} must be >= {minimum}, got {value}")
        if maximum is not None and value > maximum:
            raise EnvError(f"{name} must be <= {maximum}, got {value}")
        return value

    return parse


def number(low: float = 0, high: float = 1000) -> Callable[[str, str], float]:
    def parse(name: str, raw: str) -> float:
        try:
            value = float(raw)
        except ValueError:
            raise EnvError(f"{name} must be a number, got {raw[:40]!r}") from None
        if not low <= value <= high:  # also refuses nan
            raise EnvError(f"{name} must be between {low:g} and {high:g}, got {value}")
        return value

    return parse


def log_level(name: str, raw: str) -> str:
    level = raw.strip().upper()
    if level not in LOG_LEVELS:
        raise EnvError(f"{name} must be one of {', '.join(LOG_LEVELS)}, got {raw[:40]!r}")
    return level


def choice(*allowed: str) -> Callable[[str, str], str]:
    def parse(name: str, raw: str) -> str:
        value = raw.strip().lower()
        if value not in allowed:
            raise EnvError(f"{name} must be one of {', '.join(allowed)}, got {raw[:40]!r}")
        return value

    return parse


def paths(name: str, raw: str) -> tuple[str, ...]:
    parts = tuple(part.strip() for part in raw.split(os.pathsep) if part.strip())
    if len(parts) > 32 or any(not os.path.isabs(part) for part in parts):
        raise EnvError(f"{name} must be up to 32 absolute paths separated by {os.pathsep!r}")
    return parts


def token(name: str, raw: str) -> str:
    if len(raw) < 16 or len(raw) > 256 or not raw.isascii() or not raw.isprintable() or " " in raw:
        raise EnvError(f"{name} must be 16 to 256 printable ASCII characters without spaces")
    return raw


def http_url(name: str, raw: str) -> str:
    value = raw.strip()
    if not value.startswith(("http://", "https://")):
        raise EnvError(f"{name} must be an http(s) URL, got {value[:80]!r}")
    return value.rstrip("/")


# ---- the command line tool (mlci)

CONFIG = Var("MLCI_CONFIG", "mlci.yaml", text, "the project config mlci reads (like --config)")
APPROVER: Var[str | None] = Var("MLCI_APPROVER", None, text, "who approved a production deploy (like --approver)")
REGISTRY: Var[str | None] = Var(
    "MLCI_REGISTRY", None, text, "image registry host[:port][/path] images are pushed to (over images.registry)"
)
REGISTRY_USERNAME: Var[str | None] = Var("MLCI_REGISTRY_USERNAME", None, text, "registry login (Jenkins binds it)")
REGISTRY_PASSWORD: Var[str | None] = Var("MLCI_REGISTRY_PASSWORD", None, text, "registry password or token")
BASE_IMAGE = Var("MLCI_BASE_IMAGE", "python:3.11-slim-bookworm", text, "base image of the API and dashboard images")
ROUTER_BASE_IMAGE = Var("MLCI_ROUTER_BASE_IMAGE", "nginx:1.26-bookworm", text, "base image of the router image")
ROUTER_IMAGE: Var[str | None] = Var("MLCI_ROUTER_IMAGE", None, text, "a router image to deploy instead of building one")
TEST_SANDBOX = Var(
    "MLCI_TEST_SANDBOX",
    "off",
    choice("off", "auto", "required"),
    "mlci test: let the tests write only beneath the project, the temp dir and MLCI_TEST_WRITABLE (Linux "
    "Landlock); auto: when the kernel has it; required: refuse to run the tests without it (mlciTest: auto)",
)
TEST_WRITABLE: Var[tuple[str, ...]] = Var(
    "MLCI_TEST_WRITABLE", (), paths, "more directories sandboxed tests may write to (absolute, ':'-separated)"
)
PIP_INDEX_URL: Var[str | None] = Var(
    "PIP_INDEX_URL", None, text, "a package mirror image builds install from (else a host wheelhouse)"
)

# ---- the prediction API (mlci serve, the API image)

BUNDLE = Var("MLCI_BUNDLE", "/app/bundle", text, "the model bundle directory the API serves")
BUNDLE_SHA256: Var[str | None] = Var(
    "MLCI_BUNDLE_SHA256", None, text, "the bundle digest recorded by mlci package: a bundle that differs is refused"
)
HOST = Var("MLCI_HOST", "0.0.0.0", text, "address the API listens on (the image's entry point)")
PORT = Var("MLCI_PORT", 8000, integer(1, 65535), "port the API listens on")
UDS: Var[str | None] = Var("MLCI_UDS", None, text, "a unix socket to listen on instead (a blue/green slot)")
WORKERS = Var("MLCI_WORKERS", 1, integer(1, 64), "API worker processes")
COLOUR = Var("MLCI_COLOUR", "none", text, "the blue/green slot the API runs in")
ENV = Var("MLCI_ENV", "local", text, "the environment the API (or dashboard) runs in: staging, production, local")
MAX_BATCH = Var("MLCI_MAX_BATCH", 1000, integer(1), "records per /predict request")
MAX_BODY_BYTES = Var("MLCI_MAX_BODY_BYTES", 1 << 20, integer(64), "request body limit, bytes")
BATCH_WAIT_MS = Var("MLCI_BATCH_WAIT_MS", 0.0, number(0, 1000), "extra wait for a micro-batch's company (ms)")
BATCH_MAX_ROWS = Var("MLCI_BATCH_MAX_ROWS", 64, integer(1), "micro-batch size bound (rows)")
LOG_LEVEL = Var("MLCI_LOG_LEVEL", "INFO", log_level, "the API's log level")
KEEPALIVE_TIMEOUT = Var("MLCI_KEEPALIVE_TIMEOUT", 30.0, number(0.1, 3600), "idle keep-alive connection (s)")
HEADER_TIMEOUT = Var("MLCI_HEADER_TIMEOUT", 10.0, number(0.1, 3600), "from connection to complete headers (s)")
BODY_TIMEOUT = Var("MLCI_BODY_TIMEOUT", 30.0, number(0.1, 3600), "from complete headers to complete body (s)")
SHADOW_TOKEN: Var[str | None] = Var(
    "MLCI_SHADOW_TOKEN", None, token, "bearer token of GET /shadow/answers (mlci deploy gives each slot one)"
)

# ---- the dashboard

API_URL: Var[str | None] = Var("MLCI_API_URL", None, http_url, "the prediction API the dashboard uses")
DASHBOARD_HOST = Var("MLCI_DASHBOARD_HOST", "0.0.0.0", text, "address the dashboard listens on (its image)")
DASHBOARD_PORT = Var("MLCI_DASHBOARD_PORT", 8501, integer(1, 65535), "port the dashboard listens on")
DASHBOARD_REFRESH = Var("MLCI_DASHBOARD_REFRESH", 3.0, number(0, 3600), "seconds between live-model checks (>= 0.5)")
MODEL_NAME: Var[str | None] = Var("MLCI_MODEL_NAME", None, text, "registered model the Models page shows")

VARIABLES: tuple[Var, ...] = tuple(value for value in list(globals().values()) if isinstance(value, Var))

# ---- per environment: MLCI_<ENV>_PORT, MLCI_<ENV>_DOCKER_HOST, MLCI_<ENV>_DASHBOARD_TRACKING_URI

ENVIRONMENT_KEYS = ("PORT", "DOCKER_HOST", "DASHBOARD_TRACKING_URI")


def environment_variable(env_name: str, key: str) -> str:
    """MLCI_<ENV>_<KEY> for an environment of mlci.yaml (staging -> MLCI_STAGING_PORT)."""
    if key not in ENVIRONMENT_KEYS:
        raise ValueError(f"no per-environment setting {key}")
    return f"MLCI_{re.sub(r'[^A-Z0-9]', '_', env_name.upper())}_{key}"


def environment_setting(env_name: str, key: str, environ: Environ | None = None) -> str | None:
    """The operator's override of one environment setting (text, checked where it is used), or None."""
    raw = _environ(environ).get(environment_variable(env_name, key))
    return raw.strip() if raw and raw.strip() else None


def role_image(role: str, environ: Environ | None = None) -> str | None:
    """MLCI_<ROLE>_IMAGE: an image to deploy for a role (api, dashboard, router) instead of the built one."""
    raw = _environ(environ).get(f"MLCI_{role.upper()}_IMAGE")
    return raw.strip() if raw and raw.strip() else None


# ---- the CI facts mlci records (set by Jenkins; empty on a laptop)


@dataclass(frozen=True)
class CI:
    """What the CI system says about the build running mlci (Jenkins' variables; all None on a laptop)."""

    jenkins_url: str | None
    build_url: str | None
    build_number: str | None
    job_name: str | None
    node_name: str | None
    branch_name: str | None  # a multibranch job's branch (or PR-N)
    git_branch: str | None  # the git plugin's branch (origin/main)
    change_id: str | None  # a pull request's number
    change_branch: str | None  # a pull request's source branch
    build_user_id: str | None  # who started the build (Build User Vars plugin)
    git_url: str | None  # the repository being built (git plugin)
    user: str | None  # the OS user

    @property
    def under_jenkins(self) -> bool:
        return bool(self.jenkins_url)


def ci(environ: Environ | None = None) -> CI:
    values = _environ(environ)

    def get(name: str) -> str | None:
        raw = values.get(name)
        return raw.strip() if raw and raw.strip() else None

    return CI(
        jenkins_url=get("JENKINS_URL"),
        build_url=get("BUILD_URL"),
        build_number=get("BUILD_NUMBER"),
        job_name=get("JOB_NAME"),
        node_name=get("NODE_NAME"),
        branch_name=get("BRANCH_NAME"),
        git_branch=get("GIT_BRANCH"),
        change_id=get("CHANGE_ID"),
        change_branch=get("CHANGE_BRANCH"),
        build_user_id=get("BUILD_USER_ID"),
        git_url=get("GIT_URL"),
        user=get("USER"),
    )
