/*
 * multiraft.h — the multi-raft layer: many Raft groups on one node (one PostgreSQL
 * server), sharing one clock, one output batch and one transport.
 *
 * Pure C11 like the core (src/raft/raft.h): no I/O, no clock, no globals, no
 * threads; memory only through the caller's struct raft_allocator; randomness only
 * from mr_config.seed.  Full description: docs/multiraft-layer.md.
 *
 * ---------------------------------------------------------------------------------
 * IDENTITY
 *   node id (mr_node_id, uint32, != 0)  one server.
 *   group id (mr_group_id, uint64)       one Raft group (any value, 0 included).
 *   replica id (raft_id, uint64, != 0)   one incarnation of a group on a node.  Never
 *     reused within a group: a node removed and re-added gets a new replica id.
 *   Each group keeps a replica id -> node id map (the "replica map"), learned from
 *   conf-change contexts and from message envelopes, carried in snapshots.
 *
 * ---------------------------------------------------------------------------------
 * THE HOST LOOP (one thread; e.g. the PostgreSQL background worker)
 *
 *     node = mr_node_new(&cfg, &rc);
 *     for each group in storage: mr_restore_group(node, &restore);
 *     for each tombstone in storage: mr_restore_tombstone(node, group, min_replica, ..);
 *     for each group with events: mr_restore_announced(node, group, index);
 *     loop {
 *         inputs: mr_tick() every tick interval, mr_receive() per envelope received,
 *                 mr_propose()/mr_read_index()/... per request;
 *         if (mr_has_ready(node)) {
 *             struct mr_batch b;
 *             mr_ready(node, &b);      // storage callbacks may run inside this call
 *             1. persist b (ONE transaction: group writes, events, dedup records,
 *                tombstones) — durably (fsync/WAL flush) if b.must_sync;
 *                (the early part of each envelope may go before this step:
 *                see mr_envelope.n_early_messages)
 *             2. send b.envelopes (one per destination node; loss is tolerated);
 *             3. deliver b.completions to the waiting callers;
 *             mr_advance(node, &b);
 *         }
 *     }
 *
 *   Between mr_ready() and mr_advance() only read-only calls (mr_group_status,
 *   mr_foreach_group, mr_get_counters, ...) are allowed; mutating calls return
 *   MR_EBUSY.  Everything reachable from the batch is owned by the node and stays
 *   valid until mr_advance().  "Persist, then send, then complete" is mandatory:
 *   votes and appends must be durable before the messages that acknowledge them
 *   leave the node, and a completion promises the command is durable here.
 *
 * ---------------------------------------------------------------------------------
 * STORAGE CONTRACT (what the host persists; see struct mr_group_write)
 *   Per group: a meta row (replica id, hard state, conf state, applied index, log
 *   start index/term, opaque layer state), the log rows (group, index) -> entry,
 *   the command-id dedup records (group, command id) -> first index, and the
 *   tombstones (group -> minimum replica id allowed here).  At start-up the host
 *   reads them back with mr_restore_group() / mr_restore_tombstone().
 *   The layer keeps every group's log in memory (short thanks to compaction) and
 *   never reads the storage except through the two callbacks of struct
 *   mr_storage_callbacks, which are ONLY called from inside mr_ready().
 *
 * ---------------------------------------------------------------------------------
 * ENTRY ENCODINGS (all integers little endian; decoded defensively — malformed data
 * is skipped and counted in mr_counters.malformed, never crashes)
 *   NORMAL entry data (empty data = the core's leader no-op, ignored):
 *       u8 kind | u16 command_id_len | command_id bytes | payload bytes
 *     kind 1 = command        payload = the user's command
 *     kind 2 = remove group   payload empty
 *     kind 3 = conf-change request forwarded by a follower (internal, no event):
 *              payload = u8 change_type | u32 node_id | change payload bytes
 *     kind 4 = command with a generated id (mr_propose_generated):
 *       u8 4 | u16 command_id_len | u64 expires | u32 node | u64 epoch | u64 seq |
 *       u64 floor | command_id bytes | payload bytes
 *              (node, epoch) is the proposer's session, seq the command's number
 *              in it, floor the lowest seq the session still had in flight in the
 *              group (1 <= floor <= seq < 2^64 - 1).  At an index <= expires it is
 *              applied unless its session decided seq before (EXACTLY-ONCE); at a
 *              later index it is expired: no event, its waiters fail MR_EEXPIRED —
 *              the same on every replica, whichever copy arrives when.
 *     kind 5 = the leader's refusal of a conf-change request its view finds invalid
 *              (internal, no event): payload = u8 reason (1 the change is invalid,
 *              2 the node is not a member).  It is the id's final answer: its dedup
 *              record holds the verdict (MR_DEDUP_REFUSED), and the waiters of the
 *              id fail with MR_EBADCONF / MR_ENOTMEMBER, then and later
 *   CONF_CHANGE entry: the core's encoding (raft_conf_change_encode) whose context is
 *       u32 node_id | u16 command_id_len | command_id bytes | payload bytes
 *     An empty command id marks the internal additions made while bootstrapping a
 *     group (mr_create_group): they produce no membership_change event.
 *   Command ids are 1..MR_MAX_COMMAND_ID_LEN bytes (internal ones excepted).
 *
 * ---------------------------------------------------------------------------------
 * EXACTLY-ONCE
 *   A command with a generated id (kind 4) is deduplicated by its proposer's
 *   session, kept in the group's replicated state (mr_group_write.state, in the
 *   same batch as the command's event; dissertation §6.3): no dedup record.
 *   When a committed command (kind 1) or conf change with command id C is applied
 *   in group G, the layer checks whether C was already applied in G:
 *   first in its in-memory set (ids applied in this batch), then through
 *   mr_storage_callbacks.lookup_command (the host's dedup table).  A duplicate
 *   produces no event and no dedup record, and its waiters complete with the FIRST
 *   index.  A new id produces an event and a dedup record (G, C, index) in the batch.
 *   Proposals are re-proposed when leadership changes or after
 *   mr_config.proposal_retry_ticks without an outcome; the dedup makes that safe.
 *   A conf change is applied to the configuration by the core even if its command id
 *   is a duplicate, so the layer checks the id before proposing (or forwarding) one;
 *   the conf-change requests of a group are served one at a time, in order.
 *
 * ---------------------------------------------------------------------------------
 * COMPLETIONS
 *   Every mr_propose / mr_propose_conf_change / mr_transfer_leadership /
 *   mr_read_index / mr_remove_group / mr_create_group call that returns MR_OK
 *   produces EXACTLY ONE struct mr_completion with the caller's token in a later
 *   batch; deliver it only once the batch that carries it is persisted (a completion
 *   promises that what it reports is durable here).  A call that returns an error
 *   code produces no completion.  Results:
 *     MR_OK              index = the log index (command: the first index with that
 *                        command id; read: the read index; transfer/create: 0), and
 *                        this node has applied through index.
 *     MR_EGROUP_DELETED  the group was removed while waiting ("raft group deleted").
 *     MR_ETIMEOUT        deadline_ticks elapsed (the command may still commit).
 *     MR_ESTOPPED        mr_shutdown() was called ("raft processing stopped").
 *     MR_ENOTMEMBER      this node was removed from the group before it sent the
 *                        request, under a generated id (or the request is a read or
 *                        a transfer), or the conf change names a node that is not a
 *                        member.
 *     MR_EREMOVED        this node was removed from the group after it sent the
 *                        command, conf change or removal, or while one under a
 *                        caller's id waited (an earlier call may have sent it): the
 *                        group, which this node no longer follows, may still commit
 *                        it (outcome unknown).
 *     MR_EBADCONF        the conf change is meaningless (e.g. add_voter of a voter).
 *     MR_EEXPIRED, MR_EUNKNOWN  generated-id commands (mr_propose_generated).
 *
 * ---------------------------------------------------------------------------------
 * COALESCED HEARTBEATS AND QUIESCENCE (docs/multiraft-layer.md has the protocol)
 *   The core's per-group HEARTBEAT / HEARTBEAT_RESP messages never travel alone: they
 *   are buffered per destination node and leave at most once per heartbeat interval
 *   (mr_config.heartbeat_ticks) inside the envelope for that node, each entry
 *   carrying group, from/to replica, term, commit and read context (entries with a
 *   read-index context leave at once).  Every envelope counts as a node liveness
 *   signal; an empty envelope is a pure liveness message, sent when nothing else
 *   went to that node for mr_config.liveness_ticks.  A leader group that is fully
 *   replicated with nothing pending for mr_config.quiesce_ticks ticks quiesces: it
 *   sends a last heartbeat entry flagged MR_HB_QUIESCE and leaves the active set
 *   (no ticks, no heartbeats).  Followers that match it quiesce too.  Any proposal,
 *   read, transfer, or raft message wakes a group.  A quiesced follower's leader
 *   lease is its leader's NODE liveness: a vote request for it is refused while that
 *   node was heard from within the election timeout.  Followers wake the groups led
 *   by a node that stayed silent for mr_config.dead_ticks (default one election
 *   timeout) and campaign with PreVote, staggered.
 */
#ifndef MULTIRAFT_MULTIRAFT_H
#define MULTIRAFT_MULTIRAFT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "raft.h"

typedef uint32_t mr_node_id;  /* != 0 */
typedef uint64_t mr_group_id;

#define MR_MAX_COMMAND_ID_LEN 65535u
#define MR_MAX_MEMBERS 16u    /* node ids listed in struct mr_group_status */

/* ----------------------------------------------------------------------------- */
/* Return / result codes                                                          */

enum {
    MR_OK = 0,
    MR_ENOMEM = -1,          /* allocator returned NULL                              */
    MR_EINVAL = -2,          /* bad argument                                         */
    MR_ENOGROUP = -3,        /* "group <id> does not exist" (here)                   */
    MR_EEXIST = -4,          /* "group <id> already exists" (or was removed here)    */
    MR_EGROUP_DELETED = -5,  /* "raft group deleted"                                 */
    MR_ESTOPPED = -6,        /* "raft processing stopped"                            */
    MR_ETIMEOUT = -7,        /* "timed out"                                          */
    MR_ENOTMEMBER = -8,      /* node is not a member of the group                    */
    MR_EBADCONF = -9,        /* conf change invalid for the current membership       */
    MR_ENOTLEADER = -10,     /* internal: no leader known (retried, never a result)  */
    MR_EBUSY = -11,          /* called between mr_ready() and mr_advance()           */
    MR_ETOOBIG = -12,        /* command id / payload too large                       */
    MR_ESTORAGE = -13,       /* a storage callback failed                            */
    MR_ECORRUPT = -14,       /* undecodable restore data                             */
    MR_EEXPIRED = -15,       /* a generated-id command reached the log past its bound:
                                it was not applied and never will be               */
    MR_EUNKNOWN = -16,       /* "timed out": the outcome is unknown here — a snapshot
                                covered the part of the log where a generated-id
                                command may have applied (it may have committed)   */
    MR_EREMOVED = -17,       /* this node's replica left the group (removed) while a
                                command, membership change or group removal it had
                                sent waited: the outcome is unknown here, since the
                                group, which this node no longer follows, may still
                                commit it (ask a member)                            */
    MR_EFULL = -18           /* this node has mr_config.max_groups replicas         */
};

/* Static message for a code; contains the SPEC.md phrases ("raft group deleted",
 * "raft processing stopped", "timed out", ...). */
const char *mr_strerror(int rc);

/* ----------------------------------------------------------------------------- */
/* Configuration                                                                   */

struct mr_storage_callbacks {
    void *user;
    /* Was command_id already applied in group (persisted dedup record)?  If so set
     * *first_index to the index of its first application and return true.  Only the
     * persisted state is asked: ids applied in the batch being built are tracked by
     * the layer.  Called only from inside mr_ready().  May be NULL (= never). */
    bool (*lookup_command)(void *user, mr_group_id group, const void *command_id,
                           size_t command_id_len, raft_index *first_index);
    /* The host's part of a snapshot of `group` as of log index `index`: the dedup
     * records of the group with first index <= index (the layer adds its own replicated
     * state).  Sets *data and *len to bytes that stay valid until the callback returns
     * to the layer (the layer copies them).  Returns 0, or < 0 on failure (the
     * snapshot is not sent this time; counted).  Called only from inside mr_ready(),
     * when a snapshot message is about to leave.  May be NULL (= empty blob).
     * On the receiving side the blob comes back as mr_group_write.snapshot_blob. */
    int (*snapshot_data)(void *user, mr_group_id group, raft_index index,
                         const void **data, size_t *len);
    /* Whether a received snapshot's blob (what snapshot_data gave its sender) is
     * well formed.  Called from mr_receive() before the snapshot reaches the core; a
     * blob refused here drops the message (counted in malformed), so that a
     * replica never installs a snapshot whose records it cannot restore.  Pure: no
     * storage access.  May be NULL (= every blob is taken). */
    bool (*snapshot_blob_ok)(void *user, mr_group_id group, const void *blob,
                             size_t len);
};

struct mr_config {
    mr_node_id node_id;             /* this node, != 0 */
    const struct raft_allocator *allocator; /* NULL = raft_default_allocator() */
    struct mr_storage_callbacks storage;
    uint64_t seed;                  /* PRNG seed (election timeouts, staggering) */
    uint32_t election_ticks;        /* 0 = 10; randomized per group in [E, 2E) */
    uint32_t heartbeat_ticks;       /* 0 = 2; also the heartbeat coalescing period */
    uint32_t liveness_ticks;        /* 0 = heartbeat_ticks: node liveness period */
    uint32_t dead_ticks;            /* 0 = election_ticks (never less): a peer
                                       silent this long is considered down, and
                                       the quiesced groups it leads here elect a
                                       new leader, about dead_ticks + E/4 + 4
                                       ticks after a crash.  A process stalled
                                       longer loses its leaderships once (as an
                                       active leader would); raise it to ride
                                       out longer stalls at the price of slower
                                       failover */
    uint32_t quiesce_ticks;         /* 0 = 2: idle ticks before a leader quiesces */
    uint32_t restart_wakes_per_tick; /* 0 = 1,000: restored groups start asleep and
                                       wake this many per tick (those this node
                                       led first), or at their first message or
                                       request, or at once with entries to apply
                                       (mr_restart.c) */
    uint32_t proposal_retry_ticks;  /* 0 = 2*election_ticks: re-propose after */
    uint32_t compact_threshold;     /* 0 = 64: compact the in-memory log when it
                                       holds more entries than this */
    uint32_t log_retention;         /* 0 = 1000: entries kept for lagging members
                                       (and by followers, for when they lead);
                                       beyond that a member gets a snapshot */
    uint64_t log_retention_bytes;   /* 0 = 8 MiB: a leader keeps every entry a
                                       member lacks whose node is alive (not silent
                                       for dead_ticks) while the entries it keeps
                                       for it hold at most this many bytes */
    uint64_t log_retention_bytes_total; /* 0 = 256 MiB: node-wide cap on what its
                                       leaders keep past log_retention entries
                                       (the sum of the above over groups): past
                                       it, members lagging that far get a
                                       snapshot, as if their node were silent */
    uint64_t max_size_per_msg;      /* 0 = core default (1 MiB) */
    uint32_t max_inflight_msgs;     /* 0 = core default (64) */
    uint32_t batch_hold_ticks;      /* 0 = 2: a new command waits (at most this
                                       long) while commands this node made in
                                       its group are in flight, and goes out
                                       with the others made meanwhile when those
                                       are applied */
    bool disable_batch_hold;        /* propose every command at once */
    uint64_t generated_id_window;   /* 0 = 1,000,000: entries after which a
                                       generated-id command that has not committed
                                       expires (mr_propose_generated) */
    uint64_t session_epoch;         /* 0 = seed: this start's session for
                                       generated-id commands; must differ from
                                       every earlier start of this node whose
                                       commands may still be within their bound
                                       (e.g. the start time in microseconds) */
    uint32_t max_groups;            /* 0: no limit.  Replicas this node may hold:
                                       mr_create_group fails with MR_EFULL past
                                       it, and a message that would make a new
                                       one is dropped (counted in groups_refused);
                                       restored replicas are never refused */
    bool disable_pre_vote;          /* PreVote is on by default */
    bool disable_check_quorum;      /* CheckQuorum is on by default */
    bool disable_durable_notices;   /* raft.h DURABLE NOTICES are on by default */
};

struct mr_node;

/* Creates a node with no groups.  NULL on failure (*rc set when rc != NULL). */
struct mr_node *mr_node_new(const struct mr_config *cfg, int *rc);
/* Frees everything (pending requests are dropped without completion). */
void mr_node_free(struct mr_node *n);

/* Completes every pending request with MR_ESTOPPED in the next batch; later
 * requests are refused with MR_ESTOPPED. */
int mr_shutdown(struct mr_node *n);

/* Logical time: the number of mr_tick() calls so far. */
uint64_t mr_now(const struct mr_node *n);

/* ----------------------------------------------------------------------------- */
/* Restart                                                                         */

/* One group as read back from storage (the last persisted mr_group_write values). */
struct mr_group_restore {
    mr_group_id group;
    raft_id replica_id;
    struct raft_hard_state hard_state;
    struct raft_conf_state conf_state;     /* as of applied */
    raft_index applied;
    raft_index log_start_index;            /* entries <= this are compacted away */
    raft_term log_start_term;              /* term of entry log_start_index (0 if 0) */
    const void *state;                     /* mr_group_write.state bytes */
    size_t state_len;
    const struct raft_entry *entries;      /* log_start_index+1 .. last, in order */
    size_t n_entries;
};

/* Re-creates a group at start-up (before any mr_tick/mr_receive).  Restored groups
 * start asleep and wake in turns from the first mr_tick (restart_wakes_per_tick).
 * MR_EEXIST if already present; MR_ECORRUPT if the state is undecodable or entries
 * are not consecutive. */
int mr_restore_group(struct mr_node *n, const struct mr_group_restore *r);

/* Re-creates a tombstone: replicas of `group` with id < min_replica_id never come
 * back here (UINT64_MAX = the group was removed here: its id is never reused), and
 * a later replica announces no event of an entry at or below `applied` (the
 * earlier ones did: mr_tombstone), with the incarnation stored with it (0 if
 * unknown).  Groups and tombstones restore in any order. */
int mr_restore_tombstone(struct mr_node *n, mr_group_id group, raft_id min_replica_id,
                         raft_index applied, uint32_t incarnation);

/* Tells a restored group the highest log index of any event the host ever stored
 * for it (entries applied, snapshots installed; events consumed since included).
 * The layer re-applies the entries its meta row trailed by (MR_META_LAG) and must
 * not announce those again: the sessions of generated ids (mr_session.c) are
 * written with the row, not with every command.  For a group with only a
 * tombstone here, raises the tombstone's applied index (what a later replica must
 * not announce again).  MR_ENOGROUP if neither. */
int mr_restore_announced(struct mr_node *n, mr_group_id group, raft_index index);

/* ----------------------------------------------------------------------------- */
/* Requests (each returns MR_OK = exactly one completion later, or an error)     */

/* deadline_ticks: the request completes with MR_ETIMEOUT after this many ticks
 * (0 = no deadline). */

/* Creates group_id with the given member nodes (this node must be one of them; no
 * duplicates; 1..MR_MAX_MEMBERS nodes).  This node bootstraps a single-voter group
 * {replica 1 on itself} (recorded as log entry 1: an add_voter of replica 1 with an
 * empty command id, so that other members learn it from the log), becomes its
 * leader, then adds the other members one at a time as voters (replica ids 2..n)
 * without any caller waiting; their replicas are
 * created lazily by the first message that reaches them.  Every member records one
 * group_created event when its replica comes to exist; the bootstrap additions
 * produce no membership_change events.  The completion (index 0) comes with the
 * batch that persists the new group.  MR_EEXIST if the group exists or was removed
 * here; MR_ENOTMEMBER if this node is not in members. */
int mr_create_group(struct mr_node *n, mr_group_id group, const mr_node_id *members,
                    size_t n_members, uint64_t token);

/* Proposes a command.  command_id: 1..MR_MAX_COMMAND_ID_LEN bytes, unique per
 * logical command (exactly-once per group).  On a follower the proposal is forwarded
 * to the leader; it completes when this node applies the entry that carries the id
 * (or a duplicate of it: then with the first index).  MR_ENOGROUP, MR_ETOOBIG. */
int mr_propose(struct mr_node *n, mr_group_id group, uint64_t token,
               const void *command_id, size_t command_id_len,
               const void *payload, size_t payload_len, uint32_t deadline_ticks);

/* The same for a command whose id the host generated, unique by construction: its
 * duplicates can only be this node's own resubmissions, so the layer numbers it in
 * this node's session (mr_config.session_epoch) and the group's replicated state
 * remembers the session's decided numbers instead of the id: no dedup record.
 * The entry carries a bound, expires = this node's commit index +
 * mr_config.generated_id_window, fixed for every copy; a copy committed past it
 * is not applied (kind 4 in ENCODINGS), and a session is dropped from the state
 * once the group's applied index passes the bounds of all its commands.  A copy of
 * a command whose waiter had given up (deadline) may be refused even within the
 * bound, once later commands of the session have applied: its caller was told the
 * outcome is unknown. */
int mr_propose_generated(struct mr_node *n, mr_group_id group, uint64_t token,
                         const void *command_id, size_t command_id_len,
                         const void *payload, size_t payload_len,
                         uint32_t deadline_ticks);

enum mr_change_type {
    MR_CHANGE_ADD_VOTER = 1,     /* add a voter (or promote the node's learner) */
    MR_CHANGE_REMOVE_VOTER = 2,  /* remove the node's replica (voter or learner) */
    MR_CHANGE_ADD_LEARNER = 3
};
/* "add_voter", "remove_voter", "add_learner" (NULL if unknown) and the reverse
 * (0 if unknown). */
const char *mr_change_type_name(int change_type);
int mr_change_type_parse(const char *name);

/* Proposes a membership change of `node`.  The layer maps node -> replica id: a new
 * replica id for an addition, the node's existing replica for a removal or a
 * promotion.  Allowed from any member: on a follower it is forwarded to the leader
 * as a kind-3 request entry (see ENCODINGS).  Completes with the index of the
 * conf-change entry once this node applied it (membership_change event).  A
 * promotion is proposed only once the learner holds every entry committed when the
 * leader took it up (dissertation §4.2.1); until then it waits, up to its deadline
 * (MR_ETIMEOUT, the learner left as it was).  A request invalid for this node's own
 * view fails at once (MR_EBADCONF, MR_ENOTMEMBER) only with id_generated: the host
 * made the id for this call, so no earlier request under it can be in flight.  A
 * caller's id may name a request of an earlier call (one that timed out, here or on
 * another member) that could still commit, so only the leader may refuse it: the
 * request then fails when this node applies the leader's kind-5 answer, final for the
 * command id — as does any request the leader's newer view finds invalid.  An
 * addition to a group of MR_MAX_MEMBERS members is invalid. */
int mr_propose_conf_change(struct mr_node *n, mr_group_id group, uint64_t token,
                           int change_type, mr_node_id node,
                           const void *command_id, size_t command_id_len,
                           bool id_generated, const void *payload, size_t payload_len,
                           uint32_t deadline_ticks);

/* Completes (index 0) once this node sees `target` as the leader of the group.
 * MR_ENOTMEMBER (synchronously) if target has no voter replica in the group. */
int mr_transfer_leadership(struct mr_node *n, mr_group_id group, mr_node_id target,
                           uint64_t token, uint32_t deadline_ticks);

/* Linearizable read barrier (dissertation §6.4): completes with a read index >= every
 * index committed before the call, once this node has applied through it. */
int mr_read_index(struct mr_node *n, mr_group_id group, uint64_t token,
                  uint32_t deadline_ticks);

/* Proposes the removal of the group (kind-2 entry).  When applied on a member, that
 * member drops the group, leaves a tombstone, records a group_removed event and
 * completes every other waiter of the group with MR_EGROUP_DELETED; this request
 * completes with the index of the removal entry. */
int mr_remove_group(struct mr_node *n, mr_group_id group, uint64_t token,
                    uint32_t deadline_ticks);

/* ----------------------------------------------------------------------------- */
/* Time and transport                                                              */

/* One tick for every ACTIVE group (quiesced groups cost nothing), request
 * deadlines, heartbeat coalescing timer, node liveness. */
int mr_tick(struct mr_node *n);

/* One raft message of one group (from/to are replica ids). */
struct mr_message {
    mr_group_id group;
    uint32_t incarnation;    /* the sender's group's (mr_group.incarnation); 0:
                                unknown, taken by any replica */
    struct raft_message msg;
};

/* One group's entry of a coalesced heartbeat (leader -> follower, the core's
 * HEARTBEAT) or of a coalesced response (follower -> leader, HEARTBEAT_RESP). */
#define MR_HB_QUIESCE 0x01u  /* heartbeat: the leader quiesces the group after this */
#define MR_HB_REMOVED 0x02u  /* response: the sender removed this group (a committed
                                removal at index `commit`, 0 if unknown): the
                                receiver's replica `to` drops it too */
#define MR_HB_REPLICA_REMOVED 0x04u /* response to a vote request or a probe: replica
                                `to` was removed from the group by a committed
                                change (ids are never reused): the receiver drops
                                that replica; `commit` is the index the sender
                                had applied (the removal's or later; 0: unknown),
                                that of the receiver's group_removed event */
#define MR_HB_PROBE   0x08u  /* response entry: replica `from` has learned nothing
                                and heard no leader; the receiver answers
                                MR_HB_REMOVED or MR_HB_REPLICA_REMOVED if it knows
                                the group or that replica removed, else nothing */
#define MR_HB_RESTARTED 0x10u /* response entry: replica `from` was restored asleep
                                and follows `to` in `term` as far as it knows; a
                                quiesced leader `to` whose log `from` matches
                                answers with an MR_HB_QUIESCE heartbeat, so that it
                                sleeps again without an election timeout, a
                                PreVote and the wake-ups that refuse it */
struct mr_heartbeat {
    mr_group_id group;
    raft_id from;            /* sender's replica id */
    raft_id to;              /* receiver's replica id */
    raft_term term;
    raft_index commit;       /* heartbeat: commit for `to` (resp: 0) */
    uint64_t context;        /* read-index round (0 = none) */
    uint8_t flags;           /* MR_HB_* */
    uint8_t reject;          /* as in the core's message (normally 0) */
    uint32_t incarnation;    /* as in mr_message */
};

/* Everything one node sends another in one go.  An envelope with no items is a pure
 * node liveness message.  Outgoing envelopes are in mr_batch; incoming ones are
 * handed to mr_receive() (then the arrays are borrowed for the call only). */
struct mr_envelope {
    mr_node_id from_node;
    mr_node_id to_node;
    const struct mr_message *messages;
    size_t n_messages;
    /* messages[0 .. n_early_messages) are APPENDs of leaders whose term is
     * already durable, and proposals forwarded to a leader: the host may send
     * them BEFORE persisting the batch (dissertation §10.2.1: the leader writes
     * its log in parallel with replicating it; it counts itself only once its
     * write is done), provided every batch advanced before this one is
     * persisted.  The rest leave after. */
    size_t n_early_messages;
    const struct mr_heartbeat *heartbeats;
    size_t n_heartbeats;
    const struct mr_heartbeat *heartbeat_resps;
    size_t n_heartbeat_resps;
};

/* The two parts of an envelope for a host that sends early messages first.
 * mr_envelope_early: its first n_early_messages messages alone (no heartbeats);
 * false if there are none.  mr_envelope_rest: what is left once that part was
 * sent; false if nothing is (every message left early and no heartbeat rides
 * along).  Both point into env. */
bool mr_envelope_early(const struct mr_envelope *env, struct mr_envelope *out);
bool mr_envelope_rest(const struct mr_envelope *env, struct mr_envelope *out);

/* Processes an envelope received from env->from_node.  Items for unknown groups may
 * create a replica lazily (APPEND, HEARTBEAT, SNAPSHOT addressed to a replica of
 * this node, unless tombstoned); bad items are counted and ignored.  MR_EINVAL only
 * if from_node is 0 or this node; MR_EBUSY between mr_ready and mr_advance. */
int mr_receive(struct mr_node *n, const struct mr_envelope *env);

/* The transport could not reach `node`: the leaders here stop pipelining to it. */
int mr_report_unreachable(struct mr_node *n, mr_node_id node);

/* ----------------------------------------------------------------------------- */
/* Output batch                                                                     */

#define MR_GW_CREATED 0x01u  /* the replica is new: delete any rows of this group
                                (an older replica), then write this one           */
#define MR_GW_REMOVED 0x02u  /* the replica is gone: delete every row of the group
                                (log, meta, dedup records); the rest of this write
                                is meaningless                                     */
#define MR_GW_KEEP_DEDUP 0x04u /* with CREATED or REMOVED: do NOT delete the group's
                                dedup records.  Set when the group lives on and only
                                this node's replica changes (removed from the group,
                                or replaced by a newer replica): a later replica of
                                the group here replays the log and must find the
                                commands this node already applied (exactly-once
                                events per node).  Absent when the group itself was
                                removed. */

/* What to persist for one group, in this order:
 *   if flags & MR_GW_REMOVED: delete the group's rows (dedup records kept if
 *     MR_GW_KEEP_DEDUP); done.
 *   if flags & MR_GW_CREATED: delete the group's rows (a previous replica; dedup
 *     records kept if MR_GW_KEEP_DEDUP).
 *   if has_snapshot: delete the group's log rows, then ADD the dedup records encoded
 *     in snapshot_blob (the host's own snapshot_data format) to those already
 *     stored, keeping existing ones on conflict: a dedup record is a fact about
 *     what this node applied, never wrong, and a snapshot older than what an
 *     earlier replica of the group applied here must not make the node apply those
 *     commands again.
 *   if n_entries: delete log rows with index >= entries[0].index, insert entries.
 *   if compacted: delete log rows with index <= log_start_index.  A write
 *     without it may still move
 *     log_start_index past rows not yet deleted (a quiesced group's log is dropped
 *     from memory at once, its rows only every compact_threshold entries): the
 *     host skips rows <= log_start_index when it loads, and the next compacted
 *     write deletes them.
 *   if meta_changed: upsert the meta row (replica_id, hard_state, conf_state,
 *     applied, log_start_index, log_start_term, state).  Meta fields always hold the
 *     group's current values.  A write that only moves the commit and applied
 *     indexes (and the sessions in the state) leaves meta_changed false until they
 *     are 64 entries past the row (MR_META_LAG): after a crash the layer re-applies
 *     those entries from the row's state, making the same decisions, and emits no
 *     event for an entry at or below what the host reports with
 *     mr_restore_announced (nor for a command id whose dedup record has its index). */
struct mr_group_write {
    mr_group_id group;
    raft_id replica_id;
    uint32_t flags;                        /* MR_GW_* */
    bool has_snapshot;
    const void *snapshot_blob;
    size_t snapshot_blob_len;
    const struct raft_entry *entries;
    size_t n_entries;
    bool compacted;
    bool meta_changed;
    struct raft_hard_state hard_state;
    struct raft_conf_state conf_state;     /* as of applied */
    raft_index applied;
    raft_index log_start_index;
    raft_term log_start_term;
    const void *state;                     /* the layer's replicated state (opaque) */
    size_t state_len;
};

enum mr_event_type {
    MR_EVENT_COMMAND = 1,
    MR_EVENT_MEMBERSHIP_CHANGE = 2,
    MR_EVENT_LEADER_ELECTED = 3,
    MR_EVENT_ELECTION_STARTED = 4,
    MR_EVENT_GROUP_CREATED = 5,
    MR_EVENT_GROUP_REMOVED = 6,
    MR_EVENT_SNAPSHOT_APPLIED = 7
};
/* "command", "membership_change", ... as in SPEC.md (NULL if unknown). */
const char *mr_event_type_name(int type);

/* Field use per type:
 *   COMMAND           index, term, command_id, payload
 *   MEMBERSHIP_CHANGE index, term, command_id, payload, node_id, replica_id,
 *                     change_type
 *   LEADER_ELECTED    term, node_id/replica_id = the new leader (once per term
 *                     observed by this node)
 *   ELECTION_STARTED  term, node_id/replica_id = this node's candidate (a real
 *                     candidacy in a new term; PreVote rounds are not reported)
 *   GROUP_CREATED     node_id/replica_id = this node's new replica; index = 0
 *   GROUP_REMOVED     index of the removal entry (0 if unknown, e.g. this replica
 *                     was replaced by a newer one), term (0 if unknown)
 *   SNAPSHOT_APPLIED  index, term of the snapshot
 * Events of one group are in log order. */
struct mr_event {
    uint8_t type;           /* enum mr_event_type */
    uint8_t change_type;    /* enum mr_change_type (MEMBERSHIP_CHANGE) */
    mr_group_id group;
    raft_index index;
    raft_term term;
    mr_node_id node_id;
    raft_id replica_id;
    const void *command_id;
    size_t command_id_len;
    const void *payload;
    size_t payload_len;
};

/* A command id applied for the first time: (group, command_id) -> index.  The
 * index may hold a verdict instead of a commit: a membership change the leader
 * refused (a kind-5 entry, see ENCODINGS) is recorded at the refusal's index with
 * MR_DEDUP_REFUSED set, and MR_DEDUP_NOTMEMBER too when the node was not a member,
 * so that its id keeps that answer and no late copy of the request can commit
 * after its caller was told it failed.  Bits 62 and 61 keep the index a positive
 * bigint; a host comparing a record's index with a log index (the snapshot's
 * records are those at or below its index) compares MR_DEDUP_INDEX of it. */
#define MR_DEDUP_REFUSED (UINT64_C(1) << 62)
#define MR_DEDUP_NOTMEMBER (UINT64_C(1) << 61)
#define MR_DEDUP_INDEX(x) ((x) & ~(MR_DEDUP_REFUSED | MR_DEDUP_NOTMEMBER))
struct mr_dedup_record {
    mr_group_id group;
    const void *command_id;
    size_t command_id_len;
    raft_index index;
};

/* Replicas of `group` with id < min_replica_id must never come back here.
 * UINT64_MAX: the group was removed (its id is refused by mr_create_group).
 * applied: how far the replicas before min_replica_id applied the group's log
 * here — their events are out; a later replica that replays those entries
 * (a node removed and added again) announces none of them again.
 * incarnation: that of the last replica dropped here (0 unknown), so that a
 * removal notice sent from the tombstone names its group (docs/multiraft-layer.md,
 * "Incarnation"). */
struct mr_tombstone {
    mr_group_id group;
    raft_id min_replica_id;
    raft_index applied;
    uint32_t incarnation;
};

enum mr_request_kind {
    MR_REQ_CREATE = 1, MR_REQ_COMMAND = 2, MR_REQ_CONF_CHANGE = 3,
    MR_REQ_TRANSFER = 4, MR_REQ_READ = 5, MR_REQ_REMOVE = 6
};
struct mr_completion {
    uint64_t token;
    int result;             /* MR_OK or a negative MR_E* code */
    raft_index index;       /* see COMPLETIONS */
    mr_group_id group;
    uint8_t kind;           /* enum mr_request_kind */
};

struct mr_batch {
    struct mr_group_write *groups;  size_t n_groups;
    struct mr_event *events;        size_t n_events;
    struct mr_dedup_record *dedup;  size_t n_dedup;
    struct mr_tombstone *tombstones; size_t n_tombstones;
    struct mr_completion *completions; size_t n_completions;
    struct mr_envelope *envelopes;  size_t n_envelopes;  /* one per destination */
    mr_group_id *visited;           size_t n_visited;    /* every group the batch
                                       visited: what mr_group_status() shows for them
                                       may have changed (role, leader, term, commit,
                                       quiescence — often with nothing to write), and
                                       only for them */
    bool must_sync;                 /* a write needs a durable flush before sending;
                                       false: the batch only holds state derived from
                                       the already durable log (applied index, events,
                                       dedup records, compaction), which a crash
                                       re-derives, so it may be committed without
                                       waiting for the flush */
};

/* Whether mr_ready() would return a non-empty batch. */
bool mr_has_ready(const struct mr_node *n);
/* Collects the pending output of every group into one batch (possibly empty).
 * Applies committed entries (events, dedup, completions) — calling the storage
 * callbacks.  MR_EBUSY if the previous batch was not advanced.  MR_ENOMEM if
 * memory ran out while the batch was built: part of it is missing, nothing of it
 * may be persisted or sent, and the node is no longer consistent with it — free
 * the node and restore it from storage. */
int mr_ready(struct mr_node *n, struct mr_batch *out);
/* The batch was persisted, sent and its completions delivered: releases it, and
 * compacts / quiesces groups. */
int mr_advance(struct mr_node *n, struct mr_batch *b);

/* ----------------------------------------------------------------------------- */
/* Introspection                                                                   */

struct mr_group_status {
    mr_group_id group;
    mr_node_id node_id;         /* this node */
    raft_id replica_id;
    int role;                   /* enum raft_role */
    bool is_learner;            /* role name "learner" (see mr_role_name) */
    raft_term term;
    mr_node_id leader_node;     /* 0 if unknown */
    raft_id leader_replica;
    raft_index commit, applied, first_index, last_index;
    uint32_t n_voters, n_learners;           /* true counts */
    mr_node_id voters[MR_MAX_MEMBERS];       /* first MR_MAX_MEMBERS node ids */
    mr_node_id learners[MR_MAX_MEMBERS];
    bool quiesced;
};
/* "leader", "follower", "candidate" (pre-candidate included) or "learner". */
const char *mr_role_name(const struct mr_group_status *st);

/* MR_ENOGROUP if the group has no replica here. */
int mr_group_status(const struct mr_node *n, mr_group_id group,
                    struct mr_group_status *out);
/* Calls fn for every group (unspecified order); stops early if fn returns non-zero
 * (and returns that value). */
int mr_foreach_group(const struct mr_node *n,
                     int (*fn)(void *arg, const struct mr_group_status *st),
                     void *arg);
size_t mr_group_count(const struct mr_node *n);
size_t mr_active_group_count(const struct mr_node *n);
bool mr_group_exists(const struct mr_node *n, mr_group_id group);
/* Whether `group` is tombstoned here for every replica (removed). */
bool mr_group_tombstoned(const struct mr_node *n, mr_group_id group);

/* Node-wide counters (monotonic). */
struct mr_counters {
    uint64_t envelopes_sent, envelopes_received;
    uint64_t messages_sent, messages_received;     /* raft messages (not heartbeats) */
    /* messages_sent by kind, for who wants to know what the traffic is made of
     * (the rest: votes, reads, transfers, snapshots below) */
    uint64_t appends_sent;          /* APPENDs carrying entries */
    uint64_t empty_appends_sent;    /* APPENDs without: commit notices, probes */
    uint64_t append_responses_sent; /* answers to APPENDs */
    uint64_t durable_notices_sent;  /* a leader's "my log is durable through i" */
    uint64_t proposals_forwarded;   /* PROPOSE: commands a follower sent its leader */
    uint64_t bytes_sent, bytes_received;           /* estimate of the payload bytes */
    uint64_t heartbeats_sent, heartbeats_received; /* coalesced heartbeat entries */
    uint64_t heartbeat_resps_sent, heartbeat_resps_received;
    uint64_t liveness_sent;                        /* empty envelopes */
    uint64_t batches, entries_appended, entries_applied, events;
    uint64_t snapshots_sent, snapshots_applied, compactions;
    uint64_t proposals, reproposals, duplicates;
    uint64_t held_commands;     /* commands held back to join the next round */
    uint64_t expired;           /* generated-id entries past their bound, not applied */
    uint64_t quiesced, woken, groups_created, groups_removed;
    uint64_t dropped;       /* messages/items ignored: unknown or stale group or
                               replica, tombstoned, unroutable */
    uint64_t malformed;     /* undecodable entries / contexts / snapshot state */
    uint64_t groups_refused; /* messages that would have made a replica past
                                max_groups */
    uint64_t slept_without_quorum; /* replicas put to sleep without a leader, no
                                      quorum of their voters heard */
    uint64_t conflicts;     /* messages refused because they would replace a
                               replica whose map binds the sender's or the
                               addressed replica id to another node: another
                               group under the same id (created on two nodes) */
};
void mr_get_counters(const struct mr_node *n, struct mr_counters *out);
/* The group of the last message counted in `conflicts`; 0 if none was. */
mr_group_id mr_last_conflict(const struct mr_node *n);
/* The bytes of entries this node's groups keep past log_retention for members
 * that are alive but lag (bounded by log_retention_bytes_total). */
uint64_t mr_retained_bytes(const struct mr_node *n);
/* Changes log_retention_bytes and log_retention_bytes_total (0: the default) of a
 * running node.  They bound what later compactions keep: a lower budget is met
 * at the groups' next compactions, by snapshots for the members past it. */
void mr_set_log_retention_bytes(struct mr_node *n, uint64_t per_group, uint64_t total);
/* Changes restart_wakes_per_tick (0: the default) of a running node: the turns
 * still to come go at the new pace. */
void mr_set_restart_wakes_per_tick(struct mr_node *n, uint32_t per_tick);
/* The host's tick now lasts new_len where it lasted old_len (any unit, both > 0):
 * the requests' deadlines keep their time, each one's remaining ticks scaled by
 * old_len / new_len (rounded up). */
void mr_rescale_deadlines(struct mr_node *n, uint32_t old_len, uint32_t new_len);
/* The counters as (name, value) rows for a stats view: i in [0, mr_counter_count()). */
size_t mr_counter_count(void);
const char *mr_counter_name(size_t i);
uint64_t mr_counter_value(const struct mr_node *n, size_t i);

/* Per destination node: envelopes, raft messages, heartbeat entries and bytes
 * handed out to `node` so far.  false if this node never sent anything there. */
struct mr_peer_counters {
    uint64_t envelopes, messages, heartbeats, bytes;
    uint64_t last_heard_tick;     /* mr_now() when something last came from it */
};
bool mr_peer_counters(const struct mr_node *n, mr_node_id node,
                      struct mr_peer_counters *out);

#endif /* MULTIRAFT_MULTIRAFT_H */
