/*
 * storage_events.c — the events of the worker's transaction (multiraft.events)
 * and its notifications: kept batch by batch in batch order
 * (storage_events_keep), written once before the commit with one NOTIFY per
 * group (storage_events_finish, through notify_queue.c).  The queue
 * applications read; a command's
 * event is written exactly once per node because it commits with the applied
 * index that covers it (storage_write.c, worker_batch.c).
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/sequence.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "storage.h"

/*
 * The events of the current transaction: one column per column of the SQL
 * statement (group_id, event_type, log_index, term, command_id, payload,
 * node_id, change_type), and what to notify.  In TopTransactionContext: an
 * aborted transaction takes them along.
 */
static struct
{
	StorageColumn cols[8];
	NotifyGroup *notify;
	int			nnotify;
	int			capnotify;
} tev;

void
storage_events_begin(void)
{
	MemoryContext old = MemoryContextSwitchTo(TopTransactionContext);

	storage_column_init(&tev.cols[0], INT8OID, 16);
	storage_column_init(&tev.cols[1], TEXTOID, 16);
	storage_column_init(&tev.cols[2], INT8OID, 16);
	storage_column_init(&tev.cols[3], INT8OID, 16);
	storage_column_init(&tev.cols[4], TEXTOID, 16);
	storage_column_init(&tev.cols[5], BYTEAOID, 16);
	storage_column_init(&tev.cols[6], INT4OID, 16);
	storage_column_init(&tev.cols[7], TEXTOID, 16);
	tev.capnotify = 16;
	tev.nnotify = 0;
	tev.notify = palloc(sizeof(NotifyGroup) * tev.capnotify);
	MemoryContextSwitchTo(old);
}

/*
 * Command ids are bytes; the events table shows them as text.  Ids given through
 * the SQL API are text already; anything else that is not valid in the database
 * encoding is shown as '\x' followed by hex, and an empty (internal) id as NULL.
 */
static Datum
command_id_text(const void *id, size_t len, bool *isnull)
{
	*isnull = (len == 0);
	if (len == 0)
		return (Datum) 0;
	if (pg_verify_mbstr(GetDatabaseEncoding(), id, (int) len, true))
		return PointerGetDatum(cstring_to_text_with_len(id, (int) len));
	else
	{
		char	   *hex = palloc(2 * len + 3);

		hex[0] = '\\';
		hex[1] = 'x';
		hex_encode(id, len, hex + 2);
		hex[2 * len + 2] = '\0';
		return PointerGetDatum(cstring_to_text(hex));
	}
}

void
storage_events_keep(const struct mr_event *ev, size_t n)
{
	MemoryContext old;

	if (n == 0)
		return;
	old = MemoryContextSwitchTo(TopTransactionContext);
	for (size_t i = 0; i < n; i++)
	{
		const struct mr_event *e = &ev[i];
		const char *type = mr_event_type_name(e->type);
		bool		logged = (e->type == MR_EVENT_COMMAND ||
							  e->type == MR_EVENT_MEMBERSHIP_CHANGE);
		bool		has_index = logged || e->type == MR_EVENT_GROUP_REMOVED ||
			e->type == MR_EVENT_SNAPSHOT_APPLIED;
		bool		has_node = e->type == MR_EVENT_MEMBERSHIP_CHANGE ||
			e->type == MR_EVENT_LEADER_ELECTED ||
			e->type == MR_EVENT_ELECTION_STARTED ||
			e->type == MR_EVENT_GROUP_CREATED;
		const char *change = e->type == MR_EVENT_MEMBERSHIP_CHANGE ?
			mr_change_type_name(e->change_type) : NULL;
		bool		cid_null;
		Datum		cid = command_id_text(e->command_id, e->command_id_len, &cid_null);

		/* change_membership's payload defaults to NULL: empty shows as NULL */
		bool		no_payload = !logged ||
			(e->type == MR_EVENT_MEMBERSHIP_CHANGE && e->payload_len == 0);

		storage_column_add(&tev.cols[0], U64_DATUM(e->group), false);
		storage_column_add(&tev.cols[1], CStringGetTextDatum(type ? type : "unknown"), false);
		storage_column_add(&tev.cols[2], U64_DATUM(e->index), !has_index);
		storage_column_add(&tev.cols[3], U64_DATUM(e->term), e->type == MR_EVENT_GROUP_CREATED);
		storage_column_add(&tev.cols[4], cid, cid_null);
		storage_column_add(&tev.cols[5], no_payload ? (Datum) 0 :
						   storage_bytea(e->payload, e->payload_len), no_payload);
		storage_column_add(&tev.cols[6], Int32GetDatum((int32) e->node_id),
						   !has_node || e->node_id == 0);
		storage_column_add(&tev.cols[7], change ? CStringGetTextDatum(change) : (Datum) 0,
						   change == NULL);
		if (tev.nnotify == tev.capnotify)
		{
			tev.capnotify *= 2;
			tev.notify = repalloc(tev.notify, sizeof(NotifyGroup) * tev.capnotify);
		}
		tev.notify[tev.nnotify].group = e->group;
		tev.notify[tev.nnotify].index = has_index ? e->index : 0;
		tev.nnotify++;
	}
	MemoryContextSwitchTo(old);
}

/*
 * The rows.  Directly, the table's defaults are the
 * caller's to supply: event_id from its identity sequence, row by row in batch
 * order, and created_at = now() (the transaction's start).
 */
static void
write_rows(void)
{
	StorageColumn cols[10];
	Relation	rel;
	Datum		v[8];
	int			n = tev.cols[0].n;

	storage_column_init(&cols[0], INT8OID, n);
	memcpy(&cols[1], tev.cols, sizeof(tev.cols));
	storage_column_init(&cols[9], TIMESTAMPTZOID, n);
	rel = storage_insert_open(SR_EVENTS, cols, 10);
	if (rel != NULL)
	{
		Oid			seq = storage_events_sequence();
		Datum		now = TimestampTzGetDatum(GetCurrentTransactionStartTimestamp());

		for (int r = 0; r < n; r++)
		{
			storage_column_add(&cols[0], Int64GetDatum(nextval_internal(seq, false)), false);
			storage_column_add(&cols[9], now, false);
		}
		storage_insert_rows(rel, cols, 10, NULL);
		return;
	}
	for (int k = 0; k < 8; k++)
		v[k] = storage_column_array(&tev.cols[k]);
	storage_exec(SP_INSERT_EVENTS, v, NULL, false, SPI_OK_INSERT);
}

void
storage_events_finish(void)
{
	if (tev.cols[0].n > 0)
		write_rows();
	/* one notification per group, sent at commit (notify_queue.c) */
	notify_send(tev.notify, tev.nnotify);
}
