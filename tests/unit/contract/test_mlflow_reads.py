"""mlci.contract.mlflow_reads: the one redaction of a tracking URI, for mlci and the dashboard alike."""

from mlci.contract.mlflow_reads import apply_http_defaults, redact


def test_tracking_uri_password_is_never_shown():
    assert redact("https://alice:s3cret@mlflow.example:5000/path") == "https://alice:***@mlflow.example:5000/path"
    assert redact("https://alice:s3cret@mlflow.example/x") == "https://alice:***@mlflow.example/x"
    assert redact("sqlite:///tmp/mlflow.db") == "sqlite:///tmp/mlflow.db"


def test_only_the_password_is_redacted_and_the_host_kept_as_written():
    assert redact("https://u:p%40ss@h/x") == "https://u:***@h/x"
    assert redact("https://u@h:5000") == "https://u@h:5000"
    assert redact("http://u:secret@Host:5000/x") == "http://u:***@Host:5000/x"
    assert redact("http://u:secret@[::1]:5000/x") == "http://u:***@[::1]:5000/x"
    assert redact("sqlite:///tmp/mlflow.db") == "sqlite:///tmp/mlflow.db"


def test_the_http_defaults_never_override_the_operators_values():
    environ = {"MLFLOW_HTTP_REQUEST_TIMEOUT": "60"}
    apply_http_defaults(environ)
    assert environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "60"
    assert environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "2"
    assert environ["MLFLOW_ALLOW_PICKLE_DESERIALIZATION"] == "false"
