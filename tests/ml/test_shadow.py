"""Shadow traffic without Docker: the config key, the router config it renders, and the join of the two
rings' answers (ml/shadow.py) with its statistics."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from ml import config as config_module
from ml import router, shadow
from ml.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


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
    assert "mirror" not in router.render(config, "production", config.environments["production"])


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
    result = shadow.compare(production, candidate)
    assert result.mirrored == 5 and result.compared == 2 and result.unmatched == 1
    assert result.rows == 3 and result.agreement == pytest.approx(2 / 3, abs=1e-6)
    assert result.mean_probability_diff == pytest.approx((0.1 + 0.2 + 0.0) / 3, abs=1e-6)
    assert result.max_probability_diff == pytest.approx(0.2, abs=1e-6)
    assert result.candidate_errors == 1
    assert result.candidate_p50_ms == 10 and result.candidate_p99_ms == 30


def test_compare_with_nothing_mirrored_says_so():
    result = shadow.compare([answer("1")], [answer("1")])
    assert result.mirrored == 0 and result.compared == 0 and result.agreement is None
    report = shadow.ShadowReport("staging", "production", 0.1, True, "2", "1", result)
    assert "no compared request yet" in shadow.summarize(report)


def test_percentile_is_a_latency_someone_had():
    values = [float(v) for v in range(1, 101)]
    assert shadow.percentile(values, 50) == 50 and shadow.percentile(values, 99) == 99
    assert shadow.percentile([], 50) is None


def test_report_without_a_mirror_says_how_to_set_one():
    from ml.errors import BadInput

    with pytest.raises(BadInput) as caught:
        shadow.report(demo(), "staging")
    assert "environments.production.shadow" in (caught.value.hint or "")
