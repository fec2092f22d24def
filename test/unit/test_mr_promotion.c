/*
 * test_mr_promotion.c — a learner becomes a voter only once it has caught up
 * (src/multiraft/mr_conf.c, learner_caught_up; dissertation §4.2.1): promoted
 * while cut off, it stays a learner and the request waits, from the leader or
 * forwarded by a follower; once it holds the entries committed before the request
 * the promotion commits, once.  A promotion that cannot wait that long fails with
 * its deadline and leaves the learner as it was.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "mr_cluster.h"

#define GROUP 1

/* Whether `on` sees node as a voter (true) or a learner (false) of the group. */
static bool voter_on(struct mrc_cluster *c, mr_node_id on, mr_node_id node)
{
    struct mr_group_status st;
    assert_int_equal(mr_group_status(mrc_node(c, on), GROUP, &st), MR_OK);
    assert_true(mrc_node_in(st.voters, st.n_voters, node) != mrc_node_in(st.learners, st.n_learners,
                                                                   node));
    return mrc_node_in(st.voters, st.n_voters, node);
}

static size_t promotions_recorded(struct mrc_cluster *c, mr_node_id on, mr_node_id node)
{
    size_t n = 0;
    for (size_t i = 0; i < mrc_event_count(c, on); i++) {
        const struct mrc_event *e = mrc_event_at(c, on, i);
        if (e->type == MR_EVENT_MEMBERSHIP_CHANGE && e->group == GROUP &&
            e->node_id == node && e->change_type == MR_CHANGE_ADD_VOTER)
            n++;
    }
    return n;
}

static void cut_off(struct mrc_cluster *c, mr_node_id node, bool blocked)
{
    for (mr_node_id o = 1; o <= 4; o++)
        if (o != node)
            mrc_partition(c, node, o, blocked);
}

/* Group 1 on nodes 1-3, led by node 1, with node 4 a learner that was cut off
 * before it was added (it holds nothing), and 30 commands committed since. */
static struct mrc_cluster *group_with_a_learner_behind(uint64_t seed, raft_index *commit)
{
    struct mrc_cluster *c = mrc_new_nodes(4, seed);
    mr_node_id members[3] = {1, 2, 3};
    struct mr_group_status st;
    char cmd[16];
    assert_int_equal(mr_create_group(mrc_node(c, 1), GROUP, members, 3, 1), MR_OK);
    mrc_run(c, 60);
    assert_int_equal(mrc_leader(c, GROUP, NULL), 1);
    cut_off(c, 4, true);
    assert_int_equal(mrc_change(c, 1, GROUP, 1, MR_CHANGE_ADD_LEARNER, 4, "learn4", 30), MR_OK);
    for (int i = 0; i < 30; i++) {
        snprintf(cmd, sizeof cmd, "c%d", i);
        assert_int_equal(mr_propose(mrc_node(c, 1), GROUP, 100 + (uint64_t)i, cmd, strlen(cmd),
                                    "v", 1, 0),
                         MR_OK);
    }
    mrc_run(c, 10);
    assert_int_equal(mr_group_status(mrc_node(c, 1), GROUP, &st), MR_OK);
    assert_true(st.commit >= 32);
    assert_false(voter_on(c, 1, 4));
    *commit = st.commit;
    return c;
}

/* Asks node `on` to promote the learner, which is cut off: nothing happens until it
 * is back and has caught up, then the promotion commits once, everywhere. */
static void promote_the_learner_from(mr_node_id on, uint64_t seed)
{
    raft_index commit_before;
    struct mrc_cluster *c = group_with_a_learner_behind(seed, &commit_before);
    struct mr_completion done;
    struct mr_group_status st4;
    assert_int_equal(mr_propose_conf_change(mrc_node(c, on), GROUP, 7, MR_CHANGE_ADD_VOTER, 4,
                                            "promote4", 8, false, NULL, 0, 0),
                     MR_OK);
    /* 150 ticks cut off (several of the requester's retries): still a learner. */
    mrc_run(c, 150);
    assert_false(mrc_completion(c, on, 7, &done));
    assert_false(voter_on(c, 1, 4));
    assert_int_equal(promotions_recorded(c, 1, 4), 0);

    cut_off(c, 4, false);
    mrc_run(c, 150);
    assert_true(mrc_completion(c, on, 7, &done));
    assert_int_equal(done.result, MR_OK);
    assert_int_equal(mrc_completion_count(c, on, 7), 1);
    assert_true(done.index > commit_before);
    for (mr_node_id m = 1; m <= 4; m++) {
        assert_true(voter_on(c, m, 4));
        assert_int_equal(promotions_recorded(c, m, 4), 1);
    }
    assert_int_equal(mr_group_status(mrc_node(c, 4), GROUP, &st4), MR_OK);
    assert_false(st4.is_learner);
    assert_true(st4.applied >= done.index);
    assert_int_equal(mrc_check(c, NULL, 0), 0);
    mrc_free(c);
}

static void test_the_leader_promotes_a_learner_once_it_caught_up(void **state)
{
    (void)state;
    promote_the_learner_from(1, 41);
}

static void test_a_promotion_forwarded_by_a_follower_waits_too(void **state)
{
    (void)state;
    promote_the_learner_from(2, 42);
}

static void test_a_promotion_that_cannot_wait_times_out(void **state)
{
    raft_index commit;
    struct mrc_cluster *c = group_with_a_learner_behind(43, &commit);
    struct mr_completion done;
    (void)state;
    assert_int_equal(mr_propose_conf_change(mrc_node(c, 1), GROUP, 7, MR_CHANGE_ADD_VOTER, 4,
                                            "promote4", 8, false, NULL, 0, 40),
                     MR_OK);
    mrc_run(c, 60);
    assert_true(mrc_completion(c, 1, 7, &done));
    assert_int_equal(done.result, MR_ETIMEOUT);
    /* Nothing was proposed: healed, node 4 catches up and stays a learner. */
    cut_off(c, 4, false);
    mrc_run(c, 150);
    for (mr_node_id m = 1; m <= 4; m++) {
        assert_false(voter_on(c, m, 4));
        assert_int_equal(promotions_recorded(c, m, 4), 0);
    }
    /* Asked again once it holds the log, it is promoted without waiting for more. */
    assert_int_equal(mrc_change(c, 1, GROUP, 8, MR_CHANGE_ADD_VOTER, 4, "promote4-again", 10),
                     MR_OK);
    assert_true(voter_on(c, 1, 4));
    assert_int_equal(mrc_check(c, NULL, 0), 0);
    mrc_free(c);
}

/* A learner holding the whole log is promoted in an idle group after its node was
 * reported unreachable once: the leader's progress for it went back to probe, and
 * only an APPEND's answer brings it back to replicating, which an idle group sent
 * none of — the promotion waited for a write until its deadline (found by a
 * review). */
static void test_a_caught_up_learner_is_promoted_after_an_unreachable_report(void **state)
{
    struct mrc_cluster *c = mrc_new_nodes(4, 51);
    mr_node_id members[3] = {1, 2, 3};
    struct mr_group_status st1, st4;
    struct mr_completion done;
    (void)state;
    assert_int_equal(mr_create_group(mrc_node(c, 1), GROUP, members, 3, 1), MR_OK);
    mrc_run(c, 60);
    assert_int_equal(mrc_leader(c, GROUP, NULL), 1);
    assert_int_equal(mrc_change(c, 1, GROUP, 2, MR_CHANGE_ADD_LEARNER, 4, "learn4", 30), MR_OK);
    assert_int_equal(mr_propose(mrc_node(c, 1), GROUP, 3, "c1", 2, "v", 1, 0), MR_OK);
    mrc_run(c, 40);
    assert_int_equal(mr_group_status(mrc_node(c, 1), GROUP, &st1), MR_OK);
    assert_int_equal(mr_group_status(mrc_node(c, 4), GROUP, &st4), MR_OK);
    assert_int_equal(st4.last_index, st1.last_index);
    /* Awake again (a read), then the connection to node 4 drops once. */
    assert_int_equal(mr_read_index(mrc_node(c, 1), GROUP, 4, 0), MR_OK);
    mrc_settle(c);
    assert_int_equal(mr_report_unreachable(mrc_node(c, 1), 4), MR_OK);
    assert_int_equal(mr_propose_conf_change(mrc_node(c, 1), GROUP, 7, MR_CHANGE_ADD_VOTER, 4,
                                            "promote4", 8, false, NULL, 0, 200), MR_OK);
    mrc_run(c, 220);
    assert_true(mrc_completion(c, 1, 7, &done));
    assert_int_equal(done.result, MR_OK);
    assert_int_equal(mrc_check(c, NULL, 0), 0);
    mrc_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_the_leader_promotes_a_learner_once_it_caught_up),
        cmocka_unit_test(test_a_promotion_forwarded_by_a_follower_waits_too),
        cmocka_unit_test(test_a_promotion_that_cannot_wait_times_out),
        cmocka_unit_test(test_a_caught_up_learner_is_promoted_after_an_unreachable_report),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
