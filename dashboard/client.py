"""The prediction API, as the dashboard sees it: the only source of predictions and model facts.

No Streamlit here (the pages wrap it): an httpx client with short timeouts and typed errors, so a
page can tell "the API is down or slow" (show a banner, retry) from "the API refused these records"
(show its message next to the field it names).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from mlci.core import env

API_URL_ENV = env.API_URL.name
DEFAULT_API_URL = "http://127.0.0.1:8000"
CONNECT_TIMEOUT = 2.0  # the API is local or behind the environment's router: it connects fast or not at all
READ_TIMEOUT = 5.0  # /version, /schema, one record
PREDICT_TIMEOUT = 30.0  # a batch chunk of up to max_batch records
MAX_METRICS_BYTES = 4 << 20  # a /metrics text larger than this is not the API's (it exports a few hundred lines)


def api_url(environ: Mapping[str, str] | None = None) -> str:
    """The API base URL from MLCI_API_URL (the environment's router in a deployment); EnvError when it is
    not an http(s) URL."""
    return env.API_URL.get(environ) or DEFAULT_API_URL


class ApiError(Exception):
    """Anything that went wrong talking to the API; `message` is fit for the screen."""

    def __init__(self, message: str, *, url: str = ""):
        super().__init__(message)
        self.message = message
        self.url = url


class ApiUnavailable(ApiError):
    """The API did not answer: refused, unresolvable, timed out, not ready (503), or down behind its
    router (502, 504)."""


class ApiServerError(ApiError):
    """The API answered 5xx (other than 503) or something that is not the expected JSON."""


@dataclass(frozen=True)
class FieldProblem:
    record: int | None
    field: str | None
    problem: str


class ApiRejected(ApiError):
    """A 4xx: the API refused the request; `details` name the record index and the field."""

    def __init__(
        self,
        message: str,
        *,
        status: int = 400,
        error: str = "invalid_input",
        request_id: str = "",
        details: list[FieldProblem] | None = None,
        url: str = "",
    ):
        super().__init__(message, url=url)
        self.status = status
        self.error = error
        self.request_id = request_id
        self.details = list(details or [])

    def by_field(self, record: int | None = 0) -> dict[str, list[str]]:
        """field -> problems for one record (the form's), plus '' for problems that name no field."""
        out: dict[str, list[str]] = {}
        for d in self.details:
            if record is not None and d.record not in (record, None):
                continue
            out.setdefault(d.field or "", []).append(d.problem)
        return out


@dataclass(frozen=True)
class Prediction:
    """One record's answer: a classifier's label and class probabilities, or a regression's value."""

    label: str = ""
    probabilities: dict[str, float] = field(default_factory=dict)
    value: float | None = None  # a regression's predicted number (then no label, no probabilities)

    @property
    def is_value(self) -> bool:
        return self.value is not None


def prediction(answer: dict[str, Any]) -> Prediction:
    """An answer of POST /predict, for either task (mlci.contract.answers: {"value"} or {"label", "probabilities"})."""
    if "value" in answer:
        return Prediction(value=float(answer["value"]))
    return Prediction(
        label=str(answer["label"]), probabilities={str(k): float(v) for k, v in answer["probabilities"].items()}
    )


@dataclass(frozen=True)
class PredictResult:
    model_name: str
    model_version: str
    request_id: str
    predictions: list[Prediction]


class ApiClient:
    """Thin typed wrapper over the API's endpoints. Thread-safe (one httpx.Client, pooled)."""

    def __init__(
        self,
        base_url: str | None = None,
        *,
        connect_timeout: float | None = None,
        read_timeout: float | None = None,
        predict_timeout: float | None = None,
        transport: httpx.BaseTransport | None = None,
    ):
        self.base_url = (base_url or api_url()).rstrip("/")
        connect_timeout = CONNECT_TIMEOUT if connect_timeout is None else connect_timeout
        read_timeout = READ_TIMEOUT if read_timeout is None else read_timeout
        predict_timeout = PREDICT_TIMEOUT if predict_timeout is None else predict_timeout
        self.timeout = httpx.Timeout(read_timeout, connect=connect_timeout)
        self.predict_timeout = httpx.Timeout(predict_timeout, connect=connect_timeout)
        self._http = httpx.Client(
            base_url=self.base_url,
            timeout=self.timeout,
            transport=transport,
            headers={"user-agent": "mlci-dashboard"},
            follow_redirects=False,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- transport -------------------------------------------------------------------------------
    def _request(
        self, method: str, path: str, *, json: Any = None, timeout: httpx.Timeout | None = None, retries: int = 1
    ) -> httpx.Response:
        url = f"{self.base_url}{path}"
        attempt = 0
        while True:
            try:
                return self._http.request(method, path, json=json, timeout=timeout or self.timeout)
            except httpx.TimeoutException as error:
                raise ApiUnavailable(
                    f"the API at {self.base_url} is too slow: no answer to {method} {path} "
                    f"within the timeout ({type(error).__name__})",
                    url=url,
                ) from None
            except httpx.TransportError as error:
                # A pooled keep-alive connection to a process that has just been replaced (blue/green
                # switch) fails once; a GET is safe to repeat at once on a fresh connection.
                if attempt < retries and method == "GET":
                    attempt += 1
                    continue
                raise ApiUnavailable(
                    f"cannot reach the API at {self.base_url} ({type(error).__name__}: {error or 'connection failed'})",
                    url=url,
                ) from None

    def _json(self, response: httpx.Response) -> Any:
        url = str(response.request.url)
        status = response.status_code
        try:
            body = response.json()
        except ValueError:
            body = None
        if status in (502, 504):
            # In a deployment the dashboard talks to the environment's router: these say the slot behind
            # it is down or silent, which is the API being unavailable, not the API failing.
            raise ApiUnavailable(
                f"the router at {self.base_url} cannot reach the API behind it ({status} {response.reason_phrase})",
                url=url,
            )
        if status == 503:
            # `reason` from the API's /ready, `message` from its errors, `detail` from the router's placeholder
            fields = ("reason", "message", "detail")
            reason = next((body[k] for k in fields if body.get(k)), None) if isinstance(body, dict) else None
            raise ApiUnavailable(
                f"the API at {self.base_url} is not ready" + (f": {reason}" if reason else ""), url=url
            )
        if 400 <= status < 500:
            body = body if isinstance(body, dict) else {}
            details = [
                FieldProblem(record=d.get("record"), field=d.get("field"), problem=str(d.get("problem", "")))
                for d in body.get("details") or []
                if isinstance(d, dict)
            ]
            raise ApiRejected(
                str(body.get("message") or f"HTTP {status}"),
                status=status,
                error=str(body.get("error") or "http_error"),
                request_id=str(body.get("request_id") or response.headers.get("x-request-id", "")),
                details=details,
                url=url,
            )
        if status >= 500:
            message = body.get("message") if isinstance(body, dict) else None
            rid = response.headers.get("x-request-id", "")
            raise ApiServerError(
                f"the API answered {status}"
                + (f": {message}" if message else "")
                + (f" (request id {rid})" if rid else ""),
                url=url,
            )
        if body is None:
            # Typically another service on that URL (a dashboard answers every path with its page).
            raise ApiServerError(
                f"the API at {self.base_url} answered {status} with a body that is not JSON: "
                f"is {API_URL_ENV} the prediction API's URL?",
                url=url,
            )
        return body

    # -- endpoints -------------------------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        return self._json(self._request("GET", "/health"))

    def ready(self) -> dict[str, Any]:
        return self._json(self._request("GET", "/ready"))

    def version(self) -> dict[str, Any]:
        """Bundle metadata plus `colour` and `environment`."""
        body = self._json(self._request("GET", "/version"))
        if not isinstance(body, dict) or "version" not in body:
            raise ApiServerError(f"GET /version at {self.base_url} did not return model metadata")
        return body

    def schema(self) -> dict[str, Any]:
        """Features (name, type, min, max, categories, nullable), task, classes, example record, max_batch."""
        body = self._json(self._request("GET", "/schema"))
        if not isinstance(body, dict) or not isinstance(body.get("features"), list):
            raise ApiServerError(f"GET /schema at {self.base_url} did not return a feature schema")
        return body

    def drift(self) -> dict[str, Any]:
        """Input drift per feature (PSI against training, threshold, drifted), summed over the API's workers."""
        body = self._json(self._request("GET", "/drift"))
        if not isinstance(body, dict) or not isinstance(body.get("available"), bool):
            raise ApiServerError(f"GET /drift at {self.base_url} did not return a drift report")
        return body

    def metrics(self) -> str:
        """GET /metrics: the Prometheus text, summed over the API's workers (bounded in size)."""
        response = self._request("GET", "/metrics")
        if response.status_code != 200:
            self._json(response)  # raises the error that status means (unavailable, refused, failed)
        content_type = response.headers.get("content-type", "")
        if not content_type.startswith("text/plain") or len(response.content) > MAX_METRICS_BYTES:
            raise ApiServerError(
                f"GET /metrics at {self.base_url} did not return Prometheus metrics "
                f"({content_type or 'no content type'}, {len(response.content)} bytes)",
                url=str(response.request.url),
            )
        return response.text

    def predict(self, records: list[dict[str, Any]]) -> PredictResult:
        body = self._json(
            self._request("POST", "/predict", json={"records": records}, timeout=self.predict_timeout, retries=0)
        )
        model = body.get("model") or {}
        return PredictResult(
            model_name=str(model.get("name", "")),
            model_version=str(model.get("version", "")),
            request_id=str(body.get("request_id", "")),
            predictions=[prediction(p) for p in body.get("predictions", [])],
        )
