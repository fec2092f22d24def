/*
 * test_mr_duplicate_create.c — one group id created on two nodes before either
 * learned of the other: the misuse the SPEC rules out ("called once"), which no
 * node can refuse alone.  Each call starts a group of its own, with replica 1 on its
 * creator, so each group's messages name replica ids that the other one binds to
 * other nodes.  A message for a higher replica id of this node otherwise means that
 * ours was removed and this node added again, and replaces ours: the two creators
 * destroyed each other's replica, and every command committed in either.  Such a
 * message is now refused, counted as a conflict, and the replica it would have
 * replaced is kept.  With five members or more, the other members may take the
 * same replica id on the same node from both creators; every message carries its
 * group's incarnation, which tells the two groups apart there too.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "mr_cluster.h"

/* Events of type `type` node `node` recorded for group g. */
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
        assert_int_equal(mrc_type_events(c, n, 5, MR_EVENT_GROUP_REMOVED), 0);
        assert_int_equal(mrc_type_events(c, n, 5, MR_EVENT_GROUP_CREATED), 1);
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

/* Node 1 creates group 5 with members 1, 3, 2 while it reaches only node 3, which
 * joins it as replica 2; then node 2, which cannot reach node 1, creates group 5
 * with members 2, 3, 1 (node 3 its replica 2 too), and runs `ticks`. */
static void create_apart_with_node_3_in_both(struct mrc_cluster *c, uint64_t ticks)
{
    mr_node_id from_1[3] = {1, 3, 2}, from_2[3] = {2, 3, 1};
    struct mr_group_status st;
    mrc_partition(c, 1, 2, true);
    mrc_partition(c, 2, 3, true);
    assert_int_equal(mr_create_group(mrc_node(c, 1), 5, from_1, 3, 1), MR_OK);
    mrc_run(c, 40);
    assert_int_equal(mr_group_status(mrc_node(c, 3), 5, &st), MR_OK);
    assert_int_equal(st.replica_id, 2);
    mrc_partition(c, 2, 3, false);
    assert_int_equal(mr_create_group(mrc_node(c, 2), 5, from_2, 3, 1), MR_OK);
    mrc_run(c, ticks);
}

/* The same, but each creator adds node 3 first, as its replica 2
 * (create_apart_with_node_3_in_both).  Node 1's group reaches node 3 first, and
 * node 3 keeps that replica: node 2's group then addresses the same replica id on
 * the same node, which no replacement guards, and its messages are refused
 * because they come from replica 1 on another node than the one node 3 knows. */
static void test_a_member_both_creators_reach_counts_the_other(void **state)
{
    struct mrc_cluster *c = mrc_new_nodes(3, 78);
    struct mr_group_status st;
    (void)state;
    create_apart_with_node_3_in_both(c, 100);
    assert_true(conflicts(c, 3) > 0);
    assert_int_equal(mr_last_conflict(mrc_node(c, 3)), 5);
    assert_int_equal(mrc_type_events(c, 3, 5, MR_EVENT_GROUP_REMOVED), 0);
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
        assert_int_equal(mrc_type_events(c, n, 5, MR_EVENT_GROUP_REMOVED), 0);
        assert_int_equal(mr_group_status(mrc_node(c, n), 5, &st), MR_OK);
        assert_int_equal(st.replica_id, 1);
    }
    assert_true(conflicts(c, 2) > 0);
    mrc_free(c);
}

/* The nodes (bit n for node n) of the first `n_nodes` that applied command `cmd`
 * in group g. */
static unsigned applied_on(struct mrc_cluster *c, mr_node_id n_nodes, mr_group_id g,
                           const char *cmd)
{
    unsigned nodes = 0;
    for (mr_node_id n = 1; n <= n_nodes; n++)
        if (mrc_command_events(c, n, g, cmd, strlen(cmd)) > 0)
            nodes |= 1u << n;
    return nodes;
}

/* Cuts every node of `a` off from every node of `b`. */
static void split(struct mrc_cluster *c, const mr_node_id *a, int na, const mr_node_id *b,
                  int nb)
{
    for (int i = 0; i < na; i++)
        for (int k = 0; k < nb; k++)
            mrc_partition(c, a[i], b[k], true);
}

/* The two groups created by nodes 1 (A) and 2 (B) commit a1 and b1 apart, on the
 * nodes of in_a and in_b; then the cluster heals, A's leadership moves to node 5,
 * and both commit again (a2, b2). */
static void a1_b1_heal_lead_a_from_5(struct mrc_cluster *c, mr_node_id n_nodes,
                                     unsigned in_a, unsigned in_b)
{
    struct mr_completion comp;
    assert_int_equal(mr_propose(mrc_node(c, 1), 5, 10, "a1", 2, "x", 1, 0), MR_OK);
    assert_int_equal(mr_propose(mrc_node(c, 2), 5, 11, "b1", 2, "y", 1, 0), MR_OK);
    mrc_run(c, 20);
    assert_int_equal(applied_on(c, n_nodes, 5, "a1"), in_a);
    assert_int_equal(applied_on(c, n_nodes, 5, "b1"), in_b);
    mrc_heal_all(c);
    mrc_run(c, 50);
    assert_int_equal(mr_transfer_leadership(mrc_node(c, 1), 5, 5, 12, 100), MR_OK);
    mrc_run(c, 50);
    assert_true(mrc_completion(c, 1, 12, &comp));
    assert_int_equal(comp.result, MR_OK);
    assert_int_equal(mr_propose(mrc_node(c, 1), 5, 13, "a2", 2, "x", 1, 0), MR_OK);
    assert_int_equal(mr_propose(mrc_node(c, 2), 5, 14, "b2", 2, "y", 1, 0), MR_OK);
    mrc_run(c, 200);
}

/*
 * Six nodes; nodes 1, 3, 5 cannot reach nodes 2, 4, 6 while node 1 creates group 5
 * with members 1, 3, 4, 5, 2 (group A) and node 2 with members 2, 6, 4, 5, 1 (group
 * B).  Each group reaches only its own side and forms there with three of its five
 * voters: A with replicas 1, 2, 4 on nodes 1, 3, 5, B with replicas 1, 2, 3 on nodes
 * 2, 6, 4.  Both creators give node 4 replica id 3 and node 5 replica id 4, so once
 * healed, a message between node 5's replica (A) and node 4's (B) agrees with both
 * groups' maps, and neither the replacement guard nor replica 1's binding
 * (target(), learn()) tells the groups apart; leading A from node 5 (a transfer)
 * makes A's leader talk to node 4.  Only an incarnation of the group carried in
 * every message can refuse them (docs/multiraft-layer.md, "Incarnation"): each group
 * then keeps its commands to its own members, A's on nodes 1, 3, 5 and B's on nodes
 * 2, 4, 6.  Without it node 4 follows A's leader, appends A's entries to B's log
 * and applies A's commands, and B, whose quorum needs node 4, stops.
 */
static void test_members_of_two_groups_under_one_id_do_not_mix(void **state)
{
    struct mrc_cluster *c = mrc_new_nodes(6, 79);
    mr_node_id from_1[5] = {1, 3, 4, 5, 2}, from_2[5] = {2, 6, 4, 5, 1};
    mr_node_id side_a[3] = {1, 3, 5}, side_b[3] = {2, 4, 6};
    const unsigned in_a = 1u << 1 | 1u << 3 | 1u << 5, in_b = 1u << 2 | 1u << 4 | 1u << 6;
    (void)state;
    split(c, side_a, 3, side_b, 3);
    assert_int_equal(mr_create_group(mrc_node(c, 1), 5, from_1, 5, 1), MR_OK);
    assert_int_equal(mr_create_group(mrc_node(c, 2), 5, from_2, 5, 1), MR_OK);
    mrc_run(c, 100);
    /* Each side formed its own group: same id, node 4 replica 3 and node 5 replica 4
     * in both. */
    for (int i = 0; i < 3; i++) {
        struct mr_group_status st;
        assert_int_equal(mr_group_status(mrc_node(c, side_a[i]), 5, &st), MR_OK);
        assert_int_equal(st.leader_node, 1);
        assert_int_equal(st.n_voters, 5);
        assert_int_equal(mr_group_status(mrc_node(c, side_b[i]), 5, &st), MR_OK);
        assert_int_equal(st.leader_node, 2);
        assert_int_equal(st.n_voters, 5);
    }
    {
        struct mr_group_status st4, st5;
        assert_int_equal(mr_group_status(mrc_node(c, 4), 5, &st4), MR_OK);
        assert_int_equal(mr_group_status(mrc_node(c, 5), 5, &st5), MR_OK);
        assert_int_equal(st4.replica_id, 3);
        assert_int_equal(st5.replica_id, 4);
    }
    /* Healed, node 5 takes A's lead: its messages reach node 4 as replica 3. */
    a1_b1_heal_lead_a_from_5(c, 6, in_a, in_b);
    /* Each group's commands are applied by its own members, and only by them. */
    assert_int_equal(applied_on(c, 6, 5, "a1"), in_a);
    assert_int_equal(applied_on(c, 6, 5, "a2"), in_a);
    assert_int_equal(applied_on(c, 6, 5, "b1"), in_b);
    assert_int_equal(applied_on(c, 6, 5, "b2"), in_b);
    mrc_free(c);
}

/*
 * Five nodes; nodes 1, 3, 5 cannot reach nodes 2, 4 while node 1 creates group 5
 * with members 1, 3, 5, 4, 2 (group A: replicas 1 to 5 in that order) and node 2
 * with members 2, 4, 5 (group B: replicas 1, 2, 3).  A forms on nodes 1, 3, 5, B
 * on nodes 2 and 4.  Node 5 is replica 3 in both groups' maps, but only A's.
 * Healed, with A led from node 5, A's leader addresses node 2 as replica 5 and
 * node 4 as replica 4: ids above theirs, from replica 3 on node 5, which B's maps
 * bind to node 5 too.  Without an incarnation in every message that reads as "this
 * node's replica was removed and the node added again", and nodes 2 and 4 dropped
 * B — its creator's replica included, with every command committed in it — to
 * join A.  Each keeps its replica of B now.
 */
static void test_another_group_does_not_replace_a_creators_replica(void **state)
{
    struct mrc_cluster *c = mrc_new_nodes(5, 80);
    mr_node_id from_1[5] = {1, 3, 5, 4, 2}, from_2[3] = {2, 4, 5};
    mr_node_id side_a[3] = {1, 3, 5}, side_b[2] = {2, 4};
    const unsigned in_a = 1u << 1 | 1u << 3 | 1u << 5, in_b = 1u << 2 | 1u << 4;
    (void)state;
    split(c, side_a, 3, side_b, 2);
    assert_int_equal(mr_create_group(mrc_node(c, 1), 5, from_1, 5, 1), MR_OK);
    assert_int_equal(mr_create_group(mrc_node(c, 2), 5, from_2, 3, 1), MR_OK);
    mrc_run(c, 100);
    a1_b1_heal_lead_a_from_5(c, 5, in_a, in_b);
    for (int k = 0; k < 2; k++) {
        struct mr_group_status st;
        assert_int_equal(mrc_type_events(c, side_b[k], 5, MR_EVENT_GROUP_REMOVED), 0);
        assert_int_equal(mr_group_status(mrc_node(c, side_b[k]), 5, &st), MR_OK);
        assert_int_equal(st.replica_id, side_b[k] == 2 ? 1 : 2);
        assert_true(conflicts(c, side_b[k]) > 0);
    }
    assert_int_equal(applied_on(c, 5, 5, "a2"), in_a);
    assert_int_equal(applied_on(c, 5, 5, "b2"), in_b);
    mrc_free(c);
}

/*
 * Group A (node 1's, with node 3) is removed while group B (node 2's, under the
 * same id; create_apart_with_node_3_in_both) lives on, stuck without a quorum: node 3 answers B's vote requests from
 * its tombstone of A.  A removal notice from a tombstone carries the removed
 * group's incarnation, so B's replica refuses it, as it refuses anything else of
 * A's, and keeps its group; without it B's creator dropped its replica, with every
 * command committed in it, for a removal of another group.  A restart of node 3
 * must not lose that: the tombstone's incarnation is stored with it.
 */
static void test_a_removal_of_one_group_does_not_remove_the_other(void **state)
{
    struct mrc_cluster *c = mrc_new_nodes(3, 81);
    struct mr_completion comp;
    struct mr_group_status st;
    (void)state;
    create_apart_with_node_3_in_both(c, 40);
    assert_int_equal(mr_remove_group(mrc_node(c, 1), 5, 20, 100), MR_OK);
    mrc_run(c, 40);
    assert_true(mrc_completion(c, 1, 20, &comp));
    assert_int_equal(comp.result, MR_OK);
    assert_true(mr_group_tombstoned(mrc_node(c, 3), 5));
    mrc_crash(c, 3);
    assert_int_equal(mrc_restart(c, 3), MR_OK);
    mrc_heal_all(c);
    mrc_run(c, 600);
    assert_int_equal(mrc_type_events(c, 2, 5, MR_EVENT_GROUP_REMOVED), 0);
    assert_int_equal(mr_group_status(mrc_node(c, 2), 5, &st), MR_OK);
    assert_int_equal(st.replica_id, 1);
    assert_true(conflicts(c, 3) > 0);
    mrc_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_two_creators_keep_their_replicas),
        cmocka_unit_test(test_a_member_both_creators_reach_counts_the_other),
        cmocka_unit_test(test_members_of_two_groups_under_one_id_do_not_mix),
        cmocka_unit_test(test_another_group_does_not_replace_a_creators_replica),
        cmocka_unit_test(test_a_removal_of_one_group_does_not_remove_the_other),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
