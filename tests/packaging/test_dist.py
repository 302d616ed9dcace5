"""`make dist`: the wheel teams install carries everything `mlci build` needs outside an mlci checkout,
and each image's context is assembled from it, not from the project's own docker/ or requirements/."""

from __future__ import annotations

import subprocess
import zipfile
from pathlib import Path

import pytest

from mlci.core.errors import BadInput
from mlci.ship import image_context, images

REPO = Path(__file__).resolve().parents[2]
VERSION = (REPO / "resources" / "io" / "mlci" / "VERSION").read_text().strip()


def test_make_dist_builds_the_wheel_and_sdist_of_the_version(dist):
    assert (dist / f"mlci-{VERSION}-py3-none-any.whl").is_file()
    assert (dist / f"mlci-{VERSION}.tar.gz").is_file()
    version = subprocess.run([str(REPO / ".venv" / "bin" / "mlci"), "--version"], capture_output=True, text=True)
    assert version.stdout.strip().endswith(f"version {VERSION}")


def test_the_wheel_carries_every_image_source_as_in_the_repository(dist):
    with zipfile.ZipFile(dist / f"mlci-{VERSION}-py3-none-any.whl") as wheel:
        names = set(wheel.namelist())
        for spec in images.SPECS:
            for source in spec.sources:
                packaged = f"mlci/_image_sources/{source}"
                assert packaged in names, packaged
                assert wheel.read(packaged) == (REPO / source).read_bytes(), source
            for package in spec.packages:
                assert f"{package.replace('.', '/')}/__init__.py" in names
        assert {
            "mlci/deploy/templates/router.conf.j2",
            "mlci/learn/templates/init/mlci.yaml.j2",
            "mlci/dashboard/.streamlit/config.toml",
            "mlci/py.typed",
        } <= names
        # One import package: nothing a team's own ml/, api/ or dashboard/ could shadow or be shadowed by.
        assert {name.split("/")[0] for name in names} == {"mlci", f"mlci-{VERSION}.dist-info"}
        assert not [n for n in names if n.startswith(("tests/", "examples/")) or "__pycache__" in n]


def test_each_image_context_holds_what_its_dockerfile_copies(tmp_path):
    # A team's repository: no docker/, no requirements/, no api/ — only what mlci build made there.
    (tmp_path / "build" / "bundle").mkdir(parents=True)
    (tmp_path / "build" / "bundle" / "metadata.json").write_text("{}")
    (tmp_path / "build" / "wheelhouse" / "api").mkdir(parents=True)
    (tmp_path / "build" / "wheelhouse" / "api" / "x-1.0-py3-none-any.whl").write_bytes(b"wheel")
    spec = images.SPECS[0]
    context = image_context.assemble(tmp_path, spec.role, spec.sources, list(spec.packages), list(spec.project_dirs))
    assert context.path == tmp_path / "build" / "context" / "api"
    assert context.dockerfile == context.path / "docker" / "api.Dockerfile"
    for line in context.dockerfile.read_text().splitlines():
        if line.startswith("COPY ") and "--from" not in line:
            assert (context.path / line.split()[1]).exists(), line
    assert (context.path / "mlci" / "api" / "app.py").is_file()
    assert (context.path / "mlci" / "contract" / "bundle.py").is_file()
    assert (context.path / "mlci" / "__init__.py").is_file()
    assert not (context.path / "mlci" / "learn").exists(), "no training code in the API image"
    assert not list(context.path.rglob("__pycache__"))
    # Built anew each time: a file left from an earlier build does not reach the engine.
    (context.path / "stale").write_text("old")
    again = image_context.assemble(tmp_path, spec.role, spec.sources, list(spec.packages), list(spec.project_dirs))
    assert not (again.path / "stale").exists()


def test_a_missing_image_source_is_an_error_naming_it(tmp_path, monkeypatch):
    incomplete = tmp_path / "_image_sources" / "docker"
    incomplete.mkdir(parents=True)
    (incomplete / "router.Dockerfile").write_text("FROM scratch\n")
    monkeypatch.setattr(image_context, "PACKAGED", tmp_path / "_image_sources")
    monkeypatch.setattr(image_context, "CHECKOUT", tmp_path / "no-checkout")
    with pytest.raises(BadInput) as caught:
        image_context.sources_root(images.SPECS[2].sources)
    assert "docker/router/nginx.conf" in caught.value.message
    assert "docker/router.Dockerfile" not in caught.value.message
    assert "reinstall mlci" in (caught.value.hint or "")


def test_a_missing_project_folder_is_named(tmp_path):
    spec = images.SPECS[0]  # the api image copies the bundle, which mlci build makes first
    with pytest.raises(BadInput, match="build/wheelhouse/api is missing: the api image copies it"):
        image_context.assemble(tmp_path, spec.role, spec.sources, list(spec.packages), list(spec.project_dirs))
