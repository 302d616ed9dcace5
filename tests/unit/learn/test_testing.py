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
