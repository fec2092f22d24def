/*
 * mr_ready.c — the node's Ready / Advance cycle: every group with pending output
 * contributes to ONE batch (group writes, events, dedup records, tombstones,
 * completions, one envelope per destination node).  The host persists it in one
 * transaction, sends, completes, then calls mr_advance (CockroachDB #1131: persist
 * before sending).
 */
#include "mr_internal.h"

struct snap_install {
    bool has;
    const void *blob;
    size_t blob_len;
};

static void soft_state(struct mr_node *n, struct mr_group *g, const struct raft_ready *rd)
{
    struct mr_event *ev;
    raft_term term = raft_get_term(g->raft);
    /* A real candidacy (a new term), not a PreVote round: a node cut off from its
     * peers retries PreVote every election timeout in every group, and those rounds
     * change nothing (dissertation §9.6). */
    if (rd->role == RAFT_CANDIDATE && g->prev_role != RAFT_CANDIDATE &&
        (ev = mr_event_push(n, MR_EVENT_ELECTION_STARTED, g->id)) != NULL) {
        ev->term = term;
        ev->node_id = n->cfg.node_id;
        ev->replica_id = g->replica_id;
    }
    /* One leader per term (§5.2): one event per term, even if this node loses and
     * regains sight of the same leader. */
    if (rd->leader != RAFT_NONE && term != g->elected_term &&
        (ev = mr_event_push(n, MR_EVENT_LEADER_ELECTED, g->id)) != NULL) {
        ev->term = term;
        ev->node_id = mr_map_node(g, rd->leader);
        ev->replica_id = rd->leader;
        g->elected_term = term;
    }
    /* The meta row keeps the leader a follower follows (mr_state_encode): after a
     * restart it holds it until it hears from it (mr_restore_group). */
    if (rd->leader != RAFT_NONE && rd->leader != g->prev_leader && rd->leader != g->replica_id)
        g->flags |= MR_G_META;
    if (rd->leader != g->prev_leader) {
        /* What was proposed under the previous leader may be lost: resubmit (the
         * command-id dedup drops the copies that commit twice). */
        mr_waiters_requeue(n, g);
    }
    g->prev_role = rd->role;
    g->prev_leader = rd->leader;
}

static void install_snapshot(struct mr_node *n, struct mr_group *g,
                             const struct raft_snapshot *s, struct snap_install *si)
{
    struct raft_snapshot meta = *s;
    const void *state = NULL;
    size_t state_len = 0;
    struct mr_event *ev;

    /* The data was checked whole before the core saw it (mr_snapshot_check): a
     * decode that fails here ran out of memory.  Installed without its sessions
     * or its dedup records, the replica could apply commands again: the batch
     * fails instead, and the host restores the node. */
    if (!mr_snapshot_split(s->data, s->len, &state, &state_len, &si->blob, &si->blob_len) ||
        !mr_state_decode(n, g, state, state_len, false, &s->conf)) {
        n->ready_incomplete = true;
        si->blob = NULL;
        si->blob_len = 0;
    }
    /* The layer keeps only the sessions as the snapshot's data (mr_peer.c
     * rebuilds the rest when it sends one). */
    meta.data = mr_sessions_copy(n, g, &meta.len);
    if (meta.data == NULL) {
        n->ready_incomplete = true; /* snapshots sent from here would lack them */
        meta.len = 0;
    }
    if (raft_memory_storage_apply_snapshot(g->ms, &meta) == RAFT_ENOMEM)
        n->ready_incomplete = true; /* (handle_ready) */
    mr_free(n, (void *)meta.data);
    si->has = true;
    g->log_start_index = s->index;
    g->log_start_term = s->term;
    g->applied = s->index;
    g->snap_index = s->index;
    g->flags |= MR_G_META;
    /* The blob's dedup records are added to the host's (the ids applied in this
     * batch stay known too). */
    n->c.snapshots_applied++;
    if ((ev = mr_event_push(n, MR_EVENT_SNAPSHOT_APPLIED, g->id)) != NULL) {
        ev->index = s->index;
        ev->term = s->term;
    }
}

static void handle_ready(struct mr_node *n, struct mr_group *g, const struct raft_ready *rd,
                         struct snap_install *si)
{
    if (rd->soft_state_changed || rd->leader != g->prev_leader || rd->role != g->prev_role)
        soft_state(n, g, rd);
    /* 1. persist (in memory; the host persists the write built from it) */
    /* The host stores what this Ready hands out whatever happens here, and the
     * core, once it is stable, reads it back from g->ms only: memory running out
     * before it is there would shorten the log under a committed index (a leader
     * would then append another entry at it).  The batch fails instead, and the
     * host restores the node (MR_ENOMEM). */
    if ((rd->snapshot != NULL || rd->n_entries > 0 || rd->conf_changed) &&
        mr_storage_ensure(n, g) != MR_OK)
        n->ready_incomplete = true;
    if (rd->snapshot != NULL && g->ms != NULL)
        install_snapshot(n, g, rd->snapshot, si);
    if (rd->n_entries > 0 && g->ms != NULL) {
        int rc = raft_memory_storage_append(g->ms, rd->entries, rd->n_entries);
        if (rc == RAFT_ENOMEM)
            n->ready_incomplete = true;
        else if (rc != RAFT_OK)
            n->c.malformed++;
        n->c.entries_appended += rd->n_entries;
        for (size_t i = 0; i < rd->n_entries; i++)
            mr_conf_entry_bind(n, g, &rd->entries[i]);
    }
    /* A new term or vote is stored before anything is sent (§3.8, Figure 3.1's
     * persistent state); a commit index alone may lag with applied (MR_META_LAG). */
    if (rd->term_or_vote_changed)
        g->flags |= MR_G_META;
    /* 2. send (the host sends after persisting the whole batch, except the
     * early part: a leader's appends in a term already durable — §10.2.1; a
     * leader elected with its term in this very batch, as a lone voter with
     * learners is, must persist the term first — and proposals forwarded to the
     * leader, which vouch for nothing stored here) */
    for (size_t i = 0; i < rd->n_messages; i++) {
        const struct raft_message *m = &rd->messages[i];
        mr_route_message(n, g, m,
                         m->type == RAFT_MSG_PROPOSE ||
                         (rd->role == RAFT_LEADER && m->type == RAFT_MSG_APPEND &&
                          rd->hard_state.term == g->synced_term));
    }
    /* 3. apply */
    mr_apply_ready(n, g, rd);
    if (g->flags & MR_G_GONE)
        return;
    if (rd->conf_changed) {
        if (g->ms != NULL &&
            raft_memory_storage_set_conf_state(g->ms, &rd->conf_state) == RAFT_ENOMEM)
            n->ready_incomplete = true; /* later snapshots would carry the old one */
        g->flags |= MR_G_META;
    }
    for (size_t i = 0; i < rd->n_read_states; i++)
        mr_waiters_read_state(n, g, &rd->read_states[i]);
    mr_waiters_progress(n, g);
}

/* An entry copied into the batch's arena (raft_find_entry's entries are not kept). */
struct arena_copy {
    struct mr_node *n;
    struct raft_entry *e; /* NULL: out of memory */
};

static bool copy_to_arena(void *arg, const struct raft_entry *e)
{
    struct arena_copy *ac = arg;
    struct raft_entry *c = mr_arena_alloc(ac->n, sizeof *c);
    unsigned char *data = mr_arena_alloc(ac->n, e->len > 0 ? e->len : 1);
    if (c == NULL || data == NULL)
        return true;
    *c = *e;
    memcpy(data, e->data, e->len);
    c->data = data;
    ac->e = c;
    return true;
}

static void build_write(struct mr_node *n, struct mr_group *g, const struct raft_ready *rd,
                        const struct snap_install *si)
{
    struct mr_group_write w;
    bool any = rd != NULL && (rd->n_entries > 0 || rd->snapshot != NULL);
    unsigned char *state;
    if (!any && !(g->flags & (MR_G_CREATED | MR_G_META | MR_G_COMPACTED | MR_G_GONE)))
        return;
    memset(&w, 0, sizeof w);
    w.group = g->id;
    w.replica_id = g->replica_id;
    if (g->flags & MR_G_GONE) {
        w.flags = MR_GW_REMOVED | ((g->flags & MR_G_KEEP_DEDUP) ? MR_GW_KEEP_DEDUP : 0);
        if (mr_vec_push(n, &n->writes, sizeof w, &w) == NULL)
            n->ready_incomplete = true;
        return;
    }
    if (g->flags & MR_G_CREATED)
        w.flags |= MR_GW_CREATED | MR_GW_KEEP_DEDUP; /* a new group has none anyway */
    w.has_snapshot = si->has;
    w.snapshot_blob = si->blob;
    w.snapshot_blob_len = si->blob_len;
    if (rd != NULL) {
        w.entries = rd->entries;
        w.n_entries = rd->n_entries;
    }
    if (g->flags & MR_G_BOOTSTRAP) {
        /* The bootstrap entry never passes through a Ready: prepend it, as the
         * group's log holds it (mr_create_group). */
        struct arena_copy ac = {n, NULL};
        bool found = false;
        struct raft_entry *es = mr_arena_alloc(n, (w.n_entries + 1) * sizeof *es);
        if (es == NULL || raft_find_entry(g->raft, 1, 2, copy_to_arena, &ac, &found) != RAFT_OK ||
            ac.e == NULL) {
            n->ready_incomplete = true; /* this Ready's entries would be lost */
            return;
        }
        es[0] = *ac.e;
        if (w.n_entries > 0)
            memcpy(es + 1, w.entries, w.n_entries * sizeof *es);
        w.entries = es;
        w.n_entries++;
    }
    w.compacted = (g->flags & MR_G_COMPACTED) != 0;
    /* Every change of a meta field flags the group (hard state: handle_ready;
     * applied index, configuration, map: mr_apply.c, mr_group.c; log start:
     * compaction, snapshot): a write that only appends entries — the common
     * case on the commit path — leaves the meta row alone. */
    w.meta_changed = (g->flags & (MR_G_META | MR_G_CREATED | MR_G_BOOTSTRAP |
                                  MR_G_COMPACTED)) != 0 || si->has;
    if (rd != NULL) {
        w.hard_state = rd->hard_state; /* always filled by the core */
        w.conf_state = rd->conf_state;
    } else {
        mr_group_hard_state(g, &w.hard_state);
        raft_get_conf_state(g->raft, &w.conf_state);
    }
    w.applied = g->applied;
    w.log_start_index = g->log_start_index;
    w.log_start_term = g->log_start_term;
    w.state_len = mr_state_encode(g, NULL);
    state = mr_arena_alloc(n, w.state_len);
    if (state == NULL) {
        n->ready_incomplete = true; /* a meta row without its state */
        return;
    }
    mr_state_encode(g, state);
    w.state = state;
    if (mr_vec_push(n, &n->writes, sizeof w, &w) == NULL) {
        /* The Ready's messages are routed and the core will take its entries as
         * stored at mr_advance: the batch must not go out without them. */
        n->ready_incomplete = true;
        return;
    }
    g->flags &= ~(MR_G_CREATED | MR_G_META | MR_G_COMPACTED | MR_G_BOOTSTRAP);
    if (w.meta_changed)
        g->meta_applied = w.applied;
}

static void process_group(struct mr_node *n, struct mr_group *g, bool *must_sync)
{
    struct mr_outstanding o;
    struct snap_install si;
    int rc;
    memset(&o, 0, sizeof o);
    memset(&si, 0, sizeof si);
    if (g->flags & MR_G_GONE) {
        build_write(n, g, NULL, &si); /* dropped outside a Ready */
        return;
    }
    mr_group_compact(n, g, false);
    mr_service_group(n, g);
    if (raft_has_ready(g->raft)) {
        if ((rc = raft_ready(g->raft, &o.rd)) != RAFT_OK) {
            /* It may have applied part of the Ready's conf changes (mr_core_step). */
            n->ready_incomplete = true;
        } else {
            o.g = g;
            o.has_rd = true;
            if (o.rd.must_sync)
                *must_sync = true;
            handle_ready(n, g, &o.rd, &si);
            if (mr_vec_push(n, &n->outstanding, sizeof o, &o) == NULL) {
                /* Cannot track it: advance now (the host still persists the write). */
                (void)mr_core_step(n, raft_advance(g->raft, &o.rd));
                o.has_rd = false;
            }
        }
    }
    build_write(n, g, o.has_rd ? &o.rd : NULL, &si);
}

bool mr_has_ready(const struct mr_node *n)
{
    if (n->busy)
        return false;
    return n->dirty.len > 0 || n->events.len > 0 || n->completions.len > 0 ||
           n->tombstones.len > 0 || n->writes.len > 0 || mr_peers_have_output(n);
}

int mr_ready(struct mr_node *n, struct mr_batch *out)
{
    bool must_sync = false;
    if (n->busy)
        return MR_EBUSY;
    memset(out, 0, sizeof *out);
    mr_judge_round(n);
    /* A group is visited once per batch: its DIRTY flag stays set while the batch
     * is built, so marking it again meanwhile is a no-op. */
    for (size_t i = 0; i < n->dirty.len; i++)
        process_group(n, ((struct mr_group **)n->dirty.data)[i], &must_sync);
    if (n->dirty.len > 0 &&
        (out->visited = mr_arena_alloc(n, n->dirty.len * sizeof *out->visited)) != NULL)
        out->n_visited = n->dirty.len;
    for (size_t i = 0; i < n->dirty.len; i++) {
        struct mr_group *g = ((struct mr_group **)n->dirty.data)[i];
        if (out->visited != NULL)
            out->visited[i] = g->id;
        g->flags &= ~MR_G_DIRTY;
    }
    n->dirty.len = 0;
    if (n->ready_incomplete || mr_build_envelopes(n) != MR_OK)
        return MR_ENOMEM; /* the host restores the node from storage */
    out->groups = n->writes.data;
    out->n_groups = n->writes.len;
    out->events = n->events.data;
    out->n_events = n->events.len;
    out->dedup = n->dedup.data;
    out->n_dedup = n->dedup.len;
    out->tombstones = n->tombstones.data;
    out->n_tombstones = n->tombstones.len;
    out->completions = n->completions.data;
    out->n_completions = n->completions.len;
    out->envelopes = n->envelopes.data;
    out->n_envelopes = n->envelopes.len;
    /* Durability is owed to what the core says must be synced (new entries, term,
     * vote, snapshot) and to what exists only in this batch: a group created or
     * dropped here, a snapshot installed, a tombstone.  Everything else a batch
     * writes (applied index, commit, events, dedup records, compaction) is derived
     * from the synced log by re-applying it after a crash, so the host may commit
     * such a batch without waiting for its flush. */
    for (size_t i = 0; i < out->n_groups && !must_sync; i++)
        if ((out->groups[i].flags & (MR_GW_CREATED | MR_GW_REMOVED)) ||
            out->groups[i].has_snapshot)
            must_sync = true;
    out->must_sync = must_sync || out->n_tombstones > 0;
    n->busy = true;
    n->c.batches++;
    return MR_OK;
}

int mr_advance(struct mr_node *n, struct mr_batch *b)
{
    MR_HASH_CTX(n);
    struct mr_outstanding *os = n->outstanding.data;
    struct mr_snap_sent *ss = n->snaps_sent.data;
    struct mr_group **gone = n->gone.data;
    if (!n->busy)
        return MR_EINVAL;
    n->busy = false;
    for (size_t i = 0; i < n->outstanding.len; i++) {
        struct mr_group *g = os[i].g;
        struct mr_cmd *c, *tmp;
        if (g->flags & MR_G_GONE)
            continue;
        if (os[i].has_rd) {
            g->synced_term = os[i].rd.hard_state.term;
            (void)mr_core_step(n, raft_advance(g->raft, &os[i].rd));
        }
        /* Persisted now: the host's dedup table answers for these ids. */
        HASH_ITER(hh, g->applied_cmds, c, tmp) {
            HASH_DEL(g->applied_cmds, c);
            mr_free(n, c);
        }
        if (raft_has_ready(g->raft) || g->waiters != NULL)
            mr_group_mark(n, g);
    }
    for (size_t i = 0; i < n->snaps_sent.len; i++) {
        struct mr_group *g = mr_group_find(n, ss[i].group);
        if (g != NULL && !(g->flags & MR_G_GONE))
            raft_report_snapshot(g->raft, ss[i].to, ss[i].ok);
    }
    mr_peers_after_send(n);
    for (size_t i = 0; i < n->gone.len; i++)
        mr_group_destroy(n, gone[i]);
    {
        /* Emptied for the next batch; a burst (thousands of groups created at once)
         * must not leave its high-water mark allocated for ever. */
        struct mr_vec *vs[] = {&n->gone, &n->outstanding, &n->snaps_sent, &n->events,
                               &n->dedup, &n->tombstones, &n->completions, &n->writes,
                               &n->arena, &n->dirty, &n->envelopes};
        mr_arena_reset(n);
        for (size_t i = 0; i < sizeof vs / sizeof vs[0]; i++) {
            if (vs[i] == &n->dirty)
                continue; /* may hold groups marked during advance */
            vs[i]->len = 0;
            if (vs[i]->cap > 256)
                mr_vec_free(n, vs[i]);
        }
        if (n->dirty.len == 0 && n->dirty.cap > 256)
            mr_vec_free(n, &n->dirty);
    }
    if (b != NULL)
        memset(b, 0, sizeof *b);
    return MR_OK;
}
