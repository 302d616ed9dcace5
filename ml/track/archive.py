"""Every report of a build, on the MLflow run of the model version it built.

A version's run carries, under `reports/<stage>/`, the files the workspace holds only for one build:
`test/` (JUnit, coverage XML), `train/` (data validation report, data profile), `gate/` (report, table),
`package/` (bundle metadata, parity report), `build/` (build report with image digests) and `deploy/`
(one record per deploy). The same name is written again on a re-run (idempotent: the run shows the
latest), and each file is bounded in size (a runaway coverage file is skipped with a warning, not uploaded).

When archiving may fail the command (`required`), and why:
- required where the archive comes before anything irreversible or expensive: `mlci train` archives
  inside its run before registering the version (a failure leaves the run FAILED and no version, exit 3),
  `mlci gate` and `mlci package` archive right after their report, and re-running them is cheap and
  idempotent (exit 3 says the store is unreachable, the hint says run again);
- best effort after work that must not be undone for a missing copy of its report: `mlci build` (minutes
  of image builds) and `mlci deploy` (the router has switched). A failure there prints a warning naming
  the file and sets the run tag `mlci.archive.<stage>.<file>=failed` (when the store takes tags at all),
  so the run says which report is missing; the report itself stays in the workspace, archived by Jenkins.
"""

from __future__ import annotations

import contextlib
import logging
import re
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from mlci.core.config import Config
from mlci.core.errors import MlciError, Unreachable

log = logging.getLogger(__name__)

ROOT = "reports"
# Reports are kilobytes; coverage XML of a big project a few MB. Anything larger is not a report.
MAX_BYTES = 16 * 1024 * 1024
FAILED = "failed"
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


@dataclass
class Archived:
    """What one call put on the run (artifact paths) and what it could not (name: why)."""

    run_id: str
    stored: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


def safe_name(name: str) -> str:
    """A file name MLflow accepts as an artifact and a tag key (timestamps carry ':' and '+')."""
    return _UNSAFE.sub("-", name).strip("-.") or "report"


def tag_key(stage: str, name: str) -> str:
    return f"mlci.archive.{safe_name(stage)}.{safe_name(name)}"


def run_of(client, model_name: str, version: str) -> str:
    """The run that trained a version: where that version's reports belong."""
    return client.get_model_version(model_name, version).run_id


def _stage_copy(folder: Path, name: str, source: Path | bytes) -> Path:
    """A private copy under the artifact's name: what is uploaded cannot change while it uploads."""
    target = folder / name
    if isinstance(source, bytes):
        target.write_bytes(source)
    else:
        shutil.copyfile(source, target)
    return target


def _size(source: Path | bytes) -> int:
    return len(source) if isinstance(source, bytes) else source.stat().st_size


def attach(client, run_id: str, stage: str, files: Mapping[str, Path | bytes], *, required: bool) -> Archived:
    """Put each file (or bytes) on the run as reports/<stage>/<name>; see the module doc for `required`."""
    from mlflow.exceptions import MlflowException

    done = Archived(run_id)
    folder_name = f"{ROOT}/{safe_name(stage)}"
    with tempfile.TemporaryDirectory(prefix="mlci-archive-") as tmp:
        for raw_name, source in files.items():
            name = safe_name(raw_name)
            try:
                if _size(source) > MAX_BYTES:
                    done.failed.append(f"{name}: larger than {MAX_BYTES // (1024 * 1024)} MB, not archived")
                    continue
                client.log_artifact(run_id, str(_stage_copy(Path(tmp), name, source)), folder_name)
            except (MlflowException, OSError) as error:  # requests' errors are OSErrors too
                why = (str(error).strip().splitlines() or [type(error).__name__])[0][:300]
                if required:
                    raise Unreachable(
                        f"could not archive {folder_name}/{name} to MLflow run {run_id}: {why}",
                        hint="check that the MLflow tracking server and its artifact store answer, then run "
                        "the command again (it is safe to repeat)",
                    ) from None
                done.failed.append(f"{name}: {why}")
                continue
            done.stored.append(f"{folder_name}/{name}")
    _mark(client, done, stage)
    return done


def _mark(client, done: Archived, stage: str) -> None:
    """Warn about each file not archived and tag the run with it (best effort: the store may be down)."""
    for failure in done.failed:
        name = failure.split(":", 1)[0]
        log.warning(f"warning: {ROOT}/{stage}/{name} is not on MLflow run {done.run_id}: {failure.split(':', 1)[1]}")
        # The tag only repeats the warning above, and the store may be what failed: never an error itself.
        with contextlib.suppress(Exception):
            client.set_tag(done.run_id, tag_key(stage, name), FAILED)


def to_version(
    config: Config, version: str, stage: str, files: Mapping[str, Path | bytes], *, required: bool, client=None
) -> Archived | None:
    """attach() to the run of `version` of the configured model, connecting when no client is given.
    Best effort (not required): any failure, connecting included, is a warning and None."""
    from mlci.track import tracking

    try:
        client = client or tracking.connect(config)
        return attach(client, run_of(client, config.model_name, version), stage, files, required=required)
    except MlciError as error:
        if required:
            raise
        log.warning(f"warning: the {stage} reports are not archived to MLflow (v{version}): {error.message}")
    except Exception as error:  # best effort after the real work: never undo it for a copy of a report
        if required:
            raise
        log.warning(f"warning: the {stage} reports are not archived to MLflow (v{version}): {error}")
    return None


def test_outputs(config: Config, commit: str, build_url: str | None) -> dict[str, Path]:
    """The Test stage's JUnit and coverage XML, for the run `mlci train` creates: only when
    reports/test.json says this checkout's commit and this Jenkins build (none, on a laptop) ran them,
    so a stale file from another commit or build never lands on this version's run."""
    from mlci.core import reports

    try:
        report = reports.read(config, "test")
    except (OSError, ValueError):
        return {}
    if commit == "unknown":  # no git: nothing tells this run's tests from another checkout's
        return {}
    if not isinstance(report, dict) or report.get("commit") != commit or report.get("build_url") != build_url:
        return {}
    found: dict[str, Path] = {}
    for key in ("junit", "coverage"):
        name = Path(str(report.get(key) or "")).name
        path = config.reports_dir / name
        if name.endswith(".xml") and path.is_file():  # only the files mlci test writes, under reports/
            found[name] = path
    return found


def deploy_record(config: Config, record: Mapping[str, object]) -> Archived | None:
    """One deploy's record (as appended to the environment's history) on its version's run, best effort:
    the deploy has happened, a missing copy of its record must not fail it."""
    import json

    version = record.get("model_version")
    if not version:  # `mlci down` and records of no version belong to no run
        return None
    name = f"{record.get('env')}-{record.get('kind')}-{record.get('deployed_at')}.json"
    content = json.dumps(record, indent=2, sort_keys=True, default=str).encode()
    return to_version(config, str(version), "deploy", {name: content}, required=False)
