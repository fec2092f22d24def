/*
 * test_raft_replication.c — log replication (§5.3), commitment (§5.3, §5.4.2), flow
 * control, proposals and their forwarding/refusal.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "raft.h"
#include "raft_bench.h"
#include "test_cluster.h"
#include "raft_unit.h"

static raft_term storage_term(struct test_cluster *tc, int i, raft_index idx)
{
    struct raft_storage st;
    raft_term t = 0;
    raft_memory_storage_interface(tc->nodes[i].ms, &st);
    if (st.term(st.user, idx, &t) != RAFT_OK)
        return (raft_term)-1;
    return t;
}

static raft_index storage_last(struct test_cluster *tc, int i)
{
    struct raft_storage st;
    raft_memory_storage_interface(tc->nodes[i].ms, &st);
    return st.last_index(st.user);
}

static void test_basic_commit(void **state)
{
    struct test_cluster tc;
    raft_index idx = 0;
    raft_term term = 0;
    (void)state;
    assert_int_equal(tc_init(&tc, 3, NULL, 1), 0);
    assert_int_equal(tc_elect(&tc, 0), 0);
    assert_int_equal(raft_propose(R(&tc, 0), "hello", 5, &idx, &term), RAFT_OK);
    assert_int_equal(idx, 2); /* after the no-op */
    assert_int_equal(term, raft_get_term(R(&tc, 0)));
    tc_stabilize(&tc, 0);
    for (int i = 0; i < 3; i++) {
        assert_true(tc_applied_contains(&tc, i, "hello"));
        assert_int_equal(raft_get_commit(R(&tc, i)), idx);
        assert_int_equal(raft_get_applied(R(&tc, i)), idx);
    }
    check_safe(&tc);
    tc_destroy(&tc);
}

/* The leader persists before counting itself: the entry is in rd.entries and the
 * APPENDs are in the same Ready; nothing is committed until a follower answers. */
static void test_commit_needs_majority(void **state)
{
    struct test_cluster tc;
    raft_index idx;
    (void)state;
    assert_int_equal(tc_init(&tc, 3, NULL, 1), 0);
    assert_int_equal(tc_elect(&tc, 0), 0);
    tc_isolate(&tc, 0);
    assert_int_equal(tc_propose(&tc, 0, "x", &idx), RAFT_OK);
    tc_stabilize(&tc, 0);
    assert_true(raft_get_commit(R(&tc, 0)) < idx);
    tc_heal(&tc);
    tc_cut(&tc, 0, 2); /* one follower is enough */
    tc_tick_stabilize(&tc, 2);
    assert_int_equal(raft_get_commit(R(&tc, 0)), idx);
    assert_true(tc_applied_contains(&tc, 1, "x"));
    tc_destroy(&tc);
}

/* Figure 2 AppendEntries 2: reject if the log has no entry at prevLogIndex with
 * prevLogTerm; the reply carries a hint (conflicting term + its first index, or the
 * last index when the log is too short). */
static void test_append_consistency_check_and_hint(void **state)
{
    struct test_cluster tc;
    struct raft_message m;
    struct raft_entry e;
    const struct raft_message *resp;
    raft_term terms[5] = {1, 1, 2, 2, 2};
    (void)state;
    assert_int_equal(tc_init(&tc, 3, NULL, 1), 0);
    preload(&tc, 1, terms, 5, 2);
    /* too short */
    msg_init(&m, RAFT_MSG_APPEND, 1, 2, 3);
    m.index = 7;
    m.log_term = 3;
    tc_step(&tc, 1, &m);
    tc_process(&tc, 1);
    resp = tc_queued_find(&tc, RAFT_MSG_APPEND_RESP, 2, 1);
    assert_non_null(resp);
    assert_int_equal(resp->reject, 1);
    assert_int_equal(resp->index, 7);
    assert_int_equal(resp->log_term, 0);
    assert_int_equal(resp->reject_hint, 5);
    tc_drop_queue(&tc);
    /* conflicting term at 4: hint = term 2, first index of term 2 = 3 */
    msg_init(&m, RAFT_MSG_APPEND, 1, 2, 3);
    m.index = 4;
    m.log_term = 3;
    tc_step(&tc, 1, &m);
    tc_process(&tc, 1);
    resp = tc_queued_find(&tc, RAFT_MSG_APPEND_RESP, 2, 1);
    assert_non_null(resp);
    assert_int_equal(resp->reject, 1);
    assert_int_equal(resp->log_term, 2);
    assert_int_equal(resp->reject_hint, 3);
    tc_drop_queue(&tc);
    /* matching prev: accepted, conflicting suffix replaced (rule 3), commit = min */
    memset(&e, 0, sizeof e);
    e.index = 3;
    e.term = 3;
    e.data = "new3";
    e.len = 4;
    msg_init(&m, RAFT_MSG_APPEND, 1, 2, 3);
    m.index = 2;
    m.log_term = 1;
    m.entries = &e;
    m.n_entries = 1;
    m.commit = 10;
    tc_step(&tc, 1, &m);
    tc_process(&tc, 1);
    resp = tc_queued_find(&tc, RAFT_MSG_APPEND_RESP, 2, 1);
    assert_non_null(resp);
    assert_int_equal(resp->reject, 0);
    assert_int_equal(resp->index, 3);
    assert_int_equal(storage_last(&tc, 1), 3);
    assert_int_equal(storage_term(&tc, 1, 3), 3);
    assert_int_equal(raft_get_commit(R(&tc, 1)), 3); /* min(leaderCommit, last new) */
    tc_destroy(&tc);
}

/* Figure 2 AppendEntries 3: an APPEND whose entries are all present (a delayed
 * duplicate) must not truncate entries that follow them. */
static void test_stale_append_does_not_truncate(void **state)
{
    struct test_cluster tc;
    struct raft_message m;
    struct raft_entry e;
    raft_term terms[4] = {1, 1, 1, 1};
    (void)state;
    assert_int_equal(tc_init(&tc, 3, NULL, 1), 0);
    preload(&tc, 1, terms, 4, 1);
    memset(&e, 0, sizeof e);
    e.index = 2;
    e.term = 1;
    e.data = "pre2-t1";
    e.len = 7;
    msg_init(&m, RAFT_MSG_APPEND, 1, 2, 1);
    m.index = 1;
    m.log_term = 1;
    m.entries = &e;
    m.n_entries = 1;
    tc_step(&tc, 1, &m);
    tc_process(&tc, 1);
    assert_int_equal(raft_get_last_index(R(&tc, 1)), 4);
    assert_int_equal(storage_last(&tc, 1), 4);
    tc_destroy(&tc);
}

/* Entries a leader could not have sent — above its term, below the previous entry's
 * term, not consecutive — are refused whole: nothing is appended, nothing answered
 * (the message is forged; such a log no honest leader can repair, and its probes
 * and the rejections went back and forth without end: docs/sim-findings.md,
 * finding 15). */
static void test_impossible_entries_are_refused(void **state)
{
    struct test_cluster tc;
    struct raft_message m;
    struct raft_entry e[2];
    struct {
        raft_term t0, t1;
        raft_index i1;
    } bad[3] = {{3, 3, 2},   /* above the message's term 2 */
                {2, 1, 2},   /* decreasing */
                {2, 2, 3}};  /* index 3 after index 1 */
    (void)state;
    assert_int_equal(tc_init(&tc, 3, NULL, 1), 0);
    for (int k = 0; k < 3; k++) {
        memset(e, 0, sizeof e);
        e[0].index = 1;
        e[0].term = bad[k].t0;
        e[0].data = "x";
        e[0].len = 1;
        e[1].index = bad[k].i1;
        e[1].term = bad[k].t1;
        e[1].data = "y";
        e[1].len = 1;
        msg_init(&m, RAFT_MSG_APPEND, 1, 2, 2);
        m.entries = e;
        m.n_entries = 2;
        tc_step(&tc, 1, &m);
        tc_process(&tc, 1);
        assert_int_equal(raft_get_last_index(R(&tc, 1)), 0);
        assert_int_equal(raft_get_term(R(&tc, 1)), 0);
    }
    /* The same entries, well formed, are taken. */
    e[0].term = 1;
    e[1].term = 2;
    e[1].index = 2;
    tc_step(&tc, 1, &m);
    tc_process(&tc, 1);
    assert_int_equal(raft_get_last_index(R(&tc, 1)), 2);
    tc_destroy(&tc);
}

/* A follower that no longer holds entries it acknowledged — its storage was lost,
 * or the acknowledgements were not its own (forged or corrupted messages) — is
 * repaired from what it has.  The leader used to probe it at match + 1 again at
 * every rejection, and the two bounced at network speed for good
 * (docs/sim-findings.md, finding 17). */
static void test_follower_that_lost_acknowledged_entries_is_repaired(void **state)
{
    struct test_cluster tc;
    raft_id voters[3] = {1, 2, 3};
    struct raft_conf_state cs = {voters, 3, NULL, 0};
    raft_index last;
    size_t delivered;
    (void)state;
    assert_int_equal(tc_init(&tc, 3, NULL, 1), 0);
    assert_int_equal(tc_elect(&tc, 0), 0);
    for (int k = 0; k < 5; k++)
        assert_int_equal(tc_propose(&tc, 0, "before", NULL), RAFT_OK);
    tc_stabilize(&tc, 0);
    /* Replica 2 loses its storage and starts again, empty. */
    assert_int_equal(tc_lose_storage(&tc, 1, &cs), 0);
    for (int k = 0; k < 3; k++) {
        assert_int_equal(tc_propose(&tc, 0, "after", NULL), RAFT_OK);
        delivered = tc_stabilize(&tc, 10000);
        assert_true(delivered < 1000);
    }
    tc_tick_stabilize(&tc, 3);
    last = raft_get_last_index(R(&tc, 0));
    assert_int_equal(raft_get_last_index(R(&tc, 1)), last);
    assert_int_equal(storage_last(&tc, 1), last);
    assert_int_equal(raft_get_commit(R(&tc, 1)), last);
    tc_destroy(&tc);
}

/* The same repair believes a rejection that names a conflicting term only below
 * the first index of that term in the follower's log (reject_hint): the follower
 * holds another entry there, and a match at the hint would let the next heartbeat
 * commit that entry on it (found by a review; reachable with a lost disk or a
 * forged answer only). */
static void test_a_rejection_naming_a_term_matches_below_its_hint(void **state)
{
    struct test_cluster tc;
    struct raft_message m;
    struct raft_progress_info pi;
    raft_index last;
    (void)state;
    assert_int_equal(tc_init(&tc, 3, NULL, 1), 0);
    assert_int_equal(tc_elect(&tc, 0), 0);
    for (int k = 0; k < 5; k++)
        assert_int_equal(tc_propose(&tc, 0, "x", NULL), RAFT_OK);
    tc_stabilize(&tc, 0);
    last = raft_get_last_index(R(&tc, 0));
    raft_report_unreachable(R(&tc, 0), 3); /* probe state, next = match + 1 */
    msg_init(&m, RAFT_MSG_APPEND_RESP, 3, 1, raft_get_term(R(&tc, 0)));
    m.reject = true;
    m.index = last;
    m.log_term = raft_get_term(R(&tc, 0)) + 7; /* a term the leader never had */
    m.reject_hint = 3;
    assert_int_equal(tc_step(&tc, 0, &m), RAFT_OK);
    for (size_t i = 0; i < raft_progress_count(R(&tc, 0)); i++) {
        assert_int_equal(raft_progress_at(R(&tc, 0), i, &pi), RAFT_OK);
        if (pi.id == 3)
            assert_int_equal(pi.match, 2);
    }
    tc_destroy(&tc);
}

/* A rejection of an index beyond the leader's log answers nothing it sent in its term
 * (a leader never shortens its own log): it is ignored.  Taken as a hint, it moved the
 * follower's next past the log, and every later send to that follower failed with
 * RAFT_EUNAVAILABLE (docs/sim-findings.md, finding 18: fuzz_raft_step). */
static void test_rejection_beyond_the_log_is_ignored(void **state)
{
    struct test_cluster tc;
    struct raft_message m;
    raft_index last;
    (void)state;
    assert_int_equal(tc_init(&tc, 3, NULL, 1), 0);
    assert_int_equal(tc_elect(&tc, 0), 0);
    assert_int_equal(tc_propose(&tc, 0, "one", NULL), RAFT_OK);
    tc_stabilize(&tc, 0);
    last = raft_get_last_index(R(&tc, 0));
    msg_init(&m, RAFT_MSG_APPEND_RESP, 3, 1, raft_get_term(R(&tc, 0)));
    m.reject = true;
    m.index = last + 2;
    m.reject_hint = last + 2;
    assert_int_equal(tc_step(&tc, 0, &m), RAFT_OK);
    assert_int_equal(tc_process(&tc, 0), 0);
    for (int k = 0; k < 3; k++)
        assert_int_equal(tc_propose(&tc, 0, "more", NULL), RAFT_OK);
    tc_stabilize(&tc, 0);
    tc_tick_stabilize(&tc, 3);
    last = raft_get_last_index(R(&tc, 0));
    assert_int_equal(raft_get_last_index(R(&tc, 2)), last);
    assert_int_equal(raft_get_commit(R(&tc, 2)), last);
    assert_true(tc_applied_contains(&tc, 2, "more"));
    tc_destroy(&tc);
}

/* Log Matching + Leader Append-Only: an isolated old leader's uncommitted entries are
 * overwritten by the new leader's; the new leader never rewrites its own log.  The
 * dropped proposal is recognisable: the entry at its index has another term. */
static void test_divergent_follower_is_repaired(void **state)
{
    struct test_cluster tc;
    raft_index lost_idx, idx2;
    raft_term lost_term, t_new2;
    raft_index leader_last;
    raft_term leader_terms[32];
    (void)state;
    assert_int_equal(tc_init(&tc, 3, NULL, 1), 0);
    assert_int_equal(tc_elect(&tc, 0), 0);
    tc_isolate(&tc, 0);
    for (int k = 0; k < 5; k++) {
        char buf[16];
        snprintf(buf, sizeof buf, "lost%d", k);
        assert_int_equal(raft_propose(R(&tc, 0), buf, strlen(buf), &lost_idx, &lost_term), RAFT_OK);
    }
    tc_stabilize(&tc, 0);
    assert_int_equal(tc_elect(&tc, 1), 0);
    assert_int_equal(tc_propose(&tc, 1, "kept", &idx2), RAFT_OK);
    tc_stabilize(&tc, 0);
    leader_last = raft_get_last_index(R(&tc, 1));
    for (raft_index k = 1; k <= leader_last; k++)
        leader_terms[k] = storage_term(&tc, 1, k);
    tc_heal(&tc);
    tc_tick_stabilize(&tc, 3);
    assert_int_equal(raft_get_role(R(&tc, 0)), RAFT_FOLLOWER);
    for (int i = 0; i < 3; i++) {
        assert_true(tc_applied_contains(&tc, i, "kept"));
        assert_false(tc_applied_contains(&tc, i, "lost0"));
        assert_false(tc_applied_contains(&tc, i, "lost4"));
    }
    /* leader append-only: the new leader's entries are unchanged */
    for (raft_index k = 1; k <= leader_last; k++)
        assert_int_equal(storage_term(&tc, 1, k), leader_terms[k]);
    /* the proposer can tell its proposal was dropped */
    t_new2 = storage_term(&tc, 0, lost_idx);
    assert_true(t_new2 != lost_term);
    check_safe(&tc);
    tc_destroy(&tc);
}

/* Fast backtracking: a follower with a long divergent suffix converges in a number of
 * rejections bounded by the number of distinct terms, not of entries. */
static bool count_rejects(void *arg, const struct raft_message *m)
{
    if (m->type == RAFT_MSG_APPEND_RESP && m->reject)
        (*(int *)arg)++;
    return true;
}

static void test_fast_backtracking(void **state)
{
    struct test_cluster tc;
    raft_term t1[60], t2[40];
    int rejects = 0;
    (void)state;
    for (int k = 0; k < 60; k++)
        t1[k] = k < 10 ? 1 : 2; /* 50 entries of term 2 */
    for (int k = 0; k < 40; k++)
        t2[k] = k < 10 ? 1 : 3; /* 30 entries of term 3 */
    assert_int_equal(tc_init(&tc, 3, NULL, 1), 0);
    preload(&tc, 0, t1, 60, 2);
    preload(&tc, 1, t2, 40, 3);
    preload(&tc, 2, t2, 40, 3);
    tc.filter = count_rejects;
    tc.filter_arg = &rejects;
    assert_int_equal(tc_elect(&tc, 1), 0);
    tc_tick_stabilize(&tc, 3);
    assert_true(rejects > 0);
    assert_true(rejects <= 3);
    assert_int_equal(raft_get_last_index(R(&tc, 0)), raft_get_last_index(R(&tc, 1)));
    assert_int_equal(storage_term(&tc, 0, 40), 3);
    assert_int_equal(raft_get_commit(R(&tc, 0)), raft_get_last_index(R(&tc, 1)));
    check_safe(&tc);
    tc_destroy(&tc);
}

/* §5.4.2 (Figure 8): a leader does not commit an entry of an earlier term by counting
 * replicas; it becomes committed once an entry of the current term is. */
static void test_commit_only_current_term(void **state)
{
    struct test_cluster tc;
    struct raft_message m;
    raft_term terms[2] = {1, 2};
    raft_term t;
    (void)state;
    assert_int_equal(tc_init(&tc, 3, NULL, 1), 0);
    preload(&tc, 0, terms, 2, 3);
    assert_int_equal(raft_campaign(R(&tc, 0)), RAFT_OK);
    t = raft_get_term(R(&tc, 0));
    msg_init(&m, RAFT_MSG_VOTE_RESP, 2, 1, t);
    tc_step(&tc, 0, &m);
    assert_int_equal(raft_get_role(R(&tc, 0)), RAFT_LEADER);
    tc_process(&tc, 0); /* persists the no-op at index 3 */
    tc_drop_queue(&tc);
    /* follower 2 acknowledges index 2 (old term): not committed */
    msg_init(&m, RAFT_MSG_APPEND_RESP, 2, 1, t);
    m.index = 2;
    tc_step(&tc, 0, &m);
    assert_int_equal(raft_get_commit(R(&tc, 0)), 0);
    /* it acknowledges the no-op (current term): 1..3 committed */
    msg_init(&m, RAFT_MSG_APPEND_RESP, 2, 1, t);
    m.index = 3;
    tc_step(&tc, 0, &m);
    assert_int_equal(raft_get_commit(R(&tc, 0)), 3);
    tc_destroy(&tc);
}

/* Pipelining and flow control: in replicate state at most max_inflight APPENDs are
 * outstanding; max_size_per_msg splits large backlogs. */
static void test_flow_control(void **state)
{
    struct test_cluster tc;
    struct raft_config cfg;
    struct raft_progress_info pi;
    char big[100];
    (void)state;
    memset(big, 'b', sizeof big);
    tc_default_config(&cfg);
    cfg.max_inflight_msgs = 3;
    cfg.max_size_per_msg = 250; /* two 100-byte entries per message */
    assert_int_equal(tc_init(&tc, 2, &cfg, 1), 0);
    assert_int_equal(tc_elect(&tc, 0), 0);
    assert_int_equal(raft_progress_get(R(&tc, 0), 2, &pi), RAFT_OK);
    assert_int_equal(pi.state, RAFT_PROGRESS_REPLICATE);
    for (int k = 0; k < 10; k++)
        assert_int_equal(raft_propose(R(&tc, 0), big, sizeof big, NULL, NULL), RAFT_OK);
    tc_process(&tc, 0);
    assert_int_equal(tc_queued(&tc, RAFT_MSG_APPEND, 1, 2), 3);
    assert_int_equal(raft_progress_get(R(&tc, 0), 2, &pi), RAFT_OK);
    assert_int_equal(pi.inflight, 3);
    for (size_t k = 0; k < 3; k++) {
        const struct raft_message *m = tc_queued_at(&tc, k);
        assert_true(m->n_entries >= 1 && m->n_entries <= 2);
    }
    /* acknowledgements reopen the window; everything arrives in the end */
    tc_stabilize(&tc, 0);
    assert_int_equal(tc_applied_commands(&tc, 1), 10);
    assert_int_equal(raft_progress_get(R(&tc, 0), 2, &pi), RAFT_OK);
    assert_int_equal(pi.inflight, 0);
    assert_int_equal(pi.match, raft_get_last_index(R(&tc, 0)));
    tc_destroy(&tc);
}

/* Probe state: after a rejection the leader sends one APPEND at a time. */
static void test_probe_one_at_a_time(void **state)
{
    struct test_cluster tc;
    struct raft_progress_info pi;
    (void)state;
    assert_int_equal(tc_init(&tc, 3, NULL, 1), 0);
    tc_isolate(&tc, 2);
    assert_int_equal(tc_elect(&tc, 0), 0);
    tc_crash(&tc, 2);
    raft_report_unreachable(R(&tc, 0), 3);
    assert_int_equal(raft_progress_get(R(&tc, 0), 3, &pi), RAFT_OK);
    assert_int_equal(pi.state, RAFT_PROGRESS_PROBE);
    for (int k = 0; k < 5; k++)
        raft_propose(R(&tc, 0), "p", 1, NULL, NULL);
    tc_process(&tc, 0);
    assert_true(tc_queued(&tc, RAFT_MSG_APPEND, 1, 3) <= 1);
    tc_heal(&tc);
    tc_restart(&tc, 2);
    tc_tick_stabilize(&tc, 3);
    assert_int_equal(tc_applied_commands(&tc, 2), 5);
    assert_int_equal(raft_progress_get(R(&tc, 0), 3, &pi), RAFT_OK);
    assert_int_equal(pi.state, RAFT_PROGRESS_REPLICATE);
    tc_destroy(&tc);
}

/* Proposals: forwarded by followers that know the leader; refused with a reason
 * otherwise. */
static void test_proposal_forwarding_and_refusal(void **state)
{
    struct test_cluster tc;
    struct raft_config cfg;
    raft_index idx = 99;
    raft_term term = 99;
    (void)state;
    assert_int_equal(tc_init(&tc, 3, NULL, 1), 0);
    assert_int_equal(raft_propose(R(&tc, 1), "a", 1, &idx, &term), RAFT_ENOTLEADER);
    assert_int_equal(idx, 0);
    assert_int_equal(tc_elect(&tc, 0), 0);
    assert_int_equal(raft_propose(R(&tc, 1), "fwd", 3, &idx, &term), RAFT_FORWARDED);
    assert_int_equal(idx, 0);
    assert_int_equal(raft_propose(R(&tc, 0), "", 0, NULL, NULL), RAFT_EINVAL);
    tc_stabilize(&tc, 0);
    for (int i = 0; i < 3; i++)
        assert_true(tc_applied_contains(&tc, i, "fwd"));
    raft_campaign(R(&tc, 2));
    assert_int_equal(raft_propose(R(&tc, 2), "c", 1, NULL, NULL), RAFT_ENOTLEADER);
    tc_destroy(&tc);

    tc_default_config(&cfg);
    cfg.disable_proposal_forwarding = true;
    assert_int_equal(tc_init(&tc, 3, &cfg, 1), 0);
    assert_int_equal(tc_elect(&tc, 0), 0);
    assert_int_equal(raft_propose(R(&tc, 1), "fwd", 3, NULL, NULL), RAFT_ENOTLEADER);
    tc_destroy(&tc);
}

static void test_batch_propose(void **state)
{
    struct test_cluster tc;
    struct raft_buf bufs[64];
    char data[64][16];
    raft_index first;
    raft_term term;
    (void)state;
    assert_int_equal(tc_init(&tc, 3, NULL, 1), 0);
    assert_int_equal(tc_elect(&tc, 0), 0);
    for (int k = 0; k < 64; k++) {
        snprintf(data[k], sizeof data[k], "b%d", k);
        bufs[k].data = data[k];
        bufs[k].len = strlen(data[k]);
    }
    assert_int_equal(raft_propose_batch(R(&tc, 0), bufs, 64, &first, &term), RAFT_OK);
    assert_int_equal(first, 2);
    assert_int_equal(raft_get_last_index(R(&tc, 0)), 65);
    tc_stabilize(&tc, 0);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(tc_applied_commands(&tc, i), 64);
        assert_true(tc_applied_contains(&tc, i, "b63"));
    }
    /* batch forwarded by a follower */
    assert_int_equal(raft_propose_batch(R(&tc, 1), bufs, 3, NULL, NULL), RAFT_FORWARDED);
    tc_stabilize(&tc, 0);
    assert_int_equal(tc_applied_commands(&tc, 2), 67);
    tc_destroy(&tc);
}

/* Heartbeats are distinct messages carrying commit = min(match, commit). */
static void test_heartbeats(void **state)
{
    struct test_cluster tc;
    const struct raft_message *hb;
    (void)state;
    assert_int_equal(tc_init(&tc, 3, NULL, 1), 0);
    assert_int_equal(tc_elect(&tc, 0), 0);
    tc_cut(&tc, 0, 2); /* node 3 gets nothing */
    tc_propose(&tc, 0, "x", NULL);
    tc_stabilize(&tc, 0);
    tc_heal(&tc);
    raft_tick(R(&tc, 0));
    tc_process(&tc, 0);
    assert_int_equal(tc_queued(&tc, RAFT_MSG_HEARTBEAT, 1, 0), 2);
    hb = tc_queued_find(&tc, RAFT_MSG_HEARTBEAT, 1, 2);
    assert_non_null(hb);
    assert_int_equal(hb->commit, raft_get_commit(R(&tc, 0)));
    assert_int_equal(hb->n_entries, 0);
    hb = tc_queued_find(&tc, RAFT_MSG_HEARTBEAT, 1, 3);
    assert_non_null(hb);
    assert_true(hb->commit < raft_get_commit(R(&tc, 0)));
    tc_stabilize(&tc, 0);
    /* the heartbeat response lets the leader repair node 3 */
    assert_true(tc_applied_contains(&tc, 2, "x"));
    tc_destroy(&tc);
}

/* Ready discipline: nothing may change between ready and advance. */
static void test_busy_between_ready_and_advance(void **state)
{
    struct test_cluster tc;
    struct raft_ready rd;
    struct raft_message m;
    (void)state;
    assert_int_equal(tc_init(&tc, 3, NULL, 1), 0);
    assert_int_equal(tc_elect(&tc, 0), 0);
    raft_propose(R(&tc, 0), "x", 1, NULL, NULL);
    assert_int_equal(raft_ready(R(&tc, 0), &rd), RAFT_OK);
    assert_int_equal(rd.n_entries, 1);
    assert_true(rd.must_sync);
    assert_int_equal(raft_ready(R(&tc, 0), &rd), RAFT_EBUSY);
    assert_int_equal(raft_propose(R(&tc, 0), "y", 1, NULL, NULL), RAFT_EBUSY);
    assert_int_equal(raft_tick(R(&tc, 0)), RAFT_EBUSY);
    msg_init(&m, RAFT_MSG_HEARTBEAT_RESP, 2, 1, raft_get_term(R(&tc, 0)));
    assert_int_equal(raft_step(R(&tc, 0), &m), RAFT_EBUSY);
    assert_false(raft_has_ready(R(&tc, 0)));
    assert_int_equal(raft_memory_storage_append(tc.nodes[0].ms, rd.entries, rd.n_entries), RAFT_OK);
    assert_int_equal(raft_advance(R(&tc, 0), &rd), RAFT_OK);
    assert_int_equal(raft_advance(R(&tc, 0), &rd), RAFT_EINVAL);
    tc_destroy(&tc);
}

/* Quiescence check for the multi-raft layer. */
static void test_fully_replicated(void **state)
{
    struct test_cluster tc;
    (void)state;
    assert_int_equal(tc_init(&tc, 3, NULL, 1), 0);
    assert_int_equal(tc_elect(&tc, 0), 0);
    tc_tick_stabilize(&tc, 1);
    for (int i = 0; i < 3; i++)
        assert_true(raft_is_fully_replicated(R(&tc, i)));
    raft_propose(R(&tc, 0), "x", 1, NULL, NULL);
    assert_false(raft_is_fully_replicated(R(&tc, 0)));
    tc_process(&tc, 0);
    assert_false(raft_is_fully_replicated(R(&tc, 0)));
    tc_stabilize(&tc, 0);
    assert_true(raft_is_fully_replicated(R(&tc, 0)));
    tc_tick_stabilize(&tc, 1);
    for (int i = 0; i < 3; i++)
        assert_true(raft_is_fully_replicated(R(&tc, i)));
    tc_isolate(&tc, 2);
    raft_propose(R(&tc, 0), "y", 1, NULL, NULL);
    tc_stabilize(&tc, 0);
    assert_false(raft_is_fully_replicated(R(&tc, 0)));
    tc_destroy(&tc);
}

/* Crash/restart: a follower that lost unpersisted state catches up; committed entries
 * are applied exactly once, in order. */
static void test_restart_catch_up(void **state)
{
    struct test_cluster tc;
    (void)state;
    assert_int_equal(tc_init(&tc, 3, NULL, 1), 0);
    assert_int_equal(tc_elect(&tc, 0), 0);
    tc_propose(&tc, 0, "a", NULL);
    tc_stabilize(&tc, 0);
    tc_crash(&tc, 2);
    tc_propose(&tc, 0, "b", NULL);
    tc_propose(&tc, 0, "c", NULL);
    tc_stabilize(&tc, 0);
    assert_int_equal(tc_restart(&tc, 2), 0);
    tc_tick_stabilize(&tc, 3);
    assert_int_equal(tc_applied_commands(&tc, 2), 3);
    assert_true(tc_applied_contains(&tc, 2, "c"));
    /* the leader crashes and restarts: re-elected or not, all is consistent */
    tc_crash(&tc, 0);
    tc_tick_stabilize(&tc, 30);
    assert_int_equal(tc_restart(&tc, 0), 0);
    tc_propose(&tc, tc_leader(&tc), "d", NULL);
    tc_tick_stabilize(&tc, 3);
    for (int i = 0; i < 3; i++)
        assert_true(tc_applied_contains(&tc, i, "d"));
    check_safe(&tc);
    tc_destroy(&tc);
}

/* Leader Completeness (§5.4) and State Machine Safety (§5.4.3): over random runs with
 * loss, partitions and crashes, every entry applied anywhere is in the log of every
 * later leader, and no two nodes apply different entries at an index. */
static void test_leader_completeness_random(void **state)
{
    (void)state;
    for (uint64_t seed = 1; seed <= 25; seed++) {
        struct test_cluster tc;
        struct raft_config cfg;
        size_t proposals = 0;
        tc_default_config(&cfg);
        cfg.pre_vote = seed % 2 == 1;
        cfg.check_quorum = seed % 4 < 2;
        cfg.max_inflight_msgs = (uint32_t)(1 + seed % 5);
        assert_int_equal(tc_init(&tc, seed % 2 ? 5 : 3, &cfg, seed), 0);
        tc.drop_per_mille = (uint32_t)(seed % 3) * 50;
        for (int step = 0; step < 400; step++) {
            int n = seed % 2 ? 5 : 3;
            int victim = (int)((seed * 13 + (uint64_t)step * 7) % (uint64_t)n);
            int l;
            if (step % 60 == 15)
                tc_isolate(&tc, victim);
            if (step % 60 == 40)
                tc_heal(&tc);
            if (step % 90 == 30)
                tc_crash(&tc, victim);
            if (step % 90 == 70)
                for (int i = 0; i < n; i++)
                    tc_restart(&tc, i);
            l = tc_leader(&tc);
            if (l >= 0) {
                char buf[32];
                snprintf(buf, sizeof buf, "%llu-%d", (unsigned long long)seed, step);
                if (tc_propose(&tc, l, buf, NULL) == RAFT_OK)
                    proposals++;
                /* leader completeness: it holds every entry applied anywhere */
                for (int i = 0; i < n; i++) {
                    const struct tc_node *nd = &tc.nodes[i];
                    for (size_t k = 0; k < nd->n_applied; k++) {
                        raft_index idx = nd->applied[k].index;
                        if (idx < raft_get_first_index(R(&tc, l)))
                            continue;
                        assert_int_equal(storage_term(&tc, l, idx) == nd->applied[k].term ||
                                             idx > storage_last(&tc, l),
                                         1);
                        assert_true(idx <= raft_get_last_index(R(&tc, l)));
                    }
                }
            }
            tc_tick(&tc);
            tc_stabilize(&tc, 0);
        }
        tc_heal(&tc);
        for (int i = 0; i < 5; i++)
            if (tc.nodes[i].present)
                tc_restart(&tc, i);
        tc.drop_per_mille = 0;
        tc_tick_stabilize(&tc, 40);
        assert_true(proposals > 0);
        if (tc_leader(&tc) < 0) {
            for (int i = 0; i < 5; i++)
                if (tc.nodes[i].present)
                    print_message("seed %llu node %d role %d term %llu leader %llu last %llu commit %llu applied %llu\n",
                                  (unsigned long long)seed, i, raft_get_role(R(&tc, i)),
                                  (unsigned long long)raft_get_term(R(&tc, i)),
                                  (unsigned long long)raft_get_leader(R(&tc, i)),
                                  (unsigned long long)raft_get_last_index(R(&tc, i)),
                                  (unsigned long long)raft_get_commit(R(&tc, i)),
                                  (unsigned long long)raft_get_applied(R(&tc, i)));
        }
        assert_true(tc_leader(&tc) >= 0);
        check_safe(&tc);
        tc_destroy(&tc);
    }
}

/* Ownership: Ready messages point into the sender's buffers until its advance; the
 * bench loop steps them straight into other replicas (no copies) under ASan, for
 * single entries and batches, and checks every entry was applied everywhere. */
static void test_zero_copy_delivery_and_memory(void **state)
{
    struct raft_bench_result res;
    (void)state;
    assert_int_equal(raft_bench_run(3, 1, 200, 64, &res), 0);
    assert_int_equal(res.entries, 200);
    assert_true(res.applied >= 3 * 200);
    /* a quiesced replica keeps only its core state (struct, progress, config) */
    assert_true(res.quiesced_bytes > 0);
    assert_true(res.quiesced_bytes < 800);
    assert_int_equal(raft_bench_run(5, 64, 640, 100, &res), 0);
    assert_int_equal(res.entries, 640);
    assert_true(res.applied >= 5 * 640);
}

/* Buffers kept while active are released by raft_release_memory / an idle tick. */
static void test_release_memory(void **state)
{
    struct test_cluster tc;
    size_t busy, idle;
    (void)state;
    assert_int_equal(tc_init(&tc, 3, NULL, 1), 0);
    assert_int_equal(tc_elect(&tc, 0), 0);
    for (int k = 0; k < 20; k++)
        tc_propose(&tc, 0, "some data to replicate", NULL);
    tc_stabilize(&tc, 0);
    busy = raft_memory_usage(R(&tc, 0));
    raft_release_memory(R(&tc, 0));
    idle = raft_memory_usage(R(&tc, 0));
    assert_true(idle < busy);
    assert_true(idle < 800);
    /* an idle tick releases too (after the heartbeat Ready is advanced) */
    tc_tick_stabilize(&tc, 1);
    raft_tick(R(&tc, 1));
    tc_stabilize(&tc, 0);
    raft_tick(R(&tc, 1));
    assert_true(raft_memory_usage(R(&tc, 1)) < 800);
    tc_destroy(&tc);
}

/* Commit-only APPENDs to an up-to-date follower are not answered. */
static void test_commit_only_append_not_answered(void **state)
{
    struct test_cluster tc;
    const struct raft_message *m;
    (void)state;
    assert_int_equal(tc_init(&tc, 2, NULL, 1), 0);
    assert_int_equal(tc_elect(&tc, 0), 0);
    tc_propose(&tc, 0, "x", NULL);
    tc_process(&tc, 0);
    tc_deliver_type(&tc, RAFT_MSG_APPEND);   /* entries to node 2 */
    tc_process(&tc, 1);
    tc_deliver_type(&tc, RAFT_MSG_APPEND_RESP);
    tc_process(&tc, 0);                      /* commit advanced: notification */
    m = tc_queued_find(&tc, RAFT_MSG_APPEND, 1, 2);
    assert_non_null(m);
    assert_int_equal(m->n_entries, 0);
    assert_int_equal(m->context, RAFT_APPEND_COMMIT_ONLY);
    assert_int_equal(m->commit, raft_get_commit(R(&tc, 0)));
    tc_deliver_type(&tc, RAFT_MSG_APPEND);
    tc_process(&tc, 1);
    assert_int_equal(tc_queued(&tc, RAFT_MSG_APPEND_RESP, 2, 1), 0);
    assert_int_equal(raft_get_commit(R(&tc, 1)), raft_get_commit(R(&tc, 0)));
    assert_true(tc_applied_contains(&tc, 1, "x"));
    tc_destroy(&tc);
}

/* Determinism: the same seed and inputs give the same run. */
static void run_det(uint64_t seed, uint64_t *digest)
{
    struct test_cluster tc;
    struct raft_config cfg;
    uint64_t h = 1469598103934665603ULL;
    tc_default_config(&cfg);
    cfg.pre_vote = true;
    assert_int_equal(tc_init(&tc, 5, &cfg, seed), 0);
    tc.drop_per_mille = 100;
    for (int step = 0; step < 150; step++) {
        int l = tc_leader(&tc);
        if (l >= 0 && step % 2 == 0)
            tc_propose(&tc, l, "d", NULL);
        if (step == 60)
            tc_isolate(&tc, l >= 0 ? l : 0);
        if (step == 100)
            tc_heal(&tc);
        tc_tick(&tc);
        tc_stabilize(&tc, 0);
    }
    for (int i = 0; i < 5; i++) {
        h = (h ^ raft_get_term(R(&tc, i))) * 1099511628211ULL;
        h = (h ^ raft_get_commit(R(&tc, i))) * 1099511628211ULL;
        h = (h ^ tc.nodes[i].msgs_sent) * 1099511628211ULL;
    }
    h = (h ^ tc.delivered) * 1099511628211ULL;
    *digest = h;
    tc_destroy(&tc);
}

static void test_deterministic(void **state)
{
    uint64_t a, b, c;
    (void)state;
    run_det(11, &a);
    run_det(11, &b);
    run_det(12, &c);
    assert_true(a == b);
    assert_true(a != c); /* the seed matters */
}

/* Out of memory: with every P-th allocation failing, the core returns RAFT_ENOMEM
 * without corrupting itself (ASan/UBSan watch), and once memory is back the cluster
 * converges with all safety properties intact. */
struct flaky {
    unsigned long calls;
    unsigned long period;
    bool armed;
    unsigned long failures;
};

static bool flaky_fail(struct flaky *f)
{
    if (!f->armed)
        return false;
    if (++f->calls % f->period == 0) {
        f->failures++;
        return true;
    }
    return false;
}
static void *flaky_malloc(void *ctx, size_t n)
{
    return flaky_fail(ctx) ? NULL : malloc(n);
}
static void *flaky_realloc(void *ctx, void *p, size_t n)
{
    return flaky_fail(ctx) ? NULL : realloc(p, n);
}
static void flaky_free(void *ctx, void *p)
{
    (void)ctx;
    free(p);
}

static void test_out_of_memory(void **state)
{
    (void)state;
    for (unsigned long period = 3; period <= 40; period += 3) {
        struct test_cluster tc;
        struct flaky f = {0, period, false, 0};
        struct raft_allocator a = {&f, flaky_malloc, flaky_realloc, flaky_free};
        char buf[256];
        int l;
        assert_int_equal(tc_init(&tc, 3, NULL, period), 0);
        tc.alloc = &a;
        for (int i = 0; i < 3; i++) {
            tc_crash(&tc, i);
            assert_int_equal(tc_restart(&tc, i), 0);
        }
        f.armed = true;
        for (int step = 0; step < 120; step++) {
            l = tc_leader(&tc);
            if (l >= 0) {
                char cmd[32];
                snprintf(cmd, sizeof cmd, "oom%d", step);
                (void)tc_propose(&tc, l, cmd, NULL);
                if (step % 7 == 0)
                    (void)raft_read_index(R(&tc, l), (uint64_t)step);
            }
            tc_tick(&tc);
            tc_stabilize(&tc, 0);
        }
        f.armed = false;
        assert_true(f.failures > 0);
        if (tc.error != -1000 && tc.error != -1001)
            tc.error = 0; /* the RAFT_ENOMEMs were expected; safety flags are not */
        tc_tick_stabilize(&tc, 60);
        l = tc_leader(&tc);
        assert_true(l >= 0);
        assert_int_equal(tc_propose(&tc, l, "after-oom", NULL), RAFT_OK);
        tc_tick_stabilize(&tc, 3);
        for (int i = 0; i < 3; i++)
            assert_true(tc_applied_contains(&tc, i, "after-oom"));
        if (tc_check_safety(&tc, buf, sizeof buf) != 0)
            fail_msg("period %lu: %s", period, buf);
        tc_destroy(&tc);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_basic_commit),
        cmocka_unit_test(test_commit_needs_majority),
        cmocka_unit_test(test_append_consistency_check_and_hint),
        cmocka_unit_test(test_stale_append_does_not_truncate),
        cmocka_unit_test(test_impossible_entries_are_refused),
        cmocka_unit_test(test_follower_that_lost_acknowledged_entries_is_repaired),
        cmocka_unit_test(test_a_rejection_naming_a_term_matches_below_its_hint),
        cmocka_unit_test(test_rejection_beyond_the_log_is_ignored),
        cmocka_unit_test(test_divergent_follower_is_repaired),
        cmocka_unit_test(test_fast_backtracking),
        cmocka_unit_test(test_commit_only_current_term),
        cmocka_unit_test(test_flow_control),
        cmocka_unit_test(test_probe_one_at_a_time),
        cmocka_unit_test(test_proposal_forwarding_and_refusal),
        cmocka_unit_test(test_batch_propose),
        cmocka_unit_test(test_heartbeats),
        cmocka_unit_test(test_busy_between_ready_and_advance),
        cmocka_unit_test(test_fully_replicated),
        cmocka_unit_test(test_restart_catch_up),
        cmocka_unit_test(test_leader_completeness_random),
        cmocka_unit_test(test_zero_copy_delivery_and_memory),
        cmocka_unit_test(test_release_memory),
        cmocka_unit_test(test_commit_only_append_not_answered),
        cmocka_unit_test(test_deterministic),
        cmocka_unit_test(test_out_of_memory),
    };
    return cmocka_run_group_tests_name("raft_replication", tests, NULL, NULL);
}
