"""Column names the config accepts work end to end: `mlci init` on a CSV whose columns hold spaces,
`-`, `.`, `:`, `#` and non-ASCII letters, then `mlci train`, `mlci package` and a prediction served
from the bundle (skl2onnx renames such inputs; the bundle must still be fed by the schema's names)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from mlci.api.app import create_app
from mlci.api.settings import Settings
from mlci.cli.main import cli

AWKWARD = ["monthly charges", "tenure-months", "plan.type", "clé: valeur", "n#calls", "tenure_months"]
# Names of the converted model's own tensors (its outputs, what its steps produce), as feature names.
TENSOR_NAMES = ["label", "probabilities", "variable", "variable1", "merged_columns", "tenure_months"]


def awkward_csv(path: Path, names: list[str], rows: int = 300) -> Path:
    rng = np.random.default_rng(3)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow([*names, "churn"])
        for _ in range(rows):
            charges = round(float(rng.uniform(20, 120)), 2)
            tenure = int(rng.integers(0, 72))
            plan = str(rng.choice(["basic", "gold"]))
            key = str(rng.choice(["x", "y", "z"]))
            calls = int(rng.integers(0, 9))
            other = round(float(rng.normal(0, 1)), 3)
            score = charges / 100 - tenure / 50 + (0.5 if plan == "basic" else 0) + calls / 10 + rng.normal(0, 0.3)
            writer.writerow([charges, tenure, plan, key, calls, other, "yes" if score > 0.6 else "no"])
    return path


def mlci(config: Path, *args: str):
    return CliRunner().invoke(cli, ["--config", str(config), *args], catch_exceptions=False)


@pytest.mark.parametrize("names", [AWKWARD, TENSOR_NAMES], ids=["awkward", "tensor-names"])
def test_awkward_column_names_go_from_init_to_a_served_prediction(tmp_path, names):
    source = awkward_csv(tmp_path / "customers.csv", names)
    made = CliRunner().invoke(
        cli, ["init", "--data", str(source), "--target", "churn", "--dir", str(tmp_path)], catch_exceptions=False
    )
    assert made.exit_code == 0, made.output
    config = tmp_path / "mlci.yaml"
    assert mlci(config, "train").exit_code == 0
    bundle = tmp_path / "bundle"
    packaged = mlci(config, "package", "--out", str(bundle))
    assert packaged.exit_code == 0, packaged.output
    metadata = json.loads((bundle / "metadata.json").read_text())
    assert metadata["format"] == "onnx"
    assert [f["name"] for f in metadata["features"]] == names

    record = dict(zip(names, [99.5, 2, "basic", "y", 7, 0.1]))
    app = create_app(bundle, Settings(colour="blue", environment="staging", max_batch=10))
    with TestClient(app) as client:
        assert client.get("/ready").status_code == 200
        answer = client.post("/predict", json={"records": [record]})
    assert answer.status_code == 200, answer.text
    prediction = answer.json()["predictions"][0]
    assert prediction["label"] in {"yes", "no"}
    assert abs(sum(prediction["probabilities"].values()) - 1) < 1e-9
