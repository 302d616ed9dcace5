#!/bin/sh
# The router's entry point.
#   (no argument)  write $MLCI_ROUTER_CONF (rendered by `mlci deploy`) to /etc/mlci/router.conf,
#                  refuse to start on a config nginx rejects, then run nginx in the foreground.
#   check          validate a router config given on stdin, without using it (exit 1 if invalid).
#   reload         validate the config on stdin, swap it in and reload nginx (structural changes
#                  only: a colour switch never reloads); the old config stays if the new one fails.
set -eu
conf=/etc/mlci/router.conf

check() {  # $1: a router.conf to validate inside the image's fixed nginx.conf
    sed "s#$conf#$1#" /etc/nginx/nginx.conf > /tmp/nginx-check.conf
    nginx -t -q -c /tmp/nginx-check.conf
}

case "${1:-run}" in
    check)
        cat > /tmp/router-check.conf
        check /tmp/router-check.conf
        ;;
    reload)
        cat > /etc/mlci/router.conf.new
        if ! check /etc/mlci/router.conf.new; then
            echo "router: invalid configuration; the running one is unchanged" >&2
            exit 1
        fi
        mv /etc/mlci/router.conf.new "$conf"
        nginx -s reload
        ;;
    run)
        if [ -n "${MLCI_ROUTER_CONF:-}" ]; then
            printf '%s\n' "$MLCI_ROUTER_CONF" > "$conf"
        fi
        if ! nginx -t -q; then
            echo "router: invalid configuration (see the nginx error above); not starting" >&2
            exit 2
        fi
        exec nginx -g 'daemon off;'
        ;;
    *)
        exec "$@"
        ;;
esac
