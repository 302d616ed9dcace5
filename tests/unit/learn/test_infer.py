"""mlci.learn.infer: what `mlci init` reads from a CSV it has never seen — ranges that stay finite,
identifiers left out, the positive class."""

from __future__ import annotations

import re
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from mlci.cli.main import cli
from mlci.core import config as config_module
from mlci.learn import infer
from tests.helpers.files import write_csv


def init(*args: str):
    return CliRunner().invoke(cli, ["init", *args], catch_exceptions=False)


def base_rows(rows: int = 120) -> list[list[object]]:
    """A numeric feature, a category and a binary target with a rare class ("yes", 30 of 120)."""
    rng = np.random.default_rng(11)
    return [
        [round(float(rng.uniform(0, 50)), 2), str(rng.choice(["a", "b"])), "yes" if i % 4 == 0 else "no"]
        for i in range(rows)
    ]


def test_a_column_spanning_the_float_range_gets_finite_bounds(tmp_path):
    rows = [[v, c, t] for v, c, t in base_rows()]
    rows[0][0], rows[1][0] = -1.7e308, 1.7e308
    source = write_csv(tmp_path / "d.csv", ["huge", "kind", "label"], rows)
    result = init("--data", str(source), "--target", "label", "--dir", str(tmp_path))
    assert result.exit_code == 0, result.output
    huge = config_module.load(tmp_path / "mlci.yaml").data.features["huge"]
    assert huge.min == -sys.float_info.max and huge.max == sys.float_info.max


@pytest.mark.parametrize(("low", "high"), [(-1.7e308, 1.7e308), (1.79e308, 1.79e308), (-1.79e308, 0.0)])
def test_widened_range_never_overflows(low, high):
    lower, upper = infer.widened_range(low, high)
    assert np.isfinite([lower, upper]).all() and lower <= low and upper >= high


@pytest.mark.parametrize("name", ["customer_id", "Customer ID", "customerId", "id", "row"])
def test_integer_identifiers_are_left_out(tmp_path, name):
    rng = np.random.default_rng(5)
    ids = list(range(100000, 100120)) if name != "row" else list(range(120))
    if name == "customerId":
        rng.shuffle(ids)  # an id need not be sorted: its name says what it is
    rows = [[i, *rest] for i, rest in zip(ids, base_rows())]
    source = write_csv(tmp_path / "d.csv", [name, "amount", "kind", "label"], rows)
    result = init("--data", str(source), "--target", "label", "--dir", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert name not in config_module.load(tmp_path / "mlci.yaml").data.features
    assert re.search(rf"#   {re.escape(name)}: 120 distinct whole numbers", (tmp_path / "mlci.yaml").read_text())


def test_integer_columns_that_are_not_identifiers_stay_features(tmp_path):
    rng = np.random.default_rng(5)
    distinct = rng.permutation(np.arange(1000, 1120)).tolist()  # all different, unordered, not named *id
    rows = [[d, i % 7, *rest] for i, (d, rest) in enumerate(zip(distinct, base_rows()))]
    source = write_csv(tmp_path / "d.csv", ["income", "paid", "amount", "kind", "label"], rows)
    assert init("--data", str(source), "--target", "label", "--dir", str(tmp_path)).exit_code == 0
    features = config_module.load(tmp_path / "mlci.yaml").data.features
    assert {"income", "paid"} <= set(features)


def test_the_positive_label_is_the_rarer_class_unless_given(tmp_path):
    source = write_csv(tmp_path / "d.csv", ["amount", "kind", "label"], base_rows())  # "yes" is rare
    assert init("--data", str(source), "--target", "label", "--dir", str(tmp_path)).exit_code == 0
    assert config_module.load(tmp_path / "mlci.yaml").metrics.positive_label == "yes"
    assert "the rarer of the two" in (tmp_path / "mlci.yaml").read_text()
    given = init(
        "--data", str(source), "--target", "label", "--dir", str(tmp_path), "--force", "--positive-label", "no"
    )
    assert given.exit_code == 0, given.output
    assert config_module.load(tmp_path / "mlci.yaml").metrics.positive_label == "no"
    wrong = init(
        "--data", str(source), "--target", "label", "--dir", str(tmp_path), "--force", "--positive-label", "maybe"
    )
    assert wrong.exit_code == 2 and "'maybe' is not a class" in wrong.output
