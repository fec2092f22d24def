/*
 * raft_internal.h — private state of one raft replica, shared by the files of src/raft only.
 * Nothing here is part of the API; the upper layers include raft.h.
 */
#ifndef MULTIRAFT_RAFT_INTERNAL_H
#define MULTIRAFT_RAFT_INTERNAL_H

#include "raft.h"

#include <string.h>

/* ------------------------------------------------------------------ memory */

void *raft_mem_alloc(struct raft *r, size_t n);
void *raft_mem_realloc(struct raft *r, void *p, size_t old_n, size_t n);
void raft_mem_free(struct raft *r, void *p, size_t n);

/* Grows *arr (elements of `size` bytes) to hold at least `need`; RAFT_ENOMEM on
 * failure.  Capacity doubles, starting at `initial`. */
int raft_vec_grow(struct raft *r, void **arr, uint32_t *cap, uint32_t need, size_t size,
                  uint32_t initial);
static inline int raft_vec_reserve(struct raft *r, void **arr, uint32_t *cap, uint32_t need,
                                   size_t size, uint32_t initial)
{
    if (need <= *cap)
        return 0;
    return raft_vec_grow(r, arr, cap, need, size, initial);
}

/* Arena: bump allocator for everything handed out in one Ready (messages' entry
 * arrays and copied data, snapshots); chunks never move; all freed at advance. */
struct raft_arena_chunk {
    struct raft_arena_chunk *next;
    size_t used;
    size_t cap;
    /* data follows, max_align_t aligned */
};
void *raft_arena_alloc(struct raft *r, size_t n);
void raft_arena_reset(struct raft *r);

/* Collector for storage->entries(): entry structs go in a growable array, data is
 * copied into the arena. */
struct raft_entry_sink {
    struct raft *r;
    struct raft_entry *ents;
    uint32_t n;
    uint32_t cap;
    raft_index next;      /* index the next pushed entry must have */
    uint64_t bytes;
    int err;
};

/* -------------------------------------------------------------- unstable log */

/* Entry data of the unstable log lives in chunks, one per append call; a chunk is
 * freed at advance once every entry in it is stable (or truncated). */
struct raft_data_chunk {
    struct raft_data_chunk *next;
    raft_index last;      /* last index whose data is in this chunk */
    size_t size;
    size_t used;
    /* data follows */
};

struct raft_log {
    raft_index committed;
    raft_index applied;        /* last index handed out to the caller and advanced */
    /* In-memory suffix of the log: indexes offset .. offset+n-1.  The first
     * n_stable of them are already persisted and only kept (as a cache) until they
     * are applied; the rest are unstable (to be persisted from the next Ready).
     * Entries with index < offset are read from storage. */
    raft_index offset;
    struct raft_entry *ents;
    uint32_t n;
    uint32_t n_stable;
    uint32_t cap;
    struct raft_data_chunk *chunks;
    /* Snapshot received from the leader, not yet installed by the caller.  Owned. */
    struct raft_snapshot *snap;
    raft_id *snap_ids;
    bool snap_handed;          /* already in a Ready */
    uint32_t n_handed;         /* unstable entries handed in the current Ready */
};

raft_index raft_log_last_index(struct raft *r);
/* Last index known to be persisted (the leader's own "match"). */
raft_index raft_log_stable_last(const struct raft *r);
raft_index raft_log_first_index(struct raft *r);
raft_term raft_log_last_term(struct raft *r);
/* Term of entry i; 0 with *rc = RAFT_ECOMPACTED / RAFT_EUNAVAILABLE if unknown
 * (term(0) == 0 is valid). */
raft_term raft_log_term(struct raft *r, raft_index i, int *rc);
/* True if entry i exists with term t (i == 0, t == 0 always matches). */
bool raft_log_match(struct raft *r, raft_index i, raft_term t);
/* §5.4.1: is (last_term, last_index) at least as up to date as our log? */
bool raft_log_up_to_date(struct raft *r, raft_term last_term, raft_index last_index);
/* Appends entries (consecutive, starting at e[0].index <= last + 1), truncating any
 * unstable/stable suffix from e[0].index on; data copied into one chunk.  Terms and
 * indexes are taken from e. */
int raft_log_append(struct raft *r, const struct raft_entry *e, size_t n);
/* Number of entries from lo (which must be in the in-memory log) up to hi whose data
 * fits max_bytes (at least one). */
uint32_t raft_log_mem_count(const struct raft *r, raft_index lo, raft_index hi,
                            uint64_t max_bytes);
/* Fills sink with entries [lo, hi) up to max_bytes (at least one), from storage and
 * the unstable log. */
int raft_log_entries(struct raft *r, raft_index lo, raft_index hi, uint64_t max_bytes,
                     struct raft_entry_sink *sink);
void raft_log_commit_to(struct raft *r, raft_index i);
/* Installs a snapshot received from the leader (copied). */
int raft_log_restore(struct raft *r, const struct raft_snapshot *s);
/* After advance: the first `n` unstable entries are persisted. */
void raft_log_stable(struct raft *r, uint32_t n);
void raft_log_free(struct raft *r);
/* Frees the empty unstable array and spare data chunks (log.n must be 0). */
void raft_log_release(struct raft *r);
void raft_sink_init(struct raft_entry_sink *s, struct raft *r, raft_index lo);
void raft_sink_fini(struct raft_entry_sink *s);

/* ------------------------------------------------------------------ progress */

struct raft_progress {
    raft_id id;
    raft_index match;
    raft_index next;
    raft_index pending_snapshot;
    raft_index snapshot_sent;  /* last snapshot index sent (raft_progress_info shows
                                  it while above match) */
    uint64_t read_ack;         /* highest read-index round acknowledged */
    raft_index commit_sent;    /* highest commit index sent in an APPEND */
    raft_index durable_sent;   /* highest index announced in a DURABLE (raft.h) */
    raft_index *infl;          /* ring of last indexes of APPENDs in flight */
    uint16_t infl_start;
    uint16_t infl_count;
    uint16_t infl_cap;
    uint8_t state;             /* enum raft_progress_state */
    uint8_t vote;              /* 0 none, 1 granted, 2 rejected (current election) */
    bool learner;
    bool recent_active;
    bool probe_sent;           /* probe: an APPEND is out, wait for an answer */
    uint32_t snapshot_waits;   /* snapshot: heartbeat answers since it was sent (32
                                  bits: election_tick / heartbeat_tick may pass 65,535) */
};

struct raft_progress *raft_progress_find(struct raft *r, raft_id id);
void raft_progress_reset_all(struct raft *r);   /* on becoming leader */
void raft_progress_become_probe(struct raft *r, struct raft_progress *pr);
void raft_progress_become_replicate(struct raft *r, struct raft_progress *pr);
void raft_progress_become_snapshot(struct raft *r, struct raft_progress *pr,
                                   raft_index snap_index);
bool raft_progress_paused(struct raft *r, const struct raft_progress *pr);
/* Records an APPEND ending at `last` (replicate state); RAFT_ENOMEM possible. */
int raft_progress_sent(struct raft *r, struct raft_progress *pr, raft_index last);
/* Frees in-flight slots acknowledged up to `to`. */
void raft_progress_ack(struct raft_progress *pr, raft_index to);
void raft_progress_free_infl(struct raft *r, struct raft_progress *pr);
/* Quorum of the current voters: n/2 + 1. */
uint32_t raft_quorum(const struct raft *r);
/* The largest value v such that a quorum of voters has value >= v, where a voter's
 * value is its match index (QV_MATCH) or the read-index round it acknowledged
 * (QV_READ_ACK; the leader itself counts as having acknowledged every round). */
enum { QV_MATCH, QV_READ_ACK };
uint64_t raft_quorum_value(struct raft *r, int which);

/* ----------------------------------------------------------- read requests */

struct raft_read_req {
    raft_index index;          /* commit index recorded (valid once seq != 0) */
    uint64_t ctx;
    uint64_t seq;              /* heartbeat round; 0 = deferred (§6.4: no commit in
                                  term yet) */
    raft_id from;              /* requester (self for local) */
};

/* ---------------------------------------------------------------- output */

struct raft_output {
    struct raft_message *msgs;
    uint32_t n_msgs;
    uint32_t cap_msgs;
    struct raft_read_state *rstates;
    uint32_t n_rstates;
    uint32_t cap_rstates;
    struct raft_arena_chunk *arena;
    struct raft_entry *rd_committed;  /* committed entries of the current Ready */
    uint32_t n_rd_committed;
    uint32_t cap_rd_committed;
    const struct raft_entry *rd_comm; /* committed entries handed out: rd_committed
                                         or a slice of the in-memory log */
    uint32_t n_rd_comm;
    uint32_t cap_scratch;
    struct raft_entry *scratch;       /* spare buffer for sinks (kept while active) */
};

/* The output block, allocated on first use (NULL if out of memory). */
struct raft_output *raft_out_get(struct raft *r);

/* ---------------------------------------------------------------- the raft */

struct raft {
    struct raft_allocator a;
    struct raft_storage st;
    size_t mem;                 /* bytes allocated (accounting) */

    raft_id id;
    raft_term term;
    raft_id vote;
    raft_id leader;
    uint8_t role;
    bool pre_vote;
    bool check_quorum;
    bool no_forward;
    bool durable_notices;       /* raft.h, DURABLE NOTICES */
    bool busy;                  /* between ready and advance */
    bool conf_changed;          /* since the last Ready */
    bool removing_self;         /* leader: its own removal is in the uncommitted log */

    uint32_t election_tick;
    uint32_t heartbeat_tick;
    uint32_t randomized_timeout;
    uint32_t election_elapsed;
    uint32_t campaign_hold;       /* raft_defer_campaign: ticks without own campaign */
    uint32_t heartbeat_elapsed;
    uint32_t transfer_elapsed;
    uint32_t max_inflight;
    uint64_t max_msg_size;
    uint64_t max_committed_size;
    uint64_t prng;

    struct raft_log log;
    /* Follower: the current leader's log is durable through this index (its
     * DURABLE notices in this term; 0 = none). */
    raft_index leader_durable;

    /* Configuration: the progress array is the membership (voters and learners). */
    struct raft_progress *prs;
    uint32_t n_prs;
    uint32_t n_voters;
    raft_id *conf_ids;          /* voters then learners, rebuilt on change */
    uint32_t n_conf_ids;
    raft_index pending_conf_index;
    raft_id transferee;
    /* Follower: a TIMEOUT_NOW of this term arrived while a committed configuration
     * change was not applied yet, so it could not campaign then: it does once
     * raft_advance applies it (0 = none; transfer.c). */
    raft_term timeout_now_term;
    uint32_t timeout_now_age;   /* ticks since; dropped after an election timeout,
                                   when the leader has given the transfer up */

    struct raft_read_req *reads;
    uint32_t n_reads;
    uint32_t cap_reads;
    uint64_t read_seq;

    /* Output for the next Ready and buffers reused between Readies; allocated on
     * demand and freed when idle (raft_release_memory), so quiesced groups do not
     * pay for it. */
    struct raft_output *out;

    /* State last handed out, to compute what changed. */
    struct raft_hard_state prev_hs;
    uint8_t prev_role;
    raft_id prev_leader;
};

/* --------------------------------------------------------------- transitions */

void raft_become_follower(struct raft *r, raft_term term, raft_id leader);
void raft_become_pre_candidate(struct raft *r);
void raft_become_candidate(struct raft *r);
int raft_become_leader(struct raft *r); /* RAFT_ENOMEM: stepped down again */
void raft_reset_election_timer(struct raft *r);
uint64_t raft_prng_next(struct raft *r);

/* election.c */
int raft_hup(struct raft *r, bool transfer);
/* Whether a committed configuration change awaits its application here (no
 * campaign until it is applied: the configuration must be the one it counts). */
bool raft_unapplied_conf_change(struct raft *r);
/* After raft_advance: the campaign a TIMEOUT_NOW asked for, if it had to wait. */
int raft_transfer_after_apply(struct raft *r);
int raft_step_vote_req(struct raft *r, const struct raft_message *m);
int raft_step_vote_resp(struct raft *r, const struct raft_message *m);
bool raft_promotable(struct raft *r);

/* replication.c */
int raft_send_append(struct raft *r, struct raft_progress *pr, bool send_if_empty);
int raft_broadcast_append(struct raft *r);
int raft_broadcast_heartbeat(struct raft *r, uint64_t ctx);
int raft_step_append(struct raft *r, const struct raft_message *m);
int raft_step_heartbeat(struct raft *r, const struct raft_message *m);
int raft_step_snapshot(struct raft *r, const struct raft_message *m);
int raft_step_append_resp(struct raft *r, const struct raft_message *m);
int raft_step_heartbeat_resp(struct raft *r, const struct raft_message *m);
int raft_step_durable(struct raft *r, const struct raft_message *m);
/* Leader: DURABLE notices for the entries of the Ready being built (raft.h). */
int raft_send_durable_notices(struct raft *r, raft_index applied);
/* Follower: commits what its leader's notices and its own durable log prove. */
void raft_infer_commit(struct raft *r);
/* Leader: advances commit per §5.3/§5.4.2; true if it moved. */
bool raft_maybe_commit(struct raft *r);
/* Leader: maybe_commit and, if it moved, broadcast the new commit. */
int raft_commit_and_broadcast(struct raft *r);
/* Leader appends entries of its term (data copied) and replicates. */
int raft_leader_append(struct raft *r, const struct raft_buf *bufs, size_t n, uint8_t type,
                       raft_index *first_index);

/* propose.c */
/* Leader: appends the ordinary commands of a follower's PROPOSE (others dropped). */
int raft_step_propose(struct raft *r, const struct raft_message *m);

/* membership.c.  Out of memory, every call leaves the configuration unchanged. */
/* A configuration built aside (its memory taken), to be swapped in or discarded:
 * a snapshot install takes the memory of its log and of its configuration before
 * it changes either. */
struct raft_conf_build {
    struct raft_progress *prs;  /* members, id and learner set */
    raft_id *ids;               /* room for n_prs ids */
    uint32_t n_prs;
};
int raft_conf_prepare(struct raft *r, const struct raft_conf_state *cs,
                      struct raft_conf_build *b);
/* Replaces the configuration with b's; progress starts from the log as it is now. */
void raft_conf_swap(struct raft *r, struct raft_conf_build *b);
void raft_conf_discard(struct raft *r, struct raft_conf_build *b);
int raft_conf_init(struct raft *r, const struct raft_conf_state *cs); /* prepare + swap */
int raft_conf_apply(struct raft *r, const struct raft_conf_change *cc);
int raft_conf_validate(struct raft *r, const struct raft_conf_change *cc);

/* read_index.c */
int raft_read_request(struct raft *r, raft_id from, uint64_t ctx);
int raft_reads_on_commit_in_term(struct raft *r);
int raft_reads_on_ack(struct raft *r);
void raft_reads_drop_all(struct raft *r);
int raft_step_read_index(struct raft *r, const struct raft_message *m);
int raft_step_read_index_resp(struct raft *r, const struct raft_message *m);
int raft_push_read_state(struct raft *r, raft_index index, uint64_t ctx, int status);

/* transfer.c */
int raft_transfer_start(struct raft *r, raft_id target);
void raft_transfer_abort(struct raft *r);
int raft_transfer_on_progress(struct raft *r, struct raft_progress *pr);
int raft_step_timeout_now(struct raft *r, const struct raft_message *m);

/* messages */
/* Appends an outgoing message (copied; entries/snapshot pointers must already be
 * arena memory).  Fills from/term if m->from == 0. */
int raft_send(struct raft *r, struct raft_message *m);
bool raft_committed_in_term(struct raft *r);
/* Frees everything handed out in a Ready (messages, arena, read states...). */
void raft_free_output(struct raft *r);
/* Forgets the output handed out in a Ready but keeps buffers for reuse. */
void raft_reset_output(struct raft *r);
void raft_arena_reset_keep(struct raft *r);

#endif /* MULTIRAFT_RAFT_INTERNAL_H */
