"""Two trainings of one repository's branches log the same dataset at once on the team server; MLflow's
server races on the dataset's unique key (seen in the team-line test). Only that error is retried."""

from __future__ import annotations

from mlflow.exceptions import MlflowException, RestException

from ml.train import _dataset_race

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
