#!/usr/bin/env python3
"""The chaos checker: the client history and every node's multiraft.events against
the contract of SPEC.md.  Pure: reads data, returns results (no cluster needed).

Inputs
  history  list of ops (dicts): type submit|read|membership|transfer|nemesis...,
           group, node, cmd, payload (hex), outcome ok|fail|error|timeout, index,
           invoke / complete (seconds on one monotonic clock)
  events   {node_id: [event rows as dicts]} — multiraft.events of each node
  final    {node_id: [rows of multiraft.groups]} read after convergence

Definitions
  entry        a `command` or `membership_change` event: (log_index, what), where
               what = (event_type, command_id, payload, node_id, change_type).
  incarnation  the events of one group on one node between two `group_created`
               events of that group there (a node removed and re-added gets a new
               replica: a new incarnation).  Ordered by event_id.
  reference    R(g): log_index -> what, the union over all nodes (they must agree).
               Its indexes need not be contiguous: no-op and bootstrap entries make
               no events.  RI(g) = R's indexes in order.
  no gaps      each incarnation's entries are a contiguous run of RI(g): the first
               incarnation of a node that was a member from the start begins at
               RI[0]; it may skip entries only right after a `snapshot_applied`
               event whose index covers them (a replica that starts from a snapshot,
               or catches up by one), and a later incarnation skips the entries an
               earlier one announced on the same node (exactly-once is per node: a
               replica re-added from an older snapshot finds their command ids).  So
               every node's sequence is a prefix of R, or R minus a snapshot-covered
               part.
  converged    every current member (voters and learners as seen by the final
               leader) has applied exactly through max RI(g) and agrees with the
               leader's applied index.

Checks (each one passes or fails as a whole; details list the violations)
  agreement         all nodes record the same entry at each index
  log-order         within an incarnation, indexes strictly increase, and no index
                    is announced twice on a node, whatever the incarnations
  no-gaps           as defined above; snapshot skips are notes unless strict
  converged         as defined above (also: a leader exists for every group)
  acked-present     every ok submit is in R at the returned index, with its payload;
                    every ok membership change is a membership_change there; one
                    that failed as invalid is not
  no-duplicates     no command id appears at two indexes
  unknown-at-most-once  a command id none of whose attempts was ok (clients retry an
                    unknown outcome with the same id) appears at most once; one whose
                    every attempt failed to connect, never
  no-phantoms       every command in R was submitted by a client
  read-index        a read_index that began after an ok submit/membership change of
                    the same group completed returns an index >= that index
  realtime-order    an ok submit/change that began after another one of the same
                    group completed got a higher index (a retried command id began
                    at its first attempt)
"""

import bisect
import json
import os
import re
import sys
from collections import defaultdict

MAX_DETAILS = 20


class Result:
    def __init__(self, name):
        self.name = name
        self.violations = []
        self.notes = []
        self.checked = 0
        self.n_violations = 0

    def bad(self, msg):
        self.n_violations += 1
        if len(self.violations) < MAX_DETAILS:
            self.violations.append(msg)

    @property
    def ok(self):
        return self.n_violations == 0

    def line(self):
        s = f"check {self.name}: {'ok' if self.ok else 'FAIL'} ({self.checked} checked"
        if not self.ok:
            s += f", {self.n_violations} violations"
        return s + ")"


# A command submitted without a command_id gets a generated one (<node>-<n>-<hex>);
# the clients put their own logical id in front of the payload ("<cmd>:<rand>"), so
# such an entry is attributed by its payload.
GENERATED_ID = re.compile(r"^\d+-\d+-[0-9a-f]{16}$")


def _cmd(e):
    cid = e.get("command_id")
    if cid and GENERATED_ID.match(cid) and e.get("payload"):
        try:
            return bytes.fromhex(e["payload"]).split(b":")[0].decode()
        except ValueError:
            return cid
    return cid


def _what(e):
    # The stored command_id last: members must agree on it too, a generated one
    # included (attributed above by its payload; found by a review of the checks).
    return (e["event_type"], _cmd(e), e.get("payload"),
            e.get("node_id") if e["event_type"] == "membership_change" else None,
            e.get("change_type") if e["event_type"] == "membership_change" else None,
            e.get("command_id"))


def incarnations(rows):
    """{group: [[item, ...], ...]} for one node; item = ('entry', index, what, event_id)
    or ('snapshot', index, None, event_id)."""
    out = defaultdict(list)
    for e in sorted(rows, key=lambda r: r["event_id"]):
        g = e["group_id"]
        t = e["event_type"]
        if t == "group_created" or not out[g]:
            out[g].append([])
            if t == "group_created":
                continue
        if t in ("command", "membership_change"):
            out[g][-1].append(("entry", e["log_index"], _what(e), e["event_id"]))
        elif t == "snapshot_applied":
            out[g][-1].append(("snapshot", e["log_index"], None, e["event_id"]))
    return out


def check(history, events, final, strict_snapshots=False):
    res = {n: Result(n) for n in (
        "agreement", "log-order", "no-gaps", "converged", "acked-present",
        "no-duplicates", "unknown-at-most-once", "no-phantoms", "read-index",
        "realtime-order")}
    stats = {}

    # ---------------------------------------------------------------- reference log
    inc = {node: incarnations(rows) for node, rows in events.items()}
    seen = defaultdict(lambda: defaultdict(lambda: defaultdict(set)))  # g -> idx -> what -> nodes
    for node, groups in inc.items():
        for g, incs in groups.items():
            for items in incs:
                for kind, idx, what, _ in items:
                    if kind == "entry":
                        seen[g][idx][what].add(node)
    ref = {}
    r = res["agreement"]
    for g in sorted(seen):
        ref[g] = {}
        for idx in sorted(seen[g]):
            r.checked += 1
            whats = seen[g][idx]
            for w, ns in whats.items():
                if w[0] == "command" and w[5] is None:
                    # every command has an id (SPEC: NULL means a generated one)
                    r.bad(f"group {g} index {idx}: a command without command_id on nodes {sorted(ns)}")
            if len(whats) > 1:
                desc = "; ".join(f"nodes {sorted(ns)}: {w}" for w, ns in whats.items())
                r.bad(f"group {g} index {idx}: nodes disagree: {desc}")
            # the majority version stands in R for the other checks
            ref[g][idx] = max(whats.items(), key=lambda kv: len(kv[1]))[0]
    ref_idx = {g: sorted(ref[g]) for g in ref}

    # ----------------------------------------------------- order and gaps per node
    ro, rg = res["log-order"], res["no-gaps"]
    snapshot_skips = 0
    last_of = {}                            # (node, g) -> last index of last incarnation
    for node in sorted(inc):
        for g in sorted(inc[node]):
            RI = ref_idx.get(g, [])
            announced = set()               # indexes of this node's earlier incarnations
            for n_inc, items in enumerate(inc[node][g]):
                ro.checked += 1
                rg.checked += 1
                prev = None
                pos = 0                     # next expected position in RI
                covered = -1                # highest index covered by a snapshot so far
                started = False
                for kind, idx, what, eid in items:
                    if kind == "snapshot":
                        if not started:
                            # a replica that starts from a snapshot never had those
                            # entries: its run of R begins after the snapshot
                            pos = max(pos, bisect.bisect_right(RI, idx))
                        covered = max(covered, idx)
                        continue
                    if prev is not None and idx <= prev:
                        ro.bad(f"node {node} group {g} incarnation {n_inc}: index {idx} "
                               f"(event {eid}) after index {prev}")
                        continue
                    if idx in announced:
                        ro.bad(f"node {node} group {g} incarnation {n_inc}: index {idx} "
                               f"(event {eid}) announced again (an earlier incarnation did)")
                    prev = idx
                    p = bisect.bisect_left(RI, idx)
                    missing = [m for m in RI[pos:p] if m not in announced]
                    if missing:
                        if all(m <= covered for m in missing):
                            snapshot_skips += len(missing)
                            if strict_snapshots:
                                rg.bad(f"node {node} group {g}: indexes {missing[0]}..{missing[-1]} "
                                       f"({len(missing)}) skipped by a snapshot (strict)")
                        else:
                            rg.bad(f"node {node} group {g} incarnation {n_inc}: gap before "
                                   f"index {idx}: missing {_span(missing)}")
                    started = True
                    pos = p + 1
                if started:
                    last_of[(node, g)] = prev
                elif items:
                    last_of[(node, g)] = None
                announced.update(idx for kind, idx, _, _ in items if kind == "entry")
    if snapshot_skips:
        rg.notes.append(f"{snapshot_skips} entries skipped by snapshot_applied (allowed"
                        f"{'' if not strict_snapshots else ' only without --strict-snapshots'})")
    stats["snapshot_skips"] = snapshot_skips
    stats["snapshots_applied"] = sum(1 for rows in events.values() for e in rows
                                     if e["event_type"] == "snapshot_applied")
    stats["incarnations"] = rg.checked

    # ------------------------------------------------------------------ converged
    rc = res["converged"]
    rows_by_group = defaultdict(dict)
    for node, rows in final.items():
        for row in rows:
            rows_by_group[row["group_id"]][node] = row
    all_groups = sorted(set(rows_by_group) | set(ref))
    for g in all_groups:
        rc.checked += 1
        rows = rows_by_group.get(g, {})
        leaders = [(row["term"], node) for node, row in rows.items() if row["role"] == "leader"]
        if not leaders:
            rc.bad(f"group {g}: no leader after healing (rows from nodes {sorted(rows)})")
            continue
        _, lnode = max(leaders)
        lrow = rows[lnode]
        members = sorted(set(lrow.get("voters") or []) | set(lrow.get("learners") or []))
        top = ref_idx.get(g, [None])[-1] if ref_idx.get(g) else None
        for m in members:
            row = rows.get(m)
            if row is None:
                rc.bad(f"group {g}: member node {m} has no replica (leader node {lnode})")
                continue
            if row["applied_index"] != lrow["applied_index"]:
                rc.bad(f"group {g}: node {m} applied {row['applied_index']}, "
                       f"leader node {lnode} applied {lrow['applied_index']}")
            if top is not None and m in events and last_of.get((m, g)) != top:
                rc.bad(f"group {g}: member node {m}'s events end at {last_of.get((m, g))}, "
                       f"the log's at {top}")

    # --------------------------------------------------------- commands vs history
    submits = [o for o in history if o.get("type") == "submit"]
    changes = [o for o in history if o.get("type") == "membership"]
    cmd_at = defaultdict(list)              # (g, cmd) -> indexes (command events)
    for g, log in ref.items():
        for idx, what in log.items():
            if what[0] == "command" and what[1] is not None:
                cmd_at[(g, what[1])].append(idx)

    ra = res["acked-present"]
    for o in submits:
        if o.get("outcome") != "ok":
            continue
        ra.checked += 1
        g, idx = o["group"], o["index"]
        want = ("command", o["cmd"], o["payload"], None, None)
        got = ref.get(g, {}).get(idx)
        if got is None or got[:5] != want:
            where = sorted(cmd_at.get((g, o["cmd"]), []))
            ra.bad(f"group {g}: acked submit {o['cmd']} returned index {idx}, log has "
                   f"{got} there; the command is at {where or 'no index'}")
    for o in changes:
        if o.get("outcome") != "ok":
            continue
        ra.checked += 1
        got = ref.get(o["group"], {}).get(o["index"])
        if (got is None or got[0] != "membership_change" or got[3] != o["target"]
                or got[4] != o["change"] or (got[1] is not None and got[1] != o["cmd"])):
            ra.bad(f"group {o['group']}: acked {o['change']} of node {o['target']} "
                   f"({o['cmd']}) returned index {o['index']}, log has {got} there")

    # A change that errored as invalid (refused by its node's view, or by the
    # leader's through the log) never commits: SPEC's "a call that errors changes
    # nothing" (docs/multiraft-layer.md: a refusal is the id's final answer).
    changed = {(g, what[1]) for g, log in ref.items() for what in log.values()
               if what[0] == "membership_change" and what[1] is not None}
    refused = [o for o in changes if o.get("outcome") == "error" and
               ("invalid multiraft.change_membership" in (o.get("error") or "") or
                "is not a member of group" in (o.get("error") or ""))]
    for o in refused:
        ra.checked += 1
        if (o["group"], o["cmd"]) in changed:
            ra.bad(f"group {o['group']}: {o['change']} of node {o['target']} ({o['cmd']}) "
                   f"failed as invalid, yet committed")
    if refused:
        ra.notes.append(f"{len(refused)} membership changes refused as invalid, none committed"
                        if ra.ok else f"{len(refused)} membership changes refused as invalid")

    rd = res["no-duplicates"]
    for (g, cmd), idxs in cmd_at.items():
        rd.checked += 1
        if len(idxs) > 1:
            rd.bad(f"group {g}: command {cmd} committed at indexes {sorted(idxs)}")

    ru = res["unknown-at-most-once"]
    unknown_found = unknown_lost = 0
    outcomes = defaultdict(set)             # logical command -> outcomes of its attempts
    for o in submits:
        outcomes[(o["group"], o["cmd"])].add(o.get("outcome"))
    for key, ocs in outcomes.items():
        if "ok" in ocs:
            continue
        ru.checked += 1
        n = len(cmd_at.get(key, []))
        if ocs == {"fail"} and n:
            ru.bad(f"group {key[0]}: {key[1]} never reached a server (connect failed) "
                   f"yet committed")
        elif n > 1:
            ru.bad(f"group {key[0]}: {key[1]} ({sorted(ocs)}) committed {n} times")
        elif n == 1:
            unknown_found += 1
        else:
            unknown_lost += 1
    stats["retried_commands"] = sum(1 for o in submits if o.get("attempt", 0) > 0)
    stats["unknown_committed"] = unknown_found
    stats["unknown_absent"] = unknown_lost

    rp = res["no-phantoms"]
    submitted = {(o["group"], o["cmd"]): o["payload"] for o in submits}
    for (g, cmd), idxs in cmd_at.items():
        rp.checked += 1
        if (g, cmd) not in submitted:
            rp.bad(f"group {g}: command {cmd} at {idxs} was never submitted to this group")
        else:
            for idx in idxs:
                if ref[g][idx][2] != submitted[(g, cmd)]:
                    rp.bad(f"group {g}: command {cmd} at {idx} carries payload "
                           f"{ref[g][idx][2]}, submitted {submitted[(g, cmd)]}")

    # --------------------------------------------------------------- real time
    # A submit retried with the same command id is one logical command: it may have
    # been appended as early as its first attempt began.
    first_invoke = {}
    for o in submits:
        key = (o["group"], o["cmd"])
        first_invoke[key] = min(first_invoke.get(key, o["invoke"]), o["invoke"])
    acks = defaultdict(list)                # g -> [(complete, index, desc)]
    for o in submits + changes:
        if o.get("outcome") == "ok":
            acks[o["group"]].append((o["complete"], o["index"], o.get("cmd")))
    prefix = {}
    for g, lst in acks.items():
        lst.sort()
        times, best, run = [], [], (-1, None)
        for t, idx, cmd in lst:
            if idx > run[0]:
                run = (idx, cmd)
            times.append(t)
            best.append(run)
        prefix[g] = (times, best)

    def max_before(g, t):
        if g not in prefix:
            return (-1, None)
        times, best = prefix[g]
        k = bisect.bisect_left(times, t)
        return best[k - 1] if k else (-1, None)

    rr = res["read-index"]
    for o in history:
        if o.get("type") != "read" or o.get("outcome") != "ok":
            continue
        rr.checked += 1
        m, cmd = max_before(o["group"], o["invoke"])
        if o["index"] < m:
            rr.bad(f"group {o['group']}: read_index on node {o['node']} at t={o['invoke']:.3f} "
                   f"returned {o['index']} < {m} (of {cmd}, acknowledged before)")
    rt = res["realtime-order"]
    for o in submits + changes:
        if o.get("outcome") != "ok":
            continue
        rt.checked += 1
        began = first_invoke.get((o["group"], o.get("cmd")), o["invoke"]) \
            if o["type"] == "submit" else o["invoke"]
        m, cmd = max_before(o["group"], began)
        if o["index"] <= m:
            rt.bad(f"group {o['group']}: {o.get('cmd')} began at t={o['invoke']:.3f} after "
                   f"{cmd} was acknowledged at index {m}, yet got index {o['index']}")

    # A check of nothing passes vacuously: a run whose clients all failed, or whose
    # events were not read, passed every check (found by a review of the checks).
    for name in ("agreement", "acked-present", "no-duplicates", "read-index",
                 "realtime-order"):
        if res[name].checked == 0:
            res[name].bad("nothing to check: no events or no acknowledged operations")

    stats["groups_in_log"] = len(ref)
    stats["log_entries"] = sum(len(v) for v in ref.values())
    return list(res.values()), stats


def _span(xs):
    if len(xs) <= 6:
        return str(xs)
    return f"{xs[:3]}..{xs[-3:]} ({len(xs)} entries)"


# ------------------------------------------------------------------- file I/O
def _open(path):
    """path, or path + '.gz' (chaos.py compresses the large files after checking)."""
    import gzip
    if os.path.exists(path):
        return open(path)
    return gzip.open(path + ".gz", "rt")


def load_dir(d):
    """Read a results directory written by chaos.py."""
    history = []
    with _open(os.path.join(d, "history.jsonl")) as f:
        for line in f:
            if line.strip():
                history.append(json.loads(line))
    events, final = {}, {}
    for name in sorted(os.listdir(os.path.join(d, "events"))):
        base = name[:-3] if name.endswith(".gz") else name
        node = int(base[len("node"):-len(".jsonl")])
        with _open(os.path.join(d, "events", base)) as f:
            events[node] = [json.loads(l) for l in f if l.strip()]
    for name in sorted(os.listdir(os.path.join(d, "final"))):
        node = int(name[len("node"):-len(".json")])
        with open(os.path.join(d, "final", name)) as f:
            final[node] = json.load(f)
    return history, events, final


def main(argv):
    import argparse
    ap = argparse.ArgumentParser(description="check a chaos results directory")
    ap.add_argument("dir")
    ap.add_argument("--strict-snapshots", action="store_true")
    a = ap.parse_args(argv)
    results, stats = check(*load_dir(a.dir), strict_snapshots=a.strict_snapshots)
    for r in results:
        print("chaos: " + r.line())
        for v in r.violations:
            print("    " + v)
        for n in r.notes:
            print("    note: " + n)
    bad = sum(not r.ok for r in results)
    print(f"chaos: {len(results) - bad} passed, {bad} failed")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
