"""Blue/green deploys of one environment, split along its concerns:

- orchestrate: the commands (deploy, rollback, down) in the order they move things
- switch: the switch → verify → switch-back protocol, written once
- slots / checks: what to deploy and where, and the checks before and after the switch
- lock / state: the environment's lock and history, kept on its Docker host (docs/deploy.md)
- decisions: pure rules (what serves, where a rollback goes, who holds the lock), unit-tested
- environment: what an environment serves, for `mlci status`
"""

from ml.deploy.environment import environment_status
from ml.deploy.orchestrate import DEFAULT_LOCK_TIMEOUT, Outcome, deploy, down, rollback
from ml.deploy.slots import Target, resolve_target, role_image

__all__ = [
    "DEFAULT_LOCK_TIMEOUT",
    "Outcome",
    "Target",
    "deploy",
    "down",
    "environment_status",
    "resolve_target",
    "role_image",
    "rollback",
]
