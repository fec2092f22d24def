/*
 * test_mr_generated.c — commands with a generated id (mr_propose_generated): the
 * bound each copy carries, expiry decided by the log position on every replica,
 * the proposer's session instead of a dedup record (duplicates, reordering, a
 * given-up command, restarts, snapshots), and the outcome a proposer reports.
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

#define WINDOW 5

/* Group 1 on nodes 1..3, created by node 1, which leads it; window WINDOW. */
static struct mrc_cluster *cluster(uint64_t seed)
{
    struct mrc_options o;
    struct mrc_cluster *c;
    mr_node_id members[3] = {1, 2, 3};
    memset(&o, 0, sizeof o);
    o.n_nodes = 3;
    o.seed = seed;
    o.base.generated_id_window = WINDOW;
    c = mrc_new(&o);
    assert_non_null(c);
    assert_int_equal(mr_create_group(mrc_node(c, 1), 1, members, 3, 1), MR_OK);
    mrc_run(c, 40);
    assert_int_equal(mrc_leader(c, 1, NULL), 1);
    return c;
}

/* Every dedup record of any node. */
static void count_dedup(void *arg, mr_node_id node, const struct mr_batch *b)
{
    (void)node;
    *(size_t *)arg += b->n_dedup;
}

/* A generated id leaves no dedup record: its proposer's session, in the group's
 * state, records it — as a floor past its seq, once nothing else is in flight. */
static void test_generated_command_keeps_no_record(void **state)
{
    struct mrc_cluster *c = cluster(61);
    struct mr_completion comp;
    size_t dedup_records = 0;
    (void)state;
    mrc_set_batch_observer(c, count_dedup, &dedup_records);
    assert_int_equal(mr_propose_generated(mrc_node(c, 2), 1, 7, "g1", 2, "x", 1, 0), MR_OK);
    assert_int_equal(mr_propose_generated(mrc_node(c, 2), 1, 8, "g2", 2, "y", 1, 0), MR_OK);
    mrc_run(c, 5);
    assert_true(mrc_completion(c, 2, 7, &comp));
    assert_int_equal(comp.result, MR_OK);
    assert_true(mrc_completion(c, 2, 8, &comp));
    assert_int_equal(comp.result, MR_OK);
    for (mr_node_id n = 1; n <= 3; n++) {
        const struct mr_group *g = mr_group_find(mrc_node(c, n), 1);
        assert_int_equal(mrc_command_events(c, n, 1, "g1", 2), 1);
        assert_int_equal(mrc_command_events(c, n, 1, "g2", 2), 1);
        assert_false(mrc_has_dedup(c, n, 1, "g1", 2));
        assert_non_null(g);
        assert_int_equal(g->n_sessions, 1);
        assert_int_equal(g->sessions[0].node, 2);
        assert_int_equal(g->sessions[0].floor, 3); /* seqs 1 and 2 applied */
        assert_int_equal(g->sessions[0].n_seqs, 0);
    }
    assert_int_equal(dedup_records, 0);
    assert_int_equal(mrc_check(c, NULL, 0), 0);
    mrc_free(c);
}

/* Copies of node 2's commands reach the leader as forwarded proposals, as
 * retries and a duplicating network make them, in any order. */
static void forward(struct mrc_cluster *c, uint64_t seq, uint64_t floor, const char *id)
{
    mrc_forward_generated(c, 1, 2, 999, seq, floor, 1000, id);
}

static void assert_applied_everywhere(struct mrc_cluster *c, const char *id, size_t times)
{
    for (mr_node_id n = 1; n <= 3; n++)
        assert_int_equal(mrc_command_events(c, n, 1, id, (uint16_t)strlen(id)), times);
}

static void test_copies_apply_once_in_any_order(void **state)
{
    struct mrc_cluster *c = cluster(63);
    (void)state;
    forward(c, 1, 1, "s1");
    forward(c, 1, 1, "s1");          /* a duplicate */
    forward(c, 3, 1, "s3");          /* 2 still in flight: above the floor */
    forward(c, 2, 1, "s2");          /* arrives after 3 */
    forward(c, 3, 1, "s3");
    forward(c, 6, 5, "s6");          /* 4 was given up: floor 5 */
    forward(c, 4, 1, "s4");          /* its late copy never applies */
    forward(c, 5, 5, "s5");
    forward(c, 6, 5, "s6");
    assert_applied_everywhere(c, "s1", 1);
    assert_applied_everywhere(c, "s2", 1);
    assert_applied_everywhere(c, "s3", 1);
    assert_applied_everywhere(c, "s4", 0);
    assert_applied_everywhere(c, "s5", 1);
    assert_applied_everywhere(c, "s6", 1);
    /* The sessions survive a restart of every node (they are in the meta row). */
    for (mr_node_id n = 1; n <= 3; n++)
        mrc_crash(c, n);
    for (mr_node_id n = 1; n <= 3; n++)
        assert_int_equal(mrc_restart(c, n), MR_OK);
    mrc_run(c, 60);
    forward(c, 2, 1, "s2");
    forward(c, 5, 1, "s5");
    forward(c, 7, 7, "s7");
    assert_applied_everywhere(c, "s2", 1);
    assert_applied_everywhere(c, "s5", 1);
    assert_applied_everywhere(c, "s7", 1);
    assert_int_equal(mrc_check(c, NULL, 0), 0);
    mrc_free(c);
}

/* A follower cut off while the leader compacts past it catches up by a snapshot
 * taken at the leader's applied index — the sessions in it are as of that
 * index — then from the log: it applies every command after the snapshot, none
 * twice. */
static void test_snapshot_carries_the_sessions(void **state)
{
    struct mrc_options o;
    struct mrc_cluster *c;
    mr_node_id members[3] = {1, 2, 3};
    struct mr_completion comp;
    char id[16];
    (void)state;
    memset(&o, 0, sizeof o);
    o.n_nodes = 3;
    o.seed = 64;
    o.base.generated_id_window = 1000;
    o.base.compact_threshold = 4;
    o.base.log_retention = 2;
    c = mrc_new(&o);
    assert_int_equal(mr_create_group(mrc_node(c, 1), 1, members, 3, 1), MR_OK);
    mrc_run(c, 40);
    assert_int_equal(mrc_leader(c, 1, NULL), 1);
    mrc_partition(c, 3, 1, true);
    mrc_partition(c, 3, 2, true);
    for (int i = 0; i < 22; i++) {
        snprintf(id, sizeof id, "a%d", i);
        assert_int_equal(mr_propose_generated(mrc_node(c, 2), 1, 100 + (uint64_t)i, id,
                                              strlen(id), "v", 1, 0), MR_OK);
        mrc_run(c, 2);
    }
    mrc_heal_all(c);
    mrc_run(c, 40);
    assert_true(mrc_snapshot_installed(c, 3, 1));
    for (int i = 0; i < 3; i++) {
        snprintf(id, sizeof id, "b%d", i);
        assert_int_equal(mr_propose_generated(mrc_node(c, 2), 1, 200 + (uint64_t)i, id,
                                              strlen(id), "v", 1, 0), MR_OK);
        mrc_run(c, 3);
        assert_true(mrc_completion(c, 2, 200 + (uint64_t)i, &comp));
        assert_int_equal(comp.result, MR_OK);
        assert_applied_everywhere(c, id, 1);
    }
    assert_int_equal(mrc_check(c, NULL, 0), 0);
    mrc_free(c);
}

/* More than WINDOW commands ("k0", "k1", ...) committed through node 1, `ticks`
 * apart. */
static void commit_past_the_window(struct mrc_cluster *c, uint32_t ticks)
{
    char id[16];
    for (int i = 0; i < WINDOW + 3; i++) {
        snprintf(id, sizeof id, "k%d", i);
        assert_int_equal(mr_propose(mrc_node(c, 1), 1, 100 + (uint64_t)i, id, strlen(id),
                                    "v", 1, 0), MR_OK);
        mrc_run(c, ticks);
    }
}

/* Node 3 proposes while cut off from the leader; more than WINDOW entries commit
 * without it; when it is back its copy lands past the bound: no node applies that
 * copy, and node 3, which applied the whole window itself (no copy can have
 * applied unseen), proposes the command again under a new bound, while its
 * deadline lasts: it applies once, everywhere.  (It used to fail as expired, as if
 * something had delayed it.) */
static void test_copy_past_its_bound_is_proposed_again(void **state)
{
    struct mrc_cluster *c = cluster(62);
    struct mr_completion comp;
    struct mr_counters before, after;
    (void)state;
    mrc_partition(c, 3, 1, true);
    assert_int_equal(mr_propose_generated(mrc_node(c, 3), 1, 9, "late", 4, "x", 1, 0), MR_OK);
    mrc_run(c, 2);
    commit_past_the_window(c, 1);
    /* Healed, node 3 catches up from the leader and resubmits its command after
     * proposal_retry_ticks: that copy lands past the bound, the next one not. */
    mr_get_counters(mrc_node(c, 3), &before);
    mrc_heal_all(c);
    mrc_run(c, 80);
    assert_true(mrc_completion(c, 3, 9, &comp));
    assert_int_equal(comp.result, MR_OK);
    mr_get_counters(mrc_node(c, 3), &after);
    assert_true(after.expired > before.expired);
    assert_applied_everywhere(c, "late", 1);
    for (mr_node_id n = 1; n <= 3; n++)
        assert_false(mrc_has_dedup(c, n, 1, "late", 4));
    assert_int_equal(mrc_check(c, NULL, 0), 0);
    mrc_free(c);
}

/* The same, over seeds, with messages dropped, duplicated and delayed after the
 * heal, so that several copies of a proposal land, some past their bound after the
 * command was proposed again: each command node 3 made applies once everywhere,
 * and its caller is told where. */
static void test_commands_proposed_again_apply_once_under_faults(void **state)
{
    (void)state;
    for (uint64_t seed = 1; seed <= 24; seed++) {
        struct mrc_cluster *c = cluster(700 + seed);
        char id[16];
        mrc_partition(c, 3, 1, true);
        for (int i = 0; i < 3; i++) {
            snprintf(id, sizeof id, "g%d", i);
            assert_int_equal(mr_propose_generated(mrc_node(c, 3), 1, 9 + (uint64_t)i, id,
                                                  strlen(id), "x", 1, 0), MR_OK);
            mrc_run(c, 1);
        }
        commit_past_the_window(c, 2);
        mrc_heal_all(c);
        mrc_set_faults(c, 10, 30, 4);
        mrc_run(c, 300);
        mrc_set_faults(c, 0, 0, 0);
        mrc_run(c, 200);
        for (int i = 0; i < 3; i++) {
            struct mr_completion comp;
            snprintf(id, sizeof id, "g%d", i);
            if (!mrc_completion(c, 3, 9 + (uint64_t)i, &comp) || comp.result != MR_OK)
                fail_msg("seed %llu: %s did not complete", (unsigned long long)seed, id);
            for (mr_node_id n = 1; n <= 3; n++)
                if (mrc_command_events(c, n, 1, id, (uint16_t)strlen(id)) != 1)
                    fail_msg("seed %llu: %s applied %zu times on node %u",
                             (unsigned long long)seed, id,
                             mrc_command_events(c, n, 1, id, (uint16_t)strlen(id)), n);
        }
        assert_int_equal(mrc_check(c, NULL, 0), 0);
        mrc_free(c);
    }
}

/* Past its deadline, a command whose copy expired is not proposed again: it times
 * out, and no copy applies anywhere. */
static void test_copy_past_its_bound_and_deadline_applies_nowhere(void **state)
{
    struct mrc_cluster *c = cluster(62);
    struct mr_completion comp;
    (void)state;
    mrc_partition(c, 3, 1, true);
    assert_int_equal(mr_propose_generated(mrc_node(c, 3), 1, 9, "late", 4, "x", 1, 20), MR_OK);
    commit_past_the_window(c, 3);
    assert_true(mrc_completion(c, 3, 9, &comp));
    assert_int_equal(comp.result, MR_ETIMEOUT);
    mrc_heal_all(c);
    mrc_run(c, 80);
    for (mr_node_id n = 1; n <= 3; n++)
        assert_int_equal(mrc_command_events(c, n, 1, "late", 4), 0);
    assert_int_equal(mrc_check(c, NULL, 0), 0);
    mrc_free(c);
}

/* A command made on a node just restarted after more than WINDOW entries committed
 * without it takes its bound from the stale commit index the node restored (found
 * by a review): it expired at once and the caller was told so.  It applies now. */
static void test_a_command_made_on_a_returning_node_applies(void **state)
{
    struct mrc_cluster *c = cluster(62);
    struct mr_completion comp;
    (void)state;
    mrc_crash(c, 3);
    commit_past_the_window(c, 1);
    mrc_run(c, 10);
    assert_int_equal(mrc_restart(c, 3), MR_OK);
    assert_int_equal(mr_propose_generated(mrc_node(c, 3), 1, 9, "fresh", 5, "x", 1, 0), MR_OK);
    mrc_run(c, 100);
    assert_true(mrc_completion(c, 3, 9, &comp));
    assert_int_equal(comp.result, MR_OK);
    assert_applied_everywhere(c, "fresh", 1);
    assert_int_equal(mrc_check(c, NULL, 0), 0);
    mrc_free(c);
}

/* A node removed from a group and added again replays the log from the start in
 * its new replica (the leader kept it): the generated commands its earlier replica
 * announced are not announced again on that node (its tombstone remembers how far
 * they were, across a restart), and the later ones are, those made while it was
 * out included. */
static void test_readded_node_announces_each_command_once(void **state)
{
    struct mrc_options o;
    struct mrc_cluster *c;
    mr_node_id members[4] = {1, 2, 3, 4};
    struct mr_completion comp;
    (void)state;
    memset(&o, 0, sizeof o);
    o.n_nodes = 4;
    o.seed = 65;
    o.base.quiesce_ticks = 100000; /* no quiescence: the leader keeps its log */
    c = mrc_new(&o);
    assert_int_equal(mr_create_group(mrc_node(c, 1), 1, members, 4, 1), MR_OK);
    mrc_run(c, 40);
    assert_int_equal(mr_propose_generated(mrc_node(c, 4), 1, 10, "early", 5, "e", 1, 0), MR_OK);
    mrc_run(c, 5);
    assert_int_equal(mrc_command_events(c, 4, 1, "early", 5), 1);
    assert_int_equal(mr_propose_conf_change(mrc_node(c, 1), 1, 11, MR_CHANGE_REMOVE_VOTER, 4,
                                            "rm4", 3, false, NULL, 0, 200), MR_OK);
    mrc_run(c, 20);
    assert_false(mr_group_exists(mrc_node(c, 4), 1));
    /* The tombstone keeps how far: a restart in between forgets nothing. */
    mrc_crash(c, 4);
    assert_int_equal(mrc_restart(c, 4), MR_OK);
    assert_int_equal(mr_propose_generated(mrc_node(c, 2), 1, 12, "between", 7, "b", 1, 0),
                     MR_OK);
    mrc_run(c, 5);
    assert_int_equal(mr_propose_conf_change(mrc_node(c, 1), 1, 13, MR_CHANGE_ADD_VOTER, 4,
                                            "add4", 4, false, NULL, 0, 200), MR_OK);
    mrc_run(c, 30);
    assert_true(mrc_completion(c, 1, 13, &comp));
    assert_int_equal(comp.result, MR_OK);
    assert_true(mr_group_exists(mrc_node(c, 4), 1));
    assert_int_equal(mr_propose_generated(mrc_node(c, 3), 1, 14, "late", 4, "l", 1, 0), MR_OK);
    mrc_run(c, 10);
    assert_int_equal(mrc_command_events(c, 4, 1, "early", 5), 1);
    assert_int_equal(mrc_command_events(c, 4, 1, "between", 7), 1);
    assert_int_equal(mrc_command_events(c, 4, 1, "late", 4), 1);
    for (mr_node_id n = 1; n <= 3; n++)
        assert_int_equal(mrc_command_events(c, n, 1, "between", 7), 1);
    assert_int_equal(mrc_check(c, NULL, 0), 0);
    mrc_free(c);
}

/* A window as large as the index space never expires: its bound saturates
 * instead of wrapping below the command's own index (then every generated-id
 * command failed MR_EEXPIRED). */
static void test_a_window_as_large_as_the_index_space(void **state)
{
    struct mrc_options o;
    struct mrc_cluster *c;
    mr_node_id members[3] = {1, 2, 3};
    struct mr_completion comp;
    (void)state;
    memset(&o, 0, sizeof o);
    o.n_nodes = 3;
    o.seed = 66;
    o.base.generated_id_window = UINT64_MAX;
    c = mrc_new(&o);
    assert_int_equal(mr_create_group(mrc_node(c, 1), 1, members, 3, 1), MR_OK);
    mrc_run(c, 40);
    assert_int_equal(mr_propose_generated(mrc_node(c, 2), 1, 7, "g1", 2, "x", 1, 0), MR_OK);
    mrc_run(c, 5);
    assert_true(mrc_completion(c, 2, 7, &comp));
    assert_int_equal(comp.result, MR_OK);
    for (mr_node_id n = 1; n <= 3; n++)
        assert_int_equal(mrc_command_events(c, n, 1, "g1", 2), 1);
    mrc_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_window_as_large_as_the_index_space),
        cmocka_unit_test(test_generated_command_keeps_no_record),
        cmocka_unit_test(test_copy_past_its_bound_is_proposed_again),
        cmocka_unit_test(test_commands_proposed_again_apply_once_under_faults),
        cmocka_unit_test(test_copy_past_its_bound_and_deadline_applies_nowhere),
        cmocka_unit_test(test_a_command_made_on_a_returning_node_applies),
        cmocka_unit_test(test_copies_apply_once_in_any_order),
        cmocka_unit_test(test_snapshot_carries_the_sessions),
        cmocka_unit_test(test_readded_node_announces_each_command_once),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
