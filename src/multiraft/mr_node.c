/*
 * mr_node.c — the node: configuration, lifecycle, group creation and restart, the
 * coalesced tick, names and introspection (status, counters).
 */
#include "mr_internal.h"

#include <stddef.h>

/* log_retention_bytes and log_retention_bytes_total: 0 is the default. */
static void retention_defaults(struct mr_config *c)
{
    if (c->log_retention_bytes == 0)
        c->log_retention_bytes = 8u << 20;
    if (c->log_retention_bytes_total == 0)
        c->log_retention_bytes_total = 256u << 20;
}

static void fill_defaults(struct mr_config *c)
{
    if (c->election_ticks == 0)
        c->election_ticks = 10;
    if (c->heartbeat_ticks == 0)
        c->heartbeat_ticks = 2;
    /* Heartbeats at least as far apart as the election timeout would let every
     * follower time out between two of them, and every peer look down (§5.6:
     * broadcast time << election timeout): at most half of it. */
    if (c->heartbeat_ticks > c->election_ticks / 2)
        c->heartbeat_ticks = c->election_ticks / 2 > 0 ? c->election_ticks / 2 : 1;
    if (c->liveness_ticks == 0)
        c->liveness_ticks = c->heartbeat_ticks;
    /* A peer silent for one election timeout is down, as a leader silent that long
     * is for an active group's followers (Raft §5.2): the quiesced groups it leads
     * then fail over within two election timeouts.  A process stalled longer than
     * that loses its leaderships once, like an active leader would; it never
     * ping-pongs, because the woken followers campaign through PreVote and the
     * others' leases (mr_failover.c, mr_lease.c).  Operators on overloaded machines raise it
     * (multiraft.dead_ticks).  Never below the election timeout: the lease rule for
     * quiesced groups relies on it. */
    if (c->dead_ticks < c->election_ticks)
        c->dead_ticks = c->election_ticks;
    if (c->quiesce_ticks == 0)
        c->quiesce_ticks = 2;
    if (c->restart_wakes_per_tick == 0)
        c->restart_wakes_per_tick = MR_RESTART_WAKES_DEFAULT;
    if (c->batch_hold_ticks == 0)
        c->batch_hold_ticks = 2;
    if (c->generated_id_window == 0)
        c->generated_id_window = 1000000;
    if (c->session_epoch == 0)
        c->session_epoch = c->seed != 0 ? c->seed : 1;
    if (c->proposal_retry_ticks == 0)
        c->proposal_retry_ticks = 2 * c->election_ticks;
    if (c->compact_threshold == 0)
        c->compact_threshold = 64;
    if (c->log_retention == 0)
        c->log_retention = 1000;
    retention_defaults(c);
}

struct mr_node *mr_node_new(const struct mr_config *cfg, int *rc)
{
    const struct raft_allocator *a;
    struct mr_node *n;
    if (rc != NULL)
        *rc = MR_EINVAL;
    if (cfg == NULL || cfg->node_id == 0)
        return NULL;
    a = cfg->allocator != NULL ? cfg->allocator : raft_default_allocator();
    n = a->malloc(a->ctx, sizeof *n);
    if (n == NULL) {
        if (rc != NULL)
            *rc = MR_ENOMEM;
        return NULL;
    }
    memset(n, 0, sizeof *n);
    n->a = *a;
    n->cfg = *cfg;
    n->cfg.allocator = &n->a;
    fill_defaults(&n->cfg);
    n->prng = cfg->seed ^ ((uint64_t)cfg->node_id << 32);
    /* Read contexts must be unique across this node's lives, not only within one: a
     * READ_INDEX_RESP meant for an earlier life (delayed on a connection that outlived
     * an in-process restart, or left in the host's inbox) would otherwise complete a
     * new read whose context it matches with an index from before that read began
     * (dissertation §6.4).  So they count from a hash of this start's session epoch,
     * which differs from every earlier start's (mr_config): two lives' ranges meet
     * with a probability of about reads / 2^64. */
    n->next_read_ctx = mr_mix64(n->cfg.session_epoch ^ ((uint64_t)cfg->node_id << 40));
    if (rc != NULL)
        *rc = MR_OK;
    return n;
}

void mr_node_free(struct mr_node *n)
{
    struct mr_group *g, *gt;
    struct mr_tomb *t, *tt;
    if (n == NULL)
        return;
    MR_HASH_CTX(n);
    /* Groups dropped in an unadvanced batch are still in the hash: freed below. */
    n->gone.len = 0;
    HASH_ITER(hh, n->groups, g, gt)
        mr_group_destroy(n, g);
    HASH_ITER(hh, n->tombs, t, tt) {
        HASH_DEL(n->tombs, t);
        mr_free(n, t);
    }
    for (uint32_t i = 0; i < n->n_peers; i++) {
        mr_vec_free(n, &n->peers[i]->msgs);
        mr_vec_free(n, &n->peers[i]->hbs);
        mr_vec_free(n, &n->peers[i]->resps);
        mr_vec_free(n, &n->peers[i]->notices);
        mr_vec_free(n, &n->peers[i]->lagging);
        mr_free(n, n->peers[i]);
    }
    mr_free(n, n->peers);
    mr_free(n, n->active);
    mr_arena_reset(n);
    mr_vec_free(n, &n->arena);
    mr_vec_free(n, &n->dirty);
    mr_vec_free(n, &n->round_groups);
    mr_vec_free(n, &n->held_groups);
    mr_vec_free(n, &n->reprobes);
    for (size_t k = 0; k < sizeof n->wake_queue / sizeof n->wake_queue[0]; k++)
        mr_vec_free(n, &n->wake_queue[k]);
    mr_vec_free(n, &n->events);
    mr_vec_free(n, &n->dedup);
    mr_vec_free(n, &n->tombstones);
    mr_vec_free(n, &n->completions);
    mr_vec_free(n, &n->writes);
    mr_vec_free(n, &n->envelopes);
    mr_vec_free(n, &n->outstanding);
    mr_vec_free(n, &n->snaps_sent);
    mr_vec_free(n, &n->gone);
    n->a.free(n->a.ctx, n);
}

int mr_shutdown(struct mr_node *n)
{
    struct mr_group *g, *tmp;
    if (n->busy)
        return MR_EBUSY;
    n->stopped = true;
    HASH_ITER(hh, n->groups, g, tmp)
        mr_fail_waiters(n, g, MR_ESTOPPED);
    return MR_OK;
}

uint64_t mr_now(const struct mr_node *n)
{
    return n->now;
}

/* ------------------------------------------------------------ creation */

int mr_create_group(struct mr_node *n, mr_group_id group, const mr_node_id *members,
                    size_t n_members, uint64_t token)
{
    struct raft_conf_state cs;
    raft_id one = 1;
    struct mr_group *g;
    struct mr_event *ev;
    struct mr_completion c;
    bool self = false;
    uint32_t nb = 0;

    if (n->busy)
        return MR_EBUSY;
    if (n->stopped)
        return MR_ESTOPPED;
    if (members == NULL || n_members == 0 || n_members > MR_MAX_MEMBERS)
        return MR_EINVAL;
    for (size_t i = 0; i < n_members; i++) {
        if (members[i] == 0)
            return MR_EINVAL;
        for (size_t k = 0; k < i; k++)
            if (members[k] == members[i])
                return MR_EINVAL;
        if (members[i] == n->cfg.node_id)
            self = true;
    }
    if (!self)
        return MR_ENOTMEMBER;
    if (mr_group_find(n, group) != NULL || mr_tomb_find(n, group) != NULL)
        return MR_EEXIST;
    if (mr_groups_full(n))
        return MR_EFULL;
    g = mr_group_alloc(n, group, 1);
    if (g == NULL)
        return MR_ENOMEM;
    g->incarnation = mr_group_new_incarnation(n);
    g->next_replica_id = 2;
    if (n_members > 1) {
        g->boot = mr_alloc(n, (n_members - 1) * sizeof *g->boot);
        if (g->boot == NULL) {
            mr_group_destroy(n, g);
            return MR_ENOMEM;
        }
        for (size_t i = 0; i < n_members; i++)
            if (members[i] != n->cfg.node_id)
                g->boot[nb++] = members[i];
        g->n_boot = nb;
    }
    /* Bootstrap: a single-voter configuration {replica 1 on this node}, recorded as
     * the first log entry too (index 1, term 1, already committed and applied) so
     * that members created lazily learn replica 1 from the log like any other. */
    memset(&cs, 0, sizeof cs);
    cs.voters = &one;
    cs.n_voters = 1;
    {
        unsigned char *buf = mr_alloc(n, mr_bootstrap_entry(n, g, NULL));
        struct raft_entry e;
        struct raft_hard_state hs = {1, RAFT_NONE, 1};
        bool ok;
        memset(&e, 0, sizeof e);
        e.term = 1;
        e.index = 1;
        e.type = RAFT_ENTRY_CONF_CHANGE;
        e.len = buf != NULL ? (uint32_t)mr_bootstrap_entry(n, g, buf) : 0;
        e.data = buf;
        ok = e.len > 0 && mr_map_set(n, g, 1, n->cfg.node_id) == MR_OK &&
             raft_memory_storage_append(g->ms, &e, 1) == RAFT_OK && /* (copied) */
             raft_memory_storage_set_hard_state(g->ms, &hs) == RAFT_OK &&
             raft_memory_storage_set_conf_state(g->ms, &cs) == RAFT_OK &&
             mr_group_start(n, g, 1) == MR_OK;
        mr_free(n, buf);
        if (!ok) {
            mr_group_destroy(n, g);
            return MR_ENOMEM;
        }
    }
    g->applied = 1;
    (void)mr_core_step(n, raft_campaign(g->raft)); /* single voter: leader at once */
    g->flags |= MR_G_CREATED | MR_G_META | MR_G_BOOTSTRAP;
    mr_group_wake(n, g);
    mr_group_mark(n, g);
    n->c.groups_created++;
    if ((ev = mr_event_push(n, MR_EVENT_GROUP_CREATED, group)) != NULL) {
        ev->node_id = n->cfg.node_id;
        ev->replica_id = 1;
    }
    memset(&c, 0, sizeof c);
    c.token = token;
    c.result = MR_OK;
    c.group = group;
    c.kind = MR_REQ_CREATE;
    if (mr_vec_push(n, &n->completions, sizeof c, &c) == NULL)
        n->ready_incomplete = true; /* as mr_complete */
    return MR_OK;
}

int mr_restore_group(struct mr_node *n, const struct mr_group_restore *r)
{
    struct mr_group *g;
    unsigned char *sessions = NULL;
    size_t sessions_len = 0;
    int rc;
    if (n->busy)
        return MR_EBUSY;
    if (r == NULL || r->replica_id == RAFT_NONE || (r->n_entries > 0 && r->entries == NULL))
        return MR_EINVAL;
    if (mr_group_find(n, r->group) != NULL)
        return MR_EEXIST;
    g = mr_group_alloc(n, r->group, r->replica_id);
    if (g == NULL)
        return MR_ENOMEM;
    rc = MR_ECORRUPT;
    /* The state first: the memory storage's snapshot keeps the sessions as of
     * its index (mr_sessions_copy), and that index is the applied one. */
    if (r->state_len > 0 && !mr_state_decode(n, g, r->state, r->state_len, true, NULL))
        goto fail;
    if ((sessions = mr_sessions_copy(n, g, &sessions_len)) == NULL) {
        rc = MR_ENOMEM;
        goto fail;
    }
    if (r->log_start_index > 0) {
        struct raft_snapshot s;
        memset(&s, 0, sizeof s);
        s.index = r->log_start_index;
        s.term = r->log_start_term;
        s.conf = r->conf_state;
        if (r->applied == r->log_start_index) {
            s.data = sessions;
            s.len = sessions_len;
        }
        if (raft_memory_storage_apply_snapshot(g->ms, &s) != RAFT_OK)
            goto fail;
    }
    for (size_t i = 0; i < r->n_entries; i++)
        if (r->entries[i].index != r->log_start_index + 1 + i)
            goto fail;
    if ((r->n_entries > 0 &&
         raft_memory_storage_append(g->ms, r->entries, r->n_entries) != RAFT_OK) ||
        raft_memory_storage_set_hard_state(g->ms, &r->hard_state) != RAFT_OK ||
        raft_memory_storage_set_conf_state(g->ms, &r->conf_state) != RAFT_OK)
        goto fail;
    if (r->applied < r->log_start_index ||
        r->applied > r->log_start_index + r->n_entries)
        goto fail;
    if (r->applied > r->log_start_index)
        (void)raft_memory_storage_create_snapshot(g->ms, r->applied, &r->conf_state,
                                                  sessions, sessions_len);
    mr_free(n, sessions);
    sessions = NULL;
    if (mr_map_node(g, r->replica_id) == 0 &&
        mr_map_set(n, g, r->replica_id, n->cfg.node_id) != MR_OK)
        goto fail;
    g->applied = r->applied;
    g->meta_applied = r->applied;
    {
        struct mr_tomb *t = mr_tomb_find(n, r->group);
        if (t != NULL && r->replica_id >= t->min_replica)
            g->announced = t->announced;
    }
    g->log_start_index = r->log_start_index;
    g->log_start_term = r->log_start_term;
    if ((rc = mr_group_start(n, g, r->applied)) != MR_OK)
        goto fail;
    g->flags &= ~MR_G_META;
    /* The core starts without a leader, and a follower without one grants any
     * PreVote: a quiesced leader sends it nothing, so two followers restarted
     * together elected one of them in every group a live node led (finding 25).
     * The leader it followed in its stored term (its state keeps it) is held
     * as a woken follower holds its own: its node's liveness stands in for it,
     * four election timeouts at most from its wake (mr_lease_before_vote;
     * it sleeps until its turn, mr_restart.c). */
    if (g->x != NULL && g->x->lease_leader != RAFT_NONE) {
        if (g->x->lease_term == r->hard_state.term)
            g->x->lease_at = n->now;
        else
            g->x->lease_leader = RAFT_NONE;
    }
    mr_restart_enqueue(n, g, mr_state_led(r->state, r->state_len, r->replica_id,
                                          r->hard_state.term));
    return MR_OK;
fail:
    mr_free(n, sessions);
    mr_group_destroy(n, g);
    return rc;
}

int mr_restore_announced(struct mr_node *n, mr_group_id group, raft_index index)
{
    struct mr_group *g;
    struct mr_tomb *t;
    if (n->busy)
        return MR_EBUSY;
    if ((g = mr_group_find(n, group)) == NULL) {
        /* A replica the host could not restore (its tombstone has the meta row's
         * applied index, which may trail its events): a later replica here must
         * not announce them again either. */
        if ((t = mr_tomb_find(n, group)) == NULL)
            return MR_ENOGROUP;
        if (index > t->announced)
            t->announced = index;
        return MR_OK;
    }
    if (index > g->announced)
        g->announced = index;
    return MR_OK;
}

int mr_restore_tombstone(struct mr_node *n, mr_group_id group, raft_id min_replica_id,
                         raft_index applied, uint32_t incarnation)
{
    struct mr_group *g = mr_group_find(n, group);
    struct mr_tomb *t;
    int rc;
    if (n->busy)
        return MR_EBUSY;
    if ((rc = mr_tomb_set(n, group, min_replica_id, applied, incarnation, false)) != MR_OK)
        return rc;
    /* A dropped group's replica applied its removal last: the index it notices
     * carry (restored as 0, a removal requested elsewhere failed as deleted when
     * it had committed; found by a review). */
    t = mr_tomb_find(n, group);
    if (min_replica_id == UINT64_MAX && t->removed_at == 0)
        t->removed_at = applied;
    /* Restored before its tombstone: a later replica (a node added again) learns
     * how far the earlier ones announced. */
    if (g != NULL && g->replica_id >= min_replica_id && applied > g->announced)
        g->announced = applied;
    return MR_OK;
}

/* ------------------------------------------------------------ tick */

int mr_tick(struct mr_node *n)
{
    if (n->busy)
        return MR_EBUSY;
    n->now++;
    if (n->now % n->cfg.heartbeat_ticks == 0)
        n->hb_flush_due = true;
    mr_peers_tick(n);
    if (n->reprobes.len > 0 && n->now >= n->reprobe_due)
        mr_reprobe_tick(n);
    if (mr_restart_pending(n))
        mr_restart_tick(n);
    /* Backwards: a group that quiesces is swapped with the last one, already seen. */
    for (uint32_t i = n->n_active; i-- > 0;) {
        struct mr_group *g = n->active[i];
        bool need;
        if (mr_quiesce_tick(n, g))
            continue;
        (void)mr_core_step(n, raft_tick(g->raft));
        mr_campaign_tick(n, g);
        need = mr_waiters_tick(n, g);
        if (need || raft_has_ready(g->raft))
            mr_group_mark(n, g);
    }
    return MR_OK;
}

/* ------------------------------------------------------------ names */

const char *mr_strerror(int rc)
{
    switch (rc) {
    case MR_OK: return "ok";
    case MR_ENOMEM: return "out of memory";
    case MR_EINVAL: return "invalid argument";
    case MR_ENOGROUP: return "group does not exist";
    case MR_EEXIST: return "group already exists";
    case MR_EGROUP_DELETED: return "raft group deleted";
    case MR_ESTOPPED: return "raft processing stopped";
    case MR_ETIMEOUT: return "timed out";
    case MR_ENOTMEMBER: return "node is not a member of the group";
    case MR_EBADCONF: return "membership change not valid for the current membership";
    case MR_ENOTLEADER: return "no leader";
    case MR_EBUSY: return "batch not advanced";
    case MR_ETOOBIG: return "command too large";
    case MR_ESTORAGE: return "storage callback failed";
    case MR_ECORRUPT: return "corrupt state";
    case MR_EEXPIRED: return "command expired before it committed";
    case MR_EUNKNOWN: return "timed out: outcome unknown after a snapshot";
    case MR_EREMOVED: return "this node was removed from the group: outcome unknown";
    case MR_EFULL: return "this node has max_groups groups";
    default: return "unknown error";
    }
}

const char *mr_event_type_name(int type)
{
    switch (type) {
    case MR_EVENT_COMMAND: return "command";
    case MR_EVENT_MEMBERSHIP_CHANGE: return "membership_change";
    case MR_EVENT_LEADER_ELECTED: return "leader_elected";
    case MR_EVENT_ELECTION_STARTED: return "election_started";
    case MR_EVENT_GROUP_CREATED: return "group_created";
    case MR_EVENT_GROUP_REMOVED: return "group_removed";
    case MR_EVENT_SNAPSHOT_APPLIED: return "snapshot_applied";
    default: return NULL;
    }
}

const char *mr_role_name(const struct mr_group_status *st)
{
    if (st->role == RAFT_LEADER)
        return "leader";
    if (st->role == RAFT_CANDIDATE || st->role == RAFT_PRE_CANDIDATE)
        return "candidate";
    return st->is_learner ? "learner" : "follower";
}

/* ------------------------------------------------------------ introspection */

static void status_of(const struct mr_node *n, const struct mr_group *g,
                      struct mr_group_status *st)
{
    struct raft_conf_state cs;
    memset(st, 0, sizeof *st);
    st->group = g->id;
    st->node_id = n->cfg.node_id;
    st->replica_id = g->replica_id;
    st->role = raft_get_role(g->raft);
    st->is_learner = raft_is_learner(g->raft, g->replica_id);
    st->term = raft_get_term(g->raft);
    st->leader_replica = raft_get_leader(g->raft);
    st->leader_node = st->leader_replica != RAFT_NONE ? mr_map_node(g, st->leader_replica) : 0;
    st->commit = raft_get_commit(g->raft);
    st->applied = g->applied;
    st->first_index = raft_get_first_index(g->raft);
    st->last_index = raft_get_last_index(g->raft);
    raft_get_conf_state(g->raft, &cs);
    st->n_voters = cs.n_voters;
    st->n_learners = cs.n_learners;
    for (uint32_t i = 0; i < cs.n_voters && i < MR_MAX_MEMBERS; i++)
        st->voters[i] = mr_map_node(g, cs.voters[i]);
    for (uint32_t i = 0; i < cs.n_learners && i < MR_MAX_MEMBERS; i++)
        st->learners[i] = mr_map_node(g, cs.learners[i]);
    st->quiesced = g->active_pos == MR_NOT_ACTIVE;
}

int mr_group_status(const struct mr_node *n, mr_group_id group, struct mr_group_status *out)
{
    const struct mr_group *g = mr_group_find(n, group);
    if (g == NULL || (g->flags & MR_G_GONE))
        return MR_ENOGROUP;
    status_of(n, g, out);
    return MR_OK;
}

int mr_foreach_group(const struct mr_node *n,
                     int (*fn)(void *arg, const struct mr_group_status *st), void *arg)
{
    const struct mr_group *g, *tmp;
    struct mr_group_status st;
    HASH_ITER(hh, n->groups, g, tmp) {
        int rc;
        if (g->flags & MR_G_GONE)
            continue;
        status_of(n, g, &st);
        if ((rc = fn(arg, &st)) != 0)
            return rc;
    }
    return 0;
}

size_t mr_group_count(const struct mr_node *n)
{
    return n->n_groups;
}

size_t mr_active_group_count(const struct mr_node *n)
{
    return n->n_active;
}

bool mr_group_exists(const struct mr_node *n, mr_group_id group)
{
    const struct mr_group *g = mr_group_find(n, group);
    return g != NULL && !(g->flags & MR_G_GONE);
}

bool mr_group_tombstoned(const struct mr_node *n, mr_group_id group)
{
    const struct mr_tomb *t = mr_tomb_find(n, group);
    return t != NULL && t->min_replica == UINT64_MAX;
}

void mr_get_counters(const struct mr_node *n, struct mr_counters *out)
{
    *out = n->c;
}

#define C(f) {#f, offsetof(struct mr_counters, f)}
static const struct {
    const char *name;
    size_t off;
} counter_table[] = {
    C(envelopes_sent), C(envelopes_received), C(messages_sent), C(messages_received),
    C(appends_sent), C(empty_appends_sent), C(append_responses_sent), C(durable_notices_sent),
    C(proposals_forwarded),
    C(bytes_sent), C(bytes_received), C(heartbeats_sent), C(heartbeats_received),
    C(heartbeat_resps_sent), C(heartbeat_resps_received), C(liveness_sent),
    C(batches), C(entries_appended), C(entries_applied), C(events),
    C(snapshots_sent), C(snapshots_applied), C(compactions),
    C(proposals), C(reproposals), C(duplicates), C(held_commands), C(expired),
    C(quiesced), C(woken), C(groups_created), C(groups_removed),
    C(dropped), C(malformed), C(conflicts), C(groups_refused),
};
#undef C

mr_group_id mr_last_conflict(const struct mr_node *n)
{
    return n->last_conflict;
}

uint64_t mr_retained_bytes(const struct mr_node *n)
{
    return n->retained;
}

void mr_set_log_retention_bytes(struct mr_node *n, uint64_t per_group, uint64_t total)
{
    n->cfg.log_retention_bytes = per_group;
    n->cfg.log_retention_bytes_total = total;
    retention_defaults(&n->cfg);
}

void mr_set_restart_wakes_per_tick(struct mr_node *n, uint32_t per_tick)
{
    n->cfg.restart_wakes_per_tick = per_tick != 0 ? per_tick : MR_RESTART_WAKES_DEFAULT;
}

size_t mr_counter_count(void)
{
    return sizeof counter_table / sizeof counter_table[0];
}

const char *mr_counter_name(size_t i)
{
    return i < mr_counter_count() ? counter_table[i].name : NULL;
}

uint64_t mr_counter_value(const struct mr_node *n, size_t i)
{
    uint64_t v;
    if (i >= mr_counter_count())
        return 0;
    memcpy(&v, (const unsigned char *)&n->c + counter_table[i].off, sizeof v);
    return v;
}

bool mr_peer_counters(const struct mr_node *n, mr_node_id node, struct mr_peer_counters *out)
{
    const struct mr_peer *p = mr_peer_find(n, node);
    if (p == NULL)
        return false;
    *out = p->pc;
    return true;
}
