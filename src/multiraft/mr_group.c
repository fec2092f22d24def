/*
 * mr_group.c — one group on this node: registry (uthash by group id), tombstones,
 * creation (bootstrap, lazy, restore), the replica map, the active set used by the
 * coalesced tick, removal and in-memory log compaction.
 */
#include "mr_internal.h"

struct mr_group *mr_group_find(const struct mr_node *n, mr_group_id id)
{
    struct mr_group *g = NULL;
    HASH_FIND(hh, n->groups, &id, sizeof id, g);
    return g;
}

struct mr_tomb *mr_tomb_find(const struct mr_node *n, mr_group_id id)
{
    struct mr_tomb *t = NULL;
    HASH_FIND(hh, n->tombs, &id, sizeof id, t);
    return t;
}

int mr_tomb_set(struct mr_node *n, mr_group_id id, raft_id min_replica,
                raft_index announced, uint32_t incarnation, bool emit)
{
    MR_HASH_CTX(n);
    struct mr_tomb *t = mr_tomb_find(n, id);
    if (t == NULL) {
        t = mr_alloc(n, sizeof *t);
        if (t == NULL)
            return MR_ENOMEM;
        memset(t, 0, sizeof *t);
        t->group = id;
        HASH_ADD(hh, n->tombs, group, sizeof t->group, t);
        if (mr_hash_oom) {
            mr_free(n, t);
            return MR_ENOMEM;
        }
    }
    if (min_replica <= t->min_replica && announced <= t->announced &&
        (incarnation == 0 || incarnation == t->incarnation))
        return MR_OK; /* tombstones only ever move forward */
    if (min_replica > t->min_replica)
        t->min_replica = min_replica;
    if (announced > t->announced)
        t->announced = announced;
    if (incarnation != 0)
        t->incarnation = incarnation;
    if (emit) {
        struct mr_tombstone ts = {id, t->min_replica, t->announced, t->incarnation};
        if (mr_vec_push(n, &n->tombstones, sizeof ts, &ts) == NULL)
            return MR_ENOMEM;
    }
    return MR_OK;
}

struct mr_group *mr_group_alloc(struct mr_node *n, mr_group_id id, raft_id replica)
{
    MR_HASH_CTX(n);
    struct mr_group *g = mr_alloc(n, sizeof *g);
    if (g == NULL)
        return NULL;
    memset(g, 0, sizeof *g);
    g->id = id;
    g->replica_id = replica;
    g->next_replica_id = replica + 1;
    g->active_pos = MR_NOT_ACTIVE;
    g->ms = raft_memory_storage_new(&n->a);
    if (g->ms == NULL) {
        mr_free(n, g);
        return NULL;
    }
    HASH_ADD(hh, n->groups, id, sizeof g->id, g);
    if (mr_hash_oom) {
        raft_memory_storage_free(g->ms);
        mr_free(n, g);
        return NULL;
    }
    n->n_groups++;
    return g;
}

int mr_group_start(struct mr_node *n, struct mr_group *g, raft_index applied)
{
    struct raft_config rc;
    int err = RAFT_OK;
    memset(&rc, 0, sizeof rc);
    rc.id = g->replica_id;
    rc.election_tick = n->cfg.election_ticks;
    rc.heartbeat_tick = n->cfg.heartbeat_ticks;
    mr_storage_interface(g, &rc.storage);
    rc.applied = applied;
    rc.max_size_per_msg = n->cfg.max_size_per_msg;
    rc.max_inflight_msgs = n->cfg.max_inflight_msgs;
    rc.seed = mr_rand(n);
    rc.pre_vote = !n->cfg.disable_pre_vote;
    rc.check_quorum = !n->cfg.disable_check_quorum;
    rc.durable_notices = !n->cfg.disable_durable_notices;
    g->raft = raft_new(&rc, &n->a, &err);
    if (g->raft == NULL)
        return err == RAFT_ENOMEM ? MR_ENOMEM : MR_ECORRUPT;
    g->prev_role = (uint8_t)raft_get_role(g->raft);
    g->prev_leader = raft_get_leader(g->raft);
    g->synced_term = raft_get_term(g->raft); /* restored from storage, or 0 */
    return MR_OK;
}

static void dirty_remove(struct mr_node *n, struct mr_group *g)
{
    struct mr_group **d = n->dirty.data;
    if (!(g->flags & MR_G_DIRTY))
        return;
    for (size_t i = 0; i < n->dirty.len; i++)
        if (d[i] == g) {
            d[i] = d[--n->dirty.len];
            break;
        }
    g->flags &= ~MR_G_DIRTY;
}

void mr_group_destroy(struct mr_node *n, struct mr_group *g)
{
    MR_HASH_CTX(n);
    struct mr_cmd *c, *tmp;
    mr_group_sleep(n, g);
    dirty_remove(n, g);
    HASH_DEL(n->groups, g);
    n->n_groups--;
    while (g->waiters != NULL)
        mr_waiter_unlink(n, g, g->waiters);
    HASH_ITER(hh, g->applied_cmds, c, tmp) {
        HASH_DEL(g->applied_cmds, c);
        mr_free(n, c);
    }
    if (g->raft != NULL)
        raft_free(g->raft);
    raft_memory_storage_free(g->ms);
    mr_sessions_free(n, g);
    mr_free(n, g->map);
    mr_free(n, g->boot);
    if (g->x != NULL)
        n->retained -= g->x->retained;
    mr_free(n, g->x);
    mr_free(n, g);
}

/* ------------------------------------------------------------ replica map */

static uint32_t map_pos(const struct mr_group *g, raft_id replica)
{
    uint32_t lo = 0, hi = g->n_map;
    while (lo < hi) {
        uint32_t mid = (lo + hi) / 2;
        if (g->map[mid].id < replica)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

bool mr_groups_full(const struct mr_node *n)
{
    return n->cfg.max_groups != 0 && n->n_groups >= n->cfg.max_groups;
}

mr_node_id mr_map_node(const struct mr_group *g, raft_id replica)
{
    uint32_t i = map_pos(g, replica);
    return i < g->n_map && g->map[i].id == replica ? g->map[i].node : 0;
}

int mr_map_set(struct mr_node *n, struct mr_group *g, raft_id replica, mr_node_id node)
{
    uint32_t i = map_pos(g, replica);
    if (i < g->n_map && g->map[i].id == replica) {
        if (g->map[i].node != node) {
            g->map[i].node = node;
            g->flags |= MR_G_META;
            if (node != n->cfg.node_id)
                (void)mr_peer_get(n, node);
        }
        return MR_OK;
    }
    if (g->n_map == g->cap_map) {
        uint32_t cap = g->cap_map == 0 ? 3 : g->cap_map * 2;
        void *p = mr_realloc(n, g->map, cap * sizeof *g->map);
        if (p == NULL)
            return MR_ENOMEM;
        g->map = p;
        g->cap_map = cap;
    }
    memmove(g->map + i + 1, g->map + i, (g->n_map - i) * sizeof *g->map);
    g->map[i].id = replica;
    g->map[i].node = node;
    g->n_map++;
    g->flags |= MR_G_META;
    if (node != n->cfg.node_id)
        (void)mr_peer_get(n, node);
    return MR_OK;
}

raft_id mr_member_replica(const struct mr_group *g, mr_node_id node, bool *is_learner)
{
    struct raft_conf_state cs;
    raft_get_conf_state(g->raft, &cs);
    for (uint32_t i = 0; i < cs.n_voters; i++)
        if (mr_map_node(g, cs.voters[i]) == node) {
            if (is_learner)
                *is_learner = false;
            return cs.voters[i];
        }
    for (uint32_t i = 0; i < cs.n_learners; i++)
        if (mr_map_node(g, cs.learners[i]) == node) {
            if (is_learner)
                *is_learner = true;
            return cs.learners[i];
        }
    return RAFT_NONE;
}

/* ------------------------------------------------------------ active set */

bool mr_group_wake(struct mr_node *n, struct mr_group *g)
{
    g->idle = 0;
    if (g->active_pos == MR_NOT_ACTIVE && !(g->flags & MR_G_GONE) &&
        n->n_active == n->cap_active) {
        uint32_t cap = n->cap_active == 0 ? 64 : n->cap_active * 2;
        void *p = mr_realloc(n, n->active, cap * sizeof *n->active);
        if (p == NULL)
            return false; /* stays quiesced, flags kept; a later wake retries */
        n->active = p;
        n->cap_active = cap;
    }
    /* noted again on the lists of its next quiescence */
    g->flags &= ~(MR_G_LAGGING | MR_G_NO_QUORUM);
    if (g->active_pos != MR_NOT_ACTIVE || (g->flags & MR_G_GONE))
        return g->active_pos != MR_NOT_ACTIVE;
    g->active_pos = n->n_active;
    n->active[n->n_active++] = g;
    if (g->flags & MR_G_RESTORED) {
        /* Its turn came (mr_restart.c), or a message or a request: the lease of
         * its stored leader counts from now, as a woken follower's does. */
        g->flags &= ~MR_G_RESTORED;
        if (g->x != NULL && g->x->lease_leader != RAFT_NONE)
            g->x->lease_at = n->now;
    }
    /* A follower leaving quiescence has heard nothing from its leader for as long
     * as it slept: until it does, the leader's node liveness stands in (mr_lease.c,
     * mr_lease_before_vote). */
    if (raft_get_role(g->raft) == RAFT_FOLLOWER && raft_get_leader(g->raft) != RAFT_NONE &&
        mr_group_extra(n, g) != NULL) {
        g->x->lease_leader = raft_get_leader(g->raft);
        g->x->lease_term = raft_get_term(g->raft);
        g->x->lease_at = n->now;
    }
    return true;
}

bool mr_group_wake_marked(struct mr_node *n, struct mr_group *g)
{
    if (g->active_pos != MR_NOT_ACTIVE)
        return true;
    if (!mr_group_wake(n, g))
        return false;
    mr_group_mark(n, g);
    n->c.woken++;
    return true;
}

void mr_group_sleep(struct mr_node *n, struct mr_group *g)
{
    uint32_t pos = g->active_pos;
    if (pos == MR_NOT_ACTIVE)
        return;
    n->active[pos] = n->active[--n->n_active];
    n->active[pos]->active_pos = pos;
    g->active_pos = MR_NOT_ACTIVE;
}

struct mr_group_extra *mr_group_extra(struct mr_node *n, struct mr_group *g)
{
    if (g->x == NULL && (g->x = mr_alloc(n, sizeof *g->x)) != NULL)
        memset(g->x, 0, sizeof *g->x);
    return g->x;
}

void mr_group_extra_release(struct mr_node *n, struct mr_group *g)
{
    if (g->x == NULL || (g->flags & MR_G_QREQ) || g->x->campaign_at != 0 ||
        g->x->waiting_ids != NULL || g->x->retained != 0)
        return;
    mr_free(n, g->x);
    g->x = NULL;
}

void mr_group_hard_state(const struct mr_group *g, struct raft_hard_state *out)
{
    struct raft_status st;
    raft_get_status(g->raft, &st);
    out->term = st.term;
    out->vote = st.vote;
    out->commit = st.commit;
}

void mr_group_mark(struct mr_node *n, struct mr_group *g)
{
    if (g->flags & MR_G_DIRTY)
        return;
    if (mr_vec_push(n, &n->dirty, sizeof g, &g) != NULL)
        g->flags |= MR_G_DIRTY;
}

uint32_t mr_group_new_incarnation(struct mr_node *n)
{
    /* The node id is mixed in, so that two nodes whose generators were seeded
     * alike still choose apart. */
    uint64_t r = mr_rand(n) ^ ((uint64_t)n->cfg.node_id * 0xD1B54A32D192ED03ull);
    uint32_t v = (uint32_t)(r ^ (r >> 32));
    return v != 0 ? v : 1;
}

/* -------------------------------------------------------- lazy creation */

/* How far this replica's entries were announced here: what it applied, or more if
 * it restarted behind events already out (a meta row trailing by up to MR_META_LAG,
 * mr_restore_announced).  A tombstone carries this forward to the next replica: a
 * replica replaced before it re-applied that stretch must not leave it to be
 * announced again (docs/sim-findings.md, finding 14). */
static raft_index announced_through(const struct mr_group *g)
{
    return g->applied > g->announced ? g->applied : g->announced;
}

struct mr_group *mr_group_lazy(struct mr_node *n, mr_group_id id, raft_id replica,
                               uint32_t incarnation)
{
    struct mr_tomb *t = mr_tomb_find(n, id);
    struct mr_group *g = mr_group_find(n, id);
    struct mr_event *ev;
    raft_index announced;
    if (replica == RAFT_NONE || (t != NULL && replica < t->min_replica))
        return NULL;
    if (g != NULL) {
        if (replica == g->replica_id)
            return g;
        if (replica < g->replica_id || (g->flags & MR_G_GONE))
            return NULL;
        /* Ids are never reused: a message for a newer replica of this node means ours
         * was removed (and this node re-added) before we applied the removal.  The
         * group is the same one (target() refused any other incarnation). */
        if (incarnation == 0)
            incarnation = g->incarnation;
        mr_fail_waiters_removed(n, g);
        if ((ev = mr_event_push(n, MR_EVENT_GROUP_REMOVED, id)) != NULL) {
            ev->node_id = n->cfg.node_id;
            ev->replica_id = g->replica_id;
        }
        announced = announced_through(g);
        mr_group_destroy(n, g);
        n->c.groups_removed++;
        if (mr_tomb_set(n, id, replica, announced, incarnation, true) != MR_OK)
            return NULL;
    }
    g = mr_group_alloc(n, id, replica);
    if (g == NULL)
        return NULL;
    g->incarnation = incarnation;
    if ((t = mr_tomb_find(n, id)) != NULL)
        g->announced = t->announced;
    if (mr_map_set(n, g, replica, n->cfg.node_id) != MR_OK ||
        mr_group_start(n, g, 0) != MR_OK) {
        mr_group_destroy(n, g);
        return NULL;
    }
    g->flags |= MR_G_CREATED | MR_G_META;
    mr_group_wake(n, g);
    mr_group_mark(n, g);
    n->c.groups_created++;
    if ((ev = mr_event_push(n, MR_EVENT_GROUP_CREATED, id)) != NULL) {
        ev->node_id = n->cfg.node_id;
        ev->replica_id = replica;
    }
    return g;
}

void mr_group_drop(struct mr_node *n, struct mr_group *g, raft_id tomb_min,
                   raft_index index, raft_term term)
{
    struct mr_event *ev;
    if (g->flags & MR_G_GONE)
        return;
    if (tomb_min == UINT64_MAX)
        mr_fail_waiters(n, g, MR_EGROUP_DELETED);
    else
        mr_fail_waiters_removed(n, g);
    (void)mr_tomb_set(n, g->id, tomb_min, announced_through(g), g->incarnation, true);
    if (tomb_min == UINT64_MAX && mr_tomb_find(n, g->id) != NULL)
        mr_tomb_find(n, g->id)->removed_at = index;
    if ((ev = mr_event_push(n, MR_EVENT_GROUP_REMOVED, g->id)) != NULL) {
        ev->index = index;
        ev->term = term;
        ev->node_id = n->cfg.node_id;
        ev->replica_id = g->replica_id;
    }
    mr_group_sleep(n, g);
    g->flags |= MR_G_GONE;
    if (tomb_min != UINT64_MAX)
        g->flags |= MR_G_KEEP_DEDUP; /* only this replica leaves; the group lives on */
    n->c.groups_removed++;
    (void)mr_vec_push(n, &n->gone, sizeof g, &g);
    mr_group_mark(n, g); /* its REMOVED write goes in the next batch */
}

/* ------------------------------------------------------------ compaction */

/* What g keeps past its retention window (node->retained sums it). */
static uint64_t retained_by(const struct mr_group *g)
{
    return g->x != NULL ? g->x->retained : 0;
}

/* Records it; false if it could not (no memory for the side block). */
static bool set_retained(struct mr_node *n, struct mr_group *g, uint64_t bytes)
{
    uint64_t had = retained_by(g);
    if (bytes == had)
        return true;
    if (bytes != 0 && mr_group_extra(n, g) == NULL)
        return false;
    n->retained = n->retained - had + bytes;
    g->x->retained = bytes;
    return true;
}

/* Whether a leader may keep entries keep+1 .. applied for a member whose node is
 * alive, past the window that ends at floor: they hold at most
 * log_retention_bytes, and what the node's groups keep past their windows stays
 * within log_retention_bytes_total.  *past: the bytes of keep+1 .. floor. */
static bool retention_fits(struct mr_node *n, struct mr_group *g, raft_index keep,
                           raft_index floor, raft_index applied, uint64_t *past)
{
    uint64_t cap = n->cfg.log_retention_bytes;
    uint64_t others = n->retained - retained_by(g);
    uint64_t below = raft_memory_storage_size(g->ms, keep + 1, floor + 1);
    if (others + below > n->cfg.log_retention_bytes_total ||
        raft_memory_storage_size(g->ms, keep + 1, applied + 1) > cap)
        return false;
    *past = below;
    return true;
}

void mr_group_compact(struct mr_node *n, struct mr_group *g, bool quiescing)
{
    raft_index applied = g->applied;
    raft_index first = raft_get_first_index(g->raft);
    raft_index last = raft_get_last_index(g->raft);
    raft_index limit = applied;
    struct raft_conf_state cs;
    struct raft_storage st;
    raft_term t = 0;
    uint64_t past = 0; /* bytes kept past the window */

    if (quiescing || raft_get_role(g->raft) != RAFT_LEADER)
        (void)set_retained(n, g, 0); /* what it kept goes below (or at the next compaction) */
    if (applied <= g->log_start_index || last < first || g->ms == NULL)
        return;
    if (!quiescing && last - first + 1 <= n->cfg.compact_threshold)
        return;
    if (quiescing) {
        /* Quiescing means every member has every entry: keep nothing. */
    } else if (raft_get_role(g->raft) != RAFT_LEADER) {
        /* A follower may lead later and then serve lagging members from its log:
         * keep the retention window (members beyond it get a snapshot, and skip the
         * events of the entries it covers). */
        limit = applied > n->cfg.log_retention ? applied - n->cfg.log_retention : 0;
    } else {
        /* Keep what each member still needs, up to the retention window (beyond it
         * the member gets a snapshot) — or past it for a member whose node is
         * alive, as long as what is kept for it fits in log_retention_bytes, and
         * what the node keeps past its groups' windows in log_retention_bytes_total
         * (a node slow in many busy groups must not make their leaders' nodes run
         * out of memory).  Such a member is only slow (a descheduled worker, a WAL
         * segment being made: at 20,000 commands/s the window is 50 ms), and a
         * snapshot would cost it the events of the entries it covers, and the
         * commands waiting there their outcome (their index is known only from the
         * entry). */
        raft_index floor = applied > n->cfg.log_retention ? applied - n->cfg.log_retention : 0;
        size_t np = raft_progress_count(g->raft);
        for (size_t i = 0; i < np; i++) {
            struct raft_progress_info pi;
            raft_index keep;
            uint64_t bytes = 0;
            bool resuming;
            if (raft_progress_at(g->raft, i, &pi) != RAFT_OK || pi.id == g->replica_id ||
                pi.match >= limit)
                continue;
            /* A member sent a snapshot resumes right after it, once installed,
             * whether or not its node is heard meanwhile (a worker inserting a
             * large snapshot's records is silent).  Compacting past the snapshot
             * in flight made it need another, for as long as the group stayed
             * busy: 25 snapshots in 400 ticks in a review's test. */
            resuming = pi.snapshot_sent > pi.match;
            keep = resuming ? pi.snapshot_sent : pi.match;
            if (keep >= limit)
                continue;
            if (keep < floor &&
                !((resuming || mr_node_alive(n, mr_map_node(g, pi.id))) &&
                  retention_fits(n, g, keep, floor, applied, &bytes)))
                keep = floor;
            if (keep < limit) {
                limit = keep;
                past = bytes; /* the lowest keep holds the most */
            }
        }
        if (!set_retained(n, g, past))
            limit = floor; /* could not record it: keep only the window */
    }
    if (limit <= g->log_start_index)
        return;
    raft_get_conf_state(g->raft, &cs);
    /* The snapshot a lagging member would receive: the configuration and the
     * sessions as of applied (the core applies conf changes as they are handed out
     * committed). */
    {
        size_t len;
        unsigned char *sessions = mr_sessions_copy(n, g, &len);
        if (sessions == NULL)
            return;
        (void)raft_memory_storage_create_snapshot(g->ms, applied, &cs, sessions, len);
        mr_free(n, sessions);
    }
    raft_memory_storage_interface(g->ms, &st);
    if (st.term(st.user, limit, &t) != RAFT_OK)
        return;
    if (raft_memory_storage_compact(g->ms, limit) != RAFT_OK)
        return;
    /* A group that quiesces drops its in-memory log at once (memory follows the
     * active groups), but its rows are left for later: deleting them and
     * rewriting the meta row at every quiescence cost a group that wakes for
     * one command two more row writes per member.  They are deleted when the
     * log start crosses a multiple of compact_threshold, so at most that many
     * stay behind per group; rows at or below the stored log start are skipped
     * at load (and deleted by the next compaction written), so the meta row may
     * carry the new start with the next write made for another reason. */
    if (!quiescing || limit / n->cfg.compact_threshold !=
                          g->log_start_index / n->cfg.compact_threshold) {
        g->flags |= MR_G_COMPACTED | MR_G_META;
        mr_group_mark(n, g);
    }
    g->log_start_index = limit;
    g->log_start_term = t;
    n->c.compactions++;
}
