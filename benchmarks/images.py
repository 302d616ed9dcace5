"""Benchmark: the API image `mlci build` makes vs the image MLflow generates for the same model version.

    flock /tmp/mlci-bench.lock env MLCI_BASE_IMAGE=mlci-base/python:3.11-bookworm \\
        MLCI_ROUTER_BASE_IMAGE=mlci-base/nginx:bookworm MLFLOW_DISABLE_TELEMETRY=true \\
        .venv/bin/python benchmarks/images.py [--runs 5] [--peer-runs 3] [--json out.json] [--keep]

In one run, on one Docker engine (classic builder), from one throw-away copy of the demo project
(mlci.yaml, data/, the build sources; its own git history and embedded MLflow store; project name
`bench-<hex>` so every image and container it makes has a unique name):

1. size: `mlci build --only api` for version 1 vs `mlflow models generate-dockerfile -m
   models:/<name>/1 --env-manager local`, built on the same base and from a wheelhouse downloaded on the
   host (images_mlflow.py says exactly what is adapted in MLflow's Dockerfile) — target ratio <= 0.5;
2. size: the API image <= 350 MB;
3. rebuild: `model.params.max_depth` changed, committed, `mlci train`, then `mlci build --only api` timed
   with the cache warm (total, and the docker build part from reports/build.json); which build steps
   ran again; the same model-only change through MLflow's Dockerfile, for comparison — target <= 10 s;
4. cold start: `docker run -d --read-only --tmpfs /tmp` until GET /ready answers 200 (polled every
   20 ms), N runs, median and max — target <= 3 s; MLflow's image until /ping, for comparison.

Prints a table (figure, target, measured, met?) and exits 1 when a target is missed (2 on a setup
error). Removes every image and container it made (the shared base images stay). Needs a Docker
engine, the local base images (docker/base-image.sh) and access to the package index from the host.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import images_mlflow
from bluegreen_project import BUILD_SOURCES, DEFAULTS, copy_sources
from images_docker import BuildLog, docker, free_port, image_size, remove_containers, remove_images, write_shim

from mlci.ship.images import download_wheels

VENV_BIN = Path(sys.executable).parent
# The demo project's config and data, and what an image build reads from a project.
SOURCES = ("mlci.yaml", "data", *BUILD_SOURCES)
MB = 1e6


def log(message: str) -> None:
    print(f"[bench] {message}", flush=True)


class Project:
    def __init__(self, root: Path, name: str, env: dict[str, str]):
        self.root, self.name, self.env = root, name, env

    def create(self) -> None:
        copy_sources(self.root, SOURCES)
        self.set_yaml_key("project", self.name)
        self.git("init", "-q", "-b", "main")
        self.git("config", "user.name", "mlci bench")
        self.git("config", "user.email", "bench@mlci.invalid")
        self.commit("benchmark project")

    def set_yaml_key(self, dotted: str, value) -> None:
        import yaml

        config = yaml.safe_load((self.root / "mlci.yaml").read_text())
        node = config
        *parents, last = dotted.split(".")
        for part in parents:
            node = node[part]
        node[last] = value
        (self.root / "mlci.yaml").write_text(yaml.safe_dump(config, sort_keys=False))

    def git(self, *args: str) -> str:
        return subprocess.run(["git", *args], cwd=self.root, check=True, capture_output=True, text=True).stdout.strip()

    def commit(self, message: str) -> str:
        self.git("add", "-A")
        self.git("commit", "-q", "-m", message)
        return self.git("rev-parse", "HEAD")

    def mlci(self, *args: str) -> float:
        """Run the CLI; return its wall-clock seconds. Output goes to a log (shown on failure)."""
        started = time.monotonic()
        done = subprocess.run(
            [str(VENV_BIN / "mlci"), "--config", str(self.root / "mlci.yaml"), *args],
            cwd=self.root,
            env=self.env,
            capture_output=True,
            text=True,
            check=False,
        )
        seconds = time.monotonic() - started
        with (self.root.parent / "mlci.log").open("a") as out:
            out.write(
                f"$ mlci {' '.join(args)}  ({seconds:.2f} s, exit {done.returncode})\n{done.stdout}{done.stderr}\n"
            )
        if done.returncode != 0:
            raise SystemExit(
                f"mlci {' '.join(args)} failed (exit {done.returncode}):\n{done.stdout[-3000:]}{done.stderr[-3000:]}"
            )
        return seconds

    def report(self, name: str) -> dict:
        return json.loads((self.root / "reports" / f"{name}.json").read_text())


def wait_http(port: int, path: str, started: float, timeout: float = 120, interval: float = 0.02) -> float | None:
    """Seconds from `started` until GET path answers 200, polling every `interval`; None on timeout."""
    while time.monotonic() - started < timeout:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
        try:
            connection.request("GET", path)
            if connection.getresponse().status == 200:
                return time.monotonic() - started
        except (OSError, http.client.HTTPException):
            pass
        finally:
            connection.close()
        time.sleep(interval)
    return None


def cold_starts(
    image: str, runs: int, container_port: int, path: str, extra: list[str], prefix: str, containers: list[str]
) -> list[float]:
    """`docker run -d` of a fresh container, timed until `path` answers 200; each container removed after."""
    times = []
    for i in range(runs):
        name = f"{prefix}-start-{i}"
        containers.append(name)
        port = free_port()
        started = time.monotonic()
        docker("run", "-d", "--name", name, "-p", f"127.0.0.1:{port}:{container_port}", *extra, image)
        seconds = wait_http(port, path, started)
        if seconds is None:
            logs = docker("logs", name, check=False)
            remove_containers([name])
            raise SystemExit(f"{image} not ready on {path} within 120 s:\n{(logs.stdout + logs.stderr)[-3000:]}")
        times.append(seconds)
        log(f"  {image}: {path} after {seconds:.3f} s")
        remove_containers([name])
    return times


def mlflow_predicts(image: str, example: Path, prefix: str, containers: list[str]) -> int:
    """One POST /invocations with MLflow's own serving example: proves the adapted image serves the model."""
    name, port = f"{prefix}-check", free_port()
    containers.append(name)
    docker("run", "-d", "--name", name, "-p", f"127.0.0.1:{port}:8080", image)
    try:
        if wait_http(port, "/ping", time.monotonic()) is None:
            return 0
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        connection.request(
            "POST", "/invocations", body=example.read_bytes(), headers={"Content-Type": "application/json"}
        )
        return connection.getresponse().status
    finally:
        remove_containers([name])


def rebuild_breakdown(project: Project, total: float, build: dict) -> dict:
    """Where the rebuild's seconds go, measured right after it (not part of the timed figure): the CLI's
    start (`mlci --version`), the host's wheelhouse check (`mlci build`'s own `pip download` call,
    ml.images.download_wheels, all files already there), the docker build (report); the rest is
    packaging (MLflow load, ONNX export, parity check), imports and engine checks."""
    cli = project.mlci("--version")
    started = time.monotonic()
    download_wheels(
        project.root / "requirements" / "api.txt", project.root / "build" / "wheelhouse" / "api", project.env
    )
    wheelhouse = time.monotonic() - started
    docker_s = build["images"]["api"]["seconds"]
    return {
        "cli_start_s": round(cli, 2),
        "wheelhouse_check_s": round(wheelhouse, 2),
        "docker_build_s": docker_s,
        "build_function_s": build["duration_s"],
        "rest_s": round(total - cli - wheelhouse - docker_s, 2),
    }


def layer_sizes(image: str, steps: list[dict]) -> list[dict]:
    """The layers a build made (steps that ran), with their size: what a push or a pull moves."""
    history = docker("history", "--no-trunc", "--format", "{{.ID}}\t{{.Size}}", image).stdout.split("\n")
    sizes = {line.split("\t")[0].removeprefix("sha256:")[:12]: line.split("\t")[1] for line in history if "\t" in line}
    return [
        {"step": st["number"], "instruction": st["instruction"][:60], "size": sizes.get(st["id"], "?")}
        for st in steps
        if st["id"] and not st["cached"] and not st["instruction"].startswith("FROM")
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="cold starts of the API image (default 5)")
    parser.add_argument("--peer-runs", type=int, default=3, help="cold starts of MLflow's image (default 3)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (images are removed anyway)")
    args = parser.parse_args()

    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("MLFLOW_TRACKING_URI", "MLCI_CONFIG", "MLCI_REGISTRY", "PIP_INDEX_URL")
    }
    for key, value in DEFAULTS.items():
        env.setdefault(key, value)
    base = env["MLCI_BASE_IMAGE"]
    if docker("image", "inspect", base, check=False).returncode != 0:
        print(f"error: base image {base} is missing: run docker/base-image.sh python", file=sys.stderr)
        return 2

    tag = f"bench-{secrets.token_hex(4)}"
    work = Path(tempfile.mkdtemp(prefix=f"mlci-{tag}-"))
    build_log = BuildLog(work / "docker-build.log")
    env["PATH"] = os.pathsep.join([str(write_shim(work / "shim", build_log.path)), str(VENV_BIN), env.get("PATH", "")])
    project = Project(work / "project", tag, env)
    containers: list[str] = []
    mlflow_tags: list[str] = []
    server = None
    figures: dict = {
        "project": tag,
        "base_image": base,
        "docker": docker("version", "--format", "{{.Server.Version}}").stdout.strip(),
    }
    log(f"work folder {work}; project {tag}; base {base}; engine {figures['docker']}")
    try:
        # -- mlci: version 1, first build (cache as found), then a model-only change -------------------
        project.create()
        log("mlci train (version 1)")
        project.mlci("train")
        log("mlci build --only api (version 1; first build, layer cache as found)")
        build_log.mark()
        first_total = project.mlci("build", "--only", "api")
        first = project.report("build")
        first_steps = build_log.steps_since_mark()
        api_v1 = first["images"]["api"]["tag"]

        project.set_yaml_key("model.params.max_depth", 6)
        project.commit("max_depth 8 -> 6")
        log("model-only change: max_depth 8 -> 6, mlci train (version 2)")
        project.mlci("train")
        log("mlci build --only api (version 2; cache warm) — timed")
        build_log.mark()
        rebuild_total = project.mlci("build", "--only", "api")
        rebuild = project.report("build")
        rebuild_steps = build_log.steps_since_mark()
        breakdown = rebuild_breakdown(project, rebuild_total, rebuild)

        # -- MLflow: the same registered version, its generated Dockerfile on the same base ---------
        tracking = f"sqlite:///{project.root / '.mlci' / 'mlflow.db'}"
        model_name = first["model_name"]
        mlflow_env = {**env, "MLFLOW_TRACKING_URI": tracking}
        wheelhouse = work / "mlflow-wheelhouse"
        contexts = {}
        for version in ("1", "2"):
            contexts[version] = images_mlflow.generate(model_name, version, work / f"mlflow-v{version}", mlflow_env)
        log("pip download (host) of what MLflow's Dockerfile installs, into a temp wheelhouse")
        figures["mlflow_wheelhouse"] = images_mlflow.download_wheelhouse(contexts["1"], wheelhouse)
        server, find_links = images_mlflow.serve_wheelhouse(wheelhouse)
        for context in contexts.values():  # both versions' Dockerfiles, adapted the same way
            figures["mlflow_adaptations"] = images_mlflow.adapt(context, base)
        mlflow_builds = {}
        for version in ("1", "2"):
            image = f"{tag}-mlflow:{version}"
            mlflow_tags.append(image)
            log(
                f"docker build MLflow's Dockerfile for version {version} -> {image}"
                + (" (model-only change, cache warm)" if version == "2" else "")
            )
            seconds, steps = images_mlflow.build(contexts[version], image, find_links, build_log)
            mlflow_builds[version] = {"seconds": round(seconds, 2), "steps": steps}
        example = contexts["1"] / "model_dir" / "serving_input_example.json"
        figures["mlflow_invocations_status"] = mlflow_predicts(f"{tag}-mlflow:1", example, tag, containers)

        # -- cold starts --------------------------------------------------------------------------
        log(f"cold starts of {api_v1} ({args.runs}) until /ready")
        api_starts = cold_starts(api_v1, args.runs, 8000, "/ready", ["--read-only", "--tmpfs", "/tmp"], tag, containers)
        log(f"cold starts of {tag}-mlflow:1 ({args.peer_runs}) until /ping")
        mlflow_starts = (
            cold_starts(f"{tag}-mlflow:1", args.peer_runs, 8080, "/ping", [], f"{tag}-mlflow", containers)
            if args.peer_runs
            else []
        )

        # -- figures ------------------------------------------------------------------------------
        base_size = image_size(base)
        sizes = {
            "base": base_size,
            "api_v1": image_size(api_v1),
            "api_v2": image_size(rebuild["images"]["api"]["tag"]),
            "mlflow_v1": image_size(f"{tag}-mlflow:1"),
            "mlflow_v2": image_size(f"{tag}-mlflow:2"),
        }
        figures.update(
            {
                "sizes_bytes": sizes,
                "mlci_first_build": {
                    "total_s": round(first_total, 2),
                    "docker_s": first["images"]["api"]["seconds"],
                    "steps": first_steps,
                },
                "mlci_rebuild": {
                    "total_s": round(rebuild_total, 2),
                    "docker_s": rebuild["images"]["api"]["seconds"],
                    "report_steps": rebuild["images"]["api"]["steps"],
                    "report_cached_steps": rebuild["images"]["api"]["cached_steps"],
                    "steps": rebuild_steps,
                    "breakdown": breakdown,
                    "new_layers": layer_sizes(rebuild["images"]["api"]["tag"], rebuild_steps),
                },
                "mlflow_builds": mlflow_builds,
                "api_cold_start_s": [round(x, 3) for x in api_starts],
                "mlflow_cold_start_s": [round(x, 3) for x in mlflow_starts],
                "load_average": os.getloadavg(),
            }
        )
    finally:
        if server is not None:
            server.shutdown()
        remove_containers(containers)
        removed = remove_images([f"reference={tag}-*"], mlflow_tags, build_log.created_ids())
        log(f"removed {removed} images/layers made by this run")
        if args.keep:
            log(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)

    return report(figures, args.json)


def report(f: dict, json_path: Path | None) -> int:
    s = f["sizes_bytes"]
    ratio = s["api_v1"] / s["mlflow_v1"]
    above = (s["api_v1"] - s["base"]) / (s["mlflow_v1"] - s["base"])
    api_med, api_max = statistics.median(f["api_cold_start_s"]), max(f["api_cold_start_s"])
    rb = f["mlci_rebuild"]
    rows = [
        (
            "1. API image / MLflow image (same version, base, wheels)",
            "<= 0.50",
            f"{ratio:.2f} ({s['api_v1'] / MB:.0f} / {s['mlflow_v1'] / MB:.0f} MB)",
            ratio <= 0.5,
        ),
        (
            "   same, above the shared base",
            "(info)",
            f"{above:.2f} ({(s['api_v1'] - s['base']) / MB:.0f} / {(s['mlflow_v1'] - s['base']) / MB:.0f} MB)",
            None,
        ),
        (
            "2. API image size (debootstrap bookworm base)",
            "<= 350 MB",
            f"{s['api_v1'] / MB:.0f} MB",
            s["api_v1"] <= 350 * MB,
        ),
        (
            "3. model-only rebuild: mlci build --only api, total",
            "<= 10 s",
            f"{rb['total_s']:.2f} s",
            rb["total_s"] <= 10,
        ),
        ("   docker build part (images.api.seconds)", "<= 10 s", f"{rb['docker_s']:.2f} s", rb["docker_s"] <= 10),
        (
            "   MLflow's Dockerfile, same change, cache warm",
            "(peer)",
            f"{f['mlflow_builds']['2']['seconds']:.2f} s",
            None,
        ),
        (
            f"4. cold start to /ready, median of {len(f['api_cold_start_s'])}",
            "<= 3 s",
            f"{api_med:.2f} s",
            api_med <= 3,
        ),
        (f"   max of {len(f['api_cold_start_s'])}", "<= 3 s", f"{api_max:.2f} s", api_max <= 3),
    ]
    if f["mlflow_cold_start_s"]:
        rows.append(
            (
                f"   MLflow image to /ping, median of {len(f['mlflow_cold_start_s'])}",
                "(peer)",
                f"{statistics.median(f['mlflow_cold_start_s']):.2f} s",
                None,
            )
        )
    print()
    print(
        f"project {f['project']}, base {f['base_image']} ({s['base'] / MB:.0f} MB), Docker {f['docker']} "
        f"classic builder, load average {' '.join(f'{x:.1f}' for x in f['load_average'])}"
    )
    print("MLflow's Dockerfile adapted:", *(f"  - {a}" for a in f["mlflow_adaptations"]), sep="\n")
    print(
        f"MLflow wheelhouse: {f['mlflow_wheelhouse']['files']} files, {f['mlflow_wheelhouse']['bytes'] / MB:.0f} MB;"
        f" its image answered POST /invocations with {f['mlflow_invocations_status']}"
    )
    print(
        f"mlci first build (cache as found): {f['mlci_first_build']['total_s']:.2f} s total, "
        f"{f['mlci_first_build']['docker_s']:.2f} s docker; MLflow first build "
        f"{f['mlflow_builds']['1']['seconds']:.2f} s"
    )
    print(
        f"model-only rebuild: {len(rb['new_layers'])} of {len(rb['steps'])} steps ran again "
        f"(report: {rb['report_cached_steps']} cached of {rb['report_steps']}), layers made:"
    )
    for layer in rb["new_layers"]:
        print(f"  step {layer['step']}: {layer['instruction']:<60} {layer['size']}")
    b = rb["breakdown"]
    print(
        f"rebuild time, measured apart: CLI start {b['cli_start_s']:.2f} s, wheelhouse check (pip download, "
        f"files present) {b['wheelhouse_check_s']:.2f} s, docker build {b['docker_build_s']:.2f} s, rest "
        f"(packaging: MLflow load, ONNX export, parity; imports) {b['rest_s']:.2f} s; build() itself "
        f"{b['build_function_s']:.2f} s"
    )
    ran_mlflow = [
        st
        for st in f["mlflow_builds"]["2"]["steps"]
        if st["id"] and not st["cached"] and not st["instruction"].startswith("FROM")
    ]
    print(f"MLflow, same change: {len(ran_mlflow)} of {len(f['mlflow_builds']['2']['steps'])} steps ran again:")
    for st in ran_mlflow:
        print(f"  step {st['number']}: {st['instruction'][:100]}")
    print(f"cold starts (s): API {f['api_cold_start_s']}, MLflow {f['mlflow_cold_start_s']}")
    print()
    widths = (max(len(r[0]) for r in rows), 9, max(len(r[2]) for r in rows), 5)
    line = f"| {'figure':<{widths[0]}} | {'target':<{widths[1]}} | {'measured':<{widths[2]}} | {'met?':<{widths[3]}} |"
    print(line)
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for name, target, measured, met in rows:
        mark = "" if met is None else ("yes" if met else "NO")
        print(f"| {name:<{widths[0]}} | {target:<{widths[1]}} | {measured:<{widths[2]}} | {mark:<{widths[3]}} |")
    missed = [name.strip() for name, _, _, met in rows if met is False]
    f["targets"] = {name.strip(): met for name, _, _, met in rows if met is not None}
    if json_path:
        json_path.write_text(json.dumps(f, indent=2))
    if missed:
        print("\nmissed:", "; ".join(missed))
        return 1
    print("\nall targets met")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except subprocess.CalledProcessError as error:
        print(f"error: {' '.join(error.cmd[:3])}… failed: {(error.stderr or '')[-2000:]}", file=sys.stderr)
        sys.exit(2)
