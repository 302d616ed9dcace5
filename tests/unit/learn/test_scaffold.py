"""`mlci init`: a team's repository from a CSV it has never seen, accepted by `mlci train` without
edits; every bad input is exit 2 naming the problem, with nothing written."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from mlci.cli.main import cli
from mlci.core import config as config_module
from mlci.core.errors import BadInput
from mlci.learn import infer, scaffold
from tests.helpers.files import write_csv

WRITTEN = {"mlci.yaml", "Jenkinsfile", "tests/test_data.py", ".gitignore"}


def never_seen(path: Path, rows: int = 400) -> Path:
    """Mixed numeric and categorical columns, missing values, awkward names and values: an id
    column, a column named `yes`, categories `NA`, `null` and `1`, a negative range."""
    rng = np.random.default_rng(7)
    data = []
    for i in range(rows):
        plan = str(rng.choice(["NA", "null", "1", "gold plan"]))
        balance = round(float(rng.normal(-20, 50)), 3)
        visits = int(rng.integers(0, 30))
        score = 0.05 * visits - 0.01 * balance + (1.0 if plan == "gold plan" else 0.0) + rng.normal(0, 0.5)
        label = "churn" if score > 1.2 else "stay" if score > 0.4 else "upgrade"
        data.append(
            [
                f"id-{i}",
                "" if rng.random() < 0.05 else plan,
                "" if rng.random() < 0.05 else balance,
                visits,
                str(rng.choice(["a", "b"])),
                label,
            ]
        )
    return write_csv(path, ["customer id", "plan type", "balance", "visits", "yes", "outcome"], data)


def init(*args: str):
    return CliRunner().invoke(cli, ["init", *args], catch_exceptions=False)


def files_in(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def test_init_on_a_csv_never_seen_writes_a_config_mlci_train_accepts(tmp_path):
    project = tmp_path / "team"
    project.mkdir()
    source = never_seen(project / "customers.csv")
    result = init("--data", str(source), "--target", "outcome", "--dir", str(project))
    assert result.exit_code == 0, result.output
    assert set(files_in(project)) >= WRITTEN

    config = config_module.load(project / "mlci.yaml")  # the strict loader, no edits
    assert config.project == "team"
    features = config.data.features
    assert "customer id" not in features  # 400 distinct texts: an identifier, left out with a comment
    assert "#   customer id: 400 distinct text values" in (project / "mlci.yaml").read_text()
    assert features["plan type"].type == "categorical"
    assert features["plan type"].categories == ["1", "NA", "gold plan", "null"]  # strings, NA and null kept
    assert features["plan type"].nullable is True and features["balance"].nullable is True
    assert features["visits"].nullable is None and config.data.missing == "reject"
    assert features["balance"].type == "numeric" and features["balance"].min < -100 < 100 < features["balance"].max
    assert features["visits"].min == 0 and features["visits"].max == 32  # integers: whole bounds, not below 0
    assert features["yes"].categories == ["a", "b"]
    assert (project / "Jenkinsfile").read_text() == f"@Library('mlci@v{config_module_version()}') _\nmlciPipeline()\n"
    assert {".mlci/", "reports/", "build/", "mlruns/", ".venv/"} <= set((project / ".gitignore").read_text().split())

    trained = CliRunner().invoke(cli, ["--config", str(project / "mlci.yaml"), "train"], catch_exceptions=False)
    assert trained.exit_code == 0, trained.output
    report = json.loads((project / "reports" / "train.json").read_text())
    assert report["version"] == "1"
    # The starter test passes on the data it was written from (run as `mlci test` runs it).
    tested = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
        cwd=project,
        capture_output=True,
        text=True,
    )
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "2 passed" in tested.stdout


def config_module_version() -> str:
    return (Path(__file__).resolve().parents[3] / "resources" / "io" / "mlci" / "VERSION").read_text().strip()


def test_a_csv_outside_the_folder_is_copied_into_data(tmp_path):
    source = never_seen(tmp_path / "elsewhere.csv")
    project = tmp_path / "new-project"  # created
    result = init("--data", str(source), "--target", "outcome", "--dir", str(project), "--project", "acme")
    assert result.exit_code == 0, result.output
    assert (project / "data" / "elsewhere.csv").read_bytes() == source.read_bytes()
    assert config_module.load(project / "mlci.yaml").data.path == Path("data/elsewhere.csv")


def test_existing_files_are_kept_unless_force(tmp_path):
    source = never_seen(tmp_path / "d.csv")
    (tmp_path / "Jenkinsfile").write_text("mine\n")
    refused = init("--data", str(source), "--target", "outcome", "--dir", str(tmp_path))
    assert refused.exit_code == 2
    assert "Jenkinsfile already exist(s)" in refused.output and "--force" in refused.output
    assert files_in(tmp_path) == ["Jenkinsfile", "d.csv"]
    assert (tmp_path / "Jenkinsfile").read_text() == "mine\n"
    forced = init("--data", str(source), "--target", "outcome", "--dir", str(tmp_path), "--force")
    assert forced.exit_code == 0, forced.output
    assert (tmp_path / "Jenkinsfile").read_text().startswith("@Library('mlci@v")


def two_classes(rows: int = 100, rare: int = 50) -> list[list[object]]:
    return [[i, "x" if i % 2 else "y", "a" if i < rare else "b"] for i in range(rows)]


BAD_INPUTS = {
    # name: (file content writer, target, what the message must say)
    "no such file": (None, "label", "no such file"),
    "empty file": (lambda p: p.write_bytes(b""), "label", "is empty"),
    "not a CSV (binary)": (
        lambda p: p.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe\x00" * 200),
        "label",
        "cannot be parsed",
    ),
    "not a CSV (one column)": (lambda p: p.write_text('{"a": 1}\n' * 80), "label", "1 column(s)"),
    "header only": (lambda p: p.write_text("n,kind,label\n"), "label", "0 row(s)"),
    "too few rows": (lambda p: write_csv(p, ["n", "kind", "label"], two_classes(20, 10)), "label", "20 row(s)"),
    "no such target": (
        lambda p: write_csv(p, ["n", "kind", "label"], two_classes()),
        "labl",
        "columns: n, kind, label",
    ),
    "one class": (lambda p: write_csv(p, ["n", "kind", "label"], two_classes(100, 100)), "label", "one class only"),
    "class too rare": (lambda p: write_csv(p, ["n", "kind", "label"], two_classes(100, 5)), "label", "'a': 5 row(s)"),
    "missing labels": (
        lambda p: write_csv(p, ["n", "kind", "label"], [[i, "x", "" if i == 3 else "ab"[i % 2]] for i in range(100)]),
        "label",
        "1 missing value(s) (lines 5",
    ),
    "free text as target": (
        lambda p: write_csv(p, ["n", "kind", "label"], [[i, "x", f"note {i}"] for i in range(100)]),
        "label",
        "100 distinct values, over 20: too many classes",
    ),
    "one number as target": (
        lambda p: write_csv(p, ["n", "kind", "label"], [[i, "x", 7] for i in range(100)]),
        "label",
        "one class only",
    ),
    "duplicate columns": (lambda p: write_csv(p, ["n", "n", "label"], two_classes()), "label", "duplicate column"),
    "semicolons": (
        lambda p: p.write_text("n;kind;label\n" + "".join(f"{i};x;{'ab'[i % 2]}\n" for i in range(100))),
        "label",
        "pass --delimiter ';'",
    ),
    "too big": (lambda p: p.open("wb").truncate(scaffold.MAX_BYTES + 1), "label", "over data.max_bytes"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_exits_2_naming_the_problem_and_writes_nothing(tmp_path, case):
    write, target, expected = BAD_INPUTS[case]
    source = tmp_path / "data.csv"
    if write is not None:
        write(source)
    before = files_in(tmp_path)
    result = init("--data", str(source), "--target", target, "--dir", str(tmp_path / "out"))
    assert result.exit_code == 2, result.output
    assert expected in result.output
    assert "Traceback" not in result.output
    assert files_in(tmp_path) == before  # not even the --dir folder


def test_an_invalid_project_name_is_refused_before_reading(tmp_path):
    result = init("--data", str(tmp_path / "x.csv"), "--target", "t", "--dir", str(tmp_path), "--project", "Big Name")
    assert result.exit_code == 2
    assert "project name 'Big Name' is not valid" in result.output


@pytest.mark.parametrize(
    ("low", "high", "integers", "expected"),
    [
        (0, 72, True, (0, 80)),
        (18.0, 112.95, False, (8, 123)),
        (0, 7, True, (0, 8)),
        (0.1, 0.9, False, (0.01, 0.98)),
        (-3.5, -1.5, False, (-3.7, -1.3)),
        (5, 5, True, (4, 6)),
    ],
)
def test_ranges_are_widened_on_round_numbers(low, high, integers, expected):
    assert infer.widened_range(low, high, integers) == pytest.approx(expected)


@pytest.mark.parametrize("name", ["yes", "null", "1", "a: b", "line\nbreak", "#hash", "é", " lead"])
def test_any_column_name_or_category_reads_back_as_itself(name):
    assert yaml.safe_load(f"key: {scaffold.yaml_scalar(name)}") == {"key": name}
    assert "\n" not in scaffold.comment(name)


def test_a_dir_that_is_a_file_is_refused(tmp_path):
    source = never_seen(tmp_path / "d.csv")
    result = init("--data", str(source), "--target", "outcome", "--dir", str(source), "--project", "p")
    assert result.exit_code == 2
    assert "is a file" in result.output
    with pytest.raises(BadInput, match="is not a folder"):
        scaffold.init(source, "outcome", directory=source, project="p")


def base_rows(rows: int = 120) -> list[list[object]]:
    """A numeric feature, a category and a binary target with a rare class ("yes", 30 of 120)."""
    rng = np.random.default_rng(11)
    return [
        [round(float(rng.uniform(0, 50)), 2), str(rng.choice(["a", "b"])), "yes" if i % 4 == 0 else "no"]
        for i in range(rows)
    ]


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
    from mlci.core.errors import ConfigError
    from mlci.track import tracking

    source = write_csv(tmp_path / "d.csv", ["amount", "kind", "label"], base_rows())
    assert init("--data", str(source), "--target", "label", "--dir", str(tmp_path)).exit_code == 0
    monkeypatch.setenv("JENKINS_URL", "http://jenkins.example.com/")
    with pytest.raises(ConfigError) as refused:
        tracking.require_shared_store(config_module.load(tmp_path / "mlci.yaml"))
    start = next(line for line in refused.value.details if "compose.team.yaml" in line)
    assert "mlci repository" in start and "not in a team's repository" in start
