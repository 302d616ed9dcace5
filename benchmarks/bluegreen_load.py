"""Benchmark: blue/green deploys and a rollback under continuous load, through the real router.

    .venv/bin/python benchmarks/bluegreen_load.py [--switches 5] [--connections 8] [--threads 2]

In a throw-away copy of the demo project (own git history, embedded MLflow store, unique project name
`bench-<hex>`, free loopback ports): train version 1, `mlci build --only api --only router`, change
`model.params.max_depth` (8 -> 5), commit, train version 2, `mlci build --only api`, and
`mlci deploy --env production --version 1`. Then, while `wrk` (keep-alive connections, one reference
record POSTed to /predict, statuses and x-model-version counted per thread by bluegreen_wrk.lua) loads
the production router, run `--switches` consecutive `mlci deploy --env production --version N`
alternating v2/v1, then `mlci rollback --env production`. A probe thread (httpx, one keep-alive
connection) records (send time, receive time, status, version) for every request it makes, to check
that each answer names a version live at that moment (the deploy commands' start/end times and
`drain_seconds` bound when a version may answer). Then the same wrk, same length, same connections,
with no deploy: the baseline p99.

Targets (issue): ≥ 10,000 requests; zero failed (socket errors + non-2xx) in wrk and in the probe;
no answer from a version that was not live; switches add ≤ 50 ms to wrk's p99. Prints a table and
exits 1 when a target is missed. The measurement holds /tmp/mlci-bench.lock (flock) so it never runs
beside another benchmark. Everything it starts (containers, network, volume, images, temp folder) is
removed at the end (`mlci down --env production`). Needs wrk and a Docker engine. Not a test.
"""

from __future__ import annotations

import argparse
import json
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import httpx
from bluegreen_project import BENCH_LOCK, Project, Wrk, bench_lock, failed, free_ports, load_average, percentile, say

MAX_PROBES = 2_000_000


class Probe(threading.Thread):
    """One keep-alive connection POSTing the body in a loop: (sent, received, status, version)."""

    def __init__(self, url: str, body: bytes, max_seconds: float):
        super().__init__(daemon=True)
        self.url, self.body, self.max_seconds = url, body, max_seconds
        self.results: list[tuple[float, float, int, str | None]] = []
        self.failures: list[str] = []
        self.halt = threading.Event()

    def run(self) -> None:
        started = time.monotonic()
        headers = {"content-type": "application/json"}
        with httpx.Client(timeout=10, limits=httpx.Limits(max_connections=1, max_keepalive_connections=1)) as client:
            while (
                not self.halt.is_set()
                and time.monotonic() - started < self.max_seconds
                and len(self.results) + len(self.failures) < MAX_PROBES
            ):
                sent = time.monotonic()
                try:
                    response = client.post(f"{self.url}/predict", content=self.body, headers=headers)
                except httpx.HTTPError as error:
                    self.failures.append(f"{type(error).__name__}: {error}")
                    continue
                self.results.append(
                    (sent, time.monotonic(), response.status_code, response.headers.get("x-model-version"))
                )
                if response.status_code != 200:
                    self.failures.append(f"HTTP {response.status_code}: {response.text[:200]}")
                time.sleep(0.002)  # leave the CPUs to wrk and the deploys: ~300 probes/s at most

    def stop(self) -> None:
        self.halt.set()
        self.join(timeout=30)


def stale(results, commands, drain: float) -> list[tuple[float, float, int, str | None]]:
    """Answers whose version was not live at any moment of their request. A switch happens inside its
    command, so version i may answer from the start of command i until the end of command i+1, plus
    the drain of upstream connections pooled to it (keepalive_time = drain_seconds)."""
    spans = []
    for i, command in enumerate(commands):
        begin = command["start"] if i else float("-inf")
        finish = commands[i + 1]["end"] + drain if i + 1 < len(commands) else float("inf")
        spans.append((begin, finish, command["version"]))
    return [r for r in results if not any(v == r[3] and b <= r[1] and r[0] <= f for b, f, v in spans)]


def switch_windows(results, commands, drain: float) -> list[tuple[float, float]]:
    """Around each observed switch (the first probe answer from the command's version after it
    started): from 0.5 s before to drain + 0.5 s after."""
    windows = []
    for command in commands[1:]:
        first = next((r for r in results if r[0] >= command["start"] and r[3] == command["version"]), None)
        if first is not None:
            windows.append((first[1] - 0.5, first[1] + drain + 0.5))
    return windows


def probe_latencies(results, windows=None, inside: bool = True) -> list[float]:
    if windows is None:
        return [(e - s) * 1000 for s, e, *_ in results]
    return [(e - s) * 1000 for s, e, *_ in results if any(a <= s <= b for a, b in windows) == inside]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--switches", type=int, default=5, help="consecutive deploys alternating v2/v1 (default 5)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--drain", type=float, default=2.0, help="production drain_seconds (default 2, mlci's)")
    parser.add_argument("--verify", type=float, default=5.0, help="production checks.verify_seconds (default 5)")
    parser.add_argument("--max-seconds", type=float, default=600, help="bound on the loaded phase")
    parser.add_argument("--lock", default=BENCH_LOCK, help="flock file held while measuring ('' for none)")
    parser.add_argument("--keep", action="store_true", help="keep the temp project folder (for debugging)")
    args = parser.parse_args()

    name = f"bench-{secrets.token_hex(4)}"
    folder = Path(tempfile.mkdtemp(prefix=f"{name}-"))
    project = Project(folder / "project", name)
    production, production_preview, staging, staging_preview = free_ports(4)
    project.edit(
        environments={
            "staging": {"port": staging, "preview_port": staging_preview},
            "production": {
                "port": production,
                "preview_port": production_preview,
                "drain_seconds": args.drain,
                "checks": {"verify_seconds": args.verify},
                "requires": [],  # the benchmark measures the switch, not the promotion policy
            },
        }
    )
    project.commit("benchmark environments")
    url = f"http://127.0.0.1:{production}"
    say(f"project {name} in {project.root}; production router on {url}")
    wrk = probe = None
    try:
        say("train v1 (max_depth 8), build api + router images")
        project.mlci("train")
        project.mlci("build", "--only", "api", "--only", "router")
        reference = json.loads((project.root / "build" / "bundle" / "reference.json").read_text())
        body = json.dumps({"records": [reference["records"][0]]}).encode()
        body_file = folder / "body.json"
        body_file.write_bytes(body)
        project.edit(**{"model.params.max_depth": 5})
        project.commit("max_depth 5")
        say("train v2 (max_depth 5), build api image")
        project.mlci("train")
        project.mlci("build", "--only", "api")
        say("deploy v1 to production")
        project.mlci("deploy", "--env", "production", "--version", "1")

        with bench_lock(args.lock):
            say(f"measuring (load average {load_average()})")
            commands = [{"what": "initial", "version": "1", "start": float("-inf"), "end": float("-inf"), "rc": 0}]
            wrk = Wrk(url, body_file, args.threads, args.connections, args.max_seconds)
            probe = Probe(url, body, args.max_seconds)
            probe.start()
            time.sleep(2)  # load settled on v1
            versions = ["2" if i % 2 == 0 else "1" for i in range(args.switches)]
            for version in versions:
                if time.monotonic() - wrk.started > args.max_seconds - 60:
                    say("stopping early: the loaded phase is bounded by --max-seconds")
                    break
                start = time.monotonic()
                done = project.mlci("deploy", "--env", "production", "--version", version, check=False, quiet=True)
                commands.append(
                    {
                        "what": f"deploy --version {version}",
                        "version": version,
                        "start": start,
                        "end": time.monotonic(),
                        "rc": done.returncode,
                    }
                )
                say(f"deploy --version {version}: exit {done.returncode} in {commands[-1]['end'] - start:.1f} s")
                if done.returncode:
                    print(done.stdout[-2000:] + done.stderr[-2000:])
            rolled_to = commands[-2]["version"] if len(commands) > 1 else "?"
            start = time.monotonic()
            done = project.mlci("rollback", "--env", "production", check=False, quiet=True)
            commands.append(
                {
                    "what": "rollback",
                    "version": rolled_to,
                    "start": start,
                    "end": time.monotonic(),
                    "rc": done.returncode,
                }
            )
            say(f"rollback (to v{rolled_to}): exit {done.returncode} in {commands[-1]['end'] - start:.1f} s")
            if done.returncode:
                print(done.stdout[-2000:] + done.stderr[-2000:])
            time.sleep(args.drain + 1)
            wrk.stop()
            probe.stop()
            loaded = wrk.result()
            loaded_probe = probe
            seconds = loaded["duration_us"] / 1e6
            served_after = httpx.get(f"{url}/version", timeout=5).json()

            say(f"baseline: same wrk for {seconds:.0f} s, no deploy (load average {load_average()})")
            wrk = Wrk(url, body_file, args.threads, args.connections, seconds)
            probe = Probe(url, body, seconds + 5)
            probe.start()
            baseline = wrk.result()
            probe.stop()
            baseline_probe = probe
            load_after = load_average()
    finally:
        for thing in (wrk, probe):
            if thing is not None:
                (thing.kill if isinstance(thing, Wrk) else thing.stop)()
        say("cleaning up: mlci down --env production, images, temp folder")
        project.mlci("down", "--env", "production", check=False)
        project.mlci("down", "--env", "staging", check=False, quiet=True)
        for env in ("production", "staging"):  # the history outlives mlci down; a benchmark leaves nothing
            subprocess.run(["docker", "volume", "rm", f"{name}-{env}-state"], capture_output=True)
        project.remove_images()
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)

    # --- figures ------------------------------------------------------------------------------
    bad = stale(loaded_probe.results, commands, args.drain)
    windows = switch_windows(loaded_probe.results, commands, args.drain)
    window_lat = probe_latencies(loaded_probe.results, windows)
    outside_lat = probe_latencies(loaded_probe.results, windows, inside=False)

    def ms(us: float) -> float:
        return us / 1000

    rows = [
        ("requests (wrk)", f"{loaded['requests']:,}", f"{baseline['requests']:,}"),
        ("seconds", f"{loaded['duration_us'] / 1e6:.1f}", f"{baseline['duration_us'] / 1e6:.1f}"),
        (
            "socket errors connect/read/write/timeout",
            "/".join(str(loaded["errors"][k]) for k in ("connect", "read", "write", "timeout")),
            "/".join(str(baseline["errors"][k]) for k in ("connect", "read", "write", "timeout")),
        ),
        ("non-2xx", str(loaded["non2xx"]), str(baseline["non2xx"])),
        ("versions seen (wrk, x-model-version)", json.dumps(loaded["versions"]), json.dumps(baseline["versions"])),
        (
            "p50 / p99 / p99.9 / max (ms)",
            " / ".join(f"{ms(loaded['latency_us'][k]):.1f}" for k in ("p50", "p99", "p999", "max")),
            " / ".join(f"{ms(baseline['latency_us'][k]):.1f}" for k in ("p50", "p99", "p999", "max")),
        ),
        (
            "probe requests / failures",
            f"{len(loaded_probe.results):,} / {len(loaded_probe.failures)}",
            f"{len(baseline_probe.results):,} / {len(baseline_probe.failures)}",
        ),
        (
            "probe p99 (ms), all",
            f"{percentile(probe_latencies(loaded_probe.results), 99):.1f}",
            f"{percentile(probe_latencies(baseline_probe.results), 99):.1f}",
        ),
        (
            f"probe p99 (ms), {len(windows)} switch windows ({len(window_lat)} req)",
            f"{percentile(window_lat, 99):.1f}",
            "-",
        ),
        (f"probe p99 (ms), rest of the deploys ({len(outside_lat)} req)", f"{percentile(outside_lat, 99):.1f}", "-"),
        ("probe answers from a version not live", str(len(bad)), "-"),
    ]
    width = max(len(r[0]) for r in rows)
    print()
    print(f"{'':{width}}  {'with deploys':>28}  {'baseline (no deploy)':>28}")
    for label, a, b in rows:
        print(f"{label:{width}}  {a:>28}  {b:>28}")
    print("\ncommands:")
    for command in commands[1:]:
        print(
            f"  mlci {command['what']:<22} -> v{command['version']}  exit {command['rc']}  "
            f"{command['end'] - command['start']:.1f} s"
        )
    print(
        f"after: production serves v{served_after.get('version')} ({served_after.get('colour')}); "
        f"load average {load_after}"
    )
    p99_added = ms(loaded["latency_us"]["p99"] - baseline["latency_us"]["p99"])
    targets = {
        "requests >= 10000": loaded["requests"] >= 10_000,
        "zero failed (wrk)": failed(loaded) == 0,
        "zero failed (probe)": not loaded_probe.failures,
        "every answer from a live version": not bad,
        "both versions served": {"1", "2"} <= set(loaded["versions"]),
        "every command exit 0": all(c["rc"] == 0 for c in commands),
        f"switches add <= 50 ms to p99 (added {p99_added:+.1f} ms)": p99_added <= 50,
    }
    print("\ntargets:")
    for label, ok in targets.items():
        print(f"  {'met ' if ok else 'MISSED'}  {label}")
    if p99_added > 50:
        print(
            "  note: compare the probe's p99 inside the switch windows with the rest of the deploy run: when"
            "\n  they are close, the added latency is the deploy's own CPU work (mlci, docker run, the new"
            "\n  slot's start-up, the checks) on a shared box, not the switch."
        )
    if loaded_probe.failures:
        print("probe failures:", loaded_probe.failures[:5])
    if bad:
        print("stale answers (sent, received, status, version):", bad[:5])
    print(
        "JSON "
        + json.dumps(
            {
                "loaded": loaded,
                "baseline": baseline,
                "commands": commands[1:],
                "probe": {
                    "requests": len(loaded_probe.results),
                    "failures": loaded_probe.failures[:5],
                    "stale": len(bad),
                    "window_p99_ms": percentile(window_lat, 99),
                    "outside_window_p99_ms": percentile(outside_lat, 99),
                },
                "targets": targets,
            },
            default=str,
        )
    )
    return 0 if all(targets.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
