/*
 * requests_worker.c — the worker's side of the request slots (requests.h,
 * CONTRACT): take the pending requests, complete them, and fail what it holds
 * when it exits; a new worker reclaims what an earlier one left taken.
 */
#include "postgres.h"

#include "storage/dsm.h"
#include "storage/ipc.h"
#include "utils/memutils.h"

#include "requests_slots.h"

static bool worker_attached = false;
static uint64 worker_gen = 0;
static int *drained = NULL;		/* scratch: slot numbers taken in one drain */
static dsm_handle *unpin = NULL;	/* scratch: segments of slots freed in one drain */

/*
 * Ends the requests taken by this worker (mine) or by an earlier incarnation
 * (!mine): the abandoned ones are freed, the others fail with "raft processing
 * stopped" and why as the detail, and their backends are woken.
 */
static void
stop_taken(bool mine, const char *why)
{
	RequestsShared *rs = rshared();
	int			nunpin = 0;

	LWLockAcquire(rlock(), LW_EXCLUSIVE);
	for (int i = 0; i < rs->nslots; i++)
	{
		RequestSlot *s = &rs->slots[i];

		if (s->state != SLOT_TAKEN || (s->worker_gen == worker_gen) != mine)
			continue;
		if (s->abandoned)
		{
			unpin[nunpin++] = requests_free_slot_locked(s);
			continue;
		}
		/* Waiting backends read this outcome and free their slot. */
		s->state = SLOT_DONE;
		s->result = MR_RESULT_STOPPED;
		s->index = 0;
		strlcpy(s->detail, why, MR_MAX_DETAIL);
	}
	LWLockRelease(rlock());
	for (int i = 0; i < nunpin; i++)
		requests_unpin_payload(unpin[i]);
	for (int i = 0; i < rs->nslots; i++)
		if (rs->slots[i].state == SLOT_DONE)
			ConditionVariableSignal(&rs->slots[i].cv);
}

/* Fail every request this worker holds: it is exiting. */
static void
requests_worker_exit(int code, Datum arg)
{
	if (LWLockHeldByMe(rlock()))
		return;					/* cannot happen by design; never self-deadlock */
	stop_taken(true, "The multiraft worker exited before the request completed.");
}

/* First drain of this worker process: reclaim what earlier incarnations held. */
static void
worker_attach(void)
{
	RequestsShared *rs = rshared();

	drained = MemoryContextAlloc(TopMemoryContext, rs->nslots * sizeof(int));
	unpin = MemoryContextAlloc(TopMemoryContext, rs->nslots * sizeof(dsm_handle));
	worker_gen = requests_worker_gen(NULL, NULL);
	/* What the previous worker left PENDING is this one's to take. */
	pg_atomic_write_u32(&rs->to_drain, 1);
	stop_taken(false, "The multiraft worker restarted before the request completed.");

	before_shmem_exit(requests_worker_exit, (Datum) 0);
	worker_attached = true;
}

/* The worker's private copy of a taken request, payload included. */
static void
copy_request(int slot_no, MultiraftRequest *out)
{
	RequestSlot *s = &rshared()->slots[slot_no];
	dsm_handle	h;

	/* A TAKEN slot changes only by our own hand (or its abandoned flag). */
	*out = s->req;
	out->token = make_token(slot_no, s->generation);
	out->payload = NULL;
	if (out->payload_len == 0)
		return;
	out->payload = palloc_extended(out->payload_len, MCXT_ALLOC_HUGE);
	if (out->payload_len <= MR_INLINE_PAYLOAD)
	{
		memcpy(out->payload, s->inline_payload, out->payload_len);
		return;
	}

	{
		dsm_segment *seg = dsm_attach(s->payload_dsm);

		if (seg == NULL)
			elog(ERROR, "multiraft: payload of request %d is gone", slot_no);
		memcpy(out->payload, dsm_segment_address(seg), out->payload_len);
		dsm_detach(seg);
	}
	/* Copied: release the segment now rather than when the slot is freed. */
	LWLockAcquire(rlock(), LW_EXCLUSIVE);
	h = s->payload_dsm;
	s->payload_dsm = DSM_HANDLE_INVALID;
	LWLockRelease(rlock());
	requests_unpin_payload(h);
}

int
requests_drain(MultiraftRequestHandler handle, void *arg)
{
	RequestsShared *rs = rshared();
	int			ntaken = 0;
	int			nunpin = 0;

	if (!worker_attached)
		worker_attach();

	/* Reset before the scan: a slot that turns PENDING meanwhile raises it again. */
	if (pg_atomic_exchange_u32(&rs->to_drain, 0) == 0)
		return 0;
	LWLockAcquire(rlock(), LW_EXCLUSIVE);
	for (int i = 0; i < rs->nslots; i++)
	{
		RequestSlot *s = &rs->slots[i];

		if (s->state == SLOT_TAKEN && s->abandoned)
			unpin[nunpin++] = requests_free_slot_locked(s);
		else if (s->state == SLOT_PENDING)
		{
			s->state = SLOT_TAKEN;
			s->worker_gen = worker_gen;
			drained[ntaken++] = i;
		}
	}
	LWLockRelease(rlock());
	for (int k = 0; k < nunpin; k++)
		requests_unpin_payload(unpin[k]);

	for (int k = 0; k < ntaken; k++)
	{
		MultiraftRequest req;

		copy_request(drained[k], &req);
		handle(&req, arg);
	}
	return ntaken;
}

bool
requests_complete(uint64 token, MultiraftResult result, uint64 index, const char *detail)
{
	RequestsShared *rs = rshared();
	int			slot_no = (int) (token & 0xffffffff) - 1;
	uint32		generation = (uint32) (token >> 32);
	RequestSlot *s;
	dsm_handle	h = DSM_HANDLE_INVALID;
	bool		delivered = false;

	if (slot_no < 0 || slot_no >= rs->nslots)
		return false;
	s = &rs->slots[slot_no];

	LWLockAcquire(rlock(), LW_EXCLUSIVE);
	if (s->generation == generation && s->state == SLOT_TAKEN)
	{
		if (s->abandoned)
			h = requests_free_slot_locked(s);
		else
		{
			s->state = SLOT_DONE;
			s->result = result;
			s->index = index;
			if (detail)
				strlcpy(s->detail, detail, MR_MAX_DETAIL);
			else
				s->detail[0] = '\0';
			delivered = true;
		}
	}
	LWLockRelease(rlock());
	requests_unpin_payload(h);
	if (delivered)
		ConditionVariableSignal(&s->cv);
	return delivered;
}

MultiraftResult
requests_result_from_mr(int mr_result)
{
	switch (mr_result)
	{
		case MR_OK:
			return MR_RESULT_OK;
		case MR_ENOGROUP:
			return MR_RESULT_GROUP_NOT_FOUND;
		case MR_EEXIST:
			return MR_RESULT_GROUP_EXISTS;
		case MR_EGROUP_DELETED:
			return MR_RESULT_GROUP_DELETED;
		case MR_ESTOPPED:
			return MR_RESULT_STOPPED;
		case MR_ETIMEOUT:
		case MR_EUNKNOWN:
			return MR_RESULT_TIMED_OUT;
		case MR_EEXPIRED:
			return MR_RESULT_EXPIRED;
		case MR_ENOTMEMBER:
			return MR_RESULT_NOT_MEMBER;
		case MR_EREMOVED:
			return MR_RESULT_REMOVED;
		case MR_EINVAL:
		case MR_EBADCONF:
		case MR_ETOOBIG:
		case MR_EFULL:
			return MR_RESULT_INVALID;
		default:				/* ENOMEM, ENOTLEADER, EBUSY, ESTORAGE, ECORRUPT */
			return MR_RESULT_UNAVAILABLE;
	}
}

/* What the user reads for layer codes whose category alone says too little. */
static const char *
mr_result_detail(int mr_result)
{
	switch (mr_result)
	{
		case MR_EINVAL:
			return "the request was rejected as invalid";
		case MR_EBADCONF:
			return "the membership change does not apply to the current configuration";
		case MR_ETOOBIG:
			return "command id or payload too large";
		case MR_ENOTLEADER:
			return "no leader is known";
		case MR_EBUSY:
			return "the worker is busy";
		case MR_ENOMEM:
			return "out of memory in the worker";
		case MR_ESTORAGE:
			return "a storage error in the worker";
		case MR_ECORRUPT:
			return "stored raft state could not be decoded";
		case MR_EUNKNOWN:
			return "This node caught up by a snapshot that covered the part of the log where the command would have applied: whether it committed is unknown here.";
		default:
			return NULL;
	}
}

bool
requests_complete_mr(uint64 token, int mr_result, uint64 index)
{
	return requests_complete(token, requests_result_from_mr(mr_result), index,
							 mr_result_detail(mr_result));
}
