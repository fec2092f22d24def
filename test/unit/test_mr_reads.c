/*
 * test_mr_reads.c — read requests (mr_read_index) across leadership changes: a
 * read whose index the old leader had only appended asks the new leader again
 * instead of waiting for an index that never commits; a read refused by a
 * replica that no longer leads is not sent straight back to it.  And the read
 * index that confirms a leadership transfer: a stale view of who leads completes
 * no transfer.  And a transfer to a node held down waits instead of stopping the
 * group's writes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "mr_cluster.h"

#define E 10
#define HB 2

/* Group 1 on nodes 1..3 led by node 1 (default timing: E ticks, HB apart). */
static struct mrc_cluster *cluster(uint64_t seed)
{
    struct mrc_cluster *c = mrc_new_one_group(seed);
    assert_non_null(c);
    return c;
}

static bool drop_leader_appends(void *arg, mr_node_id from, mr_node_id to,
                                const struct raft_message *m)
{
    (void)arg;
    (void)to;
    return from == 1 && (m->type == RAFT_MSG_APPEND || m->type == RAFT_MSG_DURABLE);
}

/* The leader appends two entries that never reach anyone (its heartbeats do) and
 * answers a forwarded read with their index — it counts what it sent as durable
 * (§10.2.1) — then crashes.  The new leader's log ends below that index, and the
 * group settles there, idle: the read, which waited for that index to apply, timed
 * out.  Now a leader change sends it back to ask the new leader. */
static void test_a_read_beyond_what_commits_asks_again(void **state)
{
    struct mrc_cluster *c = cluster(35);
    struct mr_completion done, r;
    (void)state;
    assert_int_equal(mr_propose(mrc_node(c, 1), 1, 90, "warm", 4, "v", 1, 100), MR_OK);
    mrc_run(c, 2);
    assert_true(mrc_completion(c, 1, 90, &done));
    mrc_set_message_filter(c, drop_leader_appends, NULL);
    assert_int_equal(mr_propose(mrc_node(c, 1), 1, 91, "a", 1, "v", 1, 300), MR_OK);
    assert_int_equal(mr_propose(mrc_node(c, 1), 1, 92, "b", 1, "v", 1, 300), MR_OK);
    mrc_settle(c);
    assert_int_equal(mr_read_index(mrc_node(c, 3), 1, 93, 300), MR_OK);
    mrc_run(c, 3);
    mrc_crash(c, 1);
    mrc_set_message_filter(c, NULL, NULL);
    mrc_run(c, 100);
    assert_int_equal(mrc_restart(c, 1), MR_OK);
    mrc_run(c, 100);
    assert_true(mrc_completion(c, 3, 93, &r));
    assert_int_equal(r.result, MR_OK);
    assert_int_equal(mrc_check(c, NULL, 0), 0);
    mrc_free(c);
}

struct read_count {
    uint64_t from3;
};

static bool count_reads_from_3(void *arg, mr_node_id from, mr_node_id to,
                               const struct raft_message *m)
{
    struct read_count *rc = arg;
    (void)to;
    if (from == 3 && m->type == RAFT_MSG_READ_INDEX)
        rc->from3++;
    return false;
}

/* Node 2 takes over by transfer while node 3 cannot hear it: node 3 still
 * forwards its read to node 1, which refuses it.  It used to send it straight
 * back, at the network's speed, until its election timer fired (217 round trips
 * in 12 ticks); now it waits to learn another leader or for its retry time. */
static void test_a_refused_read_is_not_sent_straight_back(void **state)
{
    struct mrc_cluster *c = cluster(33);
    struct read_count rc = {0};
    (void)state;
    mrc_partition(c, 2, 3, true);
    assert_int_equal(mr_transfer_leadership(mrc_node(c, 1), 1, 2, 70, 100), MR_OK);
    mrc_run(c, 3);
    assert_int_equal(mrc_leader(c, 1, NULL), 2);
    mrc_set_message_filter(c, count_reads_from_3, &rc);
    assert_int_equal(mr_read_index(mrc_node(c, 3), 1, 71, 100), MR_OK);
    mrc_run(c, E);
    assert_true(rc.from3 >= 1 && rc.from3 <= 3);
    mrc_partition(c, 2, 3, false);
    mrc_run(c, 6 * E);
    {
        struct mr_completion r;
        assert_true(mrc_completion(c, 3, 71, &r));
        assert_int_equal(r.result, MR_OK);
    }
    mrc_free(c);
}

/* A leader cut off and quiesced still sees itself leading (it never ticks, so
 * CheckQuorum never deposes it), while the others elected another.  Asked to
 * transfer leadership to itself, it answered OK at once; now the transfer waits
 * for a read index to confirm it, which cannot happen, and times out. */
static void test_a_stale_view_completes_no_transfer(void **state)
{
    struct mrc_cluster *c = cluster(31);
    struct mr_group_status st;
    struct mr_completion w, t;
    (void)state;
    mrc_run(c, 20);
    assert_int_equal(mr_group_status(mrc_node(c, 1), 1, &st), MR_OK);
    assert_true(st.quiesced);
    mrc_partition(c, 1, 2, true);
    mrc_partition(c, 1, 3, true);
    mrc_run(c, 6 * E);
    assert_int_equal(mr_propose(mrc_node(c, 2), 1, 50, "w", 1, "v", 1, 100), MR_OK);
    mrc_run(c, 2 * E);
    assert_true(mrc_completion(c, 2, 50, &w));
    assert_int_equal(w.result, MR_OK);
    assert_int_equal(mr_transfer_leadership(mrc_node(c, 1), 1, 1, 60, 3 * E), MR_OK);
    mrc_run(c, 4 * E);
    assert_true(mrc_completion(c, 1, 60, &t));
    assert_int_not_equal(t.result, MR_OK);
    /* Healed, a transfer to node 1 does complete, once node 1 really leads. */
    mrc_heal_all(c);
    mrc_run(c, 4 * E);
    assert_int_equal(mr_transfer_leadership(mrc_node(c, 3), 1, 1, 61, 20 * E), MR_OK);
    mrc_run(c, 10 * E);
    assert_true(mrc_completion(c, 3, 61, &t));
    assert_int_equal(t.result, MR_OK);
    assert_int_equal(mrc_leader(c, 1, NULL), 1);
    assert_int_equal(mrc_check(c, NULL, 0), 0);
    mrc_free(c);
}

/* Makes 40 commands in group 1, one at a time, on nodes a and b in turn, each
 * ticked until it completes (it must, OK); returns how many took longer than a
 * heartbeat interval and a tick (a leader that stops taking commands while a
 * transfer runs holds one up for an election timeout). */
static uint32_t slow_writes(struct mrc_cluster *c, mr_node_id a, mr_node_id b,
                            uint64_t first_token, char tag)
{
    uint32_t slow = 0;
    for (uint64_t i = 0; i < 40; i++) {
        char id[8] = {tag, (char)('a' + i % 26), (char)('a' + i / 26), 0};
        mr_node_id on = i % 2 == 0 ? a : b;
        struct mr_completion t;
        uint32_t ticks = 0;
        assert_int_equal(mr_propose(mrc_node(c, on), 1, first_token + i, id, 3, "v", 1, 20 * E),
                         MR_OK);
        while (!mrc_completion(c, on, first_token + i, &t) && ticks < 20 * E) {
            mrc_tick(c);
            ticks++;
        }
        assert_int_equal(t.result, MR_OK);
        slow += ticks > HB + 1;
    }
    return slow;
}

/* A transfer to a member whose node is down cannot complete; the leader stops
 * taking commands while a transfer runs (§3.10), for an election timeout, and the
 * request tried again every proposal_retry_ticks until its deadline: the group's
 * writes stalled for most of that time.  Now the transfer waits, without starting,
 * while the target's node is down (on the leader, and for a request forwarded to
 * it), and the writes go on; it proceeds once the node is back. */
static void test_a_transfer_to_a_down_node_stalls_no_write(void **state)
{
    struct mrc_cluster *c = cluster(32);
    struct mr_completion t;
    (void)state;
    mrc_crash(c, 3);
    mrc_run(c, 3 * E); /* node 3 declared down */
    assert_int_equal(mr_transfer_leadership(mrc_node(c, 1), 1, 3, 80, 60 * E), MR_OK);
    assert_int_equal(mr_transfer_leadership(mrc_node(c, 2), 1, 3, 81, 60 * E), MR_OK);
    assert_int_equal(slow_writes(c, 1, 2, 100, 'w'), 0);
    assert_false(mrc_completion(c, 1, 80, NULL));
    assert_false(mrc_completion(c, 2, 81, NULL));
    /* Back: both transfers complete. */
    assert_int_equal(mrc_restart(c, 3), MR_OK);
    mrc_run(c, 12 * E);
    assert_true(mrc_completion(c, 1, 80, &t));
    assert_int_equal(t.result, MR_OK);
    assert_true(mrc_completion(c, 2, 81, &t));
    assert_int_equal(t.result, MR_OK);
    assert_int_equal(mrc_leader(c, 1, NULL), 3);
    assert_int_equal(mrc_check(c, NULL, 0), 0);
    mrc_free(c);
}

/* Node 1 (leader) no longer hears node 3, node 2 still does: node 2 forwards a
 * transfer to node 3, and the leader, which holds node 3 down, drops it instead of
 * stopping its writes for an election timeout. */
static void test_a_forwarded_transfer_to_a_node_down_stalls_no_write(void **state)
{
    struct mrc_cluster *c = cluster(33);
    struct mr_completion t;
    (void)state;
    mrc_partition(c, 1, 3, true);
    mrc_run(c, 3 * E);
    assert_int_equal(mrc_leader(c, 1, NULL), 1);
    assert_int_equal(mr_transfer_leadership(mrc_node(c, 2), 1, 3, 90, 60 * E), MR_OK);
    assert_int_equal(slow_writes(c, 1, 1, 200, 'f'), 0);
    assert_false(mrc_completion(c, 2, 90, NULL));
    mrc_heal_all(c);
    mrc_run(c, 12 * E);
    assert_true(mrc_completion(c, 2, 90, &t));
    assert_int_equal(t.result, MR_OK);
    assert_int_equal(mrc_leader(c, 1, NULL), 3);
    assert_int_equal(mrc_check(c, NULL, 0), 0);
    mrc_free(c);
}

/* Node 3 is down; nodes 1 and 2 restart after it went, so neither has heard it
 * since it started and neither ever declares it down.  A transfer to node 3 still
 * stopped the leader's writes for an election timeout at each retry (review of
 * this change: 4 of 40 writes waited 11 ticks).  A node not heard within
 * dead_ticks of the start counts as down for it too. */
static void test_a_transfer_to_a_node_never_heard_stalls_no_write(void **state)
{
    struct mrc_cluster *c = cluster(32);
    struct mr_completion t;
    mr_node_id l;
    (void)state;
    mrc_crash(c, 3);
    mrc_run(c, 3 * E);
    mrc_crash(c, 1);
    mrc_crash(c, 2);
    assert_int_equal(mrc_restart(c, 1), MR_OK);
    assert_int_equal(mrc_restart(c, 2), MR_OK);
    mrc_run(c, 10 * E);
    l = mrc_leader(c, 1, NULL);
    assert_true(l == 1 || l == 2);
    assert_int_equal(mr_transfer_leadership(mrc_node(c, l), 1, 3, 80, 60 * E), MR_OK);
    assert_int_equal(slow_writes(c, l, l, 300, 'n'), 0);
    /* Node 3 back: the transfer completes. */
    assert_int_equal(mrc_restart(c, 3), MR_OK);
    mrc_run(c, 12 * E);
    assert_true(mrc_completion(c, l, 80, &t));
    assert_int_equal(t.result, MR_OK);
    assert_int_equal(mrc_leader(c, 1, NULL), 3);
    assert_int_equal(mrc_check(c, NULL, 0), 0);
    mrc_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_read_beyond_what_commits_asks_again),
        cmocka_unit_test(test_a_refused_read_is_not_sent_straight_back),
        cmocka_unit_test(test_a_stale_view_completes_no_transfer),
        cmocka_unit_test(test_a_transfer_to_a_down_node_stalls_no_write),
        cmocka_unit_test(test_a_forwarded_transfer_to_a_node_down_stalls_no_write),
        cmocka_unit_test(test_a_transfer_to_a_node_never_heard_stalls_no_write),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
