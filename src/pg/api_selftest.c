/*
 * api_selftest.c — multiraft.storage_selftest(): the raft core's storage
 * conformance suite against the storage tables (the factory is
 * storage_selftest.c).
 *
 * Safe on a live node: superuser only; it refuses to run if any row of a
 * negative (scratch) group id exists; everything it writes is inside a
 * subtransaction that it rolls back, so it changes nothing, leaves no row, and
 * the worker never sees its rows.  A cancel stops it like any statement.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/resowner.h"

#include "storage.h"
#include "storage_selftest.h"
#include "spi_guard.h"

PG_FUNCTION_INFO_V1(multiraft_storage_selftest);

/* Refuses to run if a row of a negative group id exists: those are scratch ids. */
static void
check_scratch_ids_free(void)
{
	bool		isnull;

	if (SPI_execute("SELECT EXISTS (SELECT 1 FROM multiraft.group_meta WHERE group_id < 0)"
					" OR EXISTS (SELECT 1 FROM multiraft.log WHERE group_id < 0)"
					" OR EXISTS (SELECT 1 FROM multiraft.dedup WHERE group_id < 0)"
					" OR EXISTS (SELECT 1 FROM multiraft.tombstone WHERE group_id < 0)",
					true, 1) != SPI_OK_SELECT)
		elog(ERROR, "multiraft: could not look for rows of negative group ids");
	if (DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull)))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_IN_USE),
				 errmsg("multiraft.storage_selftest() needs the negative group ids, and rows with such ids exist")));
}

/*
 * multiraft.storage_selftest(OUT checks int, OUT failed int, OUT failures text[])
 *
 * checks: the suite's checks plus one for group removal; failed: the checks
 * that failed; failures: "check: message (storage error)" lines.
 */
Datum
multiraft_storage_selftest(PG_FUNCTION_ARGS)
{
	int			level;
	MemoryContext fn_cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	StorageSelftest t;
	struct storage_factory f;
	TupleDesc	desc;
	Datum		values[3];
	bool		nulls[3] = {false, false, false};
	Datum	   *lines;
	int			n_checks = 0;
	volatile int failed = 0;
	int			i = 0;
	ListCell   *lc;

	if (!superuser())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("must be superuser to run multiraft.storage_selftest()")));
	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");

	level = spi_guard_connect(0);
	/* This backend's statements and relation ids may predate a re-created extension. */
	storage_forget_plans();
	check_scratch_ids_free();
	storage_selftest_init(&t, &f, fn_cxt);

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(t.cxt);
	PG_TRY();
	{
		failed = storage_conformance_run(&f, storage_selftest_report, &t, &n_checks);
		failed += storage_selftest_recreate(&t);
		n_checks++;
	}
	PG_CATCH();
	{
		ErrorData  *e;

		MemoryContextSwitchTo(fn_cxt);
		e = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		CurrentResourceOwner = owner;
		storage_forget_plans();
		ReThrowError(e);
	}
	PG_END_TRY();
	/* Everything the run wrote goes. */
	RollbackAndReleaseCurrentSubTransaction();
	MemoryContextSwitchTo(fn_cxt);
	CurrentResourceOwner = owner;
	storage_forget_plans();		/* and the scratch groups' log rows with it */
	spi_guard_finish(level);
	if (t.abort != NULL)
		ReThrowError(t.abort);

	failed += t.remove_failures > 0;
	lines = palloc(sizeof(Datum) * Max(list_length(t.failures), 1));
	foreach(lc, t.failures)
		lines[i++] = CStringGetTextDatum((char *) lfirst(lc));
	values[0] = Int32GetDatum(n_checks + 1);
	values[1] = Int32GetDatum(failed);
	values[2] = PointerGetDatum(construct_array(lines, i, TEXTOID, -1, false, TYPALIGN_INT));
	MemoryContextDelete(t.cxt);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(desc), values, nulls)));
}
