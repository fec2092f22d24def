#!/usr/bin/env python3
"""Jepsen-style chaos test of multiraft: 5 servers, 50 overlapping 3-member groups,
concurrent clients, a seeded nemesis (kill -9, partitions, pauses, membership
changes, leadership transfers), then heal, converge and check.  Run it through
test/chaos/run (installs what it needs; must be root for iptables).

Phases: set-up -> groups -> clients + nemesis for --minutes -> heal ->
final command per group -> converge (bounded poll) -> dump events -> check ->
report (results/<timestamp>-seed<seed>/report.md).  Exit 0 only if every check
passed; the last line is "chaos: N passed, M failed".
"""

import argparse
import atexit
import datetime
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import checker            # noqa: E402
import report             # noqa: E402
import pgconn             # noqa: E402
from cluster import Cluster       # noqa: E402
from clients import Client, Membership   # noqa: E402
from netfault import Net          # noqa: E402
from nemesis import Nemesis, draw_schedule, FAULT_KINDS   # noqa: E402

GROUP_COLS = ("group_id", "role", "term", "leader_node_id", "commit_index",
              "applied_index", "first_index", "last_index", "quiesced", "voters", "learners")


def parse_args(argv):
    ap = argparse.ArgumentParser(description="Jepsen-style chaos test of multiraft (docs/chaos.md)")
    ap.add_argument("--minutes", type=float, default=2.0, help="length of the fault phase")
    ap.add_argument("--seed", type=int, default=None, help="replay a nemesis schedule")
    ap.add_argument("--nodes", type=int, default=5)
    ap.add_argument("--groups", type=int, default=50)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--base-port", type=int, default=55400, help="node k listens on base+k")
    ap.add_argument("--tick", default="20ms", help="multiraft.tick_interval")
    ap.add_argument("--set", action="append", default=[], metavar="GUC=VALUE",
                    help="extra postgresql.conf line for every node (repeatable), "
                         "e.g. --set multiraft.election_ticks=30")
    ap.add_argument("--faults", default=",".join(FAULT_KINDS),
                    help="comma list of kill,partition,pause,kill+partition (or none)")
    ap.add_argument("--intensity", default="normal", choices=("normal", "high"),
                    help="fault hold times and gaps: normal 3-10s / 1.5-5s, high 1-5s / 0.3-2s")
    ap.add_argument("--admin", default="membership,transfer",
                    help="comma list of membership,transfer (or none)")
    ap.add_argument("--converge-timeout", type=float, default=None,
                    help="bound of heal + final commands + convergence (default 60s + 20s/minute, at most 180s)")
    ap.add_argument("--quiet", type=float, default=5.0,
                    help="seconds of no faults and no clients after convergence")
    ap.add_argument("--strict-liveness", action="store_true",
                    help="count leader churn in the quiet period (no-churn) as a failure")
    ap.add_argument("--strict-snapshots", action="store_true",
                    help="count entries skipped by a snapshot as gaps")
    ap.add_argument("--results", default=None, help="results directory (default: results/<ts>)")
    ap.add_argument("--workdir", default=None, help="cluster directory (default /tmp/mrchaos-<pid>)")
    ap.add_argument("--keep", action="store_true", help="keep the cluster directory")
    a = ap.parse_args(argv)
    if a.seed is None:
        a.seed = random.SystemRandom().randrange(1, 10**6)
    a.fault_kinds = [k for k in a.faults.split(",") if k and k != "none"]
    a.admin_kinds = [k for k in a.admin.split(",") if k and k != "none"]
    for k in a.fault_kinds:
        if k not in FAULT_KINDS:
            ap.error(f"unknown fault {k}")
    for k in a.admin_kinds:
        if k not in ("membership", "transfer"):
            ap.error(f"unknown admin step {k}")
    if a.converge_timeout is None:
        a.converge_timeout = min(180.0, 60.0 + 20.0 * a.minutes)
    if a.nodes < 3 or a.nodes > 9:
        ap.error("--nodes must be 3..9")
    return a


class Run:
    def __init__(self, a):
        self.a = a
        ts = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        self.results = a.results or os.path.join(HERE, "results", f"{ts}-seed{a.seed}")
        self.workdir = a.workdir or f"/tmp/mrchaos-{os.getpid()}"
        os.makedirs(self.results, exist_ok=True)
        self.runlog = open(os.path.join(self.results, "run.log"), "a")
        self.hist_lock = threading.Lock()
        self.history = []
        self.t0 = None
        self.cluster = None
        self.net = None
        self.nemesis = None
        self.stop_clients = None
        self.cleaned = False
        self.phase_times = {}
        self.warnings = []          # liveness results that do not fail the run

    # ------------------------------------------------------------------ logging
    def log(self, msg):
        line = f"[{datetime.datetime.now().strftime('%H:%M:%S')}] {msg}"
        print(line, flush=True)
        self.runlog.write(line + "\n")
        self.runlog.flush()

    def record(self, op):
        with self.hist_lock:
            self.history.append(op)

    def now(self):
        return time.monotonic() - self.t0

    # --------------------------------------------------------------- clean-up
    def cleanup(self):
        if self.cleaned:
            return
        self.cleaned = True
        # Stop the clients and the nemesis first, and wait for a fault step in flight
        # (a restart takes up to a minute) so that nothing starts a server or adds a
        # rule behind our back.
        if self.cluster is not None:
            self.cluster.closing = True
        if self.stop_clients is not None:
            self.stop_clients.set()
        if self.nemesis is not None:
            self.nemesis.stop.set()
            if not self.nemesis.lock.acquire(timeout=90):
                self.log("cleanup: a nemesis step is still running; cleaning up anyway")
        if self.net is not None:
            try:
                self.net.cleanup()
            except Exception as e:
                self.log(f"cleanup: iptables: {e}")
        if self.cluster is not None:
            for node in self.cluster.nodes.values():
                node.resume()
            self.cluster.shutdown()
            logs = os.path.join(self.results, "logs")
            os.makedirs(logs, exist_ok=True)
            for node in self.cluster.nodes.values():
                if os.path.exists(node.logfile):
                    shutil.copy(node.logfile, logs)
        if not self.a.keep and os.path.isdir(self.workdir):
            shutil.rmtree(self.workdir, ignore_errors=True)

    # ------------------------------------------------------------------ phases
    def reap_leftovers(self):
        """Servers and directories of an earlier run that was killed outright (SIGKILL
        cannot be trapped): /tmp/mrchaos-<pid> whose runner <pid> is gone."""
        import glob
        from cluster import children_of
        for d in glob.glob("/tmp/mrchaos-*"):
            tail = d.rsplit("-", 1)[-1]
            if not tail.isdigit() or os.path.exists(f"/proc/{tail}") or d == self.workdir:
                continue
            for pidfile in glob.glob(os.path.join(d, "node*", "postmaster.pid")):
                try:
                    pid = int(open(pidfile).readline())
                    cmd = open(f"/proc/{pid}/cmdline", "rb").read().decode(errors="replace")
                except (OSError, ValueError):
                    continue
                if os.path.dirname(pidfile) in cmd:
                    self.log(f"killing leftover server {pid} of {d}")
                    for p in children_of(pid) + [pid]:
                        try:
                            os.kill(p, signal.SIGKILL)
                        except ProcessLookupError:
                            pass
            shutil.rmtree(d, ignore_errors=True)

    def preflight(self):
        if os.geteuid() != 0:
            raise RuntimeError("must run as root (iptables, servers run as postgres)")
        libdir = subprocess.run(["pg_config", "--pkglibdir"], capture_output=True,
                                text=True).stdout.strip()
        if not os.path.exists(os.path.join(libdir, "multiraft.so")):
            raise RuntimeError(f"multiraft.so is not installed in {libdir} (make install)")
        self.reap_leftovers()
        os.makedirs(self.workdir, exist_ok=True)
        os.chmod(self.workdir, 0o755)
        shim = os.path.join(self.workdir, "bindsrc.so")
        subprocess.run(["gcc", "-shared", "-fPIC", "-O2", "-o", shim,
                        os.path.join(HERE, "bindsrc.c"), "-ldl"], check=True)
        os.chmod(shim, 0o755)
        return shim

    def create_groups(self):
        rng = random.Random(f"groups:{self.a.seed}")
        nodes = sorted(self.cluster.nodes)
        initial = {}
        for g in range(1, self.a.groups + 1):
            members = sorted(rng.sample(nodes, 3))
            initial[g] = members
            via = self.cluster.nodes[rng.choice(members)]
            via.sql("SELECT multiraft.create_group(%s, %s)", (g, members), timeout=30)
        return initial

    def group_rows(self, node, timeout=3):
        rows = node.sql(f"SELECT {', '.join(GROUP_COLS)} FROM multiraft.groups", timeout=timeout)
        return [dict(zip(GROUP_COLS, r)) for r in rows]

    def snapshot_groups(self):
        out = {}
        for k, node in self.cluster.nodes.items():
            try:
                out[k] = self.group_rows(node)
            except pgconn.Failure as f:
                self.log(f"node{k}: groups view unreadable: {f}")
        return out

    def verify_isolation(self, shim):
        """The partition nemesis must be real: peers' connections come from their own
        addresses (the shim works inside the servers), and a cut link blocks."""
        seen = set()
        for node in self.cluster.nodes.values():
            rows = node.sql("SELECT DISTINCT host(client_addr) FROM pg_stat_activity "
                            "WHERE client_addr IS NOT NULL AND application_name <> 'mrchaos'")
            seen |= {r[0] for r in rows}
        own = {n.addr for n in self.cluster.nodes.values()}
        self.log(f"peer connections come from {sorted(seen)}")
        if seen - own:
            return f"peer connections from {sorted(seen - own)}: the bindsrc shim is not effective"

        def probe(src, dst):
            code = ("import socket;s=socket.socket();s.settimeout(1.5);"
                    f"s.connect(('{dst.addr}',{dst.port}));print('ok')")
            env = dict(os.environ, LD_PRELOAD=shim, MRCHAOS_BIND_ADDR=src.addr)
            r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
            return r.stdout.strip() == "ok"
        n1, n2 = self.cluster.nodes[1], self.cluster.nodes[2]
        before = probe(n1, n2)
        self.net.cut_link(1, 2)
        during = probe(n1, n2) or probe(n2, n1)
        self.net.heal()
        after = probe(n1, n2)
        if not (before and not during and after):
            return f"iptables cut does not work (reachable before/during/after: {before}/{during}/{after})"
        self.log("iptables cut of link 1-2 verified (reachable, blocked, reachable again)")
        return None

    def wait_ready(self, timeout):
        """Every group has a leader and all its members have applied as far."""
        deadline = time.monotonic() + timeout
        reason = None
        while time.monotonic() < deadline:
            reason = self.converged(self.snapshot_groups(), want_voters=3)
            if reason is None:
                return True
            time.sleep(0.5)
        self.log(f"groups not ready after {timeout:.0f}s: {reason}")
        return False

    def poll_converged(self, deadline):
        reason, snap = "not polled", {}
        while time.monotonic() < deadline:
            snap = self.snapshot_groups()
            reason = self.converged(snap)
            if reason is None:
                break
            time.sleep(1)
        return reason, snap

    def converged(self, snap, want_voters=None):
        """None if converged, else a reason."""
        by_group = {}
        for node, rows in snap.items():
            for r in rows:
                by_group.setdefault(r["group_id"], {})[node] = r
        for g in range(1, self.a.groups + 1):
            rows = by_group.get(g, {})
            leaders = [(r["term"], n) for n, r in rows.items() if r["role"] == "leader"]
            if not leaders:
                return f"group {g} has no leader"
            lrow = rows[max(leaders)[1]]
            if want_voters is not None and len(lrow["voters"] or []) != want_voters:
                return f"group {g} has voters {lrow['voters']}"
            if lrow["applied_index"] < lrow["commit_index"]:
                return f"group {g} leader applied {lrow['applied_index']} < commit {lrow['commit_index']}"
            for m in set(lrow["voters"] or []) | set(lrow["learners"] or []):
                r = rows.get(m)
                if r is None or r["applied_index"] != lrow["applied_index"]:
                    return (f"group {g} node {m} applied "
                            f"{None if r is None else r['applied_index']} != {lrow['applied_index']}")
        return None

    def final_commands(self, membership, deadline):
        """One more command per group, retried until it commits (or the deadline):
        a group that cannot commit after healing is reported by 'converged'."""
        pending = list(range(1, self.a.groups + 1))
        attempt = 0
        lock = threading.Lock()

        def worker():
            nonlocal attempt
            while time.monotonic() < deadline:
                with lock:
                    if not pending:
                        return
                    g = pending.pop(0)
                    attempt += 1
                    n_try = attempt
                members = membership.members(g)
                node = members[n_try % len(members)]
                cmd = f"final-{g}-{n_try}"
                payload = f"{cmd}:final".encode()
                op = {"type": "submit", "client": "final", "group": g, "node": node,
                      "cmd": cmd, "payload": payload.hex(), "invoke": self.now()}
                try:
                    c = pgconn.connect(self.cluster.nodes[node].dsn(), time.monotonic() + 3)
                    try:
                        rows = c.query("SELECT multiraft.submit(%s, %s, %s, %s)",
                                       (g, payload, cmd, 5000), deadline=time.monotonic() + 8)
                        op.update(outcome="ok", index=int(rows[0][0]))
                    finally:
                        c.close()
                except pgconn.Failure as f:
                    op.update(outcome=f.kind if f.kind != "connect" else "fail", error=f.message)
                op["complete"] = self.now()
                self.record(op)
                if op["outcome"] != "ok":
                    membership.refresh(g)
                    with lock:
                        pending.append(g)
                    time.sleep(0.5)

        threads = [threading.Thread(target=worker, daemon=True) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(max(0.0, deadline - time.monotonic()) + 15)
        return pending

    def dump_events(self):
        os.makedirs(os.path.join(self.results, "events"), exist_ok=True)
        os.makedirs(os.path.join(self.results, "final"), exist_ok=True)
        cols = ("event_id", "group_id", "event_type", "log_index", "term", "command_id",
                "payload", "node_id", "change_type", "at")
        events = {}
        for k, node in self.cluster.nodes.items():
            try:
                rows = node.sql("SELECT event_id, group_id, event_type, log_index, term, "
                                "command_id, encode(payload, 'hex'), node_id, change_type, "
                                "extract(epoch FROM created_at)::float8 - %s "
                                "FROM multiraft.events ORDER BY event_id", (self.t0_wall,), timeout=120)
            except pgconn.Failure as f:
                self.log(f"node{k}: events unreadable: {f}")
                continue
            events[k] = [dict(zip(cols, r)) for r in rows]
            with open(os.path.join(self.results, "events", f"node{k}.jsonl"), "w") as f:
                for e in events[k]:
                    f.write(json.dumps(e) + "\n")
        return events

    def write_final(self, final):
        os.makedirs(os.path.join(self.results, "final"), exist_ok=True)
        for k, rows in final.items():
            with open(os.path.join(self.results, "final", f"node{k}.json"), "w") as f:
                json.dump(rows, f)

    def main(self):
        a = self.a
        self.log(f"chaos: seed={a.seed} minutes={a.minutes} nodes={a.nodes} groups={a.groups} "
                 f"clients={a.clients} faults={a.fault_kinds} admin={a.admin_kinds} "
                 f"results={self.results}")
        shim = self.preflight()
        self.cluster = Cluster(a.nodes, self.workdir, a.base_port, shim, a.tick, self.log,
                               extra_conf=a.set, prefix=os.path.join(self.workdir, "pg"))
        self.log(f"servers run a private copy of the installed PostgreSQL + multiraft "
                 f"(sha256 of multiraft.so {self.cluster.lib_digest[:16]}…)")
        self.net = Net(self.cluster.nodes, f"MRCHAOS_{a.base_port}", self.log)
        t = time.monotonic()
        self.cluster.setup()
        self.net.setup()
        initial = self.create_groups()
        if not self.wait_ready(90):
            return self.finish_setup_failure("groups did not come up on all members")
        why = self.verify_isolation(shim)
        if why:
            return self.finish_setup_failure(why)
        self.phase_times["setup"] = time.monotonic() - t

        duration = a.minutes * 60.0
        schedule = draw_schedule(a.seed, duration, a.nodes, a.groups, a.fault_kinds, a.admin_kinds,
                                 intensity=a.intensity)
        with open(os.path.join(self.results, "nemesis-schedule.json"), "w") as f:
            json.dump(schedule, f, indent=1)
        membership = Membership(self.cluster, initial)
        self.t0 = time.monotonic()
        self.t0_wall = time.time()
        self.record({"type": "meta", "t0_wall": self.t0_wall, "seed": a.seed,
                     "minutes": a.minutes})
        stop = threading.Event()
        self.stop_clients = stop
        self.nemesis = Nemesis(self.cluster, self.net, membership, schedule, self.record,
                               self.log, self.t0, self.t0 + duration)
        threads = [Client(i, self.cluster, membership, a.seed, self.record, self.t0, stop)
                   for i in range(1, a.clients + 1)]
        threads.append(threading.Thread(target=self.nemesis.run_faults, daemon=True))
        threads.append(threading.Thread(target=self.nemesis.run_admin, daemon=True))
        for th in threads:
            th.start()
        self.log(f"running clients and nemesis for {duration:.0f}s")
        last = 0
        while time.monotonic() < self.t0 + duration:
            time.sleep(1)
            if self.now() - last >= 30:
                last = self.now()
                self.log(f"t={last:.0f}s ops={len(self.history)} "
                         f"ok={sum(1 for o in self.history if o.get('outcome') == 'ok')}")
        stop.set()
        self.nemesis.stop.set()
        for th in threads:
            th.join(30)
        self.nemesis.heal_all(reason="final-heal")
        self.log(f"healed; ops={len(self.history)}; committing one command per group")

        t = time.monotonic()
        left = self.final_commands(membership, time.monotonic() + a.converge_timeout * 0.6)
        if left:
            self.log(f"groups without a final commit: {sorted(left)[:20]}")
        reason, _ = self.poll_converged(time.monotonic() + a.converge_timeout * 0.4 + 10)
        self.log("converged" if reason is None else f"did not converge: {reason}")
        # A quiet period with every node up and connected and no client: the state
        # must stay converged (elections now are leader churn without any fault).
        self.heal_done = self.now()
        ticks0 = self.read_ticks()
        diag0 = self.read_diag()
        time.sleep(a.quiet)
        self.tick_loss = self.tick_deficit(ticks0, self.read_ticks())
        diag1 = self.read_diag()
        self.quiet_diag = self.diag_delta(diag0, diag1)
        with open(os.path.join(self.results, "quiet-diag.json"), "w") as f:
            json.dump({"before": diag0, "after": diag1}, f, indent=1, default=str)
        self.log(f"quiet period: ticks each node's worker missed: {self.tick_loss} "
                 f"(a worker that stalls longer than an election timeout looks dead to its peers)")
        reason, final = self.poll_converged(time.monotonic() + 30)
        self.quiet_end = self.now()
        self.phase_times["converge"] = time.monotonic() - t
        self.log("still converged after the quiet period" if reason is None
                 else f"not converged after the quiet period: {reason}")
        self.write_final(final)
        events = self.dump_events()
        self.write_history()
        results, stats = checker.check(self.history, events, final,
                                       strict_snapshots=a.strict_snapshots)
        try:
            self.cluster.check_lib()
        except RuntimeError:
            pass
        if self.cluster.lib_changed is not None:
            r = checker.Result("same-binary")
            r.checked = 1
            r.bad(f"{self.cluster.lib} was replaced during the run (seen at "
                  f"{self.cluster.lib_changed}; another 'make install'?): the run is void, "
                  f"rerun it")
            results.append(r)
        results.append(self.conflicts_check())
        churn = self.churn_check(events)
        if a.strict_liveness:
            results.append(churn)
        else:
            self.warnings.append(churn)
        if len(events) != len(self.cluster.nodes):
            r = checker.Result("all-nodes-read")
            r.checked = len(self.cluster.nodes)
            r.bad(f"events read from nodes {sorted(events)} only")
            results.append(r)
        self.cleanup()
        self.compress()
        return self.report(results, stats, schedule, reason)

    def compress(self):
        """gzip history and events (a 30-minute run writes ~250 MB of them)."""
        import glob
        import gzip
        paths = [os.path.join(self.results, "history.jsonl")]
        paths += glob.glob(os.path.join(self.results, "events", "*.jsonl"))
        for p in paths:
            if os.path.exists(p):
                with open(p, "rb") as src, gzip.open(p + ".gz", "wb", compresslevel=6) as dst:
                    shutil.copyfileobj(src, dst)
                os.remove(p)

    def read_diag(self):
        """multiraft.stats and the transport counters of multiraft.nodes, per node."""
        out = {}
        for k, node in self.cluster.nodes.items():
            try:
                stats = dict(node.sql("SELECT name, value FROM multiraft.stats", timeout=3))
                peers = node.sql("SELECT node_id, connected, state, dropped, send_errors, "
                                 "connects, queue_length FROM multiraft.nodes", timeout=3)
                out[k] = {"stats": {n: int(v) for n, v in stats.items()},
                          "peers": {p[0]: {"connected": p[1], "state": p[2], "dropped": p[3],
                                           "send_errors": p[4], "connects": p[5],
                                           "queue_length": p[6]} for p in peers}}
            except (pgconn.Failure, ValueError, TypeError):
                pass
        return out

    def diag_delta(self, a, b):
        """Non-zero changes of drop/error/reconnect/election counters during the quiet period."""
        out = {}
        for k in sorted(set(a) & set(b)):
            d = {}
            for name in ("messages_dropped", "elections_started", "leaders_elected"):
                v = b[k]["stats"].get(name, 0) - a[k]["stats"].get(name, 0)
                if v:
                    d[name] = v
            for peer, pb in b[k]["peers"].items():
                pa = a[k]["peers"].get(peer, {})
                for c in ("dropped", "send_errors", "connects"):
                    v = (pb.get(c) or 0) - (pa.get(c) or 0)
                    if v:
                        d[f"to{peer}.{c}"] = v
            if d:
                out[k] = d
        return out

    def read_ticks(self):
        out = {}
        for k, node in self.cluster.nodes.items():
            try:
                rows = node.sql("SELECT value FROM multiraft.stats WHERE name = 'ticks'", timeout=3)
                out[k] = (time.monotonic(), int(rows[0][0]))
            except (pgconn.Failure, IndexError, ValueError, TypeError):
                pass
        return out

    def tick_deficit(self, a, b):
        ms = float(self.a.tick.rstrip("ms")) if self.a.tick.endswith("ms") else 1000 * float(self.a.tick.rstrip("s"))
        out = {}
        for k in sorted(set(a) & set(b)):
            expected = (b[k][0] - a[k][0]) * 1000.0 / ms
            out[k] = max(0, round(expected - (b[k][1] - a[k][1])))
        return out

    def conflicts_check(self):
        """No node may refuse a message as coming from another group under the same
        id (the worker's "replica ids contradict" warning, replica_conflicts in
        multiraft.stats; docs/sim-findings.md, finding 20).  Every group of a run is
        created once, so such a refusal would be a legitimate replacement refused.
        The server logs are read, not the counters: they survive the kills."""
        r = checker.Result("no-replica-conflicts")
        for k, node in sorted(self.cluster.nodes.items()):
            r.checked += 1
            try:
                with open(node.logfile, errors="replace") as f:
                    for line in f:
                        if "whose replica ids contradict" in line:
                            r.bad(f"node{k}: {line.strip()[:300]}")
            except OSError as e:
                r.bad(f"node{k}: server log unreadable: {e}")
        return r

    def churn_check(self, events):
        """No election may start after the cluster converged with every fault
        healed: all nodes up, all links open, no clients, no admin steps."""
        r = checker.Result("no-churn")
        r.checked = self.a.groups
        seen = {}
        for node, rows in events.items():
            for e in rows:
                if (e["event_type"] in ("election_started", "leader_elected")
                        and e.get("at") is not None and e["at"] > self.heal_done):
                    seen.setdefault(e["group_id"], set()).add(
                        (e["term"], e["event_type"], e["node_id"], node, round(e["at"], 2)))
        if getattr(self, "quiet_diag", None):
            r.notes.append(f"counter changes per node during the quiet period: {self.quiet_diag}")
        if getattr(self, "tick_loss", None):
            r.notes.append(f"ticks missed per node during the quiet period: {self.tick_loss}")
        for g in sorted(seen):
            r.bad(f"group {g}: during the quiet period t={self.heal_done:.1f}..{self.quiet_end:.1f}s: "
                  + ", ".join(f"{t} term {term} node {n} (seen by {by} at {at}s)"
                              for term, t, n, by, at in sorted(seen[g])))
        return r

    def finish_setup_failure(self, why):
        self.log(f"chaos: set-up failed: {why}")
        self.write_history()
        self.cleanup()
        with open(os.path.join(self.results, "report.md"), "w") as f:
            f.write(f"# chaos run, seed {self.a.seed}\n\nSet-up failed: {why}\n")
        print("chaos: check setup: FAIL")
        print("chaos: 0 passed, 1 failed")
        return 1

    def write_history(self):
        with open(os.path.join(self.results, "history.jsonl"), "w") as f:
            for op in self.history:
                f.write(json.dumps(op) + "\n")

    # ------------------------------------------------------------------ report
    def report(self, results, stats, schedule, converge_reason):
        text = report.render(self.a, self.history, results, stats, schedule,
                             self.nemesis.counts, converge_reason, self.phase_times,
                             self.results, warnings=self.warnings)
        with open(os.path.join(self.results, "report.md"), "w") as f:
            f.write(text)
        for r in results:
            self.log("chaos: " + r.line())
            for v in r.violations:
                self.log("    " + v)
            for n in r.notes:
                self.log("    note: " + n)
        for r in self.warnings:
            self.log("chaos: liveness " + r.line().replace("FAIL", "WARNING")
                     + ("" if r.ok else " — not counted; --strict-liveness counts it"))
            for v in r.violations[:5]:
                self.log("    " + v[:300])
            for n in r.notes:
                self.log("    note: " + n)
        bad = sum(not r.ok for r in results)
        self.log(f"report: {os.path.join(self.results, 'report.md')}")
        self.log(f"replay: test/chaos/run --minutes {self.a.minutes} --seed {self.a.seed}")
        print(f"chaos: {len(results) - bad} passed, {bad} failed", flush=True)
        return 1 if bad else 0


class Interrupted(Exception):
    pass


def main(argv):
    a = parse_args(argv)
    run = Run(a)
    atexit.register(run.cleanup)

    def on_signal(signum, _frame):
        raise Interrupted(f"signal {signum}")
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    try:
        return run.main()
    except (Interrupted, SystemExit) as e:
        run.log(f"chaos: stopped: {e}")
    except Exception as e:
        import traceback
        traceback.print_exc()
        run.log(f"chaos: aborted: {e!r}")
    finally:
        # A second signal during clean-up must not leave rules or stopped processes.
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)
        run.cleanup()
    print("chaos: 0 passed, 1 failed", flush=True)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
