#!/bin/sh
# Instructions per operation of bench/switch under callgrind: two runs of
# `switch --count WHAT`, n = 100,000 and 200,000; the difference over
# 100,000 cancels start-up and exit. Usage: count_insns.sh SWITCH WHAT...
# (WHAT: weft:switch weft:life fcontext:switch fcontext:life). A switch
# loop iteration is two switches, so :switch prints per switch (/2).
set -e
bin=$1
shift
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
ir() {
    valgrind --tool=callgrind --callgrind-out-file="$tmp/out" "$bin" --count "$1" --n "$2" \
        2>"$tmp/log" >/dev/null
    sed -n 's/.*Collected : *\([0-9]*\).*/\1/p' "$tmp/log"
}
for what in "$@"; do
    a=$(ir "$what" 100000)
    b=$(ir "$what" 200000)
    case $what in
    *:switch) div=200000 ;;
    *) div=100000 ;;
    esac
    awk -v w="$what" -v a="$a" -v b="$b" -v d="$div" 'BEGIN { printf "%-16s %6.1f instructions\n", w, (b - a) / d }'
done
