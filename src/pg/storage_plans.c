/*
 * storage_plans.c — the statements of the storage layer, prepared once per worker
 * process and kept (SPI_keepplan), plus the column-array helpers.
 *
 * Every write of a batch is one statement per kind of row for ALL groups of the
 * batch: the rows travel as one array per column and unnest() turns them back
 * into rows.  So a batch costs a fixed number of executor runs whatever the
 * number of groups and entries in it (measured in bench/single-node/README.md).
 * The inserts of log rows, dedup records and events skip even that while their
 * table is as created (storage_insert.c); their statements here serve a table
 * an operator gave a trigger or a constraint.
 */
#include "postgres.h"

#include "catalog/dependency.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "utils/array.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"

#include "storage.h"

typedef struct PlanDef
{
	const char *sql;
	int			nargs;
	Oid			argtypes[11];
} PlanDef;

#define I8A INT8ARRAYOID
/* MR_DEDUP_INDEX as SQL: a dedup record's index without a refusal's verdict bits. */
#define DEDUP_INDEX_MASK "2305843009213693951"
StaticAssertDecl(MR_DEDUP_INDEX((uint64) PG_INT64_MAX) == UINT64CONST(2305843009213693951),
				 "DEDUP_INDEX_MASK is MR_DEDUP_INDEX's mask");
#define BYA BYTEAARRAYOID
#define TXA TEXTARRAYOID

static const PlanDef plan_defs[SP_COUNT_] = {
	[SP_DELETE_GROUP_META] = {
		"DELETE FROM multiraft.group_meta WHERE group_id = ANY ($1)", 1, {I8A}},
	[SP_DELETE_GROUP_DEDUP] = {
		"DELETE FROM multiraft.dedup WHERE group_id = ANY ($1)", 1, {I8A}},
	[SP_INSERT_LOG] = {
		"INSERT INTO multiraft.log (group_id, log_index, first_index, entries) "
		"SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bytea[]) "
		"RETURNING ctid, group_id, log_index, first_index",
		4, {I8A, I8A, I8A, BYA}},
	[SP_APPEND_DEDUP] = {
		/*
		 * The records of commands applied in this batch.  The layer applies a
		 * command only after probing for its id in this transaction (and it
		 * keeps the ids of the batch itself), so an id here is never stored
		 * yet: a plain INSERT, not ON CONFLICT, whose speculative insertion
		 * cost half again as much per row and one more WAL record.  Should the
		 * layer ever break that, the batch fails loudly instead of hiding a
		 * command applied twice.
		 */
		"INSERT INTO multiraft.dedup (group_id, command_id, log_index) "
		"SELECT * FROM unnest($1::bigint[], $2::bytea[], $3::bigint[])",
		3, {I8A, BYA, I8A}},
	[SP_INSERT_DEDUP] = {
		/* A snapshot's records come from a peer: a repeated id keeps the first. */
		"INSERT INTO multiraft.dedup (group_id, command_id, log_index) "
		"SELECT * FROM unnest($1::bigint[], $2::bytea[], $3::bigint[]) "
		"ON CONFLICT DO NOTHING",
		3, {I8A, BYA, I8A}},
	[SP_INSERT_EVENTS] = {
		"INSERT INTO multiraft.events (group_id, event_type, log_index, term, command_id, "
		"  payload, node_id, change_type) "
		"SELECT * FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::bigint[], $5::text[], "
		"                     $6::bytea[], $7::int[], $8::text[])",
		8, {I8A, TXA, I8A, I8A, TXA, BYA, INT4ARRAYOID, TXA}},
	[SP_UPSERT_TOMBSTONE] = {
		"INSERT INTO multiraft.tombstone (group_id, min_replica_id, applied_index, incarnation) "
		"SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[]) "
		"ON CONFLICT (group_id) DO UPDATE SET min_replica_id = EXCLUDED.min_replica_id, "
		"  applied_index = EXCLUDED.applied_index, incarnation = EXCLUDED.incarnation",
		4, {I8A, I8A, I8A, I8A}},
	[SP_SNAPSHOT_DEDUP] = {
		/* A refusal's record carries its verdict in bits 62 and 61 of the index
		 * (MR_DEDUP_REFUSED): compared without them. */
		"SELECT command_id, log_index FROM multiraft.dedup "
		"WHERE group_id = $1 AND (log_index & " DEDUP_INDEX_MASK ") <= $2 "
		"ORDER BY log_index",
		2, {INT8OID, INT8OID}},
};

static SPIPlanPtr plans[SP_COUNT_];

SPIPlanPtr
storage_plan(StoragePlan p)
{
	if (plans[p] == NULL)
	{
		SPIPlanPtr	plan = SPI_prepare(plan_defs[p].sql, plan_defs[p].nargs,
									   (Oid *) plan_defs[p].argtypes);

		if (plan == NULL)
			elog(ERROR, "multiraft: could not prepare storage statement %d: %s",
				 (int) p, SPI_result_code_string(SPI_result));
		if (SPI_keepplan(plan) != 0)
			elog(ERROR, "multiraft: could not keep storage statement %d", (int) p);
		plans[p] = plan;
	}
	return plans[p];
}

static const char *const rel_names[SR_COUNT_] = {
	[SR_LOG] = "log",
	[SR_META] = "group_meta",
	[SR_META_PKEY] = "group_meta_pkey",
	[SR_DEDUP] = "dedup",
	[SR_DEDUP_PKEY] = "dedup_pkey",
	[SR_EVENTS] = "events",
};

static Oid	rel_oids[SR_COUNT_];
static Oid	events_seq;

Oid
storage_rel(StorageRel r)
{
	if (!OidIsValid(rel_oids[r]))
	{
		Oid			relid = get_relname_relid(rel_names[r],
											  get_namespace_oid("multiraft", false));

		if (!OidIsValid(relid))
			elog(ERROR, "multiraft: relation multiraft.%s is missing", rel_names[r]);
		rel_oids[r] = relid;
	}
	return rel_oids[r];
}

Oid
storage_events_sequence(void)
{
	if (!OidIsValid(events_seq))
		events_seq = getIdentitySequence(storage_rel(SR_EVENTS), 1, false);
	return events_seq;
}

void
storage_forget_plans(void)
{
	memset(rel_oids, 0, sizeof(rel_oids));	/* InvalidOid */
	events_seq = InvalidOid;
	storage_log_reset();
	for (int i = 0; i < SP_COUNT_; i++)
	{
		if (plans[i] != NULL)
			SPI_freeplan(plans[i]);
		plans[i] = NULL;
	}
}

void
storage_exec(StoragePlan p, Datum *values, const char *nulls, bool read_only,
			 int expected)
{
	int			rc = SPI_execute_plan(storage_plan(p), values, nulls, read_only, 0);

	if (rc != expected)
		elog(ERROR, "multiraft: storage statement %d failed: %s",
			 (int) p, SPI_result_code_string(rc));
}

void
storage_column_init(StorageColumn *c, Oid elemtype, int cap_hint)
{
	c->elemtype = elemtype;
	c->n = 0;
	c->cap = Max(cap_hint, 4);
	c->values = palloc(sizeof(Datum) * c->cap);
	c->nulls = palloc(sizeof(bool) * c->cap);
	c->any_null = false;
}

void
storage_column_add(StorageColumn *c, Datum v, bool isnull)
{
	if (c->n == c->cap)
	{
		c->cap *= 2;
		c->values = repalloc(c->values, sizeof(Datum) * c->cap);
		c->nulls = repalloc(c->nulls, sizeof(bool) * c->cap);
	}
	c->values[c->n] = isnull ? (Datum) 0 : v;
	c->nulls[c->n] = isnull;
	c->any_null |= isnull;
	c->n++;
}

Datum
storage_column_array(StorageColumn *c)
{
	int16		typlen;
	bool		typbyval;
	char		typalign;
	int			dims[1] = {c->n};
	int			lbs[1] = {1};

	get_typlenbyvalalign(c->elemtype, &typlen, &typbyval, &typalign);
	if (c->n == 0)
		return PointerGetDatum(construct_empty_array(c->elemtype));
	return PointerGetDatum(construct_md_array(c->values, c->any_null ? c->nulls : NULL,
											  1, dims, lbs, c->elemtype,
											  typlen, typbyval, typalign));
}

Datum
storage_bytea(const void *data, size_t len)
{
	bytea	   *b;

	if (len > MaxAllocSize - VARHDRSZ)
		elog(ERROR, "multiraft: value of %zu bytes is too large", len);
	b = palloc(VARHDRSZ + len);
	SET_VARSIZE(b, VARHDRSZ + len);
	if (len > 0)
		memcpy(VARDATA(b), data, len);
	return PointerGetDatum(b);
}
