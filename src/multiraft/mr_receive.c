/*
 * mr_receive.c — the input side of the transport: an envelope from another node.
 * Raft messages and coalesced heartbeat entries are stepped into their group, one
 * group at a time, so a higher term in one group never disturbs another (and each
 * heartbeat carries its group's own term and commit: CockroachDB #315).  Unknown
 * groups are created lazily for messages that claim leadership and for vote
 * requests; everything that does not fit (tombstoned, stale replica, sender
 * mismatch) is counted and dropped.
 */
#include "mr_internal.h"

/* Messages that create the replica they are addressed to.  Those of a leader, and
 * vote requests: a voter added while its node was down has no replica until a
 * leader reaches it, and if the group lost its leader meanwhile that voter may be
 * needed for every quorum.  Its new replica, with an empty log and configuration,
 * votes for any candidate (the core's rules, raft.h) — as a new server does in the
 * dissertation (§4.2.1) — and the group gets a leader again (docs/sim-findings.md,
 * finding 16).  The senders are members of a committed configuration holding this
 * node; a removed node's tombstone refuses them (mr_group_lazy). */
static bool creates_replica(uint8_t type)
{
    return type == RAFT_MSG_APPEND || type == RAFT_MSG_HEARTBEAT ||
           type == RAFT_MSG_SNAPSHOT || type == RAFT_MSG_VOTE || type == RAFT_MSG_PREVOTE;
}

static void wake(struct mr_node *n, struct mr_group *g)
{
    if (g->active_pos == MR_NOT_ACTIVE) {
        n->c.woken++;
        mr_group_wake(n, g);
    }
}

/*
 * Whether a message from replica `from` on node `from_node` to replica `to` of this
 * node contradicts g's replica map.  A replica id names one replica, on one node,
 * for the life of a group, so in one group the two never disagree once the ids are
 * committed.  They do when the message comes from another group under the same id:
 * one created on two nodes before either learned of the other (each call starts a
 * group of its own, with replica 1 on its creator).  Such a message must not
 * replace g's replica (mr_group_lazy), which would drop it and every command
 * committed in it.
 */
static bool contradicts_map(const struct mr_node *n, const struct mr_group *g,
                            raft_id from, mr_node_id from_node, raft_id to)
{
    mr_node_id known_from = mr_map_node(g, from);
    mr_node_id known_to = mr_map_node(g, to);
    return (known_from != 0 && known_from != from_node) ||
           (known_to != 0 && known_to != n->cfg.node_id);
}

/* A message of another group under this id was refused (target(), learn(),
 * notify_removed()). */
static void count_conflict(struct mr_node *n, mr_group_id group)
{
    n->c.conflicts++;
    n->last_conflict = group;
}

/* Whether an item of incarnation `inc` comes from another group than the replica
 * (or tombstone) of incarnation `mine` under the same id: one created on two nodes
 * before either learned of the other (each call chooses its own incarnation).  0
 * on either side is unknown, and taken. */
static bool other_incarnation(uint32_t mine, uint32_t inc)
{
    return inc != 0 && mine != 0 && inc != mine;
}

/* Whether g is a live replica here and an item of incarnation `inc` is not
 * meant for it (target(), recv_probe()). */
static bool of_another_group(const struct mr_group *g, uint32_t inc)
{
    return g != NULL && !(g->flags & MR_G_GONE) && other_incarnation(g->incarnation, inc);
}

/* The group/replica an item is addressed to, created lazily if allowed (the
 * sender is learned into its map by the caller), with the item's incarnation.  An
 * item of another incarnation is refused and counted.  So is one without an
 * incarnation (sent by a replica restored from state stored before incarnations)
 * whose map it contradicts, when it would make a newer replica replace this one:
 * then the replica is woken (a zombie among such replicas then asks for votes and
 * learns that it was removed: replica_removed(), below). */
static struct mr_group *target(struct mr_node *n, mr_group_id group, uint32_t inc,
                               raft_id to, bool create, raft_id from, mr_node_id from_node)
{
    struct mr_group *g = mr_group_find(n, group);
    if (to == RAFT_NONE)
        return NULL;
    if (of_another_group(g, inc)) {
        count_conflict(n, g->id);
        return NULL;
    }
    if (g != NULL && g->replica_id == to)
        return (g->flags & MR_G_GONE) ? NULL : g;
    if (!create)
        return NULL;
    if (g != NULL && !(g->flags & MR_G_GONE) && to > g->replica_id &&
        contradicts_map(n, g, from, from_node, to)) {
        count_conflict(n, g->id);
        wake(n, g);
        return NULL;
    }
    if (g == NULL && mr_groups_full(n)) {
        n->c.groups_refused++;
        return NULL;
    }
    return mr_group_lazy(n, group, to, inc);
}

/* Sends a removal notice in the next flush rather than at the next heartbeat
 * interval: the replica it reaches stops waking its group (and its peers) sooner. */
static void queue_notice(struct mr_node *n, mr_node_id to_node, const struct mr_heartbeat *hb)
{
    struct mr_peer *p;
    mr_queue_heartbeat(n, to_node, hb, true);
    if ((p = mr_peer_find(n, to_node)) != NULL)
        p->urgent_hb = true;
}

/* A message of incarnation `inc` for a group removed here (a committed removal):
 * tell the sender's replica, which missed the removal, so that it drops the group
 * too instead of campaigning forever.  The notice names the removed group's
 * incarnation.  A message of another incarnation comes from another group under
 * the same id, which nobody removed: it gets no notice, and counts as a conflict. */
static void notify_removed(struct mr_node *n, mr_node_id to_node, mr_group_id group,
                           raft_id to, uint32_t inc)
{
    struct mr_tomb *t = mr_tomb_find(n, group);
    struct mr_heartbeat hb;
    if (t == NULL || t->min_replica != UINT64_MAX || to == RAFT_NONE)
        return;
    if (other_incarnation(t->incarnation, inc)) {
        count_conflict(n, group);
        return;
    }
    memset(&hb, 0, sizeof hb);
    hb.group = group;
    hb.incarnation = t->incarnation;
    hb.to = to;
    hb.commit = t->removed_at;
    hb.flags = MR_HB_REMOVED;
    queue_notice(n, to_node, &hb);
}

/*
 * Whether replica `replica` of g is gone for good: a committed change removed it.
 * A replica exists only if a committed change added it (a leader talks only to
 * the members of its committed configuration, and a configuration takes effect
 * when committed, raft.h), and the ids of added replicas grow along the log: a
 * leader allocates next_replica_id, above every id its log named, and proposes no
 * change while one it has not applied is in its log (dissertation §4.1, one change
 * at a time).  So `replica` was added before g's configuration was made, and is no
 * longer in it, when
 *  - a change g applied named it or a higher id (conf_seen, exact as of the
 *    applied index; the configuration is at least that recent), or
 *  - the configuration holds a higher id, added after it.
 * next_replica_id cannot serve: it also counts ids of changes still uncommitted
 * (replica maps restored with them), and a snapshot brings its sender's.  Ids are
 * never reused once committed, so such a replica never comes back.
 */
static bool replica_removed(const struct mr_group *g, raft_id replica)
{
    struct raft_conf_state cs;
    bool later = replica <= g->conf_seen;
    if (replica == g->replica_id)
        return false;
    raft_get_conf_state(g->raft, &cs);
    for (uint32_t i = 0; i < cs.n_voters; i++) {
        if (cs.voters[i] == replica)
            return false;
        later |= cs.voters[i] > replica;
    }
    for (uint32_t i = 0; i < cs.n_learners; i++) {
        if (cs.learners[i] == replica)
            return false;
        later |= cs.learners[i] > replica;
    }
    return later;
}

/* A vote request or a probe from a replica removed from g (it missed its removal: a
 * "zombie" asks for votes every election timeout, waking the group; a replica no
 * leader reached would stay for good): tell it, so that its node drops it. */
static void notify_replica_removed(struct mr_node *n, mr_node_id to_node,
                                   struct mr_group *g, raft_id to)
{
    struct mr_heartbeat hb;
    mr_heartbeat_of(g, to, &hb);
    hb.term = raft_get_term(g->raft);
    hb.commit = g->applied; /* at or past the removal: the end of what it missed */
    hb.flags = MR_HB_REPLICA_REMOVED;
    queue_notice(n, to_node, &hb);
}

/* Learns replica -> node from the envelope; false if it contradicts the map.
 * Replica 1 is its group's creator, bound by the group's first entry and never
 * given to another node: a message from replica 1 on another node comes from
 * another group under the same id, and counts as a conflict (contradicts_map()).
 * Other ids may contradict a map for a while without that: one allocated for a
 * change that never committed can be allocated again, for another node. */
static bool learn(struct mr_node *n, struct mr_group *g, raft_id replica, mr_node_id node)
{
    mr_node_id known = mr_map_node(g, replica);
    if (replica == RAFT_NONE)
        return false;
    if (known == 0)
        return mr_map_set(n, g, replica, node) == MR_OK;
    if (known == node)
        return true;
    if (replica == 1)
        count_conflict(n, g->id);
    return false;
}

static void recv_message(struct mr_node *n, mr_node_id from, const struct mr_message *mm)
{
    const struct raft_message *m = &mm->msg;
    struct mr_group *g;
    if (m->type < 1 || m->type > RAFT_MSG_TYPE_MAX || m->from == RAFT_NONE ||
        (m->n_entries > 0 && m->entries == NULL) ||
        (m->type == RAFT_MSG_SNAPSHOT &&
         (m->snapshot == NULL ||
          !mr_snapshot_check(n, mm->group, m->snapshot->data, m->snapshot->len)))) {
        n->c.malformed++;
        return;
    }
    g = target(n, mm->group, mm->incarnation, m->to, creates_replica(m->type), m->from, from);
    if (g == NULL || !learn(n, g, m->from, from)) {
        n->c.dropped++;
        if (g == NULL)
            notify_removed(n, from, mm->group, m->from, mm->incarnation);
        return;
    }
    if ((m->type == RAFT_MSG_VOTE || m->type == RAFT_MSG_PREVOTE) &&
        replica_removed(g, m->from)) {
        notify_replica_removed(n, from, g, m->from);
        n->c.dropped++; /* nothing to step: the core ignores non-members' requests */
        return;
    }
    if (m->type == RAFT_MSG_PREVOTE && m->context != 1 && mr_hold_refuses(n, g, m->from)) {
        n->c.dropped++; /* another candidate's turn (mr_failover.c) */
        return;
    }
    if ((m->type == RAFT_MSG_VOTE || m->type == RAFT_MSG_PREVOTE) && m->context != 1 &&
        mr_lease_before_vote(n, g, m->from, m->type == RAFT_MSG_PREVOTE)) {
        n->c.dropped++; /* refused: the requester's PreVote round times out */
        /* A restored replica asleep until its turn refuses on its stored leader's
         * lease, whose election timeouts count from its wake: its turn is now
         * (mr_restart.c), or a stored leader removed meanwhile would keep the
         * group from electing until that turn. */
        if (g->flags & MR_G_RESTORED)
            wake(n, g);
        return;
    }
    if (m->type == RAFT_MSG_TRANSFER_LEADER && mr_replica_node_unheard(n, g, m->index)) {
        /* A forwarded transfer to a node this leader holds down would stop its
         * writes for an election timeout and fail (§3.10): dropped, as the core
         * may drop any message; the requester asks again after its retry
         * interval (mr_request.c). */
        n->c.dropped++;
        return;
    }
    if (m->type == RAFT_MSG_VOTE || m->type == RAFT_MSG_PREVOTE)
        mr_leader_stay_awake(n, g); /* a voter that may not hear it (mr_failover.c) */
    wake(n, g);
    if (m->type == RAFT_MSG_PREVOTE)
        mr_prevote_seen(n, g, m); /* a candidate that cannot win (mr_failover.c) */
    if (m->type == RAFT_MSG_PROPOSE && mr_hold_forwarded(n, g, m))
        return; /* joins this leader's next round (mr_hold.c) */
    (void)mr_core_step(n, raft_step(g->raft, m));
    if (creates_replica(m->type))
        mr_lease_heard(g, m->from);
    mr_group_mark(n, g);
}

static void recv_heartbeat(struct mr_node *n, mr_node_id from, const struct mr_heartbeat *hb)
{
    struct raft_message m;
    struct mr_group *g = target(n, hb->group, hb->incarnation, hb->to, true, hb->from, from);
    if (g == NULL || !learn(n, g, hb->from, from)) {
        n->c.dropped++;
        if (g == NULL)
            notify_removed(n, from, hb->group, hb->from, hb->incarnation);
        return;
    }
    if ((hb->flags & MR_HB_QUIESCE) && g->active_pos == MR_NOT_ACTIVE &&
        raft_get_term(g->raft) == hb->term && raft_get_leader(g->raft) == hb->from &&
        raft_get_commit(g->raft) == hb->commit)
        return; /* already quiesced in agreement (a duplicate) */
    memset(&m, 0, sizeof m);
    m.type = RAFT_MSG_HEARTBEAT;
    m.from = hb->from;
    m.to = hb->to;
    m.term = hb->term;
    m.commit = hb->commit;
    m.context = hb->context;
    wake(n, g);
    (void)mr_core_step(n, raft_step(g->raft, &m));
    mr_lease_heard(g, hb->from);
    if ((hb->flags & MR_HB_QUIESCE) && mr_group_extra(n, g) != NULL) {
        g->flags |= MR_G_QREQ;
        g->x->q_term = hb->term;
        g->x->q_from = hb->from;
        g->x->q_commit = hb->commit;
    }
    mr_group_mark(n, g);
}

/* A probe from a replica that no leader reached (mr_quiesce.c): answered by any
 * replica of the group here, whatever id the prober knows it by, if this node
 * removed the group or knows that replica removed; nothing to step. */
static void recv_probe(struct mr_node *n, mr_node_id from, const struct mr_heartbeat *hb)
{
    struct mr_group *g = mr_group_find(n, hb->group);
    n->c.dropped++;
    if (hb->from == RAFT_NONE)
        return;
    if (g == NULL)
        notify_removed(n, from, hb->group, hb->from, hb->incarnation);
    else if (of_another_group(g, hb->incarnation))
        count_conflict(n, g->id); /* its replica ids are not g's */
    else if (!(g->flags & MR_G_GONE) && replica_removed(g, hb->from))
        notify_replica_removed(n, from, g, hb->from);
}

static void recv_resp(struct mr_node *n, mr_node_id from, const struct mr_heartbeat *hb)
{
    struct raft_message m;
    struct mr_group *g;
    if (hb->flags & MR_HB_PROBE) {
        recv_probe(n, from, hb);
        return;
    }
    g = target(n, hb->group, hb->incarnation, hb->to, false, hb->from, from);
    if (g != NULL && (hb->flags & MR_HB_REMOVED)) {
        /* Only a replica that applied the removal sends this: it is committed.  A
         * removal requested here is done; everything else waiting fails. */
        struct mr_waiter *w, *next;
        for (w = g->waiters; w != NULL; w = next) {
            next = w->next;
            if (w->kind == MR_REQ_REMOVE) {
                mr_complete(n, g, w, MR_OK, hb->commit);
                mr_waiter_unlink(n, g, w);
            }
        }
        mr_group_drop(n, g, UINT64_MAX, hb->commit, 0);
        return;
    }
    if (g != NULL && (hb->flags & MR_HB_REPLICA_REMOVED)) {
        /* This replica was removed and missed it (replica_removed() on the sender):
         * drop it as if it had applied its own removal.  Its group_removed event
         * has the index the sender had applied, the removal's or later: the
         * entries this node had not applied up to it it never records. */
        mr_group_drop(n, g, g->replica_id + 1, hb->commit, 0);
        return;
    }
    if (g == NULL || !learn(n, g, hb->from, from)) {
        n->c.dropped++;
        if (g == NULL)
            notify_removed(n, from, hb->group, hb->from, hb->incarnation);
        return;
    }
    memset(&m, 0, sizeof m);
    m.type = RAFT_MSG_HEARTBEAT_RESP;
    m.from = hb->from;
    m.to = hb->to;
    m.term = hb->term;
    m.context = hb->context;
    m.reject = hb->reject;
    (void)mr_core_step(n, raft_step(g->raft, &m));
    /* A quiesced leader stays asleep unless the answer calls for work (a follower
     * behind, a higher term). */
    if (g->active_pos == MR_NOT_ACTIVE && !raft_has_ready(g->raft)) {
        if (hb->flags & MR_HB_RESTARTED)
            mr_quiesce_answer_restarted(n, g, hb->from);
        return;
    }
    wake(n, g);
    mr_group_mark(n, g);
}

int mr_receive(struct mr_node *n, const struct mr_envelope *env)
{
    struct mr_peer *p;
    if (n->busy)
        return MR_EBUSY;
    if (env == NULL || env->from_node == 0 || env->from_node == n->cfg.node_id)
        return MR_EINVAL;
    if ((env->n_messages > 0 && env->messages == NULL) ||
        (env->n_heartbeats > 0 && env->heartbeats == NULL) ||
        (env->n_heartbeat_resps > 0 && env->heartbeat_resps == NULL))
        return MR_EINVAL;
    if (env->to_node != 0 && env->to_node != n->cfg.node_id) {
        n->c.dropped++;
        return MR_OK;
    }
    p = mr_peer_get(n, env->from_node);
    if (p != NULL && (p->dead || !p->heard) && p->lagging.len > 0) {
        /* Back (or heard for the first time since this node started): the groups
         * that quiesced with it behind catch it up, in turns (mr_restart.c), or at
         * once when its replica asks.  The replicas asleep for want of a quorum
         * (mr_quiesce.c) wake at once: before they slept, they were all awake
         * for as long as the peer was away, and their own randomized timers
         * spread their PreVotes over an election timeout, as then. */
        const mr_group_id *ids = p->lagging.data;
        for (size_t i = 0; i < p->lagging.len; i++) {
            struct mr_group *g = mr_group_find(n, ids[i]);
            if (g == NULL)
                continue;
            g->flags &= ~MR_G_LAGGING;
            if ((g->flags & MR_G_GONE) || g->active_pos != MR_NOT_ACTIVE)
                continue;
            if (raft_get_role(g->raft) == RAFT_LEADER) {
                mr_catch_up_enqueue(n, g);
            } else if ((g->flags & MR_G_NO_QUORUM) && !mr_group_wake_marked(n, g)) {
                /* Out of memory: on no list now, so in the turns, which try a
                 * failed wake again at the next tick (mr_restart.c). */
                mr_catch_up_enqueue(n, g);
            }
        }
        mr_vec_free(n, &p->lagging);
        p->lagging_distinct = 0;
    }
    if (p != NULL) {
        p->heard = true;
        p->dead = false;
        p->last_heard = n->now;
        p->pc.last_heard_tick = n->now;
    }
    n->c.envelopes_received++;
    n->c.messages_received += env->n_messages;
    n->c.heartbeats_received += env->n_heartbeats;
    n->c.heartbeat_resps_received += env->n_heartbeat_resps;
    n->c.bytes_received += 16 + 48 * (env->n_heartbeats + env->n_heartbeat_resps);
    for (size_t i = 0; i < env->n_messages; i++) {
        const struct raft_message *m = &env->messages[i].msg;
        n->c.bytes_received += 64 + (m->snapshot != NULL ? m->snapshot->len : 0);
        for (uint32_t k = 0; m->entries != NULL && k < m->n_entries; k++)
            n->c.bytes_received += 24 + m->entries[k].len;
        recv_message(n, env->from_node, &env->messages[i]);
    }
    for (size_t i = 0; i < env->n_heartbeats; i++)
        recv_heartbeat(n, env->from_node, &env->heartbeats[i]);
    for (size_t i = 0; i < env->n_heartbeat_resps; i++)
        recv_resp(n, env->from_node, &env->heartbeat_resps[i]);
    return MR_OK;
}

int mr_report_unreachable(struct mr_node *n, mr_node_id node)
{
    if (n->busy)
        return MR_EBUSY;
    /* Only active leaders pipeline; quiesced ones send nothing. */
    for (uint32_t i = 0; i < n->n_active; i++) {
        struct mr_group *g = n->active[i];
        if (raft_get_role(g->raft) != RAFT_LEADER)
            continue;
        for (uint32_t k = 0; k < g->n_map; k++)
            if (g->map[k].node == node && g->map[k].id != g->replica_id)
                raft_report_unreachable(g->raft, g->map[k].id);
    }
    return MR_OK;
}
