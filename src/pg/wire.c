/*
 * wire.c — mr_envelope <-> protobuf Batch (proto/multiraft.proto), chunking of
 * large Batches, and the validation every received frame goes through.
 *
 * Validation is the receiver's only defence: the sender may be another cluster,
 * an older or newer version, a confused client of multiraft.receive() or plain
 * noise.  protobuf-c checks the encoding (lengths, wire types, truncation); the
 * checks below cover what the schema cannot say: header fields, message types,
 * which message types carry entries or snapshots, array bounds and field widths
 * narrower in the core's structs than on the wire.
 */
#include "postgres.h"

#include <protobuf-c/protobuf-c.h>

#include "multiraft.pb-c.h"

#include "lib/stringinfo.h"
#include "utils/memutils.h"

#include "guc.h"
#include "wire.h"

size_t
wire_max_batch(void)
{
	return (size_t) 64 * 1024 * 1024 + 2 * (size_t) multiraft_max_command_size;
}

/* ---------------------------------------------------------------- allocator */

/*
 * protobuf-c allocates through this: palloc in the caller's (short-lived)
 * context; NULL instead of an ERROR when out of memory, which protobuf-c turns
 * into a failed unpack.
 *
 * Decoding may need far more memory than the input: every embedded message
 * becomes a struct, a pointer in its parent's array and a record in the
 * decoder's scan, so a body of empty messages ("2a 00" repeated: a Message in
 * 2 bytes) makes about 300 bytes of allocations per 2 input bytes, and the
 * item limits of decode_envelope() only apply once all of it exists.  So one
 * unpack gets a budget (wire_decode_budget()) and fails like a malformed
 * frame once its live allocations would exceed it.
 *
 * What legitimate frames need (peak live bytes, measured on batches that
 * wire_encode() made, palloc's rounding and chunk headers included): bytes
 * fields (entries, snapshots) are copied once, ~1.0x; small items cost a
 * struct rounded up to a power of two, a pointer and a scan record: a
 * heartbeat with small values (12 bytes on the wire) ~16x, a heartbeat
 * response ~19x, an APPEND of empty entries ~16x, a small raft message (14
 * bytes) ~23x; 10^6 such messages, the most decode_envelope() takes, need
 * 314 MB for 14 MB.  So the first 8 MB of a frame get 32x (every single
 * frame, up to MR_WIRE_MAX_FRAME, and any batch of up to ~10^6 of the
 * smallest items), the rest 4x (bytes fields of large batches, with room),
 * and 32 MB on top.  A hostile reassembled batch of wire_max_batch() (~66 MB
 * by default) thus costs the worker at most ~560 MB while one unpack runs,
 * instead of ~10 GB.
 */
#define WIRE_BUDGET_SMALL_BYTES ((Size) 8 * 1024 * 1024)
#define WIRE_BUDGET_SMALL_FACTOR 32
#define WIRE_BUDGET_LARGE_FACTOR 4
#define WIRE_BUDGET_BASE ((Size) 32 * 1024 * 1024)

typedef struct WireBudget
{
	Size		limit;			/* live bytes allowed, chunk overhead included */
	Size		used;			/* live bytes now */
	bool		exceeded;		/* an allocation was refused for the budget */
} WireBudget;

static Size
wire_decode_budget(size_t len)
{
	return WIRE_BUDGET_BASE +
		WIRE_BUDGET_SMALL_FACTOR * Min((Size) len, WIRE_BUDGET_SMALL_BYTES) +
		WIRE_BUDGET_LARGE_FACTOR * (Size) len;
}

static void *
wire_pb_alloc(void *data, size_t size)
{
	WireBudget *budget = (WireBudget *) data;
	void	   *p;
	Size		space;

	/* used <= limit always: no overflow in the subtraction */
	if (size > budget->limit - budget->used)
	{
		budget->exceeded = true;
		return NULL;
	}
	p = MemoryContextAllocExtended(CurrentMemoryContext, size,
								   MCXT_ALLOC_NO_OOM | MCXT_ALLOC_HUGE);
	if (p == NULL)
		return NULL;
	/* What the chunk really takes: palloc rounds up and adds a header. */
	space = GetMemoryChunkSpace(p);
	if (space > budget->limit - budget->used)
	{
		pfree(p);
		budget->exceeded = true;
		return NULL;
	}
	budget->used += space;
	return p;
}

/*
 * On a failed unpack protobuf-c frees what it had built through this; the
 * caller's context goes soon after anyway.
 */
static void
wire_pb_free(void *data, void *p)
{
	WireBudget *budget = (WireBudget *) data;

	if (p == NULL)
		return;
	budget->used -= Min(budget->used, GetMemoryChunkSpace(p));
	pfree(p);
}

/* ---------------------------------------------------------------- encoding */

static Multiraft__ConfState *
encode_conf(const struct raft_conf_state *cs)
{
	Multiraft__ConfState *c = palloc(sizeof(*c));

	multiraft__conf_state__init(c);
	c->n_voters = cs->n_voters;
	c->voters = (uint64_t *) cs->voters;
	c->n_learners = cs->n_learners;
	c->learners = (uint64_t *) cs->learners;
	return c;
}

static Multiraft__Message *
encode_message(const struct mr_message *mm)
{
	const struct raft_message *m = &mm->msg;
	Multiraft__Message *p = palloc(sizeof(*p));

	multiraft__message__init(p);
	p->group = mm->group;
	p->incarnation = mm->incarnation;
	p->type = m->type;
	p->reject = m->reject != 0;
	p->from = m->from;
	p->to = m->to;
	p->term = m->term;
	p->log_term = m->log_term;
	p->index = m->index;
	p->commit = m->commit;
	p->reject_hint = m->reject_hint;
	p->context = m->context;
	if (m->n_entries > 0 && m->entries != NULL)
	{
		Multiraft__Entry *ents = palloc(sizeof(Multiraft__Entry) * m->n_entries);

		p->n_entries = m->n_entries;
		p->entries = palloc(sizeof(Multiraft__Entry *) * m->n_entries);
		for (uint32 i = 0; i < m->n_entries; i++)
		{
			const struct raft_entry *e = &m->entries[i];

			multiraft__entry__init(&ents[i]);
			ents[i].term = e->term;
			ents[i].index = e->index;
			ents[i].type = e->type;
			ents[i].data.len = e->len;
			ents[i].data.data = (uint8_t *) e->data;
			p->entries[i] = &ents[i];
		}
	}
	if (m->snapshot != NULL)
	{
		Multiraft__Snapshot *s = palloc(sizeof(*s));

		multiraft__snapshot__init(s);
		s->index = m->snapshot->index;
		s->term = m->snapshot->term;
		s->conf = encode_conf(&m->snapshot->conf);
		s->data.len = m->snapshot->len;
		s->data.data = (uint8_t *) m->snapshot->data;
		p->snapshot = s;
	}
	return p;
}

static Multiraft__Heartbeat **
encode_heartbeats(const struct mr_heartbeat *hb, size_t n)
{
	Multiraft__Heartbeat *all;
	Multiraft__Heartbeat **ptrs;

	if (n == 0)
		return NULL;
	all = palloc(sizeof(Multiraft__Heartbeat) * n);
	ptrs = palloc(sizeof(Multiraft__Heartbeat *) * n);
	for (size_t i = 0; i < n; i++)
	{
		multiraft__heartbeat__init(&all[i]);
		all[i].group = hb[i].group;
		all[i].incarnation = hb[i].incarnation;
		all[i].from = hb[i].from;
		all[i].to = hb[i].to;
		all[i].term = hb[i].term;
		all[i].commit = hb[i].commit;
		all[i].context = hb[i].context;
		all[i].flags = hb[i].flags;
		all[i].reject = hb[i].reject;
		ptrs[i] = &all[i];
	}
	return ptrs;
}

static void
init_header(Multiraft__Batch *b, const struct mr_envelope *env, uint64 cluster_id)
{
	multiraft__batch__init(b);
	b->version = MR_WIRE_VERSION;
	b->cluster_id = cluster_id;
	b->from_node = env->from_node;
	b->to_node = env->to_node;
}

static char *
pack_batch(const Multiraft__Batch *b, size_t *len)
{
	size_t		size = multiraft__batch__get_packed_size(b);
	char	   *buf = MemoryContextAllocExtended(CurrentMemoryContext, size > 0 ? size : 1,
												 MCXT_ALLOC_HUGE);

	*len = multiraft__batch__pack(b, (uint8_t *) buf);
	Assert(*len == size);
	return buf;
}

bool
wire_encode(const struct mr_envelope *env, uint64 cluster_id, uint64 stream_id,
			WireFrames *out, char **errmsg)
{
	Multiraft__Batch b;
	size_t		size;
	char	   *whole;
	size_t		whole_len;

	init_header(&b, env, cluster_id);
	if (env->n_messages > 0)
	{
		b.n_messages = env->n_messages;
		b.messages = palloc(sizeof(Multiraft__Message *) * env->n_messages);
		for (size_t i = 0; i < env->n_messages; i++)
			b.messages[i] = encode_message(&env->messages[i]);
	}
	b.n_heartbeats = env->n_heartbeats;
	b.heartbeats = encode_heartbeats(env->heartbeats, env->n_heartbeats);
	b.n_heartbeat_resps = env->n_heartbeat_resps;
	b.heartbeat_resps = encode_heartbeats(env->heartbeat_resps, env->n_heartbeat_resps);

	size = multiraft__batch__get_packed_size(&b);
	if (size > wire_max_batch())
	{
		*errmsg = psprintf("envelope for node %u is %zu bytes, more than the limit of %zu",
						   env->to_node, size, wire_max_batch());
		return false;
	}
	whole = pack_batch(&b, &whole_len);
	out->batch_len = whole_len;

	if (whole_len <= MR_WIRE_CHUNK_SIZE)
	{
		out->n = 1;
		out->data = palloc(sizeof(char *));
		out->len = palloc(sizeof(size_t));
		out->data[0] = whole;
		out->len[0] = whole_len;
		return true;
	}

	/* Too large for one frame: cut the encoded Batch into chunk frames. */
	out->n = (int) ((whole_len + MR_WIRE_CHUNK_SIZE - 1) / MR_WIRE_CHUNK_SIZE);
	out->data = palloc(sizeof(char *) * out->n);
	out->len = palloc(sizeof(size_t) * out->n);
	for (int i = 0; i < out->n; i++)
	{
		Multiraft__Batch cb;
		Multiraft__Chunk chunk;
		size_t		off = (size_t) i * MR_WIRE_CHUNK_SIZE;

		init_header(&cb, env, cluster_id);
		multiraft__chunk__init(&chunk);
		chunk.stream_id = stream_id;
		chunk.index = (uint32) i;
		chunk.count = (uint32) out->n;
		chunk.total_len = whole_len;
		chunk.data.data = (uint8_t *) whole + off;
		chunk.data.len = Min((size_t) MR_WIRE_CHUNK_SIZE, whole_len - off);
		cb.chunk = &chunk;
		out->data[i] = pack_batch(&cb, &out->len[i]);
	}
	pfree(whole);
	return true;
}

/* ---------------------------------------------------------------- decoding */

#define REJECT(result, ...) \
	do { *errmsg = psprintf(__VA_ARGS__); return (result); } while (0)

static WireResult
check_conf(const Multiraft__ConfState *c, struct raft_conf_state *out, char **errmsg)
{
	memset(out, 0, sizeof(*out));
	if (c == NULL)
		return WIRE_OK;
	if (c->n_voters > MR_WIRE_MAX_CONF || c->n_learners > MR_WIRE_MAX_CONF)
		REJECT(WIRE_BAD_FIELD, "snapshot configuration lists %zu voters and %zu learners (at most %d each)",
			   c->n_voters, c->n_learners, MR_WIRE_MAX_CONF);
	for (size_t i = 0; i < c->n_voters; i++)
		if (c->voters[i] == 0)
			REJECT(WIRE_BAD_FIELD, "snapshot configuration has replica id 0");
	for (size_t i = 0; i < c->n_learners; i++)
		if (c->learners[i] == 0)
			REJECT(WIRE_BAD_FIELD, "snapshot configuration has replica id 0");
	out->voters = (const raft_id *) c->voters;
	out->n_voters = (uint32) c->n_voters;
	out->learners = (const raft_id *) c->learners;
	out->n_learners = (uint32) c->n_learners;
	return WIRE_OK;
}

static WireResult
decode_message(const Multiraft__Message *p, struct mr_message *out, char **errmsg)
{
	struct raft_message *m = &out->msg;
	bool		carries_entries;

	memset(out, 0, sizeof(*out));
	if (p->type < 1 || p->type > RAFT_MSG_TYPE_MAX)
		REJECT(WIRE_BAD_FIELD, "raft message type %u is out of range (1..%d)",
			   p->type, RAFT_MSG_TYPE_MAX);
	if (p->from == RAFT_NONE || p->to == RAFT_NONE)
		REJECT(WIRE_BAD_FIELD, "raft message %s has replica id 0",
			   raft_msg_type_name((int) p->type));
	carries_entries = p->type == RAFT_MSG_APPEND || p->type == RAFT_MSG_PROPOSE;
	if (p->n_entries > 0 && !carries_entries)
		REJECT(WIRE_BAD_FIELD, "raft message %s carries entries",
			   raft_msg_type_name((int) p->type));
	if (p->n_entries > MR_WIRE_MAX_ENTRIES)
		REJECT(WIRE_BAD_FIELD, "raft message carries %zu entries (at most %d)",
			   p->n_entries, MR_WIRE_MAX_ENTRIES);
	if ((p->snapshot != NULL) != (p->type == RAFT_MSG_SNAPSHOT))
		REJECT(WIRE_BAD_FIELD, "raft message %s %s a snapshot",
			   raft_msg_type_name((int) p->type),
			   p->snapshot != NULL ? "carries" : "lacks");
	/* Group ids are positive bigints (the SQL API's rule): the tables hold them as such. */
	if (p->group == 0 || p->group > (uint64) PG_INT64_MAX)
		REJECT(WIRE_BAD_FIELD, "raft message for group %llu (group ids are 1..2^63-1)",
			   (unsigned long long) p->group);

	out->group = p->group;
	out->incarnation = p->incarnation;
	m->type = (uint8) p->type;
	m->reject = p->reject ? 1 : 0;
	m->from = p->from;
	m->to = p->to;
	m->term = p->term;
	m->log_term = p->log_term;
	m->index = p->index;
	m->commit = p->commit;
	m->reject_hint = p->reject_hint;
	m->context = p->context;

	if (p->n_entries > 0)
	{
		struct raft_entry *ents = palloc(sizeof(struct raft_entry) * p->n_entries);

		for (size_t i = 0; i < p->n_entries; i++)
		{
			const Multiraft__Entry *e = p->entries[i];

			if (e->type > RAFT_ENTRY_CONF_CHANGE)
				REJECT(WIRE_BAD_FIELD, "log entry type %u is out of range (0..%d)",
					   e->type, RAFT_ENTRY_CONF_CHANGE);
			if (e->data.len > PG_UINT32_MAX)
				REJECT(WIRE_BAD_FIELD, "log entry of %zu bytes is too large", e->data.len);
			/* §5.3: an AppendEntries carries consecutive entries after prevLogIndex,
			 * none from a term later than the leader's. */
			if (p->type == RAFT_MSG_APPEND &&
				(e->index != p->index + 1 + i || e->term > p->term))
				REJECT(WIRE_BAD_FIELD, "APPEND entry %zu has index %llu term %llu after index %llu in term %llu",
					   i, (unsigned long long) e->index, (unsigned long long) e->term,
					   (unsigned long long) p->index, (unsigned long long) p->term);
			ents[i].term = e->term;
			ents[i].index = e->index;
			ents[i].type = (uint8) e->type;
			ents[i].len = (uint32) e->data.len;
			ents[i].data = e->data.len > 0 ? e->data.data : NULL;
		}
		m->entries = ents;
		m->n_entries = (uint32) p->n_entries;
	}

	if (p->snapshot != NULL)
	{
		struct raft_snapshot *s = palloc0(sizeof(*s));
		WireResult	r;

		if (p->snapshot->index == 0)
			REJECT(WIRE_BAD_FIELD, "snapshot at index 0");
		r = check_conf(p->snapshot->conf, &s->conf, errmsg);
		if (r != WIRE_OK)
			return r;
		s->index = p->snapshot->index;
		s->term = p->snapshot->term;
		s->data = p->snapshot->data.len > 0 ? p->snapshot->data.data : NULL;
		s->len = p->snapshot->data.len;
		m->snapshot = s;
	}
	return WIRE_OK;
}

static WireResult
decode_heartbeats(Multiraft__Heartbeat **in, size_t n, const struct mr_heartbeat **out,
				  char **errmsg)
{
	struct mr_heartbeat *hb;

	*out = NULL;
	if (n == 0)
		return WIRE_OK;
	hb = palloc(sizeof(struct mr_heartbeat) * n);
	for (size_t i = 0; i < n; i++)
	{
		const Multiraft__Heartbeat *p = in[i];

		if (p->from == RAFT_NONE || p->to == RAFT_NONE)
			REJECT(WIRE_BAD_FIELD, "heartbeat for group %llu has replica id 0",
				   (unsigned long long) p->group);
		if (p->group == 0 || p->group > (uint64) PG_INT64_MAX)
			REJECT(WIRE_BAD_FIELD, "heartbeat for group %llu (group ids are 1..2^63-1)",
				   (unsigned long long) p->group);
		if (p->flags > PG_UINT8_MAX || p->reject > 1)
			REJECT(WIRE_BAD_FIELD, "heartbeat for group %llu has flags %u, reject %u",
				   (unsigned long long) p->group, p->flags, p->reject);
		hb[i].group = p->group;
		hb[i].incarnation = p->incarnation;
		hb[i].from = p->from;
		hb[i].to = p->to;
		hb[i].term = p->term;
		hb[i].commit = p->commit;
		hb[i].context = p->context;
		hb[i].flags = (uint8) p->flags;
		hb[i].reject = (uint8) p->reject;
	}
	*out = hb;
	return WIRE_OK;
}

static WireResult
check_header(const Multiraft__Batch *b, uint64 cluster_id, uint32 my_node, char **errmsg)
{
	if (b->version != MR_WIRE_VERSION)
		REJECT(WIRE_BAD_VERSION, "unsupported multiraft protocol version %u (this node speaks version %d)",
			   b->version, MR_WIRE_VERSION);
	if (b->cluster_id != cluster_id)
		REJECT(WIRE_BAD_CLUSTER, "multiraft message from cluster %llu rejected: this node is in cluster %llu (multiraft.cluster_id)",
			   (unsigned long long) b->cluster_id, (unsigned long long) cluster_id);
	if (b->from_node == 0 || b->from_node > PG_INT32_MAX)
		REJECT(WIRE_BAD_NODE, "multiraft message from invalid node %u", b->from_node);
	if (b->to_node != my_node)
		REJECT(WIRE_BAD_NODE, "multiraft message for node %u reached node %u",
			   b->to_node, my_node);
	if (b->from_node == my_node)
		REJECT(WIRE_BAD_NODE, "multiraft message from node %u claims to come from this node",
			   b->from_node);
	return WIRE_OK;
}

static WireResult
decode_envelope(const Multiraft__Batch *b, struct mr_envelope *env, char **errmsg)
{
	struct mr_message *msgs = NULL;
	WireResult	r;

	memset(env, 0, sizeof(*env));
	if (b->n_messages > MR_WIRE_MAX_ITEMS || b->n_heartbeats > MR_WIRE_MAX_ITEMS ||
		b->n_heartbeat_resps > MR_WIRE_MAX_ITEMS)
		REJECT(WIRE_BAD_FIELD, "multiraft message carries too many items (%zu messages, %zu heartbeats, %zu responses; at most %d each)",
			   b->n_messages, b->n_heartbeats, b->n_heartbeat_resps, MR_WIRE_MAX_ITEMS);
	if (b->n_messages > 0)
	{
		msgs = palloc(sizeof(struct mr_message) * b->n_messages);
		for (size_t i = 0; i < b->n_messages; i++)
		{
			r = decode_message(b->messages[i], &msgs[i], errmsg);
			if (r != WIRE_OK)
				return r;
		}
	}
	r = decode_heartbeats(b->heartbeats, b->n_heartbeats, &env->heartbeats, errmsg);
	if (r != WIRE_OK)
		return r;
	r = decode_heartbeats(b->heartbeat_resps, b->n_heartbeat_resps,
						  &env->heartbeat_resps, errmsg);
	if (r != WIRE_OK)
		return r;
	env->from_node = b->from_node;
	env->to_node = b->to_node;
	env->messages = msgs;
	env->n_messages = b->n_messages;
	env->n_heartbeats = b->n_heartbeats;
	env->n_heartbeat_resps = b->n_heartbeat_resps;
	return WIRE_OK;
}

/* Decodes a Batch into *b and checks its header (version, cluster, addressee). */
static WireResult
unpack(const void *buf, size_t len, uint64 cluster_id, uint32 my_node,
	   Multiraft__Batch **b, char **errmsg)
{
	WireBudget	budget = {wire_decode_budget(len), 0, false};
	ProtobufCAllocator allocator = {wire_pb_alloc, wire_pb_free, &budget};

	*b = multiraft__batch__unpack(&allocator, len, (const uint8_t *) buf);
	if (*b == NULL && budget.exceeded)
		REJECT(WIRE_TOO_LARGE, "could not decode multiraft message of %zu bytes: decoding it would take more than %zu bytes of memory",
			   len, budget.limit);
	if (*b == NULL)
		REJECT(WIRE_UNDECODABLE, "could not decode multiraft message of %zu bytes: not a protobuf Batch, or truncated",
			   len);
	return check_header(*b, cluster_id, my_node, errmsg);
}

WireResult
wire_decode_frame(const void *buf, size_t len, uint64 cluster_id, uint32 my_node,
				  WireFrame *out, char **errmsg)
{
	Multiraft__Batch *b;
	WireResult	r;

	memset(out, 0, sizeof(*out));
	if (len > MR_WIRE_MAX_FRAME)
		REJECT(WIRE_TOO_LARGE, "multiraft message of %zu bytes is too large (at most %d bytes per message)",
			   len, MR_WIRE_MAX_FRAME);
	r = unpack(buf, len, cluster_id, my_node, &b, errmsg);
	if (r != WIRE_OK)
		return r;
	out->from_node = b->from_node;
	out->to_node = b->to_node;
	if (b->chunk != NULL)
	{
		const Multiraft__Chunk *c = b->chunk;

		if (b->n_messages > 0 || b->n_heartbeats > 0 || b->n_heartbeat_resps > 0)
			REJECT(WIRE_BAD_FIELD, "multiraft chunk carries messages");
		if (c->count < 2 || c->index >= c->count || c->total_len == 0 ||
			c->total_len > wire_max_batch() || c->count > c->total_len ||
			c->data.len == 0 || c->data.len > c->total_len)
			REJECT(WIRE_BAD_FIELD, "multiraft chunk %u of %u (%zu of %llu bytes) is out of range",
				   c->index, c->count, c->data.len, (unsigned long long) c->total_len);
		out->is_chunk = true;
		out->stream_id = c->stream_id;
		out->chunk_index = c->index;
		out->chunk_count = c->count;
		out->total_len = c->total_len;
		out->chunk_data = c->data.data;
		out->chunk_len = c->data.len;
		return WIRE_OK;
	}
	return decode_envelope(b, &out->env, errmsg);
}

WireResult
wire_decode_batch(const void *buf, size_t len, uint64 cluster_id, uint32 my_node,
				  uint32 from_node, struct mr_envelope *env, char **errmsg)
{
	Multiraft__Batch *b;
	WireResult	r;

	memset(env, 0, sizeof(*env));
	if (len > wire_max_batch())
		REJECT(WIRE_TOO_LARGE, "reassembled multiraft message of %zu bytes is too large (at most %zu)",
			   len, wire_max_batch());
	r = unpack(buf, len, cluster_id, my_node, &b, errmsg);
	if (r != WIRE_OK)
		return r;
	if (b->from_node != from_node)
		REJECT(WIRE_BAD_NODE, "reassembled multiraft message claims node %u, its chunks came from node %u",
			   b->from_node, from_node);
	if (b->chunk != NULL)
		REJECT(WIRE_BAD_FIELD, "reassembled multiraft message is itself a chunk");
	return decode_envelope(b, env, errmsg);
}

/* ---------------------------------------------------------------- describe */

static void
describe_ids(StringInfo buf, const raft_id *ids, uint32 n)
{
	for (uint32 i = 0; i < n; i++)
		appendStringInfo(buf, "%s%llu", i > 0 ? "," : "", (unsigned long long) ids[i]);
}

static void
describe_heartbeats(StringInfo buf, const char *label, const struct mr_heartbeat *hb, size_t n)
{
	for (size_t i = 0; i < n; i++)
		appendStringInfo(buf, "; %s g%llu %llu->%llu t%llu c%llu ctx%llu f%u r%u", label,
						 (unsigned long long) hb[i].group, (unsigned long long) hb[i].from,
						 (unsigned long long) hb[i].to, (unsigned long long) hb[i].term,
						 (unsigned long long) hb[i].commit, (unsigned long long) hb[i].context,
						 hb[i].flags, hb[i].reject);
}

char *
wire_describe(const struct mr_envelope *env)
{
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfo(&buf, "node %u -> node %u", env->from_node, env->to_node);
	for (size_t i = 0; i < env->n_messages; i++)
	{
		const struct raft_message *m = &env->messages[i].msg;

		appendStringInfo(&buf, "; %s g%llu %llu->%llu t%llu lt%llu i%llu c%llu",
						 raft_msg_type_name(m->type),
						 (unsigned long long) env->messages[i].group,
						 (unsigned long long) m->from, (unsigned long long) m->to,
						 (unsigned long long) m->term, (unsigned long long) m->log_term,
						 (unsigned long long) m->index, (unsigned long long) m->commit);
		if (m->reject)
			appendStringInfo(&buf, " reject hint%llu", (unsigned long long) m->reject_hint);
		if (m->context)
			appendStringInfo(&buf, " ctx%llu", (unsigned long long) m->context);
		for (uint32 e = 0; e < m->n_entries; e++)
			appendStringInfo(&buf, " [%llu@%llu %s %uB]",
							 (unsigned long long) m->entries[e].index,
							 (unsigned long long) m->entries[e].term,
							 m->entries[e].type == RAFT_ENTRY_CONF_CHANGE ? "conf" : "normal",
							 m->entries[e].len);
		if (m->snapshot)
		{
			appendStringInfo(&buf, " snapshot %llu@%llu voters ",
							 (unsigned long long) m->snapshot->index,
							 (unsigned long long) m->snapshot->term);
			describe_ids(&buf, m->snapshot->conf.voters, m->snapshot->conf.n_voters);
			appendStringInfoString(&buf, " learners ");
			describe_ids(&buf, m->snapshot->conf.learners, m->snapshot->conf.n_learners);
			appendStringInfo(&buf, " %zuB", m->snapshot->len);
		}
	}
	describe_heartbeats(&buf, "HB", env->heartbeats, env->n_heartbeats);
	describe_heartbeats(&buf, "HB_RESP", env->heartbeat_resps, env->n_heartbeat_resps);
	return buf.data;
}
