/*
 * mr_failover.c — the groups of a node declared down elect a new leader.
 *
 * A node is declared down after dead_ticks of silence (default one election
 * timeout, as for an active group's leader; raised by operators whose servers
 * stall longer).  Then every group it led here wakes, and the surviving voter with
 * the lowest replica id on a node still heard campaigns after a random delay in
 * [0, E/8] ticks (staggered, CockroachDB #9273) through the NORMAL path: PreVote
 * first (§9.6), no forced TIMEOUT_NOW.  The other voters grant it because their
 * lease, restated from the same node liveness (mr_lease.c), has run out; they keep
 * their own randomized timers as a fallback, held back (raft_defer_campaign) for
 * one to two election timeouts.  A voter that heard the dead node a little later
 * than the candidate refuses the first PreVote (its lease still holds), so the
 * candidate asks again every heartbeat interval for one election timeout; the hold
 * keeps that voter's own timer from firing at the same moment and splitting the
 * vote (docs/sim-findings.md, finding 8).  A candidate that cannot win — its node
 * declared down too, or its log behind — is passed over, and the next in rank
 * campaigns.
 *
 * A leader, for its part, stays awake for CheckQuorum to judge it when asked for
 * votes, or when it hears no quorum alive after a peer is declared down.
 */
#include "mr_internal.h"

/* The voter that campaigns first for g, whose leader replica `leader` is on a node
 * declared down: the lowest id among the other voters above `passed` on nodes not
 * held down.  Ranking voters on dead nodes too left a group whose first voter died
 * with its leader without a candidate for the whole hold below: 22 to 43 ticks
 * with E = 10 (found by a review; test_mr_failover_ranks.c).  This replica always
 * counts: no voter it passed over has a log ahead of its own. */
static raft_id first_candidate(const struct mr_node *n, const struct mr_group *g,
                               raft_id leader, raft_id passed)
{
    struct raft_conf_state cs;
    raft_id first = RAFT_NONE;
    raft_get_conf_state(g->raft, &cs);
    for (uint32_t i = 0; i < cs.n_voters; i++) {
        raft_id v = cs.voters[i];
        if (v == leader || (first != RAFT_NONE && v >= first))
            continue;
        if (v != g->replica_id && (v <= passed || mr_replica_node_unheard(n, g, v)))
            continue;
        first = v;
    }
    return first;
}

/* Still without a leader since it learned its leader's node was down: the same term,
 * no other leader heard. */
static bool leader_still_missing(const struct mr_group *g)
{
    int role = raft_get_role(g->raft);
    raft_id leader = raft_get_leader(g->raft);
    return (role == RAFT_FOLLOWER || role == RAFT_PRE_CANDIDATE) &&
           raft_get_term(g->raft) == g->x->campaign_term &&
           (leader == RAFT_NONE || leader == g->x->campaign_from);
}

/* This voter campaigns after a random delay in [0, E/8] ticks if it ranks first;
 * otherwise it holds its own timer back for the one that does.  Its election timer
 * stays as it froze and its lease ends lazily, when the candidate's PreVote arrives
 * (mr_lease_before_vote): ending it here would make every voter campaign within an
 * election timeout.  And its own timeout waits (randomized, so that the others' do
 * not fire together) while the candidate's PreVote is retried — the lease still
 * ends as before, so it grants it.  Without the hold, a voter that declared the
 * node down a few ticks after the candidate had its timer fire just as the
 * candidate's retry succeeded: split votes (docs/sim-findings.md, finding 8). */
static void designate(struct mr_node *n, struct mr_group *g)
{
    uint32_t e = n->cfg.election_ticks;
    raft_id first = first_candidate(n, g, g->x->campaign_from, g->x->passed);
    if (first == g->replica_id) {
        g->x->held_for = RAFT_NONE;
        g->x->campaign_at = n->now + mr_rand(n) % (e / 8 + 1);
        g->x->campaign_until = g->x->campaign_at + e;
        return;
    }
    g->x->held_for = first;
    g->x->held_until = n->now + e + e / 8 + 1; /* its delay, then its retries */
    raft_defer_campaign(g->raft, e + mr_rand(n) % e);
}

/*
 * Survivors may disagree about the first candidate: one that no longer hears the
 * first voter (a one-way cut) ranks the next, itself perhaps, while the others
 * hold for the first.  Both campaigned, and split the votes of the others (found by
 * a review: 65 of 720 groups with two rounds or more, up to 45 ticks with E =
 * 10).  A voter that holds for a candidate it still hears refuses the other
 * PreVotes while that candidate's campaign may run: if the candidate's node is
 * down, this voter declares it so within dead_ticks and ranks again
 * (mr_wake_led_by); if its log is behind, its PreVote passes it over
 * (mr_prevote_seen).  Refusing a PreVote is always safe (§9.6).
 */
bool mr_hold_refuses(const struct mr_node *n, const struct mr_group *g, raft_id from)
{
    return g->x != NULL && g->x->held_for != RAFT_NONE && from != g->x->held_for &&
           n->now < g->x->held_until && leader_still_missing(g) &&
           !mr_replica_node_unheard(n, g, g->x->held_for);
}

/*
 * A PreVote of the candidate this voter holds for, with a log behind its own: the
 * core refuses it (§5.4.1), and so does every voter as far ahead, so the candidate
 * cannot win and the group waited out the hold, 22 to 29 ticks with E = 10 (found
 * by a review).  It is passed over, with every voter ranked before it: the next in
 * rank campaigns, if this is the one.  Voters behind it still grant it, and one of
 * the two wins; should both lose, the randomized timers decide, as before.
 */
void mr_prevote_seen(struct mr_node *n, struct mr_group *g, const struct raft_message *m)
{
    if (g->x == NULL || g->x->held_for == RAFT_NONE || m->from != g->x->held_for ||
        !leader_still_missing(g) || raft_is_log_up_to_date(g->raft, m->log_term, m->index))
        return;
    g->x->passed = m->from;
    designate(n, g);
}

/*
 * A quiesced leader judges nothing: it quiesced because its followers' match
 * covered its log, which stays true when their answers stop arriving, and
 * CheckQuorum runs only in an election timeout awake.  Its followers meanwhile
 * hold its lease on its node's liveness, which only says that they hear it.  So
 * with one-way cuts a leader that could commit nothing kept its group: one cut
 * off from its followers' answers for good, one heard by only one follower for
 * 26 to 30 election timeouts, woken by each PreVote of the other and asleep again
 * two ticks later (found by a review; test_mr_one_way_cuts.c).  Awake for two
 * election timeouts, CheckQuorum deposes it unless a quorum answers, and its own
 * PreVote then ends its followers' lease on it (mr_lease_before_vote).
 */
void mr_leader_stay_awake(struct mr_node *n, struct mr_group *g)
{
    if (raft_get_role(g->raft) != RAFT_LEADER || mr_group_extra(n, g) == NULL)
        return;
    g->x->awake_until = n->now + 2u * n->cfg.election_ticks;
    (void)mr_group_wake_marked(n, g);
}

void mr_wake_led_by(struct mr_node *n, mr_node_id dead)
{
    struct mr_group *g, *tmp;
    HASH_ITER(hh, n->groups, g, tmp) {
        raft_id leader;
        bool asleep = g->active_pos == MR_NOT_ACTIVE;
        if (!(g->flags & MR_G_GONE) && g->x != NULL && g->x->held_for != RAFT_NONE &&
            mr_map_node(g, g->x->held_for) == dead && leader_still_missing(g)) {
            /* It held for a candidate on this node, declared down after its
             * leader's: the next in rank campaigns. */
            designate(n, g);
            continue;
        }
        if (!(g->flags & MR_G_GONE) && raft_get_role(g->raft) == RAFT_LEADER &&
            !mr_quorum_alive(n, g)) {
            mr_leader_stay_awake(n, g); /* with the node down, no quorum heard */
            continue;
        }
        if ((g->flags & MR_G_GONE) || raft_get_role(g->raft) != RAFT_FOLLOWER)
            continue;
        leader = raft_get_leader(g->raft);
        if (leader == RAFT_NONE && (g->flags & MR_G_RESTORED) && g->x != NULL &&
            g->x->lease_leader != RAFT_NONE && mr_map_node(g, g->x->lease_leader) == dead) {
            /* Restored, asleep until its turn (mr_restart.c), and its stored
             * leader's node is down: its turn is now.  It knows no leader in the
             * core, so it campaigns on its own timeout, not as the designated
             * candidate below. */
            (void)mr_group_wake_marked(n, g); /* (else its turn wakes it: mr_restart.c) */
            continue;
        }
        if (leader == RAFT_NONE || mr_map_node(g, leader) != dead)
            continue;
        /* Quiesced — or woken by some message (another voter's PreVote, typically:
         * it declared the node down a little earlier) without a word from the
         * leader since.  A group that heard its leader while active has its own
         * timers. */
        if (!asleep && (g->x == NULL || g->x->lease_leader != leader))
            continue;
        if (asleep) {
            mr_group_wake(n, g);
            mr_group_mark(n, g); /* awake now: reported visited by the next batch */
            n->c.woken++;
        }
        if (!raft_is_voter(g->raft, g->replica_id) || !mr_quorum_alive(n, g) ||
            mr_group_extra(n, g) == NULL) /* (out of memory: its own timer campaigns) */
            continue;
        g->x->campaign_term = raft_get_term(g->raft);
        g->x->campaign_from = leader;
        g->x->passed = RAFT_NONE;
        designate(n, g);
    }
}

void mr_campaign_tick(struct mr_node *n, struct mr_group *g)
{
    if (g->x == NULL || g->x->campaign_at == 0 || n->now < g->x->campaign_at)
        return;
    g->x->campaign_at = 0;
    if (!leader_still_missing(g) || !mr_replica_node_dead(n, g, g->x->campaign_from))
        return; /* someone else got there first, or the node is back */
    /* The leader's node is down: campaign now rather than after the randomized
     * timeout, but through the normal path — PreVote first (dissertation §9.6), so a
     * node that is itself cut off never inflates terms, and the other voters judge
     * the request by their own (liveness-based) leases.  Only this one replica per
     * group does it early. */
    (void)mr_core_step(n, raft_campaign(g->raft));
    mr_group_mark(n, g);
    /* Still in the same term one heartbeat interval later: the PreVote was refused
     * (a voter that heard the node more recently still holds its lease) — ask
     * again, until that lease has surely run out. */
    if (n->now + n->cfg.heartbeat_ticks <= g->x->campaign_until)
        g->x->campaign_at = n->now + n->cfg.heartbeat_ticks;
}
