#!/bin/sh
# The echo pair end to end: start echo_server on an ephemeral port (two
# threads), run echo_client against it (one message, 16 MiB, 200 concurrent
# connections), then SIGTERM the server and expect a clean exit; then the
# same server busy-polling (--busy-poll).
# usage: echo_pair.sh ECHO_SERVER ECHO_CLIENT BACKEND
set -eu
. "$(dirname "$0")/server_port.sh"
server=$1 client=$2 backend=$3
# In a cross build meson test names the emulator (qemu-user) here.
run=${MESON_EXE_WRAPPER:-}
out=$(mktemp)
pid=""
trap 'kill "$pid" 2>/dev/null || true; rm -f "$out"' EXIT

# start PATTERN FLAGS...: run the server; its port, read from a "listening
# on" line that also matches PATTERN, in $port.
start() {
    pattern=$1
    shift
    # shellcheck disable=SC2086
    start_server "$out" "$pattern" $run "$server" --backend "$backend" "$@"
}

stop() {
    stop_server
    grep -q "SIGTERM, closing" "$out"
}

start "2 threads" --threads 2
$run "$client" --port "$port" --backend "$backend" --message "echo me" | grep -qx "received: echo me"
$run "$client" --port "$port" --backend "$backend" --size 16777216
$run "$client" --port "$port" --backend "$backend" --connections 200 --count 3
if $run "$client" --port 1 --backend "$backend" 2>/dev/null; then
    echo "a refused connect must fail"; exit 1
fi
stop

# The server says it took --busy-poll and still serves; a value above
# WEFT_BUSY_POLL_MAX_US is refused (exit 2).
start "busy-poll 50 us" --busy-poll 50
$run "$client" --port "$port" --backend "$backend" --connections 20 --count 50
stop
rc=0
$run "$server" --busy-poll 1000001 >/dev/null 2>&1 || rc=$?
[ "$rc" = 2 ] || { echo "--busy-poll 1000001: exit $rc, want 2"; exit 1; }
echo ok
