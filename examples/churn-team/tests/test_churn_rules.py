"""The churn team's own checks, beside the starter test `mlci init` wrote: what we know about our
data must stay true whatever the model does."""

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
    monkeypatch.setattr(module, "OUT", tmp_path / "churn.csv")
    module.main()
    assert (tmp_path / "churn.csv").read_bytes() == (ROOT / "data" / "churn.csv").read_bytes()


def test_churn_rate_is_plausible(frame):
    rate = (frame["churned"] == "yes").mean()
    assert 0.15 < rate < 0.35


def test_month_to_month_customers_churn_more_than_two_year_ones(frame):
    by_contract = (frame["churned"] == "yes").groupby(frame["contract"]).mean()
    assert by_contract["month-to-month"] > 2 * by_contract["two-year"]
