/*
 * test_raft_transfer.c — leadership transfer (dissertation §3.10).
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

static void test_transfer_to_up_to_date(void **state)
{
    struct test_cluster tc;
    raft_term t;
    (void)state;
    assert_int_equal(tc_init(&tc, 3, NULL, 1), 0);
    assert_int_equal(tc_elect(&tc, 0), 0);
    tc_tick_stabilize(&tc, 1);
    t = raft_get_term(R(&tc, 0));
    assert_int_equal(raft_transfer_leadership(R(&tc, 0), 2), RAFT_OK);
    assert_int_equal(raft_get_transferee(R(&tc, 0)), 2);
    tc_process(&tc, 0);
    assert_int_equal(tc_queued(&tc, RAFT_MSG_TIMEOUT_NOW, 1, 2), 1);
    tc_stabilize(&tc, 0);
    assert_int_equal(raft_get_role(R(&tc, 1)), RAFT_LEADER);
    assert_int_equal(raft_get_term(R(&tc, 1)), t + 1);
    assert_int_equal(raft_get_role(R(&tc, 0)), RAFT_FOLLOWER);
    assert_int_equal(raft_get_transferee(R(&tc, 0)), RAFT_NONE);
    check_safe(&tc);
    tc_destroy(&tc);
}

/* The target is brought up to date first; TIMEOUT_NOW only once it matches. */
static void test_transfer_to_lagging(void **state)
{
    struct test_cluster tc;
    (void)state;
    assert_int_equal(tc_init(&tc, 3, NULL, 2), 0);
    assert_int_equal(tc_elect(&tc, 0), 0);
    tc_cut(&tc, 0, 2);
    for (int k = 0; k < 5; k++)
        tc_propose(&tc, 0, "lag", NULL);
    tc_stabilize(&tc, 0);
    assert_true(raft_get_last_index(R(&tc, 2)) < raft_get_last_index(R(&tc, 0)));
    tc_heal(&tc);
    assert_int_equal(raft_transfer_leadership(R(&tc, 0), 3), RAFT_OK);
    tc_process(&tc, 0);
    assert_int_equal(tc_queued(&tc, RAFT_MSG_TIMEOUT_NOW, 1, 3), 0);
    tc_stabilize(&tc, 0);
    tc_tick_stabilize(&tc, 2);
    assert_int_equal(raft_get_role(R(&tc, 2)), RAFT_LEADER);
    assert_int_equal(tc_applied_commands(&tc, 2), 5);
    check_safe(&tc);
    tc_destroy(&tc);
}

/* Proposals and conf changes are refused while transferring; an unfinished transfer
 * is aborted after an election timeout and proposals work again. */
static void test_transfer_refusals_and_abort(void **state)
{
    struct test_cluster tc;
    struct raft_conf_change cc = {RAFT_CC_ADD_LEARNER, 9, NULL, 0};
    (void)state;
    assert_int_equal(tc_init(&tc, 3, NULL, 3), 0);
    assert_int_equal(tc_elect(&tc, 0), 0);
    tc_crash(&tc, 2);
    assert_int_equal(tc_propose(&tc, 0, "x", NULL), RAFT_OK);
    tc_stabilize(&tc, 0);
    assert_int_equal(raft_transfer_leadership(R(&tc, 0), 3), RAFT_OK);
    assert_int_equal(tc_propose(&tc, 0, "y", NULL), RAFT_ETRANSFER);
    assert_int_equal(raft_propose_conf_change(R(&tc, 0), &cc, NULL, NULL), RAFT_ETRANSFER);
    for (int k = 0; k < 9; k++) {
        raft_tick(R(&tc, 0));
        tc_stabilize(&tc, 0);
    }
    assert_int_equal(raft_get_transferee(R(&tc, 0)), 3);
    raft_tick(R(&tc, 0));
    tc_stabilize(&tc, 0);
    assert_int_equal(raft_get_transferee(R(&tc, 0)), RAFT_NONE);
    assert_int_equal(raft_get_role(R(&tc, 0)), RAFT_LEADER);
    assert_int_equal(tc_propose(&tc, 0, "z", NULL), RAFT_OK);
    tc_destroy(&tc);
}

static void test_transfer_invalid_targets(void **state)
{
    struct test_cluster tc;
    raft_id voters[3] = {1, 2, 3};
    raft_id learners[1] = {4};
    struct raft_conf_state cs = {voters, 3, learners, 1};
    (void)state;
    memset(&tc, 0, sizeof tc);
    tc_default_config(&tc.cfg);
    for (int i = 0; i < 4; i++)
        assert_int_equal(tc_add_node(&tc, i, (raft_id)(i + 1), &cs), 0);
    assert_int_equal(tc_elect(&tc, 0), 0);
    assert_int_equal(raft_transfer_leadership(R(&tc, 0), 4), RAFT_EINVAL);
    assert_int_equal(raft_transfer_leadership(R(&tc, 0), 77), RAFT_EINVAL);
    assert_int_equal(raft_transfer_leadership(R(&tc, 0), 1), RAFT_OK);
    assert_int_equal(raft_get_transferee(R(&tc, 0)), RAFT_NONE);
    assert_int_equal(raft_get_role(R(&tc, 0)), RAFT_LEADER);
    tc_destroy(&tc);
}

/* A follower forwards the request to the leader. */
static void test_transfer_forwarded(void **state)
{
    struct test_cluster tc;
    (void)state;
    assert_int_equal(tc_init(&tc, 3, NULL, 4), 0);
    assert_int_equal(tc_elect(&tc, 0), 0);
    assert_int_equal(raft_transfer_leadership(R(&tc, 1), 3), RAFT_FORWARDED);
    tc_stabilize(&tc, 0);
    assert_int_equal(raft_get_role(R(&tc, 2)), RAFT_LEADER);
    tc_destroy(&tc);
}

/* With CheckQuorum (leases) and PreVote, a transfer still works: the target
 * campaigns directly and its votes bypass the followers' lease. */
static void test_transfer_with_lease_and_prevote(void **state)
{
    struct test_cluster tc;
    struct raft_config cfg;
    (void)state;
    tc_default_config(&cfg);
    cfg.check_quorum = true;
    cfg.pre_vote = true;
    assert_int_equal(tc_init(&tc, 3, &cfg, 5), 0);
    assert_int_equal(tc_elect(&tc, 0), 0);
    tc_tick_stabilize(&tc, 2);
    assert_int_equal(raft_transfer_leadership(R(&tc, 0), 2), RAFT_OK);
    tc_stabilize(&tc, 0);
    assert_int_equal(raft_get_role(R(&tc, 1)), RAFT_LEADER);
    assert_int_equal(raft_get_leader(R(&tc, 2)), 2);
    tc_tick_stabilize(&tc, 30);
    assert_int_equal(raft_get_role(R(&tc, 1)), RAFT_LEADER);
    check_safe(&tc);
    tc_destroy(&tc);
}

/* A TIMEOUT_NOW that reaches the target together with the commit of a
 * configuration change it has not applied yet cannot start a campaign at once
 * (the configuration must be applied first); the leader sends it only once, so
 * it waits for the apply instead of being dropped, which left the leader
 * refusing proposals until the transfer timed out, and the transfer undone. */
static void test_timeout_now_waits_for_an_unapplied_conf_change(void **state)
{
    struct test_cluster tc;
    struct raft_conf_change cc;
    raft_index idx;
    (void)state;
    assert_int_equal(tc_init_bootstrap(&tc, 3, NULL, 7), 0);
    assert_int_equal(tc_elect(&tc, 0), 0);
    tc_tick_stabilize(&tc, 1);
    assert_int_equal(tc_add_node(&tc, 3, 4, NULL), 0);
    memset(&cc, 0, sizeof cc);
    cc.type = RAFT_CC_ADD_LEARNER;
    cc.replica = 4;
    assert_int_equal(raft_propose_conf_change(R(&tc, 0), &cc, &idx, NULL), RAFT_OK);
    tc_process(&tc, 0);                       /* leader persists, APPENDs queued */
    tc_deliver_type(&tc, RAFT_MSG_APPEND);    /* followers get the entry */
    tc_process(&tc, 1);
    tc_process(&tc, 2);
    tc_deliver_type(&tc, RAFT_MSG_APPEND_RESP); /* leader commits */
    assert_true(raft_get_commit(R(&tc, 0)) >= idx);
    tc_process(&tc, 0);                       /* leader applies; commit-only APPENDs out */
    /* The target (id 2) is fully matched: TIMEOUT_NOW goes out at once. */
    assert_int_equal(raft_transfer_leadership(R(&tc, 0), 2), RAFT_OK);
    tc_process(&tc, 0);
    assert_int_equal(tc_queued(&tc, RAFT_MSG_TIMEOUT_NOW, 1, 2), 1);
    /* Node 2 steps the commit-only APPEND and then TIMEOUT_NOW, before its Ready. */
    tc_deliver_type(&tc, RAFT_MSG_APPEND);
    assert_true(raft_get_commit(R(&tc, 1)) >= idx);
    assert_true(raft_get_applied(R(&tc, 1)) < idx);
    tc_deliver_type(&tc, RAFT_MSG_TIMEOUT_NOW);
    tc_stabilize(&tc, 0);
    int refused = 0;
    for (int t = 0; t < 30; t++) {
        if (tc_propose(&tc, 0, "x", NULL) == RAFT_ETRANSFER)
            refused++;
        tc_tick_stabilize(&tc, 1);
    }
    (void)refused;
    /* §3.10: the target campaigns once it has applied the change */
    assert_int_equal(raft_get_role(R(&tc, 1)), RAFT_LEADER);
    tc_destroy(&tc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_timeout_now_waits_for_an_unapplied_conf_change),
        cmocka_unit_test(test_transfer_to_up_to_date),
        cmocka_unit_test(test_transfer_to_lagging),
        cmocka_unit_test(test_transfer_refusals_and_abort),
        cmocka_unit_test(test_transfer_invalid_targets),
        cmocka_unit_test(test_transfer_forwarded),
        cmocka_unit_test(test_transfer_with_lease_and_prevote),
    };
    return cmocka_run_group_tests_name("raft_transfer", tests, NULL, NULL);
}
