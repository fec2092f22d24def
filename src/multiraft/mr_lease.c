/*
 * mr_lease.c — the leader lease of quiesced groups.
 *
 * A quiesced follower relies on node liveness (CockroachDB does the same): its
 * leader lease (dissertation §4.2.3 / §9.6) is its leader's NODE liveness.  It is
 * not renewed per group (that would visit every quiesced group per liveness
 * message); it is computed lazily, when a vote request arrives for the group
 * (mr_lease_before_vote): refused while the leader's node was heard from within
 * the election timeout.  A follower woken from quiescence keeps that rule until it
 * hears its leader's group again (x->lease_leader, set by mr_group_wake), so a
 * group woken by a stray message cannot elect anyone behind the back of a live,
 * still-quiesced leader; its own timeout then only sends a PreVote, which wakes
 * the leader, which refuses it and resumes heartbeats.
 */
#include "mr_internal.h"

/* Ticks since node `node` was last heard (UINT32_MAX: never, or declared down). */
static uint32_t node_heard_ago(const struct mr_node *n, mr_node_id node)
{
    const struct mr_peer *p = mr_peer_find(n, node);
    uint64_t ago;
    if (p == NULL || !p->heard || p->dead)
        return UINT32_MAX;
    ago = n->now - p->last_heard;
    return ago > UINT32_MAX ? UINT32_MAX : (uint32_t)ago;
}

/* Whether the lease g->x holds for an unheard leader (a woken or restored replica's)
 * has run its MR_LEASE_WAKE_TIMEOUTS election timeouts since the wake; then it is
 * dropped. */
static bool lease_expired(const struct mr_node *n, struct mr_group *g)
{
    /* Restored and still asleep until its turn (mr_restart.c): the time runs from
     * its wake, when it starts asking its leader. */
    if (g->flags & MR_G_RESTORED)
        return false;
    if (n->now - g->x->lease_at < MR_LEASE_WAKE_TIMEOUTS * n->cfg.election_ticks)
        return false;
    g->x->lease_leader = RAFT_NONE;
    return true;
}

bool mr_lease_before_vote(struct mr_node *n, struct mr_group *g, raft_id from, bool pre_vote)
{
    mr_node_id node;
    raft_id leader;
    bool asleep = g->active_pos == MR_NOT_ACTIVE;
    int role = raft_get_role(g->raft);
    if ((role == RAFT_PRE_CANDIDATE ||
         (role == RAFT_FOLLOWER && raft_get_leader(g->raft) == RAFT_NONE)) &&
        pre_vote && g->x != NULL &&
        g->x->lease_leader != RAFT_NONE && g->x->lease_term == raft_get_term(g->raft) &&
        from != g->x->lease_leader) {
        /* Woken by a stray message and not heard from its leader since (still in the
         * term it followed it in), this replica timed out: its PreVote is there to
         * wake the leader, not to replace it (above).  A pre-candidate has no leader
         * of its own in the core, so it would grant the PreVote of another follower
         * whose timer fired in the same tick, and the two would depose a live,
         * quiesced leader (msim seed 4061; docs/sim-findings.md, finding 13).  While
         * the leader's node is heard, it refuses, as it would have as a follower.
         *
         * But only for a while: a live leader replica answers that PreVote within a
         * round trip, and any word from it ends the lease (mr_lease_heard).  Still
         * silent MR_LEASE_WAKE_TIMEOUTS election timeouts after the wake, it
         * is gone — removed while this replica was cut off, its node alive — and
         * refusing for its node's sake would keep the group without a leader for
         * good (docs/sim-findings.md, finding 23).
         *
         * A follower restored at start-up knows no leader either; the leader it
         * followed in its stored term stands in (mr_restore_group), under the same
         * rule (finding 25). */
        if (lease_expired(n, g))
            return false;
        return (node = mr_map_node(g, g->x->lease_leader)) != 0 && node != n->cfg.node_id &&
               node_heard_ago(n, node) < n->cfg.election_ticks;
    }
    if (role != RAFT_FOLLOWER || (leader = raft_get_leader(g->raft)) == RAFT_NONE)
        return false;
    if (!asleep && (g->x == NULL || g->x->lease_leader != leader))
        return false; /* heard from its leader since it woke: its own lease is accurate */
    /* Woken that long ago and still no word from its leader replica, which a live
     * one sends within a heartbeat interval of any message of its group: gone, as
     * for a pre-candidate above.  A follower whose timer each refused PreVote
     * restarts (below) never becomes one, so without this limit a leader that
     * removed itself while this replica was cut off, its node alive, kept a
     * five-member group without a leader for up to 40 election timeouts
     * (docs/sim-findings.md, finding 24).  The core's own lease, from the last
     * refusal, runs out within one more. */
    if (!asleep && lease_expired(n, g))
        return false;
    if (from == leader) {
        /* The leader replica itself campaigns: it is no longer leader, so its node's
         * liveness says nothing about its leadership (renewing the lease from it
         * could keep the group from electing anyone). */
        if (g->x != NULL)
            g->x->lease_leader = RAFT_NONE;
        if (asleep)
            (void)raft_set_leader_heard_ago(g->raft, UINT32_MAX);
        return false;
    }
    if ((node = mr_map_node(g, leader)) == 0 || node == n->cfg.node_id)
        return false;
    /* Quiesced, or woken without a word from the leader since: the election timer
     * froze (or restarted) when the group slept.  A quiesced leader stays leader
     * while its node runs — it does not tick, so CheckQuorum cannot depose it, and
     * any message of its group reaches this follower (which then hears it) — so the
     * node's liveness is the leader's: "heard from the leader" ago ticks ago. */
    (void)raft_set_leader_heard_ago(g->raft, node_heard_ago(n, node));
    return false; /* the core judges the request by that lease */
}

void mr_lease_heard(struct mr_group *g, raft_id from)
{
    if (g->x != NULL && g->x->lease_leader == from)
        g->x->lease_leader = RAFT_NONE;
}
