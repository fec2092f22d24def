/*
 * mr_unreached.c — replicas no leader reached: a follower that knows no leader and
 * no configuration (created by a vote request, or by a leader that then lost its
 * leadership or removed it), or one outside its own configuration that no leader
 * has spoken to for an election timeout.  It cannot campaign, so ticking it only costs
 * (CockroachDB #17609): it sleeps after two election timeouts (mr_quiesce_tick)
 * and asks the replicas it heard from whether it is still wanted.  One that removed
 * the group, or applied this replica's removal, answers so (mr_receive.c), and this
 * node drops the replica: a member removed before any leader reached it would
 * otherwise stay for good.  A leader that still wants it wakes it with its next
 * message.
 *
 * An answer can be lost to a partition, so the question is asked again while the
 * replica sleeps unreached, at doubling intervals: 4, 8, 16, 32, then every 64
 * election timeouts.  The schedule is one node-wide list of those replicas with the
 * earliest due tick kept aside, so the coalesced tick costs one comparison for them
 * between due times and nothing per quiesced group.
 */
#include "mr_internal.h"

#define REPROBE_FIRST 4u  /* election timeouts after the probe at falling asleep */
#define REPROBE_MAX 64u   /* the interval stops doubling here */

/* A sleeping unreached replica and when to ask again. */
struct mr_reprobe {
    mr_group_id group;
    raft_id replica;  /* the entry is stale once the group holds another replica */
    uint64_t due;     /* tick */
    uint32_t interval; /* ticks */
};

bool mr_unreached(const struct mr_node *n, const struct mr_group *g, int role)
{
    struct raft_conf_state cs;
    if (role != RAFT_FOLLOWER)
        return false;
    raft_get_conf_state(g->raft, &cs);
    if (raft_get_leader(g->raft) == RAFT_NONE && cs.n_voters == 0 && cs.n_learners == 0)
        return true;
    /* Not in its own configuration (removed while cut off, or added and removed
     * again before it applied its addition), and no word from a leader for an
     * election timeout: it cannot campaign, and no leader sends it anything, so
     * it stayed awake for good (found by msim's check that every replica sleeps
     * again after healing, seed 1060 with --groups 150 --ticks 600). */
    return !raft_is_member(g->raft, g->replica_id) &&
           raft_get_election_elapsed(g->raft) >= n->cfg.election_ticks;
}

/* Asks every replica in g's map (the ones it heard from) whether it was removed. */
static void probe(struct mr_node *n, struct mr_group *g)
{
    for (uint32_t i = 0; i < g->n_map; i++) {
        struct mr_heartbeat hb;
        if (g->map[i].id == g->replica_id || g->map[i].node == n->cfg.node_id)
            continue;
        mr_heartbeat_of(g, g->map[i].id, &hb);
        hb.flags = MR_HB_PROBE;
        mr_queue_heartbeat(n, g->map[i].node, &hb, true);
    }
}

void mr_unreached_sleep(struct mr_node *n, struct mr_group *g)
{
    struct mr_reprobe e;
    probe(n, g);
    if (g->flags & MR_G_REPROBE)
        return; /* already scheduled: it keeps its interval */
    memset(&e, 0, sizeof e);
    e.group = g->id;
    e.replica = g->replica_id;
    e.interval = REPROBE_FIRST * n->cfg.election_ticks;
    e.due = n->now + e.interval;
    if (mr_vec_push(n, &n->reprobes, sizeof e, &e) == NULL)
        return; /* out of memory: asked once, as the next fall asleep will */
    g->flags |= MR_G_REPROBE;
    if (n->reprobes.len == 1 || e.due < n->reprobe_due)
        n->reprobe_due = e.due;
}

void mr_reprobe_tick(struct mr_node *n)
{
    struct mr_reprobe *v = n->reprobes.data;
    uint64_t next = UINT64_MAX;
    size_t i = 0;
    while (i < n->reprobes.len) {
        struct mr_reprobe *e = &v[i];
        struct mr_group *g;
        if (e->due > n->now) {
            next = e->due < next ? e->due : next;
            i++;
            continue;
        }
        g = mr_group_find(n, e->group);
        if (g != NULL && g->replica_id == e->replica && !(g->flags & MR_G_GONE) &&
            g->active_pos == MR_NOT_ACTIVE && mr_unreached(n, g, raft_get_role(g->raft))) {
            probe(n, g);
            if (e->interval < REPROBE_MAX * n->cfg.election_ticks)
                e->interval *= 2;
            e->due = n->now + e->interval;
            next = e->due < next ? e->due : next;
            i++;
            continue;
        }
        /* Dropped, replaced, awake or reached: its entry goes.  An awake replica
         * that sleeps unreached again asks at once and is scheduled anew. */
        if (g != NULL && g->replica_id == e->replica)
            g->flags &= ~MR_G_REPROBE;
        v[i] = v[--n->reprobes.len];
    }
    n->reprobe_due = next;
}
