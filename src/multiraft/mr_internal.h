/*
 * mr_internal.h — private state of the multi-raft layer, shared by
 * src/multiraft/ only.  The public API is multiraft.h.
 */
#ifndef MULTIRAFT_MR_INTERNAL_H
#define MULTIRAFT_MR_INTERNAL_H

#include "multiraft.h"

#include <string.h>

/* uthash through the node's allocator: every function that adds to or deletes from
 * a hash declares MR_HASH_CTX(node) first (no globals, as the conventions demand). */
#define HASH_NONFATAL_OOM 1
#define uthash_malloc(sz) mr_hash_malloc(mr_hash_alloc_ctx, (sz))
#define uthash_free(p, sz) mr_hash_free(mr_hash_alloc_ctx, (p))
#define uthash_nonfatal_oom(e) do { mr_hash_oom = 1; } while (0)
#define MR_HASH_CTX(node)                                                    \
    const struct raft_allocator *mr_hash_alloc_ctx = &(node)->a;            \
    int mr_hash_oom = 0;                                                     \
    (void)mr_hash_alloc_ctx;                                                 \
    (void)mr_hash_oom
#include <uthash.h>

void *mr_hash_malloc(const struct raft_allocator *a, size_t n);
void mr_hash_free(const struct raft_allocator *a, void *p);

/* --------------------------------------------------------------- small parts */

/* A replica id -> node id pair of a group's replica map. */
struct mr_replica {
    raft_id id;
    mr_node_id node;
};

/* A command id applied in the batch being built (per group). */
struct mr_cmd {
    UT_hash_handle hh;
    raft_index index;
    uint16_t len;
    unsigned char id[];
};

enum mr_waiter_state {
    MR_W_QUEUED = 0,     /* to be (re)submitted to the core at the next service */
    MR_W_SENT = 1,       /* proposed / forwarded; outcome awaited until retry_at */
    MR_W_APPLY_WAIT = 2  /* read: index known, waiting for applied >= index */
};

struct mr_waiting_id;

/* One pending request of a group (mr_waiters.c). */
struct mr_waiter {
    struct mr_waiter *next;   /* g->waiters, in the order made */
    struct mr_waiter *prev;   /* ... the head's prev is the tail */
    struct mr_waiter *same;   /* the next waiter with the same command id */
    struct mr_waiting_id *id_entry; /* its entry in g->x->waiting_ids (NULL: none) */
    uint64_t token;
    uint64_t deadline;        /* tick; 0 = none */
    uint64_t retry_at;        /* tick at which a SENT request is resubmitted */
    uint64_t queued_at;       /* tick the request was made */
    raft_index gen_from;      /* generated id: the commit index its bound counts from */
    uint64_t gen_seq;         /* generated id: its number in this node's session
                                 (0: not one of this node's generated commands) */
    uint64_t read_ctx;        /* read, and a transfer's confirmation: context given
                                 to the core's read index */
    raft_index index;         /* read: read index; promotion of a learner: the commit
                                 index it must reach first (0: not yet looked at) */
    uint8_t kind;             /* enum mr_request_kind */
    uint8_t state;            /* enum mr_waiter_state */
    uint8_t change_type;      /* conf change */
    bool internal;            /* no completion (leader-side forwarded conf change) */
    bool id_generated;        /* command or conf change: the host made the id for this
                                 call, so no copy of the request can exist before
                                 this one */
    bool held;                /* was held back for batching (counted once) */
    bool confirming;          /* transfer: SENT is the read that confirms the target
                                 leads, not the transfer (mr_request.c) */
    mr_node_id node;          /* conf change / transfer target */
    uint16_t cmd_len;
    unsigned char *cmd;       /* command id (points into data for commands) */
    unsigned char *data;      /* encoded NORMAL entry (command, removal) or the
                                 conf-change payload */
    size_t data_len;
};

#define MR_NOT_ACTIVE UINT32_MAX
/* How long a woken replica, follower or pre-candidate, refuses PreVotes for the
 * sake of a leader replica it has not heard from, in election timeouts
 * (mr_lease_before_vote): its own campaign (within two) plus a round trip for that
 * leader's answer, with room to spare. */
#define MR_LEASE_WAKE_TIMEOUTS 4u

/* Group flags. */
#define MR_G_DIRTY     0x0001u  /* in node->dirty: visit at the next mr_ready */
#define MR_G_CREATED   0x0002u  /* next write carries MR_GW_CREATED */
#define MR_G_META      0x0004u  /* meta row changed since the last write */
#define MR_G_COMPACTED 0x0008u  /* log rows <= log_start_index to delete */
#define MR_G_GONE      0x0010u  /* removed in the batch being built: freed at advance */
#define MR_G_QREQ      0x0020u  /* a MR_HB_QUIESCE heartbeat was received */
#define MR_G_BOOTSTRAP 0x0040u  /* next write carries the bootstrap entry (index 1) */
#define MR_G_KEEP_DEDUP 0x0080u /* the REMOVED write keeps the dedup records */
#define MR_G_REPROBE   0x0100u  /* in node->reprobes (mr_unreached.c) */
#define MR_G_LAGGING   0x0200u  /* in a dead peer's lagging list (mr_quiesce.c) */
#define MR_G_RESTORED  0x0400u  /* restored asleep, in node->wake_queue until it
                                   wakes (mr_restart.c) */
#define MR_G_CATCH_UP  0x0800u  /* in node->wake_queue to catch up a peer heard
                                   again (mr_restart.c): queued once */
#define MR_G_NO_QUORUM 0x1000u  /* asleep without a leader, no quorum of its voters
                                   heard (mr_quiesce.c): woken when one of them is */

/* A proposer's session in a group's replicated state (dissertation §6.3; the
 * commands with a generated id, mr_session.c).  Every seq below floor is decided —
 * applied, or never to be applied — and seqs holds the ones applied above it. */
struct mr_session {
    mr_node_id node;
    uint64_t epoch;           /* the proposer's mr_config.session_epoch */
    uint64_t floor;
    raft_index expires;       /* largest bound of its applied commands: past it no
                                 copy of them can apply, and the record goes */
    uint32_t n_seqs, cap_seqs;
    uint64_t *seqs;           /* sorted, all > floor */
};

/* Rarely needed per-group state, allocated on demand and freed when the group
 * quiesces: keeps quiesced groups small. */
struct mr_group_extra {
    /* MR_HB_QUIESCE received: quiesce once we match it. */
    raft_term q_term;
    raft_id q_from;
    raft_index q_commit;
    /* Woken from quiescence as a follower of this leader replica and not heard
     * from it since: its node's liveness still stands in for its heartbeats
     * (the leader lease of a quiesced group, mr_lease_before_vote).  0 = none.
     * lease_term: the term it followed that leader in. */
    raft_id lease_leader;
    raft_term lease_term;
    uint64_t lease_at;        /* tick it woke with that lease (mr_lease_before_vote) */
    /* Staggered campaign (PreVote) after the leader's node went silent, retried
     * every heartbeat interval until campaign_until (mr_campaign_tick). */
    uint64_t campaign_at;
    uint64_t campaign_until;
    /* Leader: stays awake until this tick (mr_quiesce_tick), so that CheckQuorum
     * judges it — a voter asked for votes, or a peer died and it hears no quorum
     * alive (mr_leader_stay_awake). */
    uint64_t awake_until;
    /* Since the leader replica campaign_from's node was declared down in term
     * campaign_term (mr_wake_led_by): the voter this one holds its own timer back
     * for (RAFT_NONE: none, or itself campaigns), and the highest voter id passed
     * over for a log behind this replica's (mr_prevote_seen). */
    raft_term campaign_term;
    raft_id campaign_from;
    raft_id held_for;
    raft_id passed;
    uint64_t held_until;      /* tick the campaign of held_for may last until */
    /* The group's waiters by command id (mr_waiters.c): a group with waiters does
     * not quiesce, so this is here only while the group is active. */
    struct mr_waiting_id *waiting_ids; /* uthash */
    /* Bytes this leader keeps past the retention window for lagging members
     * (mr_group_compact); summed in node->retained.  Such a group has a member
     * behind, so it does not quiesce. */
    uint64_t retained;
};

struct mr_group {
    UT_hash_handle hh;
    mr_group_id id;
    raft_id replica_id;
    struct raft *raft;
    struct raft_memory_storage *ms; /* NULL while quiesced with an empty log */
    struct mr_group_extra *x;        /* NULL unless needed (mr_group_extra()) */
    struct mr_replica *map;   /* replica map, sorted by id */
    uint32_t n_map, cap_map;
    raft_id next_replica_id;  /* replicated: max replica id in conf changes + 1 */
    /* The highest replica id named by a conf change this replica applied (0: none
     * known).  Unlike next_replica_id, which may also count proposed ids, it is
     * exact as of the applied index: replica_removed() (mr_receive.c) trusts it. */
    raft_id conf_seen;
    mr_node_id *boot;         /* creator only: members still to add */
    uint32_t n_boot;
    uint32_t active_pos;      /* index in node->active, MR_NOT_ACTIVE if quiesced */
    uint16_t idle;            /* consecutive quiescable ticks (saturates) */
    uint8_t prev_role;
    uint16_t flags;           /* MR_G_* */
    raft_id prev_leader;
    raft_term elected_term;   /* term of the last leader_elected event */
    raft_term synced_term;    /* term known durable (restored, or advanced past) */
    raft_index snap_index;    /* last snapshot installed since this node started */
    struct mr_waiter *waiters;
    struct mr_cmd *applied_cmds; /* command ids applied in the current batch */
    struct mr_session *sessions; /* replicated: proposers' sessions */
    uint32_t n_sessions;
    /* Which group of this id: a random value its creator chose (never 0), learned
     * by a replica made lazily from the message that made it, carried by every
     * message and heartbeat (mr_receive.c refuses another).  0: unknown (state
     * stored before it existed): messages of any incarnation are taken. */
    uint32_t incarnation;
    raft_index applied;       /* last index applied by the layer (events emitted) */
    raft_index announced;     /* this node announced the entries up to this one
                                 already (an earlier replica: mr_tombstone; before
                                 a crash: mr_restore_announced): no event again */
    raft_index log_start_index;
    raft_term log_start_term;
    /* The applied index of the meta row (as of the last write that carried it,
     * or the restore): the group's may run ahead of it by up to MR_META_LAG
     * entries (mr_apply.c); term and vote never (handle_ready). */
    raft_index meta_applied;
};

/* Entries the applied index (and with it the commit index) may run ahead of the
 * meta row.  Both are volatile in Raft (§3, Figure 3.1): after a restart the
 * layer re-applies the entries past the stored applied index from the row's
 * state (sessions included), making the same decisions, and the host's highest
 * stored event index (mr_restore_announced; the events are written in the same
 * transaction as the rest of their batch) makes that emit nothing twice, as
 * after an asynchronous commit lost in a crash (mr_ready).  Writing the meta row
 * only every MR_META_LAG entries saves a row update per group per round when
 * rounds spread over many groups; the price is at most this many entries
 * re-applied per group after a crash.  The row is still written at once for
 * everything else it holds: term, vote, configuration, log start, the replica
 * map (the sessions of generated ids, also in the layer's state, lag too). */
#define MR_META_LAG 64

/* mr_config.restart_wakes_per_tick when 0 (mr_restart.c). */
#define MR_RESTART_WAKES_DEFAULT 1000u

/* Tombstone (group -> minimum replica id allowed here). */
struct mr_tomb {
    UT_hash_handle hh;
    mr_group_id group;
    raft_id min_replica;
    raft_index removed_at;    /* index of the removal entry (0 unknown: restored) */
    raft_index announced;     /* mr_tombstone.applied */
    uint32_t incarnation;     /* mr_tombstone.incarnation */
};

/* A growable array of fixed-size elements. */
struct mr_vec {
    void *data;
    size_t len, cap;
};

/* Another node: liveness and the outbox of the next envelope. */
struct mr_peer {
    mr_node_id id;
    bool heard;               /* something arrived from it at least once */
    bool dead;                /* silent for dead_ticks */
    bool just_died;           /* became dead in this tick */
    bool urgent_hb;           /* a heartbeat (resp) with a read context is buffered */
    bool sent_ever;
    uint64_t last_heard;
    uint64_t last_sent;
    struct mr_vec msgs;       /* struct mr_message: this batch only, the n_early
                                 ones that may leave before persisting first */
    size_t n_early;
    struct mr_vec hbs;        /* struct mr_heartbeat: buffered until the flush */
    struct mr_vec resps;      /* struct mr_heartbeat */
    struct mr_vec notices;    /* struct mr_notice: removal notices still repeated */
    struct mr_vec lagging;    /* mr_group_id: groups led here that quiesced while this
                                 node, dead, lagged behind, and replicas asleep
                                 without a quorum: woken when it is heard again
                                 (mr_quiesce.c) */
    size_t lagging_distinct;  /* lagging.len after its last removal of repeats */
    struct mr_peer_counters pc;
};

/* "Group removed" notice for a replica on a peer, repeated with every heartbeat
 * flush in [from, until] (a member cut off when the removal committed, with its
 * replica quiesced, would otherwise never learn it). */
struct mr_notice {
    struct mr_heartbeat hb;
    uint64_t from;            /* first tick to send it: members that heard the
                                 removal apply it from the log first (with the
                                 entries before it) */
    uint64_t until;
};

/* A group whose raft Ready is in the outstanding batch. */
struct mr_outstanding {
    struct mr_group *g;
    struct raft_ready rd;
    bool has_rd;
};

/* A snapshot sent in the outstanding batch (reported to the core at advance). */
struct mr_snap_sent {
    mr_group_id group;
    raft_id to;
    bool ok;
};

struct mr_node {
    struct raft_allocator a;
    struct mr_config cfg;     /* defaults filled in */
    uint64_t now;
    uint64_t prng;
    bool busy;                /* between mr_ready and mr_advance */
    bool stopped;
    bool ready_incomplete;    /* part of the batch is lost (out of memory): mr_ready
                                 fails until the host restores the node */
    bool hb_flush_due;
    uint64_t next_read_ctx;
    uint64_t gen_seq;         /* last seq of this node's session (mr_session.c): one
                                 sequence for all groups, so a replica made again
                                 here never reuses a number its group has seen */
    struct mr_group *groups;  /* uthash by id */
    struct mr_tomb *tombs;    /* uthash by group id */
    size_t n_groups;
    struct mr_group **active;
    uint32_t n_active, cap_active;
    struct mr_vec dirty;      /* struct mr_group * */
    /* Batching by holding across groups (mr_hold.c): the groups whose commands
     * this node's current round proposed, and the groups holding commands. */
    struct mr_vec round_groups;  /* mr_group_id */
    struct mr_vec held_groups;   /* mr_group_id */
    bool round_in_flight;        /* judged at each mr_ready */
    uint64_t round_started_at;   /* tick the node's current round began */
    /* Sleeping replicas no leader reached, asked again at doubling intervals
     * (mr_unreached.c), and the earliest tick one is due. */
    struct mr_vec reprobes;      /* struct mr_reprobe */
    uint64_t reprobe_due;
    /* Groups waiting for their turn to wake (mr_restart.c): restored replicas that
     * led their group before the restart, groups led here whose member on a peer
     * heard again lags, the other restored replicas; each read from its position
     * on, freed once read. */
    struct mr_vec wake_queue[3]; /* mr_group_id */
    size_t wake_pos[3];
    struct mr_peer **peers;
    uint32_t n_peers, cap_peers;
    /* Output accumulated for the next batch. */
    struct mr_vec events;       /* struct mr_event */
    struct mr_vec dedup;        /* struct mr_dedup_record */
    struct mr_vec tombstones;   /* struct mr_tombstone */
    struct mr_vec completions;  /* struct mr_completion */
    struct mr_vec writes;       /* struct mr_group_write */
    struct mr_vec envelopes;    /* struct mr_envelope */
    struct mr_vec outstanding;  /* struct mr_outstanding */
    struct mr_vec snaps_sent;   /* struct mr_snap_sent */
    struct mr_vec arena;        /* void *: memory freed at advance */
    struct mr_vec gone;         /* struct mr_group *: freed at advance */
    struct mr_counters c;
    mr_group_id last_conflict;   /* group of the last counted conflict (mr_receive.c) */
    uint64_t retained;           /* sum of the groups' x->retained */
};

/* --------------------------------------------------------------- mr_util.c */

void *mr_alloc(struct mr_node *n, size_t size);
void *mr_realloc(struct mr_node *n, void *p, size_t size);
void mr_free(struct mr_node *n, void *p);
/* Appends one element (copied) and returns it, NULL on ENOMEM. */
void *mr_vec_push(struct mr_node *n, struct mr_vec *v, size_t elem, const void *item);
void mr_vec_free(struct mr_node *n, struct mr_vec *v);
/* Memory released at mr_advance (batch-owned copies). */
void *mr_arena_alloc(struct mr_node *n, size_t size);
void mr_arena_reset(struct mr_node *n);
uint64_t mr_rand(struct mr_node *n);
/* The result of a core call that steps a replica's state (a message, a tick, a
 * campaign, a Ready, an advance).  The core leaves a replica consistent when it
 * runs out of memory (a message not sent, at worst), but its transitions are
 * many, and one found half-made once elected a replica alone (test_raft_oom.c):
 * once memory ran out in one, the batch fails and the host rebuilds the node from
 * storage (ready_incomplete; a Ready that fails for any reason does too,
 * mr_ready.c).  Requests (proposals, reads, transfers) are not
 * steps: the core refuses them whole, and the service pass tries them again. */
int mr_core_step(struct mr_node *n, int rc);
/* SplitMix64's finaliser: a well-spread 64-bit hash of x. */
uint64_t mr_mix64(uint64_t x);

/* -------------------------------------------------------------- mr_codec.c */

enum { MR_KIND_COMMAND = 1, MR_KIND_REMOVE = 2, MR_KIND_CONF_REQUEST = 3,
       MR_KIND_GENERATED = 4, MR_KIND_CONF_REFUSED = 5 };
/* Kind 5's payload: one byte, why the leader refused a forwarded conf request. */
enum { MR_REFUSED_BADCONF = 1, MR_REFUSED_NOTMEMBER = 2 };
#define MR_ENTRY_HEADER 3u       /* u8 kind | u16 command id length */
#define MR_ENTRY_GEN_HEADER 39u  /* ... | u64 expires | u32 node | u64 epoch |
                                    u64 seq | u64 floor (kind 4) */
#define MR_CONTEXT_HEADER 6u     /* u32 node | u16 command id length */

struct mr_entry_view {
    uint8_t kind;
    raft_index expires;       /* kind 4; 0 otherwise */
    struct mr_session_ref {   /* kind 4: the proposer's session */
        mr_node_id node;
        uint64_t epoch, seq, floor;
    } session;
    const unsigned char *cmd;
    uint16_t cmd_len;
    const unsigned char *payload;
    size_t payload_len;
};
struct mr_context_view {
    mr_node_id node;
    const unsigned char *cmd;
    uint16_t cmd_len;
    const unsigned char *payload;
    size_t payload_len;
};
struct mr_conf_request_view {
    uint8_t change_type;
    mr_node_id node;
    const unsigned char *payload;
    size_t payload_len;
};

void mr_put_u16(unsigned char *p, uint16_t v);
void mr_put_u32(unsigned char *p, uint32_t v);
void mr_put_u64(unsigned char *p, uint64_t v);
uint16_t mr_get_u16(const unsigned char *p);
uint32_t mr_get_u32(const unsigned char *p);
uint64_t mr_get_u64(const unsigned char *p);

/* NORMAL entry data; returns size written (buf NULL: size needed). */
size_t mr_entry_encode(uint8_t kind, const void *cmd, uint16_t cmd_len,
                       const void *payload, size_t payload_len, unsigned char *buf);
/* Kind 4: a generated-id command with its bound and its proposer's session. */
/* (Re)writes a kind-4 entry's bound and session fields in place. */
void mr_entry_set_generated(unsigned char *buf, raft_index expires,
                            const struct mr_session_ref *ref);
size_t mr_entry_encode_generated(raft_index expires, const struct mr_session_ref *s,
                                 const void *cmd, uint16_t cmd_len,
                                 const void *payload, size_t payload_len,
                                 unsigned char *buf);
bool mr_entry_decode(const void *data, size_t len, struct mr_entry_view *out);
size_t mr_context_encode(mr_node_id node, const void *cmd, uint16_t cmd_len,
                         const void *payload, size_t payload_len, unsigned char *buf);
bool mr_context_decode(const void *data, size_t len, struct mr_context_view *out);
/* Kind-3 payload: u8 change_type | u32 node | payload. */
size_t mr_conf_request_encode(uint8_t change_type, mr_node_id node, const void *payload,
                              size_t payload_len, unsigned char *buf);
bool mr_conf_request_decode(const void *data, size_t len,
                            struct mr_conf_request_view *out);
/* The group's replicated state: u8 version | u64 next_replica_id | u64 conf_seen
 * (version 3) | u32 n | n x (u64 replica, u32 node) | u32 n_boot | n_boot x u32
 * node | the sessions (version 2, mr_sessions_encode). */
size_t mr_state_encode(const struct mr_group *g, unsigned char *buf);
/* The same with the sessions given encoded (a snapshot's, mr_sessions_copy). */
size_t mr_state_encode_with(const struct mr_group *g, const void *sessions,
                            size_t sessions_len, unsigned char *buf);
/* Binds the replica of a conf change entry to the node its context names, when
 * the entry is appended here and again when it is applied.  The core counts a
 * change from its commit on, and may address the new replica in the very Ready
 * that hands the entry out committed, before the layer applies it: the map must
 * hold the binding of the entry in the log by then, not a guess of this node's
 * for a proposal that was lost (mr_conf.c). */
void mr_conf_entry_bind(struct mr_node *n, struct mr_group *g, const struct raft_entry *e);
/* Decodes into g; false if malformed, and then neither the map nor the sessions
 * have changed (short of memory running out half-way).  own_row: the node's own
 * stored state (restart), which also restores the creator's members still to add
 * and conf_seen; otherwise a snapshot's, whose configuration is snap_conf.  The map
 * is merged: entries already known are kept, except that the ids of snap_conf take
 * the sender's binding — the sender applied the changes that added them, while
 * this node's own may be a guess for a proposal that never committed (mr_conf.c
 * binds an id when it proposes, and the id can be allocated again for another
 * node). */
bool mr_state_decode(struct mr_node *n, struct mr_group *g, const void *data, size_t len,
                     bool own_row, const struct raft_conf_state *snap_conf);
/* Whether a node's own stored state says `replica` led its group in `term`. */
bool mr_state_led(const void *data, size_t len, raft_id replica, raft_term term);
/* Snapshot data in SNAPSHOT messages: u32 state_len | state | host blob. */
bool mr_snapshot_split(const void *data, size_t len, const void **state,
                       size_t *state_len, const void **blob, size_t *blob_len);
/* Whether a received snapshot's data is whole: its state decodes and the host
 * takes its blob (mr_storage_callbacks.snapshot_blob_ok).  Checked before the core
 * sees the snapshot: once the core installs it, its log is gone, so data that then
 * failed to decode would leave the replica without the sessions or the dedup
 * records of everything the snapshot covers (commands could apply twice). */
bool mr_snapshot_check(const struct mr_node *n, mr_group_id group, const void *data,
                       size_t len);

/* The bootstrap entry of group g created here: index 1, term 1, add_voter(replica 1)
 * with context {this node, no command id, payload: the members still to add
 * (g->boot) as u32 node ids}.  The payload makes them part of the replicated
 * state: every replica that applies the entry takes them up (mr_apply.c), so that
 * whichever replica leads adds them, not only the creator.  Returns its size (buf
 * NULL: size needed), 0 if out of memory. */
size_t mr_bootstrap_entry(struct mr_node *n, const struct mr_group *g, unsigned char *buf);
/* Replaces g's members still to add with `count` u32 node ids at p. */
int mr_boot_set(struct mr_node *n, struct mr_group *g, const unsigned char *p, uint32_t count);

/* -------------------------------------------------------------- mr_group.c */

struct mr_group *mr_group_find(const struct mr_node *n, mr_group_id id);
struct mr_tomb *mr_tomb_find(const struct mr_node *n, mr_group_id id);
/* Moves the tombstone forward (min_replica, announced: each only grows) and
 * records the incarnation of the replica it replaces (unless 0); emit: into the
 * batch. */
int mr_tomb_set(struct mr_node *n, mr_group_id id, raft_id min_replica,
                raft_index announced, uint32_t incarnation, bool emit);
/* Creates the group object with an empty (or given) configuration; not yet in the
 * active set.  conf may be NULL.  The raft is created by mr_group_start(). */
struct mr_group *mr_group_alloc(struct mr_node *n, mr_group_id id, raft_id replica);
int mr_group_start(struct mr_node *n, struct mr_group *g, raft_index applied);
/* Unlinks from hash/active/dirty and frees everything. */
void mr_group_destroy(struct mr_node *n, struct mr_group *g);
/* Replica map. */
mr_node_id mr_map_node(const struct mr_group *g, raft_id replica);
/* Whether the node holds mr_config.max_groups replicas (no new one then). */
bool mr_groups_full(const struct mr_node *n);
int mr_map_set(struct mr_node *n, struct mr_group *g, raft_id replica, mr_node_id node);
/* The replica of `node` in the group's configuration (voter or learner), 0 if none. */
raft_id mr_member_replica(const struct mr_group *g, mr_node_id node, bool *is_learner);
/* false if g stays asleep (out of memory growing the active set; a later wake
 * retries) */
bool mr_group_wake(struct mr_node *n, struct mr_group *g);
/* Wakes g if it sleeps, counted as woken and marked for the next batch's report (its
 * status changed).  True if g is awake now; false if it stays asleep (gone, or out
 * of memory). */
bool mr_group_wake_marked(struct mr_node *n, struct mr_group *g);
void mr_group_sleep(struct mr_node *n, struct mr_group *g);
void mr_group_mark(struct mr_node *n, struct mr_group *g);
/* g->x, allocated if needed (NULL on ENOMEM); released by mr_group_extra_release()
 * when nothing in it is pending. */
struct mr_group_extra *mr_group_extra(struct mr_node *n, struct mr_group *g);
void mr_group_extra_release(struct mr_node *n, struct mr_group *g);
/* The hard state as last handed to the host (the core's, when no Ready is pending). */
void mr_group_hard_state(const struct mr_group *g, struct raft_hard_state *out);
/* Lazy creation for a message addressed to `replica` (NULL if refused). */
struct mr_group *mr_group_lazy(struct mr_node *n, mr_group_id id, raft_id replica,
                               uint32_t incarnation);
/* A new group's incarnation (mr_group.incarnation): random, never 0. */
uint32_t mr_group_new_incarnation(struct mr_node *n);
/* Drops the group here: tombstone (min replica; UINT64_MAX when the group itself
 * was removed), GROUP_REMOVED event, waiters failed (MR_EGROUP_DELETED when the
 * group was removed, mr_fail_waiters_removed when only this replica left); REMOVED
 * write.  Freed at advance if busy, else now. */
void mr_group_drop(struct mr_node *n, struct mr_group *g, raft_id tomb_min,
                   raft_index index, raft_term term);
/* Compacts the in-memory log up to min(limit, applied); marks COMPACTED. */
void mr_group_compact(struct mr_node *n, struct mr_group *g, bool quiescing);

/* ------------------------------------------------------------ mr_storage.c */

/* The core's storage interface of g (user = g), over g->ms or g's own fields. */
void mr_storage_interface(struct mr_group *g, struct raft_storage *out);
/* Rebuilds g->ms if it was released. */
int mr_storage_ensure(struct mr_node *n, struct mr_group *g);
/* Frees g->ms if the in-memory log is empty. */
void mr_storage_release(struct mr_group *g);

/* --------------------------------------------------------------- mr_peer.c */

struct mr_peer *mr_peer_get(struct mr_node *n, mr_node_id id);   /* creates */
struct mr_peer *mr_peer_find(const struct mr_node *n, mr_node_id id);
/* Whether another node is alive here: heard from, and not silent for dead_ticks. */
bool mr_node_alive(const struct mr_node *n, mr_node_id id);
/* Whether a quorum of g's voters lives on nodes alive here (this one included). */
bool mr_quorum_alive(const struct mr_node *n, const struct mr_group *g);
/* Whether the node of replica `id` of g is declared down here (silent for
 * dead_ticks after it was heard). */
bool mr_replica_node_dead(const struct mr_node *n, const struct mr_group *g, raft_id id);
/* The same, or never heard since this node started dead_ticks ago or more (not
 * for quiescence: a group quiesced behind a node never heard would not be caught
 * up when it is, mr_receive). */
bool mr_replica_node_unheard(const struct mr_node *n, const struct mr_group *g, raft_id id);
/* Routes one outgoing core message of g (copied shallowly, batch-owned). */
void mr_route_message(struct mr_node *n, struct mr_group *g, const struct raft_message *m,
                      bool early);
/* Queues a heartbeat entry (heartbeat or response) for a node. */
void mr_queue_heartbeat(struct mr_node *n, mr_node_id to, const struct mr_heartbeat *hb,
                        bool resp);
/* A heartbeat entry of g from its replica here to replica `to` (group, incarnation,
 * from, to; the rest zero, for the caller to set). */
void mr_heartbeat_of(const struct mr_group *g, raft_id to, struct mr_heartbeat *hb);
/* For the i-th progress entry of g: false when it is g's own replica or names
 * no known node; else fills *pi, its node *to and a heartbeat to it carrying
 * g's id, replica and term (the rest zero, for the caller to set). */
bool mr_follower_heartbeat(const struct mr_group *g, size_t i, struct raft_progress_info *pi,
                           mr_node_id *to, struct mr_heartbeat *hb);
/* Repeats a removal notice to the other replicas of g for a while. */
void mr_queue_removal_notices(struct mr_node *n, struct mr_group *g, raft_index index);
/* Builds the envelopes of the batch (flush of buffered heartbeats if due). */
int mr_build_envelopes(struct mr_node *n);
void mr_peers_after_send(struct mr_node *n);
bool mr_peers_have_output(const struct mr_node *n);
/* Tick part: liveness and silent-node detection. */
void mr_peers_tick(struct mr_node *n);

/* ------------------------------------------------------------ mr_request.c */

/* Submits queued requests to the core (called from mr_ready only: may look up
 * command ids through the storage callback). */
void mr_service_group(struct mr_node *n, struct mr_group *g);
/* A request arrived: the group is visited at the next mr_ready and ticks again. */
void mr_request_added(struct mr_node *n, struct mr_group *g);
/* What every request checks first: the node takes requests, the group exists here. */
int mr_request_checks(struct mr_node *n, mr_group_id group, struct mr_group **out);
/* MR_OK for a command id of 1 .. MR_MAX_COMMAND_ID_LEN bytes. */
int mr_check_command_id(size_t cmd_len);
/* w was handed to the core: resubmitted after proposal_retry_ticks without outcome. */
void mr_request_sent(struct mr_node *n, struct mr_waiter *w, bool resubmit);
/* Was the command id applied in g (this batch or persisted)?  *first may hold a
 * refusal's verdict (MR_DEDUP_REFUSED): see mr_dedup_result. */
bool mr_command_applied(struct mr_node *n, struct mr_group *g, const unsigned char *cmd,
                        uint16_t cmd_len, raft_index *first);
/* What a waiter of an id whose dedup record holds `first` completes with: MR_OK and
 * the index of its commit, or the refusal's error and index 0. */
int mr_dedup_result(raft_index first, raft_index *index);
/* First application of cmd in g at `index` (or a refusal's verdict): remembered for
 * the rest of the batch and a dedup record emitted.  false if the id has a record
 * already (*first = it). */
bool mr_dedup(struct mr_node *n, struct mr_group *g, const unsigned char *cmd,
              uint16_t cmd_len, raft_index index, raft_index *first);

/* --------------------------------------------------------------- mr_conf.c */

/* Serves conf-change waiter w (the first pending one of g): completed, forwarded,
 * proposed, or left waiting (a change in flight, a learner catching up).  Returns
 * true while w is still pending: the group's later conf changes wait behind it. */
bool mr_service_conf(struct mr_node *n, struct mr_group *g, struct mr_waiter *w,
                     bool resubmit);
/* On the leader of a new group: proposes its creator's next initial member. */
void mr_service_boot(struct mr_node *n, struct mr_group *g);
/* On the leader, a follower's forwarded conf-change request (a kind-3 entry it
 * applied): queued as an internal waiter that proposes the change, unless one for
 * the same command id is queued already. */
int mr_add_internal_conf(struct mr_node *n, struct mr_group *g, uint8_t change_type,
                         mr_node_id node, const unsigned char *cmd, uint16_t cmd_len,
                         const unsigned char *payload, size_t payload_len);
/* A kind-5 entry applied at `index`: the leader refused the request with this command
 * id.  The refusal becomes the id's dedup record (MR_DEDUP_REFUSED), unless the id
 * committed, and every waiter of the id fails with it. */
void mr_conf_refused(struct mr_node *n, struct mr_group *g, const struct mr_entry_view *v,
                     raft_index index);

/* ------------------------------------------------------------ mr_waiters.c */

void mr_complete(struct mr_node *n, struct mr_group *g, struct mr_waiter *w, int result,
                 raft_index index);
/* Removes w from g->waiters (and the index) and frees it. */
void mr_waiter_unlink(struct mr_node *n, struct mr_group *g, struct mr_waiter *w);
/* Completes and frees every waiter of g. */
void mr_fail_waiters(struct mr_node *n, struct mr_group *g, int result);
/* This node's replica left the group (it was removed): fails every waiter.  A
 * command or membership change that may commit in the group, which this node no
 * longer follows — sent, or under a caller's id, which an earlier call may have sent
 * — fails with MR_EREMOVED, outcome unknown (a caller told "not a member" would take
 * it for a definite failure); so does a sent group removal.  The others (generated
 * ids never sent, reads, transfers) fail with MR_ENOTMEMBER. */
void mr_fail_waiters_removed(struct mr_node *n, struct mr_group *g);
/* A new waiter at the tail of g's list (deadline_ticks 0: none). */
struct mr_waiter *mr_waiter_new(struct mr_node *n, struct mr_group *g, uint8_t kind,
                                 uint64_t token, uint32_t deadline_ticks);
/* Once w->cmd is set: files a command, conf-change or removal waiter under its
 * command id, where mr_waiters_applied finds it.  On allocation failure w is
 * unlinked and freed, and false returned. */
bool mr_waiter_index(struct mr_node *n, struct mr_group *g, struct mr_waiter *w);
/* The first waiter of `kind` filed under command id cmd, or NULL. */
struct mr_waiter *mr_waiter_find(const struct mr_group *g, uint8_t kind,
                                 const unsigned char *cmd, uint16_t cmd_len);
/* Whether node leads g, as far as this replica knows. */
bool mr_leader_is(const struct mr_group *g, mr_node_id node);
/* Per tick: deadlines and retries.  Returns true if the group needs service. */
bool mr_waiters_tick(struct mr_node *n, struct mr_group *g);
/* After a leader change: resubmit what was sent. */
void mr_waiters_requeue(struct mr_node *n, struct mr_group *g);
/* A copy of generated-id command cmd reached the log past its bound (`copy`: its
 * session fields), or was found decided before (copy NULL): completes its waiters
 * (MR_EEXPIRED, or MR_EUNKNOWN when the outcome is unknown here), or proposes a
 * waiter's command again under a new bound (mr_generated_rearm). */
void mr_waiters_expired(struct mr_node *n, struct mr_group *g, const unsigned char *cmd,
                        uint16_t cmd_len, const struct mr_session_ref *copy);
/* mr_request.c: true if w stays, its copy `copy` having expired: w was made ready
 * to be proposed again with a new seq and a bound counted from the commit index
 * now, or the copy was of a proposal of w's re-armed since. */
/* Moves w to the end of g's waiters, as if made now. */
void mr_waiter_move_to_tail(struct mr_group *g, struct mr_waiter *w);
bool mr_generated_rearm(struct mr_node *n, struct mr_group *g, struct mr_waiter *w,
                        const struct mr_session_ref *copy);
/* Completes the requests of `kind` (MR_REQ_COMMAND, _CONF_CHANGE or _REMOVE) that
 * match the applied command id: with the index of its first commit, or with its
 * refusal (an index holding MR_DEDUP_REFUSED).  Only of that kind: the removal's
 * internal id is no caller's to avoid, and a command a caller submitted under it
 * must not complete a removal waiting on this node, nor the reverse. */
void mr_waiters_applied(struct mr_node *n, struct mr_group *g, const unsigned char *cmd,
                        uint16_t cmd_len, raft_index index, uint8_t kind);
/* Transfers done, reads applied. */
void mr_waiters_progress(struct mr_node *n, struct mr_group *g);
void mr_waiters_read_state(struct mr_node *n, struct mr_group *g,
                           const struct raft_read_state *rs);

/* --------------------------------------------------------------- mr_hold.c */

/* At the start of each mr_ready: whether this node's round is still in flight;
 * when it lands, the groups that held commands are marked. */
void mr_judge_round(struct mr_node *n);
/* Whether this node's round is in flight (and holding is enabled). */
bool mr_round_in_flight(const struct mr_node *n);
/* While the round is in flight: holds queued command w of g for the next round
 * (true), unless it has waited batch_hold_ticks already (false: propose it). */
bool mr_hold_command(struct mr_node *n, struct mr_group *g, struct mr_waiter *w);
/* g's command was proposed in this node's round. */
void mr_round_note(struct mr_node *n, struct mr_group *g);
/* A follower's PROPOSE held on the leader for its next round (true) or to be
 * stepped at once (false). */
bool mr_hold_forwarded(struct mr_node *n, struct mr_group *g, const struct raft_message *m);

/* -------------------------------------------------------------- mr_apply.c */

/* Applies the committed entries of rd (events, dedup, removals). */
void mr_apply_ready(struct mr_node *n, struct mr_group *g, const struct raft_ready *rd);
struct mr_event *mr_event_push(struct mr_node *n, uint8_t type, mr_group_id group);

/* ------------------------------------------------------------ mr_session.c */

/* Most seqs a session keeps above its floor; past that the floor rises over the
 * oldest gap (the commands missing there can then never apply). */
#define MR_SESSION_MAX_SEQS 1024u

/* The dedup decision for a generated-id command at `index` (its bound already
 * checked): true if its seq is new in its session (now recorded), false if it was
 * decided before — applied, or never to be.  Drops the sessions whose bound
 * `index` has passed.  (The meta row that holds them may trail: MR_META_LAG.) */
bool mr_session_apply(struct mr_node *n, struct mr_group *g,
                      const struct mr_session_ref *ref, raft_index expires,
                      raft_index index);
/* The sessions as bytes: u32 n | n x (u32 node | u64 epoch | u64 floor |
 * u64 expires | u32 n_seqs | n_seqs x u64 seq).  Returns the size (buf NULL: size
 * needed). */
size_t mr_sessions_encode(const struct mr_group *g, unsigned char *buf);
/* Whether p holds well-formed encoded sessions; *used = their size. */
bool mr_sessions_check(const unsigned char *p, size_t len, size_t *used);
/* Replaces g's sessions with the encoded ones; *used = bytes read.  false if
 * malformed or out of memory (g unchanged). */
bool mr_sessions_decode(struct mr_node *n, struct mr_group *g, const unsigned char *p,
                        size_t len, size_t *used);
void mr_sessions_free(struct mr_node *n, struct mr_group *g);
/* The sessions as of now, encoded (mr_sessions_encode) into memory the caller
 * frees with mr_free; NULL if out of memory.  It goes with every snapshot the
 * group's memory storage takes (its data): a snapshot sent later carries the
 * sessions as of its own index, not the applied one (mr_peer.c). */
unsigned char *mr_sessions_copy(struct mr_node *n, const struct mr_group *g, size_t *len);

/* ------------------------------------------------------------ mr_quiesce.c */

/* Called per active group at tick before raft_tick: true if it quiesced. */
bool mr_quiesce_tick(struct mr_node *n, struct mr_group *g);
/* A restored follower `from` asked g's leader here (MR_HB_RESTARTED): a quiesced
 * leader whose log it matches sends it the quiesce heartbeat again. */
void mr_quiesce_answer_restarted(struct mr_node *n, struct mr_group *g, raft_id from);

/* ----------------------------------------------------------- mr_failover.c */

/* Wakes the quiesced groups whose leader lives on a silent node. */
void mr_wake_led_by(struct mr_node *n, mr_node_id dead);
/* A leader replica that may not reach a quorum (a voter asks for votes, or this
 * node hears no quorum of its members alive) wakes and stays awake for two
 * election timeouts, so that CheckQuorum judges it. */
void mr_leader_stay_awake(struct mr_node *n, struct mr_group *g);
/* Staggered campaign (if scheduled and due). */
void mr_campaign_tick(struct mr_node *n, struct mr_group *g);
/* A PreVote about to be stepped into g: a voter holding its timer for that
 * candidate, whose log is behind this replica's, passes it over. */
void mr_prevote_seen(struct mr_node *n, struct mr_group *g, const struct raft_message *m);
/* Whether a PreVote from replica `from` is refused without stepping it: g holds its
 * timer for another candidate that it still hears, whose campaign may still run. */
bool mr_hold_refuses(const struct mr_node *n, const struct mr_group *g, raft_id from);

/* -------------------------------------------------------------- mr_lease.c */

/* Before a vote request from replica `from` is stepped into g: restates the core's
 * leader lease from the leader's node liveness if g is quiesced or woke from
 * quiescence without hearing its leader since.  True if the request is to be
 * refused without stepping it (a PreVote to such a replica that timed out itself,
 * while its leader's node is heard). */
bool mr_lease_before_vote(struct mr_node *n, struct mr_group *g, raft_id from, bool pre_vote);
/* A message from replica `from` claiming leadership (append, heartbeat, snapshot)
 * was stepped into g: the group's own lease is fresh again. */
void mr_lease_heard(struct mr_group *g, raft_id from);

/* ----------------------------------------------------------- mr_restart.c */

/* Puts a replica just restored to sleep until its turn (or wakes it now if it
 * must: entries to apply); `led`: it led its group before the restart. */
void mr_restart_enqueue(struct mr_node *n, struct mr_group *g, bool led);
/* An awake learner that has not heard a leader for an election timeout asks for
 * one (each tick of its quiescence check). */
void mr_learner_tick(struct mr_node *n, struct mr_group *g);
/* Queues g, led here, to catch up a member on a peer heard again (its turn comes
 * after the replicas this node led before a restart). */
void mr_catch_up_enqueue(struct mr_node *n, struct mr_group *g);
/* Wakes the next restart_wakes_per_tick queued groups. */
void mr_restart_tick(struct mr_node *n);
bool mr_restart_pending(const struct mr_node *n);

/* ---------------------------------------------------------- mr_unreached.c */

/* Whether g (in role `role`) is a follower no leader reached: no leader known, no
 * configuration; or not in its configuration and not spoken to for an election
 * timeout. */
bool mr_unreached(const struct mr_node *n, const struct mr_group *g, int role);
/* Such a replica falls asleep: it asks whether it was removed, and is scheduled to
 * ask again while it sleeps unreached. */
void mr_unreached_sleep(struct mr_node *n, struct mr_group *g);
/* At a tick on or after n->reprobe_due: asks again for the entries due. */
void mr_reprobe_tick(struct mr_node *n);

#endif /* MULTIRAFT_MR_INTERNAL_H */
