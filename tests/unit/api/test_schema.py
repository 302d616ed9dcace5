"""Fuzz the OpenAPI contract with schemathesis: no generated request may get a 5xx."""

from __future__ import annotations

import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given, settings

from mlci.api.app import create_app
from mlci.api.settings import Settings

EXAMPLES = {"positive": 400, "negative": 400}  # per operation with a body; GETs get fewer (no inputs)


def test_no_5xx_over_generated_requests(loans_bundle):
    app = create_app(loans_bundle, Settings(max_batch=20, max_body_bytes=64 * 1024))
    with TestClient(app):  # runs the lifespan: warmed and ready
        schema = schemathesis.openapi.from_asgi("/openapi.json", app)
        statuses: list[tuple[str, int]] = []
        failures: list[str] = []
        for result in schema.get_all_operations():
            operation = result.ok()
            has_body = bool(operation.body)
            for mode, count in EXAMPLES.items():
                if mode == "negative" and not has_body:
                    continue
                strategy = operation.as_strategy(generation_mode=schemathesis.GenerationMode(mode))

                @settings(
                    max_examples=count if has_body else 25,
                    deadline=None,
                    database=None,
                    phases=[Phase.generate],
                    suppress_health_check=list(HealthCheck),
                    derandomize=True,
                )
                @given(case=strategy)
                def run(case):
                    response = case.call()
                    statuses.append((operation.label, response.status_code))  # noqa: B023 - called in this iteration
                    if response.status_code >= 500:
                        failures.append(f"{case.method} {case.path} {case.body!r} -> {response.status_code}")

                run()
    assert not failures, failures[:5]
    assert len(statuses) >= 500, len(statuses)
    print(f"schemathesis: {len(statuses)} requests, statuses {sorted(codes_seen(statuses).items())}")
    codes = {code for _, code in statuses}
    assert 200 in codes and 422 in codes  # both valid and invalid requests were generated


def codes_seen(statuses: list[tuple[str, int]]) -> dict[int, int]:
    counts: dict[int, int] = {}
    for _, code in statuses:
        counts[code] = counts.get(code, 0) + 1
    return counts
