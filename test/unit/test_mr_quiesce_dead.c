/*
 * test_mr_quiesce_dead.c — groups quiesce while a member's node is down.  A
 * leader waited for every member to hold its whole log before it quiesced, so one
 * node down kept every group it belonged to ticking and heartbeating on the
 * others for as long as it stayed down (CockroachDB #9446): their cost grew with
 * their number of groups, not with their work.  Now a member left behind on a
 * node declared dead does not count, as long as a quorum of voters is alive; the
 * leader keeps the log that member needs, sends it no commit index (its log may
 * hold other entries below it), and wakes when its node is heard again, to catch
 * it up.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "mr_cluster.h"
#include "mr_internal.h"

#define E 10
#define HB 2
#define GROUPS 30

static struct mrc_cluster *cluster(uint64_t seed)
{
    struct mrc_cluster *c = mrc_new_idle_groups(seed, E, HB, GROUPS);
    assert_non_null(c);
    return c;
}

static void cmd_id(mr_group_id g, char *buf, size_t size)
{
    snprintf(buf, size, "while-down-%llu", (unsigned long long)g);
}

static void test_groups_quiesce_with_a_member_down(void **state)
{
    struct mrc_cluster *c = cluster(91);
    char id[32];
    (void)state;
    mrc_crash(c, 1);
    mrc_run(c, 4 * E); /* node 1 declared dead; its groups elect on 2 and 3 */
    for (mr_group_id g = 1; g <= GROUPS; g++) {
        mr_node_id leader = mrc_leader(c, g, NULL);
        assert_true(leader == 2 || leader == 3);
        cmd_id(g, id, sizeof id);
        assert_int_equal(mr_propose(mrc_node(c, leader), g, 100 + g, id, strlen(id), "x", 1, 100),
                         MR_OK);
    }
    mrc_run(c, 4 * E);
    for (mr_group_id g = 1; g <= GROUPS; g++) {
        struct mr_completion done;
        cmd_id(g, id, sizeof id);
        assert_true(mrc_completion(c, mrc_leader(c, g, NULL), 100 + g, &done));
        assert_int_equal(done.result, MR_OK);
    }
    /* Every group quiet on the live nodes, node 1's members left behind. */
    assert_int_equal(mr_active_group_count(mrc_node(c, 2)), 0);
    assert_int_equal(mr_active_group_count(mrc_node(c, 3)), 0);
    {
        /* and quiet stays quiet: nothing but node liveness goes out */
        struct mr_counters before, after;
        mr_get_counters(mrc_node(c, 2), &before);
        mrc_run(c, 10 * E);
        mr_get_counters(mrc_node(c, 2), &after);
        assert_int_equal(after.messages_sent, before.messages_sent);
        assert_int_equal(after.heartbeats_sent, before.heartbeats_sent);
        assert_int_equal(mr_active_group_count(mrc_node(c, 2)), 0);
    }

    /* Node 1 comes back: the leaders wake and catch it up from their logs (the
     * commands' events, not snapshots), then everything quiesces again. */
    assert_int_equal(mrc_restart(c, 1), MR_OK);
    mrc_run(c, 8 * E);
    for (mr_group_id g = 1; g <= GROUPS; g++) {
        cmd_id(g, id, sizeof id);
        for (mr_node_id n = 1; n <= 3; n++)
            assert_int_equal(mrc_command_events(c, n, g, id, strlen(id)), 1);
    }
    for (mr_node_id n = 1; n <= 3; n++)
        assert_int_equal(mr_active_group_count(mrc_node(c, n)), 0);
    assert_int_equal(mrc_check(c, NULL, 0), 0);
    mrc_free(c);
}

/* Without a quorum alive a leader does not quiesce on a member's absence: two of
 * three nodes down, the third's leaders step down (CheckQuorum) instead of
 * sleeping as leaders; then, without a leader or a quorum, they sleep as
 * followers (test_mr_no_quorum.c), and wake when the others come back. */
static void test_no_quorum_no_quiescence(void **state)
{
    struct mrc_cluster *c = cluster(92);
    (void)state;
    mrc_crash(c, 1);
    mrc_crash(c, 2);
    mrc_run(c, 8 * E);
    for (mr_group_id g = 1; g <= GROUPS; g++)
        assert_int_equal(mrc_leader(c, g, NULL), 0);
    assert_int_equal(mr_active_group_count(mrc_node(c, 3)), 0);
    assert_int_equal(mrc_restart(c, 1), MR_OK);
    assert_int_equal(mrc_restart(c, 2), MR_OK);
    mrc_run(c, 12 * E);
    for (mr_node_id n = 1; n <= 3; n++)
        assert_int_equal(mr_active_group_count(mrc_node(c, n)), 0);
    assert_int_equal(mrc_check(c, NULL, 0), 0);
    mrc_free(c);
}

/* A group used now and then while a member's node is down wakes and quiesces
 * each time, and is noted on that node's lagging list each time: the list grew by
 * one entry per cycle for as long as the node stayed down (found by a review).
 * Repeats are removed as it grows: it stays within twice the groups it names. */
static void test_the_lagging_list_stays_bounded(void **state)
{
    struct mrc_cluster *c = mrc_new_one_group(7);
    struct mr_group_status st;
    struct mr_peer *p;
    bool named = false;
    char cmd[32];
    (void)state;
    mrc_crash(c, 3);
    mrc_run(c, 40); /* node 3 declared dead on node 1 */
    for (int i = 0; i < 200; i++) {
        snprintf(cmd, sizeof cmd, "c%d", i);
        assert_int_equal(mr_propose(mrc_node(c, 1), 1, 1000 + (uint64_t)i, cmd, strlen(cmd),
                                    "v", 1, 0), MR_OK);
        mrc_run(c, 20);
    }
    assert_int_equal(mr_group_status(mrc_node(c, 1), 1, &st), MR_OK);
    assert_true(st.quiesced);
    p = mr_peer_find(mrc_node(c, 1), 3);
    assert_non_null(p);
    assert_true(p->lagging.len > 0 && p->lagging.len < 64);
    for (size_t i = 0; i < p->lagging.len; i++)
        named = named || ((const mr_group_id *)p->lagging.data)[i] == 1;
    assert_true(named);
    /* Back, node 3 is caught up by the group on the list. */
    assert_int_equal(mrc_restart(c, 3), MR_OK);
    mrc_run(c, 200);
    assert_int_equal(mrc_command_events(c, 3, 1, "c199", 4), 1);
    assert_int_equal(mrc_check(c, NULL, 0), 0);
    mrc_free(c);
}

/* A node restarted while another is down never hears that node, so it never
 * declared it down: the groups it led with a member there ticked and heartbeat
 * for as long as that node stayed down (found by a review).  A node not heard
 * since the start counts as down after dead_ticks; when it is first heard, the
 * groups that quiesced with it behind catch it up. */
static void test_groups_quiesce_after_a_restart_while_a_member_is_down(void **state)
{
    struct mrc_cluster *c = cluster(91);
    (void)state;
    mrc_crash(c, 1);
    mrc_run(c, 8 * E);
    assert_true(mrc_all_led(c, GROUPS));
    mrc_crash(c, 2);
    assert_int_equal(mrc_restart(c, 2), MR_OK);
    mrc_run(c, 40 * E);
    assert_true(mrc_all_led(c, GROUPS));
    assert_int_equal(mr_active_group_count(mrc_node(c, 2)), 0);
    assert_int_equal(mr_active_group_count(mrc_node(c, 3)), 0);
    for (mr_group_id g = 1; g <= GROUPS; g++) {
        mr_node_id l = mrc_leader(c, g, NULL);
        assert_int_equal(mr_propose(mrc_node(c, l), g, 500 + g, "late", 4, "x", 1, 100), MR_OK);
    }
    mrc_run(c, 4 * E);
    assert_int_equal(mrc_restart(c, 1), MR_OK);
    mrc_run(c, 10 * E);
    for (mr_group_id g = 1; g <= GROUPS; g++)
        for (mr_node_id n = 1; n <= 3; n++)
            assert_int_equal(mrc_command_events(c, n, g, "late", 4), 1);
    for (mr_node_id n = 1; n <= 3; n++)
        assert_int_equal(mr_active_group_count(mrc_node(c, n)), 0);
    assert_int_equal(mrc_check(c, NULL, 0), 0);
    mrc_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_groups_quiesce_with_a_member_down),
        cmocka_unit_test(test_no_quorum_no_quiescence),
        cmocka_unit_test(test_the_lagging_list_stays_bounded),
        cmocka_unit_test(test_groups_quiesce_after_a_restart_while_a_member_is_down),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
