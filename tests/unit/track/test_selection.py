"""One version per build (issue 11, item 1): gate, package and build work on the version THIS workspace
trained (reports/train.json), never on an alias another build may move between two stages."""

import json
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]

MODEL = "breast-cancer-classifier"
DATA = [REPO / "data" / "breast_cancer.csv"]
TRAINED_HERE = "version 1, trained by this workspace (reports/train.json)"


def shared_client(uri: str):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def test_a_branch_training_between_main_stages_does_not_change_what_main_ships(tmp_path, monkeypatch, project_factory):
    """The race of the issue: two workspaces on one shared store. main trains v1, feature-x trains v2
    in between, then main's gate and package still work on v1, and say so."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'shared' / 'mlflow.db'}")
    main = project_factory(tmp_path / "main", REPO / "mlci.yaml", DATA)
    feature = project_factory(tmp_path / "feature", REPO / "mlci.yaml", DATA)
    feature.edit(**{"model.params.max_depth": 2})  # another model: shipping it by mistake would show
    feature.git("checkout", "-q", "-b", "feature-x")
    feature.commit("shallow trees")

    monkeypatch.setenv("BRANCH_NAME", "main")  # as Jenkins' multibranch job of main sets it
    trained = main.mlci("train")
    assert trained.exit_code == 0, trained.stderr
    assert main.report("train")["version"] == "1" and main.report("train")["alias"] == "candidate"

    monkeypatch.delenv("BRANCH_NAME")  # feature-x's workspace: its branch comes from git
    trained = feature.mlci("train")
    assert trained.exit_code == 0, trained.stderr
    assert "version 2 as @candidate-feature-x" in trained.stdout
    assert feature.report("train")["alias"] == "candidate-feature-x"
    client = shared_client(f"sqlite:///{tmp_path / 'shared' / 'mlflow.db'}")
    assert client.get_registered_model(MODEL).aliases == {"candidate": 1, "candidate-feature-x": 2}
    assert client.get_model_version(MODEL, "2").tags["mlci.branch"] == "feature-x"

    monkeypatch.setenv("BRANCH_NAME", "main")
    gated = main.mlci("gate")
    assert gated.exit_code == 0, gated.stdout + gated.stderr
    assert TRAINED_HERE in gated.stdout
    assert main.report("gate")["candidate"]["version"] == "1"
    assert client.get_model_version(MODEL, "1").tags["mlci.gate.result"] == "passed"
    assert "mlci.gate.result" not in client.get_model_version(MODEL, "2").tags

    packaged = main.mlci("package", "--out", str(main.root / "bundle"))
    assert packaged.exit_code == 0, packaged.stderr
    assert TRAINED_HERE in packaged.stdout
    assert main.report("package")["version"] == "1"
    metadata = json.loads((main.root / "bundle" / "metadata.json").read_text())
    assert metadata["version"] == "1" and metadata["branch"] == "main"


def test_without_a_version_an_alias_or_a_train_report_the_commands_ask_for_one(project, tmp_path):
    """A workspace that trained nothing: gate, package and build say what to pass (exit 2) instead of
    reading @candidate, which any build may have moved; an alias still works when it is named."""
    assert project.mlci("train").exit_code == 0
    (project.root / "reports" / "train.json").unlink()  # as a fresh clone of the repository

    for command in (["gate"], ["package", "--out", str(tmp_path / "b")], ["build", "--only", "router"]):
        result = project.mlci(*command)
        assert result.exit_code == 2, (command, result.stdout, result.stderr)
        assert "this workspace trained none" in result.stderr
        assert "pass --version N or --alias NAME" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "b").exists()
    assert "mlci.gate.result" not in project.client().get_model_version(MODEL, "1").tags

    gated = project.mlci("gate", "--alias", "candidate")
    assert gated.exit_code == 0, gated.stdout + gated.stderr
    assert f"judging {MODEL} @candidate" in gated.stdout
    packaged = project.mlci("package", "--alias", "candidate", "--out", str(tmp_path / "b"))
    assert packaged.exit_code == 0, packaged.stderr
    assert f"packaging {MODEL} @candidate" in packaged.stdout and project.report("package")["version"] == "1"
    named = project.mlci("gate", "--version", "1")
    assert named.exit_code == 0 and f"judging {MODEL} version 1 against" in named.stdout
    both = project.mlci("gate", "--version", "1", "--alias", "candidate")
    assert both.exit_code == 2 and "not both" in both.stderr


def test_a_train_report_of_another_model_or_store_is_refused(project, tmp_path):
    """The number in reports/train.json means a version of one model in one store: elsewhere it would
    name whatever holds that number, so the commands refuse it and say what to do."""
    assert project.mlci("train").exit_code == 0
    report = project.root / "reports" / "train.json"
    original = json.loads(report.read_text())
    assert original["tracking_uri"].startswith("sqlite:///")

    report.write_text(json.dumps({**original, "model_name": "another-model"}))
    other_model = project.mlci("gate")
    assert other_model.exit_code == 2 and "is of model 'another-model'" in other_model.stderr

    report.write_text(json.dumps({**original, "tracking_uri": "http://mlflow.example:5000"}))
    other_store = project.mlci("package", "--out", str(tmp_path / "b"))
    assert other_store.exit_code == 2 and "another tracking store" in other_store.stderr

    report.write_text(json.dumps({**original, "version": "latest"}))
    no_version = project.mlci("build", "--only", "router")
    assert no_version.exit_code == 2 and "names no model version" in no_version.stderr

    report.write_text("{not json")
    broken = project.mlci("gate")
    assert broken.exit_code == 2 and "cannot read" in broken.stderr and "Traceback" not in broken.stderr


def test_the_pipeline_gates_the_version_this_workspace_trained(project):
    """`mlci pipeline run --from gate` (a later slice of the same build) gates the version in
    reports/train.json even when @candidate has moved on since."""
    assert project.mlci("train").exit_code == 0
    first = (project.root / "reports" / "train.json").read_text()
    assert project.mlci("train").exit_code == 0  # another build: @candidate -> v2
    (project.root / "reports" / "train.json").write_text(first)
    result = project.mlci("pipeline", "run", "--from", "gate", "--to", "gate")
    assert result.exit_code == 0, result.stdout + result.stderr
    assert project.report("gate")["candidate"]["version"] == "1"
