#!/bin/sh
# weft-info's exit status and what it says about WEFT_BACKEND.
# Usage: weft_info_test.sh path/to/weft-info [windows]
# With "windows", weft-info.exe runs under wine ($WINE, default
# /usr/lib/wine/wine64), which passes the environment and the exit status
# through.
set -u
info=$1
os=${2:-posix}
fail=0
# The output goes to a file, not to a pipe read by $(...): a wineserver
# that the run starts inherits the pipe and holds it open for as long as it
# lives (while other tests use wine, or 3 s after the last), and $(...)
# waits for that: 15 s per start in the Win64 stage.
tmp=$(mktemp) || exit 1
trap 'rm -f "$tmp"' EXIT
if [ "$os" = windows ]; then
    wine=${WINE:-/usr/lib/wine/wine64}
    export WINEDEBUG=-all
    weft_info() { "$wine" "$info"; }
else
    weft_info() { "$info"; }
fi

# run EXPECTED_STATUS PATTERN [VAR=VALUE]: run weft-info (with VAR set, or
# with WEFT_BACKEND unset), check the status and that the output has PATTERN.
run() {
    want=$1 pattern=$2
    shift 2
    if [ $# -gt 0 ]; then
        (export "$@" && weft_info >"$tmp" 2>&1)
        got=$?
        out=$(cat "$tmp")
    else
        # One run serves every check without WEFT_BACKEND.
        if [ -z "${plain_out+set}" ]; then
            (unset WEFT_BACKEND && weft_info >"$tmp" 2>&1)
            plain_status=$?
            plain_out=$(cat "$tmp")
        fi
        out=$plain_out got=$plain_status
    fi
    if [ "$got" -ne "$want" ]; then
        echo "FAIL: ${*:-no WEFT_BACKEND}: exit $got, expected $want"
        fail=1
    fi
    if ! printf '%s\n' "$out" | tr -d '\r' | grep -q -- "$pattern"; then
        echo "FAIL: ${*:-no WEFT_BACKEND}: output lacks '$pattern'"
        fail=1
    fi
    [ "$fail" -eq 0 ] || printf '%s\n' "$out"
}

run 0 'AUTO picks: '
run 2 'WEFT_BACKEND=no-such-backend: unknown backend name' WEFT_BACKEND=no-such-backend
run 0 'the same as leaving it unset' WEFT_BACKEND=auto

if [ "$os" = windows ]; then
    # IOCP compiled, working, picked by AUTO; the POSIX backends absent.
    run 0 '^iocp  *yes  *yes '
    run 0 '^AUTO picks: iocp'
    run 0 'WEFT_BACKEND=iocp overrides AUTO for loops created with it' WEFT_BACKEND=iocp
    run 0 '^epoll  *no  *-  *Linux only'
    run 0 '^io_uring  *no  *-  *Linux only'
    run 0 '^poll  *no  *-  *POSIX only'
    run 1 'WEFT_BACKEND=epoll overrides AUTO, but .*not compiled' WEFT_BACKEND=epoll
    exit $fail
fi

# kqueue: compiled natively or over libkqueue (then AUTO never picks it),
# or not compiled, with what it needs.
if printf '%s\n' "$plain_out" | grep -q '^kqueue  *yes'; then
    run 0 '^kqueue  *yes  *yes  *\(native\|libkqueue (over epoll)\), EV_CLEAR, \(EVFILT_USER\|pipe\) wake-up'
    run 0 'WEFT_BACKEND=kqueue overrides AUTO for loops created with it' WEFT_BACKEND=kqueue
    run 0 '^kqueue  *yes  *yes  *.*, EV_CLEAR, pipe wake-up' WEFT_KQUEUE_WAKE=pipe
    if printf '%s\n' "$plain_out" | grep -q '^kqueue .*libkqueue'; then
        if printf '%s\n' "$plain_out" | grep -q '^AUTO picks: kqueue'; then
            echo "FAIL: AUTO picked kqueue over libkqueue"
            fail=1
        fi
    fi
else
    run 0 '^kqueue  *no  *-  *needs <sys/event.h>'
    run 1 'WEFT_BACKEND=kqueue overrides AUTO, but .*not compiled' WEFT_BACKEND=kqueue
fi
run 0 '^iocp  *no  *-  *Windows only'
run 1 'WEFT_BACKEND=iocp overrides AUTO, but .*not compiled' WEFT_BACKEND=iocp
# poll is compiled on every POSIX build and always starts.
run 0 'WEFT_BACKEND=poll overrides AUTO for loops created with it' WEFT_BACKEND=poll
exit $fail
