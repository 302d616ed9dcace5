"""What a deploy, rollback or status command loads: never the training stack. Agents run these commands
in every build, ops run them at 3 a.m.; scikit-learn and the packaging code cost a second a call."""

from __future__ import annotations

import subprocess
import sys

DEPLOY_SIDE = ("mlci.cli.main", "mlci.deploy.orchestrate", "mlci.flow.status", "mlci.ship.images", "mlci.deploy.pull")


def test_the_deploy_side_never_imports_the_training_stack():
    script = (
        "import sys\n"
        + "".join(f"import {module}\n" for module in DEPLOY_SIDE)
        + "print(sorted(m for m in sys.modules if m.split('.')[0] == 'sklearn' or m.startswith('mlci.learn')"
        " or m == 'mlci.ship.package'))\n"
    )
    loaded = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "[]", loaded
