"""What an environment serves, read from its Docker host: the router's live colour, each slot's
container labels, and the history in the state volume. Read without the lock, so `mlci status`
never waits for a deploy."""

from __future__ import annotations

from mlci.core.config import Config
from mlci.deploy import decisions, state
from mlci.deploy.environment_status import DeployRecord, EnvironmentStatus, SlotStatus
from mlci.deploy.router import COLOURS, LIVE
from mlci.deploy.slots import host_image, open_context


def environment_status(config: Config, env_name: str) -> EnvironmentStatus:
    """Live colour, each slot's image, version and health, the router, the last deploys."""
    ctx = open_context(config, env_name)
    router_state = ctx.router.state()
    live = ctx.router.colour(LIVE) if router_state and router_state["State"]["Running"] else None
    slots: dict[str, SlotStatus | None] = {}
    for colour in COLOURS:
        container = ctx.docker.inspect("container", ctx.names.slot(colour))
        if container is None:
            slots[colour] = None
            continue
        labels = container["Config"]["Labels"] or {}
        slots[colour] = SlotStatus(
            container=ctx.names.slot(colour),
            image=container["Config"]["Image"],
            model_version=labels.get("io.mlci.model.version"),
            deployed_at=labels.get("io.mlci.deployed_at"),
            state=container["State"]["Status"],
            health=(container["State"].get("Health") or {}).get("Status"),
            live=colour == live,
        )
    records = state.read(ctx.docker, ctx.names, host_image(ctx))
    current = decisions.serving(records)
    return EnvironmentStatus(
        env=env_name,
        url=ctx.router.url,
        preview_url=ctx.router.preview_url,
        router=router_state["State"]["Status"] if router_state else "missing",
        live=live,
        slots=slots,
        current=DeployRecord.from_record(current) if current else None,
        last_deploys=[DeployRecord.from_record(r) for r in records[-5:]],
        host=config.environment(env_name).docker_host or "local engine",
    )
