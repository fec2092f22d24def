/*
 * test_mr_lifecycle.c — lazy creation of replicas, group removal (waiters fail with
 * "raft group deleted", tombstones persisted, stale messages ignored, the id is
 * refused afterwards), membership changes by node id (new replica ids, removal
 * tombstones, re-adding a node), conf changes proposed on a follower, lazy
 * creation by vote requests, the creator's members added by whichever replica
 * leads.  Replicas that missed their removal or that no leader
 * reached: test_mr_stray_replicas.c; the verdicts on membership changes (refused,
 * final, unknown): test_mr_conf_verdicts.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "mr_cluster.h"

static void test_lazy_creation_and_refusals(void **state)
{
    struct mrc_cluster *c = mrc_new_nodes(3, 31);
    struct mr_group_status st;
    struct mr_message m;
    struct mr_envelope env;
    struct mr_counters before, after;
    (void)state;
    /* An APPEND for an unknown group addressed to replica 4 of node 2 creates it. */
    memset(&m, 0, sizeof m);
    m.group = 99;
    m.msg.type = RAFT_MSG_APPEND;
    m.msg.from = 1;
    m.msg.to = 4;
    m.msg.term = 1;
    memset(&env, 0, sizeof env);
    env.from_node = 1;
    env.to_node = 2;
    env.messages = &m;
    env.n_messages = 1;
    assert_int_equal(mr_receive(mrc_node(c, 2), &env), MR_OK);
    assert_true(mr_group_exists(mrc_node(c, 2), 99));
    mrc_settle(c);
    assert_true(mrc_stored_group(c, 2, 99));
    /* A vote request creates it too: a voter whose replica no leader created yet
     * may be needed for a quorum (docs/sim-findings.md, finding 16). */
    m.group = 101;
    m.msg.type = RAFT_MSG_PREVOTE;
    assert_int_equal(mr_receive(mrc_node(c, 2), &env), MR_OK);
    assert_true(mr_group_exists(mrc_node(c, 2), 101));
    /* An answer or a proposal does not create anything. */
    m.group = 100;
    m.msg.type = RAFT_MSG_VOTE_RESP;
    mr_get_counters(mrc_node(c, 2), &before);
    assert_int_equal(mr_receive(mrc_node(c, 2), &env), MR_OK);
    m.msg.type = RAFT_MSG_PROPOSE;
    assert_int_equal(mr_receive(mrc_node(c, 2), &env), MR_OK);
    mr_get_counters(mrc_node(c, 2), &after);
    assert_false(mr_group_exists(mrc_node(c, 2), 100));
    assert_int_equal(after.dropped, before.dropped + 2);
    /* Envelopes from node 0 or from itself are refused; garbage types counted. */
    env.from_node = 0;
    assert_int_equal(mr_receive(mrc_node(c, 2), &env), MR_EINVAL);
    env.from_node = 2;
    assert_int_equal(mr_receive(mrc_node(c, 2), &env), MR_EINVAL);
    env.from_node = 1;
    m.msg.type = 200;
    assert_int_equal(mr_receive(mrc_node(c, 2), &env), MR_OK);
    mr_get_counters(mrc_node(c, 2), &after);
    assert_int_equal(after.malformed, before.malformed + 1);
    /* No leader ever talks to group 101's replica: after two election timeouts it
     * stops costing ticks (its probe to node 1, which knows nothing of the group,
     * goes unanswered); a leader's message would wake it. */
    mrc_run(c, 25);
    assert_int_equal(mr_group_status(mrc_node(c, 2), 101, &st), MR_OK);
    assert_true(st.quiesced);
    assert_true(mr_group_exists(mrc_node(c, 2), 101));
    mrc_free(c);
}

static void test_remove_group(void **state)
{
    struct mrc_cluster *c = mrc_new_nodes(3, 32);
    mr_node_id members[3] = {1, 2, 3};
    struct mr_completion rm, waiting;
    struct mr_message m;
    raft_id min;
    (void)state;
    assert_int_equal(mr_create_group(mrc_node(c, 1), 5, members, 3, 1), MR_OK);
    mrc_run(c, 30);
    /* A follower's proposal is waiting (its node is cut off) when the removal commits. */
    mrc_partition(c, 3, 1, true);
    mrc_partition(c, 3, 2, true);
    assert_int_equal(mr_propose(mrc_node(c, 3), 5, 7, "late", 4, "x", 1, 1000), MR_OK);
    assert_int_equal(mr_remove_group(mrc_node(c, 2), 5, 8, 100), MR_OK);
    mrc_run(c, 10);
    assert_true(mrc_completion(c, 2, 8, &rm));
    assert_int_equal(rm.result, MR_OK);
    assert_true(rm.index > 0);
    assert_false(mr_group_exists(mrc_node(c, 1), 5));
    assert_false(mr_group_exists(mrc_node(c, 2), 5));
    assert_true(mrc_stored_tombstone(c, 1, 5, &min));
    assert_true(min == UINT64_MAX);
    assert_false(mrc_stored_group(c, 1, 5));
    mrc_heal_all(c);
    mrc_run(c, 40);
    assert_false(mr_group_exists(mrc_node(c, 3), 5));
    assert_true(mrc_completion(c, 3, 7, &waiting));
    assert_int_equal(waiting.result, MR_EGROUP_DELETED);
    assert_string_equal(mr_strerror(waiting.result), "raft group deleted");
    assert_int_equal(mrc_completion_count(c, 3, 7), 1);
    /* Every member recorded group_removed at the same index. */
    for (mr_node_id n = 1; n <= 3; n++) {
        size_t found = 0;
        for (size_t i = 0; i < mrc_event_count(c, n); i++) {
            const struct mrc_event *e = mrc_event_at(c, n, i);
            if (e->type == MR_EVENT_GROUP_REMOVED && e->group == 5) {
                found++;
                assert_int_equal(e->index, rm.index);
            }
        }
        assert_int_equal(found, 1);
    }
    /* A stale message cannot bring it back, and the id is refused — also after a
     * restart (tombstones are persisted). */
    mrc_crash(c, 1);
    assert_int_equal(mrc_restart(c, 1), MR_OK);
    memset(&m, 0, sizeof m);
    m.group = 5;
    m.msg.type = RAFT_MSG_APPEND;
    m.msg.from = 2;
    m.msg.to = 1;
    m.msg.term = 50;
    assert_int_equal(mrc_receive_one(c, 2, 1, &m), MR_OK);
    assert_false(mr_group_exists(mrc_node(c, 1), 5));
    assert_true(mr_group_tombstoned(mrc_node(c, 1), 5));
    assert_int_equal(mr_create_group(mrc_node(c, 1), 5, members, 3, 9), MR_EEXIST);
    assert_int_equal(mr_propose(mrc_node(c, 1), 5, 10, "a", 1, "b", 1, 10), MR_ENOGROUP);
    assert_int_equal(mrc_check(c, NULL, 0), 0);
    mrc_free(c);
}

static void test_removal_reaches_a_briefly_cut_off_quiesced_member(void **state)
{
    struct mrc_cluster *c = mrc_new_nodes(3, 35);
    mr_node_id members[3] = {1, 2, 3};
    struct mr_completion rm;
    struct mr_group_status st;
    (void)state;
    assert_int_equal(mr_create_group(mrc_node(c, 1), 4, members, 3, 1), MR_OK);
    mrc_run(c, 30);
    assert_int_equal(mr_group_status(mrc_node(c, 3), 4, &st), MR_OK);
    assert_true(st.quiesced);
    /* Cut off for less than an election timeout: node 3 never suspects anything. */
    mrc_partition(c, 3, 1, true);
    mrc_partition(c, 3, 2, true);
    assert_int_equal(mr_remove_group(mrc_node(c, 1), 4, 2, 100), MR_OK);
    mrc_run(c, 5);
    assert_true(mrc_completion(c, 1, 2, &rm));
    assert_int_equal(rm.result, MR_OK);
    assert_true(mr_group_exists(mrc_node(c, 3), 4));
    mrc_heal_all(c);
    mrc_run(c, 10);
    /* The repeated removal notices reach it: no request needed. */
    assert_false(mr_group_exists(mrc_node(c, 3), 4));
    assert_true(mrc_stored_tombstone(c, 3, 4, NULL));
    {
        bool found = false;
        for (size_t i = 0; i < mrc_event_count(c, 3); i++) {
            const struct mrc_event *e = mrc_event_at(c, 3, i);
            if (e->type == MR_EVENT_GROUP_REMOVED && e->group == 4) {
                found = true;
                assert_int_equal(e->index, rm.index);
            }
        }
        assert_true(found);
    }
    mrc_free(c);
}

static void test_membership_by_node_id(void **state)
{
    struct mrc_cluster *c = mrc_new_nodes(4, 33);
    mr_node_id members[3] = {1, 2, 3};
    struct mr_completion comp;
    struct mr_group_status st;
    raft_id old_replica, min;
    (void)state;
    assert_int_equal(mr_create_group(mrc_node(c, 1), 3, members, 3, 1), MR_OK);
    mrc_run(c, 30);
    /* Add node 4 from a follower (forwarded as a request entry). */
    assert_int_equal(mr_propose_conf_change(mrc_node(c, 2), 3, 2, MR_CHANGE_ADD_VOTER, 4,
                                            "add4", 4, false, "p", 1, 200),
                     MR_OK);
    mrc_run(c, 20);
    assert_true(mrc_completion(c, 2, 2, &comp));
    assert_int_equal(comp.result, MR_OK);
    assert_int_equal(mr_group_status(mrc_node(c, 4), 3, &st), MR_OK);
    assert_int_equal(st.replica_id, 4);
    assert_int_equal(st.n_voters, 4);
    old_replica = st.replica_id;
    /* Same command id again: no second change, first index returned. */
    assert_int_equal(mr_propose_conf_change(mrc_node(c, 1), 3, 3, MR_CHANGE_ADD_VOTER, 4,
                                            "add4", 4, false, "p", 1, 200),
                     MR_OK);
    mrc_run(c, 5);
    assert_true(mrc_completion(c, 1, 3, &comp));
    assert_int_equal(comp.result, MR_OK);
    /* Adding an existing voter under another id is refused. */
    assert_int_equal(mrc_change(c, 1, 3, 4, MR_CHANGE_ADD_VOTER, 4, "again", 5), MR_EBADCONF);
    /* Remove node 4: it drops its replica and keeps a tombstone. */
    assert_int_equal(mrc_change(c, 1, 3, 5, MR_CHANGE_REMOVE_VOTER, 4, "rm4", 20), MR_OK);
    assert_false(mr_group_exists(mrc_node(c, 4), 3));
    assert_true(mrc_stored_tombstone(c, 4, 3, &min));
    assert_int_equal(min, old_replica + 1);
    /* Re-added: a new replica id, the group comes back on node 4. */
    assert_int_equal(mrc_change(c, 3, 3, 6, MR_CHANGE_ADD_LEARNER, 4, "learn4", 30), MR_OK);
    assert_int_equal(mr_group_status(mrc_node(c, 4), 3, &st), MR_OK);
    assert_true(st.replica_id > old_replica);
    assert_true(st.is_learner);
    assert_string_equal(mr_role_name(&st), "learner");
    /* membership_change events on the members, with node id and change type. */
    {
        size_t seen = 0;
        for (size_t i = 0; i < mrc_event_count(c, 1); i++) {
            const struct mrc_event *e = mrc_event_at(c, 1, i);
            if (e->type == MR_EVENT_MEMBERSHIP_CHANGE && e->group == 3) {
                seen++;
                assert_int_equal(e->node_id, 4);
            }
        }
        assert_int_equal(seen, 3);
    }
    assert_int_equal(mrc_check(c, NULL, 0), 0);
    mrc_free(c);
}

static void test_conf_changes_in_order_from_a_follower(void **state)
{
    struct mrc_cluster *c = mrc_new_nodes(4, 34);
    mr_node_id members[3] = {1, 2, 3};
    struct mr_completion a, b, bad;
    (void)state;
    assert_int_equal(mr_create_group(mrc_node(c, 1), 6, members, 3, 1), MR_OK);
    mrc_run(c, 30);
    /* Back to back on a follower: the removal is validated after the addition. */
    assert_int_equal(mr_propose_conf_change(mrc_node(c, 3), 6, 2, MR_CHANGE_ADD_VOTER, 4, "a4",
                                            2, false, NULL, 0, 300),
                     MR_OK);
    assert_int_equal(mr_propose_conf_change(mrc_node(c, 3), 6, 3, MR_CHANGE_REMOVE_VOTER, 4,
                                            "r4", 2, false, NULL, 0, 300),
                     MR_OK);
    /* Meaningless on the follower's own view, under an id generated for the call (no
     * copy of it can be anywhere else): refused without a round trip. */
    assert_int_equal(mr_propose_conf_change(mrc_node(c, 2), 6, 4, MR_CHANGE_ADD_VOTER, 1, "x",
                                            1, true, NULL, 0, 300),
                     MR_OK);
    mrc_settle(c);
    assert_true(mrc_completion(c, 2, 4, &bad));
    assert_int_equal(bad.result, MR_EBADCONF);
    mrc_run(c, 40);
    assert_true(mrc_completion(c, 3, 2, &a));
    assert_true(mrc_completion(c, 3, 3, &b));
    assert_int_equal(a.result, MR_OK);
    assert_int_equal(b.result, MR_OK);
    assert_true(b.index > a.index);
    assert_false(mr_group_exists(mrc_node(c, 4), 6));
    assert_int_equal(mrc_check(c, NULL, 0), 0);
    mrc_free(c);
}

/* max_groups bounds the replicas a node holds, however they would come: created
 * here (MR_EFULL) or by a message for a group this node is a member of (dropped
 * and counted), and a removal makes room again. */
static void test_max_groups_bounds_the_replicas_of_a_node(void **state)
{
    struct mrc_options o;
    struct mrc_cluster *c;
    mr_node_id both[2] = {1, 2}, two[1] = {2};
    struct mr_counters k;
    (void)state;
    memset(&o, 0, sizeof o);
    o.n_nodes = 2;
    o.seed = 3;
    o.base.max_groups = 2;
    c = mrc_new(&o);
    assert_non_null(c);
    assert_int_equal(mr_create_group(mrc_node(c, 1), 1, both, 2, 1), MR_OK);
    assert_int_equal(mr_create_group(mrc_node(c, 2), 2, two, 1, 2), MR_OK);
    mrc_run(c, 60);
    assert_true(mr_group_exists(mrc_node(c, 2), 1));
    /* node 2 is full: neither its own nor node 1's new group gets a replica */
    assert_int_equal(mr_create_group(mrc_node(c, 2), 3, two, 1, 3), MR_EFULL);
    assert_int_equal(mr_create_group(mrc_node(c, 1), 4, both, 2, 4), MR_OK);
    mrc_run(c, 60);
    assert_false(mr_group_exists(mrc_node(c, 2), 4));
    mr_get_counters(mrc_node(c, 2), &k);
    assert_true(k.groups_refused > 0);
    /* a removal makes room: group 4 reaches node 2 now */
    assert_int_equal(mr_remove_group(mrc_node(c, 2), 2, 5, 100), MR_OK);
    mrc_run(c, 100);
    assert_false(mr_group_exists(mrc_node(c, 2), 2));
    assert_true(mr_group_exists(mrc_node(c, 2), 4));
    assert_int_equal(mrc_check(c, NULL, 0), 0);
    mrc_free(c);
}

struct cut_arg {
    struct mrc_cluster *c;
    bool cut;
};

/* Cuts node 1 off from the others as soon as it writes the addition of a replica
 * with id 4 (the creator's third addition, of its fourth member). */
static void cut_at_fourth_member(void *arg, mr_node_id node, const struct mr_batch *b)
{
    struct cut_arg *a = arg;
    if (node != 1 || a->cut)
        return;
    for (size_t i = 0; i < b->n_groups; i++)
        for (size_t k = 0; k < b->groups[i].n_entries; k++) {
            const struct raft_entry *e = &b->groups[i].entries[k];
            struct raft_conf_change cc;
            if (e->type == RAFT_ENTRY_CONF_CHANGE &&
                raft_conf_change_decode(e->data, e->len, &cc) == RAFT_OK && cc.replica == 4) {
                for (mr_node_id n = 2; n <= 5; n++)
                    mrc_partition(a->c, 1, n, true);
                a->cut = true;
            }
        }
}

/* A five-member group whose creator loses its leadership (cut off, or crashed)
 * after adding two members: the members still to add are part of the replicated
 * state (the bootstrap entry's), so the new leader adds them.  Before, only the
 * creator knew them, and the group stayed at three members for good. */
static void test_new_leader_adds_the_creators_members(void **state)
{
    int tried = 0;
    (void)state;
    for (uint64_t seed = 1; seed <= 8; seed++) {
        struct mrc_cluster *c = mrc_new_nodes(5, seed);
        mr_node_id members[5] = {1, 2, 3, 4, 5};
        struct mr_group_status st;
        struct cut_arg arg = {c, false};
        mr_node_id leader;
        mrc_set_batch_observer(c, cut_at_fourth_member, &arg);
        assert_int_equal(mr_create_group(mrc_node(c, 1), 9, members, 5, 1), MR_OK);
        mrc_run(c, 2);
        if (!arg.cut) {
            mrc_free(c);
            continue;
        }
        tried++;
        if (seed % 2 == 0) {
            mrc_run(c, 100);
            mrc_heal_all(c);
        } else {
            mrc_crash(c, 1);
            mrc_heal_all(c);
            mrc_run(c, 100);
            assert_int_equal(mrc_restart(c, 1), MR_OK);
        }
        mrc_run(c, 1000);
        leader = mrc_leader(c, 9, NULL);
        assert_true(leader != 0);
        assert_int_equal(mr_group_status(mrc_node(c, leader), 9, &st), MR_OK);
        if (st.n_voters != 5)
            fail_msg("seed %llu: leader node %u has %u voters", (unsigned long long)seed,
                     leader, st.n_voters);
        for (mr_node_id n = 1; n <= 5; n++)
            assert_true(mr_group_exists(mrc_node(c, n), 9));
        assert_int_equal(mrc_check(c, NULL, 0), 0);
        mrc_free(c);
    }
    assert_true(tried >= 4);
}

/* Node 3 asks for a removal that commits while it is cut off, and the members
 * that dropped the group restart before it is back: their restored tombstones
 * knew no removal index, their notices carried 0, and node 3 failed its own
 * committed removal as "raft group deleted" (found by a review). */
static void test_a_removal_is_done_after_the_others_restarted(void **state)
{
    struct mrc_cluster *c = mrc_new_one_group(11);
    struct mr_completion comp;
    raft_id min;
    (void)state;
    mrc_block(c, 1, 3, true);
    mrc_block(c, 2, 3, true);
    assert_int_equal(mr_remove_group(mrc_node(c, 3), 1, 77, 0), MR_OK);
    mrc_run(c, 150); /* past the ten election timeouts of notices */
    assert_true(mrc_stored_tombstone(c, 1, 1, &min));
    assert_true(mrc_stored_tombstone(c, 2, 1, &min));
    assert_true(mrc_stored_group(c, 3, 1));
    assert_false(mrc_completion(c, 3, 77, &comp));
    for (mr_node_id n = 1; n <= 2; n++) {
        mrc_crash(c, n);
        assert_int_equal(mrc_restart(c, n), MR_OK);
    }
    mrc_heal_all(c);
    mrc_run(c, 100);
    assert_false(mrc_stored_group(c, 3, 1));
    assert_true(mrc_completion(c, 3, 77, &comp));
    assert_int_equal(comp.result, MR_OK);
    assert_true(comp.index > 0);
    assert_int_equal(mrc_check(c, NULL, 0), 0);
    mrc_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_new_leader_adds_the_creators_members),
        cmocka_unit_test(test_max_groups_bounds_the_replicas_of_a_node),
        cmocka_unit_test(test_lazy_creation_and_refusals),
        cmocka_unit_test(test_remove_group),
        cmocka_unit_test(test_removal_reaches_a_briefly_cut_off_quiesced_member),
        cmocka_unit_test(test_a_removal_is_done_after_the_others_restarted),
        cmocka_unit_test(test_membership_by_node_id),
        cmocka_unit_test(test_conf_changes_in_order_from_a_follower),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
