# PostgreSQL 15 for the team MLflow server (docker/compose.team.yaml builds it; docker/team-stack.md).
#
#   docker build -f docker/postgres.Dockerfile .                      # on the official postgres image
#   docker build -f docker/postgres.Dockerfile \
#       --build-arg BASE_IMAGE=mlci-base/python:3.11-bookworm .       # offline: any Debian bookworm base
#
# One file, two bases, one contract (the official image's): POSTGRES_USER, POSTGRES_PASSWORD,
# POSTGRES_DB, PGDATA=/var/lib/postgresql/data, CMD ["postgres"], SIGINT for a fast shutdown.
# - On postgres:15-bookworm nothing is installed; docker/postgres/entrypoint.sh hands over to the
#   official docker-entrypoint.sh.
# - On a plain Debian bookworm base, postgresql-15 comes from Debian (+ security updates) and the
#   same entrypoint initialises the data directory itself on first start.
ARG BASE_IMAGE=postgres:15-bookworm
FROM ${BASE_IMAGE}

ARG PG_MAJOR=15
ENV PG_MAJOR=${PG_MAJOR} \
    PGDATA=/var/lib/postgresql/data \
    LANG=C.UTF-8 \
    PATH=/usr/lib/postgresql/${PG_MAJOR}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

# Debian's postgresql-common would create and start a "main" cluster at install time: disabled,
# the entrypoint owns the one cluster in $PGDATA. The LLVM JIT (130 MB: libLLVM + bitcode) is left
# out: MLflow's short queries never reach the JIT cost threshold, and without its provider
# PostgreSQL simply plans without JIT.
RUN set -eu; \
    if [ -x "/usr/lib/postgresql/$PG_MAJOR/bin/postgres" ]; then echo "postgres $PG_MAJOR already in the base"; exit 0; fi; \
    if ! grep -rqs 'bookworm-security' /etc/apt/sources.list /etc/apt/sources.list.d/; then \
        echo 'deb http://deb.debian.org/debian-security bookworm-security main' > /etc/apt/sources.list.d/mlci-security.list; \
    fi; \
    mkdir -p /etc/postgresql-common/createcluster.d; \
    echo 'create_main_cluster = false' > /etc/postgresql-common/createcluster.d/mlci.conf; \
    printf '%s\n' 'path-exclude /usr/lib/x86_64-linux-gnu/libLLVM-*' 'path-exclude /usr/lib/aarch64-linux-gnu/libLLVM-*' \
        'path-exclude /usr/lib/postgresql/*/lib/llvmjit*' 'path-exclude /usr/lib/postgresql/*/lib/bitcode/*' \
        > /etc/dpkg/dpkg.cfg.d/02-mlci-no-jit; \
    apt-get update; \
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "postgresql-$PG_MAJOR"; \
    rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/apt /var/log/dpkg.log; \
    mkdir -p "$PGDATA" /var/run/postgresql /docker-entrypoint-initdb.d; \
    chown -R postgres:postgres /var/lib/postgresql /var/run/postgresql; \
    chmod 700 "$PGDATA"; chmod 2775 /var/run/postgresql

COPY docker/postgres/entrypoint.sh /usr/local/bin/mlci-postgres-entrypoint.sh
RUN chmod 0755 /usr/local/bin/mlci-postgres-entrypoint.sh

VOLUME /var/lib/postgresql/data
EXPOSE 5432
STOPSIGNAL SIGINT
# Over TCP on purpose: during initialisation only the unix socket is up, so "healthy" means the
# real server accepts network clients.
HEALTHCHECK --interval=3s --timeout=3s --start-period=10s --retries=10 \
    CMD pg_isready -q -h 127.0.0.1 -p 5432 -U "${POSTGRES_USER:-postgres}" -d "${POSTGRES_DB:-${POSTGRES_USER:-postgres}}" || exit 1
ENTRYPOINT ["/usr/local/bin/mlci-postgres-entrypoint.sh"]
CMD ["postgres"]

ARG BASE_IMAGE
ARG REVISION=unknown
ARG CREATED=unknown
ARG SOURCE=unknown
ARG VERSION=unknown
LABEL org.opencontainers.image.title="mlci team PostgreSQL (MLflow backend store)" \
      org.opencontainers.image.base.name="${BASE_IMAGE}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.version="${VERSION}"
