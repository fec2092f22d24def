/*
 * test_mr_replica_ids.c — a replica id names one replica on one node for the
 * life of its group, on every node, however the node learnt the group's
 * configuration.
 *
 * A leader binds a new replica id to its target node when it proposes the
 * addition (mr_conf.c).  If that proposal is lost, another leader may allocate
 * the same id for another node and commit it.  Applying the committed change
 * corrects the first leader's map (mr_apply.c); a snapshot that covers the
 * change must too, or the node keeps sending that replica's messages to the
 * wrong node: its vote requests create a replica there that was never added,
 * which votes, and two quorums stop overlapping.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "mr_cluster.h"

#define GROUP 1

/* Group {1, 2, 3} (and node 6, with add6) led by node 1, which is then cut off
 * and proposes add_voter(node 4): it binds the next replica id, 4, to node 4, and
 * the entry never leaves it; the request times out. */
static void guess_node4(struct mrc_cluster *c, bool add6)
{
    mr_node_id members[3] = {1, 2, 3};
    assert_int_equal(mr_create_group(mrc_node(c, 1), GROUP, members, 3, 1), MR_OK);
    mrc_run(c, 60);
    assert_int_equal(mrc_leader(c, GROUP, NULL), 1);
    if (add6)
        assert_int_equal(mrc_change(c, 1, GROUP, 10, MR_CHANGE_ADD_VOTER, 6, "add6", 60),
                         MR_OK);
    for (mr_node_id other = 2; other <= MRC_MAX_NODES; other++)
        mrc_partition(c, 1, other, true);
    assert_int_equal(mr_propose_conf_change(mrc_node(c, 1), GROUP, 11, MR_CHANGE_ADD_VOTER, 4,
                                            "add4", 4, false, NULL, 0, 5),
                     MR_OK);
    mrc_run(c, 60);
    assert_int_equal(mrc_result(c, 1, 11), MR_ETIMEOUT);
}

/*
 * Group {1, 2, 3} on n_nodes nodes led by node 1 (and node 6 added first when
 * there is one).  Node 1 is cut off and proposes add_voter(node 4): the next
 * replica id is bound to node 4 in its map, and the entry never leaves it.  The
 * others elect a leader, which adds node 5 under the same id and commits it, then
 * 300 commands: node 1 is past the retention window.  Node 1 is healed and
 * catches up by a snapshot.  Returns the other side's leader.
 */
static mr_node_id lost_proposal_then_snapshot(struct mrc_cluster **out, int n_nodes)
{
    struct mrc_options o;
    struct mrc_cluster *c;
    mr_node_id leader;
    char cmd[32];

    memset(&o, 0, sizeof o);
    o.n_nodes = n_nodes;
    o.seed = 7;
    o.base.log_retention = 20;
    c = mrc_new(&o);
    assert_non_null(c);
    guess_node4(c, n_nodes >= 6);
    leader = mrc_leader(c, GROUP, NULL);
    assert_true(leader != 0 && leader != 1);
    assert_int_equal(mrc_change(c, leader, GROUP, 12, MR_CHANGE_ADD_VOTER, 5, "add5", 60),
                     MR_OK);
    for (int i = 0; i < 300; i++) {
        snprintf(cmd, sizeof cmd, "c%d", i);
        assert_int_equal(mr_propose(mrc_node(c, leader), GROUP, 100 + (uint64_t)i, cmd,
                                    strlen(cmd), "v", 1, 0),
                         MR_OK);
    }
    mrc_run(c, 40);
    mrc_heal_all(c);
    mrc_run(c, 100);
    assert_true(mrc_snapshot_installed(c, 1, GROUP));
    *out = c;
    return leader;
}

/* After the snapshot node 1 sees the committed configuration: node 5, not node 4. */
static void test_a_snapshot_corrects_a_guessed_binding(void **state)
{
    struct mrc_cluster *c;
    struct mr_group_status st;
    mr_node_id leader = lost_proposal_then_snapshot(&c, 5);
    (void)state;

    assert_int_equal(mr_group_status(mrc_node(c, leader), GROUP, &st), MR_OK);
    assert_true(mrc_node_in(st.voters, st.n_voters, 5));
    assert_false(mrc_node_in(st.voters, st.n_voters, 4));
    assert_int_equal(mr_group_status(mrc_node(c, 1), GROUP, &st), MR_OK);
    assert_true(mrc_node_in(st.voters, st.n_voters, 5));
    assert_false(mrc_node_in(st.voters, st.n_voters, 4));
    mrc_free(c);
}

/* Node 1 campaigns (a transfer to it): node 4, never added, gets no replica. */
static void test_a_corrected_node_asks_no_outsider_for_votes(void **state)
{
    struct mrc_cluster *c;
    struct mr_group_status st;
    mr_node_id leader = lost_proposal_then_snapshot(&c, 5);
    (void)state;

    assert_int_equal(mr_group_status(mrc_node(c, 4), GROUP, &st), MR_ENOGROUP);
    assert_int_equal(mr_transfer_leadership(mrc_node(c, leader), GROUP, 1, 77, 50), MR_OK);
    mrc_run(c, 60);
    assert_int_equal(mrc_leader(c, GROUP, NULL), 1);
    assert_int_equal(mr_group_status(mrc_node(c, 4), GROUP, &st), MR_ENOGROUP);
    mrc_free(c);
}

/*
 * Five voters: replicas 1..3 on nodes 1..3, 4 on node 6, 5 on node 5 (node 1
 * guessed node 4).  With the guess kept, the partition {1, 2, 4} | {3, 5, 6}
 * made two leaders that each counted three of the five replicas, and nodes 1
 * and 3 applied different entries at the same index.
 */
static void test_quorums_overlap_after_a_snapshot(void **state)
{
    struct mrc_cluster *c;
    mr_node_id a[3] = {1, 2, 4}, b[3] = {3, 5, 6};
    char cmd[32];
    char err[512] = "";
    (void)state;

    (void)lost_proposal_then_snapshot(&c, 6);
    assert_int_equal(mrc_check(c, err, sizeof err), 0);
    for (int i = 0; i < 3; i++)
        for (int k = 0; k < 3; k++)
            mrc_partition(c, a[i], b[k], true);
    mrc_run(c, 50);
    for (int i = 0; i < 5; i++) {
        snprintf(cmd, sizeof cmd, "sideA-%d", i);
        assert_int_equal(mr_propose(mrc_node(c, 2), GROUP, 1000 + (uint64_t)i, cmd,
                                    strlen(cmd), "A", 1, 0),
                         MR_OK);
        snprintf(cmd, sizeof cmd, "sideB-%d", i);
        assert_int_equal(mr_propose(mrc_node(c, 3), GROUP, 2000 + (uint64_t)i, cmd,
                                    strlen(cmd), "B", 1, 0),
                         MR_OK);
    }
    mrc_run(c, 200);
    if (mrc_check(c, err, sizeof err) != 0)
        fail_msg("%s", err);
    mrc_free(c);
}

/*
 * The same guess, corrected by the entry in the log before it commits.  Node 1
 * guessed node 4 for replica 4 as above; node 2, leader of {2, 3}, proposes
 * add_voter(node 5) under replica 4, which reaches node 1's log but not its
 * commit (node 1's answers are lost, node 3 is cut off).  Node 1 then wins an
 * election with node 3 and commits the entry itself: the core addresses
 * replica 4 in the Ready that hands the entry out committed, before the layer
 * applies it, so the map must already say node 5.
 */
static void test_an_appended_change_corrects_a_guessed_binding(void **state)
{
    struct mrc_options o;
    struct mrc_cluster *c;
    struct mr_group_status st;
    raft_index last;
    (void)state;

    memset(&o, 0, sizeof o);
    o.n_nodes = 5;
    o.seed = 11;
    c = mrc_new(&o);
    assert_non_null(c);
    guess_node4(c, false);
    assert_int_equal(mrc_leader(c, GROUP, NULL), 2);

    /* node 1 catches up with node 2 (its own entry is replaced), then reaches
     * node 2 no more while node 2 still reaches it; node 3 is cut off from node 2 */
    mrc_partition(c, 1, 2, false);
    mrc_run(c, 30);
    assert_int_equal(mrc_leader(c, GROUP, NULL), 2);
    mrc_partition(c, 2, 3, true);
    mrc_block(c, 1, 2, true);
    assert_int_equal(mr_group_status(mrc_node(c, 2), GROUP, &st), MR_OK);
    last = st.last_index;
    assert_int_equal(mr_propose_conf_change(mrc_node(c, 2), GROUP, 12, MR_CHANGE_ADD_VOTER, 5,
                                            "add5", 4, false, NULL, 0, 1000),
                     MR_OK);
    for (int t = 0; t < 40; t++) {
        mrc_tick(c);
        assert_int_equal(mr_group_status(mrc_node(c, 1), GROUP, &st), MR_OK);
        if (st.last_index > last && st.leader_node == 2)
            break;
    }
    assert_true(st.last_index > last);
    assert_int_equal(mr_group_status(mrc_node(c, 2), GROUP, &st), MR_OK);
    assert_true(st.commit <= last); /* node 2 cannot commit it */

    /* node 2 is cut off for good; node 1 and node 3 elect node 1 */
    mrc_block(c, 2, 1, true);
    mrc_partition(c, 1, 3, false);
    mrc_partition(c, 1, 4, false);
    mrc_partition(c, 1, 5, false);
    mrc_run(c, 100);
    assert_int_equal(mr_group_status(mrc_node(c, 1), GROUP, &st), MR_OK);
    assert_true(mr_role_name(&st)[0] == 'l');
    assert_true(mrc_node_in(st.voters, st.n_voters, 5));
    assert_false(mrc_node_in(st.voters, st.n_voters, 4));
    /* node 4 was never added: nothing of the group's reached it */
    assert_int_equal(mr_group_status(mrc_node(c, 4), GROUP, &st), MR_ENOGROUP);
    assert_int_equal(mr_group_status(mrc_node(c, 5), GROUP, &st), MR_OK);
    mrc_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_snapshot_corrects_a_guessed_binding),
        cmocka_unit_test(test_a_corrected_node_asks_no_outsider_for_votes),
        cmocka_unit_test(test_quorums_overlap_after_a_snapshot),
        cmocka_unit_test(test_an_appended_change_corrects_a_guessed_binding),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
