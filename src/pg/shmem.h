/*
 * shmem.h — the shared-memory area through which backends and the multiraft
 * worker meet: who the worker is, whether it is serving, and the condition
 * variable backends sleep on while the worker completes their requests.
 */
#ifndef MULTIRAFT_SHMEM_H
#define MULTIRAFT_SHMEM_H

#include "storage/condition_variable.h"
#include "storage/latch.h"
#include "storage/lwlock.h"

typedef struct MultiraftShared
{
	LWLock	   *lock;			/* protects the fields below */
	pid_t		worker_pid;		/* 0 while no worker runs */
	Latch	   *worker_latch;	/* set it to wake the worker */
	bool		worker_serving; /* extension found, node_id set: requests served */
	uint64		serve_epoch;	/* incremented each time serving starts: the
								 * published status read between two equal
								 * epochs, serving at both, was one node's */
	uint64		worker_starts;	/* incremented at each worker start */
	uint32		connect_failures;	/* worker starts in a row that did not
									 * get connected to multiraft.database */
	ConditionVariable done_cv;	/* broadcast when requests complete */
} MultiraftShared;

extern MultiraftShared *multiraft_shared;

/*
 * Every module that keeps state in shared memory registers one part in the
 * table of shmem.c: its size (asked in shmem_request_hook, so GUCs such as
 * multiraft.max_groups are known) and an initialiser run once when the area is
 * created.  LWLocks come from the "multiraft" tranche by a fixed index.
 */
typedef struct MultiraftShmemPart
{
	const char *name;
	Size		(*size) (void);
	void		(*init) (void *area);	/* area is zeroed before init */
	void	  **pointer;		/* where the attached address is stored */
} MultiraftShmemPart;

enum MultiraftLockIndex
{
	MR_LOCK_CORE = 0,			/* MultiraftShared */
	MR_LOCK_REQUESTS,			/* backend request slots */
	MR_LOCK_STATUS,				/* published group status */
	MR_LOCK_INBOX,				/* peer message inbox */
	MR_LOCK_PEERS,				/* per-peer link counters */
	MR_LOCK_COUNT_ = 8			/* room for more */
};

/* The LWLock with that index (valid after shared memory is attached). */
extern LWLock *multiraft_lock(int index);

extern void multiraft_shmem_install_hooks(void);

/* Wake the worker, if one runs. */
extern void multiraft_wake_worker(void);

/*
 * ERROR "raft processing stopped" unless the worker is serving requests; returns
 * the serve epoch.  multiraft_require_same_worker(epoch) errors the same way
 * unless the worker still serves the node it served then: a call that decides
 * from the published status (which a rebuild of the node clears and publishes
 * again) checks it after acting, so that an action taken on a status read in
 * the middle of a rebuild is rolled back.
 */
extern uint64 multiraft_require_worker(void);
extern void multiraft_require_same_worker(uint64 epoch);

#endif
