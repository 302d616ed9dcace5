#!/bin/sh
# Refuse to start on a config nginx rejects: the error names the file and line.
set -e
if ! nginx -t -q; then
    echo "router: invalid configuration (see the nginx error above); not starting" >&2
    exit 2
fi
exec nginx -g 'daemon off;'
