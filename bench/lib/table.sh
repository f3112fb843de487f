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

# col SEC WL SERVER N: the median of column N of SERVER's runs of WL.
col() {
    awk -F'\t' -v s="$1" -v w="$2" -v v="$3" -v c="$4" \
        '$1 == s && $2 == w && $3 == v && $c != "" && $c != "-" { print $c }' "$RAW" | median
}

# table SECTION BASELINE TITLE: a Markdown table per workload of SECTION.
# Columns: requests/s, its ratio to the baseline, p99, how busy the
# server's core was (softirq included), the server process's own user and
# system CPU time per request (/proc/PID/stat; softirq work is not in
# them), requests per second of a fully busy
# server core and its ratio (the server's efficiency: where the client's
# core is the one at 100 %, requests/s is the client's ceiling and this is
# what tells the servers apart), how busy the client's core was.
table() {
    sec=$1 base=$2 title=$3
    awk -F'\t' -v s="$sec" '$1 == s && !seen[$2]++ { print $2 }' "$RAW" | while read -r wl; do
        runs=$(awk -F'\t' -v s="$sec" -v w="$wl" '$1 == s && $2 == w { n[$3]++ } END {
                for (k in n) if (n[k] > m) m = n[k]; print m + 0 }' "$RAW")
        printf '\n**%s %s** (median of %s runs)\n\n' "$title" "$wl" "$runs"
        printf '| server | requests/s | vs %s | p99 us | server core %% | user ns/req | sys ns/req | req/core-s | vs %s | client core %% |\n' "$base" "$base"
        printf '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n'
        b_rps=$(col "$sec" "$wl" "$base" 5)
        b_eff=$(col "$sec" "$wl" "$base" 9)
        awk -F'\t' -v s="$sec" -v w="$wl" '$1 == s && $2 == w && !seen[$3]++ { print $3 }' \
            "$RAW" | while IFS= read -r srv; do
            rps=$(col "$sec" "$wl" "$srv" 5)
            eff=$(col "$sec" "$wl" "$srv" 9)
            printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$srv" "$(fmt0 "$rps")" \
                "$(ratio "$rps" "$b_rps")" "$(col "$sec" "$wl" "$srv" 6)" \
                "$(col "$sec" "$wl" "$srv" 8)" "$(fmt0 "$(col "$sec" "$wl" "$srv" 10)")" \
                "$(fmt0 "$(col "$sec" "$wl" "$srv" 11)")" "$(fmt0 "$eff")" "$(ratio "$eff" "$b_eff")" \
                "$(col "$sec" "$wl" "$srv" 7)"
        done
    done
}
