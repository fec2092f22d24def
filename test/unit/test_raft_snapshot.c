/*
 * test_raft_snapshot.c — log compaction and InstallSnapshot (§7): a follower behind the
 * leader's first index gets a snapshot, installs it from the Ready and continues after
 * it; snapshot status reporting; restart from a compacted log; a snapshot goes alone
 * in its Ready.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "raft.h"
#include "test_cluster.h"
#include "raft_unit.h"

/* Snapshot the leader's state at its applied index and compact its log. */
static void snapshot_and_compact(struct test_cluster *tc, int i, const char *data)
{
    struct raft_conf_state cs;
    raft_index a = raft_get_applied(R(tc, i));
    raft_get_conf_state(R(tc, i), &cs);
    assert_int_equal(raft_memory_storage_create_snapshot(tc->nodes[i].ms, a, &cs, data,
                                                         strlen(data)), RAFT_OK);
    assert_int_equal(raft_memory_storage_compact(tc->nodes[i].ms, a), RAFT_OK);
    assert_int_equal(raft_get_first_index(R(tc, i)), a + 1);
}

/* Node 0 leads; node 2, down, misses five entries, which node 0 compacts away:
 * node 2 can only catch up by a snapshot. */
static void behind_a_snapshot(struct test_cluster *tc)
{
    assert_int_equal(tc_elect(tc, 0), 0);
    tc_crash(tc, 2);
    for (int k = 0; k < 5; k++)
        tc_propose(tc, 0, "x", NULL);
    tc_stabilize(tc, 0);
    snapshot_and_compact(tc, 0, "img");
}

struct snap_watch {
    int slot;
    raft_index index;
    bool seen;
    bool entries_after;
};

static void watch_ready(void *arg, int slot, const struct raft_ready *rd)
{
    struct snap_watch *w = arg;
    if (slot != w->slot || rd->snapshot == NULL)
        return;
    w->seen = true;
    w->index = rd->snapshot->index;
    assert_true(rd->must_sync);
    assert_int_equal(rd->hard_state.commit >= rd->snapshot->index, 1);
    assert_true(rd->conf_changed);
    assert_int_equal(rd->conf_state.n_voters, 3);
    assert_int_equal(rd->snapshot->len, 5);
    assert_memory_equal(rd->snapshot->data, "image", 5);
}

static void test_lagging_follower_gets_snapshot(void **state)
{
    struct test_cluster tc;
    struct snap_watch w = {2, 0, false, false};
    struct raft_progress_info pi;
    raft_index snap_index;
    (void)state;
    assert_int_equal(tc_init(&tc, 3, NULL, 1), 0);
    assert_int_equal(tc_elect(&tc, 0), 0);
    tc_crash(&tc, 2);
    for (int k = 0; k < 10; k++) {
        char buf[16];
        snprintf(buf, sizeof buf, "e%d", k);
        tc_propose(&tc, 0, buf, NULL);
    }
    tc_stabilize(&tc, 0);
    snapshot_and_compact(&tc, 0, "image");
    snap_index = raft_get_first_index(R(&tc, 0)) - 1;
    tc_propose(&tc, 0, "after", NULL);
    tc_stabilize(&tc, 0);
    tc.on_ready = watch_ready;
    tc.on_ready_arg = &w;
    assert_int_equal(tc_restart(&tc, 2), 0);
    tc_tick_stabilize(&tc, 1);
    assert_true(w.seen);
    assert_int_equal(w.index, snap_index);
    assert_int_equal(tc.nodes[2].snapshots_installed, 1);
    tc_tick_stabilize(&tc, 2);
    /* continues from index + 1 */
    assert_true(tc_applied_contains(&tc, 2, "after"));
    assert_false(tc_applied_contains(&tc, 2, "e3")); /* came with the snapshot */
    assert_int_equal(raft_get_applied(R(&tc, 2)), raft_get_applied(R(&tc, 0)));
    assert_int_equal(raft_get_first_index(R(&tc, 2)), snap_index + 1);
    assert_int_equal(raft_progress_get(R(&tc, 0), 3, &pi), RAFT_OK);
    assert_int_equal(pi.state, RAFT_PROGRESS_REPLICATE);
    assert_int_equal(pi.match, raft_get_last_index(R(&tc, 0)));
    check_safe(&tc);
    tc_destroy(&tc);
}

static bool drop_snapshots(void *arg, const struct raft_message *m)
{
    int *dropped = arg;
    if (m->type == RAFT_MSG_SNAPSHOT) {
        (*dropped)++;
        return false;
    }
    return true;
}

/* The first snapshot is lost and nobody reports the outcome: the leader probes
 * again after an election timeout's worth of heartbeat answers, and sends it
 * again.  That count was 16 bits: with election_tick / heartbeat_tick above
 * 65,535 (multiraft.election_ticks goes to 100,000 with heartbeat_ticks 1) it
 * wrapped, and the follower never got a snapshot. */
static void test_lost_snapshot_with_a_long_timeout(void **state)
{
    enum { ELECTION = 70000 };
    struct test_cluster tc;
    struct raft_config cfg;
    struct raft_progress_info pi;
    int dropped = 0;
    (void)state;
    tc_default_config(&cfg);
    cfg.election_tick = ELECTION;
    assert_int_equal(tc_init(&tc, 3, &cfg, 5), 0);
    behind_a_snapshot(&tc);
    tc.filter = drop_snapshots;
    tc.filter_arg = &dropped;
    tc.unreported_snapshot_drops = true;
    assert_int_equal(tc_restart(&tc, 2), 0);
    tc_tick_stabilize(&tc, 2);
    assert_int_equal(dropped, 1);
    tc.filter = NULL;
    assert_int_equal(raft_progress_get(R(&tc, 0), 3, &pi), RAFT_OK);
    assert_int_equal(pi.state, RAFT_PROGRESS_SNAPSHOT);
    tc_tick_stabilize(&tc, ELECTION + 10);
    assert_int_equal(tc.nodes[2].snapshots_installed, 1);
    assert_int_equal(raft_progress_get(R(&tc, 0), 3, &pi), RAFT_OK);
    assert_int_equal(pi.state, RAFT_PROGRESS_REPLICATE);
    assert_int_equal(pi.match, raft_get_last_index(R(&tc, 0)));
    tc_destroy(&tc);
}

/* The leader stays in snapshot state until the follower answers or the caller reports;
 * a failure report makes it send the snapshot again later. */
static void test_snapshot_failure_report(void **state)
{
    struct test_cluster tc;
    struct raft_progress_info pi;
    int dropped = 0;
    (void)state;
    assert_int_equal(tc_init(&tc, 3, NULL, 2), 0);
    behind_a_snapshot(&tc);
    assert_int_equal(tc_restart(&tc, 2), 0);
    /* snapshots are lost (and reported as failed by tc): the leader keeps trying */
    tc.filter = drop_snapshots;
    tc.filter_arg = &dropped;
    tc_tick_stabilize(&tc, 3);
    assert_true(dropped >= 2);
    assert_int_equal(tc.nodes[2].snapshots_installed, 0);
    assert_int_equal(raft_progress_get(R(&tc, 0), 3, &pi), RAFT_OK);
    assert_true(pi.state != RAFT_PROGRESS_REPLICATE);
    tc.filter = NULL;
    /* manual reports are ignored unless the peer is in snapshot state */
    raft_report_snapshot(R(&tc, 0), 2, false);
    assert_int_equal(raft_progress_get(R(&tc, 0), 2, &pi), RAFT_OK);
    assert_int_equal(pi.state, RAFT_PROGRESS_REPLICATE);
    tc_tick_stabilize(&tc, 3);
    assert_int_equal(raft_progress_get(R(&tc, 0), 3, &pi), RAFT_OK);
    assert_int_equal(pi.state, RAFT_PROGRESS_REPLICATE);
    assert_int_equal(tc.nodes[2].snapshots_installed, 1);
    assert_int_equal(raft_get_applied(R(&tc, 2)), raft_get_applied(R(&tc, 0)));
    tc_destroy(&tc);
}

/* A snapshot at or below the follower's commit index is not installed. */
static void test_stale_snapshot_ignored(void **state)
{
    struct test_cluster tc;
    struct raft_message m;
    struct raft_snapshot s;
    raft_id voters[3] = {1, 2, 3};
    const struct raft_message *resp;
    (void)state;
    assert_int_equal(tc_init(&tc, 3, NULL, 3), 0);
    assert_int_equal(tc_elect(&tc, 0), 0);
    tc_propose(&tc, 0, "a", NULL);
    tc_propose(&tc, 0, "b", NULL);
    tc_stabilize(&tc, 0);
    memset(&s, 0, sizeof s);
    s.index = 2;
    s.term = raft_get_term(R(&tc, 0));
    s.conf.voters = voters;
    s.conf.n_voters = 3;
    memset(&m, 0, sizeof m);
    m.type = RAFT_MSG_SNAPSHOT;
    m.from = 1;
    m.to = 2;
    m.term = raft_get_term(R(&tc, 0));
    m.snapshot = &s;
    assert_int_equal(tc_step(&tc, 1, &m), RAFT_OK);
    tc_process(&tc, 1);
    assert_int_equal(tc.nodes[1].snapshots_installed, 0);
    resp = tc_queued_find(&tc, RAFT_MSG_APPEND_RESP, 2, 1);
    assert_non_null(resp);
    assert_int_equal(resp->index, raft_get_commit(R(&tc, 1)));
    tc_destroy(&tc);
}

/* The snapshot carries the configuration: a follower adopts it on install. */
static void test_snapshot_carries_configuration(void **state)
{
    struct test_cluster tc;
    struct raft_conf_change cc = {RAFT_CC_ADD_LEARNER, 9, NULL, 0};
    (void)state;
    assert_int_equal(tc_init(&tc, 3, NULL, 4), 0);
    assert_int_equal(tc_elect(&tc, 0), 0);
    tc_crash(&tc, 2);
    assert_int_equal(raft_propose_conf_change(R(&tc, 0), &cc, NULL, NULL), RAFT_OK);
    tc_stabilize(&tc, 0);
    assert_true(raft_is_learner(R(&tc, 0), 9));
    tc_propose(&tc, 0, "y", NULL);
    tc_stabilize(&tc, 0);
    snapshot_and_compact(&tc, 0, "conf");
    assert_int_equal(tc_restart(&tc, 2), 0);
    tc_tick_stabilize(&tc, 3);
    assert_int_equal(tc.nodes[2].snapshots_installed, 1);
    assert_true(raft_is_learner(R(&tc, 2), 9));
    tc_destroy(&tc);
}

/* Restart from a compacted log: first index and applied come from the snapshot. */
static void test_restart_after_compaction(void **state)
{
    struct test_cluster tc;
    raft_index a;
    (void)state;
    assert_int_equal(tc_init(&tc, 3, NULL, 5), 0);
    assert_int_equal(tc_elect(&tc, 0), 0);
    for (int k = 0; k < 6; k++)
        tc_propose(&tc, 0, "r", NULL);
    tc_stabilize(&tc, 0);
    snapshot_and_compact(&tc, 1, "f");
    a = raft_get_applied(R(&tc, 1));
    tc_crash(&tc, 1);
    assert_int_equal(tc_restart(&tc, 1), 0);
    assert_int_equal(raft_get_first_index(R(&tc, 1)), a + 1);
    assert_int_equal(raft_get_applied(R(&tc, 1)), a);
    assert_int_equal(raft_get_last_index(R(&tc, 1)), a);
    tc_propose(&tc, 0, "more", NULL);
    tc_tick_stabilize(&tc, 2);
    assert_true(tc_applied_contains(&tc, 1, "more"));
    check_safe(&tc);
    tc_destroy(&tc);
}

/* Random runs with frequent snapshots/compaction, loss and crashes stay safe and
 * converge. */
static void test_snapshots_random(void **state)
{
    (void)state;
    for (uint64_t seed = 1; seed <= 120; seed++) {
        struct test_cluster tc;
        struct raft_config cfg;
        tc_default_config(&cfg);
        cfg.pre_vote = true;
        cfg.max_inflight_msgs = 4;
        assert_int_equal(tc_init(&tc, 3, &cfg, seed), 0);
        tc.snapshot_every = 4 + seed % 5;
        tc.compact_keep = seed % 3;
        tc.drop_per_mille = 50;
        tc.report_snapshot_success = seed % 2 == 0;
        for (int step = 0; step < 300; step++) {
            int l = tc_leader(&tc);
            int victim = (int)((seed + (uint64_t)step) % 3);
            if (l >= 0) {
                char buf[32];
                snprintf(buf, sizeof buf, "%d", step);
                tc_propose(&tc, l, buf, NULL);
            }
            if (step % 50 == 20)
                tc_crash(&tc, victim);
            if (step % 50 == 45)
                for (int i = 0; i < 3; i++)
                    tc_restart(&tc, i);
            tc_tick(&tc);
            tc_stabilize(&tc, 0);
        }
        for (int i = 0; i < 3; i++)
            tc_restart(&tc, i);
        tc.drop_per_mille = 0;
        tc_tick_stabilize(&tc, 40);
        {
            int l = tc_leader(&tc);
            assert_true(l >= 0);
            for (int i = 0; i < 3; i++)
                assert_int_equal(raft_get_applied(R(&tc, i)), raft_get_applied(R(&tc, l)));
        }
        check_safe(&tc);
        tc_destroy(&tc);
    }
}

/* A message from leader 1 (term 1) to replica 2, after index 10 of term 1. */
static struct raft_message from_leader(uint8_t type, raft_index commit)
{
    struct raft_message m;
    memset(&m, 0, sizeof m);
    m.type = type;
    m.from = 1;
    m.to = 2;
    m.term = 1;
    m.index = 10;
    m.log_term = 1;
    m.commit = commit;
    return m;
}

/* A snapshot and the entries after it arrive before the follower's next Ready:
 * the Ready carries the snapshot alone, and the committed entries after it come
 * in the next one, once the application has persisted the snapshot's state (the
 * multi-raft layer judges the entries after it against the dedup records in the
 * snapshot's blob, which it can only look up once stored). */
static void test_snapshot_goes_alone(void **state)
{
    const struct raft_allocator *a = raft_default_allocator();
    struct raft_memory_storage *ms = raft_memory_storage_new(a);
    struct raft_config cfg;
    struct raft *r;
    struct raft_ready rd;
    struct raft_snapshot snap;
    struct raft_entry ents[2];
    struct raft_message m;
    raft_id voters[3] = {1, 2, 3};
    (void)state;
    memset(&cfg, 0, sizeof cfg);
    cfg.id = 2;
    cfg.election_tick = 10;
    cfg.heartbeat_tick = 1;
    raft_memory_storage_interface(ms, &cfg.storage);
    r = raft_new(&cfg, a, NULL);
    assert_non_null(r);
    memset(&snap, 0, sizeof snap);
    snap.index = 10;
    snap.term = 1;
    snap.conf.voters = voters;
    snap.conf.n_voters = 3;
    m = from_leader(RAFT_MSG_SNAPSHOT, 10);
    m.snapshot = &snap;
    assert_int_equal(raft_step(r, &m), RAFT_OK);
    memset(ents, 0, sizeof ents);
    for (int i = 0; i < 2; i++) {
        ents[i].index = 11 + (raft_index)i;
        ents[i].term = 1;
        ents[i].type = RAFT_ENTRY_NORMAL;
    }
    m = from_leader(RAFT_MSG_APPEND, 12);
    m.entries = ents;
    m.n_entries = 2;
    assert_int_equal(raft_step(r, &m), RAFT_OK);
    assert_int_equal(raft_ready(r, &rd), RAFT_OK);
    assert_non_null(rd.snapshot);
    assert_int_equal(rd.snapshot->index, 10);
    assert_int_equal(rd.n_entries, 2);
    assert_int_equal(rd.hard_state.commit, 12);
    assert_int_equal(rd.n_committed, 0);
    assert_int_equal(raft_memory_storage_apply_snapshot(ms, rd.snapshot), RAFT_OK);
    assert_int_equal(raft_memory_storage_append(ms, rd.entries, rd.n_entries), RAFT_OK);
    assert_int_equal(raft_advance(r, &rd), RAFT_OK);
    assert_true(raft_has_ready(r));
    assert_int_equal(raft_ready(r, &rd), RAFT_OK);
    assert_null(rd.snapshot);
    assert_int_equal(rd.n_committed, 2);
    assert_int_equal(rd.committed[0].index, 11);
    assert_int_equal(raft_advance(r, &rd), RAFT_OK);
    raft_free(r);
    raft_memory_storage_free(ms);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lagging_follower_gets_snapshot),
        cmocka_unit_test(test_snapshot_failure_report),
        cmocka_unit_test(test_lost_snapshot_with_a_long_timeout),
        cmocka_unit_test(test_stale_snapshot_ignored),
        cmocka_unit_test(test_snapshot_carries_configuration),
        cmocka_unit_test(test_restart_after_compaction),
        cmocka_unit_test(test_snapshots_random),
        cmocka_unit_test(test_snapshot_goes_alone),
    };
    return cmocka_run_group_tests_name("raft_snapshot", tests, NULL, NULL);
}
