/*
 * storage_dedup.c — the storage callbacks of the multi-raft layer
 * (mr_storage_callbacks): "was this command id applied already?" and "the host's
 * part of a snapshot", plus the snapshot blob format.
 *
 * Both callbacks run inside mr_ready(), within the pure layer's stack frames, so
 * no ereport may unwind through them: every error is caught here, remembered, and
 * the worker throws the batch away afterwards (storage_callback_error()).
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/relscan.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/tableam.h"
#include "catalog/pg_type.h"
#include "executor/tuptable.h"
#include "utils/fmgroids.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#include "storage.h"

/* n x (u16 id length | id | u64 index) */
#define BLOB_MAGIC "MRD3"

static ErrorData *callback_error = NULL;
static StringInfoData snapshot_buf;

ErrorData *
storage_callback_error(void)
{
	return callback_error;
}

void
storage_callback_reset(void)
{
	if (callback_error)
		FreeErrorData(callback_error);
	callback_error = NULL;
}

/* In PG_CATCH: keep the first error (in the worker's long-lived context). */
static void
remember_error(MemoryContext cxt)
{
	MemoryContextSwitchTo(TopMemoryContext);
	if (callback_error == NULL)
		callback_error = CopyErrorData();
	FlushErrorState();
	MemoryContextSwitchTo(cxt);
}

/*
 * One probe of the primary key of multiraft.dedup.  This runs for every
 * command applied (the layer asks for each id it has not seen in the batch), so
 * it scans the index directly rather than through SPI and the executor: same
 * snapshot (the transaction's), a fraction of the cost.
 */
static bool
probe_dedup(mr_group_id group, const void *command_id, size_t command_id_len,
			raft_index *first_index)
{
	Relation	heap;
	Relation	index;
	IndexScanDesc scan;
	TupleTableSlot *slot;
	ScanKeyData key[2];
	Datum		id = storage_bytea(command_id, command_id_len);
	bool		found = false;

	heap = table_open(storage_rel(SR_DEDUP), AccessShareLock);
	index = index_open(storage_rel(SR_DEDUP_PKEY), AccessShareLock);
	ScanKeyInit(&key[0], 1, BTEqualStrategyNumber, F_INT8EQ, U64_DATUM(group));
	ScanKeyInit(&key[1], 2, BTEqualStrategyNumber, F_BYTEAEQ, id);
	slot = table_slot_create(heap, NULL);
	scan = index_beginscan(heap, index, GetActiveSnapshot(), 2, 0);
	index_rescan(scan, key, 2, NULL, 0);
	if (index_getnext_slot(scan, ForwardScanDirection, slot))
	{
		bool		isnull;
		Datum		d = slot_getattr(slot, 3, &isnull);

		if (!isnull)
		{
			*first_index = DATUM_U64(d);
			found = true;
		}
	}
	index_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
	index_close(index, NoLock);
	table_close(heap, NoLock);
	pfree(DatumGetPointer(id));
	return found;
}

static bool
lookup_command(void *user, mr_group_id group, const void *command_id,
			   size_t command_id_len, raft_index *first_index)
{
	MemoryContext cxt = CurrentMemoryContext;
	volatile bool found = false;

	if (callback_error != NULL)
		return false;			/* the batch is void anyway */
	PG_TRY();
	{
		found = probe_dedup(group, command_id, command_id_len, first_index);
	}
	PG_CATCH();
	{
		remember_error(cxt);
		found = false;
	}
	PG_END_TRY();
	return found;
}

/* x as n bytes, little endian, at the end of b. */
static void
put_le(StringInfo b, uint64 x, int n)
{
	unsigned char c[8];

	storage_put_le(c, x, n);
	appendBinaryStringInfo(b, (char *) c, n);
}

static int
snapshot_data(void *user, mr_group_id group, raft_index index,
			  const void **data, size_t *len)
{
	MemoryContext cxt = CurrentMemoryContext;
	volatile int rc = 0;

	if (callback_error != NULL)
		return -1;
	PG_TRY();
	{
		Datum		v[2] = {U64_DATUM(group), U64_DATUM(index)};
		MemoryContext old;

		storage_exec(SP_SNAPSHOT_DEDUP, v, NULL, true, SPI_OK_SELECT);
		/* Valid until the next snapshot_data call; the layer copies it at once. */
		old = MemoryContextSwitchTo(TopMemoryContext);
		if (snapshot_buf.data == NULL)
			initStringInfo(&snapshot_buf);
		MemoryContextSwitchTo(old);
		resetStringInfo(&snapshot_buf);
		appendBinaryStringInfo(&snapshot_buf, BLOB_MAGIC, 4);
		put_le(&snapshot_buf, (uint32) SPI_processed, 4);
		for (uint64 i = 0; i < SPI_processed; i++)
		{
			bool		n1,
						n2;
			bytea	   *id = DatumGetByteaPP(SPI_getbinval(SPI_tuptable->vals[i],
														  SPI_tuptable->tupdesc, 1, &n1));
			Datum		ix = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2, &n2);
			size_t		idlen = VARSIZE_ANY_EXHDR(id);

			if (idlen > MR_MAX_COMMAND_ID_LEN)
				elog(ERROR, "multiraft: command id of %zu bytes in group " UINT64_FORMAT,
					 idlen, (uint64) group);
			put_le(&snapshot_buf, (uint16) idlen, 2);
			appendBinaryStringInfo(&snapshot_buf, VARDATA_ANY(id), idlen);
			put_le(&snapshot_buf, DATUM_U64(ix), 8);
		}
		SPI_freetuptable(SPI_tuptable);
		*data = snapshot_buf.data;
		*len = snapshot_buf.len;
	}
	PG_CATCH();
	{
		remember_error(cxt);
		rc = -1;
	}
	PG_END_TRY();
	return rc;
}

/*
 * One record of a blob at *p, before end: false if it does not fit or is not one
 * the sender could have written (an empty id, index 0).
 */
static bool
blob_record(const unsigned char **p, const unsigned char *end,
			const unsigned char **id, size_t *idlen, uint64 *ix)
{
	size_t		l;

	if (end - *p < 2)
		return false;
	l = storage_get_le(*p, 2);
	if (l == 0 || (size_t) (end - *p) < 2 + l + 8)
		return false;
	*id = *p + 2;
	*idlen = l;
	*ix = storage_get_le(*p + 2 + l, 8);
	*p += 2 + l + 8;
	return MR_DEDUP_INDEX(*ix) >= 1;
}

/*
 * mr_storage_callbacks.snapshot_blob_ok: a received blob is taken only whole, so
 * that storage_restore_dedup_blob() restores every record it carries.  Called in
 * mr_receive(): reads nothing but the bytes, raises no error.
 */
static bool
snapshot_blob_ok(void *user, mr_group_id group, const void *blob, size_t len)
{
	const unsigned char *p = blob;
	const unsigned char *end = p + len;
	const unsigned char *id;
	size_t		idlen;
	uint64		ix;
	uint32		count;

	if (len == 0)
		return true;			/* the sender had no records */
	if (len < 8 || memcmp(p, BLOB_MAGIC, 4) != 0)
		return false;
	count = (uint32) storage_get_le(p + 4, 4);
	p += 8;
	for (uint32 i = 0; i < count; i++)
		if (!blob_record(&p, end, &id, &idlen, &ix))
			return false;
	return p == end;
}

void
storage_callbacks(struct mr_storage_callbacks *cb)
{
	cb->user = NULL;
	cb->lookup_command = lookup_command;
	cb->snapshot_data = snapshot_data;
	cb->snapshot_blob_ok = snapshot_blob_ok;
}

/*
 * Inserts the dedup records of a snapshot installed in this batch.  The layer
 * installs only a snapshot whose blob snapshot_blob_ok() took, so every record is
 * restored.
 */
void
storage_restore_dedup_blob(mr_group_id group, const void *blob, size_t len)
{
	const unsigned char *p = blob;
	const unsigned char *end = p + len;
	StorageColumn g,
				id,
				ix;
	uint32		count;

	if (len == 0)
		return;					/* the sender had no records */
	if (!snapshot_blob_ok(NULL, group, blob, len))
		elog(ERROR, "multiraft: snapshot of group " UINT64_FORMAT " has a malformed command-id blob",
			 (uint64) group);
	count = (uint32) storage_get_le(p + 4, 4);
	p += 8;
	storage_column_init(&g, INT8OID, Min(count, 1024));
	storage_column_init(&id, BYTEAOID, Min(count, 1024));
	storage_column_init(&ix, INT8OID, Min(count, 1024));
	for (uint32 i = 0; i < count; i++)
	{
		const unsigned char *idp;
		size_t		idlen;
		uint64		index;

		(void) blob_record(&p, end, &idp, &idlen, &index);
		storage_column_add(&g, U64_DATUM(group), false);
		storage_column_add(&id, storage_bytea(idp, idlen), false);
		storage_column_add(&ix, U64_DATUM(index), false);
	}
	if (g.n > 0)
	{
		Datum		v[3] = {storage_column_array(&g), storage_column_array(&id),
		storage_column_array(&ix)};

		storage_exec(SP_INSERT_DEDUP, v, NULL, false, SPI_OK_INSERT);
	}
}
