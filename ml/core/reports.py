"""`reports/*.json`: what each command did, for Jenkins to archive and for machines to read."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from mlci.core.config import Config


def _default(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def render(payload: dict[str, Any]) -> str:
    """A report's text: what write() puts in reports/<name>.json (and mlci.track.archive on the run, byte for byte)."""
    return json.dumps(payload, indent=2, sort_keys=False, default=_default, allow_nan=False) + "\n"


def write(config: Config, name: str, payload: dict[str, Any]) -> Path:
    """Write reports/<name>.json atomically: a reader never sees half a report."""
    folder = config.reports_dir
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.json"
    text = render(payload)  # before the file: a payload that cannot be written leaves no temp file
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".json", dir=folder)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(tmp, path)
    return path


def read(config: Config, name: str) -> dict[str, Any] | None:
    path = config.reports_dir / f"{name}.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def plain_table(columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """The same table as text, for reports and Jenkins build descriptions."""
    rows = [["" if c is None else str(c) for c in row] for row in rows]
    widths = [max(len(str(h)), *(len(r[i]) for r in rows)) if rows else len(str(h)) for i, h in enumerate(columns)]
    lines = ["  ".join(str(h).ljust(w) for h, w in zip(columns, widths)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    return "\n".join(lines)
