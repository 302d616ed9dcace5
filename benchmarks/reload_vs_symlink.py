"""Benchmark: how to switch an Nginx upstream under keep-alive load — `nginx -s reload` vs a symlink.

    .venv/bin/python benchmarks/reload_vs_symlink.py [--seconds 20] [--switches 10] [--rounds 1]
                                                     [--bundle build/bundle]

Host processes only (no Docker): two backends — the real prediction API (`mlci.api.server.serve`, uvicorn,
one worker each) on one model bundle, listening on unix sockets blue.sock and green.sock — behind the
host's Nginx (Debian's binary, run in the foreground with `-p <temp dir>` and its own config on a
free loopback port). The config is mlci's: the frame of docker/router/nginx.conf and the upstream and
server blocks rendered from ml/templates/router.conf.j2 (keepalive 32, keepalive_time =
keepalive_timeout = drain_seconds, the doubled server line, proxy_next_upstream ... non_idempotent,
tries 2), with paths moved into the temp dir and the access log off.

  A  reload:  the live upstream names a fixed socket (blue.sock); a switch rewrites router.conf to
              the other socket and runs `nginx -s reload` (graceful: old workers finish and exit).
  B  symlink: the live upstream names live.sock, a symlink to blue.sock or green.sock; a switch is
              `ln -sfn green.sock .live.sock.tmp && mv -fT .live.sock.tmp live.sock` (what
              ml/deploy/router.py runs in the router container): no reload.

Each method: wrk (bluegreen_wrk.lua, `-t2 -c8`, keep-alive, one reference record POSTed to /predict)
for --seconds while --switches switches alternate blue/green at even intervals; after each switch a
GET /version through Nginx must name the new colour within drain + 1 s. Reports requests, socket
errors and non-2xx per method; exits 1 when method B lost a request. Without --bundle, trains the
demo model in a temp project and exports it with `mlci package`. The measurement holds
/tmp/mlci-bench.lock (flock). Every process and file it makes is removed at the end. Needs wrk and
nginx (apt-get install wrk nginx-light). Not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.append(str(Path(__file__).resolve().parents[1]))  # the repository root, last: for tests.waiting only

import httpx
import jinja2
from bluegreen_project import BENCH_LOCK, PYTHON, ROOT, Project, Wrk, bench_lock, failed, free_ports, load_average, say

from tests.helpers.waiting import wait_until_answers

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
SERVE = (
    "import sys; from pathlib import Path; from mlci.api.server import serve; serve(Path(sys.argv[1]), uds=sys.argv[2])"
)


def render_upstreams(drain: float, sockets: Path, port: int, preview: int, live: str) -> str:
    """ml/templates/router.conf.j2 with the values `mlci deploy` gives it (ml/deploy/router.py render()),
    the socket folder and listeners moved to the temp dir and loopback, `live` as the live socket."""
    jinja = jinja2.Environment(
        loader=jinja2.FileSystemLoader(ROOT / "ml" / "templates"),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    text = jinja.get_template("router.conf.j2").render(
        project="bench", env="bench", drain_seconds=f"{drain:g}", max_body="2m", read_timeout=30
    )
    text = text.replace("unix:/run/mlci/live.sock", f"unix:{sockets}/{live}")
    text = text.replace("unix:/run/mlci/", f"unix:{sockets}/")
    text = text.replace("listen 8080;", f"listen 127.0.0.1:{port};").replace(
        "listen 8081;", f"listen 127.0.0.1:{preview};"
    )
    directives = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    assert "/run/mlci" not in directives and "8080" not in directives and "8081" not in directives, directives
    return text


def frame(prefix: Path) -> str:
    """docker/router/nginx.conf with its /tmp paths in the prefix and the access log off."""
    text = (ROOT / "docker" / "router" / "nginx.conf").read_text()
    text = text.replace("/tmp/", f"{prefix}/tmp/").replace(
        "include /etc/mlci/router.conf;", f"include {prefix}/router.conf;"
    )
    text = re.sub(r"access_log [^;]+;", "access_log off;", text)
    # notice: Nginx then logs every signal it receives and from which PID (a stray kill shows up).
    text = text.replace("error_log stderr warn;", f"error_log {prefix}/error.log notice;")
    if os.geteuid() == 0:  # workers must reach the root-owned sockets, as uid 10001 does in the image
        text = "user root root;\n" + text
    return text


class Backend:
    def __init__(self, bundle: Path, sock: Path, colour: str, log: Path):
        env = {**os.environ, "MLCI_COLOUR": colour, "MLCI_ENV": "bench", "PYTHONPATH": str(ROOT)}
        self.sock, self.colour = sock, colour
        self.log = open(log, "w")  # noqa: SIM115 - kept open for the life of the server process
        self.process = subprocess.Popen(
            [str(PYTHON), "-c", SERVE, str(bundle), str(sock)],
            cwd=ROOT,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"backend {self.colour} exited with {self.process.returncode}")
            if self.sock.exists():
                try:
                    with httpx.Client(transport=httpx.HTTPTransport(uds=str(self.sock)), timeout=2) as client:
                        if client.get("http://backend/ready").status_code == 200:
                            return
                except httpx.HTTPError:
                    pass
            time.sleep(0.3)
        raise SystemExit(f"backend {self.colour} not ready within {timeout} s")

    def stop(self) -> None:
        stop_group(self.process)
        self.log.close()


def stop_group(process: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
    if process.poll() is None:
        try:
            os.killpg(process.pid, sig)
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        except ProcessLookupError:
            pass


class Nginx:
    def __init__(self, prefix: Path):
        self.prefix = prefix
        (prefix / "tmp").mkdir(parents=True, exist_ok=True)
        (prefix / "logs").mkdir(exist_ok=True)  # the compiled-in default error log, before the config's
        self.conf = prefix / "nginx.conf"
        self.conf.write_text(frame(prefix))
        self.base = [NGINX, "-p", str(prefix), "-c", str(self.conf), "-e", str(prefix / "error.log")]
        self.process: subprocess.Popen | None = None

    def start(self, url: str) -> None:
        test = subprocess.run([*self.base, "-t", "-q"], capture_output=True, text=True)
        if test.returncode:
            raise SystemExit(f"nginx -t refused the config: {test.stderr}")
        self.process = subprocess.Popen(
            [*self.base, "-g", "daemon off;"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            wait_until_answers(f"{url}/router/health", 10, poll=0.1, request_timeout=1)
        except TimeoutError as error:
            raise SystemExit(f"nginx did not answer: {error}") from None

    def reload(self) -> None:
        done = subprocess.run([*self.base, "-s", "reload"], capture_output=True, text=True)
        if done.returncode:
            raise SystemExit(f"nginx -s reload failed: {done.stderr}")

    def stop(self) -> None:
        if self.process is not None:
            stop_group(self.process, signal.SIGQUIT)  # graceful; SIGKILL after 20 s
            self.process = None

    def errors(self) -> list[str]:
        log = self.prefix / "error.log"
        levels = ("[error]", "[crit]", "[alert]", "[emerg]")
        return (
            [line for line in log.read_text().splitlines() if any(level in line for level in levels)]
            if log.exists()
            else []
        )

    def signals(self) -> list[str]:
        log = self.prefix / "error.log"
        return [line for line in log.read_text().splitlines() if "received from" in line] if log.exists() else []


def colour_of(url: str) -> str | None:
    try:
        with httpx.Client(timeout=2) as client:  # a new client connection each time
            return client.get(f"{url}/version").json().get("colour")
    except (httpx.HTTPError, ValueError):
        return None


def run_method(method: str, work: Path, sockets: Path, body_file: Path, args, round_: int) -> dict:
    prefix = work / f"nginx-{method}-{round_}"  # a fresh prefix (and error log) per run
    port, preview = free_ports(2)
    url = f"http://127.0.0.1:{port}"
    live = sockets / "live.sock"
    nginx = Nginx(prefix)
    conf = prefix / "router.conf"

    def write(target: str) -> None:  # method A: the config names the colour's socket
        conf.write_text(render_upstreams(args.drain, sockets, port, preview, target))

    if method == "A":
        write("blue.sock")
    else:
        subprocess.run(["ln", "-sfn", "blue.sock", str(live)], check=True)
        write("live.sock")
    nginx.start(url)
    wrk = None
    late = []
    try:
        assert colour_of(url) == "blue"
        wrk = Wrk(url, body_file, args.threads, args.connections, args.seconds)
        interval = (args.seconds - 3) / args.switches
        colour = "blue"
        for i in range(args.switches):
            time.sleep(max(0.0, wrk.started + 1.5 + i * interval - time.monotonic()))
            colour = "green" if colour == "blue" else "blue"
            if method == "A":
                write(f"{colour}.sock")
                nginx.reload()
            else:
                tmp = sockets / ".live.sock.tmp"
                subprocess.run(
                    ["sh", "-c", 'ln -sfn "$1" "$2" && mv -fT "$2" "$3"', "sh", f"{colour}.sock", str(tmp), str(live)],
                    check=True,
                )
            switched = time.monotonic()
            while colour_of(url) != colour:
                if time.monotonic() - switched > args.drain + 1:
                    late.append(i)
                    break
                time.sleep(0.05)
        result = wrk.result()
        result["nginx_alive"] = nginx.process is not None and nginx.process.poll() is None
        # Before our own SIGQUIT: SIGCHLD (workers exiting), SIGHUP (our reloads) and what the master
        # sends its workers are expected; any other signal came from outside the benchmark.
        master = nginx.process.pid if nginx.process is not None else -1
        result["foreign_signals"] = [
            line
            for line in nginx.signals()
            if "(SIGCHLD)" not in line and "(SIGHUP)" not in line and f"received from {master}," not in line
        ]
    finally:
        if wrk is not None:
            wrk.kill()
        nginx.stop()
        live.unlink(missing_ok=True)
    result["nginx_errors"] = nginx.errors()
    result["late_switches"] = late
    result["command"] = " ".join(wrk.command)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--switches", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=1, help="A then B, this many times")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--drain", type=float, default=2.0, help="drain_seconds rendered into the config")
    parser.add_argument("--bundle", type=Path, help="an existing model bundle (default: train + mlci package)")
    parser.add_argument("--lock", default=BENCH_LOCK, help="flock file held while measuring ('' for none)")
    args = parser.parse_args()
    if not shutil.which("wrk") or not Path(NGINX).exists():
        raise SystemExit("needs wrk and nginx on PATH (apt-get install wrk nginx-light)")

    work = Path(tempfile.mkdtemp(prefix="reload-vs-symlink-"))
    os.chmod(work, 0o755)
    sockets = work / "sockets"
    sockets.mkdir()
    backends: list[Backend] = []
    results: list[tuple[str, dict]] = []
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
        body_file = work / "body.json"
        body_file.write_text(json.dumps({"records": [reference["records"][0]]}))
        for colour in ("blue", "green"):
            backends.append(Backend(bundle, sockets / f"{colour}.sock", colour, work / f"{colour}.log"))
        for backend in backends:
            backend.wait()
        say(f"backends up on {sockets}/blue.sock and green.sock (bundle {bundle})")
        with bench_lock(args.lock):
            for round_ in range(args.rounds):
                for method in ("A", "B"):
                    say(
                        f"round {round_ + 1}, method {method}: {args.switches} switches in {args.seconds:g} s "
                        f"(load average {load_average()})"
                    )
                    result = run_method(method, work, sockets, body_file, args, round_ + 1)
                    results.append((method, result))
                    say(
                        f"  {result['requests']:,} requests, {failed(result)} failed "
                        f"(errors {result['errors']}, non-2xx {result['non2xx']})"
                    )
    finally:
        for backend in backends:
            backend.stop()
        shutil.rmtree(work, ignore_errors=True)

    names = {"A": "nginx -s reload", "B": "symlink (ln -sfn + mv -T)"}
    print(
        f"\n{'method':<28} {'requests':>10} {'failed':>7} {'connect/read/write/timeout':>27} {'non-2xx':>8} "
        f"{'p99 ms':>7} {'late':>5}"
    )
    totals = {"A": [0, 0], "B": [0, 0]}
    for method, r in results:
        e = r["errors"]
        totals[method][0] += r["requests"]
        totals[method][1] += failed(r)
        print(
            f"{names[method]:<28} {r['requests']:>10,} {failed(r):>7} "
            f"{e['connect']:>9}/{e['read']}/{e['write']}/{e['timeout']:<9} {r['non2xx']:>8} "
            f"{r['latency_us']['p99'] / 1000:>7.1f} {len(r['late_switches']):>5}"
        )
    for method, (requests, lost) in totals.items():
        print(f"total {names[method]}: {lost} failed of {requests:,} requests")
    for method, r in results:
        if r["nginx_errors"]:
            print(f"nginx error log, method {method} ({len(r['nginx_errors'])} lines), first: {r['nginx_errors'][0]}")
    print(
        "JSON "
        + json.dumps(
            [
                {
                    "method": m,
                    **{k: v for k, v in r.items() if k != "nginx_errors"},
                    "nginx_error_lines": len(r["nginx_errors"]),
                }
                for m, r in results
            ]
        )
    )
    valid = [(m, r) for m, r in results if r["nginx_alive"] and not r["foreign_signals"]]
    totals = {"A": [0, 0], "B": [0, 0]}
    for method, r in valid:
        totals[method][0] += r["requests"]
        totals[method][1] += failed(r)
    if len(valid) != len(results):
        for method, (requests, lost) in totals.items():
            print(f"valid rounds only, {names[method]}: {lost} failed of {requests:,} requests")
    for method, r in results:
        if not r["nginx_alive"] or r["foreign_signals"]:
            print(
                f"INVALID round, method {method}: nginx was stopped during the run by someone else "
                f"({r['foreign_signals'][:2] or 'no signal logged'}); its errors are not the switch's"
            )
    late = [m for m, r in valid if r["late_switches"]]
    if late:
        print(f"warning: some switches were not visible within drain + 1 s (methods {late})")
    # 1 when the symlink lost a request, a switch did not show, or a round was spoiled (run it again).
    return 0 if totals["B"][1] == 0 and totals["B"][0] and not late and len(valid) == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
