/*
 * test_mr_waiters.c — a group with thousands of pending requests on one node
 * (src/multiraft/mr_waiters.c): requests leave the list from its head, middle and
 * tail as their deadlines pass, the rest complete exactly once when they apply,
 * requests sharing a command id complete together with one index, and nothing is
 * left behind (the group quiesces; AddressSanitizer sees every index entry freed).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "mr_cluster.h"

#define N_REQ 3000
#define N_LATE 100 /* made after the timeouts, the last request's among them */
#define TOKEN(i) (100000u + (uint64_t)(i))

/* Request i: its command id, shared by the pairs i, i + 1 with i % 10 == 8 (a
 * repeat of a command id while the first is still pending). */
static void cmd_of(int i, char *buf, size_t len)
{
    snprintf(buf, len, "client-%06d", i % 10 == 9 ? i - 1 : i);
}

/* Every seventh request has a 20-tick deadline that passes while the leader is
 * cut off: those leave the list wherever they stand in it. */
static bool times_out(int i)
{
    return i % 7 == 3;
}

static void test_thousands_of_waiters_complete_once(void **state)
{
    struct mrc_cluster *c = mrc_new_one_group(11);
    mr_node_id l;
    char cmd[32];
    struct mr_completion done;
    raft_index index_of[N_REQ];
    (void)state;

    mrc_run(c, 50);
    l = mrc_leader(c, 1, NULL);
    assert_true(l != 0);
    for (mr_node_id o = 1; o <= 3; o++)
        if (o != l)
            mrc_partition(c, l, o, true);
    for (int i = 0; i < N_REQ; i++) {
        cmd_of(i, cmd, sizeof cmd);
        assert_int_equal(mr_propose(mrc_node(c, l), 1, TOKEN(i), cmd, strlen(cmd), "v", 1,
                                    times_out(i) ? 20 : 0),
                         MR_OK);
        if (i % 500 == 0)
            mrc_tick(c);
    }
    mrc_run(c, 25);
    for (int i = 0; i < N_REQ; i++) {
        bool completed = mrc_completion(c, l, TOKEN(i), &done);
        assert_int_equal(completed, times_out(i));
        if (completed)
            assert_int_equal(done.result, MR_ETIMEOUT);
    }

    /* The list's tail left with the timeouts (2999 % 7 == 3): more are appended. */
    for (int i = N_REQ; i < N_REQ + N_LATE; i++) {
        snprintf(cmd, sizeof cmd, "late-%d", i);
        assert_int_equal(mr_propose(mrc_node(c, l), 1, TOKEN(i), cmd, strlen(cmd), "v", 1, 0),
                         MR_OK);
    }

    mrc_heal_all(c);
    mrc_run(c, 400);
    for (int i = N_REQ; i < N_REQ + N_LATE; i++) {
        assert_true(mrc_completion(c, l, TOKEN(i), &done));
        assert_int_equal(done.result, MR_OK);
        assert_int_equal(mrc_completion_count(c, l, TOKEN(i)), 1);
    }
    for (int i = 0; i < N_REQ; i++) {
        assert_int_equal(mrc_completion_count(c, l, TOKEN(i)), 1);
        assert_true(mrc_completion(c, l, TOKEN(i), &done));
        index_of[i] = done.index;
        if (times_out(i))
            continue;
        assert_int_equal(done.result, MR_OK);
        assert_true(done.index > 0);
        if (i % 10 == 9 && !times_out(i - 1))
            assert_int_equal(done.index, index_of[i - 1]);
    }
    /* Each id committed once, everywhere; distinct ids got distinct indexes. */
    for (int i = 0; i < N_REQ; i += 97) {
        cmd_of(i, cmd, sizeof cmd);
        for (mr_node_id n = 1; n <= 3; n++)
            assert_true(mrc_command_events(c, n, 1, cmd, strlen(cmd)) <= 1);
        if (!times_out(i)) {
            /* A member that caught up by a snapshot has the command's dedup
             * record instead of its event. */
            for (mr_node_id n = 1; n <= 3; n++)
                assert_true(mrc_command_events(c, n, 1, cmd, strlen(cmd)) == 1 ||
                            (mrc_snapshot_installed(c, n, 1) &&
                             mrc_has_dedup(c, n, 1, cmd, strlen(cmd))));
            for (int j = i + 1; j < N_REQ; j++)
                if (!times_out(j) && j % 10 != 9)
                    assert_true(index_of[j] != index_of[i] || j == i);
        }
    }
    /* No waiter is left: the group falls asleep. */
    mrc_run(c, 200);
    {
        struct mr_group_status st;
        assert_int_equal(mr_group_status(mrc_node(c, l), 1, &st), MR_OK);
        assert_true(st.quiesced);
    }
    assert_int_equal(mrc_check(c, NULL, 0), 0);
    mrc_free(c);
}

/* A membership change and a command may share an id: the change's waiter and a
 * later command's waiter both wait under it and complete with the change's index. */
static void test_a_change_and_a_command_share_an_id(void **state)
{
    struct mrc_cluster *c = mrc_new_nodes(4, 12);
    struct mr_completion ch, cmd;
    mr_node_id members[3] = {1, 2, 3};
    (void)state;
    assert_int_equal(mr_create_group(mrc_node(c, 1), 1, members, 3, 1), MR_OK);
    mrc_run(c, 60);
    assert_int_equal(mr_propose_conf_change(mrc_node(c, 1), 1, 10, MR_CHANGE_ADD_LEARNER, 4,
                                            "shared", 6, false, NULL, 0, 0),
                     MR_OK);
    assert_int_equal(mr_propose(mrc_node(c, 1), 1, 11, "shared", 6, "v", 1, 0), MR_OK);
    mrc_run(c, 60);
    assert_true(mrc_completion(c, 1, 10, &ch));
    assert_true(mrc_completion(c, 1, 11, &cmd));
    assert_int_equal(ch.result, MR_OK);
    assert_int_equal(cmd.result, MR_OK);
    assert_int_equal(cmd.index, ch.index);
    assert_int_equal(mrc_command_events(c, 1, 1, "shared", 6), 0);
    assert_int_equal(mrc_check(c, NULL, 0), 0);
    mrc_free(c);
}

#define REMOVAL_ID "multiraft:remove_group" /* the id of every removal (mr_request.c) */

/* A caller's command under the removal's internal id does not complete with the
 * removal's index: it either applies (an event) or fails with the group. */
static void test_a_command_under_the_removal_id_is_not_the_removal(void **state)
{
    struct mrc_cluster *c = mrc_new_nodes(3, 34);
    mr_node_id members[3] = {1, 2, 3};
    struct mr_completion rm, cmd;
    (void)state;
    assert_int_equal(mr_create_group(mrc_node(c, 1), 5, members, 3, 1), MR_OK);
    mrc_run(c, 40);
    assert_int_equal(mr_remove_group(mrc_node(c, 2), 5, 8, 1000), MR_OK);
    assert_int_equal(mr_propose(mrc_node(c, 2), 5, 9, REMOVAL_ID, strlen(REMOVAL_ID), "x", 1,
                                1000),
                     MR_OK);
    mrc_run(c, 40);
    assert_true(mrc_completion(c, 2, 8, &rm));
    assert_int_equal(rm.result, MR_OK);
    assert_true(mrc_completion(c, 2, 9, &cmd));
    if (cmd.result == MR_OK) {
        assert_int_not_equal(cmd.index, rm.index);
        assert_int_equal(mrc_command_events(c, 2, 5, REMOVAL_ID, strlen(REMOVAL_ID)), 1);
    }
    mrc_free(c);
}

/* And a removal whose forwarded proposal was lost is not completed by such a
 * command: it is proposed again, and the group goes. */
static void test_a_removal_is_not_completed_by_a_command_under_its_id(void **state)
{
    struct mrc_cluster *c = mrc_new_nodes(3, 33);
    mr_node_id members[3] = {1, 2, 3};
    struct mr_completion rm, cmd;
    mr_node_id leader, other = 0;
    (void)state;
    assert_int_equal(mr_create_group(mrc_node(c, 1), 5, members, 3, 1), MR_OK);
    mrc_run(c, 40);
    leader = mrc_leader(c, 5, NULL);
    assert_true(leader != 0);
    for (mr_node_id n = 1; n <= 3 && other == 0; n++)
        if (n != leader)
            other = n;
    mrc_block(c, other, leader, true); /* the forwarded removal is lost */
    assert_int_equal(mr_remove_group(mrc_node(c, other), 5, 8, 1000), MR_OK);
    mrc_run(c, 2);
    assert_int_equal(mr_propose(mrc_node(c, leader), 5, 9, REMOVAL_ID, strlen(REMOVAL_ID), "x",
                                1, 1000),
                     MR_OK);
    mrc_run(c, 10);
    assert_true(mrc_completion(c, leader, 9, &cmd));
    assert_int_equal(cmd.result, MR_OK);
    assert_false(mrc_completion(c, other, 8, &rm));
    mrc_heal_all(c);
    mrc_run(c, 100);
    assert_true(mrc_completion(c, other, 8, &rm));
    assert_int_equal(rm.result, MR_OK);
    for (mr_node_id n = 1; n <= 3; n++)
        assert_false(mr_group_exists(mrc_node(c, n), 5));
    mrc_free(c);
}

/* Ticks from now until request `token` on node 1 completes (at most `bound`). */
static uint32_t until_completed(struct mrc_cluster *c, uint64_t token, uint32_t bound)
{
    uint32_t t = 0;
    while (!mrc_completion(c, 1, token, NULL) && t < bound) {
        mrc_tick(c);
        t++;
    }
    return t;
}

/* The host's tick changes length (a reload of multiraft.tick_interval): the
 * deadlines keep their time, counted again in the new ticks.  Counted in the old
 * ones, a tick 100 times shorter timed a call out 100 times too early, although
 * its command could still commit (found by a review). */
static void test_deadlines_keep_their_time_when_the_tick_changes(void **state)
{
    struct mrc_cluster *c = mrc_new_one_group(5);
    struct mr_completion done;
    (void)state;
    assert_non_null(c);
    mrc_partition(c, 1, 2, true);
    mrc_partition(c, 1, 3, true); /* nothing commits on node 1 */
    assert_int_equal(mr_propose(mrc_node(c, 1), 1, 7001, "shorter", 7, "v", 1, 10), MR_OK);
    assert_int_equal(mr_propose(mrc_node(c, 1), 1, 7002, "longer", 6, "v", 1, 100), MR_OK);
    mrc_run(c, 2); /* 8 and 98 ticks left */
    mr_rescale_deadlines(mrc_node(c, 1), 10, 1); /* ticks ten times shorter */
    mr_rescale_deadlines(mrc_node(c, 1), 1, 1);  /* (no change) */
    assert_int_equal(until_completed(c, 7001, 200), 80);
    assert_true(mrc_completion(c, 1, 7001, &done));
    assert_int_equal(done.result, MR_ETIMEOUT);
    mr_rescale_deadlines(mrc_node(c, 1), 1, 10); /* ten times longer: 898 -> 90 */
    assert_int_equal(until_completed(c, 7002, 2000), 90);
    assert_true(mrc_completion(c, 1, 7002, &done));
    assert_int_equal(done.result, MR_ETIMEOUT);
    mrc_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_thousands_of_waiters_complete_once),
        cmocka_unit_test(test_a_change_and_a_command_share_an_id),
        cmocka_unit_test(test_a_command_under_the_removal_id_is_not_the_removal),
        cmocka_unit_test(test_a_removal_is_not_completed_by_a_command_under_its_id),
        cmocka_unit_test(test_deadlines_keep_their_time_when_the_tick_changes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
