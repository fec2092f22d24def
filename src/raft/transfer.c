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
    return raft_hup(r, true);
}
