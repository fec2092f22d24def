# bench/lib/pairs.sh — paired rounds: the 16-client throughput targets measured side
# by side, several times, on new instances each time.
#
# The main series measure each system once, minutes apart.  On this shared 2-core VM
# a 30 s figure moves by ±15 % between runs (sync replication's 16-client figure has
# ranged 5,174–7,692 tps over the sessions), so one ratio of two such figures can
# land on either side of a target.  A paired round measures, back to back and each on
# new servers (no history): sync replication at 16 clients, multiraft at 16 clients
# over 1 group, and over the largest group count; odd rounds in that order, even
# rounds in the reverse, so that a drift of the machine weighs on both sides alike.
# report.py takes each round's ratios and their median; the 16-client targets are
# judged on that median when there are paired rounds (the single-run ratios stay in
# the table).
#
# Records pair<i>_pg_syncrep_tps_c16, pair<i>_submit_tps_c16_g<G> (and _errors and
# _cpu_us_per_tx: the machine's CPU per transaction, _busiest_cpu_pct: how busy its
# busiest CPU was), pairs_run.

pair_pg_syncrep() {  # ROUND
    local r
    rm -rf "$WORK/pg"
    if ! pgsr_setup; then
        warn "pairs: round $1: sync replication did not start"; pgsr_teardown; return 1
    fi
    r=($(pgbench_run "pair$1_pgsr" 16 "$DURATION" "$WORK/pg_insert.sql" "$PGSR_PORT"))
    rec "pair$1_pg_syncrep_tps_c16" "${r[0]}"; rec "pair$1_pg_syncrep_errors_c16" "${r[5]}"
    rec "pair$1_pg_syncrep_cpu_us_per_tx_c16" "${r[6]}"; rec "pair$1_pg_syncrep_busiest_cpu_pct_c16" "${r[8]}"
    log "pairs: round $1: pg_syncrep, 16 clients: ${r[0]} tps (${r[6]} µs of CPU per transaction; machine ${r[7]}% busy, busiest CPU ${r[8]}%)"
    pgsr_teardown
}

pair_multiraft() {  # ROUND GROUPS
    local r ports=($(mr_port 1) $(mr_port 2) $(mr_port 3))
    if ! mr_fresh_cluster || ! mr_create_groups 1 "$2" 600 || ! mr_wait_groups "$2" 120 >/dev/null; then
        warn "pairs: round $1: multiraft with $2 group(s) did not come up (${MR_ERROR:-no leader everywhere})"
        MR_ERROR=""; mr_teardown; return 1
    fi
    r=($(pgbench_run "pair$1_mr_g$2" 16 "$DURATION" "$WORK/mr_submit.sql" "${ports[@]}" -- -D "groups=$2"))
    rec "pair$1_submit_tps_c16_g$2" "${r[0]}"; rec "pair$1_submit_errors_c16_g$2" "${r[5]}"
    rec "pair$1_submit_cpu_us_per_tx_c16_g$2" "${r[6]}"; rec "pair$1_submit_busiest_cpu_pct_c16_g$2" "${r[8]}"
    log "pairs: round $1: multiraft, 16 clients, $2 group(s): ${r[0]} tps (${r[6]} µs of CPU per submit; machine ${r[7]}% busy, busiest CPU ${r[8]}%)"
    mr_teardown
}

# PAIRS rounds, each skipped when it could overrun BUDGET_S (PAIR_ROUND_S estimated).
bench_pairs() {
    local i s done=0 big=${GROUPS_LIST##* } steps
    [ "$PAIRS" -gt 0 ] || return 0
    if [[ ",$ONLY," != *,pg_syncrep,* || ",$ONLY," != *,multiraft,* ]]; then
        log "pairs: skipped (they need both pg_syncrep and multiraft)"; return 0
    fi
    write_submit_script "$WORK/mr_submit.sql"
    steps="pg 1"; [ "$big" = 1 ] || steps="$steps $big"
    for i in $(seq 1 "$PAIRS"); do
        if [ $(( $(date +%s) - BENCH_T0 + PAIR_ROUND_S )) -gt "$BUDGET_S" ]; then
            warn "pairs: stopping after $done round(s): another could overrun the ${BUDGET_S}s budget of this mode"
            break
        fi
        log "pairs: round $i of $PAIRS ($steps)"
        for s in $steps; do
            if [ "$s" = pg ]; then pair_pg_syncrep "$i"; else pair_multiraft "$i" "$s"; fi
        done
        done=$i
        steps=$(echo "$steps" | awk '{ for (k = NF; k > 0; k--) printf "%s%s", $k, (k > 1 ? " " : "") }')
    done
    rec pairs_run "$done"
}
