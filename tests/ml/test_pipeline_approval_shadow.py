"""`mlci pipeline run` approval: the shadow summary before the question, and reports/approval.json keeps it.

The two APIs' answer rings are served by real HTTP servers on 127.0.0.1 (the same paged
/shadow/answers protocol the routers speak), so the real report code fetches and compares them.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.conftest import reserve_ports


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
