/*
 * test_mr_retention.c — what a leader keeps of its log for a member that lags
 * (mr_group_compact): a member whose node is alive catches up from the log, with
 * every event and the outcome of every command it was waiting for; a member whose
 * node went silent, or one the retained bytes would exceed log_retention_bytes for,
 * gets a snapshot past log_retention entries; and what a node's groups keep past
 * their windows stays within log_retention_bytes_total.
 *
 * The scenario: node 3 forwards commands with generated ids and stalls (a
 * descheduled worker) right after; meanwhile nodes 1 and 2 commit them and twice
 * log_retention entries more, and what they sent node 3 is lost.  A snapshot would
 * skip the entries it covers on node 3, a member that was only slow: their events,
 * and the indexes of its own commands — whose waiters could then only fail with
 * "timed out" (the outcome of a generated id is unknown once its entry is skipped),
 * as 22 and 42 of 64 clients' submits did in two runs of `bench/run`.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "mr_cluster.h"

#define N_MINE 10
#define N_OTHERS 2000 /* twice the default log_retention */

struct stall_arm {
    struct mrc_cluster *c;
    bool armed;
};

/* Stalls node 3 once the batch that forwards its commands to the leader is out:
 * the leader commits them with node 2 while node 3 is stalled. */
static void stall_after_forwarding(void *arg, mr_node_id node, const struct mr_batch *b)
{
    struct stall_arm *s = arg;
    if (!s->armed || node != 3)
        return;
    for (size_t i = 0; i < b->n_envelopes; i++)
        for (size_t k = 0; k < b->envelopes[i].n_messages; k++)
            if (b->envelopes[i].messages[k].group == 1 &&
                b->envelopes[i].messages[k].msg.type == RAFT_MSG_PROPOSE) {
                mrc_stall(s->c, 3, true);
                s->armed = false;
                return;
            }
}

struct lag_options {
    uint64_t seed;
    uint64_t retention_bytes;       /* 0: default */
    uint64_t retention_bytes_total; /* 0: default */
    uint32_t stall_ticks;
    int groups;                     /* groups 1 .. groups, each led by node 1 */
};

static struct mrc_cluster *cluster(const struct lag_options *lo)
{
    struct mrc_options o;
    struct mrc_cluster *c;
    mr_node_id members[3] = {1, 2, 3};
    memset(&o, 0, sizeof o);
    o.n_nodes = 3;
    o.seed = lo->seed;
    o.base.log_retention_bytes = lo->retention_bytes;
    o.base.log_retention_bytes_total = lo->retention_bytes_total;
    c = mrc_new(&o);
    assert_non_null(c);
    for (int g = 1; g <= lo->groups; g++)
        assert_int_equal(mr_create_group(mrc_node(c, 1), (mr_group_id)g, members, 3, 1), MR_OK);
    mrc_run(c, 40);
    for (int g = 1; g <= lo->groups; g++)
        assert_int_equal(mrc_leader(c, (mr_group_id)g, NULL), 1);
    return c;
}

/* Runs the scenario with node 3 stalled for lo->stall_ticks; returns the cluster
 * after node 3 resumed and everything settled, and in *peak the most node 1 kept
 * past its groups' windows after any tick. */
static struct mrc_cluster *lag(const struct lag_options *lo, uint64_t *peak)
{
    struct mrc_cluster *c = cluster(lo);
    struct stall_arm arm = {c, true};
    char cmd[32];

    *peak = 0;
    mrc_set_batch_observer(c, stall_after_forwarding, &arm);
    for (int i = 0; i < N_MINE; i++) {
        snprintf(cmd, sizeof cmd, "mine-%d", i);
        assert_int_equal(mr_propose_generated(mrc_node(c, 3), 1, 100 + (uint64_t)i, cmd,
                                              strlen(cmd), "m", 1, 0),
                         MR_OK);
    }
    for (int t = 0; t < 5 && arm.armed; t++)
        mrc_tick(c);
    assert_false(arm.armed);
    mrc_set_batch_observer(c, NULL, NULL);
    /* The others commit while node 3 is stalled, all within a tick or two. */
    for (int g = 1; g <= lo->groups; g++)
        for (int i = 0; i < N_OTHERS; i++) {
            snprintf(cmd, sizeof cmd, "other-%d", i);
            assert_int_equal(mr_propose(mrc_node(c, 2), (mr_group_id)g,
                                        (uint64_t)g * 10000 + (uint64_t)i, cmd, strlen(cmd),
                                        "o", 1, 0),
                             MR_OK);
        }
    for (uint32_t t = 0; t < lo->stall_ticks; t++) {
        uint64_t kept = mr_retained_bytes(mrc_node(c, 1));
        mrc_tick(c);
        if (kept > *peak)
            *peak = kept;
    }
    /* What was sent to node 3 meanwhile is lost (as appends past a full in-flight
     * window are never sent): the leader must send it again, from its log or as a
     * snapshot. */
    mrc_partition(c, 1, 3, true);
    mrc_partition(c, 2, 3, true);
    mrc_stall(c, 3, false);
    mrc_tick(c);
    mrc_heal_all(c);
    for (int t = 0; t < 100; t++) {
        uint64_t kept = mr_retained_bytes(mrc_node(c, 1));
        mrc_tick(c);
        if (kept > *peak)
            *peak = kept;
    }
    for (int g = 1; g <= lo->groups; g++)
        for (int i = 0; i < N_OTHERS; i += 199) {
            struct mr_completion done;
            assert_true(mrc_completion(c, 2, (uint64_t)g * 10000 + (uint64_t)i, &done));
            assert_int_equal(done.result, MR_OK);
        }
    assert_int_equal(mrc_check(c, NULL, 0), 0);
    /* Everyone caught up: nothing is kept past a window any more. */
    assert_int_equal(mr_retained_bytes(mrc_node(c, 1)), 0);
    return c;
}

static void test_a_slow_member_catches_up_from_the_log(void **state)
{
    struct lag_options lo = {.seed = 41, .stall_ticks = 3, .groups = 1};
    uint64_t peak;
    struct mrc_cluster *c = lag(&lo, &peak);
    (void)state;
    assert_true(peak > 0); /* counted while it was kept */
    assert_false(mrc_snapshot_installed(c, 3, 1));
    for (int i = 0; i < N_MINE; i++) {
        struct mr_completion done;
        char cmd[32];
        assert_true(mrc_completion(c, 3, 100 + (uint64_t)i, &done));
        assert_int_equal(done.result, MR_OK);
        assert_true(done.index > 0);
        snprintf(cmd, sizeof cmd, "mine-%d", i);
        assert_int_equal(mrc_command_events(c, 3, 1, cmd, strlen(cmd)), 1);
    }
    for (int i = 0; i < N_OTHERS; i++) {
        char cmd[32];
        snprintf(cmd, sizeof cmd, "other-%d", i);
        assert_int_equal(mrc_command_events(c, 3, 1, cmd, strlen(cmd)), 1);
    }
    mrc_free(c);
}

/* Silent for three election timeouts: its node is declared dead, and the leader
 * keeps only the retention window for it. */
static void test_a_silent_member_gets_a_snapshot(void **state)
{
    struct lag_options lo = {.seed = 42, .stall_ticks = 30, .groups = 1};
    uint64_t peak;
    struct mrc_cluster *c = lag(&lo, &peak);
    (void)state;
    assert_true(mrc_snapshot_installed(c, 3, 1));
    /* Node 3's commands applied in entries the snapshot skipped: their outcome is
     * unknown there, and said so (not a plain timeout). */
    for (int i = 0; i < N_MINE; i++) {
        struct mr_completion done;
        assert_true(mrc_completion(c, 3, 100 + (uint64_t)i, &done));
        assert_int_equal(done.result, MR_EUNKNOWN);
    }
    mrc_free(c);
}

/* Alive, but what it lacks holds more than log_retention_bytes. */
static void test_a_member_past_the_byte_budget_gets_a_snapshot(void **state)
{
    struct lag_options lo = {.seed = 43, .retention_bytes = 4096, .stall_ticks = 3, .groups = 1};
    uint64_t peak;
    struct mrc_cluster *c = lag(&lo, &peak);
    (void)state;
    assert_true(mrc_snapshot_installed(c, 3, 1));
    assert_true(peak <= 4096);
    mrc_free(c);
}

/* Two groups lag on node 3 at once, and the node-wide budget holds what one of
 * them needs kept past its window, not both: node 1 never keeps more than the
 * budget, and a group it could not keep for sends node 3 a snapshot. */
static void test_the_node_wide_budget_caps_what_lagging_groups_keep(void **state)
{
    struct lag_options one = {.seed = 44, .stall_ticks = 3, .groups = 1};
    struct lag_options two = {.seed = 44, .stall_ticks = 3, .groups = 2};
    uint64_t need, peak;
    struct mrc_cluster *c = lag(&one, &need);
    (void)state;
    assert_false(mrc_snapshot_installed(c, 3, 1));
    mrc_free(c);
    assert_true(need > 0);
    two.retention_bytes_total = need + need / 2;
    c = lag(&two, &peak);
    assert_true(peak > 0);
    assert_true(peak <= two.retention_bytes_total);
    assert_true(mrc_snapshot_installed(c, 3, 1) || mrc_snapshot_installed(c, 3, 2));
    mrc_free(c);
    /* With room for both, neither gets a snapshot. */
    two.retention_bytes_total = 0;
    c = lag(&two, &peak);
    assert_true(peak > need);
    assert_false(mrc_snapshot_installed(c, 3, 1));
    assert_false(mrc_snapshot_installed(c, 3, 2));
    mrc_free(c);
}

/* A budget of one byte: every lagging member past the window gets a snapshot. */
static void test_a_spent_node_wide_budget_means_a_snapshot(void **state)
{
    struct lag_options lo = {.seed = 45, .retention_bytes_total = 1, .stall_ticks = 3,
                             .groups = 1};
    uint64_t peak;
    struct mrc_cluster *c = lag(&lo, &peak);
    (void)state;
    assert_true(mrc_snapshot_installed(c, 3, 1));
    assert_int_equal(peak, 0);
    mrc_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_slow_member_catches_up_from_the_log),
        cmocka_unit_test(test_a_silent_member_gets_a_snapshot),
        cmocka_unit_test(test_a_member_past_the_byte_budget_gets_a_snapshot),
        cmocka_unit_test(test_the_node_wide_budget_caps_what_lagging_groups_keep),
        cmocka_unit_test(test_a_spent_node_wide_budget_means_a_snapshot),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
