"""The deploy's pure decisions, without Docker or MLflow: history replay, where a rollback goes,
who holds an environment's lock."""

from __future__ import annotations

import json

from mlci.deploy import decisions
from mlci.deploy.decisions import Holder, IdleSlot, RollbackPlan


def record(result: str, image: str | None = None, version: str | None = None) -> dict:
    return {"result": result, "image": image, "model_version": version}


V1, V2, BAD = "p-api:1-abc", "p-api:2-def", "p-api:mislabelled"


def test_serving_replays_the_history():
    assert decisions.serving([]) is None
    history = [record("deployed", V1, "1"), record("deployed", V2, "2"), record("failed", BAD)]
    assert decisions.serving(history)["image"] == V2  # a failed deploy leaves the previous one serving
    assert decisions.serving([*history, record("rolled back", BAD)])["image"] == V2
    assert decisions.serving([*history, record("rollback", V1, "1")])["image"] == V1
    assert decisions.serving([*history, record("down")]) is None
    assert decisions.serving([*history, record("down"), record("deployed", V1)])["image"] == V1


def test_since_down_keeps_the_current_life_only():
    history = [record("deployed", V1), record("down"), record("deployed", V2)]
    assert decisions.since_down(history) == [record("deployed", V2)]
    assert decisions.since_down(history[:1]) == history[:1]
    assert decisions.since_down(history[:2]) == []


def test_rollback_switches_to_the_idle_colour_when_it_holds_what_served_before():
    history = [record("deployed", V1), record("deployed", V2)]
    plan = decisions.rollback_plan(history, IdleSlot("blue", V1, running=True))
    assert plan == RollbackPlan(switch_to="blue", redeploy_image=V1)


def test_rollback_never_switches_to_a_failed_deploy_left_in_the_idle_slot():
    history = [record("deployed", V2), record("deployed", V1), record("failed", BAD)]
    plan = decisions.rollback_plan(history, IdleSlot("green", BAD, running=True))
    assert plan == RollbackPlan(switch_to=None, redeploy_image=V2)


def test_rollback_redeploys_when_the_idle_slot_is_stopped_or_gone():
    history = [record("deployed", V1), record("deployed", V2)]
    assert decisions.rollback_plan(history, IdleSlot("blue", V1, running=False)) == RollbackPlan(None, V1)
    assert decisions.rollback_plan(history, None) == RollbackPlan(None, V1)


def test_rollback_ignores_what_served_before_the_last_down():
    history = [record("deployed", V1), record("down"), record("deployed", V2)]
    assert decisions.rollback_plan(history, None) == RollbackPlan(None, None)
    # With no record at all (a history lost with its volume) a running idle slot is still a target.
    assert decisions.rollback_plan([], IdleSlot("green", V1, running=True)) == RollbackPlan("green", None)


def test_rollback_skips_records_of_the_image_that_serves_now():
    history = [record("deployed", V1), record("deployed", V2), record("deployed", V1)]
    assert decisions.rollback_plan(history, None).redeploy_image == V2


def test_parse_history_skips_what_mlci_did_not_write():
    lines = [json.dumps(record("deployed", V1)), "{torn", "[1, 2]", "", "x" * (decisions.MAX_LINE + 1)]
    assert decisions.parse_history("\n".join(lines)) == [record("deployed", V1)]


def test_parse_history_reads_the_last_records_only():
    text = "\n".join(json.dumps({"result": "deployed", "n": n}) for n in range(decisions.KEEP + 50))
    records = decisions.parse_history(text)
    assert len(records) == decisions.KEEP and records[-1]["n"] == decisions.KEEP + 49


def test_lock_holder_round_trips_through_its_label():
    holder = Holder(by="alice", build="https://ci/job/7/", host="agent-3", pid=4242, since="2026-01-01", token="t")
    parsed = decisions.parse_holder(decisions.holder_label(holder))
    assert parsed == holder
    assert parsed.describe() == "alice (build https://ci/job/7/, host agent-3, pid 4242, since 2026-01-01)"


def test_lock_holder_label_that_is_not_mlci_s():
    for label in (None, "", "not json", "[1]", '"text"'):
        assert decisions.parse_holder(label).describe() == "another process"
    odd = decisions.parse_holder(json.dumps({"by": "x" * 1000, "pid": True, "build": {"a": 1}, "extra": "y"}))
    assert odd.by == "x" * decisions.MAX_FIELD and odd.pid is None and odd.build is None
    assert decisions.parse_holder(json.dumps({"by": "bob"})).describe() == "bob"
