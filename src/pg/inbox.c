/*
 * inbox.c — the transport's shared memory (see inbox.h): inbox ring, counters,
 * per-peer link rows, registry generation.
 */
#include "postgres.h"

#include "port/atomics.h"
#include "storage/lwlock.h"
#include "utils/timestamp.h"

#include "inbox.h"
#include "shmem.h"

typedef struct TransportShared
{
	/* inbox ring: head/tail are byte positions that only grow (mod capacity) */
	uint64		head;
	uint64		tail;
	uint32		n_records;
	Size		capacity;
	pg_atomic_uint64 registry_generation;
	pg_atomic_uint64 counters[TC_COUNT_];
	PeerStats	peers[MR_MAX_PEER_ROWS];
	char		ring[FLEXIBLE_ARRAY_MEMBER];
} TransportShared;

void	   *multiraft_transport_area = NULL;

#define TS() ((TransportShared *) multiraft_transport_area)

static const char *const counter_names[TC_COUNT_] = {
	[TC_FRAMES_RECEIVED] = "transport_frames_received",
	[TC_BYTES_RECEIVED] = "transport_bytes_received",
	[TC_ENVELOPES_RECEIVED] = "transport_envelopes_received",
	[TC_REJECTED] = "transport_rejected",
	[TC_INBOX_DROPS] = "transport_inbox_drops",
	[TC_CHUNKS_RECEIVED] = "transport_chunks_received",
	[TC_REASSEMBLED] = "transport_chunked_batches_received",
	[TC_REASSEMBLY_FAILURES] = "transport_reassembly_failures",
	[TC_ENVELOPES_SENT] = "transport_envelopes_sent",
	[TC_FRAMES_SENT] = "transport_frames_sent",
	[TC_BYTES_SENT] = "transport_bytes_sent",
	[TC_SEND_DROPS] = "transport_send_drops",
	[TC_SEND_ERRORS] = "transport_send_errors",
	[TC_ENCODE_FAILURES] = "transport_encode_failures",
	[TC_CONNECTS] = "transport_connects",
	[TC_CONNECT_FAILURES] = "transport_connect_failures",
	[TC_DISCONNECTS] = "transport_disconnects",
	[TC_LINKS_ADOPTED] = "transport_links_adopted",
	[TC_ADOPTED_CLOSED] = "transport_adopted_links_closed",
	[TC_UNREGISTERED] = "transport_rejected_unregistered",
	[TC_SPLIT_ENVELOPES] = "transport_envelopes_split",
};

/* ---------------------------------------------------------------- shmem */

Size
inbox_capacity(void)
{
	return (Size) multiraft_inbox_size_kb * 1024;
}

Size
transport_shmem_size(void)
{
	return add_size(offsetof(TransportShared, ring), inbox_capacity());
}

void
transport_shmem_init(void *area)
{
	TransportShared *ts = area;

	ts->capacity = inbox_capacity();
	pg_atomic_init_u64(&ts->registry_generation, 1);
	for (int i = 0; i < TC_COUNT_; i++)
		pg_atomic_init_u64(&ts->counters[i], 0);
}

/* ---------------------------------------------------------------- counters */

void
transport_counter_add(TransportCounter c, uint64 delta)
{
	pg_atomic_fetch_add_u64(&TS()->counters[c], delta);
}

uint64
transport_counter_get(TransportCounter c)
{
	return pg_atomic_read_u64(&TS()->counters[c]);
}

const char *
transport_counter_name(TransportCounter c)
{
	return counter_names[c];
}

uint64
transport_registry_generation(void)
{
	return pg_atomic_read_u64(&TS()->registry_generation);
}

void
transport_registry_bump(void)
{
	pg_atomic_fetch_add_u64(&TS()->registry_generation, 1);
}

/* ---------------------------------------------------------------- peer rows */

int
peer_stats_attach(int32 node_id)
{
	TransportShared *ts = TS();
	int			row = -1;

	LWLockAcquire(multiraft_lock(MR_LOCK_PEERS), LW_EXCLUSIVE);
	for (int i = 0; i < MR_MAX_PEER_ROWS; i++)
		if (ts->peers[i].node_id == node_id)
		{
			row = i;
			break;
		}
	if (row < 0)
		for (int i = 0; i < MR_MAX_PEER_ROWS; i++)
			if (ts->peers[i].node_id == 0)
			{
				memset(&ts->peers[i], 0, sizeof(PeerStats));
				ts->peers[i].node_id = node_id;
				ts->peers[i].state_since = GetCurrentTimestamp();
				row = i;
				break;
			}
	LWLockRelease(multiraft_lock(MR_LOCK_PEERS));
	return row;
}

void
peer_stats_retain(const int32 *keep, int n)
{
	TransportShared *ts = TS();

	LWLockAcquire(multiraft_lock(MR_LOCK_PEERS), LW_EXCLUSIVE);
	for (int i = 0; i < MR_MAX_PEER_ROWS; i++)
	{
		bool		kept = false;

		if (ts->peers[i].node_id == 0)
			continue;
		for (int j = 0; j < n && !kept; j++)
			kept = keep[j] == ts->peers[i].node_id;
		if (!kept)
			memset(&ts->peers[i], 0, sizeof(PeerStats));
	}
	LWLockRelease(multiraft_lock(MR_LOCK_PEERS));
}

void
peer_stats_update(int row, void (*fn) (PeerStats *ps, void *arg), void *arg)
{
	if (row < 0 || row >= MR_MAX_PEER_ROWS)
		return;
	LWLockAcquire(multiraft_lock(MR_LOCK_PEERS), LW_EXCLUSIVE);
	fn(&TS()->peers[row], arg);
	LWLockRelease(multiraft_lock(MR_LOCK_PEERS));
}

int
peer_stats_snapshot(PeerStats **rows)
{
	TransportShared *ts = TS();
	int			n = 0;

	*rows = palloc(sizeof(PeerStats) * MR_MAX_PEER_ROWS);
	LWLockAcquire(multiraft_lock(MR_LOCK_PEERS), LW_SHARED);
	for (int i = 0; i < MR_MAX_PEER_ROWS; i++)
		if (ts->peers[i].node_id != 0)
			(*rows)[n++] = ts->peers[i];
	LWLockRelease(multiraft_lock(MR_LOCK_PEERS));
	return n;
}

bool
peer_stats_may_know(int32 node_id)
{
	TransportShared *ts = TS();
	bool		known = false;
	bool		full = true;

	LWLockAcquire(multiraft_lock(MR_LOCK_PEERS), LW_SHARED);
	for (int i = 0; i < MR_MAX_PEER_ROWS && !known; i++)
	{
		known = ts->peers[i].node_id == node_id;
		if (ts->peers[i].node_id == 0)
			full = false;
	}
	LWLockRelease(multiraft_lock(MR_LOCK_PEERS));
	return known || full;
}

void
peer_stats_count_received(int32 node_id, size_t bytes)
{
	TransportShared *ts = TS();

	LWLockAcquire(multiraft_lock(MR_LOCK_PEERS), LW_EXCLUSIVE);
	for (int i = 0; i < MR_MAX_PEER_ROWS; i++)
		if (ts->peers[i].node_id == node_id)
		{
			ts->peers[i].frames_received++;
			ts->peers[i].bytes_received += bytes;
			break;
		}
	LWLockRelease(multiraft_lock(MR_LOCK_PEERS));
}

/* ---------------------------------------------------------------- inbox ring */

/* Copy len bytes into / out of the ring at byte position pos (wrapping). */
static void
ring_write(TransportShared *ts, uint64 pos, const void *src, Size len)
{
	Size		off = pos % ts->capacity;
	Size		first = Min(len, ts->capacity - off);

	memcpy(ts->ring + off, src, first);
	if (first < len)
		memcpy(ts->ring, (const char *) src + first, len - first);
}

static void
ring_read(TransportShared *ts, uint64 pos, void *dst, Size len)
{
	Size		off = pos % ts->capacity;
	Size		first = Min(len, ts->capacity - off);

	memcpy(dst, ts->ring + off, first);
	if (first < len)
		memcpy((char *) dst + first, ts->ring, len - first);
}

bool
inbox_push(const void *data, size_t len)
{
	TransportShared *ts = TS();
	uint32		hdr = (uint32) len;
	bool		ok;

	LWLockAcquire(multiraft_lock(MR_LOCK_INBOX), LW_EXCLUSIVE);
	ok = len <= PG_UINT32_MAX &&
		(ts->head - ts->tail) + sizeof(hdr) + len <= ts->capacity;
	if (ok)
	{
		ring_write(ts, ts->head, &hdr, sizeof(hdr));
		ring_write(ts, ts->head + sizeof(hdr), data, len);
		ts->head += sizeof(hdr) + len;
		ts->n_records++;
	}
	LWLockRelease(multiraft_lock(MR_LOCK_INBOX));
	return ok;
}

bool
inbox_pop(char **data, size_t *len)
{
	TransportShared *ts = TS();
	uint32		hdr;

	/*
	 * Copy out under the lock: records are at most MR_WIRE_MAX_FRAME bytes, so
	 * producers wait at most one memcpy of that size.
	 */
	LWLockAcquire(multiraft_lock(MR_LOCK_INBOX), LW_EXCLUSIVE);
	if (ts->n_records == 0)
	{
		LWLockRelease(multiraft_lock(MR_LOCK_INBOX));
		return false;
	}
	ring_read(ts, ts->tail, &hdr, sizeof(hdr));
	*len = hdr;
	*data = MemoryContextAllocExtended(CurrentMemoryContext, hdr > 0 ? hdr : 1,
									   MCXT_ALLOC_NO_OOM);
	if (*data != NULL)
		ring_read(ts, ts->tail + sizeof(hdr), *data, hdr);
	ts->tail += sizeof(hdr) + hdr;
	ts->n_records--;
	LWLockRelease(multiraft_lock(MR_LOCK_INBOX));
	if (*data == NULL)
	{
		/* out of memory: the frame is lost like any dropped one */
		transport_counter_add(TC_INBOX_DROPS, 1);
		*len = 0;
		*data = palloc(1);
	}
	return true;
}

uint32
inbox_count(void)
{
	uint32		n;

	LWLockAcquire(multiraft_lock(MR_LOCK_INBOX), LW_SHARED);
	n = TS()->n_records;
	LWLockRelease(multiraft_lock(MR_LOCK_INBOX));
	return n;
}
