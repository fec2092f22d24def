/*
 * api_status.c — read-only SQL over what the worker publishes: status(),
 * the multiraft.groups and multiraft.stats views, and node_is_member() used by
 * remove_node.  None of them talks to the worker.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "funcapi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/tuplestore.h"

#include "api_args.h"
#include "guc.h"
#include "requests.h"
#include "shmem.h"
#include "status.h"

PG_FUNCTION_INFO_V1(multiraft_status);
PG_FUNCTION_INFO_V1(multiraft_groups);
PG_FUNCTION_INFO_V1(multiraft_stats);
PG_FUNCTION_INFO_V1(multiraft_node_is_member);

#define STATUS_COLUMNS 13

static Datum
node_array(const int32 *ids, int n)
{
	Datum		elems[MULTIRAFT_MAX_MEMBERS];

	if (n == 0)
		return PointerGetDatum(construct_empty_array(INT4OID));
	for (int i = 0; i < n; i++)
		elems[i] = Int32GetDatum(ids[i]);
	return PointerGetDatum(construct_array(elems, n, INT4OID, sizeof(int32), true,
										   TYPALIGN_INT));
}

/* One multiraft.group_status row (column order of the SQL type). */
static void
status_values(const MultiraftGroupStatus *s, Datum *values, bool *nulls)
{
	memset(nulls, 0, STATUS_COLUMNS * sizeof(bool));
	values[0] = Int64GetDatum(s->group_id);
	values[1] = Int32GetDatum(s->node_id);
	values[2] = Int64GetDatum(s->replica_id);
	values[3] = CStringGetTextDatum(status_role_name(s->role));
	values[4] = Int64GetDatum((int64) s->term);
	values[5] = Int32GetDatum(s->leader_node_id);
	nulls[5] = s->leader_node_id == 0;
	values[6] = Int64GetDatum((int64) s->commit_index);
	values[7] = Int64GetDatum((int64) s->applied_index);
	values[8] = Int64GetDatum((int64) s->first_index);
	values[9] = Int64GetDatum((int64) s->last_index);
	values[10] = node_array(s->voters, s->nvoters);
	values[11] = node_array(s->learners, s->nlearners);
	values[12] = BoolGetDatum(s->quiesced);
}

/* status(group_id bigint) returns multiraft.group_status */
Datum
multiraft_status(PG_FUNCTION_ARGS)
{
	MultiraftGroupStatus st;
	TupleDesc	tupdesc;
	Datum		values[STATUS_COLUMNS];
	bool		nulls[STATUS_COLUMNS];
	int64		group_id;

	multiraft_require_node_id();
	group_id = api_group_id_arg(fcinfo, 0);
	api_require_group(group_id, &st);

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "multiraft.status must return a composite type");
	tupdesc = BlessTupleDesc(tupdesc);
	if (tupdesc->natts != STATUS_COLUMNS)
		elog(ERROR, "multiraft.group_status has %d columns, expected %d",
			 tupdesc->natts, STATUS_COLUMNS);
	status_values(&st, values, nulls);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

/* The rows of view multiraft.groups, in group_id order. */
static int
compare_group_id(const void *a, const void *b)
{
	int64		x = ((const MultiraftGroupStatus *) a)->group_id;
	int64		y = ((const MultiraftGroupStatus *) b)->group_id;

	return (x > y) - (x < y);
}

Datum
multiraft_groups(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	MultiraftGroupStatus *rows;
	int			n;

	InitMaterializedSRF(fcinfo, 0);
	if (rsinfo->setDesc->natts != STATUS_COLUMNS)
		elog(ERROR, "multiraft.group_status has %d columns, expected %d",
			 rsinfo->setDesc->natts, STATUS_COLUMNS);
	n = status_snapshot(&rows);
	qsort(rows, n, sizeof(MultiraftGroupStatus), compare_group_id);
	for (int i = 0; i < n; i++)
	{
		Datum		values[STATUS_COLUMNS];
		bool		nulls[STATUS_COLUMNS];

		status_values(&rows[i], values, nulls);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	pfree(rows);
	return (Datum) 0;
}

static void
put_stat(ReturnSetInfo *rsinfo, const char *name, int64 value)
{
	Datum		values[2] = {CStringGetTextDatum(name), Int64GetDatum(value)};
	bool		nulls[2] = {false, false};

	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
}

/* The rows of view multiraft.stats: counters, then gauges of this node. */
Datum
multiraft_stats(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	bool		serving;
	uint64		starts;

	InitMaterializedSRF(fcinfo, 0);
	for (int c = 0; c < MR_CTR_COUNT_; c++)
		put_stat(rsinfo, status_counter_name(c), (int64) status_counter_get(c));

	LWLockAcquire(multiraft_shared->lock, LW_SHARED);
	serving = multiraft_shared->worker_pid != 0 && multiraft_shared->worker_serving;
	starts = multiraft_shared->worker_starts;
	LWLockRelease(multiraft_shared->lock);
	put_stat(rsinfo, "groups", status_group_count());
	put_stat(rsinfo, "log_bytes_retained", (int64) status_retained_get());
	put_stat(rsinfo, "requests_in_progress", requests_in_use());
	put_stat(rsinfo, "request_slots", requests_capacity());
	put_stat(rsinfo, "worker_starts", (int64) starts);
	put_stat(rsinfo, "worker_serving", serving ? 1 : 0);
	return (Datum) 0;
}

/* node_is_member(node_id int) returns bool: voter or learner of a local group */
Datum
multiraft_node_is_member(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(status_node_is_member(PG_GETARG_INT32(0)));
}
