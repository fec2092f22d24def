/*
 * raft.h — the Raft consensus core of multiraft: one replica of one group.
 *
 * A pure state machine (no I/O, no clock, no globals, no threads).  It is driven by
 *   raft_tick()     one logical clock tick,
 *   raft_step()     one message received from a peer,
 *   raft_propose*() / raft_read_index() / raft_transfer_leadership() / ...,
 * and hands its output to the caller through a Ready / Advance cycle:
 *
 *     if (raft_has_ready(r)) {
 *         struct raft_ready rd;
 *         raft_ready(r, &rd);
 *         1. persist  rd.snapshot (if any), then rd.entries (append; an entry
 *            whose index already exists replaces it and every later entry), then
 *            rd.hard_state (if rd.has_hard_state) — durably if rd.must_sync;
 *         2. send     rd.messages;
 *         3. apply    rd.committed (in order; conf-change entries were already applied
 *            to the configuration by the core, see "Membership" below), persist
 *            rd.conf_state if rd.conf_changed, return rd.read_states to readers;
 *         raft_advance(r, &rd);
 *     }
 *
 * Between raft_ready() and raft_advance() the caller must not call any function that
 * changes the raft (tick, step, propose, ...); read-only getters are fine.
 *
 * Paper references: "In Search of an Understandable Consensus Algorithm" (§5, Figure 2)
 * and Ongaro's dissertation "Consensus: Bridging Theory and Practice" (§3.10 leadership
 * transfer, §4 membership, §6.2 CheckQuorum, §6.4 ReadIndex, §9.6 PreVote).
 *
 * ---------------------------------------------------------------------------------
 * OWNERSHIP RULES
 *  - Messages passed to raft_step(): borrowed for the duration of the call only.  The
 *    core copies whatever it keeps (entry data, snapshot data).
 *  - Data passed to raft_propose*() / conf-change contexts: copied; caller keeps theirs.
 *  - Everything reachable from a struct raft_ready (messages, their entries and
 *    snapshots, entries to persist, committed entries, read states, conf state) is
 *    owned by the raft and stays valid until raft_advance() (or raft_free()).  The
 *    caller copies what it wants to keep longer.
 *  - Storage callbacks (struct raft_storage): entries() copies entries into the sink
 *    the core passes (raft_entry_sink_push), so storage keeps ownership of its own
 *    buffers; initial_state() / snapshot() return pointers that need only stay valid
 *    until the callback's caller returns (the core copies immediately).
 *  - Entries in outgoing APPENDs and in rd.committed usually point into the raft's
 *    in-memory log suffix (not copied); its data never moves before raft_advance().
 *  - Memory: while a group is active the raft keeps its output buffers between
 *    Readies; they are returned by the next idle raft_tick() or raft_release_memory()
 *    — call the latter before quiescing a group (a quiesced 3-voter replica then holds
 *    ~630 bytes, see raft_memory_usage()).
 *
 * ---------------------------------------------------------------------------------
 * MEMBERSHIP (dissertation §4.1, single-server changes; no joint consensus)
 *  - A configuration change is an entry of type RAFT_ENTRY_CONF_CHANGE whose data is
 *    raft_conf_change_encode()'s output.
 *  - A configuration takes effect WHEN COMMITTED (etcd style), precisely: when the
 *    core hands the committed entry out in rd.committed, it applies it to its
 *    configuration and sets rd.conf_changed / rd.conf_state.  The caller persists
 *    rd.conf_state together with its applied index (the stored conf state must always
 *    be the configuration as of the stored applied index).
 *  - At most one conf change may be uncommitted: raft_propose_conf_change() returns
 *    RAFT_ECONFPENDING while one is in the log beyond the applied index (a new leader
 *    conservatively treats its whole uncommitted log as possibly holding one).
 *  - add_voter on a learner promotes it.  RAFT_CC_REMOVE removes a voter or learner.
 *  - A leader that has proposed its own removal refuses further proposals
 *    (RAFT_ENOTMEMBER) — its log must end with the removal so that the remaining
 *    voters, which may still need its vote before they learn the commit, are at
 *    least as up to date as it is.  Transferring leadership away first is the
 *    gentler way to remove a leader.
 *  - A leader that commits its own removal sends a last heartbeat round carrying the
 *    new commit index and steps down to follower; as a non-member it never campaigns
 *    (dissertation §4.2.2).  A leader that is not a voter does not count itself in
 *    quorums.  A removed follower is sent a last APPEND (best effort) so that it
 *    learns of its removal.
 *  - Replica ids are never reused within a group.  Message filtering rule
 *    ("legitimate sender"):
 *      * APPEND, HEARTBEAT, SNAPSHOT, TIMEOUT_NOW claim leadership in their term; they
 *        are processed from ANY sender id (this is how a brand-new replica with an
 *        empty configuration, or a lagging one, learns of its leader).  Term rules
 *        (§5.1) apply as usual: stale terms are answered/ignored.
 *      * VOTE / PREVOTE requests are processed from any sender (dissertation §4.1:
 *        a replica whose configuration lags — or is still empty — must be able to
 *        vote for a candidate it does not know yet), BUT a request with a higher term
 *        from a sender that is not a voter of the receiver's configuration is
 *        ignored entirely (no term update, no answer) while the receiver has heard
 *        from a leader within the election timeout (leader lease, §4.2.3); with
 *        check_quorum this lease applies to every candidate, and PREVOTE requests
 *        are always refused during it (§9.6).  So a removed replica cannot disrupt
 *        a healthy group, and cannot win an election anyway.
 *      * Every other type (responses, PROPOSE, READ_INDEX, TRANSFER_LEADER) from a
 *        sender that is not a voter or learner of the receiver's configuration is
 *        ignored entirely (no term update).
 *      * Messages to another id (msg->to != own id) are ignored.
 *    A replica campaigns only if it is a voter of its own configuration.
 *
 * ---------------------------------------------------------------------------------
 * DURABLE NOTICES (raft_config.durable_notices; off by default)
 *  A follower in a group of two or three voters can learn that an entry committed
 *  without asking the leader.  An entry is committed once the leader that created it
 *  holds it durably on a majority (§5.3 — the leader merely finds out by counting);
 *  with at most three voters the leader and any one voting follower are that
 *  majority.  So the leader, when a Ready hands out its own new entries, adds a
 *  DURABLE message for every voting follower in replicate state: "my log is durable
 *  through index i".  It is an ordinary message of the Ready, sent only after the
 *  persist step, so it is true when it leaves.  The follower then commits
 *  min(i, its own durable last index) — if that entry is of the current term
 *  (§5.4.2: only entries of the leader's term are committed by counting) — when the
 *  notice arrives or when its own write completes (raft_advance), whichever is last.
 *  A follower-submitted command then commits on its node right after both writes,
 *  instead of a round trip later (its acknowledgement to the leader and the
 *  leader's commit notice back).  The leader sends notices only while its whole
 *  log holds no configuration change it has not applied: a change later in the log
 *  takes effect only once committed, which commits the noticed entries first, so
 *  the leader's own counting would call them committed with that follower's
 *  acknowledgement — the same fact the follower concluded.  It then also skips the
 *  empty APPEND that would tell such a follower a commit index it can work out
 *  itself.  A lost notice only delays the follower's commit to the next APPEND or
 *  heartbeat.  All replicas of a group must understand RAFT_MSG_DURABLE.
 *
 * ---------------------------------------------------------------------------------
 * BOOTSTRAP AND JOINING
 *  - The initial members of a group all start from the same storage state: a
 *    snapshot {index 1, term 1, conf = initial voters, data = empty state machine},
 *    hard state {term 1, vote 0, commit 1} and that conf state (the memory storage's
 *    raft_memory_storage_bootstrap() does exactly this).  Since the initial
 *    configuration is then part of a snapshot, a replica added later can start with an
 *    EMPTY storage (no configuration at all): the leader finds its log too short and
 *    sends it the snapshot, which carries the configuration.
 *  - (Starting from a conf state without any snapshot also works for a fixed set of
 *    members — the unit tests do it — but then new replicas cannot learn the initial
 *    configuration.)
 *
 * ---------------------------------------------------------------------------------
 * PROPOSALS AND HOW TO LEARN THEIR FATE
 *  - On the leader raft_propose() appends and returns RAFT_OK with the index and term
 *    assigned.  The proposal has committed when an entry with that index AND that term
 *    appears in rd.committed; if the entry at that index has another term, the
 *    proposal was dropped (overwritten by a new leader).  If the replica loses
 *    leadership the upper layer may also fail waiters early (rd.soft_state_changed).
 *  - On a follower that knows its leader, the proposal is forwarded as a PROPOSE
 *    message and RAFT_FORWARDED is returned (index/term unknown: the upper layer
 *    matches the command id it embedded in the data when the entry is applied; the
 *    leader may silently drop forwarded proposals, so waiters need a timeout).
 *  - Otherwise a negative error code says why it was refused (no leader,
 *    forwarding disabled, leadership transfer in progress, conf change pending,
 *    removed from the group...).  The leader's own no-op entry (§8) is a NORMAL entry
 *    with empty data; proposals with empty data are refused (RAFT_EINVAL), so the upper
 *    layer may treat every empty NORMAL entry as a no-op.
 *
 * ---------------------------------------------------------------------------------
 * READS (dissertation §6.4 ReadIndex)
 *  raft_read_index(r, ctx): on the leader the current commit index is recorded and
 *  a heartbeat round is sent; once a quorum acknowledged it, a raft_read_state
 *  {index, ctx, status=RAFT_OK} appears in rd.read_states.  The caller serves the read
 *  once its applied index >= index.  A leader that has not yet committed an entry of
 *  its own term queues the request until it has.  On a follower, a READ_INDEX message
 *  goes to the leader and the answer produces the read state.  Requests that are lost
 *  because leadership changes come back with status != RAFT_OK when the core knows it
 *  (local requests on a leader that steps down; refused forwarded requests); others are
 *  silently lost, so readers also need a timeout.
 */
#ifndef MULTIRAFT_RAFT_H
#define MULTIRAFT_RAFT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef uint64_t raft_id;    /* replica id, never 0, never reused within a group */
typedef uint64_t raft_term;
typedef uint64_t raft_index; /* log index; the first entry has index 1 */

#define RAFT_NONE ((raft_id)0)

/* ----------------------------------------------------------------------------- */
/* Return codes                                                                   */

enum {
    RAFT_OK = 0,
    RAFT_FORWARDED = 1,      /* propose/read/transfer: sent to the known leader      */
    RAFT_ENOMEM = -1,        /* allocator returned NULL                               */
    RAFT_EINVAL = -2,        /* bad argument (empty proposal, unknown peer...)        */
    RAFT_ENOTLEADER = -3,    /* not leader and no leader known / forwarding disabled  */
    RAFT_ETRANSFER = -4,     /* leadership transfer in progress: proposals refused    */
    RAFT_ECONFPENDING = -5,  /* an uncommitted conf change already exists             */
    RAFT_EBADCONF = -6,      /* conf change invalid for the current configuration     */
    RAFT_ECOMPACTED = -7,    /* storage: requested index was compacted away           */
    RAFT_EUNAVAILABLE = -8,  /* storage: requested index is beyond the last index     */
    RAFT_ESNAPOUTOFDATE = -9,/* storage: snapshot older than the current one          */
    RAFT_ECORRUPT = -10,     /* undecodable data (conf change, state)                 */
    RAFT_EBUSY = -11,        /* between raft_ready() and raft_advance()               */
    RAFT_ENOTMEMBER = -12,   /* not a member (or, on a leader: being removed)         */
    RAFT_ESTORAGE = -13,     /* storage callback failed (any other storage error)     */
    RAFT_EDROPPED = -14      /* read state: the request was lost (leadership changed) */
};

/* Static string for a return code. */
const char *raft_strerror(int rc);

/* ----------------------------------------------------------------------------- */
/* Allocator: all memory of the core goes through it.                            */

struct raft_allocator {
    void *ctx;
    void *(*malloc)(void *ctx, size_t n);
    void *(*realloc)(void *ctx, void *p, size_t n);
    void (*free)(void *ctx, void *p);
};

/* An allocator over malloc/realloc/free (a pointer to a constant object). */
const struct raft_allocator *raft_default_allocator(void);

/* ----------------------------------------------------------------------------- */
/* Log entries, hard state, configuration, snapshots                             */

enum raft_entry_type {
    RAFT_ENTRY_NORMAL = 0,      /* opaque command; empty data = leader's no-op       */
    RAFT_ENTRY_CONF_CHANGE = 1  /* data = raft_conf_change_encode() output           */
};

struct raft_entry {
    raft_term term;
    raft_index index;
    const void *data;   /* may be NULL when len == 0 */
    uint32_t len;
    uint8_t type;       /* enum raft_entry_type */
};

/* Persistent state on all servers (Figure 2): currentTerm, votedFor, and commit. */
struct raft_hard_state {
    raft_term term;
    raft_id vote;       /* RAFT_NONE if no vote in this term */
    raft_index commit;
};

/* Configuration: voters and (non-voting) learners.  Disjoint sets. */
struct raft_conf_state {
    const raft_id *voters;
    uint32_t n_voters;
    const raft_id *learners;
    uint32_t n_learners;
};

struct raft_snapshot {
    raft_index index;   /* last index covered by the snapshot */
    raft_term term;     /* term of that entry */
    struct raft_conf_state conf;  /* configuration as of index */
    const void *data;   /* opaque caller state machine image */
    size_t len;
};

/* ----------------------------------------------------------------------------- */
/* Configuration changes: compact binary encoding defined by the core.           */
/* Layout (little endian): u8 version(=1) | u8 type | u64 replica | u32 ctx_len | ctx */

enum raft_conf_change_type {
    RAFT_CC_ADD_VOTER = 1,    /* add a voter, or promote an existing learner          */
    RAFT_CC_REMOVE = 2,       /* remove a voter or a learner                           */
    RAFT_CC_ADD_LEARNER = 3   /* add a learner (error if it is already a voter)        */
};
#define RAFT_CC_REMOVE_VOTER RAFT_CC_REMOVE

struct raft_conf_change {
    uint8_t type;             /* enum raft_conf_change_type */
    raft_id replica;
    const void *context;      /* opaque upper-layer bytes (e.g. node id, payload) */
    uint32_t context_len;
};

#define RAFT_CONF_CHANGE_HEADER_SIZE 14u
/* Bytes needed to encode cc. */
size_t raft_conf_change_encoded_size(const struct raft_conf_change *cc);
/* Encodes cc into buf (raft_conf_change_encoded_size(cc) bytes); returns that size. */
size_t raft_conf_change_encode(const struct raft_conf_change *cc, void *buf);
/* Decodes; out->context points into data.  RAFT_ECORRUPT if malformed. */
int raft_conf_change_decode(const void *data, size_t len, struct raft_conf_change *out);

/* ----------------------------------------------------------------------------- */
/* Messages                                                                       */

enum raft_msg_type {
    RAFT_MSG_APPEND = 1,          /* AppendEntries RPC (§5.3)                              */
    RAFT_MSG_APPEND_RESP = 2,     /* also the answer to SNAPSHOT                            */
    RAFT_MSG_VOTE = 3,            /* RequestVote RPC (§5.2)                                  */
    RAFT_MSG_VOTE_RESP = 4,
    RAFT_MSG_PREVOTE = 5,         /* dissertation §9.6                                        */
    RAFT_MSG_PREVOTE_RESP = 6,
    RAFT_MSG_HEARTBEAT = 7,       /* leader → follower: term, commit, context                 */
    RAFT_MSG_HEARTBEAT_RESP = 8,  /* follower → leader: term, context                         */
    RAFT_MSG_SNAPSHOT = 9,        /* InstallSnapshot (§7)                                     */
    RAFT_MSG_TIMEOUT_NOW = 10,    /* leadership transfer (dissertation §3.10)                */
    RAFT_MSG_PROPOSE = 11,        /* follower → leader: forwarded proposal (entries)         */
    RAFT_MSG_READ_INDEX = 12,     /* follower → leader: context = caller's read context      */
    RAFT_MSG_READ_INDEX_RESP = 13,/* leader → follower: index, context, reject               */
    RAFT_MSG_TRANSFER_LEADER = 14,/* follower → leader: please transfer to msg.index (id)    */
    RAFT_MSG_DURABLE = 15         /* leader → follower: my log is durable through msg.index  */
};
#define RAFT_MSG_TYPE_MAX 15
#define RAFT_APPEND_COMMIT_ONLY 1   /* APPEND context, see below */

/*
 * One message.  Field meaning per type:
 *   term       sender's current term, for every type.  PREVOTE: the term the sender
 *              would campaign in (its term + 1); PREVOTE_RESP granted: that same term.
 *              PROPOSE / READ_INDEX / TRANSFER_LEADER: 0 means "local, no term" and
 *              the term is not checked for them.
 *   log_term   APPEND: term of entry `index` (prevLogTerm).  VOTE/PREVOTE: term of the
 *              candidate's last entry.  APPEND_RESP reject: hint term (the follower's
 *              term at reject_hint, 0 if none).
 *   index      APPEND: prevLogIndex.  VOTE/PREVOTE: candidate's last index.
 *              DURABLE: the leader's log is durable through this index.
 *              APPEND_RESP accepted: the follower's match index (last index known to
 *              be replicated).  APPEND_RESP rejected: the rejected prevLogIndex.
 *              READ_INDEX_RESP: the read index.  TRANSFER_LEADER: the target id.
 *   commit     APPEND, HEARTBEAT, DURABLE: leader's commit index (for HEARTBEAT and
 *              DURABLE it is already min(follower match, leader commit)).
 *   reject     responses: request refused (vote not granted, append inconsistent,
 *              read refused).
 *   reject_hint APPEND_RESP reject (fast backtracking, §5.3 end): if the follower's
 *              log is shorter than `index`, log_term = 0 and reject_hint = its last
 *              index; otherwise log_term = the follower's (conflicting) term at
 *              `index` and reject_hint = the first index of that term in its log.
 *   context    HEARTBEAT / HEARTBEAT_RESP: read-index round (0 = none).
 *              APPEND: RAFT_APPEND_COMMIT_ONLY on an empty APPEND that only carries a
 *              new commit index to a follower known to be up to date: no answer is
 *              sent when it matches.  VOTE / PREVOTE: 1 = campaign caused by
 *              TIMEOUT_NOW (leadership transfer), bypasses leader leases.
 *              READ_INDEX / READ_INDEX_RESP: the caller's read context.
 *   entries    APPEND, PROPOSE.
 *   snapshot   SNAPSHOT.
 */
struct raft_message {
    uint8_t type;
    uint8_t reject;
    uint32_t n_entries;
    raft_id from;
    raft_id to;
    raft_term term;
    raft_term log_term;
    raft_index index;
    raft_index commit;
    raft_index reject_hint;
    uint64_t context;
    const struct raft_entry *entries;
    const struct raft_snapshot *snapshot;
};

/* Name of a message type ("APPEND", ...), "?" if unknown. */
const char *raft_msg_type_name(int type);

/* ----------------------------------------------------------------------------- */
/* Storage read interface (the caller performs writes from the Ready).           */

/* Opaque collector passed to raft_storage.entries(). */
struct raft_entry_sink;

/* Copies one entry (data included) into the sink; entries must be pushed in index
 * order starting at `lo`.  Returns RAFT_OK or RAFT_ENOMEM. */
int raft_entry_sink_push(struct raft_entry_sink *sink, const struct raft_entry *e);

/* A stand-alone sink, for storage tests and tools: collects copies of the pushed
 * entries (starting at index lo) until raft_entry_sink_free(). */
struct raft_entry_sink *raft_entry_sink_new(const struct raft_allocator *a, raft_index lo);
size_t raft_entry_sink_count(const struct raft_entry_sink *sink);
const struct raft_entry *raft_entry_sink_entries(const struct raft_entry_sink *sink);
void raft_entry_sink_free(struct raft_entry_sink *sink);

struct raft_storage {
    void *user;
    /* Hard state and the configuration as of the applied index.  The conf arrays
     * must stay valid until the callback's caller returns (the core copies). */
    int (*initial_state)(void *user, struct raft_hard_state *hs,
                         struct raft_conf_state *cs);
    /* Pushes entries [lo, hi) into sink (raft_entry_sink_push, in order): the
     * longest prefix whose total data size is <= max_bytes, but always at least one
     * entry when lo < hi.  RAFT_ECOMPACTED if
     * lo < first_index, RAFT_EUNAVAILABLE if hi > last_index + 1. */
    int (*entries)(void *user, raft_index lo, raft_index hi, uint64_t max_bytes,
                   struct raft_entry_sink *sink);
    /* Term of entry i, for first_index - 1 <= i <= last_index (the term of the
     * entry just before first_index is remembered from compaction/snapshot).
     * RAFT_ECOMPACTED / RAFT_EUNAVAILABLE otherwise. */
    int (*term)(void *user, raft_index i, raft_term *out);
    /* Index of the first available entry (snapshot index + 1 if log is empty). */
    raft_index (*first_index)(void *user);
    /* Index of the last entry (snapshot index if log is empty). */
    raft_index (*last_index)(void *user);
    /* The most recent snapshot (data valid until the callback's caller returns). */
    int (*snapshot)(void *user, struct raft_snapshot *out);
};

/* ----------------------------------------------------------------------------- */
/* In-memory storage (src/raft/memory_storage.c)                                  */

struct raft_memory_storage;

/* Empty log, hard state {0,0,0}, empty configuration, snapshot index 0. */
struct raft_memory_storage *raft_memory_storage_new(const struct raft_allocator *a);
void raft_memory_storage_free(struct raft_memory_storage *ms);
/* Fills *out with the read interface (user = ms). */
void raft_memory_storage_interface(struct raft_memory_storage *ms,
                                   struct raft_storage *out);
/* Appends entries (consecutive indexes).  An entry whose index already exists
 * truncates the log from that index first.  Entries before first_index are skipped.
 * RAFT_EINVAL if it would leave a gap. */
int raft_memory_storage_append(struct raft_memory_storage *ms,
                               const struct raft_entry *e, size_t n);
int raft_memory_storage_set_hard_state(struct raft_memory_storage *ms,
                                       const struct raft_hard_state *hs);
/* Configuration returned by initial_state() (persist rd.conf_state here). */
int raft_memory_storage_set_conf_state(struct raft_memory_storage *ms,
                                       const struct raft_conf_state *cs);
/* Installs a snapshot: discards the whole log, sets the configuration to snap->conf
 * and remembers the snapshot (first_index becomes snap->index + 1).
 * RAFT_ESNAPOUTOFDATE if older than the current snapshot. */
int raft_memory_storage_apply_snapshot(struct raft_memory_storage *ms,
                                       const struct raft_snapshot *snap);
/* Records a snapshot of the caller's state machine at index (<= last index), with
 * the configuration at that index.  Does not discard entries. */
int raft_memory_storage_create_snapshot(struct raft_memory_storage *ms, raft_index index,
                                        const struct raft_conf_state *cs,
                                        const void *data, size_t len);
/* Discards entries with index <= index.  index must be <= the snapshot index (so a
 * follower that needs them can be sent the snapshot) — RAFT_EINVAL otherwise;
 * RAFT_ECOMPACTED if already compacted that far. */
int raft_memory_storage_compact(struct raft_memory_storage *ms, raft_index index);
/* Total data size of the entries held in [lo, hi) (the range is clipped to what is
 * held), in O(1): each entry keeps a running sum. */
uint64_t raft_memory_storage_size(const struct raft_memory_storage *ms, raft_index lo,
                                  raft_index hi);
/* Initial state of a founding member (see BOOTSTRAP AND JOINING): snapshot at
 * index 1 / term 1 with configuration cs and empty data, hard state {1, 0, 1}. */
int raft_memory_storage_bootstrap(struct raft_memory_storage *ms,
                                  const struct raft_conf_state *cs);
/* Read access to the stored hard state (tests/restart). */
void raft_memory_storage_hard_state(const struct raft_memory_storage *ms,
                                    struct raft_hard_state *out);

/* ----------------------------------------------------------------------------- */
/* Configuration of one replica                                                   */

struct raft_config {
    raft_id id;                  /* this replica's id, != RAFT_NONE */
    uint32_t election_tick;      /* election timeout in ticks, randomized in
                                    [election_tick, 2*election_tick); e.g. 10 */
    uint32_t heartbeat_tick;     /* leader heartbeat interval in ticks; e.g. 1..2 */
    struct raft_storage storage; /* read interface (copied) */
    raft_index applied;          /* last index applied by the caller (restart) */
    uint64_t max_size_per_msg;   /* max entry bytes per APPEND (at least one entry);
                                    0 = 1 MiB */
    uint64_t max_committed_size_per_ready; /* max bytes of rd.committed; 0 = 4 MiB */
    uint32_t max_inflight_msgs;  /* max APPENDs in flight per follower in replicate
                                    state (pipelining); 0 = 64 */
    uint64_t seed;               /* PRNG seed for election timeouts (0 allowed) */
    bool pre_vote;               /* dissertation §9.6 */
    bool check_quorum;           /* dissertation §6.2 (also enables leases for votes:
                                    §4.2.3 — ignore votes while a leader is known) */
    bool disable_proposal_forwarding; /* followers refuse proposals (ENOTLEADER) */
    bool durable_notices;        /* see DURABLE NOTICES above */
};

/* ----------------------------------------------------------------------------- */
/* Lifecycle                                                                      */

struct raft;

/* Creates a replica; reads initial_state, first/last index from storage.
 * On failure returns NULL and sets *rc (if rc != NULL). */
struct raft *raft_new(const struct raft_config *cfg, const struct raft_allocator *a,
                      int *rc);
void raft_free(struct raft *r);

/* Frees idle buffers (empty inflight windows, unused capacity).  Cheap; call it
 * before quiescing a group. */
void raft_release_memory(struct raft *r);

/* Bytes currently allocated by this raft (for memory accounting and tests). */
size_t raft_memory_usage(const struct raft *r);

/* ----------------------------------------------------------------------------- */
/* Inputs                                                                          */

/* One logical clock tick: election timeout / heartbeat / CheckQuorum / transfer
 * timeout bookkeeping. */
int raft_tick(struct raft *r);

/* Processes one message from a peer (see ownership and filtering rules above).
 * RAFT_EINVAL (message ignored) for malformed messages: unknown type, terms or
 * indexes >= 2^62, entries without data, non-consecutive APPEND entries. */
int raft_step(struct raft *r, const struct raft_message *m);

/* Proposes one NORMAL entry (len > 0).  RAFT_OK: appended at (*index, *term) (leader);
 * RAFT_FORWARDED: sent to the leader (*index = *term = 0); negative: refused.
 * index/term may be NULL. */
int raft_propose(struct raft *r, const void *data, size_t len, raft_index *index,
                 raft_term *term);

/* Proposes n NORMAL entries at once (consecutive indexes first_index..+n-1).
 * Same results as raft_propose(); all or nothing. */
struct raft_buf {
    const void *data;
    size_t len;
};
int raft_propose_batch(struct raft *r, const struct raft_buf *bufs, size_t n,
                       raft_index *first_index, raft_term *term);

/* Proposes a configuration change (validated against the current configuration:
 * RAFT_EBADCONF if meaningless — adding an existing voter, removing a non-member,
 * adding a voter as learner, removing the last voter).  Leader only (no forwarding:
 * RAFT_ENOTLEADER on followers). */
int raft_propose_conf_change(struct raft *r, const struct raft_conf_change *cc,
                             raft_index *index, raft_term *term);

/* Starts an election now, as if the election timeout elapsed (PreVote phase first
 * when enabled).  RAFT_ENOTMEMBER if this replica is not a voter. */
int raft_campaign(struct raft *r);

/* Leadership transfer to `target` (dissertation §3.10).  Leader: RAFT_OK, the transfer
 * is under way (aborted after one election timeout); follower: RAFT_FORWARDED if a
 * leader is known.  RAFT_EINVAL if target is not a voter. */
int raft_transfer_leadership(struct raft *r, raft_id target);

/* Linearizable read barrier (dissertation §6.4), see READS above.  RAFT_OK (leader,
 * queued) / RAFT_FORWARDED / RAFT_ENOTLEADER. */
int raft_read_index(struct raft *r, uint64_t ctx);

/* The caller reports the outcome of sending a snapshot to `peer`: on failure the
 * leader probes again later, on success it resumes probing from snapshot index + 1. */
void raft_report_snapshot(struct raft *r, raft_id peer, bool ok);

/* The caller could not deliver to `peer`: stop pipelining, probe again. */
void raft_report_unreachable(struct raft *r, raft_id peer);

/* Outside evidence (src/raft/lease.c): this follower's leader was last heard from
 * `ago` ticks ago — e.g. the multi-raft layer's node liveness for a group that was
 * not ticked while quiesced.  Restates the leader lease (§4.2.3, §9.6): if
 * ago < election_tick the lease holds for election_tick - ago more ticks (the
 * election timer restarts from ago); otherwise it has run out now, and the election
 * timer is set to election_tick (unless already beyond), so the randomized rest of
 * the timeout still staggers campaigns.  No effect unless follower with a known
 * leader.  RAFT_EBUSY between ready and advance. */
int raft_set_leader_heard_ago(struct raft *r, uint32_t ago);

/* Outside evidence (src/raft/lease.c) that another voter is about to campaign —
 * e.g. the multi-raft layer's designated candidate once the leader's node is
 * down: for the next `ticks` ticks this replica's election timeout starts no
 * campaign of its own, so the two do not split the vote.  Nothing else changes:
 * the timer keeps counting, so the lease runs out as before and votes are
 * granted as before; raft_campaign() still campaigns.  The last call wins (0
 * ends a hold); the hold ends by itself when the replica hears of a new term. */
void raft_defer_campaign(struct raft *r, uint32_t ticks);

/* ----------------------------------------------------------------------------- */
/* Ready / Advance                                                                 */

enum raft_role {
    RAFT_FOLLOWER = 0,
    RAFT_PRE_CANDIDATE = 1,
    RAFT_CANDIDATE = 2,
    RAFT_LEADER = 3
};
const char *raft_role_name(int role);

struct raft_read_state {
    raft_index index;  /* serve the read once applied >= index */
    uint64_t ctx;      /* the caller's context from raft_read_index() */
    int status;        /* RAFT_OK or RAFT_EDROPPED (index meaningless) */
};

struct raft_ready {
    /* Volatile state: set when role or leader changed since the last Ready. */
    bool soft_state_changed;
    uint8_t role;               /* enum raft_role (current) */
    raft_id leader;             /* current leader (RAFT_NONE if unknown) */

    /* 1. Persist, in this order: */
    const struct raft_snapshot *snapshot;   /* NULL or a snapshot to install */
    const struct raft_entry *entries;       /* to append (may replace a suffix) */
    size_t n_entries;
    bool has_hard_state;
    struct raft_hard_state hard_state;
    bool term_or_vote_changed;  /* the part of has_hard_state that must be durable
                                   before sending (a commit index alone need not) */
    bool must_sync;             /* fsync needed before sending messages */

    /* 2. Send (after persisting). */
    struct raft_message *messages;
    size_t n_messages;

    /* 3. Apply (after persisting).  A Ready that carries a snapshot carries no
     * committed entries: those after it come in the next Ready, once the
     * application has persisted the snapshot's state (with anything its state
     * machine needs to apply them: dedup records, say). */
    const struct raft_entry *committed;
    size_t n_committed;
    bool conf_changed;          /* configuration changed by rd.committed/snapshot */
    struct raft_conf_state conf_state; /* current configuration (always filled) */
    const struct raft_read_state *read_states;
    size_t n_read_states;
};

/* Whether raft_ready() would return anything. */
bool raft_has_ready(const struct raft *r);
/* Whether the next Ready carries entries to persist (appended since the last one). */
bool raft_has_unstable_entries(const struct raft *r);
/* Collects the pending output.  RAFT_EBUSY if the previous Ready was not advanced;
 * RAFT_ESTORAGE/RAFT_ENOMEM on failure to read committed entries. */
int raft_ready(struct raft *r, struct raft_ready *rd);
/* Acknowledges that rd has been persisted/sent/applied; releases its memory. */
int raft_advance(struct raft *r, const struct raft_ready *rd);

/* ----------------------------------------------------------------------------- */
/* Introspection (read-only, cheap)                                               */

raft_id raft_get_id(const struct raft *r);
int raft_get_role(const struct raft *r);        /* enum raft_role */
raft_term raft_get_term(const struct raft *r);
raft_id raft_get_leader(const struct raft *r);
/* Follower or learner: ticks since its election timer last restarted — since it
 * last heard a leader, or voted (saturates). */
uint32_t raft_get_election_elapsed(const struct raft *r);
raft_index raft_get_commit(const struct raft *r);
raft_index raft_get_applied(const struct raft *r);
raft_index raft_get_first_index(const struct raft *r);
raft_index raft_get_last_index(const struct raft *r);
bool raft_is_voter(const struct raft *r, raft_id id);
bool raft_is_learner(const struct raft *r, raft_id id);
bool raft_is_member(const struct raft *r, raft_id id); /* voter or learner */
/* Whether a log ending at (last_term, last_index) is at least as up to date as this
 * replica's (§5.4.1): a vote request carrying it passes that test here. */
bool raft_is_log_up_to_date(const struct raft *r, raft_term last_term, raft_index last_index);
/* Calls match on the entries of [lo, hi), from storage and the unstable log, in
 * index order, until it returns true (then *found).  RAFT_ECOMPACTED if lo is
 * below the first index, RAFT_EUNAVAILABLE if hi is past the last index + 1, or
 * a storage error.  Reads the log only: the caller bounds hi - lo. */
int raft_find_entry(struct raft *r, raft_index lo, raft_index hi,
                    bool (*match)(void *arg, const struct raft_entry *e), void *arg,
                    bool *found);
/* Current configuration; arrays valid until the next mutating call. */
void raft_get_conf_state(const struct raft *r, struct raft_conf_state *out);
/* True if a conf change was proposed/appended and not yet applied. */
bool raft_conf_change_pending(const struct raft *r);
/* Target of the leadership transfer in progress, RAFT_NONE if none. */
raft_id raft_get_transferee(const struct raft *r);

struct raft_status {
    raft_id id;
    int role;
    raft_term term;
    raft_id vote;
    raft_id leader;
    raft_index commit;
    raft_index applied;
    raft_index first_index;
    raft_index last_index;
    bool is_learner;
    bool conf_change_pending;
    raft_id transferee;
    uint32_t n_voters;
    uint32_t n_learners;
    uint32_t n_pending_reads;
};
void raft_get_status(const struct raft *r, struct raft_status *out);

enum raft_progress_state {
    RAFT_PROGRESS_PROBE = 0,     /* one APPEND at a time until the match is found */
    RAFT_PROGRESS_REPLICATE = 1, /* pipelined APPENDs, up to max_inflight_msgs     */
    RAFT_PROGRESS_SNAPSHOT = 2   /* a snapshot is being sent                        */
};

struct raft_progress_info {
    raft_id id;
    raft_index match;
    raft_index next;
    int state;                   /* enum raft_progress_state */
    bool recent_active;          /* heard from within the current election timeout */
    bool is_learner;
    uint32_t inflight;           /* APPENDs in flight */
    raft_index pending_snapshot; /* snapshot index being sent (state SNAPSHOT) */
    raft_index snapshot_sent;    /* the last snapshot sent, while above match (0 else):
                                    the member resumes after it once installed */
};
/* Number of tracked peers (voters + learners, self included).  Meaningful on the
 * leader; on followers the entries exist but match/next are stale. */
size_t raft_progress_count(const struct raft *r);
/* i-th peer's progress (0 <= i < raft_progress_count); RAFT_EINVAL if out of range. */
int raft_progress_at(const struct raft *r, size_t i, struct raft_progress_info *out);
/* Progress of a peer by id; RAFT_EINVAL if unknown. */
int raft_progress_get(const struct raft *r, raft_id id, struct raft_progress_info *out);

/* Quiescence check for the multi-raft layer.  Leader: every peer's match == last
 * index, commit == last index, applied == commit, nothing unstable, no pending
 * reads, no transfer, no pending Ready.  Follower: commit == last index == applied,
 * no pending Ready and nothing unstable.  Candidates: false. */
bool raft_is_fully_replicated(const struct raft *r);
/* The same, except that a leader's peer behind the last index is allowed when
 * lagging_ok(arg, its id) says so (the multi-raft layer: its node is down). */
bool raft_is_fully_replicated_except(const struct raft *r,
                                     bool (*lagging_ok)(void *arg, raft_id id), void *arg);

#endif /* MULTIRAFT_RAFT_H */
