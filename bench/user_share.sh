#!/bin/sh
# User CPU per echoed message, sampled: the server runs under 64-byte echo
# (weft-load, pinned as in bench/run.sh: server on CPU 0, client on CPU 1)
# while `perf record -e cpu-clock -F FREQ` samples it; user ns/msg = the
# share of samples outside the kernel x the server's CPU time / messages.
# The utime column of bench/run.sh comes from tick accounting (100 Hz): a
# server at 2 % user gets ~10 user ticks in a 4 s run, +-30 %; 10 kHz
# sampling gives ~1,000x the samples.
#   user_share.sh LOAD SECS CONNS "name|command ending in --port" ...
# SIZE=B sets the message size (default 64).
# Prints: name, messages/s, server CPU ns/msg, user share %, user ns/msg.
set -eu
load=$1 secs=$2 conns=$3
shift 3
port=${PORT:-24580}
freq=${FREQ:-10000}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for s in "$@"; do
    name=${s%%|*}
    cmd=${s#*|}
    # shellcheck disable=SC2086
    taskset -c 0 $cmd "$port" >/dev/null 2>&1 &
    pid=$!
    i=0
    until ss -Hltn "sport = :$port" | grep -q .; do
        i=$((i + 1))
        [ $i -lt 100 ] || { echo "$name: did not start" >&2; kill $pid; continue 2; }
        sleep 0.05
    done
    # warm-up, then the measured run
    taskset -c 1 "$load" --port "$port" -c "$conns" -s "${SIZE:-64}" -d 0.5 -w 0 >/dev/null 2>&1 || true
    t0=$(awk '{print $14 + $15}' "/proc/$pid/stat")
    perf record -q -e cpu-clock -F "$freq" -p "$pid" -o "$tmp/perf.data" -- sleep "$secs" \
        >/dev/null 2>&1 &
    ppid=$!
    out=$(taskset -c 1 "$load" --port "$port" -c "$conns" -s "${SIZE:-64}" -d "$secs" -w 0 --json)
    wait $ppid || true
    t1=$(awk '{print $14 + $15}' "/proc/$pid/stat")
    kill $pid
    wait $pid 2>/dev/null || true
    rps=$(printf '%s\n' "$out" | sed -n 's/.*"rps":\([0-9.]*\).*/\1/p')
    # user share: samples whose ip is not a kernel address
    share=$(perf script -i "$tmp/perf.data" -F ip 2>/dev/null |
        awk '{ n++; if ($1 !~ /^ffff/) u++ } END { if (n) printf "%.4f %d", u / n, n; else print "0 0" }')
    hz=$(getconf CLK_TCK)
    awk -v name="$name" -v rps="$rps" -v secs="$secs" -v ticks=$((t1 - t0)) -v hz="$hz" \
        -v share="${share% *}" -v n="${share#* }" 'BEGIN {
        msgs = rps * secs; cpu = ticks / hz * 1e9 / msgs
        printf "%-34s %9.0f msg/s  cpu %6.0f ns/msg  user %5.2f %% of %6d samples  user %5.0f ns/msg\n",
            name, rps, cpu, share * 100, n, share * cpu }'
done
