"""Error types a user can cause; each class carries its exit code (mlci.core.exits maps any other
exception onto them).

Exit codes (the contract Jenkins steps rely on): 0 success; 1 a check said no; 2 bad input or
config; 3 an unreachable dependency (MLflow, Docker engine).
"""

from __future__ import annotations

from collections.abc import Iterable

OK = 0
CHECK_FAILED = 1
BAD_INPUT = 2
UNREACHABLE = 3


class MlciError(Exception):
    """A failure with a message for a human: what failed, the details, and what to do."""

    exit_code = BAD_INPUT

    def __init__(self, message: str, *, details: Iterable[str] = (), hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.details = list(details)
        self.hint = hint


class CheckFailed(MlciError):
    """A check said no: the gate, a smoke test, a verification after a switch."""

    exit_code = CHECK_FAILED


class BadInput(MlciError):
    exit_code = BAD_INPUT


class ConfigError(BadInput):
    pass


class DataError(BadInput):
    pass


class Unreachable(MlciError):
    """A dependency did not answer: the MLflow tracking server, the Docker engine."""

    exit_code = UNREACHABLE
