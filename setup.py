"""Packaging hook (metadata lives in setup.cfg): the wheel carries what `mlci build` builds images from.

A team's repository holds no mlci source, so the Dockerfiles, the router's files and the API and
dashboard locks travel inside the wheel, under ml/_image_sources/ with the repository's layout.
docker/ and requirements/ stay the source of truth (no copies in git): they are copied at build time.
An editable install needs no copy: ml.image_context reads them from the checkout itself.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
# Every file ml.images.SPECS names (tests/ml/test_dist.py checks the wheel holds each of them).
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


class BuildWithImageSources(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        target = Path(self.build_lib) / "ml" / "_image_sources"
        for name in IMAGE_SOURCES:
            destination = target / name
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(HERE / name, destination)


setup(cmdclass={"build_py": BuildWithImageSources})
