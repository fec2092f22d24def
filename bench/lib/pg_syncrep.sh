# bench/lib/pg_syncrep.sh — baseline 1: PostgreSQL synchronous streaming replication.
#
# A primary and two standbys on 127.0.0.1 (ports PGSR_PORT, +1, +2), default settings
# except the replication ones: synchronous_standby_names = 'ANY 1 (s1, s2)' and
# synchronous_commit = on (the default, stated).  max_connections = 200 like the
# multiraft nodes.  The load inserts one 64-byte row per transaction, so a commit
# waits for the primary's WAL flush and one standby's — the work a Raft commit does.

pgsr_conf() {  # DIR PORT
    as_pg tee -a "$1/postgresql.conf" >/dev/null <<CONF
# --- bench/lib/pg_syncrep.sh
port = $2
listen_addresses = '127.0.0.1'
unix_socket_directories = '$WORK/pg'
max_connections = 200
synchronous_commit = on
CONF
}

pgsr_start_dir() {  # DIR
    track_pgdir "$1"
    as_pg "$PGBIN/pg_ctl" -D "$1" -l "$1.log" -w -t 60 start >/dev/null
}

pgsr_setup() {
    local p=$PGSR_PORT d=$WORK/pg s
    mkdir -p "$d"; [ "$(id -u)" -ne 0 ] || chown postgres: "$d"
    as_pg "$PGBIN/initdb" -D "$d/primary" -A trust -U postgres --no-sync >"$d/initdb.log" 2>&1 || return 1
    pgsr_conf "$d/primary" "$p"
    echo "synchronous_standby_names = 'ANY 1 (s1, s2)'" | as_pg tee -a "$d/primary/postgresql.conf" >/dev/null
    pgsr_start_dir "$d/primary" || return 1
    # Both base backups at once (they only read the primary).
    local pids=()
    for s in 1 2; do
        as_pg timeout 120 "$PGBIN/pg_basebackup" -h 127.0.0.1 -p "$p" -U postgres -D "$d/s$s" \
            -X stream -R --no-sync >"$d/basebackup$s.log" 2>&1 & pids+=($!)
    done
    local failed=()
    for s in 1 2; do wait "${pids[$((s - 1))]}" || failed+=("$s"); done
    # Seen once: the WAL-streaming child of one of the two died at start-up. One
    # more try, alone, before the baseline is given up.
    for s in "${failed[@]}"; do
        warn "pg_syncrep: base backup $s failed ($(tail -n 1 "$d/basebackup$s.log")); retrying"
        rm -rf "$d/s$s"
        as_pg timeout 120 "$PGBIN/pg_basebackup" -h 127.0.0.1 -p "$p" -U postgres -D "$d/s$s" \
            -X stream -R --no-sync >"$d/basebackup$s.log" 2>&1 || return 1
    done
    for s in 1 2; do
        # The conf copied from the primary names its port: the standby gets its own.
        pgsr_conf "$d/s$s" $((p + s))
        echo "primary_conninfo = 'host=127.0.0.1 port=$p user=postgres application_name=s$s'" |
            as_pg tee -a "$d/s$s/postgresql.auto.conf" >/dev/null
        pgsr_start_dir "$d/s$s" || return 1
    done
    # Both standbys streaming and counted by the quorum before any load.
    local i
    for i in $(seq 1 60); do
        [ "$(psql_at "$p" "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming' AND sync_state = 'quorum'")" = 2 ] && break
        sleep 0.5
    done
    [ "$i" -lt 60 ] || { warn "pg_syncrep: standbys not streaming"; return 1; }
    # The 64-byte row and nothing else: a bigserial key added a sequence call and an
    # index entry (and its WAL, replayed by both standbys) to every transaction of
    # the baseline (found by a review of the harness).
    psql_at "$p" "CREATE TABLE bench_log (payload bytea NOT NULL)" || return 1
    printf '%s\n' "INSERT INTO bench_log (payload) VALUES ('\\x$PAYLOAD_HEX'::bytea);" > "$WORK/pg_insert.sql"
}

pgsr_teardown() {
    local s
    for s in s2 s1 primary; do pg_stop_dir "$WORK/pg/$s"; done
}

# The whole baseline: set-up, one run per client count, teardown.
bench_pg_syncrep() {
    local c r
    log "pg_syncrep: primary + 2 standbys on ports $PGSR_PORT-$((PGSR_PORT + 2)), synchronous_standby_names = 'ANY 1 (s1, s2)'"
    if ! pgsr_setup; then
        warn "pg_syncrep: set-up failed ($(tail -n2 "$WORK"/pg/*.log 2>/dev/null | tr '\n' ' ' | cut -c1-300)); its figures are null"
        pgsr_teardown; return 0
    fi
    rec_load pg_syncrep
    for c in $CLIENTS; do
        r=($(pgbench_run "pgsr_c$c" "$c" "$DURATION" "$WORK/pg_insert.sql" "$PGSR_PORT"))
        rec "pg_syncrep_tps_c$c" "${r[0]}"
        rec "pg_syncrep_p50_ms_c$c" "${r[2]}"; rec "pg_syncrep_p99_ms_c$c" "${r[3]}"; rec "pg_syncrep_p999_ms_c$c" "${r[4]}"
        rec "pg_syncrep_cpu_us_per_tx_c$c" "${r[6]}"
        rec "pg_syncrep_busiest_cpu_pct_c$c" "${r[8]}"
        kcount_rec pg_syncrep "c$c" "${r[@]:9:5}"
        rec_run pg_syncrep "$c" - "${r[@]:0:6}"
        log "pg_syncrep: $c client(s): ${r[0]} tps, p50 ${r[2]} ms, p99 ${r[3]} ms, p99.9 ${r[4]} ms (${r[1]} txns, ${r[5]} errors; machine ${r[7]}% busy, busiest CPU ${r[8]}%, ${r[6]} µs of CPU per transaction$KCOUNT_NOTE)"
    done
    pgsr_teardown
}
