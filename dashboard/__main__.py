"""`python -m dashboard`: the container's entry point. MLCI_API_URL (required: in a deployment, the
environment's router), MLCI_DASHBOARD_HOST (0.0.0.0) and MLCI_DASHBOARD_PORT (8501)."""

from __future__ import annotations

import os
import sys

from dashboard import launch
from dashboard.client import API_URL_ENV


def main() -> None:
    api_url = os.environ.get(API_URL_ENV, "")
    try:
        launch.run(
            api_url,
            int(os.environ.get("MLCI_DASHBOARD_PORT", "8501")),
            host=os.environ.get("MLCI_DASHBOARD_HOST", "0.0.0.0"),
        )
    except ValueError as error:
        sys.exit(f"cannot start the dashboard: {error} (set {API_URL_ENV} and MLCI_DASHBOARD_PORT)")


if __name__ == "__main__":
    main()
