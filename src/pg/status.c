/*
 * status.c — the published status of every local group and the node counters
 * (see status.h).
 *
 * Layout of the shared area:
 *   StatusShared header (capacity, counters)
 *   int32 buckets[nbuckets]      open addressing, linear probing; 0 = empty,
 *                                otherwise 1 + index into rows
 *   MultiraftGroupStatus rows[capacity]   dense: rows[0 .. count-1] are in use
 * nbuckets is a power of two at least twice the capacity, so probes stay short.
 * Deletion shifts later entries of the probe run back (no tombstones) and moves
 * the last row into the freed one, keeping rows dense for listing.
 */
#include "postgres.h"

#include "port/atomics.h"
#include "storage/lwlock.h"

#include "guc.h"
#include "shmem.h"
#include "status.h"

StaticAssertDecl(MULTIRAFT_MAX_MEMBERS == MR_MAX_MEMBERS,
				 "status rows hold as many members as the layer lists");

typedef struct StatusShared
{
	int			capacity;		/* rows */
	uint32		nbuckets;		/* power of two */
	int			count;			/* rows in use */
	pg_atomic_uint64 counters[MR_CTR_COUNT_];
	pg_atomic_uint64 retained;	/* gauge: status_retained_set */
} StatusShared;

void	   *multiraft_status_area = NULL;

static const char *const counter_names[MR_CTR_COUNT_] = {
	[MR_CTR_MESSAGES_SENT] = "messages_sent",
	[MR_CTR_MESSAGES_RECEIVED] = "messages_received",
	[MR_CTR_BYTES_SENT] = "bytes_sent",
	[MR_CTR_BYTES_RECEIVED] = "bytes_received",
	[MR_CTR_BATCHES_SENT] = "batches_sent",
	[MR_CTR_BATCHES_RECEIVED] = "batches_received",
	[MR_CTR_HEARTBEATS_SENT] = "heartbeats_sent",
	[MR_CTR_HEARTBEATS_RECEIVED] = "heartbeats_received",
	[MR_CTR_HEARTBEAT_ENTRIES_COALESCED] = "heartbeat_entries_coalesced",
	[MR_CTR_BATCHES_WRITTEN] = "batches_written",
	[MR_CTR_BATCHES_FLUSHED] = "batches_flushed",
	[MR_CTR_ENTRIES_APPENDED] = "entries_appended",
	[MR_CTR_ENTRIES_APPLIED] = "entries_applied",
	[MR_CTR_SNAPSHOTS_SENT] = "snapshots_sent",
	[MR_CTR_SNAPSHOTS_APPLIED] = "snapshots_applied",
	[MR_CTR_MESSAGES_DROPPED] = "messages_dropped",
	[MR_CTR_PROPOSALS] = "proposals",
	[MR_CTR_ELECTIONS_STARTED] = "elections_started",
	[MR_CTR_LEADERS_ELECTED] = "leaders_elected",
	[MR_CTR_TICKS] = "ticks",
	[MR_CTR_HELD_COMMANDS] = "held_commands",
	[MR_CTR_REPLICA_CONFLICTS] = "replica_conflicts",
	[MR_CTR_APPENDS_SENT] = "appends_sent",
	[MR_CTR_EMPTY_APPENDS_SENT] = "empty_appends_sent",
	[MR_CTR_APPEND_RESPONSES_SENT] = "append_responses_sent",
	[MR_CTR_DURABLE_NOTICES_SENT] = "durable_notices_sent",
	[MR_CTR_PROPOSALS_FORWARDED] = "proposals_forwarded",
	[MR_CTR_GROUPS_REFUSED] = "groups_refused",
	[MR_CTR_GROUPS_SLEPT_WITHOUT_QUORUM] = "groups_slept_without_quorum",
};

static uint32
bucket_count(int capacity)
{
	uint32		n = 16;

	while (n < (uint32) capacity * 2)
		n <<= 1;
	return n;
}

static Size
buckets_offset(void)
{
	return MAXALIGN(sizeof(StatusShared));
}

static Size
rows_offset(uint32 nbuckets)
{
	return buckets_offset() + MAXALIGN(mul_size(nbuckets, sizeof(int32)));
}

Size
status_shmem_size(void)
{
	uint32		nbuckets = bucket_count(multiraft_max_groups);

	return add_size(rows_offset(nbuckets),
					mul_size(multiraft_max_groups, sizeof(MultiraftGroupStatus)));
}

void
status_shmem_init(void *area)
{
	StatusShared *sh = area;

	sh->capacity = multiraft_max_groups;
	sh->nbuckets = bucket_count(multiraft_max_groups);
	sh->count = 0;
	for (int i = 0; i < MR_CTR_COUNT_; i++)
		pg_atomic_init_u64(&sh->counters[i], 0);
	pg_atomic_init_u64(&sh->retained, 0);
}

static inline StatusShared *
shared(void)
{
	return (StatusShared *) multiraft_status_area;
}

static inline int32 *
buckets(StatusShared *sh)
{
	return (int32 *) ((char *) sh + buckets_offset());
}

static inline MultiraftGroupStatus *
rows(StatusShared *sh)
{
	return (MultiraftGroupStatus *) ((char *) sh + rows_offset(sh->nbuckets));
}

/* splitmix64's finaliser: group ids are often sequential, buckets must not be. */
static inline uint32
home_bucket(StatusShared *sh, int64 group_id)
{
	uint64		x = (uint64) group_id;

	x ^= x >> 30;
	x *= UINT64CONST(0xbf58476d1ce4e5b9);
	x ^= x >> 27;
	x *= UINT64CONST(0x94d049bb133111eb);
	x ^= x >> 31;
	return (uint32) x & (sh->nbuckets - 1);
}

/* The bucket holding group_id, or the empty bucket ending its probe run. */
static uint32
find_bucket(StatusShared *sh, int64 group_id)
{
	int32	   *b = buckets(sh);
	MultiraftGroupStatus *r = rows(sh);
	uint32		mask = sh->nbuckets - 1;
	uint32		i = home_bucket(sh, group_id);

	while (b[i] != 0 && r[b[i] - 1].group_id != group_id)
		i = (i + 1) & mask;
	return i;
}

bool
status_publish(const MultiraftGroupStatus *s)
{
	StatusShared *sh = shared();
	bool		ok = true;
	uint32		i;

	if (s->nvoters < 0 || s->nvoters > MULTIRAFT_MAX_MEMBERS ||
		s->nlearners < 0 || s->nlearners > MULTIRAFT_MAX_MEMBERS)
		return false;

	LWLockAcquire(multiraft_lock(MR_LOCK_STATUS), LW_EXCLUSIVE);
	i = find_bucket(sh, s->group_id);
	if (buckets(sh)[i] != 0)
		rows(sh)[buckets(sh)[i] - 1] = *s;
	else if (sh->count < sh->capacity)
	{
		rows(sh)[sh->count] = *s;
		buckets(sh)[i] = ++sh->count;
	}
	else
		ok = false;
	LWLockRelease(multiraft_lock(MR_LOCK_STATUS));
	return ok;
}

bool
status_publish_mr(const struct mr_group_status *st)
{
	MultiraftGroupStatus s;

	memset(&s, 0, sizeof(s));
	s.group_id = (int64) st->group;
	s.node_id = (int32) st->node_id;
	s.replica_id = (int64) st->replica_id;
	if (st->is_learner)
		s.role = MR_ROLE_LEARNER;
	else if (st->role == RAFT_LEADER)
		s.role = MR_ROLE_LEADER;
	else if (st->role == RAFT_CANDIDATE || st->role == RAFT_PRE_CANDIDATE)
		s.role = MR_ROLE_CANDIDATE;
	else
		s.role = MR_ROLE_FOLLOWER;
	s.term = st->term;
	s.leader_node_id = (int32) st->leader_node;
	s.commit_index = st->commit;
	s.applied_index = st->applied;
	s.first_index = st->first_index;
	s.last_index = st->last_index;
	/* The layer lists at most MR_MAX_MEMBERS of each, like these rows. */
	s.nvoters = (int) Min(st->n_voters, MR_MAX_MEMBERS);
	for (int i = 0; i < s.nvoters; i++)
		s.voters[i] = (int32) st->voters[i];
	s.nlearners = (int) Min(st->n_learners, MR_MAX_MEMBERS);
	for (int i = 0; i < s.nlearners; i++)
		s.learners[i] = (int32) st->learners[i];
	s.quiesced = st->quiesced;
	return status_publish(&s);
}

/*
 * Empty bucket i and close the gap: a later entry of the same probe run moves
 * back unless its home bucket lies cyclically in (i, j].
 */
static void
remove_bucket(StatusShared *sh, uint32 i)
{
	int32	   *b = buckets(sh);
	MultiraftGroupStatus *r = rows(sh);
	uint32		mask = sh->nbuckets - 1;
	uint32		j = i;

	for (;;)
	{
		uint32		k;

		b[i] = 0;
		for (;;)
		{
			j = (j + 1) & mask;
			if (b[j] == 0)
				return;
			k = home_bucket(sh, r[b[j] - 1].group_id);
			if (i <= j ? (i < k && k <= j) : (i < k || k <= j))
				continue;		/* already as close to home as it can be */
			break;
		}
		b[i] = b[j];
		i = j;
	}
}

void
status_remove(int64 group_id)
{
	StatusShared *sh = shared();
	uint32		i;

	LWLockAcquire(multiraft_lock(MR_LOCK_STATUS), LW_EXCLUSIVE);
	i = find_bucket(sh, group_id);
	if (buckets(sh)[i] != 0)
	{
		int			row = buckets(sh)[i] - 1;
		int			last = sh->count - 1;

		remove_bucket(sh, i);
		if (row != last)
		{
			/* Move the last row into the hole and repoint its bucket. */
			uint32		j = find_bucket(sh, rows(sh)[last].group_id);

			Assert(buckets(sh)[j] == last + 1);
			rows(sh)[row] = rows(sh)[last];
			buckets(sh)[j] = row + 1;
		}
		sh->count--;
	}
	LWLockRelease(multiraft_lock(MR_LOCK_STATUS));
}

void
status_clear(void)
{
	StatusShared *sh = shared();

	LWLockAcquire(multiraft_lock(MR_LOCK_STATUS), LW_EXCLUSIVE);
	memset(buckets(sh), 0, sh->nbuckets * sizeof(int32));
	sh->count = 0;
	LWLockRelease(multiraft_lock(MR_LOCK_STATUS));
	pg_atomic_write_u64(&sh->retained, 0);
}

bool
status_lookup(int64 group_id, MultiraftGroupStatus *out)
{
	StatusShared *sh = shared();
	uint32		i;
	bool		found;

	LWLockAcquire(multiraft_lock(MR_LOCK_STATUS), LW_SHARED);
	i = find_bucket(sh, group_id);
	found = buckets(sh)[i] != 0;
	if (found && out)
		*out = rows(sh)[buckets(sh)[i] - 1];
	LWLockRelease(multiraft_lock(MR_LOCK_STATUS));
	return found;
}

bool
status_list_has(const int32 *list, int n, int32 node_id)
{
	for (int i = 0; i < n; i++)
		if (list[i] == node_id)
			return true;
	return false;
}

bool
status_node_is_member(int32 node_id)
{
	StatusShared *sh = shared();
	MultiraftGroupStatus *r = rows(sh);
	bool		member = false;

	LWLockAcquire(multiraft_lock(MR_LOCK_STATUS), LW_SHARED);
	for (int g = 0; g < sh->count && !member; g++)
		member = status_list_has(r[g].voters, r[g].nvoters, node_id) ||
			status_list_has(r[g].learners, r[g].nlearners, node_id);
	LWLockRelease(multiraft_lock(MR_LOCK_STATUS));
	return member;
}

int
status_group_count(void)
{
	int			n;

	LWLockAcquire(multiraft_lock(MR_LOCK_STATUS), LW_SHARED);
	n = shared()->count;
	LWLockRelease(multiraft_lock(MR_LOCK_STATUS));
	return n;
}

int
status_snapshot(MultiraftGroupStatus **out)
{
	StatusShared *sh = shared();

	/* No palloc while holding the lock: size the copy first, retry if it grew. */
	for (;;)
	{
		int			room = status_group_count() + 64;
		int			n;

		*out = palloc_extended(mul_size(room, sizeof(MultiraftGroupStatus)),
							   MCXT_ALLOC_HUGE);
		LWLockAcquire(multiraft_lock(MR_LOCK_STATUS), LW_SHARED);
		n = sh->count;
		if (n <= room)
			memcpy(*out, rows(sh), n * sizeof(MultiraftGroupStatus));
		LWLockRelease(multiraft_lock(MR_LOCK_STATUS));
		if (n <= room)
			return n;
		pfree(*out);
	}
}

void
status_counter_add(MultiraftCounter c, uint64 delta)
{
	Assert(c >= 0 && c < MR_CTR_COUNT_);
	pg_atomic_fetch_add_u64(&shared()->counters[c], delta);
}

void
status_retained_set(uint64 bytes)
{
	pg_atomic_write_u64(&shared()->retained, bytes);
}

uint64
status_retained_get(void)
{
	return pg_atomic_read_u64(&shared()->retained);
}

uint64
status_counter_get(MultiraftCounter c)
{
	Assert(c >= 0 && c < MR_CTR_COUNT_);
	return pg_atomic_read_u64(&shared()->counters[c]);
}

const char *
status_counter_name(MultiraftCounter c)
{
	Assert(c >= 0 && c < MR_CTR_COUNT_);
	return counter_names[c];
}

const char *
status_role_name(MultiraftRole role)
{
	switch (role)
	{
		case MR_ROLE_FOLLOWER:
			return "follower";
		case MR_ROLE_CANDIDATE:
			return "candidate";
		case MR_ROLE_LEADER:
			return "leader";
		case MR_ROLE_LEARNER:
			return "learner";
	}
	return "unknown";
}
