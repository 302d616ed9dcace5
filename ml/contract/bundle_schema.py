"""What metadata.json, reference.json and distribution.json may hold: allow-listed keys, strict types, bounded sizes.

A bundle is data from outside the process (an image layer, a folder someone passes to `mlci serve`), so
its JSON is parsed against these models, never trusted as it comes: an unknown key, a wrong type or an
oversized file is a `BundleError` naming the file and the key, before the model file is touched.
pydantic is already in the API image (FastAPI); nothing here imports the training stack.
"""

from __future__ import annotations

from itertools import zip_longest
from pathlib import Path
from typing import Annotated, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

MAX_JSON_BYTES = 4 * 1024 * 1024  # metadata.json is a few kB, reference.json at most 1000 rows
MAX_FEATURES = 10_000
MAX_CLASSES = 10_000
MAX_REFERENCE_ROWS = 1000
MAX_ERRORS_SHOWN = 3
MAX_DRIFT_EDGES = 100  # numeric bin edges per feature (mlci writes at most bins - 1 = 49)
MAX_DRIFT_CATEGORIES = 200  # categories kept per feature; the rest are "other"
SHARES_TOLERANCE = 1e-6  # a feature's shares sum to 1 within this

Short = Annotated[str, StringConstraints(max_length=2000)]
Long = Annotated[str, StringConstraints(max_length=100_000)]
STRICT = ConfigDict(extra="forbid", strict=True, frozen=True)
ModelT = TypeVar("ModelT", bound=BaseModel)


class BundleError(Exception):
    """A missing or corrupt bundle. `ml.bundle.load_bundle` turns it into `mlci.core.errors.BadInput`."""

    def __init__(self, message: str, *, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint


class FeatureEntry(BaseModel):
    model_config = STRICT
    name: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    type: Literal["numeric", "categorical"]
    min: float | None = None
    max: float | None = None
    categories: list[Short] | None = Field(default=None, max_length=MAX_CLASSES)
    nullable: bool = False


class DataFacts(BaseModel):
    model_config = STRICT
    path: Short | None = None
    sha256: Short | None = None
    rows: int | None = None
    columns: int | None = None


class Parity(BaseModel):
    """How far the served model is from scikit-learn's on the held-out rows: labels and probabilities for
    a classifier, the predicted number for a regression (the other task's keys are absent)."""

    model_config = STRICT
    rows: int
    labels_equal: bool | None = None
    max_abs_proba_diff: float | None = None
    max_abs_prediction_diff: float | None = None
    tolerance: float


FeatureName = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Share = Annotated[float, Field(ge=0, le=1)]
Edge = Annotated[float, Field(allow_inf_nan=False)]


class DriftSettings(BaseModel):
    """`monitoring.drift` of mlci.yaml, as packaged: what the API compares live inputs against."""

    model_config = STRICT
    psi_threshold: float = Field(gt=0, le=10)
    min_records: int = Field(ge=1, le=1_000_000_000)
    window_minutes: int = Field(default=60, ge=1, le=10080)  # default: bundles packaged before the window
    bins: int = Field(ge=2, le=50)
    max_categories: int = Field(ge=1, le=MAX_DRIFT_CATEGORIES)
    features: dict[FeatureName, Annotated[float, Field(gt=0, le=10)]] = Field(
        default_factory=dict, max_length=MAX_FEATURES
    )


class TargetFacts(BaseModel):
    """A regression's target over the training rows: the range the dashboard draws and the API's buckets."""

    model_config = STRICT
    min: Edge
    max: Edge
    mean: Edge
    std: Edge
    # Deciles of the training target, increasing: the buckets of the API's predicted-value histogram.
    edges: list[Edge] = Field(max_length=MAX_DRIFT_EDGES)


class Metadata(BaseModel):
    """Every key `ml.bundle.export_bundle` writes, and nothing else."""

    model_config = STRICT
    name: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    version: Annotated[str, StringConstraints(min_length=1, max_length=50)]
    run_id: Short | None = None
    commit: Short | None = None
    branch: Short | None = None
    data: DataFacts | None = None
    metrics: dict[Short, float] = Field(default_factory=dict, max_length=1000)
    primary_metric: Short | None = None
    trained_at: Short | None = None
    trained_by: Short | None = None
    build_url: Short | None = None
    bundle_format: Literal[1]
    format: Literal["onnx", "sklearn"]
    model_file: Short
    model_sha256: Short | None = None  # information only: it lives beside the edit it would detect
    precision: Short
    task: Literal["classification", "regression"]
    estimator: Short
    features: list[FeatureEntry] = Field(min_length=1, max_length=MAX_FEATURES)
    # A classifier's classes, in the order of its probabilities; none for a regression.
    classes: list[Short] = Field(default_factory=list, max_length=MAX_CLASSES)
    target: TargetFacts | None = None  # regression only
    parity: Parity | None = None
    fallback_reason: Long | None = None
    created_at: Short | None = None
    mlci_version: Short | None = None
    drift: DriftSettings | None = None


class NumericBins(BaseModel):
    """Bins (-inf, e0), [e0, e1), …, [eN, +inf) and the share of training rows in each, plus missing."""

    model_config = STRICT
    name: FeatureName
    type: Literal["numeric"]
    edges: list[Edge] = Field(max_length=MAX_DRIFT_EDGES)
    shares: list[Share] = Field(min_length=1, max_length=MAX_DRIFT_EDGES + 1)
    missing: Share


class CategoricalBins(BaseModel):
    """The share of each kept category, of every other value ("other", unseen included), and of missing."""

    model_config = STRICT
    name: FeatureName
    type: Literal["categorical"]
    categories: list[Short] = Field(max_length=MAX_DRIFT_CATEGORIES)
    shares: list[Share] = Field(max_length=MAX_DRIFT_CATEGORIES)
    other: Share
    missing: Share


class Distribution(BaseModel):
    """distribution.json: each feature's training distribution, the reference of the API's drift figures."""

    model_config = STRICT
    format: Literal[1]
    rows: int = Field(ge=1)
    features: list[Annotated[NumericBins | CategoricalBins, Field(discriminator="type")]] = Field(
        min_length=1, max_length=MAX_FEATURES
    )


class Expected(BaseModel):
    """A classifier's answer for a reference record."""

    model_config = STRICT
    label: Short
    probabilities: dict[Short, float] = Field(max_length=MAX_CLASSES)


class ExpectedValue(BaseModel):
    """A regression's answer for a reference record."""

    model_config = STRICT
    value: Annotated[float, Field(allow_inf_nan=False)]


class Reference(BaseModel):
    """reference.json of a classifier: records and, for each, the label and probabilities expected."""

    model_config = STRICT
    records: list[dict[Short, float | Short | None]] = Field(max_length=MAX_REFERENCE_ROWS)
    expected: list[Expected] = Field(max_length=MAX_REFERENCE_ROWS)


class ValueReference(BaseModel):
    """reference.json of a regression: records and, for each, the value expected."""

    model_config = STRICT
    records: list[dict[Short, float | Short | None]] = Field(max_length=MAX_REFERENCE_ROWS)
    expected: list[ExpectedValue] = Field(max_length=MAX_REFERENCE_ROWS)


def reference_model(task: str) -> type[Reference] | type[ValueReference]:
    """The reference.json schema of the bundle's task (metadata.json is read first)."""
    return ValueReference if task == "regression" else Reference


def _where(loc: tuple[int | str, ...]) -> str:
    """pydantic's error location as the key path a reader finds in the file: features[2].type."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def _describe(path: Path, error: ValidationError) -> str:
    problems = [f"key {_where(e['loc'])}: {e['msg']}" for e in error.errors(include_url=False)[:MAX_ERRORS_SHOWN]]
    more = error.error_count() - len(problems)
    return f"{path}: " + "; ".join(problems) + (f" (and {more} more)" if more > 0 else "")


def read_bounded(path: Path, what: str) -> bytes:
    """The file's bytes, refused before reading when it is not a plain file or larger than MAX_JSON_BYTES."""
    if path.is_symlink() or not path.is_file():
        raise BundleError(f"{what} {path} is missing", hint="package the model with `mlci package --out DIR`")
    size = path.stat().st_size
    if size > MAX_JSON_BYTES:
        raise BundleError(f"{what} {path} is {size:,} bytes; a bundle's JSON files are at most {MAX_JSON_BYTES:,}")
    with path.open("rb") as handle:
        raw = handle.read(MAX_JSON_BYTES + 1)
    if len(raw) > MAX_JSON_BYTES:  # it grew since stat: still refused
        raise BundleError(f"{what} {path} is larger than {MAX_JSON_BYTES:,} bytes")
    return raw


def parse(model: type[ModelT], path: Path, what: str) -> ModelT:
    raw = read_bounded(path, what)
    try:
        return model.model_validate_json(raw)
    except ValidationError as error:
        if any(e["type"] == "json_invalid" for e in error.errors()):
            raise BundleError(f"{what} {path} is not valid JSON: {error.errors()[0]['msg']}") from None
        raise BundleError(_describe(path, error)) from None


def check_metadata(path: Path, metadata: Metadata, model_files: dict[str, str]) -> None:
    """What types alone cannot say: the model file belongs to the format, names are unique."""
    if metadata.model_file != model_files[metadata.format]:
        raise BundleError(
            f"{path}: key model_file: {metadata.model_file!r} is not the file of format {metadata.format!r} "
            f"({model_files[metadata.format]!r})"
        )
    names = [f.name for f in metadata.features]
    if len(set(names)) != len(names):
        raise BundleError(f"{path}: key features: feature names repeat")
    if len(set(metadata.classes)) != len(metadata.classes):
        raise BundleError(f"{path}: key classes: class names repeat")
    if metadata.task == "classification" and len(metadata.classes) < 2:
        raise BundleError(f"{path}: key classes: a classifier has at least two classes")
    if metadata.task == "regression" and metadata.classes:
        raise BundleError(f"{path}: key classes: a regression has no classes")
    if metadata.task == "classification" and metadata.target is not None:
        raise BundleError(f"{path}: key target: a classifier's target is its classes")
    if metadata.target is not None and any(b <= a for a, b in zip(metadata.target.edges, metadata.target.edges[1:])):
        raise BundleError(f"{path}: key target.edges: edges are not strictly increasing")
    unknown = sorted(set(metadata.drift.features) - set(names)) if metadata.drift else []
    if unknown:
        raise BundleError(f"{path}: key drift.features: {', '.join(unknown)} is not a feature")


def check_reference(path: Path, reference: Reference | ValueReference, metadata: Metadata) -> None:
    """Reference records carry exactly the features; expected outputs name exactly the classes."""
    if len(reference.records) != len(reference.expected):
        raise BundleError(
            f"{path}: keys records and expected: {len(reference.records)} records but "
            f"{len(reference.expected)} expected outputs"
        )
    features, classes = {f.name for f in metadata.features}, set(metadata.classes)
    for i, record in enumerate(reference.records):
        if set(record) != features:
            wrong = sorted(set(record) ^ features)
            raise BundleError(f"{path}: key records[{i}]: keys {wrong} do not match the features of metadata.json")
    if isinstance(reference, ValueReference):
        return
    for i, expected in enumerate(reference.expected):
        if expected.label not in classes:
            raise BundleError(f"{path}: key expected[{i}].label: {expected.label!r} is not a class of metadata.json")
        if set(expected.probabilities) != classes:
            raise BundleError(f"{path}: key expected[{i}].probabilities: keys are not the classes of metadata.json")


def _check_bins(where: str, entry: NumericBins | CategoricalBins) -> None:
    if isinstance(entry, NumericBins):
        if any(b <= a for a, b in zip(entry.edges, entry.edges[1:])):
            raise BundleError(f"{where}.edges: edges are not strictly increasing")
        if len(entry.shares) != len(entry.edges) + 1:
            raise BundleError(f"{where}.shares: {len(entry.shares)} shares for {len(entry.edges) + 1} bins")
        total = sum(entry.shares) + entry.missing
    else:
        if len(set(entry.categories)) != len(entry.categories):
            raise BundleError(f"{where}.categories: categories repeat")
        if len(entry.shares) != len(entry.categories):
            raise BundleError(f"{where}.shares: {len(entry.shares)} shares for {len(entry.categories)} categories")
        total = sum(entry.shares) + entry.other + entry.missing
    if abs(total - 1) > SHARES_TOLERANCE:
        raise BundleError(f"{where}: shares sum to {total:.9g}, not 1")


def _name_type(pair: tuple[str, str] | None) -> str:
    return f"{pair[1]} feature {pair[0]!r}" if pair else "no feature"


def check_distribution(path: Path, distribution: Distribution, metadata: Metadata) -> None:
    """One entry per feature of metadata.json, in its order and of its type; bins that partition the rows."""
    expected = [(f.name, f.type) for f in metadata.features]
    found = [(f.name, f.type) for f in distribution.features]
    for i, (want, got) in enumerate(zip_longest(expected, found)):
        if want != got:
            raise BundleError(
                f"{path}: key features[{i}]: {_name_type(got)} where metadata.json has {_name_type(want)}",
                hint="package the model again with mlci package",
            )
    for i, entry in enumerate(distribution.features):
        _check_bins(f"{path}: key features[{i}]", entry)
