/*
 * test_mr_hold.c — batching by holding (mr_hold.c): commands wait for the
 * node's round in flight and leave together when it lands, forwarded commands
 * join the leader's next round, followers never hold, a group without quorum
 * holds the others only briefly, and held commands ride a flush the node makes
 * anyway for another leader's entries.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "mr_internal.h" /* mr_entry_encode: a hand-made PROPOSE */
#include "mr_cluster.h"

/* Batching by holding (mr_hold.c): a command made while its group has a round
 * in flight waits for that round to commit and then leaves at once — no tick — in
 * one append with the others made meanwhile; commands made in the same pass are
 * never split. */
struct round_watch {
    mr_group_id group;   /* 0: any group */
    size_t rounds;       /* envelopes node 1 sent to node 2 with entries of group */
    size_t max_entries;  /* most entries of group in one of them */
};

static void watch_rounds(void *arg, mr_node_id node, const struct mr_batch *b)
{
    struct round_watch *w = arg;
    if (node != 1)
        return;
    for (size_t i = 0; i < b->n_envelopes; i++) {
        size_t entries = 0;
        for (size_t k = 0; b->envelopes[i].to_node == 2 && k < b->envelopes[i].n_messages; k++) {
            const struct mr_message *mm = &b->envelopes[i].messages[k];
            if ((w->group == 0 || mm->group == w->group) && mm->msg.type == RAFT_MSG_APPEND)
                entries += mm->msg.n_entries;
        }
        if (entries > 0)
            w->rounds++;
        if (entries > w->max_entries)
            w->max_entries = entries;
    }
}

static void test_commands_wait_for_the_round_in_flight(void **state)
{
    struct mrc_cluster *c;
    struct round_watch w;
    struct mr_counters before, after;
    uint64_t t0;
    (void)state;
    c = mrc_new_one_group(45);
    assert_non_null(c);
    memset(&w, 0, sizeof w);
    mrc_set_batch_observer(c, watch_rounds, &w);
    /* Same pass: A and B leave together. */
    assert_int_equal(mr_propose(mrc_node(c, 1), 1, 1, "A", 1, "a", 1, 0), MR_OK);
    assert_int_equal(mr_propose(mrc_node(c, 1), 1, 2, "B", 1, "b", 1, 0), MR_OK);
    t0 = mrc_now(c);
    mrc_settle(c);
    assert_true(mrc_completion(c, 1, 1, NULL) && mrc_completion(c, 1, 2, NULL));
    assert_int_equal(w.rounds, 1);
    assert_int_equal(w.max_entries, 2);
    /* A round in flight (the followers stalled): C, D, E wait, then go as one. */
    mr_get_counters(mrc_node(c, 1), &before);
    memset(&w, 0, sizeof w);
    assert_int_equal(mr_propose(mrc_node(c, 1), 1, 3, "C", 1, "c", 1, 0), MR_OK);
    mrc_stall(c, 2, true);
    mrc_stall(c, 3, true);
    mrc_settle(c);
    assert_int_equal(mr_propose(mrc_node(c, 1), 1, 4, "D", 1, "d", 1, 0), MR_OK);
    mrc_settle(c);
    assert_int_equal(mr_propose(mrc_node(c, 1), 1, 5, "E", 1, "e", 1, 0), MR_OK);
    mrc_settle(c);
    assert_false(mrc_completion(c, 1, 3, NULL));
    mrc_stall(c, 2, false);
    mrc_stall(c, 3, false);
    mrc_settle(c);
    assert_int_equal(mrc_now(c), t0); /* no tick needed */
    for (uint64_t t = 3; t <= 5; t++)
        assert_true(mrc_completion(c, 1, t, NULL));
    mr_get_counters(mrc_node(c, 1), &after);
    assert_int_equal(after.held_commands - before.held_commands, 2);
    assert_int_equal(w.rounds, 2);    /* C's round, then D+E's */
    assert_int_equal(w.max_entries, 2);
    assert_int_equal(mrc_check(c, NULL, 0), 0);
    mrc_free(c);
}

/* The leader holds a follower's forwarded commands too while its own round is in
 * flight: they join its next round instead of starting one of their own. */
static void test_forwarded_commands_join_the_leaders_next_round(void **state)
{
    struct mrc_cluster *c;
    struct mr_group_status s2;
    struct round_watch w;
    struct mr_counters before, after;
    unsigned char data[16];
    struct raft_entry e;
    struct mr_message mm;
    (void)state;
    c = mrc_new_one_group(46);
    assert_non_null(c);
    assert_int_equal(mr_group_status(mrc_node(c, 2), 1, &s2), MR_OK);
    mr_get_counters(mrc_node(c, 1), &before);
    memset(&w, 0, sizeof w);
    mrc_set_batch_observer(c, watch_rounds, &w);
    assert_int_equal(mr_propose(mrc_node(c, 1), 1, 3, "C", 1, "c", 1, 0), MR_OK);
    mrc_stall(c, 2, true);
    mrc_stall(c, 3, true);
    mrc_settle(c);
    /* Node 2's forwarded command arrives while C is in flight. */
    memset(&e, 0, sizeof e);
    e.type = RAFT_ENTRY_NORMAL;
    e.data = data;
    e.len = (uint32_t)mr_entry_encode(MR_KIND_COMMAND, "F", 1, "f", 1, data);
    memset(&mm, 0, sizeof mm);
    mm.group = 1;
    mm.msg.type = RAFT_MSG_PROPOSE;
    mm.msg.from = s2.replica_id;
    mm.msg.to = 1;
    mm.msg.term = s2.term;
    mm.msg.entries = &e;
    mm.msg.n_entries = 1;
    assert_int_equal(mrc_receive_one(c, 2, 1, &mm), MR_OK);
    assert_int_equal(mr_propose(mrc_node(c, 1), 1, 4, "D", 1, "d", 1, 0), MR_OK);
    mrc_settle(c);
    mrc_stall(c, 2, false);
    mrc_stall(c, 3, false);
    mrc_settle(c);
    for (mr_node_id n = 1; n <= 3; n++) {
        assert_int_equal(mrc_command_events(c, n, 1, "F", 1), 1);
        assert_int_equal(mrc_command_events(c, n, 1, "D", 1), 1);
    }
    mr_get_counters(mrc_node(c, 1), &after);
    assert_int_equal(after.held_commands - before.held_commands, 2);
    assert_int_equal(w.rounds, 2);    /* C's round, then F + D */
    assert_int_equal(w.max_entries, 2);
    assert_int_equal(mrc_check(c, NULL, 0), 0);
    mrc_free(c);
}

/* The round in flight is the node's, not a group's: a command in another group
 * this node leads waits for it too, and leaves at once when it lands, together
 * with the commands of every group made meanwhile.  (With many groups each sees
 * a command only now and then: a round per group would batch nothing.) */
static void test_other_groups_wait_for_the_nodes_round(void **state)
{
    struct mrc_cluster *c = mrc_new_nodes(3, 47);
    mr_node_id members[3] = {1, 2, 3};
    struct round_watch w;
    struct mr_counters before, after;
    uint64_t t0;
    (void)state;
    assert_int_equal(mr_create_group(mrc_node(c, 1), 1, members, 3, 1), MR_OK);
    assert_int_equal(mr_create_group(mrc_node(c, 1), 2, members, 3, 2), MR_OK);
    mrc_run(c, 40);
    assert_int_equal(mrc_leader(c, 1, NULL), 1);
    assert_int_equal(mrc_leader(c, 2, NULL), 1);
    mrc_settle(c);
    memset(&w, 0, sizeof w); /* any group */
    mrc_set_batch_observer(c, watch_rounds, &w);
    mr_get_counters(mrc_node(c, 1), &before);
    t0 = mrc_now(c);
    assert_int_equal(mr_propose(mrc_node(c, 1), 1, 3, "C", 1, "c", 1, 0), MR_OK);
    mrc_stall(c, 2, true);
    mrc_stall(c, 3, true);
    mrc_settle(c);
    assert_int_equal(mr_propose(mrc_node(c, 1), 2, 4, "D", 1, "d", 1, 0), MR_OK);
    assert_int_equal(mr_propose(mrc_node(c, 1), 1, 5, "E", 1, "e", 1, 0), MR_OK);
    mrc_settle(c);
    assert_false(mrc_completion(c, 1, 3, NULL));
    mrc_stall(c, 2, false);
    mrc_stall(c, 3, false);
    mrc_settle(c);
    assert_int_equal(mrc_now(c), t0); /* no tick needed */
    for (uint64_t t = 3; t <= 5; t++)
        assert_true(mrc_completion(c, 1, t, NULL));
    mr_get_counters(mrc_node(c, 1), &after);
    assert_int_equal(after.held_commands - before.held_commands, 2);
    assert_int_equal(w.rounds, 2);      /* C's round, then D + E in one envelope */
    assert_int_equal(w.max_entries, 2);
    assert_int_equal(mrc_check(c, NULL, 0), 0);
    mrc_free(c);
}

/* A group that cannot commit (its followers are down) holds the node's other
 * groups for at most batch_hold_ticks, once: the next round starts without it. */
static void test_a_group_without_quorum_holds_the_others_briefly(void **state)
{
    struct mrc_cluster *c;
    mr_node_id m1[3] = {1, 2, 3}, m2[3] = {1, 4, 5};
    struct mr_counters before, after;
    uint64_t t0;
    (void)state;
    c = mrc_new_nodes(5, 48);
    assert_int_equal(mr_create_group(mrc_node(c, 1), 1, m1, 3, 1), MR_OK);
    assert_int_equal(mr_create_group(mrc_node(c, 1), 2, m2, 3, 2), MR_OK);
    mrc_run(c, 40);
    assert_int_equal(mrc_leader(c, 1, NULL), 1);
    assert_int_equal(mrc_leader(c, 2, NULL), 1);
    mrc_settle(c);
    mrc_crash(c, 2);
    mrc_crash(c, 3);
    mr_get_counters(mrc_node(c, 1), &before);
    assert_int_equal(mr_propose(mrc_node(c, 1), 1, 10, "A", 1, "a", 1, 0), MR_OK);
    mrc_settle(c);
    assert_int_equal(mr_propose(mrc_node(c, 1), 2, 11, "B", 1, "b", 1, 0), MR_OK);
    mrc_settle(c);
    assert_false(mrc_completion(c, 1, 11, NULL)); /* held behind A's round */
    t0 = mrc_now(c);
    while (!mrc_completion(c, 1, 11, NULL) && mrc_now(c) < t0 + 10) {
        mrc_tick(c);
        mrc_settle(c);
    }
    assert_true(mrc_completion(c, 1, 11, NULL));
    assert_true(mrc_now(c) <= t0 + 2); /* batch_hold_ticks */
    /* The next command of group 2 does not wait for group 1 again. */
    t0 = mrc_now(c);
    assert_int_equal(mr_propose(mrc_node(c, 1), 2, 12, "C", 1, "c", 1, 0), MR_OK);
    mrc_settle(c);
    assert_true(mrc_completion(c, 1, 12, NULL));
    assert_int_equal(mrc_now(c), t0);
    assert_false(mrc_completion(c, 1, 10, NULL));
    mr_get_counters(mrc_node(c, 1), &after);
    assert_int_equal(after.held_commands - before.held_commands, 1);
    mrc_free(c);
}

/* A follower does not hold: its commands are forwarded at once, even while an
 * earlier one of its own is still in flight, so that they join the leader's next
 * round (where the holding happens) instead of waiting for their node's previous
 * round to come back applied — about one round more per command. */
static void test_followers_forward_without_holding(void **state)
{
    struct mrc_cluster *c;
    struct mr_counters before, after;
    (void)state;
    c = mrc_new_one_group(47);
    assert_non_null(c);
    mr_get_counters(mrc_node(c, 2), &before);
    mrc_stall(c, 1, true); /* X stays in flight */
    assert_int_equal(mr_propose(mrc_node(c, 2), 1, 1, "X", 1, "x", 1, 0), MR_OK);
    mrc_settle(c);
    assert_int_equal(mr_propose(mrc_node(c, 2), 1, 2, "Y", 1, "y", 1, 0), MR_OK);
    mrc_settle(c);
    assert_false(mrc_completion(c, 2, 1, NULL));
    mr_get_counters(mrc_node(c, 2), &after);
    assert_int_equal(after.held_commands - before.held_commands, 0);
    assert_int_equal(after.proposals - before.proposals, 2);
    mrc_stall(c, 1, false);
    mrc_settle(c);
    assert_true(mrc_completion(c, 2, 1, NULL) && mrc_completion(c, 2, 2, NULL));
    for (mr_node_id n = 1; n <= 3; n++) {
        assert_int_equal(mrc_command_events(c, n, 1, "X", 1), 1);
        assert_int_equal(mrc_command_events(c, n, 1, "Y", 1), 1);
    }
    assert_int_equal(mrc_check(c, NULL, 0), 0);
    mrc_free(c);
}

static raft_index last_index(struct mrc_cluster *c, mr_node_id node, mr_group_id group)
{
    struct mr_group_status st;
    assert_int_equal(mr_group_status(mrc_node(c, node), group, &st), MR_OK);
    return st.last_index;
}

/* A node that leads some groups and follows others flushes for its followers'
 * entries too.  Commands it holds for its own round leave in such a batch: the
 * flush is paid already, and with leadership spread over the nodes waiting for
 * the node's round cost each held command a flush of its own. */
static void test_held_commands_ride_a_flush_made_for_another_leader(void **state)
{
    struct mrc_cluster *c;
    mr_node_id m1[3] = {1, 3, 4}, m2[3] = {2, 1, 5};
    struct mr_counters before, after;
    raft_index last1;
    uint64_t t0;
    (void)state;
    c = mrc_new_nodes(5, 49);
    assert_int_equal(mr_create_group(mrc_node(c, 1), 1, m1, 3, 1), MR_OK);
    assert_int_equal(mr_create_group(mrc_node(c, 2), 2, m2, 3, 2), MR_OK);
    mrc_run(c, 40);
    assert_int_equal(mrc_leader(c, 1, NULL), 1);
    assert_int_equal(mrc_leader(c, 2, NULL), 2);
    mrc_settle(c);
    /* Node 1's round (C in group 1) stays in flight: its followers are stalled. */
    mrc_stall(c, 3, true);
    mrc_stall(c, 4, true);
    mr_get_counters(mrc_node(c, 1), &before);
    t0 = mrc_now(c);
    assert_int_equal(mr_propose(mrc_node(c, 1), 1, 10, "C", 1, "c", 1, 0), MR_OK);
    mrc_settle(c);
    last1 = last_index(c, 1, 1);
    assert_int_equal(mr_propose(mrc_node(c, 1), 1, 11, "D", 1, "d", 1, 0), MR_OK);
    mrc_settle(c);
    assert_int_equal(last_index(c, 1, 1), last1); /* D is held */
    /* Node 2's entry reaches node 1, whose batch flushes for it: D leaves with it. */
    assert_int_equal(mr_propose(mrc_node(c, 2), 2, 12, "X", 1, "x", 1, 0), MR_OK);
    mrc_settle(c);
    assert_int_equal(mrc_now(c), t0); /* not the hold's time limit */
    assert_int_equal(last_index(c, 1, 1), last1 + 1);
    assert_true(mrc_completion(c, 2, 12, NULL));
    mr_get_counters(mrc_node(c, 1), &after);
    assert_int_equal(after.held_commands - before.held_commands, 1);
    mrc_stall(c, 3, false);
    mrc_stall(c, 4, false);
    mrc_settle(c);
    assert_true(mrc_completion(c, 1, 10, NULL));
    assert_true(mrc_completion(c, 1, 11, NULL));
    for (mr_node_id n = 1; n <= 5; n++) {
        bool member1 = n == 1 || n == 3 || n == 4;
        assert_int_equal(mrc_command_events(c, n, 1, "D", 1), member1 ? 1 : 0);
    }
    assert_int_equal(mrc_check(c, NULL, 0), 0);
    mrc_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_commands_wait_for_the_round_in_flight),
        cmocka_unit_test(test_forwarded_commands_join_the_leaders_next_round),
        cmocka_unit_test(test_followers_forward_without_holding),
        cmocka_unit_test(test_other_groups_wait_for_the_nodes_round),
        cmocka_unit_test(test_a_group_without_quorum_holds_the_others_briefly),
        cmocka_unit_test(test_held_commands_ride_a_flush_made_for_another_leader),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
