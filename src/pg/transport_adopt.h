/*
 * transport_adopt.h — adopted node links: the worker reads its peers' streams
 * itself instead of through a backend per link.
 *
 * A link opens as before: the peer's worker connects with libpq and calls
 * multiraft.receive_stream(), whose backend checks the caller's privileges and
 * the handshake, and answers CopyBothResponse.  Then, if the connection carries
 * no TLS or GSS state and nothing more has been read from it, the backend hands
 * its socket to this node's worker (SCM_RIGHTS over a Unix datagram socket in
 * the data directory, reachable only by the server's OS user) and exits.  From
 * then on each CopyData message goes from the peer's kernel straight to the
 * worker: no process hand-off, no copy through the shared-memory inbox, one
 * decode instead of two.  On this 2-core machine the hand-off was the largest
 * cost left per frame (bench/ANALYSES.md, eighth analysis).
 *
 * Whatever cannot be handed over (TLS, GSS encryption, buffered input, no
 * worker listening, multiraft.adopt_links = off) is served by the backend as
 * before, so adoption is an optimisation only: both paths validate every frame
 * the same way (wire_decode_frame, and the sender named in the handshake).
 */
#ifndef MULTIRAFT_TRANSPORT_ADOPT_H
#define MULTIRAFT_TRANSPORT_ADOPT_H

#include "postgres.h"

/*
 * The worker's datagram socket, relative to the data directory (every server
 * process runs there).  pg_stat_tmp holds transient files and base backups
 * leave its contents out (a socket would only draw a warning).
 */
#define MR_ADOPT_SOCKET_NAME "pg_stat_tmp/multiraft_links.socket"

extern bool multiraft_adopt_links;

/* ---- backend (receive_stream), after the handshake and CopyBothResponse ---- */
/* Whether this connection could be handed over (setting, no TLS or GSS state). */
extern bool adopt_may_hand_over(void);
/* True if the worker now owns the connection: the caller must exit quietly. */
extern bool adopt_hand_over(int32 from_node);

/* ---- worker ---- */
/* Bind the datagram socket (worker start); without it links stay with backends. */
extern void adopt_init(void);
/* Worker exit: close every adopted link and remove the socket. */
extern void adopt_shutdown(void);

/* Wait-set entries: the datagram socket and each adopted link. */
typedef struct AdoptWait
{
	pgsocket	sock;
	uint64		serial;			/* changes whenever the slot's socket does */
	int			slot;			/* -1: the datagram socket */
} AdoptWait;

/* Fills out[0..max) and returns how many entries are wanted. */
extern int	adopt_wait_entries(AdoptWait *out, int max);
/* Bound on adopt_wait_entries() now (for the caller's array). */
extern int	adopt_max_wait_entries(void);
/* The wait saw slot (-1: the datagram socket) readable. */
extern void adopt_mark_readable(int slot);

/*
 * Takes new links from the datagram socket and reads the links the wait saw
 * readable, passing each CopyData payload to frame(data, len, from_node, arg);
 * data is valid for the call only.  Reads are bounded per call: a busy link
 * cannot starve the worker loop (epoll is level-triggered: what is left wakes
 * the next wait at once).
 */
extern void adopt_drain(void (*frame) (const char *data, size_t len, uint32 from_node, void *arg),
						void *arg);

#endif
