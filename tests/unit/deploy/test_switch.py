"""The switch protocol's decisions without an engine: whatever stops a switch after its first step
(an abort as SystemExit included, even while the switch is being announced) puts live traffic back."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from mlci.deploy import switch as switch_module
from mlci.deploy.router import LIVE, PREVIEW


class Router:
    url = "http://127.0.0.1:1"

    def __init__(self):
        self.points: list[tuple[str, str | None]] = []

    def point(self, listener: str, colour: str | None) -> None:
        self.points.append((listener, colour))


def context(router: Router):
    names = SimpleNamespace(router="p-production-router", slot=lambda colour: f"p-production-{colour}")
    environment = SimpleNamespace(checks=SimpleNamespace(verify_seconds=0.1), drain_seconds=0)
    return SimpleNamespace(router=router, names=names, env=environment, docker=None, env_name="production")


@pytest.fixture(autouse=True)
def no_engine(monkeypatch):
    monkeypatch.setattr(switch_module.containers, "set_cpu_shares", lambda *_: None)


def abort(_line: str) -> None:
    raise SystemExit(143)  # SIGTERM, as mlci's handler raises it, landing while the switch is announced


def test_an_abort_while_the_switch_is_announced_puts_live_back(monkeypatch):
    router = Router()
    monkeypatch.setattr(switch_module.checks, "verify", lambda *_: pytest.fail("no verification after an abort"))
    with pytest.raises(SystemExit):
        switch_module.switch(context(router), SimpleNamespace(), "blue", "green", None, note=abort)
    assert router.points == [(LIVE, "green"), (LIVE, "blue"), (PREVIEW, "green")]


def test_a_failed_verification_switches_back_and_says_so(monkeypatch):
    router = Router()

    def failing(*_):
        raise RuntimeError("3 of 10 probes failed")

    monkeypatch.setattr(switch_module.checks, "verify", failing)
    with pytest.raises(switch_module.SwitchedBack, match="3 of 10 probes failed") as raised:
        switch_module.switch(context(router), SimpleNamespace(), "blue", "green", None, note=lambda _: None)
    assert raised.value.live == "blue"
    assert router.points == [(LIVE, "green"), (LIVE, "blue"), (PREVIEW, "green")]


def test_the_first_deploy_switched_back_serves_nothing(monkeypatch):
    router = Router()
    monkeypatch.setattr(switch_module.checks, "verify", lambda *_: (_ for _ in ()).throw(RuntimeError("no")))
    with pytest.raises(switch_module.SwitchedBack):
        switch_module.switch(context(router), SimpleNamespace(), None, "blue", None, note=lambda _: None)
    assert router.points == [(LIVE, "blue"), (LIVE, None)]


def test_a_verified_switch_moves_the_alias_and_keeps_the_old_colour_on_preview(monkeypatch):
    router, aliased = Router(), []
    monkeypatch.setattr(switch_module.checks, "verify", lambda *_: {"probes": 10})
    monkeypatch.setattr(switch_module, "set_alias", lambda ctx, target, colour, *_: aliased.append(colour))
    target = SimpleNamespace(model_name="m", model_version="2")
    counts = switch_module.switch(context(router), target, "blue", "green", None, note=lambda _: None)
    assert counts == {"probes": 10} and aliased == ["green"]
    assert router.points == [(LIVE, "green"), (PREVIEW, "blue")]
