/*
 * test_mr_stray_replicas.c — replicas outside their group's configuration: one
 * removed while it was cut off (a "zombie", told by the members it asks for votes,
 * also after they restarted), a lagging member that must not take a new replica
 * for a removed one, a voter that no leader reached (created by a vote request:
 * docs/sim-findings.md, finding 16), and a replica no leader reached that asks
 * whether it was removed before it sleeps, and again while it sleeps.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "mr_cluster.h"

/* Creates group g on nodes 1, 2 and 3 of c (which may have more nodes) and checks
 * that node 1 leads it; returns the leader's term. */
static raft_term group_led_by_node_1(struct mrc_cluster *c, mr_group_id g)
{
    mr_node_id members[3] = {1, 2, 3};
    raft_term term;
    assert_int_equal(mr_create_group(mrc_node(c, 1), g, members, 3, 1), MR_OK);
    mrc_run(c, 30);
    assert_int_equal(mrc_leader(c, g, &term), 1);
    return term;
}

/* Group 5 on nodes 1, 2 and 3, led by node 1; node 3 is cut off, and removed with
 * node 1's request.  Its replica missed the removal: a zombie.  Returns the
 * cluster, the zombie's id and the leader's term. */
static struct mrc_cluster *zombie_on_node_3(uint64_t seed, raft_id *zombie, raft_term *term)
{
    struct mrc_cluster *c = mrc_new_nodes(3, seed);
    struct mr_group_status st;
    *term = group_led_by_node_1(c, 5);
    assert_int_equal(mr_group_status(mrc_node(c, 3), 5, &st), MR_OK);
    *zombie = st.replica_id;
    mrc_partition(c, 3, 1, true);
    mrc_partition(c, 3, 2, true);
    assert_int_equal(mrc_change(c, 1, 5, 2, MR_CHANGE_REMOVE_VOTER, 3, "rm3", 10), MR_OK);
    assert_true(mr_group_exists(mrc_node(c, 3), 5)); /* it missed it */
    return c;
}

/* After the healing: node 3 dropped the zombie, with a tombstone above its id. */
static void assert_zombie_dropped(struct mrc_cluster *c, raft_id zombie, uint32_t ticks)
{
    raft_id min;
    mrc_heal_all(c);
    mrc_run(c, ticks);
    assert_false(mr_group_exists(mrc_node(c, 3), 5));
    assert_true(mrc_stored_tombstone(c, 3, 5, &min));
    assert_int_equal(min, zombie + 1);
}

/* A replica removed while it was cut off never hears of its removal: the leader no
 * longer talks to it.  Its vote requests (every election timeout) tell the members
 * it is gone — a change they applied named its id — and they answer so, and its
 * node drops it with a tombstone, as if it had applied its own removal; the group
 * is not disturbed, and the node can be added again. */
static void test_a_replica_that_missed_its_removal_is_told(void **state)
{
    struct mr_group_status st;
    raft_id zombie;
    raft_term term, later;
    struct mrc_cluster *c = zombie_on_node_3(35, &zombie, &term);
    (void)state;
    assert_zombie_dropped(c, zombie, 60);
    assert_int_equal(mrc_leader(c, 5, &later), 1);
    assert_true(later == term);
    /* Its group_removed event says up to where the others had applied, the removal
     * at least: the entries it never recorded end there (it had index 0 before). */
    {
        struct mr_completion rm;
        const struct mrc_event *e = NULL;
        assert_true(mrc_completion(c, 1, 2, &rm));
        for (size_t i = 0; i < mrc_event_count(c, 3); i++)
            if (mrc_event_at(c, 3, i)->type == MR_EVENT_GROUP_REMOVED)
                e = mrc_event_at(c, 3, i);
        assert_non_null(e);
        assert_true(rm.index > 0 && e->index >= rm.index);
    }
    /* Added again: a new replica, which the tombstone lets in. */
    assert_int_equal(mrc_change(c, 2, 5, 3, MR_CHANGE_ADD_VOTER, 3, "add3", 30), MR_OK);
    assert_int_equal(mr_group_status(mrc_node(c, 3), 5, &st), MR_OK);
    assert_true(st.replica_id > zombie);
    assert_int_equal(mrc_check(c, NULL, 0), 0);
    mrc_free(c);
}

/* The same after both remaining members restarted, and with the highest id the
 * group ever had: no member holds a higher id, so only what they applied (the
 * removal, conf_seen in their meta rows) tells them replica 3 was removed. */
static void test_a_replica_that_missed_its_removal_is_told_after_restarts(void **state)
{
    raft_id zombie;
    raft_term term;
    struct mrc_cluster *c = zombie_on_node_3(36, &zombie, &term);
    (void)state;
    mrc_settle(c);
    mrc_crash(c, 1);
    mrc_crash(c, 2);
    assert_int_equal(mrc_restart(c, 1), MR_OK);
    assert_int_equal(mrc_restart(c, 2), MR_OK);
    assert_zombie_dropped(c, zombie, 100);
    assert_int_equal(mrc_check(c, NULL, 0), 0);
    mrc_free(c);
}

/* A member that has not applied a replica's addition must not take that replica
 * for a removed one.  Node 3 is cut off while node 4 joins (replica 4); then node 4
 * alone is cut off from the leader and asks node 3 for votes.  Node 3 learns
 * replica 4's node from those requests and restarts with that map (in which the id
 * counter of the first attempt, docs/sim-findings.md finding 13, counted replica 4
 * as allocated): it still has replica 4 as a possible member, and node 4 keeps it. */
static void test_a_lagging_member_does_not_take_a_new_replica_for_removed(void **state)
{
    struct mrc_cluster *c = mrc_new_nodes(4, 37);
    struct mr_group_status st;
    (void)state;
    (void)group_led_by_node_1(c, 5);
    for (mr_node_id other = 1; other <= 4; other++)
        if (other != 3)
            mrc_partition(c, 3, other, true);
    assert_int_equal(mrc_change(c, 1, 5, 2, MR_CHANGE_ADD_VOTER, 4, "add4", 30), MR_OK);
    assert_int_equal(mr_group_status(mrc_node(c, 4), 5, &st), MR_OK);
    assert_int_equal(st.replica_id, 4);
    /* Node 4 hears only node 3 now: its replica campaigns there. */
    mrc_partition(c, 3, 4, false);
    mrc_partition(c, 4, 1, true);
    mrc_partition(c, 4, 2, true);
    mrc_run(c, 60);
    mrc_crash(c, 3);
    assert_int_equal(mrc_restart(c, 3), MR_OK);
    mrc_run(c, 60);
    assert_true(mr_group_exists(mrc_node(c, 4), 5));
    mrc_heal_all(c);
    mrc_run(c, 60);
    assert_true(mr_group_exists(mrc_node(c, 4), 5));
    assert_true(mr_group_exists(mrc_node(c, 3), 5));
    assert_int_equal(mr_group_status(mrc_node(c, 3), 5, &st), MR_OK);
    assert_int_equal(st.n_voters, 4);
    assert_int_equal(mrc_check(c, NULL, 0), 0);
    mrc_free(c);
}

/* A group created while its other members are down: its creator adds node 2 alone
 * (a configuration of one), then needs node 2 for every quorum, and steps down
 * when it does not hear it.  No leader ever reached node 2, so node 2 has no
 * replica; its vote requests must create one, or the group never gets a leader
 * again (docs/sim-findings.md, finding 16). */
static void test_a_voter_without_a_replica_yet_gets_one_from_a_vote_request(void **state)
{
    struct mrc_cluster *c = mrc_new_nodes(3, 38);
    mr_node_id members[3] = {1, 2, 3};
    struct mr_group_status st;
    raft_term term;
    (void)state;
    mrc_crash(c, 2);
    mrc_crash(c, 3);
    assert_int_equal(mr_create_group(mrc_node(c, 1), 5, members, 3, 1), MR_OK);
    mrc_run(c, 100);
    assert_int_equal(mr_group_status(mrc_node(c, 1), 5, &st), MR_OK);
    assert_int_equal(st.n_voters, 2); /* node 2 added; node 3 waits for a quorum */
    assert_int_equal(mrc_leader(c, 5, &term), 0);
    assert_int_equal(mrc_restart(c, 2), MR_OK);
    assert_int_equal(mrc_restart(c, 3), MR_OK);
    mrc_run(c, 200);
    assert_int_not_equal(mrc_leader(c, 5, &term), 0);
    for (mr_node_id n = 1; n <= 3; n++) {
        assert_int_equal(mr_group_status(mrc_node(c, n), 5, &st), MR_OK);
        assert_int_equal(st.n_voters, 3);
    }
    assert_int_equal(mrc_check(c, NULL, 0), 0);
    mrc_free(c);
}

/* Node 4 joins group g while cut off, and is removed again (or the group is, with
 * `remove_group`) before any leader reached it.  A vote request node 2 sent while
 * node 4 was a member arrives late, and creates replica 4, which learns nothing
 * more: no leader will ever talk to it.  Returns the cluster, node 4 still cut off
 * from nodes 1, 2 and 3. */
static struct mrc_cluster *unreached_replica_on_node_4(mr_group_id g, bool remove_group)
{
    struct mrc_cluster *c = mrc_new_nodes(4, 40 + g);
    struct mr_group_status st;
    struct mr_message m;
    struct mr_completion comp;
    raft_term term = group_led_by_node_1(c, g);
    for (mr_node_id other = 1; other <= 3; other++)
        mrc_partition(c, 4, other, true);
    assert_int_equal(mrc_change(c, 1, g, 2, MR_CHANGE_ADD_VOTER, 4, "add4", 30), MR_OK);
    if (remove_group) {
        assert_int_equal(mr_remove_group(mrc_node(c, 1), g, 3, 200), MR_OK);
        mrc_run(c, 30);
        assert_true(mrc_completion(c, 1, 3, &comp));
        assert_int_equal(comp.result, MR_OK);
    } else {
        assert_int_equal(mrc_change(c, 1, g, 3, MR_CHANGE_REMOVE_VOTER, 4, "rm4", 30), MR_OK);
    }
    assert_false(mr_group_exists(mrc_node(c, 4), g));
    memset(&m, 0, sizeof m);
    m.group = g;
    m.msg.type = RAFT_MSG_PREVOTE;
    m.msg.from = 2;
    m.msg.to = 4;
    m.msg.term = term + 1;
    assert_int_equal(mrc_receive_one(c, 2, 4, &m), MR_OK);
    assert_int_equal(mr_group_status(mrc_node(c, 4), g, &st), MR_OK);
    assert_int_equal(st.n_voters, 0);
    return c;
}

/* Node 4 dropped its replica of g, with the tombstone the answer implies. */
static void assert_unreached_dropped(struct mrc_cluster *c, mr_group_id g, bool remove_group)
{
    raft_id min;
    assert_false(mr_group_exists(mrc_node(c, 4), g));
    assert_true(mrc_stored_tombstone(c, 4, g, &min));
    assert_int_equal(min, remove_group ? UINT64_MAX : 5);
    assert_int_equal(mrc_check(c, NULL, 0), 0);
}

/* The replica sleeps after two election timeouts and asks node 2, the one replica
 * it heard from (mr_unreached.c); node 2 answers that it was removed, and node 4
 * drops it. */
static void unreached_replica_is_dropped(mr_group_id g, bool remove_group)
{
    struct mrc_cluster *c = unreached_replica_on_node_4(g, remove_group);
    mrc_heal_all(c);
    mrc_run(c, 60);
    assert_unreached_dropped(c, g, remove_group);
    mrc_free(c);
}

static void test_a_replica_no_leader_reached_asks_and_is_dropped(void **state)
{
    (void)state;
    unreached_replica_is_dropped(5, false);
    unreached_replica_is_dropped(6, true);
}

/* Heartbeat entries node 4 has handed out for node 2: its probes, as node 4 holds
 * no other group. */
static uint64_t probes_to_node_2(struct mrc_cluster *c)
{
    struct mr_peer_counters pc;
    return mr_peer_counters(mrc_node(c, 4), 2, &pc) ? pc.heartbeats : 0;
}

/* The same replica, but node 4 stays cut off, longer than the members' removal
 * notices last (10 election timeouts): its question at falling asleep is lost.  It
 * asks again while it sleeps unreached, after 4, 8, 16, 32 and then every 64
 * election timeouts (10 ticks here), so the answer comes once the partition heals;
 * a quiesced replica costs no tick meanwhile. */
static void asked_again_after_a_lost_answer(mr_group_id g, bool remove_group)
{
    struct mrc_cluster *c = unreached_replica_on_node_4(g, remove_group);
    struct mr_group_status st;
    uint64_t first;
    mrc_run(c, 30); /* asleep after 20 ticks, its question lost */
    assert_int_equal(mr_group_status(mrc_node(c, 4), g, &st), MR_OK);
    assert_true(st.quiesced);
    first = probes_to_node_2(c);
    assert_int_equal(first, 1);
    /* Asked again at +40, +80, +160, +320 and +640 ticks: 5 in 1,240 ticks. */
    mrc_run(c, 1240);
    assert_true(mr_group_exists(mrc_node(c, 4), g));
    assert_int_equal(probes_to_node_2(c) - first, 5);
    /* Then every 640 ticks. */
    mrc_run(c, 1280);
    assert_int_equal(probes_to_node_2(c) - first, 7);
    mrc_heal_all(c);
    mrc_run(c, 650);
    assert_unreached_dropped(c, g, remove_group);
    mrc_free(c);
}

static void test_a_lost_answer_is_asked_for_again(void **state)
{
    (void)state;
    asked_again_after_a_lost_answer(7, false);
    asked_again_after_a_lost_answer(8, true);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_replica_that_missed_its_removal_is_told),
        cmocka_unit_test(test_a_replica_that_missed_its_removal_is_told_after_restarts),
        cmocka_unit_test(test_a_lagging_member_does_not_take_a_new_replica_for_removed),
        cmocka_unit_test(test_a_voter_without_a_replica_yet_gets_one_from_a_vote_request),
        cmocka_unit_test(test_a_replica_no_leader_reached_asks_and_is_dropped),
        cmocka_unit_test(test_a_lost_answer_is_asked_for_again),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
