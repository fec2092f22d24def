/*
 * test_mr_meta_lag.c — the meta row's applied index may lag the group's by up to
 * MR_META_LAG entries (mr_internal.h): a crash then makes the node re-apply those
 * entries, and the dedup records written with their events keep every command at
 * one event; the row catches up every MR_META_LAG entries; a new term is stored
 * at once; a replica replaced after such a crash passes on how far it announced,
 * and so does one the host could not restore (its tombstone).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "mr_internal.h" /* MR_META_LAG */
#include "mr_cluster.h"

static raft_index applied_in_memory(struct mrc_cluster *c, mr_node_id node)
{
    struct mr_group_status st;
    assert_int_equal(mr_group_status(mrc_node(c, node), 1, &st), MR_OK);
    return st.applied;
}

/* Proposes commands "k<from>".."k<to - 1>" on node 1, one settle each; with
 * `generated`, "g<from>".. as generated ids instead (no dedup record). */
static void propose_range_of(struct mrc_cluster *c, int from, int to, bool generated)
{
    char cmd[16];
    for (int i = from; i < to; i++) {
        snprintf(cmd, sizeof cmd, "%c%d", generated ? 'g' : 'k', i);
        assert_int_equal((generated ? mr_propose_generated : mr_propose)(
                             mrc_node(c, 1), 1, (generated ? 2000 : 1000) + (uint64_t)i, cmd,
                             strlen(cmd), "v", 1, 200),
                         MR_OK);
        mrc_settle(c);
    }
}

static void propose_range(struct mrc_cluster *c, int from, int to)
{
    propose_range_of(c, from, to, false);
}

/* Each of those commands has one event on node (and, unless generated, its dedup
 * record). */
static void assert_one_event_each_of(struct mrc_cluster *c, mr_node_id node, int to,
                                     bool generated)
{
    char cmd[16];
    for (int i = 0; i < to; i++) {
        snprintf(cmd, sizeof cmd, "%c%d", generated ? 'g' : 'k', i);
        assert_int_equal(mrc_command_events(c, node, 1, cmd, strlen(cmd)), 1);
        if (!generated)
            assert_true(mrc_has_dedup(c, node, 1, cmd, strlen(cmd)));
    }
}

static void assert_one_event_each(struct mrc_cluster *c, mr_node_id node, int to)
{
    assert_one_event_each_of(c, node, to, false);
}

static void test_a_crash_re_applies_the_lag_without_duplicates(void **state)
{
    struct mrc_cluster *c = mrc_new_one_group(71);
    raft_index stored, live;
    (void)state;
    assert_non_null(c);
    propose_range(c, 0, 10);
    live = applied_in_memory(c, 2);
    stored = mrc_stored_applied(c, 2, 1);
    /* Ten commands moved the applied index, not the row. */
    assert_true(stored > 0);
    assert_true(stored < live);
    assert_true(live - stored < MR_META_LAG);
    assert_one_event_each(c, 2, 10);

    mrc_crash(c, 2);
    assert_int_equal(mrc_restart(c, 2), MR_OK);
    /* Restored from the row: the lagging entries are applied again... */
    assert_int_equal(applied_in_memory(c, 2), stored);
    mrc_run(c, 40);
    assert_true(applied_in_memory(c, 2) >= live);
    /* ... and none of them emitted a second event, or counts as a duplicate. */
    assert_one_event_each(c, 2, 10);
    {
        struct mr_counters k;
        mr_get_counters(mrc_node(c, 2), &k);
        assert_true(k.entries_applied >= live - stored);
        assert_int_equal(k.duplicates, 0);
    }
    propose_range(c, 10, 12);
    assert_one_event_each(c, 2, 12);
    assert_int_equal(mrc_check(c, NULL, 0), 0);
    mrc_free(c);
}

static void test_the_row_catches_up_every_lag(void **state)
{
    struct mrc_cluster *c = mrc_new_one_group(72);
    (void)state;
    assert_non_null(c);
    propose_range(c, 0, 3 * MR_META_LAG);
    for (mr_node_id n = 1; n <= 3; n++) {
        raft_index live = applied_in_memory(c, n);
        raft_index stored = mrc_stored_applied(c, n, 1);
        assert_true(live >= 3 * MR_META_LAG);
        assert_true(stored <= live);
        assert_true(live - stored < MR_META_LAG);
    }
    assert_int_equal(mrc_check(c, NULL, 0), 0);
    mrc_free(c);
}

static void test_a_new_term_is_stored_at_once(void **state)
{
    struct mrc_cluster *c = mrc_new_one_group(73);
    raft_term before, after;
    mr_node_id leader;
    (void)state;
    assert_non_null(c);
    propose_range(c, 0, 5);
    (void)mrc_leader(c, 1, &before);
    /* The leader goes: the next one's term must survive the voters' crashes. */
    mrc_crash(c, 1);
    mrc_run(c, 80);
    leader = mrc_leader(c, 1, &after);
    assert_true(leader == 2 || leader == 3);
    assert_true(after > before);
    mrc_crash(c, 2);
    mrc_crash(c, 3);
    assert_int_equal(mrc_restart(c, 2), MR_OK);
    assert_int_equal(mrc_restart(c, 3), MR_OK);
    {
        struct mr_group_status st;
        assert_int_equal(mr_group_status(mrc_node(c, 2), 1, &st), MR_OK);
        assert_true(st.term >= after);
        assert_int_equal(mr_group_status(mrc_node(c, 3), 1, &st), MR_OK);
        assert_true(st.term >= after);
    }
    assert_int_equal(mrc_restart(c, 1), MR_OK);
    mrc_run(c, 80);
    assert_int_equal(mrc_check(c, NULL, 0), 0);
    mrc_free(c);
}

/* Requests a membership change of node 3 on node 1 and lets it commit without a
 * tick (an idle tick or two would quiesce the group, which drops the leader's log
 * from memory: the new replica would then get a snapshot instead of the log). */
static void change_node_3(struct mrc_cluster *c, int type, uint64_t token, const char *id)
{
    struct mr_completion done;
    assert_int_equal(mr_propose_conf_change(mrc_node(c, 1), 1, token, type, 3, id, strlen(id), false,
                                            NULL, 0, 200),
                     MR_OK);
    mrc_settle(c);
    assert_true(mrc_completion(c, 1, token, &done));
    assert_int_equal(done.result, MR_OK);
}

/* A node crashes with its row trailing (commands with generated ids applied and
 * announced past it), and while it is down it is removed from the group and added
 * again.  When it restarts, the first message for its new replica replaces the old
 * one, which has not applied that stretch again: the tombstone must carry how far
 * the old replica announced, not only what it applied, or the new replica,
 * replaying the log from an older snapshot, announces those commands a second time
 * (found by test/fuzz/fuzz_mr_cluster; docs/sim-findings.md, finding 14). */
static void test_a_replica_replaced_after_a_crash_announces_nothing_twice(void **state)
{
    struct mrc_cluster *c = mrc_new_one_group(74);
    struct mr_group_status before, after;
    (void)state;
    assert_non_null(c);
    /* Generated ids: no dedup record stands in for the events (the session in the
     * group's state does, and the new replica's snapshot predates these). */
    propose_range_of(c, 0, 10, true);
    assert_true(mrc_stored_applied(c, 3, 1) < applied_in_memory(c, 3));
    assert_int_equal(mr_group_status(mrc_node(c, 3), 1, &before), MR_OK);
    assert_one_event_each_of(c, 3, 10, true);
    mrc_crash(c, 3);
    change_node_3(c, MR_CHANGE_REMOVE_VOTER, 5001, "rm-3");
    change_node_3(c, MR_CHANGE_ADD_VOTER, 5002, "add-3");
    assert_int_equal(mrc_restart(c, 3), MR_OK);
    mrc_run(c, 60);
    /* The new replica replayed the log: no snapshot covered the commands. */
    for (size_t i = 0; i < mrc_event_count(c, 3); i++)
        assert_true(mrc_event_at(c, 3, i)->type != MR_EVENT_SNAPSHOT_APPLIED ||
                    mrc_event_at(c, 3, i)->index < before.applied);
    /* Node 3 is a member again, through a new replica, and caught up... */
    assert_int_equal(mr_group_status(mrc_node(c, 3), 1, &after), MR_OK);
    assert_true(after.replica_id > before.replica_id);
    assert_true(after.applied >= before.applied + 2);
    /* ... without a second event for any of the ten commands. */
    assert_one_event_each_of(c, 3, 10, true);
    assert_int_equal(mrc_check(c, NULL, 0), 0);
    mrc_free(c);
}

/* A replica the host could not restore leaves a tombstone with its meta row's
 * applied index, which may trail the events the host stored; the host's highest
 * event index raises it, so that a later replica of the group here does not
 * announce those entries again. */
static void test_a_tombstone_learns_how_far_events_went(void **state)
{
    struct mr_config cfg;
    struct mr_node *n;
    (void)state;
    memset(&cfg, 0, sizeof cfg);
    cfg.node_id = 1;
    n = mr_node_new(&cfg, NULL);
    assert_non_null(n);
    assert_int_equal(mr_restore_tombstone(n, 7, 3, 10, 0), MR_OK);
    assert_int_equal(mr_restore_announced(n, 7, 60), MR_OK);
    assert_int_equal(mr_tomb_find(n, 7)->announced, 60);
    assert_int_equal(mr_restore_announced(n, 7, 20), MR_OK); /* never lowered */
    assert_int_equal(mr_tomb_find(n, 7)->announced, 60);
    assert_int_equal(mr_restore_announced(n, 8, 60), MR_ENOGROUP);
    mr_node_free(n);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_crash_re_applies_the_lag_without_duplicates),
        cmocka_unit_test(test_the_row_catches_up_every_lag),
        cmocka_unit_test(test_a_new_term_is_stored_at_once),
        cmocka_unit_test(test_a_replica_replaced_after_a_crash_announces_nothing_twice),
        cmocka_unit_test(test_a_tombstone_learns_how_far_events_went),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
