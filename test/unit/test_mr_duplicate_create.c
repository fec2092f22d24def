/*
 * test_mr_duplicate_create.c — one group id created on two nodes before either
 * learned of the other: the misuse the SPEC rules out ("called once"), which no
 * node can refuse alone.  Each call starts a group of its own, with replica 1 on its
 * creator, so each group's messages name replica ids that the other one binds to
 * other nodes.  A message for a higher replica id of this node otherwise means that
 * ours was removed and this node added again, and replaces ours: the two creators
 * destroyed each other's replica, and every command committed in either.  Such a
 * message is now refused, counted as a conflict, and the replica it would have
 * replaced is kept.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "mr_cluster.h"

/* Events of type `type` node `node` recorded for group g. */
static size_t events_of(struct mrc_cluster *c, mr_node_id node, mr_group_id g, int type)
{
    size_t k = 0;
    for (size_t i = 0; i < mrc_event_count(c, node); i++) {
        const struct mrc_event *e = mrc_event_at(c, node, i);
        k += e->group == g && e->type == type;
    }
    return k;
}

static uint64_t conflicts(struct mrc_cluster *c, mr_node_id node)
{
    struct mr_counters k;
    mr_get_counters(mrc_node(c, node), &k);
    return k.conflicts;
}

/* Nodes 1 and 2 cannot reach each other while both create group 5 with members 1,
 * 2 and 3; each adds the other as replica 2.  Once they meet, each keeps its own
 * replica 1: neither group is dropped, and each counts the other's messages. */
static void test_two_creators_keep_their_replicas(void **state)
{
    struct mrc_cluster *c = mrc_new_nodes(3, 77);
    mr_node_id members[3] = {1, 2, 3};
    (void)state;
    mrc_partition(c, 1, 2, true);
    assert_int_equal(mr_create_group(mrc_node(c, 1), 5, members, 3, 1), MR_OK);
    assert_int_equal(mr_create_group(mrc_node(c, 2), 5, members, 3, 1), MR_OK);
    mrc_run(c, 40);
    mrc_heal_all(c);
    mrc_run(c, 400);
    for (mr_node_id n = 1; n <= 2; n++) {
        struct mr_group_status st;
        assert_int_equal(events_of(c, n, 5, MR_EVENT_GROUP_REMOVED), 0);
        assert_int_equal(events_of(c, n, 5, MR_EVENT_GROUP_CREATED), 1);
        assert_int_equal(mr_group_status(mrc_node(c, n), 5, &st), MR_OK);
        assert_int_equal(st.replica_id, 1);
    }
    for (mr_node_id n = 1; n <= 2; n++) {
        assert_true(conflicts(c, n) > 0);
        assert_int_equal(mr_last_conflict(mrc_node(c, n)), 5);
    }
    assert_int_equal(conflicts(c, 3), 0);
    assert_int_equal(mr_last_conflict(mrc_node(c, 3)), 0);
    mrc_free(c);
}

/* The same, but each creator adds node 3 first, as its replica 2 (members listed
 * 1, 3, 2 on node 1 and 2, 3, 1 on node 2).  Node 1's group reaches node 3 first,
 * and node 3 keeps that replica: node 2's group then addresses the same replica id
 * on the same node, which no replacement guards, and its messages are refused
 * because they come from replica 1 on another node than the one node 3 knows. */
static void test_a_member_both_creators_reach_counts_the_other(void **state)
{
    struct mrc_cluster *c = mrc_new_nodes(3, 78);
    mr_node_id from_1[3] = {1, 3, 2}, from_2[3] = {2, 3, 1};
    struct mr_group_status st;
    (void)state;
    mrc_partition(c, 1, 2, true);
    mrc_partition(c, 2, 3, true);
    assert_int_equal(mr_create_group(mrc_node(c, 1), 5, from_1, 3, 1), MR_OK);
    mrc_run(c, 40);
    assert_int_equal(mr_group_status(mrc_node(c, 3), 5, &st), MR_OK);
    assert_int_equal(st.replica_id, 2);
    mrc_partition(c, 2, 3, false);
    assert_int_equal(mr_create_group(mrc_node(c, 2), 5, from_2, 3, 1), MR_OK);
    mrc_run(c, 100);
    assert_true(conflicts(c, 3) > 0);
    assert_int_equal(mr_last_conflict(mrc_node(c, 3)), 5);
    assert_int_equal(events_of(c, 3, 5, MR_EVENT_GROUP_REMOVED), 0);
    /* Node 3 is still in node 1's group, which has its three voters by now (node 2's
     * has two: itself and node 3's replica 2, which never answers it). */
    assert_int_equal(mr_group_status(mrc_node(c, 3), 5, &st), MR_OK);
    assert_int_equal(st.replica_id, 2);
    assert_int_equal(st.n_voters, 3);
    /* Healed: node 1's group addresses node 2 as its replica 3, which node 2 refuses
     * (node 2's group, stuck without node 3, never gets to add node 1). */
    mrc_heal_all(c);
    mrc_run(c, 200);
    for (mr_node_id n = 1; n <= 2; n++) {
        assert_int_equal(events_of(c, n, 5, MR_EVENT_GROUP_REMOVED), 0);
        assert_int_equal(mr_group_status(mrc_node(c, n), 5, &st), MR_OK);
        assert_int_equal(st.replica_id, 1);
    }
    assert_true(conflicts(c, 2) > 0);
    mrc_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_two_creators_keep_their_replicas),
        cmocka_unit_test(test_a_member_both_creators_reach_counts_the_other),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
