/*
 * test_raft_read_index.c — linearizable reads with ReadIndex (dissertation §6.4).
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

/* Leader: read state only after a quorum acknowledged a heartbeat round sent after
 * the request; the index is the commit index at request time. */
static void test_leader_read(void **state)
{
    struct test_cluster tc;
    raft_index commit;
    const struct raft_message *hb;
    (void)state;
    assert_int_equal(tc_init(&tc, 3, NULL, 1), 0);
    assert_int_equal(tc_elect(&tc, 0), 0);
    tc_propose(&tc, 0, "w", NULL);
    tc_stabilize(&tc, 0);
    commit = raft_get_commit(R(&tc, 0));
    assert_int_equal(raft_read_index(R(&tc, 0), 42), RAFT_OK);
    tc_process(&tc, 0);
    assert_int_equal(tc.nodes[0].n_reads, 0); /* not before confirmation */
    hb = tc_queued_find(&tc, RAFT_MSG_HEARTBEAT, 1, 2);
    assert_non_null(hb);
    assert_true(hb->context != 0);
    tc_stabilize(&tc, 0);
    assert_int_equal(tc.nodes[0].n_reads, 1);
    assert_int_equal(tc.nodes[0].reads[0].ctx, 42);
    assert_int_equal(tc.nodes[0].reads[0].status, RAFT_OK);
    assert_int_equal(tc.nodes[0].reads[0].index, commit);
    tc_destroy(&tc);
}

/* A leader cut off from the quorum never confirms a read (a newer leader may exist);
 * the read is reported dropped when it steps down. */
static void test_partitioned_leader_cannot_read(void **state)
{
    struct test_cluster tc;
    struct raft_config cfg;
    (void)state;
    tc_default_config(&cfg);
    cfg.check_quorum = true;
    assert_int_equal(tc_init(&tc, 3, &cfg, 2), 0);
    assert_int_equal(tc_elect(&tc, 0), 0);
    tc_isolate(&tc, 0);
    assert_int_equal(raft_read_index(R(&tc, 0), 7), RAFT_OK);
    for (int k = 0; k < 5; k++) {
        raft_tick(R(&tc, 0));
        tc_stabilize(&tc, 0);
    }
    assert_int_equal(tc.nodes[0].n_reads, 0);
    /* CheckQuorum notices within two election timeouts */
    for (int k = 0; k < 20; k++) {
        raft_tick(R(&tc, 0));
        tc_stabilize(&tc, 0);
    }
    assert_int_equal(raft_get_role(R(&tc, 0)), RAFT_FOLLOWER);
    assert_int_equal(tc.nodes[0].n_reads, 1);
    assert_int_equal(tc.nodes[0].reads[0].ctx, 7);
    assert_int_equal(tc.nodes[0].reads[0].status, RAFT_EDROPPED);
    tc_destroy(&tc);
}

/* §6.4 step 1: a new leader defers reads until an entry of its term is committed. */
static void test_deferred_until_commit_in_term(void **state)
{
    struct test_cluster tc;
    (void)state;
    assert_int_equal(tc_init(&tc, 3, NULL, 3), 0);
    assert_int_equal(raft_campaign(R(&tc, 0)), RAFT_OK);
    /* win the election but hold back the APPENDs carrying the no-op */
    tc_process(&tc, 0);
    tc_deliver_type(&tc, RAFT_MSG_VOTE);
    tc_process(&tc, 1);
    tc_process(&tc, 2);
    tc_deliver_type(&tc, RAFT_MSG_VOTE_RESP);
    assert_int_equal(raft_get_role(R(&tc, 0)), RAFT_LEADER);
    assert_int_equal(raft_read_index(R(&tc, 0), 5), RAFT_OK);
    tc_process(&tc, 0);
    assert_int_equal(tc_queued(&tc, RAFT_MSG_HEARTBEAT, 1, 0), 0); /* deferred */
    {
        struct raft_status st;
        raft_get_status(R(&tc, 0), &st);
        assert_int_equal(st.n_pending_reads, 1);
    }
    tc_stabilize(&tc, 0);
    assert_int_equal(tc.nodes[0].n_reads, 1);
    assert_int_equal(tc.nodes[0].reads[0].status, RAFT_OK);
    assert_int_equal(tc.nodes[0].reads[0].index, 1); /* the no-op */
    tc_destroy(&tc);
}

/* Followers forward reads to the leader and get the index back. */
static void test_follower_read(void **state)
{
    struct test_cluster tc;
    raft_index commit;
    (void)state;
    assert_int_equal(tc_init(&tc, 3, NULL, 4), 0);
    assert_int_equal(raft_read_index(R(&tc, 1), 1), RAFT_ENOTLEADER);
    assert_int_equal(tc_elect(&tc, 0), 0);
    tc_propose(&tc, 0, "a", NULL);
    tc_propose(&tc, 0, "b", NULL);
    tc_stabilize(&tc, 0);
    commit = raft_get_commit(R(&tc, 0));
    assert_int_equal(raft_read_index(R(&tc, 1), 99), RAFT_FORWARDED);
    tc_stabilize(&tc, 0);
    assert_int_equal(tc.nodes[1].n_reads, 1);
    assert_int_equal(tc.nodes[1].reads[0].ctx, 99);
    assert_int_equal(tc.nodes[1].reads[0].status, RAFT_OK);
    assert_true(tc.nodes[1].reads[0].index >= commit);
    /* the caller serves the read once applied >= index */
    assert_true(raft_get_applied(R(&tc, 1)) >= tc.nodes[1].reads[0].index);
    tc_destroy(&tc);
}

/* A replica that is not the leader refuses forwarded reads; the requester is told. */
static void test_read_refused_by_non_leader(void **state)
{
    struct test_cluster tc;
    struct raft_message m;
    (void)state;
    assert_int_equal(tc_init(&tc, 3, NULL, 5), 0);
    memset(&m, 0, sizeof m);
    m.type = RAFT_MSG_READ_INDEX;
    m.from = 2;
    m.to = 1;
    m.context = 11;
    assert_int_equal(tc_step(&tc, 0, &m), RAFT_OK);
    tc_stabilize(&tc, 0);
    assert_int_equal(tc.nodes[1].n_reads, 1);
    assert_int_equal(tc.nodes[1].reads[0].ctx, 11);
    assert_int_equal(tc.nodes[1].reads[0].status, RAFT_EDROPPED);
    tc_destroy(&tc);
}

/* Single voter: reads complete without any message. */
static void test_single_node_read(void **state)
{
    struct test_cluster tc;
    raft_id one = 1;
    struct raft_conf_state cs = {&one, 1, NULL, 0};
    (void)state;
    memset(&tc, 0, sizeof tc);
    tc_default_config(&tc.cfg);
    assert_int_equal(tc_add_node(&tc, 0, 1, &cs), 0);
    assert_int_equal(tc_elect(&tc, 0), 0);
    assert_int_equal(raft_read_index(R(&tc, 0), 3), RAFT_OK);
    tc_stabilize(&tc, 0);
    assert_int_equal(tc.nodes[0].n_reads, 1);
    assert_int_equal(tc.nodes[0].reads[0].index, 1);
    tc_destroy(&tc);
}

/* Linearizability: a read started after a write committed returns an index covering
 * it, on every node, many times over, with message loss. */
static void test_reads_cover_prior_writes(void **state)
{
    struct test_cluster tc;
    (void)state;
    assert_int_equal(tc_init(&tc, 3, NULL, 6), 0);
    assert_int_equal(tc_elect(&tc, 0), 0);
    for (int k = 0; k < 20; k++) {
        raft_index idx;
        int node = k % 3;
        int l = tc_leader(&tc);
        size_t before = tc.nodes[node].n_reads;
        assert_true(l >= 0);
        tc_propose(&tc, l, "w", &idx);
        tc_stabilize(&tc, 0);
        assert_true(raft_get_commit(R(&tc, l)) >= idx);
        assert_true(raft_read_index(R(&tc, node), (uint64_t)k) >= 0);
        tc_tick_stabilize(&tc, 2);
        assert_int_equal(tc.nodes[node].n_reads, before + 1);
        assert_int_equal(tc.nodes[node].reads[before].status, RAFT_OK);
        assert_true(tc.nodes[node].reads[before].index >= idx);
    }
    tc_destroy(&tc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_leader_read),
        cmocka_unit_test(test_partitioned_leader_cannot_read),
        cmocka_unit_test(test_deferred_until_commit_in_term),
        cmocka_unit_test(test_follower_read),
        cmocka_unit_test(test_read_refused_by_non_leader),
        cmocka_unit_test(test_single_node_read),
        cmocka_unit_test(test_reads_cover_prior_writes),
    };
    return cmocka_run_group_tests_name("raft_read_index", tests, NULL, NULL);
}
