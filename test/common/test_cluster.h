/*
 * test_cluster.h — a deterministic in-process cluster of raft replicas for tests:
 * N nodes with in-memory storage, a FIFO network that can drop / cut links, a logical
 * clock, crash/restart, and safety checks.  No cmocka dependency (usable by the
 * simulator and fuzzers); failures are returned, not asserted.
 *
 * Node slots are 0..TC_MAX_NODES-1; node i has replica id i+1 unless added with
 * another id by tc_add_node().
 */
#ifndef MULTIRAFT_TEST_CLUSTER_H
#define MULTIRAFT_TEST_CLUSTER_H

#include "raft.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TC_MAX_NODES 9

/* An applied entry (data copied). */
struct tc_applied {
    raft_index index;
    raft_term term;
    uint8_t type;
    uint32_t len;
    unsigned char *data;
};

struct tc_node {
    bool present;                  /* slot in use */
    bool up;                       /* false while crashed */
    raft_id id;
    struct raft_memory_storage *ms;
    struct raft *r;
    /* Applied entries (the "state machine"), in order. */
    struct tc_applied *applied;
    size_t n_applied, cap_applied;
    raft_index applied_index;      /* last index applied (entries or snapshot) */
    /* Read states received, in order. */
    struct raft_read_state *reads;
    size_t n_reads, cap_reads;
    /* Counters. */
    uint64_t msgs_sent;
    uint64_t readies;
    uint64_t snapshots_installed;
    /* Last snapshot data installed (copied), for checks. */
    unsigned char *snap_data;
    size_t snap_len;
};

/* A message in flight (deep copy). */
struct tc_msg {
    struct raft_message m;
    struct raft_entry *ents;
    struct raft_snapshot *snap;
};

/* Optional hook called for every Ready handled by tc_process (after persisting and
 * before advance). */
typedef void (*tc_ready_fn)(void *arg, int slot, const struct raft_ready *rd);

/* Optional hook: return false to drop the message. */
typedef bool (*tc_filter_fn)(void *arg, const struct raft_message *m);

struct test_cluster {
    struct tc_node nodes[TC_MAX_NODES];
    struct raft_config cfg;        /* template: id/storage/applied set per node */
    const struct raft_allocator *alloc; /* for the rafts (NULL = default); set after
                                           tc_init, used by later (re)starts */
    uint64_t seed;
    uint64_t prng;
    /* Network */
    struct tc_msg *q;
    size_t q_head, q_len, q_cap;
    bool cut[TC_MAX_NODES][TC_MAX_NODES];  /* cut[i][j]: i -> j dropped */
    uint32_t drop_per_mille;       /* random loss */
    tc_filter_fn filter;
    void *filter_arg;
    tc_ready_fn on_ready;
    void *on_ready_arg;
    /* Auto-snapshot: after applying, if applied - snapshot index >= this, create a
     * snapshot of the applied state and compact (0 = never). */
    raft_index snapshot_every;
    raft_index compact_keep;       /* entries kept behind the snapshot when compacting */
    /* Dropped SNAPSHOT messages are always reported (raft_report_snapshot(false));
     * delivered ones are reported as successful only if this is set. */
    bool report_snapshot_success;
    bool unreported_snapshot_drops; /* a host that reports no outcome at all */
    uint64_t delivered, dropped;
    /* Every (term, leader) observed, to check election safety over time. */
    struct tc_term_leader { raft_term term; raft_id id; } *leaders;
    size_t n_leaders, cap_leaders;
    int error;                     /* first unexpected raft error seen (0 if none) */
};

/* Default template: election_tick 10, heartbeat_tick 1, pre_vote and check_quorum
 * off, max_inflight 64, max_size_per_msg 1 MiB. */
void tc_default_config(struct raft_config *cfg);

/* Creates n voters with ids 1..n (all knowing the full configuration).  cfg may be
 * NULL (defaults).  Returns 0 or a raft error code. */
int tc_init(struct test_cluster *tc, int n, const struct raft_config *cfg, uint64_t seed);
/* Like tc_init, but every node starts from the bootstrap snapshot at index 1
 * (raft_memory_storage_bootstrap), so that nodes added later with an empty storage
 * can join. */
int tc_init_bootstrap(struct test_cluster *tc, int n, const struct raft_config *cfg,
                      uint64_t seed);
/* Adds node `slot` with replica `id` and an initial configuration (NULL = empty:
 * it will learn everything from the leader). */
int tc_add_node(struct test_cluster *tc, int slot, raft_id id,
                const struct raft_conf_state *initial);
void tc_destroy(struct test_cluster *tc);

/* Slot of a replica id, -1 if none. */
int tc_slot(const struct test_cluster *tc, raft_id id);

/* Handles every pending Ready of node i (persist, queue messages, apply, advance). */
int tc_process(struct test_cluster *tc, int i);
/* Delivers one queued message (after processing all Readies); false if none. */
bool tc_deliver_one(struct test_cluster *tc);
/* Processes and delivers until nothing is pending (bounded by max_steps messages,
 * 0 = 100000).  Returns the number of messages delivered. */
size_t tc_stabilize(struct test_cluster *tc, size_t max_steps);
/* Ticks every running node once (no delivery). */
void tc_tick(struct test_cluster *tc);
/* n times: tick all, then stabilize. */
void tc_tick_stabilize(struct test_cluster *tc, int n);
/* Drops every queued message. */
void tc_drop_queue(struct test_cluster *tc);

/* Makes node i campaign and stabilizes; returns 0 if it became leader. */
int tc_elect(struct test_cluster *tc, int i);
/* Slot of the leader with the highest term among running nodes, -1 if none. */
int tc_leader(const struct test_cluster *tc);

/* Network control. */
void tc_cut(struct test_cluster *tc, int from, int to);          /* one direction */
void tc_isolate(struct test_cluster *tc, int i);                 /* both directions */
void tc_partition(struct test_cluster *tc, const int *side, int n_side); /* side vs rest */
void tc_heal(struct test_cluster *tc);

/* Crash: discards the raft (unpersisted state is lost), keeps storage. */
void tc_crash(struct test_cluster *tc, int i);
/* Restart from storage (applied index = last applied before the crash). */
int tc_restart(struct test_cluster *tc, int i);
/* Node i loses its storage (a disk lost, outside Raft's fault model) and starts
 * again empty, with configuration `initial` (NULL = none). */
int tc_lose_storage(struct test_cluster *tc, int i, const struct raft_conf_state *initial);

/* Proposes a NUL-free string on node i; returns raft_propose's result. */
int tc_propose(struct test_cluster *tc, int i, const char *s, raft_index *index);

/* Queue inspection: number of queued messages matching type/from/to (0 = any). */
size_t tc_queued(const struct test_cluster *tc, int type, raft_id from, raft_id to);
/* k-th queued message (0 = next to be delivered), NULL if out of range. */
const struct raft_message *tc_queued_at(const struct test_cluster *tc, size_t k);
/* First queued message matching (0 = any), NULL if none. */
const struct raft_message *tc_queued_find(const struct test_cluster *tc, int type,
                                          raft_id from, raft_id to);
/* Injects a message into the queue (deep copy). */
void tc_send(struct test_cluster *tc, const struct raft_message *m);
/* Steps a message directly into node i (bypassing the network). */
int tc_step(struct test_cluster *tc, int i, const struct raft_message *m);
/* Delivers queued messages of the given type only (others stay queued, in order);
 * returns how many were delivered. */
size_t tc_deliver_type(struct test_cluster *tc, int type);

/* Safety checks over every node; return 0 if fine, else a negative code and a
 * description in buf.
 *   - state machine safety: no two nodes applied different entries at an index;
 *   - applied entries are contiguous per node;
 *   - election safety: at most one leader per term, ever (from every Ready seen);
 *   - log matching: stored logs that agree at an index agree on everything before. */
int tc_check_safety(const struct test_cluster *tc, char *buf, size_t len);

/* Whether node i applied an entry with data s (NUL-free string). */
bool tc_applied_contains(const struct test_cluster *tc, int i, const char *s);
/* Number of NORMAL non-empty entries applied by node i. */
size_t tc_applied_commands(const struct test_cluster *tc, int i);

#endif /* MULTIRAFT_TEST_CLUSTER_H */
