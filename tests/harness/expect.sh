#!/bin/sh
# expect.sh EXE FILTER STATUS [LINE]: run the harness self-check EXE on
# FILTER; fail unless it exits with STATUS (0, or "nonzero") and, when LINE
# is given, its output ends with the summary line LINE.
exe=$1 filter=$2 want=$3 line=${4:-}
# shellcheck disable=SC2086
out=$(${MESON_EXE_WRAPPER:-} "$exe" "$filter" 2>&1)
rc=$?
# Windows programs (under wine) end their lines with CR LF.
out=$(printf '%s\n' "$out" | tr -d '\r')
printf '%s\n' "$out"
case $want in
nonzero) [ "$rc" -ne 0 ] || { echo "expect: exit 0, wanted non-zero"; exit 1; } ;;
*) [ "$rc" -eq "$want" ] || { echo "expect: exit $rc, wanted $want"; exit 1; } ;;
esac
if [ -n "$line" ] && [ "$(printf '%s\n' "$out" | tail -n 1)" != "$line" ]; then
    echo "expect: last line is not '$line'"
    exit 1
fi
exit 0
