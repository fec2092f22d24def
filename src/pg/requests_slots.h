/*
 * requests_slots.h — the request slots in shared memory, for the three files that
 * handle them: requests.c (the slots and their life cycle), requests_backend.c (a
 * backend hands a request over and waits) and requests_worker.c (the worker takes
 * and completes them).  Not for anyone else: requests.h is the contract.
 */
#ifndef MULTIRAFT_REQUESTS_SLOTS_H
#define MULTIRAFT_REQUESTS_SLOTS_H

#include "storage/condition_variable.h"
#include "storage/dsm.h"
#include "storage/lwlock.h"
#include "port/atomics.h"

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

/* A request's token: the slot's generation and number, so that a completion for
 * a slot freed and claimed again meanwhile is recognised as stale. */
static inline uint64
make_token(int slot_no, uint32 generation)
{
	return ((uint64) generation << 32) | (uint64) (slot_no + 1);
}

/* Frees a slot (lock held); returns its payload segment, to unpin after release. */
extern dsm_handle requests_free_slot_locked(RequestSlot *s);
extern void requests_unpin_payload(dsm_handle h);
/* worker_starts of the current worker; its pid and whether it serves, if asked. */
extern uint64 requests_worker_gen(pid_t *pid, bool *serving);

/* requests_deadlock.c: whether the worker waits, through locks, for this backend */
extern bool requests_worker_waits_for_me(pid_t worker);

#endif							/* MULTIRAFT_REQUESTS_SLOTS_H */
