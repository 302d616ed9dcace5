"""Blue/green deploys of one environment, split along its concerns:

- orchestrate: the commands (deploy, rollback, down) in the order they move things
- switch: the switch → verify → switch-back protocol, written once
- slots / checks: what to deploy and where, and the checks before and after the switch
- lock / state: the environment's lock and history, kept on its Docker host (docs/deploy.md)
- decisions: pure rules (what serves, where a rollback goes, who holds the lock), unit-tested
- environment: what an environment serves, for `mlci status` (typed in environment_status)
- policy: may this version go to this environment; router: the router and its two slots
- shadow, shadow_answers, shadow_compare: production's mirror to staging and its report

Nothing is imported here: `import mlci.cli` must not pull Docker and MLflow in for `mlci --help`.
"""
