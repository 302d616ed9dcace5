"""Which model version a command of this build works on: the one named, the alias named, or the one this
workspace trained (reports/train.json), never an alias nobody named (another build may move it)."""

from __future__ import annotations

from dataclasses import dataclass

from mlci.contract.mlflow_reads import redact
from mlci.core import reports
from mlci.core.config import Config
from mlci.core.errors import BadInput


@dataclass(frozen=True)
class Selection:
    """Which version a command works on, and why: its header says so."""

    version: str | None
    alias: str | None
    trained_here: bool = False

    def describe(self) -> str:
        if self.alias is not None:
            return f"@{self.alias}"
        if self.trained_here:
            return f"version {self.version}, trained by this workspace (reports/train.json)"
        return f"version {self.version}"


def select(version: str | None, alias: str | None, trained: str | None) -> Selection:
    """The version given, else the alias named, else the version this workspace trained. Never an
    alias nobody named: another build may move it between this build's stages."""
    if version and alias:
        raise BadInput("give --version or --alias, not both")
    if version:
        return Selection(version=version, alias=None)
    if alias:
        return Selection(version=None, alias=alias)
    if trained:
        return Selection(version=trained, alias=None, trained_here=True)
    raise BadInput(
        "no model version to work on: this workspace trained none (no reports/train.json)",
        hint="pass --version N or --alias NAME (mlci status lists them), or run mlci train first",
    )


def trained_version(config: Config) -> str | None:
    """The model version this workspace's last `mlci train` registered (reports/train.json), if any.

    A report of another model or of another tracking store names a version that means something else
    there: refused, rather than gating or shipping whatever holds that number."""
    shown = config.reports_dir / "train.json"
    try:
        report = reports.read(config, "train")
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
    store = redact(config.tracking_uri)
    if report.get("tracking_uri") not in (None, store):
        raise BadInput(
            f"{shown} records version {version} of another tracking store ({report['tracking_uri']}, not {store})",
            hint="run mlci train against this store, or pass --version N or --alias NAME",
        )
    return version


def build_version(config: Config, version: str | None = None, alias: str | None = None) -> Selection:
    """The version a command of this build works on: the one given, the alias named, or the one this
    workspace trained (never an alias nobody named: another build may move it meanwhile)."""
    trained = None if version or alias else trained_version(config)
    return select(version, alias, trained)
