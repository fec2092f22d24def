# bench/lib/multiraft.sh — the system under test: a 3-node multiraft cluster started
# by scripts/multiraft-cluster (its default settings; synchronous_commit = on, the
# PostgreSQL default) on ports MR_PORT..+2.
#
#   throughput/latency  pgbench calling multiraft.submit with a 64-byte command, a
#                       random group in 1..G per transaction, clients spread over the
#                       three nodes (pgbench.sh)
#   idle cost           10,000 quiet groups: messages/bytes per second per node from
#                       multiraft.stats, worker CPU from /proc/<worker pid>/stat
#   failover            kill -9 the node leading most groups; until both survivors see
#                       a live leader for every group
#   restart catch-up    restart it; until its replica of every group has applied the
#                       leader's commit index
# A step that fails records null for its figures and the rest goes on.

MR_CLUSTER=$BENCH_TOP/scripts/multiraft-cluster
mr_port() { echo $(( MR_PORT + $1 - 1 )); }
mr_tool() { MULTIRAFT_CLUSTER_DIR=$WORK/mr MULTIRAFT_BASE_PORT=$MR_PORT timeout -k 5 "${MR_TOOL_TIMEOUT:-180}" "$MR_CLUSTER" "$@"; }
mr_sql() { psql_at "$(mr_port "$1")" "$2"; }
mr_worker_pid() { mr_sql "$1" "SELECT pid FROM pg_stat_activity WHERE backend_type = 'multiraft worker' LIMIT 1"; }
mr_stat() { mr_sql "$1" "SELECT coalesce(sum(value), 0) FROM multiraft.stats WHERE name = '$2'"; }
# utime + stime of a process, in clock ticks.
proc_cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null; }
# Nanoseconds a process spent runnable, waiting for a CPU (schedstat's run delay).
proc_wait_ns() { awk '{ print $2 }' "/proc/$1/schedstat" 2>/dev/null; }

# Counter snapshots: mr_snap ASSOC NODE stores every multiraft.stats counter of NODE
# as ASSOC[NODE:name], its worker's CPU ticks as ASSOC[NODE:cpu], the ns it waited
# for a CPU as ASSOC[NODE:wait] and the time as ASSOC[NODE:t].  mr_rate A B NODE KEY:
# per-second change between two snapshots.
MR_WPID=()
mr_snap() {
    local -n into=$1; local name value
    while IFS='|' read -r name value; do into["$2:$name"]=$value; done \
        < <(mr_sql "$2" "SELECT name, value FROM multiraft.stats" 2>/dev/null)
    into["$2:cpu"]=$(proc_cpu_ticks "${MR_WPID[$2]:-0}")
    into["$2:wait"]=$(proc_wait_ns "${MR_WPID[$2]:-0}")
    into["$2:t"]=$(now)
}
mr_rate() {
    local -n a=$1 b=$2
    [ -n "${a[$3:$4]:-}" ] && [ -n "${b[$3:$4]:-}" ] || { echo null; return; }
    calc "(${b[$3:$4]} - ${a[$3:$4]}) / (${b[$3:t]} - ${a[$3:t]})" 2
}
# A counter's increase between two snapshots (null if either lacks it).
mr_delta() {
    local -n a=$1 b=$2
    [ -n "${a[$3:$4]:-}" ] && [ -n "${b[$3:$4]:-}" ] || { echo null; return; }
    echo $(( ${b[$3:$4]} - ${a[$3:$4]} ))
}
# Worker CPU between two snapshots, % of one core.
mr_cpu_pct() {
    local -n a=$1 b=$2
    [ -n "${a[$3:cpu]:-}" ] && [ -n "${b[$3:cpu]:-}" ] || { echo null; return; }
    calc "100 * (${b[$3:cpu]} - ${a[$3:cpu]}) / $MR_HZ / (${b[$3:t]} - ${a[$3:t]})" 2
}
# Worker time spent runnable but waiting for a CPU, % of the wall time.
mr_wait_pct() {
    local -n a=$1 b=$2
    [ -n "${a[$3:wait]:-}" ] && [ -n "${b[$3:wait]:-}" ] || { echo null; return; }
    calc "100 * (${b[$3:wait]} - ${a[$3:wait]}) / 1000000000 / (${b[$3:t]} - ${a[$3:t]})" 2
}
MR_HZ=$(getconf CLK_TCK)
mr_find_workers() { local k; for k in 1 2 3; do MR_WPID[$k]=$(mr_worker_pid "$k"); done; }

# Every multiraft figure, null: the cluster never worked.
mr_null_all() {
    local c g
    for g in $GROUPS_LIST; do for c in $CLIENTS; do
        rec "submit_tps_c${c}_g$g" null; rec "submit_p50_ms_c${c}_g$g" null
        rec "submit_p99_ms_c${c}_g$g" null; rec "submit_p999_ms_c${c}_g$g" null
    done; done
    for c in $CLIENTS; do rec "submit_p50_ms_c$c" null; rec "submit_p99_ms_c$c" null; rec "submit_p999_ms_c$c" null; done
    for k in idle_msgs_per_s_10000_groups idle_bytes_per_s_10000_groups idle_worker_cpu_pct_10000_groups \
             failover_s restart_catchup_s; do rec "$k" null; done
}

mr_setup() {
    local out
    if [ "${BENCH_BUILD:-1}" = 1 ]; then
        log "multiraft: building and installing the extension (make -j2 && make install)"
        if ! ( mr_build_install "$BENCH_TOP" ) >"$WORK/build.log" 2>&1; then
            warn "multiraft: build failed ($(grep -m1 -E 'error|Error' "$WORK/build.log" | cut -c1-200)); trying the installed extension"
        fi
    fi
    log "multiraft: starting 3 nodes with scripts/multiraft-cluster on ports $MR_PORT-$((MR_PORT + 2))"
    mkdir -p "$WORK/mr"; [ "$(id -u)" -ne 0 ] || chown postgres: "$WORK/mr"
    if ! out=$(mr_tool start 3 2>&1); then
        MR_ERROR="cluster did not start: $( (grep -h -m1 FATAL "$WORK"/mr/node*.log 2>/dev/null || echo "$out") | head -n1 | cut -c1-300)"
        return 1
    fi
}

mr_teardown() {
    local k
    for k in 1 2 3; do pg_stop_dir "$WORK/mr/node$k"; done
    # Keep the node logs of a run where multiraft misbehaved, for its developers.
    if [ -n "${MR_ERROR:-}" ] || [ "${BENCH_KEEP:-0}" = 1 ]; then
        mkdir -p "$RESDIR"; for k in 1 2 3; do cp "$WORK/mr/node$k.log" "$RESDIR/multiraft-node$k.log" 2>/dev/null; done
    fi
}

# Group creation: several sessions at once, spread over the nodes, each a range of ids.
# create_group returns once the group exists here; its replicas come up everywhere.
mr_create_groups() {  # FIRST LAST TIMEOUT_S
    local first=$1 last=$2 tmo=$3 sessions=6 s a b pids=() rc=0
    local per=$(( (last - first + sessions) / sessions ))
    for s in $(seq 0 $((sessions - 1))); do
        a=$(( first + s * per )); b=$(( a + per - 1 )); [ "$b" -gt "$last" ] && b=$last
        [ "$a" -gt "$last" ] && break
        PSQL_TIMEOUT=$tmo mr_sql $(( s % 3 + 1 )) \
            "SELECT multiraft.create_group(g, ARRAY[1,2,3]) FROM generate_series($a, $b) g" \
            >/dev/null 2>"$WORK/create$s.err" & pids+=($!)
    done
    for s in "${pids[@]}"; do wait "$s" || rc=1; done
    [ "$rc" = 0 ] || MR_ERROR="create_group failed: $(head -c 300 "$WORK"/create*.err | grep -m1 -E 'ERROR|FATAL|timed out')"
    return $rc
}

# Wait until every node lists N groups with a known leader.  Echo the seconds taken.
mr_wait_groups() {  # N TIMEOUT_S
    local n=$1 t0 k ok; t0=$(now)
    while :; do
        ok=1
        for k in 1 2 3; do
            [ "$(mr_sql "$k" "SELECT count(*) FROM multiraft.groups WHERE leader_node_id IS NOT NULL" 2>/dev/null)" = "$n" ] || { ok=0; break; }
        done
        [ "$ok" = 1 ] && { secs_since "$t0"; return 0; }
        [ "$(calc "$(secs_since "$t0") > $2" 0)" = 1 ] && return 1
        sleep 0.5
    done
}

# ---------------------------------------------------------------- workloads

# Where a load run's time went, from snapshots s0/s1 around it: the busiest worker's
# CPU (a worker near 100% is the bottleneck), the longest a worker waited for a CPU
# (runnable, not running: the CPU it is on is saturated, though the machine may not
# be), and, over all nodes, how many storage batches (one transaction of the worker
# each) ran, how many of them waited for a WAL flush (votes and appends; applying
# alone needs none), how many entries each batch and each flush carried, and how
# many snapshots were sent: under load, a member that falls behind the leader's
# log gets one, and skips the events (and its waiting commands the outcome) of
# the entries it covers (bench/ANALYSES.md, sixteenth analysis).
per() { [ "$(calc "$2 > 0" 0)" = 1 ] && calc "$1 / $2" 2 || echo null; }
mr_load_figures() {  # TAG
    local k cpu worst=0 wait wworst=0 b=0 f=0 e=0 snaps=0 x
    for k in 1 2 3; do
        cpu=$(mr_cpu_pct s0 s1 "$k")
        [ "$cpu" != null ] && worst=$(calc "($cpu > $worst) ? $cpu : $worst" 2)
        wait=$(mr_wait_pct s0 s1 "$k")
        [ "$wait" != null ] && wworst=$(calc "($wait > $wworst) ? $wait : $wworst" 2)
        x=$(mr_rate s0 s1 "$k" batches_written); [ "$x" != null ] && b=$(calc "$b + $x" 2)
        x=$(mr_rate s0 s1 "$k" batches_flushed); [ "$x" != null ] && f=$(calc "$f + $x" 2)
        x=$(mr_rate s0 s1 "$k" entries_appended); [ "$x" != null ] && e=$(calc "$e + $x" 2)
        x=$(mr_delta s0 s1 "$k" snapshots_sent); [ "$x" != null ] && snaps=$((snaps + x))
    done
    rec "submit_worker_cpu_pct_$1" "$worst"
    rec "submit_worker_wait_pct_$1" "$wworst"
    rec "submit_batches_per_s_$1" "$b"
    rec "submit_entries_per_batch_$1" "$(per "$e" "$b")"
    rec "submit_flushes_per_s_$1" "$f"
    rec "submit_entries_per_flush_$1" "$(per "$e" "$f")"
    rec "submit_snapshots_sent_$1" "$snaps"
    MR_LOAD_NOTE="busiest worker ${worst}% CPU, a worker waiting for a CPU up to ${wworst}% of the time, $b batches/s, $(per "$e" "$b") entries/batch, $(per "$e" "$f") entries/flush, $snaps snapshots sent"
}

# A new, empty cluster (the installed extension, already built).
mr_fresh_cluster() {
    mr_tool destroy >/dev/null 2>&1
    BENCH_BUILD=0 mr_setup
}

# Each group count's series (1, 16, 64 clients) runs on a cluster of its own, new
# when the series starts, as the baseline's one series runs on new servers: the
# 16-client run of every series follows one run of history, not seven.  Without
# it the many-group series measured tables grown by the earlier series' 700,000
# unconsumed events and dedup records (autovacuum of them included; bench/ANALYSES.md,
# ninth analysis).
mr_throughput() {
    local g c r k created=1 first=1 ports=($(mr_port 1) $(mr_port 2) $(mr_port 3))
    write_submit_script "$WORK/mr_submit.sql"
    for g in $GROUPS_LIST; do
        if [ "$first" = 0 ]; then
            log "multiraft: a new cluster for the $g-group series"
            created=0
            mr_fresh_cluster || { warn "multiraft: ${MR_ERROR:-cluster did not start}; skipping $g groups"; continue; }
        fi
        first=0
        if [ "$g" -gt "$created" ]; then
            log "multiraft: creating groups $((created + 1))..$g"
            mr_create_groups $((created + 1)) "$g" 600 && mr_wait_groups "$g" 120 >/dev/null || {
                warn "multiraft: could not create $g groups (${MR_ERROR:-no leader everywhere}); skipping"
                continue; }
            created=$g
        fi
        rec_load "multiraft_g$g"
        for c in $CLIENTS; do
            [ -n "${MR_ONLY_RUNS:-}" ] && [[ " $MR_ONLY_RUNS " != *" c${c}_g$g "* ]] && continue
            declare -A s0=() s1=(); mr_find_workers
            for k in 1 2 3; do mr_snap s0 "$k"; done
            r=($(pgbench_run "mr_c${c}_g$g" "$c" "$DURATION" "$WORK/mr_submit.sql" "${ports[@]}" -- -D "groups=$g"))
            for k in 1 2 3; do mr_snap s1 "$k"; done
            mr_load_figures "c${c}_g$g"
            rec "submit_tps_c${c}_g$g" "${r[0]}"
            rec "submit_p50_ms_c${c}_g$g" "${r[2]}"; rec "submit_p99_ms_c${c}_g$g" "${r[3]}"; rec "submit_p999_ms_c${c}_g$g" "${r[4]}"
            rec "submit_cpu_us_per_tx_c${c}_g$g" "${r[6]}"
            rec "submit_busiest_cpu_pct_c${c}_g$g" "${r[8]}"
            kcount_rec submit "c${c}_g$g" "${r[@]:9:5}"
            if [ "$g" = 1 ]; then   # the headline latency is the single-group one
                rec "submit_p50_ms_c$c" "${r[2]}"; rec "submit_p99_ms_c$c" "${r[3]}"; rec "submit_p999_ms_c$c" "${r[4]}"
            fi
            rec_run multiraft "$c" "$g" "${r[@]:0:6}"
            log "multiraft: $c client(s), $g group(s): ${r[0]} tps, p50 ${r[2]} ms, p99 ${r[3]} ms, p99.9 ${r[4]} ms (${r[1]} txns, ${r[5]} errors; $MR_LOAD_NOTE; machine ${r[7]}% busy, busiest CPU ${r[8]}%, ${r[6]} µs of CPU per submit$KCOUNT_NOTE)"
        done
    done
    MR_CREATED=$created
}

mr_idle() {
    local total=$IDLE_GROUPS k t0 secs
    log "multiraft: creating groups $((MR_CREATED + 1))..$total for the idle test"
    t0=$(now)
    if ! mr_create_groups $((MR_CREATED + 1)) "$total" 900; then
        warn "multiraft: creating $total groups failed: $MR_ERROR"; return 1
    fi
    if ! secs=$(mr_wait_groups "$total" 180); then
        warn "multiraft: not every node lists $total groups with a leader after 180 s"; return 1
    fi
    MR_CREATED=$total
    rec create_groups_s "$(secs_since "$t0")"
    log "multiraft: $total groups exist on every node with a leader ($(secs_since "$t0") s)"
    # Let elections and the first heartbeats settle; groups go quiet (quiesce) when
    # fully replicated and idle.
    local q i
    for i in $(seq 1 "$IDLE_SETTLE"); do
        q=$(mr_sql 1 "SELECT count(*) FILTER (WHERE quiesced) FROM multiraft.groups")
        [ "$q" = "$total" ] && break
        sleep 1
    done
    rec idle_quiesced_groups_node1 "${q:-null}"
    log "multiraft: idle window of ${IDLE_WINDOW}s ($q of $total groups quiesced on node 1)"

    # Counters before and after the window, per node: every multiraft.stats counter
    # and the worker's CPU ticks (/proc/<pid>/stat).
    local k
    declare -A c0 c1
    mr_find_workers
    for k in 1 2 3; do mr_snap c0 "$k"; done
    sleep "$IDLE_WINDOW"
    for k in 1 2 3; do mr_snap c1 "$k"; done
    rate() { mr_rate c0 c1 "$@"; }
    # "Inter-node messages" = what crosses the wire: transport frames (one
    # CopyData message on the link to the peer each) when the transport counts them, else
    # the raft-level messages_sent.  Both are kept, with the bytes and heartbeats.
    local msgkey=messages_sent bytekey=bytes_sent worst_m=0 worst_b=0 worst_c=0 mps bps cpu n
    [ -n "${c1[1:transport_frames_sent]:-}" ] && msgkey=transport_frames_sent
    [ -n "${c1[1:transport_bytes_sent]:-}" ] && bytekey=transport_bytes_sent
    rec idle_msgs_counter "$msgkey"
    for k in 1 2 3; do
        mps=$(rate "$k" "$msgkey"); bps=$(rate "$k" "$bytekey")
        cpu=$(mr_cpu_pct c0 c1 "$k")
        [ "$cpu" = null ] && warn "multiraft: node $k worker (pid ${MR_WPID[$k]:-?}) gone during the idle window"
        rec "idle_msgs_per_s_node$k" "$mps"; rec "idle_bytes_per_s_node$k" "$bps"
        rec "idle_worker_cpu_pct_node$k" "$cpu"
        for n in messages_sent messages_received bytes_sent heartbeats_sent heartbeat_entries_coalesced \
                 transport_envelopes_sent transport_frames_received ticks; do
            rec "idle_${n}_per_s_node$k" "$(rate "$k" "$n")"
        done
        log "multiraft: idle node $k: $mps msgs/s sent ($msgkey), $bps bytes/s, worker CPU $cpu% of a core"
        [ "$mps" != null ] && worst_m=$(calc "($mps > $worst_m) ? $mps : $worst_m" 2)
        [ "$bps" != null ] && worst_b=$(calc "($bps > $worst_b) ? $bps : $worst_b" 1)
        [ "$cpu" != null ] && worst_c=$(calc "($cpu > $worst_c) ? $cpu : $worst_c" 3)
    done
    # Counters that never moved across the whole test say nothing: null, not 0.
    if [ "${c1[1:$msgkey]:-0}" = 0 ] && [ "${c1[2:$msgkey]:-0}" = 0 ]; then
        warn "multiraft: $msgkey stays 0 on every node (not counted yet?): no message figure"
        worst_m=null; worst_b=null
    fi
    # The targets are per node: the busiest node's figure.
    rec idle_msgs_per_s_10000_groups "$worst_m"; rec idle_bytes_per_s_10000_groups "$worst_b"
    rec idle_worker_cpu_pct_10000_groups "$worst_c"
}

# Seconds from T0 until both survivors see a leader other than DEAD for all N groups.
# Each survivor is watched from inside one session started before the kill (a
# plpgsql loop reading multiraft.groups every 20 ms and noting clock_timestamp()
# when the condition first holds), so the figure carries no psql start-up time.
# mr_watch_failover_start DEAD N TIMEOUT_S; kill; mr_wait_failover T0
mr_watch_failover_start() {  # DEAD N TIMEOUT_S
    local dead=$1 n=$2 k
    MR_WATCHERS=()
    for k in 1 2 3; do
        [ "$k" = "$dead" ] && continue
        PSQL_TIMEOUT=$(( $3 + 10 )) mr_sql "$k" "DO \$\$
            DECLARE deadline timestamptz := clock_timestamp() + interval '$3 seconds';
            BEGIN
              LOOP
                IF (SELECT count(*) FILTER (WHERE leader_node_id IS NOT NULL AND leader_node_id <> $dead) = $n
                      FROM multiraft.groups) THEN
                  RAISE NOTICE 'failover-done %', extract(epoch FROM clock_timestamp());
                  RETURN;
                END IF;
                EXIT WHEN clock_timestamp() > deadline;
                PERFORM pg_sleep(0.02);
              END LOOP;
              RAISE NOTICE 'failover-timeout';
            END \$\$" > "$WORK/failover-watch-$k.out" 2>&1 &
        MR_WATCHERS+=("$k:$!")
    done
    sleep 0.5   # the sessions are up and polling
}

# Waits for the watchers (not in a subshell: they are this shell's children) and
# sets MR_FAILOVER_SECS; false if one of them timed out or failed.
mr_wait_failover() {  # T0
    local w k pid t last=0 ok=0
    for w in "${MR_WATCHERS[@]}"; do
        k=${w%%:*}; pid=${w#*:}
        wait "$pid" 2>/dev/null
        t=$(sed -nE 's/.*failover-done ([0-9.]+).*/\1/p' "$WORK/failover-watch-$k.out" | head -n1)
        if [ -z "$t" ]; then ok=1; continue; fi
        last=$(calc "($t > $last) ? $t : $last" 6)
    done
    [ "$ok" = 0 ] || return 1
    MR_FAILOVER_SECS=$(calc "$last - $1" 3)
}

mr_failover() {
    local n=$MR_CREATED dead pm t0 secs tick eticks et
    dead=$(mr_sql 1 "SELECT leader_node_id FROM multiraft.groups WHERE leader_node_id IS NOT NULL GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1")
    [ -n "$dead" ] || { warn "multiraft: no group has a leader; no failover test"; return 1; }
    tick=$(mr_sql 1 "SELECT setting::numeric / CASE unit WHEN 's' THEN 1 WHEN 'ms' THEN 1000 WHEN 'us' THEN 1000000 ELSE 1000 END FROM pg_settings WHERE name = 'multiraft.tick_interval'")
    eticks=$(mr_sql 1 "SELECT setting FROM pg_settings WHERE name = 'multiraft.election_ticks'")
    et=$(calc "${tick:-0.05} * ${eticks:-10}" 3)
    rec election_timeout_s "$et"
    rec failover_groups "$n"
    rec failover_killed_node "$dead"
    rec failover_groups_led_by_killed "$(mr_sql 1 "SELECT count(*) FROM multiraft.groups WHERE leader_node_id = $dead")"
    pm=$(head -n1 "$WORK/mr/node$dead/postmaster.pid")
    log "multiraft: kill -9 node $dead (postmaster $pm and its children), leader of the most groups; election timeout ${et}s (randomized up to 2x)"
    mr_watch_failover_start "$dead" "$n" "$FAILOVER_TIMEOUT"
    t0=$(now); kill9_tree "$pm"
    if mr_wait_failover "$t0"; then
        secs=$MR_FAILOVER_SECS
        rec failover_s "$secs"
        log "multiraft: every group has a live leader on both survivors after ${secs}s"
    else
        rec failover_s null
        local j left=""
        for j in 1 2 3; do
            [ "$j" = "$dead" ] && continue
            left+=" node $j: $(PSQL_TIMEOUT=5 mr_sql "$j" "SELECT count(*) FILTER (WHERE leader_node_id IS NULL OR leader_node_id = $dead) FROM multiraft.groups" 2>/dev/null)"
            rec "failover_leaderless_groups_node$j" "$(PSQL_TIMEOUT=5 mr_sql "$j" "SELECT count(*) FILTER (WHERE leader_node_id IS NULL OR leader_node_id = $dead) FROM multiraft.groups" 2>/dev/null)"
        done
        warn "multiraft: groups still without a live leader after ${FAILOVER_TIMEOUT}s:$left"
    fi
    MR_DEAD=$dead
}

# Groups (on node K) whose applied index is below the leader's commit index.
mr_lagging() {  # K
    local k dump="$WORK/catchup"
    mkdir -p "$dump"
    for k in 1 2 3; do
        PSQL_TIMEOUT=10 mr_sql "$k" "COPY (SELECT group_id, role, commit_index, applied_index FROM multiraft.groups) TO STDOUT" \
            >"$dump/n$k" 2>/dev/null || : >"$dump/n$k"
    done
    python3 - "$1" "$MR_CREATED" "$dump" <<'PY'
import sys
k, total, d = sys.argv[1], int(sys.argv[2]), sys.argv[3]
commit, applied = {}, {}
for n in "123":
    for line in open(f"{d}/n{n}"):
        g, role, c, a = line.split("\t")
        if role == "leader":
            commit[g] = max(commit.get(g, 0), int(c))
        if n == k:
            applied[g] = int(a)
print(total - sum(1 for g, a in applied.items() if g in commit and a >= commit[g]))
PY
}

mr_restart_catchup() {
    local k=$MR_DEAD t0 up lag secs
    [ -n "$k" ] || return 1
    if [ "$CATCHUP_LOAD_S" -gt 0 ]; then
        # Commands the dead node misses: a short load on the survivors over all groups.
        local ports=() j
        for j in 1 2 3; do [ "$j" != "$k" ] && ports+=("$(mr_port "$j")"); done
        log "multiraft: ${CATCHUP_LOAD_S}s of submits on the survivors while node $k is down"
        r=($(pgbench_run "mr_while_down" 16 "$CATCHUP_LOAD_S" "$WORK/mr_submit.sql" "${ports[@]}" -- -D "groups=$MR_CREATED"))
        rec catchup_missed_commands "${r[1]}"
    fi
    log "multiraft: restarting node $k"
    t0=$(now)
    mr_tool restart "$k" >/dev/null 2>&1 || { warn "multiraft: node $k did not restart"; rec restart_catchup_s null; return 1; }
    up=$(secs_since "$t0"); rec restart_pg_start_s "$up"
    while :; do
        lag=$(mr_lagging "$k")
        [ "$lag" = 0 ] && break
        if [ "$(calc "$(secs_since "$t0") > $CATCHUP_TIMEOUT" 0)" = 1 ]; then
            warn "multiraft: node $k still behind in $lag groups after ${CATCHUP_TIMEOUT}s"
            rec restart_catchup_s null; return 1
        fi
        sleep 0.2
    done
    secs=$(secs_since "$t0")
    rec restart_catchup_s "$secs"
    log "multiraft: node $k caught up in all $MR_CREATED groups ${secs}s after restart (server up after ${up}s)"
}

bench_multiraft() {
    MR_ERROR=""; MR_CREATED=0; MR_DEAD=""
    if ! mr_setup; then
        warn "multiraft: $MR_ERROR — its figures are null"; mr_null_all; mr_teardown; return 0
    fi
    # One command end to end, before any load: is the extension working at all?
    local idx
    # (create_group returns once the group exists on node 1; the other replicas follow.)
    if ! mr_sql 1 "SELECT multiraft.create_group(1, ARRAY[1,2,3])" >/dev/null 2>"$WORK/probe.err" ||
       ! { mr_wait_groups 1 20 >/dev/null || echo "group 1 has no leader on every node after 20 s" >>"$WORK/probe.err"; } ||
       ! idx=$(PSQL_TIMEOUT=30 mr_sql 2 "SELECT multiraft.submit(1, '\\x$PAYLOAD_HEX'::bytea, NULL, 20000)" 2>>"$WORK/probe.err"); then
        MR_ERROR="extension not working yet: $( (grep -m1 -E 'ERROR|FATAL' "$WORK/probe.err" || grep -m1 . "$WORK/probe.err" || echo 'no answer') | cut -c1-250)"
        warn "multiraft: $MR_ERROR — its figures are null"; mr_null_all; mr_teardown; return 0
    fi
    log "multiraft: probe submit committed at index $idx"
    MR_CREATED=1
    mr_throughput
    mr_idle || { rec idle_msgs_per_s_10000_groups null; rec idle_worker_cpu_pct_10000_groups null; rec idle_bytes_per_s_10000_groups null; }
    if [ "$MR_CREATED" -gt 1 ] || [ "$IDLE_GROUPS" -le 1 ]; then
        mr_failover || rec failover_s null
        if [ "$RUN_CATCHUP" = 1 ] && [ $(( $(date +%s) - BENCH_T0 + CATCHUP_TIMEOUT + CATCHUP_LOAD_S + 15 )) -gt "$BUDGET_S" ]; then
            warn "multiraft: skipping the restart catch-up step: it could overrun the ${BUDGET_S}s budget of this mode"
            rec restart_catchup_s null
        elif [ "$RUN_CATCHUP" = 1 ]; then
            mr_restart_catchup || true
        fi
    else
        rec failover_s null
    fi
    mr_teardown
}
