/*
 * api_receive_stream.c — CALL multiraft.receive_stream(from_node, to_node,
 * cluster_id): the door the peers' workers use.  One call serves one link for
 * as long as it lives: the connection switches to COPY BOTH and every CopyData
 * message is one frame (transport_door.c), so a frame costs a read and a
 * push into the inbox — no statement, no result, no transaction of its own.
 *
 * Why a procedure: a function call would keep its statement's snapshot for
 * the life of the link, holding back the vacuum horizon of the whole server.
 * A procedure may commit; after that commit this backend holds no snapshot
 * and no transaction id, and it never reads a table again.
 *
 * Protocol (the same as a COPY FROM STDIN, with CopyBothResponse as walsender
 * uses): after the response the peer sends CopyData frames; CopyDone ends the
 * stream (the call returns), Terminate or a closed socket end the backend
 * quietly, CopyFail ends the call with an error.  Nothing is sent back while
 * the stream runs, so the sender sees an error only when its stream ends.
 * Frames that fail validation are dropped and counted (transport_rejected):
 * one bad frame does not cost the link.
 *
 * Usually the backend serves the stream only up to the CopyBothResponse: then
 * it hands the connection to the worker and exits (transport_adopt.h), and the
 * loop below runs only for links that cannot be handed over.
 */
#include "postgres.h"

#include "access/xact.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "libpq/libpq.h"
#include "libpq/pqformat.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/backend_status.h"
#include "utils/memutils.h"
#include "utils/timeout.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

#include "guc.h"
#include "inbox.h"
#include "transport_adopt.h"
#include "transport_door.h"

PG_FUNCTION_INFO_V1(multiraft_receive_stream);

static void
check_handshake(int32 from_node, int32 to_node, int64 cluster_id)
{
	multiraft_require_node_id();
	if (cluster_id != (int64) multiraft_cluster_id)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("multiraft message from cluster %lld rejected: this node is in cluster %d (multiraft.cluster_id)",
						(long long) cluster_id, multiraft_cluster_id),
				 errhint("Every node of a cluster needs the same multiraft.cluster_id.")));
	if (to_node != multiraft_node_id)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("multiraft link for node %d reached node %d", to_node, multiraft_node_id)));
	if (from_node <= 0 || from_node == multiraft_node_id)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("multiraft link from invalid node %d", from_node)));
}

/* Leave the transaction the CALL began, snapshot included (see the top). */
static void
drop_snapshot(FunctionCallInfo fcinfo)
{
	CallContext *call = (fcinfo->context && IsA(fcinfo->context, CallContext))
		? (CallContext *) fcinfo->context : NULL;

	if (call == NULL || call->atomic)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TRANSACTION_TERMINATION),
				 errmsg("multiraft.receive_stream() must be called with CALL outside a transaction block")));
	if (SPI_connect_ext(SPI_OPT_NONATOMIC) != SPI_OK_CONNECT)
		elog(ERROR, "multiraft: SPI_connect failed");
	SPI_commit();
	SPI_finish();
	/*
	 * The transaction SPI_commit() began holds no snapshot, no xid and no lock
	 * but its virtual xid's: do not show it as one that started when the link
	 * did, or every long-transaction alert would name the node links.
	 */
	pgstat_report_xact_timestamp(0);
}

/* The end of a link that the peer closed: nothing to report. */
static void
peer_gone(void)
{
	ereport(DEBUG1, (errmsg("multiraft: node link closed by the peer")));
	proc_exit(0);
}

/* How often a link that stayed here offers itself to the worker again, and
 * looks at how long it has been silent. */
#define HAND_OVER_RETRY_MS 1000

/*
 * A link that carried frames and then nothing for this long is ended.  A
 * sender's layer sends every node it knows at least once per heartbeat
 * interval (liveness), so such silence means the sender is gone without a
 * word: its host rebooted, or a partition swallowed its packets, and it has
 * opened another link since.  The old backend would otherwise wait in a read
 * that TCP ends only after hours (keepalives off), holding a connection slot.
 * A link that never carried a frame is left alone (a sender with nothing to
 * send here keeps it idle).
 */
#define STREAM_IDLE_MS (60 * 1000)

/* Give the connection to the worker, between two messages; exits if it took it. */
static void
hand_over(int32 from_node)
{
	if (!adopt_hand_over(from_node))
		return;
	ereport(DEBUG1, (errmsg("multiraft: handed the link from node %d to the worker", from_node)));
	proc_exit(0);
}

Datum
multiraft_receive_stream(PG_FUNCTION_ARGS)
{
	int32		from_node = PG_GETARG_INT32(0);
	int32		to_node = PG_GETARG_INT32(1);
	int64		cluster_id = PG_GETARG_INT64(2);
	MemoryContext frame_cxt;
	MemoryContext old;
	StringInfoData msg;
	StringInfoData buf;
	uint64		rejected = 0;
	TimestampTz last_try;
	TimestampTz last_frame = 0;	/* 0: none yet */

	if (PG_NARGS() != 3 || PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("multiraft.receive_stream() needs from_node, to_node and cluster_id")));
	if (whereToSendOutput != DestRemote || MyProcPort == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("multiraft.receive_stream() needs a client connection")));
	check_handshake(from_node, to_node, cluster_id);
	drop_snapshot(fcinfo);

	/* A link lives as long as its peer wants: statement_timeout is not for it. */
	if (get_timeout_active(STATEMENT_TIMEOUT))
		disable_timeout(STATEMENT_TIMEOUT, false);

	frame_cxt = AllocSetContextCreate(CurrentMemoryContext, "multiraft receive stream",
									  ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(frame_cxt);

	pq_beginmessage(&buf, 'W');	/* CopyBothResponse */
	pq_sendbyte(&buf, 1);		/* binary */
	pq_sendint16(&buf, 0);		/* no columns */
	pq_endmessage(&buf);
	pq_flush();

	/* The worker reads the stream itself when it can (transport_adopt.h). */
	hand_over(from_node);
	last_try = GetCurrentTimestamp();

	for (;;)
	{
		int			mtype;
		int			maxlen;
		char	   *err = NULL;
		WireResult	r;

		CHECK_FOR_INTERRUPTS();

		/*
		 * The worker may not have listened yet (it starts after the server, and
		 * restarts after a failure): offer the link again now and then, also
		 * while the peer has nothing to send.
		 */
		if (!pq_buffer_has_data())
		{
			int			rc;
			bool		adoptable = adopt_may_hand_over();

			if (adoptable &&
				TimestampDifferenceExceeds(last_try, GetCurrentTimestamp(), HAND_OVER_RETRY_MS))
			{
				hand_over(from_node);
				last_try = GetCurrentTimestamp();
			}
			if (last_frame != 0 &&
				TimestampDifferenceExceeds(last_frame, GetCurrentTimestamp(), STREAM_IDLE_MS))
				ereport(ERROR,
						(errcode(ERRCODE_CONNECTION_FAILURE),
						 errmsg("multiraft: no message from node %d for %d s: ending its link",
								from_node, STREAM_IDLE_MS / 1000),
						 errdetail("Its node sends at least one message per heartbeat interval; it has probably opened another link.")));
			rc = WaitLatchOrSocket(MyLatch,
								   WL_LATCH_SET | WL_SOCKET_READABLE | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
								   MyProcPort->sock,
								   HAND_OVER_RETRY_MS,
								   WAIT_EVENT_CLIENT_READ);
			if (rc & WL_LATCH_SET)
				ResetLatch(MyLatch);
			if (!(rc & WL_SOCKET_READABLE))
				continue;
		}
		MemoryContextReset(frame_cxt);
		initStringInfo(&msg);

		/* A cancel must not cut a message in half (as in COPY FROM STDIN). */
		HOLD_CANCEL_INTERRUPTS();
		pq_startmsgread();
		mtype = pq_getbyte();
		if (mtype == EOF)
			peer_gone();
		switch (mtype)
		{
			case 'd':			/* CopyData: one frame */
				maxlen = MR_WIRE_MAX_FRAME + 4;
				break;
			case 'c':			/* CopyDone */
			case 'f':			/* CopyFail */
			case 'H':			/* Flush */
			case 'S':			/* Sync */
			case 'X':			/* Terminate */
				maxlen = PQ_SMALL_MESSAGE_LIMIT;
				break;
			default:
				ereport(FATAL,
						(errcode(ERRCODE_PROTOCOL_VIOLATION),
						 errmsg("unexpected message type 0x%02X on a multiraft node link", mtype)));
				maxlen = 0;		/* keep the compiler quiet */
				break;
		}
		if (pq_getmessage(&msg, maxlen))
			ereport(FATAL,
					(errcode(ERRCODE_PROTOCOL_VIOLATION),
					 errmsg("broken message on a multiraft node link")));
		RESUME_CANCEL_INTERRUPTS();

		if (mtype == 'X')
			peer_gone();
		if (mtype == 'f')
			ereport(ERROR,
					(errcode(ERRCODE_QUERY_CANCELED),
					 errmsg("multiraft node link ended by the peer: %s",
							pq_getmsgstring(&msg))));
		if (mtype == 'c')
			break;
		if (mtype != 'd')
			continue;
		last_frame = GetCurrentTimestamp();

		/* The first rejection of a link is worth the log (a version skew, say). */
		r = door_admit(msg.data, msg.len, (uint32) from_node, &err);
		if (r != WIRE_OK)
			ereport(rejected++ == 0 ? LOG : DEBUG1,
					(errmsg("multiraft: dropped an invalid message from node %d: %s",
							from_node, err),
					 errhint("Further invalid messages on this link are counted in transport_rejected.")));
	}

	/* CopyDone both ways, then the CALL completes as usual. */
	pq_putemptymessage('c');
	MemoryContextSwitchTo(old);
	MemoryContextDelete(frame_cxt);
	PG_RETURN_VOID();
}
