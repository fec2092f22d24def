/*
 * mr_quiesce.c — quiescence: idle groups leave the active set so that ticks and
 * heartbeats cost nothing for them (CockroachDB #17609: tick cost must follow the
 * ACTIVE groups).
 *
 *  - A leader that is fully replicated (raft_is_fully_replicated: every member's
 *    match == last == commit == applied) with nothing pending for quiesce_ticks
 *    ticks sends each follower a last heartbeat entry flagged MR_HB_QUIESCE (term,
 *    commit) and quiesces.  A member left behind on a node declared down does not
 *    hold it awake while a quorum of voters is alive: the group is noted on that
 *    node's lagging list and wakes to catch it up when it is heard again.
 *  - A follower quiesces when it matches such a heartbeat: same term and leader,
 *    commit == the heartbeat's commit, and fully replicated itself.  One that does
 *    not match keeps ticking; if it campaigns, its messages wake the others.
 *  - A replica no leader reached (mr_unreached.c), and one without a leader that
 *    hears no quorum of its voters, sleep after two election timeouts.
 *
 * A quiesced follower's leader lease is its leader's node liveness (mr_lease.c);
 * when a node is declared down, the groups it led fail over (mr_failover.c).
 */
#include <stdlib.h>

#include "mr_internal.h"

static void quiesce(struct mr_node *n, struct mr_group *g, bool lagging)
{
    mr_group_sleep(n, g);
    mr_group_mark(n, g); /* its status changed: the next batch reports it visited */
    g->flags &= ~MR_G_QREQ;
    raft_release_memory(g->raft);
    /* A member left behind (on a dead node) keeps what the leader keeps for it. */
    mr_group_compact(n, g, !lagging);
    mr_storage_release(g);
    mr_group_extra_release(n, g);
    n->c.quiesced++;
}

/* To every follower whose log matches the leader's (`only`: to that replica). */
static void send_quiesce(struct mr_node *n, struct mr_group *g, raft_id only)
{
    size_t np = raft_progress_count(g->raft);
    for (size_t i = 0; i < np; i++) {
        struct raft_progress_info pi;
        struct mr_heartbeat hb;
        mr_node_id to;
        if (!mr_follower_heartbeat(g, i, &pi, &to, &hb) || (only != RAFT_NONE && pi.id != only))
            continue;
        /* A member left behind (its node down) must not take the commit index:
         * its log may hold other entries below it (etcd sends min(match, commit)). */
        if (pi.match != raft_get_last_index(g->raft))
            continue;
        hb.commit = raft_get_commit(g->raft);
        hb.flags = MR_HB_QUIESCE;
        mr_queue_heartbeat(n, to, &hb, false);
    }
}

void mr_quiesce_answer_restarted(struct mr_node *n, struct mr_group *g, raft_id from)
{
    /* Asleep, it quiesced with this log and nothing happened since (anything
     * would have woken it); the follower's match is what it acknowledged, durably,
     * before its restart.  A member still behind gets nothing here: the leader
     * woke for it (recv_resp) if it has something to send. */
    if (g->active_pos == MR_NOT_ACTIVE && raft_get_role(g->raft) == RAFT_LEADER &&
        raft_get_transferee(g->raft) == RAFT_NONE)
        send_quiesce(n, g, from);
}

struct lag_ctx {
    struct mr_node *n;
    const struct mr_group *g;
};

/* A member behind the leader may be ignored for quiescence when its node is down:
 * declared down, or not heard since this node started dead_ticks ago — a node
 * restarted while another was down never hears it, never declares it down, and
 * its groups with a member there ticked and heartbeat for as long as it stayed
 * down (found by a review; mr_receive serves the lagging list when it is first
 * heard). */
static bool lagging_dead(void *arg, raft_id id)
{
    const struct lag_ctx *lc = arg;
    return mr_replica_node_unheard(lc->n, lc->g, id);
}

static int cmp_group_id(const void *a, const void *b)
{
    mr_group_id x = *(const mr_group_id *)a, y = *(const mr_group_id *)b;
    return x < y ? -1 : x > y;
}

/*
 * A group wakes and quiesces again as often as it is used while a member's node is
 * down, and is noted anew each time (a wake clears MR_G_LAGGING, so that the next
 * quiescence notes the nodes it then leaves behind): the list grew by one entry
 * per cycle for as long as the node stayed down (200 entries for one group after
 * 200 commands; found by a review).  Its repeats are removed whenever it doubles,
 * which keeps it within twice the groups it names at O(log n) per entry.
 */
static void push_lagging(struct mr_node *n, struct mr_peer *p, mr_group_id id)
{
    mr_group_id *ids;
    size_t k = 0;
    if (mr_vec_push(n, &p->lagging, sizeof id, &id) == NULL ||
        p->lagging.len < 2 * (p->lagging_distinct > 32 ? p->lagging_distinct : 32))
        return;
    ids = p->lagging.data;
    qsort(ids, p->lagging.len, sizeof *ids, cmp_group_id);
    for (size_t i = 0; i < p->lagging.len; i++)
        if (k == 0 || ids[i] != ids[k - 1])
            ids[k++] = ids[i];
    p->lagging.len = p->lagging_distinct = k;
}

/* Remembers g on the peers of its lagging members (woken when they come back);
 * once until they do or g wakes (MR_G_LAGGING). */
static void note_lagging(struct mr_node *n, struct mr_group *g)
{
    size_t np = raft_progress_count(g->raft);
    raft_index last = raft_get_last_index(g->raft);
    if (g->flags & MR_G_LAGGING)
        return;
    g->flags |= MR_G_LAGGING;
    for (size_t i = 0; i < np; i++) {
        struct raft_progress_info pi;
        struct mr_peer *p;
        if (raft_progress_at(g->raft, i, &pi) != RAFT_OK || pi.match == last)
            continue;
        if ((p = mr_peer_find(n, mr_map_node(g, pi.id))) != NULL)
            push_lagging(n, p, g->id);
    }
}

/*
 * Whether g is a replica without a leader (none known, or one on a node held
 * down) that hears no quorum of its voters: it cannot elect anyone, nor learn of
 * a leader but through a message of its group.  A node cut off from every other
 * woke each group whose leader's node it declared down, and its own leaders
 * stepped down under CheckQuorum; every one of them then ticked and sent a PreVote
 * each election timeout for as long as the cut lasted (CockroachDB #17609: tick
 * cost must follow the groups at work; test_mr_no_quorum.c).
 */
static bool leaderless_without_quorum(const struct mr_node *n, const struct mr_group *g, int role)
{
    raft_id leader = raft_get_leader(g->raft);
    if (role == RAFT_LEADER ||
        (role == RAFT_FOLLOWER && leader != RAFT_NONE && !mr_replica_node_unheard(n, g, leader)))
        return false;
    return !mr_quorum_alive(n, g);
}

/* Asleep for want of a quorum: noted on the peers of its voters not heard, whose
 * return wakes it (mr_receive.c).  A message of its group wakes it too, as any
 * sleeping replica. */
static void sleep_without_quorum(struct mr_node *n, struct mr_group *g)
{
    struct raft_conf_state cs;
    raft_get_conf_state(g->raft, &cs);
    g->flags |= MR_G_NO_QUORUM | MR_G_LAGGING; /* (both cleared by its wake) */
    for (uint32_t i = 0; i < cs.n_voters; i++) {
        mr_node_id node = mr_map_node(g, cs.voters[i]);
        struct mr_peer *p;
        if (node == 0 || node == n->cfg.node_id || mr_node_alive(n, node))
            continue;
        if ((p = mr_peer_get(n, node)) != NULL)
            push_lagging(n, p, g->id);
    }
    quiesce(n, g, false);
    n->c.slept_without_quorum++;
}

bool mr_quiesce_tick(struct mr_node *n, struct mr_group *g)
{
    int role = raft_get_role(g->raft);
    bool unreached;
    if (g->waiters != NULL || g->n_boot > 0 || (g->x != NULL && g->x->campaign_at != 0) ||
        (g->flags & MR_G_GONE)) {
        g->idle = 0;
        return false;
    }
    if (role == RAFT_LEADER && g->x != NULL && n->now < g->x->awake_until) {
        g->idle = 0;
        return false;
    }
    if (role == RAFT_LEADER) {
        struct lag_ctx lc = {n, g};
        bool full = raft_is_fully_replicated(g->raft);
        if ((!full && !(raft_is_fully_replicated_except(g->raft, lagging_dead, &lc) &&
                        mr_quorum_alive(n, g))) ||
            raft_get_transferee(g->raft) != RAFT_NONE) {
            g->idle = 0;
            return false;
        }
        if (g->idle < UINT16_MAX)
            g->idle++;
        if (g->idle < n->cfg.quiesce_ticks)
            return false;
        if (!full)
            note_lagging(n, g);
        send_quiesce(n, g, RAFT_NONE);
        quiesce(n, g, !full);
        return true;
    }
    if (role == RAFT_FOLLOWER && raft_is_learner(g->raft, g->replica_id))
        mr_learner_tick(n, g);
    unreached = mr_unreached(n, g, role);
    if (unreached || leaderless_without_quorum(n, g, role)) {
        /* Two election timeouts: time to vote in the election that created it and
         * to hear the winner (mr_unreached.c), or for the election that a peer
         * heard again meanwhile starts. */
        if (g->idle < UINT16_MAX)
            g->idle++;
        if (g->idle < 2 * n->cfg.election_ticks)
            return false;
        if (unreached) {
            mr_unreached_sleep(n, g);
            quiesce(n, g, false);
        } else {
            sleep_without_quorum(n, g);
        }
        return true;
    }
    g->idle = 0;
    if (role == RAFT_FOLLOWER && (g->flags & MR_G_QREQ) && g->x != NULL) {
        if (raft_get_term(g->raft) != g->x->q_term ||
            raft_get_leader(g->raft) != g->x->q_from) {
            g->flags &= ~MR_G_QREQ;
            return false;
        }
        if (raft_get_commit(g->raft) == g->x->q_commit && raft_is_fully_replicated(g->raft)) {
            quiesce(n, g, false);
            return true;
        }
    }
    return false;
}

