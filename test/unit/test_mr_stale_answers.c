/*
 * test_mr_stale_answers.c — answers and requests a leader gets from the past (found
 * by a review): a late read-index answer of a leader deposed since, and a command
 * forwarded by a replica that is no longer a member.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "mr_cluster.h"
#include "mr_internal.h" /* mr_entry_encode: a hand-made PROPOSE */

#define E 10
#define HB 2

/* Group 1 on nodes 1..3 led by node 1 (default timing: E ticks, HB apart). */
static struct mrc_cluster *cluster(uint64_t seed)
{
    struct mrc_cluster *c = mrc_new_one_group(seed);
    assert_non_null(c);
    return c;
}

/* One tick with a read-only load on node 2's replica (reads, no writes): a
 * group serving reads stays awake. */
static uint64_t load_token = 1000;
static void tick_with_reads(struct mrc_cluster *c)
{
    (void)mr_read_index(mrc_node(c, 2), 1, ++load_token, 2 * E);
    mrc_tick(c);
}

/* Captures (and drops) node 1's appends and durable notices, and every
 * READ_INDEX_RESP to node 3, keeping the first one node 1 sent. */
struct cap {
    bool drop_appends;
    bool have_old_answer;
    struct raft_message old_answer;
    uint64_t resends_after_partition;
    bool partitioned;
    bool drop_resps_to_3;
};

static bool filter(void *arg, mr_node_id from, mr_node_id to, const struct raft_message *m)
{
    struct cap *cp = arg;
    if (cp->drop_appends && from == 1 &&
        (m->type == RAFT_MSG_APPEND || m->type == RAFT_MSG_DURABLE))
        return true;
    if (m->type == RAFT_MSG_READ_INDEX_RESP && to == 3 && cp->drop_resps_to_3) {
        if (from == 1 && !cp->have_old_answer) {
            cp->have_old_answer = true;
            cp->old_answer = *m;
        }
        return true;
    }
    if (m->type == RAFT_MSG_READ_INDEX && from == 3 && to != 1 && cp->partitioned)
        cp->resends_after_partition++;
    return false;
}

/* Node 1 leads and appends entries that reach nobody (its DURABLE notices count
 * them in its read bound).  Node 3's read is answered by node 1 with that index,
 * but the answer is delayed in the network.  Node 1 is cut off; node 2 or 3 is
 * elected; node 3 asks the new leader again (same read context).  The old
 * leader's delayed answer then arrives: node 3 takes it (the waiter is SENT and
 * the context matches) and waits for an index that the new leader's log never
 * reaches while the group is idle.  No later leader change re-asks. */
static void test_a_late_answer_of_a_deposed_leader_strands_no_read(void **state)
{
    struct mrc_cluster *c = cluster(35);
    struct cap cp;
    struct mr_completion done, r;
    struct mr_group_status st;
    raft_index old_commit;
    (void)state;
    memset(&cp, 0, sizeof cp);
    assert_int_equal(mr_propose(mrc_node(c, 1), 1, 90, "warm", 4, "v", 1, 100), MR_OK);
    mrc_run(c, 2);
    assert_true(mrc_completion(c, 1, 90, &done));
    assert_int_equal(mr_group_status(mrc_node(c, 1), 1, &st), MR_OK);
    old_commit = st.commit;
    cp.drop_appends = true;
    mrc_set_message_filter(c, filter, &cp);
    assert_int_equal(mr_propose(mrc_node(c, 1), 1, 91, "a", 1, "v", 1, 8), MR_OK);
    assert_int_equal(mr_propose(mrc_node(c, 1), 1, 92, "b", 1, "v", 1, 8), MR_OK);
    assert_int_equal(mr_propose(mrc_node(c, 1), 1, 93, "c", 1, "v", 1, 8), MR_OK);
    assert_int_equal(mr_propose(mrc_node(c, 1), 1, 94, "d", 1, "v", 1, 8), MR_OK);
    mrc_settle(c);
    cp.drop_resps_to_3 = true;
    assert_int_equal(mr_read_index(mrc_node(c, 3), 1, 95, 0), MR_OK);
    mrc_run(c, 3);
    assert_true(cp.have_old_answer);
    assert_true(cp.old_answer.index > old_commit + 2);
    /* node 1 cut off; the others elect a leader */
    mrc_partition(c, 1, 2, true);
    mrc_partition(c, 1, 3, true);
    cp.partitioned = true;
    for (int i = 0; i < 10 * E && cp.resends_after_partition == 0; i++)
        tick_with_reads(c);
    assert_true(cp.resends_after_partition > 0);
    assert_true(mrc_leader(c, 1, NULL) != 1);
    /* the old leader's answer, sent before the partition, arrives now */
    {
        struct mr_message mm;
        memset(&mm, 0, sizeof mm);
        mm.group = 1;
        mm.msg = cp.old_answer;
        assert_int_equal(mrc_receive_one(c, 1, 3, &mm), MR_OK);
    }
    for (int i = 0; i < 2 * E; i++) /* node 1's clients gave up on a..d (deadline) */
        tick_with_reads(c);
    /* everything heals; the group is idle */
    cp.drop_resps_to_3 = false;
    cp.drop_appends = false;
    mrc_set_message_filter(c, NULL, NULL);
    mrc_heal_all(c);
    /* a read-only load on the leader's node (no writes) */
    for (int i = 0; i < 60 * E; i++)
        tick_with_reads(c);
    assert_int_equal(mr_group_status(mrc_node(c, 3), 1, &st), MR_OK);
    /* The group is healthy: a fresh read on node 3 completes at once. */
    assert_int_equal(mr_read_index(mrc_node(c, 3), 1, 96, 0), MR_OK);
    for (int i = 0; i < 2 * E; i++)
        tick_with_reads(c);
    assert_true(mrc_completion(c, 3, 96, &r));
    assert_int_equal(r.result, MR_OK);
    /* The first read must have completed too (it began long before). */
    assert_true(mrc_completion(c, 3, 95, &r));
    assert_int_equal(r.result, MR_OK);
    assert_int_equal(mrc_check(c, NULL, 0), 0);
    mrc_free(c);
}

static bool drop_resps_to_1(void *arg, mr_node_id from, mr_node_id to,
                            const struct raft_message *m)
{
    (void)arg;
    (void)from;
    return to == 1 && m->type == RAFT_MSG_APPEND_RESP;
}

/* A PROPOSE from a replica id that is not a member of the group (a removed
 * replica, here an id never used): the core ignores it (raft_step), but while
 * the leader's node has a round in flight mr_hold_forwarded takes it without
 * that check, and the leader commits it. */
static size_t propose_from_stranger(bool round_in_flight, const char *id)
{
    struct mrc_cluster *c = cluster(35);
    unsigned char buf[64];
    struct raft_entry e;
    struct mr_message mm;
    size_t len = mr_entry_encode(MR_KIND_COMMAND, id, (uint16_t)strlen(id), "p", 1, buf);
    size_t events;
    if (round_in_flight) {
        mrc_set_message_filter(c, drop_resps_to_1, NULL);
        assert_int_equal(mr_propose(mrc_node(c, 1), 1, 70, "mine", 4, "v", 1, 0), MR_OK);
        mrc_settle(c); /* proposed; not committed: the round is in flight */
    }
    memset(&e, 0, sizeof e);
    e.type = RAFT_ENTRY_NORMAL;
    e.data = buf;
    e.len = (uint32_t)len;
    memset(&mm, 0, sizeof mm);
    mm.group = 1;
    mm.msg.type = RAFT_MSG_PROPOSE;
    mm.msg.from = 77; /* no replica of group 1 has this id */
    mm.msg.to = 1;    /* node 1's replica (the group's creator) */
    mm.msg.entries = &e;
    mm.msg.n_entries = 1;
    assert_int_equal(mrc_receive_one(c, 3, 1, &mm), MR_OK);
    mrc_settle(c);
    mrc_set_message_filter(c, NULL, NULL);
    mrc_run(c, 5 * E);
    events = mrc_command_events(c, 1, 1, id, strlen(id));
    mrc_free(c);
    return events;
}

static void test_a_non_members_command_is_refused_under_load_too(void **state)
{
    (void)state;
    assert_int_equal(propose_from_stranger(false, "x1"), 0); /* the core's rule */
    assert_int_equal(propose_from_stranger(true, "x2"), 0);  /* taken once before */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_non_members_command_is_refused_under_load_too),
        cmocka_unit_test(test_a_late_answer_of_a_deposed_leader_strands_no_read),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
