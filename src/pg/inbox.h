/*
 * inbox.h — the transport's shared memory: the inbox through which backends
 * running multiraft.receive() or receive_stream() hand frames to the worker
 * (links the worker adopted bypass it: transport_adopt.h), the node-wide
 * transport counters, the per-peer link state shown by multiraft.nodes, and the
 * registry generation that tells the worker to re-read multiraft.node.
 *
 * The inbox is a ring of byte records (u32 length + bytes) of multiraft.inbox_size
 * bytes under MR_LOCK_INBOX.  Producers (any backend) never wait for room: a
 * frame that does not fit is dropped and counted — Raft tolerates loss.  The
 * single consumer is the worker.  Peer rows are written by the worker (link
 * state, send counters) and by receiving backends (receive counters) under
 * MR_LOCK_PEERS.
 */
#ifndef MULTIRAFT_INBOX_H
#define MULTIRAFT_INBOX_H

#include "datatype/timestamp.h"

/* GUCs of the transport (defined by transport_define_gucs, from _PG_init). */
extern int	multiraft_cluster_id;
extern int	multiraft_inbox_size_kb;
extern void transport_define_gucs(void);

/* Node-wide transport counters; names in inbox.c, same order. */
typedef enum TransportCounter
{
	TC_FRAMES_RECEIVED = 0,		/* accepted by receive_stream() or receive() */
	TC_BYTES_RECEIVED,
	TC_ENVELOPES_RECEIVED,		/* decoded and handed to the worker */
	TC_REJECTED,				/* frames/batches refused by validation */
	TC_INBOX_DROPS,				/* frames dropped: inbox full */
	TC_CHUNKS_RECEIVED,
	TC_REASSEMBLED,				/* chunked batches completed */
	TC_REASSEMBLY_FAILURES,		/* chunked batches abandoned (gap, restart) */
	TC_ENVELOPES_SENT,			/* handed to a connection */
	TC_FRAMES_SENT,
	TC_BYTES_SENT,
	TC_SEND_DROPS,				/* envelopes dropped: queue full, peer down */
	TC_SEND_ERRORS,				/* streams the peer ended with an error */
	TC_ENCODE_FAILURES,			/* envelopes too large to encode */
	TC_CONNECTS,				/* connections established */
	TC_CONNECT_FAILURES,		/* attempts that failed */
	TC_DISCONNECTS,				/* established connections lost */
	TC_LINKS_ADOPTED,			/* incoming links the worker took over */
	TC_ADOPTED_CLOSED,			/* adopted links closed (by either end) */
	TC_UNREGISTERED,			/* of TC_REJECTED: from a node not in multiraft.node */
	TC_SPLIT_ENVELOPES,			/* envelopes sent in parts: over half the limit */
	TC_COUNT_
} TransportCounter;

extern void transport_counter_add(TransportCounter c, uint64 delta);
extern uint64 transport_counter_get(TransportCounter c);
extern const char *transport_counter_name(TransportCounter c);

/* Link states shown in multiraft.nodes.state. */
typedef enum PeerLinkState
{
	PEER_LINK_IDLE = 0,			/* never tried */
	PEER_LINK_CONNECTING,
	PEER_LINK_CONNECTED,
	PEER_LINK_BACKOFF			/* last attempt failed; retry later */
} PeerLinkState;

#define MR_MAX_PEER_ROWS 256
#define MR_PEER_ERROR_LEN 160

typedef struct PeerStats
{
	int32		node_id;		/* 0: free row */
	PeerLinkState state;
	uint64		envelopes_sent;
	uint64		frames_sent;
	uint64		bytes_sent;
	uint64		frames_received;
	uint64		bytes_received;
	uint64		dropped;		/* envelopes dropped for this peer */
	uint64		send_errors;
	uint64		connects;
	uint64		connect_failures;
	uint32		queue_len;		/* frames waiting to be sent */
	TimestampTz state_since;
	char		last_error[MR_PEER_ERROR_LEN];
} PeerStats;

/* ---- worker: peer rows ---- */
/* Row index for node_id, claiming a free row; -1 if the table is full. */
extern int	peer_stats_attach(int32 node_id);
/* Free every row whose node is not in keep[0..n) (worker start / reload). */
extern void peer_stats_retain(const int32 *keep, int n);
/* Apply fn to the row under the lock (row < 0: nothing). */
extern void peer_stats_update(int row, void (*fn) (PeerStats *ps, void *arg), void *arg);
/* Copy every used row (palloc'd); returns the count. */
extern int	peer_stats_snapshot(PeerStats **rows);
/*
 * Receiving backend: whether the worker's registry may hold node_id — it has a
 * row, or the rows are full and it cannot tell.  False also for a node added
 * since the worker last loaded multiraft.node.
 */
extern bool peer_stats_may_know(int32 node_id);
/* Receiving backend: count a frame from node_id (if it has a row). */
extern void peer_stats_count_received(int32 node_id, size_t bytes);

/* ---- inbox ---- */
/* Copy one frame in; false when it does not fit (the caller counts the drop). */
extern bool inbox_push(const void *data, size_t len);
/* Pop the oldest frame into a palloc'd buffer; false when empty. */
extern bool inbox_pop(char **data, size_t *len);
/* Frames in the inbox now. */
extern uint32 inbox_count(void);
extern Size inbox_capacity(void);

/* ---- registry generation (add_node/remove_node commits bump it) ---- */
extern uint64 transport_registry_generation(void);
extern void transport_registry_bump(void);

/* ---- shared memory (shmem.c part table) ---- */
extern Size transport_shmem_size(void);
extern void transport_shmem_init(void *area);
extern void *multiraft_transport_area;

#endif
