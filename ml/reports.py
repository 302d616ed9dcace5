"""`reports/*.json`: what each command did, for Jenkins to archive and for machines to read."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from ml.config import Config


def _default(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def write(config: Config, name: str, payload: dict[str, Any]) -> Path:
    """Write reports/<name>.json atomically: a reader never sees half a report."""
    folder = config.reports_dir
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.json"
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".json", dir=folder)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(payload, handle, indent=2, sort_keys=False, default=_default, allow_nan=False)
        handle.write("\n")
    os.replace(tmp, path)
    return path


def read(config: Config, name: str) -> dict[str, Any] | None:
    path = config.reports_dir / f"{name}.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
