/*
 * ready.c — the Ready / Advance hand-off: what to persist, send and apply, and the
 * application of committed configuration changes (they take effect when handed out
 * here; raft.h "MEMBERSHIP").
 */
#include "raft_internal.h"

static raft_index apply_from(const struct raft *r)
{
    raft_index lo = r->log.applied + 1;
    if (r->log.snap != NULL && lo <= r->log.snap->index)
        lo = r->log.snap->index + 1;
    return lo;
}

bool raft_has_unstable_entries(const struct raft *r)
{
    return !r->busy && r->log.n > r->log.n_stable;
}

bool raft_has_ready(const struct raft *r)
{
    if (r->busy)
        return false;
    if ((r->out != NULL && (r->out->n_msgs > 0 || r->out->n_rstates > 0)) ||
        r->log.n > r->log.n_stable || (r->log.snap != NULL && !r->log.snap_handed) ||
        r->conf_changed)
        return true;
    if (r->role != r->prev_role || r->leader != r->prev_leader)
        return true;
    if (r->term != r->prev_hs.term || r->vote != r->prev_hs.vote ||
        r->log.committed != r->prev_hs.commit)
        return true;
    return r->log.committed >= apply_from(r);
}

static int apply_conf_entry(struct raft *r, const struct raft_entry *e)
{
    struct raft_conf_change cc;
    struct raft_progress farewell;
    bool removing_peer = false;
    int rc = raft_conf_change_decode(e->data, e->len, &cc);
    if (rc != RAFT_OK)
        return RAFT_OK; /* not ours to judge: the upper layer sees the entry too */
    if (r->role == RAFT_LEADER && cc.type == RAFT_CC_REMOVE && cc.replica != r->id) {
        struct raft_progress *pr = raft_progress_find(r, cc.replica);
        if (pr != NULL) {
            farewell = *pr;
            removing_peer = true;
        }
    }
    rc = raft_conf_apply(r, &cc);
    if (rc != RAFT_OK)
        return rc;
    if (removing_peer) {
        /* A last APPEND (from its match on, with the commit index) lets the removed
         * replica learn of its removal, so it stops campaigning and its upper layer
         * can retire it.  Best effort: it is not tracked any more. */
        farewell.infl = NULL;
        farewell.infl_cap = farewell.infl_count = farewell.infl_start = 0;
        farewell.state = RAFT_PROGRESS_PROBE;
        farewell.probe_sent = false;
        farewell.next = farewell.match + 1;
        if ((rc = raft_send_append(r, &farewell, true)) < 0)
            return rc;
    }
    if (r->role == RAFT_LEADER) {
        if (!raft_is_voter(r, r->id)) {
            /* Dissertation §4.2.2: a leader that committed its own removal steps
             * down; one last heartbeat round spreads the commit index. */
            rc = raft_broadcast_heartbeat(r, 0);
            raft_become_follower(r, r->term, RAFT_NONE);
            return rc;
        }
        if (r->transferee != RAFT_NONE && !raft_is_voter(r, r->transferee))
            raft_transfer_abort(r);
        /* The quorum changed: commit and pending reads may move; new members need
         * their first APPEND. */
        if ((rc = raft_commit_and_broadcast(r)) != RAFT_OK)
            return rc;
        if (cc.type != RAFT_CC_REMOVE && cc.replica != r->id) {
            struct raft_progress *pr = raft_progress_find(r, cc.replica);
            if (pr != NULL && (rc = raft_send_append(r, pr, true)) < 0)
                return rc;
        }
        return raft_reads_on_ack(r);
    }
    if (r->role != RAFT_FOLLOWER && !raft_is_voter(r, r->id))
        raft_become_follower(r, r->term, RAFT_NONE);
    return RAFT_OK;
}

int raft_ready(struct raft *r, struct raft_ready *rd)
{
    raft_index lo, hi;
    int rc;
    if (r->busy)
        return RAFT_EBUSY;
    if (raft_out_get(r) == NULL)
        return RAFT_ENOMEM;

    lo = apply_from(r);
    hi = r->log.committed + 1;
    /* A snapshot to install goes alone: the state machine must hold it before it
     * applies what follows (entries after it are judged against its state — a
     * command id it recorded as applied, say), so the committed entries after it
     * wait for the next Ready, after the application persisted it. */
    if (r->log.snap != NULL && !r->log.snap_handed)
        hi = lo;
    r->out->rd_comm = NULL;
    r->out->n_rd_comm = 0;
    if (lo < hi && lo >= r->log.offset && r->log.snap == NULL) {
        /* Fast path: the entries are still in memory; hand out a slice. */
        r->out->rd_comm = r->log.ents + (lo - r->log.offset);
        r->out->n_rd_comm = raft_log_mem_count(r, lo, hi, r->max_committed_size);
    } else if (lo < hi) {
        struct raft_entry_sink sink;
        raft_sink_init(&sink, r, lo);
        rc = raft_log_entries(r, lo, hi, r->max_committed_size, &sink);
        if (rc != RAFT_OK) {
            raft_sink_fini(&sink);
            return rc;
        }
        {
            /* Swap buffers: the sink's becomes rd_committed, the old one spare. */
            struct raft_entry *old = r->out->rd_committed;
            uint32_t old_cap = r->out->cap_rd_committed;
            r->out->rd_committed = sink.ents;
            r->out->n_rd_committed = sink.n;
            r->out->cap_rd_committed = sink.cap;
            sink.ents = old;
            sink.cap = old_cap;
            sink.n = 0;
            raft_sink_fini(&sink);
        }
        r->out->rd_comm = r->out->rd_committed;
        r->out->n_rd_comm = r->out->n_rd_committed;
    }
    for (uint32_t i = 0; i < r->out->n_rd_comm; i++) {
        if (r->out->rd_comm[i].type == RAFT_ENTRY_CONF_CHANGE &&
            (rc = apply_conf_entry(r, &r->out->rd_comm[i])) != RAFT_OK)
            return rc;
    }
    /* The notices ride in this Ready: sent after its persist step, they are true
     * when they leave (conf changes handed out above count as applied). */
    rc = raft_send_durable_notices(r, r->out->n_rd_comm > 0
                                          ? r->out->rd_comm[r->out->n_rd_comm - 1].index
                                          : r->log.applied);
    if (rc != RAFT_OK)
        return rc;

    rd->snapshot = NULL;
    rd->role = r->role;
    rd->leader = r->leader;
    rd->soft_state_changed = r->role != r->prev_role || r->leader != r->prev_leader;
    rd->hard_state.term = r->term;
    rd->hard_state.vote = r->vote;
    rd->hard_state.commit = r->log.committed;
    rd->term_or_vote_changed = r->term != r->prev_hs.term || r->vote != r->prev_hs.vote;
    rd->has_hard_state = rd->term_or_vote_changed || r->log.committed != r->prev_hs.commit;
    if (r->log.snap != NULL && !r->log.snap_handed) {
        rd->snapshot = r->log.snap;
        r->log.snap_handed = true;
    }
    rd->entries = r->log.ents != NULL ? r->log.ents + r->log.n_stable : NULL;
    rd->n_entries = r->log.n - r->log.n_stable;
    r->log.n_handed = r->log.n - r->log.n_stable;
    rd->must_sync = rd->n_entries > 0 || rd->snapshot != NULL || rd->term_or_vote_changed;
    rd->committed = r->out->rd_comm;
    rd->n_committed = r->out->n_rd_comm;
    rd->conf_changed = r->conf_changed;
    rd->conf_state.voters = r->conf_ids;
    rd->conf_state.n_voters = r->n_voters;
    rd->conf_state.learners = r->conf_ids != NULL ? r->conf_ids + r->n_voters : NULL;
    rd->conf_state.n_learners = r->n_prs - r->n_voters;
    rd->messages = r->out->msgs;
    rd->n_messages = r->out->n_msgs;
    rd->read_states = r->out->rstates;
    rd->n_read_states = r->out->n_rstates;

    r->prev_hs = rd->hard_state;
    r->prev_role = r->role;
    r->prev_leader = r->leader;
    r->conf_changed = false;
    r->busy = true;
    return RAFT_OK;
}

int raft_advance(struct raft *r, const struct raft_ready *rd)
{
    raft_index applied = 0;
    (void)rd;
    if (!r->busy)
        return RAFT_EINVAL;
    if (r->out != NULL && r->out->n_rd_comm > 0)
        applied = r->out->rd_comm[r->out->n_rd_comm - 1].index;
    /* Forget everything handed out before producing new output (buffers kept). */
    raft_reset_output(r);
    if (applied > r->log.applied)
        r->log.applied = applied;
    raft_log_stable(r, r->log.n_handed);
    r->log.n_handed = 0;
    r->busy = false;
    if (r->role == RAFT_FOLLOWER) {
        int rc;
        raft_infer_commit(r); /* our write may complete what a notice proved */
        if ((rc = raft_transfer_after_apply(r)) != RAFT_OK)
            return rc;
    }
    if (r->role == RAFT_LEADER) {
        /* The leader's own entries count toward commitment once persisted. */
        struct raft_progress *self = raft_progress_find(r, r->id);
        raft_index stable = raft_log_stable_last(r);
        if (self != NULL && stable > self->match) {
            self->match = stable;
            self->next = self->match + 1;
            if (stable > r->log.committed)
                return raft_commit_and_broadcast(r);
        }
    }
    return RAFT_OK;
}
