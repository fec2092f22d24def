/*
 * sim_log.h — a shadow of one replica's persisted log: (term, digest) per index plus
 * the snapshot point.  Kept in step with the memory storage by the driver, so the
 * checkers can compare logs cheaply (digests, not data) and survive crashes exactly
 * like the storage does.
 */
#ifndef SIM_LOG_H
#define SIM_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "raft.h"

struct sim_log_ent {
    raft_term term;
    uint64_t hash;  /* sim_entry_hash() of type + data */
    uint8_t type;   /* enum raft_entry_type */
};

struct sim_log {
    raft_index snap_index;  /* entries <= snap_index are compacted */
    raft_term snap_term;
    struct sim_log_ent *e;  /* e[k] holds index snap_index + 1 + k */
    size_t n, cap;
};

void sim_log_init(struct sim_log *l);
void sim_log_free(struct sim_log *l);

static inline raft_index sim_log_first(const struct sim_log *l) { return l->snap_index + 1; }
static inline raft_index sim_log_last(const struct sim_log *l) { return l->snap_index + l->n; }

/* Term of entry i (snap_index allowed; index 0 has term 0).  False if unknown. */
bool sim_log_term(const struct sim_log *l, raft_index i, raft_term *out);
/* Entry i (snap_index < i <= last), NULL otherwise. */
const struct sim_log_ent *sim_log_get(const struct sim_log *l, raft_index i);
/* Appends entry `index`, truncating any suffix from index on; indexes <= snap_index
 * are skipped (returns 0).  Returns -1 on a gap (index > last + 1). */
int sim_log_append(struct sim_log *l, raft_index index, raft_term term, uint64_t hash,
                   uint8_t type);
/* Whether an entry of type CONF_CHANGE lies in (lo, hi]. */
bool sim_log_has_conf_change(const struct sim_log *l, raft_index lo, raft_index hi);
/* Discards entries <= index (snap_index < index <= last). */
void sim_log_compact(struct sim_log *l, raft_index index);
/* Replaces the whole log by a snapshot point. */
void sim_log_install(struct sim_log *l, raft_index index, raft_term term);

/* Digest of an entry's content (type and data; not index/term). */
uint64_t sim_entry_hash(uint8_t type, const void *data, size_t len);
/* Next state-machine digest after applying (index, term, hash). */
uint64_t sim_chain_next(uint64_t chain, raft_index index, raft_term term, uint64_t hash);

#endif /* SIM_LOG_H */
