# Tables from the RAW measurements (sourced by bench/run.sh): per workload,
# the median over the rounds of each server's numbers, and ratios of the
# medians to the baseline server's (libuv for echo).

# fmt0 X: X rounded to an integer ("-" stays).
fmt0() { awk -v x="$1" 'BEGIN { if (x == "-" || x == "") print "-"; else printf "%.0f", x }'; }

# ratio A B: A/B as "1.23x" ("-" when either is missing).
ratio() {
    awk -v a="$1" -v b="$2" 'BEGIN {
        if (a == "-" || b == "-" || a == "" || b == "" || b + 0 == 0) print "-"
        else printf "%.2fx", a / b }'
}

# kept: 1 when a RAW line's run counts (with STEAL_MAX set, runs whose
# steal share, column 12, was above it are left out as disturbed).
KEPT='function kept(smax) { return smax == "" || $12 == "" || $12 == "-" || $12 + 0 <= smax + 0 }'

# col SEC WL SERVER N: the median of column N of SERVER's kept runs of WL.
col() {
    awk -F'\t' -v s="$1" -v w="$2" -v v="$3" -v c="$4" -v smax="${STEAL_MAX:-}" "$KEPT"'
        $1 == s && $2 == w && $3 == v && $c != "" && $c != "-" && kept(smax) { print $c }' \
        "$RAW" | median
}

# table SECTION BASELINE TITLE: a Markdown table per workload of SECTION.
# Columns: requests/s, its ratio to the baseline, p99, how busy the
# server's core was (softirq included), the server process's own user and
# system CPU time per request (/proc/PID/stat; softirq work is not in
# them), requests per second of a fully busy
# server core and its ratio (the server's efficiency: where the client's
# core is the one at 100 %, requests/s is the client's ceiling and this is
# what tells the servers apart), how busy the client's core was, and the
# steal share of the two cores (the hypervisor running other guests: a
# round with much steal was disturbed, whatever its ratios say).
table() {
    sec=$1 base=$2 title=$3
    awk -F'\t' -v s="$sec" '$1 == s && !seen[$2]++ { print $2 }' "$RAW" | while read -r wl; do
        runs=$(awk -F'\t' -v s="$sec" -v w="$wl" -v smax="${STEAL_MAX:-}" "$KEPT"'
                $1 == s && $2 == w { all++; if (kept(smax)) n[$3]++ } END {
                for (k in n) if (n[k] > m) m = n[k]
                if (smax == "") printf "median of %d runs", m
                else printf "median of at most %d runs per server: %d of %d runs had more than %s %% steal", m, all - kept_total(n), all, smax
            }
            function kept_total(a,   k, t) { for (k in a) t += a[k]; return t }' "$RAW")
        printf '\n**%s %s** (%s)\n\n' "$title" "$wl" "$runs"
        printf '| server | requests/s | vs %s | p99 us | server core %% | user ns/req | sys ns/req | req/core-s | vs %s | client core %% | steal %% |\n' "$base" "$base"
        printf '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n'
        b_rps=$(col "$sec" "$wl" "$base" 5)
        b_eff=$(col "$sec" "$wl" "$base" 9)
        awk -F'\t' -v s="$sec" -v w="$wl" '$1 == s && $2 == w && !seen[$3]++ { print $3 }' \
            "$RAW" | while IFS= read -r srv; do
            rps=$(col "$sec" "$wl" "$srv" 5)
            eff=$(col "$sec" "$wl" "$srv" 9)
            printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$srv" "$(fmt0 "$rps")" \
                "$(ratio "$rps" "$b_rps")" "$(col "$sec" "$wl" "$srv" 6)" \
                "$(col "$sec" "$wl" "$srv" 8)" "$(fmt0 "$(col "$sec" "$wl" "$srv" 10)")" \
                "$(fmt0 "$(col "$sec" "$wl" "$srv" 11)")" "$(fmt0 "$eff")" "$(ratio "$eff" "$b_eff")" \
                "$(col "$sec" "$wl" "$srv" 7)" "$(col "$sec" "$wl" "$srv" 12)"
        done
    done
}
