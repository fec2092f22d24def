/*
 * api_commands.c — SQL functions on a group's log (SPEC.md "Groups and
 * commands"): submit and read_index.
 */
#include "postgres.h"

#include "access/xact.h"

#include "fmgr.h"

#include "api_args.h"
#include "guc.h"
#include "requests.h"
#include "shmem.h"

PG_FUNCTION_INFO_V1(multiraft_submit);
PG_FUNCTION_INFO_V1(multiraft_read_index);

/* submit(group_id, command, command_id, timeout_ms) returns the log index */
Datum
multiraft_submit(PG_FUNCTION_ARGS)
{
	MultiraftRequest req;
	bytea	   *command;
	uint64		index;

	api_request_init(fcinfo, MR_REQ_SUBMIT, &req);
	command = api_payload_arg(fcinfo, 1, "command", false);
	api_command_id_arg(fcinfo, 2, &req);
	req.timeout_ms = api_timeout_arg(fcinfo, 3);

	multiraft_require_worker();
	api_require_group(req.group_id, NULL);

	index = requests_call(&req, VARDATA_ANY(command), VARSIZE_ANY_EXHDR(command));
	PG_RETURN_INT64((int64) index);
}

/* read_index(group_id, timeout_ms) returns an index applied here */
Datum
multiraft_read_index(PG_FUNCTION_ARGS)
{
	MultiraftRequest req;
	uint64		index;

	api_request_init(fcinfo, MR_REQ_READ_INDEX, &req);
	req.timeout_ms = api_timeout_arg(fcinfo, 1);

	/*
	 * The barrier is for what the caller reads next.  A transaction snapshot
	 * was taken before the call waited, so the rows applied meanwhile, up to
	 * the index returned, would stay invisible to it.
	 */
	if (IsolationUsesXactSnapshot())
		ereport(ERROR,
				(errcode(ERRCODE_ACTIVE_SQL_TRANSACTION),
				 errmsg("multiraft.read_index() cannot be used in a REPEATABLE READ or SERIALIZABLE transaction"),
				 errdetail("Its snapshot was taken before the read waited, so what was applied meanwhile stays invisible to it."),
				 errhint("Call it in a READ COMMITTED transaction, and read the applied state in later statements.")));

	multiraft_require_worker();
	api_require_group(req.group_id, NULL);

	index = requests_call(&req, NULL, 0);
	PG_RETURN_INT64((int64) index);
}
