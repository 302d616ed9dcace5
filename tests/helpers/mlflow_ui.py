"""The MLflow UI as `make mlflow-ui` starts it, and what a person does in it with a real browser: open a
run's page, its Artifacts tab, expand folders, open a file. What is checked is what the page renders
(text in the DOM), never the REST API behind it."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from tests.helpers.waiting import wait_until_answers

MLFLOW = Path(sys.executable).parent / "mlflow"
# The UI's bundle is megabytes of JavaScript and the box is shared: generous, but bounded.
TIMEOUT_MS = 60_000
NODE = '[data-testid="artifact-tree-node"]'


@contextlib.contextmanager
def mlflow_ui(root: Path, port: int) -> Iterator[str]:
    """`make mlflow-ui`'s server: `mlflow ui` on 127.0.0.1 with the project's sqlite store and no
    artifact option (the embedded store gave each experiment an absolute artifact location under
    .mlci/artifacts, which the server reads as it is). Stopped with its process group, always."""
    store = f"sqlite:///{root / '.mlci' / 'mlflow.db'}"
    log = root / ".mlci" / "mlflow-ui-test.log"
    args = [str(MLFLOW), "ui", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    args += ["--backend-store-uri", store]
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}
    with log.open("w") as out:
        process = subprocess.Popen(
            args,
            cwd=root,  # as make runs it: any default folder the server makes lands in the project
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,  # its own process group: the workers go with it
        )
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_answering(url, process, log)
        yield url
    finally:
        _stop(process)


def _wait_answering(url: str, process: subprocess.Popen, log: Path, seconds: float = 120) -> None:
    try:
        wait_until_answers(f"{url}/health", seconds, poll=0.5, process=process)
    except TimeoutError as error:
        raise AssertionError(f"mlflow ui: {error}\n{log.read_text()[-3000:]}") from None


def _stop(process: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=5)


def run_route(experiment_id: str, run_id: str, tab: str = "") -> str:
    """The UI's hash route of a run's page (MLflow 3: Routes.getRunPageRoute / getRunPageTabRoute)."""
    return f"/#/experiments/{experiment_id}/runs/{run_id}" + (f"/{tab}" if tab else "")


def tree_node(scope, name: str):
    """An artifact tree entry by its name (the UI labels each entry with its last path part)."""
    return scope.locator(_node(name))


def _node(name: str) -> str:
    return f'{NODE}[artifact-name="{name}"]'


def tree_item(scope, name: str):
    """The tree item (li) of entry `name` under `scope` (a page or a tree item): its node and, once a
    folder is expanded, its entries. The innermost li holding the node is its own; outer ones are its
    ancestors, which come first in the document."""
    page = getattr(scope, "page", scope)  # a Locator knows its page; a Page is its own
    return scope.locator("li").filter(has=page.locator(_node(name))).last


def expand(scope, name: str) -> list[str]:
    """Click folder `name` under `scope` open; the names the page then lists in it."""
    item = tree_item(scope, name)
    tree_node(item, name).first.click()
    # The listing arrives at once from the server: wait for its first entry, then read them all.
    item.locator(NODE).nth(1).wait_for(timeout=TIMEOUT_MS)
    return [text.strip() for text in item.locator(NODE).all_inner_texts()[1:]]
