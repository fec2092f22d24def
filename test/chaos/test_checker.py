"""Self-tests of the chaos checker on synthetic histories: a clean run passes, and
each kind of violation makes exactly the check that should catch it fail."""

import copy
import unittest

import checker


def ev(eid, g, t, idx, cmd=None, payload=None, node_id=None, change=None):
    return {"event_id": eid, "group_id": g, "event_type": t, "log_index": idx, "term": 1,
            "command_id": cmd, "payload": payload, "node_id": node_id, "change_type": change}


def pl(cmd):
    return (cmd + ":x").encode().hex()


class Scenario:
    """Group 1 on nodes 1,2,3: commands a@3, b@4, c@6 (5 is a no-op).  Node 3 was
    removed at index 7 and node 4 was added at index 8 and got a snapshot at 8."""

    def __init__(self):
        log = [(3, "command", "a"), (4, "command", "b"), (6, "command", "c"),
               (7, "membership_change", "m1"), (8, "membership_change", "m2"),
               (9, "command", "d")]
        self.events = {}
        for node in (1, 2, 3):
            rows = [ev(1, 1, "group_created", None)]
            eid = 2
            for idx, t, cmd in log:
                if node == 3 and idx > 7:
                    break           # removed at 7: a prefix
                if t == "command":
                    rows.append(ev(eid, 1, t, idx, cmd, pl(cmd)))
                else:
                    target, change = (3, "remove_voter") if cmd == "m1" else (4, "add_voter")
                    rows.append(ev(eid, 1, t, idx, cmd, None, target, change))
                eid += 1
            self.events[node] = rows
        self.events[4] = [ev(1, 1, "group_created", None), ev(2, 1, "snapshot_applied", 8),
                          ev(3, 1, "command", 9, "d", pl("d"))]
        self.history = [
            {"type": "submit", "group": 1, "cmd": "a", "payload": pl("a"), "outcome": "ok",
             "index": 3, "invoke": 0.0, "complete": 1.0, "node": 1},
            {"type": "submit", "group": 1, "cmd": "b", "payload": pl("b"), "outcome": "timeout",
             "invoke": 0.5, "complete": 5.0, "node": 2},
            {"type": "submit", "group": 1, "cmd": "c", "payload": pl("c"), "outcome": "ok",
             "index": 6, "invoke": 2.0, "complete": 3.0, "node": 2},
            {"type": "membership", "group": 1, "cmd": "m1", "change": "remove_voter", "target": 3,
             "outcome": "ok", "index": 7, "invoke": 3.5, "complete": 4.0, "node": 1},
            {"type": "membership", "group": 1, "cmd": "m2", "change": "add_voter", "target": 4,
             "outcome": "ok", "index": 8, "invoke": 4.5, "complete": 5.0, "node": 1},
            {"type": "submit", "group": 1, "cmd": "d", "payload": pl("d"), "outcome": "ok",
             "index": 9, "invoke": 6.0, "complete": 7.0, "node": 4},
            {"type": "submit", "group": 1, "cmd": "e", "payload": pl("e"), "outcome": "error",
             "invoke": 6.0, "complete": 7.0, "node": 4},
            {"type": "submit", "group": 1, "cmd": "f", "payload": pl("f"), "outcome": "fail",
             "invoke": 6.0, "complete": 6.1, "node": 4},
            {"type": "read", "group": 1, "outcome": "ok", "index": 6, "invoke": 3.5,
             "complete": 3.6, "node": 1},
            {"type": "read", "group": 1, "outcome": "ok", "index": 3, "invoke": 1.0,
             "complete": 3.6, "node": 1},      # concurrent with c's ack: may miss it
        ]
        row = {"group_id": 1, "term": 2, "commit_index": 9, "applied_index": 9,
               "voters": [1, 2, 4], "learners": [], "leader_node_id": 1}
        self.final = {1: [dict(row, role="leader")], 2: [dict(row, role="follower")],
                      4: [dict(row, role="follower")], 3: []}

    def run(self, **kw):
        results, stats = checker.check(self.history, self.events, self.final, **kw)
        return {r.name: r for r in results}, stats


class CheckerTest(unittest.TestCase):
    def failing(self, s, **kw):
        res, _ = s.run(**kw)
        return sorted(n for n, r in res.items() if not r.ok)

    def test_clean_run_passes(self):
        s = Scenario()
        res, stats = s.run()
        self.assertEqual(self.failing(s), [], {n: r.violations for n, r in res.items()})
        self.assertEqual(stats["unknown_committed"], 1)   # b
        self.assertEqual(stats["unknown_absent"], 2)      # e, f
        self.assertEqual(stats["snapshot_skips"], 0)      # node 4 starts from the snapshot

    def readded(self, s, announce_again=False):
        # node 3, removed at 7, is added back with a new replica that starts from a
        # snapshot at 3: the entries its first replica announced are deduplicated
        rows = s.events[3]
        rows += [ev(20, 1, "group_created", None), ev(21, 1, "snapshot_applied", 3)]
        if announce_again:
            rows.append(ev(22, 1, "membership_change", 7, "m1", None, 3, "remove_voter"))
        rows += [ev(23, 1, "membership_change", 8, "m2", None, 4, "add_voter"),
                 ev(24, 1, "command", 9, "d", pl("d"))]

    def test_readded_replica_skips_what_its_node_announced(self):
        s = Scenario()
        self.readded(s)
        self.assertEqual(self.failing(s), [])

    def test_entry_announced_again_by_a_later_replica(self):
        s = Scenario()
        self.readded(s, announce_again=True)
        self.assertEqual(self.failing(s), ["log-order"])

    def test_divergent_entry(self):
        s = Scenario()
        s.events[2][2]["payload"] = pl("zz")              # node 2's b at index 4
        self.assertIn("agreement", self.failing(s))

    def test_duplicate_index_on_one_node(self):
        s = Scenario()
        s.events[1].append(ev(99, 1, "command", 9, "d", pl("d")))
        self.assertEqual(self.failing(s), ["log-order"])

    def test_gap_in_middle(self):
        s = Scenario()
        del s.events[2][2]                                # node 2 misses index 4
        self.assertEqual(self.failing(s), ["no-gaps"])

    def test_gap_at_start(self):
        s = Scenario()
        del s.events[2][1]                                # node 2 misses index 3
        self.assertEqual(self.failing(s), ["no-gaps"])

    def test_snapshot_skip_is_a_note_unless_strict(self):
        s = Scenario()
        # node 2 lags, gets a snapshot at 6 and skips b@4 and c@6
        s.events[2] = [e for e in s.events[2] if e["log_index"] not in (4, 6)]
        s.events[2].insert(2, ev(50, 1, "snapshot_applied", 6))
        for i, e in enumerate(s.events[2]):
            e["event_id"] = i + 1
        self.assertEqual(self.failing(s), [])
        self.assertEqual(s.run()[1]["snapshot_skips"], 2)
        self.assertEqual(self.failing(s, strict_snapshots=True), ["no-gaps"])

    def test_member_behind(self):
        s = Scenario()
        del s.events[2][-1]                               # node 2 lacks d@9 at the end
        s.final[2][0]["applied_index"] = 8
        self.assertEqual(self.failing(s), ["converged"])

    def test_no_leader(self):
        s = Scenario()
        s.final[1][0]["role"] = "follower"
        self.assertEqual(self.failing(s), ["converged"])

    def test_generated_ids_attributed_by_payload(self):
        s = Scenario()
        # c was submitted without a command_id: the log shows a generated id
        for node in (1, 2, 3):
            for e in s.events[node]:
                if e["command_id"] == "c":
                    e["command_id"] = "2-41-00000000deadbeef"
        s.history[2]["generated"] = True
        self.assertEqual(self.failing(s), [])
        # ... and applied twice (under two generated ids) is caught
        for node in (1, 2):
            s.events[node].append(ev(98, 1, "command", 10, "2-42-00000000deadbeef", pl("c")))
        s.final[1][0]["applied_index"] = s.final[2][0]["applied_index"] = 10
        self.assertIn("no-duplicates", self.failing(s))

    def test_lost_ack(self):
        s = Scenario()
        s.history[2]["index"] = 5                         # c acked at 5, log has it at 6
        self.assertIn("acked-present", self.failing(s))

    def test_lost_ack_everywhere(self):
        s = Scenario()
        for node in (1, 2, 3):
            s.events[node] = [e for e in s.events[node] if e["command_id"] != "a"]
        self.assertEqual(self.failing(s), ["acked-present"])

    def test_duplicate_commit(self):
        s = Scenario()
        for node in (1, 2):
            s.events[node].append(ev(98, 1, "command", 10, "b", pl("b")))
        s.events[4].append(ev(98, 1, "command", 10, "b", pl("b")))
        s.final = copy.deepcopy(s.final)
        for rows in s.final.values():
            for r in rows:
                r["applied_index"] = r["commit_index"] = 10
        f = self.failing(s)
        self.assertIn("no-duplicates", f)
        self.assertIn("unknown-at-most-once", f)

    def test_failed_submit_committed(self):
        s = Scenario()
        for node in (1, 2, 4):
            s.events[node].append(ev(97, 1, "command", 10, "f", pl("f")))
        for rows in s.final.values():
            for r in rows:
                r["applied_index"] = r["commit_index"] = 10
        self.assertEqual(self.failing(s), ["unknown-at-most-once"])

    def test_phantom(self):
        s = Scenario()
        for node in (1, 2, 4):
            s.events[node].append(ev(96, 1, "command", 10, "nobody", pl("nobody")))
        for rows in s.final.values():
            for r in rows:
                r["applied_index"] = r["commit_index"] = 10
        self.assertEqual(self.failing(s), ["no-phantoms"])

    def test_stale_read_index(self):
        s = Scenario()
        s.history[8]["index"] = 5                         # began after c@6 was acked
        self.assertEqual(self.failing(s), ["read-index"])

    def test_realtime_order(self):
        s = Scenario()
        # d began after c (index 6) was acked but the log put it before: swap a and d
        s.history[5]["invoke"] = 0.0
        s.history[0]["invoke"] = 7.5
        s.history[0]["complete"] = 8.0
        self.assertEqual(self.failing(s), ["realtime-order"])

    def test_membership_ack_mismatch(self):
        s = Scenario()
        s.history[3]["target"] = 5
        self.assertEqual(self.failing(s), ["acked-present"])

    def test_a_refused_change_that_committed(self):
        s = Scenario()
        refused = {"type": "membership", "group": 1, "change": "add_voter", "target": 5,
                   "outcome": "error", "invoke": 5.5, "complete": 5.6, "node": 2,
                   "error": "ERROR:  invalid multiraft.change_membership on group 1: the "
                            "membership change does not apply to the current configuration"}
        s.history.append(dict(refused, cmd="r1"))
        s.history.append(dict(refused, cmd="m2"))   # as if m2's failed twin had committed
        res, _ = s.run()
        self.assertEqual(self.failing(s), ["acked-present"])
        self.assertIn("group 1: add_voter of node 5 (m2) failed as invalid, yet committed",
                      res["acked-present"].violations)
        s.history.pop()
        res, _ = s.run()
        self.assertEqual(self.failing(s), [])
        self.assertIn("1 membership changes refused as invalid, none committed",
                      res["acked-present"].notes)

    def test_retry_returning_first_index_is_fine(self):
        s = Scenario()
        # b timed out at 0.5..5.0 (committed at 4); its retry began at 6.5, after c
        # (index 6) was acked, and returned b's first index 4: not a real-time violation
        s.history.append({"type": "submit", "group": 1, "cmd": "b", "payload": pl("b"),
                          "outcome": "ok", "index": 4, "invoke": 6.5, "complete": 6.6,
                          "node": 1, "attempt": 1})
        self.assertEqual(self.failing(s), [])

    def test_members_disagree_on_a_generated_id(self):
        # Index 6 holds c on every node under different stored ids: attributed to c
        # by its payload everywhere, but SPEC wants the same command_id on each.
        s = Scenario()
        for node, rows in s.events.items():
            for e in rows:
                if e["log_index"] == 6:
                    e["command_id"] = f"{node}-41-{'0' * 16}"
        self.assertEqual(self.failing(s), ["agreement"])

    def test_a_command_without_command_id(self):
        s = Scenario()
        for rows in s.events.values():
            for e in rows:
                if e["log_index"] == 9:
                    e["command_id"] = None
        self.assertIn("agreement", self.failing(s))

    def test_a_run_with_nothing_to_check_fails(self):
        # Every client failed: only client errors in the history, no events read.
        s = Scenario()
        s.history = [{"type": "client-error", "error": "boom"}]
        s.events = {n: [] for n in s.events}
        failing = self.failing(s)
        for name in ("agreement", "acked-present", "read-index", "realtime-order"):
            self.assertIn(name, failing)

    def test_retry_committed_twice(self):
        s = Scenario()
        s.history.append({"type": "submit", "group": 1, "cmd": "b", "payload": pl("b"),
                          "outcome": "ok", "index": 10, "invoke": 7.5, "complete": 7.6,
                          "node": 1, "attempt": 1})
        for node in (1, 2, 4):
            s.events[node].append(ev(95, 1, "command", 10, "b", pl("b")))
        for rows in s.final.values():
            for r in rows:
                r["applied_index"] = r["commit_index"] = 10
        self.assertEqual(self.failing(s), ["no-duplicates"])


if __name__ == "__main__":
    unittest.main()
