"""Promotion policy: may this version go to this environment? Decided in the tool, not by the order of
the Jenkinsfile's stages.

An environment lists what a version needs first (`environments.<env>.requires` in mlci.yaml):
- `gate`: it passed `mlci gate` against the version production serves now (tags `mlci.gate.result`
  and `mlci.gate.against`: a pass against an older production says nothing about today's);
- `approver`: somebody is named as having approved it (`--approver`, MLCI_APPROVER);
- another environment's name: it was deployed there and verified through that router (the tag
  `mlci.<env>.verified_at`, written only by a deploy whose verification passed).
The decision is a pure function of those facts (`missing`); `check` reads them from the registry and
says, for each requirement not met, why and what command meets it. `--force --reason` overrides, and
the override is recorded on the version and in the deploy history.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mlci.contract import mlflow_reads
from mlci.core.config import Config
from mlci.core.errors import BadInput, CheckFailed
from mlci.track import registry

GATE, APPROVER = "gate", "approver"
# An override's reason and an approver's name become registry tags and history lines: short text.
MAX_REASON, MAX_APPROVER = 500, 200
NO_PRODUCTION = registry.NO_PRODUCTION


def verified_tag(env_name: str) -> str:
    return f"mlci.{env_name}.verified_at"


@dataclass(frozen=True)
class Facts:
    """What the registry and the command line say about the version, at the moment of the deploy."""

    version: str
    tags: dict[str, str]
    production_version: str | None
    approver: str | None


@dataclass(frozen=True)
class Unmet:
    requirement: str
    why: str
    how: str


@dataclass(frozen=True)
class Verdict:
    env: str
    version: str
    requirements: list[str]
    unmet: list[Unmet] = field(default_factory=list)
    forced_by: str | None = None
    reason: str | None = None

    @property
    def forced(self) -> bool:
        return bool(self.unmet) and self.reason is not None

    def facts(self) -> dict[str, str]:
        """What a forced deploy records with the alias move (tags `mlci.<env>.<key>`), once it succeeded."""
        if not self.forced:
            return {}
        return {
            "forced": self.reason or "",
            "forced_by": self.forced_by or "",
            "skipped": ", ".join(u.requirement for u in self.unmet),
        }

    def tags(self) -> dict[str, str]:
        return {f"mlci.{self.env}.{key}": value for key, value in self.facts().items()}

    def record(self) -> dict[str, object]:
        """The policy part of the deploy history record."""
        return {
            "requirements": self.requirements,
            "forced": self.forced,
            "force_reason": self.reason if self.forced else None,
            "skipped": [u.requirement for u in self.unmet] if self.forced else [],
        }


def missing(env_name: str, requirements: list[str], facts: Facts) -> list[Unmet]:
    """Each requirement the version does not meet, with why and what to run (pure: no I/O)."""
    unmet = []
    version = facts.version
    for requirement in requirements:
        if requirement == GATE:
            result = facts.tags.get("mlci.gate.result")
            against = facts.tags.get("mlci.gate.against")
            now = facts.production_version or NO_PRODUCTION
            shown = f"v{now}" if facts.production_version else "no production version"
            if result != "passed":
                why = f"v{version} {'failed' if result == 'failed' else 'has not passed'} the gate"
                unmet.append(Unmet(GATE, why, f"mlci gate --version {version}"))
            elif against != now:
                was = f"v{against}" if against and against != NO_PRODUCTION else "no production version"
                why = f"v{version} passed the gate against {was}, but production now serves {shown}"
                unmet.append(Unmet(GATE, why, f"mlci gate --version {version} (judges it against {shown})"))
        elif requirement == APPROVER:
            if not (facts.approver or "").strip():
                why = f"nobody is named as having approved v{version} for {env_name}"
                unmet.append(Unmet(APPROVER, why, "pass --approver NAME (Jenkins: the approval stage sets it)"))
        elif not facts.tags.get(verified_tag(requirement)):
            why = f"v{version} was never deployed and verified in {requirement}"
            unmet.append(Unmet(requirement, why, f"mlci deploy --env {requirement} --version {version}"))
    return unmet


def decide(
    env_name: str,
    requirements: list[str],
    facts: Facts,
    force: bool = False,
    reason: str | None = None,
    actor: str | None = None,
) -> Verdict:
    """Pass, refuse (CheckFailed, exit 1, naming each unmet requirement) or pass by force (recorded)."""
    if force and not (reason or "").strip():
        raise BadInput("--force needs --reason TEXT: an override is recorded with who and why")
    if reason is not None and len(reason) > MAX_REASON:
        raise BadInput(f"--reason is {len(reason)} characters; at most {MAX_REASON}", hint="link a ticket instead")
    if facts.approver is not None and len(facts.approver) > MAX_APPROVER:
        raise BadInput(f"--approver is {len(facts.approver)} characters; at most {MAX_APPROVER}")
    unmet = missing(env_name, requirements, facts)
    if unmet and not force:
        raise CheckFailed(
            f"v{facts.version} may not be deployed to {env_name}: {len(unmet)} requirement(s) of "
            f"environments.{env_name}.requires not met; nothing was changed",
            details=[f"{u.requirement}: {u.why}; to meet it: {u.how}" for u in unmet],
            hint=f"meet them, or override with --force --reason TEXT (recorded on v{facts.version})",
        )
    return Verdict(
        env=env_name,
        version=facts.version,
        requirements=list(requirements),
        unmet=unmet,
        forced_by=actor if unmet else None,
        reason=reason.strip() if unmet and reason else None,
    )


def check(
    config: Config,
    env_name: str,
    client,
    version: str,
    approver: str | None,
    force: bool = False,
    reason: str | None = None,
) -> Verdict:
    """The policy verdict for deploying `version` to `env_name`, from the registry's facts."""
    requirements = config.requirements(env_name)
    if not requirements and not force:
        return Verdict(env=env_name, version=version, requirements=[])
    info = registry.resolve(client, config.model_name, version=version)
    production = mlflow_reads.alias_map(client, config.model_name).get("production")
    facts = Facts(version=info.version, tags=info.tags, production_version=production, approver=approver)
    return decide(env_name, requirements, facts, force=force, reason=reason, actor=registry.actor())
