"""The images of a deploy to another Docker host, pulled from the registry by digest.

An environment with `docker_host:` and a configured registry never runs what happens to sit on its
engine under a tag: it pulls the digests `mlci build` pushed and recorded on the model version
(`mlci.image.<role>.digest`), and before anything moves checks that the API image is the one
recorded for its version and carries the bundle digest the registry of models records
(`mlci.bundle.sha256`). A missing image or a different digest is exit 1, naming the digest.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mlci.core import reports
from mlci.core.config import Config, Environment
from mlci.core.errors import BadInput, CheckFailed
from mlci.deploy.slots import Target, image_target
from mlci.ship import image_registry
from mlci.ship.docker import Docker
from mlci.track import registry

DIGEST_TAG = "mlci.image.{role}.digest"
ROLES = ("router", "dashboard")


@dataclass
class Pulled:
    """What a remote deploy runs: the API target and the router/dashboard images, all by digest."""

    target: Target
    roles: dict[str, str] = field(default_factory=dict)


def applies(config: Config, env: Environment) -> bool:
    """Deploys to an environment on its own Docker host go through the registry when there is one."""
    return bool(env.docker_host) and image_registry.configured(config) is not None


def recorded_digest(client, config: Config, version: str, role: str) -> str | None:
    return (client.get_model_version(config.model_name, version).tags or {}).get(DIGEST_TAG.format(role=role))


def _api_ref(client, config: Config, version: str | None, image: str | None) -> str:
    if version and image:
        raise BadInput("give --version or --image, not both")
    if image:
        built = (reports.read(config, "build") or {}).get("images", {}).get("api") or {}
        if built.get("tag") == image and built.get("digest"):
            return str(built["digest"])  # this workspace's build: the digest its push reported for the tag
        if image_registry.parse_digest_ref(image) is None:
            raise BadInput(
                f"--image {image} is a tag: a deploy to another host pulls by digest only (repo@sha256:…)",
                hint="pass --version N (its pushed digest is on the model version) or the digest reference",
            )
        return image
    if version:
        if not version.isdigit():
            raise BadInput(f"--version must be a model version number, got {version!r}")
        registry.resolve(client, config.model_name, version=version)  # an unknown version: exit 2, saying so
        ref = recorded_digest(client, config, version, "api")
        if not ref:
            raise CheckFailed(
                f"{config.model_name} version {version} has no image in the registry on record "
                f"(no tag {DIGEST_TAG.format(role='api')})",
                hint=f"run mlci build --version {version} with images.registry set; nothing was switched",
            )
        return ref
    built = (reports.read(config, "build") or {}).get("images", {}).get("api") or {}
    if not built.get("digest"):
        raise BadInput(
            "nothing to deploy: no pushed API image in reports/build.json",
            hint="run mlci build with images.registry set, or pass --version N",
        )
    return str(built["digest"])


def pull_images(
    docker: Docker, config: Config, env: Environment, client, version: str | None, image: str | None
) -> Pulled:
    where = image_registry.configured(config)
    assert where is not None  # applies() was checked
    ref = _api_ref(client, config, version, image)
    with image_registry.session(docker, where) as logged:
        image_registry.pull(logged, where, ref)
        target = image_target(docker, ref, config)
        if version and target.model_version != version:
            raise CheckFailed(
                f"the image recorded for version {version}, {ref}, holds version {target.model_version}",
                hint="rebuild the version (mlci build --version N); nothing was switched",
            )
        _check_api(client, config, target, ref)
        roles: dict[str, str] = {}
        for role in ROLES if env.dashboard_port is not None else ("router",):  # no dashboard: no pull
            role_ref = recorded_digest(client, config, target.model_version, role)
            if role_ref is None:
                built = (reports.read(config, "build") or {}).get("images", {}).get(role) or {}
                role_ref = built.get("digest")
            if role_ref:
                image_registry.pull(logged, where, role_ref)
                roles[role] = role_ref
    if "router" not in roles:
        raise CheckFailed(
            f"no router image of {config.model_name} version {target.model_version} in the registry on record",
            hint="run mlci build (it builds and pushes the router image too); nothing was switched",
        )
    return Pulled(target, roles)


def _check_api(client, config: Config, target: Target, ref: str) -> None:
    """The pulled image is the one recorded for its version, and carries the version's bundle digest."""
    recorded = recorded_digest(client, config, target.model_version, "api")
    _, digest = image_registry.parse_digest_ref(ref) or ("", "")
    recorded_sha = (image_registry.parse_digest_ref(recorded or "") or ("", None))[1]
    if recorded_sha != digest:
        raise CheckFailed(
            f"image digest {digest} is not the one recorded for {config.model_name} version "
            f"{target.model_version} ({recorded_sha or 'none recorded'})",
            hint="deploy with --version N (it pulls the recorded digest); nothing was switched",
        )
    bundle = registry.registered_digest(client, config.model_name, target.model_version)
    label = target.labels.get("io.mlci.bundle.sha256")
    if not bundle or label != bundle:
        raise CheckFailed(
            f"image {ref} carries bundle sha256 {label or 'none'}, the registry records "
            f"{bundle or 'none'} for version {target.model_version}",
            hint="rebuild the version (mlci build --version N); nothing was switched",
        )
