/* sim_node.c — one simulated replica: durable state + Ready cycle (see sim_node.h). */
#include "sim_node.h"
#include "sim_bytes.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool sim_snap_decode(const void *data, size_t len, raft_index *index, uint64_t *chain)
{
    if (len != SIM_SNAP_DATA_LEN || data == NULL)
        return false;
    *index = sim_get_u64(data);
    *chain = sim_get_u64((const unsigned char *)data + 8);
    return true;
}

static void set_conf(struct sim_node *n, const raft_id *voters, uint32_t nv,
                     const raft_id *learners, uint32_t nl)
{
    if (nv > SIM_MAX_CONF)
        nv = SIM_MAX_CONF;
    if (nl > SIM_MAX_CONF)
        nl = SIM_MAX_CONF;
    if (nv)
        memcpy(n->voters, voters, nv * sizeof *voters);
    if (nl)
        memcpy(n->learners, learners, nl * sizeof *learners);
    n->n_voters = nv;
    n->n_learners = nl;
}

static struct raft_conf_state conf_of(const struct sim_node *n)
{
    struct raft_conf_state cs = {.voters = n->voters, .n_voters = n->n_voters,
                                 .learners = n->learners, .n_learners = n->n_learners};
    return cs;
}

void sim_node_init(struct sim_node *n, raft_id id, uint32_t slot, struct sim_alloc *alloc,
                   const struct sim_node_params *params, const raft_id *voters,
                   uint32_t n_voters)
{
    memset(n, 0, sizeof *n);
    n->id = id;
    n->slot = slot;
    n->alloc = alloc;
    n->params = *params;
    sim_log_init(&n->log);
    n->ms = raft_memory_storage_new(&alloc->a);
    if (n->ms == NULL) {
        fprintf(stderr, "mrsim: raft_memory_storage_new failed\n");
        abort();
    }
    set_conf(n, voters, n_voters, NULL, 0);
    if (n_voters > 0) {
        struct raft_conf_state cs = conf_of(n);
        if (raft_memory_storage_set_conf_state(n->ms, &cs) != RAFT_OK) {
            fprintf(stderr, "mrsim: raft_memory_storage_set_conf_state failed\n");
            abort();
        }
    }
}

void sim_node_bootstrap_snapshot(struct sim_node *n, uint64_t chain)
{
    unsigned char data[SIM_SNAP_DATA_LEN];
    sim_put_u64(data, 1);
    sim_put_u64(data + 8, chain);
    struct raft_snapshot s = {.index = 1, .term = 1, .conf = conf_of(n), .data = data,
                              .len = sizeof data};
    struct raft_hard_state hs = {.term = 1, .vote = RAFT_NONE, .commit = 1};
    if (raft_memory_storage_apply_snapshot(n->ms, &s) != RAFT_OK ||
        raft_memory_storage_set_hard_state(n->ms, &hs) != RAFT_OK) {
        fprintf(stderr, "mrsim: bootstrap snapshot refused by the memory storage\n");
        abort();
    }
    sim_log_install(&n->log, 1, 1);
    n->snapshot_index = 1;
    n->applied = 1;
    n->chain = chain;
    n->hs = hs;
}

int sim_node_start(struct sim_node *n, uint64_t seed)
{
    struct raft_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.id = n->id;
    cfg.election_tick = n->params.election_tick;
    cfg.heartbeat_tick = n->params.heartbeat_tick;
    raft_memory_storage_interface(n->ms, &cfg.storage);
    cfg.applied = n->applied;
    cfg.max_size_per_msg = n->params.max_size_per_msg;
    cfg.max_committed_size_per_ready = n->params.max_committed_size_per_ready;
    cfg.max_inflight_msgs = n->params.max_inflight_msgs;
    cfg.seed = seed;
    cfg.pre_vote = n->params.pre_vote;
    cfg.durable_notices = n->params.durable_notices;
    cfg.check_quorum = n->params.check_quorum;
    cfg.disable_proposal_forwarding = n->params.disable_proposal_forwarding;
    int rc = RAFT_OK;
    n->r = raft_new(&cfg, &n->alloc->a, &rc);
    if (n->r == NULL)
        return rc != RAFT_OK ? rc : RAFT_ENOMEM;
    n->alive = true;
    n->incarnation++;
    n->seen_term = raft_get_term(n->r);
    n->seen_commit = raft_get_commit(n->r);
    n->seen_role = raft_get_role(n->r);
    n->seen_leader = raft_get_leader(n->r);
    n->restart_at = 0;
    n->crash_at = 0;
    return RAFT_OK;
}

void sim_node_crash(struct sim_node *n)
{
    if (n->r != NULL)
        raft_free(n->r);
    n->r = NULL;
    n->alive = false;
}

void sim_node_destroy(struct sim_node *n)
{
    sim_node_crash(n);
    if (n->ms != NULL)
        raft_memory_storage_free(n->ms);
    n->ms = NULL;
    sim_log_free(&n->log);
}

int sim_node_compact(struct sim_node *n, raft_index keep)
{
    if (n->applied <= n->snapshot_index)
        return RAFT_ESNAPOUTOFDATE;
    unsigned char data[SIM_SNAP_DATA_LEN];
    sim_put_u64(data, n->applied);
    sim_put_u64(data + 8, n->chain);
    struct raft_conf_state cs = conf_of(n);
    int rc = raft_memory_storage_create_snapshot(n->ms, n->applied, &cs, data, sizeof data);
    if (rc != RAFT_OK)
        return rc;
    n->snapshot_index = n->applied;
    raft_index to = n->applied > keep ? n->applied - keep : 0;
    if (to <= n->log.snap_index)
        return RAFT_OK;
    rc = raft_memory_storage_compact(n->ms, to);
    if (rc != RAFT_OK)
        return rc;
    sim_log_compact(&n->log, to);
    return RAFT_OK;
}

static void fail(struct sim_node *n, const struct sim_node_hooks *h, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void fail(struct sim_node *n, const struct sim_node_hooks *h, const char *fmt, ...)
{
    char buf[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    h->error(h->ctx, n, buf);
}

/* Step 1 of the Ready: make the snapshot, entries and hard state durable. */
static void persist(struct sim_node *n, const struct sim_node_hooks *h,
                    const struct raft_ready *rd)
{
    if (rd->snapshot != NULL) {
        const struct raft_snapshot *s = rd->snapshot;
        raft_index sidx;
        uint64_t chain;
        if (!sim_snap_decode(s->data, s->len, &sidx, &chain) || sidx != s->index) {
            fail(n, h, "rd.snapshot %llu carries a corrupted state machine image",
                 (unsigned long long)s->index);
            return;
        }
        if (s->index < n->applied) {
            fail(n, h, "rd.snapshot at %llu would roll back the state machine (applied %llu)",
                 (unsigned long long)s->index, (unsigned long long)n->applied);
            return;
        }
        int rc = raft_memory_storage_apply_snapshot(n->ms, s);
        if (rc != RAFT_OK) {
            fail(n, h, "storage refused rd.snapshot %llu/%llu: %s", (unsigned long long)s->index,
                 (unsigned long long)s->term, raft_strerror(rc));
            return;
        }
        /* The state machine is replaced in the same durable step (one transaction in
         * the real worker): applied index, digest and configuration move together. */
        sim_log_install(&n->log, s->index, s->term);
        n->snapshot_index = s->index;
        n->applied = s->index;
        n->chain = chain;
        set_conf(n, s->conf.voters, s->conf.n_voters, s->conf.learners, s->conf.n_learners);
        h->installed_snapshot(h->ctx, n, s, chain);
    }
    if (rd->n_entries > 0) {
        int rc = raft_memory_storage_append(n->ms, rd->entries, rd->n_entries);
        if (rc != RAFT_OK) {
            fail(n, h, "storage refused rd.entries [%llu..%llu]: %s",
                 (unsigned long long)rd->entries[0].index,
                 (unsigned long long)rd->entries[rd->n_entries - 1].index, raft_strerror(rc));
            return;
        }
        for (size_t i = 0; i < rd->n_entries; i++) {
            const struct raft_entry *e = &rd->entries[i];
            uint64_t hash = sim_entry_hash(e->type, e->data, e->len);
            if (e->index <= n->log.snap_index)
                continue;
            const struct sim_log_ent *old = sim_log_get(&n->log, e->index);
            if (old != NULL && e->index <= n->hs.commit && old->term != e->term)
                fail(n, h, "rd.entries overwrites committed entry %llu/%llu with term %llu",
                     (unsigned long long)e->index, (unsigned long long)old->term,
                     (unsigned long long)e->term);
            raft_term prev = 0;
            if (!sim_log_term(&n->log, e->index - 1, &prev)) {
                fail(n, h, "rd.entries leaves a gap before %llu (last %llu)",
                     (unsigned long long)e->index, (unsigned long long)sim_log_last(&n->log));
                return;
            }
            if (e->term < prev)
                fail(n, h, "rd.entries: entry %llu has term %llu below its predecessor's %llu",
                     (unsigned long long)e->index, (unsigned long long)e->term,
                     (unsigned long long)prev);
            sim_log_append(&n->log, e->index, e->term, hash, e->type);
            h->persisted_entry(h->ctx, n, e->index, e->term, hash, prev);
        }
        if (sim_log_last(&n->log) != rd->entries[rd->n_entries - 1].index)
            fail(n, h, "log mirror out of step with rd.entries");
    }
    if (rd->has_hard_state) {
        struct raft_hard_state old = n->hs;
        h->persisted_hard_state(h->ctx, n, &old, &rd->hard_state);
        int rc = raft_memory_storage_set_hard_state(n->ms, &rd->hard_state);
        if (rc != RAFT_OK)
            fail(n, h, "storage refused hard state: %s", raft_strerror(rc));
        n->hs = rd->hard_state;
    }
}

/* Step 3: apply committed entries; conf state and applied index are persisted with
 * the state machine (atomically, as the worker's one transaction does). */
static void apply(struct sim_node *n, const struct sim_node_hooks *h,
                  const struct raft_ready *rd)
{
    for (size_t i = 0; i < rd->n_committed; i++) {
        const struct raft_entry *e = &rd->committed[i];
        if (e->index != n->applied + 1) {
            fail(n, h, "rd.committed hands out entry %llu but applied index is %llu",
                 (unsigned long long)e->index, (unsigned long long)n->applied);
            return;
        }
        uint64_t hash = sim_entry_hash(e->type, e->data, e->len);
        const struct sim_log_ent *pe = sim_log_get(&n->log, e->index);
        if (pe == NULL)
            fail(n, h, "rd.committed entry %llu is not in the persisted log [%llu..%llu]",
                 (unsigned long long)e->index, (unsigned long long)sim_log_first(&n->log),
                 (unsigned long long)sim_log_last(&n->log));
        else if (pe->term != e->term || pe->hash != hash)
            fail(n, h, "rd.committed entry %llu/%llu differs from the persisted one (term %llu)",
                 (unsigned long long)e->index, (unsigned long long)e->term,
                 (unsigned long long)pe->term);
        if (e->index > n->hs.commit)
            fail(n, h, "rd.committed entry %llu beyond the persisted commit index %llu",
                 (unsigned long long)e->index, (unsigned long long)n->hs.commit);
        n->chain = sim_chain_next(n->chain, e->index, e->term, hash);
        n->applied = e->index;
        h->applied(h->ctx, n, e, hash, n->chain);
    }
    if (rd->conf_changed) {
        set_conf(n, rd->conf_state.voters, rd->conf_state.n_voters, rd->conf_state.learners,
                 rd->conf_state.n_learners);
        struct raft_conf_state cs = conf_of(n);
        int rc = raft_memory_storage_set_conf_state(n->ms, &cs);
        if (rc != RAFT_OK)
            fail(n, h, "storage refused conf state: %s", raft_strerror(rc));
    }
    for (size_t i = 0; i < rd->n_read_states; i++)
        h->read_state(h->ctx, n, &rd->read_states[i]);
}

int sim_node_process_ready(struct sim_node *n, const struct sim_node_hooks *h)
{
    /* Bounded: a core that keeps producing Readies without input is a bug too. */
    for (int rounds = 0; n->alive && raft_has_ready(n->r); rounds++) {
        if (rounds > 10000) {
            fail(n, h, "raft_has_ready() stays true after 10000 Ready cycles");
            return 0;
        }
        struct raft_ready rd;
        int rc = raft_ready(n->r, &rd);
        if (rc != RAFT_OK) {
            fail(n, h, "raft_ready: %s", raft_strerror(rc));
            return 0;
        }
        if (rd.soft_state_changed)
            h->soft_state(h->ctx, n, &rd);
        if (h->crash_point(h->ctx, n, SIM_CRASH_BEFORE_PERSIST)) {
            sim_node_crash(n);
            return -1;
        }
        persist(n, h, &rd);
        if (h->crash_point(h->ctx, n, SIM_CRASH_AFTER_PERSIST)) {
            sim_node_crash(n);
            return -1;
        }
        for (size_t i = 0; i < rd.n_messages; i++)
            h->send(h->ctx, n, &rd.messages[i]);
        if (h->crash_point(h->ctx, n, SIM_CRASH_AFTER_SEND)) {
            sim_node_crash(n);
            return -1;
        }
        apply(n, h, &rd);
        rc = raft_advance(n->r, &rd);
        if (rc != RAFT_OK)
            fail(n, h, "raft_advance: %s", raft_strerror(rc));
    }
    return 0;
}
