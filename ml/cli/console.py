"""Output for ops reading build logs: a header (what, on what), key facts, tables, one result line.

Plain text when not on a terminal (Jenkins), so logs stay greppable; errors go to stderr. Nothing is
parsed as Rich markup: paths, names and messages come from users and may hold `[brackets]`, so
styles are applied to `Text` spans, never interpolated into markup strings.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from rich.console import Console
from rich.table import Column, Table
from rich.text import Text

from mlci.core.errors import MlciError

LOG_WIDTH = 1000

# On a terminal, its own width. In a build log (not a terminal) no cell is ever cut or wrapped, whatever
# COLUMNS says (pytest-xdist and some agents set 80): a version, path or alias must stay greppable whole.
_width = None if sys.stdout.isatty() else LOG_WIDTH
# markup=False by default: a caller passing a plain string prints it as written.
out = Console(highlight=False, soft_wrap=True, width=_width, emoji=False, markup=False)
err = Console(stderr=True, highlight=False, soft_wrap=True, width=_width, emoji=False, markup=False)


def header(command: str, doing: str) -> None:
    out.print(Text.assemble((f"mlci {command}", "bold"), f": {doing}"))


def bold(line: str) -> None:
    out.print(Text(line, style="bold"))


def facts(items: Mapping[str, Any]) -> None:
    width = max((len(k) for k in items), default=0)
    for key, value in items.items():
        out.print(f"  {key:<{width}}  {value}", markup=False)


def info(message: str) -> None:
    out.print(f"  {message}", markup=False)


def table(columns: Sequence[str], rows: Iterable[Sequence[Any]], title: str | None = None) -> Table:
    t = Table(
        *(Column(header=Text(str(c))) for c in columns),
        title=Text(title) if title else None,
        title_justify="left",
        box=None,
        pad_edge=False,
        header_style="bold",
    )
    for row in rows:
        t.add_row(*(Text("" if cell is None else str(cell)) for cell in row))
    out.print(t)
    return t


def result(ok: bool, message: str) -> None:
    word = "OK" if ok else "FAILED"
    style = "green" if ok else "red"
    out.print(Text.assemble((f"RESULT {word}", style), f": {message}"))


def error(failure: MlciError, command: str) -> None:
    err.print(Text.assemble((f"mlci {command}: error", "red"), f": {failure.message}"))
    for line in failure.details:
        err.print(f"  - {line}", markup=False)
    if failure.hint:
        err.print(f"  what to do: {failure.hint}", markup=False)


class _LogLines(logging.Handler):
    """mlci's own log records (the work's progress: logger `mlci.*`) as indented lines of the build log."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            info(record.getMessage())
        except Exception:  # noqa: BLE001 - logging must never break a command; the record is dropped
            self.handleError(record)


def route_logs() -> None:
    """Show the work's progress lines (INFO and above of logger `mlci`) the way `info` shows lines.

    The stage modules never print: they log, and the command decides where lines go. Idempotent."""
    logger = logging.getLogger("mlci")
    if not any(isinstance(h, _LogLines) for h in logger.handlers):
        logger.addHandler(_LogLines())
    logger.setLevel(logging.INFO)
    logger.propagate = False


def flush() -> None:
    sys.stdout.flush()
