/*
 * transport.h — node-to-node transport used by the worker loop.
 *
 * The worker hands each outgoing envelope (one per destination node and batch)
 * to transport_send(), which never blocks: it encodes, queues (bounded; drops and
 * counts when full) and lets the connection to that peer drain it.  Incoming
 * envelopes arrive through the receive function into a shared-memory inbox and are
 * handed to the worker by transport_drain_inbox().  transport_wait() is the
 * worker's only wait: latch, postmaster death, peer sockets and the tick deadline.
 */
#ifndef MULTIRAFT_TRANSPORT_H
#define MULTIRAFT_TRANSPORT_H

#include "multiraft.h"

/* Worker start: memory, peer table (from multiraft.node). */
extern void transport_init(void);
/* Re-read multiraft.node (call inside a transaction) after add_node/remove_node. */
extern void transport_reload_nodes(void);
/* Queue one envelope for env->to_node (copied; never blocks). */
extern void transport_send(const struct mr_envelope *env);
/* Wait at most timeout_ms for the latch, a peer socket or the timeout, and make
 * progress on every connection (connect, flush, read results). */
extern void transport_wait(long timeout_ms);
/* Decode every envelope in the inbox and pass each to fn (borrowed for the call). */
extern void transport_drain_inbox(void (*fn) (const struct mr_envelope *env, void *arg),
								  void *arg);
/* Worker exit: close connections. */
extern void transport_shutdown(void);
/* Passes fn each node an envelope could not be sent to since the last call (its
 * link is down: backing off before a reconnect), once. */
extern void transport_take_unreachable(void (*fn) (int32 node_id, void *arg), void *arg);

/*
 * Whether multiraft.node changed (a committed add_node/remove_node) since the
 * last load.  transport_wait() reloads by itself when called outside a
 * transaction; a worker that waits inside one may check this and call
 * transport_reload_nodes().
 */
extern bool transport_reload_needed(void);

/*
 * Reloads multiraft.node if it changed, in a transaction of its own; nothing
 * when called inside a transaction.  A failure is logged, not thrown.
 */
extern void transport_reload_if_needed(void);

#endif
