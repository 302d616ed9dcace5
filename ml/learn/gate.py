"""`mlci gate`: may the candidate go further? The candidate is the version this build trained
(reports/train.json) unless a version or alias is named. Candidate and production are scored on the
same held-out rows; the candidate must reach the absolute floor of the primary metric, regress no more
than the tolerance against production, and meet the secondary thresholds."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from mlci.contract import mlflow_reads
from mlci.core import reports
from mlci.core.config import Config
from mlci.core.errors import BadInput
from mlci.learn import data, evaluate
from mlci.track import archive, model_loading, registry, tracking
from mlci.track.selection import build_version

COLUMNS = ("check", "candidate", "production", "required", "result")


@dataclass(frozen=True)
class Check:
    name: str
    candidate: float
    production: float | None
    required: str
    passed: bool

    def row(self) -> list[str]:
        production = "-" if self.production is None else f"{self.production:.4f}"
        return [self.name, f"{self.candidate:.4f}", production, self.required, "pass" if self.passed else "FAIL"]


@dataclass
class GateResult:
    passed: bool
    model_name: str
    primary_metric: str
    candidate: dict[str, object]
    production: dict[str, object] | None
    checks: list[Check]
    reasons: list[str] = field(default_factory=list)
    rows_scored: int = 0

    @property
    def table(self) -> str:
        candidate = f"candidate v{self.candidate['version']}"
        production = f"production v{self.production['version']}" if self.production else "production (none)"
        return reports.plain_table([COLUMNS[0], candidate, production, *COLUMNS[3:]], [c.row() for c in self.checks])

    def report(self) -> dict[str, object]:
        payload = asdict(self)
        payload["checks"] = [asdict(c) for c in self.checks]
        payload["table"] = self.table
        return payload


def _at_least(value: float, bound: float) -> bool:
    return math.isfinite(value) and value >= bound


def _at_most(value: float, bound: float) -> bool:
    return math.isfinite(value) and value <= bound


def decide(config: Config, candidate: dict[str, float], production: dict[str, float] | None) -> list[Check]:
    """The checks, in the order a human reads them: floor, regression, secondary thresholds."""
    primary = config.metrics.primary
    higher = config.metrics.higher_is_better
    gate = config.gate
    value = candidate[primary]
    prod_value = production[primary] if production else None
    checks = [
        Check(
            name=f"{primary} {'floor' if higher else 'ceiling'}",
            candidate=value,
            production=prod_value,
            required=f"{'>=' if higher else '<='} {gate.threshold:g}",
            passed=_at_least(value, gate.threshold) if higher else _at_most(value, gate.threshold),
        )
    ]
    if prod_value is not None:
        bound = prod_value - gate.max_regression if higher else prod_value + gate.max_regression
        checks.append(
            Check(
                name=f"{primary} vs production",
                candidate=value,
                production=prod_value,
                required=f"{'>=' if higher else '<='} {bound:.4f} (tolerance {gate.max_regression:g})",
                passed=_at_least(value, bound) if higher else _at_most(value, bound),
            )
        )
    for metric, threshold in gate.secondary.items():
        secondary = candidate[metric]
        other = production[metric] if production else None
        if threshold.min is not None:
            checks.append(
                Check(f"{metric} min", secondary, other, f">= {threshold.min:g}", _at_least(secondary, threshold.min))
            )
        if threshold.max is not None:
            checks.append(
                Check(f"{metric} max", secondary, other, f"<= {threshold.max:g}", _at_most(secondary, threshold.max))
            )
    return checks


def trained_schema(model) -> dict[str, str] | None:
    """{feature: numeric|categorical} a pipeline built by mlci.learn.model was fitted on (None if unknown)."""
    preprocess = getattr(model, "named_steps", {}).get("preprocess")
    transformers = getattr(preprocess, "transformers_", None)
    if transformers is None:
        return None
    return {
        str(column): kind
        for kind, _, columns in transformers
        if kind in ("numeric", "categorical")
        for column in columns
    }


def schema_changes(config: Config, trained: dict[str, str]) -> list[str]:
    """How mlci.yaml's features differ from those a version was trained on, as `added: …` lines."""
    wanted = {name: feature.type for name, feature in config.data.features.items()}
    changes = {
        "added": [n for n in wanted if n not in trained],
        "removed": [n for n in trained if n not in wanted],
        "retyped": [f"{n} ({trained[n]} -> {t})" for n, t in wanted.items() if n in trained and trained[n] != t],
    }
    return [f"{kind}: {', '.join(names)}" for kind, names in changes.items() if names]


def _require_same_schema(config: Config, model, role: str, version: str, candidate: str) -> None:
    # Both versions are scored on the rows and features mlci.yaml describes today; a version trained
    # on other features cannot be scored on them, so there is no fair comparison to make.
    trained = trained_schema(model)
    changes = [] if trained is None else schema_changes(config, trained)
    if not changes:
        return
    if role == "production":
        hint = (
            f"the gate compares versions on one feature set. If the change is intended, review candidate "
            f"v{candidate} (mlci status) and promote it explicitly: mlci promote {candidate} --to production; "
            "later candidates are then gated against it"
        )
    else:
        hint = "gate the version trained with this mlci.yaml (run mlci train), or use the mlci.yaml it was trained with"
    raise BadInput(
        f"{role} v{version} was trained on other features than mlci.yaml lists: "
        "the gate cannot score it on the same data",
        details=[f"mlci.yaml {line}" for line in changes],
        hint=hint,
    )


def _load_version(config: Config, version: str):
    # Never mlflow.sklearn.load_model: it lets the version's own MLmodel choose pickle (code) on this agent.
    return model_loading.load_version(config.model_name, version)


# mlci.gate.against when no version held @production: the version was judged against the floor only.
NO_PRODUCTION = registry.NO_PRODUCTION


def gate(config: Config, version: str | None = None, alias: str | None = None) -> GateResult:
    """Judge the version given, the alias named, or (neither) the version this workspace trained."""
    selection = build_version(config, version, alias)
    dataset = data.load(config)
    split = evaluate.holdout(dataset, config)
    client = tracking.connect(config)
    candidate = registry.resolve(client, config.model_name, version=selection.version, alias=selection.alias)
    production_version = mlflow_reads.alias_map(client, config.model_name).get(registry.PRODUCTION)

    candidate_model = _load_version(config, candidate.version)
    _require_same_schema(config, candidate_model, "candidate", candidate.version, candidate.version)
    production_model = None
    if production_version is not None and production_version != candidate.version:
        production_model = _load_version(config, production_version)
        _require_same_schema(config, production_model, "production", production_version, candidate.version)

    candidate_metrics = evaluate.score(candidate_model, split.x_test, split.y_test, config)
    production_metrics = None
    if production_version is not None:
        production_metrics = (
            candidate_metrics
            if production_model is None
            else evaluate.score(production_model, split.x_test, split.y_test, config)
        )
    checks = decide(config, candidate_metrics, production_metrics)
    passed = all(c.passed for c in checks)
    reasons = [f"{c.name}: {c.candidate:.4f} is not {c.required}" for c in checks if not c.passed]
    result = GateResult(
        passed=passed,
        model_name=config.model_name,
        primary_metric=config.metrics.primary,
        candidate={"version": candidate.version, "run_id": candidate.run_id, "metrics": candidate_metrics},
        production=None
        if production_metrics is None
        else {"version": production_version, "metrics": production_metrics},
        checks=checks,
        reasons=reasons,
        rows_scored=len(split.y_test),
    )
    _record(client, config.model_name, candidate.version, passed, production_version)
    written = reports.write(config, "gate", result.report())
    # Required (exit 3 when the store fails): a gate is cheap to repeat; see ml/track/archive.py.
    table = result.table.encode()
    archive.attach(client, candidate.run_id, "gate", {"gate.json": written, "gate-table.txt": table}, required=True)
    return result


def _record(client, name: str, version: str, passed: bool, production: str | None) -> None:
    """The verdict on the version, with what it was judged against (always written: a later gate
    against no production must not leave an earlier run's production version behind)."""
    tags = {
        "mlci.gate.result": "passed" if passed else "failed",
        "mlci.gate.at": registry.now(),
        "mlci.gate.against": production if production is not None else NO_PRODUCTION,
    }
    for key, value in tags.items():
        client.set_model_version_tag(name, version, key, value)
