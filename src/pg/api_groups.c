/*
 * api_groups.c — SQL functions that manage groups (SPEC.md "Groups and
 * commands"): create_group, remove_group, change_membership and
 * transfer_leadership.
 *
 * Each checks its arguments, the node registry and the published status here,
 * then hands one request to the worker and waits for its outcome
 * (requests_backend.c).  Nothing is changed by a call that fails a check.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"

#include "api_args.h"
#include "guc.h"
#include "requests.h"
#include "shmem.h"
#include "status.h"

PG_FUNCTION_INFO_V1(multiraft_create_group);
PG_FUNCTION_INFO_V1(multiraft_remove_group);
PG_FUNCTION_INFO_V1(multiraft_change_membership);
PG_FUNCTION_INFO_V1(multiraft_transfer_leadership);

/* The members array as node ids, each checked; returns the count. */
static int
members_arg(FunctionCallInfo fcinfo, int n, int64 group_id, int32 *members)
{
	ArrayType  *arr;
	Datum	   *elems;
	bool	   *nulls;
	int			count;
	bool		self = false;

	api_require_arg(fcinfo, n, "members");
	arr = PG_GETARG_ARRAYTYPE_P(n);
	if (ARR_NDIM(arr) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("members must be a one-dimensional array")));
	deconstruct_array(arr, INT4OID, sizeof(int32), true, TYPALIGN_INT,
					  &elems, &nulls, &count);
	if (count == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("members must not be empty")));
	if (count > MULTIRAFT_MAX_MEMBERS)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("group " INT64_FORMAT " would have %d members", group_id, count),
				 errdetail("A group has at most %d members.", MULTIRAFT_MAX_MEMBERS)));
	for (int i = 0; i < count; i++)
	{
		int32		id;

		if (nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("members must not contain NULL")));
		id = DatumGetInt32(elems[i]);
		if (id <= 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("node %d is out of range", id),
					 errdetail("Node ids are between 1 and 2147483647.")));
		for (int j = 0; j < i; j++)
			if (members[j] == id)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("node %d appears more than once in members", id)));
		members[i] = id;
		self |= id == multiraft_node_id;
	}
	if (!self)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("node %d is not in members of group " INT64_FORMAT,
						multiraft_node_id, group_id),
				 errhint("Call create_group on a node that is one of the members.")));
	return count;
}

Datum
multiraft_create_group(PG_FUNCTION_ARGS)
{
	MultiraftRequest req;

	api_request_init(fcinfo, MR_REQ_CREATE_GROUP, &req);
	req.nmembers = members_arg(fcinfo, 1, req.group_id, req.members);
	for (int i = 0; i < req.nmembers; i++)
		api_require_registered(req.members[i]);

	multiraft_require_worker();
	if (status_lookup(req.group_id, NULL))
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_OBJECT),
				 errmsg("group " INT64_FORMAT " already exists", req.group_id)));
	if (status_group_count() >= multiraft_max_groups)
		ereport(ERROR,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("node %d already has multiraft.max_groups (%d) groups",
						multiraft_node_id, multiraft_max_groups)));

	req.timeout_ms = MR_ADMIN_TIMEOUT_MS;
	(void) requests_call(&req, NULL, 0);
	PG_RETURN_VOID();
}

Datum
multiraft_remove_group(PG_FUNCTION_ARGS)
{
	MultiraftRequest req;

	api_request_init(fcinfo, MR_REQ_REMOVE_GROUP, &req);

	multiraft_require_worker();
	api_require_group(req.group_id, NULL);

	req.timeout_ms = MR_ADMIN_TIMEOUT_MS;
	(void) requests_call(&req, NULL, 0);
	PG_RETURN_VOID();
}

static int
change_type_arg(FunctionCallInfo fcinfo, int n)
{
	char	   *s;

	api_require_arg(fcinfo, n, "change_type");
	s = text_to_cstring(PG_GETARG_TEXT_PP(n));
	if (strcmp(s, "add_voter") == 0)
		return MR_CHANGE_ADD_VOTER;
	if (strcmp(s, "remove_voter") == 0)
		return MR_CHANGE_REMOVE_VOTER;
	if (strcmp(s, "add_learner") == 0)
		return MR_CHANGE_ADD_LEARNER;
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("invalid change_type \"%s\"", s),
			 errhint("Use add_voter, remove_voter or add_learner.")));
	return 0;					/* keep compiler quiet */
}

/* change_membership(group_id, change_type, node_id, payload, command_id, timeout_ms) */
Datum
multiraft_change_membership(PG_FUNCTION_ARGS)
{
	MultiraftRequest req;
	MultiraftGroupStatus st;
	bytea	   *payload;
	uint64		index;

	api_request_init(fcinfo, MR_REQ_CHANGE_MEMBERSHIP, &req);
	req.change_type = change_type_arg(fcinfo, 1);
	req.node_id = api_node_id_arg(fcinfo, 2, "node_id");
	payload = api_payload_arg(fcinfo, 3, "payload", true);
	api_command_id_arg(fcinfo, 4, &req);
	req.timeout_ms = api_timeout_arg(fcinfo, 5);
	api_require_registered(req.node_id);

	multiraft_require_worker();
	api_require_group(req.group_id, &st);
	/*
	 * The worker refuses an addition to a full group too, as any invalid change:
	 * this only says why, early.  Under a caller's command_id it is left to the
	 * leader, like every verdict on a view: an earlier call under the same id may
	 * still commit (README, change_membership).
	 */
	if (req.command_id_generated &&
		req.change_type != MR_CHANGE_REMOVE_VOTER &&
		!status_list_has(st.voters, st.nvoters, req.node_id) &&
		!status_list_has(st.learners, st.nlearners, req.node_id) &&
		st.nvoters + st.nlearners >= MULTIRAFT_MAX_MEMBERS)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("group " INT64_FORMAT " already has %d members",
						req.group_id, st.nvoters + st.nlearners),
				 errdetail("A group has at most %d members.", MULTIRAFT_MAX_MEMBERS)));

	index = requests_call(&req,
						  payload ? VARDATA_ANY(payload) : NULL,
						  payload ? VARSIZE_ANY_EXHDR(payload) : 0);
	PG_RETURN_INT64((int64) index);
}

/* transfer_leadership(group_id, node_id, timeout_ms) */
Datum
multiraft_transfer_leadership(PG_FUNCTION_ARGS)
{
	MultiraftRequest req;

	api_request_init(fcinfo, MR_REQ_TRANSFER_LEADERSHIP, &req);
	req.node_id = api_node_id_arg(fcinfo, 1, "node_id");
	req.timeout_ms = api_timeout_arg(fcinfo, 2);
	api_require_registered(req.node_id);

	multiraft_require_worker();
	api_require_group(req.group_id, NULL);

	(void) requests_call(&req, NULL, 0);
	PG_RETURN_VOID();
}
