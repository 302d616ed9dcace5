"""mlci.core.env: the one place mlci reads its MLCI_* settings and the CI facts, each typed and bounded."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from mlci.core import env
from mlci.core.env import EnvError
from mlci.core.errors import BadInput

REPO = Path(__file__).resolve().parents[3]
SOURCES = [REPO / "ml", REPO / "api", REPO / "dashboard"]
CI_FACTS = {
    "JENKINS_URL",
    "BUILD_URL",
    "BUILD_NUMBER",
    "JOB_NAME",
    "NODE_NAME",
    "BRANCH_NAME",
    "GIT_BRANCH",
    "CHANGE_ID",
    "CHANGE_BRANCH",
    "BUILD_USER_ID",
    "GIT_URL",
}


def _reads(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, variable) of every read of an MLCI_* or CI variable: environ.get/getenv calls and
    environ[...] loads whose name is a literal (or an f-string starting with MLCI_)."""

    def name_of(node: ast.AST) -> str | None:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return node.value
        if isinstance(node, ast.JoinedStr) and node.values and isinstance(node.values[0], ast.Constant):
            return str(node.values[0].value) + "…"
        return None

    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and node.args:
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            owner = ast.unparse(func.value) if isinstance(func, ast.Attribute) else ""
            if called == "getenv" or (called == "get" and "environ" in owner):
                name = name_of(node.args[0])
                if name:
                    found.append((node.lineno, name))
        if isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load) and "environ" in ast.unparse(node.value):
            name = name_of(node.slice)
            if name:
                found.append((node.lineno, name))
    return [(line, name) for line, name in found if name.startswith("MLCI_") or name.rstrip("…") in CI_FACTS]


def test_no_module_but_core_env_reads_mlci_settings_or_ci_facts():
    offenders = []
    for root in SOURCES:
        for path in root.rglob("*.py"):
            if path == REPO / "ml" / "core" / "env.py":
                continue
            for line, name in _reads(ast.parse(path.read_text(encoding="utf-8"))):
                offenders.append(f"{path.relative_to(REPO)}:{line} reads {name}")
    assert not offenders, "read these through mlci.core.env:\n" + "\n".join(offenders)


def test_the_scan_finds_a_direct_read():
    code = 'import os\nx = os.environ.get("MLCI_PORT")\ny = os.environ["BUILD_URL"]\nz = os.getenv(f"MLCI_{a}_PORT")\n'
    assert [name for _, name in _reads(ast.parse(code))] == ["MLCI_PORT", "BUILD_URL", "MLCI_…"]


def test_unset_or_empty_means_the_default():
    assert env.PORT.get({}) == 8000
    assert env.PORT.get({"MLCI_PORT": "  "}) == 8000
    assert env.SHADOW_TOKEN.get({}) is None


@pytest.mark.parametrize(
    ("variable", "raw", "words"),
    [
        (env.PORT, "eighty", "MLCI_PORT must be an integer, got 'eighty'"),
        (env.PORT, "70000", "MLCI_PORT must be <= 65535, got 70000"),
        (env.WORKERS, "0", "MLCI_WORKERS must be >= 1, got 0"),
        (env.MAX_BODY_BYTES, "10", "MLCI_MAX_BODY_BYTES must be >= 64, got 10"),
        (env.BATCH_WAIT_MS, "nan", "MLCI_BATCH_WAIT_MS must be between 0 and 1000, got nan"),
        (env.HEADER_TIMEOUT, "soon", "MLCI_HEADER_TIMEOUT must be a number, got 'soon'"),
        (env.LOG_LEVEL, "loud", "MLCI_LOG_LEVEL must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL"),
        (env.SHADOW_TOKEN, "short", "MLCI_SHADOW_TOKEN must be 16 to 256 printable ASCII characters"),
        (env.API_URL, "router:8080", "MLCI_API_URL must be an http(s) URL, got 'router:8080'"),
    ],
)
def test_a_value_that_does_not_fit_names_the_variable_and_is_exit_2(variable, raw, words):
    with pytest.raises(EnvError, match=words.replace("(", r"\(").replace(")", r"\)")) as raised:
        variable.get({variable.name: raw})
    assert isinstance(raised.value, BadInput) and raised.value.exit_code == 2
    assert raised.value.hint


def test_a_huge_value_is_not_echoed_whole():
    with pytest.raises(EnvError) as raised:
        env.PORT.get({"MLCI_PORT": "9" * 100_000 + "x"})
    assert len(raised.value.message) < 200


def test_values_parse_to_their_types():
    values = {
        "MLCI_PORT": "8080",
        "MLCI_BATCH_WAIT_MS": "2.5",
        "MLCI_LOG_LEVEL": "debug",
        "MLCI_API_URL": "http://r:8080/",
    }
    assert env.PORT.get(values) == 8080
    assert env.BATCH_WAIT_MS.get(values) == 2.5
    assert env.LOG_LEVEL.get(values) == "DEBUG"
    assert env.API_URL.get(values) == "http://r:8080"


def test_per_environment_settings_are_named_after_the_environment():
    assert env.environment_variable("staging", "PORT") == "MLCI_STAGING_PORT"
    assert env.environment_variable("pre-prod", "DOCKER_HOST") == "MLCI_PRE_PROD_DOCKER_HOST"
    assert env.environment_setting("staging", "PORT", {"MLCI_STAGING_PORT": " 9000 "}) == "9000"
    assert env.environment_setting("staging", "PORT", {"MLCI_STAGING_PORT": ""}) is None
    with pytest.raises(ValueError):
        env.environment_variable("staging", "PASSWORD")


def test_ci_facts_are_none_on_a_laptop_and_jenkins_says_so():
    assert not env.ci({}).under_jenkins
    facts = env.ci({"JENKINS_URL": "https://ci/", "BRANCH_NAME": "PR-7", "CHANGE_ID": "7", "BUILD_URL": " "})
    assert facts.under_jenkins and facts.branch_name == "PR-7" and facts.change_id == "7"
    assert facts.build_url is None


def test_every_setting_is_listed_once_with_what_it_is_for():
    names = [variable.name for variable in env.VARIABLES]
    assert len(names) == len(set(names))
    assert all(variable.doc for variable in env.VARIABLES)
    assert {"MLCI_CONFIG", "MLCI_BUNDLE", "MLCI_API_URL", "MLCI_SHADOW_TOKEN"} <= set(names)


def test_the_settings_page_lists_every_variable():
    page = (REPO / "docs" / "settings.md").read_text(encoding="utf-8")
    missing = [variable.name for variable in env.VARIABLES if f"`{variable.name}`" not in page]
    assert not missing, f"docs/settings.md does not list {missing}"
