/*
 * api_nodes.c — SQL functions for the node registry (SPEC.md "Nodes") and the
 * set-up check run by the extension script.
 */
#include "postgres.h"

#include <arpa/inet.h>

#include "commands/dbcommands.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/builtins.h"

#include "guc.h"
#include "shmem.h"
#include "spi_guard.h"

PG_FUNCTION_INFO_V1(multiraft_check_setup);
PG_FUNCTION_INFO_V1(multiraft_add_node);
PG_FUNCTION_INFO_V1(multiraft_remove_node);

/* Called by CREATE EXTENSION: multiraft lives in multiraft.database only. */
Datum
multiraft_check_setup(PG_FUNCTION_ARGS)
{
	char	   *dbname = get_database_name(MyDatabaseId);

	if (multiraft_database == NULL || strcmp(dbname, multiraft_database) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("multiraft can only be created in database \"%s\"",
						multiraft_database ? multiraft_database : ""),
				 errdetail("This is database \"%s\"; multiraft.database names the database the multiraft worker serves.",
						   dbname)));
	PG_RETURN_VOID();
}

static void
check_node_id_arg(int64 node_id)
{
	if (node_id < 1 || node_id > PG_INT32_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("node %lld is out of range", (long long) node_id),
				 errdetail("Node ids are between 1 and 2147483647.")));
}

/* An IP address or a Unix-socket directory: nothing to resolve. */
static bool
host_is_address(const char *host)
{
	unsigned char buf[sizeof(struct in6_addr)];

	return host[0] == '/' || host[0] == '@' ||
		inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
}

#define REQUIRE_ARG(n, name) \
	do { \
		if (PG_ARGISNULL(n)) \
			ereport(ERROR, \
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), \
					 errmsg("%s must not be NULL", name))); \
	} while (0)

Datum
multiraft_add_node(PG_FUNCTION_ARGS)
{
	int			level;
	int32		node_id;
	text	   *host;
	int32		port;
	Datum		values[4];
	char		nulls[4] = {' ', ' ', ' ', ' '};
	Oid			types[4] = {INT4OID, TEXTOID, INT4OID, TEXTOID};
	char	   *hoststr;

	multiraft_require_node_id();
	REQUIRE_ARG(0, "node_id");
	REQUIRE_ARG(1, "host");
	REQUIRE_ARG(2, "port");
	node_id = PG_GETARG_INT32(0);
	host = PG_GETARG_TEXT_PP(1);
	port = PG_GETARG_INT32(2);
	check_node_id_arg(node_id);
	hoststr = text_to_cstring(host);
	if (hoststr[0] == '\0' || strpbrk(hoststr, " \t\n'\\=") != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid host \"%s\" for node %d", hoststr, node_id),
				 errdetail("A host is a name, an IP address or a Unix-socket directory.")));
	if (port < 1 || port > 65535)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid port %d for node %d", port, node_id)));
	if (!host_is_address(hoststr))
		ereport(NOTICE,
				(errmsg("node %d is registered by host name \"%s\"", node_id, hoststr),
				 errdetail("libpq resolves a host name within the worker each time it connects, and every group on this server waits for the answer: a name server that does not answer stops them all."),
				 errhint("Register an IP address or a Unix-socket directory, or make sure the name resolves from /etc/hosts.")));

	values[0] = Int32GetDatum(node_id);
	values[1] = PointerGetDatum(host);
	values[2] = Int32GetDatum(port);
	if (PG_ARGISNULL(3))
		nulls[3] = 'n';
	else
	{
		char	   *db = text_to_cstring(PG_GETARG_TEXT_PP(3));

		if (db[0] == '\0')
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid empty dbname for node %d", node_id)));

		/*
		 * The worker logs into that database as multiraft.node_conninfo says —
		 * by default as the server's own operating-system user, a superuser —
		 * and calls multiraft.receive_stream there: in a database of its own,
		 * a role with multiraft_admin could define that procedure and run what
		 * it likes as a superuser.  Only a superuser names another database
		 * (GetOuterUserId: the caller, not this function's owner).
		 */
		if (strcmp(db, multiraft_database) != 0 && !superuser_arg(GetOuterUserId()))
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("only a superuser may register node %d under database \"%s\"",
							node_id, db),
					 errdetail("Other roles register nodes in the database named by multiraft.database (\"%s\"), which the workers log into to reach each other.",
							   multiraft_database),
					 errhint("Leave dbname NULL.")));
		values[3] = PG_GETARG_DATUM(3);
	}

	level = spi_guard_connect(0);
	if (SPI_execute_with_args(
							  "INSERT INTO multiraft.node (node_id, host, port, dbname) "
							  "VALUES ($1, $2, $3, $4) ON CONFLICT (node_id) DO UPDATE "
							  "SET host = EXCLUDED.host, port = EXCLUDED.port, dbname = EXCLUDED.dbname",
							  4, types, values, nulls, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "multiraft: could not register node %d", node_id);
	spi_guard_finish(level);

	/* The worker re-reads the registry; addresses take effect on reconnect. */
	multiraft_wake_worker();
	PG_RETURN_VOID();
}

Datum
multiraft_remove_node(PG_FUNCTION_ARGS)
{
	int			level;
	int32		node_id;
	uint64		epoch;
	Datum		values[1];
	Oid			types[1] = {INT4OID};

	multiraft_require_node_id();
	REQUIRE_ARG(0, "node_id");
	node_id = PG_GETARG_INT32(0);
	check_node_id_arg(node_id);
	values[0] = Int32GetDatum(node_id);

	/*
	 * Membership is read from the groups' published status, which is empty
	 * until the worker has restored them: before that, every node would look
	 * like a member of nothing.  A rebuild of the node (a failed batch, a
	 * reload of a setting it is built from) clears and publishes it again
	 * while the worker is not serving: the check below ran against one run's
	 * whole status only if the worker served the same run before and after
	 * (found by a review: a member was removed while the worker rebuilt).
	 */
	epoch = multiraft_require_worker();
	level = spi_guard_connect(0);

	/*
	 * The row first: a create_group() or change_membership() naming the node
	 * holds it (FOR KEY SHARE, api_require_registered) until its transaction
	 * ends, and the groups are checked after that.
	 */
	if (SPI_execute_with_args("SELECT 1 FROM multiraft.node WHERE node_id = $1 FOR UPDATE",
							  1, types, values, NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "multiraft: could not lock node %d", node_id);
	if (SPI_execute_with_args("SELECT 1 FROM multiraft.node_is_member($1) m WHERE m",
							  1, types, values, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "multiraft: could not check the groups of node %d", node_id);
	if (SPI_processed > 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_IN_USE),
				 errmsg("node %d is still a member of a group on this node", node_id),
				 errhint("Remove it from its groups with multiraft.change_membership first.")));
	if (SPI_execute_with_args("DELETE FROM multiraft.node WHERE node_id = $1",
							  1, types, values, NULL, false, 0) != SPI_OK_DELETE)
		elog(ERROR, "multiraft: could not remove node %d", node_id);
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("node %d is not registered", node_id)));
	multiraft_require_same_worker(epoch);
	spi_guard_finish(level);
	multiraft_wake_worker();
	PG_RETURN_VOID();
}
