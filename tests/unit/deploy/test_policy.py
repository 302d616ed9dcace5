"""The promotion policy's decisions, without Docker or MLflow: what a version needs before an
environment accepts it, what is said when it lacks something, and what an override records."""

from __future__ import annotations

import pytest

from mlci.core import config as config_module
from mlci.core.errors import BadInput, CheckFailed, ConfigError
from mlci.deploy import policy

FULL = ["gate", "staging", "approver"]


def facts(version="7", production=None, approver="alice", **tags) -> policy.Facts:
    return policy.Facts(version=version, tags=tags, production_version=production, approver=approver)


def passed(against="none", staging=True, **more) -> dict[str, str]:
    tags = {"mlci.gate.result": "passed", "mlci.gate.against": against, **more}
    if staging:
        tags["mlci.staging.verified_at"] = "2026-11-27T10:00:00Z"
    return tags


def test_a_version_that_meets_everything_passes_without_override():
    verdict = policy.decide("production", FULL, facts(**passed()))
    assert verdict.unmet == [] and not verdict.forced and verdict.tags() == {}
    assert verdict.record() == {"requirements": FULL, "forced": False, "force_reason": None, "skipped": []}


def test_each_missing_requirement_is_named_with_the_command_that_meets_it():
    with pytest.raises(CheckFailed) as caught:
        policy.decide("production", FULL, facts(approver=None))
    error = caught.value
    assert error.exit_code == 1 and "3 requirement(s)" in error.message and "nothing was changed" in error.message
    assert error.details == [
        "gate: v7 has not passed the gate; to meet it: mlci gate --version 7",
        "staging: v7 was never deployed and verified in staging; to meet it: mlci deploy --env staging --version 7",
        "approver: nobody is named as having approved v7 for production; "
        "to meet it: pass --approver NAME (Jenkins: the approval stage sets it)",
    ]
    assert "--force --reason" in error.hint


def test_a_failed_gate_is_not_a_pass():
    unmet = policy.missing("production", ["gate"], facts(**{"mlci.gate.result": "failed"}))
    assert [u.why for u in unmet] == ["v7 failed the gate"]


def test_a_gate_passed_against_an_older_production_must_be_run_again():
    unmet = policy.missing("production", ["gate"], facts(production="5", **passed(against="4")))
    assert unmet[0].why == "v7 passed the gate against v4, but production now serves v5"
    # passed against the floor, and production has served v5 since
    unmet = policy.missing("production", ["gate"], facts(production="5", **passed(against="none")))
    assert "against no production version" in unmet[0].why
    # and the converse: gated against v5, production emptied (mlci down) since
    unmet = policy.missing("production", ["gate"], facts(production=None, **passed(against="5")))
    assert "production now serves no production version" in unmet[0].why


def test_a_gate_against_what_production_serves_now_passes():
    assert policy.missing("production", ["gate"], facts(production="5", **passed(against="5"))) == []


def test_an_alias_moved_by_hand_is_not_a_verified_deploy():
    # `mlci promote 7 --to staging` writes mlci.staging.at/by, never verified_at
    tags = {"mlci.staging.at": "2026-11-27T10:00:00Z", "mlci.staging.by": "bob"}
    assert [u.requirement for u in policy.missing("production", ["staging"], facts(**tags))] == ["staging"]


def test_a_blank_approver_is_no_approver():
    assert [u.requirement for u in policy.missing("production", ["approver"], facts(approver="  "))] == ["approver"]


def test_an_override_needs_a_reason():
    with pytest.raises(BadInput, match="--force needs --reason"):
        policy.decide("production", FULL, facts(), force=True, reason=" ")


def test_an_override_is_recorded_with_who_why_and_what_was_skipped():
    verdict = policy.decide(
        "production", FULL, facts(**passed(staging=False)), force=True, reason="hotfix for incident 42", actor="carol"
    )
    assert verdict.forced
    assert verdict.tags() == {
        "mlci.production.forced": "hotfix for incident 42",
        "mlci.production.forced_by": "carol",
        "mlci.production.skipped": "staging",
    }
    assert verdict.record()["skipped"] == ["staging"] and verdict.record()["force_reason"] == "hotfix for incident 42"


def test_force_with_nothing_missing_records_no_override():
    verdict = policy.decide("production", FULL, facts(**passed()), force=True, reason="just in case", actor="carol")
    assert not verdict.forced and verdict.tags() == {}


# --- the policy in mlci.yaml -----------------------------------------------------------------------


def config(environments: dict) -> config_module.Config:
    raw = {
        "project": "demo",
        "data": {"path": "d.csv", "target": "y", "features": {"x": "numeric"}},
        "model": {"estimator": "sklearn.linear_model.LogisticRegression"},
        "gate": {"threshold": 0.5},
        "environments": environments,
    }
    return config_module.parse(raw)


def test_production_requires_gate_staging_and_approver_by_default():
    both = config({"staging": {"port": 8081}, "production": {"port": 8080}})
    assert both.requirements("production") == FULL
    assert both.requirements("staging") == []
    # no staging to have been verified in: the default cannot name it
    assert config({"production": {"port": 8080}}).requirements("production") == ["gate", "approver"]


def test_requirements_are_configurable_per_environment():
    custom = config(
        {
            "staging": {"port": 8081, "requires": ["gate"]},
            "production": {"port": 8080, "requires": ["staging", "approver"]},
        }
    )
    assert custom.requirements("staging") == ["gate"]
    assert custom.requirements("production") == ["staging", "approver"]
    assert config({"production": {"port": 8080, "requires": []}}).requirements("production") == []


@pytest.mark.parametrize("bad", ["qa", "production"])
def test_an_unknown_requirement_is_a_config_error_naming_the_key(bad):
    with pytest.raises(ConfigError) as caught:
        config({"staging": {"port": 8081}, "production": {"port": 8080, "requires": ["gate", bad]}})
    assert any("environments.production.requires" in line and repr(bad) in line for line in caught.value.details)


def test_an_override_reason_and_an_approver_are_short_text():
    with pytest.raises(BadInput, match="--reason is 501 characters"):
        policy.decide("production", FULL, facts(), force=True, reason="x" * 501)
    with pytest.raises(BadInput, match="--approver is 201 characters"):
        policy.decide("production", FULL, facts(approver="a" * 201, **passed()))
