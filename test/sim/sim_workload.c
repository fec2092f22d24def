/*
 * sim_workload.c — what clients and operators do while faults happen: proposals
 * (single and batched, on the leader or forwarded by followers), membership changes
 * (add voter / add learner / promote / remove, the leader included; new replicas get
 * fresh ids), leadership transfers, forced elections, ReadIndex requests and log
 * compactions (snapshots), each followed by the replica's Ready handling.
 */
#include "sim_cluster.h"
#include "sim_bytes.h"

#include <stdlib.h>
#include <string.h>

#include "sim_log.h"

#define PROP_MAGIC 0x504d4953u /* "SIMP" */

void sim_workload_setup(struct sim_cluster *c)
{
    struct sim_rng *r = &c->rng;
    c->rate.propose = (uint32_t)sim_rng_range(r, 10000, 50000);
    c->rate.batch = (uint32_t)sim_rng_range(r, 1000, 6000);
    c->rate.conf = (uint32_t)sim_rng_range(r, 1000, 6000);
    c->rate.transfer = (uint32_t)sim_rng_range(r, 500, 3000);
    c->rate.compact = (uint32_t)sim_rng_range(r, 1000, 8000);
    c->rate.read = (uint32_t)sim_rng_range(r, 2000, 15000);
    c->rate.campaign = (uint32_t)sim_rng_range(r, 0, 1000);
}

/* Payload of proposal id: u64 id | u32 magic | 0..27 bytes derived from the id. */
static size_t make_payload(uint64_t id, unsigned char *buf)
{
    size_t len = 12 + (size_t)(sim_mix64(id, 7) % 28);
    sim_put_u64(buf, id);
    buf[8] = (unsigned char)(PROP_MAGIC & 0xff);
    buf[9] = (unsigned char)((PROP_MAGIC >> 8) & 0xff);
    buf[10] = (unsigned char)((PROP_MAGIC >> 16) & 0xff);
    buf[11] = (unsigned char)(PROP_MAGIC >> 24);
    for (size_t i = 12; i < len; i++)
        buf[i] = (unsigned char)sim_mix64(id, i);
    return len;
}

uint64_t sim_workload_prop_id(const void *data, size_t len)
{
    const unsigned char *p = data;
    if (len < 12 || p == NULL)
        return 0;
    uint32_t magic = (uint32_t)p[8] | (uint32_t)p[9] << 8 | (uint32_t)p[10] << 16 |
                     (uint32_t)p[11] << 24;
    return magic == PROP_MAGIC ? sim_get_u64(p) : 0;
}

static struct sim_node *pick_target(struct sim_cluster *c)
{
    struct sim_node *n = NULL;
    if (sim_rng_below(&c->rng, 10) < 7)
        n = sim_cluster_leader(c);
    return n ? n : sim_cluster_random_alive(c);
}

int sim_workload_propose(struct sim_cluster *c, struct sim_node *n, uint64_t *idp,
                         raft_index *index, raft_term *term)
{
    unsigned char buf[64];
    uint64_t id = ++c->next_prop_id;
    size_t len = make_payload(id, buf);
    raft_index idx = 0;
    raft_term t = 0;
    int rc = raft_propose(n->r, buf, len, &idx, &t);
    c->st.proposals++;
    sim_trace(&c->trace, "propose #%llu on n%llu -> %s %llu/%llu", (unsigned long long)id,
              (unsigned long long)n->id, rc >= 0 ? (rc == RAFT_OK ? "ok" : "forwarded")
                                                 : raft_strerror(rc),
              (unsigned long long)idx, (unsigned long long)t);
    uint64_t hash = sim_entry_hash(RAFT_ENTRY_NORMAL, buf, len);
    if (rc == RAFT_OK)
        sim_check_proposal(&c->chk, id, n->id, idx, t, hash);
    else if (rc == RAFT_FORWARDED)
        sim_check_proposal(&c->chk, id, n->id, 0, 0, hash);
    if (idp)
        *idp = id;
    if (index)
        *index = idx;
    if (term)
        *term = t;
    sim_cluster_ready(c, n);
    return rc;
}

static void propose_batch(struct sim_cluster *c, struct sim_node *n)
{
    unsigned char bufs[8][64];
    struct raft_buf rb[8];
    uint64_t ids[8];
    size_t k = (size_t)sim_rng_range(&c->rng, 2, 8);
    for (size_t i = 0; i < k; i++) {
        ids[i] = ++c->next_prop_id;
        rb[i].data = bufs[i];
        rb[i].len = make_payload(ids[i], bufs[i]);
    }
    raft_index first = 0;
    raft_term t = 0;
    int rc = raft_propose_batch(n->r, rb, k, &first, &t);
    c->st.proposals += k;
    sim_trace(&c->trace, "propose batch #%llu..#%llu on n%llu -> %s %llu/%llu",
              (unsigned long long)ids[0], (unsigned long long)ids[k - 1],
              (unsigned long long)n->id,
              rc >= 0 ? (rc == RAFT_OK ? "ok" : "forwarded") : raft_strerror(rc),
              (unsigned long long)first, (unsigned long long)t);
    for (size_t i = 0; i < k; i++) {
        uint64_t hash = sim_entry_hash(RAFT_ENTRY_NORMAL, rb[i].data, rb[i].len);
        if (rc == RAFT_OK)
            sim_check_proposal(&c->chk, ids[i], n->id, first + i, t, hash);
        else if (rc == RAFT_FORWARDED)
            sim_check_proposal(&c->chk, ids[i], n->id, 0, 0, hash);
    }
    sim_cluster_ready(c, n);
}

/* A membership change on the current leader, chosen among those that make sense for
 * its configuration; keeps 1..7 voters and at most 3 learners. */
static void conf_change(struct sim_cluster *c)
{
    struct sim_node *l = sim_cluster_leader(c);
    if (l == NULL)
        return;
    struct raft_conf_state cs;
    raft_get_conf_state(l->r, &cs);
    struct raft_conf_change cc = {0};
    struct sim_node *fresh = NULL;
    unsigned char ctx[8];
    uint64_t choice = sim_rng_below(&c->rng, 6);
    bool can_grow = c->n_nodes < SIM_MAX_NODES && cs.n_voters + cs.n_learners < 9;
    if (choice == 0 && can_grow && cs.n_voters < 7) {
        cc.type = RAFT_CC_ADD_VOTER;
    } else if (choice == 1 && can_grow && cs.n_learners < 3) {
        cc.type = RAFT_CC_ADD_LEARNER;
    } else if (choice == 2 && cs.n_learners > 0 && cs.n_voters < 7) {
        cc.type = RAFT_CC_ADD_VOTER; /* promotion */
        cc.replica = cs.learners[sim_rng_below(&c->rng, cs.n_learners)];
    } else if (choice == 3 && cs.n_learners > 0) {
        cc.type = RAFT_CC_REMOVE;
        cc.replica = cs.learners[sim_rng_below(&c->rng, cs.n_learners)];
    } else if (choice >= 4 && cs.n_voters > 1) {
        cc.type = RAFT_CC_REMOVE; /* the leader itself included */
        cc.replica = cs.voters[sim_rng_below(&c->rng, cs.n_voters)];
    } else {
        return;
    }
    if (cc.replica == RAFT_NONE) {
        /* A brand-new replica with an empty configuration; it learns everything from
         * the leader (entries or a snapshot). */
        fresh = sim_cluster_add_node(c, NULL, 0);
        if (fresh == NULL)
            return;
        cc.replica = fresh->id;
        sim_trace(&c->trace, "n%llu created (empty)", (unsigned long long)fresh->id);
    }
    sim_put_u64(ctx, cc.replica);
    cc.context = ctx;
    cc.context_len = (uint32_t)sim_rng_below(&c->rng, 9);
    raft_index idx = 0;
    raft_term t = 0;
    int rc = raft_propose_conf_change(l->r, &cc, &idx, &t);
    sim_trace(&c->trace, "conf change on n%llu: %s %llu -> %s %llu/%llu", (unsigned long long)l->id,
              cc.type == RAFT_CC_ADD_VOTER ? "add_voter"
              : cc.type == RAFT_CC_ADD_LEARNER ? "add_learner" : "remove",
              (unsigned long long)cc.replica, rc == RAFT_OK ? "ok" : raft_strerror(rc),
              (unsigned long long)idx, (unsigned long long)t);
    if (rc == RAFT_OK) {
        unsigned char enc[64];
        size_t len = raft_conf_change_encode(&cc, enc);
        c->st.conf_changes++;
        sim_check_proposal(&c->chk, ++c->next_prop_id, l->id, idx, t,
                           sim_entry_hash(RAFT_ENTRY_CONF_CHANGE, enc, len));
    } else if (fresh != NULL) {
        /* Never a member: retire it (its id is not reused). */
        sim_node_crash(fresh);
        fresh->retired = true;
    }
    sim_cluster_ready(c, l);
}

static void transfer(struct sim_cluster *c)
{
    struct sim_node *n = pick_target(c);
    if (n == NULL)
        return;
    struct raft_conf_state cs;
    raft_get_conf_state(n->r, &cs);
    if (cs.n_voters == 0)
        return;
    raft_id target = cs.voters[sim_rng_below(&c->rng, cs.n_voters)];
    int rc = raft_transfer_leadership(n->r, target);
    c->st.transfers++;
    sim_trace(&c->trace, "transfer leadership via n%llu to n%llu -> %s", (unsigned long long)n->id,
              (unsigned long long)target, rc >= 0 ? (rc == RAFT_OK ? "ok" : "forwarded")
                                                  : raft_strerror(rc));
    sim_cluster_ready(c, n);
}

static void compact(struct sim_cluster *c)
{
    struct sim_node *n = sim_cluster_random_alive(c);
    if (n == NULL || n->applied <= n->snapshot_index)
        return;
    raft_index keep = sim_rng_below(&c->rng, 4);
    int rc = sim_node_compact(n, keep);
    c->st.compactions++;
    sim_trace(&c->trace, "n%llu snapshot at %llu, compact keeping %llu -> %s (log %llu..%llu)",
              (unsigned long long)n->id, (unsigned long long)n->applied,
              (unsigned long long)keep, raft_strerror(rc),
              (unsigned long long)sim_log_first(&n->log), (unsigned long long)sim_log_last(&n->log));
    if (rc != RAFT_OK)
        sim_check_fail(&c->chk, "memory storage refused a snapshot/compaction at %llu: %s",
                       (unsigned long long)n->applied, raft_strerror(rc));
}

static void read_index(struct sim_cluster *c)
{
    struct sim_node *n = pick_target(c);
    if (n == NULL)
        return;
    uint64_t ctx = ++c->next_read_ctx;
    int rc = raft_read_index(n->r, ctx);
    c->st.reads++;
    sim_trace(&c->trace, "read_index ctx=%llu on n%llu -> %s", (unsigned long long)ctx,
              (unsigned long long)n->id,
              rc >= 0 ? (rc == RAFT_OK ? "ok" : "forwarded") : raft_strerror(rc));
    if (rc == RAFT_OK || rc == RAFT_FORWARDED) {
        if (c->n_reads == c->cap_reads) {
            size_t nc = c->cap_reads ? c->cap_reads * 2 : 64;
            struct sim_read *nr = realloc(c->reads, nc * sizeof *nr);
            if (nr == NULL)
                abort();
            c->reads = nr;
            c->cap_reads = nc;
        }
        c->reads[c->n_reads].ctx = ctx;
        c->reads[c->n_reads].min_index = c->chk.committed_max;
        c->n_reads++;
    }
    sim_cluster_ready(c, n);
}

static void campaign(struct sim_cluster *c)
{
    struct sim_node *n = sim_cluster_random_alive(c);
    if (n == NULL)
        return;
    int rc = raft_campaign(n->r);
    sim_trace(&c->trace, "campaign on n%llu -> %s", (unsigned long long)n->id, raft_strerror(rc));
    sim_cluster_ready(c, n);
}

void sim_workload_step(struct sim_cluster *c)
{
    struct sim_rng *r = &c->rng;
    struct sim_node *n;
    if (sim_rng_ppm(r, c->rate.propose) && (n = pick_target(c)) != NULL)
        sim_workload_propose(c, n, NULL, NULL, NULL);
    if (sim_rng_ppm(r, c->rate.batch) && (n = pick_target(c)) != NULL)
        propose_batch(c, n);
    if (sim_rng_ppm(r, c->rate.conf))
        conf_change(c);
    if (sim_rng_ppm(r, c->rate.transfer))
        transfer(c);
    if (sim_rng_ppm(r, c->rate.compact))
        compact(c);
    if (sim_rng_ppm(r, c->rate.read))
        read_index(c);
    if (sim_rng_ppm(r, c->rate.campaign))
        campaign(c);
}
