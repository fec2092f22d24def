"""The nemesis: a fault schedule drawn from --seed, and the threads that apply it.

Two schedules are drawn up front from the seed (written to nemesis-schedule.json,
so a run is replayable with the same --seed and --minutes):

  faults  one fault at a time, each held for a few seconds and then healed,
          with a quiet gap after it: kill -9 + restart of 1-2 nodes, a network
          partition (isolate one node, majority/minority split, bridge), a
          SIGSTOP/SIGCONT pause of one node, or a partition while a node is down.
  admin   membership changes (add_voter on a 3-voter group, half of them as
          add_learner then add_voter, the promotion waiting for the learner to
          catch up; remove_voter on a 4-member group: groups stay at >= 3 voters)
          and leadership transfers.  A quarter of the add_voter steps are raced:
          another voter asks for the same add_voter under its own command id at
          the same moment, so one of the two is refused: by the leader, answered
          through the log, since both calls give a command id.  A change whose
          outcome is unknown is asked for again under the same id through another
          voter.

Which node an admin step picks depends on the group's membership at that moment
(the outcome of earlier steps), but the draw is deterministic given that state.
Every applied step is recorded with its wall-clock offset in the history.
"""

import random
import threading
import time

import pgconn

FAULT_KINDS = ("kill", "partition", "pause", "kill+partition")


INTENSITY = {
    # hold range, quiet gap range, probability that a kill takes 2 nodes, admin gap
    "normal": ((3, 10), (1.5, 5), 0.25, (0.5, 3)),
    "high": ((1, 5), (0.3, 2), 0.4, (0.2, 1.5)),
}


def draw_schedule(seed, duration, n_nodes, n_groups, kinds, admin_kinds, warmup=3.0,
                  intensity="normal"):
    rng = random.Random(f"nemesis:{seed}" + ("" if intensity == "normal" else f":{intensity}"))
    (h0, h1), (q0, q1), p_two, (a0, a1) = INTENSITY[intensity]
    nodes = list(range(1, n_nodes + 1))
    faults = []
    t = warmup
    weights = {"partition": 4, "kill": 3, "pause": 2, "kill+partition": 1}
    kinds = [k for k in FAULT_KINDS if k in kinds]
    while kinds and t < duration - 4:
        kind = rng.choices(kinds, [weights[k] for k in kinds])[0]
        hold = round(rng.uniform(h0, h1), 2)
        hold = min(hold, max(1.0, duration - t - 1))
        f = {"at": round(t, 2), "kind": kind, "hold": hold}
        if kind in ("kill", "kill+partition"):
            f["nodes"] = rng.sample(nodes, 2 if (kind == "kill" and rng.random() < p_two) else 1)
        if kind == "pause":
            f["nodes"] = rng.sample(nodes, 1)
        if kind in ("partition", "kill+partition"):
            f["sides"] = draw_partition(rng, nodes)
        faults.append(f)
        t += hold + rng.uniform(q0, q1)
    admin = []
    t = warmup
    while admin_kinds and t < duration - 2:
        kind = rng.choice(admin_kinds)
        admin.append({"at": round(t, 2), "kind": kind,
                      "group": rng.randint(1, n_groups), "pick": rng.random()})
        t += rng.uniform(a0, a1)
    return {"seed": seed, "duration": duration, "intensity": intensity, "faults": faults,
            "admin": admin}


def draw_partition(rng, nodes):
    shuffled = nodes[:]
    rng.shuffle(shuffled)
    shape = rng.choice(["isolate", "split", "bridge"])
    if shape == "isolate":
        return [shuffled[:1], shuffled[1:]]
    if shape == "split":
        k = len(shuffled) // 2
        return [sorted(shuffled[:k]), sorted(shuffled[k:])]
    # bridge: two halves that both talk to the middle node, never to each other
    mid = len(shuffled) // 2
    return [sorted(shuffled[:mid + 1]), sorted(shuffled[mid:])]


class Nemesis:
    """Applies a schedule; everything it does is appended to history via record()."""

    def __init__(self, cluster, net, membership, schedule, record, log, t0, deadline):
        self.cluster = cluster
        self.net = net
        self.membership = membership
        self.schedule = schedule
        self.record = record
        self.log = log
        self.t0 = t0
        self.deadline = deadline
        self.stop = threading.Event()
        self.killed = set()
        self.lock = threading.RLock()    # faults vs. heal_all vs. clean-up
        self.counts = {}
        self.counts_lock = threading.Lock()   # the admin step and its racer count

    def now(self):
        return time.monotonic() - self.t0

    def _sleep_until(self, offset):
        while not self.stop.is_set():
            left = self.t0 + offset - time.monotonic()
            if left <= 0:
                return True
            self.stop.wait(min(left, 0.5))
        return False

    def _count(self, key):
        with self.counts_lock:
            self.counts[key] = self.counts.get(key, 0) + 1

    # ------------------------------------------------------------- fault loop
    def run_faults(self):
        for f in self.schedule["faults"]:
            if not self._sleep_until(f["at"]):
                return
            try:
                self._apply(f)
            except Exception as e:
                self.log(f"nemesis: {f['kind']} failed: {e}")
                self.record({"type": "nemesis", "f": "error", "kind": f["kind"],
                             "error": str(e), "time": self.now()})
            until = min(f["at"] + f["hold"], self.deadline - self.t0)
            self._sleep_until(until)
            self.heal_all(reason=f["kind"])

    def _apply(self, f):
        kind = f["kind"]
        with self.lock:
            t = self.now()
            self._count(kind)
            if kind in ("kill", "kill+partition"):
                for n in f["nodes"]:
                    self.cluster.nodes[n].kill9()
                    self.killed.add(n)
            if kind in ("partition", "kill+partition"):
                self.net.partition(f["sides"])
            if kind == "pause":
                for n in f["nodes"]:
                    self.cluster.nodes[n].pause()
            self.record({"type": "nemesis", "f": "start", "kind": kind, "time": t,
                         "nodes": f.get("nodes"), "sides": f.get("sides")})
            self.log(f"nemesis t={t:6.1f}s {kind} nodes={f.get('nodes')} sides={f.get('sides')}")

    def heal_all(self, reason="heal"):
        """Undo every fault: reconnect the network, SIGCONT, restart killed nodes."""
        with self.lock:
            t = self.now()
            self.net.heal()
            for node in self.cluster.nodes.values():
                node.resume()
            restarted = []
            for n in sorted(self.killed):
                try:
                    self.cluster.nodes[n].start()
                    restarted.append(n)
                except Exception as e:
                    self.log(f"nemesis: restart node{n} failed: {e}")
            self.killed -= set(restarted)
            self.record({"type": "nemesis", "f": "stop", "kind": reason, "time": t,
                         "restarted": restarted, "healed_at": self.now()})

    # ------------------------------------------------------------- admin loop
    def run_admin(self):
        for step in self.schedule["admin"]:
            if not self._sleep_until(step["at"]):
                return
            try:
                if step["kind"] == "membership":
                    self._membership(step)
                else:
                    self._transfer(step)
            except Exception as e:
                self.log(f"nemesis admin: {e}")

    def _admin_sql(self, node_id, sql, params, timeout):
        node = self.cluster.nodes[node_id]
        deadline = time.monotonic() + timeout
        c = pgconn.connect(node.dsn(), deadline=min(deadline, time.monotonic() + 3))
        try:
            return c.query(sql, params, deadline=deadline)
        finally:
            c.close()

    def _membership(self, step):
        g = step["group"]
        members = self.membership.members(g)
        learners = self.membership.learners(g)
        voters = self.membership.voters(g)
        all_nodes = sorted(self.cluster.nodes)
        pick = step["pick"]
        learner_first = False
        if len(voters) <= 3 and learners:
            # a learner left by a promotion that timed out: promote it now
            change, target = "add_voter", learners[int(pick * len(learners))]
        elif len(voters) <= 3:
            candidates = [n for n in all_nodes if n not in members]
            if not candidates:
                return
            change, target = "add_voter", candidates[int(pick * len(candidates))]
            # every other addition goes through a learner, promoted at once: the
            # promotion waits until the learner has caught up (or times out)
            learner_first = int(pick * 1_000_003) % 2 == 0
        else:
            change, target = "remove_voter", voters[int(pick * len(voters))]
        via = [n for n in voters if n != target] or voters
        node = via[int(pick * 7919) % len(via)]
        cmd = f"m{g}-{step['at']}"
        if learner_first and self._change(g, node, "add_learner", target, cmd + "-l") != "ok":
            return
        rivals = [n for n in voters if n not in (node, target)]
        racer = None
        if change == "add_voter" and rivals and int(pick * 104729) % 4 == 0:
            racer = threading.Thread(target=self._change, daemon=True,
                                     args=(g, rivals[0], "add_voter", target, cmd + "-r"))
            racer.start()
        outcome = self._change(g, node, change, target, cmd)
        if racer is not None:
            racer.join()
        # An outcome the caller does not know (no answer, or "timed out": the change
        # may still commit) is asked about again under the same command id through
        # another voter, as an operator would: it must answer with the change's index,
        # or with the leader's refusal, which no copy of the first call can then
        # overturn — never "invalid" from that voter's own, maybe older, view while
        # the first call commits (the checker's acked-present).
        if outcome == "unknown" and len(via) > 1:
            self._change(g, via[(via.index(node) + 1) % len(via)], change, target, cmd)

    def _change(self, g, node, change, target, cmd):
        """One change_membership call, recorded: "ok", "failed", or "unknown" when the
        change may still commit."""
        op = {"type": "membership", "group": g, "node": node, "cmd": cmd,
              "change": change, "target": target, "invoke": self.now()}
        self._count(change)
        ok = unknown = False
        try:
            rows = self._admin_sql(node, "SELECT multiraft.change_membership(%s, %s, %s, NULL, %s, %s)",
                                   (g, change, target, cmd, 5000), timeout=8)
            op.update(outcome="ok", index=int(rows[0][0]))
            self.membership.apply(g, change, target)
            ok = True
        except pgconn.Failure as f:
            op.update(outcome="fail" if f.kind == "connect" else f.kind, error=f.message)
            self.membership.refresh(g)
            unknown = f.kind == "timeout" or (f.kind == "error" and "timed out" in f.message)
        op["complete"] = self.now()
        self.record(op)
        return "ok" if ok else "unknown" if unknown else "failed"

    def _transfer(self, step):
        g = step["group"]
        voters = self.membership.voters(g)
        if not voters:
            return
        target = voters[int(step["pick"] * len(voters))]
        node = voters[int(step["pick"] * 104729) % len(voters)]
        op = {"type": "transfer", "group": g, "node": node, "target": target,
              "invoke": self.now()}
        self._count("transfer")
        try:
            self._admin_sql(node, "SELECT multiraft.transfer_leadership(%s, %s, %s)",
                            (g, target, 3000), timeout=6)
            op["outcome"] = "ok"
        except pgconn.Failure as f:
            op.update(outcome="fail" if f.kind == "connect" else f.kind, error=f.message)
        op["complete"] = self.now()
        self.record(op)
