"""The switch → verify → switch-back protocol, written once for deploys and rollbacks.

The router's `live` symlink moves to the new colour; verification probes go through the router;
only then does the registry alias move. If anything fails after the switch, `live` goes back to the
colour that served before (or to none) at once, and the failed colour stays reachable on the
preview listener for inspection. On success the previous colour becomes the preview: it keeps
running, so the next rollback is a switch back.
"""

from __future__ import annotations

from collections.abc import Callable

from mlci.core import env
from mlci.deploy import checks
from mlci.deploy.router import LIVE, PREVIEW
from mlci.deploy.slots import Context, Target
from mlci.ship import containers
from mlci.track import registry, tracking


class SwitchedBack(Exception):
    """The new colour failed after the switch; live traffic is back on the previous colour."""

    def __init__(self, error: Exception, live: str | None):
        super().__init__(str(error))
        self.error, self.live = error, live
        self.reason = getattr(error, "message", str(error))


def set_alias(
    ctx: Context, target: Target, colour: str, approver: str | None, forced: dict[str, str] | None = None
) -> None:
    """The registry alias named after the environment: what it serves, for every tool that reads MLflow.
    Only here, after verification through the router, is `verified_at` written: the promotion policy
    trusts it (an alias moved by hand with `mlci promote` does not write it)."""
    client = tracking.connect(ctx.config)
    registry.set_alias(
        client,
        ctx.config.model_name,
        ctx.env_name,
        target.model_version,
        colour=colour,
        image=target.image,
        approver=approver or "",
        build=env.ci().build_url or "",
        verified_at=registry.now(),
        **(forced or {}),
    )


def switch(
    ctx: Context,
    target: Target,
    live: str | None,
    new: str,
    approver: str | None,
    note: Callable[[str], None],
    forced: dict[str, str] | None = None,
) -> dict[str, int]:
    """Send live traffic to `new`, verify it through the router, move the alias; on any failure
    switch back to `live` and raise SwitchedBack."""
    router = ctx.router
    # A warming slot ran at a quarter of the CPU weight; the live one gets the full weight.
    containers.set_cpu_shares(ctx.docker, ctx.names.slot(new), 1024)
    try:
        # Inside the try from the first step: an abort that lands while the switch is being made or
        # announced (the log line is what Jenkins' user sees before pressing abort) still switches back.
        router.point(LIVE, new)
        note(f"switched {ctx.names.router} live -> {new} (no reload)")
        counts = checks.verify(router, target, ctx.env.checks.verify_seconds, ctx.env.drain_seconds)
        note(f"verified through {router.url}: {counts['probes']} probes, 0 errors")
        set_alias(ctx, target, new, approver, forced)
        note(f"registry alias @{ctx.env_name} -> {target.model_name} v{target.model_version}")
    except BaseException as error:  # whatever stopped it (an abort too), live traffic goes back first
        router.point(LIVE, live)
        if live:
            router.point(PREVIEW, new)
        if not isinstance(error, Exception):
            raise  # KeyboardInterrupt / SystemExit: back on the previous colour, then stop as asked
        raise SwitchedBack(error, live) from error
    if live:
        router.point(PREVIEW, live)  # the previous colour stays reachable for checks and rollback
    return counts
