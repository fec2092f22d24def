/*
 * test_raft_membership.c — single-server membership changes (dissertation §4.1),
 * learners, removal of the leader (§4.2.2), the conf-change encoding and the rule that
 * replicas outside the configuration are ignored.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "raft.h"
#include "test_cluster.h"
#include "raft_unit.h"

static int propose_cc(struct test_cluster *tc, int i, int type, raft_id id, raft_index *idx)
{
    struct raft_conf_change cc;
    memset(&cc, 0, sizeof cc);
    cc.type = (uint8_t)type;
    cc.replica = id;
    cc.context = "ctx";
    cc.context_len = 3;
    return raft_propose_conf_change(R(tc, i), &cc, idx, NULL);
}

static void test_encoding_roundtrip(void **state)
{
    struct raft_conf_change cc, out;
    unsigned char buf[64];
    size_t n;
    (void)state;
    memset(&cc, 0, sizeof cc);
    cc.type = RAFT_CC_ADD_LEARNER;
    cc.replica = 0x0102030405060708ULL;
    cc.context = "hello";
    cc.context_len = 5;
    n = raft_conf_change_encoded_size(&cc);
    assert_int_equal(n, RAFT_CONF_CHANGE_HEADER_SIZE + 5);
    assert_int_equal(raft_conf_change_encode(&cc, buf), n);
    assert_int_equal(raft_conf_change_decode(buf, n, &out), RAFT_OK);
    assert_int_equal(out.type, RAFT_CC_ADD_LEARNER);
    assert_true(out.replica == cc.replica);
    assert_int_equal(out.context_len, 5);
    assert_memory_equal(out.context, "hello", 5);
    /* little endian on the wire */
    assert_int_equal(buf[2], 0x08);
    /* malformed inputs */
    assert_int_equal(raft_conf_change_decode(buf, n - 1, &out), RAFT_ECORRUPT);
    assert_int_equal(raft_conf_change_decode(buf, 3, &out), RAFT_ECORRUPT);
    buf[1] = 9;
    assert_int_equal(raft_conf_change_decode(buf, n, &out), RAFT_ECORRUPT);
    buf[1] = RAFT_CC_ADD_VOTER;
    buf[0] = 2;
    assert_int_equal(raft_conf_change_decode(buf, n, &out), RAFT_ECORRUPT);
}

/* A brand-new replica with an empty storage joins as a voter: it receives the
 * bootstrap snapshot (with the configuration), then the log; the change takes effect
 * when committed and the quorum grows to 3 of 4. */
static void test_add_voter(void **state)
{
    struct test_cluster tc;
    raft_index idx;
    struct raft_conf_state cs;
    (void)state;
    assert_int_equal(tc_init_bootstrap(&tc, 3, NULL, 1), 0);
    assert_int_equal(tc_elect(&tc, 0), 0);
    tc_propose(&tc, 0, "before", NULL);
    tc_stabilize(&tc, 0);
    assert_int_equal(tc_add_node(&tc, 3, 4, NULL), 0);
    assert_int_equal(propose_cc(&tc, 0, RAFT_CC_ADD_VOTER, 4, &idx), RAFT_OK);
    assert_true(raft_conf_change_pending(R(&tc, 0)));
    assert_false(raft_is_voter(R(&tc, 0), 4)); /* not before it is committed */
    tc_stabilize(&tc, 0);
    assert_false(raft_conf_change_pending(R(&tc, 0)));
    for (int i = 0; i < 4; i++) {
        if (!raft_is_voter(R(&tc, i), 4))
            fail_msg("node %d: 4 not a voter; last %llu commit %llu", i,
                     (unsigned long long)raft_get_last_index(R(&tc, i)),
                     (unsigned long long)raft_get_commit(R(&tc, i)));
        raft_get_conf_state(R(&tc, i), &cs);
        assert_int_equal(cs.n_voters, 4);
    }
    tc_tick_stabilize(&tc, 2);
    assert_true(tc_applied_contains(&tc, 3, "before"));
    assert_true(tc.nodes[3].snapshots_installed == 1);
    /* quorum is now 3: leader + node 4 alone cannot commit */
    tc_isolate(&tc, 1);
    tc_isolate(&tc, 2);
    tc_propose(&tc, 0, "needs3", &idx);
    tc_tick_stabilize(&tc, 2);
    assert_true(raft_get_commit(R(&tc, 0)) < idx);
    tc_heal(&tc);
    tc_tick_stabilize(&tc, 2);
    assert_true(raft_get_commit(R(&tc, 0)) >= idx);
    check_safe(&tc);
    tc_destroy(&tc);
}

/* Learners replicate but do not count in quorums; add_voter promotes them. */
static void test_learner_and_promotion(void **state)
{
    struct test_cluster tc;
    raft_index idx;
    struct raft_status st;
    (void)state;
    assert_int_equal(tc_init_bootstrap(&tc, 3, NULL, 2), 0);
    assert_int_equal(tc_elect(&tc, 0), 0);
    assert_int_equal(tc_add_node(&tc, 3, 4, NULL), 0);
    assert_int_equal(propose_cc(&tc, 0, RAFT_CC_ADD_LEARNER, 4, NULL), RAFT_OK);
    tc_stabilize(&tc, 0);
    assert_true(raft_is_learner(R(&tc, 0), 4));
    assert_false(raft_is_voter(R(&tc, 0), 4));
    tc_propose(&tc, 0, "l1", NULL);
    tc_tick_stabilize(&tc, 2);
    assert_true(tc_applied_contains(&tc, 3, "l1"));
    raft_get_status(R(&tc, 3), &st);
    assert_true(st.is_learner);
    assert_int_equal(st.n_learners, 1);
    /* leader + learner are not a quorum of {1,2,3} */
    tc_isolate(&tc, 1);
    tc_isolate(&tc, 2);
    tc_propose(&tc, 0, "l2", &idx);
    tc_tick_stabilize(&tc, 2);
    assert_true(raft_get_commit(R(&tc, 0)) < idx);
    /* a learner never campaigns */
    assert_int_equal(raft_campaign(R(&tc, 3)), RAFT_ENOTMEMBER);
    tc_heal(&tc);
    tc_tick_stabilize(&tc, 2);
    /* promotion */
    assert_int_equal(propose_cc(&tc, 0, RAFT_CC_ADD_VOTER, 4, NULL), RAFT_OK);
    tc_tick_stabilize(&tc, 2);
    for (int i = 0; i < 4; i++) {
        assert_true(raft_is_voter(R(&tc, i), 4));
        assert_false(raft_is_learner(R(&tc, i), 4));
    }
    check_safe(&tc);
    tc_destroy(&tc);
}

/* Removing a follower: the quorum shrinks, the removed replica's later messages are
 * ignored (ids are never reused) and it does not campaign once it applied its removal. */
static void test_remove_follower(void **state)
{
    struct test_cluster tc;
    struct raft_message m;
    raft_term t;
    raft_index idx;
    (void)state;
    assert_int_equal(tc_init_bootstrap(&tc, 3, NULL, 3), 0);
    assert_int_equal(tc_elect(&tc, 0), 0);
    assert_int_equal(propose_cc(&tc, 0, RAFT_CC_REMOVE, 3, NULL), RAFT_OK);
    tc_tick_stabilize(&tc, 2);
    for (int i = 0; i < 3; i++)
        assert_false(raft_is_voter(R(&tc, i), 3));
    assert_int_equal(raft_progress_count(R(&tc, 0)), 2);
    /* node 3 knows it was removed: it never campaigns */
    assert_int_equal(raft_campaign(R(&tc, 2)), RAFT_ENOTMEMBER);
    /* its messages are ignored entirely, even with a higher term */
    t = raft_get_term(R(&tc, 0));
    memset(&m, 0, sizeof m);
    m.type = RAFT_MSG_VOTE;
    m.from = 3;
    m.to = 1;
    m.term = t + 5;
    m.index = 1000;
    m.log_term = t + 4;
    assert_int_equal(tc_step(&tc, 0, &m), RAFT_OK);
    m.type = RAFT_MSG_APPEND_RESP;
    assert_int_equal(tc_step(&tc, 0, &m), RAFT_OK);
    assert_int_equal(raft_get_term(R(&tc, 0)), t);
    assert_int_equal(raft_get_role(R(&tc, 0)), RAFT_LEADER);
    /* two voters left: both needed */
    tc_crash(&tc, 2);
    tc_propose(&tc, 0, "two", &idx);
    tc_tick_stabilize(&tc, 2);
    assert_int_equal(raft_get_commit(R(&tc, 0)), idx);
    check_safe(&tc);
    tc_destroy(&tc);
}

/* Dissertation §4.2.2: a leader that removes itself keeps leading until the change
 * commits, then steps down; the rest elect a new leader; the old one stays quiet. */
static void test_remove_leader(void **state)
{
    struct test_cluster tc;
    int l;
    (void)state;
    assert_int_equal(tc_init_bootstrap(&tc, 3, NULL, 4), 0);
    assert_int_equal(tc_elect(&tc, 0), 0);
    assert_int_equal(propose_cc(&tc, 0, RAFT_CC_REMOVE, 1, NULL), RAFT_OK);
    assert_int_equal(raft_get_role(R(&tc, 0)), RAFT_LEADER);
    tc_stabilize(&tc, 0);
    assert_int_equal(raft_get_role(R(&tc, 0)), RAFT_FOLLOWER);
    assert_false(raft_is_voter(R(&tc, 0), 1));
    tc_tick_stabilize(&tc, 45);
    l = tc_leader(&tc);
    assert_true(l == 1 || l == 2);
    assert_int_equal(raft_get_role(R(&tc, 0)), RAFT_FOLLOWER);
    for (int i = 1; i < 3; i++)
        assert_false(raft_is_voter(R(&tc, i), 1));
    tc_propose(&tc, l, "after", NULL);
    tc_tick_stabilize(&tc, 2);
    assert_true(tc_applied_contains(&tc, 1, "after"));
    assert_true(tc_applied_contains(&tc, 2, "after"));
    check_safe(&tc);
    tc_destroy(&tc);
}

/* A leader removing itself accepts no more proposals, so its log ends with the
 * removal.  Even if the remaining voter never hears that the removal committed (all
 * commit announcements lost), it can still win an election with the departing
 * leader's vote — which it needs while its configuration is the old one. */
struct drop_commit {
    raft_index idx;
};

static bool drop_commit_announcements(void *arg, const struct raft_message *m)
{
    struct drop_commit *d = arg;
    if (m->from != 1 || d->idx == 0)
        return true;
    if ((m->type == RAFT_MSG_APPEND || m->type == RAFT_MSG_HEARTBEAT) && m->commit >= d->idx)
        return false;
    /* nothing appended after the removal reaches node 2 either */
    if (m->type == RAFT_MSG_APPEND && m->n_entries > 0 &&
        m->entries[m->n_entries - 1].index > d->idx)
        return false;
    return true;
}

static void test_leader_self_removal_liveness(void **state)
{
    struct test_cluster tc;
    struct drop_commit d = {0};
    struct raft_conf_state cs;
    (void)state;
    assert_int_equal(tc_init_bootstrap(&tc, 2, NULL, 8), 0);
    assert_int_equal(tc_elect(&tc, 0), 0);
    tc_tick_stabilize(&tc, 1);
    tc.filter = drop_commit_announcements;
    tc.filter_arg = &d;
    assert_int_equal(propose_cc(&tc, 0, RAFT_CC_REMOVE, 1, &d.idx), RAFT_OK);
    assert_int_equal(tc_propose(&tc, 0, "late", NULL), RAFT_ENOTMEMBER);
    tc_stabilize(&tc, 0);
    assert_int_equal(raft_get_role(R(&tc, 0)), RAFT_FOLLOWER);
    assert_true(raft_get_commit(R(&tc, 1)) < d.idx); /* node 2 never heard */
    assert_true(raft_is_voter(R(&tc, 1), 1));
    tc_tick_stabilize(&tc, 50);
    assert_int_equal(tc_leader(&tc), 1);
    tc_tick_stabilize(&tc, 2);
    raft_get_conf_state(R(&tc, 1), &cs);
    assert_int_equal(cs.n_voters, 1);
    assert_int_equal(cs.voters[0], 2);
    assert_int_equal(tc_propose(&tc, 1, "solo", NULL), RAFT_OK);
    tc_tick_stabilize(&tc, 2);
    assert_true(tc_applied_contains(&tc, 1, "solo"));
    check_safe(&tc);
    tc_destroy(&tc);
}

/* At most one uncommitted change; invalid changes are refused with a reason. */
static void test_conf_change_refusals(void **state)
{
    struct test_cluster tc;
    (void)state;
    assert_int_equal(tc_init_bootstrap(&tc, 3, NULL, 5), 0);
    assert_int_equal(tc_elect(&tc, 0), 0);
    /* a new leader's no-op may hide a conf change: refused until it is applied */
    assert_int_equal(propose_cc(&tc, 0, RAFT_CC_ADD_LEARNER, 7, NULL), RAFT_OK);
    assert_int_equal(propose_cc(&tc, 0, RAFT_CC_ADD_LEARNER, 8, NULL), RAFT_ECONFPENDING);
    tc_stabilize(&tc, 0);
    assert_int_equal(propose_cc(&tc, 0, RAFT_CC_ADD_VOTER, 2, NULL), RAFT_EBADCONF);
    assert_int_equal(propose_cc(&tc, 0, RAFT_CC_ADD_LEARNER, 2, NULL), RAFT_EBADCONF);
    assert_int_equal(propose_cc(&tc, 0, RAFT_CC_ADD_LEARNER, 7, NULL), RAFT_EBADCONF);
    assert_int_equal(propose_cc(&tc, 0, RAFT_CC_REMOVE, 42, NULL), RAFT_EBADCONF);
    assert_int_equal(propose_cc(&tc, 0, RAFT_CC_ADD_VOTER, RAFT_NONE, NULL), RAFT_EINVAL);
    assert_int_equal(propose_cc(&tc, 1, RAFT_CC_ADD_VOTER, 9, NULL), RAFT_ENOTLEADER);
    /* after applying, the next change is accepted (learner 7 removed) */
    assert_int_equal(propose_cc(&tc, 0, RAFT_CC_REMOVE, 7, NULL), RAFT_OK);
    tc_stabilize(&tc, 0);
    assert_false(raft_is_learner(R(&tc, 0), 7));
    tc_destroy(&tc);

    /* the last voter cannot be removed */
    {
        raft_id one = 1;
        struct raft_conf_state cs = {&one, 1, NULL, 0};
        memset(&tc, 0, sizeof tc);
        tc_default_config(&tc.cfg);
        assert_int_equal(tc_add_node(&tc, 0, 1, &cs), 0);
        assert_int_equal(tc_elect(&tc, 0), 0);
        assert_int_equal(propose_cc(&tc, 0, RAFT_CC_REMOVE, 1, NULL), RAFT_EBADCONF);
        tc_destroy(&tc);
    }
}

/* The committed conf change reaches the caller: the entry in rd.committed (decodable,
 * with its context) and rd.conf_changed + rd.conf_state in the same Ready. */
struct cc_seen {
    raft_index idx;
    int seen;
};

static void check_cc_ready(void *arg, int slot, const struct raft_ready *rd)
{
    struct cc_seen *cs = arg;
    (void)slot;
    for (size_t j = 0; j < rd->n_committed; j++) {
        struct raft_conf_change cc;
        if (rd->committed[j].type != RAFT_ENTRY_CONF_CHANGE)
            continue;
        assert_int_equal(rd->committed[j].index, cs->idx);
        assert_int_equal(raft_conf_change_decode(rd->committed[j].data, rd->committed[j].len,
                                                 &cc), RAFT_OK);
        assert_int_equal(cc.replica, 5);
        assert_memory_equal(cc.context, "ctx", 3);
        assert_true(rd->conf_changed);
        assert_int_equal(rd->conf_state.n_learners, 1);
        assert_int_equal(rd->conf_state.learners[0], 5);
        assert_int_equal(rd->conf_state.n_voters, 3);
        cs->seen++;
    }
}

static void test_conf_change_in_ready(void **state)
{
    struct test_cluster tc;
    struct cc_seen seen = {0, 0};
    (void)state;
    assert_int_equal(tc_init_bootstrap(&tc, 3, NULL, 6), 0);
    assert_int_equal(tc_elect(&tc, 0), 0);
    tc.on_ready = check_cc_ready;
    tc.on_ready_arg = &seen;
    assert_int_equal(propose_cc(&tc, 0, RAFT_CC_ADD_LEARNER, 5, &seen.idx), RAFT_OK);
    tc_tick_stabilize(&tc, 2);
    assert_int_equal(seen.seen, 3); /* once on every member */
    tc_destroy(&tc);
}

/* Random membership churn with failures keeps every safety property. */
static void test_membership_churn_random(void **state)
{
    (void)state;
    for (uint64_t seed = 1; seed <= 12; seed++) {
        struct test_cluster tc;
        struct raft_config cfg;
        raft_id next_id = 10;
        int spare_slot = 3;
        tc_default_config(&cfg);
        cfg.pre_vote = true;
        cfg.check_quorum = seed % 2 == 0;
        assert_int_equal(tc_init_bootstrap(&tc, 3, &cfg, seed), 0);
        tc.drop_per_mille = 30;
        for (int step = 0; step < 300; step++) {
            int l = tc_leader(&tc);
            if (l >= 0 && step % 40 == 5 && spare_slot < TC_MAX_NODES) {
                if (tc_add_node(&tc, spare_slot, next_id, NULL) == 0) {
                    if (propose_cc(&tc, l, step % 80 == 5 ? RAFT_CC_ADD_VOTER
                                                         : RAFT_CC_ADD_LEARNER,
                                   next_id, NULL) == RAFT_OK) {
                        next_id++;
                        spare_slot++;
                    } else {
                        tc_crash(&tc, spare_slot);
                        tc.nodes[spare_slot].present = false;
                        raft_memory_storage_free(tc.nodes[spare_slot].ms);
                        free(tc.nodes[spare_slot].applied);
                        memset(&tc.nodes[spare_slot], 0, sizeof tc.nodes[spare_slot]);
                    }
                }
            }
            if (l >= 0 && step % 40 == 25) {
                /* remove some voter other than the leader (keep >= 3 voters) */
                struct raft_conf_state cs;
                raft_get_conf_state(R(&tc, l), &cs);
                if (cs.n_voters > 3)
                    propose_cc(&tc, l, RAFT_CC_REMOVE, cs.voters[cs.n_voters - 1], NULL);
                else if (cs.n_learners > 0)
                    propose_cc(&tc, l, RAFT_CC_ADD_VOTER, cs.learners[0], NULL);
            }
            if (l >= 0 && step % 2 == 0) {
                char buf[32];
                snprintf(buf, sizeof buf, "c%d", step);
                tc_propose(&tc, l, buf, NULL);
            }
            if (step % 100 == 50)
                tc_isolate(&tc, (int)(seed % 3));
            if (step % 100 == 75)
                tc_heal(&tc);
            tc_tick(&tc);
            tc_stabilize(&tc, 0);
        }
        tc_heal(&tc);
        tc.drop_per_mille = 0;
        tc_tick_stabilize(&tc, 40);
        assert_true(tc_leader(&tc) >= 0);
        check_safe(&tc);
        tc_destroy(&tc);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_encoding_roundtrip),
        cmocka_unit_test(test_add_voter),
        cmocka_unit_test(test_learner_and_promotion),
        cmocka_unit_test(test_remove_follower),
        cmocka_unit_test(test_remove_leader),
        cmocka_unit_test(test_leader_self_removal_liveness),
        cmocka_unit_test(test_conf_change_refusals),
        cmocka_unit_test(test_conf_change_in_ready),
        cmocka_unit_test(test_membership_churn_random),
    };
    return cmocka_run_group_tests_name("raft_membership", tests, NULL, NULL);
}
