/*
 * transport_conn.c — one peer's libpq connection: connect without blocking,
 * open the peer's receive stream (CALL multiraft.receive_stream(), which turns
 * the connection into COPY BOTH), send queued frames as CopyData messages, and
 * fall back to an exponential backoff after any failure (see transport_peer.h
 * for the states).
 *
 * Why a slow or dead peer never stalls the worker: libpq runs in non-blocking
 * mode, its output buffer only receives new frames once the previous ones were
 * flushed (so it stays bounded while the peer's socket is full), and every wait
 * is done by transport_wait() on all sockets at once.  A peer that accepts the
 * TCP connection but never answers (black hole), never opens the stream, or
 * stops reading it is cut off by deadlines.
 */
#include "postgres.h"

#include "common/pg_prng.h"
#include "storage/fd.h"
#include "storage/latch.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "guc.h"
#include "transport_peer.h"

MemoryContext TransportContext = NULL;
static uint64 conn_generation = 0;

#define MR_BACKOFF_MIN_MS 100
#define MR_BACKOFF_MAX_MS 2000
/*
 * A link lost sooner than this after its stream opened does not reset the
 * backoff: a peer that accepts every stream and ends it at once (a node
 * misconfigured as another's id, a failing receive_stream) is retried at the
 * backoff's pace, and logged once, not ten times a second.
 */
#define MR_LINK_STABLE_MS 1000
/* libpq's tcp_user_timeout for node links unless multiraft.node_conninfo sets one */
#define MR_TCP_USER_TIMEOUT_MS "10000"
#define MR_CONNECT_TIMEOUT_MS 5000	/* CONNECTING longer than this: give up */
#define MR_STREAM_TIMEOUT_MS 15000	/* no stream yet, or output stuck, this long */
#define MR_MAX_PUSH_BYTES (4 * 1024 * 1024) /* per push round */

/* ---------------------------------------------------------------- stats */

static void
copy_send_fields(PeerStats *ps, void *arg)
{
	const PeerStats *src = arg;

	if (ps->node_id != src->node_id)
		return;					/* row recycled under us: nothing to publish */
	ps->state = src->state;
	ps->envelopes_sent = src->envelopes_sent;
	ps->frames_sent = src->frames_sent;
	ps->bytes_sent = src->bytes_sent;
	ps->dropped = src->dropped;
	ps->send_errors = src->send_errors;
	ps->connects = src->connects;
	ps->connect_failures = src->connect_failures;
	ps->queue_len = src->queue_len;
	ps->state_since = src->state_since;
	memcpy(ps->last_error, src->last_error, MR_PEER_ERROR_LEN);
}

void
peer_publish(Peer *p)
{
	if (!p->stats_dirty)
		return;
	p->stats.node_id = p->node_id;
	p->stats.queue_len = (uint32) p->qlen;
	peer_stats_update(p->stats_row, copy_send_fields, &p->stats);
	p->stats_dirty = false;
}

void
peer_set_state(Peer *p, PeerLinkState state)
{
	if (p->state != state)
	{
		p->state = state;
		p->stats.state = state;
		p->stats.state_since = GetCurrentTimestamp();
		p->stats_dirty = true;
	}
}

static void
set_error(Peer *p, const char *msg)
{
	size_t		n;

	strlcpy(p->stats.last_error, msg ? msg : "", MR_PEER_ERROR_LEN);
	/* libpq messages end in a newline */
	n = strlen(p->stats.last_error);
	while (n > 0 && (p->stats.last_error[n - 1] == '\n' || p->stats.last_error[n - 1] == ' '))
		p->stats.last_error[--n] = '\0';
	p->stats_dirty = true;
}

/* ---------------------------------------------------------------- queue */

void
peer_drop_queue(Peer *p)
{
	PeerFrame  *f = p->qhead;
	uint64		envelopes = 0;

	while (f)
	{
		PeerFrame  *next = f->next;

		if (f->last_of_envelope)
			envelopes++;
		pfree(f);
		f = next;
	}
	p->qhead = p->qtail = NULL;
	p->qlen = 0;
	p->qbytes = 0;
	if (envelopes > 0)
	{
		p->stats.dropped += envelopes;
		p->stats_dirty = true;
		transport_counter_add(TC_SEND_DROPS, envelopes);
	}
}

/* ---------------------------------------------------------------- lifecycle */

static void
schedule_retry(Peer *p)
{
	double		jitter;

	p->backoff_ms = p->backoff_ms <= 0 ? MR_BACKOFF_MIN_MS
		: Min(p->backoff_ms * 2, MR_BACKOFF_MAX_MS);
	/* ±20% so that nodes restarted together do not retry in lock step */
	jitter = 0.8 + 0.4 * pg_prng_double(&pg_global_prng_state);
	p->next_attempt = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
												  (int) (p->backoff_ms * jitter));
	peer_set_state(p, PEER_LINK_BACKOFF);
}

/*
 * Closes the connection.  failure: log (the first of a series at LOG), count,
 * and retry after the backoff; otherwise (address change, shutdown) go idle.
 */
void
peer_close(Peer *p, const char *why, bool failure)
{
	bool		was_connected = p->state == PEER_LINK_CONNECTED && !p->opening;

	/* why may point into the connection's memory: keep it before closing */
	if (failure && why)
		set_error(p, why);
	if (p->conn != NULL)
	{
		PQfinish(p->conn);
		p->conn = NULL;
	}
	if (p->fd_held)
	{
		ReleaseExternalFD();
		p->fd_held = false;
	}
	p->opening = false;
	p->want_write = false;
	/* Queued messages would be stale by the time a new connection exists. */
	peer_drop_queue(p);

	if (!failure)
	{
		p->backoff_ms = 0;
		p->failures = 0;
		peer_set_state(p, PEER_LINK_IDLE);
		return;
	}
	if (was_connected)
	{
		if (TimestampDifferenceExceeds(p->opened_at, GetCurrentTimestamp(), MR_LINK_STABLE_MS))
		{
			p->failures = 0;	/* a link that was up a while: a fresh series */
			p->backoff_ms = 0;
		}
		transport_counter_add(TC_DISCONNECTS, 1);
		ereport(p->failures == 0 ? LOG : DEBUG1,
				(errmsg("multiraft: lost connection to node %d: %s",
						p->node_id, p->stats.last_error)));
	}
	else
	{
		p->stats.connect_failures++;
		transport_counter_add(TC_CONNECT_FAILURES, 1);
		ereport(p->failures == 0 ? LOG : DEBUG1,
				(errmsg("multiraft: could not connect to node %d at \"%s\" port %d: %s",
						p->node_id, p->host, p->port, p->stats.last_error)));
	}
	if (p->failures == 0)
		p->logged_down = true;
	p->failures++;
	schedule_retry(p);
}

/* Build the libpq options: node_conninfo first, then the registry's address. */
static void
build_conninfo(Peer *p, const char ***keywords, const char ***values)
{
	PQconninfoOption *opts = NULL;
	PQconninfoOption *o;
	int			n = 0;
	int			max = 10;
	char	   *err = NULL;
	char		portstr[16];
	bool		user_timeout = false;

	if (multiraft_node_conninfo && multiraft_node_conninfo[0] != '\0')
	{
		opts = PQconninfoParse(multiraft_node_conninfo, &err);
		if (opts == NULL)
		{
			/* The GUC check accepted it; libpq did not.  Connect without it. */
			ereport(WARNING,
					(errmsg("multiraft: ignoring multiraft.node_conninfo: %s",
							err ? err : "out of memory")));
			if (err)
				PQfreemem(err);
		}
	}
	for (o = opts; o && o->keyword; o++)
		max++;
	*keywords = palloc0(sizeof(char *) * max);
	*values = palloc0(sizeof(char *) * max);
	for (o = opts; o && o->keyword; o++)
	{
		/* Where to connect always comes from multiraft.node (guc.c checks too). */
		if (o->val == NULL || o->val[0] == '\0' ||
			strcmp(o->keyword, "host") == 0 || strcmp(o->keyword, "hostaddr") == 0 ||
			strcmp(o->keyword, "port") == 0 || strcmp(o->keyword, "dbname") == 0 ||
			strcmp(o->keyword, "service") == 0 || strcmp(o->keyword, "replication") == 0)
			continue;
		user_timeout |= strcmp(o->keyword, "tcp_user_timeout") == 0;
		(*keywords)[n] = pstrdup(o->keyword);
		(*values)[n] = pstrdup(o->val);
		n++;
	}
	/*
	 * A link carries data one way and hears nothing back, so a peer that
	 * vanished (its host rebooted, a partition that drops packets) leaves a
	 * half-open connection that takes the heartbeats into the kernel's buffer
	 * for minutes of TCP retransmissions.  Unacknowledged data older than this
	 * ends it, and the link is opened again.
	 */
	if (!user_timeout)
	{
		(*keywords)[n] = "tcp_user_timeout";
		(*values)[n++] = MR_TCP_USER_TIMEOUT_MS;
	}
	if (opts)
		PQconninfoFree(opts);
	snprintf(portstr, sizeof(portstr), "%d", p->port);
	(*keywords)[n] = "host";
	(*values)[n++] = p->host;
	(*keywords)[n] = "port";
	(*values)[n++] = pstrdup(portstr);
	(*keywords)[n] = "dbname";
	(*values)[n++] = p->dbname;
	/* GSSAPI negotiation could wait on a KDC: not something node links use */
	(*keywords)[n] = "gssencmode";
	(*values)[n++] = "disable";
	(*keywords)[n] = "fallback_application_name";
	(*values)[n++] = psprintf("multiraft node %d", multiraft_node_id);
	(*keywords)[n] = NULL;
	(*values)[n] = NULL;
}

static void
ignore_notice(void *arg, const char *message)
{
}

void
peer_start_connect(Peer *p)
{
	const char **keywords;
	const char **values;
	MemoryContext scratch;
	MemoryContext old;

	Assert(p->conn == NULL);
	if (!AcquireExternalFD())
	{
		peer_close(p, "too many open files in the worker", true);
		return;
	}
	p->fd_held = true;
	/* libpq copies the options: build them in a context dropped right after */
	scratch = AllocSetContextCreate(TransportContext, "multiraft connect",
									ALLOCSET_SMALL_SIZES);
	old = MemoryContextSwitchTo(scratch);
	build_conninfo(p, &keywords, &values);
	p->conn = PQconnectStartParams(keywords, values, 0);
	p->conn_gen = ++conn_generation;
	MemoryContextSwitchTo(old);
	MemoryContextDelete(scratch);
	if (p->conn == NULL)
	{
		peer_close(p, "out of memory", true);
		return;
	}
	if (PQstatus(p->conn) == CONNECTION_BAD)
	{
		peer_close(p, PQerrorMessage(p->conn), true);
		return;
	}
	/* libpq would print notices on stderr: the server log has no use for them */
	PQsetNoticeProcessor(p->conn, ignore_notice, NULL);
	/* libpq's documented first step: act as if the socket were writable-ready */
	p->poll = PGRES_POLLING_WRITING;
	p->deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), MR_CONNECT_TIMEOUT_MS);
	peer_set_state(p, PEER_LINK_CONNECTING);
}

/* Output is stuck (the socket is full) or flows again. */
static void
set_want_write(Peer *p, bool want)
{
	if (want && !p->want_write)
		p->deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), MR_STREAM_TIMEOUT_MS);
	p->want_write = want;
}

/* Flush libpq's output; false if the connection was closed. */
static bool
flush_output(Peer *p)
{
	int			r = PQflush(p->conn);

	if (r < 0)
	{
		peer_close(p, PQerrorMessage(p->conn), true);
		return false;
	}
	set_want_write(p, r == 1);
	return true;
}

/* The connection is up: ask the peer to open its receive stream. */
static void
connection_established(Peer *p)
{
	char		sql[128];

	snprintf(sql, sizeof(sql), "CALL multiraft.receive_stream(%d, %d, %d)",
			 multiraft_node_id, p->node_id, multiraft_cluster_id);
	if (PQsetnonblocking(p->conn, 1) != 0 || PQsendQuery(p->conn, sql) != 1)
	{
		peer_close(p, PQerrorMessage(p->conn), true);
		return;
	}
	p->opening = true;
	p->want_write = false;
	p->deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), MR_STREAM_TIMEOUT_MS);
	peer_set_state(p, PEER_LINK_CONNECTED);
	/* Shown as connecting until the peer opened the stream (stream_opened). */
	p->stats.state = PEER_LINK_CONNECTING;
	(void) flush_output(p);
}

/* The peer answered with CopyBothResponse: the link is up. */
static void
stream_opened(Peer *p)
{
	p->opening = false;
	p->early_retry_used = false;
	p->stats.connects++;
	transport_counter_add(TC_CONNECTS, 1);
	if (p->logged_down)
		ereport(LOG, (errmsg("multiraft: connected to node %d", p->node_id)));
	p->logged_down = false;
	/* failures and the backoff stay until the link proves stable (peer_close);
	 * last_error stays too: why the link last ended, shown once it is up again
	 * (it now reopens at once when the peer is heard, before anyone looked) */
	p->opened_at = GetCurrentTimestamp();
	p->stats.state = PEER_LINK_CONNECTED;
	p->stats.state_since = GetCurrentTimestamp();
	p->stats_dirty = true;
}

static void
advance_connect(Peer *p)
{
	p->poll = PQconnectPoll(p->conn);
	if (p->poll == PGRES_POLLING_FAILED)
		peer_close(p, PQerrorMessage(p->conn), true);
	else if (p->poll == PGRES_POLLING_OK)
		connection_established(p);
}

/* ---------------------------------------------------------------- sending */

/* Hand queued frames to libpq while its output buffer is drained. */
static void
push_queue(Peer *p)
{
	size_t		pushed = 0;

	if (p->state != PEER_LINK_CONNECTED || p->opening)
		return;
	while (p->qhead != NULL && !p->want_write && pushed < MR_MAX_PUSH_BYTES)
	{
		PeerFrame  *f = p->qhead;
		int			r = PQputCopyData(p->conn, f->data, (int) f->len);

		if (r < 0)
		{
			peer_close(p, PQerrorMessage(p->conn), true);
			return;
		}
		if (r == 0)
		{
			/* libpq could not take it now: keep it queued here */
			set_want_write(p, true);
			break;
		}
		pushed += f->len;
		p->stats.frames_sent++;
		p->stats.bytes_sent += f->len;
		transport_counter_add(TC_FRAMES_SENT, 1);
		transport_counter_add(TC_BYTES_SENT, f->len);
		if (f->last_of_envelope)
		{
			p->stats.envelopes_sent++;
			transport_counter_add(TC_ENVELOPES_SENT, 1);
		}
		p->stats_dirty = true;
		p->qhead = f->next;
		if (p->qhead == NULL)
			p->qtail = NULL;
		p->qlen--;
		p->qbytes -= f->len;
		pfree(f);

		/* flush as we go: once the socket is full, keep the rest queued here */
		if (!flush_output(p))
			return;
	}
}

/* ---------------------------------------------------------------- reading */

/*
 * Why the peer ended the stream, if libpq can tell without waiting.  The link
 * is closed after this, so a few results are enough: a peer that ends only its
 * half of the copy (CopyDone) leaves libpq in COPY IN, where PQgetResult
 * returns a COPY_IN result again and again, never NULL — the loop spun the
 * worker forever, deaf to pg_terminate_backend.
 */
static char *
stream_end_reason(Peer *p, const char *fallback)
{
	char	   *why = NULL;

	for (int i = 0; i < 8 && !PQisBusy(p->conn); i++)
	{
		PGresult   *res = PQgetResult(p->conn);
		ExecStatusType st;

		if (res == NULL)
			break;
		st = PQresultStatus(res);
		if (why == NULL && st == PGRES_FATAL_ERROR)
			why = pstrdup(PQresultErrorMessage(res));
		PQclear(res);
		if (st == PGRES_COPY_IN || st == PGRES_COPY_OUT || st == PGRES_COPY_BOTH)
			break;
	}
	return why ? why : pstrdup(fallback);
}

/*
 * Input on the link.  While opening: the answer to the CALL.  Afterwards a
 * healthy stream hears nothing, so anything but a closed socket is the end of
 * the stream (an error, or the server shutting the backend down).
 */
static void
read_input(Peer *p)
{
	if (PQconsumeInput(p->conn) != 1)
	{
		peer_close(p, PQerrorMessage(p->conn), true);
		return;
	}
	if (p->opening)
	{
		PGresult   *res;

		if (PQisBusy(p->conn))
			return;
		res = PQgetResult(p->conn);
		if (res != NULL && PQresultStatus(res) == PGRES_COPY_BOTH)
		{
			PQclear(res);
			stream_opened(p);
			return;
		}
		{
			char	   *why = psprintf("could not open the receive stream: %s",
									   res ? PQresultErrorMessage(res) : "no answer");

			if (res)
				PQclear(res);
			/* e.g. multiraft not installed there yet: retry later */
			peer_close(p, why, true);
			return;
		}
	}
	for (;;)
	{
		char	   *buf = NULL;
		int			n = PQgetCopyData(p->conn, &buf, 1);

		if (n > 0)
		{
			/* this version of the protocol sends nothing back: ignore it */
			PQfreemem(buf);
			continue;
		}
		if (n == 0)
			break;
		p->stats.send_errors++;
		transport_counter_add(TC_SEND_ERRORS, 1);
		peer_close(p, n == -1 ? stream_end_reason(p, "the node ended the stream")
				   : PQerrorMessage(p->conn), true);
		return;
	}
	if (PQstatus(p->conn) == CONNECTION_BAD)
		peer_close(p, PQerrorMessage(p->conn), true);
}

/* ---------------------------------------------------------------- driving */

/*
 * Makes whatever progress is possible without blocking.  readable/writable: the
 * socket was reported ready by the last wait.
 */
void
peer_service(Peer *p, bool readable, bool writable)
{
	TimestampTz now = GetCurrentTimestamp();

	switch (p->state)
	{
		case PEER_LINK_IDLE:
			peer_start_connect(p);
			break;
		case PEER_LINK_BACKOFF:
			if (now >= p->next_attempt)
				peer_start_connect(p);
			break;
		case PEER_LINK_CONNECTING:
			if ((p->poll == PGRES_POLLING_READING && readable) ||
				(p->poll == PGRES_POLLING_WRITING && writable))
				advance_connect(p);
			else if (now >= p->deadline)
				peer_close(p, "timed out while connecting", true);
			break;
		case PEER_LINK_CONNECTED:
			if (readable)
				read_input(p);
			if (p->state == PEER_LINK_CONNECTED && writable && p->want_write &&
				!flush_output(p))
				break;
			if (p->state == PEER_LINK_CONNECTED)
				push_queue(p);
			if (p->state == PEER_LINK_CONNECTED && (p->opening || p->want_write) &&
				now >= p->deadline)
				peer_close(p, p->opening ? "no answer from the node"
						   : "the node stopped reading", true);
			break;
	}
	peer_publish(p);
}

/* Socket events libpq needs for this peer now (0: none). */
uint32
peer_wait_events(Peer *p, pgsocket *sock)
{
	if (p->conn == NULL)
		return 0;
	*sock = PQsocket(p->conn);
	if (*sock == PGINVALID_SOCKET)
		return 0;
	switch (p->state)
	{
		case PEER_LINK_CONNECTING:
			return p->poll == PGRES_POLLING_READING ? WL_SOCKET_READABLE
				: WL_SOCKET_WRITEABLE;
		case PEER_LINK_CONNECTED:
			/* always readable: the stream's answer, its end, the peer closing */
			return WL_SOCKET_READABLE | (p->want_write ? WL_SOCKET_WRITEABLE : 0);
		default:
			return 0;
	}
}

/* Milliseconds until this peer needs attention without a socket event. */
long
peer_timeout_ms(Peer *p, TimestampTz now)
{
	TimestampTz when;

	switch (p->state)
	{
		case PEER_LINK_IDLE:
			return 0;
		case PEER_LINK_BACKOFF:
			when = p->next_attempt;
			break;
		case PEER_LINK_CONNECTING:
			when = p->deadline;
			break;
		case PEER_LINK_CONNECTED:
			if (!p->opening && !p->want_write)
				return -1;
			when = p->deadline;
			break;
		default:
			return -1;
	}
	if (when <= now)
		return 0;
	return (long) ((when - now + 999) / 1000);
}
