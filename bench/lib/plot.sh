# bench/lib/plot.sh — the run's two PNGs with gnuplot, from the .dat files report.py
# wrote: throughput against clients, and p50/p99/p99.9 latency against clients.
# plot_all RESDIR OUT_PREFIX GROUPS_LIST

plot_all() {
    local dir=$1 out=$2 groups=($3) i p col line tp lat=("" "" "")
    command -v gnuplot >/dev/null || { warn "gnuplot missing: no plots"; return 0; }
    tp="'$dir/throughput.dat' using 1:2 with linespoints lw 2 title 'PG sync replication', \
'' using 1:3 with linespoints lw 2 title 'etcd 3.4 (wrk, JSON gateway)'"
    for i in "${!groups[@]}"; do
        tp+=", '' using 1:$((4 + i)) with linespoints lw 2 title 'multiraft, ${groups[$i]} group(s)'"
    done
    # latency.dat: column 2 + 3*s + p for system s (pg, etcd, then multiraft per group count)
    local names=("PG sync rep" "etcd") g
    for g in "${groups[@]}"; do names+=("multiraft ${g}g"); done
    for i in "${!names[@]}"; do
        for p in 0 1 2; do
            col=$((2 + 3 * i + p))
            line="'$dir/latency.dat' using 1:$col with linespoints lw 2 title '${names[$i]}'"
            lat[$p]+="${lat[$p]:+, }$line"
        done
    done
    # Two gnuplot runs: an error in one plot (e.g. no data at all) spares the other.
    timeout 60 gnuplot >"$dir/gnuplot.log" 2>&1 <<GP
set datafile missing '?'
set terminal pngcairo size 900,600 font ',10'
set output '$out-throughput.png'
set title 'Throughput against clients (64-byte commands / rows / values, 3 nodes on loopback)'
set xlabel 'clients'; set ylabel 'transactions per second'
set logscale x 2; set xrange [0.8:90]; set xtics (1, 4, 16, 64); set grid; set key top left
set yrange [0:*]
plot $tp
GP
    timeout 60 gnuplot >>"$dir/gnuplot.log" 2>&1 <<GP
set datafile missing '?'
set terminal pngcairo size 1400,500 font ',10'
set output '$out-latency.png'
set multiplot layout 1,3 title 'Latency against clients (ms, log scale)'
set xlabel 'clients'; set logscale x 2; set xrange [0.8:90]; set xtics (1, 4, 16, 64); set grid
set logscale y; set ylabel 'ms'; set key top left font ',8'
set title 'p50'
plot ${lat[0]}
set title 'p99'
plot ${lat[1]}
set title 'p99.9'
plot ${lat[2]}
unset multiplot
GP
    for p in throughput latency; do
        [ -s "$out-$p.png" ] || warn "no $p plot (gnuplot: $(grep -m1 -v '^ *$' "$dir/gnuplot.log" | cut -c1-150))"
    done
}
