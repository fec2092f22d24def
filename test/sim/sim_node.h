/*
 * sim_node.h — the Raft driver: one replica of one group on a simulated server.
 *
 * It owns the replica's DURABLE state — the memory storage (log, hard state,
 * snapshot, configuration as of the applied index) plus the persisted state machine
 * (applied index and the digest chain of the applied sequence) — and mirrors the log
 * in a sim_log for the checkers.  The struct raft is volatile: a crash frees it (and
 * with it every unpersisted entry, unsent message and unapplied commit); a restart
 * builds a new one from the durable state alone.
 *
 * The Ready cycle follows raft.h: persist (snapshot, entries, hard state), send,
 * apply (+ conf state and applied index, atomically), advance.  Between these phases
 * the fault model may crash the node (hooks.crash_point), which is how "crash after
 * persisting but before sending" and "crash after sending but before applying" are
 * exercised.  Every observation goes to the hooks (checkers, network, trace), so this
 * file knows neither the network nor the checkers.
 */
#ifndef SIM_NODE_H
#define SIM_NODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "raft.h"
#include "sim_alloc.h"
#include "sim_log.h"

#define SIM_MAX_CONF 32

struct sim_node_params {
    uint32_t election_tick;
    uint32_t heartbeat_tick;
    uint64_t max_size_per_msg;
    uint64_t max_committed_size_per_ready;
    uint32_t max_inflight_msgs;
    bool pre_vote;
    bool check_quorum;
    bool disable_proposal_forwarding;
    bool durable_notices;
};

enum sim_crash_point {
    SIM_CRASH_BEFORE_PERSIST = 0,  /* the Ready is lost entirely */
    SIM_CRASH_AFTER_PERSIST,       /* persisted, nothing sent or applied */
    SIM_CRASH_AFTER_SEND           /* persisted and sent, not applied */
};

struct sim_node;

struct sim_node_hooks {
    void *ctx;
    bool (*crash_point)(void *ctx, struct sim_node *n, enum sim_crash_point p);
    void (*persisted_entry)(void *ctx, struct sim_node *n, raft_index index, raft_term term,
                            uint64_t hash, raft_term prev_term);
    void (*persisted_hard_state)(void *ctx, struct sim_node *n,
                                 const struct raft_hard_state *old,
                                 const struct raft_hard_state *cur);
    void (*installed_snapshot)(void *ctx, struct sim_node *n, const struct raft_snapshot *s,
                               uint64_t chain);
    void (*send)(void *ctx, struct sim_node *n, const struct raft_message *m);
    void (*applied)(void *ctx, struct sim_node *n, const struct raft_entry *e, uint64_t hash,
                    uint64_t chain);
    void (*read_state)(void *ctx, struct sim_node *n, const struct raft_read_state *rs);
    void (*soft_state)(void *ctx, struct sim_node *n, const struct raft_ready *rd);
    /* A contract breach or an unexpected error of the core (a violation). */
    void (*error)(void *ctx, struct sim_node *n, const char *what);
};

struct sim_node {
    raft_id id;
    uint32_t slot;            /* network endpoint */
    bool alive;               /* a struct raft is running */
    bool retired;             /* never (re)started again (e.g. its addition was refused) */
    uint32_t incarnation;     /* bumped at every start */
    struct raft *r;
    struct sim_alloc *alloc;
    struct sim_node_params params;

    /* ---- durable state ---- */
    struct raft_memory_storage *ms;
    struct sim_log log;       /* mirror of ms's log */
    struct raft_hard_state hs;
    raft_id voters[SIM_MAX_CONF], learners[SIM_MAX_CONF];
    uint32_t n_voters, n_learners;   /* configuration as of `applied` */
    raft_index snapshot_index;/* index of the storage's latest snapshot */
    raft_index applied;       /* state machine: last applied index ... */
    uint64_t chain;           /* ... and digest of the applied sequence */

    /* ---- observations of the current incarnation (for the checkers) ---- */
    raft_term seen_term;
    raft_index seen_commit;
    raft_index checked_commit; /* commit observations done up to here (all incarnations) */
    int seen_role;
    raft_id seen_leader;

    /* ---- scheduling ---- */
    uint64_t next_tick_at;
    uint32_t tick_interval;
    uint64_t restart_at;      /* when crashed: scheduled restart time (0 = none) */
    uint64_t crash_at;        /* when alive: scheduled crash time (0 = none) */
};

/* Fresh durable state: empty log, hard state 0, configuration voters[0..n_voters)
 * (n_voters = 0 for a replica that is about to be added). */
void sim_node_init(struct sim_node *n, raft_id id, uint32_t slot, struct sim_alloc *alloc,
                   const struct sim_node_params *params, const raft_id *voters,
                   uint32_t n_voters);
/* Alternative bootstrap of an initial member: its durable state starts with a
 * snapshot at index 1 (term 1) holding the configuration voters and the state
 * machine image (1, chain), hard state {1, none, 1} — so replicas added later must be
 * sent a snapshot and never rebuild the configuration by replaying the log. */
void sim_node_bootstrap_snapshot(struct sim_node *n, uint64_t chain);
/* Builds a struct raft from the durable state.  Returns a raft error code. */
int sim_node_start(struct sim_node *n, uint64_t seed);
/* Loses all volatile state. */
void sim_node_crash(struct sim_node *n);
/* Frees everything (crash first if alive). */
void sim_node_destroy(struct sim_node *n);

/* Runs Ready/Advance cycles until nothing is ready (or the node crashed: -1). */
int sim_node_process_ready(struct sim_node *n, const struct sim_node_hooks *h);

/* Takes a snapshot of the state machine at the applied index and compacts the log,
 * keeping `keep` entries before it.  Returns 0, or a raft error code. */
int sim_node_compact(struct sim_node *n, raft_index keep);

/* Snapshot payload: the state machine image (applied index + digest). */
#define SIM_SNAP_DATA_LEN 16u
bool sim_snap_decode(const void *data, size_t len, raft_index *index, uint64_t *chain);

#endif /* SIM_NODE_H */
