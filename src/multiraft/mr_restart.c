/*
 * mr_restart.c — after a restart, groups wake in turns.  A node restarted with many
 * groups used to wake every one of them at once: each ticked until its election
 * timeout, then sent a PreVote that woke its leader and the other followers to
 * refuse it; and the nodes that led groups in which it lagged woke all of those at
 * once when they heard it again (CockroachDB #9273: waking 8k ranges after a
 * restart took minutes).  mr_bench's restart_wake, 100,000 groups: all of them awake
 * at once on the restarted node, 28 ms mean and 68 ms longest tick, 166,667 raft
 * messages from it and 200,000 wake-ups on the other two.
 *
 * A restored replica now sleeps, as a quiesced one does, and wakes:
 *  - at once if its log holds entries it has not applied (they need the commit
 *    index, which only an awake follower obtains) or if it was still adding the
 *    creator's members;
 *  - at the first message of its group or the first request made to it, as any
 *    sleeping replica does — a PreVote it refuses on its stored leader's lease
 *    included (mr_receive.c) — or when its stored leader's node is declared down
 *    (mr_wake_led_by);
 *  - otherwise in its turn, at most restart_wakes_per_tick per tick: first the
 *    replicas that led their group before the restart (when the restart was too
 *    short for the others to declare this node down, their group has no leader
 *    until one of its replicas times out), then the others, each of which asks
 *    its stored leader to quiesce it again (ask_leader) instead of waiting for
 *    its election timeout.
 * Sleeping until its turn changes no safety argument (a replica that does not
 * tick only delays elections), and every restored replica does wake: one whose
 * stored leader is gone, or whose group changed leaders while this node was down
 * without the new leader knowing this node lags, finds out as before, a little
 * later.
 *
 * A peer heard again after it was declared down gets the same treatment from
 * this node's leaders: the groups that quiesced while it lagged wake in turns (in
 * the same budget, after the replicas that led before a restart) to catch it up,
 * or at once when its replica asks.
 */
#include "mr_internal.h"

/* The queues, in the order they are served. */
enum { Q_LED, Q_CATCH_UP, Q_RESTORED, N_QUEUES };

static void ask_leader(struct mr_node *n, struct mr_group *g);

void mr_restart_enqueue(struct mr_node *n, struct mr_group *g, bool led)
{
    struct mr_vec *q = &n->wake_queue[led ? Q_LED : Q_RESTORED];
    if (raft_get_last_index(g->raft) > g->applied || g->n_boot > 0 ||
        mr_vec_push(n, q, sizeof g->id, &g->id) == NULL) {
        mr_group_wake(n, g); /* (out of memory: at once, as before) */
        /* It needs the commit index now: a learner, which never campaigns, would
         * otherwise wait for mr_learner_tick (found by a review). */
        if (!led)
            ask_leader(n, g);
        return;
    }
    g->flags |= MR_G_RESTORED;
}

void mr_catch_up_enqueue(struct mr_node *n, struct mr_group *g)
{
    /* Once: a peer that keeps dropping out and coming back before the group's
     * turn (a crash loop) would otherwise queue it again at each return. */
    if (g->flags & MR_G_CATCH_UP)
        return;
    if (mr_vec_push(n, &n->wake_queue[Q_CATCH_UP], sizeof g->id, &g->id) == NULL) {
        n->c.woken++; /* (out of memory: at once, as before) */
        mr_group_wake(n, g);
        mr_group_mark(n, g);
        return;
    }
    g->flags |= MR_G_CATCH_UP;
}

/* Whether g, queued in queue k, is still to be woken. */
static bool still_asleep(const struct mr_group *g, int k)
{
    if (g == NULL || (g->flags & MR_G_GONE) || g->active_pos != MR_NOT_ACTIVE)
        return false;
    /* (a restored replica: not woken and asleep since, nor replaced by another;
     * a catch-up: still leads, asleep, or still asleep without a quorum after its
     * wake failed, mr_receive) */
    return k == Q_CATCH_UP ? raft_get_role(g->raft) == RAFT_LEADER || (g->flags & MR_G_NO_QUORUM)
                           : (g->flags & MR_G_RESTORED) != 0;
}

/* A follower whose stored leader is another replica asks it whether it still
 * leads, quiesced, with the same log: then it answers with the heartbeat it
 * quiesces followers with, and this one sleeps again within a few ticks.  Without
 * it, the replica waited for its election timeout and sent a PreVote that woke the
 * leader and every other follower to refuse it (mr_bench's restart_wake: 166,667
 * raft messages and 200,000 wake-ups on the other nodes for 100,000 groups).  Any
 * other answer, or none, leaves it on the path it took before. */
static void ask(struct mr_node *n, struct mr_group *g, raft_id replica)
{
    struct mr_heartbeat hb;
    mr_node_id node = mr_map_node(g, replica);
    if (node == 0 || node == n->cfg.node_id)
        return;
    mr_heartbeat_of(g, replica, &hb);
    hb.term = raft_get_term(g->raft);
    hb.flags = MR_HB_RESTARTED;
    mr_queue_heartbeat(n, node, &hb, true);
}

static void ask_leader(struct mr_node *n, struct mr_group *g)
{
    if (g->x == NULL || g->x->lease_leader == RAFT_NONE ||
        g->x->lease_term != raft_get_term(g->raft))
        return;
    ask(n, g, g->x->lease_leader);
}

/*
 * A learner never campaigns, so nothing of its own wakes a quiesced leader when it
 * is awake without hearing one: woken at a restart with entries to apply, its one
 * question lost, or woken when its leader's node was declared down and finding
 * the leader asleep when the node is heard again.  It stayed awake, ticking, its
 * commit index stale, for good (found by a review).  So, an election timeout
 * after it last heard a leader, and every election timeout after (at a tick of
 * its own, by group id, so that many learners spread out), it asks as a restarted
 * follower does: its leader if it knows one, else every voter.  A leader asleep
 * answers with the heartbeat that quiesces it, or wakes if the learner is behind.
 */
void mr_learner_tick(struct mr_node *n, struct mr_group *g)
{
    uint32_t e = n->cfg.election_ticks, elapsed = raft_get_election_elapsed(g->raft);
    struct raft_conf_state cs;
    raft_id leader = raft_get_leader(g->raft);
    if (elapsed < e || (elapsed + g->id) % e != 0)
        return;
    if (leader != RAFT_NONE && leader != g->replica_id) {
        ask(n, g, leader);
        return;
    }
    raft_get_conf_state(g->raft, &cs);
    for (uint32_t i = 0; i < cs.n_voters; i++)
        ask(n, g, cs.voters[i]);
}

/* Drops the part of queue k already read: all of it once read to its end, the
 * first half once past it (a queue still being read may grow: catch-ups). */
static void trim(struct mr_node *n, int k)
{
    struct mr_vec *q = &n->wake_queue[k];
    size_t pos = n->wake_pos[k];
    if (pos == q->len) {
        mr_vec_free(n, q);
        n->wake_pos[k] = 0;
    } else if (pos > q->len / 2) {
        mr_group_id *ids = q->data;
        memmove(ids, ids + pos, (q->len - pos) * sizeof *ids);
        q->len -= pos;
        n->wake_pos[k] = 0;
    }
}

void mr_restart_tick(struct mr_node *n)
{
    uint32_t budget = n->cfg.restart_wakes_per_tick;
    for (int k = 0; k < N_QUEUES && budget > 0; k++) {
        struct mr_vec *q = &n->wake_queue[k];
        const mr_group_id *ids = q->data;
        while (n->wake_pos[k] < q->len && budget > 0) {
            struct mr_group *g = mr_group_find(n, ids[n->wake_pos[k]]);
            if (g != NULL && k == Q_CATCH_UP)
                g->flags &= ~MR_G_CATCH_UP;
            if (!still_asleep(g, k)) {
                n->wake_pos[k]++;
                continue;
            }
            if (!mr_group_wake_marked(n, g)) { /* (reported visited by the next batch) */
                /* Out of memory: its turn stays, tried again at the next tick
                 * (a restored replica left asleep would refuse PreVotes for
                 * good while its stored leader's node is heard). */
                if (k == Q_CATCH_UP)
                    g->flags |= MR_G_CATCH_UP;
                budget = 0;
                break;
            }
            n->wake_pos[k]++;
            if (k == Q_RESTORED)
                ask_leader(n, g);
            budget--;
        }
        trim(n, k);
    }
}

bool mr_restart_pending(const struct mr_node *n)
{
    for (int k = 0; k < N_QUEUES; k++)
        if (n->wake_queue[k].len > 0)
            return true;
    return false;
}
