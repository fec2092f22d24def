/*
 * transport_peer.h — internal to the transport (transport*.c): one outgoing
 * link per peer node, driven by the worker's wait loop.
 *
 * A peer is a small state machine:
 *   IDLE -> CONNECTING (PQconnectStartParams; PQconnectPoll on socket events)
 *        -> CONNECTED  (non-blocking; "CALL multiraft.receive_stream(...)" turns
 *                       the connection into COPY BOTH, each frame is one CopyData)
 *        -> BACKOFF    (after any failure; reconnect after an exponential delay)
 * Nothing here ever waits: every libpq call is non-blocking, and the wait for
 * sockets happens only in transport_wait().
 */
#ifndef MULTIRAFT_TRANSPORT_PEER_H
#define MULTIRAFT_TRANSPORT_PEER_H

#include "libpq-fe.h"
#include "datatype/timestamp.h"

#include "inbox.h"

/* One frame waiting to be sent. */
typedef struct PeerFrame
{
	struct PeerFrame *next;
	bool		last_of_envelope;	/* counts the envelope as sent/dropped */
	size_t		len;
	char		data[FLEXIBLE_ARRAY_MEMBER];
} PeerFrame;

typedef struct Peer
{
	int32		node_id;
	bool		unreachable;	/* a send was dropped: link down (transport_take_unreachable) */
	char	   *host;
	int			port;
	char	   *dbname;

	PGconn	   *conn;
	uint64		conn_gen;		/* increases with every new PGconn */
	bool		fd_held;		/* AcquireExternalFD done for conn */
	PeerLinkState state;
	PostgresPollingStatusType poll; /* CONNECTING: what libpq waits for */
	bool		want_write;		/* CONNECTED: libpq has unsent output */
	bool		opening;		/* CONNECTED: the stream's CALL not answered yet */
	TimestampTz deadline;		/* CONNECTING, opening, want_write: give up then */
	TimestampTz next_attempt;	/* BACKOFF: reconnect then */
	int			backoff_ms;
	bool		early_retry_used;	/* transport_peer_heard brought a retry
									 * forward since the link was last up */
	int			failures;		/* consecutive failed attempts, and links lost
								 * before they were up MR_LINK_STABLE_MS */
	TimestampTz opened_at;		/* when the stream last opened */
	bool		logged_down;	/* a failure was logged at LOG, not the recovery */

	PeerFrame  *qhead;
	PeerFrame  *qtail;
	int			qlen;
	size_t		qbytes;

	int			stats_row;		/* row in shared memory, -1 if none */
	PeerStats	stats;			/* local copy of the send-side fields */
	bool		stats_dirty;
} Peer;

/* transport.c */
extern bool transport_peer_registered(int32 node_id);
extern void transport_peer_heard(int32 node_id);

/* transport_recv.c */
extern void transport_recv_init(void);

/* transport_conn.c */
extern MemoryContext TransportContext;
extern void peer_start_connect(Peer *p);
extern void peer_close(Peer *p, const char *why, bool failure);
extern void peer_service(Peer *p, bool readable, bool writable);
extern uint32 peer_wait_events(Peer *p, pgsocket *sock);
extern long peer_timeout_ms(Peer *p, TimestampTz now);
extern void peer_drop_queue(Peer *p);
extern void peer_set_state(Peer *p, PeerLinkState state);
extern void peer_publish(Peer *p);

#endif
