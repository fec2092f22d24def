#!/usr/bin/env python3
"""Turn one run's raw figures into its report.

    report.py RESDIR OUT_PREFIX

reads   RESDIR/figures.tsv  "key<TAB>value" (value "null" = the measurement failed)
        RESDIR/runs.tsv     one load run per line (see rec_run in common.sh)
        RESDIR/meta.tsv     "key<TAB>value": mode, command, versions, settings
writes  OUT_PREFIX.json     everything, structured
        OUT_PREFIX.md       the table: each figure, its baselines and the ratios
        RESDIR/throughput.dat, RESDIR/latency.dat   gnuplot input (plot.sh)
        RESDIR/summary.json the one-line flat JSON bench/run prints last
Ratios are multiraft / baseline for every figure: above 1 is better for throughput,
below 1 is better for latency and CPU per transaction.
"""
import json
import os
import sys

RESDIR, OUT = sys.argv[1], sys.argv[2]


def read_tsv(name):
    path = os.path.join(RESDIR, name)
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [line.rstrip("\n").split("\t") for line in f if line.strip()]


def num(v):
    if v in (None, "", "null", "-"):
        return None
    try:
        x = float(v)
    except ValueError:
        return v
    return int(x) if x.is_integer() and "." not in v else x


figures = {}
for row in read_tsv("figures.tsv"):
    figures[row[0]] = num(row[1]) if len(row) > 1 else None   # last write wins
meta = {row[0]: (row[1] if len(row) > 1 else "") for row in read_tsv("meta.tsv")}
runs = []
for r in read_tsv("runs.tsv"):
    r += ["null"] * (9 - len(r))
    runs.append(dict(system=r[0], clients=int(r[1]), groups=num(r[2]), tps=num(r[3]),
                     transactions=num(r[4]), p50_ms=num(r[5]), p99_ms=num(r[6]),
                     p999_ms=num(r[7]), errors=num(r[8])))

clients = [int(c) for c in meta.get("clients", "1 16 64").split()]
groups = [int(g) for g in meta.get("groups", "1 100 1000").split()]
# The keys bench/run promises on its last line exist even when their step never ran.
for key in ("submit_tps_c16_g1", "pg_syncrep_tps_c16", "submit_p50_ms_c1", "pg_syncrep_p50_ms_c1",
            "idle_msgs_per_s_10000_groups", "idle_worker_cpu_pct_10000_groups", "failover_s"):
    figures.setdefault(key, None)


def ratio(a, b):
    if not isinstance(a, (int, float)) or not isinstance(b, (int, float)) or b == 0:
        return None
    return round(a / b, 3)


# ---- ratios: each multiraft figure against PG sync rep and etcd at the same clients
ratios = {}
for c in clients:
    for g in groups:
        for m in ("tps", "p50_ms", "p99_ms", "p999_ms", "cpu_us_per_tx"):
            mr = figures.get(f"submit_{m}_c{c}_g{g}")
            for base in ("pg_syncrep", "etcd"):
                ratios[f"submit_vs_{base}_{m}_c{c}_g{g}"] = ratio(mr, figures.get(f"{base}_{m}_c{c}"))

# ---- paired rounds (bench/lib/pairs.sh): per-round ratios and their medians
def median(xs):
    xs = sorted(x for x in xs if x is not None)
    if not xs:
        return None
    mid = len(xs) // 2
    return round(xs[mid] if len(xs) % 2 else (xs[mid - 1] + xs[mid]) / 2, 3)


pairs_run = figures.get("pairs_run") or 0
pair_groups = sorted({int(k.split("_g")[-1]) for k in figures
                      if k.startswith("pair") and "_submit_tps_c16_g" in k})
pairs = {}          # groups -> [ratio of round 1, ...]
for g in pair_groups:
    pairs[g] = [ratio(figures.get(f"pair{i}_submit_tps_c16_g{g}"), figures.get(f"pair{i}_pg_syncrep_tps_c16"))
                for i in range(1, pairs_run + 1)]
    ratios[f"paired_submit_vs_pg_syncrep_tps_c16_g{g}"] = median(pairs[g])


def paired_or_single(g):
    """The 16-client target's value: the paired median when rounds ran, else the series' ratio."""
    p = ratios.get(f"paired_submit_vs_pg_syncrep_tps_c16_g{g}")
    if p is not None:
        return p, f"median of {sum(1 for r in pairs[g] if r is not None)} paired rounds; the series' single ratio: " \
                  f"{fr(ratios.get(f'submit_vs_pg_syncrep_tps_c16_g{g}'))}"
    return ratios.get(f"submit_vs_pg_syncrep_tps_c16_g{g}"), "the series' ratio"


def fr(v):
    return "—" if v is None else f"{v:.2f}×"


# ---- targets of the issue (this 2-core machine; the ratio matters)
def target(name, value, limit, ok, text):
    met = None if value is None or limit is None else bool(ok(value, limit))
    return dict(target=name, value=value, limit=limit, met=met, rule=text)


pg16 = figures.get("pg_syncrep_tps_c16")
et = figures.get("election_timeout_s")
v1, how1 = paired_or_single(1)
v1000, how1000 = paired_or_single(1000)
targets = [
    target("submit_tps_c16_g1 / pg_syncrep_tps_c16", v1, 1.0,
           lambda v, l: v >= l, f">= 1.0 (16 clients, 1 group; {how1})"),
    target("submit_tps_c16_g1000 / pg_syncrep_tps_c16", v1000, 0.9,
           lambda v, l: v >= l, f">= 0.9 (16 clients, 1,000 groups: within 10% of PG sync rep; {how1000})"),
    target("submit_p50_ms_c1 / pg_syncrep_p50_ms_c1",
           ratio(figures.get("submit_p50_ms_c1"), figures.get("pg_syncrep_p50_ms_c1")), 1.5,
           lambda v, l: v <= l, "<= 1.5 (1 client, p50)"),
    target("idle_msgs_per_s_10000_groups", figures.get("idle_msgs_per_s_10000_groups"), 50,
           lambda v, l: v <= l, "<= 50 messages/s sent per node (busiest node)"),
    target("idle_worker_cpu_pct_10000_groups", figures.get("idle_worker_cpu_pct_10000_groups"), 2.0,
           lambda v, l: v <= l, "<= 2% of one core per worker (busiest node)"),
    target("failover_s", figures.get("failover_s"), None if et is None else round(2 * et, 3),
           lambda v, l: v <= l, "<= 2 x election timeout (election_ticks x tick_interval)"),
]

doc = dict(run=meta.get("run"), mode=meta.get("mode"), command=meta.get("command"),
           host={k[5:]: v for k, v in meta.items() if k.startswith("host_")},
           settings={k[4:]: v for k, v in meta.items() if k.startswith("set_")},
           figures=figures, ratios=ratios, targets=targets, runs=runs,
           notes=[n for k, n in sorted(meta.items()) if k.startswith("note")])
with open(OUT + ".json", "w") as f:
    json.dump(doc, f, indent=2)
    f.write("\n")

# ---- Markdown
def fmt(v, digits=1):
    if v is None:
        return "—"
    if isinstance(v, str):
        return v
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    return f"{v:.{digits}f}" if isinstance(v, float) else str(v)


md = [f"# multiraft benchmark — {meta.get('run')} ({meta.get('mode')} run)", "",
      f"Command: `{meta.get('command')}`  ",
      f"Machine: {meta.get('host_cpus')} CPUs ({meta.get('host_cpu_model') or 'model unknown'}), "
      f"{meta.get('host_kernel')}, one fdatasync of 8 kB in {meta.get('host_fdatasync_8k_us') or '?'} µs "
      f"(pg_test_fsync), {meta.get('host_postgres')}, {meta.get('host_etcd')}, {meta.get('host_wrk')}  ",
      f"Each load run: {meta.get('set_duration_s')} s; command/row/value size {meta.get('set_payload_bytes')} bytes; "
      f"load average at start {meta.get('host_loadavg_start')}, at end {meta.get('host_loadavg_end')}.", "",
      "Ratios are multiraft ÷ baseline at the same number of clients (throughput: higher is "
      "better; latency and CPU per transaction: lower is better). CPU per transaction is the "
      "whole machine's (/proc/stat: servers, clients, kernel) over the load run. "
      "A dash: not measured (see the run's log).", "",
      "## Throughput and latency", "",
      "| figure | multiraft | PG sync rep | ratio | etcd | ratio |",
      "|---|---:|---:|---:|---:|---:|"]
for m, label, unit, dg in (("tps", "throughput", "tx/s", 0), ("p50_ms", "p50 latency", "ms", 2),
                           ("p99_ms", "p99 latency", "ms", 2), ("p999_ms", "p99.9 latency", "ms", 2),
                           ("cpu_us_per_tx", "machine CPU per transaction, all processes", "µs", 0),
                           ("busiest_cpu_pct", "busiest CPU, % busy", "%", 1)):
    for g in groups:
        for c in clients:
            mr = figures.get(f"submit_{m}_c{c}_g{g}")
            pg = figures.get(f"pg_syncrep_{m}_c{c}")
            ed = figures.get(f"etcd_{m}_c{c}")
            ran = f"submit_{m}_c{c}_g{g}" in figures
            if not ran and (g != groups[0] or (pg is None and ed is None)):
                continue   # a combination this mode does not run
            md.append(f"| {label}, {c} client{'s' if c > 1 else ''}, {g} group{'s' if g > 1 else ''} ({unit}) "
                      f"| {fmt(mr, dg)} | {fmt(pg, dg)} | {fr(ratio(mr, pg))} | {fmt(ed, dg)} | {fr(ratio(mr, ed))} |")
errs = [r for r in runs if r["errors"]]
if errs:
    md += ["", "Runs with errors (failed transactions or aborted clients): " +
           ", ".join(f"{r['system']} c{r['clients']}" + (f" g{r['groups']}" if r['groups'] else "") +
                     f": {r['errors']}" for r in errs)]

diag = [(c, g) for g in groups for c in clients if f"submit_worker_cpu_pct_c{c}_g{g}" in figures]
if diag:
    md += ["", "Where multiraft's time went in each load run (all nodes; storage batch = one "
           "transaction of the worker; flush = one that waited for its WAL flush):", "",
           "| clients | groups | tx/s | busiest worker CPU % | longest worker wait for a CPU, % "
           "| storage batches/s | entries per batch | entries per flush | snapshots sent |",
           "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for c, g in diag:
        md.append(f"| {c} | {g} | {fmt(figures.get(f'submit_tps_c{c}_g{g}'), 0)} "
                  f"| {fmt(figures.get(f'submit_worker_cpu_pct_c{c}_g{g}'), 1)} "
                  f"| {fmt(figures.get(f'submit_worker_wait_pct_c{c}_g{g}'), 1)} "
                  f"| {fmt(figures.get(f'submit_batches_per_s_c{c}_g{g}'), 0)} "
                  f"| {fmt(figures.get(f'submit_entries_per_batch_c{c}_g{g}'), 2)} "
                  f"| {fmt(figures.get(f'submit_entries_per_flush_c{c}_g{g}'), 2)} "
                  f"| {fmt(figures.get(f'submit_snapshots_sent_c{c}_g{g}'), 0)} |")

def kernel_key(system, g, c, name):
    return f"pg_syncrep_{name}_per_tx_c{c}" if system == "pg_syncrep" else f"submit_{name}_per_tx_c{c}_g{g}"
kernel = [("pg_syncrep", None, c) for c in clients] + [("multiraft", g, c) for g in groups for c in clients]
kernel = [k for k in kernel if figures.get(kernel_key(*k, "fdatasync")) is not None]
if kernel:
    md += ["", "What each load run asked of the kernel, per transaction (system-wide, `perf "
           "stat -a`: servers, clients and kernel; bench/lib/kernel_counts.sh):", "",
           "| system | clients | groups | fdatasync | sendto | recvfrom | kill (wake-ups) | context switches |",
           "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for system, g, c in kernel:
        md.append(f"| {system} | {c} | {g if g else '—'} | "
                  + " | ".join(fmt(figures.get(kernel_key(system, g, c, n)), 2)
                               for n in ("fdatasync", "sendto", "recvfrom", "kill", "cswitch"))
                  + " |")

if pairs_run:
    md += ["", f"## Paired rounds (16 clients; {pairs_run} round{'s' if pairs_run > 1 else ''}, "
           "each system on new servers, back to back)", "",
           "| round | PG sync rep (tx/s) | " + " | ".join(f"multiraft, {g} group{'s' if g > 1 else ''} (tx/s) | ratio"
                                                      for g in pair_groups) + " |",
           "|---:|---:|" + "---:|---:|" * len(pair_groups)]
    for i in range(1, pairs_run + 1):
        md.append(f"| {i} | {fmt(figures.get(f'pair{i}_pg_syncrep_tps_c16'), 0)} | " +
                  " | ".join(f"{fmt(figures.get(f'pair{i}_submit_tps_c16_g{g}'), 0)} | {fr(pairs[g][i - 1])}"
                             for g in pair_groups) + " |")
    md.append("| median | | " + " | ".join(f"| {fr(ratios.get(f'paired_submit_vs_pg_syncrep_tps_c16_g{g}'))}"
                                           for g in pair_groups) + " |")

md += ["", "## Idle cost, failover, restart (multiraft only)", "",
       "| figure | value |", "|---|---:|"]
for key, label in (
        ("idle_msgs_per_s_10000_groups", "idle, 10,000 groups: messages/s sent (busiest node; counter "
         + str(figures.get("idle_msgs_counter")) + ")"),
        ("idle_bytes_per_s_10000_groups", "idle, 10,000 groups: bytes/s sent (busiest node)"),
        ("idle_worker_cpu_pct_10000_groups", "idle, 10,000 groups: worker CPU, % of one core (busiest node)"),
        ("idle_quiesced_groups_node1", "idle: groups quiesced on node 1 at the window's start"),
        ("create_groups_s", "time to create the groups up to 10,000 (s)"),
        ("election_timeout_s", "election timeout (s, before randomization)"),
        ("failover_s", "failover: kill -9 → every group led by a live node (s)"),
        ("failover_groups_led_by_killed", "failover: groups the killed node led"),
        ("failover_leaderless_groups_node1", "failover timed out: groups without a live leader on node 1"),
        ("failover_leaderless_groups_node2", "failover timed out: groups without a live leader on node 2"),
        ("failover_leaderless_groups_node3", "failover timed out: groups without a live leader on node 3"),
        ("restart_pg_start_s", "restart: server accepting connections (s)"),
        ("catchup_missed_commands", "restart: commands committed while the node was down"),
        ("restart_catchup_s", "restart: restart → all groups applied to the leader's commit (s)")):
    if key in figures:
        md.append(f"| {label} | {fmt(figures[key], 2)} |")
for k in (1, 2, 3):
    if f"idle_msgs_per_s_node{k}" in figures:
        md.append(f"| idle node {k}: msgs/s sent, frames/s received; bytes/s sent; worker CPU % | "
                  f"{fmt(figures.get(f'idle_msgs_per_s_node{k}'), 2)}, "
                  f"{fmt(figures.get(f'idle_transport_frames_received_per_s_node{k}'), 2)}; "
                  f"{fmt(figures.get(f'idle_bytes_per_s_node{k}'), 0)}; {fmt(figures.get(f'idle_worker_cpu_pct_node{k}'), 3)} |")
        md.append(f"| idle node {k}: heartbeat entries coalesced/s; raft messages_sent/s; ticks/s | "
                  f"{fmt(figures.get(f'idle_heartbeat_entries_coalesced_per_s_node{k}'), 1)}; "
                  f"{fmt(figures.get(f'idle_messages_sent_per_s_node{k}'), 2)}; "
                  f"{fmt(figures.get(f'idle_ticks_per_s_node{k}'), 2)} |")

md += ["", "## Targets", "", "| target | value | rule | met |", "|---|---:|---|---|"]
for t in targets:
    md.append(f"| {t['target']} | {fmt(t['value'], 3)} | {t['rule']}"
              f"{'' if t['limit'] is None else ''} | {'—' if t['met'] is None else ('yes' if t['met'] else '**no**')} |")
base = os.path.basename(OUT)
md += ["", f"![throughput]({base}-throughput.png)", "", f"![latency]({base}-latency.png)", ""]
md += ["## Notes", ""] + [f"- {n}" for n in doc["notes"]] + [""]
with open(OUT + ".md", "w") as f:
    f.write("\n".join(md))

# ---- gnuplot data: '?' marks a missing point
def cell(v):
    return "?" if v is None else str(v)


with open(os.path.join(RESDIR, "throughput.dat"), "w") as f:
    f.write("# clients pg_syncrep etcd " + " ".join(f"multiraft_g{g}" for g in groups) + "\n")
    for c in clients:
        f.write(" ".join([str(c), cell(figures.get(f"pg_syncrep_tps_c{c}")), cell(figures.get(f"etcd_tps_c{c}"))] +
                         [cell(figures.get(f"submit_tps_c{c}_g{g}")) for g in groups]) + "\n")
with open(os.path.join(RESDIR, "latency.dat"), "w") as f:
    systems = ["pg_syncrep", "etcd"] + [f"multiraft_g{g}" for g in groups]
    f.write("# clients then p50 p99 p99.9 (ms) of: " + " ".join(systems) + "\n")
    for c in clients:
        row = [str(c)]
        for s in systems:
            for p in ("p50", "p99", "p999"):
                key = f"submit_{p}_ms_c{c}_g{s[11:]}" if s.startswith("multiraft_g") else f"{s}_{p}_ms_c{c}"
                row.append(cell(figures.get(key)))
        f.write(" ".join(row) + "\n")

flat = dict(figures)
flat.update({k: v for k, v in ratios.items() if v is not None})
flat["targets_met"] = sum(1 for t in targets if t["met"])
flat["targets_missed"] = sum(1 for t in targets if t["met"] is False)
with open(os.path.join(RESDIR, "summary.json"), "w") as f:
    f.write(json.dumps(flat, separators=(",", ":"), sort_keys=True) + "\n")
