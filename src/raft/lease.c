/*
 * lease.c — outside evidence of when the leader was last heard from.
 *
 * A follower's leader lease (dissertation §4.2.3 with CheckQuorum, §9.6 PreVote:
 * vote requests are disregarded while a leader is known and was heard from within
 * the election timeout) is normally driven by the group's own messages and ticks.
 * A caller that stops ticking a group (the multi-raft layer quiesces idle groups)
 * has better evidence than the frozen counter: its node liveness says when the
 * leader's server was last alive.  raft_set_leader_heard_ago lets it restate the
 * lease; raft_defer_campaign lets it keep a replica's own timeout from competing
 * with a campaign it knows another voter is making (the lease is untouched).
 */
#include "raft_internal.h"

int raft_set_leader_heard_ago(struct raft *r, uint32_t ago)
{
    if (r->busy)
        return RAFT_EBUSY;
    if (r->role != RAFT_FOLLOWER || r->leader == RAFT_NONE)
        return RAFT_OK; /* no lease to restate */
    if (ago < r->election_tick) {
        /* Heard recently: the lease holds for election_tick - ago more ticks. */
        r->election_elapsed = ago;
    } else if (r->election_elapsed < r->election_tick) {
        /* Silent for a whole election timeout: the lease has run out.  The counter
         * stops at election_tick, not at `ago`: the randomized part of the timeout
         * ([0, election_tick) ticks, §5.2) still lies ahead, so that many groups
         * learning this at once do not all campaign in the same tick. */
        r->election_elapsed = r->election_tick;
    }
    return RAFT_OK;
}

void raft_defer_campaign(struct raft *r, uint32_t ticks)
{
    r->campaign_hold = ticks;
}
