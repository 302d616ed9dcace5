# The team's MLflow tracking server: PostgreSQL backend store, artifacts proxied by the server
# (clients only need the tracking URI, never a bucket or a shared disk). Run by compose.team.yaml.
#
#   docker build -f docker/mlflow.Dockerfile .                                  # python:3.11-slim-bookworm
#   docker build -f docker/mlflow.Dockerfile --build-arg BASE_IMAGE=mlci-base/python:3.11-bookworm .
#
# Python packages come from requirements/server.txt (hashes checked) through PIP_INDEX_URL (a
# corporate mirror) or, when it is empty, from build/wheelhouse/server (no network inside the build):
#   pip download --require-hashes --only-binary=:all: --no-deps -r requirements/server.txt -d build/wheelhouse/server
#
# Runtime settings are MLflow's own environment variables, so an operator overrides any of them
# without a new image: MLFLOW_BACKEND_STORE_URI (postgresql+psycopg2://user@host:5432/db: the lock
# ships psycopg2, and SQLAlchemy 2.1 maps a bare postgresql:// to psycopg 3; the password comes from
# PGPASSWORD, which libpq reads, so it never appears in a URI or a log line),
# MLFLOW_ARTIFACTS_DESTINATION, MLFLOW_WORKERS, MLFLOW_SERVER_ALLOWED_HOSTS,
# MLFLOW_SERVER_CORS_ALLOWED_ORIGINS (empty: MLflow's defaults, localhost and private addresses).
ARG BASE_IMAGE=python:3.11-slim-bookworm

FROM ${BASE_IMAGE} AS deps
ARG PIP_INDEX_URL=
COPY requirements/server.txt /tmp/requirements.txt
COPY build/wheelhouse/server/ /tmp/wheelhouse/
# One venv, then trim what a server never reads: pip itself, test suites, caches.
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
    find /opt/venv -depth \( -name tests -o -name __pycache__ \) -type d \
        -path '*/site-packages/*' -exec rm -rf {} +; \
    python3 -m compileall -q -j 0 /opt/venv/lib

FROM ${BASE_IMAGE}
RUN set -eu; groupadd --gid 10001 mlflow; \
    useradd --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin mlflow; \
    mkdir -p /mlflow/artifacts /mlflow/tmp; chown -R 10001:10001 /mlflow
COPY --from=deps /opt/venv /opt/venv
# MLflow 3's job runner (GenAI evaluation jobs, trace roll-ups) starts two huey consumers of 5 workers
# each that poll all the time; mlci tracks runs and models and runs no jobs: off (set it to true in
# compose.team.yaml's environment to have them).
ENV PATH=/opt/venv/bin:/usr/local/bin:/usr/bin:/bin \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/mlflow/tmp \
    TMPDIR=/mlflow/tmp \
    MLFLOW_DISABLE_TELEMETRY=true \
    TINI_KILL_PROCESS_GROUP=1 \
    DO_NOT_TRACK=true \
    MLFLOW_HOST=0.0.0.0 \
    MLFLOW_PORT=5000 \
    MLFLOW_WORKERS=2 \
    MLFLOW_SERVE_ARTIFACTS=true \
    MLFLOW_ARTIFACTS_DESTINATION=/mlflow/artifacts \
    MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false
WORKDIR /mlflow
USER 10001:10001
# The artifacts live in a volume (compose.team.yaml: a named volume); a new named volume takes
# this directory's ownership (uid 10001).
VOLUME /mlflow/artifacts
EXPOSE 5000
# /health is exempt from MLflow's Host-header check; 127.0.0.1 is in its default allow-list anyway.
HEALTHCHECK --interval=5s --timeout=4s --start-period=90s --retries=5 \
    CMD ["python3", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('MLFLOW_PORT', '5000'), timeout=3).read()"]
# Run it with an init (compose: `init: true`; docker run --init): tini, told by
# TINI_KILL_PROCESS_GROUP to signal the whole group, stops the server and its job runner at once.
# The store URI is required: without it MLflow would fall back to a SQLite file in the container.
CMD ["sh", "-c", "if [ -z \"${MLFLOW_BACKEND_STORE_URI:-}\" ]; then echo 'mlflow: set MLFLOW_BACKEND_STORE_URI=postgresql+psycopg2://USER@HOST:5432/DB (password in PGPASSWORD)' >&2; exit 2; fi; exec mlflow server"]

ARG BASE_IMAGE
ARG REVISION=unknown
ARG CREATED=unknown
ARG SOURCE=unknown
ARG VERSION=unknown
LABEL org.opencontainers.image.title="mlci team MLflow tracking server" \
      org.opencontainers.image.description="MLflow tracking server: PostgreSQL backend store, proxied artifacts" \
      org.opencontainers.image.base.name="${BASE_IMAGE}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.version="${VERSION}"
