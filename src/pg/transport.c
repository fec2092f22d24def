/*
 * transport.c — the worker's side of the node-to-node transport (transport.h):
 * the peer table loaded from multiraft.node, sending envelopes, and the one
 * wait of the worker loop.  Connections are in transport_conn.c, the receive
 * side in transport_recv.c, transport_adopt.c and api_*.c, the wire format in
 * wire.c.
 */
#include "postgres.h"

#include "access/xact.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

#include "guc.h"
#include "transport.h"
#include "transport_adopt.h"
#include "transport_peer.h"
#include "wire.h"

/* Per-peer queue bounds: beyond them whole envelopes are dropped (and counted). */
#define MR_PEER_QUEUE_MAX_FRAMES 4096
#define MR_PEER_QUEUE_MAX_BYTES (wire_max_batch() + 8 * 1024 * 1024)

static Peer *peers = NULL;
static int	n_peers = 0;
static int	max_peers = 0;
static uint64 loaded_generation = 0;
static uint64 next_stream_id = 0;
static MemoryContext SendContext = NULL;
static MemoryContext EncodeContext = NULL;	/* one part's encoding (send_part) */
static MemoryContext WaitContext = NULL;	/* transport_wait's own, reset by it */
static bool initialized = false;

static void
transport_exit(int code, Datum arg)
{
	/* Nobody serves these links any more: show them down. */
	for (int i = 0; i < n_peers; i++)
	{
		if (peers[i].conn)
			PQfinish(peers[i].conn);
		peers[i].conn = NULL;
		peer_set_state(&peers[i], PEER_LINK_IDLE);
		peers[i].qlen = 0;
		peer_publish(&peers[i]);
	}
}

void
transport_init(void)
{
	if (initialized)
		return;
	TransportContext = AllocSetContextCreate(TopMemoryContext, "multiraft transport",
											 ALLOCSET_DEFAULT_SIZES);
	SendContext = AllocSetContextCreate(TransportContext, "multiraft transport send",
										ALLOCSET_DEFAULT_SIZES);
	EncodeContext = AllocSetContextCreate(TransportContext, "multiraft transport encode",
										  ALLOCSET_DEFAULT_SIZES);
	WaitContext = AllocSetContextCreate(TransportContext, "multiraft transport wait",
										ALLOCSET_SMALL_SIZES);
	transport_recv_init();
	adopt_init();
	/* Stream ids of chunked batches must differ from the previous incarnation's. */
	next_stream_id = (uint64) GetCurrentTimestamp();
	loaded_generation = 0;		/* forces a load at the first transport_wait */
	before_shmem_exit(transport_exit, (Datum) 0);
	initialized = true;
}

/* ---------------------------------------------------------------- registry */

static Peer *
find_peer(int32 node_id)
{
	for (int i = 0; i < n_peers; i++)
		if (peers[i].node_id == node_id)
			return &peers[i];
	return NULL;
}

static void
free_peer_strings(Peer *p)
{
	if (p->host)
		pfree(p->host);
	if (p->dbname)
		pfree(p->dbname);
	p->host = p->dbname = NULL;
}

void
transport_reload_nodes(void)
{
	uint64		generation;
	int32	   *ids;
	int			n_ids = 0;
	uint64		n_rows;

	if (!initialized)
		transport_init();
	/* Read before the query: a change committed meanwhile triggers another load. */
	generation = transport_registry_generation();

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "multiraft: SPI_connect failed");
	if (SPI_execute("SELECT node_id, host, port, "
					"coalesce(dbname, pg_catalog.current_setting('multiraft.database')) "
					"FROM multiraft.node ORDER BY node_id", true, 0) != SPI_OK_SELECT)
		elog(ERROR, "multiraft: could not read multiraft.node");
	n_rows = SPI_processed;

	if ((int) n_rows > max_peers)
	{
		int			new_max = Max((int) n_rows, 8);

		peers = peers ? repalloc(peers, sizeof(Peer) * new_max)
			: MemoryContextAlloc(TransportContext, sizeof(Peer) * new_max);
		max_peers = new_max;
	}
	/* in SPI's context: freed by SPI_finish */
	ids = palloc(sizeof(int32) * Max((int) n_rows, 1));

	for (uint64 r = 0; r < n_rows; r++)
	{
		HeapTuple	tup = SPI_tuptable->vals[r];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		int32		node_id = DatumGetInt32(SPI_getbinval(tup, desc, 1, &isnull));
		char	   *host = SPI_getvalue(tup, desc, 2);
		int			port = DatumGetInt32(SPI_getbinval(tup, desc, 3, &isnull));
		char	   *dbname = SPI_getvalue(tup, desc, 4);
		Peer	   *p;

		if (node_id == multiraft_node_id || host == NULL || dbname == NULL)
			continue;
		ids[n_ids++] = node_id;
		p = find_peer(node_id);
		if (p != NULL)
		{
			if (strcmp(p->host, host) == 0 && p->port == port &&
				strcmp(p->dbname, dbname) == 0)
				continue;
			/* New address: reconnect there. */
			peer_close(p, NULL, false);
			free_peer_strings(p);
		}
		else
		{
			p = &peers[n_peers++];
			memset(p, 0, sizeof(Peer));
			p->node_id = node_id;
			p->state = PEER_LINK_IDLE;
			p->stats_row = peer_stats_attach(node_id);
			p->stats.node_id = node_id;
			p->stats_dirty = true;
		}
		p->host = MemoryContextStrdup(TransportContext, host);
		p->port = port;
		p->dbname = MemoryContextStrdup(TransportContext, dbname);
	}

	/* Forget nodes no longer registered. */
	for (int i = 0; i < n_peers;)
	{
		bool		keep = false;

		for (int j = 0; j < n_ids && !keep; j++)
			keep = ids[j] == peers[i].node_id;
		if (keep)
		{
			i++;
			continue;
		}
		peer_close(&peers[i], NULL, false);
		free_peer_strings(&peers[i]);
		peers[i] = peers[--n_peers];
	}
	peer_stats_retain(ids, n_ids);
	SPI_finish();

	loaded_generation = generation;

	/*
	 * The new peers connect at the next transport_wait(), within milliseconds,
	 * outside this transaction: opening a connection may block (libpq resolves
	 * a host name itself, docs/transport.md), and must not do it holding a
	 * snapshot and locks on multiraft.node.
	 */
}

bool
transport_reload_needed(void)
{
	return initialized && transport_registry_generation() != loaded_generation;
}

/*
 * Reload in a transaction of our own, when the worker is between transactions.
 * A failure (e.g. the extension being dropped) is logged, not thrown: the
 * worker notices such states itself.
 */
void
transport_reload_if_needed(void)
{
	MemoryContext cxt = CurrentMemoryContext;

	if (!transport_reload_needed() || IsTransactionState())
		return;
	PG_TRY();
	{
		SetCurrentStatementStartTimestamp();
		StartTransactionCommand();
		PushActiveSnapshot(GetTransactionSnapshot());
		transport_reload_nodes();
		PopActiveSnapshot();
		CommitTransactionCommand();
	}
	PG_CATCH();
	{
		ErrorData  *e;

		MemoryContextSwitchTo(cxt);
		e = CopyErrorData();
		FlushErrorState();
		AbortCurrentTransaction();
		ereport(LOG, (errmsg("multiraft: could not reload the node registry: %s", e->message)));
		FreeErrorData(e);
		loaded_generation = transport_registry_generation();
	}
	PG_END_TRY();
	MemoryContextSwitchTo(cxt);
}

/* ---------------------------------------------------------------- sending */

void
transport_take_unreachable(void (*fn) (int32 node_id, void *arg), void *arg)
{
	for (int i = 0; initialized && i < n_peers; i++)
		if (peers[i].unreachable)
		{
			peers[i].unreachable = false;
			fn(peers[i].node_id, arg);
		}
}

/*
 * A snapshot larger than an envelope may be (a group's dedup history grows with
 * every command id a caller gives) can never be sent: leave it out of the
 * envelope, with a warning, instead of failing the whole envelope and every
 * other group's messages to that node with it, at each of the leader's
 * attempts.  Returns env, or a copy without such snapshots in SendContext.
 */
static const struct mr_envelope *
without_oversized_snapshots(const struct mr_envelope *env, struct mr_envelope *copy)
{
	/* room for the message's other fields and the batch around it */
	size_t		limit = wire_max_batch() - 64 * 1024;
	struct mr_message *kept = NULL;
	size_t		n = 0;

	for (size_t i = 0; i < env->n_messages; i++)
	{
		const struct mr_message *m = &env->messages[i];

		if (m->msg.type == RAFT_MSG_SNAPSHOT && m->msg.snapshot != NULL &&
			m->msg.snapshot->len > limit)
		{
			if (kept == NULL)
			{
				kept = MemoryContextAlloc(SendContext, env->n_messages * sizeof *kept);
				memcpy(kept, env->messages, i * sizeof *kept);
				n = i;
				*copy = *env;
			}
			if (i < env->n_early_messages)
				copy->n_early_messages--;
			transport_counter_add(TC_ENCODE_FAILURES, 1);
			ereport(WARNING,
					(errmsg("multiraft: cannot send a snapshot of group " UINT64_FORMAT " to node %u: it is %zu bytes, more than the limit of %zu",
							(uint64) m->group, env->to_node, m->msg.snapshot->len, limit),
					 errdetail("A snapshot carries every command id given by a caller that the group committed."),
					 errhint("The limit is 64 MB plus twice multiraft.max_command_size, on the sending and the receiving node; until it is raised, that member cannot catch up.")));
		}
		else if (kept != NULL)
			kept[n++] = *m;
	}
	if (kept == NULL)
		return env;
	copy->messages = kept;
	copy->n_messages = n;
	return copy;
}

/* Encodes env and queues its frames for p (dropped whole if the queue is full). */
static void
send_part(Peer *p, const struct mr_envelope *env)
{
	WireFrames	frames;
	char	   *err = NULL;
	size_t		bytes = 0;
	MemoryContext old = MemoryContextSwitchTo(EncodeContext);

	if (!wire_encode(env, (uint64) multiraft_cluster_id, next_stream_id++, &frames, &err))
	{
		MemoryContextSwitchTo(old);
		transport_counter_add(TC_ENCODE_FAILURES, 1);
		ereport(WARNING, (errmsg("multiraft: dropping a message: %s", err)));
		MemoryContextReset(EncodeContext);
		return;
	}
	MemoryContextSwitchTo(old);
	for (int i = 0; i < frames.n; i++)
		bytes += frames.len[i];
	if (p->qlen + frames.n > MR_PEER_QUEUE_MAX_FRAMES ||
		p->qbytes + bytes > MR_PEER_QUEUE_MAX_BYTES)
	{
		transport_counter_add(TC_SEND_DROPS, 1);
		p->stats.dropped++;
		p->stats_dirty = true;
	}
	else
	{
		for (int i = 0; i < frames.n; i++)
		{
			PeerFrame  *f = MemoryContextAlloc(TransportContext,
											   offsetof(PeerFrame, data) + frames.len[i]);

			f->next = NULL;
			f->len = frames.len[i];
			f->last_of_envelope = i == frames.n - 1;
			memcpy(f->data, frames.data[i], frames.len[i]);
			if (p->qtail)
				p->qtail->next = f;
			else
				p->qhead = f;
			p->qtail = f;
			p->qlen++;
			p->qbytes += f->len;
		}
		p->stats_dirty = true;
	}
	MemoryContextReset(EncodeContext);
}

/* A bound above a message's encoded size: its variable parts and room for the rest. */
static size_t
message_bytes(const struct mr_message *m)
{
	size_t		b = 128;

	for (uint32 i = 0; i < m->msg.n_entries; i++)
		b += m->msg.entries[i].len + 48;
	if (m->msg.snapshot != NULL)
		b += m->msg.snapshot->len + 64 +
			sizeof(raft_id) * (m->msg.snapshot->conf.n_voters + m->msg.snapshot->conf.n_learners);
	return b;
}

/*
 * Sends env in envelopes each within half of wire_max_batch(): one envelope
 * carries every group's messages to a node, and nothing else bounds its size —
 * a node catching up in many groups at once, or a burst of large commands over
 * many groups, made one over the limit, dropped whole and built again as large at
 * each heartbeat, for good (found by a review: 0 of 80 groups caught up).  The
 * receiver takes each part as an envelope of its own (mr_receive), the
 * heartbeats ride in the first.  A single message always fits: an APPEND carries
 * at most max_size_per_msg or one entry, a snapshot over the limit was left out.
 */
static void
send_parts(Peer *p, const struct mr_envelope *env)
{
	size_t		limit = wire_max_batch() / 2;
	size_t		first = 0;

	for (;;)
	{
		struct mr_envelope part = *env;
		size_t		bytes = 0,
					end = first;

		while (end < env->n_messages &&
			   (end == first || bytes + message_bytes(&env->messages[end]) <= limit))
			bytes += message_bytes(&env->messages[end++]);
		part.messages = env->messages + first;
		part.n_messages = end - first;
		part.n_early_messages = env->n_early_messages > first
			? Min(env->n_early_messages, end) - first : 0;
		if (first > 0)
		{
			part.n_heartbeats = 0;
			part.n_heartbeat_resps = 0;
		}
		else if (end < env->n_messages)
			transport_counter_add(TC_SPLIT_ENVELOPES, 1);
		send_part(p, &part);
		if (end >= env->n_messages)
			break;
		first = end;
	}
}

void
transport_send(const struct mr_envelope *env)
{
	Peer	   *p;
	struct mr_envelope trimmed;

	if (!initialized)
		return;
	p = find_peer((int32) env->to_node);
	if (p == NULL || p->state == PEER_LINK_BACKOFF)
	{
		/* Unknown or unreachable node: Raft copes with the loss. */
		transport_counter_add(TC_SEND_DROPS, 1);
		if (p)
		{
			p->stats.dropped++;
			p->stats_dirty = true;
			p->unreachable = true;
			peer_publish(p);
		}
		return;
	}

	env = without_oversized_snapshots(env, &trimmed);
	send_parts(p, env);
	MemoryContextReset(SendContext);

	/* Send at once when the link is up (never waits). */
	peer_service(p, false, false);
}

/* ---------------------------------------------------------------- waiting */

/*
 * The wait set is kept between calls while the sockets in it stay the same
 * (an epoll set costs system calls to build): one entry per peer socket, keyed
 * by node, socket and connection generation, then the adopted links' sockets
 * (transport_adopt.h), keyed by slot, socket and serial.  Only the requested
 * events change in place.  While a peer is connecting libpq may swap its socket
 * under the same number, so the set is rebuilt on every call then.
 */
typedef struct WaitEntry
{
	intptr_t	tag;			/* a peer's node id (> 0) or ADOPT_TAG(slot) */
	pgsocket	sock;
	uint64		conn_gen;
	uint32		events;
} WaitEntry;

/* Tags of the adopted links: slot -1 (the datagram socket) is -1, slot k is -2 - k. */
#define ADOPT_TAG(slot) ((intptr_t) -2 - (slot))
#define ADOPT_SLOT(tag) ((int) (-2 - (tag)))

static WaitEventSet *wait_set = NULL;
static WaitEntry *wait_entries = NULL;
static int	n_wait_entries = 0;
static bool wait_set_volatile = false;

static WaitEventSet *
current_wait_set(void)
{
	int			max_adopt = adopt_max_wait_entries();
	WaitEntry  *want = palloc(sizeof(WaitEntry) * (n_peers + max_adopt));
	AdoptWait  *adopt = palloc(sizeof(AdoptWait) * max_adopt);
	int			n = 0;
	int			n_adopt;
	bool		same;
	bool		any_connecting = false;

	for (int i = 0; i < n_peers; i++)
	{
		pgsocket	sock;
		uint32		ev = peer_wait_events(&peers[i], &sock);

		if (peers[i].state == PEER_LINK_CONNECTING)
			any_connecting = true;
		if (ev == 0)
			continue;
		want[n].tag = peers[i].node_id;
		want[n].sock = sock;
		want[n].conn_gen = peers[i].conn_gen;
		want[n].events = ev;
		n++;
	}
	n_adopt = adopt_wait_entries(adopt, max_adopt);
	for (int i = 0; i < n_adopt; i++)
	{
		want[n].tag = ADOPT_TAG(adopt[i].slot);
		want[n].sock = adopt[i].sock;
		want[n].conn_gen = adopt[i].serial;
		want[n].events = WL_SOCKET_READABLE;
		n++;
	}
	pfree(adopt);

	same = wait_set != NULL && !wait_set_volatile && n == n_wait_entries;
	for (int i = 0; same && i < n; i++)
		same = want[i].tag == wait_entries[i].tag &&
			want[i].sock == wait_entries[i].sock &&
			want[i].conn_gen == wait_entries[i].conn_gen;
	if (same)
	{
		for (int i = 0; i < n; i++)
			if (want[i].events != wait_entries[i].events)
			{
				/* positions 0 and 1 are the latch and postmaster death */
				ModifyWaitEvent(wait_set, 2 + i, want[i].events, NULL);
				wait_entries[i].events = want[i].events;
			}
		pfree(want);
		return wait_set;
	}

	if (wait_set != NULL)
		FreeWaitEventSet(wait_set);
	if (wait_entries != NULL)
		pfree(wait_entries);
	wait_set = CreateWaitEventSet(TransportContext, 2 + n);
	AddWaitEventToSet(wait_set, WL_LATCH_SET, PGINVALID_SOCKET, MyLatch, NULL);
	AddWaitEventToSet(wait_set, WL_EXIT_ON_PM_DEATH, PGINVALID_SOCKET, NULL, NULL);
	for (int i = 0; i < n; i++)
		AddWaitEventToSet(wait_set, want[i].events, want[i].sock, NULL,
						  (void *) want[i].tag);
	wait_entries = MemoryContextAlloc(TransportContext, sizeof(WaitEntry) * Max(n, 1));
	memcpy(wait_entries, want, sizeof(WaitEntry) * n);
	n_wait_entries = n;
	wait_set_volatile = any_connecting;
	pfree(want);
	return wait_set;
}

void
transport_wait(long timeout_ms)
{
	WaitEventSet *set;
	WaitEvent  *events;
	int			nevents;
	int			n;
	TimestampTz now;
	bool	   *readable;
	bool	   *writable;
	MemoryContext old;

	if (!initialized)
	{
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 timeout_ms, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		return;
	}
	/*
	 * Everything a wait allocates for itself (its arrays, the reasons a link
	 * ended) goes when the next wait starts: what lasts is allocated in
	 * TransportContext or SendContext explicitly.  The worker calls this
	 * outside its per-iteration context; a peer that dropped every link it
	 * opened leaked each reason there, without bound.
	 */
	MemoryContextReset(WaitContext);
	old = MemoryContextSwitchTo(WaitContext);
	transport_reload_if_needed();

	/* Progress that needs no event (retries due, timeouts, queued frames). */
	for (int i = 0; i < n_peers; i++)
		peer_service(&peers[i], false, false);

	now = GetCurrentTimestamp();
	for (int i = 0; i < n_peers; i++)
	{
		long		t = peer_timeout_ms(&peers[i], now);

		if (t >= 0 && (timeout_ms < 0 || t < timeout_ms))
			timeout_ms = t;
	}

	set = current_wait_set();
	nevents = 2 + n_wait_entries;
	events = palloc(sizeof(WaitEvent) * nevents);
	readable = palloc0(sizeof(bool) * Max(n_peers, 1));
	writable = palloc0(sizeof(bool) * Max(n_peers, 1));

	n = WaitEventSetWait(set, timeout_ms, events, nevents, PG_WAIT_EXTENSION);
	for (int i = 0; i < n; i++)
	{
		intptr_t	tag = (intptr_t) events[i].user_data;
		Peer	   *p;

		if (events[i].events & WL_LATCH_SET)
			ResetLatch(MyLatch);
		if (events[i].events & WL_POSTMASTER_DEATH)
			continue;
		if (tag < 0)
		{
			if (events[i].events & WL_SOCKET_READABLE)
				adopt_mark_readable(ADOPT_SLOT(tag));
			continue;
		}
		if (tag == 0 || (p = find_peer((int32) tag)) == NULL)
			continue;
		if (events[i].events & WL_SOCKET_READABLE)
			readable[p - peers] = true;
		if (events[i].events & WL_SOCKET_WRITEABLE)
			writable[p - peers] = true;
	}

	for (int i = 0; i < n_peers; i++)
		peer_service(&peers[i], readable[i], writable[i]);
	MemoryContextSwitchTo(old);
}

void
transport_shutdown(void)
{
	if (!initialized)
		return;
	for (int i = 0; i < n_peers; i++)
	{
		peer_close(&peers[i], NULL, false);
		peer_publish(&peers[i]);
	}
}

/* ---------------------------------------------------------------- introspection */

bool
transport_peer_registered(int32 node_id)
{
	return find_peer(node_id) != NULL;
}

/*
 * An envelope arrived from node_id, over a link of its own to this node: it is
 * up, so a link to it waiting out its backoff is opened now.  A peer restarted
 * quickly would otherwise be reached only after up to MR_BACKOFF_MAX_MS, and its
 * groups, restored without hearing their leader here, could elect another
 * meanwhile (TAP 035 caught two restarted followers doing so).  Once until the
 * link is up again, and the backoff keeps growing: a peer that reaches this node
 * while this node cannot reach it (a wrong port here, no pg_hba entry there, its
 * connection slots full) was retried at every envelope it sent, up to ten times
 * a second, each attempt a backend on it (found by a review).
 */
void
transport_peer_heard(int32 node_id)
{
	Peer	   *p = find_peer(node_id);

	if (p != NULL && p->state == PEER_LINK_BACKOFF && !p->early_retry_used)
	{
		p->next_attempt = GetCurrentTimestamp();
		p->early_retry_used = true;
	}
}
