/*
 * mr_cluster.c — see mr_cluster.h: the cluster's nodes, their batches (persisted
 * through mr_cluster_store.c), the network between them and time.  Plain malloc
 * and uthash's defaults: test code.
 */
#include "mr_cluster_internal.h"

static uint64_t rnd(struct mrc_cluster *c)
{
    uint64_t z = (c->prng += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void mrc_violation(struct mrc_cluster *c, const char *msg)
{
    if (c->violations++ == 0)
        snprintf(c->first_violation, sizeof c->first_violation, "%s", msg);
}

struct group_mark *mrc_group_mark(struct group_mark **marks, mr_group_id group,
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

void mrc_group_marks_free(struct group_mark **marks)
{
    struct group_mark *m, *t;
    HASH_ITER(hh, *marks, m, t) {
        HASH_DEL(*marks, m);
        free(m);
    }
}

/* ------------------------------------------------------------ network */

/* A copy of e for the network, without the messages the cluster's filter drops. */
static struct mr_envelope env_copy(const struct mrc_cluster *cl, const struct mr_envelope *e)
{
    struct mr_envelope c = *e;
    struct mr_message *ms = xmalloc(e->n_messages * sizeof *ms + 1);
    size_t i = 0;
    c.n_early_messages = 0;
    for (size_t j = 0; j < e->n_messages; j++, i++) {
        const struct raft_message *m = &e->messages[j].msg;
        if (cl->drop_message != NULL &&
            cl->drop_message(cl->drop_arg, e->from_node, e->to_node, m)) {
            i--;
            continue;
        }
        if (j < e->n_early_messages)
            c.n_early_messages++;
        ms[i] = e->messages[j];
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
    c.n_messages = i;
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
        f.env = env_copy(c, e);
        PUSH(c->net, c->n_net, c->cap_net, f);
    }
}

/* ------------------------------------------------------------ nodes */

static int start_node(struct mrc_cluster *c, mr_node_id id);

static void process_ready(struct mrc_cluster *c, struct mrc_nodeslot *s)
{
    struct mr_batch b;
    int ready = mr_ready(s->n, &b);
    if (ready == MR_ENOMEM) {
        /* As the host does (worker_batch.c): the batch is thrown away and the
         * node restored from what is stored — not a crash: every batch committed
         * before stays, flushed or not. */
        mr_node_free(s->n);
        s->n = NULL;
        c->restores++;
        (void)start_node(c, s->id);
        return;
    }
    if (ready != MR_OK)
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
        /* nothing of this batch was persisted, nor what was not yet flushed */
        mrc_crash(c, s->id);
        return;
    }
    mrcs_persist_batch(s, &b);
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
    bool unflushed = !b.must_sync && s->n_unflushed > 0;
    mr_advance(s->n, &b);
    if (c->visited != NULL) {
        c->visited(c->visited_arg, s->id, visited, n_visited);
        free(visited);
    }
    if (s->crash_unflushed && unflushed)
        mrc_crash(c, s->id); /* its messages left, its requests completed */
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
    cfg.storage.lookup_command = mrcs_lookup;
    cfg.storage.snapshot_data = mrcs_snapshot;
    cfg.storage.snapshot_blob_ok = mrcs_blob_ok;
    s->n = mr_node_new(&cfg, &rc);
    if (s->n == NULL)
        return rc;
    /* A start follows a crash: the live store is what the disk kept. */
    HASH_ITER(hh, s->live.tombs, t, tt)
        mr_restore_tombstone(s->n, t->id, t->min, t->applied, t->incarnation);
    HASH_ITER(hh, s->live.groups, g, gt) {
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
            mrc_violation(c, msg);
        }
    }
    /* The highest event index stored per group (this host never deletes events):
     * what the meta rows trail by is re-applied without announcing it again. */
    {
        struct group_mark *marks = NULL, *m, *mt;
        bool made;
        for (size_t i = 0; i < s->n_events; i++) {
            const struct mrc_event *e = &s->events[i];
            m = mrc_group_mark(&marks, e->group, e->index, &made);
            if (e->index > m->index)
                m->index = e->index;
        }
        HASH_ITER(hh, marks, m, mt)
            if (m->index > 0 && mr_group_exists(s->n, m->group))
                (void)mr_restore_announced(s->n, m->group, m->index);
        mrc_group_marks_free(&marks);
    }
    return MR_OK;
}

struct mrc_cluster *mrc_new(const struct mrc_options *o)
{
    struct mrc_cluster *c;
    if (o->n_nodes > MRC_MAX_NODES)
        return NULL; /* not silently fewer nodes than the test asked for */
    c = xmalloc(sizeof *c);
    memset(c, 0, sizeof *c);
    c->o = *o;
    if (c->o.n_nodes == 0)
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

struct mrc_options mrc_options_ticks(uint32_t n_nodes, uint64_t seed, uint32_t election,
                                     uint32_t heartbeat)
{
    struct mrc_options o;
    memset(&o, 0, sizeof o);
    o.n_nodes = n_nodes;
    o.seed = seed;
    o.base.election_ticks = election;
    o.base.heartbeat_ticks = heartbeat;
    return o;
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

struct mrc_cluster *mrc_new_groups(const struct mrc_options *o, mr_group_id groups)
{
    struct mrc_cluster *c = mrc_new(o);
    mr_node_id members[3] = {1, 2, 3};
    if (c == NULL || c->o.n_nodes < 3)
        goto fail;
    for (mr_group_id g = 1; g <= groups; g++)
        if (mr_create_group(mrc_node(c, (mr_node_id)(1 + g % 3)), g, members, 3, g) != MR_OK)
            goto fail;
    mrc_run(c, 40);
    return c;
fail:
    if (c != NULL)
        mrc_free(c);
    return NULL;
}

struct mrc_cluster *mrc_new_idle_groups(uint64_t seed, uint32_t election, uint32_t heartbeat,
                                        mr_group_id groups)
{
    struct mrc_options o = mrc_options_ticks(3, seed, election, heartbeat);
    struct mrc_cluster *c = mrc_new_groups(&o, groups);
    if (c != NULL && (!mrc_all_led(c, groups) || mrc_active_groups(c) != 0)) {
        mrc_free(c);
        return NULL;
    }
    return c;
}

size_t mrc_active_groups(struct mrc_cluster *c)
{
    size_t a = 0;
    for (mr_node_id n = 1; n <= c->o.n_nodes; n++)
        if (c->nodes[n].n != NULL)
            a += mr_active_group_count(c->nodes[n].n);
    return a;
}

bool mrc_all_led(struct mrc_cluster *c, mr_group_id groups)
{
    for (mr_group_id g = 1; g <= groups; g++)
        if (mrc_leader(c, g, NULL) == 0)
            return false;
    return true;
}

static void slot_free(struct mrc_nodeslot *s)
{
    if (s->n != NULL)
        mr_node_free(s->n);
    s->n = NULL;
    mrcs_free(s);
    free(s->comps);
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
        mrc_violation(c, msg);
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
    c->nodes[id].crash_armed = false;
    c->nodes[id].crash_unflushed = false;
    mrcs_crash(&c->nodes[id]); /* and the batches committed since the last flush */
}

void mrc_crash_in_next_batch(struct mrc_cluster *c, mr_node_id id)
{
    if (mrc_is_up(c, id))
        c->nodes[id].crash_armed = true;
}

void mrc_crash_after_unflushed(struct mrc_cluster *c, mr_node_id id)
{
    if (mrc_is_up(c, id))
        c->nodes[id].crash_unflushed = true;
}

void mrc_set_message_filter(struct mrc_cluster *c,
                            bool (*drop)(void *arg, mr_node_id from, mr_node_id to,
                                         const struct raft_message *m),
                            void *arg)
{
    c->drop_message = drop;
    c->drop_arg = arg;
}

uint64_t mrc_restores(const struct mrc_cluster *c)
{
    return c->restores;
}

int mrc_restart(struct mrc_cluster *c, mr_node_id id)
{
    if (id >= 1 && id <= c->o.n_nodes &&
        (c->nodes[id].crash_armed || c->nodes[id].crash_unflushed))
        mrc_crash(c, id);
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

bool mrc_node_in(const mr_node_id *list, uint32_t n, mr_node_id node)
{
    for (uint32_t i = 0; i < n && i < MR_MAX_MEMBERS; i++)
        if (list[i] == node)
            return true;
    return false;
}

void mrc_block(struct mrc_cluster *c, mr_node_id from, mr_node_id to, bool blocked)
{
    if (from <= MRC_MAX_NODES && to <= MRC_MAX_NODES)
        c->blocked[from][to] = blocked;
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
