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
 *
 * This file holds the slots in shared memory and what both sides do to them;
 * requests_backend.c is the backend's side, requests_worker.c the worker's, and
 * requests_slots.h their shared layout.
 */
#include "postgres.h"

#include "miscadmin.h"
#include "storage/dsm.h"
#include "storage/lwlock.h"

#include "requests_slots.h"

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

/* Free a slot (lock held); returns its payload segment for unpinning after release. */
dsm_handle
requests_free_slot_locked(RequestSlot *s)
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

void
requests_unpin_payload(dsm_handle h)
{
	if (h != DSM_HANDLE_INVALID)
		dsm_unpin_segment(h);
}

uint64
requests_worker_gen(pid_t *pid, bool *serving)
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
