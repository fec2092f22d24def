/*
 * test_cluster.c — see test_cluster.h.  Plain malloc: this is test code.
 */
#include "test_cluster.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t tc_rand(struct test_cluster *tc)
{
    uint64_t z = (tc->prng += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
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
    void *q;
    if (n == 0)
        return NULL;
    q = xrealloc(NULL, n);
    memcpy(q, p, n);
    return q;
}

void tc_default_config(struct raft_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->election_tick = 10;
    cfg->heartbeat_tick = 1;
    cfg->max_inflight_msgs = 64;
    cfg->max_size_per_msg = 1u << 20;
}

int tc_slot(const struct test_cluster *tc, raft_id id)
{
    for (int i = 0; i < TC_MAX_NODES; i++)
        if (tc->nodes[i].present && tc->nodes[i].id == id)
            return i;
    return -1;
}

static int start_raft(struct test_cluster *tc, int i)
{
    struct tc_node *n = &tc->nodes[i];
    struct raft_config cfg = tc->cfg;
    int rc;
    cfg.id = n->id;
    cfg.applied = n->applied_index;
    cfg.seed = tc->seed * 1000003u + (uint64_t)i * 7919u + n->readies;
    raft_memory_storage_interface(n->ms, &cfg.storage);
    n->r = raft_new(&cfg, tc->alloc != NULL ? tc->alloc : raft_default_allocator(), &rc);
    if (n->r == NULL)
        return rc;
    n->up = true;
    return 0;
}

static int add_node(struct test_cluster *tc, int slot, raft_id id,
                    const struct raft_conf_state *initial, bool bootstrap)
{
    struct tc_node *n;
    if (slot < 0 || slot >= TC_MAX_NODES || tc->nodes[slot].present)
        return RAFT_EINVAL;
    n = &tc->nodes[slot];
    memset(n, 0, sizeof *n);
    n->present = true;
    n->id = id;
    n->ms = raft_memory_storage_new(NULL);
    if (initial != NULL && bootstrap) {
        raft_memory_storage_bootstrap(n->ms, initial);
        n->applied_index = 1;
    } else if (initial != NULL) {
        raft_memory_storage_set_conf_state(n->ms, initial);
    }
    return start_raft(tc, slot);
}

int tc_add_node(struct test_cluster *tc, int slot, raft_id id,
                const struct raft_conf_state *initial)
{
    return add_node(tc, slot, id, initial, false);
}

static int init(struct test_cluster *tc, int n, const struct raft_config *cfg, uint64_t seed,
                bool bootstrap)
{
    raft_id ids[TC_MAX_NODES];
    struct raft_conf_state cs;
    memset(tc, 0, sizeof *tc);
    if (cfg != NULL)
        tc->cfg = *cfg;
    else
        tc_default_config(&tc->cfg);
    tc->seed = seed;
    tc->prng = seed ^ 0x5eed;
    if (n > TC_MAX_NODES)
        return RAFT_EINVAL;
    for (int i = 0; i < n; i++)
        ids[i] = (raft_id)(i + 1);
    cs.voters = ids;
    cs.n_voters = (uint32_t)n;
    cs.learners = NULL;
    cs.n_learners = 0;
    for (int i = 0; i < n; i++) {
        int rc = add_node(tc, i, ids[i], &cs, bootstrap);
        if (rc != 0)
            return rc;
    }
    return 0;
}

int tc_init(struct test_cluster *tc, int n, const struct raft_config *cfg, uint64_t seed)
{
    return init(tc, n, cfg, seed, false);
}

int tc_init_bootstrap(struct test_cluster *tc, int n, const struct raft_config *cfg,
                      uint64_t seed)
{
    return init(tc, n, cfg, seed, true);
}

static void free_msg(struct tc_msg *m)
{
    if (m->ents != NULL)
        for (uint32_t i = 0; i < m->m.n_entries; i++)
            free((void *)m->ents[i].data);
    free(m->ents);
    if (m->snap != NULL) {
        free((void *)m->snap->conf.voters);
        free((void *)m->snap->data);
        free(m->snap);
    }
    memset(m, 0, sizeof *m);
}

void tc_drop_queue(struct test_cluster *tc)
{
    for (size_t k = 0; k < tc->q_len; k++)
        free_msg(&tc->q[(tc->q_head + k) % tc->q_cap]);
    tc->q_head = tc->q_len = 0;
}

static void free_node(struct tc_node *n)
{
    raft_free(n->r);
    raft_memory_storage_free(n->ms);
    for (size_t k = 0; k < n->n_applied; k++)
        free(n->applied[k].data);
    free(n->applied);
    free(n->reads);
    free(n->snap_data);
    memset(n, 0, sizeof *n);
}

void tc_destroy(struct test_cluster *tc)
{
    tc_drop_queue(tc);
    free(tc->q);
    for (int i = 0; i < TC_MAX_NODES; i++)
        if (tc->nodes[i].present)
            free_node(&tc->nodes[i]);
    free(tc->leaders);
    memset(tc, 0, sizeof *tc);
}

static void enqueue(struct test_cluster *tc, const struct raft_message *m)
{
    struct tc_msg *d;
    if (tc->q_len == tc->q_cap) {
        size_t ncap = tc->q_cap ? tc->q_cap * 2 : 64;
        struct tc_msg *nq = xrealloc(NULL, ncap * sizeof *nq);
        for (size_t k = 0; k < tc->q_len; k++)
            nq[k] = tc->q[(tc->q_head + k) % tc->q_cap];
        free(tc->q);
        tc->q = nq;
        tc->q_cap = ncap;
        tc->q_head = 0;
    }
    d = &tc->q[(tc->q_head + tc->q_len) % tc->q_cap];
    memset(d, 0, sizeof *d);
    d->m = *m;
    if (m->n_entries > 0) {
        d->ents = xrealloc(NULL, sizeof *d->ents * m->n_entries);
        for (uint32_t k = 0; k < m->n_entries; k++) {
            d->ents[k] = m->entries[k];
            d->ents[k].data = xdup(m->entries[k].data, m->entries[k].len);
        }
    }
    d->m.entries = d->ents;
    if (m->snapshot != NULL) {
        const struct raft_snapshot *s = m->snapshot;
        size_t nids = (size_t)s->conf.n_voters + s->conf.n_learners;
        raft_id *ids = xrealloc(NULL, sizeof(raft_id) * (nids ? nids : 1));
        memcpy(ids, s->conf.voters, sizeof(raft_id) * s->conf.n_voters);
        if (s->conf.n_learners)
            memcpy(ids + s->conf.n_voters, s->conf.learners,
                   sizeof(raft_id) * s->conf.n_learners);
        d->snap = xrealloc(NULL, sizeof *d->snap);
        *d->snap = *s;
        d->snap->conf.voters = ids;
        d->snap->conf.learners = ids + s->conf.n_voters;
        d->snap->data = xdup(s->data, s->len);
    }
    d->m.snapshot = d->snap;
    tc->q_len++;
}

static void note_error(struct test_cluster *tc, int rc)
{
    if (rc < 0 && rc != RAFT_EBUSY && tc->error == 0)
        tc->error = rc;
}

static void note_leader(struct test_cluster *tc, raft_term term, raft_id id)
{
    for (size_t k = 0; k < tc->n_leaders; k++) {
        if (tc->leaders[k].term == term) {
            if (tc->leaders[k].id != id && tc->error == 0)
                tc->error = -1000; /* two leaders in one term */
            return;
        }
    }
    if (tc->n_leaders == tc->cap_leaders) {
        tc->cap_leaders = tc->cap_leaders ? tc->cap_leaders * 2 : 16;
        tc->leaders = xrealloc(tc->leaders, sizeof *tc->leaders * tc->cap_leaders);
    }
    tc->leaders[tc->n_leaders].term = term;
    tc->leaders[tc->n_leaders].id = id;
    tc->n_leaders++;
}

static void record_applied(struct test_cluster *tc, struct tc_node *n, const struct raft_entry *e)
{
    struct tc_applied *a;
    if (e->index != n->applied_index + 1 && tc->error == 0)
        tc->error = -1001; /* gap or repetition in applied entries */
    if (n->n_applied == n->cap_applied) {
        n->cap_applied = n->cap_applied ? n->cap_applied * 2 : 32;
        n->applied = xrealloc(n->applied, sizeof *n->applied * n->cap_applied);
    }
    a = &n->applied[n->n_applied++];
    a->index = e->index;
    a->term = e->term;
    a->type = e->type;
    a->len = e->len;
    a->data = xdup(e->data, e->len);
    n->applied_index = e->index;
}

static void maybe_snapshot(struct test_cluster *tc, struct tc_node *n)
{
    struct raft_storage st;
    struct raft_snapshot s;
    struct raft_conf_state cs;
    unsigned char data[16];
    raft_memory_storage_interface(n->ms, &st);
    st.snapshot(st.user, &s);
    if (tc->snapshot_every == 0 || n->applied_index < s.index + tc->snapshot_every)
        return;
    raft_get_conf_state(n->r, &cs);
    /* The "state machine image": applied index and number of commands. */
    memcpy(data, &n->applied_index, 8);
    {
        uint64_t cmds = n->n_applied;
        memcpy(data + 8, &cmds, 8);
    }
    if (raft_memory_storage_create_snapshot(n->ms, n->applied_index, &cs, data,
                                            sizeof data) == RAFT_OK &&
        n->applied_index > tc->compact_keep)
        (void)raft_memory_storage_compact(n->ms, n->applied_index - tc->compact_keep);
}

int tc_process(struct test_cluster *tc, int i)
{
    struct tc_node *n = &tc->nodes[i];
    int guard = 0;
    if (!n->present || !n->up)
        return 0;
    while (raft_has_ready(n->r) && guard++ < 1000) {
        struct raft_ready rd;
        int rc = raft_ready(n->r, &rd);
        if (rc != RAFT_OK) {
            note_error(tc, rc);
            return rc;
        }
        n->readies++;
        if (rd.soft_state_changed && rd.role == RAFT_LEADER)
            note_leader(tc, raft_get_term(n->r), n->id);
        if (rd.snapshot != NULL) {
            rc = raft_memory_storage_apply_snapshot(n->ms, rd.snapshot);
            note_error(tc, rc);
            n->applied_index = rd.snapshot->index;
            free(n->snap_data);
            n->snap_data = xdup(rd.snapshot->data, rd.snapshot->len);
            n->snap_len = rd.snapshot->len;
            n->snapshots_installed++;
        }
        if (rd.n_entries > 0)
            note_error(tc, raft_memory_storage_append(n->ms, rd.entries, rd.n_entries));
        if (rd.has_hard_state)
            raft_memory_storage_set_hard_state(n->ms, &rd.hard_state);
        for (size_t k = 0; k < rd.n_messages; k++) {
            enqueue(tc, &rd.messages[k]);
            n->msgs_sent++;
        }
        for (size_t k = 0; k < rd.n_committed; k++)
            record_applied(tc, n, &rd.committed[k]);
        if (rd.conf_changed)
            raft_memory_storage_set_conf_state(n->ms, &rd.conf_state);
        for (size_t k = 0; k < rd.n_read_states; k++) {
            if (n->n_reads == n->cap_reads) {
                n->cap_reads = n->cap_reads ? n->cap_reads * 2 : 8;
                n->reads = xrealloc(n->reads, sizeof *n->reads * n->cap_reads);
            }
            n->reads[n->n_reads++] = rd.read_states[k];
        }
        if (tc->on_ready != NULL)
            tc->on_ready(tc->on_ready_arg, i, &rd);
        rc = raft_advance(n->r, &rd);
        note_error(tc, rc);
        maybe_snapshot(tc, n);
    }
    return 0;
}

bool tc_deliver_one(struct test_cluster *tc)
{
    struct tc_msg m;
    int src, dst;
    for (int i = 0; i < TC_MAX_NODES; i++)
        tc_process(tc, i);
    if (tc->q_len == 0)
        return false;
    m = tc->q[tc->q_head];
    tc->q_head = (tc->q_head + 1) % tc->q_cap;
    tc->q_len--;
    src = tc_slot(tc, m.m.from);
    dst = tc_slot(tc, m.m.to);
    if (dst < 0 || !tc->nodes[dst].up || (src >= 0 && tc->cut[src][dst]) ||
        (tc->drop_per_mille > 0 && tc_rand(tc) % 1000 < tc->drop_per_mille) ||
        (tc->filter != NULL && !tc->filter(tc->filter_arg, &m.m))) {
        tc->dropped++;
        /* The transport tells the leader a snapshot did not make it. */
        if (m.m.type == RAFT_MSG_SNAPSHOT && src >= 0 && tc->nodes[src].up &&
            !tc->unreported_snapshot_drops)
            raft_report_snapshot(tc->nodes[src].r, m.m.to, false);
    } else {
        int rc = raft_step(tc->nodes[dst].r, &m.m);
        if (rc != RAFT_EINVAL)
            note_error(tc, rc);
        tc->delivered++;
        if (m.m.type == RAFT_MSG_SNAPSHOT && src >= 0 && tc->nodes[src].up &&
            tc->report_snapshot_success)
            raft_report_snapshot(tc->nodes[src].r, m.m.to, true);
    }
    free_msg(&m);
    return true;
}

size_t tc_stabilize(struct test_cluster *tc, size_t max_steps)
{
    size_t k = 0;
    if (max_steps == 0)
        max_steps = 100000;
    while (k < max_steps && tc_deliver_one(tc))
        k++;
    return k;
}

void tc_tick(struct test_cluster *tc)
{
    for (int i = 0; i < TC_MAX_NODES; i++)
        if (tc->nodes[i].present && tc->nodes[i].up)
            note_error(tc, raft_tick(tc->nodes[i].r));
}

void tc_tick_stabilize(struct test_cluster *tc, int n)
{
    for (int k = 0; k < n; k++) {
        tc_tick(tc);
        tc_stabilize(tc, 0);
    }
}

int tc_elect(struct test_cluster *tc, int i)
{
    int rc;
    tc_stabilize(tc, 0);
    rc = raft_campaign(tc->nodes[i].r);
    if (rc != RAFT_OK)
        return rc;
    tc_stabilize(tc, 0);
    return raft_get_role(tc->nodes[i].r) == RAFT_LEADER ? 0 : -1;
}

int tc_leader(const struct test_cluster *tc)
{
    int best = -1;
    raft_term bt = 0;
    for (int i = 0; i < TC_MAX_NODES; i++) {
        const struct tc_node *n = &tc->nodes[i];
        if (!n->present || !n->up || raft_get_role(n->r) != RAFT_LEADER)
            continue;
        if (best < 0 || raft_get_term(n->r) > bt) {
            best = i;
            bt = raft_get_term(n->r);
        }
    }
    return best;
}

void tc_cut(struct test_cluster *tc, int from, int to)
{
    tc->cut[from][to] = true;
}

void tc_isolate(struct test_cluster *tc, int i)
{
    for (int j = 0; j < TC_MAX_NODES; j++) {
        if (j == i)
            continue;
        tc->cut[i][j] = true;
        tc->cut[j][i] = true;
    }
}

void tc_partition(struct test_cluster *tc, const int *side, int n_side)
{
    bool in[TC_MAX_NODES] = {false};
    for (int k = 0; k < n_side; k++)
        in[side[k]] = true;
    for (int i = 0; i < TC_MAX_NODES; i++)
        for (int j = 0; j < TC_MAX_NODES; j++)
            if (in[i] != in[j])
                tc->cut[i][j] = true;
}

void tc_heal(struct test_cluster *tc)
{
    memset(tc->cut, 0, sizeof tc->cut);
}

void tc_crash(struct test_cluster *tc, int i)
{
    struct tc_node *n = &tc->nodes[i];
    if (!n->up)
        return;
    raft_free(n->r);
    n->r = NULL;
    n->up = false;
}

int tc_lose_storage(struct test_cluster *tc, int i, const struct raft_conf_state *initial)
{
    raft_id id = tc->nodes[i].id;
    if (!tc->nodes[i].present)
        return RAFT_EINVAL;
    free_node(&tc->nodes[i]); /* present no more */
    return add_node(tc, i, id, initial, false);
}

int tc_restart(struct test_cluster *tc, int i)
{
    if (tc->nodes[i].up)
        return 0;
    return start_raft(tc, i);
}

int tc_propose(struct test_cluster *tc, int i, const char *s, raft_index *index)
{
    return raft_propose(tc->nodes[i].r, s, strlen(s), index, NULL);
}

static bool msg_matches(const struct raft_message *m, int type, raft_id from, raft_id to)
{
    return (type == 0 || m->type == type) && (from == 0 || m->from == from) &&
           (to == 0 || m->to == to);
}

size_t tc_queued(const struct test_cluster *tc, int type, raft_id from, raft_id to)
{
    size_t c = 0;
    for (size_t k = 0; k < tc->q_len; k++)
        if (msg_matches(&tc->q[(tc->q_head + k) % tc->q_cap].m, type, from, to))
            c++;
    return c;
}

const struct raft_message *tc_queued_at(const struct test_cluster *tc, size_t k)
{
    if (k >= tc->q_len)
        return NULL;
    return &tc->q[(tc->q_head + k) % tc->q_cap].m;
}

const struct raft_message *tc_queued_find(const struct test_cluster *tc, int type,
                                          raft_id from, raft_id to)
{
    for (size_t k = 0; k < tc->q_len; k++) {
        const struct raft_message *m = &tc->q[(tc->q_head + k) % tc->q_cap].m;
        if (msg_matches(m, type, from, to))
            return m;
    }
    return NULL;
}

void tc_send(struct test_cluster *tc, const struct raft_message *m)
{
    enqueue(tc, m);
}

int tc_step(struct test_cluster *tc, int i, const struct raft_message *m)
{
    return raft_step(tc->nodes[i].r, m);
}

size_t tc_deliver_type(struct test_cluster *tc, int type)
{
    size_t n = tc->q_len, delivered = 0;
    for (size_t k = 0; k < n; k++) {
        struct tc_msg m = tc->q[tc->q_head];
        tc->q_head = (tc->q_head + 1) % tc->q_cap;
        tc->q_len--;
        if (m.m.type == type) {
            int dst = tc_slot(tc, m.m.to);
            if (dst >= 0 && tc->nodes[dst].up) {
                int rc = raft_step(tc->nodes[dst].r, &m.m);
                if (rc != RAFT_EINVAL)
                    note_error(tc, rc);
                delivered++;
            }
            free_msg(&m);
        } else {
            /* re-queue at the tail, preserving relative order */
            tc->q[(tc->q_head + tc->q_len) % tc->q_cap] = m;
            tc->q_len++;
        }
    }
    return delivered;
}

static const struct tc_applied *find_applied(const struct tc_node *n, raft_index idx)
{
    size_t lo = 0, hi = n->n_applied;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (n->applied[mid].index < idx)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < n->n_applied && n->applied[lo].index == idx)
        return &n->applied[lo];
    return NULL;
}

/* Log Matching (§5.3): if two logs hold an entry with the same index and term, they
 * are identical up to it.  Checked over the stored (persisted) logs: find the highest
 * index of the common range where the terms agree, then compare every entry below. */
static int check_log_matching(const struct test_cluster *tc, char *buf, size_t len)
{
    for (int a = 0; a < TC_MAX_NODES; a++) {
        struct raft_storage sa;
        if (!tc->nodes[a].present)
            continue;
        raft_memory_storage_interface(tc->nodes[a].ms, &sa);
        for (int b = a + 1; b < TC_MAX_NODES; b++) {
            struct raft_storage sb;
            raft_index lo, hi, top = 0;
            if (!tc->nodes[b].present)
                continue;
            raft_memory_storage_interface(tc->nodes[b].ms, &sb);
            lo = sa.first_index(sa.user) > sb.first_index(sb.user) ? sa.first_index(sa.user)
                                                                    : sb.first_index(sb.user);
            hi = sa.last_index(sa.user) < sb.last_index(sb.user) ? sa.last_index(sa.user)
                                                                  : sb.last_index(sb.user);
            for (raft_index i = hi; i >= lo && i > 0; i--) {
                raft_term ta = 0, tb = 0;
                sa.term(sa.user, i, &ta);
                sb.term(sb.user, i, &tb);
                if (ta == tb) {
                    top = i;
                    break;
                }
            }
            if (top == 0)
                continue;
            {
                struct raft_entry_sink *ka = raft_entry_sink_new(NULL, lo);
                struct raft_entry_sink *kb = raft_entry_sink_new(NULL, lo);
                int bad = 0;
                sa.entries(sa.user, lo, top + 1, UINT64_MAX, ka);
                sb.entries(sb.user, lo, top + 1, UINT64_MAX, kb);
                if (raft_entry_sink_count(ka) != raft_entry_sink_count(kb)) {
                    bad = 1;
                } else {
                    const struct raft_entry *ea = raft_entry_sink_entries(ka);
                    const struct raft_entry *eb = raft_entry_sink_entries(kb);
                    for (size_t k = 0; k < raft_entry_sink_count(ka) && !bad; k++)
                        if (ea[k].term != eb[k].term || ea[k].len != eb[k].len ||
                            (ea[k].len > 0 && memcmp(ea[k].data, eb[k].data, ea[k].len) != 0))
                            bad = 1;
                }
                raft_entry_sink_free(ka);
                raft_entry_sink_free(kb);
                if (bad) {
                    snprintf(buf, len, "log matching: nodes %d and %d agree at %llu but "
                             "differ below", a, b, (unsigned long long)top);
                    return -1;
                }
            }
        }
    }
    return 0;
}

int tc_check_safety(const struct test_cluster *tc, char *buf, size_t len)
{
    if (tc->error == -1000) {
        snprintf(buf, len, "two leaders in one term");
        return -1;
    }
    if (tc->error == -1001) {
        snprintf(buf, len, "applied entries not contiguous");
        return -1;
    }
    for (int a = 0; a < TC_MAX_NODES; a++) {
        const struct tc_node *na = &tc->nodes[a];
        if (!na->present)
            continue;
        for (int b = a + 1; b < TC_MAX_NODES; b++) {
            const struct tc_node *nb = &tc->nodes[b];
            if (!nb->present)
                continue;
            for (size_t k = 0; k < na->n_applied; k++) {
                const struct tc_applied *x = &na->applied[k];
                const struct tc_applied *y = find_applied(nb, x->index);
                if (y == NULL)
                    continue;
                if (x->term != y->term || x->len != y->len ||
                    (x->len > 0 && memcmp(x->data, y->data, x->len) != 0)) {
                    snprintf(buf, len, "nodes %d and %d applied different entries at %llu",
                             a, b, (unsigned long long)x->index);
                    return -1;
                }
            }
        }
    }
    if (check_log_matching(tc, buf, len) != 0)
        return -1;
    if (buf != NULL && len > 0)
        buf[0] = '\0';
    return 0;
}

bool tc_applied_contains(const struct test_cluster *tc, int i, const char *s)
{
    const struct tc_node *n = &tc->nodes[i];
    size_t l = strlen(s);
    for (size_t k = 0; k < n->n_applied; k++)
        if (n->applied[k].type == RAFT_ENTRY_NORMAL && n->applied[k].len == l &&
            memcmp(n->applied[k].data, s, l) == 0)
            return true;
    return false;
}

size_t tc_applied_commands(const struct test_cluster *tc, int i)
{
    const struct tc_node *n = &tc->nodes[i];
    size_t c = 0;
    for (size_t k = 0; k < n->n_applied; k++)
        if (n->applied[k].type == RAFT_ENTRY_NORMAL && n->applied[k].len > 0)
            c++;
    return c;
}
