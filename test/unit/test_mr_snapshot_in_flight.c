/*
 * test_mr_snapshot_in_flight.c — a member caught up by a snapshot while its group
 * stays busy (found by a review).  The leader reported the snapshot sent at once
 * and then judged the member by its match, below the window: its node silent
 * while it installs the snapshot (a worker inserting a large snapshot's records
 * is), the leader compacted past the snapshot in flight, and the member needed
 * another when it acknowledged it, for as long as the load lasted — 25 snapshots
 * sent and 23 installed in 400 ticks here, each skipping the events of the
 * entries it covered.  The leader now keeps the log from the last snapshot sent
 * (raft_progress_info.snapshot_sent), within the byte budgets.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "mr_cluster.h"

#define PER_TICK 3  /* commands a tick: the 16-entry window passes in 6 ticks */
#define DELAY 15    /* ticks node 3 is silent after each snapshot sent to it */

struct slow_install {
    struct mrc_cluster *c;
    uint64_t silent_until;
    size_t sent;
};

/* Each snapshot to node 3 stalls node 3 for DELAY ticks: it is installing it. */
static bool on_message(void *arg, mr_node_id from, mr_node_id to, const struct raft_message *m)
{
    struct slow_install *s = arg;
    (void)from;
    if (to == 3 && m->type == RAFT_MSG_SNAPSHOT && s->silent_until == 0) {
        s->sent++;
        s->silent_until = mrc_now(s->c) + DELAY;
        mrc_stall(s->c, 3, true);
    }
    return false;
}

static void load(struct mrc_cluster *c, uint64_t *token)
{
    for (int k = 0; k < PER_TICK; k++, (*token)++) {
        char cmd[32];
        snprintf(cmd, sizeof cmd, "c-%llu", (unsigned long long)*token);
        (void)mr_propose(mrc_node(c, 1), 1, *token, cmd, strlen(cmd), "p", 1, 0);
    }
}

static void test_one_snapshot_under_load(void **state)
{
    struct mrc_options o = mrc_options_ticks(3, 7, 0, 0); /* default timeouts */
    struct mrc_cluster *c;
    mr_node_id members[3] = {1, 2, 3};
    struct slow_install s;
    struct mr_group_status leader, member;
    uint64_t token = 1;
    (void)state;
    o.base.compact_threshold = 8;
    o.base.log_retention = 16;
    c = mrc_new(&o);
    assert_non_null(c);
    assert_int_equal(mr_create_group(mrc_node(c, 1), 1, members, 3, 1), MR_OK);
    mrc_run(c, 40);
    assert_int_equal(mrc_leader(c, 1, NULL), 1);
    /* Node 3 is cut off and declared down while the group moves on: it falls
     * behind the window. */
    mrc_partition(c, 1, 3, true);
    mrc_partition(c, 2, 3, true);
    for (int t = 0; t < 40; t++) {
        load(c, &token);
        mrc_tick(c);
    }
    memset(&s, 0, sizeof s);
    s.c = c;
    mrc_set_message_filter(c, on_message, &s);
    mrc_heal_all(c);
    for (int t = 0; t < 400; t++) {
        load(c, &token);
        if (s.silent_until != 0 && mrc_now(c) >= s.silent_until) {
            s.silent_until = 0;
            mrc_stall(c, 3, false);
        }
        mrc_tick(c);
    }
    assert_int_equal(mr_group_status(mrc_node(c, 1), 1, &leader), MR_OK);
    assert_int_equal(mr_group_status(mrc_node(c, 3), 1, &member), MR_OK);
    printf("snapshots sent to node 3: %zu, installed: %zu; applied: leader %llu, node 3 %llu\n",
           s.sent, mrc_type_events(c, 3, 1, MR_EVENT_SNAPSHOT_APPLIED),
           (unsigned long long)leader.applied, (unsigned long long)member.applied);
    assert_int_equal(s.sent, 1);
    assert_int_equal(mrc_type_events(c, 3, 1, MR_EVENT_SNAPSHOT_APPLIED), 1);
    mrc_set_message_filter(c, NULL, NULL);
    mrc_stall(c, 3, false);
    mrc_run(c, 40);
    assert_int_equal(mrc_check(c, NULL, 0), 0);
    mrc_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_snapshot_under_load),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
