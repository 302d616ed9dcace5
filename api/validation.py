"""A /predict body to validated records, or to a bounded list of what is wrong with it.

Bounded twice, because a small body can hold many problems (1,000 empty records of 30 features are
30,000 of them, from 3 KB): at most MAX_DETAILS problems are described, plus how many more there
were; and the costly work runs in the thread pool, so the event loop keeps answering other requests.
The common case stays cheap and inline: a small body is first checked by a fail-fast model, which
stops at the first bad record; only a failing or large body goes to the thread pool.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError
from starlette.concurrency import run_in_threadpool

from api.responses import MAX_DETAILS

INLINE_BODY_BYTES = 16 << 10  # bodies up to this size are validated on the event loop (~ a few ms)


@dataclass
class Invalid:
    malformed: bool  # the body is not JSON (400), rather than JSON with wrong content (422)
    details: list[dict[str, Any]] = field(default_factory=list)  # [{record, field, problem}], first MAX_DETAILS
    truncated: int = 0  # problems found beyond `details`


async def validate(model: type[BaseModel], quick: type[BaseModel], body: bytes) -> BaseModel | Invalid:
    """`model` reports every problem; `quick` (same rules, fail-fast) only says whether there is one."""
    if len(body) <= INLINE_BODY_BYTES:
        try:
            return quick.model_validate_json(body)
        except ValidationError:
            pass
    return await run_in_threadpool(_validate_fully, model, body)


def _validate_fully(model: type[BaseModel], body: bytes) -> BaseModel | Invalid:
    try:
        return model.model_validate_json(body)
    except ValidationError as error:
        items = first_errors(error, MAX_DETAILS)
        malformed, details = validation_details(items)
        return Invalid(malformed, details, error.error_count() - len(details))


def first_errors(error: ValidationError, limit: int) -> list[dict[str, Any]]:
    """The first `limit` of the error's items, without building a Python dict for each of the others."""
    if error.error_count() <= limit:
        return [dict(item) for item in error.errors(include_url=False, include_context=False)]
    # pydantic-core writes them all as JSON (fast, in Rust, without the inputs); decode only the first.
    text = error.json(include_url=False, include_context=False, include_input=False)
    decoder = json.JSONDecoder()
    items: list[dict[str, Any]] = []
    index = 1  # just after the opening "["
    while len(items) < limit:
        item, index = decoder.raw_decode(text, index)
        items.append(item)
        index += 1  # the "," between items
    return items


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
    others = len(invalid.details) - 1 + invalid.truncated
    more = f" (and {others} more problem(s))" if others else ""
    return f"{', '.join(where) or 'body'}: {first['problem']}{more}"
