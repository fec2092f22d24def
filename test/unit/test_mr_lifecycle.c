/*
 * test_mr_lifecycle.c — lazy creation of replicas, group removal (waiters fail with
 * "raft group deleted", tombstones persisted, stale messages ignored, the id is
 * refused afterwards), membership changes by node id (new replica ids, removal
 * tombstones, re-adding a node), conf changes proposed on a follower, lazy
 * creation by vote requests.  Replicas that missed their removal or that no leader
 * reached: test_mr_stray_replicas.c.
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

static size_t membership_events(struct mrc_cluster *c, mr_node_id node, mr_group_id group)
{
    size_t changes = 0;
    for (size_t i = 0; i < mrc_event_count(c, node); i++) {
        const struct mrc_event *e = mrc_event_at(c, node, i);
        changes += e->type == MR_EVENT_MEMBERSHIP_CHANGE && e->group == group;
    }
    return changes;
}

/* Group g on nodes 1-3, led by node 1. */
static void group_led_by_node_1(struct mrc_cluster *c, mr_group_id g)
{
    mr_node_id members[3] = {1, 2, 3};
    assert_int_equal(mr_create_group(mrc_node(c, 1), g, members, 3, 1), MR_OK);
    mrc_run(c, 30);
    assert_int_equal(mrc_leader(c, g, NULL), 1);
}

/* Group g on nodes 1-3, led by node 1, which adds node 4 (token 2, id "a4") while
 * node 2 asks for the same (token 3, id "b4"). */
static void race_for_node_4(struct mrc_cluster *c, mr_group_id g)
{
    group_led_by_node_1(c, g);
    assert_int_equal(mr_propose_conf_change(mrc_node(c, 1), g, 2, MR_CHANGE_ADD_VOTER, 4, "a4",
                                            2, false, NULL, 0, 300),
                     MR_OK);
    assert_int_equal(mr_propose_conf_change(mrc_node(c, 2), g, 3, MR_CHANGE_ADD_VOTER, 4, "b4",
                                            2, false, NULL, 0, 300),
                     MR_OK);
}

/* Cuts node `on` off from nodes 1-4. */
static void cut_off(struct mrc_cluster *c, mr_node_id on)
{
    for (mr_node_id n = 1; n <= 4; n++)
        if (n != on)
            mrc_partition(c, on, n, true);
}

/* Asks node `on`, cut off, to add node 4 to group g under the caller's id `id`; checks
 * that the request waits while `on` is cut off, then heals and returns its answer. */
static struct mr_completion add_4_while_cut_off(struct mrc_cluster *c, mr_node_id on,
                                                mr_group_id g, uint64_t token, const char *id)
{
    struct mr_completion done;
    assert_int_equal(mr_propose_conf_change(mrc_node(c, on), g, token, MR_CHANGE_ADD_VOTER, 4,
                                            id, strlen(id), false, NULL, 0, 500),
                     MR_OK);
    mrc_run(c, 5);
    assert_false(mrc_completion(c, on, token, &done));
    mrc_heal_all(c);
    mrc_run(c, 80);
    assert_true(mrc_completion(c, on, token, &done));
    return done;
}

/* A follower's request that was valid in its own view but not in the leader's,
 * which is newer: node 1 adds node 4 while node 2 asks for the same.  The leader
 * takes node 2's request up when it applies it, finds node 4 a voter already and
 * answers in the log (a kind-5 entry): node 2 fails the request with MR_EBADCONF
 * as soon as it applies that answer, long before its next retry would have checked
 * it again (proposal_retry_ticks, 20 ticks here).  Nothing else commits for it,
 * later either. */
static void test_a_request_the_leader_refuses_fails_at_once(void **state)
{
    struct mrc_cluster *c = mrc_new_nodes(4, 35);
    struct mr_completion a, b;
    uint32_t ticks = 0;
    (void)state;
    race_for_node_4(c, 7);
    while (!mrc_completion(c, 2, 3, &b) && ticks < 300) {
        mrc_tick(c);
        ticks++;
    }
    assert_true(mrc_completion(c, 1, 2, &a));
    assert_int_equal(a.result, MR_OK);
    assert_int_equal(b.result, MR_EBADCONF);
    assert_true(ticks < 10);
    mrc_run(c, 60);
    assert_int_equal(mrc_completion_count(c, 2, 3), 1);
    assert_int_equal(membership_events(c, 2, 7), 1);
    assert_int_equal(membership_events(c, 1, 7), 1);
    assert_int_equal(mrc_check(c, NULL, 0), 0);
    mrc_free(c);
}

/* The leader's refusal is the id's final answer (SPEC: a call that errors changes
 * nothing): it becomes the id's dedup record on every member.  Once node 4 has been
 * removed, asking again under the same id fails the same way, at once, where a new
 * id commits; a command submitted under that id is not applied either. */
static void test_a_refused_command_id_keeps_its_verdict(void **state)
{
    struct mrc_cluster *c = mrc_new_nodes(4, 36);
    struct mr_completion a, b, r, again, cmd;
    (void)state;
    race_for_node_4(c, 8);
    mrc_run(c, 10);
    assert_true(mrc_completion(c, 1, 2, &a));
    assert_true(mrc_completion(c, 2, 3, &b));
    assert_int_equal(b.result, MR_EBADCONF);
    for (mr_node_id n = 1; n <= 3; n++)
        assert_true(mrc_has_dedup(c, n, 8, "b4", 2));
    assert_int_equal(mrc_change(c, 1, 8, 4, MR_CHANGE_REMOVE_VOTER, 4, "r4", 20), MR_OK);
    assert_true(mrc_completion(c, 1, 4, &r));
    assert_int_equal(mrc_change(c, 2, 8, 5, MR_CHANGE_ADD_VOTER, 4, "b4", 1), MR_EBADCONF);
    assert_int_equal(mrc_change(c, 2, 8, 6, MR_CHANGE_ADD_VOTER, 4, "b5", 20), MR_OK);
    assert_true(mrc_completion(c, 2, 6, &again));
    assert_true(again.index > r.index);
    assert_int_equal(mr_propose(mrc_node(c, 1), 8, 7, "b4", 2, "x", 1, 300), MR_OK);
    mrc_run(c, 10);
    assert_true(mrc_completion(c, 1, 7, &cmd));
    assert_int_equal(cmd.result, MR_EBADCONF);
    assert_int_equal(mrc_command_events(c, 1, 8, "b4", 2), 0);
    assert_int_equal(membership_events(c, 3, 8), 3);
    assert_int_equal(mrc_check(c, NULL, 0), 0);
    mrc_free(c);
}

/* A requester that has forwarded a request never fails it on its own view, since a
 * copy may still be in flight: it forwards again and the leader's answer, through
 * the log, fails it.  Node 2, cut off, asks to add node 4 while node 1 adds it; its
 * copy is lost.  Healed, node 2 applies node 1's change, so its own view now finds
 * the request invalid; at its retry it still forwards, and fails on the leader's
 * refusal, which every member records as the id's verdict. */
static void test_a_forwarded_request_fails_only_through_the_log(void **state)
{
    struct mrc_cluster *c = mrc_new_nodes(4, 37);
    struct mr_completion b;
    (void)state;
    group_led_by_node_1(c, 9);
    cut_off(c, 2);
    assert_int_equal(mrc_change(c, 1, 9, 2, MR_CHANGE_ADD_VOTER, 4, "a4", 20), MR_OK);
    b = add_4_while_cut_off(c, 2, 9, 3, "b4");
    assert_int_equal(b.result, MR_EBADCONF);
    for (mr_node_id n = 1; n <= 3; n++)
        assert_true(mrc_has_dedup(c, n, 9, "b4", 2));
    assert_int_equal(membership_events(c, 2, 9), 1);
    assert_int_equal(mrc_check(c, NULL, 0), 0);
    mrc_free(c);
}

/* A request under a caller's id is never failed on its node's own view, even before
 * that node ever sent it: the caller may have asked under the id before (a call that
 * timed out, on this node or another), and that request could still commit, so only
 * the leader may refuse it.  Node 3, cut off, still sees node 4 as a voter after node
 * 1 removed it; a caller's add_voter of node 4 there waits instead of failing as
 * invalid, and once healed commits under the leader's view.  Under an id generated
 * for the call, the same request on the same stale view fails at once. */
static void test_a_callers_id_is_refused_only_by_the_leader(void **state)
{
    struct mrc_cluster *c = mrc_new_nodes(4, 38);
    struct mr_completion x, gen;
    (void)state;
    group_led_by_node_1(c, 10);
    assert_int_equal(mrc_change(c, 1, 10, 2, MR_CHANGE_ADD_VOTER, 4, "a4", 20), MR_OK);
    cut_off(c, 3);
    assert_int_equal(mrc_change(c, 1, 10, 3, MR_CHANGE_REMOVE_VOTER, 4, "r4", 20), MR_OK);
    assert_int_equal(mr_propose_conf_change(mrc_node(c, 3), 10, 4, MR_CHANGE_ADD_VOTER, 4,
                                            "generated", 9, true, NULL, 0, 500),
                     MR_OK);
    mrc_run(c, 1);
    assert_true(mrc_completion(c, 3, 4, &gen));
    assert_int_equal(gen.result, MR_EBADCONF);
    x = add_4_while_cut_off(c, 3, 10, 5, "x");
    assert_int_equal(x.result, MR_OK);
    assert_int_equal(membership_events(c, 3, 10), 3);
    assert_int_equal(membership_events(c, 1, 10), 3);
    assert_true(mr_group_exists(mrc_node(c, 4), 10));
    assert_int_equal(mrc_check(c, NULL, 0), 0);
    mrc_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lazy_creation_and_refusals),
        cmocka_unit_test(test_remove_group),
        cmocka_unit_test(test_removal_reaches_a_briefly_cut_off_quiesced_member),
        cmocka_unit_test(test_membership_by_node_id),
        cmocka_unit_test(test_conf_changes_in_order_from_a_follower),
        cmocka_unit_test(test_a_request_the_leader_refuses_fails_at_once),
        cmocka_unit_test(test_a_refused_command_id_keeps_its_verdict),
        cmocka_unit_test(test_a_forwarded_request_fails_only_through_the_log),
        cmocka_unit_test(test_a_callers_id_is_refused_only_by_the_leader),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
