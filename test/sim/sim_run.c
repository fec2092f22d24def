/* sim_run.c — set-up, main loop and tear-down of one seed (see sim_run.h). */
#include "sim_run.h"

#include <stdlib.h>
#include <string.h>

/* Per-seed Raft configuration: every knob that changes the core's behaviour. */
static void choose_params(struct sim_cluster *c)
{
    struct sim_rng *r = &c->rng;
    static const uint64_t msg_sizes[] = {0, 40, 200, 4096};
    static const uint64_t ready_sizes[] = {0, 40, 1000};
    static const uint32_t inflight[] = {0, 1, 2, 8};
    struct sim_node_params *p = &c->params;
    p->election_tick = (uint32_t)sim_rng_range(r, 5, 12);
    p->heartbeat_tick = (uint32_t)sim_rng_range(r, 1, 2);
    p->max_size_per_msg = msg_sizes[sim_rng_below(r, 4)];
    p->max_committed_size_per_ready = ready_sizes[sim_rng_below(r, 3)];
    p->max_inflight_msgs = inflight[sim_rng_below(r, 4)];
    p->pre_vote = sim_rng_below(r, 2);
    p->check_quorum = sim_rng_below(r, 2);
    p->disable_proposal_forwarding = sim_rng_below(r, 5) == 0;
    p->durable_notices = sim_rng_below(r, 2);
}

void sim_run(const struct sim_opts *o, struct sim_result *res)
{
    struct sim_cluster *c = calloc(1, sizeof *c);
    if (c == NULL)
        abort();
    sim_cluster_init(c, o);
    choose_params(c);
    sim_fault_setup(c);
    sim_workload_setup(c);
    if (c->storm && sim_rng_below(&c->rng, 2)) {
        /* Tiny appends and no pipelining: a leader's backlog of old-term entries then
         * reaches followers one entry at a time (the §5.4.2 window). */
        c->params.max_size_per_msg = 1;
        c->params.max_inflight_msgs = 1;
        c->rate.propose *= 2;
    }
    uint32_t n = sim_rng_below(&c->rng, 2) ? 5 : 3;
    const struct sim_node_params *p = &c->params;
    sim_trace(&c->trace, "seed %llu: %u replicas, election %u heartbeat %u, prevote %d "
              "checkquorum %d nofwd %d durable %d, max msg %llu, max ready %llu, inflight %u%s",
              (unsigned long long)o->seed, n, p->election_tick, p->heartbeat_tick, p->pre_vote,
              p->check_quorum, p->disable_proposal_forwarding, p->durable_notices,
              (unsigned long long)p->max_size_per_msg,
              (unsigned long long)p->max_committed_size_per_ready, p->max_inflight_msgs,
              c->storm ? ", storm" : "");
    int boot = o->bootstrap;
    if (boot == SIM_BOOT_MIXED)
        boot = sim_rng_below(&c->rng, 2) ? SIM_BOOT_SNAPSHOT : SIM_BOOT_CONF;
    sim_cluster_bootstrap(c, n, boot);

    for (uint64_t s = 0; s < o->steps && !sim_cluster_failed(c); s++)
        if (!sim_cluster_step(c))
            break;
    if (!sim_cluster_failed(c))
        sim_liveness_run(c);

    memset(res, 0, sizeof *res);
    c->st.leaders = c->chk.n_leaders;
    for (size_t i = 0; i < c->chk.n_props; i++) {
        if (c->chk.props[i].status == SIM_PROP_COMMITTED)
            c->st.committed++;
        else if (c->chk.props[i].status == SIM_PROP_DROPPED)
            c->st.dropped++;
        else if (c->chk.props[i].status == SIM_PROP_FORWARDED)
            c->st.forwarded_lost++;
    }
    uint64_t violations = c->chk.violations;
    if (violations)
        memcpy(res->what, c->chk.first_violation, sizeof res->what);
    bool echo = o->trace;
    if (violations && !echo) {
        fprintf(o->out, "seed %llu: VIOLATION: %s\n  last events:\n", (unsigned long long)o->seed,
                res->what);
        sim_trace_dump(&c->trace, o->out);
        fprintf(o->out, "  replay: mrsim --seed %llu --steps %llu --trace\n",
                (unsigned long long)o->seed, (unsigned long long)o->steps);
    }
    res->st = c->st;
    sim_cluster_free(c);
    /* Every byte the core allocated must be back once every raft and storage is gone. */
    if (c->alloc.bytes != 0 || c->alloc.blocks != 0) {
        if (violations == 0) {
            snprintf(res->what, sizeof res->what, "memory leak: %zu bytes in %zu blocks still "
                     "allocated after raft_free/raft_memory_storage_free",
                     c->alloc.bytes, c->alloc.blocks);
            fprintf(o->out, "seed %llu: VIOLATION: %s\n", (unsigned long long)o->seed, res->what);
        }
        violations++;
    }
    res->violations = violations;
    free(c);
}
