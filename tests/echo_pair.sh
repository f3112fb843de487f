#!/bin/sh
# The echo pair end to end: start echo_server on an ephemeral port (two
# threads), run echo_client against it (one message, 16 MiB, 200 concurrent
# connections), then SIGTERM the server and expect a clean exit.
# usage: echo_pair.sh ECHO_SERVER ECHO_CLIENT BACKEND
set -eu
server=$1 client=$2 backend=$3
# In a cross build meson test names the emulator (qemu-user) here.
run=${MESON_EXE_WRAPPER:-}
out=$(mktemp)
trap 'kill "$pid" 2>/dev/null || true; rm -f "$out"' EXIT
$run "$server" --port 0 --threads 2 --backend "$backend" >"$out" 2>&1 &
pid=$!
port=""
for _ in $(seq 100); do
    port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$out")
    [ -n "$port" ] && break
    sleep 0.05
done
[ -n "$port" ] || { echo "server did not start:"; cat "$out"; exit 1; }
$run "$client" --port "$port" --backend "$backend" --message "echo me" | grep -qx "received: echo me"
$run "$client" --port "$port" --backend "$backend" --size 16777216
$run "$client" --port "$port" --backend "$backend" --connections 200 --count 3
if $run "$client" --port 1 --backend "$backend" 2>/dev/null; then
    echo "a refused connect must fail"; exit 1
fi
kill -TERM "$pid"
wait "$pid"
grep -q "SIGTERM, closing" "$out"
echo ok
