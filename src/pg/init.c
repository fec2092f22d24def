/*
 * init.c — library entry point: configuration, shared memory and the worker.
 *
 * multiraft only works preloaded: its worker and shared memory must exist from
 * postmaster start, so loading it any other way is an error.
 */
#include "postgres.h"

#include "fmgr.h"
#include "miscadmin.h"
#include "postmaster/bgworker.h"

#include "guc.h"
#include "inbox.h"
#include "shmem.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

void
_PG_init(void)
{
	BackgroundWorker worker;

	if (!process_shared_preload_libraries_in_progress)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("multiraft must be loaded via shared_preload_libraries"),
				 errhint("Add multiraft to shared_preload_libraries in postgresql.conf and restart the server.")));

	transport_define_gucs();	/* before multiraft_define_gucs reserves the prefix */
	multiraft_define_gucs();
	multiraft_shmem_install_hooks();

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = 1;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "multiraft");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "multiraft_worker_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "multiraft worker");
	snprintf(worker.bgw_type, BGW_MAXLEN, "multiraft worker");
	RegisterBackgroundWorker(&worker);
}
