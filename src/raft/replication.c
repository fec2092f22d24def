/*
 * replication.c — log replication (§5.3): the leader's AppendEntries / heartbeats /
 * snapshots with flow control (progress.c), the follower's consistency check with
 * fast backtracking hints, and the commit rule (§5.3, §5.4.2).
 */
#include "raft_internal.h"

bool raft_committed_in_term(struct raft *r)
{
    int rc;
    return raft_log_term(r, r->log.committed, &rc) == r->term && rc == RAFT_OK;
}

/* ------------------------------------------------------------------ leader side */

int raft_leader_append(struct raft *r, const struct raft_buf *bufs, size_t n, uint8_t type,
                       raft_index *first_index)
{
    struct raft_entry stack[16];
    struct raft_entry *ents = stack;
    raft_index first = raft_log_last_index(r) + 1;
    int rc;
    if (n > 16) {
        ents = raft_mem_alloc(r, sizeof *ents * n);
        if (ents == NULL)
            return RAFT_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        ents[i].term = r->term;
        ents[i].index = first + i;
        ents[i].type = type;
        ents[i].data = bufs[i].data;
        ents[i].len = (uint32_t)bufs[i].len;
    }
    rc = raft_log_append(r, ents, n);
    if (ents != stack)
        raft_mem_free(r, ents, sizeof *ents * n);
    if (rc != RAFT_OK)
        return rc;
    if (first_index != NULL)
        *first_index = first;
    /* The leader's own entry counts once persisted (advance); replicate now.  The
     * entries are in the log whatever the sends do: an append that could not be
     * made for lack of memory is made again at the next heartbeat's answer, and
     * reporting the failure would have the caller treat appended entries as not
     * proposed (a conf change not counted as pending, a command proposed twice;
     * found by a review, test_raft_oom.c). */
    for (uint32_t i = 0; i < r->n_prs; i++) {
        if (r->prs[i].id == r->id)
            continue;
        (void)raft_send_append(r, &r->prs[i], false);
    }
    return RAFT_OK;
}

static int send_snapshot(struct raft *r, struct raft_progress *pr)
{
    struct raft_snapshot s, *copy;
    struct raft_message m;
    uint32_t nids;
    raft_id *ids = NULL;
    void *data = NULL;
    int rc = r->st.snapshot(r->st.user, &s);
    if (rc != RAFT_OK || s.index == 0)
        return 0; /* not available yet: try again later */
    nids = s.conf.n_voters + s.conf.n_learners;
    copy = raft_arena_alloc(r, sizeof *copy);
    if (copy == NULL)
        return RAFT_ENOMEM;
    if (nids > 0) {
        ids = raft_arena_alloc(r, sizeof(raft_id) * nids);
        if (ids == NULL)
            return RAFT_ENOMEM;
        memcpy(ids, s.conf.voters, sizeof(raft_id) * s.conf.n_voters);
        if (s.conf.n_learners > 0)
            memcpy(ids + s.conf.n_voters, s.conf.learners,
                   sizeof(raft_id) * s.conf.n_learners);
    }
    if (s.len > 0) {
        data = raft_arena_alloc(r, s.len);
        if (data == NULL)
            return RAFT_ENOMEM;
        memcpy(data, s.data, s.len);
    }
    *copy = s;
    copy->data = data;
    copy->conf.voters = ids;
    copy->conf.learners = ids != NULL ? ids + s.conf.n_voters : NULL;
    memset(&m, 0, sizeof m);
    m.type = RAFT_MSG_SNAPSHOT;
    m.to = pr->id;
    m.term = r->term;
    m.index = s.index;
    m.log_term = s.term;
    m.commit = r->log.committed;
    m.snapshot = copy;
    raft_progress_become_snapshot(r, pr, s.index);
    rc = raft_send(r, &m);
    return rc == RAFT_OK ? 1 : rc;
}

/* Returns 1 if a message was sent, 0 if not, negative on error. */
int raft_send_append(struct raft *r, struct raft_progress *pr, bool send_if_empty)
{
    struct raft_message m;
    raft_index last, prev;
    raft_term prev_term;
    struct raft_entry *ents = NULL;
    uint32_t n;
    int rc;

    if (raft_progress_paused(r, pr))
        return 0;
    last = raft_log_last_index(r);
    if (!send_if_empty && pr->next > last)
        return 0;
    prev = pr->next - 1;
    prev_term = raft_log_term(r, prev, &rc);
    if (rc == RAFT_ECOMPACTED)
        return send_snapshot(r, pr); /* §7: the follower needs discarded entries */
    if (rc != RAFT_OK)
        return rc;
    if (pr->next > last) {
        n = 0;
    } else if (pr->next >= r->log.offset && r->log.snap == NULL) {
        /* Fast path: everything to send is in the in-memory log (the common case):
         * copy the entry structs only; data stays in place until advance. */
        n = raft_log_mem_count(r, pr->next, last + 1, r->max_msg_size);
        ents = raft_arena_alloc(r, sizeof *ents * n);
        if (ents == NULL)
            return RAFT_ENOMEM;
        memcpy(ents, r->log.ents + (pr->next - r->log.offset), sizeof *ents * n);
    } else {
        struct raft_entry_sink sink;
        raft_sink_init(&sink, r, pr->next);
        rc = raft_log_entries(r, pr->next, last + 1, r->max_msg_size, &sink);
        n = sink.n;
        if (rc == RAFT_OK && n > 0) {
            ents = raft_arena_alloc(r, sizeof *ents * n);
            if (ents == NULL)
                rc = RAFT_ENOMEM;
            else
                memcpy(ents, sink.ents, sizeof *ents * n);
        }
        raft_sink_fini(&sink);
        if (rc == RAFT_ECOMPACTED)
            return send_snapshot(r, pr);
        if (rc != RAFT_OK)
            return rc;
    }
    if (n == 0 && !send_if_empty)
        return 0;
    memset(&m, 0, sizeof m);
    m.type = RAFT_MSG_APPEND;
    m.to = pr->id;
    m.term = r->term;
    m.index = prev;
    m.log_term = prev_term;
    m.commit = r->log.committed;
    pr->commit_sent = m.commit;
    m.entries = ents;
    m.n_entries = n;
    /* A follower that acknowledged everything only needs the new commit index: it
     * need not answer (saves a message per commit on idle-ish groups). */
    if (n == 0 && pr->state == RAFT_PROGRESS_REPLICATE && pr->match == prev)
        m.context = RAFT_APPEND_COMMIT_ONLY;
    if (pr->state == RAFT_PROGRESS_REPLICATE) {
        if (m.n_entries > 0) {
            raft_index end = ents[m.n_entries - 1].index;
            /* Pipelining: optimistically assume delivery. */
            rc = raft_progress_sent(r, pr, end);
            if (rc != RAFT_OK)
                return rc;
            pr->next = end + 1;
        }
    } else {
        pr->probe_sent = true;
    }
    rc = raft_send(r, &m);
    return rc == RAFT_OK ? 1 : rc;
}

/* The highest commit index pr's follower may be told without an APPEND: never
 * beyond what it is known to match (HEARTBEAT, DURABLE). */
static raft_index commit_for(const struct raft *r, const struct raft_progress *pr)
{
    return pr->match < r->log.committed ? pr->match : r->log.committed;
}

/* The commit index the follower of pr knows or works out itself: what the APPENDs
 * told it, or what its durable log (its match) and the DURABLE notices prove. */
static raft_index commit_known(const struct raft_progress *pr)
{
    raft_index proven = pr->match < pr->durable_sent ? pr->match : pr->durable_sent;
    return proven > pr->commit_sent ? proven : pr->commit_sent;
}

int raft_broadcast_append(struct raft *r)
{
    for (uint32_t i = 0; i < r->n_prs; i++) {
        struct raft_progress *pr = &r->prs[i];
        int rc;
        if (pr->id == r->id)
            continue;
        /* A pipelining follower with APPENDs in flight will answer them; the new
         * commit goes out then (step_append_resp), saving an empty APPEND. */
        if (pr->state == RAFT_PROGRESS_REPLICATE && pr->next > raft_log_last_index(r) &&
            (pr->infl_count > 0 || commit_known(pr) >= r->log.committed))
            continue;
        rc = raft_send_append(r, pr, true);
        if (rc < 0)
            return rc;
    }
    return RAFT_OK;
}

int raft_broadcast_heartbeat(struct raft *r, uint64_t ctx)
{
    for (uint32_t i = 0; i < r->n_prs; i++) {
        struct raft_progress *pr = &r->prs[i];
        struct raft_message m;
        int rc;
        if (pr->id == r->id)
            continue;
        memset(&m, 0, sizeof m);
        m.type = RAFT_MSG_HEARTBEAT;
        m.to = pr->id;
        m.term = r->term;
        m.commit = commit_for(r, pr);
        m.context = ctx;
        if ((rc = raft_send(r, &m)) != RAFT_OK)
            return rc;
    }
    return RAFT_OK;
}

int raft_send_durable_notices(struct raft *r, raft_index applied)
{
    raft_index last;
    raft_term last_term;
    int rc;
    /* raft.h, DURABLE NOTICES: only for the leader's new entries, with at most
     * three voters (so it and one follower are a majority), and while no change of
     * the configuration is in its log beyond what it applied. */
    if (!r->durable_notices || r->role != RAFT_LEADER || r->log.n == r->log.n_stable ||
        r->n_voters > 3 || r->pending_conf_index > applied || !raft_is_voter(r, r->id))
        return RAFT_OK;
    last = raft_log_last_index(r);
    last_term = raft_log_term(r, last, &rc);
    if (rc != RAFT_OK || last_term != r->term)
        return RAFT_OK;
    for (uint32_t i = 0; i < r->n_prs; i++) {
        struct raft_progress *pr = &r->prs[i];
        struct raft_message m;
        if (pr->id == r->id || pr->learner || pr->state != RAFT_PROGRESS_REPLICATE ||
            pr->durable_sent >= last)
            continue;
        memset(&m, 0, sizeof m);
        m.type = RAFT_MSG_DURABLE;
        m.to = pr->id;
        m.term = r->term;
        m.index = last;
        m.log_term = last_term;
        m.commit = commit_for(r, pr);
        pr->durable_sent = last;
        if ((rc = raft_send(r, &m)) != RAFT_OK)
            return rc;
    }
    return RAFT_OK;
}

bool raft_maybe_commit(struct raft *r)
{
    raft_index mci = raft_quorum_value(r, QV_MATCH);
    int rc;
    /* §5.4.2: only entries of the current term are committed by counting replicas;
     * earlier ones are committed indirectly (Log Matching). */
    if (mci > r->log.committed && raft_log_term(r, mci, &rc) == r->term && rc == RAFT_OK) {
        raft_log_commit_to(r, mci);
        return true;
    }
    return false;
}

int raft_commit_and_broadcast(struct raft *r)
{
    int rc;
    if (r->role != RAFT_LEADER || !raft_maybe_commit(r))
        return RAFT_OK;
    if ((rc = raft_reads_on_commit_in_term(r)) != RAFT_OK)
        return rc;
    return raft_broadcast_append(r);
}

static raft_index hint_next(struct raft *r, const struct raft_message *m)
{
    raft_index k, last = raft_log_last_index(r);
    raft_term t = 0;
    int rc = RAFT_OK;
    if (m->log_term == 0)
        return m->reject_hint + 1; /* follower's log is shorter */
    /* Skip our entries of terms newer than the follower's conflicting term; if we
     * have that term, the logs may agree up to our last entry of it. */
    k = m->index < last ? m->index : last;
    while (k > m->reject_hint) {
        t = raft_log_term(r, k, &rc);
        if (rc != RAFT_OK || t <= m->log_term)
            break;
        k--;
    }
    if (k >= m->reject_hint) {
        t = raft_log_term(r, k, &rc);
        if (rc == RAFT_OK && t == m->log_term)
            return k + 1;
    }
    return m->reject_hint;
}

int raft_step_append_resp(struct raft *r, const struct raft_message *m)
{
    struct raft_progress *pr = raft_progress_find(r, m->from);
    int rc;
    if (pr == NULL)
        return RAFT_OK;
    pr->recent_active = true;
    /* An answer, acknowledgement or rejection, about an index beyond this leader's
     * log answers no APPEND it sent in its term (it never shortens its own log):
     * forged or corrupted.  A rejection taken as a hint set next past the log, and
     * every later send to that follower failed for want of a term at next - 1
     * (docs/sim-findings.md, findings 6 and 18). */
    if (m->index > raft_log_last_index(r))
        return RAFT_OK;
    if (m->reject) {
        raft_index next;
        /* Ignore rejections of messages that are not the latest probe. */
        if (pr->state == RAFT_PROGRESS_REPLICATE) {
            if (m->index <= pr->match)
                return RAFT_OK;
        } else if (pr->state == RAFT_PROGRESS_PROBE) {
            if (m->index != pr->next - 1 || m->index == 0)
                return RAFT_OK;
            if (m->index <= pr->match) {
                /* The follower no longer holds an entry it acknowledged: it lost its
                 * storage, or the acknowledgement was not its own (a forged or
                 * corrupted message).  Raft assumes neither, but probing at
                 * match + 1 again at every rejection bounced between the two at
                 * network speed for good (docs/sim-findings.md, finding 17).
                 * Believe the rejection: its log ends at reject_hint at most (too
                 * short), or holds an entry of another term from reject_hint on
                 * (log_term set: it matches below it at most), and it is repaired
                 * from there.  (The commit index never moves back.) */
                raft_index held = m->log_term == 0 ? m->reject_hint
                                  : m->reject_hint > 0 ? m->reject_hint - 1 : 0;
                pr->match = held < m->index ? held : m->index - 1;
            }
        } else {
            return RAFT_OK;
        }
        next = hint_next(r, m);
        if (next > m->index)
            next = m->index; /* must move back */
        if (next < pr->match + 1)
            next = pr->match + 1;
        if (next < 1)
            next = 1;
        raft_progress_become_probe(r, pr);
        pr->next = next;
        rc = raft_send_append(r, pr, true);
        return rc < 0 ? rc : RAFT_OK;
    }

    {
        bool updated = false;
        if (m->index > pr->match) {
            pr->match = m->index;
            updated = true;
        }
        if (pr->next < m->index + 1)
            pr->next = m->index + 1;
        switch (pr->state) {
        case RAFT_PROGRESS_PROBE:
            if (m->index >= pr->match)
                raft_progress_become_replicate(r, pr);
            else
                pr->probe_sent = false;
            break;
        case RAFT_PROGRESS_SNAPSHOT:
            /* The follower installed it and told us its log ends at match. */
            if (pr->match >= pr->pending_snapshot)
                raft_progress_become_replicate(r, pr);
            break;
        default:
            raft_progress_ack(pr, m->index);
            break;
        }
        /* Only a match beyond the commit index can move it. */
        if (updated && pr->match > r->log.committed && raft_maybe_commit(r)) {
            if ((rc = raft_reads_on_commit_in_term(r)) != RAFT_OK)
                return rc;
            if ((rc = raft_broadcast_append(r)) != RAFT_OK)
                return rc;
        }
        /* Keep the pipe full. */
        while ((rc = raft_send_append(r, pr, false)) == 1)
            ;
        if (rc < 0)
            return rc;
        /* Tell it a commit index it has not heard of yet (see broadcast_append). */
        if (commit_known(pr) < commit_for(r, pr) &&
            pr->state == RAFT_PROGRESS_REPLICATE && pr->infl_count == 0 &&
            (rc = raft_send_append(r, pr, true)) < 0)
            return rc;
        if (updated)
            return raft_transfer_on_progress(r, pr);
        return RAFT_OK;
    }
}

int raft_step_heartbeat_resp(struct raft *r, const struct raft_message *m)
{
    struct raft_progress *pr = raft_progress_find(r, m->from);
    int rc;
    if (pr == NULL)
        return RAFT_OK;
    pr->recent_active = true;
    pr->probe_sent = false;
    /* A lost APPEND may have left the window full: free one slot so we retry. */
    if (pr->state == RAFT_PROGRESS_REPLICATE && pr->infl_count >= r->max_inflight &&
        pr->infl_count > 0) {
        pr->infl_start = (uint16_t)((pr->infl_start + 1) % pr->infl_cap);
        pr->infl_count--;
    }
    /* A snapshot, or the answer saying it was installed, may be lost too, and a
     * host need not report the outcome (raft_report_snapshot): after an election
     * timeout's worth of heartbeat answers, probe again from the snapshot on — which
     * sends a new snapshot if it is still needed.  Without this the follower's
     * progress stayed in snapshot state for good (test_snapshots_random, seeds
     * beyond 15). */
    if (pr->state == RAFT_PROGRESS_SNAPSHOT) {
        uint32_t patience = r->election_tick / r->heartbeat_tick; /* raft_new: both >= 1 */
        if (++pr->snapshot_waits >= (patience < 3 ? 3 : patience))
            raft_progress_become_probe(r, pr);
    }
    /* Behind, or in probe state: a progress probed back (an unreachable report, a
     * rejection) with the whole log learns it only from an APPEND's answer, and
     * an idle group sends none — a caught-up learner then never counted as
     * replicating, and its promotion waited for a write (found by a review). */
    if (pr->match < raft_log_last_index(r) || pr->state == RAFT_PROGRESS_PROBE) {
        rc = raft_send_append(r, pr, true);
        if (rc < 0)
            return rc;
    }
    if (m->context != 0 && m->context > pr->read_ack) {
        pr->read_ack = m->context;
        return raft_reads_on_ack(r);
    }
    return RAFT_OK;
}

/* ------------------------------------------------------------------ follower side */

static int send_append_resp(struct raft *r, raft_id to, raft_index index)
{
    struct raft_message resp;
    memset(&resp, 0, sizeof resp);
    resp.type = RAFT_MSG_APPEND_RESP;
    resp.to = to;
    resp.term = r->term;
    resp.index = index;
    return raft_send(r, &resp);
}

int raft_step_append(struct raft *r, const struct raft_message *m)
{
    raft_index last_new;
    if (m->index < r->log.committed)
        /* Already committed here, hence identical to the leader's (§5.4). */
        return send_append_resp(r, m->from, r->log.committed);
    for (uint32_t i = 0; i < m->n_entries; i++)
        if (m->entries[i].index != m->index + 1 + i)
            return RAFT_EINVAL;
    if (raft_log_match(r, m->index, m->log_term)) {
        uint32_t i;
        last_new = m->index + m->n_entries;
        /* Figure 2, AppendEntries 3-4: delete only from the first conflicting
         * entry; entries already present are kept (a stale or reordered APPEND must
         * not truncate newer entries). */
        if (m->n_entries > 0 && m->entries[0].index > raft_log_last_index(r))
            i = 0; /* all new: nothing to compare */
        else
            for (i = 0; i < m->n_entries; i++)
                if (!raft_log_match(r, m->entries[i].index, m->entries[i].term))
                    break;
        if (i < m->n_entries) {
            int rc;
            if (m->entries[i].index <= r->log.committed)
                return RAFT_ECORRUPT; /* would overwrite a committed entry */
            rc = raft_log_append(r, &m->entries[i], m->n_entries - i);
            if (rc != RAFT_OK)
                return rc;
        }
        /* Figure 2, AppendEntries 5: commit = min(leaderCommit, last new entry). */
        raft_log_commit_to(r, m->commit < last_new ? m->commit : last_new);
        if (m->n_entries == 0 && m->context == RAFT_APPEND_COMMIT_ONLY)
            return RAFT_OK;
        return send_append_resp(r, m->from, last_new);
    }
    {
        /* Reject with a hint (§5.3, "optimization"): our conflicting term and the
         * first index we hold of it, or our last index if our log is too short. */
        struct raft_message resp;
        raft_index last = raft_log_last_index(r);
        memset(&resp, 0, sizeof resp);
        resp.type = RAFT_MSG_APPEND_RESP;
        resp.to = m->from;
        resp.term = r->term;
        resp.index = m->index;
        resp.reject = 1;
        if (m->index > last) {
            resp.log_term = 0;
            resp.reject_hint = last;
        } else {
            int rc;
            raft_term t = raft_log_term(r, m->index, &rc);
            raft_index h = m->index;
            while (h - 1 > r->log.committed) {
                raft_term pt = raft_log_term(r, h - 1, &rc);
                if (rc != RAFT_OK || pt != t)
                    break;
                h--;
            }
            resp.log_term = t;
            resp.reject_hint = h;
        }
        return raft_send(r, &resp);
    }
}

int raft_step_heartbeat(struct raft *r, const struct raft_message *m)
{
    struct raft_message resp;
    raft_index last = raft_log_last_index(r);
    raft_log_commit_to(r, m->commit < last ? m->commit : last);
    memset(&resp, 0, sizeof resp);
    resp.type = RAFT_MSG_HEARTBEAT_RESP;
    resp.to = m->from;
    resp.term = r->term;
    resp.context = m->context;
    return raft_send(r, &resp);
}

void raft_infer_commit(struct raft *r)
{
    raft_index i;
    int rc;
    if (r->role != RAFT_FOLLOWER || r->leader_durable == 0)
        return;
    /* Durable on the leader (its notices) and here (the stable log): a majority
     * when the leader sends notices at all (raft.h, DURABLE NOTICES). */
    i = raft_log_stable_last(r);
    if (i > r->leader_durable)
        i = r->leader_durable;
    if (i <= r->log.committed)
        return;
    /* §5.4.2: counting replicas commits only entries of the leader's term; entries of
     * that term here are the leader's own (one leader per term, Log Matching). */
    if (raft_log_term(r, i, &rc) != r->term || rc != RAFT_OK)
        return;
    raft_log_commit_to(r, i);
}

int raft_step_durable(struct raft *r, const struct raft_message *m)
{
    raft_index last = raft_log_last_index(r);
    if (m->index > r->leader_durable)
        r->leader_durable = m->index;
    /* As for a heartbeat: the leader sent min(our match, its commit). */
    raft_log_commit_to(r, m->commit < last ? m->commit : last);
    raft_infer_commit(r);
    return RAFT_OK;
}

int raft_step_snapshot(struct raft *r, const struct raft_message *m)
{
    const struct raft_snapshot *s = m->snapshot;
    struct raft_conf_build conf;
    int rc;
    if (s == NULL)
        return RAFT_EINVAL;
    if (s->index <= r->log.committed)
        return send_append_resp(r, m->from, r->log.committed);
    if (raft_log_match(r, s->index, s->term)) {
        /* We hold the snapshot's last entry: our log agrees up to it. */
        raft_log_commit_to(r, s->index);
        return send_append_resp(r, m->from, s->index);
    }
    /* §7: discard the log and install the snapshot (after the caller persisted it
     * — the response is only sent from the Ready).  Both or neither: the memory of
     * the configuration is taken first, and the log's restore takes its own before
     * it changes anything. */
    rc = raft_conf_prepare(r, &s->conf, &conf);
    if (rc != RAFT_OK)
        return rc;
    rc = raft_log_restore(r, s);
    if (rc != RAFT_OK) {
        raft_conf_discard(r, &conf);
        return rc;
    }
    raft_conf_swap(r, &conf);
    r->conf_changed = true;
    return send_append_resp(r, m->from, s->index);
}
