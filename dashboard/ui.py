"""What every page shares: the API client, the cached schema, the live-model watch, the banners.

Failures never reach the screen as a traceback: `guard` turns them into a banner (API down or slow:
what, where, and a retry button), and the app runs with `client.showErrorDetails = "none"` as a
second net.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

import streamlit as st

from mlci.core import env
from mlci.core.env import EnvError
from mlci.dashboard import core
from mlci.dashboard.client import ApiClient, ApiError, ApiRejected, ApiUnavailable, api_url

log = logging.getLogger("mlci.dashboard")
SCHEMA_TTL = 60  # seconds; also dropped at once when the served model changes


def refresh_seconds() -> float:
    """Seconds between live-model checks (MLCI_DASHBOARD_REFRESH, at least 0.5); a bad value is the default:
    a page never fails on it."""
    try:
        return max(0.5, env.DASHBOARD_REFRESH.get())
    except EnvError:
        return env.DASHBOARD_REFRESH.default


@st.cache_resource(show_spinner=False)
def _client(base_url: str) -> ApiClient:
    return ApiClient(base_url)


def client() -> ApiClient:
    return _client(api_url())


@st.cache_data(ttl=SCHEMA_TTL, show_spinner=False)
def _schema(base_url: str) -> dict[str, Any]:
    return _client(base_url).schema()


def schema() -> dict[str, Any]:
    """GET /schema, cached per API URL (errors are not cached: the next run asks again).

    When the live check of this same run found the API down, say so rather than show a form from a
    cached schema that cannot be answered.
    """
    error = st.session_state.get("mlci_api_error")
    if isinstance(error, ApiUnavailable):
        raise error
    return _schema(api_url())


# -- the live model -------------------------------------------------------------------------------
def observe(version: dict[str, Any]) -> dict[str, Any] | None:
    """Remember the served model; on a change, record it, drop the cached schema, and return the change."""
    key = core.model_key(version)
    seen = st.session_state.get("mlci_live_key")
    st.session_state["mlci_live_key"] = key
    st.session_state["mlci_live"] = version
    if seen is None or tuple(seen) == key:
        return None
    previous = st.session_state.get("mlci_live_previous") or {}
    change = {
        "from": core.describe(previous) if previous else f"v{seen[1]}",
        "to": core.describe(version),
        "at": datetime.now().strftime("%H:%M:%S"),
    }
    st.session_state["mlci_change"] = change
    _schema.clear()
    return change


def fetch_version() -> dict[str, Any]:
    version = client().version()
    previous = st.session_state.get("mlci_live")
    if previous is not None and core.model_key(previous) != core.model_key(version):
        st.session_state["mlci_live_previous"] = previous
    change = observe(version)
    if change:
        st.toast(f"Now serving {change['to']}", icon=":material/sync:")
    return version


def model_facts(name: str, version: str) -> dict[str, Any]:
    """GET /version of the model that answered (a regression's target range lives there): the live model's,
    read again if the API moved on since; {} when the API now serves another model."""

    def same(found: dict[str, Any]) -> bool:
        return (str(found.get("name")), str(found.get("version"))) == (str(name), str(version))

    live = st.session_state.get("mlci_live") or {}
    if same(live):
        return live
    try:
        found = fetch_version()
    except ApiError:
        return {}
    return found if same(found) else {}


def change_banner(key: str) -> None:
    change = st.session_state.get("mlci_change")
    if not change:
        return
    cols = st.columns([6, 1])
    cols[0].warning(
        f"**The served model changed** at {change['at']}: {change['from']} → **{change['to']}**", icon=":material/sync:"
    )
    cols[1].button("Dismiss", key=f"dismiss-{key}", on_click=lambda: st.session_state.pop("mlci_change", None))


@st.fragment(run_every=refresh_seconds())
def sidebar_badge() -> None:
    """The model the API serves right now, on every page; refreshed on its own (no page reload)."""
    try:
        version = fetch_version()
    except ApiError as error:
        st.session_state["mlci_api_error"] = error
        st.error(f"**API unavailable** — {error.message}", icon=":material/error:")
        st.caption(f"Retrying every {refresh_seconds():g} s")
        return
    if st.session_state.pop("mlci_api_error", None) is not None:
        # The API is back: rerun the whole page so whatever showed the outage banner recovers by itself.
        st.rerun()
    st.markdown(f"**Serving** `{version.get('name')}` **v{version.get('version')}**")
    st.caption(
        f"{version.get('colour')} slot · {version.get('environment')} · checked {datetime.now().strftime('%H:%M:%S')}"
    )
    change = st.session_state.get("mlci_change")
    if change:
        st.warning(f"Model changed at {change['at']}: now **{change['to']}**", icon=":material/sync:")


# -- banners and the guard --------------------------------------------------------------------------
def api_banner(error: ApiError, key: str = "retry") -> None:
    """The API is down, slow or not ready: say so, where, what to do, and offer a retry."""
    st.error(f"**The prediction API is unavailable.** {error.message}", icon=":material/error:")
    st.caption(
        f"API URL: `{api_url()}` (from MLCI_API_URL). The dashboard retries by itself every "
        f"{refresh_seconds():g} s; check that the API runs and answers GET /health."
    )
    if st.button("Retry now", key=key, type="primary"):
        st.rerun()


def guard(body: Callable[[], None], key: str = "page") -> None:
    """Run a page body; any failure becomes a banner, never a traceback."""
    try:
        body()
    except ApiUnavailable as error:
        api_banner(error, key=f"retry-{key}")
    except ApiRejected as error:
        st.error(
            f"**The API refused the request** ({error.status} {error.error}): {error.message}",
            icon=":material/warning:",
        )
    except ApiError as error:
        st.error(f"**The API failed**: {error.message}", icon=":material/error:")
        if st.button("Retry now", key=f"retry-{key}"):
            st.rerun()
    except Exception as error:
        log.exception("dashboard page %s failed", key)
        st.error(
            f"**Something went wrong on this page** ({type(error).__name__}: {error}). "
            "The details are in the dashboard's log.",
            icon=":material/error:",
        )
