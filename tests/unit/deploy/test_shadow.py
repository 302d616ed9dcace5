"""Shadow traffic without Docker: the config key, the router config it renders, the join of the two
rings' answers (ml/deploy/shadow.py) with its statistics, and how the report reads the rings (over real HTTP
servers on 127.0.0.1 speaking the routers' /shadow/answers protocol)."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlci.core import config as config_module
from mlci.core import exits
from mlci.core.errors import BadInput, ConfigError, MlciError, Unreachable
from mlci.deploy import router, shadow, shadow_answers, shadow_compare
from tests.helpers.ports import reserve_ports

ROOT = Path(__file__).resolve().parents[3]


def demo(**production) -> config_module.Config:
    raw = yaml.safe_load((ROOT / "mlci.yaml").read_text())
    raw["environments"]["production"].update(production)
    return config_module.parse(raw)


def answer(request_id, labels=("a",), probabilities=None, status=200, ms=1.0, mirrored=False) -> dict:
    entry = {"id": request_id, "t": 1, "status": status, "ms": ms, "shadow": mirrored}
    if status == 200:
        entry["labels"] = list(labels)
        entry["probabilities"] = probabilities or [{"a": 1.0, "b": 0.0} for _ in labels]
    return entry


def test_the_demo_keeps_shadow_traffic_off():
    config = demo()
    assert all(env.shadow is None for env in config.environments.values())
    text = router.render(config, "production", config.environments["production"])
    assert not re.search(r"^\s*mirror\s", text, re.MULTILINE)  # no mirror directive (comments may name it)


@pytest.mark.parametrize(
    ("shadow_value", "says"),
    [
        ({"env": "nowhere", "share": 0.1}, "not another environment"),
        ({"env": "production", "share": 0.1}, "not another environment"),
        ({"env": "staging", "share": 0}, "shadow.share"),
        ({"env": "staging", "share": 1.5}, "shadow.share"),
        ({"env": "staging", "share": 0.1, "timeout_ms": 5}, "shadow.timeout_ms"),
        ({"env": "staging", "share": 0.1, "sample": 2}, "shadow.sample"),
        ({"share": 0.1}, "shadow.env"),
    ],
)
def test_a_wrong_shadow_key_names_itself(shadow_value, says):
    with pytest.raises(ConfigError) as caught:
        demo(shadow=shadow_value)
    assert says in caught.value.message + " ".join(caught.value.details)


def test_shadow_needs_one_docker_engine():
    with pytest.raises(ConfigError) as caught:
        demo(shadow={"env": "staging", "share": 0.1}, docker_host="ssh://deploy@prod")
    assert "another Docker host" in caught.value.message + " ".join(caught.value.details)


def test_the_mirror_is_rendered_for_predict_only_with_its_share_and_timeouts():
    config = demo(shadow={"env": "staging", "share": 0.25, "timeout_ms": 150})
    text = router.render(config, "production", config.environments["production"])
    assert text.count("mirror /_mlci_shadow;") == 1  # the live listener's /predict; never the preview
    assert "25% 1;" in text and "mirror_request_body on;" in text
    assert "proxy_read_timeout 150ms;" in text and "proxy_connect_timeout 150ms;" in text
    assert f'"{config.project}-staging-router"' in text
    assert "if (!-f /run/mlci/shadow.on)" in text and "mirror /_mlci_out;" in text  # the hand-off
    everything = demo(shadow={"env": "staging", "share": 1})
    assert "default 1;" in router.render(everything, "production", everything.environments["production"])


def test_sources_name_who_mirrors_to_an_environment():
    config = demo(shadow={"env": "staging", "share": 0.1})
    assert shadow.sources(config, "staging") == ["production"]
    assert shadow.sources(config, "production") == []


def test_compare_joins_on_request_id_and_counts_only_mirrored_answers():
    production = [
        answer("1", ["a"], [{"a": 0.9, "b": 0.1}], ms=2),
        answer("2", ["a", "b"], [{"a": 0.6, "b": 0.4}, {"a": 0.2, "b": 0.8}], ms=4),
        answer("3", ["b"], [{"a": 0.3, "b": 0.7}]),
        answer("4", status=422),
    ]
    candidate = [
        answer("1", ["a"], [{"a": 0.8, "b": 0.2}], ms=10, mirrored=True),  # agrees, diff 0.1
        answer("2", ["b", "b"], [{"a": 0.4, "b": 0.6}, {"a": 0.2, "b": 0.8}], ms=20, mirrored=True),  # 1 of 2
        answer("3", status=500, ms=30, mirrored=True),  # an error
        answer("4", status=422, ms=1, mirrored=True),  # the same refusal as production: no error
        answer("5", ["a"], ms=5, mirrored=True),  # production's ring no longer holds it
        answer("smoke", ["a"], ms=1),  # not mirrored: a smoke test or a direct call, ignored
    ]
    result = shadow_compare.compare(production, candidate)
    assert result.mirrored == 5 and result.compared == 2 and result.unmatched == 1
    assert result.rows == 3 and result.agreement == pytest.approx(2 / 3, abs=1e-6)
    assert result.mean_probability_diff == pytest.approx((0.1 + 0.2 + 0.0) / 3, abs=1e-6)
    assert result.max_probability_diff == pytest.approx(0.2, abs=1e-6)
    assert result.candidate_errors == 1
    assert result.candidate_p50_ms == 10 and result.candidate_p99_ms == 30


def values_answer(request_id: str, values: list[float], ms: float = 1, mirrored: bool = False) -> dict[str, Any]:
    return {"id": request_id, "status": 200, "ms": ms, "values": values, "shadow": mirrored}


def test_a_regressions_answers_compare_by_their_difference_within_the_tolerance():
    production = [values_answer("1", [100.0]), values_answer("2", [50.0, 70.0]), values_answer("3", [10.0])]
    candidate = [
        values_answer("1", [100.4], ms=3, mirrored=True),  # 0.4: within 0.5
        values_answer("2", [52.0, 70.0], ms=5, mirrored=True),  # 2.0 (outside) and 0.0
        values_answer("4", [1.0], mirrored=True),  # production no longer holds it
    ]
    result = shadow_compare.compare(production, candidate, tolerance=0.5, task="regression")
    assert (result.mirrored, result.compared, result.unmatched, result.rows) == (3, 2, 1, 3)
    assert result.agreement == pytest.approx(2 / 3, abs=1e-6)
    assert result.mean_abs_diff == pytest.approx((0.4 + 2.0 + 0.0) / 3, abs=1e-6)
    assert result.max_abs_diff == pytest.approx(2.0)
    assert result.mean_probability_diff is None and result.max_probability_diff is None
    line = shadow_compare.summarize(shadow_compare.ShadowReport("staging", "production", 0.1, True, "2", "1", result))
    assert "66.67% of 3 predictions within 0.5, |difference| mean 0.8 max 2" in line
    assert "agreement" not in line
    # A ring entry of a regression passes the shape check compare() relies on; a value that is not a number does not.
    assert shadow_answers._is_answer(values_answer("1", [1.5, 2]))
    assert not shadow_answers._is_answer(values_answer("1", ["1.5"]))  # type: ignore[list-item]
    assert not shadow_answers._is_answer({**values_answer("1", [1.0]), "values": [True]})


def test_three_classes_compare_by_label_and_the_largest_probability_difference():
    p = {"barolo": 0.7, "grignolino": 0.2, "barbera": 0.1}
    q = {"barolo": 0.4, "grignolino": 0.5, "barbera": 0.1}
    production = [answer("1", ["barolo", "barbera"], [p, {"barolo": 0, "grignolino": 0, "barbera": 1}])]
    candidate = [
        answer("1", ["grignolino", "barbera"], [q, {"barolo": 0, "grignolino": 0.1, "barbera": 0.9}], mirrored=True)
    ]
    result = shadow_compare.compare(production, candidate)
    assert (result.rows, result.agreement) == (2, 0.5)
    assert result.max_probability_diff == pytest.approx(0.3) and result.mean_probability_diff == pytest.approx(0.2)
    assert result.task == "classification" and result.mean_abs_diff is None


def test_compare_with_nothing_mirrored_says_so():
    result = shadow_compare.compare([answer("1")], [answer("1")])
    assert result.mirrored == 0 and result.compared == 0 and result.agreement is None
    report = shadow_compare.ShadowReport("staging", "production", 0.1, True, "2", "1", result)
    assert "no compared request yet" in shadow_compare.summarize(report)


def test_percentile_is_a_latency_someone_had():
    values = [float(v) for v in range(1, 101)]
    assert shadow_compare.percentile(values, 50) == 50 and shadow_compare.percentile(values, 99) == 99
    assert shadow_compare.percentile([], 50) is None


def test_report_without_a_mirror_says_how_to_set_one():
    with pytest.raises(BadInput) as caught:
        shadow.report(demo(), "staging")
    assert "environments.production.shadow" in (caught.value.hint or "")


# ---- the report's reading of the two rings (real HTTP servers on 127.0.0.1) ---------------------------


@dataclass
class Served:
    url: str
    port: int
    authorizations: list[str | None]  # the Authorization header of each request, None when absent


@contextmanager
def ring_api(
    answers: list[dict] | None = None,
    version: str = "2",
    token: str | None = None,
    status: int = 200,
    body: bytes | None = None,
) -> Iterator[Served]:
    """An API's GET /shadow/answers on a free port: one page of `answers`, or `status` with `body`. With
    `token`, a request without `Authorization: Bearer <token>` gets 401 (as a slot given MLCI_SHADOW_TOKEN)."""
    page = {"model": {"name": "m", "version": version}, "answers": answers or [], "more": False, "next": 0}
    seen: list[str | None] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.headers.get("Authorization"))
            code, text = status, body if body is not None else json.dumps(page).encode()
            if token is not None and self.headers.get("Authorization") != f"Bearer {token}":
                code, text = 401, b'{"detail": "shadow token required"}'
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(text)))
            self.end_headers()
            self.wfile.write(text)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    try:
        yield Served(f"http://127.0.0.1:{port}", port, seen)
    finally:
        server.shutdown()
        server.server_close()


def mirrored_config(production_port: int, staging_port: int) -> config_module.Config:
    """The demo config with production mirroring to staging, each router on the given loopback port."""
    raw = yaml.safe_load((ROOT / "mlci.yaml").read_text())
    raw["environments"]["production"].update(
        shadow={"env": "staging", "share": 0.1}, port=production_port, preview_port=reserve_ports(1)[0]
    )
    raw["environments"]["staging"].update(port=staging_port, preview_port=reserve_ports(1)[0])
    return config_module.parse(raw)


def test_the_slot_token_is_read_from_the_container_environment():
    assert shadow_answers.token_in(["PATH=/usr/bin", "MLCI_SHADOW_TOKEN=s3cret=x", "TZ=UTC"]) == "s3cret=x"
    assert shadow_answers.token_in(["PATH=/usr/bin", "MLCI_SHADOW_TOKEN_OLD=x"]) is None
    assert shadow_answers.token_in(["MLCI_SHADOW_TOKEN="]) is None
    assert shadow_answers.token_in(None) is None


def test_a_401_when_no_token_could_be_read_says_so_not_a_switch():
    with ring_api([answer("1")], token="s3cret") as api, pytest.raises(BadInput) as caught:
        shadow_answers.fetch(api.url, "staging", None)
    assert "none could be read from its live slot" in caught.value.message
    assert "switched" not in caught.value.message and "docker inspect" in (caught.value.hint or "")


def test_fetch_sends_the_token_and_says_a_401_is_a_switch_not_an_old_api():
    with ring_api([answer("1", mirrored=True)], token="s3cret") as api:
        model, answers = shadow_answers.fetch(api.url, "staging", "s3cret")
        assert model["version"] == "2" and [a["id"] for a in answers] == ["1"]
        assert api.authorizations == ["Bearer s3cret"]

        with pytest.raises(BadInput) as caught:
            shadow_answers.fetch(api.url, "staging", "the token of the slot before a switch")
    assert "switched while the report was read: run it again" in caught.value.message
    assert "predates" not in (caught.value.hint or "")

    with ring_api([answer("1")]) as open_api:  # `mlci serve` on loopback: no token, no header sent
        shadow_answers.fetch(open_api.url, "production", None)
        assert open_api.authorizations == [None]


@pytest.mark.parametrize(
    ("status", "kind", "says", "hint_says"),
    [
        (404, BadInput, "answered 404", "predates shadow traffic"),
        (500, BadInput, "answered 500", "logs"),
        (502, Unreachable, "staging is not serving (status 502): check mlci status", "mlci status --env staging"),
        (503, Unreachable, "staging is not serving (status 503)", "mlci status"),
        (504, Unreachable, "staging is not serving (status 504)", "mlci status"),
    ],
)
def test_fetch_says_what_a_status_means_and_the_old_api_hint_is_for_404_only(status, kind, says, hint_says):
    with ring_api(status=status, body=b"<html>bad gateway</html>") as api, pytest.raises(MlciError) as caught:
        shadow_answers.fetch(api.url, "staging")
    assert type(caught.value) is kind
    assert says in caught.value.message and hint_says in (caught.value.hint or "")
    assert ("predates" in (caught.value.hint or "")) == (status == 404)
    assert exits.classify(caught.value)[0] == (3 if kind is Unreachable else 2)


@pytest.mark.parametrize(
    "body",
    [
        b"<html>welcome to nginx</html>",
        b"[]",
        b'{"answers": []}',
        b'{"answers": "none", "more": false, "next": 0}',
        b'{"answers": [{"id": "1"}], "more": false, "next": 0}',
        b'{"answers": [{"id": "1", "status": 200, "ms": 1, "labels": ["a"], "probabilities": ["x"]}], '
        b'"more": false, "next": 0}',
    ],
)
def test_a_200_that_is_not_a_page_of_answers_is_a_clear_error_naming_the_url(body):
    with ring_api(body=body) as api, pytest.raises(BadInput) as caught:
        shadow_answers.fetch(api.url, "staging")
    assert f"{api.url}/shadow/answers" in caught.value.message


def test_a_replayed_request_id_counts_once():
    production = [answer("1", ["a"]), answer("2", ["a"]), answer("2", ["b"])]
    candidate = [answer("1", ["a"], mirrored=True)] + [answer("2", ["b"], mirrored=True, ms=9) for _ in range(5)]
    result = shadow_compare.compare(production, candidate)
    assert result.mirrored == 2 and result.compared == 2 and result.rows == 2
    assert result.agreement == pytest.approx(0.5)  # "2": the first answer each ring holds, a vs b
    assert result.candidate_p50_ms == 1 and result.candidate_p99_ms == 9


def test_errors_blame_the_candidate_only_for_its_own_failures():
    production = [
        answer("ok-refused", ["a"]),  # production answered 200, the candidate refused: the candidate's error
        answer("both-refused", status=422),  # the same refusal on both sides: agreement, no error
        answer("prod-failed", status=503),  # production's own 5xx, the candidate answered
        answer("both-failed", status=500),  # a 5xx on both sides: one each
        answer("prod-refused", status=422),  # production refused, the candidate answered: not an error
    ]
    candidate = [
        answer("ok-refused", status=422, mirrored=True),
        answer("both-refused", status=422, mirrored=True),
        answer("prod-failed", ["a"], mirrored=True),
        answer("both-failed", status=500, mirrored=True),
        answer("prod-refused", ["a"], mirrored=True),
        answer("gone", status=502, mirrored=True),  # unmatched, but a 5xx is the candidate's whatever production did
        answer("gone-too", status=422, mirrored=True),  # unmatched refusal: nothing to say it is wrong
    ]
    result = shadow_compare.compare(production, candidate)
    assert result.candidate_errors == 3  # ok-refused, both-failed, gone
    assert result.production_errors == 2  # prod-failed, both-failed
    assert result.mirrored == 7 and result.unmatched == 2 and result.compared == 0


def a_report(
    on: bool = True, latencies: int = 0, compared: int = 0, candidate: str = "3"
) -> shadow_compare.ShadowReport:
    production = [answer(f"r{i}", ["a"]) for i in range(max(latencies, compared))]
    mirrored = [answer(f"r{i}", ["a"], mirrored=True, ms=float(i)) for i in range(compared)]
    mirrored += [answer(f"x{i}", ["a"], mirrored=True, ms=float(i)) for i in range(latencies - compared)]
    result = shadow_compare.ShadowReport(
        "staging", "production", 0.1, on, candidate, "2", shadow_compare.compare(production, mirrored)
    )
    result.summary = shadow_compare.summarize(result)
    return result


def test_the_summary_says_the_mirror_is_off_and_how_many_requests_it_rests_on():
    off = a_report(on=False, latencies=12, compared=10)
    assert off.summary.startswith("mirror OFF: shadow production -> staging (v3 vs v2): ")
    assert "10 requests compared of 12 mirrored, 2 unmatched" in off.summary
    assert "0 candidate errors, 0 production errors" in off.summary
    assert "\n" not in off.summary
    assert not a_report(on=True, latencies=12, compared=10).summary.startswith("mirror OFF")
    empty = a_report(on=False)
    assert empty.summary.startswith("mirror OFF: ") and "no compared request yet (0 mirrored, 0 unmatched" in (
        empty.summary
    )


def test_the_summary_gives_no_p99_below_100_answers():
    few = a_report(latencies=99, compared=99)
    assert "candidate p50 49.0 ms p99 n/a (<100 answers)" in few.summary
    assert few.comparison.candidate_p99_ms == 98  # the figure stays in the report; the line does not claim it
    enough = a_report(latencies=100, compared=100)
    assert "p50 49.0 ms p99 98.0 ms" in enough.summary


def test_the_deploy_record_notes_a_report_about_another_version():
    production = [answer(f"r{i}", ["a"]) for i in range(3)]
    candidate = [answer(f"r{i}", ["a"], mirrored=True) for i in range(3)]
    with ring_api(production, version="2") as prod, ring_api(candidate, version="3") as staging:
        config = mirrored_config(prod.port, staging.port)
        said: list[str] = []
        other = shadow.for_record(config, "production", "4", step=said.append)
        same: list[str] = []
        record = shadow.for_record(config, "production", "3", step=same.append)

    assert other is not None and other["comparison"]["compared"] == 3  # the report is kept
    assert other["error"] == "staging serves v3, not v4: this report is not about the version deployed"
    assert said == [f"warning: {other['error']}"]  # the figures are not presented as v4's
    assert record is not None and "error" not in record and same == [record["summary"]]


def test_an_unexpected_failure_of_the_report_is_noted_not_raised(tmp_path, monkeypatch):
    """A failure that is not an MlciError inside the report (here the engine's socket refusing this user:
    PermissionError): the production deploy must still go on, with the failure in its record and a
    warning line."""

    def refused(*args, **kwargs):
        raise PermissionError(13, "Permission denied", "/var/run/docker.sock")

    monkeypatch.setattr("mlci.ship.containers.execute", refused)
    with ring_api([answer("1")]) as prod, ring_api([answer("1", mirrored=True)], version="3") as staging:
        config = mirrored_config(prod.port, staging.port)
        said: list[str] = []
        record = shadow.for_record(config, "production", "3", step=said.append)
    assert record is not None and record["error"].startswith("PermissionError")
    assert len(said) == 1 and said[0].startswith("warning: shadow report unavailable")


def test_the_command_logs_what_it_does_in_text_and_prints_pure_json_with_json(project):
    production = [answer(f"r{i}", ["a"]) for i in range(3)]
    candidate = [answer(f"r{i}", ["a"], mirrored=True) for i in range(3)]
    with ring_api(production, version="2") as prod, ring_api(candidate, version="3") as staging:
        project.edit(
            **{
                "environments.production.shadow": {"env": "staging", "share": 0.1},
                "environments.production.port": prod.port,
                "environments.staging.port": staging.port,
                "environments.production.preview_port": reserve_ports(1)[0],
                "environments.staging.preview_port": reserve_ports(1)[0],
            }
        )
        text = project.mlci("shadow", "report", "--env", "staging")
        as_json = project.mlci("shadow", "report", "--env", "staging", "--json")

    assert text.exit_code == 0, text.output
    lines = text.stdout.splitlines()
    assert lines[0] == "mlci shadow report: comparing staging's answers to mirrored requests with production's"
    assert lines[-1].startswith("RESULT OK: 3 of 3 mirrored requests compared")
    assert as_json.exit_code == 0, as_json.output
    parsed = json.loads(as_json.stdout)  # the whole of stdout: nothing before or after the report
    assert parsed["comparison"]["compared"] == 3 and parsed["candidate_version"] == "3"
    assert parsed == project.report("shadow-staging")
