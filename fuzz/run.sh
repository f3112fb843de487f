#!/bin/sh
# fuzz/run.sh [TARGET...]: build the libFuzzer targets with clang (ASan +
# UBSan) into build-fuzz/ and run each for a bounded time, starting from the
# seed corpus in fuzz/corpus/<name>/. Exits non-zero when a target crashes;
# the input that did it is left in build-fuzz/artifacts/.
#
# Environment: FUZZ_TIME (seconds per target, default 20), CC (default clang),
# FUZZ_JOBS (parallel fuzzing processes per target, default 1).
set -eu
cd "$(dirname "$0")/.."
ROOT=$(pwd)
OUT=$ROOT/build-fuzz
CC=${CC:-clang}
case "$CC" in *clang*) ;; *) CC=clang ;; esac
TIME=${FUZZ_TIME:-20}
JOBS=${FUZZ_JOBS:-1}
TARGETS=${*:-http resp stream}

# Sources of each target (the parsers are pure C: no loop, no library).
srcs() {
    case $1 in
    http) echo examples/servers/http/http_parser.c examples/servers/http/http_response.c examples/servers/http/http_session.c ;;
    resp) echo examples/servers/resp/resp_parser.c examples/servers/resp/resp_db.c examples/servers/resp/resp_cmd.c examples/servers/resp/resp_session.c ;;
    stream) echo core/*/*.c backends/readiness.c backends/readiness_multi.c backends/epoll.c \
        backends/poll.c backends/select.c backends/uring.c net/*.c core/coro/arch/switch_x86_64_sysv.S ;;
    *) echo "unknown target $1" >&2; exit 2 ;;
    esac
}

# The stream target is the whole library (x86-64 Linux): a config header of
# its own, as the cross runner makes one.
mkdir -p "$OUT/cfg"
printf '%s\n' '#define WEFT_VERSION "fuzz"' '#define WEFT_HAVE_IO_URING 1' '#define WEFT_HAVE_EPOLL 1' \
    '#define WEFT_HAVE_KQUEUE 0' '#define WEFT_HAVE_POLL 1' '#define WEFT_HAVE_IOCP 0' \
    '#define WEFT_HAVE_VALGRIND 0' '#define WEFT_FP_CONTROL 0' >"$OUT/cfg/weft_config.h"
extra() {
    case $1 in
    stream) echo -Iinclude -Icore -Icore/coro -Icore/loop -Icore/task -Ibackends -I"$OUT/cfg" -luring -lpthread ;;
    esac
}

mkdir -p "$OUT/artifacts"
# -jobs makes libFuzzer write fuzz-N.log into the current directory.
jobs_flags=""
[ "$JOBS" -gt 1 ] && jobs_flags="-jobs=$JOBS -workers=$JOBS"
rc=0
for t in $TARGETS; do
    exe=$OUT/fuzz_$t
    # shellcheck disable=SC2046
    $CC -std=c11 -D_GNU_SOURCE -g -O1 -Wall -Wextra -Werror -fno-omit-frame-pointer \
        -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
        -Iexamples/servers/http -Iexamples/servers/resp -o "$exe" "fuzz/fuzz_$t.c" $(srcs "$t") $(extra "$t")
    work=$OUT/corpus-$t
    mkdir -p "$work"
    log=$OUT/fuzz_$t.log
    echo "fuzz_$t: ${TIME}s from fuzz/corpus/$t"
    # shellcheck disable=SC2086
    if (cd "$OUT" && ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1 \
        "$exe" -max_total_time="$TIME" -max_len=4096 -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 $jobs_flags \
        -artifact_prefix="$OUT/artifacts/$t-" "$work" "$ROOT/fuzz/corpus/$t" >"$log" 2>&1); then
        runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
        cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -n 1)
        echo "    ok: ${runs:-?} runs, $cov, corpus $(ls "$work" | wc -l) files"
    else
        rc=1
        echo "    CRASH: see $log and $OUT/artifacts/"
        grep -E 'ERROR|SUMMARY|Test unit written' "$log" | head -n 10 | sed 's/^/    /'
    fi
done
exit $rc
