/*
 * transport_recv.c — the worker's receive side: drain the shared-memory inbox
 * and the adopted links (transport_adopt.c), reassemble chunked batches,
 * decode, and hand envelopes to the worker.
 *
 * Inbox frames were validated by a backend's door already; they are decoded
 * again here (the inbox holds bytes, not pointers) and anything that fails now
 * is rejected and counted like at the door.  Frames of adopted links are
 * validated here only, with the same checks.
 *
 * Only frames from nodes of the registry (multiraft.node, as last loaded) get
 * through: the multi-raft layer keeps a peer for every node it hears from, for
 * good, and sends each a liveness envelope every heartbeat interval, so a
 * caller of receive() naming ever new sender ids would grow the worker without
 * bound.  A node just added may lose its first frames, until the registry is
 * reloaded (at the latest at the start of the next drain); Raft resends.
 *
 * Chunks: a sender cuts an encoded Batch larger than MR_WIRE_CHUNK_SIZE into
 * frames numbered 0..count-1 under one stream id and sends them in order on its
 * single connection, so each sender has at most one batch in reassembly.  Any
 * gap (a frame dropped by a full inbox, a reconnect, a restarted sender) ends
 * that reassembly; the buffer is bounded by wire_max_batch() per sender.
 */
#include "postgres.h"

#include "utils/memutils.h"

#include "guc.h"
#include "inbox.h"
#include "transport_adopt.h"
#include "transport.h"
#include "transport_peer.h"
#include "wire.h"

typedef struct Reassembly
{
	uint32		from_node;		/* 0: unused */
	uint64		stream_id;
	uint32		next_index;
	uint32		count;
	uint64		total_len;
	size_t		filled;
	size_t		cap;			/* bytes allocated at buf */
	char	   *buf;
} Reassembly;

#define MR_MAX_REASSEMBLIES 64

static Reassembly reassemblies[MR_MAX_REASSEMBLIES];
static MemoryContext DrainContext = NULL;
static MemoryContext CallerContext = NULL;	/* the worker's, during a drain */

void
transport_recv_init(void)
{
	memset(reassemblies, 0, sizeof(reassemblies));
	DrainContext = AllocSetContextCreate(TransportContext, "multiraft transport receive",
										 ALLOCSET_DEFAULT_SIZES);
}

static void
reassembly_abandon(Reassembly *r)
{
	if (r->from_node == 0)
		return;
	transport_counter_add(TC_REASSEMBLY_FAILURES, 1);
	if (r->buf)
		pfree(r->buf);
	memset(r, 0, sizeof(*r));
}

static Reassembly *
reassembly_for(uint32 from_node)
{
	Reassembly *free_slot = NULL;

	for (int i = 0; i < MR_MAX_REASSEMBLIES; i++)
	{
		if (reassemblies[i].from_node == from_node)
			return &reassemblies[i];
		if (reassemblies[i].from_node == 0 && free_slot == NULL)
			free_slot = &reassemblies[i];
	}
	return free_slot;			/* NULL: too many senders mid-stream */
}

/*
 * Ends the reassemblies of senders no longer registered.  A node removed
 * mid-stream sends nothing more, so nothing else would end its reassembly: it
 * kept its buffer (up to wire_max_batch()) for good, and 64 such nodes took
 * every slot, after which no chunked batch was taken from anyone (found by a
 * review; TAP 049).
 */
static void
reassembly_forget_unregistered(void)
{
	for (int i = 0; i < MR_MAX_REASSEMBLIES; i++)
		if (reassemblies[i].from_node != 0 &&
			!transport_peer_registered((int32) reassemblies[i].from_node))
			reassembly_abandon(&reassemblies[i]);
}

typedef void (*EnvelopeFn) (const struct mr_envelope *env, void *arg);

static void
deliver(const struct mr_envelope *env, EnvelopeFn fn, void *arg)
{
	MemoryContext old = MemoryContextSwitchTo(CallerContext);

	transport_counter_add(TC_ENVELOPES_RECEIVED, 1);
	transport_peer_heard((int32) env->from_node);
	fn(env, arg);
	MemoryContextSwitchTo(old);
}

/* One chunk frame; delivers the batch when it completes. */
static void
take_chunk(const WireFrame *f, EnvelopeFn fn, void *arg)
{
	Reassembly *r = reassembly_for(f->from_node);

	transport_counter_add(TC_CHUNKS_RECEIVED, 1);
	if (r == NULL)
		return;
	if (r->from_node != 0 &&
		(r->stream_id != f->stream_id || r->next_index != f->chunk_index))
		reassembly_abandon(r);	/* a gap, or the sender moved on */
	if (r->from_node == 0)
	{
		if (f->chunk_index != 0)
		{
			/* the start of this stream was lost: count the stream once */
			if (f->chunk_index == f->chunk_count - 1)
				transport_counter_add(TC_REASSEMBLY_FAILURES, 1);
			return;
		}
		/* Only registered peers: each may hold one buffer of at most wire_max_batch(). */
		if (!transport_peer_registered((int32) f->from_node))
		{
			transport_counter_add(TC_REASSEMBLY_FAILURES, 1);
			return;
		}
		r->from_node = f->from_node;
		r->stream_id = f->stream_id;
		r->next_index = 0;
		r->count = f->chunk_count;
		r->total_len = f->total_len;
		r->filled = 0;
	}
	if (f->chunk_count != r->count || f->total_len != r->total_len ||
		r->filled + f->chunk_len > r->total_len)
	{
		transport_counter_add(TC_REJECTED, 1);
		reassembly_abandon(r);
		return;
	}
	/* Grow with what arrives, not with what the first chunk announces. */
	if (r->filled + f->chunk_len > r->cap)
	{
		size_t		cap = Min(Max(r->cap * 2, r->filled + f->chunk_len), (size_t) r->total_len);
		char	   *buf = MemoryContextAllocExtended(TransportContext, cap,
													 MCXT_ALLOC_HUGE | MCXT_ALLOC_NO_OOM);

		if (buf == NULL)
		{
			reassembly_abandon(r);
			return;
		}
		if (r->buf != NULL)
		{
			memcpy(buf, r->buf, r->filled);
			pfree(r->buf);
		}
		r->buf = buf;
		r->cap = cap;
	}
	memcpy(r->buf + r->filled, f->chunk_data, f->chunk_len);
	r->filled += f->chunk_len;
	r->next_index++;
	if (r->next_index < r->count)
		return;

	if (r->filled != r->total_len)
	{
		transport_counter_add(TC_REJECTED, 1);
		reassembly_abandon(r);
	}
	else
	{
		struct mr_envelope env;
		char	   *err = NULL;
		WireResult	res;

		res = wire_decode_batch(r->buf, r->filled, (uint64) multiraft_cluster_id,
								(uint32) multiraft_node_id, r->from_node, &env, &err);
		pfree(r->buf);
		memset(r, 0, sizeof(*r));
		if (res != WIRE_OK)
		{
			transport_counter_add(TC_REJECTED, 1);
			ereport(LOG, (errmsg("multiraft: rejected a reassembled message: %s", err)));
			return;
		}
		transport_counter_add(TC_REASSEMBLED, 1);
		deliver(&env, fn, arg);
	}
}

typedef struct DrainTarget
{
	EnvelopeFn	fn;
	void	   *arg;
} DrainTarget;

/*
 * One frame, from the inbox (expect_from 0: the door validated and counted it)
 * or from an adopted link (expect_from: the node its handshake named; validated
 * and counted here, as door_admit() does at a backend's door).
 */
static void
take_frame(const char *data, size_t len, uint32 expect_from, void *arg)
{
	DrainTarget *t = (DrainTarget *) arg;
	WireFrame	f;
	char	   *err = NULL;

	if (len == 0)
		return;
	if (wire_decode_frame(data, len, (uint64) multiraft_cluster_id,
						  (uint32) multiraft_node_id, &f, &err) != WIRE_OK ||
		(expect_from != 0 && f.from_node != expect_from))
	{
		transport_counter_add(TC_REJECTED, 1);
		if (expect_from == 0)
			ereport(DEBUG1, (errmsg("multiraft: dropped an inbox message: %s", err)));
		else
			ereport(DEBUG1, (errmsg("multiraft: dropped a message on the link of node %u: %s",
									expect_from, err ? err : "it names another sender")));
	}
	else if (!transport_peer_registered((int32) f.from_node))
	{
		transport_counter_add(TC_REJECTED, 1);
		transport_counter_add(TC_UNREGISTERED, 1);
		ereport(DEBUG1, (errmsg("multiraft: dropped a message from node %u, which is not registered",
								f.from_node)));
	}
	else
	{
		if (expect_from != 0)
		{
			transport_counter_add(TC_FRAMES_RECEIVED, 1);
			transport_counter_add(TC_BYTES_RECEIVED, len);
			peer_stats_count_received((int32) expect_from, len);
		}
		if (f.is_chunk)
			take_chunk(&f, t->fn, t->arg);
		else
			deliver(&f.env, t->fn, t->arg);
	}
	MemoryContextReset(DrainContext);
}

void
transport_drain_inbox(void (*fn) (const struct mr_envelope *env, void *arg), void *arg)
{
	/* Only what is there now: producers keep adding while we work. */
	uint32		n = inbox_count();
	MemoryContext old;
	DrainTarget t = {fn, arg};

	if (DrainContext == NULL)
		return;					/* transport_init() not called */
	/* Judge the senders by the registry as committed now (add_node wakes us). */
	transport_reload_if_needed();
	reassembly_forget_unregistered();
	CallerContext = CurrentMemoryContext;
	old = MemoryContextSwitchTo(DrainContext);
	for (uint32 i = 0; i < n; i++)
	{
		char	   *data;
		size_t		len;

		if (!inbox_pop(&data, &len))
			break;
		take_frame(data, len, 0, &t);
	}
	adopt_drain(take_frame, &t);
	MemoryContextSwitchTo(old);
}
