"""The wine team's own checks, beside the starter test `mlci init` wrote."""

import importlib.util
from pathlib import Path

import pytest

from mlci.core import config
from mlci.learn import data

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def frame():
    project = config.load(ROOT / "mlci.yaml")
    return data.read_csv(project.data_path, project.data.delimiter, project.data.max_bytes)


def test_the_committed_csv_is_what_make_data_writes(tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location("make_data", ROOT / "make_data.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(module, "OUT", tmp_path / "wines.csv")
    module.main()
    assert (tmp_path / "wines.csv").read_bytes() == (ROOT / "data" / "wines.csv").read_bytes()


def test_every_cultivar_has_enough_wines_to_learn(frame):
    counts = frame["cultivar"].value_counts()
    assert set(counts.index) == {"barolo", "grignolino", "barbera"} and counts.min() >= 40
