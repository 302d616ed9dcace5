"""What `mlci build` builds each image from, wherever mlci is installed.

The Dockerfiles, the router's files and the image locks come with mlci itself, not with the project
being built: a team's repository holds only its Jenkinsfile, mlci.yaml, data and tests. The wheel
carries them under mlci/_image_sources/ (setup.py copies them from docker/ and requirements/); an
editable install or a checkout reads them in place. The API and dashboard sources are the installed
`mlci.api` and `mlci.dashboard` packages with the `mlci.contract` and `mlci.core` they import. The
project adds what is its own: the model bundle and the wheelhouse.

Each image gets its own context folder, build/context/<role>/, holding exactly what its Dockerfile
copies, with the repository's layout (so the Dockerfiles read the same in both places).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from mlci.core.errors import BadInput

PACKAGED = Path(__file__).resolve().parent.parent / "_image_sources"
CHECKOUT = Path(__file__).resolve().parent.parent.parent
CONTEXTS = Path("build") / "context"
# Never sent to an engine: caches, and secrets a developer keeps beside the dashboard.
IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", "secrets.toml")


@dataclass(frozen=True)
class Context:
    """One image's build context: the folder sent to the engine and the Dockerfile inside it."""

    role: str
    path: Path
    dockerfile: Path
    files: int


def sources_root(required: list[str]) -> Path:
    """The folder holding the image sources (the wheel's copy, else the checkout), every one present.

    A missing file is an error naming it: building fewer images than asked would deploy stale ones."""
    for root in (PACKAGED, CHECKOUT):
        if root.is_dir() and all((root / name).is_file() for name in required):
            return root
    root = PACKAGED if PACKAGED.is_dir() else CHECKOUT
    missing = [name for name in required if not (root / name).is_file()]
    raise BadInput(
        f"mlci's image sources are incomplete: {', '.join(missing)} not found in {root}",
        hint="reinstall mlci from its wheel (pip install --force-reinstall mlci==<version>), "
        "or run from a complete mlci checkout",
    )


def package_dir(name: str) -> Path:
    """Where the installed Python package `name` (mlci.api, mlci.contract, …) lives, without importing it."""
    spec = importlib.util.find_spec(name)
    locations = list(spec.submodule_search_locations or []) if spec else []
    if not locations:
        raise BadInput(f"the {name} package of mlci is not installed", hint="reinstall mlci from its wheel")
    return Path(locations[0])


def _parents(name: str) -> list[str]:
    """mlci.api.routes -> [mlci, mlci.api]."""
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def _link_or_copy(source: str, target: str) -> str:
    # Wheelhouses are hundreds of MB: a hard link costs nothing; another filesystem needs a copy.
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)
    return target


def assemble(
    project_root: Path, role: str, sources: list[str], packages: list[str], project_dirs: list[str]
) -> Context:
    """build/context/<role>/ afresh: the image sources, the Python packages, the project's folders.

    `sources[0]` is the Dockerfile. Built anew each time, so nothing from an earlier build stays in it."""
    root = sources_root(sources)
    context = project_root / CONTEXTS / role
    if context.exists():
        shutil.rmtree(context)
    context.mkdir(parents=True)
    for name in sources:
        (context / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / name, context / name)
    for name in packages:
        target = context.joinpath(*name.split("."))
        shutil.copytree(package_dir(name), target, ignore=IGNORED)
        for parent in _parents(name):  # mlci/__init__.py: an image imports mlci.api, so mlci is a package
            init = context.joinpath(*parent.split("."), "__init__.py")
            if not init.exists():
                shutil.copy2(package_dir(parent) / "__init__.py", init)
    for name in project_dirs:
        folder = project_root / name
        if not folder.is_dir():
            raise BadInput(f"{folder} is missing: the {role} image copies it", hint="run mlci build again")
        shutil.copytree(folder, context / name, copy_function=_link_or_copy)
    files = sum(1 for path in context.rglob("*") if path.is_file())
    return Context(role=role, path=context, dockerfile=context / sources[0], files=files)
