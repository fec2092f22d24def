/*
 * shmem.c — reservation and initialisation of multiraft's shared memory.
 *
 * PostgreSQL 15 only accepts shared-memory and LWLock requests from
 * shmem_request_hook, and the area is created in shmem_startup_hook under
 * AddinShmemInitLock (the same code runs again in every EXEC_BACKEND child).
 */
#include "postgres.h"

#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/shmem.h"

#include "inbox.h"
#include "requests.h"
#include "shmem.h"
#include "status.h"

MultiraftShared *multiraft_shared = NULL;

static LWLockPadded *multiraft_locks = NULL;

static Size
core_size(void)
{
	return sizeof(MultiraftShared);
}

static void
core_init(void *area)
{
	MultiraftShared *shared = area;

	shared->lock = multiraft_lock(MR_LOCK_CORE);
	ConditionVariableInit(&shared->done_cv);
}

/* One line per module with shared state; see MultiraftShmemPart. */
static const MultiraftShmemPart parts[] = {
	{"multiraft", core_size, core_init, (void **) &multiraft_shared},
	{"multiraft requests", requests_shmem_size, requests_shmem_init, &multiraft_requests_area},
	{"multiraft status", status_shmem_size, status_shmem_init, &multiraft_status_area},
	{"multiraft transport", transport_shmem_size, transport_shmem_init, &multiraft_transport_area},
};

LWLock *
multiraft_lock(int index)
{
	Assert(index >= 0 && index < MR_LOCK_COUNT_);
	return &multiraft_locks[index].lock;
}

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

static void
multiraft_shmem_request(void)
{
	Size		total = 0;

	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	for (size_t i = 0; i < lengthof(parts); i++)
		total = add_size(total, MAXALIGN(parts[i].size()));
	RequestAddinShmemSpace(total);
	RequestNamedLWLockTranche("multiraft", MR_LOCK_COUNT_);
}

static void
multiraft_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	multiraft_locks = GetNamedLWLockTranche("multiraft");
	for (size_t i = 0; i < lengthof(parts); i++)
	{
		Size		size = parts[i].size();
		void	   *area = ShmemInitStruct(parts[i].name, size, &found);

		if (!found)
		{
			memset(area, 0, size);
			parts[i].init(area);
		}
		*parts[i].pointer = area;
	}
	LWLockRelease(AddinShmemInitLock);
}

void
multiraft_shmem_install_hooks(void)
{
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = multiraft_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = multiraft_shmem_startup;
}

void
multiraft_wake_worker(void)
{
	Latch	   *latch;

	LWLockAcquire(multiraft_shared->lock, LW_SHARED);
	latch = multiraft_shared->worker_latch;
	if (latch)
		SetLatch(latch);
	LWLockRelease(multiraft_shared->lock);
}

static void
processing_stopped(const char *detail)
{
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("raft processing stopped"),
			 errdetail("%s", detail),
			 errhint("Check the server log; the worker restarts automatically after a failure.")));
}

uint64
multiraft_require_worker(void)
{
	bool		serving;
	uint64		epoch;

	LWLockAcquire(multiraft_shared->lock, LW_SHARED);
	serving = multiraft_shared->worker_pid != 0 && multiraft_shared->worker_serving;
	epoch = multiraft_shared->serve_epoch;
	LWLockRelease(multiraft_shared->lock);
	if (!serving)
		processing_stopped("The multiraft background worker is not running on this server.");
	return epoch;
}

void
multiraft_require_same_worker(uint64 epoch)
{
	if (multiraft_require_worker() != epoch)
		processing_stopped("The multiraft worker rebuilt its node while this call read its groups; nothing was changed.");
}
