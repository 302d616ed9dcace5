"""Data validation runs before any training and lists every violation in one message."""

import hashlib

import pytest

from mlci.core import config as config_module
from mlci.core.errors import DataError
from mlci.learn import data


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


def loans_csv(project):
    return project.root / "data" / "loans.csv"


def rename_region(project, old, new):
    path = loans_csv(project)
    lines = path.read_text().splitlines()
    path.write_text("\n".join([lines[0], *(line.replace(f"{old},", f"{new},", 1) for line in lines[1:])]) + "\n")


@pytest.mark.parametrize("literal", ["NA", "None", "null", "N/A", "nan", "NaN", "n/a", "NULL", "#N/A"])
def test_category_named_like_a_missing_marker_is_a_category(mixed_project, literal):
    # pandas' default na_values would read these as missing: training would impute them while the
    # API accepts the same string as a category.
    from mlci.learn import train

    north = sum(line.startswith("north,") for line in loans_csv(mixed_project).read_text().splitlines())
    empty = sum(line.startswith(",") for line in loans_csv(mixed_project).read_text().splitlines())
    rename_region(mixed_project, "north", literal)
    mixed_project.edit(
        **{"data.features.region": {"type": "categorical", "categories": [literal, "south", "east", "west"]}}
    )
    config = config_module.load(mixed_project.config_file)
    dataset = data.load(config)
    assert (dataset.frame["region"] == literal).sum() == north > 0
    assert dataset.frame["region"].isna().sum() == empty
    pipeline, *_ = train.fit(config, dataset)
    encoder = pipeline.named_steps["preprocess"].named_transformers_["categorical"].named_steps["one_hot"]
    assert literal in list(encoder.categories_[0])


def test_na_category_is_refused_when_not_listed(mixed_project):
    rename_region(mixed_project, "north", "NA")
    result = mixed_project.mlci("train")
    assert result.exit_code == 2
    assert "column 'region'" in result.stderr and "'NA'" in result.stderr


def test_only_an_empty_field_is_missing(mixed_project):
    lines = loans_csv(mixed_project).read_text().splitlines()
    empty = [number for number, line in enumerate(lines, start=1) if line.startswith(",")]
    assert empty, "loans.csv has rows without a region"
    mixed_project.edit(**{"data.features.region.nullable": False})
    with pytest.raises(DataError) as caught:
        validate(mixed_project)
    expected = f"column 'region': {len(empty)} missing value(s) (lines {empty[0]}, {empty[1]}, {empty[2]} and"
    assert any(d.startswith(expected) for d in caught.value.details), caught.value.details


def test_duplicate_column_names_are_refused(project):
    rewrite(project, lambda lines: [lines[0].replace("mean_texture", "mean_radius", 1), *lines[1:]])
    assert_cli_rejects(project, "duplicate column name(s)", "'mean_radius'")


def test_duplicate_column_names_are_refused_even_when_pandas_suffix_collides(project):
    # pandas renames the second 'a' to 'a.1', which clashes with a real 'a.1' column.
    csv(project).write_text("a,a.1,a,diagnosis\n1,2,3,benign\n")
    with pytest.raises(DataError, match=r"duplicate column name\(s\): 'a'"):
        validate(project)


def test_dataset_size_is_bounded(project):
    project.edit(**{"data.max_bytes": 1024})
    assert_cli_rejects(project, "over data.max_bytes (1024 bytes)")


def test_na_in_a_numeric_column_is_not_a_silent_missing_value(project):
    def na(lines):
        cells = lines[3].split(",")
        cells[2] = "NA"
        lines[3] = ",".join(cells)
        return lines

    rewrite(project, na)
    project.edit(**{"data.missing": "impute"})
    with pytest.raises(DataError) as caught:
        validate(project)
    (line,) = caught.value.details
    assert "mean_perimeter" in line and "'NA'" in line and "leave missing values empty" in line


def test_na_category_reaches_the_bundle_reference_rows_as_a_string(mixed_project):
    # Training, packaging and serving agree: "NA" is a category string, an empty field is null.
    from mlci.learn import model
    from mlci.ship import export as bundle

    rename_region(mixed_project, "north", "NA")
    mixed_project.edit(
        **{"data.features.region": {"type": "categorical", "categories": ["NA", "south", "east", "west"]}}
    )
    config = config_module.load(mixed_project.config_file)
    frame = model.model_frame(data.load(config).frame, config)
    records = bundle.reference_records(frame, config, len(frame))
    regions = [r["region"] for r in records]
    assert "NA" in regions and None in regions
    assert set(regions) <= {"NA", "south", "east", "west", None}
