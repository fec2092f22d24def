/*
 * transfer.c — leadership transfer (dissertation §3.10): the leader stops accepting
 * proposals, brings the target's log up to date, then sends it TIMEOUT_NOW so it
 * campaigns at once (its VOTE requests carry context 1 so that followers' leases do
 * not refuse them).  The transfer is aborted after one election timeout.
 */
#include "raft_internal.h"

static int send_timeout_now(struct raft *r, raft_id to)
{
    struct raft_message m;
    memset(&m, 0, sizeof m);
    m.type = RAFT_MSG_TIMEOUT_NOW;
    m.to = to;
    m.term = r->term;
    return raft_send(r, &m);
}

int raft_transfer_start(struct raft *r, raft_id target)
{
    struct raft_progress *pr;
    int rc;
    if (target == r->id) {
        raft_transfer_abort(r);
        return RAFT_OK; /* already the leader */
    }
    pr = raft_progress_find(r, target);
    if (pr == NULL || pr->learner)
        return RAFT_EINVAL;
    if (r->transferee == target)
        return RAFT_OK;
    r->transferee = target;
    r->transfer_elapsed = 0;
    if (pr->match == raft_log_last_index(r))
        return send_timeout_now(r, target);
    rc = raft_send_append(r, pr, true);
    return rc < 0 ? rc : RAFT_OK;
}

void raft_transfer_abort(struct raft *r)
{
    r->transferee = RAFT_NONE;
    r->transfer_elapsed = 0;
}

int raft_transfer_on_progress(struct raft *r, struct raft_progress *pr)
{
    if (r->transferee == pr->id && pr->match == raft_log_last_index(r))
        return send_timeout_now(r, pr->id);
    return RAFT_OK;
}

int raft_step_timeout_now(struct raft *r, const struct raft_message *m)
{
    (void)m;
    if (!raft_promotable(r))
        return RAFT_OK;
    /* The leader sends it once: if the commit of a configuration change reached
     * us with it and the change is not applied yet, campaigning must wait for
     * that (raft_hup), but dropping the request would leave the leader refusing
     * proposals until its transfer times out, and the transfer undone. */
    if (raft_unapplied_conf_change(r)) {
        r->timeout_now_term = r->term;
        r->timeout_now_age = 0;
        return RAFT_OK;
    }
    return raft_hup(r, true);
}

int raft_transfer_after_apply(struct raft *r)
{
    if (r->timeout_now_term == 0)
        return RAFT_OK;
    if (r->timeout_now_term != r->term || r->role != RAFT_FOLLOWER ||
        r->timeout_now_age >= r->election_tick) {
        r->timeout_now_term = 0; /* a new term or role: that leader's request is stale */
        return RAFT_OK;
    }
    if (raft_unapplied_conf_change(r))
        return RAFT_OK;
    r->timeout_now_term = 0;
    if (!raft_promotable(r))
        return RAFT_OK;
    return raft_hup(r, true);
}
