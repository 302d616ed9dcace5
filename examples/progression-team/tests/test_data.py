"""Starter tests written by `mlci init`: the committed data still matches mlci.yaml.

`mlci test` (the pipeline's Test stage) runs everything under tests/: add the checks your data and
your code need next to these."""

from pathlib import Path

import pytest

from mlci.core import config
from mlci.core.errors import DataError
from mlci.learn import data

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def project():
    return config.load(ROOT / "mlci.yaml")


def test_data_matches_the_config(project):
    # mlci's own validation, exactly as `mlci train` runs it: every problem listed at once.
    try:
        dataset = data.load(project)
    except DataError as error:
        pytest.fail("\n".join([error.message, *error.details]))
    assert dataset.fingerprint.rows >= project.data.min_rows


def test_the_target_stays_a_number(project):
    # A regression's target: numbers, none missing (mlci's validation above checks it row by row too).
    frame = data.read_csv(project.data_path, project.data.delimiter, project.data.max_bytes)
    values = frame[project.data.target].astype(float)
    assert values.notna().all() and values.nunique() > 1
