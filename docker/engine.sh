#!/usr/bin/env bash
# Makes sure a Docker engine answers: installs Debian's docker.io when run as root and it is
# missing, starts dockerd when none runs (no systemd in CI containers: dockerd directly);
# otherwise says how. Used by `make demo` and CI's .ci/setup-machine.
set -euo pipefail
missing=()
if ! command -v dockerd >/dev/null 2>&1 && ! docker info >/dev/null 2>&1; then missing+=(docker.io); fi
# debootstrap builds the local base images (docker/base-image.sh) where no registry is reachable.
command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "engine: installing Debian's ${missing[*]}"
    apt-get -o DPkg::Lock::Timeout=600 update -qq
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends \
      "${missing[@]}" >/dev/null
  else
    echo "error: missing ${missing[*]}; install with: sudo apt-get install ${missing[*]} (or set DOCKER_HOST)" >&2
    exit 3
  fi
fi
if docker info >/dev/null 2>&1; then
  echo "engine: already running ($(docker version -f '{{.Server.Version}}'))"
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "error: no Docker engine answers and starting one needs root; start it with: sudo dockerd &" >&2
  exit 3
fi
dockerd_bin=$(command -v dockerd || echo /usr/sbin/dockerd)
log=/var/log/mlci-dockerd.log
echo "engine: starting $dockerd_bin (log $log)"
# Its own session (setsid): a daemon must not share the process group of whoever started it, or a
# Ctrl-C in `make demo`, or a CI step that ends its process group, takes the engine down with it.
# The log is appended: the end of the previous run says why it stopped.
setsid nohup "$dockerd_bin" >>"$log" 2>&1 </dev/null &
for _ in $(seq 1 60); do
  docker info >/dev/null 2>&1 && { echo "engine: $(docker version -f '{{.Server.Version}}') ready"; exit 0; }
  sleep 1
done
echo "error: dockerd did not become ready in 60 s; last lines of $log:" >&2
tail -n 20 "$log" >&2
exit 3
