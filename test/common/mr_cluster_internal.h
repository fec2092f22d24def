/*
 * mr_cluster_internal.h — what the files of the in-process cluster share
 * (mr_cluster.h is the interface): the per-node model of what its host persisted,
 * the cluster's state, and small helpers.
 *   mr_cluster.c        the cluster: nodes, their batches, the network, time
 *   mr_cluster_store.c  the persisted model and the storage callbacks on it
 *   mr_cluster_check.c  what tests read back, and the cross-node safety checks
 */
#ifndef MULTIRAFT_MR_CLUSTER_INTERNAL_H
#define MULTIRAFT_MR_CLUSTER_INTERNAL_H

#include "mr_cluster.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uthash.h>

/* Test code: allocation failures abort. */
static inline void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (p == NULL)
        abort();
    return p;
}

static inline void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (q == NULL)
        abort();
    return q;
}

static inline void *xdup(const void *p, size_t n)
{
    void *q = xmalloc(n);
    if (n > 0)
        memcpy(q, p, n);
    return q;
}

#define PUSH(arr, n, cap, item)                                              \
    do {                                                                     \
        if ((n) == (cap)) {                                                  \
            (cap) = (cap) ? (cap) * 2 : 8;                                   \
            (arr) = xrealloc((arr), (cap) * sizeof *(arr));                  \
        }                                                                    \
        (arr)[(n)++] = (item);                                               \
    } while (0)

/* ------------------------------------------------------------ state */

/* The model of what a node's host persisted: st_* (mr_cluster_store.c). */

struct st_entry {
    raft_term term;
    raft_index index;
    uint8_t type;
    uint32_t len;
    unsigned char *data;
};

struct st_dedup {
    UT_hash_handle hh;
    raft_index index;
    uint16_t len;
    unsigned char id[];
};

struct st_group {
    UT_hash_handle hh;
    mr_group_id id;
    bool has_meta;             /* false: only dedup records kept (MR_GW_KEEP_DEDUP) */
    raft_id replica;
    struct raft_hard_state hs;
    raft_id *voters, *learners;
    uint32_t n_voters, n_learners;
    raft_index applied, ls_index;
    raft_term ls_term;
    unsigned char *state;
    size_t state_len;
    struct st_entry *log;
    size_t n_log, cap_log;
    struct st_dedup *dedup;
};

struct st_tomb {
    UT_hash_handle hh;
    mr_group_id id;
    raft_id min;
    raft_index applied;        /* mr_tombstone.applied */
    uint32_t incarnation;      /* mr_tombstone.incarnation (each record holds the
                                  whole tombstone: the last one wins) */
};

struct st_snapmark {
    UT_hash_handle hh;
    mr_group_id id;
};

struct rec_completion {
    uint64_t token;
    struct mr_completion c;
};

/* The host's tables (events aside: the slot keeps those in one list). */
struct st_store {
    struct st_group *groups;
    struct st_tomb *tombs;
    struct st_snapmark *snaps;
};

/*
 * Durability.  The host (src/pg/worker_batch.c) commits a batch that does not
 * need a flush (mr_batch.must_sync false) without waiting for its WAL flush, and
 * the WAL is sequential: the next synchronous commit makes every earlier one
 * durable too.  So each node has two stores:
 *   live     what its tables hold: every committed batch.  The node's storage
 *            callbacks (inside mr_ready) and the tests' queries read it, as SQL
 *            in the same database would.
 *   durable  what survives a crash: the batches up to the last synchronous one.
 * The batches committed since then wait, copied, in `unflushed`, in order; a
 * synchronous batch applies them to `durable`, then itself.  A crash drops them:
 * `live` becomes a copy of `durable`, and the events past n_durable_events leave
 * the list for `lost` (they were visible, and a reader may have seen them, but no
 * consumer took them: a consumer's commit would have flushed them).
 */
struct mrc_nodeslot {
    struct mrc_cluster *c;
    mr_node_id id;
    struct mr_node *n;
    struct st_store live, durable;
    struct mr_batch *unflushed;    /* owned copies: groups, dedup, tombstones */
    size_t n_unflushed, cap_unflushed;
    struct mrc_event *events;      /* the events table: durable, then committed */
    size_t n_events, cap_events;
    size_t n_durable_events;
    struct mrc_event *lost;        /* events of batches lost in crashes */
    size_t n_lost, cap_lost;
    size_t lost_batches;           /* batches lost in crashes */
    struct rec_completion *comps;
    size_t n_comps, cap_comps;
    unsigned char *blob;
    size_t blob_cap;
    bool crash_armed;          /* mrc_crash_in_next_batch */
    bool crash_unflushed;      /* mrc_crash_after_unflushed */
};

struct inflight {
    uint64_t at;
    mr_node_id from, to;
    struct mr_envelope env;
};

struct leader_rec {
    UT_hash_handle hh;
    struct {
        mr_group_id group;
        raft_term term;
    } key;
    mr_node_id node;
};

struct mrc_cluster {
    struct mrc_options o;
    uint64_t now;
    uint64_t starts;           /* node starts so far: each one's session epoch */
    uint64_t prng;
    struct mrc_nodeslot nodes[MRC_MAX_NODES + 1];
    bool blocked[MRC_MAX_NODES + 1][MRC_MAX_NODES + 1];
    bool stalled[MRC_MAX_NODES + 1];
    uint64_t sent[MRC_MAX_NODES + 1][MRC_MAX_NODES + 1];
    uint64_t sent_empty[MRC_MAX_NODES + 1][MRC_MAX_NODES + 1];
    struct inflight *net;
    size_t n_net, cap_net;
    struct leader_rec *leaders;
    void (*observer)(void *arg, mr_node_id node, const struct mr_batch *b);
    void *observer_arg;
    void (*visited)(void *arg, mr_node_id node, const mr_group_id *groups, size_t n);
    void *visited_arg;
    size_t violations;
    char first_violation[256];
    uint64_t restores;         /* nodes restored after mr_ready failed (MR_ENOMEM) */
    bool (*drop_message)(void *arg, mr_node_id from, mr_node_id to,
                         const struct raft_message *m);
    void *drop_arg;
};

/* Per group, an index (the last one seen), in a uthash by group. */
struct group_mark {
    UT_hash_handle hh;
    mr_group_id group;
    raft_index index;
};

/* ------------------------------------------------------------ mr_cluster.c */

/* Records a violation (the first one's text is kept for mrc_check). */
void mrc_violation(struct mrc_cluster *c, const char *msg);
/* The group's mark, made with index `init` (*made set) if it had none. */
struct group_mark *mrc_group_mark(struct group_mark **marks, mr_group_id group,
                                  raft_index init, bool *made);
void mrc_group_marks_free(struct group_mark **marks);

/* ------------------------------------------------------------ mr_cluster_store.c */

/* The group in the node's live store (what its tables hold now). */
struct st_group *mrcs_find(const struct mrc_nodeslot *s, mr_group_id id);
/* One transaction of the host: everything in the batch, atomically; committed
 * without waiting for its flush unless b->must_sync (or o.sync_every_batch). */
void mrcs_persist_batch(struct mrc_nodeslot *s, const struct mr_batch *b);
/* The node crashed: what was committed since the last flush is gone. */
void mrcs_crash(struct mrc_nodeslot *s);
void mrcs_free(struct mrc_nodeslot *s);
/* The storage callbacks of multiraft.h, answered from the model (user: the slot). */
bool mrcs_lookup(void *user, mr_group_id group, const void *cmd, size_t len,
                 raft_index *first);
bool mrcs_blob_ok(void *user, mr_group_id group, const void *blob, size_t len);
int mrcs_snapshot(void *user, mr_group_id group, raft_index index, const void **data,
                  size_t *len);

#endif /* MULTIRAFT_MR_CLUSTER_INTERNAL_H */
