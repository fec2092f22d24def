/*
 * worker_node.c — the multi-raft node inside the worker: its memory, its creation
 * from the tables, the requests of backends turned into mr_* calls, the requests
 * in flight, their completions, and what the worker publishes for SQL to read.
 */
#include "postgres.h"

#include "access/xact.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "port/pg_bswap.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "guc.h"
#include "shmem.h"
#include "storage.h"
#include "transport.h"
#include "worker_internal.h"

struct mr_node *worker_node = NULL;

/* All memory of the layer: one context, so a node is freed (or measured) at once. */
static MemoryContext node_cxt = NULL;
static struct raft_allocator node_allocator;

/* Requests handed to the layer and not completed yet (failed if the node stops). */
typedef struct InFlight
{
	uint64		token;			/* hash key */
} InFlight;
static HTAB *in_flight = NULL;

static struct mr_counters last_counters;
static uint64 generated_ids = 0;

/*
 * Allocator over node_cxt.  The layer expects malloc semantics: NULL on failure
 * (it then returns MR_ENOMEM) rather than an ERROR unwinding through it, and a
 * realloc that knows the old size — so each block carries its size in front.
 */
#define HDR MAXALIGN(sizeof(Size))

static void *
node_malloc(void *ctx, size_t n)
{
	char	   *p = MemoryContextAllocExtended((MemoryContext) ctx, HDR + n,
											   MCXT_ALLOC_HUGE | MCXT_ALLOC_NO_OOM);

	if (p == NULL)
		return NULL;
	*(Size *) p = n;
	return p + HDR;
}

static void
node_free(void *ctx, void *p)
{
	if (p != NULL)
		pfree((char *) p - HDR);
}

static void *
node_realloc(void *ctx, void *p, size_t n)
{
	void	   *q;
	Size		old;

	if (p == NULL)
		return node_malloc(ctx, n);
	old = *(Size *) ((char *) p - HDR);
	q = node_malloc(ctx, n);
	if (q == NULL)
		return NULL;
	memcpy(q, p, Min(old, n));
	node_free(ctx, p);
	return q;
}

static uint64
random_seed(void)
{
	uint64		seed;

	if (!pg_strong_random(&seed, sizeof(seed)))
		seed = (uint64) GetCurrentTimestamp() ^ ((uint64) MyProcPid << 32);
	return seed;
}

/* The settings the node is built from (the GUCs that size its timers and bounds). */
static struct mr_config built_from;

static void
node_settings(struct mr_config *cfg)
{
	cfg->election_ticks = (uint32) multiraft_election_ticks;
	cfg->heartbeat_ticks = (uint32) multiraft_heartbeat_ticks;
	cfg->max_groups = (uint32) multiraft_max_groups;

	cfg->dead_ticks = (uint32) multiraft_dead_ticks;
	cfg->generated_id_window = (uint64) multiraft_generated_id_window;
	cfg->log_retention_bytes = (uint64) multiraft_lagging_log_per_group_kb * 1024;
	cfg->log_retention_bytes_total = (uint64) multiraft_lagging_log_kb * 1024;
	cfg->restart_wakes_per_tick = (uint32) multiraft_restart_wakes_per_tick;
}

/* The tick length the layer's request deadlines are counted in (deadline_ticks). */
static int	deadline_tick_ms = 0;

/* Applies the settings a running node takes without a rebuild (after a reload). */
void
worker_node_apply_live_settings(void)
{
	struct mr_config now;
	int			tick_ms = Max(multiraft_tick_interval_ms, 1);

	if (worker_node == NULL)
		return;
	memset(&now, 0, sizeof(now));
	node_settings(&now);
	mr_set_log_retention_bytes(worker_node, now.log_retention_bytes,
							   now.log_retention_bytes_total);
	mr_set_restart_wakes_per_tick(worker_node, now.restart_wakes_per_tick);
	/*
	 * A request's deadline went to the layer in ticks of the interval then: a
	 * shorter one made it pass early, and the call failed "timed out after N
	 * ms" long before N ms, although its command could still commit (found by
	 * a review; TAP 052).
	 */
	if (deadline_tick_ms > 0 && tick_ms != deadline_tick_ms)
		mr_rescale_deadlines(worker_node, (uint32) deadline_tick_ms, (uint32) tick_ms);
	deadline_tick_ms = tick_ms;
}

bool
worker_node_settings_changed(void)
{
	struct mr_config now;

	memset(&now, 0, sizeof(now));
	node_settings(&now);
	return worker_node != NULL &&
		(now.election_ticks != built_from.election_ticks ||
		 now.heartbeat_ticks != built_from.heartbeat_ticks ||
		 now.dead_ticks != built_from.dead_ticks ||
		 now.generated_id_window != built_from.generated_id_window);
}

bool
worker_node_start(void)
{
	struct mr_config cfg;
	int			rc = MR_OK;
	int			ngroups = 0,
				ntomb = 0;

	Assert(worker_node == NULL);
	if (node_cxt == NULL)
		node_cxt = AllocSetContextCreate(TopMemoryContext, "multiraft node",
										 ALLOCSET_DEFAULT_SIZES);
	if (in_flight == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(uint64);
		ctl.entrysize = sizeof(InFlight);
		ctl.hcxt = TopMemoryContext;
		in_flight = hash_create("multiraft requests in flight", 256, &ctl,
								HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	node_allocator.ctx = node_cxt;
	node_allocator.malloc = node_malloc;
	node_allocator.realloc = node_realloc;
	node_allocator.free = node_free;

	memset(&cfg, 0, sizeof(cfg));
	cfg.node_id = (mr_node_id) multiraft_node_id;
	cfg.allocator = &node_allocator;
	storage_callbacks(&cfg.storage);
	cfg.seed = random_seed();
	/* A new session for the commands without a command_id at every build of the
	 * node (a start, or new settings): 64 random bits never meet an earlier one. */
	cfg.session_epoch = random_seed();
	node_settings(&cfg);
	memset(&built_from, 0, sizeof(built_from));
	node_settings(&built_from);
	/* the layer keeps heartbeats within half an election timeout (mr_node.c) */
	if (multiraft_heartbeat_ticks > multiraft_election_ticks / 2)
		ereport(WARNING,
				(errmsg("multiraft.heartbeat_ticks (%d) is more than half of multiraft.election_ticks (%d): using %d",
						multiraft_heartbeat_ticks, multiraft_election_ticks,
						Max(multiraft_election_ticks / 2, 1)),
				 errdetail("Followers would time out between two heartbeats and elect again and again.")));

	worker_node = mr_node_new(&cfg, &rc);
	if (worker_node == NULL)
		elog(ERROR, "multiraft: could not create the multi-raft node: %s", mr_strerror(rc));

	PG_TRY();
	{
		SetCurrentStatementStartTimestamp();
		StartTransactionCommand();
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "multiraft: SPI_connect failed");
		PushActiveSnapshot(GetTransactionSnapshot());
		storage_load(worker_node, &ngroups, &ntomb);
		transport_reload_nodes();
		PopActiveSnapshot();
		SPI_finish();
		CommitTransactionCommand();
	}
	PG_CATCH();
	{
		mr_node_free(worker_node);
		worker_node = NULL;
		MemoryContextReset(node_cxt);
		PG_RE_THROW();
	}
	PG_END_TRY();

	/*
	 * multiraft.max_groups was lowered below what the node holds: the groups
	 * past it would run while the status rows (sized by it at server start)
	 * cannot show them, so that every SQL function says they do not exist.
	 */
	if (ngroups > multiraft_max_groups)
	{
		mr_node_free(worker_node);
		worker_node = NULL;
		MemoryContextReset(node_cxt);
		ereport(LOG,
				(errmsg("multiraft worker idle: node %d holds %d groups, more than multiraft.max_groups (%d)",
						multiraft_node_id, ngroups, multiraft_max_groups),
				 errhint("Raise multiraft.max_groups to at least %d and restart the server.", ngroups)));
		return false;
	}
	mr_get_counters(worker_node, &last_counters);
	deadline_tick_ms = Max(multiraft_tick_interval_ms, 1);
	status_clear();
	worker_publish_all_groups();
	ereport(LOG, (errmsg("multiraft worker restored %d groups and %d tombstones",
						 ngroups, ntomb)));
	return true;
}

void
worker_node_stop(MultiraftResult result, const char *detail)
{
	HASH_SEQ_STATUS seq;
	InFlight   *f;

	if (worker_node != NULL)
		mr_node_free(worker_node);
	worker_node = NULL;
	if (node_cxt != NULL)
		MemoryContextReset(node_cxt);
	if (in_flight != NULL)
	{
		hash_seq_init(&seq, in_flight);
		while ((f = hash_seq_search(&seq)) != NULL)
		{
			(void) requests_complete(f->token, result, 0, detail);
			(void) hash_search(in_flight, &f->token, HASH_REMOVE, NULL);
		}
	}
	status_clear();
}

/* ---------------------------------------------------------------- requests */

/*
 * The detail for an error result (requests_backend.c words the SPEC message
 * itself from the result category; the detail only adds what the category does
 * not say).
 */
static const char *
detail_of(int rc)
{
	switch (rc)
	{
		case MR_EINVAL:
		case MR_EBADCONF:
		case MR_ETOOBIG:
		case MR_ENOMEM:
		case MR_ENOTLEADER:
		case MR_EBUSY:
		case MR_ESTORAGE:
		case MR_ECORRUPT:
			return mr_strerror(rc);
		case MR_EFULL:
			/* the backend checked too, but concurrent creates all passed */
			return psprintf("node %d already has multiraft.max_groups (%d) groups",
							multiraft_node_id, multiraft_max_groups);
		default:
			return NULL;
	}
}

/* Ticks until the backend stops waiting (at least one), for the layer's deadline. */
static uint32
deadline_ticks(const MultiraftRequest *req)
{
	long		secs;
	int			usecs;
	int64		ms;
	int64		ticks;

	TimestampDifference(GetCurrentTimestamp(), req->deadline, &secs, &usecs);
	ms = (int64) secs * 1000 + usecs / 1000;
	ticks = ms / Max(multiraft_tick_interval_ms, 1) + 2;
	return (uint32) Min(ticks, (int64) PG_UINT32_MAX);
}

static int
change_type_of(MultiraftChangeType t)
{
	switch (t)
	{
		case REQ_CHANGE_ADD_VOTER:
			return MR_CHANGE_ADD_VOTER;
		case REQ_CHANGE_REMOVE_VOTER:
			return MR_CHANGE_REMOVE_VOTER;
		case REQ_CHANGE_ADD_LEARNER:
			return MR_CHANGE_ADD_LEARNER;
		default:
			return 0;
	}
}

void
worker_handle_request(MultiraftRequest *req, void *arg)
{
	mr_group_id group = (mr_group_id) req->group_id;
	const char *cid = req->command_id;
	size_t		cid_len = req->command_id_len;
	char		gen[64];
	int			rc;

	if (worker_node == NULL)
	{
		(void) requests_complete(req->token, MR_RESULT_STOPPED, 0, NULL);
		return;
	}
	if (cid_len == 0 && (req->type == MR_REQ_SUBMIT || req->type == MR_REQ_CHANGE_MEMBERSHIP))
	{
		/* No id given: a fresh one, unique across restarts of this node. */
		snprintf(gen, sizeof(gen), "%d-w" INT64_FORMAT "-" UINT64_FORMAT,
				 multiraft_node_id, (int64) MyStartTimestamp, ++generated_ids);
		cid = gen;
		cid_len = strlen(gen);
	}

	switch (req->type)
	{
		case MR_REQ_CREATE_GROUP:
			{
				mr_node_id members[MR_MAX_MEMBERS];
				int			n = Min(req->nmembers, (int) MR_MAX_MEMBERS);

				for (int i = 0; i < n; i++)
					members[i] = (mr_node_id) req->members[i];
				rc = mr_create_group(worker_node, group, members, (size_t) n, req->token);
				break;
			}
		case MR_REQ_REMOVE_GROUP:
			rc = mr_remove_group(worker_node, group, req->token, deadline_ticks(req));
			break;
		case MR_REQ_SUBMIT:
			/* A generated id's dedup record is bounded (mr_propose_generated). */
			rc = (req->command_id_generated ? mr_propose_generated : mr_propose)
				(worker_node, group, req->token, cid, cid_len,
				 req->payload, req->payload_len, deadline_ticks(req));
			break;
		case MR_REQ_CHANGE_MEMBERSHIP:
			rc = mr_propose_conf_change(worker_node, group, req->token,
										change_type_of(req->change_type),
										(mr_node_id) req->node_id, cid, cid_len,
										req->command_id_generated || cid == gen,
										req->payload, req->payload_len,
										deadline_ticks(req));
			break;
		case MR_REQ_TRANSFER_LEADERSHIP:
			rc = mr_transfer_leadership(worker_node, group, (mr_node_id) req->node_id,
										req->token, deadline_ticks(req));
			break;
		case MR_REQ_READ_INDEX:
			rc = mr_read_index(worker_node, group, req->token, deadline_ticks(req));
			break;
		default:
			rc = MR_EINVAL;
			break;
	}

	if (rc == MR_OK)
		(void) hash_search(in_flight, &req->token, HASH_ENTER, NULL);
	else
		(void) requests_complete(req->token, requests_result_from_mr(rc), 0,
								 detail_of(rc));
}

void
worker_complete(const struct mr_completion *c, size_t n)
{
	for (size_t i = 0; i < n; i++)
	{
		(void) hash_search(in_flight, &c[i].token, HASH_REMOVE, NULL);
		(void) requests_complete(c[i].token,
								 requests_result_from_mr(c[i].result),
								 c[i].index, detail_of(c[i].result));
	}
}

void
worker_receive_envelope(const struct mr_envelope *env, void *arg)
{
	int			rc;

	if (worker_node == NULL)
		return;
	rc = mr_receive(worker_node, env);
	if (rc != MR_OK)
		elog(DEBUG1, "multiraft: envelope from node %u refused: %s",
			 env->from_node, mr_strerror(rc));
}

/* ---------------------------------------------------------------- status */

/* The link to node_id is down: the leaders here stop pipelining to it (they probe
 * it once per heartbeat until it answers again). */
void
worker_report_unreachable(int32 node_id, void *arg)
{
	(void) arg;
	if (worker_node != NULL && node_id > 0)
		(void) mr_report_unreachable(worker_node, (mr_node_id) node_id);
}

void
worker_publish_groups(const mr_group_id *groups, size_t n)
{
	for (size_t i = 0; i < n; i++)
	{
		struct mr_group_status st;

		if (i > 0 && groups[i] == groups[i - 1])
			continue;
		if (worker_node != NULL && mr_group_status(worker_node, groups[i], &st) == MR_OK)
		{
			if (!status_publish_mr(&st))
				elog(WARNING, "multiraft: status of group " UINT64_FORMAT " not published (multiraft.max_groups reached)",
					 (uint64) groups[i]);
		}
		else
			status_remove((int64) groups[i]);
	}
}

static int
publish_one(void *arg, const struct mr_group_status *st)
{
	(void) status_publish_mr(st);
	return 0;
}

void
worker_publish_all_groups(void)
{
	if (worker_node != NULL)
		(void) mr_foreach_group(worker_node, publish_one, NULL);
}

/*
 * Messages refused because they would have replaced a replica whose map binds the
 * sender's or the addressed replica id to another node (mr_receive.c): another
 * group under the same id, created on two nodes.  No node can refuse the second
 * create_group alone, so the operator hears of it here, at most once a minute.
 */
static void
warn_conflicts(uint64 n)
{
	static TimestampTz last_warned = 0;
	static uint64 unwarned = 0;
	TimestampTz now = GetCurrentTimestamp();

	unwarned += n;
	if (last_warned != 0 && !TimestampDifferenceExceeds(last_warned, now, 60 * 1000))
		return;
	ereport(WARNING,
			(errmsg_plural("multiraft: refused " UINT64_FORMAT " message for group " UINT64_FORMAT " (and maybe others) whose replica ids contradict this node's replica of the group",
						   "multiraft: refused " UINT64_FORMAT " messages for group " UINT64_FORMAT " (and maybe others) whose replica ids contradict this node's replica of the group",
						   (unsigned long) Min(unwarned, ULONG_MAX),
						   unwarned, (uint64) mr_last_conflict(worker_node)),
			 errdetail("The messages come from another group under the same id: it was created on two nodes before either learned of the other."),
			 errhint("multiraft.create_group is called once per group id, on one member. The two groups do not merge: each node keeps the replica it has; multiraft.stats counts the refused messages as replica_conflicts.")));
	last_warned = now;
	unwarned = 0;
}

/* The layer's counters that are each published as one multiraft.stats row. */
static const struct
{
	size_t		field;			/* offsetof(struct mr_counters, ...) */
	MultiraftCounter counter;
}			one_to_one[] =
{
	{offsetof(struct mr_counters, entries_appended), MR_CTR_ENTRIES_APPENDED},
	{offsetof(struct mr_counters, entries_applied), MR_CTR_ENTRIES_APPLIED},
	{offsetof(struct mr_counters, snapshots_sent), MR_CTR_SNAPSHOTS_SENT},
	{offsetof(struct mr_counters, snapshots_applied), MR_CTR_SNAPSHOTS_APPLIED},
	{offsetof(struct mr_counters, proposals), MR_CTR_PROPOSALS},
	{offsetof(struct mr_counters, held_commands), MR_CTR_HELD_COMMANDS},
	/* Raft-level traffic (the transport counts frames and exact wire bytes) */
	{offsetof(struct mr_counters, messages_sent), MR_CTR_MESSAGES_SENT},
	{offsetof(struct mr_counters, messages_received), MR_CTR_MESSAGES_RECEIVED},
	/* messages_sent by kind */
	{offsetof(struct mr_counters, appends_sent), MR_CTR_APPENDS_SENT},
	{offsetof(struct mr_counters, empty_appends_sent), MR_CTR_EMPTY_APPENDS_SENT},
	{offsetof(struct mr_counters, append_responses_sent), MR_CTR_APPEND_RESPONSES_SENT},
	{offsetof(struct mr_counters, durable_notices_sent), MR_CTR_DURABLE_NOTICES_SENT},
	{offsetof(struct mr_counters, proposals_forwarded), MR_CTR_PROPOSALS_FORWARDED},
	{offsetof(struct mr_counters, bytes_sent), MR_CTR_BYTES_SENT},
	{offsetof(struct mr_counters, bytes_received), MR_CTR_BYTES_RECEIVED},
	{offsetof(struct mr_counters, envelopes_sent), MR_CTR_BATCHES_SENT},
	{offsetof(struct mr_counters, envelopes_received), MR_CTR_BATCHES_RECEIVED},
	{offsetof(struct mr_counters, dropped), MR_CTR_MESSAGES_DROPPED},
	{offsetof(struct mr_counters, groups_refused), MR_CTR_GROUPS_REFUSED},
	{offsetof(struct mr_counters, slept_without_quorum), MR_CTR_GROUPS_SLEPT_WITHOUT_QUORUM},
};

static uint64
counter_at(const struct mr_counters *c, size_t field)
{
	uint64		v;

	memcpy(&v, (const char *) c + field, sizeof(v));
	return v;
}

void
worker_publish_counters(void)
{
	struct mr_counters c;

	if (worker_node == NULL)
		return;
	mr_get_counters(worker_node, &c);
	for (size_t i = 0; i < lengthof(one_to_one); i++)
	{
		uint64		d = counter_at(&c, one_to_one[i].field) -
			counter_at(&last_counters, one_to_one[i].field);

		if (d)
			status_counter_add(one_to_one[i].counter, d);
	}
#define DELTA(field) (c.field - last_counters.field)
	/* Coalesced heartbeat entries, both directions; two names for the sent ones. */
	if (DELTA(heartbeats_sent) + DELTA(heartbeat_resps_sent))
	{
		status_counter_add(MR_CTR_HEARTBEATS_SENT,
						   DELTA(heartbeats_sent) + DELTA(heartbeat_resps_sent));
		status_counter_add(MR_CTR_HEARTBEAT_ENTRIES_COALESCED,
						   DELTA(heartbeats_sent) + DELTA(heartbeat_resps_sent));
	}
	if (DELTA(heartbeats_received) + DELTA(heartbeat_resps_received))
		status_counter_add(MR_CTR_HEARTBEATS_RECEIVED,
						   DELTA(heartbeats_received) + DELTA(heartbeat_resps_received));
	if (DELTA(conflicts))
	{
		status_counter_add(MR_CTR_REPLICA_CONFLICTS, DELTA(conflicts));
		warn_conflicts(DELTA(conflicts));
	}
#undef DELTA
	last_counters = c;
	status_retained_set(mr_retained_bytes(worker_node));
}
