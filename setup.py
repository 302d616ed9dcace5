"""Packaging hook (metadata lives in setup.cfg).

- The package list: every package under the folders `package_dir` (setup.cfg) maps, with its mlci name
  (ml/deploy -> mlci.deploy, api/routes -> mlci.api.routes), so the wheel holds one top-level package.
- The wheel carries what `mlci build` builds images from. A team's repository holds no mlci source, so
  the Dockerfiles, the router's files and the API and dashboard locks travel inside the wheel, under
  mlci/_image_sources/ with the repository's layout. docker/ and requirements/ stay the source of truth
  (no copies in git): they are copied at build time. An editable install needs no copy:
  mlci.ship.image_context reads them from the checkout itself.
"""

from __future__ import annotations

import configparser
import shutil
from pathlib import Path

from setuptools import find_namespace_packages, setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
# Every file mlci.ship.images.SPECS names (tests/packaging checks the wheel holds each of them).
IMAGE_SOURCES = (
    "docker/api.Dockerfile",
    "docker/dashboard.Dockerfile",
    "docker/router.Dockerfile",
    "docker/router/entrypoint.sh",
    "docker/router/nginx.conf",
    "docker/router/router.conf",
    "requirements/api.txt",
    "requirements/dashboard.txt",
)


def package_dir() -> dict[str, str]:
    parser = configparser.ConfigParser()
    parser.read(HERE / "setup.cfg")
    lines = parser["options"]["package_dir"].strip().splitlines()
    return dict((part.strip() for part in line.split("=", 1)) for line in lines if line.strip())


def packages(mapping: dict[str, str]) -> list[str]:
    """mlci, mlci.core, …, mlci.api, mlci.api.routes, …: each mapped folder and its sub-packages.

    A mapped folder inside another one's tree is not listed twice (none is today)."""
    names = []
    for name, folder in mapping.items():
        names.append(name)
        found = find_namespace_packages(str(HERE / folder), exclude=["*__pycache__*"])
        names += [f"{name}.{sub}" for sub in found if f"{name}.{sub}" not in mapping]
    return sorted(set(names))


class BuildWithImageSources(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        target = Path(self.build_lib) / "mlci" / "_image_sources"
        for name in IMAGE_SOURCES:
            destination = target / name
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(HERE / name, destination)


MAPPING = package_dir()
setup(packages=packages(MAPPING), cmdclass={"build_py": BuildWithImageSources})
