/*
 * status.h — what the worker publishes for SQL to read: one status row per group
 * with a replica on this node (multiraft.status / multiraft.groups) and the
 * node-wide counters (multiraft.stats).
 *
 * The worker is the only writer of group rows (status_publish / status_remove):
 * every group at node start, then after each batch the groups it visited
 * (mr_batch.visited: a group whose status changes is visited, quiescing at a
 * tick included), so an idle node publishes nothing.  Backends read them under
 * MR_LOCK_STATUS.  Counters are atomics any process
 * may add to (the receive path runs in backends).
 *
 * The table is a fixed-capacity open-addressing hash in the "multiraft status"
 * part of shared memory (capacity multiraft.max_groups, known when shared memory
 * is sized); rows are kept dense so listing all groups costs only the rows there.
 */
#ifndef MULTIRAFT_STATUS_H
#define MULTIRAFT_STATUS_H

#include "multiraft.h"

/* Most voters, and most learners, of a group (rows store them inline): the
 * layer's MR_MAX_MEMBERS as an int (status.c checks they agree). */
#define MULTIRAFT_MAX_MEMBERS 16

typedef enum MultiraftRole
{
	MR_ROLE_FOLLOWER = 0,
	MR_ROLE_CANDIDATE,
	MR_ROLE_LEADER,
	MR_ROLE_LEARNER
} MultiraftRole;

typedef struct MultiraftGroupStatus
{
	int64		group_id;
	int32		node_id;		/* this node */
	int64		replica_id;
	MultiraftRole role;
	uint64		term;
	int32		leader_node_id; /* 0: no known leader (NULL in SQL) */
	uint64		commit_index;
	uint64		applied_index;
	uint64		first_index;
	uint64		last_index;
	int			nvoters;
	int32		voters[MULTIRAFT_MAX_MEMBERS]; /* node ids */
	int			nlearners;
	int32		learners[MULTIRAFT_MAX_MEMBERS];
	bool		quiesced;
} MultiraftGroupStatus;

/* Node-wide counters (multiraft.stats); names in status.c, same order. */
typedef enum MultiraftCounter
{
	MR_CTR_MESSAGES_SENT = 0,
	MR_CTR_MESSAGES_RECEIVED,
	MR_CTR_BYTES_SENT,
	MR_CTR_BYTES_RECEIVED,
	MR_CTR_BATCHES_SENT,
	MR_CTR_BATCHES_RECEIVED,
	MR_CTR_HEARTBEATS_SENT,
	MR_CTR_HEARTBEATS_RECEIVED,
	MR_CTR_HEARTBEAT_ENTRIES_COALESCED,
	MR_CTR_BATCHES_WRITTEN,
	MR_CTR_BATCHES_FLUSHED,
	MR_CTR_ENTRIES_APPENDED,
	MR_CTR_ENTRIES_APPLIED,
	MR_CTR_SNAPSHOTS_SENT,
	MR_CTR_SNAPSHOTS_APPLIED,
	MR_CTR_MESSAGES_DROPPED,
	MR_CTR_PROPOSALS,
	MR_CTR_ELECTIONS_STARTED,
	MR_CTR_LEADERS_ELECTED,
	MR_CTR_TICKS,
	MR_CTR_HELD_COMMANDS,
	MR_CTR_REPLICA_CONFLICTS,
	MR_CTR_APPENDS_SENT,
	MR_CTR_EMPTY_APPENDS_SENT,
	MR_CTR_APPEND_RESPONSES_SENT,
	MR_CTR_DURABLE_NOTICES_SENT,
	MR_CTR_PROPOSALS_FORWARDED,
	MR_CTR_GROUPS_REFUSED,
	MR_CTR_GROUPS_SLEPT_WITHOUT_QUORUM,
	MR_CTR_COUNT_
} MultiraftCounter;

/* ---- worker side ---- */

/* Insert or replace the row of s->group_id.  False (nothing stored) when
 * multiraft.max_groups rows exist already, or s lists more than
 * MULTIRAFT_MAX_MEMBERS voters or learners. */
extern bool status_publish(const MultiraftGroupStatus *s);
/* The same from the multi-raft layer's mr_group_status (role mapped: is_learner →
 * learner, pre-candidate → candidate). */
extern bool status_publish_mr(const struct mr_group_status *st);
/* Drop the row of group_id, if any. */
extern void status_remove(int64 group_id);
/* Drop every row and zero the gauges (a worker starting afresh republishes
 * what it loads). */
extern void status_clear(void);

extern void status_counter_add(MultiraftCounter c, uint64 delta);
/* The log bytes the worker's leaders keep past the retention window for lagging
 * members (mr_retained_bytes): a gauge, set at every publication. */
extern void status_retained_set(uint64 bytes);

/* ---- readers ---- */

/* Copy the row of group_id into *out; false if there is none. */
extern bool status_lookup(int64 group_id, MultiraftGroupStatus *out);
/* Whether node_id is in a row's list of n voters or learners. */
extern bool status_list_has(const int32 *list, int n, int32 node_id);
/* Whether node_id is a voter or learner of any group published here. */
extern bool status_node_is_member(int32 node_id);
extern int	status_group_count(void);
/* Copy every row into a palloc'd array; returns the count. */
extern int	status_snapshot(MultiraftGroupStatus **rows);
extern uint64 status_counter_get(MultiraftCounter c);
extern uint64 status_retained_get(void);
extern const char *status_counter_name(MultiraftCounter c);
extern const char *status_role_name(MultiraftRole role);

/* ---- shared memory (shmem.c part table) ---- */

extern Size status_shmem_size(void);
extern void status_shmem_init(void *area);
extern void *multiraft_status_area;

#endif
