#!/bin/sh
# What `./dev bench` runs: every benchmark, side by side with its peers,
# from the release build (build-release/). Flags:
#   --quick   fewer repetitions (a smoke run)
#   --json    one JSON object per line instead of tables
set -eu
cd "$(dirname "$0")/.."
B=build-release/bench
QUICK=0
JSON=""
for a in "$@"; do
    case "$a" in
    --quick) QUICK=1 ;;
    --json) JSON=--json ;;
    *) echo "bench/run.sh: unknown flag $a" >&2; exit 2 ;;
    esac
done
reps=5
[ "$QUICK" = 1 ] && reps=3

run() {
    [ -n "$JSON" ] || printf '\n\033[1m== %s\033[0m\n' "$1"
    shift
    "$@"
}

if [ "$QUICK" = 1 ]; then
    run "timers (weft vs libuv)" "$B/timers" --reps "$reps" --n 200000 --spread 100 $JSON
else
    run "timers (weft vs libuv)" "$B/timers" --reps "$reps" $JSON
fi
[ -x "$B/tasks" ] && run "tasks vs plain callbacks" "$B/tasks" --reps "$reps" $JSON
[ -x "$B/switch" ] && run "context switch (weft vs boost fcontext vs ucontext)" "$B/switch" $JSON
exit 0
