#!/bin/sh
# TLS end to end against OpenSSL's and curl's own clients and servers, with
# a certificate made now by `openssl req` (none is committed):
#   echo_server --tls-cert/--tls-key: weft's echo_client (a message, 16 MiB,
#     50 connections), `openssl s_client`, a wrong host name (refused with
#     the reason), a plaintext client (refused; the server goes on);
#   weft's echo_client against `openssl s_server -rev`;
#   http_server --tls-cert/--tls-key: curl --cacert (two requests on one
#     keep-alive connection), curl without the CA (refused).
# Exit 77 (skipped) without the openssl command.
# usage: tls_e2e.sh HTTP_SERVER ECHO_SERVER ECHO_CLIENT BACKEND
set -eu
. "$(dirname "$0")/server_port.sh"
http=$1 server=$2 client=$3 backend=$4
command -v openssl >/dev/null || { echo "skipped: no openssl command"; exit 77; }
dir=$(mktemp -d)
pid=""
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$dir"' EXIT
out=$dir/out

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj /CN=localhost -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
    -keyout "$dir/key.pem" -out "$dir/cert.pem" 2>/dev/null
tls="--tls-cert $dir/cert.pem --tls-key $dir/key.pem"

# start PROG FLAGS...: PROG serving TLS; its port in $port.
start() {
    prog=$1
    shift
    start_server "$out" "TLS" "$prog" --backend "$backend" "$@"
}

stop() {
    stop_server
    pid=""
}

fail() {
    echo "FAIL: $*"
    exit 1
}

# --- echo_server over TLS ---
# shellcheck disable=SC2086
start "$server" --threads 2 $tls
c="$client --port $port --backend $backend --tls-ca $dir/cert.pem"
$c --message "echo me" | grep -qx "received: echo me" || fail "echo_client message"
$c --tls-name localhost --size 16777216 || fail "echo_client 16 MiB"
$c --connections 50 --count 3 | grep -qx "echo_client: 50 ok, 0 failed" || fail "50 connections"
if $c --tls-name wrong.example 2>"$dir/err"; then
    fail "a wrong host name must be refused"
fi
grep -q "Protocol error (certificate verify failed: hostname mismatch)" "$dir/err" ||
    fail "wrong host name: $(cat "$dir/err")"
# s_client quits at its input's end: the input stays open a while for the
# echo (longer on a retry: a loaded machine may be slower than that).
for wait in 0.3 1 3; do
    got=$( (printf 'through s_client\n'; sleep $wait) | timeout 10 openssl s_client -quiet \
        -no_ign_eof -connect "127.0.0.1:$port" -CAfile "$dir/cert.pem" -verify_return_error \
        -servername localhost 2>/dev/null) || fail "s_client exit"
    [ "$got" = "through s_client" ] && break
done
[ "$got" = "through s_client" ] || fail "s_client got '$got'"
# plaintext at a TLS server: refused, and the server goes on
if "$client" --port "$port" --backend "$backend" --message "plain" >/dev/null 2>&1; then
    fail "a plaintext client must not get an echo"
fi
$c --message "still here" | grep -qx "received: still here" || fail "after plaintext"
stop

# --- weft's client against openssl s_server ---
openssl s_server -accept 127.0.0.1:0 -cert "$dir/cert.pem" -key "$dir/key.pem" -rev \
    -naccept 1 >"$out" 2>&1 &
pid=$!
for _ in $(seq 100); do
    port=$(sed -n 's/^ACCEPT 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$out")
    [ -n "$port" ] && break
    sleep 0.05
done
[ -n "$port" ] || fail "s_server did not start: $(cat "$out")"
# s_server -rev sends each line back reversed: a palindrome comes back as sent
"$client" --port "$port" --backend "$backend" --tls-ca "$dir/cert.pem" \
    --message "step on no pets
" | grep -qx "received: step on no pets" || fail "echo_client vs s_server"
wait "$pid" || fail "s_server exit"
pid=""

# --- http_server over TLS, curl ---
if command -v curl >/dev/null; then
    # shellcheck disable=SC2086
    start "$http" $tls
    url="https://127.0.0.1:$port/"
    got=$(curl -sS --cacert "$dir/cert.pem" "$url") || fail "curl"
    [ "$got" = "Hello, World!" ] || fail "curl got '$got'"
    # two requests, one connection (keep-alive): the second made no connect
    conns=$(curl -sS --cacert "$dir/cert.pem" -o /dev/null -o /dev/null -w '%{num_connects} ' \
        "https://localhost:$port/" "https://localhost:$port/") || fail "curl keep-alive"
    [ "$conns" = "1 0 " ] || fail "keep-alive: connects per request '$conns'"
    if curl -sS -o /dev/null "$url" 2>/dev/null; then
        fail "curl without the CA must refuse the self-signed certificate"
    fi
    stop
else
    echo "curl not found: the https part skipped"
fi
echo ok
