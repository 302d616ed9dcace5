"""Nothing is registered until everything that can fail has passed: a failed `mlci train` leaves no
model version and does not move @candidate (issue 13, item 2)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
from mlflow.exceptions import MlflowException, RestException

from mlci.learn.train import _dataset_race

MODEL = "breast-cancer-classifier"


def versions(project) -> list[str]:
    return sorted(str(v.version) for v in project.client().search_model_versions(f"name = '{MODEL}'"))


def candidate(project) -> str | None:
    found = project.client().get_registered_model(MODEL).aliases.get("candidate")
    return None if found is None else str(found)


def keep_few_malignant(project, count: int) -> None:
    """A rare class: so few malignant rows that some cross-validation fold has none."""
    path = project.root / "data" / "breast_cancer.csv"
    frame = pd.read_csv(path)
    rare = pd.concat([frame[frame.diagnosis == "benign"], frame[frame.diagnosis == "malignant"].head(count)])
    rare.to_csv(path, index=False)


def test_rare_class_is_a_data_error_and_leaves_the_registry_as_it_was(project):
    assert project.mlci("train").exit_code == 0
    assert versions(project) == ["1"] and candidate(project) == "1"

    keep_few_malignant(project, 3)
    project.commit("rare class")
    result = project.mlci("train")
    assert result.exit_code == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert "class 'malignant' has only 2 training rows" in result.stderr
    assert "3-fold" in result.stderr and "split.cv_folds" in result.stderr
    assert versions(project) == ["1"], "a failed training registered a version"
    assert candidate(project) == "1", "a failed training moved @candidate"
    assert project.report("train")["version"] == "1", "the failed training overwrote the last report"


def test_rare_class_on_a_fresh_project_touches_no_store(project):
    keep_few_malignant(project, 3)
    result = project.mlci("train")
    assert result.exit_code == 2, result.stdout + result.stderr
    assert "too few for 3-fold cross-validation" in result.stderr
    assert not (project.root / ".mlci").exists(), "MLflow was touched before the data was known to be usable"


def test_reports_path_that_cannot_hold_reports_fails_before_registering(project):
    (project.root / "reports").write_text("not a folder\n")
    result = project.mlci("train")
    assert result.exit_code == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert "cannot write reports" in result.stderr and str(project.root / "reports") in result.stderr
    assert not (project.root / ".mlci").exists(), "MLflow was touched before the reports folder was checked"


def test_a_failure_after_the_alias_moved_puts_candidate_back(project, monkeypatch):
    """The last step (the report) fails after registration: the version goes, @candidate returns to v1."""
    from mlci.core import reports

    assert project.mlci("train").exit_code == 0
    project.edit(**{"model.params.max_depth": 4})
    project.commit("shallower")

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(reports, "write", disk_full)
    result = project.mlci("train")
    assert result.exit_code == 2, result.stdout + result.stderr
    assert "No space left on device" in result.stderr and "Traceback" not in result.stderr
    assert versions(project) == ["1"] and candidate(project) == "1"
    client = project.client()
    runs = client.search_runs([client.get_experiment_by_name("breast-cancer").experiment_id])
    assert [r.info.status for r in runs] == ["FAILED", "FINISHED"]


def test_two_first_trainings_at_once_on_a_fresh_store_both_succeed(project):
    """Both create the embedded store's schema and the experiment: a file lock serialises that."""
    mlci = Path(sys.executable).parent / "mlci"
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}
    command = [str(mlci), "--config", str(project.config_file), "train"]
    processes = [
        subprocess.Popen(command, cwd=project.root, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outcomes = [process.communicate(timeout=300) for process in processes]
    for process, (stdout, stderr) in zip(processes, outcomes):
        assert process.returncode == 0, stdout + stderr
        assert "Traceback" not in stderr
    assert versions(project) == ["1", "2"]


POSTGRES = (
    '(psycopg2.errors.UniqueViolation) duplicate key value violates unique constraint "dataset_pk"\n'
    "DETAIL:  Key (experiment_id, name, digest)=(1, breast_cancer.csv, d361980c) already exists."
)


def test_the_servers_dataset_race_is_recognised_for_postgresql_and_sqlite():
    assert _dataset_race(RestException({"error_code": "BAD_REQUEST", "message": POSTGRES}))
    sqlite = "(sqlite3.IntegrityError) UNIQUE constraint failed: datasets.experiment_id, datasets.name"
    assert _dataset_race(MlflowException(sqlite))


def test_other_failures_are_not_retried():
    assert not _dataset_race(RestException({"error_code": "BAD_REQUEST", "message": "Invalid value for run_id"}))
    assert not _dataset_race(ValueError("dataset_pk"))
