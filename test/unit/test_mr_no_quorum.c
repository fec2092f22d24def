/*
 * test_mr_no_quorum.c — replicas without a leader that hear no quorum of their
 * voters sleep.  A node cut off from every other woke each group whose leader's
 * node it declared down, and its own leaders stepped down when CheckQuorum
 * judged them: then every group it held ticked and sent a PreVote each election
 * timeout, for as long as the cut lasted, all of them useless (CockroachDB
 * #17609: tick cost must follow the groups at work).  Now such a replica sleeps
 * after two election timeouts, noted on the peers of its voters held down, and
 * wakes, in turns, when one of them is heard again — or at the first message of
 * its group, as any sleeping replica does.
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
#define GROUPS 30

static struct mrc_cluster *cluster(uint64_t seed)
{
    struct mrc_cluster *c = mrc_new_idle_groups(seed, E, HB, GROUPS);
    assert_non_null(c);
    return c;
}

static void isolate(struct mrc_cluster *c, mr_node_id node, bool cut)
{
    for (mr_node_id peer = 1; peer <= 3; peer++)
        if (peer != node)
            mrc_partition(c, node, peer, cut);
}

/* Every group led and every replica asleep within `bound` ticks; then each group
 * commits a command proposed on its leader. */
static void settles_and_commits(struct mrc_cluster *c, uint32_t bound, uint64_t token)
{
    uint64_t from = mrc_now(c);
    while (!(mrc_all_led(c, GROUPS) && mrc_active_groups(c) == 0) &&
           mrc_now(c) - from < bound)
        mrc_tick(c);
    assert_true(mrc_all_led(c, GROUPS));
    assert_int_equal(mrc_active_groups(c), 0);
    for (mr_group_id g = 1; g <= GROUPS; g++)
        assert_int_equal(mr_propose(mrc_node(c, mrc_leader(c, g, NULL)), g, token + g, "after", 5,
                                    "v", 1, 0),
                         MR_OK);
    mrc_run(c, 2 * E);
    for (mr_group_id g = 1; g <= GROUPS; g++) {
        struct mr_completion done;
        assert_true(mrc_completion(c, mrc_leader(c, g, NULL), token + g, &done));
        assert_int_equal(done.result, MR_OK);
    }
    assert_int_equal(mrc_check(c, NULL, 0), 0);
}

/* A node cut off from both others: its replicas sleep; the others lead everything
 * and sleep too; healed, the node rejoins every group. */
static void test_an_isolated_node_sleeps(void **state)
{
    (void)state;
    for (uint64_t seed = 1; seed <= 4; seed++) {
        struct mrc_cluster *c = cluster(seed);
        struct mr_counters before, after;
        isolate(c, 2, true);
        mrc_run(c, 8 * E);
        for (mr_node_id n = 1; n <= 3; n++)
            assert_int_equal(mr_active_group_count(mrc_node(c, n)), 0);
        /* Asleep, it sends no raft message in the cut. */
        mr_get_counters(mrc_node(c, 2), &before);
        mrc_run(c, 10 * E);
        mr_get_counters(mrc_node(c, 2), &after);
        assert_int_equal(after.messages_sent, before.messages_sent);
        isolate(c, 2, false);
        settles_and_commits(c, 30 * E, 100);
        mrc_free(c);
    }
}

/* Node 3 is down and nodes 1 and 2 are cut from each other: no group has a quorum
 * anywhere, and every replica sleeps.  Once 1 and 2 hear each other again, every
 * group elects, woken by nothing but that. */
static void test_groups_wake_when_a_quorum_is_heard_again(void **state)
{
    (void)state;
    for (uint64_t seed = 11; seed <= 14; seed++) {
        struct mrc_cluster *c = cluster(seed);
        mrc_crash(c, 3);
        mrc_partition(c, 1, 2, true);
        mrc_run(c, 8 * E);
        assert_int_equal(mr_active_group_count(mrc_node(c, 1)), 0);
        assert_int_equal(mr_active_group_count(mrc_node(c, 2)), 0);
        mrc_partition(c, 1, 2, false);
        settles_and_commits(c, 30 * E, 200);
        for (mr_group_id g = 1; g <= GROUPS; g++) {
            mr_node_id l = mrc_leader(c, g, NULL);
            assert_true(l == 1 || l == 2);
        }
        assert_int_equal(mrc_restart(c, 3), MR_OK);
        settles_and_commits(c, 30 * E, 300);
        mrc_free(c);
    }
}

/* A node restarted alone (its peers down) sleeps its replicas too, and they wake
 * when a peer is first heard. */
static void test_a_node_restarted_alone(void **state)
{
    (void)state;
    for (uint64_t seed = 21; seed <= 24; seed++) {
        struct mrc_cluster *c = cluster(seed);
        mrc_crash(c, 1);
        mrc_crash(c, 2);
        mrc_crash(c, 3);
        assert_int_equal(mrc_restart(c, 3), MR_OK);
        mrc_run(c, 12 * E);
        assert_int_equal(mr_active_group_count(mrc_node(c, 3)), 0);
        assert_int_equal(mrc_restart(c, 1), MR_OK);
        settles_and_commits(c, 30 * E, 400);
        assert_int_equal(mrc_restart(c, 2), MR_OK);
        settles_and_commits(c, 30 * E, 500);
        mrc_free(c);
    }
}

/* A replica asleep without a quorum whose wake fails when its peer is heard again
 * (out of memory growing the set of awake groups) lost its flag and its place on
 * the peer's list: only a message of its group woke it (found by a review).  It
 * now takes a turn, tried again at the next tick.  Node 3 restarts alone and
 * wakes its groups one per tick, so that its set of awake groups stays small;
 * when node 1 is heard, growing it fails once. */
static void test_a_failed_wake_is_tried_again(void **state)
{
    enum { G = 70 };
    struct mrc_fail_active f;
    struct raft_allocator a;
    struct mrc_options o = mrc_options_ticks(3, 31, E, HB);
    struct mrc_cluster *c;
    (void)state;
    mrc_fail_active_allocator(&f, 3, &a);
    o.base.allocator = &a;
    o.base.restart_wakes_per_tick = 1;
    c = f.c = mrc_new_groups(&o, G);
    assert_non_null(c);
    mrc_crash(c, 1);
    mrc_crash(c, 2);
    mrc_crash(c, 3);
    assert_int_equal(mrc_restart(c, 3), MR_OK);
    mrc_run(c, G + 4 * E);
    assert_int_equal(mr_active_group_count(mrc_node(c, 3)), 0);
    f.armed = true;
    assert_int_equal(mrc_restart(c, 1), MR_OK);
    mrc_run(c, 2);
    assert_int_equal(f.failures, 1);
    assert_int_equal(mr_active_group_count(mrc_node(c, 3)), G);
    mrc_run(c, 20 * E);
    assert_true(mrc_all_led(c, G));
    assert_int_equal(mrc_check(c, NULL, 0), 0);
    mrc_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_an_isolated_node_sleeps),
        cmocka_unit_test(test_groups_wake_when_a_quorum_is_heard_again),
        cmocka_unit_test(test_a_node_restarted_alone),
        cmocka_unit_test(test_a_failed_wake_is_tried_again),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
