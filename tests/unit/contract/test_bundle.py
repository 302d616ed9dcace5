"""A model bundle is data, never code: the skops allow-list, the bundle digest that comes from outside the
bundle, and malformed metadata.json / reference.json refused with exit 2, through the real entry points
(`mlci serve` and the container's `python -m api`)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import httpx
import pytest
import skops.io as sio

from mlci.contract import bundle as fmt
from mlci.contract import bundle_digest
from mlci.ship.export import export_bundle

SUPPORTED = [
    ("sklearn.linear_model.LogisticRegression", {"max_iter": 300}),
    ("sklearn.ensemble.RandomForestClassifier", {"n_estimators": 5}),
    ("sklearn.ensemble.GradientBoostingClassifier", {"n_estimators": 5}),
    ("sklearn.tree.DecisionTreeClassifier", {}),
    ("sklearn.ensemble.HistGradientBoostingClassifier", {"max_iter": 5}),
]


MLCI = Path(sys.executable).parent / "mlci"


def refused(command: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    """Run an entry point that must refuse its bundle; one that starts serving instead is a failure."""
    try:
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:  # subprocess.run has killed it
        pytest.fail(f"{' '.join(command)} served the bundle instead of refusing it")


def serve_refused(bundle: Path, *extra: str, **env: str) -> subprocess.CompletedProcess:
    """`mlci serve --bundle DIR` (the real console script) on a loopback port."""
    port = str(reserve_port())
    return refused([str(MLCI), "serve", "--bundle", str(bundle), "--port", port, *extra], {**os.environ, **env})


def entry_refused(bundle: Path, tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    """The image's CMD, `python -m api`, on a unix socket in tmp_path."""
    full = {**os.environ, "MLCI_BUNDLE": str(bundle), "MLCI_UDS": str(tmp_path / "api.sock"), **env}
    return refused([sys.executable, "-m", "api"], full)


def reserve_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def sklearn_bundle(helpers, loans_config, tmp_path_factory) -> Path:
    """A scikit-learn (skops) fallback bundle: the format whose loader instantiates types from the file."""
    config = helpers.with_estimator(
        loans_config,
        "sklearn.ensemble.GradientBoostingClassifier",
        {"n_estimators": 10},
        parity_tolerance=1e-15,
        allow_sklearn_fallback=True,
    )
    fitted = helpers.fit(config)
    out = tmp_path_factory.mktemp("skops") / "bundle"
    export_bundle(fitted.pipeline, config, helpers.metadata(config), fitted.test_frame, out)
    assert json.loads((out / fmt.METADATA_FILE).read_text())["format"] == fmt.FORMAT_SKLEARN
    return out


def copy_bundle(source: Path, tmp_path: Path) -> Path:
    target = tmp_path / "bundle"
    shutil.copytree(source, target)
    return target


def call_node(module: str, name: str, argument: str) -> dict:
    """A skops node that calls module.name(argument) when the file is loaded (skops' reduce loader)."""
    text = {"__class__": "str", "__module__": "builtins", "__loader__": "JsonNode", "content": json.dumps(argument)}
    text["is_json"] = True
    return {
        "__class__": name,
        "__module__": module,
        "__loader__": "ConstructorFromReduceNode",
        "content": {"__class__": "tuple", "__module__": "builtins", "__loader__": "TupleNode", "content": [text]},
    }


def plant(model_file: Path, node: dict) -> None:
    """Rewrite the skops file's schema so that the attacker's node is part of the pipeline's state."""
    with zipfile.ZipFile(model_file) as source:
        members = {name: source.read(name) for name in source.namelist()}
    schema = json.loads(members["schema.json"])
    # In place of the Pipeline's `memory` attribute (None): exec, eval and system all return a falsy value,
    # so the pipeline would load and serve normally after running the payload.
    schema["content"]["content"]["memory"] = node
    members["schema.json"] = json.dumps(schema).encode()
    with zipfile.ZipFile(model_file, "w") as target:
        for name, content in members.items():
            target.writestr(name, content)
    restamp(model_file.parent)


def restamp(bundle: Path) -> None:
    """What an attacker who can edit the bundle also does: fix the hash metadata.json carries."""
    metadata = json.loads((bundle / fmt.METADATA_FILE).read_text())
    metadata["model_sha256"] = bundle_digest.sha256_file(bundle / metadata["model_file"])
    (bundle / fmt.METADATA_FILE).write_text(json.dumps(metadata))


def payloads(marker: Path) -> dict[str, tuple[str, str, str]]:
    code = f"open({str(marker)!r}, 'w').write('pwned')"
    return {
        "exec": ("builtins", "exec", code),
        "eval": ("builtins", "eval", code),
        "os.system": ("os", "system", f"touch {marker}"),
    }


# --- 1. the skops loader instantiates only the types mlci's pipelines need -------------------------------


@pytest.mark.parametrize("payload", ["exec", "eval", "os.system"])
def test_a_skops_file_naming_code_is_refused_before_it_runs(sklearn_bundle, tmp_path, payload):
    marker = tmp_path / "marker"
    module, name, argument = payloads(marker)[payload]
    bundle = copy_bundle(sklearn_bundle, tmp_path)
    plant(bundle / fmt.SKLEARN_FILE, call_node(module, name, argument))
    assert f"{module}.{name}" in sio.get_untrusted_types(file=bundle / fmt.SKLEARN_FILE)

    served = serve_refused(bundle)
    assert served.returncode == 2, served.stderr
    assert f"{module}.{name}" in served.stderr and "Traceback" not in served.stderr
    assert not marker.exists(), "the attacker's code ran at mlci serve"

    entry = entry_refused(bundle, tmp_path)
    assert entry.returncode == 2, entry.stderr
    assert f"{module}.{name}" in entry.stderr and "Traceback" not in entry.stderr
    assert not marker.exists(), "the attacker's code ran at python -m api"


@pytest.mark.parametrize("estimator, params", SUPPORTED, ids=[e.rsplit(".", 1)[1] for e, _ in SUPPORTED])
def test_the_allow_list_covers_every_supported_pipeline(helpers, loans_config, tmp_path, estimator, params):
    """The exact list is what skops reports for the pipelines mlci builds; each one loads and predicts."""
    config = helpers.with_estimator(loans_config, estimator, params)
    fitted = helpers.fit(config)
    needed = set(sio.get_untrusted_types(data=sio.dumps(fitted.pipeline)))
    assert needed <= set(fmt.SKOPS_ALLOWED_TYPES), needed - set(fmt.SKOPS_ALLOWED_TYPES)
    sio.dump(fitted.pipeline, tmp_path / fmt.SKLEARN_FILE)
    runner = fmt.SklearnRunner(
        tmp_path / fmt.SKLEARN_FILE, [fmt.Feature(n, f.type) for n, f in config.data.features.items()]
    )
    assert list(runner.pipeline.classes_) == list(fitted.pipeline.classes_)


def test_the_allow_list_is_exact_names_not_prefixes():
    assert all(isinstance(t, str) and not t.endswith(".") for t in fmt.SKOPS_ALLOWED_TYPES)
    assert not any(t.startswith("builtins.") for t in fmt.SKOPS_ALLOWED_TYPES)
    assert not hasattr(fmt, "SKOPS_TRUSTED_PREFIXES")


# --- 2. the bundle digest comes from outside the bundle ------------------------------------------------


def edit_json(path: Path, change) -> None:
    document = json.loads(path.read_text())
    change(document)
    path.write_text(json.dumps(document))


def switch_format(bundle: Path) -> None:
    edit_json(bundle / fmt.METADATA_FILE, lambda m: m.update(format=fmt.FORMAT_SKLEARN))


def change_expected(bundle: Path) -> None:
    edit_json(bundle / fmt.REFERENCE_FILE, lambda r: r["expected"][0].update(label="someone else's"))


def append_to_model(bundle: Path) -> None:
    with (bundle / fmt.ONNX_FILE).open("ab") as handle:
        handle.write(b"\0")


def add_file(bundle: Path) -> None:
    (bundle / "sitecustomize.py").write_text("print('hello')\n")


def relist(bundle: Path) -> None:
    """An attacker who also rewrites SHA256SUMS to match the edited files."""
    switch_format(bundle)
    bundle_digest.write_manifest(bundle)


@pytest.mark.parametrize(
    "tamper, named",
    [
        (switch_format, "metadata.json differs"),
        (change_expected, "reference.json differs"),
        (append_to_model, "model.onnx differs"),
        (add_file, "sitecustomize.py was added"),
        (lambda b: (b / fmt.REFERENCE_FILE).unlink(), "reference.json is missing"),
        (relist, "SHA256SUMS"),
    ],
    ids=["metadata-format", "reference", "model", "extra-file", "missing-file", "relisted"],
)
def test_an_altered_bundle_is_refused_naming_the_file(demo_bundle, tmp_path, tamper, named):
    digest = bundle_digest.bundle_digest(demo_bundle)
    bundle = copy_bundle(demo_bundle, tmp_path)
    tamper(bundle)
    served = serve_refused(bundle, "--bundle-sha256", digest)
    assert served.returncode == 2, served.stderr
    assert named in served.stderr and "Traceback" not in served.stderr
    assert "altered or corrupt" in served.stderr


def test_the_container_entry_checks_the_digest_of_its_image(demo_bundle, tmp_path):
    digest = bundle_digest.bundle_digest(demo_bundle)
    bundle = copy_bundle(demo_bundle, tmp_path)
    switch_format(bundle)
    entry = entry_refused(bundle, tmp_path, MLCI_BUNDLE_SHA256=digest)
    assert entry.returncode == 2 and "metadata.json differs" in entry.stderr, entry.stderr


def test_a_digest_that_is_not_a_sha256_is_refused(demo_bundle):
    served = serve_refused(demo_bundle, "--bundle-sha256", "abc")
    assert served.returncode == 2 and "is not a sha256" in served.stderr, served.stderr


@pytest.mark.parametrize("checked", [True, False], ids=["with-digest", "local"])
def test_the_packaged_bundle_serves_and_says_whether_it_was_checked(demo_bundle, free_port, checked):
    digest = bundle_digest.bundle_digest(demo_bundle)
    assert (demo_bundle / bundle_digest.MANIFEST_FILE).read_text().count("\n") == 3  # every file is listed
    port = free_port()
    extra = ["--bundle-sha256", digest.upper()] if checked else []  # as a user may paste it
    env = {k: v for k, v in os.environ.items() if k != "MLCI_BUNDLE_SHA256"}
    process = subprocess.Popen(
        [str(MLCI), "serve", "--bundle", str(demo_bundle), "--port", str(port), *extra],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and process.poll() is None:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.3)
        else:
            pytest.fail("mlci serve did not become ready")
    finally:
        process.terminate()
        output = process.communicate(timeout=20)[0]
    header = " ".join(output.split())  # the console may wrap long lines
    if checked:
        assert f"bundle sha256 {digest} checked" in header
    else:
        assert "NOT checked (no --bundle-sha256: local use only)" in header


# --- 3. malformed metadata.json / reference.json: exit 2 naming the file and the key -------------------


def set_key(file: str, key: str, value) -> tuple[str, object]:
    return file, lambda document: document.__setitem__(key, value)


MALFORMED = {
    "classes-not-strings": (set_key(fmt.METADATA_FILE, "classes", [0, 1]), "metadata.json: key classes[0]"),
    "classes-not-a-list": (set_key(fmt.METADATA_FILE, "classes", "MB"), "metadata.json: key classes"),
    "features-not-objects": (set_key(fmt.METADATA_FILE, "features", ["mean_radius"]), "key features[0]"),
    "unknown-metadata-key": (set_key(fmt.METADATA_FILE, "loader", "pickle"), "metadata.json: key loader"),
    "model-file-elsewhere": (set_key(fmt.METADATA_FILE, "model_file", "../x.onnx"), "key model_file"),
    "records-not-a-list": (set_key(fmt.REFERENCE_FILE, "records", {"a": 1}), "reference.json: key records"),
    "records-not-objects": (set_key(fmt.REFERENCE_FILE, "records", [1, 2]), "reference.json: key records[0]"),
    "expected-missing-keys": (
        (fmt.REFERENCE_FILE, lambda r: r["expected"][0].pop("probabilities")),
        "reference.json: key expected[0].probabilities",
    ),
    "expected-unknown-class": (
        (fmt.REFERENCE_FILE, lambda r: r["expected"][0].update(label="X")),
        "reference.json: key expected[0].label",
    ),
    "record-missing-a-feature": (
        (fmt.REFERENCE_FILE, lambda r: r["records"][0].pop("mean_radius")),
        "reference.json: key records[0]",
    ),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_bundle_json_is_exit_2_naming_file_and_key(demo_bundle, tmp_path, case):
    (file, change), named = MALFORMED[case]
    bundle = copy_bundle(demo_bundle, tmp_path)
    edit_json(bundle / file, change)
    served = serve_refused(bundle)
    assert served.returncode == 2, served.stderr
    assert named in served.stderr, served.stderr
    assert "Traceback" not in served.stderr


@pytest.mark.parametrize(
    "content, named",
    [
        (lambda m: m + " " * (5 << 20), "at most"),  # a huge metadata.json is refused before it is read
        (lambda m: "[" * 200_000 + "]" * 200_000, "metadata.json"),  # nesting deep enough to crash a parser
        (lambda m: "[]", "metadata.json: key (top level)"),
    ],
    ids=["huge", "deep", "not-an-object"],
)
def test_oversized_or_odd_metadata_is_exit_2(demo_bundle, tmp_path, content, named):
    bundle = copy_bundle(demo_bundle, tmp_path)
    path = bundle / fmt.METADATA_FILE
    path.write_text(content(path.read_text()))
    served = serve_refused(bundle)
    assert served.returncode == 2, served.stderr
    assert named in served.stderr and "Traceback" not in served.stderr
