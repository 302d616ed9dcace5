"""`mlci build`: the model bundle baked into the API image, plus the dashboard and router images.

Each image builds from its own context, build/context/<role>/ (mlci.ship.image_context): the Dockerfile,
lock and sources that come with mlci (so a team's repository needs none of them) plus the project's
bundle and wheelhouse. Python packages come from the lock files, either through `PIP_INDEX_URL` (a
corporate mirror) or from a wheelhouse downloaded on the host, so nothing inside a build needs the network.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlci.core import env, reports
from mlci.core.config import Config
from mlci.core.errors import BadInput, CheckFailed
from mlci.ship import docker_images, image_context, image_registry
from mlci.ship.docker import Docker
from mlci.track import archive, provenance, registry, tracking
from mlci.track.selection import build_version

if TYPE_CHECKING:
    from mlci.ship import package

log = logging.getLogger(__name__)

BUILD_DIR = Path("build")
BUNDLE_DIR = BUILD_DIR / "bundle"
WHEELHOUSE = BUILD_DIR / "wheelhouse"


@dataclass(frozen=True)
class ImageSpec:
    role: str  # api | dashboard | router
    dockerfile: str  # relative to mlci's image sources (mlci.ship.image_context), as in the repository
    lock: str | None
    # The BASE_IMAGE build argument: the public image corporate users pull by default (python:3.11-slim-bookworm,
    # nginx:1.26-bookworm), overridden by MLCI_BASE_IMAGE / MLCI_ROUTER_BASE_IMAGE (docker/base-image.sh).
    base: env.Var[str]
    # What else the Dockerfile copies: files of mlci's image sources, installed mlci packages, project folders.
    files: tuple[str, ...] = ()
    packages: tuple[str, ...] = ()
    project_dirs: tuple[str, ...] = ()

    @property
    def sources(self) -> list[str]:
        """Every image source this image needs, the Dockerfile first."""
        return [self.dockerfile, *([self.lock] if self.lock else []), *self.files]


SPECS = (
    ImageSpec(
        "api",
        "docker/api.Dockerfile",
        "requirements/api.txt",
        env.BASE_IMAGE,
        packages=("mlci.api", "mlci.contract", "mlci.core"),
        project_dirs=(str(WHEELHOUSE / "api"), str(BUNDLE_DIR)),
    ),
    ImageSpec(
        "dashboard",
        "docker/dashboard.Dockerfile",
        "requirements/dashboard.txt",
        env.BASE_IMAGE,
        packages=("mlci.dashboard", "mlci.contract", "mlci.core"),
        project_dirs=(str(WHEELHOUSE / "dashboard"),),
    ),
    ImageSpec(
        "router",
        "docker/router.Dockerfile",
        None,
        env.ROUTER_BASE_IMAGE,
        files=("docker/router/nginx.conf", "docker/router/router.conf", "docker/router/entrypoint.sh"),
    ),
)


@dataclass
class ImageResult:
    """One image `mlci build` made (the `images.<role>` entries of reports/build.json)."""

    tag: str
    id: str | None
    size: int | None
    labels: dict[str, str]
    base_image: str
    steps: int
    cached_steps: int
    seconds: float
    digest: str | None = None  # the registry digest, once pushed


@dataclass
class BuildResult:
    """What `mlci build` did; `report()` is reports/build.json (Jenkins' mlciBuild and mlci deploy read it)."""

    model_name: str
    version: str
    commit: str
    engine: str
    registry: str | None
    pushed: bool
    bundle: str
    bundle_sha256: str
    images: dict[str, ImageResult] = field(default_factory=dict)
    duration_s: float = 0.0

    def report(self) -> dict[str, Any]:
        return asdict(self)


def image_name(config: Config, role: str) -> str:
    registry = (env.REGISTRY.get() or config.images.registry or "").rstrip("/")
    return f"{registry + '/' if registry else ''}{config.project}-{role}"


def api_tag(config: Config, model_version: str, short_commit: str) -> str:
    return f"{image_name(config, 'api')}:{model_version}-{short_commit}"


def ensure_wheelhouse(config: Config, locks: list[str]) -> Path | None:
    """Download the locked wheels for the images on the host (skipped when PIP_INDEX_URL is set).

    One folder per lock (build/wheelhouse/api, …): an image's context then holds only its own
    wheels, and a new wheel for one image never invalidates another image's package layer. The locks
    are mlci's own (mlci.ship.image_context), not the project's."""
    sources = image_context.sources_root(locks)
    folder = config.root / WHEELHOUSE
    folder.mkdir(parents=True, exist_ok=True)
    if env.PIP_INDEX_URL.is_set():
        for lock in locks:  # the Dockerfiles COPY the folder even when a mirror is used
            (folder / Path(lock).stem).mkdir(exist_ok=True)
        return None
    for lock in locks:
        if not wheelhouse_complete(sources / lock, folder / Path(lock).stem):
            download_wheels(sources / lock, folder / Path(lock).stem)
    return folder


def download_wheels(lock: Path, folder: Path, env: dict[str, str] | None = None) -> None:
    """`pip download` of exactly the wheels a hash-pinned lock names (no sdists, no other dependencies)
    into `folder`. The one place this call is written: the Docker tests and the benchmarks use it too,
    so they fill the wheelhouse just as `mlci build` does. `env` replaces the environment pip sees (default: ours)."""
    args = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--quiet",
        "--disable-pip-version-check",
        "--require-hashes",
        "--only-binary=:all:",
        "--no-deps",
        "-r",
        str(lock),
        "-d",
        str(folder),
    ]
    done = subprocess.run(args, capture_output=True, text=True, check=False, env=env)
    if done.returncode != 0:
        raise BadInput(
            f"cannot download the wheels of {lock} into {folder}",
            details=done.stderr.strip().splitlines()[-5:],
            hint="check access to the package index, or set PIP_INDEX_URL to a mirror",
        )


def locked_hashes(lock: Path) -> list[set[str]]:
    """For each requirement of a pip-compile lock, the sha256 hashes any of its files may have."""
    requirements: list[set[str]] = []
    for line in lock.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith(("#", "--hash")) and "==" in stripped:
            requirements.append(set())
        for found in re.findall(r"--hash=sha256:([0-9a-f]{64})", stripped):
            requirements[-1].add(found)
    return requirements


def wheelhouse_complete(lock: Path, folder: Path) -> bool:
    """Every locked requirement has a file with one of its hashes in the folder: no download needed
    (pip download would still ask the index about every pin, seconds on each build)."""
    if not folder.is_dir():
        return False
    present = {hashlib.sha256(f.read_bytes()).hexdigest() for f in folder.iterdir() if f.is_file()}
    return all(hashes & present for hashes in locked_hashes(lock))


def _base_image(spec: ImageSpec) -> str:
    return spec.base.get()


def build_image(docker: Docker, config: Config, spec: ImageSpec, tag: str, build_args: dict[str, str]) -> ImageResult:
    started = time.monotonic()
    context = image_context.assemble(config.root, spec.role, spec.sources, list(spec.packages), list(spec.project_dirs))
    args = {"BASE_IMAGE": _base_image(spec)}
    if index := env.PIP_INDEX_URL.get():
        args["PIP_INDEX_URL"] = index
    steps = 0

    def show(line: str) -> None:
        nonlocal steps
        # The classic builder's "Step n/m" lines and errors: progress without pages of pip output.
        if line.startswith(("Step ", "Successfully")) or "error" in line.lower():
            log.info(f"[{spec.role}] {' '.join(line.split())[:160]}")
        if line.startswith("Step "):
            steps += 1

    built = docker_images.build(docker, context.path, context.dockerfile, tag, {**args, **build_args}, show)
    cached = sum(1 for line in built.lines if "Using cache" in line)
    info = docker.inspect("image", tag) or {}
    return ImageResult(
        tag=tag,
        id=info.get("Id") or built.id,
        size=info.get("Size"),
        labels=(info.get("Config") or {}).get("Labels") or {},
        base_image=_base_image(spec),
        steps=steps,
        cached_steps=cached,
        seconds=round(time.monotonic() - started, 2),
    )


def registry_digest(config: Config, packaged: package.PackageResult) -> str:
    """The bundle digest the image must carry, read back from the registry (not from the files baked).

    It differs from what this build just packaged only if another `mlci package` of the same version
    ran meanwhile: the image would then refuse its own bundle, so the build stops here instead."""
    recorded = registry.registered_digest(tracking.connect(config), config.model_name, packaged.version)
    if recorded != packaged.bundle_sha256:
        raise CheckFailed(
            f"the registry records bundle sha256 {recorded} for {config.model_name} version {packaged.version}, "
            f"not {packaged.bundle_sha256} just packaged: another mlci package of this version ran meanwhile",
            hint="run mlci build again (one build per version at a time)",
        )
    return recorded


def push(
    docker: Docker, config: Config, registry: image_registry.Registry, images: dict[str, ImageResult], version: str
) -> None:
    """Push every image, keep its digest (`repo@sha256:…`) on the result and on the model version
    (tags `mlci.image.<role>.digest`): what a deploy on another engine pulls and checks."""
    with image_registry.session(docker, registry) as logged:
        for role, image in images.items():
            log.info(f"pushing {image.tag} to {registry.address}")
            image.digest = image_registry.push(logged, registry, image.tag, lambda line: None)
            log.info(f"pushed {role}: {image.digest}")
    client = tracking.connect(config)
    for role, image in images.items():
        client.set_model_version_tag(config.model_name, version, f"mlci.image.{role}.digest", image.digest or "")


def build(
    config: Config,
    version: str | None = None,
    alias: str | None = None,
    roles: tuple[str, ...] = ("api", "dashboard", "router"),
) -> BuildResult:
    started = time.monotonic()
    # Which version first: without one named and no train report, say so before touching Docker.
    selection = build_version(config, version, alias)
    docker = Docker()
    engine = docker.check()
    target_registry = image_registry.configured(config)
    if target_registry:  # a registry that is down fails now (exit 3), not after minutes of building
        image_registry.check_reachable(target_registry)
    facts = provenance.collect(config.root)
    specs = [s for s in SPECS if s.role in roles]
    # Every image source present before anything is packaged: a missing one is an error naming it.
    image_context.sources_root([name for spec in specs for name in spec.sources])

    # Imported here: packaging brings scikit-learn, which the deploy and status commands reading this
    # module's image names never need (a second of every `mlci status` on an agent).
    from mlci.ship import package

    bundle = package.package(config, config.root / BUNDLE_DIR, version=selection.version, alias=selection.alias)
    bundle_sha256 = registry_digest(config, bundle)
    metadata = json.loads((config.root / BUNDLE_DIR / "metadata.json").read_text(encoding="utf-8"))
    log.info(
        f"bundle: {bundle.name} version {bundle.version} ({bundle.format}, "
        f"parity {package.parity_figure(bundle.parity)}, sha256 {bundle_sha256})"
    )
    wheelhouse = ensure_wheelhouse(config, [s.lock for s in specs if s.lock])
    log.info(f"python packages: {'PIP_INDEX_URL' if wheelhouse is None else 'wheelhouse ' + str(WHEELHOUSE)}")

    common = {
        "REVISION": facts.commit,
        "CREATED": datetime.now(UTC).isoformat(timespec="seconds"),
        "SOURCE": env.ci().git_url or str(config.root),
        "VERSION": facts.mlci_version,
    }
    images: dict[str, ImageResult] = {}
    for spec in specs:
        if spec.role == "api":
            tag = api_tag(config, bundle.version, facts.short_commit)
            extra = {
                "VERSION": f"{bundle.version}-{facts.short_commit}",
                "MODEL_NAME": bundle.name,
                "MODEL_VERSION": bundle.version,
                "RUN_ID": str(metadata.get("run_id") or ""),
                "DATA_SHA256": str((metadata.get("data") or {}).get("sha256") or ""),
                "BUNDLE_SHA256": bundle_sha256,  # label + MLCI_BUNDLE_SHA256: the API checks its bundle
            }
        else:
            tag = f"{image_name(config, spec.role)}:{facts.mlci_version}-{facts.short_commit}"
            extra = {}
        log.info(f"building {spec.role} image {tag} from {spec.dockerfile}")
        images[spec.role] = build_image(docker, config, spec, tag, {**common, **extra})
        if spec.role != "api":
            # Router and dashboard do not change with the model: deploys find the newest as :latest.
            docker_images.tag(docker, tag, f"{image_name(config, spec.role)}:latest")

    registry = env.REGISTRY.get() or config.images.registry
    if target_registry:
        push(docker, config, target_registry, images, bundle.version)
    result = BuildResult(
        model_name=bundle.name,
        version=bundle.version,
        commit=facts.commit,
        engine=engine,
        registry=registry,
        pushed=bool(registry),
        bundle=str(BUNDLE_DIR),
        bundle_sha256=bundle_sha256,
        images=images,
        duration_s=round(time.monotonic() - started, 2),
    )
    written = reports.write(config, "build", result.report())
    # Best effort: the images are built; a missing copy of the report only warns (see ml/track/archive.py).
    archive.to_version(config, bundle.version, "build", {"build.json": written}, required=False)
    return result
