"""Request and response models generated from the bundle's feature schema, so OpenAPI shows real fields.

Strict: unknown fields are refused, every feature is required (null is allowed only for a nullable
feature), numbers must be JSON numbers (no strings, no booleans), finite and within the data
contract's min/max, categories must be one of the allowed values.
"""

from __future__ import annotations

from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, create_model

from mlci.contract.bundle import NUMERIC, Bundle, Feature

STRICT = ConfigDict(extra="forbid", strict=True)


def _field(feature: Feature, example: Any) -> tuple[Any, Any]:
    description = f"{feature.type} feature" + ("; null = missing" if feature.nullable else "")
    if feature.type == NUMERIC:
        kind: Any = float
        extra: dict[str, Any] = {"allow_inf_nan": False, "strict": True}
        if feature.min is not None:
            extra["ge"] = feature.min
        if feature.max is not None:
            extra["le"] = feature.max
    else:
        kind = Literal[tuple(feature.categories)] if feature.categories else str
        # A Literal only matches its exact strings (and refuses `strict`); free text is strict str.
        extra = {} if feature.categories else {"max_length": 200, "strict": True}
    if feature.nullable:
        kind = Optional[kind]  # noqa: UP045 - kind is a runtime value, and `X | None` fails on a Literal
    examples = [example] if example is not None or feature.nullable else None
    return kind, Field(..., description=description, examples=examples, **extra)


def example_record(bundle: Bundle) -> dict[str, Any]:
    records = bundle.reference.get("records") or []
    if records:
        return dict(records[0])
    example: dict[str, Any] = {}
    for f in bundle.features:
        if f.type == NUMERIC:
            example[f.name] = f.min if f.min is not None else (f.max if f.max is not None else 0.0)
        else:
            example[f.name] = f.categories[0] if f.categories else "a"
    return example


def record_model(bundle: Bundle) -> type[BaseModel]:
    example = example_record(bundle)
    fields = {f.name: _field(f, example.get(f.name)) for f in bundle.features}
    return create_model("Record", __config__=STRICT, **fields)  # type: ignore[call-overload]


def request_model(bundle: Bundle, max_batch: int, fail_fast: bool = False) -> type[BaseModel]:
    """The /predict body; `fail_fast` stops at the first bad record (a cheap yes/no, no full report)."""
    record = record_model(bundle)
    config = ConfigDict(
        extra="forbid", strict=True, json_schema_extra={"examples": [{"records": [example_record(bundle)]}]}
    )
    return create_model(
        "PredictRequest",
        __config__=config,
        records=(
            list[record],  # type: ignore[valid-type]  # a model made at run time
            Field(
                ..., min_length=1, max_length=max_batch, description=f"1 to {max_batch} records", fail_fast=fail_fast
            ),
        ),
    )


class ModelRef(BaseModel):
    name: str
    version: str


class Prediction(BaseModel):
    """A classifier's answer for one record."""

    label: str = Field(description="the predicted class")
    probabilities: dict[str, float] = Field(description="the probability of each class, summing to 1")


class ValuePrediction(BaseModel):
    """A regression's answer for one record."""

    value: float = Field(description="the predicted number")


class PredictResponse(BaseModel):
    model: ModelRef
    request_id: str
    predictions: list[Prediction] = Field(description="one answer per record, in the order of `records`")


class ValuePredictResponse(BaseModel):
    model: ModelRef
    request_id: str
    predictions: list[ValuePrediction] = Field(description="one answer per record, in the order of `records`")


def response_model(task: str) -> type[BaseModel]:
    """The /predict answer of the bundle's task: what OpenAPI shows."""
    return ValuePredictResponse if task == "regression" else PredictResponse


class ErrorItem(BaseModel):
    record: int | None = Field(None, description="index of the record in `records`")
    field: str | None = None
    problem: str


class ErrorResponse(BaseModel):
    error: str
    message: str
    request_id: str
    details: list[ErrorItem] = Field([], description="the first 50 problems, in body order")
    details_truncated: int = Field(
        0,
        description=(
            "absent when every problem is listed. /predict stops checking at 50 problems (so a bad body costs what"
            " is reported): then it is how many records it did not finish (the one it stopped in, if that record"
            " has more problems, and every later record, which is not checked and may be valid), plus the unknown"
            " top-level keys not listed. For other routes' FastAPI-checked input: how many more problems there were."
        ),
    )
