/*
 * transport_door.c — validate a received frame and hand it to the worker
 * through the shared-memory inbox (transport_door.h).
 */
#include "postgres.h"

#include "miscadmin.h"
#include "storage/latch.h"
#include "utils/memutils.h"
#include "utils/wait_event.h"

#include "guc.h"
#include "inbox.h"
#include "shmem.h"
#include "transport_door.h"

/* How long a chunk may wait for room in a full inbox (ms), in steps. */
#define MR_CHUNK_WAIT_MS 1000
#define MR_CHUNK_WAIT_STEP_MS 10

int
door_errcode(WireResult r)
{
	switch (r)
	{
		case WIRE_TOO_LARGE:
			return ERRCODE_PROGRAM_LIMIT_EXCEEDED;
		case WIRE_BAD_VERSION:
			return ERRCODE_FEATURE_NOT_SUPPORTED;
		case WIRE_BAD_CLUSTER:
		case WIRE_BAD_NODE:
			return ERRCODE_INVALID_PARAMETER_VALUE;
		default:
			return ERRCODE_INVALID_BINARY_REPRESENTATION;
	}
}

/*
 * A full inbox drops the frame: a sender must never be stalled by a busy
 * receiver.  Chunks of a large batch wait briefly for room first, since losing
 * one loses the whole batch.
 */
static bool
push_or_wait(const char *data, size_t len, bool is_chunk)
{
	if (inbox_push(data, len))
		return true;
	for (int waited = 0; is_chunk && waited < MR_CHUNK_WAIT_MS;
		 waited += MR_CHUNK_WAIT_STEP_MS)
	{
		multiraft_wake_worker();
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 MR_CHUNK_WAIT_STEP_MS, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
		if (inbox_push(data, len))
			return true;
	}
	return false;
}

WireResult
door_admit(const char *data, size_t len, uint32 expect_from, char **err)
{
	MemoryContext ctx;
	MemoryContext old;
	WireFrame	f;
	WireResult	r;
	bool		is_chunk;
	uint32		from_node;

	/* The decoder allocates freely: all of it goes with this context. */
	ctx = AllocSetContextCreate(CurrentMemoryContext, "multiraft receive",
								ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(ctx);
	r = wire_decode_frame(data, len, (uint64) multiraft_cluster_id,
						  (uint32) multiraft_node_id, &f, err);
	MemoryContextSwitchTo(old);
	if (r == WIRE_OK && expect_from != 0 && f.from_node != expect_from)
	{
		r = WIRE_BAD_NODE;
		*err = psprintf("multiraft message from node %u on the link of node %u",
						f.from_node, expect_from);
	}
	else if (r != WIRE_OK)
		*err = pstrdup(*err);	/* it lives in ctx */
	is_chunk = f.is_chunk;
	from_node = f.from_node;
	MemoryContextDelete(ctx);
	if (r != WIRE_OK)
	{
		transport_counter_add(TC_REJECTED, 1);
		return r;
	}

	/*
	 * receive() takes any sender id: refuse the ones the worker does not know,
	 * so that the caller hears why.  The worker drops them anyway (every peer
	 * it hears from costs it memory and work for good, transport_recv.c); a
	 * link's frames are left to that check alone, its sender is fixed.
	 */
	if (expect_from == 0 && !peer_stats_may_know((int32) from_node))
	{
		transport_counter_add(TC_REJECTED, 1);
		transport_counter_add(TC_UNREGISTERED, 1);
		*err = psprintf("multiraft message from node %u, which is not registered on this node (multiraft.add_node), or not yet loaded by its worker",
						from_node);
		return WIRE_BAD_NODE;
	}

	if (!push_or_wait(data, len, is_chunk))
	{
		transport_counter_add(TC_INBOX_DROPS, 1);
		multiraft_wake_worker();
		return WIRE_OK;
	}
	transport_counter_add(TC_FRAMES_RECEIVED, 1);
	transport_counter_add(TC_BYTES_RECEIVED, len);
	peer_stats_count_received((int32) from_node, len);
	multiraft_wake_worker();
	return WIRE_OK;
}
