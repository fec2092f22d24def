# bench/lib/kernel_counts.sh — what a load run asks of the kernel, per transaction.
#
# kcount_start DIR      starts counting, system-wide, the WAL flushes (fdatasync),
#                       socket sends and receives, signals (kill: PostgreSQL's latch
#                       wake-ups) and context switches, into DIR/kernel_counts
# kcount_stop           stops it (at the end of the measured window)
# kcount_per_tx DIR TXNS  prints "fdatasync sendto recvfrom kill cswitch", each per
#                       transaction (two decimals), or five "null" when not asked
#                       for (bench/run --kernel-counts), or perf is missing or cannot
#                       count (perf stat needs root for -a).
#
# System-wide, so every process of the run counts: servers, clients (their own
# libpq traffic included) and kernel threads.  The two systems are counted the
# same way; bench/ANALYSES.md, thirteenth analysis, shows why the comparison
# matters (the same CPU per transaction can come from different kernel work).

KCOUNT_EVENTS=syscalls:sys_enter_fdatasync,syscalls:sys_enter_sendto,syscalls:sys_enter_recvfrom,syscalls:sys_enter_kill,context-switches
KCOUNT_WANTED=${KCOUNT_WANTED:-0}   # bench/run --kernel-counts
KCOUNT_OK=
KCOUNT_PID=

# Whether counting was asked for and perf can count these events here (checked once).
kcount_available() {
    if [ -z "$KCOUNT_OK" ]; then
        KCOUNT_OK=no
        [ "$KCOUNT_WANTED" = 1 ] && command -v perf >/dev/null 2>&1 &&
            perf stat -a -x, -e "$KCOUNT_EVENTS" -- true >/dev/null 2>&1 && KCOUNT_OK=yes
    fi
    [ "$KCOUNT_OK" = yes ]
}

kcount_start() {  # DIR
    KCOUNT_PID=
    rm -f "$1/kernel_counts"
    kcount_available || return 0
    perf stat -a -x, -e "$KCOUNT_EVENTS" -o "$1/kernel_counts" >/dev/null 2>&1 &
    KCOUNT_PID=$!
}

kcount_stop() {
    [ -n "$KCOUNT_PID" ] || return 0
    kill -INT "$KCOUNT_PID" 2>/dev/null
    wait "$KCOUNT_PID" 2>/dev/null
    KCOUNT_PID=
}

kcount_per_tx() {  # DIR TXNS
    # perf -x, lines: count,unit,event,... ("<not counted>" when it could not)
    awk -F, -v tx="$2" -v evs="$KCOUNT_EVENTS" '
        BEGIN { n = split(evs, order, ",") }
        /^[0-9]/ { count[$3] = $1 }
        END {
            for (i = 1; i <= n; i++) {
                e = order[i]
                printf "%s%s", (i > 1 ? " " : ""),
                       ((e in count) && tx > 0 ? sprintf("%.2f", count[e] / tx) : "null")
            }
            print ""
        }' "$1/kernel_counts" 2>/dev/null || echo "null null null null null"
}

# Records the five figures (fields 9..13 of pgbench_run) as PREFIX_<name>_per_tx_SUFFIX
# and sets KCOUNT_NOTE for the progress line.
kcount_rec() {  # PREFIX SUFFIX FDATASYNC SENDTO RECVFROM KILL CSWITCH
    local p=$1 s=$2
    KCOUNT_NOTE=
    [ "$KCOUNT_OK" = yes ] || return 0   # not asked for, or perf cannot count here
    rec "${p}_fdatasync_per_tx_$s" "${3:-null}"
    rec "${p}_sendto_per_tx_$s" "${4:-null}"
    rec "${p}_recvfrom_per_tx_$s" "${5:-null}"
    rec "${p}_kill_per_tx_$s" "${6:-null}"
    rec "${p}_cswitch_per_tx_$s" "${7:-null}"
    [ "${3:-null}" = null ] ||
        KCOUNT_NOTE="; per transaction: $3 fdatasync, $4 sendto, $5 recvfrom, $6 kill, $7 context switches"
}
