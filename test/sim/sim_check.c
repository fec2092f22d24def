/* sim_check.c — Raft safety checkers for one group (see sim_check.h). */
#include "sim_check.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEF_ENTRY 1u
#define DEF_CHAIN 2u

void sim_check_init(struct sim_check *c, struct sim_trace *trace)
{
    memset(c, 0, sizeof *c);
    c->trace = trace;
    sim_map_init(&c->entries);
    sim_map_init(&c->leaders);
    sim_map_init(&c->votes);
    sim_map_init(&c->leader_seen);
}

void sim_check_free(struct sim_check *c)
{
    free(c->canon);
    free(c->props);
    sim_map_free(&c->entries);
    sim_map_free(&c->leaders);
    sim_map_free(&c->votes);
    sim_map_free(&c->leader_seen);
    memset(c, 0, sizeof *c);
}

void sim_check_fail(struct sim_check *c, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (c->violations == 0)
        memcpy(c->first_violation, buf, sizeof buf);
    c->violations++;
    if (c->trace)
        sim_trace(c->trace, "VIOLATION: %s", buf);
}

static struct sim_canon *canon_slot(struct sim_check *c, raft_index index)
{
    if (index >= c->canon_cap) {
        size_t nc = c->canon_cap ? c->canon_cap : 1024;
        while (nc <= index)
            nc *= 2;
        struct sim_canon *n = realloc(c->canon, nc * sizeof *n);
        if (n == NULL)
            abort();
        memset(n + c->canon_cap, 0, (nc - c->canon_cap) * sizeof *n);
        c->canon = n;
        c->canon_cap = nc;
    }
    return &c->canon[index];
}

const struct sim_canon *sim_check_canon(const struct sim_check *c, raft_index index)
{
    if (index >= c->canon_cap || !(c->canon[index].defined & DEF_ENTRY))
        return NULL;
    return &c->canon[index];
}

void sim_check_persisted_entry(struct sim_check *c, raft_id node, raft_index index,
                               raft_term term, uint64_t hash, raft_term prev_term)
{
    bool created;
    struct sim_map_slot *s = sim_map_put(&c->entries, index, term, &created);
    if (created) {
        s->v1 = hash;
        s->v2 = prev_term;
        return;
    }
    /* §5.3 Log Matching: same (index, term) ⇒ same entry and same predecessor. */
    if (s->v1 != hash)
        sim_check_fail(c, "log matching: replica %llu persisted entry %llu/%llu with "
                       "different content than another replica",
                       (unsigned long long)node, (unsigned long long)index,
                       (unsigned long long)term);
    else if (s->v2 != prev_term)
        sim_check_fail(c, "log matching: replica %llu has entry %llu/%llu preceded by "
                       "term %llu, another replica by term %llu",
                       (unsigned long long)node, (unsigned long long)index,
                       (unsigned long long)term, (unsigned long long)prev_term,
                       (unsigned long long)s->v2);
}

static void define_entry(struct sim_check *c, raft_id node, raft_term node_term,
                         raft_index index, raft_term term, uint64_t hash, const char *how)
{
    struct sim_canon *k = canon_slot(c, index);
    if (k->defined & DEF_ENTRY) {
        if (node_term < k->commit_term)
            k->commit_term = node_term;
        if (k->term != term || k->hash != hash)
            sim_check_fail(c, "state machine safety: replica %llu %s entry %llu term %llu "
                           "but term %llu (or other data) was committed there",
                           (unsigned long long)node, how, (unsigned long long)index,
                           (unsigned long long)term, (unsigned long long)k->term);
        return;
    }
    k->defined |= DEF_ENTRY;
    k->term = term;
    k->hash = hash;
    k->commit_term = node_term;
    if (index > c->committed_max)
        c->committed_max = index;
}

void sim_check_committed(struct sim_check *c, raft_id node, raft_term node_term,
                         raft_index index, raft_term term, uint64_t hash)
{
    define_entry(c, node, node_term, index, term, hash, "committed");
}

void sim_check_applied(struct sim_check *c, raft_id node, raft_term node_term,
                       raft_index index, raft_term term, uint64_t hash, uint64_t chain)
{
    c->n_applied++;
    define_entry(c, node, node_term, index, term, hash, "applied");
    struct sim_canon *k = canon_slot(c, index);
    if (k->defined & DEF_CHAIN) {
        if (k->chain != chain)
            sim_check_fail(c, "state machine safety: replica %llu applied sequence up to "
                           "%llu differs from another replica's",
                           (unsigned long long)node, (unsigned long long)index);
        return;
    }
    k->defined |= DEF_CHAIN;
    k->chain = chain;
}

void sim_check_snapshot(struct sim_check *c, raft_id node, raft_index index, raft_term term,
                        uint64_t chain)
{
    c->n_snapshots++;
    if (index == 0)
        return;
    struct sim_canon *k = canon_slot(c, index);
    /* A snapshot is made from a replica's applied state, so its index was applied
     * (chain known) somewhere before. */
    if (!(k->defined & DEF_CHAIN)) {
        sim_check_fail(c, "snapshot at %llu installed on replica %llu but nobody applied "
                       "that index", (unsigned long long)index, (unsigned long long)node);
        return;
    }
    if (k->chain != chain || k->term != term)
        sim_check_fail(c, "state machine safety: snapshot %llu/%llu installed on replica "
                       "%llu differs from the committed sequence (term %llu)",
                       (unsigned long long)index, (unsigned long long)term,
                       (unsigned long long)node, (unsigned long long)k->term);
}

bool sim_check_leader(struct sim_check *c, raft_id node, raft_term term,
                      const struct sim_log *log)
{
    bool created;
    struct sim_map_slot *s = sim_map_put(&c->leaders, term, 0, &created);
    if (created) {
        s->v1 = node;
        c->n_leaders++;
    } else if (s->v1 != node) {
        /* §5.2 Election Safety. */
        sim_check_fail(c, "election safety: replicas %llu and %llu both leader in term %llu",
                       (unsigned long long)s->v1, (unsigned long long)node,
                       (unsigned long long)term);
        return false;
    }
    struct sim_map_slot *seen = sim_map_put(&c->leader_seen, node, term, &created);
    if (!created)
        return false;
    seen->v1 = 1;

    /* §5.4 Leader Completeness: every entry committed in a term before this one is
     * in the new leader's log — with its whole prefix, committed by then too.  Not
     * those committed since (a late vote can still make a leader of an old term).
     * Entries below its snapshot were applied by it (checked at apply time). */
    raft_index required = 0;
    for (raft_index i = c->committed_max; i > 0; i--) {
        const struct sim_canon *k = sim_check_canon(c, i);
        if (k != NULL && k->commit_term < term) {
            required = i;
            break;
        }
    }
    raft_index last = sim_log_last(log);
    if (last < required) {
        sim_check_fail(c, "leader completeness: leader %llu of term %llu has last index "
                       "%llu < index %llu committed in an earlier term",
                       (unsigned long long)node, (unsigned long long)term,
                       (unsigned long long)last, (unsigned long long)required);
        return true;
    }
    for (raft_index i = sim_log_first(log); i <= required; i++) {
        const struct sim_canon *k = sim_check_canon(c, i);
        const struct sim_log_ent *e = sim_log_get(log, i);
        if (k == NULL || e == NULL)
            continue;
        if (e->term != k->term || e->hash != k->hash) {
            sim_check_fail(c, "leader completeness: leader %llu of term %llu has %llu/%llu "
                           "where %llu/%llu was committed", (unsigned long long)node,
                           (unsigned long long)term, (unsigned long long)i,
                           (unsigned long long)e->term, (unsigned long long)i,
                           (unsigned long long)k->term);
            return true;
        }
    }
    /* No acknowledged proposal lost: each one committed before this term is still
     * in the new leader's log. */
    for (size_t p = 0; p < c->n_props; p++) {
        const struct sim_prop *pr = &c->props[p];
        if (pr->status != SIM_PROP_COMMITTED || pr->index < sim_log_first(log) ||
            pr->index > required)
            continue;
        const struct sim_log_ent *e = sim_log_get(log, pr->index);
        if (e == NULL || e->term != pr->term || e->hash != pr->hash)
            sim_check_fail(c, "acknowledged proposal %llu (%llu/%llu) missing from the log "
                           "of leader %llu of term %llu", (unsigned long long)pr->id,
                           (unsigned long long)pr->index, (unsigned long long)pr->term,
                           (unsigned long long)node, (unsigned long long)term);
    }
    return true;
}

void sim_check_vote(struct sim_check *c, raft_id voter, raft_term term, raft_id candidate)
{
    bool created;
    struct sim_map_slot *s = sim_map_put(&c->votes, voter, term, &created);
    if (created) {
        s->v1 = candidate;
        return;
    }
    if (s->v1 != candidate)
        sim_check_fail(c, "vote safety: replica %llu granted votes to %llu and %llu in term %llu",
                       (unsigned long long)voter, (unsigned long long)s->v1,
                       (unsigned long long)candidate, (unsigned long long)term);
}

void sim_check_proposal(struct sim_check *c, uint64_t id, raft_id node, raft_index index,
                        raft_term term, uint64_t hash)
{
    if (c->n_props == c->cap_props) {
        size_t nc = c->cap_props ? c->cap_props * 2 : 256;
        struct sim_prop *np = realloc(c->props, nc * sizeof *np);
        if (np == NULL)
            abort();
        c->props = np;
        c->cap_props = nc;
    }
    struct sim_prop *p = &c->props[c->n_props++];
    p->id = id;
    p->node = node;
    p->index = index;
    p->term = term;
    p->hash = hash;
    p->status = index ? SIM_PROP_PENDING : SIM_PROP_FORWARDED;
    p->forwarded = index == 0;
}

static struct sim_prop *find_prop(struct sim_check *c, uint64_t id)
{
    /* Ids are handed out increasingly, so the array is sorted by id. */
    size_t lo = 0, hi = c->n_props;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (c->props[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < c->n_props && c->props[lo].id == id ? &c->props[lo] : NULL;
}

void sim_check_proposal_applied(struct sim_check *c, uint64_t id, raft_index index,
                                raft_term term)
{
    struct sim_prop *p = find_prop(c, id);
    if (p == NULL)
        return;
    if (p->status == SIM_PROP_FORWARDED) {
        /* The first commit of a forwarded proposal; duplicates (the network may
         * duplicate a PROPOSE) are the upper layer's business (command ids). */
        p->status = SIM_PROP_COMMITTED;
        p->index = index;
        p->term = term;
        return;
    }
    /* A proposal accepted by a leader at (index, term) is that one log entry: it
     * can only be applied there. */
    if (!p->forwarded && (p->index != index || p->term != term))
        sim_check_fail(c, "proposal %llu accepted at %llu/%llu applied at %llu/%llu",
                       (unsigned long long)id, (unsigned long long)p->index,
                       (unsigned long long)p->term, (unsigned long long)index,
                       (unsigned long long)term);
}

void sim_check_resolve(struct sim_check *c)
{
    bool all_before = true;
    for (size_t i = c->first_open; i < c->n_props; i++) {
        struct sim_prop *p = &c->props[i];
        if (p->status == SIM_PROP_PENDING) {
            const struct sim_canon *k = sim_check_canon(c, p->index);
            if (k != NULL) {
                if (k->term == p->term) {
                    if (k->hash != p->hash)
                        sim_check_fail(c, "proposal %llu at %llu/%llu committed with other "
                                       "content", (unsigned long long)p->id,
                                       (unsigned long long)p->index,
                                       (unsigned long long)p->term);
                    p->status = SIM_PROP_COMMITTED;
                } else {
                    p->status = SIM_PROP_DROPPED;
                }
            }
        }
        if (p->status == SIM_PROP_PENDING || p->status == SIM_PROP_FORWARDED) {
            if (all_before) {
                c->first_open = i;
                all_before = false;
            }
        }
    }
    if (all_before)
        c->first_open = c->n_props;
}

void sim_check_resolve_beyond(struct sim_check *c, raft_index last, raft_term term)
{
    for (size_t i = c->first_open; i < c->n_props; i++) {
        struct sim_prop *p = &c->props[i];
        if (p->status == SIM_PROP_PENDING && p->index > last && p->term < term)
            p->status = SIM_PROP_DROPPED;
    }
}

size_t sim_check_unresolved(const struct sim_check *c, size_t *forwarded)
{
    size_t n = 0, f = 0;
    for (size_t i = c->first_open; i < c->n_props; i++) {
        if (c->props[i].status == SIM_PROP_PENDING)
            n++;
        else if (c->props[i].status == SIM_PROP_FORWARDED)
            f++;
    }
    if (forwarded)
        *forwarded = f;
    return n;
}

static void last_of(const struct sim_log *l, raft_index *idx, raft_term *term)
{
    *idx = sim_log_last(l);
    *term = l->n ? l->e[l->n - 1].term : l->snap_term;
}

static const struct sim_view *view_of(const struct sim_view *v, size_t n, raft_id id)
{
    for (size_t i = 0; i < n; i++)
        if (v[i].id == id)
            return &v[i];
    return NULL;
}

void sim_check_electable(struct sim_check *c, const struct sim_view *v, size_t n)
{
    raft_index ci = c->committed_max;
    const struct sim_canon *k = sim_check_canon(c, ci);
    if (ci == 0 || k == NULL)
        return;
    for (size_t x = 0; x < n; x++) {
        const struct sim_log *lx = v[x].log;
        raft_term t;
        if (ci <= lx->snap_index || (sim_log_term(lx, ci, &t) && t == k->term))
            continue; /* holds the entry */
        bool voter = false;
        for (uint32_t j = 0; j < v[x].n_voters; j++)
            voter |= v[x].voters[j] == v[x].id;
        if (!voter)
            continue; /* never campaigns */
        /* A replica that crashed between persisting and applying re-applies up to its
         * commit index when it restarts, before it can campaign: if that changes its
         * configuration, the one we have is not the one it would campaign with. */
        if (v[x].commit > v[x].applied &&
            sim_log_has_conf_change(lx, v[x].applied, v[x].commit))
            continue;
        raft_index xi, yi;
        raft_term xt, yt;
        last_of(lx, &xi, &xt);
        uint32_t votes = 0;
        for (uint32_t j = 0; j < v[x].n_voters; j++) {
            const struct sim_view *y = view_of(v, n, v[x].voters[j]);
            if (y == NULL)
                continue;
            last_of(y->log, &yi, &yt);
            if (xt > yt || (xt == yt && xi >= yi))
                votes++;
        }
        if (votes > v[x].n_voters / 2) {
            char who[256];
            size_t w = 0;
            who[0] = 0;
            for (uint32_t j = 0; j < v[x].n_voters && w + 40 < sizeof who; j++) {
                const struct sim_view *y = view_of(v, n, v[x].voters[j]);
                if (y == NULL) {
                    w += (size_t)snprintf(who + w, sizeof who - w, " %llu:?",
                                          (unsigned long long)v[x].voters[j]);
                    continue;
                }
                last_of(y->log, &yi, &yt);
                w += (size_t)snprintf(who + w, sizeof who - w, " %llu:%llu/%llu",
                                      (unsigned long long)y->id, (unsigned long long)yi,
                                      (unsigned long long)yt);
            }
            sim_check_fail(c, "committed entry %llu/%llu can be lost: replica %llu lacks it "
                           "(last %llu/%llu) yet %u of the %u voters of its configuration "
                           "would vote for it (§5.4.1); voters' last entries:%s",
                           (unsigned long long)ci, (unsigned long long)k->term,
                           (unsigned long long)v[x].id, (unsigned long long)xi,
                           (unsigned long long)xt, votes, v[x].n_voters, who);
            return;
        }
    }
}
