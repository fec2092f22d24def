"""Concurrent clients and the shared view of group membership.

Each client thread loops until told to stop: it picks a random group and a random
member node of it, and either submits a command with a unique id (c<client>-<seq>)
or takes a read_index.  Every invocation is recorded with its outcome:
  ok       (with the returned index)
  fail     the statement was never sent (connect failed): definitely not executed
  error    the server raised an error: unknown outcome (it may still commit)
  timeout  no answer before the client deadline: unknown outcome
Times are seconds since the run started, on one monotonic clock for all threads.
"""

import random
import threading
import time

import pgconn


class Membership:
    """The runner's belief of each group's members: voters and learners (clients
    pick nodes from all of them; the nemesis keeps groups at >= 3 voters)."""

    def __init__(self, cluster, initial):
        self.cluster = cluster
        self.lock = threading.Lock()
        self.groups = {g: sorted(m) for g, m in initial.items()}
        self.learner_sets = {g: set() for g in initial}

    def members(self, g):
        """Every member: voters and learners."""
        with self.lock:
            return list(self.groups[g])

    def voters(self, g):
        with self.lock:
            return [n for n in self.groups[g] if n not in self.learner_sets[g]]

    def learners(self, g):
        with self.lock:
            return sorted(self.learner_sets[g])

    def apply(self, g, change, target):
        with self.lock:
            v = set(self.groups[g])
            learners = self.learner_sets[g]
            if change in ("add_voter", "add_learner"):
                v.add(target)
                if change == "add_learner":
                    learners.add(target)
                else:
                    learners.discard(target)
            elif change == "remove_voter":
                v.discard(target)
                learners.discard(target)
            self.groups[g] = sorted(v)

    def refresh(self, g):
        """Ask the nodes: the members seen by the leader of the highest term."""
        best = None
        for node in self.cluster.nodes.values():
            if not node.running() or node.paused:
                continue
            try:
                rows = node.sql("SELECT role, term, voters, learners FROM multiraft.groups "
                                "WHERE group_id = %s", (g,), timeout=2)
            except pgconn.Failure:
                continue
            for role, term, voters, learners in rows:
                key = (term, role == "leader")
                if voters and (best is None or key > best[0]):
                    best = (key, sorted(voters), sorted(learners or []))
        if best is not None:
            with self.lock:
                self.groups[g] = best[1] + best[2]
                self.learner_sets[g] = set(best[2])


class Client(threading.Thread):
    def __init__(self, cid, cluster, membership, seed, record, t0, stop,
                 read_ratio=0.2, submit_timeout_ms=3000):
        super().__init__(name=f"client{cid}", daemon=True)
        self.cid = cid
        self.cluster = cluster
        self.membership = membership
        self.rng = random.Random(f"client:{seed}:{cid}")
        self.record = record
        self.t0 = t0
        self.stop = stop
        self.read_ratio = read_ratio
        self.timeout_ms = submit_timeout_ms
        self.conns = {}
        self.seq = 0
        self.groups = sorted(membership.groups)

    def now(self):
        return time.monotonic() - self.t0

    def _conn(self, node_id, deadline):
        c = self.conns.get(node_id)
        if c is None:
            c = pgconn.connect(self.cluster.nodes[node_id].dsn(), deadline=deadline)
            self.conns[node_id] = c
        return c

    def _drop(self, node_id):
        c = self.conns.pop(node_id, None)
        if c is not None:
            c.close()

    def call(self, node_id, sql, params, op):
        """Run sql on node_id, filling op's outcome; returns the rows or None."""
        deadline = time.monotonic() + self.timeout_ms / 1000.0 + 3.0
        op["invoke"] = self.now()
        try:
            c = self._conn(node_id, min(deadline, time.monotonic() + 2.0))
        except pgconn.Failure as f:
            op.update(outcome="fail", error=f.message, complete=self.now())
            return None
        try:
            rows = c.query(sql, params, deadline=deadline)
            op.update(outcome="ok", complete=self.now())
            return rows
        except pgconn.Failure as f:
            op.update(outcome=f.kind, error=f.message, complete=self.now())
            # A timed-out or broken connection is abandoned; an error keeps it usable
            # unless the connection itself died.
            if f.kind != "error" or c.raw.closed:
                self._drop(node_id)
            return None

    def one_op(self):
        g = self.rng.choice(self.groups)
        members = self.membership.members(g)
        if not members:
            return
        node = self.rng.choice(members)
        if self.rng.random() < self.read_ratio:
            op = {"type": "read", "client": self.cid, "group": g, "node": node}
            rows = self.call(node, "SELECT multiraft.read_index(%s, %s)",
                             (g, self.timeout_ms), op)
            if rows:
                op["index"] = int(rows[0][0])
        else:
            self.seq += 1
            cmd = f"c{self.cid}-{self.seq}"
            payload = f"{cmd}:{self.rng.getrandbits(32):08x}".encode()
            # An unknown outcome is retried with the same command id (up to twice,
            # maybe through another member): exactly-once says it commits at most
            # once and an ok retry returns the index of the first commit.  A fifth
            # of the commands go without a command_id (a generated one, bounded
            # dedup: multiraft.generated_id_window) and are never retried — a retry
            # would be a new command; the checker attributes them by payload.
            generated = self.rng.random() < 0.2
            for attempt in range(1 if generated else 3):
                op = {"type": "submit", "client": self.cid, "group": g, "node": node,
                      "cmd": cmd, "payload": payload.hex(), "attempt": attempt,
                      "generated": generated}
                rows = self.call(node, "SELECT multiraft.submit(%s, %s, %s, %s)",
                                 (g, payload, None if generated else cmd, self.timeout_ms),
                                 op)
                if rows:
                    op["index"] = int(rows[0][0])
                self.record(op)
                if op["outcome"] == "ok" or self.stop.is_set() or self.rng.random() < 0.5:
                    return
                members = self.membership.members(g) or members
                node = self.rng.choice(members)
            return
        self.record(op)

    def run(self):
        while not self.stop.is_set():
            try:
                self.one_op()
            except Exception as e:           # a bug here must not end the thread silently
                self.record({"type": "client-error", "client": self.cid,
                             "error": repr(e), "time": self.now()})
                time.sleep(0.1)
        for n in list(self.conns):
            self._drop(n)
