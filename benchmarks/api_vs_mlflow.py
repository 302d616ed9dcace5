"""Benchmark: this API vs `mlflow models serve` on the same RandomForest, same machine, same run.

    .venv/bin/python benchmarks/api_vs_mlflow.py [--seconds 10] [--connections 1,16,64] [--workers 2]

Fits the demo RandomForest (mlci.yaml, data/breast_cancer.csv), logs it to a throw-away SQLite MLflow
store (skops serialization, registered as version 1), exports the same fitted pipeline as an mlci
bundle, starts both servers on 127.0.0.1 with the same worker count, and loads each with `wrk`
(one thread; a Lua script POSTs the held-out rows one record per request, in turn) at each concurrency.
Prints requests/s, p50, p99 and errors per server and the ratios; checks that the API's predictions on
the whole held-out set are identical to scikit-learn's. Needs `wrk` (apt-get install wrk). Not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"

import httpx  # noqa: E402 - after the sys.path and telemetry settings above
import pandas as pd  # noqa: E402 - after the sys.path and telemetry settings above
from sklearn.model_selection import train_test_split  # noqa: E402 - after the sys.path and telemetry settings above

from mlci.core import config as config_module  # noqa: E402 - after the sys.path and telemetry settings above
from mlci.learn.model import build_pipeline, model_frame  # noqa: E402 - after the sys.path and telemetry settings above
from mlci.ship.export import export_bundle  # noqa: E402 - after the sys.path and telemetry settings above

LUA = """
local bodies = {}
for line in io.lines("%(bodies)s") do bodies[#bodies + 1] = line end
local i = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
request = function()
  i = i %% #bodies + 1
  return wrk.format("POST", "%(path)s", nil, bodies[i])
end
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_ready(url: str, process: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server exited with {process.returncode} before {url} answered")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise SystemExit(f"{url} not ready within {timeout} s")


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


def parse_ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()
    return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}[unit]


def run_wrk(url: str, script: Path, connections: int, seconds: int) -> dict:
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", "10s", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    result = {
        "connections": connections,
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "requests": int(re.search(r"(\d+) requests in", out).group(1)),
    }
    for pct in ("50", "99"):
        result[f"p{pct}_ms"] = parse_ms(re.search(rf"\s{pct}%\s+(\S+)", out).group(1))
    # Kept apart too: the invalid-records flood (invalid_flood.py) expects every answer to be a non-2xx.
    result["non_2xx"] = result["socket_errors"] = 0
    if m := re.search(r"Non-2xx or 3xx responses: (\d+)", out):
        result["non_2xx"] = int(m.group(1))
    if m := re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out):
        result["socket_errors"] = sum(int(g) for g in m.groups())
    result["errors"] = result["non_2xx"] + result["socket_errors"]
    return result


def write_wrk_script(work: Path, name: str, bodies: list[str], path: str) -> Path:
    """A wrk Lua script that POSTs `bodies` (JSON texts, one per line) to `path` in turn."""
    lines = work / f"{name}.jsonl"
    lines.write_text("".join(body + "\n" for body in bodies))
    script = work / f"{name}.lua"
    script.write_text(LUA % {"bodies": lines, "path": path})
    return script


@dataclass
class Demo:
    """The demo RandomForest fitted on mlci.yaml's split, with its held-out rows and their labels."""

    config: config_module.Config
    pipeline: Any
    x_test: pd.DataFrame
    expected: list[str]


@dataclass
class Servers:
    """Both servers on 127.0.0.1, serving the same fitted model with the same worker count."""

    api_port: int  # `python -m mlci.api.server` (mlci)
    mlflow_port: int  # `mlflow models serve`

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def mlflow(self) -> str:
        return f"http://127.0.0.1:{self.mlflow_port}"


def fit_demo() -> Demo:
    """The demo RandomForest (mlci.yaml, data/breast_cancer.csv) fitted on mlci.yaml's split."""
    config = config_module.load(ROOT / "mlci.yaml")
    frame = pd.read_csv(config.data_path)
    features = model_frame(frame, config)
    target = frame[config.data.target].astype(str)
    x_train, x_test, y_train, _ = train_test_split(
        features, target, test_size=config.split.test_size, random_state=config.split.seed, stratify=target
    )
    pipeline = build_pipeline(config).fit(x_train, y_train)
    return Demo(config, pipeline, x_test, [str(x) for x in pipeline.predict(x_test)])


def start_servers(demo: Demo, work: Path, workers: int, processes: list[subprocess.Popen]) -> Servers:
    """The same fitted model, twice: an mlci bundle served by mlci.api.server and an MLflow registered
    version served by `mlflow models serve`, `workers` workers each, logs in work/logs. Each process
    is appended to `processes` as it starts, so the caller's cleanup stops it whatever fails later."""
    bundle = work / "bundle"
    export_bundle(demo.pipeline, demo.config, {"name": "bench", "version": "1"}, demo.x_test, bundle)
    import mlflow
    import skops.io as sio

    uri = f"sqlite:///{work / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    trusted = sio.get_untrusted_types(data=sio.dumps(demo.pipeline))
    with mlflow.start_run():
        mlflow.sklearn.log_model(
            demo.pipeline,
            name="model",
            serialization_format="skops",
            skops_trusted_types=trusted,
            registered_model_name="bench",
            input_example=demo.x_test.head(2),
        )
    # mlflow models serve execs `uvicorn` from PATH: put this interpreter's bin dir first.
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    env = {**os.environ, "PATH": path, "MLFLOW_TRACKING_URI": uri, "MLFLOW_DISABLE_TELEMETRY": "true"}

    servers = Servers(api_port=free_port(), mlflow_port=free_port())
    logs = work / "logs"
    logs.mkdir()
    api = subprocess.Popen(
        [sys.executable, "-m", "mlci.api.server", str(bundle), str(servers.api_port), str(workers)],
        cwd=ROOT,
        env={**env, "MLCI_LOG_LEVEL": "WARNING"},
        start_new_session=True,
        stdout=(logs / "api.log").open("wb"),
        stderr=subprocess.STDOUT,
    )
    processes.append(api)
    mlflow_bin = str(Path(sys.executable).with_name("mlflow"))
    served = subprocess.Popen(
        [
            mlflow_bin,
            "models",
            "serve",
            "-m",
            "models:/bench/1",
            "--env-manager",
            "local",
            "-h",
            "127.0.0.1",
            "-p",
            str(servers.mlflow_port),
            "-w",
            str(workers),
        ],
        cwd=work,
        env=env,
        start_new_session=True,
        stdout=(logs / "mlflow.log").open("wb"),
        stderr=subprocess.STDOUT,
    )
    processes.append(served)
    wait_ready(f"{servers.api}/ready", api)
    wait_ready(f"{servers.mlflow}/ping", served)
    return servers


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", default="1,16,64")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed (Debian: apt-get install -y wrk)")
    levels = [int(c) for c in args.connections.split(",")]

    demo = fit_demo()
    x_test, expected = demo.x_test, demo.expected
    work = Path(tempfile.mkdtemp(prefix="mlci-bench-"))
    processes: list[subprocess.Popen] = []
    try:
        servers = start_servers(demo, work, args.workers, processes)
        api_port, mlflow_port = servers.api_port, servers.mlflow_port

        # -- predictions: the API must equal scikit-learn on the whole held-out set ------------------
        records = [{k: float(v) for k, v in row.items()} for _, row in x_test.iterrows()]
        with httpx.Client(timeout=30) as client:
            single = [
                client.post(f"http://127.0.0.1:{api_port}/predict", json={"records": [r]}).json()["predictions"][0][
                    "label"
                ]
                for r in records
            ]
            batch = [
                p["label"]
                for p in client.post(f"http://127.0.0.1:{api_port}/predict", json={"records": records}).json()[
                    "predictions"
                ]
            ]
            response = client.post(
                f"http://127.0.0.1:{mlflow_port}/invocations",
                json={"dataframe_split": {"columns": list(x_test.columns), "data": x_test.to_numpy().tolist()}},
            )
            mlflow_labels = [str(x) for x in response.json()["predictions"]]
        identical = single == expected and batch == expected
        print(
            f"predictions on the {len(expected)} held-out rows: API identical to scikit-learn: {identical} "
            f"(mlflow identical: {mlflow_labels == expected})"
        )

        # -- load ------------------------------------------------------------------------------------
        api_bodies = [json.dumps({"records": [r]}) for r in records]
        mlflow_bodies = [
            json.dumps({"dataframe_split": {"columns": list(r), "data": [list(r.values())]}}) for r in records
        ]
        scripts = {
            "api": write_wrk_script(work, "api", api_bodies, "/predict"),
            "mlflow": write_wrk_script(work, "mlflow", mlflow_bodies, "/invocations"),
        }
        urls = {"api": servers.api, "mlflow": servers.mlflow}
        results: dict[str, list[dict]] = {"api": [], "mlflow": []}
        for name in ("api", "mlflow"):
            run_wrk(urls[name], scripts[name], 4, 2)  # warm-up, discarded
            for c in levels:
                results[name].append(run_wrk(urls[name], scripts[name], c, args.seconds))
                print(f"{name:6} c={c:<3} {results[name][-1]}", flush=True)
    finally:
        for process in processes:
            stop(process)
        if os.environ.get("MLCI_BENCH_KEEP"):
            print("kept", work)
        else:
            shutil.rmtree(work, ignore_errors=True)

    print()
    print(
        f"RandomForest(100 trees), {len(expected)} held-out rows, {args.workers} workers each, "
        f"{args.seconds} s per level, wrk -t1, one record per request"
    )
    header = (
        f"| {'conc.':>5} | {'API req/s':>9} | {'MLflow req/s':>12} | {'ratio':>6} | {'API p50':>8} | "
        f"{'API p99':>8} | {'MLflow p50':>10} | {'MLflow p99':>10} | {'errors API/MLflow':>17} |"
    )
    print(header)
    print("|" + "|".join("-" * (len(cell)) for cell in header.split("|")[1:-1]) + "|")
    for a, m in zip(results["api"], results["mlflow"]):
        print(
            f"| {a['connections']:>5} | {a['rps']:>9.0f} | {m['rps']:>12.1f} | {a['rps'] / m['rps']:>5.0f}× | "
            f"{a['p50_ms']:>6.2f}ms | {a['p99_ms']:>6.2f}ms | {m['p50_ms']:>8.1f}ms | {m['p99_ms']:>8.1f}ms | "
            f"{a['errors']:>8}/{m['errors']:<8} |"
        )
    at16 = {name: next((r for r in rows if r["connections"] == 16), None) for name, rows in results.items()}
    verdict = {"predictions_identical": identical}
    if at16["api"] and at16["mlflow"]:
        verdict.update(
            {
                "ratio_c16_ge_20": at16["api"]["rps"] / at16["mlflow"]["rps"] >= 20,
                "api_p99_c16_le_25ms": at16["api"]["p99_ms"] <= 25,
                "zero_errors": all(r["errors"] == 0 for r in results["api"]),
            }
        )
    print("targets:", json.dumps(verdict))
    if args.json:
        args.json.write_text(json.dumps({"results": results, "targets": verdict}, indent=2))
    return 0 if all(verdict.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
