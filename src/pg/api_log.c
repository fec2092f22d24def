/*
 * api_log.c — multiraft.log_entries(): the stored log one entry per row, for
 * operators and tests.  multiraft.log packs each run of entries written together
 * in one row (storage_log_rows.c), which SQL cannot read.
 *
 * It reads the table as the caller, so it shows nothing to a role that may not
 * read multiraft.log (the extension revokes the table, and this function, from
 * PUBLIC).  A corrupt row fails the call with an error that names it.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/tuplestore.h"

#include "storage.h"
#include "spi_guard.h"

PG_FUNCTION_INFO_V1(multiraft_log_entries);

/* Appends the entries of one stored row to the result (allocating in the
 * caller's per-row context). */
static void
put_row(ReturnSetInfo *rsinfo, HeapTuple t, TupleDesc d)
{
	uint64		group = storage_col_u64(t, d, 1);
	uint64		last = storage_col_u64(t, d, 2);
	uint64		first = storage_col_u64(t, d, 3);
	bool		isnull;
	Datum		v = SPI_getbinval(t, d, 4, &isnull);
	size_t		n;
	struct raft_entry *e = storage_log_row_unpack(group, first, last, v, isnull, &n);

	for (size_t k = 0; k < n; k++)
	{
		Datum		values[5];
		bool		nulls[5] = {false, false, false, false, false};

		values[0] = Int64GetDatum((int64) group);
		values[1] = Int64GetDatum((int64) e[k].index);
		values[2] = Int64GetDatum((int64) e[k].term);
		values[3] = Int16GetDatum((int16) e[k].type);
		values[4] = storage_bytea(e[k].data, e[k].len);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
}

/*
 * multiraft.log_entries(of_group bigint DEFAULT NULL)
 *   RETURNS TABLE (group_id bigint, log_index bigint, term bigint,
 *                  entry_type smallint, data bytea)
 * Every stored entry, or those of one group, in (group_id, log_index) order.
 * Entries at or below a group's log start that compaction has not deleted yet
 * are shown too (multiraft.group_meta.log_start_index tells them apart).  The
 * rows are read through a cursor, a chunk at a time, so a large log costs the
 * result's tuplestore (which spills to disk past work_mem), not a copy of the
 * table in memory.
 */
Datum
multiraft_log_entries(PG_FUNCTION_ARGS)
{
	int			level;
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Oid			types[1] = {INT8OID};
	Datum		args[1] = {PG_ARGISNULL(0) ? (Datum) 0 : PG_GETARG_DATUM(0)};
	Portal		portal;
	MemoryContext row_cxt;

	InitMaterializedSRF(fcinfo, 0);
	level = spi_guard_connect(0);
	portal = SPI_cursor_open_with_args(NULL,
									   PG_ARGISNULL(0) ?
									   "SELECT group_id, log_index, first_index, entries "
									   "FROM multiraft.log ORDER BY group_id, log_index" :
									   "SELECT group_id, log_index, first_index, entries "
									   "FROM multiraft.log WHERE group_id = $1 ORDER BY log_index",
									   PG_ARGISNULL(0) ? 0 : 1, types, args, NULL, true, 0);
	if (portal == NULL)
		elog(ERROR, "multiraft: could not read multiraft.log");
	/* What one row's entries need (a detoasted value included) goes at once. */
	row_cxt = AllocSetContextCreate(CurrentMemoryContext, "multiraft log_entries row",
									ALLOCSET_DEFAULT_SIZES);
	for (;;)
	{
		SPI_cursor_fetch(portal, true, 256);
		if (SPI_processed == 0)
			break;
		for (uint64 i = 0; i < SPI_processed; i++)
		{
			MemoryContext outer = MemoryContextSwitchTo(row_cxt);

			put_row(rsinfo, SPI_tuptable->vals[i], SPI_tuptable->tupdesc);
			MemoryContextSwitchTo(outer);
			MemoryContextReset(row_cxt);
		}
		SPI_freetuptable(SPI_tuptable);
	}
	MemoryContextDelete(row_cxt);
	SPI_cursor_close(portal);
	spi_guard_finish(level);
	return (Datum) 0;
}
