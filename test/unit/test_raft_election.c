/*
 * test_raft_election.c — leader election (§5.2), term rules (§5.1), the election
 * restriction (§5.4.1), the leader's no-op (§8), PreVote (dissertation §9.6),
 * CheckQuorum and leases (§6.2, §4.2.3), election safety.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "raft.h"
#include "test_cluster.h"
#include "raft_unit.h"

/* All replicas start as followers in term 0 without a leader. */
static void test_initial_state(void **state)
{
    struct test_cluster tc;
    (void)state;
    assert_int_equal(tc_init(&tc, 3, NULL, 1), 0);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(raft_get_role(R(&tc, i)), RAFT_FOLLOWER);
        assert_int_equal(raft_get_term(R(&tc, i)), 0);
        assert_int_equal(raft_get_leader(R(&tc, i)), RAFT_NONE);
    }
    tc_destroy(&tc);
}

/* §5.2: election timeouts are randomized in [election_tick, 2*election_tick). */
static void test_randomized_timeout(void **state)
{
    bool seen[20] = {false};
    int distinct = 0;
    (void)state;
    for (uint64_t seed = 1; seed <= 40; seed++) {
        struct test_cluster tc;
        int t;
        assert_int_equal(tc_init(&tc, 3, NULL, seed), 0);
        tc_isolate(&tc, 0);
        for (t = 1; t <= 40; t++) {
            assert_int_equal(raft_tick(R(&tc, 0)), RAFT_OK);
            if (raft_get_role(R(&tc, 0)) == RAFT_CANDIDATE)
                break;
        }
        assert_true(t >= 10 && t < 20);
        if (!seen[t]) {
            seen[t] = true;
            distinct++;
        }
        tc_destroy(&tc);
    }
    assert_true(distinct >= 3); /* actually random, not constant */
}

/* A cluster elects exactly one leader through ticks alone; the leader's first entry
 * is a no-op of its term (§8). */
static void test_elect_by_ticks_and_noop(void **state)
{
    struct test_cluster tc;
    int l, count = 0;
    struct raft_storage st;
    struct raft_entry_sink *unused = NULL;
    raft_term t;
    (void)state;
    (void)unused;
    assert_int_equal(tc_init(&tc, 3, NULL, 7), 0);
    tc_tick_stabilize(&tc, 25);
    l = tc_leader(&tc);
    assert_true(l >= 0);
    for (int i = 0; i < 3; i++) {
        if (raft_get_role(R(&tc, i)) == RAFT_LEADER)
            count++;
        assert_int_equal(raft_get_leader(R(&tc, i)), tc.nodes[l].id);
        assert_int_equal(raft_get_term(R(&tc, i)), raft_get_term(R(&tc, l)));
    }
    assert_int_equal(count, 1);
    /* The no-op: index 1, the leader's term, empty NORMAL, committed everywhere. */
    raft_memory_storage_interface(tc.nodes[l].ms, &st);
    assert_int_equal(st.last_index(st.user), 1);
    assert_int_equal(st.term(st.user, 1, &t), RAFT_OK);
    assert_int_equal(t, raft_get_term(R(&tc, l)));
    for (int i = 0; i < 3; i++) {
        assert_int_equal(tc.nodes[i].n_applied, 1);
        assert_int_equal(tc.nodes[i].applied[0].len, 0);
        assert_int_equal(tc.nodes[i].applied[0].type, RAFT_ENTRY_NORMAL);
    }
    check_safe(&tc);
    tc_destroy(&tc);
}

/* Figure 2 / §5.2: a candidate increments its term, votes for itself and asks every
 * other voter; the vote is persisted in the same Ready as the messages. */
static void test_candidate_votes_for_self(void **state)
{
    struct test_cluster tc;
    struct raft_ready rd;
    (void)state;
    assert_int_equal(tc_init(&tc, 3, NULL, 1), 0);
    assert_int_equal(raft_campaign(R(&tc, 0)), RAFT_OK);
    assert_int_equal(raft_get_role(R(&tc, 0)), RAFT_CANDIDATE);
    assert_int_equal(raft_get_term(R(&tc, 0)), 1);
    assert_true(raft_has_ready(R(&tc, 0)));
    assert_int_equal(raft_ready(R(&tc, 0), &rd), RAFT_OK);
    assert_true(rd.has_hard_state);
    assert_true(rd.must_sync);
    assert_int_equal(rd.hard_state.term, 1);
    assert_int_equal(rd.hard_state.vote, 1);
    assert_int_equal(rd.n_messages, 2);
    for (size_t k = 0; k < rd.n_messages; k++) {
        assert_int_equal(rd.messages[k].type, RAFT_MSG_VOTE);
        assert_int_equal(rd.messages[k].term, 1);
    }
    assert_int_equal(raft_advance(R(&tc, 0), &rd), RAFT_OK);
    tc_destroy(&tc);
}

/* §5.2: at most one vote per term, first come first served. */
static void test_one_vote_per_term(void **state)
{
    struct test_cluster tc;
    struct raft_message m;
    const struct raft_message *resp;
    (void)state;
    assert_int_equal(tc_init(&tc, 3, NULL, 1), 0);
    msg_init(&m, RAFT_MSG_VOTE, 2, 1, 1);
    assert_int_equal(tc_step(&tc, 0, &m), RAFT_OK);
    msg_init(&m, RAFT_MSG_VOTE, 3, 1, 1);
    assert_int_equal(tc_step(&tc, 0, &m), RAFT_OK);
    tc_process(&tc, 0);
    resp = tc_queued_find(&tc, RAFT_MSG_VOTE_RESP, 1, 2);
    assert_non_null(resp);
    assert_int_equal(resp->reject, 0);
    resp = tc_queued_find(&tc, RAFT_MSG_VOTE_RESP, 1, 3);
    assert_non_null(resp);
    assert_int_equal(resp->reject, 1);
    /* the same candidate asking again gets the vote again (idempotent) */
    tc_drop_queue(&tc);
    msg_init(&m, RAFT_MSG_VOTE, 2, 1, 1);
    assert_int_equal(tc_step(&tc, 0, &m), RAFT_OK);
    tc_process(&tc, 0);
    resp = tc_queued_find(&tc, RAFT_MSG_VOTE_RESP, 1, 2);
    assert_non_null(resp);
    assert_int_equal(resp->reject, 0);
    tc_destroy(&tc);
}

/* Restart: the vote survives in the hard state, so no second vote in that term. */
static void test_vote_survives_restart(void **state)
{
    struct test_cluster tc;
    struct raft_message m;
    const struct raft_message *resp;
    (void)state;
    assert_int_equal(tc_init(&tc, 3, NULL, 1), 0);
    msg_init(&m, RAFT_MSG_VOTE, 2, 1, 5);
    assert_int_equal(tc_step(&tc, 0, &m), RAFT_OK);
    tc_process(&tc, 0);
    tc_drop_queue(&tc);
    tc_crash(&tc, 0);
    assert_int_equal(tc_restart(&tc, 0), 0);
    assert_int_equal(raft_get_term(R(&tc, 0)), 5);
    msg_init(&m, RAFT_MSG_VOTE, 3, 1, 5);
    assert_int_equal(tc_step(&tc, 0, &m), RAFT_OK);
    tc_process(&tc, 0);
    resp = tc_queued_find(&tc, RAFT_MSG_VOTE_RESP, 1, 3);
    assert_non_null(resp);
    assert_int_equal(resp->reject, 1);
    tc_destroy(&tc);
}

/* §5.4.1 election restriction: a vote is granted only to a candidate whose log is at
 * least as up to date (last term first, then length). */
static void test_election_restriction(void **state)
{
    struct test_cluster tc;
    struct raft_message m;
    const struct raft_message *resp;
    struct raft_entry e[2];
    struct raft_hard_state hs = {2, 0, 0};
    (void)state;
    assert_int_equal(tc_init(&tc, 3, NULL, 1), 0);
    /* Give node 1 the log [1@t1, 2@t2] before it starts. */
    tc_crash(&tc, 0);
    memset(e, 0, sizeof e);
    e[0].index = 1; e[0].term = 1;
    e[1].index = 2; e[1].term = 2;
    assert_int_equal(raft_memory_storage_append(tc.nodes[0].ms, e, 2), RAFT_OK);
    raft_memory_storage_set_hard_state(tc.nodes[0].ms, &hs);
    assert_int_equal(tc_restart(&tc, 0), 0);

    /* longer log but older last term: rejected */
    msg_init(&m, RAFT_MSG_VOTE, 2, 1, 3);
    m.index = 5; m.log_term = 1;
    tc_step(&tc, 0, &m);
    /* same last term but shorter: rejected */
    msg_init(&m, RAFT_MSG_VOTE, 3, 1, 4);
    m.index = 1; m.log_term = 2;
    tc_step(&tc, 0, &m);
    tc_process(&tc, 0);
    resp = tc_queued_find(&tc, RAFT_MSG_VOTE_RESP, 1, 2);
    assert_non_null(resp);
    assert_int_equal(resp->reject, 1);
    resp = tc_queued_find(&tc, RAFT_MSG_VOTE_RESP, 1, 3);
    assert_non_null(resp);
    assert_int_equal(resp->reject, 1);
    tc_drop_queue(&tc);
    /* newer last term, shorter log: granted */
    msg_init(&m, RAFT_MSG_VOTE, 2, 1, 5);
    m.index = 1; m.log_term = 3;
    tc_step(&tc, 0, &m);
    tc_process(&tc, 0);
    resp = tc_queued_find(&tc, RAFT_MSG_VOTE_RESP, 1, 2);
    assert_non_null(resp);
    assert_int_equal(resp->reject, 0);
    tc_drop_queue(&tc);
    /* equal log in a later term: granted */
    msg_init(&m, RAFT_MSG_VOTE, 3, 1, 6);
    m.index = 2; m.log_term = 2;
    tc_step(&tc, 0, &m);
    tc_process(&tc, 0);
    resp = tc_queued_find(&tc, RAFT_MSG_VOTE_RESP, 1, 3);
    assert_non_null(resp);
    assert_int_equal(resp->reject, 0);
    tc_destroy(&tc);
}

/* §5.1: any message with a higher term turns a leader into a follower of that term;
 * a message with a lower term is answered with the current term and otherwise
 * ignored. */
static void test_term_rules(void **state)
{
    struct test_cluster tc;
    struct raft_message m;
    const struct raft_message *resp;
    raft_term t;
    (void)state;
    assert_int_equal(tc_init(&tc, 3, NULL, 1), 0);
    assert_int_equal(tc_elect(&tc, 0), 0);
    t = raft_get_term(R(&tc, 0));
    /* stale APPEND to a follower: rejected with the follower's term */
    msg_init(&m, RAFT_MSG_APPEND, 3, 2, t - 1);
    tc_step(&tc, 1, &m);
    tc_process(&tc, 1);
    resp = tc_queued_find(&tc, RAFT_MSG_APPEND_RESP, 2, 3);
    assert_non_null(resp);
    assert_int_equal(resp->term, t);
    assert_int_equal(raft_get_leader(R(&tc, 1)), 1);
    tc_drop_queue(&tc);
    /* a response with a higher term deposes the leader */
    msg_init(&m, RAFT_MSG_HEARTBEAT_RESP, 2, 1, t + 3);
    tc_step(&tc, 0, &m);
    assert_int_equal(raft_get_role(R(&tc, 0)), RAFT_FOLLOWER);
    assert_int_equal(raft_get_term(R(&tc, 0)), t + 3);
    assert_int_equal(raft_get_leader(R(&tc, 0)), RAFT_NONE);
    tc_destroy(&tc);
}

/* §5.2: a candidate that receives an APPEND from a leader of its term steps down. */
static void test_candidate_steps_down_for_leader(void **state)
{
    struct test_cluster tc;
    struct raft_message m;
    (void)state;
    assert_int_equal(tc_init(&tc, 3, NULL, 1), 0);
    raft_campaign(R(&tc, 0));
    assert_int_equal(raft_get_role(R(&tc, 0)), RAFT_CANDIDATE);
    msg_init(&m, RAFT_MSG_APPEND, 2, 1, raft_get_term(R(&tc, 0)));
    tc_step(&tc, 0, &m);
    assert_int_equal(raft_get_role(R(&tc, 0)), RAFT_FOLLOWER);
    assert_int_equal(raft_get_leader(R(&tc, 0)), 2);
    tc_destroy(&tc);
}

/* A candidate that loses (majority rejects) returns to follower; one without answers
 * times out and starts a new election in a higher term (§5.2 split votes). */
static void test_lost_and_split_election(void **state)
{
    struct test_cluster tc;
    struct raft_message m;
    raft_term t;
    (void)state;
    assert_int_equal(tc_init(&tc, 3, NULL, 1), 0);
    raft_campaign(R(&tc, 0));
    t = raft_get_term(R(&tc, 0));
    msg_init(&m, RAFT_MSG_VOTE_RESP, 2, 1, t);
    m.reject = 1;
    tc_step(&tc, 0, &m);
    assert_int_equal(raft_get_role(R(&tc, 0)), RAFT_CANDIDATE); /* 1 of 3 rejections */
    msg_init(&m, RAFT_MSG_VOTE_RESP, 3, 1, t);
    m.reject = 1;
    tc_step(&tc, 0, &m);
    assert_int_equal(raft_get_role(R(&tc, 0)), RAFT_FOLLOWER);

    raft_campaign(R(&tc, 1));
    t = raft_get_term(R(&tc, 1));
    tc_isolate(&tc, 1);
    tc_tick_stabilize(&tc, 20);
    assert_int_equal(raft_get_role(R(&tc, 1)), RAFT_CANDIDATE);
    assert_true(raft_get_term(R(&tc, 1)) > t);
    tc_destroy(&tc);
}

/* Learners and replicas outside the configuration never campaign; VOTE requests from
 * non-voters are ignored entirely (no term change, no answer) while a leader is known. */
static void test_non_voters_do_not_campaign(void **state)
{
    struct test_cluster tc;
    struct raft_message m;
    raft_id voters[2] = {1, 2};
    raft_id learners[1] = {3};
    struct raft_conf_state cs = {voters, 2, learners, 1};
    (void)state;
    memset(&tc, 0, sizeof tc);
    tc_default_config(&tc.cfg);
    for (int i = 0; i < 3; i++)
        assert_int_equal(tc_add_node(&tc, i, (raft_id)(i + 1), &cs), 0);
    assert_int_equal(tc_add_node(&tc, 3, 9, NULL), 0); /* knows no configuration */
    assert_int_equal(raft_campaign(R(&tc, 2)), RAFT_ENOTMEMBER);
    assert_int_equal(raft_campaign(R(&tc, 3)), RAFT_ENOTMEMBER);
    for (int k = 0; k < 100; k++) {
        raft_tick(R(&tc, 2));
        raft_tick(R(&tc, 3));
    }
    assert_int_equal(raft_get_role(R(&tc, 2)), RAFT_FOLLOWER);
    assert_int_equal(raft_get_term(R(&tc, 2)), 0);
    assert_int_equal(raft_get_term(R(&tc, 3)), 0);
    /* the two voters elect a leader; the learner follows it */
    tc_tick_stabilize(&tc, 30);
    assert_true(tc_leader(&tc) == 0 || tc_leader(&tc) == 1);
    assert_int_equal(raft_get_leader(R(&tc, 2)), tc.nodes[tc_leader(&tc)].id);
    {
        /* while the leader is known, a VOTE from the learner (3) or a stranger (9)
         * is ignored entirely, even without CheckQuorum (removed replicas) */
        int v = tc_leader(&tc) == 0 ? 1 : 0;
        raft_id vid = tc.nodes[v].id;
        raft_term t = raft_get_term(R(&tc, v));
        tc_drop_queue(&tc);
        msg_init(&m, RAFT_MSG_VOTE, 3, vid, t + 7);
        m.index = 1000;
        m.log_term = t + 6;
        tc_step(&tc, v, &m);
        msg_init(&m, RAFT_MSG_VOTE, 9, vid, t + 8);
        m.index = 1000;
        m.log_term = t + 6;
        tc_step(&tc, v, &m);
        assert_int_equal(raft_get_term(R(&tc, v)), t);
        tc_process(&tc, v);
        assert_int_equal(tc_queued(&tc, RAFT_MSG_VOTE_RESP, vid, 0), 0);
    }
    tc_destroy(&tc);
}

/* Dissertation §9.6: with PreVote a partitioned node does not inflate its term and
 * cannot disrupt the leader when it comes back.  Without PreVote it does (control). */
static void run_rejoin(bool pre_vote, raft_term *leader_term_before, raft_term *after,
                       raft_term *isolated_term, int *leader_after)
{
    struct test_cluster tc;
    struct raft_config cfg;
    tc_default_config(&cfg);
    cfg.pre_vote = pre_vote;
    assert_int_equal(tc_init(&tc, 3, &cfg, 3), 0);
    assert_int_equal(tc_elect(&tc, 0), 0);
    *leader_term_before = raft_get_term(R(&tc, 0));
    tc_isolate(&tc, 2);
    tc_tick_stabilize(&tc, 60);
    *isolated_term = raft_get_term(R(&tc, 2));
    tc_heal(&tc);
    tc_tick_stabilize(&tc, 5);
    *after = raft_get_term(R(&tc, 0));
    *leader_after = tc_leader(&tc);
    check_safe(&tc);
    tc_destroy(&tc);
}

static void test_prevote_prevents_disruption(void **state)
{
    raft_term before, after, iso;
    int leader;
    (void)state;
    run_rejoin(true, &before, &after, &iso, &leader);
    assert_int_equal(iso, before);     /* no term inflation while isolated */
    assert_int_equal(after, before);   /* leader undisturbed */
    assert_int_equal(leader, 0);
    run_rejoin(false, &before, &after, &iso, &leader);
    assert_true(iso > before);         /* control: terms grow without PreVote */
    assert_true(after > before);       /* and the rejoining node deposes the leader */
}

/* PreVote responses do not change the responder's term and a pre-candidate keeps
 * its term until it wins the pre-vote. */
static void test_prevote_does_not_change_terms(void **state)
{
    struct test_cluster tc;
    struct raft_config cfg;
    (void)state;
    tc_default_config(&cfg);
    cfg.pre_vote = true;
    assert_int_equal(tc_init(&tc, 3, &cfg, 1), 0);
    raft_campaign(R(&tc, 0));
    assert_int_equal(raft_get_role(R(&tc, 0)), RAFT_PRE_CANDIDATE);
    assert_int_equal(raft_get_term(R(&tc, 0)), 0);
    tc_process(&tc, 0);
    assert_int_equal(tc_queued(&tc, RAFT_MSG_PREVOTE, 1, 0), 2);
    assert_int_equal(tc_deliver_type(&tc, RAFT_MSG_PREVOTE), 2);
    assert_int_equal(raft_get_term(R(&tc, 1)), 0);
    assert_int_equal(raft_get_term(R(&tc, 2)), 0);
    tc_stabilize(&tc, 0);
    assert_int_equal(raft_get_role(R(&tc, 0)), RAFT_LEADER);
    assert_int_equal(raft_get_term(R(&tc, 0)), 1);
    tc_destroy(&tc);
}

/* §6.2 CheckQuorum: a leader that hears from no quorum for an election timeout steps
 * down; without CheckQuorum it stays leader (control). */
static void test_check_quorum(void **state)
{
    for (int cq = 0; cq <= 1; cq++) {
        struct test_cluster tc;
        struct raft_config cfg;
        (void)state;
        tc_default_config(&cfg);
        cfg.check_quorum = cq == 1;
        assert_int_equal(tc_init(&tc, 3, &cfg, 5), 0);
        assert_int_equal(tc_elect(&tc, 0), 0);
        /* connected: stays leader across several timeouts */
        for (int k = 0; k < 35; k++) {
            raft_tick(R(&tc, 0));
            tc_stabilize(&tc, 0);
        }
        assert_int_equal(raft_get_role(R(&tc, 0)), RAFT_LEADER);
        tc_isolate(&tc, 0);
        for (int k = 0; k < 25; k++) {
            raft_tick(R(&tc, 0));
            tc_stabilize(&tc, 0);
        }
        assert_int_equal(raft_get_role(R(&tc, 0)), cq ? RAFT_FOLLOWER : RAFT_LEADER);
        tc_destroy(&tc);
    }
}

/* A VOTE for term t + 1 from a candidate whose log is ahead of everyone's: only a
 * leader lease (or its absence) decides whether it is granted. */
static void vote_from_ahead(struct raft_message *m, raft_id from, raft_id to, raft_term t)
{
    msg_init(m, RAFT_MSG_VOTE, from, to, t + 1);
    m->index = 100;
    m->log_term = t;
}

/* Dissertation §4.2.3: with CheckQuorum, a follower that heard from its leader within
 * the election timeout disregards VOTE requests (no term change). */
static void test_lease_ignores_votes(void **state)
{
    struct test_cluster tc;
    struct raft_config cfg;
    struct raft_message m;
    raft_term t;
    (void)state;
    tc_default_config(&cfg);
    cfg.check_quorum = true;
    assert_int_equal(tc_init(&tc, 3, &cfg, 1), 0);
    assert_int_equal(tc_elect(&tc, 0), 0);
    t = raft_get_term(R(&tc, 1));
    vote_from_ahead(&m, 3, 2, t);
    tc_step(&tc, 1, &m);
    assert_int_equal(raft_get_term(R(&tc, 1)), t);
    assert_int_equal(raft_get_leader(R(&tc, 1)), 1);
    /* after an election timeout without the leader, the request is honoured */
    tc_isolate(&tc, 0);
    for (int k = 0; k < 10; k++)
        raft_tick(R(&tc, 1));
    tc_step(&tc, 1, &m);
    assert_int_equal(raft_get_term(R(&tc, 1)), t + 1);
    tc_destroy(&tc);
}

/* raft_set_leader_heard_ago (lease.c): outside evidence restates the lease (§4.2.3).
 * Heard recently -> vote requests still disregarded even though the follower's own
 * counter ran out; silent for an election timeout -> the lease is gone at once, but
 * the campaign waits for the randomized rest of the timeout (at most election_tick
 * more ticks, and not in the same call). */
/* Three voters with CheckQuorum, node 1 elected, then cut off from the others. */
static void cut_off_leader(struct test_cluster *tc, struct raft_config *cfg, uint64_t seed)
{
    tc_default_config(cfg);
    cfg->check_quorum = true;
    assert_int_equal(tc_init(tc, 3, cfg, seed), 0);
    assert_int_equal(tc_elect(tc, 0), 0);
    tc_isolate(tc, 0);
}

/* raft_defer_campaign: no campaign of its own during the hold, while the lease
 * runs out as before (votes are granted); a new term ends the hold. */
static void test_defer_campaign(void **state)
{
    struct test_cluster tc;
    struct raft_config cfg;
    struct raft_message m;
    raft_term t;
    int k;
    (void)state;
    cut_off_leader(&tc, &cfg, 3);
    t = raft_get_term(R(&tc, 2));
    raft_defer_campaign(R(&tc, 2), 4 * cfg.election_tick);
    for (k = 0; k < 3 * (int)cfg.election_tick; k++)
        raft_tick(R(&tc, 2));
    assert_int_equal(raft_get_role(R(&tc, 2)), RAFT_FOLLOWER);
    assert_int_equal(raft_get_term(R(&tc, 2)), t);
    /* its lease ran out all the same: another candidate gets its vote */
    vote_from_ahead(&m, 2, 3, t);
    tc_step(&tc, 2, &m);
    assert_int_equal(raft_get_term(R(&tc, 2)), t + 1);
    /* the new term ended the hold: its own timeout works again */
    for (k = 0; k < 2 * (int)cfg.election_tick && raft_get_role(R(&tc, 2)) == RAFT_FOLLOWER; k++)
        raft_tick(R(&tc, 2));
    assert_int_not_equal(raft_get_role(R(&tc, 2)), RAFT_FOLLOWER);
    tc_destroy(&tc);

    /* the hold ends by itself; raft_campaign ignores it */
    cut_off_leader(&tc, &cfg, 4);
    raft_defer_campaign(R(&tc, 1), cfg.election_tick);
    for (k = 0; k < 3 * (int)cfg.election_tick && raft_get_role(R(&tc, 1)) == RAFT_FOLLOWER; k++)
        raft_tick(R(&tc, 1));
    assert_int_not_equal(raft_get_role(R(&tc, 1)), RAFT_FOLLOWER);
    assert_true(k > (int)cfg.election_tick);
    raft_defer_campaign(R(&tc, 2), 1000);
    assert_int_equal(raft_campaign(R(&tc, 2)), RAFT_OK);
    assert_int_not_equal(raft_get_role(R(&tc, 2)), RAFT_FOLLOWER);
    tc_destroy(&tc);
}

static void test_leader_heard_ago(void **state)
{
    struct test_cluster tc;
    struct raft_config cfg;
    struct raft_message m;
    raft_term t;
    int k;
    (void)state;
    cut_off_leader(&tc, &cfg, 1);
    t = raft_get_term(R(&tc, 1));
    for (k = 0; k < (int)cfg.election_tick; k++)
        raft_tick(R(&tc, 1));
    /* its own counter says "expired"; the outside evidence says "heard 2 ticks ago" */
    assert_int_equal(raft_set_leader_heard_ago(R(&tc, 1), 2), RAFT_OK);
    vote_from_ahead(&m, 3, 2, t);
    tc_step(&tc, 1, &m);
    assert_int_equal(raft_get_term(R(&tc, 1)), t);
    assert_int_equal(raft_get_leader(R(&tc, 1)), 1);
    /* silent for longer than an election timeout: the request is honoured */
    assert_int_equal(raft_set_leader_heard_ago(R(&tc, 1), 1000), RAFT_OK);
    assert_int_equal(raft_get_role(R(&tc, 1)), RAFT_FOLLOWER);
    tc_step(&tc, 1, &m);
    assert_int_equal(raft_get_term(R(&tc, 1)), t + 1);
    tc_destroy(&tc);

    /* Expired lease by outside evidence: no campaign before the next tick, one
     * within election_tick ticks. */
    cut_off_leader(&tc, &cfg, 2);
    assert_int_equal(raft_set_leader_heard_ago(R(&tc, 2), 1000), RAFT_OK);
    assert_int_equal(raft_get_role(R(&tc, 2)), RAFT_FOLLOWER);
    for (k = 0; k < (int)cfg.election_tick && raft_get_role(R(&tc, 2)) == RAFT_FOLLOWER; k++)
        raft_tick(R(&tc, 2));
    assert_int_not_equal(raft_get_role(R(&tc, 2)), RAFT_FOLLOWER);
    /* no effect on a leader */
    assert_int_equal(raft_set_leader_heard_ago(R(&tc, 0), 1000), RAFT_OK);
    assert_int_equal(raft_get_role(R(&tc, 0)), RAFT_LEADER);
    tc_destroy(&tc);
}

/* Dissertation §4.1: a replica that does not know the configuration yet (fresh,
 * empty storage) still votes for a candidate with an up-to-date log when it has no
 * current leader — otherwise a group whose new member is needed for a quorum could
 * never elect a leader again. */
static void test_empty_replica_votes(void **state)
{
    struct test_cluster tc;
    struct raft_message m;
    const struct raft_message *resp;
    (void)state;
    memset(&tc, 0, sizeof tc);
    tc_default_config(&tc.cfg);
    assert_int_equal(tc_add_node(&tc, 0, 4, NULL), 0);
    msg_init(&m, RAFT_MSG_VOTE, 3, 4, 7);
    m.index = 141;
    m.log_term = 6;
    assert_int_equal(tc_step(&tc, 0, &m), RAFT_OK);
    tc_process(&tc, 0);
    resp = tc_queued_find(&tc, RAFT_MSG_VOTE_RESP, 4, 3);
    assert_non_null(resp);
    assert_int_equal(resp->reject, 0);
    assert_int_equal(raft_get_term(R(&tc, 0)), 7);
    tc_destroy(&tc);
}

/* A learner (which never campaigns) still lets its leader lease expire: once the
 * leader is silent for an election timeout it honours VOTEs again (with CheckQuorum,
 * where leases apply to every candidate). */
static void test_non_voter_lease_expires(void **state)
{
    struct test_cluster tc;
    struct raft_message m;
    raft_id voters[2] = {1, 2};
    raft_id learners[1] = {3};
    struct raft_conf_state cs = {voters, 2, learners, 1};
    raft_term t;
    (void)state;
    memset(&tc, 0, sizeof tc);
    tc_default_config(&tc.cfg);
    tc.cfg.check_quorum = true;
    for (int i = 0; i < 3; i++)
        assert_int_equal(tc_add_node(&tc, i, (raft_id)(i + 1), &cs), 0);
    assert_int_equal(tc_elect(&tc, 0), 0);
    tc_tick_stabilize(&tc, 1);
    assert_int_equal(raft_get_leader(R(&tc, 2)), 1);
    t = raft_get_term(R(&tc, 2));
    tc_crash(&tc, 0);
    for (int k = 0; k < 19; k++)
        raft_tick(R(&tc, 2));
    vote_from_ahead(&m, 2, 3, t);
    tc_step(&tc, 2, &m);
    assert_int_equal(raft_get_term(R(&tc, 2)), t + 1);
    tc_process(&tc, 2);
    assert_non_null(tc_queued_find(&tc, RAFT_MSG_VOTE_RESP, 3, 2));
    tc_destroy(&tc);
}

/* Forged or corrupt messages with absurd terms/indexes are refused (no wrap-around). */
static void test_absurd_values_refused(void **state)
{
    struct test_cluster tc;
    struct raft_message m;
    struct raft_snapshot s;
    (void)state;
    assert_int_equal(tc_init(&tc, 3, NULL, 1), 0);
    assert_int_equal(tc_elect(&tc, 0), 0);
    msg_init(&m, RAFT_MSG_TIMEOUT_NOW, 2, 3, UINT64_MAX);
    assert_int_equal(tc_step(&tc, 2, &m), RAFT_EINVAL);
    msg_init(&m, RAFT_MSG_APPEND, 1, 3, raft_get_term(R(&tc, 0)));
    m.commit = UINT64_MAX - 1;
    assert_int_equal(tc_step(&tc, 2, &m), RAFT_EINVAL);
    memset(&s, 0, sizeof s);
    s.index = UINT64_MAX - 1;
    s.term = 1;
    msg_init(&m, RAFT_MSG_SNAPSHOT, 1, 3, raft_get_term(R(&tc, 0)));
    m.snapshot = &s;
    assert_int_equal(tc_step(&tc, 2, &m), RAFT_EINVAL);
    assert_true(raft_get_term(R(&tc, 2)) < 100);
    assert_true(raft_get_commit(R(&tc, 2)) < 100);
    tc_tick_stabilize(&tc, 3);
    assert_int_equal(tc_leader(&tc), 0);
    tc_destroy(&tc);
}

/* Election safety (§5.2, Figure 3): at most one leader per term, over many seeds,
 * with message loss, partitions and crashes. */
static void test_election_safety_random(void **state)
{
    (void)state;
    for (uint64_t seed = 1; seed <= 30; seed++) {
        struct test_cluster tc;
        struct raft_config cfg;
        tc_default_config(&cfg);
        cfg.pre_vote = seed % 2 == 0;
        cfg.check_quorum = seed % 3 == 0;
        assert_int_equal(tc_init(&tc, 5, &cfg, seed), 0);
        tc.drop_per_mille = 100;
        for (int step = 0; step < 300; step++) {
            int victim = (int)((seed * 31 + (uint64_t)step * 17) % 5);
            if (step % 50 == 10)
                tc_isolate(&tc, victim);
            if (step % 50 == 30)
                tc_heal(&tc);
            if (step % 70 == 20)
                tc_crash(&tc, victim);
            if (step % 70 == 45)
                for (int i = 0; i < 5; i++)
                    tc_restart(&tc, i);
            if (tc_leader(&tc) >= 0 && step % 3 == 0) {
                char buf[32];
                snprintf(buf, sizeof buf, "s%d", step);
                tc_propose(&tc, tc_leader(&tc), buf, NULL);
            }
            tc_tick(&tc);
            tc_stabilize(&tc, 0);
        }
        check_safe(&tc);
        tc_destroy(&tc);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_initial_state),
        cmocka_unit_test(test_randomized_timeout),
        cmocka_unit_test(test_elect_by_ticks_and_noop),
        cmocka_unit_test(test_candidate_votes_for_self),
        cmocka_unit_test(test_one_vote_per_term),
        cmocka_unit_test(test_vote_survives_restart),
        cmocka_unit_test(test_election_restriction),
        cmocka_unit_test(test_term_rules),
        cmocka_unit_test(test_candidate_steps_down_for_leader),
        cmocka_unit_test(test_lost_and_split_election),
        cmocka_unit_test(test_non_voters_do_not_campaign),
        cmocka_unit_test(test_empty_replica_votes),
        cmocka_unit_test(test_non_voter_lease_expires),
        cmocka_unit_test(test_absurd_values_refused),
        cmocka_unit_test(test_prevote_prevents_disruption),
        cmocka_unit_test(test_prevote_does_not_change_terms),
        cmocka_unit_test(test_check_quorum),
        cmocka_unit_test(test_lease_ignores_votes),
        cmocka_unit_test(test_leader_heard_ago),
        cmocka_unit_test(test_defer_campaign),
        cmocka_unit_test(test_election_safety_random),
    };
    return cmocka_run_group_tests_name("raft_election", tests, NULL, NULL);
}
