/*
 * sim_liveness.c — the end of every run: all faults heal (partitions end, the network
 * turns reliable, crashed replicas restart) and, within a bounded number of ticks,
 *  - a leader must exist whose whole log is committed, with an entry of its own term;
 *  - every member of its configuration must be up, know it as leader, and have
 *    committed and applied everything;
 *  - a probe proposal must commit and be applied everywhere;
 *  - every proposal with a known (index, term) must be resolved — committed, or
 *    known dropped (overwritten, or beyond the final leader's fully committed log
 *    with an older term).  Forwarded proposals may be lost silently (raft.h).
 */
#include "sim_cluster.h"

#include <stdio.h>

/* Ticks allowed after healing without progress, in election timeouts; and in all,
 * however much progress is made.  Progress is an applied index moving somewhere: a
 * replica added late catches up one round trip per entry when the run allows one
 * entry per message and one message in flight (docs/sim-findings.md, finding 11),
 * which may take longer than any fixed bound, yet is no loss of liveness.  Only
 * under one leader in one term: the entries a storm of elections appends and
 * applies are no progress. */
#define HEAL_ELECTION_TIMEOUTS 50u
#define HEAL_ELECTION_TIMEOUTS_MAX 400u

/* Sum of the live replicas' applied indexes: it grows while they catch up. */
static uint64_t applied_sum(const struct sim_cluster *c)
{
    uint64_t sum = 0;
    for (uint32_t i = 0; i < c->n_nodes; i++)
        if (c->nodes[i].alive && !c->nodes[i].retired)
            sum += c->nodes[i].applied;
    return sum;
}

/* Whether this step made progress: the applied sum grew while the same leader term
 * as at the previous step held (*applied and *term carry that step's values). */
static bool progressed(struct sim_cluster *c, uint64_t *applied, raft_term *term)
{
    struct sim_node *l = sim_cluster_leader(c);
    raft_term t = l != NULL ? raft_get_term(l->r) : 0;
    uint64_t a = applied_sum(c);
    bool moved = t != 0 && t == *term && a > *applied;
    *applied = a;
    *term = t;
    return moved;
}

static bool converged(struct sim_cluster *c, struct sim_node **leader)
{
    struct sim_node *l = sim_cluster_leader(c);
    *leader = l;
    if (l == NULL)
        return false;
    raft_term term = raft_get_term(l->r);
    raft_index commit = raft_get_commit(l->r);
    if (commit != raft_get_last_index(l->r))
        return false;
    const struct sim_canon *k = sim_check_canon(&c->chk, commit);
    if (k == NULL || k->term != term)
        return false;
    struct raft_conf_state cs;
    raft_get_conf_state(l->r, &cs);
    for (uint32_t i = 0; i < cs.n_voters + cs.n_learners; i++) {
        raft_id id = i < cs.n_voters ? cs.voters[i] : cs.learners[i - cs.n_voters];
        struct sim_node *n = sim_cluster_node(c, id);
        if (n == NULL || !n->alive)
            return false;
        if (raft_get_commit(n->r) != commit || n->applied != commit ||
            raft_get_leader(n->r) != l->id)
            return false;
    }
    sim_check_resolve_beyond(&c->chk, raft_get_last_index(l->r), term);
    return sim_check_unresolved(&c->chk, NULL) == 0;
}

static void describe(struct sim_cluster *c)
{
    struct sim_node *l = sim_cluster_leader(c);
    if (l != NULL) {
        for (size_t i = 0; i < raft_progress_count(l->r); i++) {
            struct raft_progress_info pi;
            if (raft_progress_at(l->r, i, &pi) != RAFT_OK)
                continue;
            sim_trace(&c->trace, "  leader n%llu: peer %llu%s match %llu next %llu state %d "
                      "inflight %u active %d pending snapshot %llu",
                      (unsigned long long)l->id, (unsigned long long)pi.id,
                      pi.is_learner ? " (learner)" : "", (unsigned long long)pi.match,
                      (unsigned long long)pi.next, pi.state, pi.inflight, pi.recent_active,
                      (unsigned long long)pi.pending_snapshot);
        }
    }
    for (uint32_t i = 0; i < c->n_nodes; i++) {
        struct sim_node *n = &c->nodes[i];
        if (n->retired)
            continue;
        if (!n->alive) {
            sim_trace(&c->trace, "  n%llu down", (unsigned long long)n->id);
            continue;
        }
        struct raft_conf_state cs;
        raft_get_conf_state(n->r, &cs);
        char conf[200];
        size_t k = 0;
        conf[0] = 0;
        for (uint32_t j = 0; j < cs.n_voters + cs.n_learners && k + 24 < sizeof conf; j++)
            k += (size_t)snprintf(conf + k, sizeof conf - k, "%s%s%llu", j ? "," : "",
                                  j >= cs.n_voters ? "L" : "",
                                  (unsigned long long)(j < cs.n_voters ? cs.voters[j]
                                                       : cs.learners[j - cs.n_voters]));
        sim_trace(&c->trace, "  n%llu %s term %llu vote %llu leader %llu commit %llu applied "
                  "%llu log %llu..%llu (last term %llu) conf {%s}", (unsigned long long)n->id,
                  raft_role_name(raft_get_role(n->r)), (unsigned long long)raft_get_term(n->r),
                  (unsigned long long)n->hs.vote, (unsigned long long)raft_get_leader(n->r),
                  (unsigned long long)raft_get_commit(n->r), (unsigned long long)n->applied,
                  (unsigned long long)sim_log_first(&n->log),
                  (unsigned long long)sim_log_last(&n->log),
                  (unsigned long long)(n->log.n ? n->log.e[n->log.n - 1].term : n->log.snap_term),
                  conf);
    }
}

bool sim_liveness_run(struct sim_cluster *c)
{
    c->workload_on = false;
    sim_fault_heal_all(c);
    uint64_t start = c->now, progress_at = c->now;
    uint64_t timeout = (uint64_t)c->tick_unit * c->params.election_tick;
    uint64_t budget = timeout * HEAL_ELECTION_TIMEOUTS, cap = timeout * HEAL_ELECTION_TIMEOUTS_MAX;
    uint64_t applied = applied_sum(c);
    raft_term leader_term = 0;
    raft_index probe_idx = 0;
    raft_term probe_term = 0;
    uint64_t steps = 0;
    while (c->now - progress_at <= budget && c->now - start <= cap && steps < 5000000) {
        if (!sim_cluster_step(c))
            break;
        steps++;
        if (sim_cluster_failed(c))
            return false;
        if (progressed(c, &applied, &leader_term))
            progress_at = c->now;
        struct sim_node *l;
        if (!converged(c, &l))
            continue;
        if (probe_idx != 0) {
            const struct sim_canon *k = sim_check_canon(&c->chk, probe_idx);
            if (k != NULL && k->term == probe_term) {
                c->st.heal_ticks = (c->now - start) / c->tick_unit;
                sim_trace(&c->trace, "LIVE: leader n%llu term %llu, all members applied %llu "
                          "after %llu ticks", (unsigned long long)l->id,
                          (unsigned long long)raft_get_term(l->r),
                          (unsigned long long)l->applied, (unsigned long long)c->st.heal_ticks);
                return true;
            }
            if (k != NULL)
                probe_idx = 0; /* overwritten by another leader: probe again */
            else
                continue;
        }
        uint64_t id;
        if (sim_workload_propose(c, l, &id, &probe_idx, &probe_term) != RAFT_OK)
            probe_idx = 0; /* e.g. a transfer in progress: try again later */
    }
    size_t fwd = 0;
    size_t open = sim_check_unresolved(&c->chk, &fwd);
    sim_trace(&c->trace, "no convergence after %llu ticks of healing; state:",
              (unsigned long long)((c->now - start) / c->tick_unit));
    describe(c);
    struct sim_node *l = sim_cluster_leader(c);
    sim_check_fail(&c->chk, "liveness: %llu ticks after healing: %s, %zu proposals unresolved, "
                   "probe %s", (unsigned long long)((c->now - start) / c->tick_unit),
                   l ? "members not converged on the leader" : "no leader", open,
                   probe_idx ? "not committed everywhere" : "not accepted");
    return false;
}
