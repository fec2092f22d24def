/*
 * test_raft_durable.c — DURABLE notices (raft.h, "DURABLE NOTICES"): a follower of
 * a group of at most three voters commits an entry once its leader said the entry
 * is durable there and its own write of it completed, without waiting for the
 * leader's count; reads and commit notices account for it.
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

static void init(struct test_cluster *tc, int n, bool notices)
{
    struct raft_config cfg;
    tc_default_config(&cfg);
    cfg.durable_notices = notices;
    assert_int_equal(tc_init(tc, n, &cfg, 7), 0);
    assert_int_equal(tc_elect(tc, 0), 0);
    tc_stabilize(tc, 0);
}

/* The leader's Ready holding its new entry carries a notice per voting follower;
 * a follower that receives the APPEND and the notice commits and applies the entry
 * before any acknowledgement reached the leader. */
static void test_follower_commits_before_leader_counts(void **state)
{
    struct test_cluster tc;
    const struct raft_message *d;
    raft_index idx;
    (void)state;
    init(&tc, 3, true);
    assert_int_equal(tc_propose(&tc, 0, "x", &idx), RAFT_OK);
    tc_process(&tc, 0);
    assert_int_equal(tc_queued(&tc, RAFT_MSG_DURABLE, 1, 0), 2);
    d = tc_queued_find(&tc, RAFT_MSG_DURABLE, 1, 2);
    assert_non_null(d);
    assert_int_equal(d->index, idx);
    assert_int_equal(d->term, raft_get_term(R(&tc, 0)));
    tc_deliver_type(&tc, RAFT_MSG_APPEND);
    tc_deliver_type(&tc, RAFT_MSG_DURABLE);
    tc_process(&tc, 1);
    tc_process(&tc, 2);
    for (int i = 1; i < 3; i++) {
        assert_int_equal(raft_get_commit(R(&tc, i)), idx);
        assert_true(tc_applied_contains(&tc, i, "x"));
    }
    assert_true(raft_get_commit(R(&tc, 0)) < idx); /* no APPEND_RESP delivered yet */

    /* The acknowledgements commit it on the leader, which then owes the followers no
     * empty APPEND: they worked the commit index out themselves. */
    tc_deliver_type(&tc, RAFT_MSG_APPEND_RESP);
    tc_process(&tc, 0);
    assert_int_equal(raft_get_commit(R(&tc, 0)), idx);
    assert_int_equal(tc_queued(&tc, RAFT_MSG_APPEND, 1, 0), 0);
    tc_stabilize(&tc, 0);
    check_safe(&tc);
    tc_destroy(&tc);
}

/* Either order: the notice may arrive before the follower's own write completes;
 * the commit then happens at its raft_advance. */
static void test_notice_before_own_write(void **state)
{
    struct test_cluster tc;
    raft_index idx;
    struct raft_ready rd;
    (void)state;
    init(&tc, 3, true);
    assert_int_equal(tc_propose(&tc, 0, "y", &idx), RAFT_OK);
    tc_process(&tc, 0);
    tc_deliver_type(&tc, RAFT_MSG_APPEND);
    tc_deliver_type(&tc, RAFT_MSG_DURABLE);
    /* The entry is still unstable on follower 1: nothing committed yet. */
    assert_true(raft_get_commit(R(&tc, 1)) < idx);
    assert_int_equal(raft_ready(R(&tc, 1), &rd), RAFT_OK);
    assert_int_equal(rd.n_entries, 1);
    assert_true(rd.hard_state.commit < idx);
    assert_int_equal(raft_advance(R(&tc, 1), &rd), RAFT_OK); /* "persisted" */
    assert_int_equal(raft_get_commit(R(&tc, 1)), idx);
    tc_destroy(&tc);
}

/* Entries of an older term in the follower's log are not the leader's: a notice
 * covering their indexes commits nothing (§5.4.2).  Without the term check the
 * follower would commit entries the new leader is about to overwrite. */
static void test_stale_tail_not_committed(void **state)
{
    struct test_cluster tc;
    struct raft_config cfg;
    struct raft_message m;
    const raft_term terms[5] = {1, 1, 2, 2, 2};
    (void)state;
    tc_default_config(&cfg);
    cfg.durable_notices = true;
    assert_int_equal(tc_init(&tc, 3, &cfg, 7), 0);
    preload(&tc, 1, terms, 5, 2);
    /* Leader 1 of term 3 matched the follower at index 2 ... */
    msg_init(&m, RAFT_MSG_APPEND, 1, 2, 3);
    m.index = 2;
    m.log_term = 1;
    tc_step(&tc, 1, &m);
    tc_process(&tc, 1);
    assert_int_equal(raft_get_leader(R(&tc, 1)), 1);
    /* ... and says its log is durable through 5, where its entries are of term 3. */
    msg_init(&m, RAFT_MSG_DURABLE, 1, 2, 3);
    m.index = 5;
    m.log_term = 3;
    tc_step(&tc, 1, &m);
    tc_process(&tc, 1);
    assert_true(raft_get_commit(R(&tc, 1)) <= 2);
    tc_destroy(&tc);
}

/* Only from the leader the follower follows, and only in its term. */
static void test_notice_from_others_ignored(void **state)
{
    struct test_cluster tc;
    struct raft_message m;
    raft_index idx, before;
    (void)state;
    init(&tc, 3, true);
    assert_int_equal(tc_propose(&tc, 0, "z", &idx), RAFT_OK);
    tc_process(&tc, 0);
    tc_deliver_type(&tc, RAFT_MSG_APPEND);
    tc_drop_queue(&tc);
    tc_process(&tc, 1);
    before = raft_get_commit(R(&tc, 1));
    assert_true(before < idx);
    msg_init(&m, RAFT_MSG_DURABLE, 3, 2, raft_get_term(R(&tc, 1))); /* not the leader */
    m.index = idx;
    tc_step(&tc, 1, &m);
    msg_init(&m, RAFT_MSG_DURABLE, 1, 2, raft_get_term(R(&tc, 1)) - 1); /* stale term */
    m.index = idx;
    tc_step(&tc, 1, &m);
    tc_process(&tc, 1);
    assert_int_equal(raft_get_commit(R(&tc, 1)), before);
    tc_destroy(&tc);
}

/* No notices when the leader and one follower are no majority (five voters), when
 * the option is off, or while a configuration change is in the log unapplied. */
static void test_when_no_notice(void **state)
{
    struct test_cluster tc;
    struct raft_conf_change cc;
    raft_index idx;
    (void)state;
    init(&tc, 5, true);
    assert_int_equal(tc_propose(&tc, 0, "five", &idx), RAFT_OK);
    tc_process(&tc, 0);
    assert_int_equal(tc_queued(&tc, RAFT_MSG_DURABLE, 0, 0), 0);
    tc_destroy(&tc);

    init(&tc, 3, false);
    assert_int_equal(tc_propose(&tc, 0, "off", &idx), RAFT_OK);
    tc_process(&tc, 0);
    assert_int_equal(tc_queued(&tc, RAFT_MSG_DURABLE, 0, 0), 0);
    tc_destroy(&tc);

    init(&tc, 3, true);
    memset(&cc, 0, sizeof cc);
    cc.type = RAFT_CC_ADD_LEARNER;
    cc.replica = 9;
    assert_int_equal(raft_propose_conf_change(R(&tc, 0), &cc, &idx, NULL), RAFT_OK);
    tc_process(&tc, 0);
    assert_int_equal(tc_queued(&tc, RAFT_MSG_DURABLE, 0, 0), 0);
    tc_stabilize(&tc, 0); /* committed and applied: notices again */
    assert_int_equal(tc_propose(&tc, 0, "after", &idx), RAFT_OK);
    tc_process(&tc, 0);
    assert_int_equal(tc_queued(&tc, RAFT_MSG_DURABLE, 1, 0), 2); /* voters only */
    tc_stabilize(&tc, 0);
    check_safe(&tc);
    tc_destroy(&tc);
}

/* A follower may have committed — and its node answered the write — up to what the
 * notices announced before the leader counted it: a read on the leader must not be
 * served below that. */
static void test_read_index_covers_noticed_entries(void **state)
{
    struct test_cluster tc;
    raft_index idx;
    (void)state;
    init(&tc, 3, true);
    assert_int_equal(tc_propose(&tc, 0, "w", &idx), RAFT_OK);
    tc_process(&tc, 0);
    tc_deliver_type(&tc, RAFT_MSG_APPEND);
    tc_deliver_type(&tc, RAFT_MSG_DURABLE);
    tc_process(&tc, 1);
    assert_int_equal(raft_get_commit(R(&tc, 1)), idx);
    assert_true(raft_get_commit(R(&tc, 0)) < idx);
    assert_int_equal(raft_read_index(R(&tc, 0), 5), RAFT_OK);
    tc_stabilize(&tc, 0);
    assert_int_equal(tc.nodes[0].n_reads, 1);
    assert_int_equal(tc.nodes[0].reads[0].status, RAFT_OK);
    assert_true(tc.nodes[0].reads[0].index >= idx);
    tc_destroy(&tc);
}

/* A lost notice costs only time: the next heartbeat carries the commit index. */
static bool drop_durable(void *arg, const struct raft_message *m)
{
    (void)arg;
    return m->type != RAFT_MSG_DURABLE; /* true = deliver */
}

static void test_lost_notice(void **state)
{
    struct test_cluster tc;
    raft_index idx;
    (void)state;
    init(&tc, 3, true);
    tc.filter = drop_durable;
    assert_int_equal(tc_propose(&tc, 0, "lost", &idx), RAFT_OK);
    tc_stabilize(&tc, 0);
    assert_int_equal(raft_get_commit(R(&tc, 0)), idx);
    tc_tick_stabilize(&tc, 1);
    for (int i = 0; i < 3; i++)
        assert_true(tc_applied_contains(&tc, i, "lost"));
    check_safe(&tc);
    tc_destroy(&tc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_follower_commits_before_leader_counts),
        cmocka_unit_test(test_notice_before_own_write),
        cmocka_unit_test(test_stale_tail_not_committed),
        cmocka_unit_test(test_notice_from_others_ignored),
        cmocka_unit_test(test_when_no_notice),
        cmocka_unit_test(test_read_index_covers_noticed_entries),
        cmocka_unit_test(test_lost_notice),
    };
    return cmocka_run_group_tests_name("raft_durable", tests, NULL, NULL);
}
