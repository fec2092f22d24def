/*
 * api_args.c — argument checks shared by the SQL functions (see api_args.h).
 */
#include "postgres.h"

#include "access/xact.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/builtins.h"

#include "api_args.h"
#include "guc.h"
#include "shmem.h"
#include "spi_guard.h"

void
api_require_arg(FunctionCallInfo fcinfo, int n, const char *name)
{
	if (PG_ARGISNULL(n))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be NULL", name)));
}

int64
api_group_id_arg(FunctionCallInfo fcinfo, int n)
{
	int64		group_id;

	api_require_arg(fcinfo, n, "group_id");
	group_id = PG_GETARG_INT64(n);
	if (group_id <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid group id " INT64_FORMAT, group_id),
				 errdetail("Group ids are between 1 and 9223372036854775807.")));
	return group_id;
}

void
api_request_init(FunctionCallInfo fcinfo, MultiraftRequestType type, MultiraftRequest *req)
{
	multiraft_require_node_id();
	memset(req, 0, sizeof(*req));
	req->type = type;
	req->group_id = api_group_id_arg(fcinfo, 0);
}

int32
api_node_id_arg(FunctionCallInfo fcinfo, int n, const char *name)
{
	int32		node_id;

	api_require_arg(fcinfo, n, name);
	node_id = PG_GETARG_INT32(n);
	if (node_id <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("node %d is out of range", node_id),
				 errdetail("Node ids are between 1 and 2147483647.")));
	return node_id;
}

int32
api_timeout_arg(FunctionCallInfo fcinfo, int n)
{
	int32		timeout_ms;

	api_require_arg(fcinfo, n, "timeout_ms");
	timeout_ms = PG_GETARG_INT32(n);
	if (timeout_ms <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("timeout_ms must be positive, not %d", timeout_ms)));
	return timeout_ms;
}

/*
 * Whether id has the form of a generated command id, "<node>-<n>-<16 hex>"
 * (requests_generate_command_id).  Such ids are refused from callers: the record
 * of a generated id is forgotten after multiraft.generated_id_window entries, so a
 * caller reusing one later could have its command applied twice.
 */
static bool
generated_form(const char *id, int len)
{
	int			i = 0;

	for (int part = 0; part < 2; part++)
	{
		int			start = i;

		while (i < len && id[i] >= '0' && id[i] <= '9')
			i++;
		if (i == start || i >= len || id[i] != '-')
			return false;
		i++;
	}
	if (len - i != 16)
		return false;
	for (; i < len; i++)
		if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f')))
			return false;
	return true;
}

void
api_command_id_arg(FunctionCallInfo fcinfo, int n, MultiraftRequest *req)
{
	text	   *t;
	int			len;

	if (PG_ARGISNULL(n))
	{
		requests_generate_command_id(req);
		return;
	}
	t = PG_GETARG_TEXT_PP(n);
	len = VARSIZE_ANY_EXHDR(t);
	if (len == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("command_id must not be empty"),
				 errhint("Pass NULL for a fresh unique command id.")));
	if (len > MR_MAX_COMMAND_ID)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("command_id is too long (%d bytes)", len),
				 errdetail("A command_id has at most %d bytes.", MR_MAX_COMMAND_ID)));
	if (generated_form(VARDATA_ANY(t), len))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("command_id \"%.*s\" has the form of a generated id", len, VARDATA_ANY(t)),
				 errdetail("Ids of the form <node>-<number>-<16 hex digits> are reserved for commands submitted without a command_id."),
				 errhint("Use another id, or NULL for a fresh one.")));
	memcpy(req->command_id, VARDATA_ANY(t), len);
	req->command_id[len] = '\0';
	req->command_id_len = len;
}

bytea *
api_payload_arg(FunctionCallInfo fcinfo, int n, const char *name, bool nullable)
{
	bytea	   *b;
	Size		len;

	if (PG_ARGISNULL(n))
	{
		if (!nullable)
			api_require_arg(fcinfo, n, name);
		return NULL;
	}
	b = PG_GETARG_BYTEA_PP(n);
	len = VARSIZE_ANY_EXHDR(b);
	if (len > (Size) multiraft_max_command_size)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("%s of %zu bytes exceeds multiraft.max_command_size (%d bytes)",
						name, len, multiraft_max_command_size)));
	return b;
}

void
api_require_registered(int32 node_id)
{
	int			level;
	Oid			types[1] = {INT4OID};
	Datum		values[1] = {Int32GetDatum(node_id)};
	bool		found;

	/*
	 * Callers are SECURITY DEFINER: multiraft.node is not readable by PUBLIC.
	 * The row is locked (FOR KEY SHARE) until the caller's transaction ends, so
	 * that a concurrent remove_node(), which locks it before it checks the
	 * groups, cannot remove the node between this check and the group or change
	 * this call makes (found by a review).  A read-only transaction takes no lock:
	 * its request is refused anyway (requests_backend.c).
	 */
	level = spi_guard_connect(0);
	if (SPI_execute_with_args(XactReadOnly
							  ? "SELECT 1 FROM multiraft.node WHERE node_id = $1"
							  : "SELECT 1 FROM multiraft.node WHERE node_id = $1 FOR KEY SHARE",
							  1, types, values, NULL, XactReadOnly, 1) != SPI_OK_SELECT)
		elog(ERROR, "multiraft: could not look up node %d", node_id);
	found = SPI_processed > 0;
	spi_guard_finish(level);
	if (!found)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("node %d is not registered", node_id),
				 errhint("Register it on this node with multiraft.add_node first.")));
}

void
api_require_group(int64 group_id, MultiraftGroupStatus *out)
{
	/*
	 * The worker publishes the status, clears it when it exits and publishes it
	 * again when it rebuilds its node: no status while none serves, or across a
	 * rebuild (a lookup in its cleared window, then a serving worker, called an
	 * existing group unknown; found by a review), is the SPEC's "raft processing
	 * stopped", not an unknown group.
	 */
	uint64		epoch = multiraft_require_worker();

	if (status_lookup(group_id, out))
		return;
	multiraft_require_same_worker(epoch);
	ereport(ERROR,
			(errcode(ERRCODE_UNDEFINED_OBJECT),
			 errmsg("group " INT64_FORMAT " does not exist", group_id),
			 errdetail("Node %d has no replica of group " INT64_FORMAT ".",
					   multiraft_node_id, group_id)));
}
