"""`reports/*.json`: what each command did, for Jenkins to archive and for machines to read."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from ml import registry
from ml.config import Config
from ml.errors import BadInput


def _default(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def render(payload: dict[str, Any]) -> str:
    """A report's text: what write() puts in reports/<name>.json (and ml.archive on the run, byte for byte)."""
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


def trained_version(config: Config) -> str | None:
    """The model version this workspace's last `mlci train` registered (reports/train.json), if any.

    A report of another model or of another tracking store names a version that means something else
    there: refused, rather than gating or shipping whatever holds that number."""
    shown = config.reports_dir / "train.json"
    try:
        report = read(config, "train")
    except (OSError, ValueError) as error:
        raise BadInput(
            f"cannot read {shown}: {error}", hint="pass --version N or --alias NAME, or run mlci train again"
        ) from None
    if report is None:
        return None
    version = str(report.get("version", "")) if isinstance(report, dict) else ""
    if not version.isdigit():
        raise BadInput(f"{shown} names no model version", hint="run mlci train again, or pass --version N")
    if report.get("model_name") != config.model_name:
        raise BadInput(
            f"{shown} is of model {report.get('model_name')!r}, not {config.model_name!r} (mlci.yaml)",
            hint="run mlci train with this mlci.yaml, or pass --version N or --alias NAME",
        )
    store = registry.redact(config.tracking_uri)
    if report.get("tracking_uri") not in (None, store):
        raise BadInput(
            f"{shown} records version {version} of another tracking store ({report['tracking_uri']}, not {store})",
            hint="run mlci train against this store, or pass --version N or --alias NAME",
        )
    return version


def build_version(config: Config, version: str | None = None, alias: str | None = None) -> registry.Selection:
    """The version a command of this build works on: the one given, the alias named, or the one this
    workspace trained (never an alias nobody named: another build may move it meanwhile)."""
    trained = None if version or alias else trained_version(config)
    return registry.select(version, alias, trained)
