#!/usr/bin/env bash
# Prints the address a container reaches this host at: what `--add-host NAME:host-gateway` resolves to
# (the default bridge's gateway). Docker's IPAM records it on most engines; Debian's docker.io 20.10
# leaves the IPAM gateway empty, so the address of the bridge's interface (docker0) is read instead.
# Never a guess: exit 3 with what to check when neither is there. Used by `make mlflow-ui` and the tests.
set -euo pipefail
gateway=$(docker network inspect bridge -f '{{range .IPAM.Config}}{{.Gateway}}{{end}}' 2>/dev/null || true)
if [ -n "$gateway" ]; then
  echo "$gateway"
  exit 0
fi
bridge=$(docker network inspect bridge -f '{{index .Options "com.docker.network.bridge.name"}}' 2>/dev/null || true)
bridge=${bridge:-docker0}
address=$(ip -4 -o addr show dev "$bridge" 2>/dev/null | awk '{split($4, a, "/"); print a[1]; exit}')
if [ -z "$address" ]; then
  echo "error: no address for the Docker bridge ($bridge): is the Docker engine running on this machine?" >&2
  exit 3
fi
echo "$address"
