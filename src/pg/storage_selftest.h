/*
 * storage_selftest.h — the storage conformance suite's factory over the tables
 * (storage_selftest.c), run by multiraft.storage_selftest() (api_selftest.c).
 */
#ifndef MULTIRAFT_STORAGE_SELFTEST_H
#define MULTIRAFT_STORAGE_SELFTEST_H

#include "nodes/pg_list.h"
#include "utils/elog.h"
#include "utils/memutils.h"

#include "storage_conformance.h"

/* One run: scratch groups are numbered -1, -2, ... */
typedef struct StorageSelftest
{
	MemoryContext cxt;			/* lives through the run */
	MemoryContext op_cxt;		/* reset around each guarded operation */
	int64		next_group;		/* next scratch group id (negative) */
	List	   *failures;		/* "check: message" */
	int			remove_failures;	/* groups that left rows behind */
	char	   *last_error;		/* the storage error behind the latest failure */
	ErrorData  *abort;			/* a cancel: stop, rethrow after the run */
} StorageSelftest;

/* Sets up t (its memory under parent) and the factory f over it. */
extern void storage_selftest_init(StorageSelftest *t, struct storage_factory *f,
								  MemoryContext parent);
/* storage_report_fn for storage_conformance_run(arg = t): adds a failure line. */
extern void storage_selftest_report(void *arg, const char *check, const char *message);
/* Checks beyond the core's suite; each returns its number of failed checks. */
extern int	storage_selftest_recreate(StorageSelftest *t);

#endif
