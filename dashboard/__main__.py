"""`python -m mlci.dashboard`: the container's entry point. MLCI_API_URL (required: in a deployment, the
environment's router), MLCI_DASHBOARD_HOST (0.0.0.0) and MLCI_DASHBOARD_PORT (8501)."""

from __future__ import annotations

import sys
from typing import NoReturn

from mlci.core import env
from mlci.core.env import EnvError
from mlci.dashboard import launch
from mlci.dashboard.client import API_URL_ENV

PORT_ENV = env.DASHBOARD_PORT.name


def fail(problem: str) -> NoReturn:
    """A bad environment is the operator's to fix: say what and how, exit 2, no traceback."""
    print(f"cannot start the dashboard: {problem}", file=sys.stderr)
    print(
        f"hint: set {API_URL_ENV} (e.g. http://router:8080) and {PORT_ENV} (1-65535) in its environment",
        file=sys.stderr,
    )
    sys.exit(2)


def main() -> None:
    try:
        api_url, port, host = env.API_URL.get(), env.DASHBOARD_PORT.get(), env.DASHBOARD_HOST.get()
    except EnvError as error:
        fail(error.message)
    if not api_url:
        fail(f"{API_URL_ENV} is not set (the URL of the prediction API, in a deployment its environment's router)")
    try:
        launch.run(api_url, port, host=host)
    except ValueError as error:
        fail(str(error))


if __name__ == "__main__":
    main()
