#!/bin/sh
# nginx-run.sh DIR --port PORT: run nginx in the foreground (one worker)
# with DIR/nginx.conf, its __PORT__ replaced. For bench/lib/http.sh, whose
# servers all take the port last.
set -eu
dir=$1 port=$3
sed "s/__PORT__/$port/" "$dir/nginx.conf" >"$dir/nginx-$port.conf"
exec nginx -p "$dir" -c "$dir/nginx-$port.conf" -e "$dir/logs/error.log"
