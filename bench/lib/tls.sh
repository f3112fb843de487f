# TLS (sourced by bench/run.sh): wrk over https against weft's http_server
# (--tls-cert/--tls-key) and nginx with one worker, both with the same
# certificate (ECDSA P-256, made now by `openssl req`), TLS 1.3 only, and
# the same cipher suite (TLS_AES_128_GCM_SHA256 on both:
# nginx by ssl_conf_command, weft by the client's offer: wrk is given only
# that suite through OPENSSL_CONF). Two workloads:
#   keepalive-c64   HTTPS requests/s on 64 keep-alive connections;
#   handshake-c16   "Connection: close" on 16 connections: each request
#                   pays a full handshake, so requests/s = handshakes/s.
# Skipped without wrk or openssl; nginx's rows without nginx.

TLSD=$TMPD/tls

# tls_nginx_conf DIR CERTDIR: http.sh's config with TLS 1.3, one cipher
# suite, no session resumption, and the certificate.
tls_nginx_conf() {
    nginx_conf "$1" ssl "    ssl_protocols TLSv1.3;
    ssl_conf_command Ciphersuites TLS_AES_128_GCM_SHA256;
    ssl_session_tickets off;
    ssl_session_cache off;" "        ssl_certificate $2/cert.pem;
        ssl_certificate_key $2/key.pem;"
}

tls_servers() {
    [ -x "$B/examples/servers/http/http_server" ] &&
        echo "weft http_server|$B/examples/servers/http/http_server --tls-cert $TLSD/cert.pem --tls-key $TLSD/key.pem --port"
    command -v nginx >/dev/null 2>&1 &&
        echo "nginx (1 worker)|sh bench/lib/nginx-run.sh $TMPD/nginx-tls --port"
    return 0
}

run_tls() {
    if ! command -v wrk >/dev/null 2>&1 || ! command -v openssl >/dev/null 2>&1; then
        say "  tls: wrk or openssl is not installed, skipped"
        return 0
    fi
    mkdir -p "$TLSD" "$TMPD/nginx-tls"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
        -subj /CN=localhost -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
        -keyout "$TLSD/key.pem" -out "$TLSD/cert.pem" 2>/dev/null
    tls_nginx_conf "$TMPD/nginx-tls" "$TLSD"
    # wrk offers TLS 1.3 with only TLS_AES_128_GCM_SHA256: both servers take it.
    cat >"$TLSD/client.cnf" <<CNF
openssl_conf = conf
[conf]
ssl_conf = ssl
[ssl]
system_default = sys
[sys]
MinProtocol = TLSv1.3
Ciphersuites = TLS_AES_128_GCM_SHA256
CNF
    rounds tls_round
}

# tls_round: round $r of run_tls (rounds).
tls_round() {
    for wl in keepalive-c64 handshake-c16; do
        case $wl in
        keepalive-c64) wflags="-c64" close_hdr="" ;;
        # wrk takes a header only as "Name: value" (with the space):
        # "Connection:close" is dropped and the run stays keep-alive.
        *) wflags="-c16" close_hdr="Connection: close" ;;
        esac
        tls_servers | while IFS='|' read -r name cmd; do
            # shellcheck disable=SC2086
            start_server $cmd || continue
            # shellcheck disable=SC2154 # r: the round (rounds, http.sh)
            if [ "$r" = 1 ] && [ "$wl" = keepalive-c64 ]; then
                neg=$(OPENSSL_CONF=$TLSD/client.cnf openssl s_client -brief \
                    -connect "127.0.0.1:$PORT" </dev/null 2>&1 |
                    sed -n 's/^Ciphersuite: //p' | head -1)
                say "  $name: ${neg:-no handshake}"
            fi
            # shellcheck disable=SC2086
            wrk_measure "$name" env OPENSSL_CONF="$TLSD/client.cnf" $PIN_CLIENT wrk -t1 $wflags \
                ${close_hdr:+-H "$close_hdr"} -d"${HTTP_SECS}s" --latency \
                "https://127.0.0.1:$PORT/" || continue
            # shellcheck disable=SC2154 # set by wrk_measure (http.sh)
            record tls "wrk-$wl" "$name" "$r" "$rps" "$p99" "$ccpu" "$scpu" "$eff" - - "$steal"
            printf '.' >&2
        done
    done
}
