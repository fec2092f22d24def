/*
 * mr_hold.c — batching by holding: which new commands wait for this node's next
 * round instead of starting one of their own, when a round is in flight, and the
 * follower commands the leader holds for it (mr_request.c services what leaves).
 */
#include "mr_internal.h"

/*
 * Batching by holding (a closed-loop Nagle), on the leader: while a round of
 * commands this node proposed is in flight — sent, not yet applied, in any of
 * the groups it leads — a NEW command waits instead of starting a round of its
 * own, and the commands made meanwhile, in every group, leave together when
 * that round is applied here (the held groups are then marked).  Under load each
 * round then carries every command that arrived during the previous one: one
 * transaction and one WAL flush per member per round instead of per command —
 * also with many groups, each seeing a command only now and then, which a
 * round per group would not batch at all.  A lone command never waits (nothing
 * of ours is in flight), and none waits longer than batch_hold_ticks (a round
 * that cannot commit — lost quorum — holds nothing hostage, and the next round
 * starts without it).  Nor does any wait when the batch being built flushes
 * anyway, for entries of groups this node follows (batch_syncs_anyway): with
 * leadership spread over the nodes, each node's follower writes come between its
 * rounds, and a command held past one of them cost a flush of its own later.
 * Only this node's own rounds count: other nodes' traffic
 * keeps a busy group's log ahead of its commit index nearly all the time, and
 * waiting for that would starve the commands made here.  Resubmissions are
 * never held.
 *
 * A follower forwards at once: the leader holds forwarded commands for its next
 * round (mr_hold_forwarded), and a follower's own round only comes back applied
 * after that leader round, its commit notice and the follower's apply — holding
 * there too cost each forwarded command about one leader round more.
 */
static bool group_round_in_flight(const struct mr_group *g)
{
    if (raft_get_role(g->raft) != RAFT_LEADER)
        return false;
    for (const struct mr_waiter *w = g->waiters; w != NULL; w = w->next)
        if (w->kind == MR_REQ_COMMAND && w->state == MR_W_SENT)
            return true;
    return false;
}

bool mr_round_in_flight(const struct mr_node *n)
{
    return !n->cfg.disable_batch_hold && n->round_in_flight;
}

/* Whether the batch being built will flush anyway: a group dirty for it has new
 * entries to persist (a follower's appends from another leader).  Commands held
 * for this node's round are better proposed in it: its flush is paid already. */
static bool batch_syncs_anyway(const struct mr_node *n)
{
    struct mr_group *const *dirty = n->dirty.data;
    for (size_t i = 0; i < n->dirty.len; i++)
        if (raft_get_role(dirty[i]->raft) != RAFT_LEADER &&
            raft_has_unstable_entries(dirty[i]->raft))
            return true;
    return false;
}

/*
 * The node's round is in flight while a group it proposed in still has a command
 * of it sent and not applied, for at most batch_hold_ticks (a group that cannot
 * commit — lost quorum — must not hold the others' commands longer than that, and
 * the next round starts without it), and unless the batch being built flushes
 * anyway (batch_syncs_anyway).  When the round lands, the groups that held
 * commands meanwhile are visited, so that those leave together at once.
 */
void mr_judge_round(struct mr_node *n)
{
    mr_group_id *ids = n->round_groups.data;
    size_t kept = 0;
    bool was = n->round_in_flight;

    if (n->now < n->round_started_at + n->cfg.batch_hold_ticks)
        for (size_t i = 0; i < n->round_groups.len; i++) {
            struct mr_group *g = mr_group_find(n, ids[i]);
            if (g != NULL && !(g->flags & MR_G_GONE) && group_round_in_flight(g))
                ids[kept++] = ids[i];
        }
    n->round_groups.len = kept;
    n->round_in_flight = kept > 0 && !batch_syncs_anyway(n);
    if (!n->round_in_flight)
        n->round_started_at = n->now; /* what this pass proposes is the next round */
    if (was && !n->round_in_flight) {
        mr_group_id *held = n->held_groups.data;
        for (size_t i = 0; i < n->held_groups.len; i++) {
            struct mr_group *g = mr_group_find(n, held[i]);
            if (g != NULL)
                mr_group_mark(n, g);
        }
        n->held_groups.len = 0;
    }
}

static void note_group(struct mr_node *n, struct mr_vec *v, mr_group_id id)
{
    mr_group_id *ids = v->data;
    for (size_t i = 0; i < v->len; i++)
        if (ids[i] == id)
            return;
    (void)mr_vec_push(n, v, sizeof id, &id);
}

bool mr_hold_command(struct mr_node *n, struct mr_group *g, struct mr_waiter *w)
{
    if (n->now >= w->queued_at + n->cfg.batch_hold_ticks)
        return false;
    if (!w->held)
        n->c.held_commands++;
    w->held = true;
    note_group(n, &n->held_groups, g->id);
    return true;
}

void mr_round_note(struct mr_node *n, struct mr_group *g)
{
    if (!n->cfg.disable_batch_hold)
        note_group(n, &n->round_groups, g->id);
}

/*
 * A PROPOSE from a follower, on the leader, while a round of this node's is in
 * flight: its commands become internal waiters (no completion: the follower waits
 * for its own application) that join the next round with the local ones — so
 * that with clients on every member a round carries everything that arrived
 * during the previous one, not one round per node.  Only messages made entirely
 * of commands (kinds 1 and 4); false if the message is to be stepped as is.
 */
bool mr_hold_forwarded(struct mr_node *n, struct mr_group *g, const struct raft_message *m)
{
    /* The core takes a PROPOSE only from a member (a removed replica that missed
     * its removal may still forward): so must this, or whether a non-member's
     * command commits would depend on the load (found by a review). */
    if (n->cfg.disable_batch_hold || raft_get_role(g->raft) != RAFT_LEADER ||
        m->n_entries == 0 || !mr_round_in_flight(n) ||
        !raft_is_member(g->raft, m->from))
        return false;
    for (uint32_t i = 0; i < m->n_entries; i++) {
        struct mr_entry_view v;
        const struct raft_entry *e = &m->entries[i];
        if (e->type != RAFT_ENTRY_NORMAL || !mr_entry_decode(e->data, e->len, &v) ||
            (v.kind != MR_KIND_COMMAND && v.kind != MR_KIND_GENERATED) || v.cmd_len == 0)
            return false;
    }
    for (uint32_t i = 0; i < m->n_entries; i++) {
        const struct raft_entry *e = &m->entries[i];
        struct mr_entry_view v;
        struct mr_waiter *w;
        (void)mr_entry_decode(e->data, e->len, &v);
        /* Expires like the follower's own copies would (they resubmit anyway). */
        w = mr_waiter_new(n, g, MR_REQ_COMMAND, 0, n->cfg.proposal_retry_ticks);
        if (w == NULL)
            return i > 0; /* the rest is lost: the follower resubmits */
        w->internal = true;
        w->held = true; /* counted below */
        w->data = mr_alloc(n, e->len);
        if (w->data == NULL) {
            mr_waiter_unlink(n, g, w);
            return i > 0;
        }
        memcpy(w->data, e->data, e->len);
        w->data_len = e->len;
        w->cmd = w->data + (v.cmd - (const unsigned char *)e->data);
        w->cmd_len = v.cmd_len;
        if (!mr_waiter_index(n, g, w))
            return i > 0;
    }
    n->c.held_commands += m->n_entries;
    mr_group_mark(n, g);
    return true;
}
