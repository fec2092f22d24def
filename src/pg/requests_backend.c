/*
 * requests_backend.c — the backend's side of the request slots (requests.h,
 * CONTRACT): claim a slot, fill it, wake the worker, wait for the outcome and
 * turn it into the SPEC's result or error; give the slot up on every exit path.
 */
#include "postgres.h"

#include "access/xact.h"
#include "common/pg_prng.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/dsm.h"
#include "storage/ipc.h"
#include "tcop/utility.h"
#include "utils/timestamp.h"

#include "guc.h"
#include "requests_slots.h"
#include "status.h"

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
	uint64		live_gen = requests_worker_gen(NULL, NULL);
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
			h = requests_free_slot_locked(s);
			break;
		case SLOT_FILLING:
		case SLOT_PENDING:
			h = requests_free_slot_locked(s);
			break;
		case SLOT_TAKEN:

			/*
			 * Taken by an earlier worker, which is gone: ours to free.  Not
			 * "another worker than live_gen": live_gen was read before the
			 * lock, and a worker started since may have taken the slot and be
			 * reading it (copy_request) — freeing it then would hand its
			 * token to the slot's next user, and that request's result to
			 * another backend.
			 */
			if (s->worker_gen < live_gen)
				h = requests_free_slot_locked(s);
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
	requests_unpin_payload(h);
	return done;
}

/*
 * Frees our slot if the worker has not taken its request yet, which then never
 * happens (the error cleanup below has nothing left to do).  True if it did.
 */
static bool
withdraw_if_pending(int slot_no)
{
	RequestSlot *s = &rshared()->slots[slot_no];
	dsm_handle	h = DSM_HANDLE_INVALID;
	bool		withdrawn = false;

	LWLockAcquire(rlock(), LW_EXCLUSIVE);
	if (s->state == SLOT_PENDING)
	{
		h = requests_free_slot_locked(s);
		withdrawn = true;
		my_slot = -1;
	}
	LWLockRelease(rlock());
	requests_unpin_payload(h);
	return withdrawn;
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
	bool		slept = false;

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
		gen = requests_worker_gen(&pid, NULL);
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
		/*
		 * Only a request not done yet can be in a deadlock: one that completed
		 * meanwhile is returned, whatever the worker waits for next.  Looked
		 * at after a sleep only (none of the common, quick requests pays for it).
		 */
		if (slept && requests_worker_waits_for_me(pid))
		{
			LWLockAcquire(rlock(), LW_SHARED);
			state = s->state;
			LWLockRelease(rlock());
			if (state == SLOT_DONE)
			{
				outcome = WAIT_DONE;
				break;
			}
			ConditionVariableCancelSleep();
			/*
			 * Class 40 tells a client that a retry is safe, which holds only for
			 * a request the worker never took: one it took may commit (found by
			 * a review: a retry loop applied a command twice), and fails as a
			 * timeout does.
			 */
			ereport(ERROR,
					(errcode(withdraw_if_pending(slot_no) ? ERRCODE_T_R_DEADLOCK_DETECTED
							 : ERRCODE_QUERY_CANCELED),
					 errmsg("deadlock with the multiraft worker"),
					 errdetail("The worker waits for a lock this transaction holds (or one that another session waits for behind it), while this transaction waits for the worker."),
					 errhint("Call multiraft functions outside transactions that hold locks on multiraft's tables (consume_events takes one), or commit before the call.")));
		}
		remain = TimestampDifferenceMilliseconds(now, deadline);
		/*
		 * Completions signal our slot; a worker exiting broadcasts only its
		 * own condition variable, so look again at least once a second.
		 */
		(void) ConditionVariableTimedSleep(&s->cv, Min(remain, 1000L) + 1,
										   PG_WAIT_EXTENSION);
		slept = true;
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

/* The caller's timeout passed, or (with a detail) the worker knows the outcome
 * cannot be learned here any more: either way the command may have committed. */
static void
report_timed_out(const MultiraftRequest *req, const char *detail)
{
	bool		promotion;

	if (detail && detail[0])
		ereport(ERROR,
				(errcode(ERRCODE_QUERY_CANCELED),
				 errmsg("multiraft.%s on group " INT64_FORMAT " timed out: its outcome is unknown on this node",
						request_name(req->type), req->group_id),
				 errdetail_internal("%s", detail),
				 errhint("The command may have committed.")));
	/* add_voter of a learner waits until it has caught up: say so */
	promotion = req->type == MR_REQ_CHANGE_MEMBERSHIP && req->change_type == REQ_CHANGE_ADD_VOTER;
	ereport(ERROR,
			(errcode(ERRCODE_QUERY_CANCELED),
			 errmsg("multiraft.%s on group " INT64_FORMAT " timed out after %d ms",
					request_name(req->type), req->group_id, req->timeout_ms),
			 promotion ? errdetail("A learner (if node %d is one) becomes a voter only once it holds every entry the group committed before the request; until then the request waits.",
								   req->node_id) : 0,
			 promotion ? errhint("The change may still commit. A learner that is down, cut off or still catching up needs a longer timeout_ms.")
			 : errhint("The command may still commit.")));
}

/* Whether node is a learner of group_id, as the worker last published it. */
static bool
is_learner(int64 group_id, int32 node)
{
	MultiraftGroupStatus st;

	return status_lookup(group_id, &st) && status_list_has(st.learners, st.nlearners, node);
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
							   req->group_id, request_name(req->type)),
					 /* A member that learned of the removal from a notice did not apply
					  * the entries before it: one of them may be this request's. */
					 req->type == MR_REQ_SUBMIT || req->type == MR_REQ_CHANGE_MEMBERSHIP ?
					 errhint("It may have committed before the removal.") : 0));
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
					 errdetail("It reached the log more than multiraft.generated_id_window entries after the commit index this node knew when it was proposed, at the end of the call's timeout; it was not applied and never will be."),
					 errhint("Submit it again.")));
			break;
		case MR_RESULT_REMOVED:
			/* Not "is not a member": the caller would take that for a definite failure. */
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("node %d was removed from group " INT64_FORMAT " while multiraft.%s was waiting",
							multiraft_node_id, req->group_id, request_name(req->type)),
					 errdetail("Whether it committed is unknown on this node, which no longer follows the group."),
					 req->type == MR_REQ_REMOVE_GROUP || req->command_id_generated ?
					 errhint("It may still commit: ask a member of the group.")
					 : errhint("It may still commit: on a member of the group, a call with the same command_id returns its outcome.")));
			break;
		case MR_RESULT_NOT_MEMBER:
			/* The layer refuses a learner as a transfer's target like a stranger;
			 * status() lists it among the learners, and remove_node() calls it a
			 * member (found by a review). */
			if (req->type == MR_REQ_TRANSFER_LEADERSHIP && is_learner(req->group_id, node))
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("node %d is a learner of group " INT64_FORMAT ", not a voter",
								node, req->group_id),
						 errhint("Only a voter can lead: make it one with multiraft.change_membership(group_id, 'add_voter', node_id) first.")));
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

/*
 * An error while the request waits — a cancel, statement_timeout, a terminated
 * session — ends the wait, not the request: the worker has it, and a command or
 * change may still commit.  The caller's error says so.
 */
static void
waiting_context(void *arg)
{
	const MultiraftRequest *req = arg;

	if (req->type == MR_REQ_READ_INDEX)
		return;
	if (my_slot < 0)			/* withdrawn before the worker took it */
		errcontext("multiraft.%s on group " INT64_FORMAT " was withdrawn before the worker took it; it will not happen",
				   request_name(req->type), req->group_id);
	else if (req->type == MR_REQ_TRANSFER_LEADERSHIP)
		errcontext("multiraft.transfer_leadership on group " INT64_FORMAT " was waiting; the transfer may still happen",
				   req->group_id);
	else if (req->type == MR_REQ_CREATE_GROUP)
		errcontext("multiraft.create_group of group " INT64_FORMAT " was waiting; the group may still be created",
				   req->group_id);
	else if (req->type == MR_REQ_REMOVE_GROUP)
		errcontext("multiraft.remove_group of group " INT64_FORMAT " was waiting; the group may still be removed",
				   req->group_id);
	else if (req->command_id_generated)
		errcontext("multiraft.%s on group " INT64_FORMAT " was waiting; it may still commit",
				   request_name(req->type), req->group_id);
	else
		errcontext("multiraft.%s on group " INT64_FORMAT " was waiting; it may still commit, and a call with command_id '%s' returns its outcome",
				   request_name(req->type), req->group_id, req->command_id);
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

	/*
	 * Every request but a read changes the cluster's state, which a read-only
	 * transaction must not, as for nextval() (and a hot standby's sessions
	 * are read-only too).
	 */
	if (req->type != MR_REQ_READ_INDEX && XactReadOnly)
		PreventCommandIfReadOnly(psprintf("multiraft.%s()", request_name(req->type)));

	(void) requests_worker_gen(&pid, &serving);
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
		ErrorContextCallback waiting;

		fill_slot(slot_no, req, payload, payload_len);
		LWLockAcquire(rlock(), LW_EXCLUSIVE);
		s->state = SLOT_PENDING;
		LWLockRelease(rlock());
		pg_atomic_write_u32(&rshared()->to_drain, 1);
		multiraft_wake_worker();
		waiting.callback = waiting_context;
		waiting.arg = req;
		waiting.previous = error_context_stack;
		error_context_stack = &waiting;
		outcome = wait_for_slot(slot_no, req->deadline);
		error_context_stack = waiting.previous;
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
