/* sim_cluster.c — scheduler, hooks wiring and per-step checks (see sim_cluster.h). */
#include "sim_cluster.h"

#include <stdlib.h>
#include <string.h>

#include "sim_msg.h"

/* ------------------------------------------------------------------------------ */
/* Network payload callbacks                                                        */

static void *payload_copy(void *ctx, const void *p)
{
    (void)ctx;
    const struct sim_msg *sm = p;
    struct sim_msg *d = sim_msg_copy(&sm->m);
    d->from_incarnation = sm->from_incarnation;
    return d;
}

static void payload_free(void *ctx, void *p)
{
    (void)ctx;
    sim_msg_free(p);
}

/* ------------------------------------------------------------------------------ */
/* Driver hooks: every observation of a replica goes through here                   */

static bool h_crash_point(void *ctx, struct sim_node *n, enum sim_crash_point p)
{
    return sim_fault_crash_point(ctx, n, p);
}

static void h_persisted_entry(void *ctx, struct sim_node *n, raft_index index, raft_term term,
                              uint64_t hash, raft_term prev_term)
{
    struct sim_cluster *c = ctx;
    sim_check_persisted_entry(&c->chk, n->id, index, term, hash, prev_term);
}

static void h_persisted_hard_state(void *ctx, struct sim_node *n,
                                   const struct raft_hard_state *old,
                                   const struct raft_hard_state *cur)
{
    struct sim_cluster *c = ctx;
    if (cur->term < old->term)
        sim_check_fail(&c->chk, "replica %llu persisted term %llu after term %llu",
                       (unsigned long long)n->id, (unsigned long long)cur->term,
                       (unsigned long long)old->term);
    if (cur->term == old->term && old->vote != RAFT_NONE && cur->vote != old->vote)
        sim_check_fail(&c->chk, "replica %llu changed its persisted vote in term %llu from "
                       "%llu to %llu", (unsigned long long)n->id, (unsigned long long)cur->term,
                       (unsigned long long)old->vote, (unsigned long long)cur->vote);
    if (cur->commit < old->commit)
        sim_check_fail(&c->chk, "replica %llu persisted commit %llu after %llu",
                       (unsigned long long)n->id, (unsigned long long)cur->commit,
                       (unsigned long long)old->commit);
}

static void h_installed_snapshot(void *ctx, struct sim_node *n, const struct raft_snapshot *s,
                                 uint64_t chain)
{
    struct sim_cluster *c = ctx;
    c->st.snapshots_installed++;
    sim_trace(&c->trace, "n%llu installs snapshot %llu/%llu (voters %u learners %u)",
              (unsigned long long)n->id, (unsigned long long)s->index,
              (unsigned long long)s->term, s->conf.n_voters, s->conf.n_learners);
    sim_check_snapshot(&c->chk, n->id, s->index, s->term, chain);
}

static bool persisted_before_send(struct sim_cluster *c, struct sim_node *n,
                                  const struct raft_message *m)
{
    /* Figure 2: currentTerm and votedFor are on stable storage before responding to
     * RPCs; an acknowledged append is durable.  PREVOTE carries a term the sender
     * does not hold (dissertation §9.6), PREVOTE_RESP a granted candidate's term. */
    if (m->type != RAFT_MSG_PREVOTE && m->type != RAFT_MSG_PREVOTE_RESP &&
        m->term > n->hs.term) {
        sim_check_fail(&c->chk, "persist-before-send: replica %llu sent %s in term %llu with "
                       "persisted term %llu", (unsigned long long)n->id,
                       sim_msg_type_name(m->type), (unsigned long long)m->term,
                       (unsigned long long)n->hs.term);
        return false;
    }
    if (m->type == RAFT_MSG_VOTE_RESP && !m->reject) {
        if (n->hs.term != m->term || n->hs.vote != m->to) {
            sim_check_fail(&c->chk, "persist-before-send: replica %llu granted its vote to "
                           "%llu in term %llu but persisted vote %llu in term %llu",
                           (unsigned long long)n->id, (unsigned long long)m->to,
                           (unsigned long long)m->term, (unsigned long long)n->hs.vote,
                           (unsigned long long)n->hs.term);
            return false;
        }
        sim_check_vote(&c->chk, n->id, m->term, m->to);
    }
    if (m->type == RAFT_MSG_APPEND_RESP && !m->reject && m->index > sim_log_last(&n->log)) {
        sim_check_fail(&c->chk, "persist-before-send: replica %llu acknowledged index %llu "
                       "but persisted only up to %llu", (unsigned long long)n->id,
                       (unsigned long long)m->index,
                       (unsigned long long)sim_log_last(&n->log));
        return false;
    }
    return true;
}

static void h_send(void *ctx, struct sim_node *n, const struct raft_message *m)
{
    struct sim_cluster *c = ctx;
    char buf[160];
    if (m->from != n->id || m->to == n->id || m->to == RAFT_NONE ||
        m->type < 1 || m->type > RAFT_MSG_TYPE_MAX) {
        sim_msg_format(m, buf, sizeof buf);
        sim_check_fail(&c->chk, "replica %llu emitted a malformed message: %s",
                       (unsigned long long)n->id, buf);
        return;
    }
    if (!persisted_before_send(c, n, m))
        return;
    if (c->opts.verbose) {
        sim_msg_format(m, buf, sizeof buf);
        sim_trace(&c->trace, "send %s", buf);
    }
    struct sim_node *dst = sim_cluster_node(c, m->to);
    if (dst == NULL)
        return;  /* no such replica (yet): like an unknown address */
    struct sim_msg *sm = sim_msg_copy(m);
    sm->from_incarnation = n->incarnation;
    sim_net_send(&c->net, c->now, n->slot, dst->slot, sm);
}

static void h_applied(void *ctx, struct sim_node *n, const struct raft_entry *e, uint64_t hash,
                      uint64_t chain)
{
    struct sim_cluster *c = ctx;
    c->st.applied++;
    if (c->opts.verbose)
        sim_trace(&c->trace, "n%llu applies %llu/%llu type %u len %u",
                  (unsigned long long)n->id, (unsigned long long)e->index,
                  (unsigned long long)e->term, e->type, e->len);
    sim_check_applied(&c->chk, n->id, raft_get_term(n->r), e->index, e->term, hash, chain);
    if (e->type == RAFT_ENTRY_NORMAL) {
        uint64_t id = sim_workload_prop_id(e->data, e->len);
        if (id != 0)
            sim_check_proposal_applied(&c->chk, id, e->index, e->term);
    } else if (e->type == RAFT_ENTRY_CONF_CHANGE) {
        struct raft_conf_change cc;
        if (raft_conf_change_decode(e->data, e->len, &cc) != RAFT_OK)
            sim_check_fail(&c->chk, "replica %llu applied an undecodable conf change at %llu",
                           (unsigned long long)n->id, (unsigned long long)e->index);
        else
            sim_trace(&c->trace, "n%llu applies conf change %llu/%llu: %s %llu",
                      (unsigned long long)n->id, (unsigned long long)e->index,
                      (unsigned long long)e->term,
                      cc.type == RAFT_CC_ADD_VOTER ? "add_voter"
                      : cc.type == RAFT_CC_ADD_LEARNER ? "add_learner" : "remove",
                      (unsigned long long)cc.replica);
    }
}

static void h_read_state(void *ctx, struct sim_node *n, const struct raft_read_state *rs)
{
    struct sim_cluster *c = ctx;
    for (size_t i = 0; i < c->n_reads; i++) {
        struct sim_read *rd = &c->reads[i];
        if (rd->ctx != rs->ctx)
            continue;
        sim_trace(&c->trace, "n%llu read ctx=%llu -> %s index %llu (needs >= %llu)",
                  (unsigned long long)n->id, (unsigned long long)rs->ctx,
                  rs->status == RAFT_OK ? "ok" : raft_strerror(rs->status),
                  (unsigned long long)rs->index, (unsigned long long)rd->min_index);
        /* §6.4: a read index covers every entry committed before the read began. */
        if (rs->status == RAFT_OK) {
            c->st.reads_ok++;
            if (rs->index < rd->min_index)
                sim_check_fail(&c->chk, "linearizable read: replica %llu got read index %llu "
                               "for ctx %llu but %llu was committed before the request",
                               (unsigned long long)n->id, (unsigned long long)rs->index,
                               (unsigned long long)rs->ctx,
                               (unsigned long long)rd->min_index);
        }
        c->reads[i] = c->reads[--c->n_reads];
        return;
    }
}

static void h_soft_state(void *ctx, struct sim_node *n, const struct raft_ready *rd)
{
    struct sim_cluster *c = ctx;
    sim_trace(&c->trace, "n%llu is %s (term %llu, leader %llu)", (unsigned long long)n->id,
              raft_role_name(rd->role), (unsigned long long)raft_get_term(n->r),
              (unsigned long long)rd->leader);
    if (rd->role == RAFT_LEADER)
        sim_fault_new_leader(c, n);
}

static void h_error(void *ctx, struct sim_node *n, const char *what)
{
    struct sim_cluster *c = ctx;
    sim_check_fail(&c->chk, "replica %llu: %s", (unsigned long long)n->id, what);
}

/* ------------------------------------------------------------------------------ */

void sim_cluster_init(struct sim_cluster *c, const struct sim_opts *o)
{
    memset(c, 0, sizeof *c);
    c->opts = *o;
    sim_rng_seed(&c->rng, o->seed * 0x2545f4914f6cdd1dULL + 0x1234567ULL);
    sim_alloc_init(&c->alloc);
    sim_trace_init(&c->trace, o->trace, o->verbose, o->out);
    sim_net_init(&c->net, &c->rng, payload_copy, payload_free, c);
    sim_check_init(&c->chk, &c->trace);
    c->hooks = (struct sim_node_hooks){
        .ctx = c,
        .crash_point = h_crash_point,
        .persisted_entry = h_persisted_entry,
        .persisted_hard_state = h_persisted_hard_state,
        .installed_snapshot = h_installed_snapshot,
        .send = h_send,
        .applied = h_applied,
        .read_state = h_read_state,
        .soft_state = h_soft_state,
        .error = h_error,
    };
    c->tick_unit = 10;
    c->faults_on = true;
    c->workload_on = true;
}

void sim_cluster_free(struct sim_cluster *c)
{
    sim_net_destroy(&c->net);
    for (uint32_t i = 0; i < c->n_nodes; i++)
        sim_node_destroy(&c->nodes[i]);
    sim_check_free(&c->chk);
    free(c->reads);
    c->reads = NULL;
}

struct sim_node *sim_cluster_node(struct sim_cluster *c, raft_id id)
{
    if (id == 0 || id > c->n_nodes)
        return NULL;
    return &c->nodes[id - 1];
}

static struct sim_node *create_node(struct sim_cluster *c, const raft_id *voters,
                                    uint32_t n_voters, bool boot_snapshot)
{
    if (c->n_nodes >= SIM_MAX_NODES)
        return NULL;
    uint32_t slot = c->n_nodes++;
    struct sim_node *n = &c->nodes[slot];
    sim_node_init(n, slot + 1, slot, &c->alloc, &c->params, voters, n_voters);
    if (boot_snapshot)
        sim_node_bootstrap_snapshot(n, c->boot_chain);
    /* Each replica's clock runs at its own rate (±10%) and phase. */
    n->tick_interval = (uint32_t)sim_rng_range(&c->rng, c->tick_unit - c->tick_unit / 10,
                                               c->tick_unit + c->tick_unit / 10);
    n->next_tick_at = c->now + sim_rng_range(&c->rng, 1, n->tick_interval);
    int rc = sim_node_start(n, sim_rng_next(&c->rng));
    if (rc != RAFT_OK)
        sim_check_fail(&c->chk, "raft_new for replica %llu failed: %s",
                       (unsigned long long)n->id, raft_strerror(rc));
    c->st.nodes++;
    return n;
}

struct sim_node *sim_cluster_add_node(struct sim_cluster *c, const raft_id *voters,
                                      uint32_t n_voters)
{
    return create_node(c, voters, n_voters, false);
}

void sim_cluster_bootstrap(struct sim_cluster *c, uint32_t n, int boot)
{
    raft_id voters[SIM_MAX_NODES];
    for (uint32_t i = 0; i < n; i++)
        voters[i] = i + 1;
    bool snap = boot == SIM_BOOT_SNAPSHOT;
    if (snap) {
        /* Index 1 is the bootstrap state: committed and "applied" by definition. */
        uint64_t hash = sim_entry_hash(0, "bootstrap", 9);
        c->boot_chain = sim_chain_next(0, 1, 1, hash);
        sim_check_applied(&c->chk, 0, 0, 1, 1, hash, c->boot_chain);
    }
    sim_trace(&c->trace, "bootstrap %u voters (%s)", n, snap ? "snapshot at index 1"
                                                             : "configuration only");
    for (uint32_t i = 0; i < n; i++)
        create_node(c, voters, n, snap);
}

void sim_cluster_restart(struct sim_cluster *c, struct sim_node *n)
{
    int rc = sim_node_start(n, sim_rng_next(&c->rng));
    if (rc != RAFT_OK) {
        sim_check_fail(&c->chk, "restart of replica %llu failed: %s", (unsigned long long)n->id,
                       raft_strerror(rc));
        return;
    }
    c->st.restarts++;
    n->next_tick_at = c->now + sim_rng_range(&c->rng, 1, n->tick_interval);
    sim_trace(&c->trace, "n%llu restarts (term %llu vote %llu commit %llu applied %llu log %llu..%llu)",
              (unsigned long long)n->id, (unsigned long long)n->hs.term,
              (unsigned long long)n->hs.vote, (unsigned long long)n->hs.commit,
              (unsigned long long)n->applied, (unsigned long long)sim_log_first(&n->log),
              (unsigned long long)sim_log_last(&n->log));
    sim_cluster_ready(c, n);
}

void sim_cluster_ready(struct sim_cluster *c, struct sim_node *n)
{
    if (n->alive)
        sim_node_process_ready(n, &c->hooks);
}

struct sim_node *sim_cluster_leader(struct sim_cluster *c)
{
    struct sim_node *best = NULL;
    for (uint32_t i = 0; i < c->n_nodes; i++) {
        struct sim_node *n = &c->nodes[i];
        if (!n->alive || raft_get_role(n->r) != RAFT_LEADER)
            continue;
        if (best == NULL || raft_get_term(n->r) > raft_get_term(best->r))
            best = n;
    }
    return best;
}

struct sim_node *sim_cluster_random_alive(struct sim_cluster *c)
{
    uint32_t alive = 0;
    for (uint32_t i = 0; i < c->n_nodes; i++)
        alive += c->nodes[i].alive;
    if (alive == 0)
        return NULL;
    uint64_t k = sim_rng_below(&c->rng, alive);
    for (uint32_t i = 0; i < c->n_nodes; i++)
        if (c->nodes[i].alive && k-- == 0)
            return &c->nodes[i];
    return NULL;
}

/* ------------------------------------------------------------------------------ */
/* Events                                                                            */

static bool is_fatal(int rc)
{
    return rc == RAFT_ENOMEM || rc == RAFT_ESTORAGE || rc == RAFT_EBUSY || rc == RAFT_ECORRUPT;
}

static void deliver(struct sim_cluster *c)
{
    struct sim_packet p;
    bool lost;
    if (!sim_net_pop(&c->net, &p, &lost))
        return;
    c->now = p.deliver_at;
    c->trace.time = c->now;
    struct sim_msg *sm = p.payload;
    struct sim_node *src = &c->nodes[p.from];
    struct sim_node *dst = &c->nodes[p.to];
    bool src_same = src->alive && src->incarnation == sm->from_incarnation;
    char buf[160];
    sim_msg_format(&sm->m, buf, sizeof buf);
    if (lost || !dst->alive) {
        sim_trace(&c->trace, "drop %s (%s)", buf,
                  !lost ? "down" : p.lost ? "lost" : "partition");
        if (src_same && sm->m.type == RAFT_MSG_SNAPSHOT) {
            raft_report_snapshot(src->r, dst->id, false);
            sim_cluster_ready(c, src);
        } else if (src_same && sim_rng_ppm(&c->rng, 250000)) {
            /* The transport sometimes notices (e.g. a broken connection). */
            raft_report_unreachable(src->r, dst->id);
            sim_cluster_ready(c, src);
        }
        sim_net_free_payload(&c->net, sm);
        return;
    }
    sim_trace(&c->trace, "deliver %s", buf);
    int rc = raft_step(dst->r, &sm->m);
    if (is_fatal(rc))
        sim_check_fail(&c->chk, "raft_step on replica %llu failed: %s", (unsigned long long)dst->id,
                       raft_strerror(rc));
    sim_cluster_ready(c, dst);
    if (sm->m.type == RAFT_MSG_SNAPSHOT && src_same && src->alive) {
        raft_report_snapshot(src->r, dst->id, true);
        sim_cluster_ready(c, src);
    }
    sim_net_free_payload(&c->net, sm);
}

static void tick(struct sim_cluster *c, struct sim_node *n)
{
    c->now = n->next_tick_at;
    c->trace.time = c->now;
    n->next_tick_at += n->tick_interval;
    if (c->opts.verbose)
        sim_trace(&c->trace, "tick n%llu", (unsigned long long)n->id);
    int rc = raft_tick(n->r);
    if (rc != RAFT_OK)
        sim_check_fail(&c->chk, "raft_tick on replica %llu failed: %s", (unsigned long long)n->id,
                       raft_strerror(rc));
    sim_cluster_ready(c, n);
}

bool sim_cluster_step(struct sim_cluster *c)
{
    c->step++;
    c->st.events++;
    c->trace.step = c->step;
    sim_fault_timers(c);
    if (c->faults_on)
        sim_fault_step(c);
    if (c->workload_on)
        sim_workload_step(c);

    uint64_t t_net = 0, t_fault = 0;
    bool has_net = sim_net_next_time(&c->net, &t_net);
    bool has_fault = sim_fault_next_time(c, &t_fault);
    struct sim_node *tn = NULL;
    for (uint32_t i = 0; i < c->n_nodes; i++) {
        struct sim_node *n = &c->nodes[i];
        if (n->alive && (tn == NULL || n->next_tick_at < tn->next_tick_at))
            tn = n;
    }
    uint64_t t_tick = tn ? tn->next_tick_at : UINT64_MAX;
    if (has_fault && t_fault < t_tick && (!has_net || t_fault < t_net)) {
        /* Nothing happens before a fault timer (e.g. everyone is down): jump. */
        c->now = t_fault > c->now ? t_fault : c->now;
        c->trace.time = c->now;
    } else if (has_net && t_net <= t_tick) {
        deliver(c);
    } else if (tn != NULL) {
        tick(c, tn);
    } else {
        return false;
    }
    sim_cluster_check(c);
    return true;
}

/* ------------------------------------------------------------------------------ */
/* Per-step checks                                                                   */

void sim_cluster_check(struct sim_cluster *c)
{
    struct sim_check *k = &c->chk;
    for (uint32_t i = 0; i < c->n_nodes; i++) {
        struct sim_node *n = &c->nodes[i];
        if (!n->alive)
            continue;
        raft_term term = raft_get_term(n->r);
        raft_index commit = raft_get_commit(n->r);
        raft_index last = raft_get_last_index(n->r);
        if (term < n->seen_term)
            sim_check_fail(k, "replica %llu term went from %llu down to %llu",
                           (unsigned long long)n->id, (unsigned long long)n->seen_term,
                           (unsigned long long)term);
        n->seen_term = term;
        if (commit < n->seen_commit)
            sim_check_fail(k, "replica %llu commit went from %llu down to %llu",
                           (unsigned long long)n->id, (unsigned long long)n->seen_commit,
                           (unsigned long long)commit);
        n->seen_commit = commit;
        if (commit > last)
            sim_check_fail(k, "replica %llu commit %llu beyond its last index %llu",
                           (unsigned long long)n->id, (unsigned long long)commit,
                           (unsigned long long)last);
        /* All Readies were handled: the core's log is exactly the persisted one. */
        if (last != sim_log_last(&n->log))
            sim_check_fail(k, "replica %llu: core last index %llu, persisted last index %llu "
                           "(nothing should be unstable)", (unsigned long long)n->id,
                           (unsigned long long)last, (unsigned long long)sim_log_last(&n->log));
        if (raft_get_applied(n->r) != n->applied)
            sim_check_fail(k, "replica %llu: core applied %llu, caller applied %llu",
                           (unsigned long long)n->id,
                           (unsigned long long)raft_get_applied(n->r),
                           (unsigned long long)n->applied);
        /* Entries covered by a commit index are committed: feed the canonical
         * sequence (and check it). */
        raft_index from = n->checked_commit + 1;
        if (from < sim_log_first(&n->log))
            from = sim_log_first(&n->log);
        for (raft_index idx = from; idx <= commit && idx <= sim_log_last(&n->log); idx++) {
            const struct sim_log_ent *e = sim_log_get(&n->log, idx);
            sim_check_committed(k, n->id, term, idx, e->term, e->hash);
        }
        if (commit > n->checked_commit)
            n->checked_commit = commit;
        if (commit > c->st.max_index)
            c->st.max_index = commit;
        if (raft_get_role(n->r) == RAFT_LEADER)
            sim_check_leader(k, n->id, term, &n->log);
    }
    /* Durable state of every replica, crashed ones included. */
    struct sim_view views[SIM_MAX_NODES];
    size_t nv = 0;
    for (uint32_t i = 0; i < c->n_nodes; i++) {
        const struct sim_node *n = &c->nodes[i];
        if (n->retired)
            continue;
        views[nv++] = (struct sim_view){.id = n->id, .log = &n->log, .voters = n->voters,
                                        .n_voters = n->n_voters, .applied = n->applied,
                                        .commit = n->alive ? raft_get_commit(n->r)
                                                           : n->hs.commit};
    }
    sim_check_electable(k, views, nv);
    sim_check_resolve(k);
}
