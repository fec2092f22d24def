/*
 * mr_cluster.c — see mr_cluster.h.  Plain malloc and uthash's defaults: test code.
 */
#include "mr_cluster.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uthash.h>

/* ------------------------------------------------------------ helpers */

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (p == NULL)
        abort();
    return p;
}

static void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (q == NULL)
        abort();
    return q;
}

static void *xdup(const void *p, size_t n)
{
    void *q = xmalloc(n);
    if (n > 0)
        memcpy(q, p, n);
    return q;
}

#define PUSH(arr, n, cap, item)                                              \
    do {                                                                     \
        if ((n) == (cap)) {                                                  \
            (cap) = (cap) ? (cap) * 2 : 8;                                   \
            (arr) = xrealloc((arr), (cap) * sizeof *(arr));                  \
        }                                                                    \
        (arr)[(n)++] = (item);                                               \
    } while (0)

/* ------------------------------------------------------------ persisted model */

struct st_entry {
    raft_term term;
    raft_index index;
    uint8_t type;
    uint32_t len;
    unsigned char *data;
};

struct st_dedup {
    UT_hash_handle hh;
    raft_index index;
    uint16_t len;
    unsigned char id[];
};

struct st_group {
    UT_hash_handle hh;
    mr_group_id id;
    bool has_meta;             /* false: only dedup records kept (MR_GW_KEEP_DEDUP) */
    raft_id replica;
    struct raft_hard_state hs;
    raft_id *voters, *learners;
    uint32_t n_voters, n_learners;
    raft_index applied, ls_index;
    raft_term ls_term;
    unsigned char *state;
    size_t state_len;
    struct st_entry *log;
    size_t n_log, cap_log;
    struct st_dedup *dedup;
};

struct st_tomb {
    UT_hash_handle hh;
    mr_group_id id;
    raft_id min;
    raft_index applied;        /* mr_tombstone.applied */
};

struct st_snapmark {
    UT_hash_handle hh;
    mr_group_id id;
};

struct rec_completion {
    uint64_t token;
    struct mr_completion c;
};

struct mrc_nodeslot {
    struct mrc_cluster *c;
    mr_node_id id;
    struct mr_node *n;
    struct st_group *groups;
    struct st_tomb *tombs;
    struct st_snapmark *snaps;
    struct mrc_event *events;
    size_t n_events, cap_events;
    struct rec_completion *comps;
    size_t n_comps, cap_comps;
    unsigned char *blob;
    size_t blob_cap;
    bool crash_armed;          /* mrc_crash_in_next_batch */
};

struct inflight {
    uint64_t at;
    mr_node_id from, to;
    struct mr_envelope env;
};

struct leader_rec {
    UT_hash_handle hh;
    struct {
        mr_group_id group;
        raft_term term;
    } key;
    mr_node_id node;
};

struct mrc_cluster {
    struct mrc_options o;
    uint64_t now;
    uint64_t starts;           /* node starts so far: each one's session epoch */
    uint64_t prng;
    struct mrc_nodeslot nodes[MRC_MAX_NODES + 1];
    bool blocked[MRC_MAX_NODES + 1][MRC_MAX_NODES + 1];
    bool stalled[MRC_MAX_NODES + 1];
    uint64_t sent[MRC_MAX_NODES + 1][MRC_MAX_NODES + 1];
    uint64_t sent_empty[MRC_MAX_NODES + 1][MRC_MAX_NODES + 1];
    struct inflight *net;
    size_t n_net, cap_net;
    struct leader_rec *leaders;
    void (*observer)(void *arg, mr_node_id node, const struct mr_batch *b);
    void *observer_arg;
    void (*visited)(void *arg, mr_node_id node, const mr_group_id *groups, size_t n);
    void *visited_arg;
    size_t violations;
    char first_violation[256];
};

static uint64_t rnd(struct mrc_cluster *c)
{
    uint64_t z = (c->prng += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static void violation(struct mrc_cluster *c, const char *msg)
{
    if (c->violations++ == 0)
        snprintf(c->first_violation, sizeof c->first_violation, "%s", msg);
}

static struct st_group *st_find(const struct mrc_nodeslot *s, mr_group_id id)
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

static void st_group_free(struct mrc_nodeslot *s, struct st_group *g)
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

/* Per group, an index (the last one seen), in a uthash by group. */
struct group_mark {
    UT_hash_handle hh;
    mr_group_id group;
    raft_index index;
};

/* The group's mark, made with index `init` (*made set) if it had none. */
static struct group_mark *group_mark(struct group_mark **marks, mr_group_id group,
                                     raft_index init, bool *made)
{
    struct group_mark *m;
    HASH_FIND(hh, *marks, &group, sizeof group, m);
    *made = m == NULL;
    if (m == NULL) {
        m = xmalloc(sizeof *m);
        m->group = group;
        m->index = init;
        HASH_ADD(hh, *marks, group, sizeof m->group, m);
    }
    return m;
}

static void group_marks_free(struct group_mark **marks)
{
    struct group_mark *m, *t;
    HASH_ITER(hh, *marks, m, t) {
        HASH_DEL(*marks, m);
        free(m);
    }
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

/* One transaction of the host: everything in the batch, atomically. */
static void persist_batch(struct mrc_nodeslot *s, const struct mr_batch *b)
{
    for (size_t i = 0; i < b->n_groups; i++)
        persist_write(s, &b->groups[i]);
    for (size_t i = 0; i < b->n_dedup; i++) {
        struct st_group *g = st_find(s, b->dedup[i].group);
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
    }
    for (size_t i = 0; i < b->n_events; i++)
        record_event(s, &b->events[i]);
}

/* ------------------------------------------------------------ callbacks */

static bool cb_lookup(void *user, mr_group_id group, const void *cmd, size_t len,
                      raft_index *first)
{
    struct mrc_nodeslot *s = user;
    struct st_group *g = st_find(s, group);
    struct st_dedup *d = NULL;
    if (g == NULL)
        return false;
    HASH_FIND(hh, g->dedup, cmd, len, d);
    if (d == NULL)
        return false;
    *first = d->index;
    return true;
}

static int cb_snapshot(void *user, mr_group_id group, raft_index index, const void **data,
                       size_t *len)
{
    struct mrc_nodeslot *s = user;
    struct st_group *g = st_find(s, group);
    struct st_dedup *d, *t;
    size_t off = 0;
    *data = NULL;
    *len = 0;
    if (g == NULL)
        return 0;
    HASH_ITER(hh, g->dedup, d, t) {
        size_t need = off + 2 + d->len + 8;
        if (d->index > index)
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

/* ------------------------------------------------------------ network */

static struct mr_envelope env_copy(const struct mr_envelope *e)
{
    struct mr_envelope c = *e;
    struct mr_message *ms = xmalloc(e->n_messages * sizeof *ms + 1);
    for (size_t i = 0; i < e->n_messages; i++) {
        const struct raft_message *m = &e->messages[i].msg;
        ms[i] = e->messages[i];
        if (m->n_entries > 0) {
            struct raft_entry *es = xmalloc(m->n_entries * sizeof *es);
            for (uint32_t k = 0; k < m->n_entries; k++) {
                es[k] = m->entries[k];
                es[k].data = m->entries[k].len ? xdup(m->entries[k].data, m->entries[k].len)
                                               : NULL;
            }
            ms[i].msg.entries = es;
        } else {
            ms[i].msg.entries = NULL;
        }
        if (m->snapshot != NULL) {
            struct raft_snapshot *sn = xmalloc(sizeof *sn);
            *sn = *m->snapshot;
            sn->conf.voters = xdup(m->snapshot->conf.voters,
                                   m->snapshot->conf.n_voters * sizeof(raft_id));
            sn->conf.learners = xdup(m->snapshot->conf.learners,
                                     m->snapshot->conf.n_learners * sizeof(raft_id));
            sn->data = xdup(m->snapshot->data, m->snapshot->len);
            ms[i].msg.snapshot = sn;
        }
    }
    c.messages = ms;
    c.heartbeats = xdup(e->heartbeats, e->n_heartbeats * sizeof *e->heartbeats);
    c.heartbeat_resps = xdup(e->heartbeat_resps, e->n_heartbeat_resps * sizeof *e->heartbeats);
    return c;
}

static void env_free(struct mr_envelope *e)
{
    struct mr_message *ms = (struct mr_message *)e->messages;
    for (size_t i = 0; i < e->n_messages; i++) {
        struct raft_entry *es = (struct raft_entry *)ms[i].msg.entries;
        for (uint32_t k = 0; k < ms[i].msg.n_entries && es != NULL; k++)
            free((void *)es[k].data);
        free(es);
        if (ms[i].msg.snapshot != NULL) {
            struct raft_snapshot *sn = (struct raft_snapshot *)ms[i].msg.snapshot;
            free((void *)sn->conf.voters);
            free((void *)sn->conf.learners);
            free((void *)sn->data);
            free(sn);
        }
    }
    free(ms);
    free((void *)e->heartbeats);
    free((void *)e->heartbeat_resps);
}

/* Sends e (counted once per batch envelope: the early part is not counted). */
static void net_send(struct mrc_cluster *c, const struct mr_envelope *e, bool count)
{
    mr_node_id a = e->from_node, b = e->to_node;
    int copies = 1;
    if (a > c->o.n_nodes || b == 0 || b > c->o.n_nodes)
        return;
    if (count) {
        c->sent[a][b]++;
        if (e->n_messages + e->n_heartbeats + e->n_heartbeat_resps == 0)
            c->sent_empty[a][b]++;
    }
    if (c->blocked[a][b])
        return;
    if (c->o.drop_pct > 0 && rnd(c) % 100 < c->o.drop_pct)
        return;
    if (c->o.dup_pct > 0 && rnd(c) % 100 < c->o.dup_pct)
        copies = 2;
    for (int k = 0; k < copies; k++) {
        struct inflight f;
        f.at = c->now + (c->o.max_delay > 0 ? rnd(c) % (c->o.max_delay + 1) : 0);
        f.from = a;
        f.to = b;
        f.env = env_copy(e);
        PUSH(c->net, c->n_net, c->cap_net, f);
    }
}

/* ------------------------------------------------------------ nodes */

static void process_ready(struct mrc_cluster *c, struct mrc_nodeslot *s)
{
    struct mr_batch b;
    if (mr_ready(s->n, &b) != MR_OK)
        return;
    if (c->observer != NULL)
        c->observer(c->observer_arg, s->id, &b);
    /* As a host does: the early part (leader appends in a durable term) leaves
     * before the batch is persisted, the rest after. */
    for (size_t i = 0; i < b.n_envelopes; i++) {
        struct mr_envelope early;
        if (mr_envelope_early(&b.envelopes[i], &early))
            net_send(c, &early, false);
    }
    if (s->crash_armed) {
        s->crash_armed = false;
        mrc_crash(c, s->id); /* nothing of this batch was persisted */
        return;
    }
    persist_batch(s, &b);
    for (size_t i = 0; i < b.n_envelopes; i++) {
        struct mr_envelope late;
        if (mr_envelope_rest(&b.envelopes[i], &late))
            net_send(c, &late, true);
        else if (late.to_node <= c->o.n_nodes) /* all of it left early: count it */
            c->sent[late.from_node][late.to_node]++;
    }
    for (size_t i = 0; i < b.n_completions; i++) {
        struct rec_completion rc;
        rc.token = b.completions[i].token;
        rc.c = b.completions[i];
        PUSH(s->comps, s->n_comps, s->cap_comps, rc);
    }
    /* As a host publishes status: for the visited groups, after the advance (which
     * releases the batch, so the ids are copied first). */
    size_t n_visited = b.n_visited;
    mr_group_id *visited = NULL;
    if (c->visited != NULL) {
        visited = malloc((n_visited > 0 ? n_visited : 1) * sizeof *visited);
        if (visited == NULL)
            abort();
        if (n_visited > 0)
            memcpy(visited, b.visited, n_visited * sizeof *visited);
    }
    mr_advance(s->n, &b);
    if (c->visited != NULL) {
        c->visited(c->visited_arg, s->id, visited, n_visited);
        free(visited);
    }
}

static int start_node(struct mrc_cluster *c, mr_node_id id)
{
    struct mrc_nodeslot *s = &c->nodes[id];
    struct mr_config cfg = c->o.base;
    struct st_group *g, *gt;
    struct st_tomb *t, *tt;
    int rc;
    cfg.node_id = id;
    cfg.seed = c->o.seed * 1000003u + id * 7919u + c->now;
    cfg.session_epoch = ++c->starts;
    cfg.storage.user = s;
    cfg.storage.lookup_command = cb_lookup;
    cfg.storage.snapshot_data = cb_snapshot;
    s->n = mr_node_new(&cfg, &rc);
    if (s->n == NULL)
        return rc;
    HASH_ITER(hh, s->tombs, t, tt)
        mr_restore_tombstone(s->n, t->id, t->min, t->applied);
    HASH_ITER(hh, s->groups, g, gt) {
        struct mr_group_restore r;
        struct raft_entry *es;
        size_t n_es;
        if (!g->has_meta)
            continue;
        es = xmalloc(g->n_log * sizeof *es + 1);
        n_es = 0;
        for (size_t i = 0; i < g->n_log; i++) {
            if (g->log[i].index <= g->ls_index)
                continue; /* left behind by a compaction not yet written */
            es[n_es].term = g->log[i].term;
            es[n_es].index = g->log[i].index;
            es[n_es].type = g->log[i].type;
            es[n_es].len = g->log[i].len;
            es[n_es].data = g->log[i].data;
            n_es++;
        }
        memset(&r, 0, sizeof r);
        r.group = g->id;
        r.replica_id = g->replica;
        r.hard_state = g->hs;
        r.conf_state.voters = g->voters;
        r.conf_state.n_voters = g->n_voters;
        r.conf_state.learners = g->learners;
        r.conf_state.n_learners = g->n_learners;
        r.applied = g->applied;
        r.log_start_index = g->ls_index;
        r.log_start_term = g->ls_term;
        r.state = g->state;
        r.state_len = g->state_len;
        r.entries = es;
        r.n_entries = n_es;
        rc = mr_restore_group(s->n, &r);
        free(es);
        if (rc != MR_OK) {
            char msg[128];
            snprintf(msg, sizeof msg, "node %u: restore of group %llu failed: %s", id,
                     (unsigned long long)g->id, mr_strerror(rc));
            violation(c, msg);
        }
    }
    /* The highest event index stored per group (this host never deletes events):
     * what the meta rows trail by is re-applied without announcing it again. */
    {
        struct group_mark *marks = NULL, *m, *mt;
        bool made;
        for (size_t i = 0; i < s->n_events; i++) {
            const struct mrc_event *e = &s->events[i];
            m = group_mark(&marks, e->group, e->index, &made);
            if (e->index > m->index)
                m->index = e->index;
        }
        HASH_ITER(hh, marks, m, mt)
            if (m->index > 0 && mr_group_exists(s->n, m->group))
                (void)mr_restore_announced(s->n, m->group, m->index);
        group_marks_free(&marks);
    }
    return MR_OK;
}

struct mrc_cluster *mrc_new(const struct mrc_options *o)
{
    struct mrc_cluster *c = xmalloc(sizeof *c);
    memset(c, 0, sizeof *c);
    c->o = *o;
    if (c->o.n_nodes == 0 || c->o.n_nodes > MRC_MAX_NODES)
        c->o.n_nodes = 3;
    c->prng = o->seed;
    for (mr_node_id i = 1; i <= c->o.n_nodes; i++) {
        c->nodes[i].c = c;
        c->nodes[i].id = i;
        if (start_node(c, i) != MR_OK) {
            mrc_free(c);
            return NULL;
        }
    }
    return c;
}

struct mrc_cluster *mrc_new_nodes(uint32_t n_nodes, uint64_t seed)
{
    struct mrc_options o;
    memset(&o, 0, sizeof o);
    o.n_nodes = n_nodes;
    o.seed = seed;
    return mrc_new(&o);
}

struct mrc_cluster *mrc_new_one_group(uint64_t seed)
{
    struct mrc_cluster *c = mrc_new_nodes(3, seed);
    mr_node_id members[3] = {1, 2, 3};
    if (mr_create_group(mrc_node(c, 1), 1, members, 3, 1) != MR_OK) {
        mrc_free(c);
        return NULL;
    }
    mrc_run(c, 40);
    if (mrc_leader(c, 1, NULL) != 1) {
        mrc_free(c);
        return NULL;
    }
    return c;
}

static void slot_free(struct mrc_nodeslot *s)
{
    struct st_group *g, *gt;
    struct st_tomb *t, *tt;
    struct st_snapmark *m, *mt;
    if (s->n != NULL)
        mr_node_free(s->n);
    s->n = NULL;
    HASH_ITER(hh, s->groups, g, gt)
        st_group_free(s, g);
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
    free(s->comps);
    free(s->blob);
}

void mrc_free(struct mrc_cluster *c)
{
    struct leader_rec *l, *lt;
    if (c == NULL)
        return;
    for (mr_node_id i = 1; i <= c->o.n_nodes; i++)
        slot_free(&c->nodes[i]);
    for (size_t i = 0; i < c->n_net; i++)
        env_free(&c->net[i].env);
    free(c->net);
    HASH_ITER(hh, c->leaders, l, lt) {
        HASH_DEL(c->leaders, l);
        free(l);
    }
    free(c);
}

struct mr_node *mrc_node(struct mrc_cluster *c, mr_node_id id)
{
    return id >= 1 && id <= c->o.n_nodes ? c->nodes[id].n : NULL;
}

uint64_t mrc_now(const struct mrc_cluster *c)
{
    return c->now;
}

bool mrc_is_up(const struct mrc_cluster *c, mr_node_id id)
{
    return id >= 1 && id <= c->o.n_nodes && c->nodes[id].n != NULL;
}

static bool deliver_due(struct mrc_cluster *c)
{
    bool any = false;
    size_t i = 0;
    while (i < c->n_net) {
        struct inflight f = c->net[i];
        struct mrc_nodeslot *s;
        if (f.at > c->now || c->stalled[f.to]) {
            i++;
            continue;
        }
        c->net[i] = c->net[--c->n_net]; /* reorders: fine, the network may */
        s = &c->nodes[f.to];
        if (s->n != NULL && !c->blocked[f.from][f.to]) {
            mr_receive(s->n, &f.env);
            any = true;
        }
        env_free(&f.env);
    }
    return any;
}

static int leader_scan(void *arg, const struct mr_group_status *st)
{
    struct mrc_cluster *c = arg;
    struct leader_rec key, *l = NULL;
    if (st->role != RAFT_LEADER)
        return 0;
    memset(&key, 0, sizeof key);
    key.key.group = st->group;
    key.key.term = st->term;
    HASH_FIND(hh, c->leaders, &key.key, sizeof key.key, l);
    if (l == NULL) {
        l = xmalloc(sizeof *l);
        memset(l, 0, sizeof *l);
        l->key = key.key;
        l->node = st->node_id;
        HASH_ADD(hh, c->leaders, key, sizeof l->key, l);
    } else if (l->node != st->node_id) {
        char msg[128];
        snprintf(msg, sizeof msg, "group %llu term %llu: two leaders (nodes %u and %u)",
                 (unsigned long long)st->group, (unsigned long long)st->term, l->node,
                 st->node_id);
        violation(c, msg);
    }
    return 0;
}

int mrc_receive_one(struct mrc_cluster *c, mr_node_id from, mr_node_id to,
                    const struct mr_message *m)
{
    struct mr_envelope env;
    memset(&env, 0, sizeof env);
    env.from_node = from;
    env.to_node = to;
    env.messages = m;
    env.n_messages = 1;
    return mr_receive(mrc_node(c, to), &env);
}

void mrc_settle(struct mrc_cluster *c)
{
    for (int round = 0; round < 50; round++) {
        bool any = false;
        for (mr_node_id i = 1; i <= c->o.n_nodes; i++) {
            struct mrc_nodeslot *s = &c->nodes[i];
            if (s->n != NULL && !c->stalled[i] && mr_has_ready(s->n)) {
                process_ready(c, s);
                any = true;
            }
        }
        if (deliver_due(c))
            any = true;
        if (!any)
            break;
    }
}

void mrc_tick(struct mrc_cluster *c)
{
    c->now++;
    for (mr_node_id i = 1; i <= c->o.n_nodes; i++)
        if (c->nodes[i].n != NULL && !c->stalled[i])
            mr_tick(c->nodes[i].n);
    mrc_settle(c);
    if (!c->o.no_leader_check)
        for (mr_node_id i = 1; i <= c->o.n_nodes; i++)
            if (c->nodes[i].n != NULL)
                mr_foreach_group(c->nodes[i].n, leader_scan, c);
}

void mrc_run(struct mrc_cluster *c, uint32_t ticks)
{
    for (uint32_t i = 0; i < ticks; i++)
        mrc_tick(c);
}

void mrc_crash(struct mrc_cluster *c, mr_node_id id)
{
    if (!mrc_is_up(c, id))
        return;
    mr_node_free(c->nodes[id].n);
    c->nodes[id].n = NULL;
}

void mrc_crash_in_next_batch(struct mrc_cluster *c, mr_node_id id)
{
    if (mrc_is_up(c, id))
        c->nodes[id].crash_armed = true;
}

int mrc_restart(struct mrc_cluster *c, mr_node_id id)
{
    if (id >= 1 && id <= c->o.n_nodes && c->nodes[id].crash_armed) {
        c->nodes[id].crash_armed = false;
        mrc_crash(c, id);
    }
    if (id < 1 || id > c->o.n_nodes || c->nodes[id].n != NULL)
        return MR_EINVAL;
    return start_node(c, id);
}

void mrc_partition(struct mrc_cluster *c, mr_node_id a, mr_node_id b, bool blocked)
{
    if (a > MRC_MAX_NODES || b > MRC_MAX_NODES)
        return;
    c->blocked[a][b] = blocked;
    c->blocked[b][a] = blocked;
}

void mrc_stall(struct mrc_cluster *c, mr_node_id id, bool stalled)
{
    if (id >= 1 && id <= MRC_MAX_NODES)
        c->stalled[id] = stalled;
}

void mrc_heal_all(struct mrc_cluster *c)
{
    memset(c->blocked, 0, sizeof c->blocked);
}

void mrc_set_faults(struct mrc_cluster *c, uint32_t drop_pct, uint32_t dup_pct,
                    uint32_t max_delay)
{
    c->o.drop_pct = drop_pct;
    c->o.dup_pct = dup_pct;
    c->o.max_delay = max_delay;
}

/* ------------------------------------------------------------ queries */

bool mrc_completion(const struct mrc_cluster *c, mr_node_id node, uint64_t token,
                    struct mr_completion *out)
{
    const struct mrc_nodeslot *s = &c->nodes[node];
    for (size_t i = s->n_comps; i-- > 0;)
        if (s->comps[i].token == token) {
            if (out != NULL)
                *out = s->comps[i].c;
            return true;
        }
    return false;
}

size_t mrc_completion_count(const struct mrc_cluster *c, mr_node_id node, uint64_t token)
{
    const struct mrc_nodeslot *s = &c->nodes[node];
    size_t n = 0;
    for (size_t i = 0; i < s->n_comps; i++)
        if (s->comps[i].token == token)
            n++;
    return n;
}

size_t mrc_event_count(const struct mrc_cluster *c, mr_node_id node)
{
    return c->nodes[node].n_events;
}

const struct mrc_event *mrc_event_at(const struct mrc_cluster *c, mr_node_id node, size_t i)
{
    return i < c->nodes[node].n_events ? &c->nodes[node].events[i] : NULL;
}

size_t mrc_command_events(const struct mrc_cluster *c, mr_node_id node, mr_group_id group,
                          const void *cmd, size_t cmd_len)
{
    const struct mrc_nodeslot *s = &c->nodes[node];
    size_t n = 0;
    for (size_t i = 0; i < s->n_events; i++) {
        const struct mrc_event *e = &s->events[i];
        if (e->type == MR_EVENT_COMMAND && e->group == group && e->cmd_len == cmd_len &&
            memcmp(e->cmd, cmd, cmd_len) == 0)
            n++;
    }
    return n;
}

bool mrc_has_dedup(const struct mrc_cluster *c, mr_node_id node, mr_group_id group,
                   const void *cmd, size_t cmd_len)
{
    raft_index first;
    return cb_lookup((void *)&c->nodes[node], group, cmd, cmd_len, &first);
}

bool mrc_stored_group(const struct mrc_cluster *c, mr_node_id node, mr_group_id group)
{
    const struct st_group *g = st_find(&c->nodes[node], group);
    return g != NULL && g->has_meta;
}

raft_index mrc_stored_applied(const struct mrc_cluster *c, mr_node_id node, mr_group_id group)
{
    const struct st_group *g = st_find(&c->nodes[node], group);
    return g != NULL && g->has_meta ? g->applied : 0;
}

size_t mrc_stored_log_rows(const struct mrc_cluster *c, mr_node_id node, mr_group_id group)
{
    const struct st_group *g = st_find(&c->nodes[node], group);
    return g != NULL ? g->n_log : 0;
}

bool mrc_stored_tombstone(const struct mrc_cluster *c, mr_node_id node, mr_group_id group,
                          raft_id *min_replica)
{
    struct st_tomb *t = NULL;
    HASH_FIND(hh, c->nodes[node].tombs, &group, sizeof group, t);
    if (t != NULL && min_replica != NULL)
        *min_replica = t->min;
    return t != NULL;
}

bool mrc_snapshot_installed(const struct mrc_cluster *c, mr_node_id node, mr_group_id group)
{
    struct st_snapmark *m = NULL;
    HASH_FIND(hh, c->nodes[node].snaps, &group, sizeof group, m);
    return m != NULL;
}

mr_node_id mrc_leader(struct mrc_cluster *c, mr_group_id group, raft_term *term)
{
    mr_node_id best = 0;
    raft_term bt = 0;
    for (mr_node_id i = 1; i <= c->o.n_nodes; i++) {
        struct mr_group_status st;
        if (c->nodes[i].n == NULL || mr_group_status(c->nodes[i].n, group, &st) != MR_OK)
            continue;
        if (st.role == RAFT_LEADER && st.term >= bt) {
            best = i;
            bt = st.term;
        }
    }
    if (term != NULL)
        *term = bt;
    return best;
}

uint64_t mrc_envelopes(const struct mrc_cluster *c, mr_node_id a, mr_node_id b)
{
    return c->sent[a][b];
}

uint64_t mrc_empty_envelopes(const struct mrc_cluster *c, mr_node_id a, mr_node_id b)
{
    return c->sent_empty[a][b];
}

/* ------------------------------------------------------------ checks */

struct idx_rec {
    UT_hash_handle hh;
    struct {
        mr_group_id group;
        raft_index index;
    } key;
    const struct mrc_event *ev;
    mr_node_id node;
};

/*
 * Replicas agree on what each entry did: a command (or membership change) applied
 * at (group, index) on one node is applied there on every node that went past that
 * index by applying entries — not by installing a snapshot that covered it.  (A
 * node that treated the entry as a duplicate where another applied it would differ
 * in state: the dedup decision must depend on the log alone.)
 */
static void check_no_entry_skipped(struct mrc_cluster *c, struct idx_rec *byidx)
{
    char msg[256];
    for (mr_node_id n = 1; n <= c->o.n_nodes; n++) {
        const struct mrc_nodeslot *s = &c->nodes[n];
        struct group_mark *prev = NULL; /* per group: the last index it went past */
        for (size_t i = 0; i < s->n_events; i++) {
            const struct mrc_event *e = &s->events[i];
            struct group_mark *l;
            bool made;
            if (e->type != MR_EVENT_COMMAND && e->type != MR_EVENT_MEMBERSHIP_CHANGE &&
                e->type != MR_EVENT_SNAPSHOT_APPLIED)
                continue;
            /* The first one is where this node's record of the group begins. */
            l = group_mark(&prev, e->group, e->index, &made);
            if (made)
                continue;
            if (e->type != MR_EVENT_SNAPSHOT_APPLIED)
                for (raft_index k = l->index + 1; k < e->index; k++) {
                    struct idx_rec *r;
                    struct { mr_group_id group; raft_index index; } key;
                    memset(&key, 0, sizeof key);
                    key.group = e->group;
                    key.index = k;
                    HASH_FIND(hh, byidx, &key, sizeof key, r);
                    if (r != NULL) {
                        snprintf(msg, sizeof msg,
                                 "group %llu index %llu: applied on node %u, passed over on node %u",
                                 (unsigned long long)e->group, (unsigned long long)k, r->node, n);
                        violation(c, msg);
                    }
                }
            if (e->index > l->index)
                l->index = e->index;
        }
        group_marks_free(&prev);
    }
}

size_t mrc_check(struct mrc_cluster *c, char *err, size_t err_len)
{
    struct idx_rec *byidx = NULL, *r, *rt;
    char msg[256];
    for (mr_node_id n = 1; n <= c->o.n_nodes; n++) {
        const struct mrc_nodeslot *s = &c->nodes[n];
        /* per group: last index seen and the set of command ids (as keys) */
        struct group_mark *last = NULL, *l;
        bool made;
        struct seen {
            UT_hash_handle hh;
            size_t len;
            unsigned char key[];
        } *seen = NULL, *sn, *st;
        for (size_t i = 0; i < s->n_events; i++) {
            const struct mrc_event *e = &s->events[i];
            if (e->type != MR_EVENT_COMMAND && e->type != MR_EVENT_MEMBERSHIP_CHANGE)
                continue;
            l = group_mark(&last, e->group, 0, &made);
            if (e->index <= l->index) {
                snprintf(msg, sizeof msg, "node %u group %llu: event index %llu after %llu", n,
                         (unsigned long long)e->group, (unsigned long long)e->index,
                         (unsigned long long)l->index);
                violation(c, msg);
            }
            l->index = e->index;
            {
                size_t klen = 8 + e->cmd_len;
                struct seen *x = xmalloc(sizeof *x + klen);
                x->len = klen;
                memcpy(x->key, &e->group, 8);
                memcpy(x->key + 8, e->cmd, e->cmd_len);
                HASH_FIND(hh, seen, x->key, klen, sn);
                if (sn != NULL) {
                    snprintf(msg, sizeof msg, "node %u group %llu: command id applied twice (index %llu)",
                             n, (unsigned long long)e->group, (unsigned long long)e->index);
                    violation(c, msg);
                    free(x);
                } else {
                    HASH_ADD_KEYPTR(hh, seen, x->key, x->len, x);
                }
            }
            {
                struct idx_rec key;
                memset(&key, 0, sizeof key);
                key.key.group = e->group;
                key.key.index = e->index;
                HASH_FIND(hh, byidx, &key.key, sizeof key.key, r);
                if (r == NULL) {
                    r = xmalloc(sizeof *r);
                    memset(r, 0, sizeof *r);
                    r->key = key.key;
                    r->ev = e;
                    r->node = n;
                    HASH_ADD(hh, byidx, key, sizeof r->key, r);
                } else if (r->ev->type != e->type || r->ev->cmd_len != e->cmd_len ||
                           memcmp(r->ev->cmd, e->cmd, e->cmd_len) != 0 ||
                           r->ev->payload_len != e->payload_len ||
                           memcmp(r->ev->payload, e->payload, e->payload_len) != 0) {
                    snprintf(msg, sizeof msg,
                             "group %llu index %llu: nodes %u and %u applied different entries",
                             (unsigned long long)e->group, (unsigned long long)e->index,
                             r->node, n);
                    violation(c, msg);
                }
            }
        }
        group_marks_free(&last);
        HASH_ITER(hh, seen, sn, st) {
            HASH_DEL(seen, sn);
            free(sn);
        }
    }
    check_no_entry_skipped(c, byidx);
    HASH_ITER(hh, byidx, r, rt) {
        HASH_DEL(byidx, r);
        free(r);
    }
    if (err != NULL && err_len > 0)
        snprintf(err, err_len, "%s", c->violations ? c->first_violation : "ok");
    return c->violations;
}

void mrc_set_batch_observer(struct mrc_cluster *c,
                            void (*fn)(void *arg, mr_node_id node, const struct mr_batch *b),
                            void *arg)
{
    c->observer = fn;
    c->observer_arg = arg;
}

void mrc_set_visited_observer(struct mrc_cluster *c,
                              void (*fn)(void *arg, mr_node_id node,
                                         const mr_group_id *groups, size_t n),
                              void *arg)
{
    c->visited = fn;
    c->visited_arg = arg;
}
