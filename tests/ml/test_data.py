"""Data validation runs before any training and lists every violation in one message."""

import hashlib

import pytest

from ml import config as config_module
from ml import data
from ml.errors import DataError


def validate(project):
    return data.load(config_module.load(project.config_file))


def csv(project):
    return project.root / "data" / "breast_cancer.csv"


def rewrite(project, transform):
    lines = csv(project).read_text().splitlines()
    csv(project).write_text("\n".join(transform(lines)) + "\n")


def assert_cli_rejects(project, *fragments):
    result = project.mlci("train")
    assert result.exit_code == 2, result.output + result.stderr
    for fragment in fragments:
        assert fragment in result.stderr
    assert "Traceback" not in result.stderr
    assert not (project.root / ".mlci").exists(), "nothing may reach MLflow when the data is bad"


def test_fingerprint_is_the_file_sha256_rows_and_columns(project):
    dataset = validate(project)
    expected = hashlib.sha256(csv(project).read_bytes()).hexdigest()
    assert dataset.fingerprint.sha256 == expected
    assert (dataset.fingerprint.rows, dataset.fingerprint.columns) == (569, 31)


def test_missing_dataset(project):
    csv(project).unlink()
    assert_cli_rejects(project, "not found", "data.path")


def test_empty_dataset(project):
    csv(project).write_text("")
    assert_cli_rejects(project, "is empty")


def test_header_only_dataset_is_below_min_rows_and_one_class(project):
    rewrite(project, lambda lines: lines[:1])
    with pytest.raises(DataError) as caught:
        validate(project)
    text = "\n".join(caught.value.details)
    assert "0 data row(s), at least 200 required" in text
    assert "at least two classes" in text


def test_wrong_delimiter_is_detected(project):
    rewrite(project, lambda lines: [line.replace(",", ";") for line in lines])
    assert_cli_rejects(project, "missing column(s)", "delimited by ';'", "data.delimiter")


def test_semicolon_file_works_when_configured(project):
    rewrite(project, lambda lines: [line.replace(",", ";") for line in lines])
    project.edit(**{"data.delimiter": ";"})
    assert validate(project).fingerprint.rows == 569


def test_missing_target_column(project):
    rewrite(project, lambda lines: [",".join(line.split(",")[:-1]) for line in lines])
    assert_cli_rejects(project, "missing column(s): diagnosis")


def test_non_numeric_values_in_a_numeric_column(project):
    def spoil(lines):
        cells = lines[5].split(",")
        cells[0] = "twelve"
        lines[5] = ",".join(cells)
        cells = lines[9].split(",")
        cells[0] = "inf"
        lines[9] = ",".join(cells)
        return lines

    rewrite(project, spoil)
    with pytest.raises(DataError) as caught:
        validate(project)
    (line,) = [d for d in caught.value.details if "mean_radius" in d]
    assert "2 non-numeric value(s)" in line and "'twelve'" in line and "lines 6, 10" in line


def test_value_outside_range(project):
    project.edit(**{"data.features.mean_radius": {"type": "numeric", "min": 0, "max": 20}})
    with pytest.raises(DataError) as caught:
        validate(project)
    assert any("mean_radius" in d and "above max 20" in d for d in caught.value.details)


def test_missing_values_rejected_unless_policy_allows(project):
    def blank(lines):
        cells = lines[3].split(",")
        cells[2] = ""
        lines[3] = ",".join(cells)
        return lines

    rewrite(project, blank)
    with pytest.raises(DataError) as caught:
        validate(project)
    assert any("mean_perimeter" in d and "1 missing value(s) (lines 4)" in d for d in caught.value.details)
    project.edit(**{"data.missing": "impute"})
    assert validate(project).fingerprint.rows == 569


def test_one_class_target(project):
    rewrite(project, lambda lines: [lines[0]] + [line.rsplit(",", 1)[0] + ",benign" for line in lines[1:]])
    assert_cli_rejects(project, "at least two classes", "only 'benign'")


def test_missing_label(project):
    rewrite(project, lambda lines: [*lines[:4], lines[4].rsplit(",", 1)[0] + ",", *lines[5:]])
    with pytest.raises(DataError, match="failed validation") as caught:
        validate(project)
    assert any("missing label" in d for d in caught.value.details)


def test_all_violations_in_one_message(project):
    project.edit(
        **{
            "data.features.mean_radius": {"type": "numeric", "max": 10},
            "data.features.mean_area": {"type": "numeric", "min": 500},
        }
    )
    with pytest.raises(DataError) as caught:
        validate(project)
    assert len(caught.value.details) == 2
    assert "(2 problem(s))" in caught.value.message


def test_unparseable_csv(project):
    csv(project).write_bytes(b'a,b\n"unterminated,1\n')
    with pytest.raises(DataError, match=r"cannot be parsed as CSV|missing column"):
        validate(project)


def test_categorical_value_outside_allowed_set(mixed_project):
    path = mixed_project.root / "data" / "loans.csv"
    lines = path.read_text().splitlines()
    lines[1] = "atlantis," + lines[1].split(",", 1)[1]
    path.write_text("\n".join(lines) + "\n")
    result = mixed_project.mlci("train")
    assert result.exit_code == 2
    assert "column 'region': 1 value(s) outside the allowed categories" in result.stderr
    assert "'atlantis'" in result.stderr


def test_split_needs_two_rows_per_class(project):
    rewrite(
        project,
        lambda lines: (
            [lines[0]]
            + [line for line in lines[1:] if line.endswith("benign")]
            + [next(line for line in lines[1:] if line.endswith("malignant"))]
        ),
    )
    project.edit(**{"data.min_rows": 2})
    result = project.mlci("train")
    assert result.exit_code == 2
    assert "cannot split" in result.stderr or "cannot cross-validate" in result.stderr
