"""One answer shape per task: what /predict returns and how the warm-up and smoke test compare it."""

from __future__ import annotations

import math

import pytest

from mlci.contract import answers


def test_a_classifier_answers_a_label_and_its_probabilities():
    got = answers.answer("classification", ["a", "b"], "b", [0.25, 0.75])
    assert got == {"label": "b", "probabilities": {"a": 0.25, "b": 0.75}}
    assert answers.difference("classification", got, got, 0) is None
    assert "label 'a'" in answers.difference("classification", {**got, "label": "a"}, got, 1)
    off = {"label": "b", "probabilities": {"a": 0.3, "b": 0.7}}
    assert "probabilities off by 5.00e-02" in answers.difference("classification", off, got, 1e-3)
    missing = {"label": "b", "probabilities": {"a": 0.25}}
    assert "no probability for class(es) 'b'" in answers.difference("classification", missing, got, 1)


@pytest.mark.parametrize(
    ("value", "says"),
    [
        (10.0, None),
        (10.0 + 1e-7, None),
        (10.1, "off by 1.00e-01"),
        ("10", "is not a number"),
        (math.nan, "is not a number"),
        (True, "is not a number"),
        (None, "is not a number"),
    ],
)
def test_a_regression_answers_a_value_compared_by_its_difference(value, says):
    assert answers.answer("regression", [], 10.0, []) == {"value": 10.0}
    problem = answers.difference("regression", {"value": value}, {"value": 10.0}, 1e-6)
    assert problem is None if says is None else says in problem
