"""Benchmark: what shadow traffic costs production — p99 and errors with no shadow, a live shadow,
a 10x slow one, a dead one and a hanging one; and the same slow/hanging shadows mirrored the naive
way (the mirror location proxying straight to the shadow), which is what the hand-off avoids.

    .venv/bin/python benchmarks/shadow_overhead.py [--seconds 10] [--share 0.1] [--rounds 5]
                                                   [--bundle build/bundle]

Host processes only (no Docker), like reload_vs_symlink.py: production is the real API (uvicorn, one
worker, unix socket) behind the host's Nginx running mlci's router config — the frame of
docker/router/nginx.conf and ml/templates/router.conf.j2 rendered by ml/deploy/router.py with
`shadow: {env: staging, share, timeout_ms: 1000}` — with paths moved to a temp dir, the shadow's
Docker name replaced by 127.0.0.1:<port> and the switch file present. The shadow on that port is:

  live     a second real API (uvicorn, TCP)
  slow10x  a server answering every request after 10 x production's p50 with no shadow
  dead     nothing listening (connection refused)
  hang     a server that accepts and never answers
  naive-*  the slow10x / hang shadow, mirrored without the hand-off: the mirror location proxies to
           the shadow itself with the shadow's timeout (1000 ms)

Each scenario: wrk (bluegreen_wrk.lua, -t2 -c8, keep-alive, one reference record POSTed to
/predict) for --seconds. Each of --rounds runs every scenario once, in a shuffled order, so "none"
(no shadow) is measured as often as the others and its spread over the rounds is the box's noise.
Prints every round, then per scenario the median p50/p99, the p99 range and median p99 / median
no-shadow p99 *of the same round* (paired, so a busy minute on the box moves both). "none-again"
runs the no-shadow configuration a second time each round: its ratio is the noise (an A/A test). A
shadow that is slow, dead or hanging is "within noise" when none of its requests failed and its ratio
is at most 1 + twice none-again's median deviation from 1 (at least 2 %); exits 1 otherwise. A live shadow's
ratio is its predictions' CPU on the same cores: reported, not held to noise.
Holds /tmp/mlci-bench.lock while measuring. Needs wrk and nginx (apt-get install wrk nginx-light).
Not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import yaml
from bluegreen_project import BENCH_LOCK, PYTHON, ROOT, Project, Wrk, bench_lock, failed, free_ports, load_average, say
from reload_vs_symlink import NGINX, Backend, Nginx, stop_group

from mlci.core import config as config_module
from mlci.deploy import router
from tests.helpers.waiting import wait_until_answers

TIMEOUT_MS = 1000
SCENARIOS = ("none", "none-again", "live", "slow10x", "dead", "hang", "naive-slow10x", "naive-hang")
# The promise: a shadow's health (slow, dead, hanging) never reaches production. A live shadow's own
# predictions on the same cores are work, reported but not held to it; naive-* shows what is avoided.
HELD_TO_NOISE = ("slow10x", "dead", "hang")


def swap(text: str, old: str, new: str) -> str:
    """text with `old` replaced; a template that no longer has `old` stops the benchmark instead of
    letting it measure another setup than it says (e.g. a shadow nobody sends to)."""
    if old not in text:
        raise SystemExit(f"the rendered router config has no {old!r}: update benchmarks/shadow_overhead.py")
    return text.replace(old, new)


def render(ports: list[int], sockets: Path, share: float | None, naive: bool) -> str:
    """ml/deploy/router.py's production config (shadow off when share is None), moved to the host."""
    raw = yaml.safe_load((ROOT / "mlci.yaml").read_text())
    if share is not None:
        raw["environments"]["production"]["shadow"] = {"env": "staging", "share": share, "timeout_ms": TIMEOUT_MS}
    config = config_module.parse(raw)
    port, preview, hand_off_port, shadow_port = ports
    text = router.render(config, "production", config.environments["production"])
    text = swap(text, "unix:/run/mlci/", f"unix:{sockets}/")
    text = swap(text, "listen 8080;", f"listen 127.0.0.1:{port};")
    text = swap(text, "listen 8081;", f"listen 127.0.0.1:{preview};")
    if share is None:
        return text
    text = swap(text, "/run/mlci/shadow.on", f"{sockets}/shadow.on")
    text = swap(text, "resolver 127.0.0.11 valid=5s ipv6=off;", "")
    text = swap(
        text,
        f"proxy_pass http://$mlci_shadow_host:{router.SHADOW_INTAKE_PORT}$request_uri;",
        f"proxy_pass http://127.0.0.1:{shadow_port}$request_uri;",
    )
    if naive:
        text = swap(
            text,
            "proxy_pass http://127.0.0.1:8090$request_uri;",
            f"proxy_pass http://127.0.0.1:{shadow_port}$request_uri;",
        )
        text = swap(text, f"proxy_read_timeout {router.SHADOW_HANDOFF_MS}ms;", f"proxy_read_timeout {TIMEOUT_MS}ms;")
    return swap(text, "127.0.0.1:8090", f"127.0.0.1:{hand_off_port}")


class FakeShadow:
    """A shadow that answers after `delay` seconds (None: never), on its own event loop thread."""

    def __init__(self, port: int, delay: float | None):
        self.port, self.delay = port, delay
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        self.ready.wait(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        server = self.loop.run_until_complete(asyncio.start_server(self._serve, "127.0.0.1", self.port))
        self.server = server
        self.ready.set()
        self.loop.run_forever()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                await reader.readexactly(length)
                await asyncio.sleep(3600 if self.delay is None else self.delay)
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    def stop(self) -> None:
        async def close() -> None:
            self.server.close()
            tasks = [t for t in asyncio.all_tasks(self.loop) if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)  # each connection closes its writer
            self.loop.stop()

        asyncio.run_coroutine_threadsafe(close(), self.loop)
        self.thread.join(timeout=10)


class RealShadow:
    """A second real API, on TCP: what staging's router would put in front of the candidate."""

    def __init__(self, bundle: Path, port: int, log: Path):
        self.log = open(log, "w")  # noqa: SIM115 - kept open for the life of the server process
        self.process = subprocess.Popen(
            [str(PYTHON), "-m", "mlci.api.server", str(bundle), str(port), "1"],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            wait_until_answers(f"http://127.0.0.1:{port}/ready", 120, request_timeout=1)
        except TimeoutError as error:
            raise SystemExit(f"the live shadow API was not ready: {error}") from None

    def stop(self) -> None:
        stop_group(self.process)
        self.log.close()


def run(scenario: str, work: Path, sockets: Path, bundle: Path, body: Path, args, baseline_p50_ms: float) -> dict:
    ports = free_ports(4)  # router, preview, hand-off, shadow
    port, shadow_port = ports[0], ports[3]
    kind = scenario.removeprefix("naive-")
    prefix = work / f"nginx-{scenario}"
    nginx = Nginx(prefix)
    (prefix / "router.conf").write_text(
        render(ports, sockets, None if scenario.startswith("none") else args.share, scenario.startswith("naive-"))
    )
    shadow: FakeShadow | RealShadow | None = None
    if kind == "live":
        shadow = RealShadow(bundle, shadow_port, work / "shadow.log")
    elif kind == "slow10x":
        shadow = FakeShadow(shadow_port, 10 * baseline_p50_ms / 1000)
    elif kind == "hang":
        shadow = FakeShadow(shadow_port, None)
    url = f"http://127.0.0.1:{port}"
    nginx.start(url)
    try:
        wrk = Wrk(url, body, args.threads, args.connections, args.seconds)
        result = wrk.result()
    finally:
        nginx.stop()
        if shadow is not None:
            shadow.stop()
    result["scenario"] = scenario
    return result


def measure(args, work: Path, sockets: Path, bundle: Path, body: Path, scenarios: list[str]) -> list[dict]:
    """Every round runs each scenario once, in a shuffled order: a load change on the box then lands on
    random scenarios instead of always on those that run last, and "none" gives the no-shadow spread."""
    order = random.Random(args.seed)
    results: list[dict] = []
    baseline_p50 = 0.0
    for round_ in range(args.rounds):
        todo = list(scenarios)
        order.shuffle(todo)
        if round_ == 0:  # slow10x answers after 10x the no-shadow p50: measure that first
            todo.remove("none")
            todo.insert(0, "none")
        for scenario in todo:
            say(f"round {round_ + 1}, {scenario}: {args.seconds:g} s (load average {load_average()})")
            result = run(scenario, work, sockets, bundle, body, args, baseline_p50)
            result["round"] = round_ + 1
            if scenario == "none" and round_ == 0:
                baseline_p50 = result["latency_us"]["p50"] / 1000
            results.append(result)
            latency = result["latency_us"]
            say(
                f"  {result['requests']:,} requests, {failed(result)} failed, "
                f"p50 {latency['p50'] / 1000:.2f} ms, p99 {latency['p99'] / 1000:.2f} ms"
            )
    return results


@dataclass(frozen=True)
class Verdict:
    """One scenario over all rounds, each round's p99 divided by that round's no-shadow p99."""

    scenario: str
    requests: int
    failed: int
    p50_ms: float  # median over rounds
    p99_ms: float  # median over rounds
    ratio: float  # median over rounds of p99 / the same round's no-shadow p99
    ratios: tuple[float, ...]  # per round


def verdicts(results: list[dict], scenarios: list[str]) -> list[Verdict]:
    none = {r["round"]: r["latency_us"]["p99"] for r in results if r["scenario"] == "none"}
    out = []
    for scenario in scenarios:
        rows = [r for r in results if r["scenario"] == scenario]
        ratios = [r["latency_us"]["p99"] / none[r["round"]] for r in rows]
        out.append(
            Verdict(
                scenario=scenario,
                requests=sum(r["requests"] for r in rows),
                failed=sum(failed(r) for r in rows),
                p50_ms=statistics.median(r["latency_us"]["p50"] / 1000 for r in rows),
                p99_ms=statistics.median(r["latency_us"]["p99"] / 1000 for r in rows),
                ratio=statistics.median(ratios),
                ratios=tuple(ratios),
            )
        )
    return out


def noise_ceiling(by_name: dict[str, Verdict]) -> float:
    """How far one round's p99 ratio moves with nothing changed: "none-again" is the no-shadow configuration
    run a second time in each round (an A/A test). Twice its typical (median) deviation from 1, at least 2 %."""
    again = by_name["none-again"]
    return 1 + 2 * max(statistics.median(abs(r - 1) for r in again.ratios), 0.01)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--share", type=float, default=0.1, help="share of /predict mirrored (worst case: 1)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=15, help="seed of the scenarios' order in each round")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--only", action="append", choices=SCENARIOS, help="run only these (and none, none-again)")
    parser.add_argument("--bundle", type=Path, help="an existing model bundle (default: train + mlci package)")
    parser.add_argument("--lock", default=BENCH_LOCK, help="flock file held while measuring ('' for none)")
    args = parser.parse_args()
    if not shutil.which("wrk") or not Path(NGINX).exists():
        raise SystemExit("needs wrk and nginx on PATH (apt-get install wrk nginx-light)")
    if args.rounds < 2:
        raise SystemExit("--rounds must be at least 2: the no-shadow spread is the noise")
    scenarios = ["none", "none-again", *[s for s in SCENARIOS[2:] if not args.only or s in args.only]]

    work = Path(tempfile.mkdtemp(prefix="shadow-overhead-"))
    os.chmod(work, 0o755)
    sockets = work / "sockets"
    sockets.mkdir()
    backend = None
    try:
        bundle = args.bundle
        if bundle is None:
            project = Project(work / "project", f"bench-{secrets.token_hex(4)}", with_build_sources=False)
            say("train the demo model and export it with mlci package")
            project.mlci("train")
            bundle = work / "bundle"
            project.mlci("package", "--out", str(bundle))
        bundle = bundle.resolve()
        reference = json.loads((bundle / "reference.json").read_text())
        body = work / "body.json"
        body.write_text(json.dumps({"records": [reference["records"][0]]}))
        backend = Backend(bundle, sockets / "blue.sock", "blue", work / "blue.log")
        backend.wait()
        subprocess.run(["ln", "-sfn", "blue.sock", str(sockets / "live.sock")], check=True)
        (sockets / "shadow.on").touch()
        with bench_lock(args.lock):
            results = measure(args, work, sockets, bundle, body, scenarios)
    finally:
        if backend is not None:
            backend.stop()
        shutil.rmtree(work, ignore_errors=True)

    print(f"\n{'round':>5} {'scenario':<14} {'requests':>10} {'failed':>7} {'p50 ms':>8} {'p99 ms':>8}")
    for r in sorted(results, key=lambda r: (r["round"], scenarios.index(r["scenario"]))):
        latency = r["latency_us"]
        print(
            f"{r['round']:>5} {r['scenario']:<14} {r['requests']:>10,} {failed(r):>7} "
            f"{latency['p50'] / 1000:>8.2f} {latency['p99'] / 1000:>8.2f}"
        )
    found = verdicts(results, scenarios)
    ceiling = noise_ceiling({v.scenario: v for v in found})
    print(
        f"\n{'scenario':<14} {'requests':>10} {'failed':>7} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'p99 / none':>10} {'range':>11}  verdict"
    )
    ok = True
    for v in found:
        held = v.scenario in HELD_TO_NOISE
        within = v.failed == 0 and v.ratio <= ceiling
        verdict = "-" if v.scenario.startswith("none") else ("within noise" if within else "OUTSIDE noise")
        print(
            f"{v.scenario:<14} {v.requests:>10,} {v.failed:>7} {v.p50_ms:>8.2f} {v.p99_ms:>8.2f} "
            f"{v.ratio:>10.2f} {f'{min(v.ratios):.2f}-{max(v.ratios):.2f}':>11}  {verdict}"
        )
        ok = ok and (within or not held)
    wrk = f"wrk -t{args.threads} -c{args.connections} -d{args.seconds:g}s"
    print(f"\nshare {args.share:g}, {wrk}, {args.rounds} rounds (seed {args.seed}), shadow timeout {TIMEOUT_MS} ms")
    print(
        "p50/p99: medians over rounds; p99 / none: median over rounds of p99 / that round's no-shadow p99; "
        f"within noise: no failed request and p99 / none <= {ceiling:.2f} "
        "(1 + 2 x none-again's median deviation, min 2 %)"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
