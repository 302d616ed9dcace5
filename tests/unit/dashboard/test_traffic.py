"""Rates, quantiles, counter resets and switch markers of the Live model charts (mlci.dashboard.traffic), no browser."""

from __future__ import annotations

import math
import threading

import pytest

from mlci.dashboard import traffic, traffic_charts
from mlci.dashboard.traffic import Sample

BLUE_V1 = ("1", "blue")
GREEN_V2 = ("2", "green")


def exposition(ok: float, errors: float = 0, rejected: float = 0, buckets=None, labels=None, version="1") -> str:
    """A text like the API's /metrics (multiprocess mode), with the noise the parser must skip."""
    lines = [
        "# HELP mlci_requests_total HTTP requests by route and status",
        "# TYPE mlci_requests_total counter",
        f'mlci_requests_total{{method="POST",model_version="{version}",route="/predict",status="200"}} {ok}',
        f'mlci_requests_total{{method="POST",model_version="{version}",route="/predict",status="500"}} {errors}',
        f'mlci_requests_total{{method="POST",model_version="{version}",route="/predict",status="422"}} {rejected}',
        f'mlci_requests_total{{method="GET",model_version="{version}",route="/metrics",status="200"}} 999',
        'mlci_requests_total{route="/predict",status="200",model_version="x"} not-a-number',
        "mlci_requests_total{broken",
        'mlci_requests_total{route="/predict",status="200",model_version="y"} +Inf',
        f'mlci_model_info{{name="m",model_version="{version}"}} 1',
    ]
    for le, count in (buckets or {}).items():
        lines.append(
            f'mlci_request_duration_seconds_bucket{{le="{le}",model_version="{version}",route="/predict",status="200"}}'
            f" {count}"
        )
    lines.append(
        f'mlci_request_duration_seconds_bucket{{le="0.1",model_version="{version}",route="/version",status="200"}} 5'
    )
    lines.append(
        f'mlci_request_duration_seconds_bucket{{le="bad",model_version="{version}",route="/predict",status="200"}} 5'
    )
    for label, count in (labels or {}).items():
        lines.append(f'mlci_predictions_total{{label="{label}",model_version="{version}"}} {count}')
    return "\n".join(lines) + "\n"


def test_parse_keeps_predict_counters_only():
    sample = traffic.parse(
        exposition(10, 1, 2, {"0.01": 4, "0.1": 9, "+Inf": 10}, {"benign": 7}), at=5.0, model=BLUE_V1
    )
    assert sample.requests == {("200", "1", "POST"): 10.0, ("500", "1", "POST"): 1.0, ("422", "1", "POST"): 2.0}
    assert sample.buckets == {("200", "1", 0.01): 4.0, ("200", "1", 0.1): 9.0, ("200", "1", math.inf): 10.0}
    assert sample.predictions == {("benign", "1"): 7.0}
    assert traffic.parse('mlci_predictions_total{label="a\\"b"} 3', 1.0, BLUE_V1).predictions == {('a"b', ""): 3.0}


def test_parse_is_bounded_in_series(monkeypatch):
    monkeypatch.setattr(traffic, "MAX_SERIES", 3)
    text = "\n".join(f'mlci_predictions_total{{label="c{i}",model_version="1"}} 1' for i in range(10))
    assert len(traffic.parse(text, 1.0, BLUE_V1).predictions) == 3


def test_rates_from_two_samples():
    before = traffic.parse(
        exposition(100, 0, 0, {"0.01": 50, "0.1": 100, "+Inf": 100}, {"a": 60, "b": 40}), 10, BLUE_V1
    )
    after = traffic.parse(
        exposition(140, 10, 10, {"0.01": 60, "0.1": 140, "+Inf": 140}, {"a": 90, "b": 50}), 20, BLUE_V1
    )
    point = traffic.point(before, after)
    assert point is not None
    assert point.rps == pytest.approx(6.0)  # 40 + 10 + 10 requests in 10 s
    assert point.error_rate == pytest.approx(10 / 60)
    assert point.rejected_rate == pytest.approx(10 / 60)
    assert point.classes == {"a": pytest.approx(3.0), "b": pytest.approx(1.0)}
    # 40 observations: 10 under 10 ms, 30 between 10 and 100 ms; the median is rank 20: 10 ms + 10/30 of 90 ms
    assert point.p50_ms == pytest.approx(10 + 90 * 10 / 30)
    assert point.p99_ms == pytest.approx(10 + 90 * (39.6 - 10) / 30)


def test_a_counter_reset_is_never_a_negative_rate():
    """The same version restarted (or a slot whose counters start again): the new value is the increase."""
    before = traffic.parse(exposition(500, 5, 0, {"0.01": 400, "+Inf": 505}, {"a": 500}), 0, BLUE_V1)
    after = traffic.parse(exposition(30, 0, 0, {"0.01": 30, "+Inf": 30}, {"a": 30}), 10, BLUE_V1)
    point = traffic.point(before, after)
    assert point is not None
    assert point.rps == pytest.approx(3.0)
    assert point.error_rate == 0
    assert point.classes == {"a": pytest.approx(3.0)}
    assert point.p50_ms is not None and 0 < point.p50_ms <= 10
    assert traffic.increase({"k": 10.0, "gone": 4.0}, {"k": 3.0, "new": 2.0}) == {"k": 3.0, "new": 2.0}


def test_no_rate_across_a_switch_but_a_marker():
    s1 = traffic.parse(exposition(10, version="1"), 100, BLUE_V1)
    s2 = traffic.parse(exposition(20, version="1"), 103, BLUE_V1)
    s3 = traffic.parse(exposition(7, version="2"), 106, GREEN_V2)  # green's own counters (its smoke test)
    s4 = traffic.parse(exposition(13, version="2"), 109, GREEN_V2)
    assert traffic.point(s2, s3) is None
    data = traffic.traffic([s1, s2, s3, s4], window=60, now=110)
    assert [p.rps for p in data.points] == [pytest.approx(10 / 3), pytest.approx(2.0)]
    assert [(s.at, s.before, s.after) for s in data.switches] == [(106, BLUE_V1, GREEN_V2)]
    assert data.switches[0].text == "v1 (blue) → v2 (green)"
    # outside the window: neither points nor markers
    assert traffic.traffic([s1, s2, s3, s4], window=60, now=1000) == traffic.Traffic(points=[], switches=[])


def test_idle_interval_has_a_rate_of_zero_and_no_latency():
    s1 = traffic.parse(exposition(10, buckets={"0.1": 10, "+Inf": 10}), 0, BLUE_V1)
    s2 = traffic.parse(exposition(10, buckets={"0.1": 10, "+Inf": 10}), 3, BLUE_V1)
    point = traffic.point(s1, s2)
    assert point is not None and point.rps == 0
    assert point.error_rate is None and point.p50_ms is None and point.p99_ms is None
    assert traffic.point(s2, s1) is None  # time went backwards: no figure


@pytest.mark.parametrize(
    ("buckets", "q", "expected"),
    [
        ({0.1: 0, 1.0: 10, math.inf: 10}, 0.5, 0.55),
        ({0.1: 10, 1.0: 10, math.inf: 10}, 0.5, 0.05),
        ({0.1: 0, 1.0: 0, math.inf: 10}, 0.99, 1.0),  # all above the top bound: the top bound
        ({0.1: 5, 1.0: 5, math.inf: 10}, 0.5, 0.1),  # rank exactly on a bound
        ({0.1: 4, 0.5: 4, 1.0: 8, math.inf: 8}, 0.5, 0.1),  # empty bucket at the rank: its lower edge
        ({0.1: 1, 1.0: 1}, 0.5, None),  # no +Inf bucket
        ({math.inf: 0}, 0.5, None),  # no observation
        ({}, 0.5, None),
        ({0.1: 0, 1.0: 5, math.inf: 5}, 0.0, 0.1),  # rank 0 on an empty first bucket
        ({0.1: 9, 1.0: 2, math.inf: 5}, 0.99, 0.055),  # a torn scrape: the first bucket reaching the rank
    ],
)
def test_quantile(buckets, q, expected):
    result = traffic.quantile(q, buckets)
    assert result == (pytest.approx(expected) if expected is not None else None)


def test_series_is_bounded_ordered_and_shared_per_url():
    series = traffic.Series(max_samples=5)
    assert series.due(0.0, 1.0)
    for at in range(8):
        series.add(Sample(at=float(at), model=BLUE_V1))
    series.add(Sample(at=3.0, model=BLUE_V1))  # a late scrape from a slower session is dropped
    assert [s.at for s in series.samples()] == [3.0, 4.0, 5.0, 6.0, 7.0]
    assert not series.due(7.5, 1.0) and series.due(8.0, 1.0)
    assert traffic.series("http://a") is traffic.series("http://a")
    assert traffic.series("http://a") is not traffic.series("http://b")


def test_series_remembers_a_bounded_number_of_urls(monkeypatch):
    monkeypatch.setattr(traffic, "_SERIES", {})
    for i in range(traffic.MAX_URLS + 3):
        traffic.series(f"http://api-{i}")
    assert len(traffic._SERIES) == traffic.MAX_URLS
    assert "http://api-0" not in traffic._SERIES


def test_series_is_thread_safe():
    series = traffic.Series(max_samples=10_000)

    def add(offset: int) -> None:
        for i in range(500):
            series.add(Sample(at=offset + i * 4.0, model=BLUE_V1))

    threads = [threading.Thread(target=add, args=(k,)) for k in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    times = [s.at for s in series.samples()]
    assert times == sorted(times) and len(set(times)) == len(times)


def test_charts_carry_the_switch_markers():
    s1 = traffic.parse(exposition(10, buckets={"0.1": 10, "+Inf": 10}, labels={"a": 10}), 100, BLUE_V1)
    s2 = traffic.parse(exposition(20, buckets={"0.1": 20, "+Inf": 20}, labels={"a": 20}), 103, BLUE_V1)
    s3 = traffic.parse(exposition(5, version="2"), 106, GREEN_V2)
    data = traffic.traffic([s1, s2, s3], window=60, now=107)
    spec = traffic_charts.lines(data, ["p50 ms", "p99 ms"], "latency (ms)").to_dict()
    assert [layer["mark"]["type"] for layer in spec["layer"]] == ["line", "rule"]
    rules = [r for r in spec["datasets"].values() if r and "switch" in r[0]]
    assert rules == [[{"time": "1970-01-01T00:01:46", "switch": "v1 (blue) → v2 (green)"}]]
    assert spec["layer"][0]["encoding"]["detail"] == {"field": "segment", "type": "nominal"}
    mix = traffic_charts.class_mix(data).to_dict()
    assert mix["layer"][0]["mark"]["type"] == "line"
    assert mix["layer"][0]["encoding"]["detail"] == {"field": "segment", "type": "nominal"}
    s4 = traffic.parse(exposition(9, version="2", labels={"b": 4}, buckets={"0.1": 4, "+Inf": 4}), 109, GREEN_V2)
    both = traffic.traffic([s1, s2, s3, s4], window=60, now=110)
    assert traffic_charts.frame(both)["segment"].tolist() == [0, 1]  # one line before the switch, one after
    assert traffic_charts.classes_frame(both)[["segment", "class"]].values.tolist() == [[0, "a"], [1, "b"]]
    no_switch = traffic.traffic([s1, s2], window=60, now=107)
    assert traffic_charts.lines(no_switch, ["requests/s"], "requests/s").to_dict()["mark"]["type"] == "line"


def test_parse_edge_lines_and_samples_at_the_same_time():
    text = "mlci_predictions_total 5\nmlci_predictions_total_other 3\n"
    assert traffic.parse(text, 1.0, BLUE_V1).predictions == {("", ""): 5.0}  # no labels; other names skipped
    same = [Sample(at=5.0, model=BLUE_V1), Sample(at=5.0, model=BLUE_V1)]
    assert traffic.traffic(same, window=60, now=6.0) == traffic.Traffic(points=[], switches=[])


def test_a_scrape_straddling_a_switch_is_not_consistent():
    """/version said v1 but /metrics came from the process serving v2: that sample must not be kept."""
    assert traffic.parse(exposition(5), 1.0, BLUE_V1).served == frozenset({"1"})
    assert traffic.parse(exposition(5), 1.0, BLUE_V1).consistent
    assert not traffic.parse(exposition(5, version="2"), 1.0, BLUE_V1).consistent
    assert traffic.parse('mlci_model_info{name="m",model_version="2"} 0', 1.0, BLUE_V1).consistent  # a dead worker's
    assert Sample(at=1.0, model=BLUE_V1).consistent  # an API that exports no model info: taken as it is
