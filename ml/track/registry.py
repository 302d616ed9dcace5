"""The model registry: versions, the aliases that say which version each environment runs, and
who moved them when (as tags on the version)."""

from __future__ import annotations

import contextlib
import getpass
import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime

from mlci.contract.mlflow_reads import alias_map, is_missing
from mlci.core import env
from mlci.core.errors import BadInput

CANDIDATE = "candidate"
STAGING = "staging"
# What `mlci gate` records as `mlci.gate.against` when production served nothing (the policy reads it).
NO_PRODUCTION = "none"
PRODUCTION = "production"
# Branches other than the deploy branch move candidate-<slug>: MLflow aliases are [A-Za-z0-9_-], and a
# short slug keeps them readable in the UI and in `mlci status`.
BRANCH_CANDIDATE_PREFIX = "candidate-"
MAX_SLUG = 40
HASH_CHARS = 8
# The bundle digest `mlci package` records on the model version: outside the bundle, so whoever can
# edit the bundle cannot edit the record of it. Builds and deploys read it back from here.
BUNDLE_DIGEST_TAG = "mlci.bundle.sha256"


@dataclass(frozen=True)
class VersionInfo:
    version: str
    run_id: str
    aliases: list[str]
    created_at: str
    tags: dict[str, str]

    @property
    def commit(self) -> str:
        return self.tags.get("mlci.commit", "unknown")


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def actor() -> str:
    """Who is acting: the Jenkins user when a build runs it, else the local user."""
    ci = env.ci()
    return ci.build_user_id or ci.user or getpass.getuser()


def _info(mv, aliases: list[str]) -> VersionInfo:
    created = datetime.fromtimestamp(mv.creation_timestamp / 1000, UTC).isoformat(timespec="seconds")
    return VersionInfo(
        version=str(mv.version), run_id=mv.run_id, aliases=sorted(aliases), created_at=created, tags=dict(mv.tags or {})
    )


def versions(client, name: str) -> list[VersionInfo]:
    """Every version of the model, newest first, with its aliases."""
    by_version: dict[str, list[str]] = {}
    for alias, version in alias_map(client, name).items():
        by_version.setdefault(version, []).append(alias)
    found = client.search_model_versions(f"name = '{name}'")
    infos = [_info(mv, by_version.get(str(mv.version), [])) for mv in found]
    return sorted(infos, key=lambda info: int(info.version), reverse=True)


def registered_digest(client, name: str, version: str) -> str | None:
    """The bundle digest recorded on the model version by the last `mlci package` of it."""
    return (client.get_model_version(name, version).tags or {}).get(BUNDLE_DIGEST_TAG)


def branch_slug(branch: str) -> str:
    """A branch name as part of an alias: lowercase [a-z0-9-], at most MAX_SLUG characters (PR-12 -> pr-12).
    A name that had to be cut (or had no usable character) ends with a hash of the whole name, so two
    long branches sharing a prefix do not share an alias."""
    slug = re.sub(r"[^a-z0-9]+", "-", branch.lower()).strip("-")
    if slug and len(slug) <= MAX_SLUG:
        return slug
    digest = hashlib.sha256(branch.encode("utf-8")).hexdigest()[:HASH_CHARS]
    head = slug[: MAX_SLUG - HASH_CHARS - 1].rstrip("-")
    return f"{head}-{digest}" if head else digest


def candidate_alias(branch: str | None, deploy_branch: str, pull_request: str | None = None) -> str:
    """The alias a training moves: @candidate on the deploy branch (or when no branch is known),
    candidate-<slug> on any other branch or pull request, so no branch moves another's candidate."""
    if branch is None or (branch == deploy_branch and not pull_request):
        return CANDIDATE
    return BRANCH_CANDIDATE_PREFIX + branch_slug(branch)


def resolve(client, name: str, version: str | None = None, alias: str | None = None) -> VersionInfo:
    """The version asked for (by number or by alias), or BadInput saying what exists."""
    from mlflow.exceptions import MlflowException

    if version is None and alias is None:
        raise BadInput("no model version named", hint="pass --version N or --alias NAME")
    aliases = alias_map(client, name)
    if not aliases and not client.search_model_versions(f"name = '{name}'"):
        raise BadInput(f"model {name!r} has no registered version", hint="run mlci train first")
    if version is None:
        if alias not in aliases:
            known = ", ".join(f"@{a} -> v{v}" for a, v in sorted(aliases.items())) or "none"
            raise BadInput(f"model {name!r} has no version with alias @{alias} (aliases: {known})")
        version = aliases[str(alias)]
    if not str(version).isdigit():
        raise BadInput(f"model version must be a number, got {version!r}")
    try:
        mv = client.get_model_version(name, str(version))
    except MlflowException as error:
        if is_missing(error):
            raise BadInput(f"model {name!r} has no version {version}", hint="mlci status lists the versions") from None
        raise
    return _info(mv, [a for a, v in aliases.items() if v == str(mv.version)])


def set_alias(client, name: str, alias: str, version: str, by: str | None = None, **facts: str) -> VersionInfo:
    """Point the alias at the version and record who and when (plus any facts) as tags on it."""
    target = resolve(client, name, version=version)
    stamp = {"by": by or actor(), "at": now(), **{k: v for k, v in facts.items() if v}}
    # The tags first, the alias last: a failure part way leaves the alias where it was.
    for key, value in stamp.items():
        client.set_model_version_tag(name, target.version, f"mlci.{alias}.{key}", str(value))
    client.set_registered_model_alias(name, alias, target.version)
    return resolve(client, name, version=target.version)


def restore_alias(client, name: str, alias: str, version: str | None) -> None:
    """Put an alias back where it was (None: it did not exist), e.g. after a failed deploy."""
    if version is None:
        with contextlib.suppress(Exception):  # already absent is the state we want
            client.delete_registered_model_alias(name, alias)
    else:
        client.set_registered_model_alias(name, alias, version)
