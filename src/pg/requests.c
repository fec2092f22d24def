/*
 * requests.c — request slots between backends and the multiraft worker (see the
 * contract in requests.h).
 *
 * Slot life cycle (state changes under MR_LOCK_REQUESTS):
 *
 *   FREE --backend claims--> FILLING --backend--> PENDING --worker drains--> TAKEN
 *   TAKEN --worker completes--> DONE --backend reads result--> FREE
 *
 * and on the abnormal paths:
 *   FILLING / PENDING / DONE, backend gives up (error, cancel, exit) --> FREE
 *       (the worker never looks at these again, so the backend frees them);
 *   TAKEN, backend gives up --> abandoned flag; the worker frees the slot at its
 *       next drain or when it completes it;
 *   TAKEN by a worker incarnation that has exited --> freed by whichever of the
 *       backend or the next worker sees it first.
 * Every free bumps the slot's generation, which is half of the token handed to
 * the multi-raft layer: a completion for a recycled slot is recognised as stale.
 *
 * A backend sleeps on its own slot's condition variable, so a completion wakes
 * exactly one process.  Nothing is ereport'ed and nothing is palloc'ed while the
 * lock is held, so the error-cleanup paths may always take it.
 */
#include "postgres.h"

#include "common/pg_prng.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/dsm.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "guc.h"
#include "requests.h"
#include "shmem.h"

typedef enum SlotState
{
	SLOT_FREE = 0,
	SLOT_FILLING,				/* claimed by a backend, being filled */
	SLOT_PENDING,				/* waiting for the worker to take it */
	SLOT_TAKEN,					/* handed to the worker */
	SLOT_DONE					/* result stored, backend not yet woken/read */
} SlotState;

typedef struct RequestSlot
{
	SlotState	state;
	bool		abandoned;		/* TAKEN, but nobody waits any more */
	uint32		generation;		/* bumped at each free */
	pid_t		backend_pid;	/* for debugging */
	uint64		worker_gen;		/* worker_starts of the worker that took it */
	ConditionVariable cv;		/* the waiting backend sleeps here */
	MultiraftRequest req;		/* payload pointer unused here */
	dsm_handle	payload_dsm;	/* pinned segment, or DSM_HANDLE_INVALID */
	char		inline_payload[MR_INLINE_PAYLOAD];
	MultiraftResult result;
	uint64		index;
	char		detail[MR_MAX_DETAIL];
} RequestSlot;

typedef struct RequestsShared
{
	int			nslots;
	int			next_hint;		/* where the next claim starts scanning */
	pg_atomic_uint64 command_seq;	/* for generated command ids */
	/* Raised after a slot became PENDING or abandoned: requests_drain() scans
	 * the slots only when it is set, not on every turn of the worker loop. */
	pg_atomic_uint32 to_drain;
	RequestSlot slots[FLEXIBLE_ARRAY_MEMBER];
} RequestsShared;

void	   *multiraft_requests_area = NULL;

/* One waiting backend at a time each, plus room for abandoned slots. */
static int
slot_count(void)
{
	return 2 * MaxBackends + 16;
}

Size
requests_shmem_size(void)
{
	return add_size(offsetof(RequestsShared, slots),
					mul_size(slot_count(), sizeof(RequestSlot)));
}

void
requests_shmem_init(void *area)
{
	RequestsShared *rs = area;

	rs->nslots = slot_count();
	pg_atomic_init_u64(&rs->command_seq, 0);
	pg_atomic_init_u32(&rs->to_drain, 1);
	for (int i = 0; i < rs->nslots; i++)
	{
		rs->slots[i].generation = 1;
		rs->slots[i].payload_dsm = DSM_HANDLE_INVALID;
		ConditionVariableInit(&rs->slots[i].cv);
	}
}

static inline RequestsShared *
rshared(void)
{
	return (RequestsShared *) multiraft_requests_area;
}

static inline LWLock *
rlock(void)
{
	return multiraft_lock(MR_LOCK_REQUESTS);
}

static inline uint64
make_token(int slot_no, uint32 generation)
{
	return ((uint64) generation << 32) | (uint64) (slot_no + 1);
}

/* Free a slot (lock held); returns its payload segment for unpinning after release. */
static dsm_handle
free_slot_locked(RequestSlot *s)
{
	dsm_handle	h = s->payload_dsm;

	s->state = SLOT_FREE;
	s->abandoned = false;
	s->payload_dsm = DSM_HANDLE_INVALID;
	s->backend_pid = 0;
	s->generation++;
	if (s->generation == 0)
		s->generation = 1;
	return h;
}

static void
unpin_payload(dsm_handle h)
{
	if (h != DSM_HANDLE_INVALID)
		dsm_unpin_segment(h);
}

static uint64
current_worker_gen(pid_t *pid, bool *serving)
{
	uint64		gen;

	LWLockAcquire(multiraft_shared->lock, LW_SHARED);
	gen = multiraft_shared->worker_starts;
	if (pid)
		*pid = multiraft_shared->worker_pid;
	if (serving)
		*serving = multiraft_shared->worker_serving;
	LWLockRelease(multiraft_shared->lock);
	return gen;
}

int
requests_capacity(void)
{
	return rshared()->nslots;
}

int
requests_in_use(void)
{
	RequestsShared *rs = rshared();
	int			n = 0;

	LWLockAcquire(rlock(), LW_SHARED);
	for (int i = 0; i < rs->nslots; i++)
		n += rs->slots[i].state != SLOT_FREE;
	LWLockRelease(rlock());
	return n;
}

/* ================================================================ backend side */

/* The slot this backend is using, for the error-cleanup callback. */
static int	my_slot = -1;

static pg_noinline int
claim_slot(void)
{
	RequestsShared *rs = rshared();
	int			found = -1;

	LWLockAcquire(rlock(), LW_EXCLUSIVE);
	for (int k = 0; k < rs->nslots; k++)
	{
		int			i = (rs->next_hint + k) % rs->nslots;

		if (rs->slots[i].state == SLOT_FREE)
		{
			RequestSlot *s = &rs->slots[i];

			s->state = SLOT_FILLING;
			s->abandoned = false;
			s->backend_pid = MyProcPid;
			s->payload_dsm = DSM_HANDLE_INVALID;
			s->result = MR_RESULT_OK;
			s->index = 0;
			s->detail[0] = '\0';
			rs->next_hint = (i + 1) % rs->nslots;
			found = i;
			break;
		}
	}
	LWLockRelease(rlock());
	if (found < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_RESOURCES),
				 errmsg("too many multiraft requests in progress"),
				 errdetail("All %d request slots are in use.", rs->nslots)));
	return found;
}

/*
 * Give the slot up: read its outcome if it has one, then free it, or leave it
 * to the worker if the worker holds it.  Returns true if an outcome was read.
 */
static bool
release_slot(int slot_no, MultiraftResult *result, uint64 *index, char *detail)
{
	RequestSlot *s = &rshared()->slots[slot_no];
	uint64		live_gen = current_worker_gen(NULL, NULL);
	dsm_handle	h = DSM_HANDLE_INVALID;
	bool		done = false;

	LWLockAcquire(rlock(), LW_EXCLUSIVE);
	switch (s->state)
	{
		case SLOT_DONE:
			done = true;
			if (result)
				*result = s->result;
			if (index)
				*index = s->index;
			if (detail)
				strlcpy(detail, s->detail, MR_MAX_DETAIL);
			h = free_slot_locked(s);
			break;
		case SLOT_FILLING:
		case SLOT_PENDING:
			h = free_slot_locked(s);
			break;
		case SLOT_TAKEN:
			if (s->worker_gen != live_gen)
				h = free_slot_locked(s);	/* its worker is gone */
			else
			{
				s->abandoned = true;	/* the worker frees it */
				pg_atomic_write_u32(&rshared()->to_drain, 1);
			}
			break;
		case SLOT_FREE:
			break;
	}
	LWLockRelease(rlock());
	unpin_payload(h);
	return done;
}

/* Error / exit cleanup while a request is in flight: leak nothing. */
static void
abandon_request(int code, Datum arg)
{
	int			slot_no = DatumGetInt32(arg);

	ConditionVariableCancelSleep();
	if (my_slot == slot_no && !LWLockHeldByMe(rlock()))
		(void) release_slot(slot_no, NULL, NULL, NULL);
	my_slot = -1;
}

/* Copy the request and its payload into our FILLING slot. */
static void
fill_slot(int slot_no, const MultiraftRequest *req, const char *payload, Size len)
{
	RequestSlot *s = &rshared()->slots[slot_no];

	s->req = *req;
	s->req.payload = NULL;
	s->req.payload_len = len;
	if (len <= MR_INLINE_PAYLOAD)
	{
		if (len > 0)
			memcpy(s->inline_payload, payload, len);
	}
	else
	{
		/*
		 * A pinned segment outlives this backend's mapping: if we are canceled
		 * after handing it over, whoever frees the slot unpins it.
		 */
		dsm_segment *seg = dsm_create(len, 0);

		memcpy(dsm_segment_address(seg), payload, len);
		dsm_pin_segment(seg);
		s->payload_dsm = dsm_segment_handle(seg);
		dsm_detach(seg);
	}
}

typedef enum WaitOutcome
{
	WAIT_DONE,
	WAIT_TIMED_OUT,
	WAIT_STOPPED
} WaitOutcome;

static WaitOutcome
wait_for_slot(int slot_no, TimestampTz deadline)
{
	RequestSlot *s = &rshared()->slots[slot_no];
	WaitOutcome outcome;

	ConditionVariablePrepareToSleep(&s->cv);
	for (;;)
	{
		SlotState	state;
		uint64		taken_by;
		pid_t		pid;
		uint64		gen;
		TimestampTz now;
		long		remain;

		LWLockAcquire(rlock(), LW_SHARED);
		state = s->state;
		taken_by = s->worker_gen;
		LWLockRelease(rlock());
		if (state == SLOT_DONE)
		{
			outcome = WAIT_DONE;
			break;
		}
		gen = current_worker_gen(&pid, NULL);
		if (pid == 0 || (state == SLOT_TAKEN && taken_by != gen))
		{
			outcome = WAIT_STOPPED;
			break;
		}
		now = GetCurrentTimestamp();
		if (now >= deadline)
		{
			outcome = WAIT_TIMED_OUT;
			break;
		}
		remain = TimestampDifferenceMilliseconds(now, deadline);
		/*
		 * Completions signal our slot; a worker exiting broadcasts only its
		 * own condition variable, so look again at least once a second.
		 */
		(void) ConditionVariableTimedSleep(&s->cv, Min(remain, 1000L) + 1,
										   PG_WAIT_EXTENSION);
	}
	ConditionVariableCancelSleep();
	return outcome;
}

static const char *
request_name(MultiraftRequestType type)
{
	switch (type)
	{
		case MR_REQ_CREATE_GROUP:
			return "create_group";
		case MR_REQ_REMOVE_GROUP:
			return "remove_group";
		case MR_REQ_SUBMIT:
			return "submit";
		case MR_REQ_CHANGE_MEMBERSHIP:
			return "change_membership";
		case MR_REQ_TRANSFER_LEADERSHIP:
			return "transfer_leadership";
		case MR_REQ_READ_INDEX:
			return "read_index";
	}
	return "request";
}

static void
report_stopped(const MultiraftRequest *req, const char *detail)
{
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("raft processing stopped"),
			 detail && detail[0] ? errdetail_internal("%s", detail)
			 : errdetail("The multiraft worker exited while multiraft.%s on group " INT64_FORMAT " was waiting.",
						 request_name(req->type), req->group_id),
			 errhint("The command may still commit; the worker restarts automatically.")));
}

static void
report_timed_out(const MultiraftRequest *req, const char *detail)
{
	ereport(ERROR,
			(errcode(ERRCODE_QUERY_CANCELED),
			 errmsg("multiraft.%s on group " INT64_FORMAT " timed out after %d ms",
					request_name(req->type), req->group_id, req->timeout_ms),
			 detail && detail[0] ? errdetail_internal("%s", detail) : 0,
			 errhint("The command may still commit.")));
}

/* Turn a non-OK outcome into the SPEC error. */
static void
report_result(const MultiraftRequest *req, MultiraftResult result, const char *detail)
{
	bool		has_detail = detail && detail[0];
	int32		node = req->node_id > 0 ? req->node_id : multiraft_node_id;

	switch (result)
	{
		case MR_RESULT_OK:
			return;
		case MR_RESULT_GROUP_NOT_FOUND:
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_OBJECT),
					 errmsg("group " INT64_FORMAT " does not exist", req->group_id),
					 has_detail ? errdetail_internal("%s", detail) : 0));
			break;
		case MR_RESULT_GROUP_EXISTS:
			ereport(ERROR,
					(errcode(ERRCODE_DUPLICATE_OBJECT),
					 errmsg("group " INT64_FORMAT " already exists", req->group_id),
					 has_detail ? errdetail_internal("%s", detail) : 0));
			break;
		case MR_RESULT_GROUP_DELETED:
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("raft group deleted"),
					 errdetail("Group " INT64_FORMAT " was removed while multiraft.%s was waiting.",
							   req->group_id, request_name(req->type))));
			break;
		case MR_RESULT_STOPPED:
			report_stopped(req, detail);
			break;
		case MR_RESULT_TIMED_OUT:
			report_timed_out(req, detail);
			break;
		case MR_RESULT_EXPIRED:
			/* A definite outcome: safe to submit again (a serialization failure). */
			ereport(ERROR,
					(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
					 errmsg("multiraft.%s on group " INT64_FORMAT " timed out: its command expired before it committed",
							request_name(req->type), req->group_id),
					 errdetail("More than multiraft.generated_id_window entries committed in the group before it; it was not applied and never will be."),
					 errhint("Submit it again.")));
			break;
		case MR_RESULT_NOT_MEMBER:
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("node %d is not a member of group " INT64_FORMAT,
							node, req->group_id),
					 has_detail ? errdetail_internal("%s", detail) : 0));
			break;
		case MR_RESULT_INVALID:
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid multiraft.%s on group " INT64_FORMAT ": %s",
							request_name(req->type), req->group_id,
							has_detail ? detail : "rejected")));
			break;
		case MR_RESULT_UNAVAILABLE:
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("group " INT64_FORMAT " is unavailable: %s", req->group_id,
							has_detail ? detail : "no leader"),
					 errhint("Retry once the group has a leader.")));
			break;
	}
	elog(ERROR, "multiraft: unknown request result %d", (int) result);
}

uint64
requests_call(MultiraftRequest *req, const char *payload, Size payload_len)
{
	pid_t		pid;
	bool		serving;
	int			slot_no;
	volatile WaitOutcome outcome;
	MultiraftResult result = MR_RESULT_STOPPED;
	uint64		index = 0;
	char		detail[MR_MAX_DETAIL];

	/* Callers check the size with a friendlier message; this is the backstop. */
	if (payload_len > (Size) multiraft_max_command_size)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("command of %zu bytes exceeds multiraft.max_command_size (%d bytes)",
						payload_len, multiraft_max_command_size)));
	Assert(req->timeout_ms > 0);
	Assert(my_slot < 0);

	(void) current_worker_gen(&pid, &serving);
	if (pid == 0 || !serving)
		multiraft_require_worker();	/* raises "raft processing stopped" */

	req->deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), req->timeout_ms);
	slot_no = claim_slot();
	my_slot = slot_no;
	req->token = make_token(slot_no, rshared()->slots[slot_no].generation);
	detail[0] = '\0';

	PG_ENSURE_ERROR_CLEANUP(abandon_request, Int32GetDatum(slot_no));
	{
		RequestSlot *s = &rshared()->slots[slot_no];

		fill_slot(slot_no, req, payload, payload_len);
		LWLockAcquire(rlock(), LW_EXCLUSIVE);
		s->state = SLOT_PENDING;
		LWLockRelease(rlock());
		pg_atomic_write_u32(&rshared()->to_drain, 1);
		multiraft_wake_worker();
		outcome = wait_for_slot(slot_no, req->deadline);
	}
	PG_END_ENSURE_ERROR_CLEANUP(abandon_request, Int32GetDatum(slot_no));

	/* The slot may have completed between the last look and now: prefer that. */
	if (release_slot(slot_no, &result, &index, detail))
		outcome = WAIT_DONE;
	my_slot = -1;

	if (outcome == WAIT_TIMED_OUT)
		report_timed_out(req, NULL);
	if (outcome == WAIT_STOPPED)
		report_stopped(req, NULL);
	report_result(req, result, detail);
	return index;
}

void
requests_generate_command_id(MultiraftRequest *req)
{
	uint64		seq = pg_atomic_fetch_add_u64(&rshared()->command_seq, 1);
	uint64		rnd = pg_prng_uint64(&pg_global_prng_state);

	/* The counter restarts with the server; the random part keeps ids apart. */
	req->command_id_len = snprintf(req->command_id, sizeof(req->command_id),
								   "%d-" UINT64_FORMAT "-%016" INT64_MODIFIER "x",
								   multiraft_node_id, seq, rnd);
	req->command_id_generated = true;
}

/* ================================================================ worker side */

static bool worker_attached = false;
static uint64 worker_gen = 0;
static int *drained = NULL;		/* scratch: slot numbers taken in one drain */
static dsm_handle *unpin = NULL;	/* scratch: segments of slots freed in one drain */

/* Fail every request this worker holds: it is exiting. */
static void
requests_worker_exit(int code, Datum arg)
{
	RequestsShared *rs = rshared();
	int			nunpin = 0;

	if (LWLockHeldByMe(rlock()))
		return;					/* cannot happen by design; never self-deadlock */
	LWLockAcquire(rlock(), LW_EXCLUSIVE);
	for (int i = 0; i < rs->nslots; i++)
	{
		RequestSlot *s = &rs->slots[i];

		if (s->state != SLOT_TAKEN || s->worker_gen != worker_gen)
			continue;
		if (s->abandoned)
		{
			unpin[nunpin++] = free_slot_locked(s);
			continue;
		}
		/* Waiting backends read this outcome and free their slot. */
		s->state = SLOT_DONE;
		s->result = MR_RESULT_STOPPED;
		s->index = 0;
		strlcpy(s->detail, "The multiraft worker exited before the request completed.",
				MR_MAX_DETAIL);
	}
	LWLockRelease(rlock());
	for (int i = 0; i < nunpin; i++)
		unpin_payload(unpin[i]);
	for (int i = 0; i < rs->nslots; i++)
		if (rs->slots[i].state == SLOT_DONE)
			ConditionVariableSignal(&rs->slots[i].cv);
}

/* First drain of this worker process: reclaim what earlier incarnations held. */
static void
worker_attach(void)
{
	RequestsShared *rs = rshared();
	int			nunpin = 0;

	drained = MemoryContextAlloc(TopMemoryContext, rs->nslots * sizeof(int));
	unpin = MemoryContextAlloc(TopMemoryContext, rs->nslots * sizeof(dsm_handle));
	worker_gen = current_worker_gen(NULL, NULL);
	/* What the previous worker left PENDING is this one's to take. */
	pg_atomic_write_u32(&rs->to_drain, 1);

	LWLockAcquire(rlock(), LW_EXCLUSIVE);
	for (int i = 0; i < rs->nslots; i++)
	{
		RequestSlot *s = &rs->slots[i];

		if (s->state == SLOT_TAKEN && s->worker_gen != worker_gen)
		{
			if (s->abandoned)
				unpin[nunpin++] = free_slot_locked(s);
			else
			{
				s->state = SLOT_DONE;
				s->result = MR_RESULT_STOPPED;
				strlcpy(s->detail, "The multiraft worker restarted before the request completed.",
						MR_MAX_DETAIL);
			}
		}
	}
	LWLockRelease(rlock());
	for (int i = 0; i < nunpin; i++)
		unpin_payload(unpin[i]);
	for (int i = 0; i < rs->nslots; i++)
		if (rs->slots[i].state == SLOT_DONE)
			ConditionVariableSignal(&rs->slots[i].cv);

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
	unpin_payload(h);
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
			unpin[nunpin++] = free_slot_locked(s);
		else if (s->state == SLOT_PENDING)
		{
			s->state = SLOT_TAKEN;
			s->worker_gen = worker_gen;
			drained[ntaken++] = i;
		}
	}
	LWLockRelease(rlock());
	for (int k = 0; k < nunpin; k++)
		unpin_payload(unpin[k]);

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
			h = free_slot_locked(s);
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
	unpin_payload(h);
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
			return MR_RESULT_TIMED_OUT;
		case MR_EEXPIRED:
			return MR_RESULT_EXPIRED;
		case MR_ENOTMEMBER:
			return MR_RESULT_NOT_MEMBER;
		case MR_EINVAL:
		case MR_EBADCONF:
		case MR_ETOOBIG:
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

bool
requests_is_waiting(uint64 token)
{
	RequestsShared *rs = rshared();
	int			slot_no = (int) (token & 0xffffffff) - 1;
	bool		waiting;

	if (slot_no < 0 || slot_no >= rs->nslots)
		return false;
	LWLockAcquire(rlock(), LW_SHARED);
	waiting = rs->slots[slot_no].generation == (uint32) (token >> 32) &&
		rs->slots[slot_no].state == SLOT_TAKEN && !rs->slots[slot_no].abandoned;
	LWLockRelease(rlock());
	return waiting;
}
