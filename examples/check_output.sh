#!/bin/sh
# check.sh PROGRAM EXPECTED: run an example and compare its output, line for
# line, with the lecture's text in EXPECTED. lecture_call_at prints clock
# readings, so for it the shape and the timing are checked instead.
set -eu
prog=$1
want=$2
got=$(mktemp)
trap 'rm -f "$got" "$got.lf"' EXIT
# In a cross build meson test names the emulator (qemu-user, wine) here.
# A program that exits 77 (something the system lacks) is skipped: set -e
# passes its status on.
# shellcheck disable=SC2086
${MESON_EXE_WRAPPER:-} "$prog" >"$got"
# Windows programs end their lines with \r\n (the C runtime's text mode);
# the lecture's text has \n. Only there: elsewhere a \r is a difference.
case "$prog" in
*.exe)
    tr -d '\r' <"$got" >"$got.lf"
    mv "$got.lf" "$got"
    ;;
esac
case "$(basename "$prog")" in
lecture_call_at*)
    awk '
      NR == 1 && $0 != "entering event loop" { bad = "line 1" }
      NR == 2 && $0 !~ /^clock time: [0-9]+\.[0-9]+$/ { bad = "clock time" }
      NR == 3 { if ($0 !~ /^loop  time: [0-9]+\.[0-9]+$/) bad = "loop time"; t0 = $3 }
      NR == 4 && $0 != "registering callbacks" { bad = "registering" }
      NR >= 5 && NR <= 7 {
        n = split("3 2 1", order, " ")
        if ($1 != "callback" || $2 != order[NR - 4] || $3 != "invoked" || $4 != "at") bad = "callback line " NR
        t[NR - 4] = $5 - t0
      }
      NR == 8 && $0 != "closing event loop" { bad = "closing" }
      END {
        if (NR != 8) bad = bad " line count " NR
        if (t[1] < 0 || t[1] > 0.05) bad = bad " callback 3 at +" t[1]
        if (t[2] < 0.1 || t[2] > 0.15) bad = bad " callback 2 at +" t[2]
        if (t[3] < 0.2 || t[3] > 0.25) bad = bad " callback 1 at +" t[3]
        if (bad != "") { print "lecture_call_at: " bad > "/dev/stderr"; exit 1 }
      }' "$got" || { cat "$got"; exit 1; }
    ;;
*)
    diff -u "$want" "$got"
    ;;
esac
echo "$(basename "$prog"): output matches the lecture"
