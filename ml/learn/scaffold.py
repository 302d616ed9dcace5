"""`mlci init`: a team's repository from a CSV — mlci.yaml with what mlci.learn.infer read from the data,
the one-line Jenkinsfile, a starter test and a .gitignore.

Everything is checked before anything is written: the data, the target, the files already there,
and the config itself (it must load with the strict loader and the data must pass mlci's own
validation against it). Files are then written to a temporary folder beside them and moved in.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import tempfile
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import version as installed_version
from pathlib import Path
from typing import Any

import jinja2
import yaml

from mlci.core import config as config_module
from mlci.core.errors import BadInput, DataError
from mlci.learn import data, infer

TEMPLATES = Path(__file__).resolve().parent / "templates" / "init"
# Largest CSV `mlci init` reads (the config's default data.max_bytes): it is parsed in memory.
MAX_BYTES = 512 * 1024 * 1024
CV_FOLDS, TEST_SIZE = 5, 0.2
PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")
# Characters a YAML file cannot hold as themselves (outside YAML's printable set: DEL, C1 controls,
# surrogates, U+FFFE/F) or that YAML reads as a line break (U+0085, U+2028, U+2029), plus the BOM.
UNPRINTABLE = re.compile("[\x7f-\x9f\u2028\u2029\ufeff\ud800-\udfff\ufffe\uffff]")
# Template -> file written, relative to the project folder.
FILES = {
    "mlci.yaml.j2": "mlci.yaml",
    "Jenkinsfile.j2": "Jenkinsfile",
    "test_data.py.j2": "tests/test_data.py",
    "gitignore.j2": ".gitignore",
}


# Router ports a scaffold derives from the project name: production at a multiple of PORT_SPACING in
# [PORT_LOW, PORT_LOW + PORT_SLOTS * PORT_SPACING), staging and the dashboard just above; previews are
# 10000 higher (30000-39999). Away from 8080 (Jenkins) and the usual 8000-9999 of other services.
PORT_LOW, PORT_SLOTS, PORT_SPACING = 20000, 1000, 10
# A --port base: production, +1, +2, and the previews 10000 above must all be valid unprivileged ports.
PORT_MIN, PORT_MAX = 1024, 65535 - 10002


@dataclass(frozen=True)
class Ports:
    production: int
    staging: int
    dashboard: int


@dataclass(frozen=True)
class InitResult:
    directory: Path
    project: str
    data_path: str  # as written in mlci.yaml, relative to the folder
    data_copied: bool  # the CSV was outside the folder and was copied into data/
    written: list[str]
    inference: infer.Inference
    positive: str | None  # metrics.positive_label written (None for more than two classes)
    ports: Ports


def _yaml_escape(char: str) -> str:
    """A character YAML cannot print as itself (mlci.learn.scaffold.UNPRINTABLE) as a double-quoted escape."""
    code = ord(char)
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def _quoted(value: str) -> str:
    """JSON quoting (valid YAML double-quoted), with what YAML refuses or reads as a line break escaped:
    json leaves DEL, the C1 controls, U+2028/9 and the BOM as they are, and a YAML reader stops on them
    or breaks the line there."""
    return UNPRINTABLE.sub(lambda m: _yaml_escape(m.group()), json.dumps(value, ensure_ascii=False))


def yaml_scalar(value: str) -> str:
    """A string as one line of YAML: plain when it reads back as itself, else quoted (see _quoted)."""
    if PLAIN.fullmatch(value) and yaml.safe_load(value) == value:
        return value
    return _quoted(value)


def number(value: float) -> str:
    """A number as YAML reads back a number: `1e+16` without a dot would be read as a string."""
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    text = repr(float(value))
    return text.replace("e", ".0e") if "e" in text and "." not in text else text


def comment(value: object) -> str:
    """Text from the data inside a YAML comment: quoted on one line, so a newline cannot end the comment."""
    return _quoted(str(value))[1:-1]


def _missing_note(feature: infer.FeatureGuess, rows: int) -> str:
    if not feature.nullable:
        return ""
    return f"; {feature.missing} missing ({100 * feature.missing / rows:.1f} %), so nullable"


def project_name(given: str | None, directory: Path) -> str:
    name = given if given is not None else re.sub(r"[^a-z0-9-]+", "-", directory.resolve().name.lower()).strip("-")[:41]
    if not re.fullmatch(config_module.NAME_PATTERN, name):
        raise BadInput(
            f"project name {name!r} is not valid: lowercase letters, digits and '-', at most 41, not starting with '-'",
            hint="pass --project NAME (it names the model, the images and the containers)",
        )
    return name


def read_data(path: Path, delimiter: str) -> Any:
    """The CSV as mlci reads it for training (ml.data.read_csv), with init's own wording for a bad file."""
    if not path.is_file():
        raise DataError(f"no such file: {path}", hint="pass --data with the path of a CSV file")
    frame = data.read_csv(path, delimiter, MAX_BYTES)
    if len(frame.columns) < 2 and (found := data._guess_delimiter(path, delimiter)):
        raise DataError(
            f"{path} has one column with delimiter {data.delimiter_option(delimiter)}",
            hint=f"pass --delimiter {data.delimiter_option(found)}",
        )
    return frame


def _data_path(source: Path, directory: Path) -> tuple[str, bool]:
    """The data's path relative to the folder; a CSV outside it is copied into data/ (a repository
    commits its data)."""
    try:
        return source.resolve().relative_to(directory.resolve()).as_posix(), False
    except ValueError:
        return f"data/{source.name}", True


def render(context: dict[str, Any]) -> dict[str, str]:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,  # YAML, Groovy and Python files, never HTML
    )
    env.filters.update(y=yaml_scalar, num=number, comment=comment, pyrepr=repr, sig=significant)
    return {target: env.get_template(name).render(**context) for name, target in FILES.items()}


def self_check(text: str, directory: Path, frame: Any) -> None:
    """The config written must load with the strict loader and the data must pass mlci's validation
    against it, as `mlci train` will check them: anything else is a bug of init, stopped here."""
    parsed = config_module.parse(yaml.safe_load(text), root=directory, source="mlci.yaml (as mlci init wrote it)")
    problems = data.validate_frame(frame, parsed, "data")
    if problems:
        raise DataError("mlci init inferred a config its data does not pass (a bug of mlci init):", details=problems)


def _existing(directory: Path, names: list[str]) -> list[str]:
    return [name for name in names if (directory / name).exists()]


def _write(directory: Path, files: dict[str, str], copy_from: Path | None, data_path: str) -> None:
    """Write into a temporary folder beside the files, then move each into place."""
    directory.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".mlci-init-", dir=directory))
    try:
        for name, text in files.items():
            (staging / name).parent.mkdir(parents=True, exist_ok=True)
            (staging / name).write_text(text, encoding="utf-8")
        if copy_from is not None:
            (staging / data_path).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(copy_from, staging / data_path)
        moved = [*files, *([data_path] if copy_from is not None else [])]
        for name in moved:
            (directory / name).parent.mkdir(parents=True, exist_ok=True)
            os.replace(staging / name, directory / name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def positive_class(classes: dict[str, int], given: str | None) -> str | None:
    """The class f1, precision and recall are about: the one given, else for two classes the rarer one
    (the event a team watches: churn=yes, fraud=1), the last in sorted order on a tie; None for more."""
    if given is not None:
        if given not in classes:
            raise BadInput(
                f"--positive-label {given!r} is not a class of the target",
                details=[f"classes: {', '.join(map(repr, classes))}"],
                hint="pass one of these classes (case and spaces count)",
            )
        return given
    if len(classes) != 2:
        return None
    return min(sorted(classes, reverse=True), key=lambda label: classes[label])


def significant(value: float, digits: int = 3) -> float:
    """The value rounded to a few significant digits: a starting threshold reads 58.2, not 58.1866…"""
    if value == 0 or not math.isfinite(value):
        return 0.0
    return round(value, digits - 1 - math.floor(math.log10(abs(value))))


def regression_gate(summary: infer.TargetSummary) -> dict[str, float]:
    """The gate a regression starts with: rmse no higher than always predicting the mean (the target's
    standard deviation), and at most 1 % of it worse than production."""
    return {"threshold": significant(summary.std), "max_regression": significant(summary.std / 100)}


def ports(project: str, base: int | None) -> Ports:
    """Router ports on the Docker host: the given base, else one derived from the project name, so two
    teams' projects on one host rarely collide and none lands on Jenkins' 8080."""
    if base is None:
        base = PORT_LOW + (zlib.crc32(project.encode()) % PORT_SLOTS) * PORT_SPACING
    elif not PORT_MIN <= base <= PORT_MAX:
        raise BadInput(
            f"--port {base} is out of range: production takes it, staging and the dashboard the next two, "
            f"and each router's preview listener is 10000 above",
            hint=f"pass a base port from {PORT_MIN} to {PORT_MAX}",
        )
    return Ports(production=base, staging=base + 1, dashboard=base + 2)


def init(
    data_file: Path,
    target: str,
    directory: Path = Path("."),
    project: str | None = None,
    force: bool = False,
    delimiter: str = ",",
    positive_label: str | None = None,
    port: int | None = None,
    task: str | None = None,
) -> InitResult:
    if directory.exists() and not directory.is_dir():
        raise BadInput(f"{directory} is not a folder", hint="pass --dir with a folder (created if missing)")
    name = project_name(project, directory)
    delimiter = data.parse_delimiter(delimiter)
    router_ports = ports(name, port)
    frame = read_data(data_file, delimiter)
    inference = infer.infer(frame, target, CV_FOLDS, TEST_SIZE, task)
    if inference.task == infer.REGRESSION and positive_label is not None:
        raise BadInput(
            "--positive-label names a class, and the target is a number to predict (task regression)",
            details=[f"task: {inference.task_reason}"],
            hint="drop --positive-label, or pass --task classification if the target holds classes",
        )
    positive = positive_class(inference.classes, positive_label)
    data_path, copied = _data_path(data_file, directory)
    classes = list(inference.classes)
    files = render(
        {
            "project": name,
            "version": installed_version("mlci"),
            "source": data_file.name,
            "columns": len(frame.columns),
            "date": datetime.now(UTC).date().isoformat(),
            "inference": inference,
            "data_path": data_path,
            "margin": round(100 * infer.RANGE_MARGIN),
            "missing_note": lambda f: _missing_note(f, inference.rows),
            "positive": positive,
            "positive_given": positive_label is not None,
            "ports": router_ports,
            "max_categories": infer.MAX_CATEGORIES,
            "classes": sorted(classes),
            "cv_folds": CV_FOLDS,
            "test_size": TEST_SIZE,
            "delimiter": delimiter,
            "task": inference.task,
            "summary": inference.summary,
            "gate": regression_gate(inference.summary) if inference.summary else None,
        }
    )
    self_check(files["mlci.yaml"], directory, frame)
    targets = [*files, *([data_path] if copied else [])]
    if not force and (present := _existing(directory, targets)):
        raise BadInput(
            f"{', '.join(present)} already exist(s) in {directory}: nothing was written",
            hint="pass --force to replace them, or --dir to scaffold another folder",
        )
    _write(directory, files, data_file if copied else None, data_path)
    return InitResult(directory, name, data_path, copied, targets, inference, positive, router_ports)
