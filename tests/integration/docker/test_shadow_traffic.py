"""Shadow traffic on a real Docker engine and Nginx (issue 15, item 1).

Production serves v1; v2, trained on purpose to be a worse model (one shallow tree per few), waits
in staging. Production's router mirrors half of its /predict requests to staging; `mlci shadow
report` joins both APIs' answers by the router's request id. The expected agreement is computed
offline from the two bundles on exactly the rows the candidate was mirrored, and a dead or hanging
shadow costs production no error. The latency ratios are measured by benchmarks/shadow_overhead.py.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from pathlib import Path

import httpx
import pandas as pd
import pytest

from mlci.api.shadow import FLUSH_SECONDS
from mlci.contract.bundle import load_bundle
from mlci.deploy import shadow_answers
from tests.helpers.docker_line import Line, docker
from tests.helpers.waiting import wait_until_answers

REPO = Path(__file__).resolve().parents[3]
SHARE = 0.5
TIMEOUT_MS = 1000
SENT = 300


class ShadowLine(Line):
    """The demo line with v1 (the demo's forest) and v2 (a poor candidate) packaged as bundles."""

    def __init__(self, project):
        super().__init__(project)
        self.bundles: dict[str, Path] = {}

    def deploy(self, env: str, version: str) -> str:
        result = self.mlci("deploy", "--env", env, "--version", version)
        assert result.exit_code == 0, result.output
        return result.output

    def live_slot(self, env: str) -> str:
        return f"{self.name}-{env}-{self.live(env).removesuffix('.sock')}"

    def wait_ready(self, env: str, timeout: float = 60) -> None:
        try:
            wait_until_answers(f"{self.url(env)}/ready", timeout)
        except TimeoutError as error:
            pytest.fail(f"{env} not ready again: {error}")

    def answers(self, env: str) -> list[dict]:
        """The answer ring of the env's live slot, read with that slot's shadow token as `mlci shadow report` does."""
        variables = json.loads(docker("inspect", "-f", "{{json .Config.Env}}", self.live_slot(env)).stdout)
        return shadow_answers.fetch(self.url(env), env, shadow_answers.token_in(variables))[1]

    def mirroring(self) -> bool:
        done = docker("exec", f"{self.name}-production-router", "test", "-f", "/run/mlci/shadow.on", check=False)
        return done.returncode == 0

    def staging_on_production_network(self) -> bool:
        networks = json.loads(docker("inspect", f"{self.name}-staging-router").stdout)[0]["NetworkSettings"]["Networks"]
        return f"{self.name}-production" in networks

    def router_workers(self, env: str) -> set[str]:
        """The nginx processes of a router: a reload replaces its workers."""
        return set(docker("top", f"{self.name}-{env}-router").stdout.splitlines()[1:])


@pytest.fixture(scope="module")
def line(tmp_path_factory, base_images, project_factory, build_sources, free_ports):
    copy_sources, remove_images = build_sources
    root = tmp_path_factory.mktemp("shadow")
    project = project_factory(root, REPO / "mlci.yaml", [REPO / "data" / "breast_cancer.csv"])
    copy_sources(project.root)
    name = f"sh-{uuid.uuid4().hex[:8]}"
    staging, staging_preview, production, production_preview = free_ports(4)
    checks = {"ready_timeout": 30, "verify_seconds": 1.5}
    project.edit(
        project=name,
        environments={
            "staging": {"port": staging, "preview_port": staging_preview, "drain_seconds": 1, "checks": dict(checks)},
            "production": {
                "port": production,
                "preview_port": production_preview,
                "drain_seconds": 1,
                "checks": dict(checks),
                "requires": [],  # the promotion policy has its own tests
                "shadow": {"env": "staging", "share": SHARE, "timeout_ms": TIMEOUT_MS},
            },
        },
    )
    project.commit("build sources")
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    for key, value in base_images.items():
        monkeypatch.setenv(key, value)
    line = ShadowLine(project)
    try:
        # v1: the demo's forest; v2: a deliberately poor candidate that disagrees on known rows.
        for version, params in (("1", {}), ("2", {"model.params.max_depth": 1, "model.params.n_estimators": 2})):
            project.edit(**params)
            project.commit(f"model {version}")
            assert line.mlci("train").exit_code == 0
            roles = ("--only", "api") + (("--only", "router") if version == "1" else ())
            built = line.mlci("build", *roles)
            assert built.exit_code == 0, built.output
            out = root / f"bundle-{version}"
            packaged = line.mlci("package", "--version", version, "--out", str(out))
            assert packaged.exit_code == 0, packaged.output
            line.bundles[version] = out
        yield line
    finally:
        for env in ("staging", "production"):
            line.mlci("down", "--env", env)
            docker("volume", "rm", f"{name}-{env}-state", check=False)
        monkeypatch.undo()
        remove_images(name)


@pytest.fixture(scope="module")
def rows(line) -> list[dict]:
    """Every row of the data set, as the API takes it, with the two models' labels computed offline."""
    config = line.project.config
    frame = pd.read_csv(line.project.root / "data" / "breast_cancer.csv")
    records = frame[list(config["data"]["features"])].to_dict(orient="records")
    labels = {}
    for version, path in line.bundles.items():
        bundle = load_bundle(path)
        labels[version], _ = bundle.predict(bundle.columns_from_records(records))
    return [{"record": r, "v1": a, "v2": b} for r, a, b in zip(records, labels["1"], labels["2"])]


@pytest.fixture(scope="module")
def candidate_in_staging(line):
    first = line.deploy("production", "1")
    assert "shadow traffic production -> staging: off" in first  # nothing in staging yet
    workers = line.router_workers("production")
    out = line.deploy("staging", "2")
    assert "shadow traffic production -> staging: on" in out
    assert line.mirroring() and line.staging_on_production_network()
    assert line.router_workers("production") == workers  # switched on without a reload
    return line


def send(url: str, chosen: list[dict], threads: int = 4) -> tuple[dict[str, dict], list[str], list[float]]:
    """The rows through production's router on keep-alive connections: request id → row, failures, latencies."""
    by_id: dict[str, dict] = {}
    failures: list[str] = []
    latencies: list[float] = []
    lock = threading.Lock()

    def worker(part: list[dict]) -> None:
        with httpx.Client(timeout=10) as client:
            for row in part:
                started = time.perf_counter()
                try:
                    response = client.post(f"{url}/predict", json={"records": [row["record"]]})
                except httpx.HTTPError as error:
                    with lock:
                        failures.append(f"{type(error).__name__}: {error}")
                    continue
                with lock:
                    latencies.append(time.perf_counter() - started)
                    if response.status_code != 200:
                        failures.append(f"HTTP {response.status_code}: {response.text[:200]}")
                    else:
                        by_id[response.headers["x-request-id"]] = row

    pool = [threading.Thread(target=worker, args=(chosen[i::threads],)) for i in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join(timeout=120)
    return by_id, failures, latencies


def known_rows(rows: list[dict], count: int) -> list[dict]:
    """Every row where the models disagree, filled up with rows where they agree."""
    differ = [r for r in rows if r["v1"] != r["v2"]]
    same = [r for r in rows if r["v1"] == r["v2"]]
    assert differ, "the two models agree everywhere: the candidate is not different enough for this test"
    return (differ * (1 + count // (2 * len(differ))))[: count // 2] + same[: count - count // 2]


def test_the_report_counts_the_mirrored_requests_and_their_agreement(candidate_in_staging, rows):
    line = candidate_in_staging
    by_id, failures, _ = send(line.url("production"), known_rows(rows, SENT))
    assert failures == [] and len(by_id) == SENT
    time.sleep(FLUSH_SECONDS + 1)
    result = line.mlci("shadow", "report", "--env", "staging", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output[result.output.index("{") :])
    c = report["comparison"]
    # Sampling on the request id: a binomial count, within 5 standard deviations of share × sent.
    spread = 5 * (SENT * SHARE * (1 - SHARE)) ** 0.5
    assert abs(c["mirrored"] - SHARE * SENT) <= spread, c
    assert c["compared"] == c["mirrored"] and c["candidate_errors"] == 0 and c["unmatched"] == 0
    assert report["candidate_version"] == "2" and report["production_version"] == "1" and report["on"]

    # The expected agreement, from the two bundles, on exactly the requests the candidate was mirrored.
    ids = [a["id"] for a in line.answers("staging") if a["shadow"]]
    assert set(ids) <= set(by_id) and len(ids) == c["mirrored"]
    expected = sum(by_id[i]["v1"] == by_id[i]["v2"] for i in ids) / len(ids)
    assert c["agreement"] == pytest.approx(expected, abs=1e-6)
    assert 0.3 < c["agreement"] < 0.8  # about half the rows were chosen for their disagreement
    assert (
        c["max_probability_diff"] > 0 and c["candidate_p50_ms"] > 0 and c["candidate_p99_ms"] >= c["candidate_p50_ms"]
    )

    saved = json.loads((line.project.root / "reports" / "shadow-staging.json").read_text())
    assert saved["summary"].startswith("shadow production -> staging (v2 vs v1): ")
    assert f"{c['compared']} requests compared" in saved["summary"]


def test_an_outside_client_can_neither_read_the_answers_nor_pass_as_mirrored(candidate_in_staging, rows):
    """Review of issue 15: the rings hold other clients' predictions, and staging's public port is as
    reachable as production's. A client's marks are dropped by the router; the answers need the token."""
    line = candidate_in_staging
    for env in ("production", "staging"):
        refused = httpx.get(f"{line.url(env)}/shadow/answers", timeout=10)
        assert refused.status_code == 401 and "labels" not in refused.text, (env, refused.text[:300])
    by_id, failures, _ = send(line.url("production"), rows[:20])
    assert failures == []
    time.sleep(FLUSH_SECONDS + 1)
    before = {a["id"] for a in line.answers("staging") if a["shadow"]}
    # Replay production's own request ids at staging's public port, marked as copies, with other inputs.
    forged = [i for i in by_id if i not in before] or list(by_id)
    with httpx.Client(timeout=10) as client:
        for request_id in forged:
            response = client.post(
                f"{line.url('staging')}/predict",
                json={"records": [rows[-1]["record"]]},
                headers={"x-mlci-shadow": "production", "x-mlci-sampled": "1", "x-request-id": request_id},
            )
            assert response.status_code == 200
    time.sleep(FLUSH_SECONDS + 1)
    after = [a for a in line.answers("staging") if a["shadow"]]
    assert {a["id"] for a in after} == before, "a client's own request was counted as a mirrored copy"


def test_a_dead_or_hanging_shadow_costs_production_no_error(candidate_in_staging, rows):
    line = candidate_in_staging
    slot = line.live_slot("staging")
    docker("stop", "-t", "1", slot)  # staging's router answers 502 to the mirror
    try:
        _, failures, _ = send(line.url("production"), rows[:150])
        assert failures == []
    finally:
        docker("start", slot)
        line.wait_ready("staging")
    router = f"{line.name}-staging-router"
    docker("pause", router)  # connections open, nothing answers: the mirror's timeout cuts it
    try:
        _, failures, latencies = send(line.url("production"), rows[:100])
        assert failures == []
        # A keep-alive request waits for the previous one's mirror: the hand-off lets it go within ms,
        # not after the shadow's TIMEOUT_MS.
        assert sorted(latencies)[int(len(latencies) * 0.99)] < TIMEOUT_MS / 1000 / 2
    finally:
        docker("unpause", router)


def test_the_production_deploy_keeps_the_report_and_stops_the_mirror(candidate_in_staging, rows):
    line = candidate_in_staging
    send(line.url("production"), rows[:40])
    time.sleep(FLUSH_SECONDS + 1)
    out = line.deploy("production", "2")
    assert "shadow traffic production -> staging: off" in out
    record = json.loads((line.project.root / "reports" / "deploy-production.json").read_text())["last"]
    assert record["model_version"] == "2"
    shadow = record["shadow"]
    assert shadow["candidate_version"] == "2" and shadow["production_version"] == "1"
    assert shadow["comparison"]["compared"] > 0 and shadow["summary"], shadow
    assert not line.mirroring() and not line.staging_on_production_network()
