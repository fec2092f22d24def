/*
 * mr_cluster_store.c — the in-process cluster's model of what each node's host
 * persisted (group meta, log rows, dedup records, tombstones, events), written one
 * batch at a time as a host's transaction would, and the storage callbacks of
 * multiraft.h answered from it.
 */
#include "mr_cluster_internal.h"

struct st_group *mrcs_find(const struct mrc_nodeslot *s, mr_group_id id)
{
    struct st_group *g = NULL;
    HASH_FIND(hh, s->groups, &id, sizeof id, g);
    return g;
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

void mrcs_group_free(struct mrc_nodeslot *s, struct st_group *g)
{
    HASH_DEL(s->groups, g);
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
static void st_load_blob(struct st_group *g, const unsigned char *p, size_t len)
{
    size_t off = 0;
    /* added to the records already there (st_add_dedup keeps existing ones) */
    while (off + 2 <= len) {
        uint16_t l = (uint16_t)(p[off] | (p[off + 1] << 8));
        if (off + 2 + l + 8 > len)
            break;
        st_add_dedup(g, p + off + 2, l, get64(p + off + 2 + l));
        off += 2 + (size_t)l + 8;
    }
}

static void persist_write(struct mrc_nodeslot *s, const struct mr_group_write *w)
{
    struct st_group *g = mrcs_find(s, w->group);
    if (w->flags & (MR_GW_REMOVED | MR_GW_CREATED)) {
        if (g != NULL && (w->flags & MR_GW_KEEP_DEDUP)) {
            /* log and meta go, the dedup records stay */
            st_truncate_from(g, 0);
            g->has_meta = false;
        } else if (g != NULL) {
            mrcs_group_free(s, g);
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

void mrcs_persist_batch(struct mrc_nodeslot *s, const struct mr_batch *b)
{
    for (size_t i = 0; i < b->n_groups; i++)
        persist_write(s, &b->groups[i]);
    for (size_t i = 0; i < b->n_dedup; i++) {
        struct st_group *g = mrcs_find(s, b->dedup[i].group);
        if (g != NULL)
            st_add_dedup(g, b->dedup[i].command_id, b->dedup[i].command_id_len,
                         b->dedup[i].index);
    }
    for (size_t i = 0; i < b->n_tombstones; i++) {
        struct st_tomb *t = NULL;
        HASH_FIND(hh, s->tombs, &b->tombstones[i].group, sizeof(mr_group_id), t);
        if (t == NULL) {
            t = xmalloc(sizeof *t);
            memset(t, 0, sizeof *t);
            t->id = b->tombstones[i].group;
            HASH_ADD(hh, s->tombs, id, sizeof t->id, t);
        }
        if (b->tombstones[i].min_replica_id > t->min)
            t->min = b->tombstones[i].min_replica_id;
        if (b->tombstones[i].applied > t->applied)
            t->applied = b->tombstones[i].applied;
        t->incarnation = b->tombstones[i].incarnation;
    }
    for (size_t i = 0; i < b->n_events; i++)
        record_event(s, &b->events[i]);
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

/* Everything the node's host persisted, and the callbacks' scratch. */
void mrcs_free(struct mrc_nodeslot *s)
{
    struct st_group *g, *gt;
    struct st_tomb *t, *tt;
    struct st_snapmark *m, *mt;
    HASH_ITER(hh, s->groups, g, gt)
        mrcs_group_free(s, g);
    HASH_ITER(hh, s->tombs, t, tt) {
        HASH_DEL(s->tombs, t);
        free(t);
    }
    HASH_ITER(hh, s->snaps, m, mt) {
        HASH_DEL(s->snaps, m);
        free(m);
    }
    for (size_t i = 0; i < s->n_events; i++) {
        free(s->events[i].cmd);
        free(s->events[i].payload);
    }
    free(s->events);
    free(s->blob);
}
