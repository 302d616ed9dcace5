"""The release, as a team uses it: the wheel in a fresh virtualenv (tests/fixtures/release.py), run from a
team's own repository that holds its own `ml`, `api` and `dashboard` packages (most ML repositories have
an `ml/`), its tests and a conftest.py, and data this suite generates. There: `mlci init`, `mlci test`,
`mlci train`, `mlci gate`, `mlci package`, `mlci serve` answering /predict, then the whole line
(`mlci pipeline run --approve`) through production on the real Docker engine."""

from __future__ import annotations

import csv
import os
import random
import shutil
import signal
import subprocess
import zipfile
from pathlib import Path

import httpx
import pytest

from tests.fixtures.docker import remove_images
from tests.fixtures.release import VERSION, Release, host_wheelhouse, ok, run
from tests.helpers.ports import reserve_ports
from tests.helpers.waiting import wait_until_answers

NAME = "loanco"

TEAM_ML = '''"""The team's own training helpers: mlci must neither shadow them nor be shadowed by them."""

OWNER = "loanco"


def risk_band(income: float) -> str:
    return "low" if income > 50_000 else "high"
'''
TEAM_TEST = """from pathlib import Path

import ml
from ml import risk_band

import mlci


def test_the_team_ml_is_the_teams_own():
    assert ml.OWNER == "loanco"
    assert Path(ml.__file__).parent == Path(__file__).resolve().parents[1] / "ml"
    assert Path(mlci.__file__).parent.name == "mlci"


def test_risk_band():
    assert risk_band(60_000) == "low" and risk_band(10_000) == "high"
"""
CONFTEST = """import pytest


@pytest.fixture
def band():
    return "low"
"""


def generate_csv(path: Path, rows: int = 600, seed: int = 7) -> None:
    """A loan book no mlci test ships: two numeric features, a categorical one, an identifier, a label."""
    rng = random.Random(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["loan_id", "income", "debt_ratio", "region", "defaulted"])
        for number in range(rows):
            income = round(rng.uniform(8_000, 120_000), 2)
            debt = round(rng.uniform(0, 1), 3)
            region = rng.choice(["north", "south", "east"])
            risk = debt * 2 - income / 60_000 + (0.4 if region == "east" else 0) + rng.gauss(0, 0.4)
            writer.writerow([100_000 + number, income, debt, region, "yes" if risk > 0.2 else "no"])


@pytest.fixture(scope="module")
def team(tmp_path_factory, release: Release):
    """A team's fresh repository: its own ml/, api/, dashboard/ packages, tests and conftest.py, then what
    `mlci init` writes from its CSV, committed on main."""
    root = tmp_path_factory.mktemp("team") / NAME
    (root / "ml").mkdir(parents=True)
    (root / "ml" / "__init__.py").write_text(TEAM_ML)
    for package in ("api", "dashboard"):  # names a team may well use for its own code
        (root / package).mkdir()
        (root / package / "__init__.py").write_text(f'"""The team\'s own {package} package."""\nTEAM = True\n')
    (root / "tests").mkdir()
    (root / "tests" / "test_team_ml.py").write_text(TEAM_TEST)
    (root / "conftest.py").write_text(CONFTEST)
    generate_csv(root / "data" / "loans.csv")
    env = release.env(COLUMNS="200")
    init = ok(
        run([str(release.bin / "mlci"), "init", "--data", "data/loans.csv", "--target", "defaulted"], root, env, 120)
    )
    assert "RESULT OK" in init.stdout, init.stdout
    git = ["git", "-c", "user.name=Loan Team", "-c", "user.email=team@loanco.example"]
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-qm", "the loan model"]):
        subprocess.run([*git, *args], cwd=root, check=True, capture_output=True)
    return root, env


def mlci(release: Release, team, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    root, env = team
    return run([str(release.bin / "mlci"), *args], root, env, timeout)


def test_the_install_has_one_import_package_and_the_library_version(release: Release, tmp_path):
    with zipfile.ZipFile(release.wheel) as wheel:
        top = {name.split("/")[0] for name in wheel.namelist()}
    assert top == {"mlci", f"mlci-{VERSION}.dist-info"}
    assert release.sdist.is_file()
    env = release.env()
    python = str(release.bin / "python")
    for name in ("ml", "api", "dashboard"):  # from a neutral folder: nothing but the install on sys.path
        done = run([python, "-c", f"import {name}"], tmp_path, env, 60)
        assert done.returncode == 1 and f"No module named '{name}'" in done.stderr, (name, done.stderr)
    where = ok(run([python, "-c", "import mlci, mlci.api, mlci.dashboard; print(mlci.__file__)"], tmp_path, env, 60))
    assert Path(where.stdout.strip()).is_relative_to(release.venv)
    assert ok(run([str(release.bin / "mlci"), "--version"], tmp_path, env, 60)).stdout.strip().endswith(VERSION)


def test_init_wrote_a_repository_that_imports_only_mlci(team):
    root, _ = team
    for name in ("mlci.yaml", "Jenkinsfile", "tests/test_data.py", ".gitignore"):
        assert (root / name).is_file(), name
    starter = (root / "tests" / "test_data.py").read_text()
    imported = [line for line in starter.splitlines() if line.startswith(("import ", "from "))]
    assert [line for line in imported if "mlci" in line]
    assert not [line for line in imported if line.split()[1].split(".")[0] in ("ml", "api", "dashboard")]
    assert (root / "Jenkinsfile").read_text().startswith(f"@Library('mlci@v{VERSION}')")


def test_test_train_gate_package_and_serve_from_the_team_repository(release: Release, team, tmp_path):
    root, env = team
    # As mlciTest runs it: sandboxed (the launcher is the wheel's mlci.core.sandbox).
    tested = run([str(release.bin / "mlci"), "test"], root, {**env, "MLCI_TEST_SANDBOX": "required"}, 600)
    assert tested.returncode == 0, tested.stdout[-3000:] + tested.stderr[-2000:]
    assert "4 passed" in tested.stdout or " passed" in tested.stdout
    assert "sandbox: landlock ABI" in tested.stdout and f"beneath {root.resolve()}" in tested.stdout
    assert (root / "reports" / "junit.xml").is_file()

    trained = mlci(release, team, "train")
    assert trained.returncode == 0, trained.stdout[-3000:] + trained.stderr[-2000:]
    assert f"registered {NAME}" in trained.stdout and "version 1 as @candidate" in trained.stdout

    gated = mlci(release, team, "gate")
    assert gated.returncode == 0, gated.stdout[-3000:] + gated.stderr[-2000:]
    assert "candidate v1 passes the gate" in gated.stdout

    bundle = tmp_path / "bundle"
    packaged = mlci(release, team, "package", "--out", str(bundle))
    assert packaged.returncode == 0, packaged.stdout[-3000:] + packaged.stderr[-2000:]
    assert (bundle / "model.onnx").is_file() and (bundle / "metadata.json").is_file()

    (port,) = reserve_ports(1)
    server = subprocess.Popen(
        [str(release.bin / "mlci"), "serve", "--bundle", str(bundle), "--port", str(port)],
        cwd=root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        wait_until_answers(f"http://127.0.0.1:{port}/ready", timeout=60, process=server)
        record = {"income": 42_000.0, "debt_ratio": 0.7, "region": "east"}
        answer = httpx.post(f"http://127.0.0.1:{port}/predict", json={"records": [record]}, timeout=10)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["model"]["name"] == NAME and str(body["model"]["version"]) == "1"
        assert body["predictions"][0]["label"] in ("yes", "no")
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


@pytest.mark.timeout(1800)
def test_the_whole_line_through_production_from_the_wheel(release: Release, team, base_images):
    root, env = team
    env.update(base_images)
    for lock in ("api", "dashboard"):  # the images' wheels from the host's downloads: no network in a build
        target = root / "build" / "wheelhouse" / lock
        if not target.exists():
            shutil.copytree(host_wheelhouse(lock), target, copy_function=os.link)
    try:
        line = mlci(release, team, "pipeline", "run", "--approve", timeout=1500)
        assert line.returncode == 0, line.stdout[-5000:] + line.stderr[-3000:]
        stages = ("Setup", "Test", "Train", "Gate", "Build images", "Deploy staging", "Approve", "Deploy production")
        for number, stage in enumerate(stages, start=1):
            assert f"stage {number}/8: {stage} — ok" in line.stdout
        for role in ("api", "dashboard", "router"):  # built from the wheel's sources, in contexts of their own
            assert (root / "build" / "context" / role / "docker" / f"{role}.Dockerfile").is_file()
        assert (root / "build" / "context" / "api" / "mlci" / "api" / "app.py").is_file()
        assert not (root / "build" / "context" / "api" / "mlci" / "learn").exists()
        production = ok(mlci(release, team, "status", "--env", "production", "--json", timeout=120))
        served = httpx.get(__import__("json").loads(production.stdout)[0]["url"] + "/version", timeout=5).json()
        assert served["name"] == NAME and str(served["version"]) == "2"  # v1 from the test above, v2 from the line
    finally:
        for name in ("production", "staging"):
            mlci(release, team, "down", "--env", name, timeout=180)
            subprocess.run(["docker", "volume", "rm", f"{NAME}-{name}-state"], capture_output=True, timeout=60)
        remove_images(NAME)
