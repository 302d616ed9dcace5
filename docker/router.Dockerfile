# The environment's Nginx router: one per environment, in front of the blue and green slots.
# The live colour is chosen by a symlink in the shared /run/mlci volume (live.sock -> blue.sock
# or green.sock), so a switch needs no reload; see docs/deploy.md.
#
#   docker build -f docker/router.Dockerfile --build-arg BASE_IMAGE=mlci-base/nginx:bookworm .
ARG BASE_IMAGE=nginx:1.26-bookworm
FROM ${BASE_IMAGE}
RUN set -eu; \
    groupadd --gid 10001 mlci; \
    useradd --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin mlci; \
    mkdir -p /run/mlci /etc/mlci; chown 10001:10001 /run/mlci /etc/mlci; \
    rm -f /etc/nginx/conf.d/default.conf /etc/nginx/sites-enabled/default
COPY docker/router/nginx.conf /etc/nginx/nginx.conf
COPY --chown=10001:10001 docker/router/router.conf /etc/mlci/router.conf
COPY docker/router/entrypoint.sh /usr/local/bin/mlci-router
USER 10001:10001
EXPOSE 8080 8081
STOPSIGNAL SIGQUIT
HEALTHCHECK --interval=5s --timeout=3s --retries=3 CMD ["sh", "-c", "kill -0 $(cat /tmp/nginx.pid)"]
ENTRYPOINT ["/usr/local/bin/mlci-router"]
ARG REVISION=unknown
ARG CREATED=unknown
ARG SOURCE=unknown
ARG VERSION=unknown
LABEL org.opencontainers.image.title="mlci router" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.version="${VERSION}"
