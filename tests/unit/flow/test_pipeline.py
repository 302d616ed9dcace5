"""mlci.flow.pipeline: the local pipeline and the Jenkinsfile never drift apart (same stages, same order),
and the approval shows the shadow summary before the question and keeps it in reports/approval.json."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from mlci.core.errors import BadInput
from mlci.flow.pipeline import STAGES, stage_named
from tests.helpers.ports import reserve_ports

REPO = Path(__file__).resolve().parents[3]


def jenkinsfile_stages() -> list[str]:
    """The stages that run steps, in order. Parent stages only group them (one agent for Setup to Gate,
    the staging lock over Deploy staging and Approve): they hold `stages {` before their first child."""
    text = (REPO / "Jenkinsfile").read_text()
    found = list(re.finditer(r"^\s*stage\('([^']+)'\)", text, flags=re.M))
    ends = [match.start() for match in found[1:]] + [len(text)]
    return [match.group(1) for match, end in zip(found, ends) if "stages {" not in text[match.end() : end]]


def test_the_jenkinsfile_groups_stages_without_hiding_any():
    names = re.findall(r"^\s*stage\('([^']+)'\)", (REPO / "Jenkinsfile").read_text(), flags=re.M)
    assert set(jenkinsfile_stages()) < set(names)  # the groups are not stages of mlci pipeline


def test_mlci_pipeline_stages_equals_the_jenkinsfile(project):
    listed = project.mlci("pipeline", "stages")
    assert listed.exit_code == 0
    assert listed.stdout.splitlines() == jenkinsfile_stages() == list(STAGES)


def test_mlci_pipeline_step_uses_the_same_stage_names():
    text = (REPO / "vars" / "mlciPipeline.groovy").read_text()
    assert re.findall(r"stage\('([^']+)'\)", text) == list(STAGES)


@pytest.mark.parametrize(
    "given, name",
    [
        ("train", "Train"),
        ("build", "Build images"),
        ("Build images", "Build images"),
        ("deploy-production", "Deploy production"),
        ("APPROVE", "Approve"),
    ],
)
def test_stage_names_and_slugs(given, name):
    assert stage_named(given) == name


def test_bad_slices_are_bad_input(project):
    result = project.mlci("pipeline", "run", "--from", "deploy", "--no-approve")
    assert result.exit_code == 2 and "unknown stage 'deploy'" in result.stderr
    result = project.mlci("pipeline", "run", "--from", "gate", "--to", "train")
    assert result.exit_code == 2 and "comes after" in result.stderr
    with pytest.raises(BadInput):
        stage_named("ship it")


def test_a_slice_runs_only_its_stages(project):
    result = project.mlci("pipeline", "run", "--from", "train", "--to", "gate")
    assert result.exit_code == 0, result.stdout + result.stderr
    assert "stage 1/2: Train" in result.stdout and "stage 2/2: Gate" in result.stdout
    assert "Build images" not in result.stdout
    assert project.report("gate")["passed"] is True


def test_approval_without_a_terminal_needs_a_flag(project):
    assert project.mlci("train").exit_code == 0
    result = project.mlci("pipeline", "run", "--from", "approve", "--to", "approve")
    assert result.exit_code == 2 and "--approve or --no-approve" in result.stderr
    refused = project.mlci("pipeline", "run", "--from", "approve", "--to", "approve", "--no-approve")
    assert refused.exit_code == 1 and "was not approved: production is untouched" in refused.stderr


def _answer(request_id: str, label: str, mirrored: bool) -> dict[str, Any]:
    probabilities = {"a": 0.9, "b": 0.1} if label == "a" else {"a": 0.2, "b": 0.8}
    return {"id": request_id, "t": 1, "status": 200, "ms": 3.0, "shadow": mirrored, "labels": [label],
            "probabilities": [probabilities]}  # fmt: skip


@contextmanager
def ring(version: str, answers: list[dict[str, Any]]) -> Iterator[int]:
    """An API's /shadow/answers on a free port: one page with every answer."""
    body = json.dumps({"model": {"version": version}, "answers": answers, "more": False, "next": 0}).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200 if self.path.startswith("/shadow/answers") else 404)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def mirror_to_staging(project, production_port: int, staging_port: int) -> None:
    project.edit(
        **{
            "environments.production.shadow": {"env": "staging", "share": 0.1},
            "environments.production.port": production_port,
            "environments.staging.port": staging_port,
            # Ports from the OS's ephemeral range: the default preview port (port + 10000) may not exist.
            "environments.production.preview_port": reserve_ports(1)[0],
            "environments.staging.preview_port": reserve_ports(1)[0],
        }
    )


def approve(project, *flag: str):
    return project.mlci("pipeline", "run", "--from", "approve", "--to", "approve", *flag)


def test_the_approval_shows_the_shadow_summary_and_records_the_report(project):
    production = [_answer(f"r{i}", "a", mirrored=False) for i in range(4)]
    candidate = [_answer("r0", "a", True), _answer("r1", "a", True), _answer("r2", "b", True), _answer("r3", "a", True)]
    with ring("2", production) as production_port, ring("3", candidate) as staging_port:
        mirror_to_staging(project, production_port, staging_port)
        result = approve(project, "--approve")

    assert result.exit_code == 0, result.output
    said = result.output + result.stderr
    # No production router runs here to hold the switch file: the line says the mirror is off.
    assert (
        "approval: mirror OFF: shadow production -> staging (v3 vs v2): 4 requests compared of 4 mirrored, "
        "0 unmatched, agreement 75.00%" in said
    )
    record = project.report("approval")
    assert record["approved"] is True and record["approver"]
    assert record["shadow"]["comparison"]["compared"] == 4
    assert record["shadow"]["summary"].startswith("mirror OFF: shadow production -> staging (v3 vs v2)")
    assert "error" not in record["shadow"]


def test_a_report_about_another_version_than_the_one_approved_says_so_instead_of_its_figures(project):
    production = [_answer(f"r{i}", "a", mirrored=False) for i in range(4)]
    candidate = [_answer(f"r{i}", "a", mirrored=True) for i in range(4)]
    (project.root / "reports").mkdir(exist_ok=True)
    (project.root / "reports" / "gate.json").write_text(json.dumps({"candidate": {"version": "4"}}))
    with ring("2", production) as production_port, ring("3", candidate) as staging_port:
        mirror_to_staging(project, production_port, staging_port)
        result = approve(project, "--no-approve")

    assert result.exit_code == 1, result.output + result.stderr
    said = result.output + result.stderr
    why = "staging serves v3, not v4: this report is not about the version being approved"
    assert f"approval: warning: {why}" in said
    assert "requests compared" not in said  # the figures are not shown as v4's
    record = project.report("approval")
    assert record["version"] == "4" and record["shadow"]["error"] == why
    assert record["shadow"]["comparison"]["compared"] == 4  # the report itself is kept


def test_an_unavailable_shadow_report_is_one_line_and_the_refusal_is_recorded(project):
    mirror_to_staging(project, reserve_ports(1)[0], reserve_ports(1)[0])

    result = approve(project, "--no-approve")

    assert result.exit_code == 1, result.output + result.stderr
    said = result.output + result.stderr
    lines = [line for line in said.splitlines() if "shadow report unavailable" in line]
    assert len(lines) == 1 and "production did not answer" in lines[0], said
    assert "Traceback" not in said
    record = project.report("approval")
    assert record["approved"] is False and record["approver"] is None
    assert "production did not answer" in record["shadow"]["error"]


def test_without_shadow_traffic_nothing_is_said_and_the_record_has_no_shadow(project):
    result = approve(project, "--no-approve")

    assert "approval: shadow" not in (result.output + result.stderr)
    assert project.report("approval")["shadow"] is None


def test_the_line_builds_a_dashboard_image_only_where_an_environment_serves_one(project):
    from mlci.core.config import load
    from mlci.flow.pipeline import image_roles

    project.edit(environments={"staging": {"port": 18081}, "production": {"port": 18080}})
    assert image_roles(load(project.config_file)) == ("api", "router")
    project.edit(**{"environments.production.dashboard_port": 18502})
    assert image_roles(load(project.config_file)) == ("api", "router", "dashboard")
