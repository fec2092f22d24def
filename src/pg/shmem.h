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
	uint64		worker_starts;	/* incremented at each worker start */
	ConditionVariable done_cv;	/* broadcast when requests complete */
} MultiraftShared;

extern MultiraftShared *multiraft_shared;

extern void multiraft_shmem_install_hooks(void);

/* Wake the worker, if one runs. */
extern void multiraft_wake_worker(void);

/* ERROR "raft processing stopped" unless the worker is serving requests. */
extern void multiraft_require_worker(void);

#endif
