# bench/lib/pgbench.sh — one pgbench load run, optionally spread over several servers.
#
# pgbench_run TAG CLIENTS SECONDS SCRIPT PORT... [-- EXTRA PGBENCH ARGS]
#   prints "tps transactions p50_ms p99_ms p999_ms errors cpu_us_per_tx busy_pct
#   busiest_cpu_pct fdatasync sendto recvfrom kill cswitch" (one line; the last five
#   per transaction, system-wide: kernel_counts.sh)
#   cpu_us_per_tx: the whole machine's CPU time (/proc/stat, every process: servers,
#   pgbench, kernel) over the run, per transaction; busy_pct: how busy it was;
#   busiest_cpu_pct: how busy its busiest CPU was (a machine half idle can still
#   have one CPU saturated: bench/ANALYSES.md, twelfth analysis).
#
# With one port: one pgbench process, -j min(clients, 3) threads.
# With several ports (a "random member" per client): clients are dealt out over the
# ports, one single-threaded pgbench per port, all at once; tps is the sum.  With
# fewer clients than ports, the ports take turns (SECONDS/N each) so a lone client
# still visits every member equally; tps is then transactions / total time.
# Every transaction's latency is logged (--log) and bench/lib/latency.py computes
# the percentiles over all processes' logs.  errors = failed transactions plus
# aborted clients (pgbench stops a client at its first SQL error).

pgbench_run() {
    local tag=$1 clients=$2 secs=$3 script=$4; shift 4
    local ports=() extra=()
    while [ $# -gt 0 ] && [ "$1" != -- ]; do ports+=("$1"); shift; done
    [ "${1:-}" = -- ] && { shift; extra=("$@"); }
    local n=${#ports[@]} dir="$WORK/pgbench/$tag" k pids=() outs=()
    rm -rf "$dir"; mkdir -p "$dir"

    one() {  # INDEX PORT CLIENTS THREADS SECONDS
        timeout -k 5 $(( $5 + 90 )) "$PGBIN/pgbench" -n -M prepared -h 127.0.0.1 -p "$2" -U postgres \
            -c "$3" -j "$4" -T "$5" -f "$script" -l --log-prefix="$dir/log$1" \
            "${extra[@]}" postgres >"$dir/out$1" 2>"$dir/err$1"
    }

    local cpu0 cpu1
    kcount_start "$dir"
    cpu0=$(grep '^cpu' /proc/stat)
    if [ "$n" -eq 1 ]; then
        one 0 "${ports[0]}" "$clients" $(( clients < 3 ? clients : 3 )) "$secs"
        outs=(0)
    elif [ "$clients" -lt "$n" ]; then
        local part=$(( (secs + n - 1) / n ))
        for k in $(seq 0 $((n - 1))); do one "$k" "${ports[$k]}" "$clients" 1 "$part"; outs+=("$k"); done
    else
        for k in $(seq 0 $((n - 1))); do
            # The clients that do not divide evenly go to the last nodes: group 1
            # is created, and led, by node 1, and its leader's clients need no
            # forwarding (16 clients: 5, 5, 6; found by a review of the harness).
            local c=$(( clients / n + (k >= n - clients % n ? 1 : 0) ))
            one "$k" "${ports[$k]}" "$c" 1 "$secs" & pids+=($!); outs+=("$k")
        done
        wait "${pids[@]}"
    fi
    cpu1=$(grep '^cpu' /proc/stat)
    kcount_stop

    # tps: sum over concurrent processes, mean over sequential ones.
    local tps txns errs mode=sum
    [ "$clients" -lt "$n" ] && mode=mean
    tps=$(for k in "${outs[@]}"; do sed -n 's/^tps = \([0-9.]*\) (without.*/\1/p' "$dir/out$k"; done |
          awk -v m=$mode '{ s += $1; c++ } END { if (c == 0) print "null"; else printf "%.1f", (m == "sum" ? s : s / c) }')
    txns=$(cat "${outs[@]/#/$dir/out}" 2>/dev/null | sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' |
           awk '{ s += $1 } END { print s + 0 }')
    errs=$( { cat "${outs[@]/#/$dir/out}" 2>/dev/null | sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p'
              grep -h -c 'aborted' "${outs[@]/#/$dir/err}" 2>/dev/null; } | awk '{ s += $1 } END { print s + 0 }')
    if [ "$errs" -gt 0 ]; then
        warn "$tag: $errs errors, e.g.: $(grep -h -m1 -E 'ERROR|aborted|FATAL' "${outs[@]/#/$dir/err}" 2>/dev/null | head -n1 | cut -c1-200)"
    fi
    [ "$tps" = null ] && warn "$tag: pgbench reported nothing: $(head -c 300 "$dir/err${outs[0]}")"
    local lat
    lat=$(python3 "$BENCH_LIB/latency.py" pgbench "$dir"/log*) || lat="null null null"
    [ "${BENCH_KEEP:-0}" = 1 ] || rm -f "$dir"/log*
    echo "$tps $txns $lat $errs $(machine_cpu "$cpu0" "$cpu1" "$txns") $(kcount_per_tx "$dir" "$txns")"
}

# "cpu_us_per_tx busy_pct busiest_cpu_pct" from two snapshots of the "cpu" lines of
# /proc/stat: the first line is the whole machine, the others one CPU each (idle and
# iowait are the not-busy columns 4 and 5).
machine_cpu() {  # LINES0 LINES1 TRANSACTIONS
    local hz; hz=$(getconf CLK_TCK 2>/dev/null || echo 100)
    awk -v a="$1" -v b="$2" -v tx="$3" -v hz="$hz" 'BEGIN {
        n = split(a, la, "\n"); split(b, lb, "\n"); best = -1
        for (k = 1; k <= n; k++) {
            m = split(la[k], x, " "); split(lb[k], y, " "); tot[k] = 0; busy[k] = 0
            for (i = 2; i <= m; i++) { d = y[i] - x[i]; tot[k] += d; if (i != 5 && i != 6) busy[k] += d }
            if (k > 1 && tot[k] > 0 && 100 * busy[k] / tot[k] > best) best = 100 * busy[k] / tot[k]
        }
        if (tx > 0 && tot[1] > 0) printf "%.0f %.1f", busy[1] * 1e6 / hz / tx, 100 * busy[1] / tot[1]
        else printf "null null"
        if (best < 0) print " null"; else printf " %.1f\n", best }'
}
