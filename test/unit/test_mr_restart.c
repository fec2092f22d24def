/*
 * test_mr_restart.c — after a restart, groups wake in turns (mr_restart.c).  A
 * restarted node woke every restored group at once; each then campaigned (PreVote)
 * after its election timeout, which woke its leader and the other followers to
 * refuse it, and the leaders that had quiesced with the node behind woke all at
 * once to catch it up (CockroachDB #9273).  Now a restored replica sleeps until its
 * turn (restart_wakes_per_tick, those that led first), a message or a request, or
 * wakes at once with entries to apply; a follower asks its stored leader to quiesce
 * it again; and leaders catching a returning node up wake in turns too.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mr_cluster.h"
#include "mr_internal.h"

#define E 10
#define HB 2
#define GROUPS 60
#define WAKES 5

static struct mrc_options options(uint64_t seed, uint32_t wakes)
{
    struct mrc_options o = mrc_options_ticks(3, seed, E, HB);
    o.base.restart_wakes_per_tick = wakes;
    return o;
}

/* GROUPS groups, created on every node in turn, all asleep. */
static struct mrc_cluster *cluster(uint64_t seed, uint32_t wakes)
{
    struct mrc_options o = options(seed, wakes);
    struct mrc_cluster *c = mrc_new_groups(&o, GROUPS);
    assert_non_null(c);
    assert_int_equal(mrc_active_groups(c), 0);
    return c;
}

/* Groups 1..groups, all created and led by node 1. */
static struct mrc_cluster *led_by_node_1(uint64_t seed, uint32_t wakes, mr_group_id groups)
{
    struct mrc_options o = options(seed, wakes);
    struct mrc_cluster *c = mrc_new(&o);
    mr_node_id members[3] = {1, 2, 3};
    for (mr_group_id g = 1; g <= groups; g++)
        assert_int_equal(mr_create_group(mrc_node(c, 1), g, members, 3, g), MR_OK);
    mrc_run(c, 60);
    for (mr_group_id g = 1; g <= groups; g++)
        assert_int_equal(mrc_leader(c, g, NULL), 1);
    return c;
}

static bool asleep(struct mrc_cluster *c, mr_node_id node, mr_group_id g)
{
    struct mr_group_status st;
    assert_int_equal(mr_group_status(mrc_node(c, node), g, &st), MR_OK);
    return st.quiesced;
}

/* Ticks the cluster until every group has a leader (at most `limit` ticks);
 * returns the ticks it took. */
static uint32_t until_all_led(struct mrc_cluster *c, uint32_t limit)
{
    uint32_t t = 0;
    do {
        mrc_tick(c);
    } while (!mrc_all_led(c, GROUPS) && ++t < limit);
    assert_true(mrc_all_led(c, GROUPS));
    return t;
}

/* Restored asleep; each tick of the node alone (no message delivered) wakes
 * WAKES more, the groups it led before the restart first. */
static void test_restored_groups_wake_in_turns(void **state)
{
    struct mrc_cluster *c = cluster(301, WAKES);
    mr_node_id leader_of[GROUPS + 1];
    size_t led = 0;
    (void)state;
    for (mr_group_id g = 1; g <= GROUPS; g++) {
        leader_of[g] = mrc_leader(c, g, NULL);
        led += leader_of[g] == 3;
    }
    assert_true(led > WAKES);
    mrc_crash(c, 3);
    assert_int_equal(mrc_restart(c, 3), MR_OK);
    assert_int_equal(mr_active_group_count(mrc_node(c, 3)), 0);
    for (uint32_t t = 1; t * WAKES <= GROUPS; t++) {
        size_t led_awake = 0;
        mr_tick(mrc_node(c, 3));
        assert_int_equal(mr_active_group_count(mrc_node(c, 3)), t * WAKES);
        for (mr_group_id g = 1; g <= GROUPS; g++)
            led_awake += leader_of[g] == 3 && !asleep(c, 3, g);
        assert_int_equal(led_awake, t * WAKES < led ? t * WAKES : led);
    }
    mrc_free(c);
}

/* The pace changes on a running node (multiraft.restart_wakes_per_tick at a
 * reload): the turns still to come go at the new pace; 0 is the default. */
static void test_the_pace_changes_at_once(void **state)
{
    struct mrc_cluster *c = cluster(309, WAKES);
    (void)state;
    mrc_crash(c, 3);
    assert_int_equal(mrc_restart(c, 3), MR_OK);
    mr_tick(mrc_node(c, 3));
    assert_int_equal(mr_active_group_count(mrc_node(c, 3)), WAKES);
    mr_set_restart_wakes_per_tick(mrc_node(c, 3), 20);
    mr_tick(mrc_node(c, 3));
    assert_int_equal(mr_active_group_count(mrc_node(c, 3)), WAKES + 20);
    mr_set_restart_wakes_per_tick(mrc_node(c, 3), 0);
    mr_tick(mrc_node(c, 3));
    assert_int_equal(mr_active_group_count(mrc_node(c, 3)), GROUPS);
    mrc_run(c, 10 * E);
    assert_int_equal(mrc_active_groups(c), 0);
    assert_int_equal(mrc_check(c, NULL, 0), 0);
    mrc_free(c);
}

struct vote_count {
    size_t prevotes_from_3;
};

static bool count_votes(void *arg, mr_node_id from, mr_node_id to, const struct raft_message *m)
{
    struct vote_count *vc = arg;
    (void)to;
    if (from == 3 && (m->type == RAFT_MSG_PREVOTE || m->type == RAFT_MSG_VOTE))
        vc->prevotes_from_3++;
    return false; /* delivered */
}

/* A quick restart (node 3 never declared down): the groups it followed ask their
 * leaders and sleep again without an election timeout — no PreVote, no leader
 * change; the groups it led elect (they have no leader) and everything sleeps. */
static void test_followers_sleep_again_without_prevote(void **state)
{
    struct mrc_cluster *c = cluster(302, WAKES);
    struct vote_count vc = {0};
    mr_node_id leader_of[GROUPS + 1];
    raft_term term_of[GROUPS + 1];
    size_t led = 0;
    uint32_t t = 0;
    (void)state;
    for (mr_group_id g = 1; g <= GROUPS; g++) {
        leader_of[g] = mrc_leader(c, g, &term_of[g]);
        led += leader_of[g] == 3;
    }
    mrc_set_message_filter(c, count_votes, &vc);
    mrc_crash(c, 3);
    assert_int_equal(mrc_restart(c, 3), MR_OK);
    do {
        mrc_tick(c);
    } while ((++t < 4 || mrc_active_groups(c) > 0) && t < 40 * E);
    assert_int_equal(mrc_active_groups(c), 0);
    /* The groups node 3 led campaign (through PreVote, then a vote): two messages
     * each at least; the others none. */
    assert_true(vc.prevotes_from_3 <= 4 * led);
    for (mr_group_id g = 1; g <= GROUPS; g++) {
        raft_term term;
        mr_node_id l = mrc_leader(c, g, &term);
        assert_int_not_equal(l, 0);
        if (leader_of[g] != 3) {
            assert_int_equal(l, leader_of[g]);
            assert_int_equal(term, term_of[g]);
        }
    }
    assert_int_equal(mrc_check(c, NULL, 0), 0);
    mrc_free(c);
}

/* A node that led nothing restarts: every group it follows sleeps again within a
 * few heartbeat intervals of its turn, with no vote request at all. */
static void test_no_vote_when_nothing_was_led(void **state)
{
    struct mrc_options o = options(303, WAKES);
    struct mrc_cluster *c = mrc_new(&o);
    mr_node_id members[3] = {1, 2, 3};
    struct vote_count vc = {0};
    struct mr_counters before, after;
    (void)state;
    for (mr_group_id g = 1; g <= GROUPS; g++)
        assert_int_equal(mr_create_group(mrc_node(c, (mr_node_id)(1 + g % 2)), g, members, 3, g),
                         MR_OK);
    mrc_run(c, 40);
    for (mr_group_id g = 1; g <= GROUPS; g++)
        assert_int_not_equal(mrc_leader(c, g, NULL), 3);
    assert_int_equal(mrc_active_groups(c), 0);
    mrc_set_message_filter(c, count_votes, &vc);
    mr_get_counters(mrc_node(c, 1), &before);
    mrc_crash(c, 3);
    assert_int_equal(mrc_restart(c, 3), MR_OK);
    /* All woken after GROUPS / WAKES ticks; each asleep again a few ticks later:
     * well before any election timeout could have fired after the last turn. */
    mrc_run(c, GROUPS / WAKES + 3 * HB + 2);
    assert_int_equal(mrc_active_groups(c), 0);
    assert_int_equal(vc.prevotes_from_3, 0);
    mr_get_counters(mrc_node(c, 1), &after);
    /* Node 1's leaders answered from their sleep: no raft message. */
    assert_int_equal(after.messages_sent, before.messages_sent);
    mrc_run(c, 10 * E);
    assert_int_equal(vc.prevotes_from_3, 0);
    assert_int_equal(mrc_check(c, NULL, 0), 0);
    mrc_free(c);
}

/* The meta row trails the applied index (MR_META_LAG): a group whose restored log
 * holds entries past its stored applied index wakes at once to apply them again
 * (they need the commit index) — before any turn. */
static void test_unapplied_entries_wake_at_once(void **state)
{
    struct mrc_cluster *c = cluster(304, 1);
    mr_node_id l = mrc_leader(c, 7, NULL);
    (void)state;
    assert_int_not_equal(l, 0);
    for (int i = 0; i < 3; i++) {
        char id[32];
        snprintf(id, sizeof id, "unapplied-%d", i);
        assert_int_equal(mr_propose(mrc_node(c, l), 7, 500 + (uint64_t)i, id, strlen(id), "x", 1,
                                    100),
                         MR_OK);
    }
    mrc_run(c, 4 * E);
    assert_int_equal(mrc_active_groups(c), 0);
    {
        struct mr_group_status st;
        assert_int_equal(mr_group_status(mrc_node(c, 3), 7, &st), MR_OK);
        assert_true(mrc_stored_applied(c, 3, 7) < st.applied);
    }
    mrc_crash(c, 3);
    assert_int_equal(mrc_restart(c, 3), MR_OK);
    assert_int_equal(mr_active_group_count(mrc_node(c, 3)), 1);
    assert_false(asleep(c, 3, 7));
    mrc_run(c, 20 * E + GROUPS);
    assert_int_equal(mrc_command_events(c, 3, 7, "unapplied-2", strlen("unapplied-2")), 1);
    assert_int_equal(mrc_active_groups(c), 0);
    assert_int_equal(mrc_check(c, NULL, 0), 0);
    mrc_free(c);
}

/* Node 3 restarts while node 1 is down: the groups whose stored leader was on node
 * 1 wake in their turn, time out and elect a leader with node 2. */
static void test_stored_leader_down_still_elects(void **state)
{
    struct mrc_cluster *c = cluster(305, 2);
    (void)state;
    mrc_crash(c, 3);
    mrc_crash(c, 1);
    assert_int_equal(mrc_restart(c, 3), MR_OK);
    (void)until_all_led(c, GROUPS / 2 + 20 * E);
    assert_int_equal(mrc_check(c, NULL, 0), 0);
    mrc_free(c);
}

/* Nodes 2 and 3 restart together and hear node 1; node 1 then crashes before the
 * groups it led had their turn on either: no replica of those is awake to
 * campaign.  When node 1 is declared down they wake at once, and every group has a
 * leader within a few election timeouts, not after the turns of all the others
 * (one per tick here). */
static void test_stored_leader_dies_after_the_restart(void **state)
{
    struct mrc_cluster *c = cluster(307, 1);
    uint32_t t;
    (void)state;
    mrc_crash(c, 2);
    mrc_crash(c, 3);
    assert_int_equal(mrc_restart(c, 2), MR_OK);
    assert_int_equal(mrc_restart(c, 3), MR_OK);
    mrc_run(c, 3);
    mrc_crash(c, 1);
    t = until_all_led(c, GROUPS + 20 * E);
    /* Declared down after E, then an election timeout or two; the turns of all
     * groups, one per tick, would have taken GROUPS ticks. */
    assert_true(t <= 4 * E && 4 * E < GROUPS);
    assert_int_equal(mrc_check(c, NULL, 0), 0);
    mrc_free(c);
}

/* Every group led by node 1; node 3 down; node 1 removes itself from each
 * (committed with node 2), so {2, 3} needs node 3's vote while node 3's replicas
 * keep node 1's removed replica as their stored leader, and node 1 lives on.
 * Asleep until its turn, such a replica refused node 2's PreVotes without waking,
 * so the four election timeouts of its stored lease only began at its turn (up to
 * GROUPS ticks here).  A refused PreVote now wakes it: the lease runs from then. */
static void test_a_refused_prevote_wakes_a_restored_replica(void **state)
{
    struct mrc_cluster *c = led_by_node_1(911, 1, GROUPS);
    uint32_t t;
    (void)state;
    mrc_crash(c, 3);
    mrc_run(c, 2 * E);
    for (mr_group_id g = 1; g <= GROUPS; g++) {
        char id[32];
        snprintf(id, sizeof id, "rm1-%llu", (unsigned long long)g);
        assert_int_equal(mr_propose_conf_change(mrc_node(c, 1), g, 5000 + g,
                                                MR_CHANGE_REMOVE_VOTER, 1, id, strlen(id), false,
                                                NULL, 0, 200),
                         MR_OK);
    }
    mrc_run(c, 4 * E);
    assert_int_equal(mrc_restart(c, 3), MR_OK);
    t = until_all_led(c, 40 * E);
    /* The lease's four election timeouts from the first refusal, then an
     * election (105 ticks when they counted from the turns, one per tick). */
    assert_true(t <= 7 * E && 7 * E < GROUPS + 4 * E);
    assert_int_equal(mrc_check(c, NULL, 0), 0);
    mrc_free(c);
}

/* Node 3 is down long enough to be declared dead; the groups it led elect on 1 and
 * 2, take commands and quiesce with it behind.  When it comes back, the leaders
 * catch it up in turns, not all at once, and every command reaches it. */
static void test_catch_up_in_turns(void **state)
{
    struct mrc_cluster *c = cluster(306, 1);
    size_t max_awake_1 = 0, lagging_on_1 = 0;
    char id[32];
    (void)state;
    mrc_crash(c, 3);
    mrc_run(c, 4 * E);
    for (mr_group_id g = 1; g <= GROUPS; g++) {
        mr_node_id l = mrc_leader(c, g, NULL);
        assert_true(l == 1 || l == 2);
        lagging_on_1 += l == 1;
        snprintf(id, sizeof id, "behind-%llu", (unsigned long long)g);
        assert_int_equal(mr_propose(mrc_node(c, l), g, 700 + g, id, strlen(id), "x", 1, 100),
                         MR_OK);
    }
    mrc_run(c, 4 * E);
    assert_int_equal(mrc_active_groups(c), 0);
    assert_int_equal(mrc_restart(c, 3), MR_OK);
    for (uint32_t t = 0; t < 30 * E + 2 * GROUPS; t++) {
        size_t a;
        mrc_tick(c);
        if ((a = mr_active_group_count(mrc_node(c, 1))) > max_awake_1)
            max_awake_1 = a;
    }
    assert_true(lagging_on_1 > 8);
    assert_true(max_awake_1 < lagging_on_1 / 2);
    for (mr_group_id g = 1; g <= GROUPS; g++) {
        snprintf(id, sizeof id, "behind-%llu", (unsigned long long)g);
        assert_int_equal(mrc_command_events(c, 3, g, id, strlen(id)), 1);
    }
    assert_int_equal(mrc_active_groups(c), 0);
    assert_int_equal(mrc_check(c, NULL, 0), 0);
    mrc_free(c);
}

/* Node 3 keeps dropping out (down past dead_ticks, back for a tick); node 1's
 * groups lag on it.  Each return queued them all again for catch-up while the
 * earlier entries, one woken per tick, were still being read: the queue grew by
 * the groups each cycle (review of this change: 1,160 entries for 40 groups
 * after 60 cycles).  A group is queued once, and the part read is dropped. */
static void test_catch_up_queue_stays_bounded_under_a_flapping_peer(void **state)
{
    enum { G = 40 };
    struct mrc_cluster *c = led_by_node_1(901, 1, G);
    size_t max_len = 0;
    (void)state;
    for (int cycle = 0; cycle < 60; cycle++) {
        mrc_crash(c, 3);
        mrc_run(c, E + 2); /* declared down on node 1 */
        for (mr_group_id g = 1; g <= G && cycle == 0; g++) {
            char id[32];
            snprintf(id, sizeof id, "flap-%llu", (unsigned long long)g);
            assert_int_equal(mr_propose(mrc_node(c, 1), g, 900 + g, id, strlen(id), "x", 1, 100),
                             MR_OK);
        }
        mrc_run(c, 6); /* committed with node 2, quiesced with node 3 behind */
        assert_int_equal(mrc_restart(c, 3), MR_OK);
        mrc_run(c, 1);
        if (mrc_node(c, 1)->wake_queue[1].len > max_len)
            max_len = mrc_node(c, 1)->wake_queue[1].len;
    }
    /* Each group at most once unread, and the part read dropped once it is half. */
    assert_true(max_len > 0 && max_len <= 2 * G);
    /* and node 3, left up, catches up in every group */
    mrc_run(c, 20 * E + G);
    for (mr_group_id g = 1; g <= G; g++) {
        char id[32];
        snprintf(id, sizeof id, "flap-%llu", (unsigned long long)g);
        assert_int_equal(mrc_command_events(c, 3, g, id, strlen(id)), 1);
    }
    assert_int_equal(mrc_check(c, NULL, 0), 0);
    mrc_free(c);
}

/* A replica whose turn-wake failed (out of memory growing the set of awake
 * groups) stayed asleep out of every queue; one whose stored leader was removed
 * then refused the other voter's PreVotes for good (review of this change: a
 * group with no leader after 1,000 ticks).  Its turn is now tried again at the
 * next tick.  Node 3 ticks alone here: no message wakes anything. */
static void test_a_failed_turn_wake_is_tried_again(void **state)
{
    enum { G = 70 };
    struct mrc_fail_active f;
    struct raft_allocator a;
    struct mrc_options o = options(911, 64);
    struct mrc_cluster *c;
    (void)state;
    mrc_fail_active_allocator(&f, 3, &a);
    o.base.allocator = &a;
    c = f.c = mrc_new_groups(&o, G);
    assert_non_null(c);
    assert_int_equal(mrc_active_groups(c), 0);
    mrc_crash(c, 3);
    assert_int_equal(mrc_restart(c, 3), MR_OK);
    mr_tick(mrc_node(c, 3)); /* 64 woken: the set is full */
    assert_int_equal(mr_active_group_count(mrc_node(c, 3)), 64);
    f.armed = true;
    mr_tick(mrc_node(c, 3)); /* growing it fails */
    assert_int_equal(f.failures, 1);
    assert_int_equal(mr_active_group_count(mrc_node(c, 3)), 64);
    mr_tick(mrc_node(c, 3));
    assert_int_equal(mr_active_group_count(mrc_node(c, 3)), G);
    mrc_run(c, 10 * E);
    assert_true(mrc_all_led(c, G));
    assert_int_equal(mrc_check(c, NULL, 0), 0);
    mrc_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_restored_groups_wake_in_turns),
        cmocka_unit_test(test_the_pace_changes_at_once),
        cmocka_unit_test(test_followers_sleep_again_without_prevote),
        cmocka_unit_test(test_no_vote_when_nothing_was_led),
        cmocka_unit_test(test_unapplied_entries_wake_at_once),
        cmocka_unit_test(test_stored_leader_down_still_elects),
        cmocka_unit_test(test_stored_leader_dies_after_the_restart),
        cmocka_unit_test(test_a_refused_prevote_wakes_a_restored_replica),
        cmocka_unit_test(test_catch_up_in_turns),
        cmocka_unit_test(test_catch_up_queue_stays_bounded_under_a_flapping_peer),
        cmocka_unit_test(test_a_failed_turn_wake_is_tried_again),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
