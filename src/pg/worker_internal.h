/*
 * worker_internal.h — shared by the files of the multiraft worker:
 *
 *   worker.c          process start, waiting for CREATE EXTENSION, the loop,
 *                     tick scheduling, periodic maintenance, recovery
 *   worker_node.c     the multi-raft node's life: allocator, creation and load
 *                     from storage, requests -> mr_* calls, the tokens in flight,
 *                     completions, published status and counters
 *   worker_batch.c    one Ready/Advance cycle: persist (one transaction), send,
 *                     complete, advance
 *   worker_settings.c the worker's session settings: durability, the settings of
 *                     a database or server it cannot run under, planner options
 */
#ifndef MULTIRAFT_WORKER_INTERNAL_H
#define MULTIRAFT_WORKER_INTERNAL_H

#include "worker_layer.h"

/* The running node (NULL while not serving). */
extern struct mr_node *worker_node;

/* ---- worker.c ---- */

/* In a PG_CATCH block of the worker: back in `cxt`, takes the error (copied, for
 * the caller to log and FreeErrorData) and aborts the failed transaction. */
extern ErrorData *worker_take_error(MemoryContext cxt);

/* ---- worker_settings.c ---- */

/* At start, once connected: every override and the planner options. */
extern void worker_settings_apply(void);
/* After a configuration reload: synchronous_commit, which a reload may turn off
 * (the other overrides outrank the file). */
extern void worker_settings_reassert(void);

/* ---- worker_node.c ---- */

/* Creates the node and restores it from the tables in its own transaction.
 * Raises an ERROR on failure (nothing is left allocated then).  Returns false
 * (logged, no node) if the tables hold more groups than multiraft.max_groups. */
extern bool worker_node_start(void);
/* Whether a reload changed a setting the running node was built from. */
extern bool worker_node_settings_changed(void);
extern void worker_node_apply_live_settings(void);
/* Frees the node; every request handed to it and not completed yet is completed
 * with `result` (detail shown to the user). */
extern void worker_node_stop(MultiraftResult result, const char *detail);

/* requests_drain() handler: one request -> one mr_* call. */
extern void worker_handle_request(MultiraftRequest *req, void *arg);
/* transport_drain_inbox() handler. */
extern void worker_receive_envelope(const struct mr_envelope *env, void *arg);
/* transport_take_unreachable() callback: mr_report_unreachable() for node_id. */
extern void worker_report_unreachable(int32 node_id, void *arg);
/* Delivers completions (copied out of a batch before mr_advance). */
extern void worker_complete(const struct mr_completion *c, size_t n);

/* Publishes the status of these groups (removing rows of groups gone). */
extern void worker_publish_groups(const mr_group_id *groups, size_t n);
/* ... of every group (once the node is built). */
extern void worker_publish_all_groups(void);
/* Adds the layer's counter increments since the last call to the stats. */
extern void worker_publish_counters(void);

/* ---- worker_batch.c ---- */

/* Runs one Ready/Advance cycle if the node has output.  Returns false if the
 * batch could not be persisted: the node's memory is then ahead of the tables
 * and must be rebuilt (the caller stops and restarts it). */
extern bool worker_process_batch(void);

#endif
