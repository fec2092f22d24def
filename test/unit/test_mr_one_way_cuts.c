/*
 * test_mr_one_way_cuts.c — a quiesced leader that can commit nothing, with one-way
 * cuts (found by a review).  Its followers held its lease on its node's liveness
 * and it slept through CheckQuorum: a leader heard by one follower kept its group
 * 26 to 30 election timeouts, woken by each PreVote of the other and asleep again
 * two ticks later; a leader that hears no one kept it for good.  A leader asked
 * for votes, or hearing no quorum alive, now stays awake two election timeouts
 * (mr_quiesce.c, mr_leader_stay_awake): CheckQuorum deposes it, and the connected
 * majority elects within 8 election timeouts.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "mr_cluster.h"

#define E 10

/* Ticks from the cuts (from -> to blocked) until node 2 or 3 leads group 1, which
 * node 1 led, asleep, before them (at most 30 election timeouts). */
static uint64_t failover_after_cuts(uint64_t seed, const mr_node_id cut[][2], int n_cut)
{
    struct mrc_cluster *c = mrc_new_one_group(seed);
    struct mr_completion done;
    mr_node_id l = 0;
    uint64_t t;
    assert_non_null(c);
    mrc_run(c, 2 * E);
    assert_int_equal(mrc_active_groups(c), 0);
    for (int i = 0; i < n_cut; i++)
        mrc_block(c, cut[i][0], cut[i][1], true);
    t = mrc_now(c);
    while (mrc_now(c) - t < 30 * E && (l = mrc_leader(c, 1, NULL)) != 2 && l != 3)
        mrc_tick(c);
    t = mrc_now(c) - t;
    if (l == 2 || l == 3) {
        /* ... and it commits. */
        assert_int_equal(mr_propose(mrc_node(c, l), 1, 50, "after", 5, "v", 1, 0), MR_OK);
        mrc_run(c, E);
        assert_true(mrc_completion(c, l, 50, &done));
        assert_int_equal(done.result, MR_OK);
    }
    assert_int_equal(mrc_check(c, NULL, 0), 0);
    mrc_free(c);
    return t;
}

/* Node 1 hears node 3 only, node 3 does not hear node 1: no answer of node 2
 * reaches it, nothing of it reaches node 3. */
static void test_a_leader_without_answers_loses_its_group(void **state)
{
    const mr_node_id cut[][2] = {{2, 1}, {1, 3}};
    (void)state;
    for (uint64_t seed = 1; seed <= 5; seed++)
        assert_true(failover_after_cuts(seed, cut, 2) <= 8 * E);
}

/* Node 1 hears no one; nodes 2 and 3 hear it and each other. */
static void test_a_deaf_leader_loses_its_group(void **state)
{
    const mr_node_id cut[][2] = {{2, 1}, {3, 1}};
    (void)state;
    for (uint64_t seed = 1; seed <= 5; seed++)
        assert_true(failover_after_cuts(seed, cut, 2) <= 8 * E);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_leader_without_answers_loses_its_group),
        cmocka_unit_test(test_a_deaf_leader_loses_its_group),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
