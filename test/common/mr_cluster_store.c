/*
 * mr_cluster_store.c — the in-process cluster's model of what each node's host
 * persisted (group meta, log rows, dedup records, tombstones, events), written one
 * batch at a time as a host's transaction would, and the storage callbacks of
 * multiraft.h answered from it.  A batch without must_sync is committed without
 * waiting for its flush, as the PostgreSQL host does: visible at once, durable only
 * with the next synchronous batch, lost in a crash before that
 * (mr_cluster_internal.h, "Durability").
 */
#include "mr_cluster_internal.h"

#include <assert.h>

static struct st_group *st_find(const struct st_store *st, mr_group_id id)
{
    struct st_group *g = NULL;
    HASH_FIND(hh, st->groups, &id, sizeof id, g);
    return g;
}

struct st_group *mrcs_find(const struct mrc_nodeslot *s, mr_group_id id)
{
    return st_find(&s->live, id);
}

static void st_clear_dedup(struct st_group *g)
{
    struct st_dedup *d, *t;
    HASH_ITER(hh, g->dedup, d, t) {
        HASH_DEL(g->dedup, d);
        free(d);
    }
}

static void st_truncate_from(struct st_group *g, raft_index from)
{
    while (g->n_log > 0 && g->log[g->n_log - 1].index >= from)
        free(g->log[--g->n_log].data);
}

static void st_group_free(struct st_store *st, struct st_group *g)
{
    HASH_DEL(st->groups, g);
    st_truncate_from(g, 0);
    free(g->log);
    st_clear_dedup(g);
    free(g->voters);
    free(g->learners);
    free(g->state);
    free(g);
}

static void st_add_dedup(struct st_group *g, const void *cmd, size_t len, raft_index index)
{
    struct st_dedup *d = NULL;
    HASH_FIND(hh, g->dedup, cmd, len, d);
    if (d != NULL)
        return;
    d = xmalloc(sizeof *d + len);
    memset(d, 0, sizeof *d);
    d->index = index;
    d->len = (uint16_t)len;
    memcpy(d->id, cmd, len);
    HASH_ADD_KEYPTR(hh, g->dedup, d->id, d->len, d);
}

static uint64_t get64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

/* Blob format of this host: n x (u16 len | id | u64 index). */
/* The records of a blob (n x (u16 id length | id | u64 index)) go to g if g is
 * not NULL; false if the blob is not whole. */
static bool st_walk_blob(struct st_group *g, const unsigned char *p, size_t len)
{
    size_t off = 0;
    while (off < len) {
        size_t l;
        if (len - off < 2)
            return false;
        l = (size_t)p[off] | ((size_t)p[off + 1] << 8);
        if (l == 0 || len - off - 2 < l + 8)
            return false;
        /* added to the records already there (st_add_dedup keeps existing ones) */
        if (g != NULL)
            st_add_dedup(g, p + off + 2, (uint16_t)l, get64(p + off + 2 + l));
        off += 2 + (size_t)l + 8;
    }
    return true;
}

static void st_load_blob(struct st_group *g, const unsigned char *p, size_t len)
{
    bool whole = st_walk_blob(g, p, len);
    assert(whole); /* the layer installs only blobs mrcs_blob_ok took */
    (void)whole;
}

bool mrcs_blob_ok(void *user, mr_group_id group, const void *blob, size_t len)
{
    (void)user;
    (void)group;
    return st_walk_blob(NULL, blob, len);
}

static void persist_write(struct st_store *s, const struct mr_group_write *w)
{
    struct st_group *g = st_find(s, w->group);
    if (w->flags & (MR_GW_REMOVED | MR_GW_CREATED)) {
        if (g != NULL && (w->flags & MR_GW_KEEP_DEDUP)) {
            /* log and meta go, the dedup records stay */
            st_truncate_from(g, 0);
            g->has_meta = false;
        } else if (g != NULL) {
            st_group_free(s, g);
            g = NULL;
        }
        if (w->flags & MR_GW_REMOVED)
            return;
    }
    if (g == NULL) {
        g = xmalloc(sizeof *g);
        memset(g, 0, sizeof *g);
        g->id = w->group;
        HASH_ADD(hh, s->groups, id, sizeof g->id, g);
    }
    g->has_meta = true;
    if (w->has_snapshot) {
        struct st_snapmark *m = NULL;
        st_truncate_from(g, 0);
        st_load_blob(g, w->snapshot_blob, w->snapshot_blob_len);
        HASH_FIND(hh, s->snaps, &w->group, sizeof w->group, m);
        if (m == NULL) {
            m = xmalloc(sizeof *m);
            m->id = w->group;
            HASH_ADD(hh, s->snaps, id, sizeof m->id, m);
        }
    }
    if (w->n_entries > 0) {
        st_truncate_from(g, w->entries[0].index);
        for (size_t i = 0; i < w->n_entries; i++) {
            struct st_entry e;
            e.term = w->entries[i].term;
            e.index = w->entries[i].index;
            e.type = w->entries[i].type;
            e.len = w->entries[i].len;
            e.data = xdup(w->entries[i].data, e.len);
            PUSH(g->log, g->n_log, g->cap_log, e);
        }
    }
    if (w->compacted || w->has_snapshot) {
        size_t drop = 0;
        while (drop < g->n_log && g->log[drop].index <= w->log_start_index)
            free(g->log[drop++].data);
        if (drop > 0) {
            memmove(g->log, g->log + drop, (g->n_log - drop) * sizeof *g->log);
            g->n_log -= drop;
        }
    }
    if (w->meta_changed) {
        g->replica = w->replica_id;
        g->hs = w->hard_state;
        free(g->voters);
        free(g->learners);
        g->n_voters = w->conf_state.n_voters;
        g->n_learners = w->conf_state.n_learners;
        g->voters = xdup(w->conf_state.voters, g->n_voters * sizeof(raft_id));
        g->learners = xdup(w->conf_state.learners, g->n_learners * sizeof(raft_id));
        g->applied = w->applied;
        g->ls_index = w->log_start_index;
        g->ls_term = w->log_start_term;
        free(g->state);
        g->state = xdup(w->state, w->state_len);
        g->state_len = w->state_len;
    }
}

static void record_event(struct mrc_nodeslot *s, const struct mr_event *e)
{
    struct mrc_event r;
    memset(&r, 0, sizeof r);
    r.type = e->type;
    r.group = e->group;
    r.index = e->index;
    r.term = e->term;
    r.node_id = e->node_id;
    r.change_type = e->change_type;
    r.cmd_len = (uint16_t)e->command_id_len;
    r.cmd = xdup(e->command_id, e->command_id_len);
    r.payload_len = e->payload_len;
    r.payload = xdup(e->payload, e->payload_len);
    PUSH(s->events, s->n_events, s->cap_events, r);
}

/* One batch's rows into a store (the events aside). */
static void st_apply(struct st_store *st, const struct mr_batch *b)
{
    for (size_t i = 0; i < b->n_groups; i++)
        persist_write(st, &b->groups[i]);
    for (size_t i = 0; i < b->n_dedup; i++) {
        struct st_group *g = st_find(st, b->dedup[i].group);
        if (g != NULL)
            st_add_dedup(g, b->dedup[i].command_id, b->dedup[i].command_id_len,
                         b->dedup[i].index);
    }
    for (size_t i = 0; i < b->n_tombstones; i++) {
        struct st_tomb *t = NULL;
        HASH_FIND(hh, st->tombs, &b->tombstones[i].group, sizeof(mr_group_id), t);
        if (t == NULL) {
            t = xmalloc(sizeof *t);
            memset(t, 0, sizeof *t);
            t->id = b->tombstones[i].group;
            HASH_ADD(hh, st->tombs, id, sizeof t->id, t);
        }
        if (b->tombstones[i].min_replica_id > t->min)
            t->min = b->tombstones[i].min_replica_id;
        if (b->tombstones[i].applied > t->applied)
            t->applied = b->tombstones[i].applied;
        t->incarnation = b->tombstones[i].incarnation;
    }
}

/* An owned copy of what the batch writes to the tables (not its events, which
 * the slot's list keeps, nor what it sends or completes). */
static struct mr_batch batch_copy(const struct mr_batch *b)
{
    struct mr_batch k;
    memset(&k, 0, sizeof k);
    k.must_sync = b->must_sync;
    k.n_groups = b->n_groups;
    k.groups = xmalloc(b->n_groups * sizeof *k.groups);
    for (size_t i = 0; i < b->n_groups; i++) {
        const struct mr_group_write *w = &b->groups[i];
        struct mr_group_write *x = &k.groups[i];
        struct raft_entry *es = xmalloc(w->n_entries * sizeof *es);
        *x = *w;
        x->snapshot_blob = xdup(w->snapshot_blob, w->snapshot_blob_len);
        for (size_t e = 0; e < w->n_entries; e++) {
            es[e] = w->entries[e];
            es[e].data = xdup(w->entries[e].data, w->entries[e].len);
        }
        x->entries = es;
        x->conf_state.voters = xdup(w->conf_state.voters,
                                    w->conf_state.n_voters * sizeof(raft_id));
        x->conf_state.learners = xdup(w->conf_state.learners,
                                      w->conf_state.n_learners * sizeof(raft_id));
        x->state = xdup(w->state, w->state_len);
    }
    k.n_dedup = b->n_dedup;
    k.dedup = xmalloc(b->n_dedup * sizeof *k.dedup);
    for (size_t i = 0; i < b->n_dedup; i++) {
        k.dedup[i] = b->dedup[i];
        k.dedup[i].command_id = xdup(b->dedup[i].command_id, b->dedup[i].command_id_len);
    }
    k.n_tombstones = b->n_tombstones;
    k.tombstones = xdup(b->tombstones, b->n_tombstones * sizeof *b->tombstones);
    return k;
}

static void batch_copy_free(struct mr_batch *k)
{
    for (size_t i = 0; i < k->n_groups; i++) {
        struct mr_group_write *x = &k->groups[i];
        for (size_t e = 0; e < x->n_entries; e++)
            free((void *)x->entries[e].data);
        free((void *)x->entries);
        free((void *)x->snapshot_blob);
        free((void *)x->conf_state.voters);
        free((void *)x->conf_state.learners);
        free((void *)x->state);
    }
    free(k->groups);
    for (size_t i = 0; i < k->n_dedup; i++)
        free((void *)k->dedup[i].command_id);
    free(k->dedup);
    free(k->tombstones);
    memset(k, 0, sizeof *k);
}

/*
 * What a batch that is not flushed may hold: only rows a crash lets the node
 * derive again from its durable log (mr_batch.must_sync).  Anything else
 * committed without a flush could be lost after the batch's messages left —
 * a vote, an acknowledged entry — so it is the layer's error, and a violation.
 */
static void check_unflushed(struct mrc_nodeslot *s, const struct mr_batch *b)
{
    char msg[256];
    const char *what = NULL;
    mr_group_id group = 0;
    if (b->n_tombstones > 0) {
        what = "a tombstone";
        group = b->tombstones[0].group;
    }
    for (size_t i = 0; i < b->n_groups && what == NULL; i++) {
        const struct mr_group_write *w = &b->groups[i];
        const struct st_group *g = mrcs_find(s, w->group);
        group = w->group;
        if (w->flags & (MR_GW_CREATED | MR_GW_REMOVED))
            what = "a created or removed group";
        else if (w->has_snapshot)
            what = "a snapshot";
        else if (w->n_entries > 0)
            what = "log entries";
        else if (w->meta_changed && (g == NULL || !g->has_meta))
            what = "a new meta row";
        else if (w->meta_changed && (w->hard_state.term != g->hs.term ||
                                     w->hard_state.vote != g->hs.vote ||
                                     w->replica_id != g->replica))
            what = "a new term, vote or replica";
    }
    if (what == NULL)
        return;
    snprintf(msg, sizeof msg, "node %u group %llu: %s in a batch without must_sync",
             s->id, (unsigned long long)group, what);
    mrc_violation(s->c, msg);
}

void mrcs_persist_batch(struct mrc_nodeslot *s, const struct mr_batch *b)
{
    bool sync = b->must_sync || s->c->o.sync_every_batch;
    if (!b->must_sync)
        check_unflushed(s, b);
    st_apply(&s->live, b);
    for (size_t i = 0; i < b->n_events; i++)
        record_event(s, &b->events[i]);
    if (!sync) {
        /* committed, not flushed: visible now, durable with the next flush */
        if (b->n_groups + b->n_dedup + b->n_tombstones + b->n_events > 0) {
            if (s->n_unflushed == s->cap_unflushed) {
                s->cap_unflushed = s->cap_unflushed ? 2 * s->cap_unflushed : 8;
                s->unflushed = xrealloc(s->unflushed, s->cap_unflushed * sizeof *s->unflushed);
            }
            s->unflushed[s->n_unflushed++] = batch_copy(b);
        }
        return;
    }
    /* The flush makes every earlier commit durable too (the WAL is sequential). */
    for (size_t i = 0; i < s->n_unflushed; i++) {
        st_apply(&s->durable, &s->unflushed[i]);
        batch_copy_free(&s->unflushed[i]);
    }
    s->n_unflushed = 0;
    st_apply(&s->durable, b);
    s->n_durable_events = s->n_events;
}

bool mrcs_lookup(void *user, mr_group_id group, const void *cmd, size_t len,
                 raft_index *first)
{
    struct mrc_nodeslot *s = user;
    struct st_group *g = mrcs_find(s, group);
    struct st_dedup *d = NULL;
    if (g == NULL)
        return false;
    HASH_FIND(hh, g->dedup, cmd, len, d);
    if (d == NULL)
        return false;
    *first = d->index;
    return true;
}

int mrcs_snapshot(void *user, mr_group_id group, raft_index index, const void **data,
                  size_t *len)
{
    struct mrc_nodeslot *s = user;
    struct st_group *g = mrcs_find(s, group);
    struct st_dedup *d, *t;
    size_t off = 0;
    *data = NULL;
    *len = 0;
    if (g == NULL)
        return 0;
    HASH_ITER(hh, g->dedup, d, t) {
        size_t need = off + 2 + d->len + 8;
        if (MR_DEDUP_INDEX(d->index) > index)
            continue; /* the blob is the state as of the snapshot index */
        if (need > s->blob_cap) {
            s->blob_cap = need * 2;
            s->blob = xrealloc(s->blob, s->blob_cap);
        }
        s->blob[off] = (unsigned char)d->len;
        s->blob[off + 1] = (unsigned char)(d->len >> 8);
        memcpy(s->blob + off + 2, d->id, d->len);
        for (int i = 0; i < 8; i++)
            s->blob[off + 2 + d->len + i] = (unsigned char)(d->index >> (8 * i));
        off = need;
    }
    *data = s->blob;
    *len = off;
    return 0;
}

static void st_store_free(struct st_store *st)
{
    struct st_group *g, *gt;
    struct st_tomb *t, *tt;
    struct st_snapmark *m, *mt;
    HASH_ITER(hh, st->groups, g, gt)
        st_group_free(st, g);
    HASH_ITER(hh, st->tombs, t, tt) {
        HASH_DEL(st->tombs, t);
        free(t);
    }
    HASH_ITER(hh, st->snaps, m, mt) {
        HASH_DEL(st->snaps, m);
        free(m);
    }
}

/* A deep copy of src into the empty dst. */
static void st_store_copy(struct st_store *dst, const struct st_store *src)
{
    struct st_group *g, *gt;
    struct st_tomb *t, *tt;
    struct st_snapmark *m, *mt;
    HASH_ITER(hh, src->groups, g, gt) {
        struct st_group *x = xmalloc(sizeof *x);
        struct st_dedup *d, *dt;
        memset(x, 0, sizeof *x);
        x->id = g->id;
        x->has_meta = g->has_meta;
        x->replica = g->replica;
        x->hs = g->hs;
        x->n_voters = g->n_voters;
        x->n_learners = g->n_learners;
        x->voters = xdup(g->voters, g->n_voters * sizeof(raft_id));
        x->learners = xdup(g->learners, g->n_learners * sizeof(raft_id));
        x->applied = g->applied;
        x->ls_index = g->ls_index;
        x->ls_term = g->ls_term;
        x->state = xdup(g->state, g->state_len);
        x->state_len = g->state_len;
        x->n_log = x->cap_log = g->n_log;
        x->log = xdup(g->log, g->n_log * sizeof *g->log);
        for (size_t i = 0; i < g->n_log; i++)
            x->log[i].data = xdup(g->log[i].data, g->log[i].len);
        HASH_ITER(hh, g->dedup, d, dt)
            st_add_dedup(x, d->id, d->len, d->index);
        HASH_ADD(hh, dst->groups, id, sizeof x->id, x);
    }
    HASH_ITER(hh, src->tombs, t, tt) {
        struct st_tomb *x = xdup(t, sizeof *t);
        memset(&x->hh, 0, sizeof x->hh);
        HASH_ADD(hh, dst->tombs, id, sizeof x->id, x);
    }
    HASH_ITER(hh, src->snaps, m, mt) {
        struct st_snapmark *x = xdup(m, sizeof *m);
        memset(&x->hh, 0, sizeof x->hh);
        HASH_ADD(hh, dst->snaps, id, sizeof x->id, x);
    }
}

static void event_free(struct mrc_event *e)
{
    free(e->cmd);
    free(e->payload);
}

void mrcs_crash(struct mrc_nodeslot *s)
{
    if (s->n_unflushed == 0)
        return; /* live == durable */
    for (size_t i = 0; i < s->n_unflushed; i++)
        batch_copy_free(&s->unflushed[i]);
    s->lost_batches += s->n_unflushed;
    s->n_unflushed = 0;
    st_store_free(&s->live);
    st_store_copy(&s->live, &s->durable);
    /* Their events leave the table; they were visible, so the checks keep them. */
    for (size_t i = s->n_durable_events; i < s->n_events; i++)
        PUSH(s->lost, s->n_lost, s->cap_lost, s->events[i]);
    s->n_events = s->n_durable_events;
}

/* Everything the node's host persisted, and the callbacks' scratch. */
void mrcs_free(struct mrc_nodeslot *s)
{
    for (size_t i = 0; i < s->n_unflushed; i++)
        batch_copy_free(&s->unflushed[i]);
    free(s->unflushed);
    st_store_free(&s->live);
    st_store_free(&s->durable);
    for (size_t i = 0; i < s->n_events; i++)
        event_free(&s->events[i]);
    free(s->events);
    for (size_t i = 0; i < s->n_lost; i++)
        event_free(&s->lost[i]);
    free(s->lost);
    free(s->blob);
}
