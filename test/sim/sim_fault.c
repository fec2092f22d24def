/*
 * sim_fault.c — the fault model: crashes (between events and inside a Ready cycle),
 * symmetric and one-way partitions, and network "weather" (loss, duplication,
 * latency spikes).  Every fault has an end time; sim_fault_heal_all() ends them all
 * for the final liveness phase.
 */
#include "sim_cluster.h"

#include <string.h>

static const char *const crash_point_name[] = {"before persist", "after persist, before send",
                                               "after send, before apply"};

void sim_fault_setup(struct sim_cluster *c)
{
    struct sim_rng *r = &c->rng;
    c->rate.crash = (uint32_t)sim_rng_range(r, 500, 3000);
    c->rate.partition = (uint32_t)sim_rng_range(r, 500, 4000);
    c->rate.profile = (uint32_t)sim_rng_range(r, 500, 3000);
    c->rate.crash_in_ready = (uint32_t)sim_rng_range(r, 0, 2000);
    if (sim_rng_below(r, 2) == 0) {
        /* A "storm" seed: leaders come and go all the time, so that entries from
         * old terms are left half-replicated and later overwritten (the situations of
         * Figure 8 / §5.4.2). */
        c->storm = true;
        c->rate.crash *= 4;
        c->rate.partition *= 3;
        c->rate.crash_in_ready += 3000;
    }
    c->base_profile = (struct sim_net_profile){
        .drop_ppm = 0, .dup_ppm = 0, .spike_ppm = 0, .min_delay = 1,
        .max_delay = (uint32_t)sim_rng_range(r, 2, c->tick_unit), .spike_delay = 0};
    c->net.prof = c->base_profile;
}

static uint32_t alive_mask(const struct sim_cluster *c)
{
    uint32_t m = 0;
    for (uint32_t i = 0; i < c->n_nodes; i++)
        if (!c->nodes[i].retired)
            m |= 1u << i;
    return m;
}

/* The blocked matrix is the union of the active partitions. */
static void rebuild_blocks(struct sim_cluster *c)
{
    sim_net_heal_all(&c->net);
    for (uint32_t p = 0; p < c->n_parts; p++) {
        const struct sim_partition *pt = &c->parts[p];
        for (uint32_t a = 0; a < c->n_nodes; a++) {
            if (!(pt->a & (1u << a)))
                continue;
            for (uint32_t b = 0; b < c->n_nodes; b++)
                if ((pt->b & (1u << b)) && a != b)
                    sim_net_block(&c->net, a, b, pt->symmetric);
        }
    }
}

static void fmt_mask(uint32_t m, char *buf, size_t len)
{
    size_t k = 0;
    buf[0] = 0;
    for (uint32_t i = 0; i < 32 && k + 4 < len; i++)
        if (m & (1u << i))
            k += (size_t)snprintf(buf + k, len - k, "%s%u", k ? "," : "", i + 1);
}

static void start_partition(struct sim_cluster *c)
{
    struct sim_rng *r = &c->rng;
    if (c->n_parts == SIM_MAX_PARTS || c->n_nodes < 2)
        return;
    uint32_t all = alive_mask(c);
    struct sim_partition pt = {0};
    uint32_t x = (uint32_t)sim_rng_below(r, c->n_nodes);
    switch (sim_rng_below(r, 4)) {
    case 0: /* isolate one replica */
        pt.a = 1u << x;
        pt.b = all & ~pt.a;
        pt.symmetric = true;
        break;
    case 1: /* split in two random halves */
        pt.a = (uint32_t)sim_rng_next(r) & all;
        pt.b = all & ~pt.a;
        pt.symmetric = true;
        break;
    case 2: { /* one-way: x can no longer reach y */
        uint32_t y = (uint32_t)sim_rng_below(r, c->n_nodes);
        pt.a = 1u << x;
        pt.b = 1u << y;
        pt.symmetric = false;
        break;
    }
    default: /* one-way: x hears everyone but nobody hears x (or the reverse) */
        if (sim_rng_below(r, 2)) {
            pt.a = 1u << x;
            pt.b = all & ~pt.a;
        } else {
            pt.b = 1u << x;
            pt.a = all & ~pt.b;
        }
        pt.symmetric = false;
        break;
    }
    if (pt.a == 0 || pt.b == 0)
        return;
    pt.until = c->now + c->tick_unit * sim_rng_range(r, 2, (c->storm ? 2ull : 5ull) * c->params.election_tick);
    c->parts[c->n_parts++] = pt;
    c->st.partitions++;
    rebuild_blocks(c);
    char a[100], b[100];
    fmt_mask(pt.a, a, sizeof a);
    fmt_mask(pt.b, b, sizeof b);
    sim_trace(&c->trace, "partition {%s} %s {%s} until t=%llu", a, pt.symmetric ? "<-/->" : "-/->",
              b, (unsigned long long)pt.until);
}

static void change_weather(struct sim_cluster *c)
{
    struct sim_rng *r = &c->rng;
    static const uint32_t drops[] = {0, 10000, 50000, 200000, 500000};
    static const uint32_t dups[] = {0, 10000, 50000, 200000};
    static const uint32_t spikes[] = {0, 10000, 100000};
    struct sim_net_profile p = c->base_profile;
    p.drop_ppm = drops[sim_rng_below(r, 5)];
    p.dup_ppm = dups[sim_rng_below(r, 4)];
    p.spike_ppm = spikes[sim_rng_below(r, 3)];
    p.max_delay = (uint32_t)sim_rng_range(r, 1, 3ull * c->tick_unit);
    p.spike_delay = (uint32_t)(c->tick_unit * sim_rng_range(r, 1, 2ull * c->params.election_tick));
    c->net.prof = p;
    c->profile_until = c->now + c->tick_unit * sim_rng_range(r, 1, 4ull * c->params.election_tick);
    sim_trace(&c->trace, "network: drop %u%% dup %u%% spikes %u%% delay 1..%u (spike %u) until t=%llu",
              p.drop_ppm / 10000, p.dup_ppm / 10000, p.spike_ppm / 10000, p.max_delay,
              p.spike_delay, (unsigned long long)c->profile_until);
}

void sim_fault_crash(struct sim_cluster *c, struct sim_node *n, const char *why)
{
    c->st.crashes++;
    uint64_t max_down = (c->storm ? 1ull : 3ull) * c->params.election_tick;
    n->restart_at = c->now + c->tick_unit * sim_rng_range(&c->rng, 1, max_down);
    sim_trace(&c->trace, "CRASH n%llu (%s), restart at t=%llu", (unsigned long long)n->id, why,
              (unsigned long long)n->restart_at);
}

void sim_fault_new_leader(struct sim_cluster *c, struct sim_node *n)
{
    if (!c->faults_on || !c->storm || n->crash_at != 0 || !sim_rng_ppm(&c->rng, 300000))
        return;
    n->crash_at = c->now + sim_rng_range(&c->rng, 1, 3ull * c->tick_unit);
    sim_trace(&c->trace, "n%llu (new leader) will crash at t=%llu", (unsigned long long)n->id,
              (unsigned long long)n->crash_at);
}

bool sim_fault_crash_point(void *ctx, struct sim_node *n, enum sim_crash_point p)
{
    struct sim_cluster *c = ctx;
    if (!c->faults_on || c->rate.crash_in_ready == 0)
        return false;
    if (!sim_rng_ppm(&c->rng, c->rate.crash_in_ready))
        return false;
    sim_fault_crash(c, n, crash_point_name[p]);
    return true;  /* the driver frees the raft */
}

void sim_fault_step(struct sim_cluster *c)
{
    struct sim_rng *r = &c->rng;
    if (sim_rng_ppm(r, c->rate.crash)) {
        /* Leaders are crashed more often: that is where the interesting cases are. */
        struct sim_node *n = sim_rng_below(r, 3) == 0 ? sim_cluster_leader(c) : NULL;
        if (n == NULL)
            n = sim_cluster_random_alive(c);
        if (n != NULL) {
            sim_fault_crash(c, n, "between events");
            sim_node_crash(n);
        }
    }
    if (sim_rng_ppm(r, c->rate.partition))
        start_partition(c);
    if (sim_rng_ppm(r, c->rate.profile))
        change_weather(c);
}

void sim_fault_timers(struct sim_cluster *c)
{
    for (uint32_t i = 0; i < c->n_nodes; i++) {
        struct sim_node *n = &c->nodes[i];
        if (n->alive && n->crash_at != 0 && n->crash_at <= c->now) {
            n->crash_at = 0;
            if (c->faults_on) {
                sim_fault_crash(c, n, "scheduled");
                sim_node_crash(n);
            }
        }
        if (!n->alive && !n->retired && n->restart_at != 0 && n->restart_at <= c->now)
            sim_cluster_restart(c, n);
    }
    bool changed = false;
    for (uint32_t p = 0; p < c->n_parts;) {
        if (c->parts[p].until <= c->now) {
            c->parts[p] = c->parts[--c->n_parts];
            changed = true;
        } else {
            p++;
        }
    }
    if (changed) {
        rebuild_blocks(c);
        sim_trace(&c->trace, "partition healed (%u still active)", c->n_parts);
    }
    if (c->profile_until != 0 && c->profile_until <= c->now) {
        c->net.prof = c->base_profile;
        c->profile_until = 0;
        sim_trace(&c->trace, "network back to normal");
    }
}

bool sim_fault_next_time(const struct sim_cluster *c, uint64_t *t)
{
    bool any = false;
    uint64_t best = UINT64_MAX;
    for (uint32_t i = 0; i < c->n_nodes; i++) {
        const struct sim_node *n = &c->nodes[i];
        if (!n->alive && !n->retired && n->restart_at != 0 && n->restart_at < best) {
            best = n->restart_at;
            any = true;
        }
        if (n->alive && n->crash_at != 0 && n->crash_at < best) {
            best = n->crash_at;
            any = true;
        }
    }
    for (uint32_t p = 0; p < c->n_parts; p++)
        if (c->parts[p].until < best) {
            best = c->parts[p].until;
            any = true;
        }
    if (c->profile_until != 0 && c->profile_until < best) {
        best = c->profile_until;
        any = true;
    }
    *t = best;
    return any;
}

void sim_fault_heal_all(struct sim_cluster *c)
{
    c->faults_on = false;
    c->n_parts = 0;
    rebuild_blocks(c);
    c->net.prof = c->base_profile;
    c->profile_until = 0;
    sim_trace(&c->trace, "HEAL: all partitions healed, network normal, crashed replicas restart");
    for (uint32_t i = 0; i < c->n_nodes; i++) {
        struct sim_node *n = &c->nodes[i];
        if (!n->alive && !n->retired)
            sim_cluster_restart(c, n);
    }
}
