"""`mlci test` runs the project's pytest suite and reports like Jenkins expects."""

import xml.etree.ElementTree as ET


def write_tests(project, body: str) -> None:
    (project.root / "tests").mkdir(exist_ok=True)
    (project.root / "tests" / "test_example.py").write_text(body)
    project.edit(tests={"paths": ["tests"], "coverage": []})


def test_passing_suite_writes_junit_and_report(project):
    write_tests(project, "def test_one():\n    assert 1 + 1 == 2\n\ndef test_two():\n    assert 'a'.upper() == 'A'\n")
    result = project.mlci("test")
    assert result.exit_code == 0, result.stdout
    assert "RESULT OK: tests passed: 2 passed" in result.stdout
    junit = ET.parse(project.root / "reports" / "junit.xml").getroot()
    assert junit.find("testsuite").get("tests") == "2"
    assert project.report("test")["passed"] is True


def test_failing_suite_exits_1_naming_the_failure(project):
    write_tests(project, "def test_ok():\n    pass\n\ndef test_broken():\n    assert 2 + 2 == 5\n")
    result = project.mlci("test")
    assert result.exit_code == 1
    assert "test_broken" in result.stdout and "1 failed, 1 passed" in result.stdout
    assert project.report("test")["passed"] is False


def test_coverage_xml_when_configured(project):
    write_tests(project, "import json\n\ndef test_json():\n    assert json.loads('1') == 1\n")
    project.edit(tests={"paths": ["tests"], "coverage": ["json"]})
    assert project.mlci("test").exit_code == 0
    assert (project.root / "reports" / "coverage.xml").is_file()
    assert project.report("test")["coverage"] == "reports/coverage.xml"


def test_no_tests_and_missing_paths_are_bad_input(project):
    write_tests(project, "X = 1\n")
    result = project.mlci("test")
    assert result.exit_code == 2 and "no tests were collected" in result.stderr
    project.edit(tests={"paths": ["nowhere"]})
    result = project.mlci("test")
    assert result.exit_code == 2 and "test path(s) not found: nowhere" in result.stderr


# A branch's test that tries to poison the agents' venv cache, and one that only writes where tests may.
POISONING_TESTS = """import os, pathlib, pytest

def test_cannot_plant_a_pth_in_the_venv_cache():
    with pytest.raises(PermissionError):
        pathlib.Path(os.environ["CACHE"], "evil.pth").write_text("import os; os.system('steal')")

def test_cannot_rename_a_file_of_the_project_into_it():
    pathlib.Path("tests", "moved.txt").write_text("x")
    with pytest.raises(PermissionError):
        os.rename("tests/moved.txt", pathlib.Path(os.environ["CACHE"], "moved.pth"))

def test_cannot_touch_git_for_the_next_checkout_or_add_files_at_the_top():
    for path in (".git/hooks/post-checkout", ".git/config", "sitecustomize.py"):
        with pytest.raises(PermissionError):
            pathlib.Path(path).write_text("#!/bin/sh\\nsteal")

def test_writes_the_project_the_temp_dir_and_its_caches(tmp_path):
    pathlib.Path("tests", "out.txt").write_text("ok")
    (tmp_path / "t").write_text("ok")
    pathlib.Path(os.environ.get("XDG_CACHE_HOME", str(tmp_path)), "lib-cache").write_text("ok")
"""


def sandboxed(project, tmp_path, monkeypatch, mode: str):
    """The agent's venv cache outside the project and the temp dir, the tests that try to poison it."""
    cache = tmp_path / "agent-cache" / "mlci-venv" / "lib"
    cache.mkdir(parents=True)
    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setattr("tempfile.tempdir", str(temp))  # the temp dir mlci test allows is not tmp_path itself
    monkeypatch.setenv("CACHE", str(cache))
    monkeypatch.setenv("MLCI_TEST_SANDBOX", mode)
    write_tests(project, POISONING_TESTS)
    return cache


def test_sandboxed_tests_cannot_write_outside_the_project_and_temp_dir(project, tmp_path, monkeypatch):
    cache = sandboxed(project, tmp_path, monkeypatch, "auto")

    result = project.mlci("test")

    assert result.exit_code == 0, result.stdout
    assert "sandbox: landlock ABI" in result.stdout and str(project.root) in result.stdout
    assert list(cache.iterdir()) == []
    assert not (project.root / ".git" / "hooks" / "post-checkout").exists()
    assert project.report("test")["sandbox"].startswith("landlock ABI")


def test_sandboxed_tests_still_measure_coverage(project, monkeypatch):
    write_tests(project, "import json\n\ndef test_json():\n    assert json.loads('1') == 1\n")
    project.edit(tests={"paths": ["tests"], "coverage": ["json"]})
    monkeypatch.setenv("MLCI_TEST_SANDBOX", "required")
    result = project.mlci("test")
    assert result.exit_code == 0, result.stdout
    assert (project.root / "reports" / "coverage.xml").is_file()
    assert not (project.root / ".coverage").exists()


def test_without_the_sandbox_the_same_tests_poison_the_cache(project, tmp_path, monkeypatch):
    cache = sandboxed(project, tmp_path, monkeypatch, "off")

    result = project.mlci("test")

    assert result.exit_code == 1
    assert "3 failed, 1 passed" in result.stdout
    assert sorted(p.name for p in cache.iterdir()) == ["evil.pth", "moved.pth"]
    assert (project.root / ".git" / "hooks" / "post-checkout").read_text().endswith("steal")
    assert project.report("test")["sandbox"] == "off"


def test_a_required_sandbox_on_a_kernel_without_landlock_is_refused_and_auto_says_so(project, tmp_path, monkeypatch):
    # A kernel without Landlock cannot be had here: abi_version() is what says so.
    sandboxed(project, tmp_path, monkeypatch, "required")
    monkeypatch.setattr("mlci.core.sandbox.abi_version", lambda: 0)

    result = project.mlci("test")
    assert result.exit_code == 2
    assert "MLCI_TEST_SANDBOX=required, but this agent's kernel has no Landlock" in result.stderr
    assert not (project.root / "reports" / "junit.xml").exists()

    monkeypatch.setenv("MLCI_TEST_SANDBOX", "auto")
    result = project.mlci("test")
    assert result.exit_code == 1  # unconfined: the poisoning tests' writes succeed
    assert "sandbox: unavailable: this kernel has no Landlock" in result.stdout


def test_a_sandbox_setting_that_is_not_one_of_its_values_is_bad_input(project, monkeypatch):
    write_tests(project, "def test_ok():\n    pass\n")
    monkeypatch.setenv("MLCI_TEST_SANDBOX", "yes")
    result = project.mlci("test")
    assert result.exit_code == 2 and "MLCI_TEST_SANDBOX must be one of off, auto, required" in result.stderr
    monkeypatch.setenv("MLCI_TEST_SANDBOX", "auto")
    monkeypatch.setenv("MLCI_TEST_WRITABLE", "relative/dir")
    result = project.mlci("test")
    assert result.exit_code == 2 and "MLCI_TEST_WRITABLE must be up to 32 absolute paths" in result.stderr
