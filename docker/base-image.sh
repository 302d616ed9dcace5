#!/usr/bin/env bash
# Builds local Debian bookworm base images with debootstrap + `docker import`, for machines that
# cannot pull from a registry (air-gapped agents, this project's CI). Only Debian's package
# mirror is needed. The Dockerfiles take these through BASE_IMAGE; their defaults remain the
# public images a corporate user pulls (python:3.11-slim-bookworm, nginx:1.22-bookworm-ish).
#
#   docker/base-image.sh python   -> mlci-base/python:3.11-bookworm  (python3.11 + venv)
#   docker/base-image.sh nginx    -> mlci-base/nginx:bookworm        (nginx-light)
#   docker/base-image.sh all
#
# Env: DEBIAN_MIRROR (default http://deb.debian.org/debian), MLCI_BASE_FORCE=1 to rebuild.
set -euo pipefail

MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
SUITE=bookworm
PYTHON_TAG="${MLCI_PYTHON_BASE:-mlci-base/python:3.11-bookworm}"
NGINX_TAG="${MLCI_NGINX_BASE:-mlci-base/nginx:bookworm}"

log() { echo "base-image: $*"; }

# One builder at a time on this machine (two test workers, or a demo and a test, may ask at once): the
# second waits, then finds the images built.
LOCK_FILE="${TMPDIR:-/tmp}/mlci-base-image.lock"
exec 8>"$LOCK_FILE"
if command -v flock >/dev/null 2>&1 && ! flock -n 8; then
  log "waiting for another build of the base images (lock $LOCK_FILE)"
  flock 8
fi

need() {
  if ! command -v "$1" >/dev/null 2>&1; then
    echo "error: $1 is required; install it with: apt-get install $2" >&2
    exit 2
  fi
}

# Trim what a runtime image never reads: docs, man pages, locales, apt lists and caches.
trim() {
  local root=$1
  rm -rf "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/* \
         "$root"/usr/share/lintian "$root"/usr/share/linda "$root"/var/cache/debconf/*-old \
         "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb \
         "$root"/var/log/* "$root"/tmp/* "$root"/root/.cache
  find "$root"/usr/share/locale -mindepth 1 -maxdepth 1 ! -name 'locale.alias' -exec rm -rf {} + 2>/dev/null || true
  find "$root"/usr/lib/python3* -name '__pycache__' -type d -prune -exec rm -rf {} + 2>/dev/null || true
  # Keep dpkg's record of what was trimmed from being restored later.
  mkdir -p "$root"/etc/dpkg/dpkg.cfg.d
  printf 'path-exclude /usr/share/doc/*\npath-exclude /usr/share/man/*\npath-exclude /usr/share/locale/*\n' \
    > "$root"/etc/dpkg/dpkg.cfg.d/01-mlci-slim
}

build() {
  local tag=$1 include=$2; shift 2
  if [ -z "${MLCI_BASE_FORCE:-}" ] && docker image inspect "$tag" >/dev/null 2>&1; then
    log "$tag already exists (MLCI_BASE_FORCE=1 rebuilds it)"
    return
  fi
  local root
  root="$(mktemp -d /tmp/mlci-rootfs.XXXXXX)"
  trap 'rm -rf "$root"' RETURN
  log "debootstrap $SUITE (minbase + $include) from $MIRROR"
  debootstrap --variant=minbase --include="$include" "$SUITE" "$root" "$MIRROR" >"$root.log" 2>&1 || {
    tail -n 20 "$root.log" >&2; echo "error: debootstrap failed (log $root.log)" >&2; exit 3; }
  rm -f "$root.log"
  trim "$root"
  log "importing as $tag"
  tar -C "$root" -c . | docker import "$@" - "$tag" >/dev/null
  log "$tag: $(docker image inspect -f '{{.Size}}' "$tag" | awk '{printf "%.0f MB", $1/1e6}')"
}

need debootstrap debootstrap
need docker docker.io
docker info >/dev/null 2>&1 || { echo "error: no Docker engine answers (docker info); start one (.ci/start-docker)" >&2; exit 3; }

what="${1:-all}"
case "$what" in
  python|all)
    build "$PYTHON_TAG" python3,python3-venv,ca-certificates \
      --change 'ENV LANG=C.UTF-8 PYTHONDONTWRITEBYTECODE=1' --change 'CMD ["python3"]' ;;&
  nginx|all)
    build "$NGINX_TAG" nginx-light,ca-certificates \
      --change 'ENV LANG=C.UTF-8' --change 'CMD ["nginx", "-g", "daemon off;"]' ;;
  python) ;;
  *) echo "usage: $0 [python|nginx|all]" >&2; exit 2 ;;
esac
