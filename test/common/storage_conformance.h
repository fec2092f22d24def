/*
 * storage_conformance.h — checks that a storage implementation honours the contract
 * of struct raft_storage (src/raft/raft.h) together with the write operations a
 * caller performs from Ready.  Not tied to any test framework: failures go to a
 * callback, so the same suite runs in unit tests (memory storage) and inside a server
 * (the PostgreSQL table storage).
 */
#ifndef MULTIRAFT_STORAGE_CONFORMANCE_H
#define MULTIRAFT_STORAGE_CONFORMANCE_H

#include "raft.h"

#include <stddef.h>

/* How the suite creates and writes to storages.  Every `create` must return a fresh,
 * empty storage (no entries, zero hard state, empty configuration, no snapshot:
 * first_index 1, last_index 0) and fill *st with its read interface.  Write
 * operations have the semantics of the raft_memory_storage_* functions of the same
 * name (raft.h).  Return 0 (RAFT_OK) or a raft error code. */
struct storage_factory {
    void *ctx;
    int (*create)(void *ctx, void **handle, struct raft_storage *st);
    void (*destroy)(void *ctx, void *handle);
    int (*append)(void *ctx, void *handle, const struct raft_entry *e, size_t n);
    int (*set_hard_state)(void *ctx, void *handle, const struct raft_hard_state *hs);
    int (*set_conf_state)(void *ctx, void *handle, const struct raft_conf_state *cs);
    int (*apply_snapshot)(void *ctx, void *handle, const struct raft_snapshot *snap);
    int (*create_snapshot)(void *ctx, void *handle, raft_index index,
                           const struct raft_conf_state *cs, const void *data, size_t len);
    int (*compact)(void *ctx, void *handle, raft_index index);
    /* Optional (may be NULL): close and reopen the same storage from its durable
     * state, as after a crash; updates *handle and *st. */
    int (*reopen)(void *ctx, void **handle, struct raft_storage *st);
};

/* Called once per failed check: `check` names the check, `message` says what. */
typedef void (*storage_report_fn)(void *arg, const char *check, const char *message);

/* Runs every check; returns the number of failed checks (0 = conforming).  If
 * n_checks is not NULL it receives the number of checks run. */
int storage_conformance_run(const struct storage_factory *f, storage_report_fn report,
                            void *arg, int *n_checks);

/* A factory over the in-memory storage (src/raft/memory_storage.c). */
void storage_conformance_memory_factory(struct storage_factory *f);

#endif /* MULTIRAFT_STORAGE_CONFORMANCE_H */
