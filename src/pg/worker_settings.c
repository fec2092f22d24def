/*
 * worker_settings.c — the worker's own session settings.
 *
 * The worker logs into multiraft.database as the bootstrap superuser, so it takes
 * postgresql.conf's settings and every ALTER DATABASE / ALTER ROLE ... SET for that
 * database and role.  Some of them would make each batch fail — and a failed batch
 * makes the node reload from the tables, a second later, again and again — or
 * defeat its purpose.  Those are overridden for this process only, at start.  A
 * value set with PGC_S_OVERRIDE outranks the configuration file, so a reload
 * undoes none of them; only synchronous_commit, overridden just when it is off,
 * is looked at again after a reload.
 */
#include "postgres.h"

#include "access/xact.h"
#include "utils/guc.h"

#include "spi_guard.h"
#include "worker_internal.h"

/*
 * Durability is the point: votes and appends are acknowledged after the commit,
 * so the worker's commits must flush.  A server-wide synchronous_commit = off is
 * overridden (local, on, remote_* are all durable here).
 */
static void
ensure_synchronous_commit(void)
{
	if (synchronous_commit == SYNCHRONOUS_COMMIT_OFF)
		SetConfigOption("synchronous_commit", "on", PGC_SUSET, PGC_S_OVERRIDE);
}

/*
 * Settings an operator may give a database or a server for its users that the
 * worker cannot run under:
 *  - default_transaction_read_only: every batch writes (cannot execute INSERT in
 *    a read-only transaction);
 *  - default_transaction_isolation: the batch is written for READ COMMITTED; under
 *    SERIALIZABLE, a consumer's serializable transaction on multiraft.events could
 *    make it fail with a serialization error;
 *  - lock_timeout: a batch waits for the locks it needs (a request that holds one
 *    the worker waits for is found by requests_deadlock.c), and one cut short
 *    fails.  statement_timeout is set to 0 too, although PostgreSQL 15 arms it
 *    only for a client's statements, not for a worker's SPI calls.
 */
static void
override_session_guards(void)
{
	SetConfigOption("default_transaction_read_only", "off", PGC_SUSET, PGC_S_OVERRIDE);
	SetConfigOption("default_transaction_isolation", "read committed", PGC_SUSET,
					PGC_S_OVERRIDE);
	SetConfigOption("statement_timeout", "0", PGC_SUSET, PGC_S_OVERRIDE);
	SetConfigOption("lock_timeout", "0", PGC_SUSET, PGC_S_OVERRIDE);
}

/*
 * The worker's statements (storage_plans.c) are prepared once and run thousands
 * of times a second: plans are kept generic (no re-planning per execution), and
 * sequential scans are ruled out — every statement finds its rows by primary key
 * in tables that behave like queues (the log is mostly dead tuples between two
 * vacuums), whose statistics can make a full scan look cheap.
 */
static void
set_planner_options(void)
{
	SetConfigOption("plan_cache_mode", "force_generic_plan", PGC_SUSET, PGC_S_SESSION);
	SetConfigOption("enable_seqscan", "off", PGC_SUSET, PGC_S_SESSION);

	/*
	 * With enable_seqscan off, a statement that must scan anyway (a small table,
	 * a whole-table read at start-up) carries disable_cost and so crosses
	 * jit_above_cost: the worker then spent ~75% of its idle CPU compiling LLVM
	 * code for one-off statements (perf, 10,000 idle groups).  Its statements are
	 * short; JIT never pays off here.
	 */
	SetConfigOption("jit", "off", PGC_SUSET, PGC_S_SESSION);

	/*
	 * The worker runs as the bootstrap superuser: an operator or function its
	 * SQL does not name with a schema must not resolve to one a user created in
	 * a schema of the default search_path (an int || text operator in public
	 * made the worker run it, and any user who could create there became
	 * superuser).  See spi_guard.h.
	 */
	SetConfigOption("search_path", MULTIRAFT_SAFE_SEARCH_PATH, PGC_SUSET, PGC_S_OVERRIDE);
}

void
worker_settings_apply(void)
{
	ensure_synchronous_commit();
	override_session_guards();
	set_planner_options();
}

void
worker_settings_reassert(void)
{
	ensure_synchronous_commit();
}
