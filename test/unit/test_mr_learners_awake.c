/*
 * test_mr_learners_awake.c — a learner awake while its leader sleeps.  A learner
 * never campaigns, so no PreVote of its own wakes a quiesced leader: a learner
 * woken at a restart with entries to apply, one whose question to its stored
 * leader was lost, or one woken when its leader's node was declared down and
 * heard again asleep, stayed awake for good with a stale commit index — its
 * node's reads timed out and its events missed committed commands (found by a
 * review).  It asks for its leader an election timeout after it last heard one
 * (mr_restart.c, mr_learner_tick).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "mr_cluster.h"

/* Group 1 on nodes 1..3 led by node 1, node 4 its learner, all asleep. */
static struct mrc_cluster *with_a_learner(uint64_t seed)
{
    struct mrc_cluster *c = mrc_new_nodes(4, seed);
    mr_node_id members[3] = {1, 2, 3};
    assert_int_equal(mr_create_group(mrc_node(c, 1), 1, members, 3, 1), MR_OK);
    mrc_run(c, 60);
    assert_int_equal(mrc_leader(c, 1, NULL), 1);
    assert_int_equal(mrc_change(c, 1, 1, 1, MR_CHANGE_ADD_LEARNER, 4, "learn4", 60), MR_OK);
    mrc_run(c, 60);
    assert_int_equal(mrc_active_groups(c), 0);
    return c;
}

/* A read on node 4 completes, and the learner sleeps again. */
static void assert_learner_serves_and_sleeps(struct mrc_cluster *c, uint64_t token)
{
    struct mr_group_status st;
    struct mr_completion done;
    assert_int_equal(mr_group_status(mrc_node(c, 4), 1, &st), MR_OK);
    assert_true(st.quiesced);
    assert_int_equal(mr_read_index(mrc_node(c, 4), 1, token, 100), MR_OK);
    mrc_run(c, 150);
    assert_true(mrc_completion(c, 4, token, &done));
    assert_int_equal(done.result, MR_OK);
    assert_int_equal(mrc_check(c, NULL, 0), 0);
}

/* Restored with an entry it holds but had not applied (the batch that applied it
 * was not flushed): it wakes at once, and asks its stored leader. */
static void test_a_restored_learner_with_unapplied_entries_catches_up(void **state)
{
    struct mrc_cluster *c = with_a_learner(7);
    (void)state;
    mrc_crash_after_unflushed(c, 4);
    assert_int_equal(mr_propose(mrc_node(c, 1), 1, 50, "cmd", 3, "v", 1, 0), MR_OK);
    mrc_run(c, 60);
    assert_false(mrc_is_up(c, 4));
    assert_int_equal(mrc_restart(c, 4), MR_OK);
    mrc_run(c, 200);
    assert_int_equal(mrc_command_events(c, 4, 1, "cmd", 3), 1);
    assert_learner_serves_and_sleeps(c, 77);
    mrc_free(c);
}

/* Its one question to the stored leader after a restart is lost. */
static void test_a_restored_learner_whose_question_is_lost_asks_again(void **state)
{
    struct mrc_cluster *c = with_a_learner(8);
    (void)state;
    mrc_crash(c, 4);
    mrc_run(c, 5);
    mrc_block(c, 4, 1, true);
    assert_int_equal(mrc_restart(c, 4), MR_OK);
    mrc_run(c, 5);
    mrc_block(c, 4, 1, false);
    mrc_run(c, 300);
    assert_int_equal(mrc_active_groups(c), 0);
    assert_learner_serves_and_sleeps(c, 78);
    mrc_free(c);
}

/* Cut off from its leader's node past dead_ticks: woken, it finds the leader
 * asleep once the cut heals. */
static void test_a_learner_woken_by_its_leaders_death_sleeps_again(void **state)
{
    struct mrc_cluster *c = with_a_learner(9);
    (void)state;
    mrc_partition(c, 4, 1, true);
    mrc_run(c, 40);
    mrc_partition(c, 4, 1, false);
    mrc_run(c, 300);
    assert_int_equal(mrc_active_groups(c), 0);
    assert_learner_serves_and_sleeps(c, 79);
    mrc_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_restored_learner_with_unapplied_entries_catches_up),
        cmocka_unit_test(test_a_restored_learner_whose_question_is_lost_asks_again),
        cmocka_unit_test(test_a_learner_woken_by_its_leaders_death_sleeps_again),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
