# bench/lib/common.sh — what every part of the harness shares: logging, recording
# figures, clocks, private ports, psql/pgbench as the right user, cleanup bookkeeping.
#
# Figures go to $FIGURES as "key<TAB>value" lines (value "null" when a measurement
# failed); one line per load run goes to $RUNS (see rec_run).  bench/lib/report.py
# turns both into the JSON, Markdown and plot data of the run.

source "$BENCH_TOP/scripts/common.sh"     # MR_PGBIN, MR_RUNAS, mr_build_install
PGBIN=$MR_PGBIN
BENCH_T0=$(date +%s)

# ---- progress (stderr; stdout is kept for the closing JSON line)
log()  { printf '[%4ds] %s\n' $(( $(date +%s) - BENCH_T0 )) "$*" >&2; }
warn() { log "WARNING: $*"; }

# ---- clocks and arithmetic (bash has no floats)
now()  { date +%s.%N; }
secs_since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.3f", b - a }'; }
calc() { awk "BEGIN { v = $1; printf \"%.${2:-3}f\", v }"; }

# ---- the workload: the same 64 bytes are a multiraft command, a PostgreSQL row's
# payload and an etcd value
PAYLOAD_RAW="multiraft-bench-multiraft-bench-multiraft-bench-multiraft-bench-"
PAYLOAD_HEX=$(printf '%s' "$PAYLOAD_RAW" | od -An -v -tx1 | tr -d ' \n')
[ ${#PAYLOAD_RAW} -eq 64 ] || { echo "payload must be 64 bytes" >&2; exit 2; }
# The multiraft transaction, as a pgbench script: a random group of 1..:groups
# (pgbench -D groups=G).
write_submit_script() {  # FILE
    printf '%s\n' '\set g random(1, :groups)' \
        "SELECT multiraft.submit(:g, '\\x$PAYLOAD_HEX'::bytea);" > "$1"
}

# ---- recording
rec() { printf '%s\t%s\n' "$1" "${2:-null}" >> "$FIGURES"; }
# rec_run SYSTEM CLIENTS GROUPS TPS TRANSACTIONS P50_MS P99_MS P999_MS ERRORS
rec_run() { local IFS=$'\t'; printf '%s\n' "$*" >> "$RUNS"; }
# Load average now, so a reader can tell a quiet machine from a busy one.
rec_load() { rec "loadavg_$1" "$(cut -d' ' -f1 /proc/loadavg)"; }

# ---- PostgreSQL clients: TCP on 127.0.0.1 as role postgres (every instance here is
# initdb'd with trust auth), bounded by a timeout.
psql_at() {  # PORT SQL  → unaligned tuples on stdout
    PGCONNECT_TIMEOUT=5 timeout -k 5 "${PSQL_TIMEOUT:-60}" \
        "$PGBIN/psql" -X -q -At -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$1" -U postgres -d postgres -c "$2"
}
as_pg() { "${MR_RUNAS[@]}" "$@"; }

# ---- private ports: BASE+1.. for multiraft, +11.. PG, +21.. etcd clients, +31.. etcd peers
port_busy() { ss -Hltn "sport = :$1" 2>/dev/null | grep -q .; }
pick_port_base() {
    local base p ok
    for base in ${BENCH_PORT_BASE:-5700 5800 5900 6100 6300 6500}; do
        ok=1
        for p in $(seq $((base + 1)) $((base + 40))); do port_busy "$p" && { ok=0; break; }; done
        [ "$ok" = 1 ] && { echo "$base"; return 0; }
    done
    return 1
}

# ---- things to stop on exit (bench/run's trap calls bench_cleanup)
BG_PIDS=()          # background processes we started (etcd members, load generators)
PG_DIRS=()          # data directories of PostgreSQL instances we started
track_pid() { BG_PIDS+=("$1"); }
track_pgdir() { PG_DIRS+=("$1"); }

# Stop one PostgreSQL instance: immediate shutdown (its data is scratch), then SIGKILL.
pg_stop_dir() {
    local d=$1 pid
    [ -f "$d/postmaster.pid" ] || return 0
    as_pg "$PGBIN/pg_ctl" -D "$d" -m immediate -w -t 20 stop >/dev/null 2>&1 && return 0
    pid=$(head -n1 "$d/postmaster.pid" 2>/dev/null) && [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null
    return 0
}

# kill -9 a postmaster and its children at once (a crash, not a shutdown).
kill9_tree() {
    local pm=$1 kids
    kids=$(ps -o pid= --ppid "$pm" 2>/dev/null | tr '\n' ' ')
    kill -9 "$pm" $kids 2>/dev/null || true
}

# How fast this machine makes WAL durable: microseconds per fdatasync of one 8 kB
# write in directory $1 (pg_test_fsync's figure, from its second one-second test;
# the tests after it are cut off), empty if it cannot be measured.  Both systems
# wait for such flushes, so it tells runs on different machines apart.
fdatasync_probe() {
    local out=$1/fsync-probe.out pid us='' i
    stdbuf -oL "$PGBIN/pg_test_fsync" -s 1 -f "$1/fsync-probe" >"$out" 2>/dev/null &
    pid=$!
    for ((i = 0; i < 100; i++)); do
        us=$(awk '$1 == "fdatasync" && $NF == "usecs/op" { print $(NF - 1); exit }' "$out")
        [ -n "$us" ] && break
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    rm -f "$1/fsync-probe" "$out"
    echo "$us"
}

# The first line of a tool's error output, for messages.
first_err() { grep -m1 -E 'ERROR|FATAL|error|failed' "$1" 2>/dev/null | cut -c1-200; }
