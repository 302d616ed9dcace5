"""A /predict body to validated records, or to a bounded list of what is wrong with it.

A small body can hold many problems (1,000 empty records of 30 features are 30,000 of them, from
4 KB), so the work on an invalid body is bounded by what the answer reports: at most MAX_DETAILS
problems are listed, and the check stops there (pydantic collecting all 30,000 errors held the GIL
≈ 12 ms per body, and /health on the same worker waited behind it).

A valid body is checked as before, in one call of the fail-fast request model (it stops at the
first bad record); only a body it refuses is parsed once and checked record by record with the
record model, each record's own errors (≤ one per feature, unknown keys listed lazily) until the
list is full. The messages are those of the full request model checked in JSON mode.
A body over INLINE_BODY_BYTES is checked in the thread pool, so the event loop keeps answering.
"""

from __future__ import annotations

import typing
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pydantic_core
from annotated_types import MaxLen, MinLen
from pydantic import BaseModel, ValidationError
from starlette.concurrency import run_in_threadpool

from mlci.api.responses import MAX_DETAILS

INLINE_BODY_BYTES = 16 << 10  # bodies up to this size are validated on the event loop (~ a few ms)
# The records come from JSON but are checked as Python objects; the only messages that differ are
# those naming the container type, so they are given their JSON wording (as model_validate_json has).
JSON_WORDING = {"list_type": "Input should be a valid array", "model_type": "Input should be an object"}


@dataclass
class Invalid:
    malformed: bool  # the body is not JSON (400), rather than JSON with wrong content (422)
    details: list[dict[str, Any]] = field(default_factory=list)  # [{record, field, problem}], first MAX_DETAILS
    truncated: int = 0  # records (and unknown top-level keys) the check did not finish: see ErrorResponse


async def validate(model: type[BaseModel], quick: type[BaseModel], body: bytes) -> BaseModel | Invalid:
    """`model` is the request model, `quick` the same rules, fail-fast: it only says whether there is a problem."""
    if len(body) <= INLINE_BODY_BYTES:  # a valid small body costs one call, as it always has
        try:
            return quick.model_validate_json(body)
        except ValidationError:
            return report(model, body)  # bounded: cheap enough for the event loop too
    return await run_in_threadpool(_validate, model, quick, body)


def _validate(model: type[BaseModel], quick: type[BaseModel], body: bytes) -> BaseModel | Invalid:
    try:
        return quick.model_validate_json(body)
    except ValidationError:
        return report(model, body)


def report(model: type[BaseModel], body: bytes) -> BaseModel | Invalid:
    """What is wrong with a body the request model refuses: its first MAX_DETAILS problems, in its order."""
    try:
        data = pydantic_core.from_json(body)  # the parser model_validate_json uses: the same message
    except ValueError as error:
        return Invalid(True, [{"record": None, "field": None, "problem": f"Invalid JSON: {error}"}])
    listing = Listing(MAX_DETAILS)
    records = data.get("records") if isinstance(data, dict) else None
    if isinstance(records, list) and _length_allowed(model, len(records)):
        unfinished = _check_records(_record_model(model), records, listing)
    else:  # the envelope is wrong, so the records are not checked (nor are they by the request model)
        envelope = ({"records": records} if "records" in data else {}) if isinstance(data, dict) else data
        listing.add(iter(_errors(model, envelope, ())))
        unfinished = 0
    unknown = [key for key in data if key != "records"] if isinstance(data, dict) else []
    listed = listing.add(_unknown_fields(unknown, ()))  # after the records, as the request model lists them
    if not listing.items:  # never expected (`quick` has the same rules): ask the request model itself
        return _fully(model, body)
    _, details = validation_details(listing.items)
    return Invalid(False, details, unfinished + len(unknown) - listed)


def _fully(model: type[BaseModel], body: bytes) -> BaseModel | Invalid:
    try:
        return model.model_validate_json(body)
    except ValidationError as error:
        malformed, details = validation_details([dict(item) for item in error.errors(include_url=False)[:MAX_DETAILS]])
        return Invalid(malformed, details, error.error_count() - len(details))


class Listing:
    """The first `limit` error items; adding stops drawing from an iterator once the list is full."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.items: list[dict[str, Any]] = []

    @property
    def full(self) -> bool:
        return len(self.items) >= self.limit

    def add(self, items: Iterator[dict[str, Any]]) -> int:
        """How many of `items` were listed (all of them unless the list filled up)."""
        added = 0
        for item in items:
            if self.full:
                break
            self.items.append(item)
            added += 1
        return added

    def complete(self, items: Iterator[dict[str, Any]]) -> bool:
        """List `items`; False when some did not fit."""
        for item in items:
            if self.full:
                return False
            self.items.append(item)
        return True


def _check_records(record: type[BaseModel], records: list[Any], listing: Listing) -> int:
    """List the records' problems in order; how many records were not finished when the list filled up."""
    fields = record.model_fields
    for index, item in enumerate(records):
        if listing.full:
            return len(records) - index  # not checked: they may be valid
        if not listing.complete(_record_errors(record, fields, index, item)):
            return len(records) - index  # this record has more problems than were listed, the rest are not checked
    return 0


def _record_errors(record: type[BaseModel], fields: dict[str, Any], index: int, item: Any) -> Iterator[dict[str, Any]]:
    """One record's error items, in the request model's order: its features, then its unknown keys."""
    loc = ("records", index)
    if not isinstance(item, dict):
        yield from _errors(record, item, loc)
        return
    # Unknown keys are left out of the model's check, so a record of 100,000 of them costs what is listed.
    yield from _errors(record, {key: value for key, value in item.items() if key in fields}, loc)
    yield from _unknown_fields((key for key in item if key not in fields), loc)


def _errors(model: type[BaseModel], value: Any, loc: tuple[Any, ...]) -> list[dict[str, Any]]:
    try:
        model.model_validate(value)
    except ValidationError as error:
        items = error.errors(include_url=False, include_context=False)
        return [
            {**item, "loc": (*loc, *item["loc"]), "msg": JSON_WORDING.get(item["type"], item["msg"])} for item in items
        ]
    return []


def _unknown_fields(keys: typing.Iterable[str], loc: tuple[Any, ...]) -> Iterator[dict[str, Any]]:
    for key in keys:
        yield {"type": "extra_forbidden", "loc": (*loc, key), "msg": "Extra inputs are not permitted"}


def _record_model(model: type[BaseModel]) -> type[BaseModel]:
    """The record model inside the request model's `records: list[Record]`."""
    (record,) = typing.get_args(model.model_fields["records"].annotation)
    return record


def _length_allowed(model: type[BaseModel], length: int) -> bool:
    for rule in model.model_fields["records"].metadata:
        if isinstance(rule, MinLen) and length < rule.min_length:
            return False
        if isinstance(rule, MaxLen) and length > rule.max_length:
            return False
    return True


def validation_details(items: list[dict[str, Any]]) -> tuple[bool, list[dict[str, Any]]]:
    """(is the body malformed JSON, [{record, field, problem}])."""
    details = []
    malformed = False
    for item in items:
        if item["type"] == "json_invalid":
            malformed = True
        loc = list(item["loc"])
        record = None
        fieldname = None
        if loc and loc[0] == "records":
            if len(loc) >= 2 and isinstance(loc[1], int):
                record = loc[1]
                fieldname = ".".join(str(p) for p in loc[2:]) or None
            else:
                fieldname = "records"
        elif loc:
            fieldname = ".".join(str(p) for p in loc)
        problem = item["msg"]
        if item["type"] == "extra_forbidden":
            problem = "unknown field"
        elif item["type"] == "missing":
            problem = "required field is missing"
        elif item.get("input", ...) is None and fieldname and record is not None:
            problem = "null is not allowed: this feature is not nullable"
        details.append({"record": record, "field": fieldname, "problem": problem})
    return malformed, details


def summary(invalid: Invalid) -> str:
    first = invalid.details[0]
    where = []
    if first["record"] is not None:
        where.append(f"record {first['record']}")
    if first["field"]:
        where.append(f"field {first['field']!r}")
    others = len(invalid.details) - 1
    more = f" (and {others} more problem(s))" if others else ""
    if invalid.truncated:
        stopped = f"the check stopped there, {invalid.truncated} record(s) or key(s) not checked"
        more = f" (and {others} more problem(s) listed; {stopped})"
    return f"{', '.join(where) or 'body'}: {first['problem']}{more}"
