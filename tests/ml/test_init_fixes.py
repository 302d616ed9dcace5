"""`mlci init` on inputs the first version crashed on or got wrong: a column spanning the whole float
range, a tab typed as `\\t`, values YAML cannot print as themselves, integer identifiers, the positive
class, and router ports that differ between teams."""

from __future__ import annotations

import csv
import re
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from ml import config as config_module
from ml import infer, scaffold
from ml.cli import cli


def write_csv(path: Path, header: list[str], rows: list[list[object]], delimiter: str = ",") -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, delimiter=delimiter, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
    return path


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


@pytest.mark.parametrize("typed", ["\\t", "tab", "TAB", "\t"])
def test_a_tab_delimiter_can_be_typed_as_init_suggests(tmp_path, typed):
    source = write_csv(tmp_path / "d.tsv", ["amount", "kind", "label"], base_rows(), delimiter="\t")
    result = init("--data", str(source), "--target", "label", "--dir", str(tmp_path), "--delimiter", typed)
    assert result.exit_code == 0, result.output
    assert config_module.load(tmp_path / "mlci.yaml").data.delimiter == "\t"


def test_the_one_column_hint_names_a_tab_as_it_can_be_typed(tmp_path):
    source = write_csv(tmp_path / "d.tsv", ["amount", "kind", "label"], base_rows(), delimiter="\t")
    result = init("--data", str(source), "--target", "label", "--dir", str(tmp_path))
    assert result.exit_code == 2
    assert "pass --delimiter tab" in result.output


@pytest.mark.parametrize("typed", [";;", "", '"', "\\n"])
def test_a_delimiter_that_is_not_one_character_is_exit_2(tmp_path, typed):
    source = write_csv(tmp_path / "d.csv", ["amount", "kind", "label"], base_rows())
    result = init("--data", str(source), "--target", "label", "--dir", str(tmp_path), "--delimiter", typed)
    assert result.exit_code == 2, result.output
    assert "--delimiter" in result.output and "Traceback" not in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.csv"]


@pytest.mark.parametrize("odd", ["\x7f", "\x80", "\x85", "\x9f", "\u2028", "\ufeff"])
def test_values_yaml_cannot_print_are_escaped_and_read_back(tmp_path, odd):
    rows = [[v, f"k{odd}1" if c == "a" else "plain", t] for v, c, t in base_rows()]
    source = write_csv(tmp_path / "d.csv", ["amount", f"ki{odd}nd", "label"], rows)
    result = init("--data", str(source), "--target", "label", "--dir", str(tmp_path))
    assert result.exit_code == 0, result.output
    text = (tmp_path / "mlci.yaml").read_text(encoding="utf-8")
    assert odd not in text  # escaped, so the file stays one YAML line per entry
    features = config_module.load(tmp_path / "mlci.yaml").data.features
    assert features[f"ki{odd}nd"].categories == sorted([f"k{odd}1", "plain"])


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


def test_ports_differ_between_projects_and_stay_off_8080(tmp_path):
    source = write_csv(tmp_path / "d.csv", ["amount", "kind", "label"], base_rows())
    seen = []
    for project in ("churn-team", "fraud-team"):
        folder = tmp_path / project
        assert init("--data", str(source), "--target", "label", "--dir", str(folder)).exit_code == 0
        text = (folder / "mlci.yaml").read_text()
        environments = config_module.load(folder / "mlci.yaml").environments
        ports = {
            environments["production"].port,
            environments["staging"].port,
            environments["production"].dashboard_port,
        }
        assert len(ports) == 3 and all(20000 <= p < 30000 for p in ports if p is not None)
        assert "must be unique on it" in text and "# docker_host: ssh://" in text
        seen.append(ports)
        # Derived from the name: the same project gets the same ports on every run.
        assert scaffold.ports(project, None) == scaffold.ports(project, None)
    assert not seen[0] & seen[1]


def test_a_base_port_can_be_given_and_is_checked(tmp_path):
    source = write_csv(tmp_path / "d.csv", ["amount", "kind", "label"], base_rows())
    given = init("--data", str(source), "--target", "label", "--dir", str(tmp_path), "--port", "31000")
    assert given.exit_code == 0, given.output
    assert "production 31000, staging 31001, dashboard 31002" in given.output
    config = yaml.safe_load((tmp_path / "mlci.yaml").read_text())
    assert config["environments"] == {
        "staging": {"port": 31001},
        "production": {"port": 31000, "dashboard_port": 31002},
    }
    wrong = init("--data", str(source), "--target", "label", "--dir", str(tmp_path), "--force", "--port", "60000")
    assert wrong.exit_code == 2 and "--port 60000 is out of range" in wrong.output


def test_the_jenkins_store_hint_says_where_the_team_stack_file_is(tmp_path, monkeypatch):
    """A team's repository has no docker/compose.team.yaml: the hint names the repository that has it."""
    from ml import tracking
    from ml.errors import ConfigError

    source = write_csv(tmp_path / "d.csv", ["amount", "kind", "label"], base_rows())
    assert init("--data", str(source), "--target", "label", "--dir", str(tmp_path)).exit_code == 0
    monkeypatch.setenv("JENKINS_URL", "http://jenkins.example.com/")
    with pytest.raises(ConfigError) as refused:
        tracking.require_shared_store(config_module.load(tmp_path / "mlci.yaml"))
    start = next(line for line in refused.value.details if "compose.team.yaml" in line)
    assert "mlci repository" in start and "not in a team's repository" in start
