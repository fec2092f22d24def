/*
 * mr_quiesce.c — quiescence: idle groups leave the active set so that ticks and
 * heartbeats cost nothing for them (CockroachDB #17609: tick cost must follow the
 * ACTIVE groups).
 *
 *  - A leader that is fully replicated (raft_is_fully_replicated: every member's
 *    match == last == commit == applied) with nothing pending for quiesce_ticks
 *    ticks sends each follower a last heartbeat entry flagged MR_HB_QUIESCE (term,
 *    commit) and quiesces.
 *  - A follower quiesces when it matches such a heartbeat: same term and leader,
 *    commit == the heartbeat's commit, and fully replicated itself.  One that does
 *    not match keeps ticking; if it campaigns, its messages wake the others.
 *  - A quiesced follower relies on node liveness (CockroachDB does the same): its
 *    leader lease (dissertation §4.2.3 / §9.6) is its leader's NODE liveness.  It
 *    is not renewed per group (that would visit every quiesced group per liveness
 *    message); it is computed lazily, when a vote request arrives for the group
 *    (mr_lease_before_vote): refused while the leader's node was heard from within
 *    the election timeout.  A follower woken from quiescence keeps that rule until
 *    it hears its leader's group again (x->lease_leader, set by mr_group_wake), so
 *    a group woken by a stray message cannot elect anyone behind the back of a live,
 *    still-quiesced leader; its own timeout then only sends a PreVote, which wakes
 *    the leader, which refuses it and resumes heartbeats.
 *  - A node is declared down after dead_ticks of silence (default one election
 *    timeout, as for an active group's leader; raised by operators whose servers
 *    stall longer).  Then every group it led here wakes, and the surviving voter
 *    with the lowest replica id on a node still heard (mr_wake_led_by) campaigns
 *    after a random delay in [0, E/8] ticks (staggered, CockroachDB #9273) through
 *    the NORMAL path: PreVote first (§9.6), no forced TIMEOUT_NOW.
 *    The other voters grant it because their lease, restated from the same node
 *    liveness, has run out; they keep their own randomized timers as a fallback,
 *    held back (raft_defer_campaign) for one to two election timeouts.  A voter
 *    that heard the dead node a little later than the candidate refuses the first
 *    PreVote (its lease still holds), so the candidate asks again every heartbeat
 *    interval for one election timeout; the hold keeps that voter's own timer from
 *    firing at the same moment and splitting the vote (docs/sim-findings.md,
 *    finding 8).  A candidate that cannot win — its node declared down too, or its
 *    log behind — is passed over, and the next in rank campaigns.
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

static bool quorum_alive(const struct mr_node *n, const struct mr_group *g);

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

bool mr_quiesce_tick(struct mr_node *n, struct mr_group *g)
{
    int role = raft_get_role(g->raft);
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
                        quorum_alive(n, g))) ||
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
    if (mr_unreached(n, g, role)) {
        /* Two election timeouts: time to vote in the election that created it and
         * to hear the winner (mr_unreached.c). */
        if (g->idle < UINT16_MAX)
            g->idle++;
        if (g->idle < 2 * n->cfg.election_ticks)
            return false;
        mr_unreached_sleep(n, g);
        quiesce(n, g, false);
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
    raft_defer_campaign(g->raft, e + mr_rand(n) % e);
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

/* Whether a quorum of the group's voters lives on nodes we hear from (ourselves
 * included).  A node cut off from everyone must not force elections: when the
 * partition heals, its inflated terms would depose healthy leaders (PreVote exists to
 * prevent exactly that, dissertation §9.6, and the forced campaign bypasses it). */
static bool quorum_alive(const struct mr_node *n, const struct mr_group *g)
{
    struct raft_conf_state cs;
    /* (also: quiescence with a member on a dead node, mr_quiesce_tick) */
    uint32_t alive = 0;
    raft_get_conf_state(g->raft, &cs);
    for (uint32_t i = 0; i < cs.n_voters; i++) {
        mr_node_id node = mr_map_node(g, cs.voters[i]);
        if (node == n->cfg.node_id || mr_node_alive(n, node))
            alive++;
    }
    return alive >= cs.n_voters / 2 + 1;
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
    if (g->active_pos == MR_NOT_ACTIVE && mr_group_wake(n, g)) {
        mr_group_mark(n, g);
        n->c.woken++;
    }
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
            !quorum_alive(n, g)) {
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
            if (mr_group_wake(n, g)) { /* (else its turn wakes it: mr_restart.c) */
                mr_group_mark(n, g);
                n->c.woken++;
            }
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
        if (!raft_is_voter(g->raft, g->replica_id) || !quorum_alive(n, g) ||
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
