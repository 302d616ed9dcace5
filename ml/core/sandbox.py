"""Write-only-where-allowed sandbox for a command (the project's tests), with Linux Landlock.

A process restricted this way, and everything it starts, can still read and run anything the user can,
but can create, change, rename or delete files only beneath the directories it was given: a branch's
test code cannot plant a `.pth` in the agents' venv cache, edit `~/.ssh` or touch another workspace.
No root and no library: three system calls (landlock_create_ruleset, landlock_add_rule,
landlock_restrict_self) through ctypes, Linux >= 5.13 with Landlock enabled (`abi_version()` says).

    python -m mlci.core.sandbox --allow DIR [--allow DIR ...] -- COMMAND [ARG ...]

restricts itself, then execs COMMAND (the restriction survives exec and cannot be lifted).
"""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Sequence
from pathlib import Path

# System call numbers: the same on every architecture since Linux 5.13 (the unified syscall table).
CREATE_RULESET, ADD_RULE, RESTRICT_SELF = 444, 445, 446
CREATE_RULESET_VERSION = 1 << 0
RULE_PATH_BENEATH = 1
PR_SET_NO_NEW_PRIVS = 38

# Landlock's file-system rights (include/uapi/linux/landlock.h) that write: what the sandbox handles.
WRITE_FILE = 1 << 1
REMOVE_DIR = 1 << 4
REMOVE_FILE = 1 << 5
MAKE_CHAR = 1 << 6
MAKE_DIR = 1 << 7
MAKE_REG = 1 << 8
MAKE_SOCK = 1 << 9
MAKE_FIFO = 1 << 10
MAKE_BLOCK = 1 << 11
MAKE_SYM = 1 << 12
REFER = 1 << 13  # ABI 2: link or rename into another directory
TRUNCATE = 1 << 14  # ABI 3
# The rights a rule on a regular file (not a directory) may carry.
FILE_RIGHTS = WRITE_FILE | TRUNCATE


class SandboxError(OSError):
    """The kernel refused to set up the sandbox."""


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64)]


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def abi_version() -> int:
    """The kernel's Landlock ABI version, 0 when it has none (older than 5.13, disabled, or not Linux)."""
    if not sys.platform.startswith("linux"):
        return 0
    version = _libc().syscall(CREATE_RULESET, None, ctypes.c_size_t(0), ctypes.c_uint32(CREATE_RULESET_VERSION))
    return max(int(version), 0)


def handled_rights(abi: int) -> int:
    """Every write right this ABI knows: what the sandbox denies outside the allowed directories."""
    rights = WRITE_FILE | REMOVE_DIR | REMOVE_FILE | MAKE_CHAR | MAKE_DIR | MAKE_REG | MAKE_SOCK | MAKE_FIFO
    rights |= MAKE_BLOCK | MAKE_SYM
    if abi >= 2:
        rights |= REFER
    if abi >= 3:
        rights |= TRUNCATE
    return rights


def rule_rights(handled: int, is_dir: bool) -> int:
    """The rights an allowed path gets: all handled ones beneath a directory, the file ones on a file."""
    return handled if is_dir else handled & FILE_RIGHTS


def allowed_paths(paths: Sequence[str | os.PathLike[str]]) -> list[Path]:
    """The existing, resolved, distinct paths of PATHS (a missing one cannot be written to anyway)."""
    seen: list[Path] = []
    for raw in paths:
        path = Path(raw).resolve()
        if path.exists() and path not in seen:
            seen.append(path)
    return seen


def restrict_writes(paths: Sequence[str | os.PathLike[str]]) -> int:
    """Restricts this process and its future children to writing beneath PATHS; returns the ABI used.
    Raises SandboxError when the kernel has no Landlock or refuses a step."""
    abi = abi_version()
    if abi < 1:
        raise SandboxError("this kernel has no Landlock (Linux >= 5.13 with Landlock enabled is needed)")
    libc = _libc()
    handled = handled_rights(abi)
    attr = _RulesetAttr(handled)
    ruleset = libc.syscall(CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(ctypes.sizeof(attr)), ctypes.c_uint32(0))
    if ruleset < 0:
        raise SandboxError(ctypes.get_errno(), f"landlock_create_ruleset: {os.strerror(ctypes.get_errno())}")
    try:
        for path in allowed_paths(paths):
            fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
            try:
                rule = _PathBeneathAttr(rule_rights(handled, path.is_dir()), fd)
                if libc.syscall(
                    ADD_RULE, ruleset, ctypes.c_int(RULE_PATH_BENEATH), ctypes.byref(rule), ctypes.c_uint32(0)
                ):
                    raise SandboxError(
                        ctypes.get_errno(), f"landlock_add_rule {path}: {os.strerror(ctypes.get_errno())}"
                    )
            finally:
                os.close(fd)
        if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0):
            raise SandboxError(ctypes.get_errno(), f"prctl(PR_SET_NO_NEW_PRIVS): {os.strerror(ctypes.get_errno())}")
        if libc.syscall(RESTRICT_SELF, ruleset, ctypes.c_uint32(0)):
            raise SandboxError(ctypes.get_errno(), f"landlock_restrict_self: {os.strerror(ctypes.get_errno())}")
    finally:
        os.close(ruleset)
    return abi


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    allowed: list[str] = []
    while args and args[0] == "--allow" and len(args) > 1:
        allowed.append(args[1])
        args = args[2:]
    if not args or args[0] != "--" or len(args) < 2:
        print("usage: python -m mlci.core.sandbox --allow DIR [--allow DIR ...] -- COMMAND [ARG ...]", file=sys.stderr)
        return 2
    try:
        restrict_writes(allowed)
    except (SandboxError, OSError) as error:
        print(f"error: could not sandbox {args[1]}: {error}", file=sys.stderr)
        return 3
    try:
        os.execvp(args[1], args[1:])
    except OSError as error:
        print(f"error: cannot run {args[1]}: {error.strerror}", file=sys.stderr)
    return 127  # reached only when exec failed: it replaces this process


if __name__ == "__main__":
    sys.exit(main())
