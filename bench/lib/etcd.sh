# bench/lib/etcd.sh — baseline 2: a 3-member etcd cluster (Debian's etcd-server 3.4).
#
# Members on 127.0.0.1 (client ports ETCD_PORT..+2, peer ports ETCD_PEER_PORT..+2),
# default settings (100 ms heartbeat, 1 s election timeout, an fsync per WAL write).
# The load is wrk with bench/lib/etcd_put.lua POSTing puts to the v3 JSON gateway,
# spread over the members exactly like the multiraft load (see pgbench.sh).

etcd_setup() {
    local k cluster="" urls=""
    mkdir -p "$WORK/etcd"
    for k in 1 2 3; do
        cluster+="${cluster:+,}e$k=http://127.0.0.1:$((ETCD_PEER_PORT + k - 1))"
        urls+="${urls:+,}http://127.0.0.1:$((ETCD_PORT + k - 1))"
    done
    for k in 1 2 3; do
        etcd --name "e$k" --data-dir "$WORK/etcd/e$k" \
            --listen-client-urls "http://127.0.0.1:$((ETCD_PORT + k - 1))" \
            --advertise-client-urls "http://127.0.0.1:$((ETCD_PORT + k - 1))" \
            --listen-peer-urls "http://127.0.0.1:$((ETCD_PEER_PORT + k - 1))" \
            --initial-advertise-peer-urls "http://127.0.0.1:$((ETCD_PEER_PORT + k - 1))" \
            --initial-cluster "$cluster" --initial-cluster-token "bench-$$" \
            --initial-cluster-state new --logger zap --log-level warn \
            >"$WORK/etcd/e$k.log" 2>&1 &
        track_pid $!
    done
    local i
    for i in $(seq 1 60); do
        ETCDCTL_API=3 timeout 5 etcdctl --endpoints "$urls" endpoint health >/dev/null 2>&1 && return 0
        sleep 0.5
    done
    return 1
}

etcd_teardown() {
    local pid
    for pid in "${BG_PIDS[@]}"; do kill "$pid" 2>/dev/null; done
    for pid in "${BG_PIDS[@]}"; do wait "$pid" 2>/dev/null; done
    BG_PIDS=()
}

# wrk_run TAG CLIENTS SECONDS PORT...  → "tps requests p50 p99 p999 errors"
wrk_run() {
    local tag=$1 clients=$2 secs=$3; shift 3
    local ports=("$@") n=$# dir="$WORK/wrk/$tag" k pids=()
    rm -rf "$dir"; mkdir -p "$dir"
    one() {  # INDEX PORT CONNECTIONS SECONDS
        WRK_HIST_OUT="$dir/hist$1" WRK_SUMMARY_OUT="$dir/sum$1" PAYLOAD="$PAYLOAD_RAW" \
            timeout -k 5 $(( $4 + 60 )) wrk -t 1 -c "$3" -d "${4}s" --timeout 10s \
            -s "$BENCH_LIB/etcd_put.lua" "http://127.0.0.1:$2" >"$dir/out$1" 2>&1
    }
    if [ "$clients" -lt "$n" ]; then
        local part=$(( (secs + n - 1) / n ))
        for k in $(seq 0 $((n - 1))); do one "$k" "${ports[$k]}" "$clients" "$part"; done
    else
        for k in $(seq 0 $((n - 1))); do
            one "$k" "${ports[$k]}" $(( clients / n + (k < clients % n ? 1 : 0) )) "$secs" & pids+=($!)
        done
        wait "${pids[@]}"
    fi
    # requests / duration per process; summed when concurrent, averaged when taking turns.
    local mode=sum; [ "$clients" -lt "$n" ] && mode=mean
    local sums tps reqs errs lat
    sums=$(cat "$dir"/sum* 2>/dev/null)
    tps=$(awk -v m=$mode '$2 > 0 { s += $1 / ($2 / 1e6); c++ } END { if (c == 0) print "null"; else printf "%.1f", (m == "sum" ? s : s / c) }' <<<"$sums")
    reqs=$(awk '{ s += $1 } END { print s + 0 }' <<<"$sums")
    errs=$(awk '{ s += $3 } END { print s + 0 }' <<<"$sums")
    [ "$tps" = null ] && warn "$tag: wrk reported nothing: $(head -c 300 "$dir/out0")"
    [ "$errs" -gt 0 ] && warn "$tag: $errs failed requests (non-2xx, timeouts or socket errors)"
    lat=$(python3 "$BENCH_LIB/latency.py" wrk "$dir"/hist*) || lat="null null null"
    echo "$tps $reqs $lat $errs"
}

bench_etcd() {
    local c r ports=($ETCD_PORT $((ETCD_PORT + 1)) $((ETCD_PORT + 2)))
    log "etcd: 3 members, client ports ${ports[*]} ($(etcd --version 2>/dev/null | head -n1))"
    if ! etcd_setup; then
        warn "etcd: cluster did not become healthy ($(tail -n1 "$WORK/etcd/e1.log" | cut -c1-200)); its figures are null"
        etcd_teardown; return 0
    fi
    rec_load etcd
    for c in $CLIENTS; do
        r=($(wrk_run "etcd_c$c" "$c" "$DURATION" "${ports[@]}"))
        rec "etcd_tps_c$c" "${r[0]}"
        rec "etcd_p50_ms_c$c" "${r[2]}"; rec "etcd_p99_ms_c$c" "${r[3]}"; rec "etcd_p999_ms_c$c" "${r[4]}"
        rec_run etcd "$c" - "${r[@]:0:6}"
        log "etcd: $c connection(s): ${r[0]} puts/s, p50 ${r[2]} ms, p99 ${r[3]} ms, p99.9 ${r[4]} ms (${r[1]} puts, ${r[5]} errors)"
    done
    etcd_teardown
}
