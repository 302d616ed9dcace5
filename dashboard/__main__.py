"""`python -m dashboard`: the container's entry point. MLCI_API_URL (required: in a deployment, the
environment's router), MLCI_DASHBOARD_HOST (0.0.0.0) and MLCI_DASHBOARD_PORT (8501)."""

from __future__ import annotations

import os
import sys

from dashboard import launch
from dashboard.client import API_URL_ENV

PORT_ENV = "MLCI_DASHBOARD_PORT"


def fail(problem: str) -> None:
    """A bad environment is the operator's to fix: say what and how, exit 2, no traceback."""
    print(f"cannot start the dashboard: {problem}", file=sys.stderr)
    print(
        f"hint: set {API_URL_ENV} (e.g. http://router:8080) and {PORT_ENV} (1-65535) in its environment",
        file=sys.stderr,
    )
    sys.exit(2)


def main() -> None:
    api_url = os.environ.get(API_URL_ENV, "").strip()
    port = os.environ.get(PORT_ENV, "8501").strip()
    if not api_url:
        fail(f"{API_URL_ENV} is not set (the URL of the prediction API, in a deployment its environment's router)")
    if not port.isdigit():
        fail(f"{PORT_ENV} must be a port number, got {port!r}")
    try:
        launch.run(api_url, int(port), host=os.environ.get("MLCI_DASHBOARD_HOST", "0.0.0.0"))
    except ValueError as error:
        fail(str(error))


if __name__ == "__main__":
    main()
