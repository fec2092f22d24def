/*
 * test_mr_conf_verdicts.c — what a membership change's caller is told, and that it
 * is true: a change the leader refuses is answered through the log, at once and for
 * good (the id keeps its verdict); a caller's id is refused only by the leader, a
 * generated id also by its node's view; a full group takes no new member, even
 * from additions requested on two members at once; a node removed while its
 * requests waited says their outcome is unknown rather than "not a member".
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "mr_cluster.h"

static size_t membership_events(struct mrc_cluster *c, mr_node_id node, mr_group_id group)
{
    return mrc_type_events(c, node, group, MR_EVENT_MEMBERSHIP_CHANGE);
}

/* Node `on` asks for change `type` of `node` in group g under id `id`: the caller's,
 * or one generated for the call. */
static void ask(struct mrc_cluster *c, mr_node_id on, mr_group_id g, uint64_t token, int type,
                mr_node_id node, const char *id, bool id_generated)
{
    assert_int_equal(mr_propose_conf_change(mrc_node(c, on), g, token, type, node, id,
                                            strlen(id), id_generated, NULL, 0, 500),
                     MR_OK);
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
    ask(c, 1, g, 2, MR_CHANGE_ADD_VOTER, 4, "a4", false);
    ask(c, 2, g, 3, MR_CHANGE_ADD_VOTER, 4, "b4", false);
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
    ask(c, on, g, token, MR_CHANGE_ADD_VOTER, 4, id, false);
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
    ask(c, 3, 10, 4, MR_CHANGE_ADD_VOTER, 4, "generated", true);
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

/* Requests waiting on a node whose replica is removed: the group, which that node no
 * longer follows, may still commit what it sent, so they fail with MR_EREMOVED (the
 * outcome is unknown) rather than as "not a member", which a caller would take for a
 * definite failure.  Node 1 removes node 3 while node 3 asks, under a caller's id, to
 * add node 4 and submits a command: both reach the log after the removal, so node 3
 * drops the group first, and both commit on the others. */
static void test_requests_of_a_removed_node_have_an_unknown_outcome(void **state)
{
    struct mrc_cluster *c = mrc_new_nodes(4, 41);
    (void)state;
    group_led_by_node_1(c, 11);
    ask(c, 1, 11, 2, MR_CHANGE_REMOVE_VOTER, 3, "x", false);
    ask(c, 3, 11, 3, MR_CHANGE_ADD_VOTER, 4, "y", false);
    assert_int_equal(mr_propose(mrc_node(c, 3), 11, 4, "c", 1, "p", 1, 500), MR_OK);
    mrc_run(c, 100);
    assert_int_equal(mrc_result(c, 1, 2), MR_OK);
    assert_int_equal(mrc_result(c, 3, 3), MR_EREMOVED);
    assert_int_equal(mrc_result(c, 3, 4), MR_EREMOVED);
    assert_false(mr_group_exists(mrc_node(c, 3), 11));
    assert_int_equal(membership_events(c, 1, 11), 2);
    assert_true(mr_group_exists(mrc_node(c, 4), 11));
    assert_int_equal(mrc_command_events(c, 1, 11, "c", 1), 1);
    assert_int_equal(mrc_check(c, NULL, 0), 0);
    mrc_free(c);
}

/* The same for a request its node never sent but under a caller's id, which an
 * earlier call may have sent (found in review): the caller's retry of command "x",
 * which committed, waits on leader node 1 (held for batching behind "y") when node 1
 * applies its own removal; it must not be told "not a member". */
static void test_a_callers_id_waiting_unsent_on_a_removed_node_is_unknown(void **state)
{
    struct mrc_cluster *c = mrc_new_one_group(7);
    (void)state;
    assert_non_null(c);
    assert_int_equal(mr_propose(mrc_node(c, 1), 1, 100, "x", 1, "p", 1, 0), MR_OK);
    mrc_run(c, 3);
    assert_int_equal(mrc_result(c, 1, 100), MR_OK);
    mrc_stall(c, 2, true);
    mrc_stall(c, 3, true);
    assert_int_equal(mr_propose(mrc_node(c, 1), 1, 101, "y", 1, "p", 1, 0), MR_OK);
    ask(c, 1, 1, 102, MR_CHANGE_REMOVE_VOTER, 1, "rm1", false);
    mrc_settle(c);
    assert_int_equal(mr_propose(mrc_node(c, 1), 1, 103, "x", 1, "p", 1, 0), MR_OK);
    mrc_stall(c, 2, false);
    mrc_stall(c, 3, false);
    mrc_settle(c);
    mrc_run(c, 30);
    assert_false(mr_group_exists(mrc_node(c, 1), 1));
    assert_int_equal(mrc_result(c, 1, 103), MR_EREMOVED);
    assert_int_equal(mrc_command_events(c, 2, 1, "x", 1), 1);
    mrc_free(c);
}

/* A group has at most MR_MAX_MEMBERS members, and the leader holds to it: with 15,
 * nodes 1 and 2 each add a different node at the same moment; one addition commits,
 * the other is refused, and the group ends with 16.  With 16, an addition under a
 * generated id fails at once on its node's view, one under a caller's id through the
 * leader's refusal. */
static void test_a_full_group_takes_no_new_member(void **state)
{
    struct mrc_cluster *c = mrc_new_nodes(18, 39);
    mr_node_id members[15];
    struct mr_group_status st;
    int a, b;
    (void)state;
    for (mr_node_id i = 0; i < 15; i++)
        members[i] = i + 1;
    assert_int_equal(mr_create_group(mrc_node(c, 1), 12, members, 15, 1), MR_OK);
    /* The creator adds the members one at a time. */
    for (int t = 0; t < 1000 && (mr_group_status(mrc_node(c, 1), 12, &st) != MR_OK ||
                                 st.n_voters < 15); t++)
        mrc_tick(c);
    assert_int_equal(st.n_voters, 15);
    mrc_run(c, 20);
    assert_int_equal(mrc_leader(c, 12, NULL), 1);
    ask(c, 1, 12, 2, MR_CHANGE_ADD_VOTER, 16, "a16", false);
    ask(c, 2, 12, 3, MR_CHANGE_ADD_LEARNER, 17, "l17", false);
    mrc_run(c, 60);
    a = mrc_result(c, 1, 2);
    b = mrc_result(c, 2, 3);
    assert_true((a == MR_OK && b == MR_EBADCONF) || (a == MR_EBADCONF && b == MR_OK));
    assert_int_equal(mr_group_status(mrc_node(c, 1), 12, &st), MR_OK);
    assert_int_equal(st.n_voters + st.n_learners, 16);
    ask(c, 3, 12, 4, MR_CHANGE_ADD_VOTER, 18, "generated", true);
    mrc_run(c, 1);
    assert_int_equal(mrc_result(c, 3, 4), MR_EBADCONF);
    assert_int_equal(mrc_change(c, 3, 12, 5, MR_CHANGE_ADD_VOTER, 18, "a18", 30), MR_EBADCONF);
    for (mr_node_id n = 1; n <= 3; n++)
        assert_true(mrc_has_dedup(c, n, 12, "a18", 3));
    assert_false(mr_group_exists(mrc_node(c, 18), 12));
    assert_int_equal(mrc_check(c, NULL, 0), 0);
    mrc_free(c);
}

/* A change asked under a command id that a command not yet applied carries (on
 * the leader, or forwarded from a follower) answers with that command's index and
 * changes nothing: before, the leader proposed the change behind the command, the
 * core applied it, and the dedup (the id applied first by the command) recorded no
 * membership event on any member — a member joined unseen. */
static void test_a_change_under_a_pending_commands_id_changes_nothing(void **state)
{
    (void)state;
    for (mr_node_id asker = 1; asker <= 2; asker++) {
        struct mrc_cluster *c = mrc_new_nodes(4, 41);
        struct mr_completion sub, chg;
        struct mr_group_status st;
        mr_node_id members[3] = {1, 2, 3};
        assert_int_equal(mr_create_group(mrc_node(c, 1), 5, members, 3, 1), MR_OK);
        mrc_run(c, 30);
        assert_int_equal(mrc_leader(c, 5, NULL), 1);
        assert_int_equal(mr_propose(mrc_node(c, asker), 5, 2, "x", 1, "payload", 7, 300), MR_OK);
        ask(c, asker, 5, 3, MR_CHANGE_ADD_VOTER, 4, "x", false);
        mrc_run(c, 60);
        assert_true(mrc_completion(c, asker, 2, &sub));
        assert_true(mrc_completion(c, asker, 3, &chg));
        assert_int_equal(sub.result, MR_OK);
        assert_int_equal(chg.result, MR_OK);
        assert_int_equal(chg.index, sub.index);
        assert_int_equal(mr_group_status(mrc_node(c, 1), 5, &st), MR_OK);
        assert_int_equal(st.n_voters, 3);
        assert_false(mr_group_exists(mrc_node(c, 4), 5));
        for (mr_node_id n = 1; n <= 3; n++) {
            assert_int_equal(membership_events(c, n, 5), 0);
            assert_int_equal(mrc_command_events(c, n, 5, "x", 1), 1);
        }
        assert_int_equal(mrc_check(c, NULL, 0), 0);
        mrc_free(c);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_request_the_leader_refuses_fails_at_once),
        cmocka_unit_test(test_a_refused_command_id_keeps_its_verdict),
        cmocka_unit_test(test_a_forwarded_request_fails_only_through_the_log),
        cmocka_unit_test(test_a_callers_id_is_refused_only_by_the_leader),
        cmocka_unit_test(test_requests_of_a_removed_node_have_an_unknown_outcome),
        cmocka_unit_test(test_a_callers_id_waiting_unsent_on_a_removed_node_is_unknown),
        cmocka_unit_test(test_a_full_group_takes_no_new_member),
        cmocka_unit_test(test_a_change_under_a_pending_commands_id_changes_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
