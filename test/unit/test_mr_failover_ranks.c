/*
 * test_mr_failover_ranks.c — failover of quiesced groups when the designated
 * candidate cannot win (found by the failover review).  When a leader's node is
 * declared down, the lowest-ranked surviving voter of each group it led campaigns
 * at once and the others hold their own timers back one to two election timeouts
 * (mr_quiesce.c).  That candidate was ranked among every voter, dead or not, and a
 * candidate that could not win kept its group leaderless for the whole hold:
 *  - its node down together with the leader's: 22 to 25 ticks (E = 10);
 *  - its log behind the others', so that they refuse it: 22 to 29 ticks.
 * Now voters on nodes held down are not ranked, a voter that holds for a candidate
 * whose node is declared down ranks again, and a voter that refuses the
 * candidate's PreVote for its log passes it over; the next in rank campaigns.
 * Every group elects within two election timeouts of the crash.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "mr_cluster.h"

#define E 10
#define HB 2
#define GROUPS 12

/* Five nodes; groups 1..GROUPS created on node 1 with members 1..5 (replica ids 1..5
 * on nodes 1..5, so replica 2 on node 2 is the designated candidate when node 1
 * fails), led by node 1, every one asleep. */
static struct mrc_cluster *cluster(uint64_t seed)
{
    const mr_node_id members[5] = {1, 2, 3, 4, 5};
    struct mrc_options o = mrc_options_ticks(5, seed, E, HB);
    struct mrc_cluster *c;
    c = mrc_new(&o);
    assert_non_null(c);
    for (mr_group_id g = 1; g <= GROUPS; g++)
        assert_int_equal(mr_create_group(mrc_node(c, 1), g, members, 5, g), MR_OK);
    mrc_run(c, 6 * E);
    for (mr_group_id g = 1; g <= GROUPS; g++)
        assert_int_equal(mrc_leader(c, g, NULL), 1);
    assert_int_equal(mrc_active_groups(c), 0);
    return c;
}

/* Ticks until every group has a leader on a node other than 1 and 2 (at most 6
 * election timeouts), then checks that each commits. */
static uint64_t until_led_elsewhere(struct mrc_cluster *c)
{
    uint64_t from = mrc_now(c);
    for (;;) {
        mr_group_id led = 0;
        for (mr_group_id g = 1; g <= GROUPS; g++) {
            mr_node_id l = mrc_leader(c, g, NULL);
            led += l >= 3;
        }
        if (led == GROUPS || mrc_now(c) - from >= 6 * E)
            break;
        mrc_tick(c);
    }
    return mrc_now(c) - from;
}

static void commits_everywhere(struct mrc_cluster *c)
{
    for (mr_group_id g = 1; g <= GROUPS; g++) {
        mr_node_id l = mrc_leader(c, g, NULL);
        assert_true(l >= 3);
        assert_int_equal(mr_propose(mrc_node(c, l), g, 1000 + g, "after", 5, "v", 1, 0), MR_OK);
    }
    mrc_run(c, 2 * E);
    for (mr_group_id g = 1; g <= GROUPS; g++) {
        struct mr_completion done;
        mr_node_id l = mrc_leader(c, g, NULL);
        assert_true(mrc_completion(c, l, 1000 + g, &done));
        assert_int_equal(done.result, MR_OK);
    }
    assert_int_equal(mrc_check(c, NULL, 0), 0);
}

/* The leader's node and the designated candidate's node crash together. */
static void test_candidate_down_with_the_leader(void **state)
{
    (void)state;
    for (uint64_t seed = 1; seed <= 6; seed++) {
        struct mrc_cluster *c = cluster(seed);
        uint64_t t;
        mrc_crash(c, 1);
        mrc_crash(c, 2);
        t = until_led_elsewhere(c);
        printf("candidate down, seed %llu: %llu ticks\n", (unsigned long long)seed,
               (unsigned long long)t);
        assert_true(t <= 2 * E);
        commits_everywhere(c);
        mrc_free(c);
    }
}

/* Node 2 is down while every group commits an entry, so its replicas lag; it
 * restarts in the tick node 1 crashes, before anything catches it up. */
static void test_candidate_behind_the_others(void **state)
{
    (void)state;
    for (uint64_t seed = 1; seed <= 6; seed++) {
        struct mrc_cluster *c = cluster(100 + seed);
        uint64_t t;
        mrc_crash(c, 2);
        mrc_run(c, 2 * E); /* declared down */
        for (mr_group_id g = 1; g <= GROUPS; g++)
            assert_int_equal(mr_propose(mrc_node(c, 1), g, g, "behind", 6, "v", 1, 0), MR_OK);
        mrc_run(c, 6 * E);
        assert_int_equal(mrc_active_groups(c), 0); /* quiesced without node 2 */
        assert_int_equal(mrc_restart(c, 2), MR_OK);
        mrc_crash(c, 1);
        t = until_led_elsewhere(c);
        printf("candidate behind, seed %llu: %llu ticks\n", (unsigned long long)seed,
               (unsigned long long)t);
        assert_true(t <= 2 * E);
        commits_everywhere(c);
        mrc_free(c);
    }
}

/* Survivors that disagree about the first candidate (found by a review of the
 * change above): node 3 no longer hears node 2 (a one-way cut 2 -> 3, node 2
 * declared down there), then node 1 crashes.  Replica 2 ranks itself first; node
 * 3, which skips it, too; nodes 4 and 5 hold for replica 2.  Both campaigned, and
 * split the votes of 4 and 5 in 65 of 720 groups (worst 45 ticks, with deliveries
 * delayed up to a tick).  A voter holding for a candidate it still hears now
 * refuses the others' PreVotes while that candidate's campaign may run. */
static void test_survivors_that_disagree(void **state)
{
    (void)state;
    for (uint64_t seed = 1; seed <= 60; seed++) {
        struct mrc_cluster *c = cluster(200 + seed);
        uint64_t from;
        mrc_block(c, 2, 3, true);
        mrc_run(c, 2 * E); /* node 3 declares node 2 down; node 2 still hears 3 */
        mrc_set_faults(c, 0, 0, 1);
        mrc_crash(c, 1);
        from = mrc_now(c);
        while (mrc_now(c) - from < 8 * E) {
            mr_group_id led = 0;
            mrc_tick(c);
            for (mr_group_id g = 1; g <= GROUPS; g++)
                led += mrc_leader(c, g, NULL) >= 2;
            if (led == GROUPS)
                break;
        }
        for (mr_group_id g = 1; g <= GROUPS; g++) {
            raft_term t = 0;
            assert_true(mrc_leader(c, g, &t) >= 2);
            assert_int_equal(t, 3); /* one election round after node 1's term 2 */
        }
        assert_true(mrc_now(c) - from <= 2 * E);
        assert_int_equal(mrc_check(c, NULL, 0), 0);
        mrc_free(c);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_candidate_down_with_the_leader),
        cmocka_unit_test(test_candidate_behind_the_others),
        cmocka_unit_test(test_survivors_that_disagree),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
