/*
 * status.c — read-only introspection for the upper layer (status views, quiescence
 * checks) and memory housekeeping.
 */
#include "raft_internal.h"

raft_id raft_get_id(const struct raft *r) { return r->id; }
int raft_get_role(const struct raft *r) { return r->role; }
raft_term raft_get_term(const struct raft *r) { return r->term; }
raft_id raft_get_leader(const struct raft *r) { return r->leader; }
uint32_t raft_get_election_elapsed(const struct raft *r) { return r->election_elapsed; }
raft_index raft_get_commit(const struct raft *r) { return r->log.committed; }
raft_index raft_get_applied(const struct raft *r) { return r->log.applied; }
raft_id raft_get_transferee(const struct raft *r) { return r->transferee; }

/* The log accessors take a non-const raft (they may call storage); they do not
 * modify it. */
raft_index raft_get_first_index(const struct raft *r)
{
    return raft_log_first_index((struct raft *)r);
}

raft_index raft_get_last_index(const struct raft *r)
{
    return raft_log_last_index((struct raft *)r);
}

bool raft_is_log_up_to_date(const struct raft *r, raft_term last_term, raft_index last_index)
{
    return raft_log_up_to_date((struct raft *)r, last_term, last_index);
}

void raft_get_conf_state(const struct raft *r, struct raft_conf_state *out)
{
    out->voters = r->conf_ids;
    out->n_voters = r->n_voters;
    out->learners = r->conf_ids != NULL ? r->conf_ids + r->n_voters : NULL;
    out->n_learners = r->n_prs - r->n_voters;
}

bool raft_conf_change_pending(const struct raft *r)
{
    return r->role == RAFT_LEADER && r->pending_conf_index > r->log.applied;
}

void raft_get_status(const struct raft *r, struct raft_status *out)
{
    memset(out, 0, sizeof *out);
    out->id = r->id;
    out->role = r->role;
    out->term = r->term;
    out->vote = r->vote;
    out->leader = r->leader;
    out->commit = r->log.committed;
    out->applied = r->log.applied;
    out->first_index = raft_get_first_index(r);
    out->last_index = raft_get_last_index(r);
    out->is_learner = raft_is_learner(r, r->id);
    out->conf_change_pending = raft_conf_change_pending(r);
    out->transferee = r->transferee;
    out->n_voters = r->n_voters;
    out->n_learners = r->n_prs - r->n_voters;
    out->n_pending_reads = r->n_reads;
}

size_t raft_progress_count(const struct raft *r)
{
    return r->n_prs;
}

static void fill_progress(const struct raft_progress *pr, struct raft_progress_info *out)
{
    out->id = pr->id;
    out->match = pr->match;
    out->next = pr->next;
    out->state = pr->state;
    out->recent_active = pr->recent_active;
    out->is_learner = pr->learner;
    out->inflight = pr->infl_count;
    out->pending_snapshot = pr->pending_snapshot;
    out->snapshot_sent = pr->snapshot_sent > pr->match ? pr->snapshot_sent : 0;
}

int raft_progress_at(const struct raft *r, size_t i, struct raft_progress_info *out)
{
    if (i >= r->n_prs)
        return RAFT_EINVAL;
    fill_progress(&r->prs[i], out);
    return RAFT_OK;
}

int raft_progress_get(const struct raft *r, raft_id id, struct raft_progress_info *out)
{
    for (uint32_t i = 0; i < r->n_prs; i++) {
        if (r->prs[i].id == id) {
            fill_progress(&r->prs[i], out);
            return RAFT_OK;
        }
    }
    return RAFT_EINVAL;
}

bool raft_is_fully_replicated_except(const struct raft *r,
                                     bool (*lagging_ok)(void *arg, raft_id id), void *arg)
{
    raft_index last;
    if (r->busy || raft_has_ready(r) || r->log.n > r->log.n_stable || r->log.snap != NULL)
        return false;
    if (r->role == RAFT_PRE_CANDIDATE || r->role == RAFT_CANDIDATE)
        return false;
    last = raft_get_last_index(r);
    if (r->log.committed != last || r->log.applied != last)
        return false;
    if (r->role != RAFT_LEADER)
        return true;
    if (r->transferee != RAFT_NONE || r->n_reads > 0)
        return false;
    for (uint32_t i = 0; i < r->n_prs; i++)
        if (r->prs[i].match != last &&
            (lagging_ok == NULL || !lagging_ok(arg, r->prs[i].id)))
            return false;
    return true;
}

bool raft_is_fully_replicated(const struct raft *r)
{
    return raft_is_fully_replicated_except(r, NULL, NULL);
}

size_t raft_memory_usage(const struct raft *r)
{
    return r->mem;
}

void raft_release_memory(struct raft *r)
{
    for (uint32_t i = 0; i < r->n_prs; i++)
        if (r->prs[i].infl_count == 0)
            raft_progress_free_infl(r, &r->prs[i]);
    if (r->busy)
        return;
    if (r->out != NULL && r->out->n_msgs == 0 && r->out->n_rstates == 0 &&
        r->out->n_rd_comm == 0)
        raft_free_output(r);
    if (r->log.n == 0)
        raft_log_release(r);
}
