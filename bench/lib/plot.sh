# The plot (sourced by bench/run.sh): requests/s relative to the baseline
# of each section (libuv for echo, nginx for HTTP, redis-server for RESP),
# median over the rounds, one group of bars per workload. gnuplot PNG.

# plot_data SECTION BASELINE: a whitespace table, one row per workload,
# one column per server (quoted names), values = median rps / baseline's.
plot_data() {
    sec=$1 base=$2
    servers=$(awk -F'\t' -v s="$sec" '$1 == s && !seen[$3]++ { print $3 }' "$RAW")
    [ -n "$servers" ] || return 0
    printf 'workload'
    printf '%s\n' "$servers" | while IFS= read -r v; do printf ' "%s"' "$v"; done
    printf '\n'
    awk -F'\t' -v s="$sec" '$1 == s && !seen[$2]++ { print $2 }' "$RAW" | while read -r wl; do
        b=$(col "$sec" "$wl" "$base" 5)
        printf '"%s"' "$wl"
        printf '%s\n' "$servers" | while IFS= read -r v; do
            x=$(col "$sec" "$wl" "$v" 5)
            awk -v x="$x" -v b="$b" 'BEGIN {
                if (x == "-" || b == "-" || b + 0 == 0) printf " NaN"; else printf " %.3f", x / b }'
        done
        printf '\n'
    done
}

plot_base() {
    case $1 in
    echo) echo libuv ;;
    http) echo "nginx (1 worker)" ;;
    resp) echo redis-server ;;
    esac
}

# make_plot PNG: one panel per section that has data.
make_plot() {
    command -v gnuplot >/dev/null 2>&1 || { say "  plot: gnuplot is not installed, skipped"; return 0; }
    panels=""
    for sec in echo http resp; do
        plot_data "$sec" "$(plot_base "$sec")" >"$TMPD/plot-$sec.dat"
        [ -s "$TMPD/plot-$sec.dat" ] && panels="$panels $sec"
    done
    n=$(echo $panels | wc -w)
    [ "$n" -gt 0 ] || return 0
    {
        printf 'set terminal pngcairo size 1200,%d font "sans,10"\n' $((380 * n))
        printf 'set output "%s"\n' "$1"
        printf 'set multiplot layout %d,1\n' "$n"
        printf 'set style data histograms\nset style histogram clustered gap 1\n'
        printf 'set style fill solid 0.85 border -1\nset boxwidth 0.9\nset grid ytics\n'
        printf 'set key outside right top\nset yrange [0:*]\nset xtics noenhanced rotate by -15\nset key noenhanced\n'
        for sec in $panels; do
            base=$(plot_base "$sec")
            cols=$(head -1 "$TMPD/plot-$sec.dat" | awk -F'"' '{ print (NF - 1) / 2 }')
            rounds=$REPS
            [ "$sec" = echo ] || rounds=$PROTO_REPS
            printf 'set title "%s: requests/s relative to %s (median of %s rounds, higher is better)" noenhanced\n' \
                "$sec" "$base" "$rounds"
            printf 'plot for [i=2:%d] "%s" using i:xtic(1) title columnheader(i), 1 with lines lc "black" dt 2 notitle\n' \
                $((cols + 1)) "$TMPD/plot-$sec.dat"
        done
        printf 'unset multiplot\n'
    } >"$TMPD/plot.gp"
    gnuplot "$TMPD/plot.gp" 2>"$TMPD/plot.err" || say "  plot failed: $(head -c 300 "$TMPD/plot.err")"
}
