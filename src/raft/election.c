/*
 * election.c — leader election (§5.2), the election restriction (§5.4.1) and
 * PreVote (dissertation §9.6).
 */
#include "raft_internal.h"

bool raft_promotable(struct raft *r)
{
    return raft_is_voter(r, r->id);
}

/* A committed but not yet applied conf change may remove us or change the quorum;
 * campaigning before it is applied could use a stale configuration. */
bool raft_unapplied_conf_change(struct raft *r)
{
    struct raft_entry_sink sink;
    raft_index lo = r->log.applied + 1, hi = r->log.committed + 1;
    bool found = false;
    if (r->log.snap != NULL && lo <= r->log.snap->index)
        lo = r->log.snap->index + 1;
    if (lo >= hi)
        return false;
    if (hi - lo > 4096)
        return true; /* far behind in applying: let the caller catch up first */
    raft_sink_init(&sink, r, lo);
    if (raft_log_entries(r, lo, hi, UINT64_MAX, &sink) != RAFT_OK) {
        found = true; /* cannot tell: be conservative */
    } else {
        for (uint32_t i = 0; i < sink.n; i++)
            if (sink.ents[i].type == RAFT_ENTRY_CONF_CHANGE)
                found = true;
    }
    raft_sink_fini(&sink);
    return found;
}

static uint32_t count_votes(struct raft *r, uint8_t which)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < r->n_prs; i++)
        if (!r->prs[i].learner && r->prs[i].vote == which)
            n++;
    return n;
}

static int campaign(struct raft *r, bool pre, bool transfer)
{
    struct raft_progress *self;
    raft_term campaign_term;
    raft_index last;
    raft_term last_term;
    int rc;

    if (pre)
        raft_become_pre_candidate(r);
    else
        raft_become_candidate(r);
    campaign_term = pre ? r->term + 1 : r->term;
    self = raft_progress_find(r, r->id);
    if (self != NULL)
        self->vote = 1;
    if (count_votes(r, 1) >= raft_quorum(r)) {
        /* Single voter: won already. */
        if (pre)
            return campaign(r, false, transfer);
        return raft_become_leader(r);
    }
    last = raft_log_last_index(r);
    last_term = raft_log_last_term(r);
    for (uint32_t i = 0; i < r->n_prs; i++) {
        struct raft_message m;
        if (r->prs[i].learner || r->prs[i].id == r->id)
            continue;
        memset(&m, 0, sizeof m);
        m.type = pre ? RAFT_MSG_PREVOTE : RAFT_MSG_VOTE;
        m.to = r->prs[i].id;
        m.term = campaign_term;
        m.index = last;
        m.log_term = last_term;
        m.context = transfer ? 1 : 0;
        if ((rc = raft_send(r, &m)) != RAFT_OK)
            return rc;
    }
    return RAFT_OK;
}

int raft_hup(struct raft *r, bool transfer)
{
    if (r->role == RAFT_LEADER)
        return RAFT_OK;
    if (!raft_promotable(r))
        return RAFT_ENOTMEMBER;
    if (raft_unapplied_conf_change(r))
        return RAFT_OK;
    /* A transfer target campaigns for real at once (dissertation §3.10). */
    return campaign(r, r->pre_vote && !transfer, transfer);
}

int raft_step_vote_req(struct raft *r, const struct raft_message *m)
{
    struct raft_message resp;
    bool pre = m->type == RAFT_MSG_PREVOTE;
    /* Figure 2, RequestVote: grant if votedFor is null or candidateId (one vote per
     * term, §5.2) and the candidate's log is at least as up to date (§5.4.1).  A
     * pre-vote for a future term does not bind us. */
    bool can_vote = r->vote == m->from ||
                    (r->vote == RAFT_NONE && r->leader == RAFT_NONE) ||
                    (pre && m->term > r->term);
    memset(&resp, 0, sizeof resp);
    resp.type = pre ? RAFT_MSG_PREVOTE_RESP : RAFT_MSG_VOTE_RESP;
    resp.to = m->from;
    if (can_vote && raft_log_up_to_date(r, m->log_term, m->index)) {
        resp.term = pre ? m->term : r->term;
        if (!pre) {
            r->vote = m->from;
            r->election_elapsed = 0;
        }
    } else {
        resp.term = r->term;
        resp.reject = 1;
    }
    return raft_send(r, &resp);
}

int raft_step_vote_resp(struct raft *r, const struct raft_message *m)
{
    struct raft_progress *pr;
    uint32_t q = raft_quorum(r);
    if (r->role == RAFT_CANDIDATE) {
        if (m->type != RAFT_MSG_VOTE_RESP || m->term != r->term)
            return RAFT_OK;
    } else if (r->role == RAFT_PRE_CANDIDATE) {
        if (m->type != RAFT_MSG_PREVOTE_RESP)
            return RAFT_OK;
        if (m->reject ? m->term != r->term : m->term != r->term + 1)
            return RAFT_OK;
    } else {
        return RAFT_OK;
    }
    pr = raft_progress_find(r, m->from);
    if (pr == NULL || pr->learner || pr->vote != 0)
        return RAFT_OK;
    pr->vote = m->reject ? 2 : 1;
    if (count_votes(r, 1) >= q) {
        if (r->role == RAFT_PRE_CANDIDATE)
            return campaign(r, false, false);
        return raft_become_leader(r);
    }
    if (count_votes(r, 2) >= r->n_voters - q + 1)
        raft_become_follower(r, r->term, RAFT_NONE); /* lost */
    return RAFT_OK;
}
