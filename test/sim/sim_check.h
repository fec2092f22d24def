/*
 * sim_check.h — safety checkers for ONE Raft group, fed by the driver's observations.
 *
 * The checkers know nothing about the network or the scheduler; the driver reports
 * what each replica persisted, sent, committed and applied, and they verify:
 *
 *  - Election Safety (§5.2): at most one leader per term.
 *  - Log Matching (§5.3): every (index, term) ever persisted anywhere maps to one
 *    entry digest and one previous term — by induction two logs that agree on
 *    (index, term) agree on the whole prefix.
 *  - Leader Completeness (§5.4): a replica first seen as leader of term T holds every
 *    entry known committed in a term before T (and every such acknowledged
 *    proposal).  Not the entries committed since: a vote granted before a later
 *    term began may reach its candidate after that term committed entries, and the
 *    stale leader it makes can commit nothing (docs/sim-findings.md, finding 10).
 *  - State Machine Safety (§5.4.3): every replica applies the same entry at each index
 *    and its state-machine digest (a hash chain over the applied sequence) equals the
 *    canonical one, so each applied sequence is a prefix of one common sequence;
 *    snapshots carry the digest and are checked when installed.
 *  - One vote per term per voter (§5.2), including across crashes.
 *  - Proposals: an acknowledged (committed) proposal is never lost; the fate of every
 *    proposal with a known (index, term) is tracked for the liveness check.
 *
 * A multi-raft simulator instantiates one struct sim_check per group.
 */
#ifndef SIM_CHECK_H
#define SIM_CHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "raft.h"
#include "sim_log.h"
#include "sim_map.h"
#include "sim_trace.h"

struct sim_canon {
    raft_term term;
    uint64_t hash;
    raft_term commit_term; /* it was committed in this term or an earlier one: the
                            * lowest current term of a replica seen holding it
                            * committed (a replica learns a commit index in the
                            * term it was made in, or later) */
    uint64_t chain;     /* state-machine digest after applying this index */
    uint8_t defined;    /* bit 0: term/hash known committed; bit 1: chain known */
};

enum sim_prop_status {
    SIM_PROP_PENDING = 0,   /* (index, term) known, fate unknown */
    SIM_PROP_FORWARDED,     /* forwarded to a leader: index unknown, may be lost */
    SIM_PROP_COMMITTED,     /* acknowledged */
    SIM_PROP_DROPPED        /* known never to commit at its index */
};

struct sim_prop {
    uint64_t id;
    raft_id node;        /* replica it was proposed on */
    raft_index index;    /* 0 if forwarded */
    raft_term term;
    uint64_t hash;       /* digest of the entry */
    uint8_t status;
    bool forwarded;      /* index learnt when applied; duplicates possible */
};

struct sim_check {
    struct sim_trace *trace;
    struct sim_canon *canon;   /* canon[i] for log index i (canon[0] unused) */
    size_t canon_cap;
    raft_index committed_max;  /* highest index known committed */
    struct sim_map entries;    /* (index, term) → (hash, prev_term) */
    struct sim_map leaders;    /* (term, 0) → leader id */
    struct sim_map votes;      /* (voter, term) → candidate */
    struct sim_map leader_seen;/* (replica, term) → 1 once completeness was checked */
    struct sim_prop *props;
    size_t n_props, cap_props;
    size_t first_open;         /* props before this index are all resolved */
    uint64_t violations;
    char first_violation[512];
    /* statistics */
    uint64_t n_leaders, n_applied, n_snapshots;
};

void sim_check_init(struct sim_check *c, struct sim_trace *trace);
void sim_check_free(struct sim_check *c);

/* Records a violation (only the first message is kept) and traces it. */
void sim_check_fail(struct sim_check *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* A replica durably appended entry (index, term, hash) whose predecessor has
 * prev_term (Log Matching). */
void sim_check_persisted_entry(struct sim_check *c, raft_id node, raft_index index,
                               raft_term term, uint64_t hash, raft_term prev_term);
/* A replica whose current term is node_term has a commit index covering (index,
 * term, hash) (from its persisted log). */
void sim_check_committed(struct sim_check *c, raft_id node, raft_term node_term,
                         raft_index index, raft_term term, uint64_t hash);
/* A replica whose current term is node_term applied (index, term, hash) reaching
 * state-machine digest chain (node_term 0: committed before any election). */
void sim_check_applied(struct sim_check *c, raft_id node, raft_term node_term,
                       raft_index index, raft_term term, uint64_t hash, uint64_t chain);
/* A replica installed a snapshot at (index, term) carrying digest chain. */
void sim_check_snapshot(struct sim_check *c, raft_id node, raft_index index,
                        raft_term term, uint64_t chain);
/* A replica is leader of term; returns true the first time (node, term) is seen, in
 * which case leader completeness has been checked against its log. */
bool sim_check_leader(struct sim_check *c, raft_id node, raft_term term,
                      const struct sim_log *log);
/* A replica sent a granted vote (its persisted vote) for candidate in term. */
void sim_check_vote(struct sim_check *c, raft_id voter, raft_term term, raft_id candidate);

/* What the electability check needs to know about one replica (durable state). */
struct sim_view {
    raft_id id;
    const struct sim_log *log;
    const raft_id *voters;   /* its configuration's voters (as of `applied`) */
    uint32_t n_voters;
    raft_index applied;      /* durable applied index */
    raft_index commit;       /* durable commit index (hard state) */
};

/* Committed entries can never be lost (§5.4, Figure 8): for the highest committed
 * entry, no replica that lacks it may be electable — i.e. no replica that is a voter
 * of its own configuration may find a majority of that configuration whose logs are
 * not more up to date than its own (§5.4.1 is the only rule a voter must apply; leases
 * and PreVote are liveness aids).  Checks the situation itself, so it catches a
 * premature commit even when no crash follows to actually overwrite the entry. */
void sim_check_electable(struct sim_check *c, const struct sim_view *v, size_t n);

/* Canonical committed entry at index, NULL if not known committed. */
const struct sim_canon *sim_check_canon(const struct sim_check *c, raft_index index);

/* Proposals. */
void sim_check_proposal(struct sim_check *c, uint64_t id, raft_id node, raft_index index,
                        raft_term term, uint64_t hash);
/* An applied NORMAL entry carried proposal id (resolves forwarded proposals). */
void sim_check_proposal_applied(struct sim_check *c, uint64_t id, raft_index index,
                                raft_term term);
/* Resolves pending proposals whose index is known committed. */
void sim_check_resolve(struct sim_check *c);
/* Once a leader of term `term` has committed its whole log up to `last`: a pending
 * proposal of an older term beyond `last` can never commit (terms in a log never
 * decrease and every later leader extends this log): known dropped. */
void sim_check_resolve_beyond(struct sim_check *c, raft_index last, raft_term term);
/* Number of proposals with a known index still unresolved; *forwarded gets the
 * number of forwarded proposals never seen applied (allowed to be lost). */
size_t sim_check_unresolved(const struct sim_check *c, size_t *forwarded);

#endif /* SIM_CHECK_H */
