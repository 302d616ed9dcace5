"""Benchmark: the health endpoint under a flood of invalid records, this API vs `mlflow models serve`.

    .venv/bin/python benchmarks/invalid_flood.py [--seconds 8] [--clients 4] [--workers 2] [--json out.json]

Starts both servers on 127.0.0.1 on the same fitted model with the same worker count, with
api_vs_mlflow.py's helpers. Then, for each server in turn: a discarded warm-up; a client asks the health
endpoint every 50 ms for --seconds with no other traffic (idle); then again for --seconds while
`wrk -t1 -c<clients>` POSTs an invalid body as fast as it is answered (the flood): 1,000 records
without any of the model's columns, `{"records": [{}, ...]}` to mlci's /predict and
`{"dataframe_records": [{}, ...]}` to MLflow's /invocations. The health client keeps one connection
open (a keep-alive client, as the abuse test it replaces). Reports per server the health p50/p99 idle
and under the flood, the error body (status, bytes), the flood requests answered, and the ratios
mlci/MLflow. Exits 1 when a target is missed (see TARGETS), 2 on a setup error. Not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx
from api_vs_mlflow import fit_demo, run_wrk, start_servers, stop, write_wrk_script

RECORDS = 1000  # records per invalid body, as in tests/unit/api/test_protocol.py
ERROR_BODY_BOUND = 16 * 1024  # the abuse test's bound on a 422 body (it was 2.4 MB before the fix)
TARGETS = (
    "every mlci health probe answered 200, idle and under the flood",
    f"mlci's error body < {ERROR_BODY_BOUND} bytes",
    "mlci's health p50 under the flood <= MLflow's",
)


@dataclass
class Peer:
    """How one server is flooded and probed."""

    name: str
    base: str  # http://127.0.0.1:PORT
    health: str  # the health endpoint's path
    invalid_path: str  # where the invalid body is POSTed
    invalid_body: str  # JSON text


@dataclass
class Probe:
    """Health answers seen by the probing client over one phase."""

    latencies_ms: list[float]
    statuses: list[int]
    failures: int  # connection errors and timeouts (no answer at all)

    @property
    def p50_ms(self) -> float:
        return statistics.median(self.latencies_ms)

    @property
    def p99_ms(self) -> float:
        return statistics.quantiles(self.latencies_ms, n=100, method="inclusive")[98]

    @property
    def all_200(self) -> bool:
        return self.failures == 0 and bool(self.statuses) and set(self.statuses) == {200}


@dataclass
class Result:
    """One server's figures."""

    name: str
    error_status: int
    error_bytes: int
    idle: Probe
    flood: Probe
    wrk: dict  # api_vs_mlflow.run_wrk's figures for the flood


def probe(url: str, seconds: float, interval: float) -> Probe:
    """GET `url` every `interval` seconds (on a fixed schedule; a late answer delays only the next
    probe) for `seconds`, on one keep-alive connection."""
    latencies: list[float] = []
    statuses: list[int] = []
    failures = 0
    with httpx.Client(timeout=10) as client:
        started = time.monotonic()
        tick = started
        while tick < started + seconds:
            time.sleep(max(0.0, tick - time.monotonic()))
            sent = time.perf_counter()
            try:
                statuses.append(client.get(url).status_code)
                latencies.append((time.perf_counter() - sent) * 1000)
            except httpx.HTTPError:
                failures += 1
            tick = max(tick + interval, time.monotonic())
    return Probe(latencies, statuses, failures)


def measure(peer: Peer, work: Path, clients: int, seconds: int, interval: float) -> Result:
    script = write_wrk_script(work, f"flood-{peer.name}", [peer.invalid_body], peer.invalid_path)
    with httpx.Client(timeout=30) as client:
        answer = client.post(
            peer.base + peer.invalid_path, content=peer.invalid_body, headers={"content-type": "application/json"}
        )
    run_wrk(peer.base, script, clients, 2)  # warm-up, discarded
    probe(peer.base + peer.health, 1, interval)  # warm-up, discarded
    idle = probe(peer.base + peer.health, seconds, interval)
    with ThreadPoolExecutor(max_workers=1) as pool:
        # wrk runs in its own process: this thread only waits for it, so the probe below has the
        # benchmark's interpreter to itself. The probe starts 0.3 s after wrk and ends 0.5 s before.
        flooding = pool.submit(run_wrk, peer.base, script, clients, seconds)
        time.sleep(0.3)
        flood = probe(peer.base + peer.health, seconds - 0.8, interval)
        wrk = flooding.result()
    return Result(peer.name, answer.status_code, len(answer.content), idle, flood, wrk)


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}×" if b else "n/a"


def table(api: Result, peer: Result, clients: int, seconds: int) -> list[str]:
    rows = [("figure", "mlci", "MLflow", "mlci/MLflow"), ("---", "---:", "---:", "---:")]
    for phase in ("idle", "flood"):
        a, m = getattr(api, phase), getattr(peer, phase)
        label = "idle" if phase == "idle" else "under the flood"
        rows.append((f"health p50, {label}", f"{a.p50_ms:.2f} ms", f"{m.p50_ms:.2f} ms", ratio(a.p50_ms, m.p50_ms)))
        rows.append((f"health p99, {label}", f"{a.p99_ms:.2f} ms", f"{m.p99_ms:.2f} ms", ratio(a.p99_ms, m.p99_ms)))
        rows.append(
            (
                f"health answered 200, {label}",
                f"{a.statuses.count(200)} of {len(a.statuses) + a.failures}",
                f"{m.statuses.count(200)} of {len(m.statuses) + m.failures}",
                "",
            )
        )
    rows.append(
        (
            "error body (status, bytes)",
            f"{api.error_status}, {api.error_bytes:,} B",
            f"{peer.error_status}, {peer.error_bytes:,} B",
            ratio(api.error_bytes, peer.error_bytes),
        )
    )
    aw, mw = api.wrk, peer.wrk
    rows.append(
        (
            f"flood requests answered ({clients} clients, {seconds} s)",
            f"{aw['requests']:,} ({aw['rps']:.0f}/s)",
            f"{mw['requests']:,} ({mw['rps']:.1f}/s)",
            ratio(aw["requests"], mw["requests"]),
        )
    )
    rows.append(
        (
            "flood request p50 / p99",
            f"{aw['p50_ms']:.2f} / {aw['p99_ms']:.2f} ms",
            f"{mw['p50_ms']:.1f} / {mw['p99_ms']:.1f} ms",
            ratio(aw["p50_ms"], mw["p50_ms"]),
        )
    )
    rows.append(
        (
            "flood answers that were 2xx / socket errors",
            f"{aw['requests'] - aw['non_2xx']} / {aw['socket_errors']}",
            f"{mw['requests'] - mw['non_2xx']} / {mw['socket_errors']}",
            "",
        )
    )
    return ["| " + " | ".join(row) + " |" for row in rows]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=8, help="length of each phase (idle, flood)")
    parser.add_argument("--clients", type=int, default=4, help="flooding connections")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--interval", type=float, default=0.05, help="seconds between health probes")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        print("wrk is not installed (Debian: apt-get install -y wrk)", file=sys.stderr)
        return 2
    if not 2 <= args.seconds <= 120 or not 1 <= args.clients <= 64 or not 0.01 <= args.interval <= 1:
        print("--seconds must be 2..120, --clients 1..64, --interval 0.01..1", file=sys.stderr)
        return 2

    demo = fit_demo()
    work = Path(tempfile.mkdtemp(prefix="mlci-bench-flood-"))
    processes: list[subprocess.Popen] = []
    load_before = os.getloadavg()
    try:
        servers = start_servers(demo, work, args.workers, processes)
        peers = (
            Peer("mlci", servers.api, "/health", "/predict", json.dumps({"records": [{}] * RECORDS})),
            Peer(
                "mlflow", servers.mlflow, "/health", "/invocations", json.dumps({"dataframe_records": [{}] * RECORDS})
            ),
        )
        api = measure(peers[0], work, args.clients, args.seconds, args.interval)
        peer = measure(peers[1], work, args.clients, args.seconds, args.interval)
    finally:
        for process in processes:
            stop(process)
        if os.environ.get("MLCI_BENCH_KEEP"):
            print("kept", work)
        else:
            shutil.rmtree(work, ignore_errors=True)
    load_after = os.getloadavg()

    print(
        f"RandomForest(100 trees), {args.workers} workers each; health probed every {args.interval * 1000:.0f} ms, "
        f"{args.seconds} s idle then {args.seconds} s under `wrk -t1 -c{args.clients}` posting {RECORDS} "
        f"empty records; load average {load_before[0]:.1f} before, {load_after[0]:.1f} after"
    )
    print("\n".join(table(api, peer, args.clients, args.seconds)))
    met = dict(
        zip(
            TARGETS,
            (
                api.idle.all_200 and api.flood.all_200,
                api.error_bytes < ERROR_BODY_BOUND,
                api.flood.p50_ms <= peer.flood.p50_ms,
            ),
        )
    )
    print("targets:", json.dumps(met))
    if args.json:
        figures = {
            r.name: {
                **asdict(r),
                "p50_p99_ms": {p: [getattr(r, p).p50_ms, getattr(r, p).p99_ms] for p in ("idle", "flood")},
            }
            for r in (api, peer)
        }
        args.json.write_text(json.dumps({"results": figures, "targets": met}, indent=2))
    return 0 if all(met.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
