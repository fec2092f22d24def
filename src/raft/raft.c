/*
 * raft.c — lifecycle, role transitions, the logical clock and message dispatch:
 * the "Rules for Servers" box of Figure 2 (term handling, §5.1) and the sender
 * filtering rules documented in raft.h.
 */
#include "raft_internal.h"

/* ------------------------------------------------------------------ lifecycle */

struct raft *raft_new(const struct raft_config *cfg, const struct raft_allocator *a,
                      int *rcp)
{
    struct raft *r;
    struct raft_hard_state hs = {0, 0, 0};
    struct raft_conf_state cs = {NULL, 0, NULL, 0};
    raft_index first, last;
    int rc = RAFT_EINVAL;

    if (a == NULL)
        a = raft_default_allocator();
    if (cfg == NULL || cfg->id == RAFT_NONE || cfg->election_tick == 0 ||
        cfg->heartbeat_tick == 0 || cfg->storage.initial_state == NULL ||
        cfg->storage.entries == NULL || cfg->storage.term == NULL ||
        cfg->storage.first_index == NULL || cfg->storage.last_index == NULL ||
        cfg->storage.snapshot == NULL)
        goto fail;
    rc = RAFT_ENOMEM;
    r = a->malloc(a->ctx, sizeof *r);
    if (r == NULL)
        goto fail;
    memset(r, 0, sizeof *r);
    r->a = *a;
    r->st = cfg->storage;
    r->mem = sizeof *r;
    r->id = cfg->id;
    r->pre_vote = cfg->pre_vote;
    r->check_quorum = cfg->check_quorum;
    r->no_forward = cfg->disable_proposal_forwarding;
    r->durable_notices = cfg->durable_notices;
    r->election_tick = cfg->election_tick;
    r->heartbeat_tick = cfg->heartbeat_tick;
    r->max_inflight = cfg->max_inflight_msgs ? cfg->max_inflight_msgs : 64;
    if (r->max_inflight > 32768)
        r->max_inflight = 32768;
    r->max_msg_size = cfg->max_size_per_msg ? cfg->max_size_per_msg : (1u << 20);
    r->max_committed_size = cfg->max_committed_size_per_ready
                                ? cfg->max_committed_size_per_ready : (4u << 20);
    r->prng = cfg->seed ^ (cfg->id * 0x9e3779b97f4a7c15ULL);

    rc = r->st.initial_state(r->st.user, &hs, &cs);
    if (rc != RAFT_OK) {
        rc = RAFT_ESTORAGE;
        goto fail_free;
    }
    first = r->st.first_index(r->st.user);
    last = r->st.last_index(r->st.user);
    r->log.offset = last + 1;
    r->log.committed = hs.commit;
    r->log.applied = cfg->applied;
    /* Everything covered by the storage's snapshot is applied by the caller. */
    if (r->log.applied < first - 1)
        r->log.applied = first - 1;
    if (r->log.committed < r->log.applied)
        r->log.committed = r->log.applied;
    if (r->log.committed > last) {
        rc = RAFT_ECORRUPT;
        goto fail_free;
    }
    rc = raft_conf_init(r, &cs);
    if (rc != RAFT_OK)
        goto fail_free;
    r->term = hs.term;
    r->vote = hs.vote;
    r->role = RAFT_FOLLOWER;
    r->leader = RAFT_NONE;
    raft_reset_election_timer(r);
    r->prev_hs.term = hs.term;
    r->prev_hs.vote = hs.vote;
    r->prev_hs.commit = r->log.committed;
    r->prev_role = RAFT_FOLLOWER;
    r->prev_leader = RAFT_NONE;
    if (rcp != NULL)
        *rcp = RAFT_OK;
    return r;

fail_free:
    raft_free(r);
fail:
    if (rcp != NULL)
        *rcp = rc;
    return NULL;
}

struct raft_output *raft_out_get(struct raft *r)
{
    if (r->out == NULL) {
        r->out = raft_mem_alloc(r, sizeof *r->out);
        if (r->out != NULL)
            memset(r->out, 0, sizeof *r->out);
    }
    return r->out;
}

void raft_reset_output(struct raft *r)
{
    if (r->out == NULL)
        return;
    r->out->n_msgs = 0;
    r->out->n_rstates = 0;
    r->out->n_rd_committed = 0;
    r->out->rd_comm = NULL;
    r->out->n_rd_comm = 0;
    raft_arena_reset_keep(r);
}

static void free_output(struct raft *r)
{
    if (r->out == NULL)
        return;
    raft_mem_free(r, r->out->msgs, sizeof *r->out->msgs * r->out->cap_msgs);
    r->out->msgs = NULL;
    r->out->n_msgs = r->out->cap_msgs = 0;
    raft_mem_free(r, r->out->rstates, sizeof *r->out->rstates * r->out->cap_rstates);
    r->out->rstates = NULL;
    r->out->n_rstates = r->out->cap_rstates = 0;
    raft_mem_free(r, r->out->rd_committed, sizeof *r->out->rd_committed * r->out->cap_rd_committed);
    r->out->rd_committed = NULL;
    r->out->n_rd_committed = r->out->cap_rd_committed = 0;
    raft_mem_free(r, r->out->scratch, sizeof *r->out->scratch * r->out->cap_scratch);
    r->out->scratch = NULL;
    r->out->cap_scratch = 0;
    raft_arena_reset(r);
    raft_mem_free(r, r->out, sizeof *r->out);
    r->out = NULL;
}

void raft_free(struct raft *r)
{
    struct raft_allocator a;
    if (r == NULL)
        return;
    free_output(r);
    raft_log_free(r);
    for (uint32_t i = 0; i < r->n_prs; i++)
        raft_progress_free_infl(r, &r->prs[i]);
    raft_mem_free(r, r->prs, sizeof *r->prs * r->n_prs);
    raft_mem_free(r, r->conf_ids, sizeof(raft_id) * r->n_conf_ids);
    raft_mem_free(r, r->reads, sizeof *r->reads * r->cap_reads);
    a = r->a;
    a.free(a.ctx, r);
}

void raft_free_output(struct raft *r)
{
    free_output(r);
}

/* ------------------------------------------------------------------ messages */

int raft_send(struct raft *r, struct raft_message *m)
{
    int rc;
    if (raft_out_get(r) == NULL)
        return RAFT_ENOMEM;
    rc = raft_vec_reserve(r, (void **)&r->out->msgs, &r->out->cap_msgs, r->out->n_msgs + 1,
                              sizeof *r->out->msgs, 4);
    if (rc != RAFT_OK)
        return rc;
    m->from = r->id;
    r->out->msgs[r->out->n_msgs++] = *m;
    return RAFT_OK;
}

/* ------------------------------------------------------------------ transitions */

void raft_reset_election_timer(struct raft *r)
{
    /* Randomized in [election_tick, 2*election_tick) (§5.2). */
    r->election_elapsed = 0;
    r->randomized_timeout =
        r->election_tick + (uint32_t)(raft_prng_next(r) % r->election_tick);
}

static void reset(struct raft *r, raft_term term)
{
    if (term != r->term) {
        r->term = term;
        r->vote = RAFT_NONE;
        r->campaign_hold = 0; /* the campaign it made room for happened */
    }
    if (r->role == RAFT_LEADER)
        raft_reads_drop_all(r);
    r->leader = RAFT_NONE;
    r->leader_durable = 0;
    r->heartbeat_elapsed = 0;
    raft_reset_election_timer(r);
    raft_transfer_abort(r);
    for (uint32_t i = 0; i < r->n_prs; i++) {
        r->prs[i].vote = 0;
        if (r->role == RAFT_LEADER)
            raft_progress_free_infl(r, &r->prs[i]);
    }
    r->removing_self = false;
}

/* Does the uncommitted log hold a change removing this replica?  (A new leader must
 * know, see raft_propose_batch.)  Long uncommitted tails are assumed not to. */
static bool uncommitted_self_removal(struct raft *r)
{
    struct raft_entry_sink sink;
    raft_index lo = r->log.committed + 1, hi = raft_log_last_index(r) + 1;
    bool found = false;
    if (lo >= hi || hi - lo > 4096)
        return false;
    raft_sink_init(&sink, r, lo);
    if (raft_log_entries(r, lo, hi, UINT64_MAX, &sink) == RAFT_OK) {
        for (uint32_t i = 0; i < sink.n; i++) {
            struct raft_conf_change cc;
            if (sink.ents[i].type == RAFT_ENTRY_CONF_CHANGE &&
                raft_conf_change_decode(sink.ents[i].data, sink.ents[i].len, &cc) == RAFT_OK &&
                cc.type == RAFT_CC_REMOVE && cc.replica == r->id)
                found = true;
        }
    }
    raft_sink_fini(&sink);
    return found;
}

void raft_become_follower(struct raft *r, raft_term term, raft_id leader)
{
    reset(r, term);
    r->role = RAFT_FOLLOWER;
    r->leader = leader;
}

void raft_become_pre_candidate(struct raft *r)
{
    /* §9.6: a pre-candidate neither increments its term nor votes. */
    reset(r, r->term);
    r->role = RAFT_PRE_CANDIDATE;
}

void raft_become_candidate(struct raft *r)
{
    /* Figure 2, Candidates: increment currentTerm, vote for self. */
    reset(r, r->term + 1);
    r->vote = r->id;
    r->role = RAFT_CANDIDATE;
}

int raft_become_leader(struct raft *r)
{
    struct raft_buf noop = {NULL, 0};
    reset(r, r->term);
    r->role = RAFT_LEADER;
    r->leader = r->id;
    raft_progress_reset_all(r);
    /* Any conf change in the uncommitted log may still take effect: allow no new one
     * until all of it is applied (at most one uncommitted change, §4.1). */
    r->pending_conf_index = raft_log_last_index(r);
    r->removing_self = uncommitted_self_removal(r);
    /* §8 / dissertation §6.4: a no-op entry of the new term lets the leader learn
     * the commit index (and is what ReadIndex waits for).  A leader that cannot
     * append it steps down in its term (it voted in it already, so it cannot vote
     * twice) and the group elects again: without it reads would wait for some
     * command to commit in the term. */
    if (raft_leader_append(r, &noop, 1, RAFT_ENTRY_NORMAL, NULL) != RAFT_OK) {
        raft_become_follower(r, r->term, RAFT_NONE);
        return RAFT_ENOMEM;
    }
    return RAFT_OK;
}

/* ------------------------------------------------------------------ tick */

static bool quorum_active(struct raft *r)
{
    uint32_t active = 0;
    for (uint32_t i = 0; i < r->n_prs; i++) {
        struct raft_progress *pr = &r->prs[i];
        if (!pr->learner && (pr->recent_active || pr->id == r->id))
            active++;
        if (pr->id != r->id)
            pr->recent_active = false;
    }
    return active >= raft_quorum(r);
}

static uint64_t current_read_ctx(struct raft *r)
{
    if (r->n_reads > 0 && r->reads[r->n_reads - 1].seq != 0)
        return r->read_seq;
    return 0;
}

static int tick_leader(struct raft *r)
{
    r->heartbeat_elapsed++;
    r->election_elapsed++;
    if (r->transferee != RAFT_NONE && ++r->transfer_elapsed >= r->election_tick)
        raft_transfer_abort(r); /* dissertation §3.10: abort after an election timeout */
    if (r->election_elapsed >= r->election_tick) {
        r->election_elapsed = 0;
        /* §6.2 CheckQuorum: step down if no quorum was heard from. */
        if (r->check_quorum && !quorum_active(r)) {
            raft_become_follower(r, r->term, RAFT_NONE);
            return RAFT_OK;
        }
    }
    if (r->heartbeat_elapsed >= r->heartbeat_tick) {
        r->heartbeat_elapsed = 0;
        return raft_broadcast_heartbeat(r, current_read_ctx(r));
    }
    return RAFT_OK;
}

int raft_tick(struct raft *r)
{
    if (r->busy)
        return RAFT_EBUSY;
    /* Buffers kept between Readies are returned once per tick when idle, so an
     * active group allocates rarely and an idle one holds nothing. */
    if (r->out == NULL || (r->out->n_msgs == 0 && r->out->n_rstates == 0))
        raft_release_memory(r);
    if (r->role == RAFT_LEADER)
        return tick_leader(r);
    /* A replica that cannot campaign keeps counting (saturating), so that its
     * leader lease expires and it grants votes once the leader is gone. */
    if (r->election_elapsed < UINT32_MAX)
        r->election_elapsed++;
    if (r->timeout_now_term != 0 && r->timeout_now_age < UINT32_MAX)
        r->timeout_now_age++;
    if (r->campaign_hold > 0) {
        r->campaign_hold--;
        return RAFT_OK;
    }
    if (r->election_elapsed >= r->randomized_timeout && raft_promotable(r)) {
        r->election_elapsed = 0;
        return raft_hup(r, false);
    }
    return RAFT_OK;
}

/* ------------------------------------------------------------------ step */

static bool claims_leadership(uint8_t type)
{
    return type == RAFT_MSG_APPEND || type == RAFT_MSG_HEARTBEAT ||
           type == RAFT_MSG_SNAPSHOT || type == RAFT_MSG_TIMEOUT_NOW;
}

static int respond_stale(struct raft *r, const struct raft_message *m)
{
    /* Figure 2: "reply false if term < currentTerm" — the reply carries our term so
     * a deposed leader or stale candidate learns about it (§5.1). */
    struct raft_message resp;
    memset(&resp, 0, sizeof resp);
    resp.to = m->from;
    resp.term = r->term;
    resp.reject = 1;
    switch (m->type) {
    case RAFT_MSG_APPEND:
    case RAFT_MSG_SNAPSHOT:
        resp.type = RAFT_MSG_APPEND_RESP;
        resp.index = m->index;
        resp.reject_hint = raft_log_last_index(r);
        break;
    case RAFT_MSG_HEARTBEAT:
        resp.type = RAFT_MSG_HEARTBEAT_RESP;
        resp.reject = 0;
        break;
    case RAFT_MSG_VOTE:
        resp.type = RAFT_MSG_VOTE_RESP;
        break;
    case RAFT_MSG_PREVOTE:
        resp.type = RAFT_MSG_PREVOTE_RESP;
        break;
    default:
        return RAFT_OK;
    }
    return raft_send(r, &resp);
}

static int step_transfer_leader(struct raft *r, const struct raft_message *m);

/* Terms and indexes beyond 2^62 cannot occur in a real group; a message carrying them
 * is corrupt or forged, and accepting it would make term/index arithmetic wrap. */
#define SANE_LIMIT ((uint64_t)1 << 62)

static bool message_sane(const struct raft_message *m)
{
    if (m->term >= SANE_LIMIT || m->log_term >= SANE_LIMIT || m->index >= SANE_LIMIT ||
        m->commit >= SANE_LIMIT || m->reject_hint >= SANE_LIMIT)
        return false;
    if (m->n_entries > 0 && m->entries == NULL)
        return false;
    for (uint32_t i = 0; i < m->n_entries; i++)
        if (m->entries[i].term >= SANE_LIMIT || m->entries[i].index >= SANE_LIMIT ||
            (m->entries[i].len > 0 && m->entries[i].data == NULL))
            return false;
    /* A leader sends entries of its own log: consecutive after index, their terms
     * never below log_term nor decreasing (§5.3: a log's terms only grow) and never
     * above its own term.  Entries that break this can only be forged, and they plant
     * a log that no honest leader can repair: its probes and the follower's
     * rejections then went back and forth at network speed (docs/sim-findings.md,
     * finding 15).  The same for a snapshot's term. */
    if (m->type == RAFT_MSG_APPEND)
        for (uint32_t i = 0; i < m->n_entries; i++) {
            const struct raft_entry *e = &m->entries[i];
            if (e->index != m->index + 1 + i || e->term > m->term ||
                e->term < (i == 0 ? m->log_term : m->entries[i - 1].term))
                return false;
        }
    if (m->snapshot != NULL &&
        (m->snapshot->term >= SANE_LIMIT || m->snapshot->index >= SANE_LIMIT ||
         m->snapshot->term > m->term))
        return false;
    return true;
}

int raft_step(struct raft *r, const struct raft_message *m)
{
    if (r->busy)
        return RAFT_EBUSY;
    if (m == NULL || m->type < 1 || m->type > RAFT_MSG_TYPE_MAX || !message_sane(m))
        return RAFT_EINVAL;
    if (m->to != r->id || m->from == r->id || m->from == RAFT_NONE)
        return RAFT_OK;

    /* Sender filtering (raft.h, MEMBERSHIP). */
    switch (m->type) {
    case RAFT_MSG_APPEND:
    case RAFT_MSG_HEARTBEAT:
    case RAFT_MSG_SNAPSHOT:
    case RAFT_MSG_TIMEOUT_NOW:
        break;
    case RAFT_MSG_VOTE:
    case RAFT_MSG_PREVOTE:
        /* Dissertation §4.1: votes are granted without consulting the configuration
         * (a lagging or brand-new replica may not know the candidate yet); removed
         * replicas are kept from disrupting by the lease below (§4.2.3). */
        break;
    case RAFT_MSG_PROPOSE:
        return raft_is_member(r, m->from) ? raft_step_propose(r, m) : RAFT_OK;
    case RAFT_MSG_READ_INDEX:
        return raft_is_member(r, m->from) ? raft_step_read_index(r, m) : RAFT_OK;
    case RAFT_MSG_READ_INDEX_RESP:
        return raft_is_member(r, m->from) ? raft_step_read_index_resp(r, m) : RAFT_OK;
    case RAFT_MSG_TRANSFER_LEADER:
        return raft_is_member(r, m->from) ? step_transfer_leader(r, m) : RAFT_OK;
    default:
        if (!raft_is_member(r, m->from))
            return RAFT_OK;
        break;
    }

    /* Term handling (§5.1, Figure 2 "All Servers"). */
    if (m->term > r->term) {
        if (m->type == RAFT_MSG_VOTE || m->type == RAFT_MSG_PREVOTE) {
            bool forced = m->context == 1; /* campaign caused by TIMEOUT_NOW */
            bool in_lease = r->leader != RAFT_NONE &&
                            r->election_elapsed < r->election_tick;
            /* Dissertation §4.2.3 (with CheckQuorum) and §9.6 (PreVote): while a
             * leader is known, requests to elect another are disregarded — always
             * so for candidates outside our configuration (removed replicas). */
            if (!forced && in_lease &&
                (r->check_quorum || m->type == RAFT_MSG_PREVOTE ||
                 !raft_is_voter(r, m->from))) {
                if (m->type == RAFT_MSG_PREVOTE)
                    return respond_stale(r, m);
                return RAFT_OK;
            }
        }
        if (m->type == RAFT_MSG_PREVOTE ||
            (m->type == RAFT_MSG_PREVOTE_RESP && !m->reject)) {
            /* §9.6: pre-votes carry a future term and never change ours. */
        } else {
            /* Figure 2: only AppendEntries from the leader or granting a vote resets
             * the election timer — a rejected candidate with a stale log must not
             * keep the others from timing out (liveness). */
            uint32_t elapsed = r->election_elapsed, timeout = r->randomized_timeout;
            raft_become_follower(r, m->term,
                                 claims_leadership(m->type) ? m->from : RAFT_NONE);
            if (m->type == RAFT_MSG_VOTE) {
                r->election_elapsed = elapsed;
                r->randomized_timeout = timeout;
            }
        }
    } else if (m->term < r->term) {
        return respond_stale(r, m);
    }

    switch (m->type) {
    case RAFT_MSG_VOTE:
    case RAFT_MSG_PREVOTE:
        return raft_step_vote_req(r, m);
    case RAFT_MSG_VOTE_RESP:
    case RAFT_MSG_PREVOTE_RESP:
        return raft_step_vote_resp(r, m);
    case RAFT_MSG_APPEND:
    case RAFT_MSG_HEARTBEAT:
    case RAFT_MSG_SNAPSHOT:
    case RAFT_MSG_TIMEOUT_NOW:
        if (r->role == RAFT_LEADER)
            return RAFT_OK; /* cannot happen: one leader per term (§5.2) */
        if (r->role != RAFT_FOLLOWER)
            /* §5.2: a candidate that hears from the leader of its term steps down. */
            raft_become_follower(r, r->term, m->from);
        r->leader = m->from;
        r->election_elapsed = 0;
        if (m->type == RAFT_MSG_APPEND)
            return raft_step_append(r, m);
        if (m->type == RAFT_MSG_HEARTBEAT)
            return raft_step_heartbeat(r, m);
        if (m->type == RAFT_MSG_SNAPSHOT)
            return raft_step_snapshot(r, m);
        return raft_step_timeout_now(r, m);
    case RAFT_MSG_APPEND_RESP:
        return r->role == RAFT_LEADER ? raft_step_append_resp(r, m) : RAFT_OK;
    case RAFT_MSG_HEARTBEAT_RESP:
        return r->role == RAFT_LEADER ? raft_step_heartbeat_resp(r, m) : RAFT_OK;
    case RAFT_MSG_DURABLE:
        /* Only from the leader this follower follows (it does not claim leadership:
         * an APPEND or heartbeat introduces the leader first). */
        return r->role == RAFT_FOLLOWER && r->leader == m->from ? raft_step_durable(r, m)
                                                                : RAFT_OK;
    default:
        return RAFT_OK;
    }
}

/* ------------------------------------------------------------------ other inputs */

int raft_campaign(struct raft *r)
{
    if (r->busy)
        return RAFT_EBUSY;
    if (!raft_promotable(r))
        return RAFT_ENOTMEMBER;
    return raft_hup(r, false);
}

int raft_transfer_leadership(struct raft *r, raft_id target)
{
    struct raft_message m;
    int rc;
    if (r->busy)
        return RAFT_EBUSY;
    if (r->role == RAFT_LEADER)
        return raft_transfer_start(r, target);
    if (r->leader == RAFT_NONE || r->role != RAFT_FOLLOWER)
        return RAFT_ENOTLEADER;
    if (!raft_is_voter(r, target))
        return RAFT_EINVAL;
    memset(&m, 0, sizeof m);
    m.type = RAFT_MSG_TRANSFER_LEADER;
    m.to = r->leader;
    m.term = r->term;
    m.index = target;
    rc = raft_send(r, &m);
    return rc == RAFT_OK ? RAFT_FORWARDED : rc;
}

static int step_transfer_leader(struct raft *r, const struct raft_message *m)
{
    if (r->role != RAFT_LEADER)
        return RAFT_OK;
    (void)raft_transfer_start(r, (raft_id)m->index);
    return RAFT_OK;
}

int raft_read_index(struct raft *r, uint64_t ctx)
{
    struct raft_message m;
    int rc;
    if (r->busy)
        return RAFT_EBUSY;
    if (r->role == RAFT_LEADER)
        return raft_read_request(r, r->id, ctx);
    if (r->role != RAFT_FOLLOWER || r->leader == RAFT_NONE)
        return RAFT_ENOTLEADER;
    memset(&m, 0, sizeof m);
    m.type = RAFT_MSG_READ_INDEX;
    m.to = r->leader;
    m.term = r->term;
    m.context = ctx;
    rc = raft_send(r, &m);
    return rc == RAFT_OK ? RAFT_FORWARDED : rc;
}

void raft_report_snapshot(struct raft *r, raft_id peer, bool ok)
{
    struct raft_progress *pr;
    if (r->busy || r->role != RAFT_LEADER)
        return;
    pr = raft_progress_find(r, peer);
    if (pr == NULL || pr->state != RAFT_PROGRESS_SNAPSHOT)
        return;
    /* On failure forget the snapshot and probe from the match; on success probe
     * from just after the snapshot.  Either way wait for the next heartbeat
     * response before sending (probe_sent). */
    if (!ok)
        pr->pending_snapshot = pr->snapshot_sent = 0;
    raft_progress_become_probe(r, pr);
    pr->probe_sent = true;
}

void raft_report_unreachable(struct raft *r, raft_id peer)
{
    struct raft_progress *pr;
    if (r->busy || r->role != RAFT_LEADER)
        return;
    pr = raft_progress_find(r, peer);
    if (pr != NULL && pr->state == RAFT_PROGRESS_REPLICATE)
        raft_progress_become_probe(r, pr);
}
