"""mlci.core.reports: reports/*.json encoding."""

import json
from pathlib import Path

import numpy as np
import pytest

from mlci.core import config as config_module
from mlci.core import reports


def test_reports_encode_paths_and_numpy_scalars_and_refuse_the_rest(project):
    config = config_module.load(project.config_file)
    path = reports.write(config, "example", {"where": Path("a/b"), "score": np.float64(0.5), "n": np.int64(3)})
    assert json.loads(path.read_text()) == {"where": "a/b", "score": 0.5, "n": 3}
    assert reports.read(config, "example")["n"] == 3 and reports.read(config, "missing") is None
    with pytest.raises(TypeError, match="not JSON serialisable: object"):
        reports.write(config, "bad", {"x": object()})
