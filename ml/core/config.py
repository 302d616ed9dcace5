"""The project config, `mlci.yaml`: one strict pydantic model, loaded in one place.

Unknown keys and wrong types are errors that name the key (pydantic's `extra="forbid"` and its
error locations). Environment variables override only what operators own: the tracking URI, the
Docker host and the port of each environment.
"""

from __future__ import annotations

import ipaddress
import math
import os
from collections.abc import Hashable
from pathlib import Path
from typing import Annotated, Any, Final, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

from mlci.core.env import CONFIG, environment_setting, environment_variable
from mlci.core.errors import ConfigError

DEFAULT_CONFIG = "mlci.yaml"
NAME_PATTERN = r"^[a-z0-9][a-z0-9-]{0,40}$"
MODULE_PATTERN = r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$"
# A config is a page of settings; anything bigger is a mistake or an attack on the parser.
MAX_CONFIG_BYTES = 256 * 1024
MAX_YAML_DEPTH = 64
# Values the document stands for once every alias is expanded: a config has a few hundred.
MAX_YAML_VALUES = 20_000
# Fields set by `load`, never by the file.
INTERNAL_FIELDS = ("root", "source")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Feature(Strict):
    type: Literal["numeric", "categorical"]
    min: float | None = None
    max: float | None = None
    categories: list[str] | None = None
    # None: follow `data.missing` (reject unless the policy is `impute`).
    nullable: bool | None = None

    @model_validator(mode="after")
    def _bounds_fit_type(self) -> Feature:
        if self.type == "categorical" and (self.min is not None or self.max is not None):
            raise ValueError("min/max apply to numeric features only")
        if self.type == "numeric" and self.categories is not None:
            raise ValueError("categories apply to categorical features only")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) is greater than max ({self.max})")
        return self


class Data(Strict):
    path: Path
    target: str
    features: dict[str, Feature] = Field(min_length=1)
    missing: Literal["reject", "impute"] = "reject"
    min_rows: int = Field(default=50, ge=2)
    delimiter: str = Field(default=",", min_length=1, max_length=1)
    # Largest data file read, in bytes: the whole file is parsed in memory as text.
    max_bytes: int = Field(default=512 * 1024 * 1024, ge=1)

    @field_validator("features", mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        # `mean_radius: numeric` is short for `mean_radius: {type: numeric}`.
        if isinstance(value, dict):
            return {k: {"type": v} if isinstance(v, str) else v for k, v in value.items()}
        return value

    @model_validator(mode="after")
    def _target_is_not_a_feature(self) -> Data:
        if self.target in self.features:
            raise ValueError(f"target {self.target!r} is also listed under features")
        return self

    def nullable(self, name: str) -> bool:
        declared = self.features[name].nullable
        return self.missing == "impute" if declared is None else declared


class Split(Strict):
    test_size: float = Field(default=0.2, gt=0, lt=1)
    seed: int = 42
    cv_folds: int = Field(default=5, ge=2, le=20)


class NumericPreprocessing(Strict):
    impute: Literal["mean", "median", "most_frequent", "constant"] = "median"
    scale: bool = True


class CategoricalPreprocessing(Strict):
    impute: Literal["most_frequent", "constant"] = "most_frequent"
    one_hot: bool = True


class Preprocessing(Strict):
    numeric: NumericPreprocessing = NumericPreprocessing()
    categorical: CategoricalPreprocessing = CategoricalPreprocessing()


class Model(Strict):
    name: str | None = Field(default=None, description="registered model name; default: project")
    # Packages `estimator` may come from: its module is imported (its top-level code runs) only if
    # it is one of these or inside one of them. Declared before `estimator`, which is checked against it.
    allowed_modules: list[Annotated[str, Field(pattern=MODULE_PATTERN)]] = Field(default=["sklearn"], min_length=1)
    estimator: str = Field(pattern=r"^[A-Za-z_][\w.]*\.[A-Za-z_]\w*$")
    params: dict[str, Any] = {}
    preprocessing: Preprocessing = Preprocessing()

    @field_validator("estimator")
    @classmethod
    def _estimator_is_allowed(cls, value: str, info: ValidationInfo) -> str:
        allowed = info.data.get("allowed_modules")
        module = value.rpartition(".")[0]
        if allowed is not None and not module_allowed(module, allowed):
            raise ValueError(
                f"module {module!r} is not in model.allowed_modules {allowed}; "
                "add its package there only if you trust its code (importing it runs it)"
            )
        return value


def module_allowed(module: str, allowed: list[str]) -> bool:
    """Whether `module` is one of the allowed packages or inside one (whole names: `sklearnx` is not `sklearn`)."""
    return any(module == prefix or module.startswith(prefix + ".") for prefix in allowed)


Task = Literal["classification", "regression"]
CLASSIFICATION: Final = "classification"
REGRESSION: Final = "regression"
CLASSIFICATION_METRICS = ("accuracy", "balanced_accuracy", "f1", "precision", "recall", "roc_auc", "log_loss")
# rmse, mae, median_ae and mape are errors (lower is better); r2 and explained_variance are shares of the
# target's variance explained (higher is better, 1 at best).
REGRESSION_METRICS = ("rmse", "mae", "median_ae", "mape", "r2", "explained_variance")
TASK_METRICS = {CLASSIFICATION: CLASSIFICATION_METRICS, REGRESSION: REGRESSION_METRICS}
DEFAULT_PRIMARY = {CLASSIFICATION: "roc_auc", REGRESSION: "rmse"}
LOWER_IS_BETTER = frozenset({"log_loss", "rmse", "mae", "median_ae", "mape"})
Metric = Literal[
    "accuracy",
    "balanced_accuracy",
    "f1",
    "precision",
    "recall",
    "roc_auc",
    "log_loss",
    "rmse",
    "mae",
    "median_ae",
    "mape",
    "r2",
    "explained_variance",
]


def lower_is_better(metric: str) -> bool:
    """Whether a smaller value of `metric` is the better one (the errors and log-loss)."""
    return metric in LOWER_IS_BETTER


class Metrics(Strict):
    # Unset: the task's usual one (roc_auc for classification, rmse for regression; Config fills it in).
    primary: Metric = "roc_auc"
    direction: Literal["maximize", "minimize"] | None = None
    # Binary problems: the class f1/precision/recall are about; default the last in sorted order.
    positive_label: str | None = None

    @property
    def higher_is_better(self) -> bool:
        if self.direction is not None:
            return self.direction == "maximize"
        return not lower_is_better(self.primary)


class Threshold(Strict):
    min: float | None = None
    max: float | None = None


class Gate(Strict):
    # The absolute floor (or ceiling, for a metric to minimize) of the primary metric.
    threshold: float
    max_regression: float = Field(default=0.0, ge=0)
    secondary: dict[Metric, Threshold] = {}


class Package(Strict):
    allow_sklearn_fallback: bool = False
    parity_tolerance: float = Field(default=1e-5, gt=0)
    reference_rows: int = Field(default=20, ge=1, le=1000)


class Tracking(Strict):
    uri: str | None = None
    experiment: str | None = None
    # The branch whose trainings move @candidate; every other branch moves its own candidate-<slug>.
    deploy_branch: str = Field(default="main", min_length=1, max_length=255)
    # Under Jenkins a store inside the workspace is wiped with it and seen by no other build: refused
    # unless this says the user means it.
    allow_local_store: bool = False


class Checks(Strict):
    # Seconds the new slot has to answer /ready before the deploy gives up.
    ready_timeout: float = Field(default=60, gt=0)
    # Largest difference allowed between a reference row's expected and served probabilities.
    smoke_tolerance: float = Field(default=1e-6, ge=0)
    # Seconds of error-free probes through the router after the switch (must outlast the drain).
    verify_seconds: float = Field(default=5, ge=0)


class Shadow(Strict):
    """Shadow traffic (docs/deploy.md): this environment's router mirrors a share of its live /predict
    requests to the live slot of `env` while a version there differs from ours. Answers are discarded."""

    # The environment whose live slot receives the mirrored requests (usually staging).
    env: Annotated[str, Field(pattern=NAME_PATTERN)]
    # Share of /predict requests mirrored, sampled on the router's request id.
    share: float = Field(ge=0.0001, le=1)  # nginx samples in steps of 0.01 %
    # Bound on each copy's trip to the shadow (connect, send, answer): a hanging shadow holds at most
    # this long one of the router's few in-flight copies, never a production connection (router.conf.j2).
    timeout_ms: int = Field(default=1000, ge=10, le=10000)
    # Regression only, and required there: the largest |candidate - production| difference of a prediction
    # that counts as agreeing, in the target's units (classifiers agree on the label).
    tolerance: float | None = Field(default=None, ge=0, allow_inf_nan=False)


def http_tracking_uri(value: str) -> str:
    """An http(s) URL with a host, nothing else: it goes as-is into a container's environment, and a
    file/sqlite store could not be read from the dashboard's image."""
    if len(value) > 2000 or any(c.isspace() or not c.isprintable() for c in value):
        raise ValueError("must be one http(s):// URL (no spaces or control characters, at most 2000 characters)")
    parsed = urlsplit(value)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ValueError(f"must be an http(s):// URL of an MLflow tracking server, got {_short(value)!r}")
    return value


class Environment(Strict):
    port: int = Field(ge=1, le=65535)
    # The router's preview listener, straight to the idle slot (default: port + 10000).
    preview_port: int | None = Field(default=None, ge=1, le=65535)
    # The dashboard container that follows this environment's router (none when unset).
    dashboard_port: int | None = Field(default=None, ge=1, le=65535)
    docker_host: str | None = None
    # The MLflow tracking server the dashboard container reads its Models page from (http(s) only:
    # the image has no database client). Unset: an http(s) MLFLOW_TRACKING_URI/tracking.uri, else none.
    dashboard_tracking_uri: str | None = Field(default=None, max_length=2000)
    # Where mlci reaches the published ports (the Docker host's address for a remote engine).
    address: str = "127.0.0.1"
    # What a version needs before it may be deployed here (ml/deploy/policy.py): `gate`, `approver`, or the
    # name of another environment where it must have been deployed and verified. None: the default
    # ([gate, staging, approver] for `production`, without staging when there is none; nothing elsewhere).
    requires: list[str] | None = None
    # uvicorn worker processes per slot.
    workers: int = Field(default=1, ge=1, le=16)
    # Seconds after a switch during which the previous colour may still answer (pooled connections).
    drain_seconds: float = Field(default=2, gt=0, le=60)
    checks: Checks = Checks()
    # Off unless set: see Shadow.
    shadow: Shadow | None = None

    @field_validator("address")
    @classmethod
    def _one_address(cls, value: str) -> str:
        # Docker publishes on an IP literal; 0.0.0.0 / :: would open the router (and its preview
        # listener, which reaches the slot under test) on every interface of the host.
        try:
            parsed = ipaddress.ip_address(value)
        except ValueError:
            raise ValueError(f"must be an IP address of the Docker host, got {value!r}") from None
        if parsed.is_unspecified:
            raise ValueError(f"{value} would publish on every interface: name the one address to serve on")
        return value

    @field_validator("dashboard_tracking_uri")
    @classmethod
    def _http_tracking(cls, value: str | None) -> str | None:
        return None if value is None else http_tracking_uri(value)

    @model_validator(mode="after")
    def _ports_differ(self) -> Environment:
        if self.port + 10000 > 65535 and self.preview_port is None:
            raise ValueError("port + 10000 is not a valid port: set preview_port")
        ports = [p for p in (self.port, self.preview_port, self.dashboard_port) if p is not None]
        if len(set(ports)) != len(ports):
            raise ValueError(f"port, preview_port and dashboard_port must differ (got {ports})")
        if self.checks.verify_seconds and self.checks.verify_seconds <= self.drain_seconds:
            raise ValueError("checks.verify_seconds must be longer than drain_seconds")
        return self

    @property
    def preview(self) -> int:
        return self.preview_port or self.port + 10000


class Tests(Strict):
    """What `mlci test` runs: the project's own pytest suite."""

    paths: list[str] = Field(default=["tests"], min_length=1)
    coverage: list[str] = []
    args: list[str] = []


class Images(Strict):
    # host[:port] of the image registry mlci build pushes to and remote deploys pull from (no scheme).
    registry: Annotated[str, Field(pattern=r"^[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[a-z0-9._/-]+)?$")] | None = None
    # Plain HTTP to the registry: only when said so (the engines need it in insecure-registries too).
    insecure: bool = False


class DriftFeature(Strict):
    psi_threshold: float = Field(gt=0, le=10)


class Drift(Strict):
    """Input drift: the API compares what it is asked with the training data, per feature (PSI)."""

    # PSI above this (per feature) counts as drift: 0.1 is a small shift, 0.2 the usual alarm, 0.25 a large one.
    psi_threshold: float = Field(default=0.2, gt=0, le=10)
    # Quantile bins of each numeric feature (open-ended first and last bins); ties may merge some.
    bins: int = Field(default=10, ge=2, le=50)
    # Categories kept per categorical feature, most frequent first; the rest count as "other".
    max_categories: int = Field(default=50, ge=1, le=200)
    # Records counted before a feature may be called drifted: PSI on a handful of requests is noise.
    min_records: int = Field(default=500, ge=1, le=1_000_000_000)
    # The figures cover the last this many minutes (a rolling window; up to a week): a shift moves them within
    # a window, instead of being diluted by everything answered since the API started.
    window_minutes: int = Field(default=60, ge=1, le=10080)
    features: dict[str, DriftFeature] = {}


class Monitoring(Strict):
    drift: Drift = Drift()


class Config(Strict):
    project: Annotated[str, Field(pattern=NAME_PATTERN)]
    # What the model predicts: a class (classification) or a number (regression). Every stage follows it:
    # metrics and the gate's direction, the estimator checked, the bundle, the API's answer, the dashboard.
    task: Task = CLASSIFICATION
    data: Data
    split: Split = Split()
    model: Model
    metrics: Metrics = Metrics()
    gate: Gate
    package: Package = Package()
    tracking: Tracking = Tracking()
    tests: Tests = Tests()
    images: Images = Images()
    monitoring: Monitoring = Monitoring()
    environments: dict[Annotated[str, Field(pattern=NAME_PATTERN)], Environment] = {}

    # Where the file was read from: relative paths in it are relative to this folder.
    root: Path = Field(default=Path("."), exclude=True)
    # The file itself (None when the config did not come from a file): the run logs it.
    source: Path | None = Field(default=None, exclude=True)

    @model_validator(mode="before")
    @classmethod
    def _primary_of_the_task(cls, raw: Any) -> Any:
        # metrics.primary defaults to the task's usual metric; filled in before validation, so the
        # frozen config always names one.
        if not isinstance(raw, dict):
            return raw
        task = raw.get("task", CLASSIFICATION)
        metrics = raw.get("metrics")
        unset = metrics is None or (isinstance(metrics, dict) and "primary" not in metrics)
        if task in DEFAULT_PRIMARY and unset:
            return {**raw, "metrics": {**(metrics or {}), "primary": DEFAULT_PRIMARY[task]}}
        return raw

    @model_validator(mode="after")
    def _metrics_fit_the_task(self) -> Config:
        known = TASK_METRICS[self.task]
        other = REGRESSION if self.task == CLASSIFICATION else CLASSIFICATION
        named = [("metrics.primary", self.metrics.primary)] + [
            (f"gate.secondary.{name}", name) for name in self.gate.secondary
        ]
        for where, metric in named:
            if metric not in known:
                raise ValueError(
                    f"{where}: {metric} is a {other} metric and task is {self.task} "
                    f"(metrics of {self.task}: {', '.join(known)})"
                )
        if self.task == REGRESSION and self.metrics.positive_label is not None:
            raise ValueError(
                "metrics.positive_label: a regression has no classes (remove it, or set task: classification)"
            )
        return self

    @model_validator(mode="after")
    def _environments_do_not_share_ports(self) -> Config:
        # Ports clash only on one host and address: environments on their own Docker hosts may share them.
        seen: dict[tuple[str | None, str, int], str] = {}
        for name, env in self.environments.items():
            for kind, number in (
                ("port", env.port),
                ("preview_port", env.preview),
                ("dashboard_port", env.dashboard_port),
            ):
                if number is None:
                    continue
                port = (env.docker_host, env.address, number)
                if port in seen:
                    raise ValueError(f"environments.{name}.{kind} {number} is already used by {seen[port]}")
                seen[port] = f"environments.{name}.{kind}"
        return self

    @model_validator(mode="after")
    def _requirements_are_known(self) -> Config:
        known = {"gate", "approver", *self.environments}
        for name, env in self.environments.items():
            for requirement in env.requires or []:
                if requirement not in known or requirement == name:
                    raise ValueError(
                        f"environments.{name}.requires: {requirement!r} is not gate, approver or another "
                        f"environment (known: {', '.join(sorted(known - {name}))})"
                    )
        return self

    @model_validator(mode="after")
    def _shadow_targets_are_known(self) -> Config:
        for name, env in self.environments.items():
            if env.shadow is None:
                continue
            target = self.environments.get(env.shadow.env)
            if target is None or env.shadow.env == name:
                others = ", ".join(sorted(set(self.environments) - {name})) or "none"
                raise ValueError(
                    f"environments.{name}.shadow.env: {env.shadow.env!r} is not another environment (known: {others})"
                )
            if target.docker_host != env.docker_host:
                # The router reaches the shadow over a Docker network: both must be on one engine.
                raise ValueError(
                    f"environments.{name}.shadow.env: {env.shadow.env} is on another Docker host "
                    f"({target.docker_host or 'local'} vs {env.docker_host or 'local'}): shadow needs one engine"
                )
        return self

    @model_validator(mode="after")
    def _shadow_fits_the_task(self) -> Config:
        for name, env in self.environments.items():
            if env.shadow is None:
                continue
            if self.task == REGRESSION and env.shadow.tolerance is None:
                raise ValueError(
                    f"environments.{name}.shadow.tolerance: required for a regression: the largest difference "
                    "between the candidate's and production's predictions that counts as agreeing, in the "
                    f"units of {self.data.target}"
                )
            if self.task == CLASSIFICATION and env.shadow.tolerance is not None:
                raise ValueError(
                    f"environments.{name}.shadow.tolerance: a classifier's answers agree on the label; "
                    "tolerance is for task: regression"
                )
        return self

    @model_validator(mode="after")
    def _drift_features_are_known(self) -> Config:
        unknown = sorted(set(self.monitoring.drift.features) - set(self.data.features))
        if unknown:
            raise ValueError(f"monitoring.drift.features: {', '.join(unknown)} is not a feature of data.features")
        return self

    def requirements(self, env_name: str) -> list[str]:
        """What a version needs before it is deployed to `env_name` (the policy's default when unset)."""
        declared = self.environments[env_name].requires if env_name in self.environments else None
        if declared is not None:
            return list(declared)
        if env_name == "production":
            return ["gate", "staging", "approver"] if "staging" in self.environments else ["gate", "approver"]
        return []

    @property
    def model_name(self) -> str:
        return self.model.name or self.project

    @property
    def data_path(self) -> Path:
        return self.data.path if self.data.path.is_absolute() else self.root / self.data.path

    @property
    def state_dir(self) -> Path:
        return self.root / ".mlci"

    @property
    def reports_dir(self) -> Path:
        return self.root / "reports"

    @property
    def tracking_uri(self) -> str:
        uri = os.environ.get("MLFLOW_TRACKING_URI") or self.tracking.uri
        if uri:
            return uri
        return f"sqlite:///{(self.state_dir / 'mlflow.db').resolve()}"

    @property
    def experiment_name(self) -> str:
        return self.tracking.experiment or self.project

    def environment(self, name: str) -> Environment:
        if name not in self.environments:
            known = ", ".join(sorted(self.environments)) or "none"
            raise ConfigError(f"environment {name!r} is not in mlci.yaml (known: {known})")
        env = self.environments[name]
        overrides: dict[str, Any] = {}
        if port := environment_setting(name, "PORT"):
            if not port.isdigit():
                raise ConfigError(f"{environment_variable(name, 'PORT')} must be a port number, got {port[:40]!r}")
            overrides["port"] = int(port)
        if host := environment_setting(name, "DOCKER_HOST"):
            overrides["docker_host"] = host
        if uri := environment_setting(name, "DASHBOARD_TRACKING_URI"):
            try:
                overrides["dashboard_tracking_uri"] = http_tracking_uri(uri)
            except ValueError as error:
                raise ConfigError(
                    f"{environment_variable(name, 'DASHBOARD_TRACKING_URI')} {error}",
                    hint="set it to the http(s) URL of an MLflow tracking server the dashboard container reaches, "
                    "or unset it",
                ) from None
        return env.model_copy(update=overrides) if overrides else env


def _location(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in loc) or "(top level)"


def _short(text: str, limit: int = 120) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


def describe_errors(error: ValidationError) -> list[str]:
    """One line per problem, each naming the key as a dotted path."""
    lines = []
    for item in error.errors():
        where = _location(item["loc"])
        if item["type"] == "extra_forbidden":
            lines.append(f"{where}: unknown key (check its spelling)")
        elif item["type"] == "missing":
            lines.append(f"{where}: required key is missing")
        elif not item["loc"] and item["type"] == "value_error":
            # A check across keys (the config's own validators): its message names the key itself.
            lines.append(str(item["msg"]).removeprefix("Value error, "))
        else:
            got = item.get("input")
            shown = "" if isinstance(got, dict) else f" (got {_short(repr(got))})"
            lines.append(f"{where}: {item['msg']}{shown}")
    return lines


def parse(raw: Any, root: Path = Path("."), source: str = DEFAULT_CONFIG, file: Path | None = None) -> Config:
    """The config from parsed YAML; `root` anchors relative paths, `file` is the file it came from."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: expected a mapping of keys at the top level")
    if internal := [key for key in INTERNAL_FIELDS if key in raw]:
        problems = [f"{key}: unknown key (check its spelling)" for key in internal]
        raise ConfigError(f"{source} is invalid ({len(problems)} problem(s)):", details=problems)
    try:
        config = Config.model_validate({**raw, "root": root, "source": file})
    except ValidationError as error:
        problems = describe_errors(error)
        raise ConfigError(f"{source} is invalid ({len(problems)} problem(s)):", details=problems) from None
    if not all(math.isfinite(v) for v in (config.gate.threshold, config.gate.max_regression)):
        raise ConfigError(f"{source}: gate thresholds must be finite numbers")
    return config


def config_path(path: str | os.PathLike[str] | None = None) -> Path:
    return Path(path or CONFIG.get())


class YamlRefused(yaml.YAMLError):
    """Valid YAML that mlci.yaml does not accept: what, where and what to do."""

    def __init__(self, message: str, hint: str):
        super().__init__(message)
        self.message = message
        self.hint = hint


class StrictLoader(yaml.SafeLoader):
    """SafeLoader with a bound on what aliases expand to, and without duplicate keys.

    Anchors and aliases are ordinary YAML (PyYAML writes them itself when one dict is used twice), but
    they let a kilobyte of YAML stand for billions of values ("billion laughs"), which anything
    walking the value (validation, error messages, logging) then expands: the composed document is
    measured as if every alias were written out, before anything is built from it. A duplicate key
    silently keeps the last value, so one of two settings a user wrote is lost.
    """

    depth = 0

    def get_single_node(self) -> Any:
        node = super().get_single_node()
        if node is not None:
            expanded = _expanded_size(node, {})
            if expanded > MAX_YAML_VALUES:
                raise YamlRefused(
                    f"its anchors and aliases (&name, *name) expand to {_at_least(expanded)} values, more than "
                    f"the {MAX_YAML_VALUES:,} a config may hold",
                    hint="write the repeated values out where they are used, or share fewer of them",
                )
        return node

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()
        # Composing recurses once per level: bound it well below Python's recursion limit.
        if self.depth >= MAX_YAML_DEPTH:
            raise YamlRefused(
                f"values are nested deeper than {MAX_YAML_DEPTH} levels (line {event.start_mark.line + 1})",
                hint="mlci.yaml needs a few levels of nesting at most: check the brackets",
            )
        self.depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        first_line: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if not isinstance(key, Hashable):
                continue  # SafeLoader reports unhashable keys itself
            line = key_node.start_mark.line + 1
            if key in first_line:
                raise YamlRefused(
                    f"duplicate key {key!r} at line {first_line[key]} and line {line}",
                    hint="keep one of them: YAML would silently use the last one",
                )
            first_line[key] = line
        return super().construct_mapping(node, deep=deep)


def _expanded_size(node: yaml.Node, sizes: dict[int, int]) -> int:
    """How many values `node` stands for with every alias written out (an alias is the same node
    object again); memoised, so a bomb is measured in the time its source takes to read."""
    if id(node) in sizes:
        return sizes[id(node)]
    total = 1
    if isinstance(node, yaml.SequenceNode):
        for child in node.value:
            total = min(total + _expanded_size(child, sizes), MAX_YAML_VALUES + 1)
    elif isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            total = min(total + _expanded_size(key, sizes) + _expanded_size(value, sizes), MAX_YAML_VALUES + 1)
    sizes[id(node)] = total
    return total


def _at_least(count: int) -> str:
    return f"more than {MAX_YAML_VALUES:,}" if count > MAX_YAML_VALUES else f"{count:,}"


def read_yaml(file: Path) -> Any:
    """The file's YAML, bounded in size, with StrictLoader; ConfigError naming the file otherwise."""
    with file.open("rb") as handle:
        content = handle.read(MAX_CONFIG_BYTES + 1)
    if len(content) > MAX_CONFIG_BYTES:
        raise ConfigError(
            f"{file} is larger than the {MAX_CONFIG_BYTES // 1024} KiB a config file may be",
            hint="check that --config (or MLCI_CONFIG) names the project's mlci.yaml; it holds settings, not data",
        )
    try:
        # StrictLoader is a SafeLoader: no Python objects are built from tags.
        return yaml.load(content.decode("utf-8"), Loader=StrictLoader)
    except UnicodeDecodeError as error:
        raise ConfigError(f"{file} is not UTF-8 text: {error}", hint="save the file as UTF-8") from None
    except YamlRefused as error:
        raise ConfigError(f"{file}: {error.message}", hint=error.hint) from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{file} is not valid YAML{where}: {getattr(error, 'problem', error)}") from None


def load(path: str | os.PathLike[str] | None = None) -> Config:
    file = config_path(path)
    if not file.is_file():
        raise ConfigError(
            f"config file {file} not found", hint="run mlci from the project folder or pass --config PATH"
        )
    return parse(read_yaml(file), root=file.resolve().parent, source=str(file), file=file.resolve())
