/*
 * api_transport.c — SQL functions of the transport:
 *   multiraft.receive(bytea)      one frame per call (multiraft_peer; the links
 *                                 use receive_stream(), api_receive_stream.c)
 *   multiraft._transport_stats()  node-wide counters (unioned into multiraft.stats)
 *   multiraft._transport_peers()  per-peer link state (joined into multiraft.nodes)
 *   multiraft._node_registry_changed()  trigger: tell the worker to re-read
 *                                 multiraft.node once the change commits
 */
#include "postgres.h"

#include "access/xact.h"
#include "commands/trigger.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "guc.h"
#include "inbox.h"
#include "shmem.h"
#include "transport_door.h"
#include "wire.h"

PG_FUNCTION_INFO_V1(multiraft_receive);
PG_FUNCTION_INFO_V1(multiraft_transport_stats);
PG_FUNCTION_INFO_V1(multiraft_transport_peers);
PG_FUNCTION_INFO_V1(multiraft_node_registry_changed);
PG_FUNCTION_INFO_V1(multiraft_wire_roundtrip);

/*
 * multiraft.receive(frame bytea) returns void
 *
 * One frame per call (transport_door.c): invalid frames raise an ERROR (and
 * are counted); a full inbox drops the frame silently (counted).  The peers'
 * workers use multiraft.receive_stream() instead; this door serves tools and
 * tests.
 */
Datum
multiraft_receive(PG_FUNCTION_ARGS)
{
	bytea	   *frame = PG_GETARG_BYTEA_PP(0);
	char	   *err = NULL;
	WireResult	r;

	multiraft_require_node_id();
	r = door_admit(VARDATA_ANY(frame), VARSIZE_ANY_EXHDR(frame), 0, &err);
	if (r != WIRE_OK)
		ereport(ERROR,
				(errcode(door_errcode(r)),
				 errmsg("invalid multiraft message: %s", err),
				 r == WIRE_BAD_CLUSTER ?
				 errhint("Every node of a cluster needs the same multiraft.cluster_id.") : 0));
	PG_RETURN_VOID();
}

/* multiraft._transport_stats(OUT name text, OUT value bigint) */
Datum
multiraft_transport_stats(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Datum		values[2];
	bool		nulls[2] = {false, false};

	InitMaterializedSRF(fcinfo, 0);
	for (int c = 0; c < TC_COUNT_; c++)
	{
		values[0] = CStringGetTextDatum(transport_counter_name((TransportCounter) c));
		values[1] = Int64GetDatum((int64) transport_counter_get((TransportCounter) c));
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	/* gauges */
	values[0] = CStringGetTextDatum("transport_inbox_frames");
	values[1] = Int64GetDatum((int64) inbox_count());
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	values[0] = CStringGetTextDatum("transport_inbox_capacity_bytes");
	values[1] = Int64GetDatum((int64) inbox_capacity());
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	return (Datum) 0;
}

static const char *
link_state_name(PeerLinkState s)
{
	switch (s)
	{
		case PEER_LINK_IDLE:
			return "idle";
		case PEER_LINK_CONNECTING:
			return "connecting";
		case PEER_LINK_CONNECTED:
			return "connected";
		case PEER_LINK_BACKOFF:
			return "backoff";
	}
	return "?";
}

/*
 * multiraft._transport_peers(OUT node_id int, OUT connected bool, OUT state text,
 *   OUT state_since timestamptz, OUT envelopes_sent bigint, OUT frames_sent bigint,
 *   OUT bytes_sent bigint, OUT frames_received bigint, OUT bytes_received bigint,
 *   OUT dropped bigint, OUT send_errors bigint, OUT connects bigint,
 *   OUT connect_failures bigint, OUT queue_length int, OUT last_error text)
 */
Datum
multiraft_transport_peers(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	PeerStats  *rows;
	int			n;

	InitMaterializedSRF(fcinfo, 0);
	n = peer_stats_snapshot(&rows);
	for (int i = 0; i < n; i++)
	{
		PeerStats  *ps = &rows[i];
		Datum		v[15];
		bool		nulls[15] = {0};

		v[0] = Int32GetDatum(ps->node_id);
		v[1] = BoolGetDatum(ps->state == PEER_LINK_CONNECTED);
		v[2] = CStringGetTextDatum(link_state_name(ps->state));
		v[3] = TimestampTzGetDatum(ps->state_since);
		nulls[3] = ps->state_since == 0;
		v[4] = Int64GetDatum((int64) ps->envelopes_sent);
		v[5] = Int64GetDatum((int64) ps->frames_sent);
		v[6] = Int64GetDatum((int64) ps->bytes_sent);
		v[7] = Int64GetDatum((int64) ps->frames_received);
		v[8] = Int64GetDatum((int64) ps->bytes_received);
		v[9] = Int64GetDatum((int64) ps->dropped);
		v[10] = Int64GetDatum((int64) ps->send_errors);
		v[11] = Int64GetDatum((int64) ps->connects);
		v[12] = Int64GetDatum((int64) ps->connect_failures);
		v[13] = Int32GetDatum((int32) ps->queue_len);
		ps->last_error[MR_PEER_ERROR_LEN - 1] = '\0';
		v[14] = CStringGetTextDatum(ps->last_error);
		nulls[14] = ps->last_error[0] == '\0';
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, v, nulls);
	}
	return (Datum) 0;
}

/* ---------------------------------------------------------------- registry trigger */

static bool registry_changed_pending = false;
static bool registry_callback_registered = false;

static void
registry_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
			if (registry_changed_pending)
			{
				registry_changed_pending = false;
				transport_registry_bump();
				multiraft_wake_worker();
			}
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
			registry_changed_pending = false;
			break;
		default:
			break;
	}
}

/*
 * Statement trigger on multiraft.node: the worker must see the change, but
 * only once it is committed (it reads the table in its own transaction).
 */
Datum
multiraft_node_registry_changed(PG_FUNCTION_ARGS)
{
	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("multiraft._node_registry_changed() is a trigger function")));
	if (!registry_callback_registered)
	{
		RegisterXactCallback(registry_xact_callback, NULL);
		registry_callback_registered = true;
	}
	registry_changed_pending = true;
	return PointerGetDatum(NULL);
}

/* ---------------------------------------------------------------- wire check */

/*
 * multiraft._wire_roundtrip(frame bytea, OUT description text, OUT reencoded bytea)
 *
 * Decodes a frame addressed to this node as receive() would, then encodes the
 * resulting envelope again: for a canonical encoding the bytes come back
 * unchanged, which checks both directions of wire.c.  Superuser-only (not
 * granted to anyone): a diagnostic, not an API.
 */
Datum
multiraft_wire_roundtrip(PG_FUNCTION_ARGS)
{
	bytea	   *frame = PG_GETARG_BYTEA_PP(0);
	TupleDesc	desc;
	WireFrame	f;
	WireFrames	out;
	char	   *err = NULL;
	WireResult	r;
	Datum		values[2];
	bool		nulls[2] = {false, false};
	bytea	   *re;

	multiraft_require_node_id();
	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	r = wire_decode_frame(VARDATA_ANY(frame), VARSIZE_ANY_EXHDR(frame),
						  (uint64) multiraft_cluster_id, (uint32) multiraft_node_id, &f, &err);
	if (r != WIRE_OK)
		ereport(ERROR,
				(errcode(door_errcode(r)),
				 errmsg("invalid multiraft message: %s", err)));
	if (f.is_chunk)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("multiraft._wire_roundtrip does not take chunks")));
	if (!wire_encode(&f.env, (uint64) multiraft_cluster_id, 0, &out, &err))
		ereport(ERROR, (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED), errmsg("%s", err)));
	if (out.n != 1)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("re-encoded envelope needs %d chunks", out.n)));
	re = palloc(VARHDRSZ + out.len[0]);
	SET_VARSIZE(re, VARHDRSZ + out.len[0]);
	memcpy(VARDATA(re), out.data[0], out.len[0]);
	values[0] = CStringGetTextDatum(wire_describe(&f.env));
	values[1] = PointerGetDatum(re);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(desc), values, nulls)));
}
