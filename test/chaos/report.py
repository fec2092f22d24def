"""report.md of one chaos run: set-up, the faults injected, the operations, the checks."""

import re
from collections import Counter


def render(a, history, results, stats, schedule, nemesis_counts, converge_reason,
           phase_times, results_dir, warnings=()):
    out = []
    w = out.append
    bad = [r for r in results if not r.ok]
    w(f"# multiraft chaos run — seed {a.seed}\n")
    w(f"**Verdict: {'PASS' if not bad else 'FAIL'}** — {len(results) - len(bad)} checks passed, "
      f"{len(bad)} failed.\n")
    w("Replay the same nemesis schedule:\n")
    w(f"```\ntest/chaos/run --minutes {a.minutes} --seed {a.seed} --nodes {a.nodes} "
      f"--groups {a.groups} --clients {a.clients} --faults {','.join(a.fault_kinds) or 'none'} "
      f"--admin {','.join(a.admin_kinds) or 'none'} --intensity {a.intensity}"
      + "".join(f" --set {x}" for x in a.set) + "\n```\n")
    w("## Set-up\n")
    w(f"- {a.nodes} PostgreSQL servers on 127.0.0.11.. (ports {a.base_port}+k), "
      f"multiraft.tick_interval = {a.tick}")
    w(f"- {a.groups} groups of 3 random members each, {a.clients} concurrent clients")
    w(f"- fault phase {a.minutes} min; set-up {phase_times.get('setup', 0):.0f}s; "
      f"heal + converge {phase_times.get('converge', 0):.0f}s "
      f"({'converged' if converge_reason is None else 'NOT converged: ' + converge_reason})\n")

    w("## Faults injected\n")
    w("| fault | count |\n|---|---|")
    for k, v in sorted(nemesis_counts.items()):
        if k in ("add_voter", "add_learner", "remove_voter", "transfer"):
            continue
        w(f"| {k} | {v} |")
    w("")
    w("Timeline (seconds since the fault phase began):\n")
    w("| t | event | nodes / sides |\n|---|---|---|")
    for o in history:
        if o.get("type") == "nemesis":
            if o["f"] == "start":
                what = o.get("sides") if o.get("sides") else o.get("nodes")
                if o.get("sides") and o.get("nodes"):
                    what = f"killed {o['nodes']}, sides {o['sides']}"
                w(f"| {o['time']:.1f} | {o['kind']} | {what} |")
            elif o["f"] == "stop":
                w(f"| {o['time']:.1f} | heal ({o['kind']}) | restarted {o.get('restarted')} |")
            else:
                w(f"| {o['time']:.1f} | {o['kind']} failed | {o.get('error')} |")
    w("")
    adm = Counter((o["type"], o.get("change", ""), o["outcome"]) for o in history
                  if o.get("type") in ("membership", "transfer"))
    if adm:
        w("Membership changes and leadership transfers:\n")
        w("| op | outcome | count |\n|---|---|---|")
        for (t, ch, oc), n in sorted(adm.items()):
            w(f"| {t} {ch} | {oc} | {n} |")
        w("")

    w("## Operations\n")
    ops = Counter((o["type"], o.get("outcome")) for o in history
                  if o.get("type") in ("submit", "read"))
    w("| op | outcome | count |\n|---|---|---|")
    for (t, oc), n in sorted(ops.items(), key=lambda kv: (kv[0][0], str(kv[0][1]))):
        w(f"| {t} | {oc} | {n} |")
    w("")
    buckets = Counter(int(o["complete"] // 10) for o in history
                      if o.get("type") in ("submit", "read") and o.get("outcome") == "ok"
                      and o.get("client") != "final")
    if buckets:
        w("Acknowledged client operations per 10 s (availability under the faults above):\n")
        w("```\n" + " ".join(f"{b * 10}s:{buckets[b]}" for b in range(max(buckets) + 1)) + "\n```\n")
    errs = Counter(re.sub(r"\d+", "N", o.get("error", ""))[:90] for o in history
                   if o.get("type") in ("submit", "read") and o.get("outcome") in ("error", "fail"))
    if errs:
        w("Most frequent errors:\n")
        for e, n in errs.most_common(8):
            w(f"- {n} × `{e}`")
        w("")
    cerr = [o for o in history if o.get("type") == "client-error"]
    if cerr:
        w(f"Client exceptions (test bugs): {len(cerr)}, e.g. `{cerr[0]['error'][:200]}`\n")
    w(f"Log: {stats.get('log_entries', 0)} entries in {stats.get('groups_in_log', 0)} groups; "
      f"unknown-outcome submits committed: {stats.get('unknown_committed', 0)}, absent: "
      f"{stats.get('unknown_absent', 0)}; entries skipped by snapshots: "
      f"{stats.get('snapshot_skips', 0)} (snapshot_applied events: {stats.get('snapshots_applied', 0)}, "
      f"replica incarnations: {stats.get('incarnations', 0)}); retries of a command id after an unknown outcome: "
      f"{stats.get('retried_commands', 0)}.\n")

    w("## Checks\n")
    w("| check | verdict | checked | violations |\n|---|---|---|---|")
    for r in results:
        w(f"| {r.name} | {'ok' if r.ok else '**FAIL**'} | {r.checked} | {r.n_violations} |")
    for r in warnings:
        w(f"| {r.name} (liveness, not counted) | {'ok' if r.ok else 'WARNING'} | {r.checked} | "
          f"{r.n_violations} |")
    w("")
    for r in list(results) + list(warnings):
        if r.violations or r.notes:
            w(f"### {r.name}\n")
            for v in r.violations:
                w(f"- {v}")
            for n in r.notes:
                w(f"- note: {n}")
            w("")
    w(f"Files: `{results_dir}` holds history.jsonl, nemesis-schedule.json, events/, final/, "
      f"logs/ (server logs); `python3 test/chaos/checker.py {results_dir}` re-checks.\n")
    return "\n".join(out) + "\n"
