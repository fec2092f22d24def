/*
 * storage_log_rows.c — the format of a multiraft.log row: a run of consecutive
 * entries of one group, first_index .. log_index, packed in one bytea.
 *
 * Why runs: a leader appends a round of entries per batch, and its followers
 * receive them together.  One row per entry cost a heap tuple, an index entry
 * and, at compaction, an index visit and a heap delete for each of them — a tenth
 * of the worker's time with one busy group (bench/ANALYSES.md, eighteenth
 * analysis).  A batch now writes one row per group (more only past
 * STORAGE_LOG_ROW_BYTES), and compaction deletes one per run.
 *
 * Each entry is its term (8 bytes), its type (1) and its length (4), little
 * endian, then its data.  A run stays below the size at which PostgreSQL would
 * try to compress or move it out of line (TOAST), unless one entry alone is
 * larger: that one is a row by itself, stored as any large value.
 *
 * Only the worker writes these rows, but the reader trusts nothing: a row whose
 * entries do not add up to its bytes and its index range fails with an error
 * naming it, never reads past its value.
 */
#include "postgres.h"

#include "access/heaptoast.h"
#include "utils/memutils.h"

#include "storage.h"

#define ENTRY_HEADER 13			/* term, type, length */

/* Most bytes of packed entries in one row: below TOAST's threshold, with room
 * for the tuple header and the other three columns. */
#define STORAGE_LOG_ROW_BYTES (TOAST_TUPLE_THRESHOLD - 128)

/* How many of e[0..n-1] (at least one) go into the next row. */
static size_t
run_length(const struct raft_entry *e, size_t n)
{
	size_t		bytes = 0,
				k = 0;

	while (k < n)
	{
		size_t		size = ENTRY_HEADER + (size_t) e[k].len;

		if (k > 0 && bytes + size > STORAGE_LOG_ROW_BYTES)
			break;
		bytes += size;
		k++;
	}
	return k;
}

/* e[0..n-1] as the entries column of one row. */
static bytea *
pack(const struct raft_entry *e, size_t n)
{
	size_t		bytes = 0;
	bytea	   *b;
	unsigned char *p;

	for (size_t k = 0; k < n; k++)
		bytes += ENTRY_HEADER + (size_t) e[k].len;
	if (bytes > MaxAllocSize - VARHDRSZ)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("multiraft: log entries of %zu bytes do not fit in one row", bytes)));
	b = palloc(VARHDRSZ + bytes);
	SET_VARSIZE(b, VARHDRSZ + bytes);
	p = (unsigned char *) VARDATA(b);
	for (size_t k = 0; k < n; k++)
	{
		storage_put_le(p, e[k].term, 8);
		p[8] = (unsigned char) e[k].type;
		storage_put_le(p + 9, e[k].len, 4);
		if (e[k].len > 0)
			memcpy(p + ENTRY_HEADER, e[k].data, e[k].len);
		p += ENTRY_HEADER + e[k].len;
	}
	return b;
}

void
storage_log_add_rows(StorageColumn *cols, mr_group_id group, const struct raft_entry *e,
					 size_t n)
{
	for (size_t k = 0, run; k < n; k += run)
	{
		run = run_length(e + k, n - k);
		storage_column_add(&cols[0], U64_DATUM(group), false);
		storage_column_add(&cols[1], U64_DATUM(e[k + run - 1].index), false);
		storage_column_add(&cols[2], U64_DATUM(e[k].index), false);
		storage_column_add(&cols[3], PointerGetDatum(pack(e + k, run)), false);
	}
}

static void
corrupt(mr_group_id group, raft_index last, const char *what)
{
	ereport(ERROR,
			(errcode(ERRCODE_DATA_CORRUPTED),
			 errmsg("multiraft: log row of group " INT64_FORMAT " ending at index "
					UINT64_FORMAT " is corrupt: %s", (int64) group, (uint64) last, what)));
}

const char *
storage_log_row_problem(raft_index first, raft_index last, size_t len)
{
	/* Each entry takes ENTRY_HEADER bytes at least. */
	if (first == 0 || first > last || last - first >= (uint64) (len / ENTRY_HEADER))
		return "its index range does not match its size";
	return NULL;
}

size_t
storage_log_row_entries(mr_group_id group, raft_index first, raft_index last, size_t len)
{
	const char *why = storage_log_row_problem(first, last, len);

	if (why != NULL)
		corrupt(group, last, why);
	return (size_t) (last - first + 1);
}

const char *
storage_log_unpack_checked(raft_index first, raft_index last, const void *data,
						   size_t len, struct raft_entry *out)
{
	const unsigned char *p = data;
	const unsigned char *end = p + len;
	const char *why = storage_log_row_problem(first, last, len);
	size_t		n;

	if (why != NULL)
		return why;
	n = (size_t) (last - first + 1);
	for (size_t k = 0; k < n; k++)
	{
		uint32		elen;

		if (end - p < ENTRY_HEADER)
			return "it holds fewer entries than its index range";
		elen = (uint32) storage_get_le(p + 9, 4);
		if ((size_t) (end - p - ENTRY_HEADER) < elen)
			return "an entry runs past its end";
		out[k].index = first + k;
		out[k].term = storage_get_le(p, 8);
		out[k].type = p[8];
		out[k].len = elen;
		out[k].data = p + ENTRY_HEADER;
		p += ENTRY_HEADER + elen;
	}
	if (p != end)
		return "it holds more entries than its index range";
	return NULL;
}

void
storage_log_unpack(mr_group_id group, raft_index first, raft_index last,
				   const void *data, size_t len, struct raft_entry *out)
{
	const char *why = storage_log_unpack_checked(first, last, data, len, out);

	if (why != NULL)
		corrupt(group, last, why);
}

struct raft_entry *
storage_log_row_unpack(mr_group_id group, raft_index first, raft_index last, Datum v,
					   bool isnull, size_t *n)
{
	/* NULL (a column an operator altered): no bytes, so the count fails */
	bytea	   *packed = isnull ? NULL : DatumGetByteaPP(v);
	size_t		len = isnull ? 0 : VARSIZE_ANY_EXHDR(packed);
	struct raft_entry *e;

	*n = storage_log_row_entries(group, first, last, len);
	e = palloc(sizeof(struct raft_entry) * *n);
	storage_log_unpack(group, first, last, VARDATA_ANY(packed), len, e);
	return e;
}
