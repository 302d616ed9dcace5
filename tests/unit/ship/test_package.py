"""`mlci package` then `mlci serve`: a registered version becomes a bundle that serves scikit-learn's answers."""

import json
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from mlci.core import config as config_module
from mlci.learn import data, evaluate
from mlci.track import registry


def serve(bundle: Path, port: int):
    mlci = Path(sys.executable).parent / "mlci"
    process = subprocess.Popen(
        [str(mlci), "serve", "--bundle", str(bundle), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        if process.poll() is not None:
            pytest.fail(process.stdout.read())
        time.sleep(0.3)
    process.kill()
    pytest.fail("mlci serve did not become ready")


@pytest.mark.parametrize("fixture", ["project", "mixed_project"])
def test_package_then_serve_answers_like_scikit_learn(fixture, request, free_port):
    project = request.getfixturevalue(fixture)
    assert project.mlci("train").exit_code == 0
    bundle = project.root / "bundle"
    packaged = project.mlci("package", "--out", str(bundle))
    assert packaged.exit_code == 0, packaged.stderr
    assert "RESULT OK: bundle of" in packaged.stdout and "labels equal: True" in packaged.stdout
    report = project.report("package")
    assert report["format"] == "onnx" and report["parity"]["labels_equal"] is True
    metadata = json.loads((bundle / "metadata.json").read_text())
    assert metadata["version"] == "1" and metadata["commit"] == project.git("rev-parse", "HEAD")
    assert metadata["data"]["sha256"] == project.report("train")["data"]["sha256"]
    assert metadata["trained_by"] == "Ada Lovelace <ada@example.com>"

    config = config_module.load(project.config_file)
    split = evaluate.holdout(data.load(config), config)
    import mlflow

    mlflow.set_tracking_uri(config.tracking_uri)
    from mlci.track.model_loading import load_version  # mlci's loader: mlflow's own refuses after any mlci command

    sk_model = load_version(config.model_name, "1")
    records = json.loads(split.x_test.replace({np.nan: None, "": None}).to_json(orient="records"))

    port = free_port()
    process = serve(bundle, port)
    try:
        answer = httpx.post(f"http://127.0.0.1:{port}/predict", json={"records": records}, timeout=30)
    finally:
        process.terminate()
        output = process.communicate(timeout=20)[0]
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert [p["label"] for p in body["predictions"]] == list(sk_model.predict(split.x_test))
    expected = sk_model.predict_proba(split.x_test)
    served = np.array([[p["probabilities"][c] for c in sk_model.classes_] for p in body["predictions"]])
    assert np.max(np.abs(served - expected)) < 1e-5
    assert "mlci serve: serving" in output


def test_package_bad_input(project, tmp_path):
    assert project.mlci("package", "--out", str(tmp_path / "b")).exit_code == 2  # nothing registered
    assert project.mlci("train").exit_code == 0
    both = project.mlci("package", "--version", "1", "--alias", "candidate", "--out", str(tmp_path / "b"))
    assert both.exit_code == 2 and "not both" in both.stderr
    unknown = project.mlci("package", "--alias", "production", "--out", str(tmp_path / "b"))
    assert unknown.exit_code == 2 and "no version with alias @production" in unknown.stderr
    assert not (tmp_path / "b").exists()


def test_serve_refuses_a_missing_bundle(tmp_path):
    from click.testing import CliRunner

    from mlci.cli.main import cli

    result = CliRunner().invoke(cli, ["serve", "--bundle", str(tmp_path / "nothing")])
    assert result.exit_code == 2
    assert "Traceback" not in result.stderr and "bundle" in result.stderr


def test_package_records_the_bundle_digest_outside_the_bundle(project):
    """The digest covers every file of the bundle and lives in the registry and the report, where an
    edit of the bundle cannot reach it; `mlci serve --bundle-sha256` then refuses an altered bundle."""
    from mlci.contract import bundle_digest

    assert project.mlci("train").exit_code == 0
    bundle = project.root / "bundle"
    packaged = project.mlci("package", "--out", str(bundle))
    assert packaged.exit_code == 0, packaged.stderr
    digest = bundle_digest.bundle_digest(bundle)
    assert digest in packaged.stdout
    assert project.report("package")["bundle_sha256"] == digest
    listed = (bundle / bundle_digest.MANIFEST_FILE).read_text().splitlines()
    names = sorted(line.split("  ")[1] for line in listed)
    assert names == ["distribution.json", "metadata.json", "model.onnx", "reference.json"]
    tags = project.client().get_model_version("breast-cancer-classifier", "1").tags
    assert tags[registry.BUNDLE_DIGEST_TAG] == digest

    metadata = json.loads((bundle / "metadata.json").read_text())
    metadata["format"] = "sklearn"
    (bundle / "metadata.json").write_text(json.dumps(metadata))
    refused = project.mlci("serve", "--bundle", str(bundle), "--bundle-sha256", tags[registry.BUNDLE_DIGEST_TAG])
    assert refused.exit_code == 2 and "metadata.json differs" in refused.stderr, refused.stderr


def test_package_returns_a_typed_result(project):
    from mlci.core import config as config_module
    from mlci.ship import package as package_module

    assert project.mlci("train").exit_code == 0
    config = config_module.load(project.config_file)
    result = package_module.package(config, project.root / "bundle")
    assert isinstance(result, package_module.PackageResult)
    assert (result.version, result.format, result.aliases) == ("1", "onnx", ["candidate"])
    assert result.report() == project.report("package")


def test_build_takes_the_digest_from_the_registry(project):
    """mlci build bakes the registry's digest; if another packaging of the version replaced it meanwhile,
    the image would refuse its own bundle, so the build stops with a check failure instead."""
    import dataclasses

    from mlci.core import config as config_module
    from mlci.core.errors import CheckFailed
    from mlci.ship import images
    from mlci.ship import package as package_module

    assert project.mlci("train").exit_code == 0
    config = config_module.load(project.config_file)
    packaged = package_module.package(config, project.root / "bundle")
    assert images.registry_digest(config, packaged) == packaged.bundle_sha256
    raced = dataclasses.replace(packaged, bundle_sha256="0" * 64)
    with pytest.raises(CheckFailed, match="another mlci package of this version ran meanwhile"):
        images.registry_digest(config, raced)
