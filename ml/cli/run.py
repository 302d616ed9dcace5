"""What every command shares: loading the config, and turning a failure into a message and an exit code.

A command parses its arguments (click), calls the work, and renders the typed result it gets back
(mlci.cli.console); `run_command` prints a failure a user can act on and exits with the code
mlci.core.exits gives it.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any

import click

from mlci.cli import console
from mlci.core import config as config_module
from mlci.core import exits
from mlci.core.errors import CheckFailed


def run_command(name: str) -> Callable:
    """Decorate a command: a failure a user can act on prints a message (no traceback) and exits with
    the code mlci.core.exits gives it; anything else is a bug and keeps its traceback."""

    def decorate(function: Callable) -> Callable:
        @functools.wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return function(*args, **kwargs)
            except Exception as error:
                mapped = exits.classify(error)
                if mapped is None:
                    raise
                code, failure = mapped
                if isinstance(failure, CheckFailed):  # a verdict: the command's result line says so
                    console.result(False, failure.message)
                console.error(failure, name)
                sys.exit(code)
            finally:
                _close_engines()

        return wrapper

    return decorate


def _close_engines() -> None:
    """The command's connections to Docker engines (one SSH connection per remote host) end with it: the
    next command, in this process too, connects afresh. Imported by the commands that talk to an engine
    only (`mlci --help` loads no Docker client)."""
    engines = sys.modules.get("mlci.ship.docker")
    if engines is not None:
        engines.close_clients()


def load_config(ctx: click.Context) -> config_module.Config:
    return config_module.load(ctx.obj["config_path"])


def metric(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"
