/*
 * guc.c — definition of the multiraft.* configuration parameters.
 *
 * node_id, database and max_groups fix the identity and the shared-memory size of
 * this server, so they only change with a restart; timing and size limits reload
 * on SIGHUP.  node_conninfo may hold secrets (passfile, sslkey) and so is only
 * visible to superusers.
 */
#include "postgres.h"

#include "utils/guc.h"

#include "guc.h"

int			multiraft_node_id = 0;
char	   *multiraft_database = NULL;
int			multiraft_tick_interval_ms = 50;
int			multiraft_heartbeat_ticks = 2;
int			multiraft_election_ticks = 10;
int			multiraft_dead_ticks = 0;
int			multiraft_generated_id_window = 1000000;
int			multiraft_lagging_log_per_group_kb = 8 * 1024;
int			multiraft_lagging_log_kb = 256 * 1024;
int			multiraft_restart_wakes_per_tick = 1000;
int			multiraft_max_command_size = 1024 * 1024;
int			multiraft_max_groups = 100000;
double		multiraft_notify_queue_max_usage = 0.5;
char	   *multiraft_node_conninfo = NULL;

static bool
check_node_conninfo(char **newval, void **extra, GucSource source)
{
	/*
	 * Only libpq options that shape authentication and encryption are allowed:
	 * the address a worker connects to always comes from multiraft.nodes.
	 */
	static const char *const allowed[] = {
		"user", "sslmode", "sslcert", "sslkey", "sslrootcert", "sslcrl",
		"sslpassword", "passfile", "connect_timeout", "keepalives",
		"keepalives_idle", "keepalives_interval", "keepalives_count",
		"tcp_user_timeout", "application_name", NULL
	};
	char	   *s = *newval;

	if (s == NULL || *s == '\0')
		return true;
	for (;;)
	{
		char		key[64];
		int			n = 0;
		bool		ok = false;

		while (*s == ' ' || *s == '\t' || *s == '\n')
			s++;
		if (*s == '\0')
			return true;
		while (*s && *s != '=' && *s != ' ' && n < (int) sizeof(key) - 1)
			key[n++] = *s++;
		key[n] = '\0';
		while (*s == ' ')
			s++;
		if (*s != '=')
		{
			GUC_check_errdetail("Expected \"key=value\" pairs.");
			return false;
		}
		s++;
		for (int i = 0; allowed[i]; i++)
			if (strcmp(key, allowed[i]) == 0)
				ok = true;
		if (!ok)
		{
			GUC_check_errdetail("Option \"%s\" is not allowed in multiraft.node_conninfo; "
								"host, port and dbname come from multiraft.nodes.", key);
			return false;
		}
		while (*s == ' ')
			s++;
		if (*s == '\'')
		{
			s++;
			while (*s && *s != '\'')
			{
				if (*s == '\\' && s[1])
					s++;
				s++;
			}
			if (*s != '\'')
			{
				GUC_check_errdetail("Unterminated quoted string.");
				return false;
			}
			s++;
		}
		else
			while (*s && *s != ' ' && *s != '\t' && *s != '\n')
				s++;
	}
}

void
multiraft_define_gucs(void)
{
	DefineCustomIntVariable("multiraft.node_id",
							"Identity of this server in the multiraft cluster.",
							"Unique in the cluster, 1..2147483647; 0 means unset.",
							&multiraft_node_id, 0, 0, PG_INT32_MAX,
							PGC_POSTMASTER, 0, NULL, NULL, NULL);
	DefineCustomStringVariable("multiraft.database",
							   "Database that holds CREATE EXTENSION multiraft.",
							   NULL, &multiraft_database, "postgres",
							   PGC_POSTMASTER, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("multiraft.tick_interval",
							"Interval between raft ticks.", NULL,
							&multiraft_tick_interval_ms, 50, 1, 60000,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomIntVariable("multiraft.heartbeat_ticks",
							"Ticks between leader heartbeats.", NULL,
							&multiraft_heartbeat_ticks, 2, 1, 1000,
							PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("multiraft.election_ticks",
							"Minimum election timeout in ticks (randomized up to twice that).",
							NULL, &multiraft_election_ticks, 10, 2, 100000,
							PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("multiraft.dead_ticks",
							"Ticks of silence after which a peer node counts as down and the idle groups it leads elect a new leader.",
							"0 means the election timeout; never less than that. Raise it on servers that stall longer than an election timeout.",
							&multiraft_dead_ticks, 0, 0, 1000000,
							PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("multiraft.generated_id_window",
							"Log entries within which a command submitted without a command_id must commit.",
							"A copy that commits later is not applied and the submit fails (safe to retry); the proposing node's session is kept in the group's state that long.",
							&multiraft_generated_id_window, 1000000, 16, PG_INT32_MAX,
							PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("multiraft.lagging_log_per_group",
							"Log a leader keeps in memory past the 1,000-entry retention window for a member that is alive but behind, per group.",
							"A member further behind, or one whose node went silent, catches up by a snapshot, and skips the events of the entries it covers. Takes effect at once.",
							&multiraft_lagging_log_per_group_kb, 8 * 1024, 1, PG_INT32_MAX,
							PGC_SIGHUP, GUC_UNIT_KB, NULL, NULL, NULL);
	DefineCustomIntVariable("multiraft.lagging_log",
							"Log this node's leaders keep in memory past their retention windows for lagging members, all groups together.",
							"Past it, a lagging member gets a snapshot as if past multiraft.lagging_log_per_group. multiraft.stats shows the amount kept as log_bytes_retained. Takes effect at once.",
							&multiraft_lagging_log_kb, 256 * 1024, 1, PG_INT32_MAX,
							PGC_SIGHUP, GUC_UNIT_KB, NULL, NULL, NULL);
	DefineCustomIntVariable("multiraft.restart_wakes_per_tick",
							"Groups that wake per tick after the worker restores them, or to catch up a node back from down.",
							"Restored groups sleep until their turn (or their first message or request); fewer per tick make shorter ticks and a longer wave. Takes effect at once.",
							&multiraft_restart_wakes_per_tick, 1000, 1, 10000000,
							PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("multiraft.max_command_size",
							"Largest command payload accepted by submit.", NULL,
							&multiraft_max_command_size, 1024 * 1024, 0, 64 * 1024 * 1024,
							PGC_SIGHUP, GUC_UNIT_BYTE, NULL, NULL, NULL);
	DefineCustomIntVariable("multiraft.max_groups",
							"Largest number of groups with a replica on this node.", NULL,
							&multiraft_max_groups, 100000, 1, 10000000,
							PGC_POSTMASTER, 0, NULL, NULL, NULL);
	DefineCustomRealVariable("multiraft.notify_queue_max_usage",
							 "Fill level of the NOTIFY queue above which the worker records events without notifying.",
							 "A fraction of the queue's capacity, as pg_notification_queue_usage() shows it. A session that listens and stays idle in a transaction fills the queue; a full queue would make every batch of the worker fail. 1 never stops notifying.",
							 &multiraft_notify_queue_max_usage, 0.5, 0.0, 1.0,
							 PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomStringVariable("multiraft.node_conninfo",
							   "Extra libpq options for node-to-node connections.",
							   "Allowed: user, sslmode, sslcert, sslkey, sslrootcert, passfile and similar.",
							   &multiraft_node_conninfo, "",
							   PGC_SIGHUP, GUC_SUPERUSER_ONLY,
							   check_node_conninfo, NULL, NULL);
	MarkGUCPrefixReserved("multiraft");
}

void
multiraft_require_node_id(void)
{
	if (multiraft_node_id <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("multiraft.node_id is not set"),
				 errhint("Set multiraft.node_id in postgresql.conf and restart the server.")));
}
