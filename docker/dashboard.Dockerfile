# The Streamlit dashboard. It holds no model: it follows whatever the environment's router serves
# (MLCI_API_URL), so a blue/green switch shows up in it without a redeploy.
#
#   mlci build    # assembles build/context/dashboard/ (this file, the lock, mlci.dashboard, mlci.contract,
#                 # mlci.core, the wheelhouse) and builds this image
ARG BASE_IMAGE=python:3.11-slim-bookworm

FROM ${BASE_IMAGE} AS deps
ARG PIP_INDEX_URL=
COPY requirements/dashboard.txt /tmp/requirements.txt
COPY build/wheelhouse/dashboard/ /tmp/wheelhouse/
# Exactly the locked files: --no-deps (a fully pinned lock needs no resolution; an older pip would
# reach for a newer release of a dependency required with an extra), then pip check (the lock is
# consistent) while pip is still there.
RUN set -eu; \
    if [ -n "$PIP_INDEX_URL" ]; then source="--index-url $PIP_INDEX_URL"; \
    else source="--no-index --find-links /tmp/wheelhouse"; fi; \
    python3 -m venv /opt/venv; \
    /opt/venv/bin/pip install --no-cache-dir --disable-pip-version-check --require-hashes --only-binary=:all: \
        --no-deps $source -r /tmp/requirements.txt; \
    /opt/venv/bin/pip check; \
    /opt/venv/bin/pip uninstall -y -q pip; \
    find /opt/venv -depth \( -name tests -o -name __pycache__ \) -type d -path '*/site-packages/*' -exec rm -rf {} +; \
    python3 -m compileall -q -j 0 /opt/venv/lib

FROM ${BASE_IMAGE}
RUN set -eu; groupadd --gid 10001 mlci; \
    useradd --uid 10001 --gid 10001 --no-create-home --home-dir /tmp --shell /usr/sbin/nologin mlci
COPY --from=deps /opt/venv /opt/venv
# mlci.dashboard with the contract and core it imports, no training code (the Models page reads MLflow
# through mlflow-skinny).
COPY mlci/ /app/mlci/
RUN python3 -m compileall -q /app
ENV PATH=/opt/venv/bin:/usr/local/bin:/usr/bin:/bin \
    PYTHONPATH=/app \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    MLFLOW_DISABLE_TELEMETRY=true \
    MLCI_DASHBOARD_PORT=8501
WORKDIR /app
USER 10001:10001
EXPOSE 8501
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python3", "-c", "import urllib.request, sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8501/_stcore/health', timeout=2).status != 200)"]
CMD ["python3", "-m", "mlci.dashboard"]
ARG REVISION=unknown
ARG CREATED=unknown
ARG SOURCE=unknown
ARG VERSION=unknown
LABEL org.opencontainers.image.title="mlci dashboard" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.version="${VERSION}"
