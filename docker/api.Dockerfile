# The prediction API with one model bundle baked in (immutable: a new model is a new image).
#
#   mlci build    # packages the model, assembles build/context/api/ (this file, the lock, the mlci.api,
#                 # mlci.contract and mlci.core packages, the bundle, the wheelhouse) and builds this image
#
# BUNDLE_SHA256 is the bundle digest recorded in the registry by mlci package (never recomputed from the
# files baked here): the image carries it as a label and as MLCI_BUNDLE_SHA256, and the API refuses to
# start on a bundle whose files do not have it.
#
# Python packages come from requirements/api.txt (hashes checked) through PIP_INDEX_URL (a
# corporate mirror) or, when it is empty, from build/wheelhouse/api (no network inside the build).
ARG BASE_IMAGE=python:3.11-slim-bookworm

FROM ${BASE_IMAGE} AS deps
ARG PIP_INDEX_URL=
COPY requirements/api.txt /tmp/requirements.txt
COPY build/wheelhouse/api/ /tmp/wheelhouse/
# One venv, then trim what a server never reads: pip itself, tests, caches.
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
    find /opt/venv -depth \( -name tests -o -name testing -o -name __pycache__ \) -type d \
        -path '*/site-packages/*' -exec rm -rf {} +; \
    rm -rf /opt/venv/lib/python3*/site-packages/onnxruntime/tools \
           /opt/venv/lib/python3*/site-packages/onnxruntime/transformers \
           /opt/venv/lib/python3*/site-packages/onnxruntime/quantization; \
    python3 -m compileall -q -j 0 /opt/venv/lib

FROM ${BASE_IMAGE}
RUN set -eu; groupadd --gid 10001 mlci; \
    useradd --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin mlci; \
    mkdir -p /run/mlci; chown 10001:10001 /run/mlci
COPY --from=deps /opt/venv /opt/venv
# mlci's serving side only: mlci.api, the bundle contract and core (no training code: no ml/ stages).
COPY mlci/ /app/mlci/
RUN python3 -m compileall -q /app/mlci
ENV PATH=/opt/venv/bin:/usr/local/bin:/usr/bin:/bin \
    PYTHONPATH=/app \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    MLCI_BUNDLE=/app/bundle \
    MLCI_HOST=0.0.0.0 \
    MLCI_PORT=8000
WORKDIR /app
USER 10001:10001
EXPOSE 8000
# Works read-only: nothing is written outside /run/mlci (a volume when serving on a unix socket) and,
# with MLCI_WORKERS > 1, /tmp (the metrics files the workers share; the slots mount a tmpfs there).
HEALTHCHECK --interval=5s --timeout=3s --start-period=3s --retries=3 CMD ["python3", "-m", "mlci.api.healthcheck"]
CMD ["python3", "-m", "mlci.api"]

# Last, so that a model-only change rebuilds only this layer and the labels.
COPY build/bundle/ /app/bundle/
ARG REVISION=unknown
ARG CREATED=unknown
ARG SOURCE=unknown
ARG VERSION=unknown
ARG MODEL_NAME=unknown
ARG MODEL_VERSION=unknown
ARG RUN_ID=unknown
ARG DATA_SHA256=unknown
ARG BUNDLE_SHA256=
ENV MLCI_BUNDLE_SHA256=${BUNDLE_SHA256}
LABEL org.opencontainers.image.title="mlci prediction API" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.version="${VERSION}" \
      io.mlci.model.name="${MODEL_NAME}" \
      io.mlci.model.version="${MODEL_VERSION}" \
      io.mlci.model.run_id="${RUN_ID}" \
      io.mlci.data.sha256="${DATA_SHA256}" \
      io.mlci.bundle.sha256="${BUNDLE_SHA256}"
