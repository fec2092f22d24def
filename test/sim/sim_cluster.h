/*
 * sim_cluster.h — one simulated Raft group: the scheduler that drives replicas
 * (sim_node) over the network (sim_net) under the fault model (sim_fault.c) and the
 * client workload (sim_workload.c), with the checkers (sim_check) watching.
 *
 * Time is a simulated integer clock.  One STEP = one event: the earliest message
 * delivery or replica tick (replicas tick every tick_interval time units, each with
 * its own phase and a slightly different rate).  Before each event the fault model
 * and the workload may act.  After each event the per-step checks run.
 */
#ifndef SIM_CLUSTER_H
#define SIM_CLUSTER_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "sim_alloc.h"
#include "sim_check.h"
#include "sim_net.h"
#include "sim_node.h"
#include "sim_rng.h"
#include "sim_trace.h"

#define SIM_MAX_NODES SIM_NET_MAX_NODES
#define SIM_MAX_PARTS 8

enum sim_bootstrap {
    SIM_BOOT_MIXED = 0,   /* chosen per seed */
    SIM_BOOT_CONF,        /* initial members: configuration in storage, empty log */
    SIM_BOOT_SNAPSHOT     /* initial members: a snapshot at index 1 holding it */
};

struct sim_opts {
    uint64_t seed;
    int bootstrap;  /* enum sim_bootstrap */
    uint64_t steps;
    bool trace;     /* echo every event */
    bool verbose;   /* also ticks, sends and applies */
    FILE *out;
};

struct sim_stats {
    uint64_t events, leaders, applied, snapshots_installed, crashes, restarts, partitions;
    uint64_t conf_changes, transfers, compactions, proposals, committed, dropped;
    uint64_t forwarded_lost, reads, reads_ok, heal_ticks, max_index, nodes;
};

struct sim_partition {
    uint64_t until;
    uint32_t a, b;       /* bitmasks of slots: packets a→b blocked (and b→a if sym) */
    bool symmetric;
};

struct sim_read {
    uint64_t ctx;
    raft_index min_index;  /* committed index known when the read was issued */
};

struct sim_rates {  /* per million per step */
    uint32_t propose, batch, conf, transfer, compact, read, campaign;
    uint32_t crash, partition, profile;
    uint32_t crash_in_ready;  /* per million per Ready cycle */
};

struct sim_cluster {
    struct sim_opts opts;
    struct sim_rng rng;
    struct sim_alloc alloc;
    struct sim_trace trace;
    struct sim_net net;
    struct sim_check chk;
    struct sim_node_hooks hooks;
    struct sim_node nodes[SIM_MAX_NODES];  /* slot i holds replica id i + 1 */
    uint32_t n_nodes;
    struct sim_node_params params;
    uint32_t tick_unit;
    uint64_t now, step;
    bool faults_on, workload_on;
    bool storm;          /* this seed's faults are much more frequent and shorter */
    struct sim_rates rate;
    struct sim_net_profile base_profile;
    uint64_t profile_until;
    struct sim_partition parts[SIM_MAX_PARTS];
    uint32_t n_parts;
    uint64_t next_prop_id, next_read_ctx;
    uint64_t boot_chain;
    struct sim_read *reads;
    size_t n_reads, cap_reads;
    struct sim_stats st;
};

/* sim_cluster.c */
void sim_cluster_init(struct sim_cluster *c, const struct sim_opts *o);
void sim_cluster_free(struct sim_cluster *c);
/* Creates replica id n_nodes+1 (fresh durable state with configuration voters) and
 * starts it.  NULL if no slot is left. */
struct sim_node *sim_cluster_add_node(struct sim_cluster *c, const raft_id *voters,
                                      uint32_t n_voters);
/* Creates the initial members 1..n (voters), bootstrapped as `boot` says. */
void sim_cluster_bootstrap(struct sim_cluster *c, uint32_t n, int boot);
struct sim_node *sim_cluster_node(struct sim_cluster *c, raft_id id);
/* Runs the node's Ready cycles (and reacts to a crash inside them). */
void sim_cluster_ready(struct sim_cluster *c, struct sim_node *n);
/* The live leader with the highest term, NULL if none. */
struct sim_node *sim_cluster_leader(struct sim_cluster *c);
/* A random live replica, NULL if none. */
struct sim_node *sim_cluster_random_alive(struct sim_cluster *c);
/* Restarts a crashed replica from its durable state. */
void sim_cluster_restart(struct sim_cluster *c, struct sim_node *n);
/* One event; returns false when nothing can happen any more. */
bool sim_cluster_step(struct sim_cluster *c);
/* The per-step invariant checks. */
void sim_cluster_check(struct sim_cluster *c);
static inline bool sim_cluster_failed(const struct sim_cluster *c)
{
    return c->chk.violations > 0;
}

/* sim_fault.c — fault injection and healing */
void sim_fault_setup(struct sim_cluster *c);
void sim_fault_step(struct sim_cluster *c);        /* may start faults */
void sim_fault_timers(struct sim_cluster *c);      /* ends faults that are due */
bool sim_fault_next_time(const struct sim_cluster *c, uint64_t *t);
void sim_fault_heal_all(struct sim_cluster *c);    /* stop all faults now */
bool sim_fault_crash_point(void *ctx, struct sim_node *n, enum sim_crash_point p);
void sim_fault_crash(struct sim_cluster *c, struct sim_node *n, const char *why);
/* A replica just became leader: storm seeds often crash new leaders early, before
 * their first entries are fully replicated. */
void sim_fault_new_leader(struct sim_cluster *c, struct sim_node *n);

/* sim_workload.c — client actions */
void sim_workload_setup(struct sim_cluster *c);
void sim_workload_step(struct sim_cluster *c);
/* Proposes one command on n; returns the raft rc.  *id gets the proposal id. */
int sim_workload_propose(struct sim_cluster *c, struct sim_node *n, uint64_t *id,
                         raft_index *index, raft_term *term);
/* Proposal payload: u64 id | "SIMP" | padding.  Returns the id or 0. */
uint64_t sim_workload_prop_id(const void *data, size_t len);

/* sim_liveness.c — end-of-run healing phase */
/* Heals everything and waits (bounded) for a leader, convergence of every member
 * and the resolution of every proposal.  Returns false (and records a violation)
 * on a liveness failure. */
bool sim_liveness_run(struct sim_cluster *c);

#endif /* SIM_CLUSTER_H */
