/*
 * msim_admin.c — the many-group simulator's group removals and membership moves:
 * made now and then during a seed's run (half of the moves through a learner, a
 * fifth raced by another member's add_voter) and checked after healing.
 */
#include "msim.h"

static void admin_push(struct run *r, struct admin a)
{
    if (r->n_admin == r->cap_admin) {
        r->cap_admin = r->cap_admin ? 2 * r->cap_admin : 64;
        r->admin = realloc(r->admin, r->cap_admin * sizeof *r->admin);
        if (r->admin == NULL)
            abort();
    }
    r->admin[r->n_admin++] = a;
}

/* Requests change `type` of `node` in a's group on a.node, under a new token and the
 * command id "<what>-<token>" (unique: a caller's id unless id_generated), and keeps
 * it in r->admin; whether it was accepted. */
static bool request_change(struct run *r, struct admin *a, int type, mr_node_id node,
                           const char *what, bool id_generated)
{
    a->token = ++r->next_token;
    snprintf(a->cmd, sizeof a->cmd, "%s-%llu", what, (unsigned long long)a->token);
    if (mr_propose_conf_change(mrc_node(r->c, a->node), a->group, a->token, type, node, a->cmd,
                               strlen(a->cmd), id_generated, NULL, 0, 0) != MR_OK)
        return false;
    admin_push(r, *a);
    return true;
}

/* The racing add_voter of a raced move, on the next live member after the move's
 * requester. */
static void race(struct run *r, struct admin a, mr_node_id add)
{
    const mr_node_id *m = r->members[a.group - 1];
    for (int k = 0; k < 3; k++) {
        mr_node_id on = m[k];
        if (on == a.node || !mrc_is_up(r->c, on) || !mr_group_exists(mrc_node(r->c, on), a.group))
            continue;
        a.node = on;
        a.promotion = false;
        /* A racer with an odd token has its id count as generated for the call (it is
         * unique), which lets its own view refuse it at once; the others, as a
         * caller's ids, are refused only by the leader (mr_conf.c, answered_by_log). */
        bool odd_token = (r->next_token + 1) % 2 == 1;
        if (request_change(r, &a, MR_CHANGE_ADD_VOTER, add, "race", odd_token))
            r->raced_moves++;
        return;
    }
}

/* Now and then: remove a group, or (5 nodes) move one replica of a group to a node
 * outside it (add_voter the new node, or add_learner then add_voter, then
 * remove_voter an old one), all requested on a random live member. */
bool group_settled(struct run *r, mr_group_id g, mr_node_id on)
{
    if (r->removing[g - 1] || !mrc_is_up(r->c, on) || !mr_group_exists(mrc_node(r->c, on), g))
        return false;
    /* One move of a group at a time: the expected members are updated when a move is
     * requested, and the changes of two moves requested on different members may
     * commit interleaved (a promotion waits for its learner; the other move's removal
     * of that learner may commit first, and the promotion then adds the node afresh). */
    for (size_t i = 0; i < r->n_admin; i++)
        if (r->admin[i].group == g && !mrc_completion(r->c, r->admin[i].node,
                                                      r->admin[i].token, NULL))
            return false;
    return true;
}

void admin_some(struct run *r)
{
    mr_group_id g = 1 + rnd(r) % r->groups;
    mr_node_id on = r->members[g - 1][rnd(r) % 3];
    struct admin a;
    if (!group_settled(r, g, on))
        return;
    memset(&a, 0, sizeof a);
    a.group = g;
    a.node = on;
    if (rnd(r) % 3 == 0 || r->nodes < 5) {
        a.token = ++r->next_token;
        a.removal = true;
        if (mr_remove_group(mrc_node(r->c, on), g, a.token, 0) == MR_OK) {
            r->removing[g - 1] = true;
            admin_push(r, a);
        }
        return;
    }
    {
        mr_node_id *m = r->members[g - 1], add = 0, del = m[rnd(r) % 3];
        for (mr_node_id x = (mr_node_id)(1 + rnd(r) % r->nodes), k = 0; k < r->nodes;
             k++, x = (mr_node_id)(x % r->nodes + 1))
            if (x != m[0] && x != m[1] && x != m[2]) {
                add = x;
                break;
            }
        if (add == 0)
            return;
        /* A fifth of the moves are raced: another member asks for the same add_voter
         * under its own command id.  Whichever request the leader takes up second is
         * refused, by its requester's own view or by the leader's (mr_conf.c,
         * refuse_request), and the membership ends as expected either way.  Chosen
         * from the group and node, not drawn, so the seeds' draws stay as they were. */
        a.raced = (g + add) % 5 == 1;
        /* Half the moves add the new node as a learner first; its promotion then
         * waits until it has caught up (mr_conf.c, learner_caught_up).  Chosen
         * from the group and node, not drawn, so the seeds' draws stay as they were. */
        if (((g ^ add) & 1) == 0) {
            if (!request_change(r, &a, MR_CHANGE_ADD_LEARNER, add, "learn", false))
                return;
            r->learner_moves++;
            a.promotion = true;
        }
        if (!request_change(r, &a, MR_CHANGE_ADD_VOTER, add, "add", false))
            return;
        if (a.raced)
            race(r, a, add);
        a.promotion = false;
        if (!request_change(r, &a, MR_CHANGE_REMOVE_VOTER, del, "del", false))
            return;
        /* The expected membership once both commit (checked against the leader). */
        for (int k = 0; k < 3; k++)
            if (m[k] == del)
                m[k] = add;
        r->moves++;
    }
}

/* Whether node is among a status's first `count` member ids (the arrays hold at
 * most MR_MAX_MEMBERS). */
static bool listed(const mr_node_id *ids, uint32_t count, mr_node_id node)
{
    for (uint32_t i = 0; i < count && i < MR_MAX_MEMBERS; i++)
        if (ids[i] == node)
            return true;
    return false;
}

/* MSIM_DEBUG: each node's view of group g, on stderr. */
static void dump_group(struct run *r, mr_group_id g)
{
    for (mr_node_id n = 1; n <= r->nodes; n++) {
        struct mr_group_status st;
        if (mr_group_status(mrc_node(r->c, n), g, &st) != MR_OK) {
            fprintf(stderr, "  node %u: no replica of group %llu\n", n, (unsigned long long)g);
            continue;
        }
        fprintf(stderr, "  node %u: replica %llu %s term %llu leader %u commit %llu applied %llu "
                "log %llu..%llu voters", n, (unsigned long long)st.replica_id,
                mr_role_name(&st), (unsigned long long)st.term, st.leader_node,
                (unsigned long long)st.commit, (unsigned long long)st.applied,
                (unsigned long long)st.first_index, (unsigned long long)st.last_index);
        for (uint32_t v = 0; v < st.n_voters && v < MR_MAX_MEMBERS; v++)
            fprintf(stderr, " %u", st.voters[v]);
        fprintf(stderr, "%s\n", st.quiesced ? " (quiesced)" : "");
    }
}

/* A membership change that failed with a definite error committed nowhere: no
 * member recorded an event with its id.  That is a change refused to its caller
 * (MR_EBADCONF: by its node's view or by the leader's), and one failed because its
 * node is not a member (MR_ENOTMEMBER: a request whose node was removed before it
 * sent it; one it had sent fails with MR_EREMOVED, outcome unknown). */
void check_refusals(struct run *r)
{
    char msg[256];
    for (size_t i = 0; i < r->n_admin; i++) {
        const struct admin *a = &r->admin[i];
        struct mr_completion comp;
        if (a->removal || !mrc_completion(r->c, a->node, a->token, &comp) ||
            (comp.result != MR_EBADCONF && comp.result != MR_ENOTMEMBER))
            continue;
        r->refused += comp.result == MR_EBADCONF;
        for (mr_node_id n = 1; n <= r->nodes; n++)
            if (mrc_id_events(r->c, n, a->group, a->cmd, strlen(a->cmd)) != 0) {
                snprintf(msg, sizeof msg, "group %llu: %s failed on node %u (%s) but "
                         "committed (an event on node %u)", (unsigned long long)a->group,
                         a->cmd, a->node, mr_strerror(comp.result), n);
                fail(r, msg);
                break;
            }
    }
}

/* After healing: groups whose removal committed are gone everywhere; a replica that
 * missed the removal while quiesced (a "zombie") must go away as soon as it is used. */
void check_admin(struct run *r)
{
    char msg[256];
    for (size_t i = 0; i < r->n_admin; i++) {
        const struct admin *a = &r->admin[i];
        struct mr_completion comp;
        if (!a->removal || !mrc_completion(r->c, a->node, a->token, &comp) ||
            comp.result != MR_OK)
            continue;
        for (mr_node_id n = 1; n <= r->nodes; n++) {
            struct mr_group_status st;
            if (mr_group_status(mrc_node(r->c, n), a->group, &st) != MR_OK)
                continue;
            r->zombies++;
            if (mr_propose(mrc_node(r->c, n), a->group, ++r->next_token, "z", 1, "z", 1, 0) !=
                MR_OK)
                continue;
            mrc_run(r->c, 3 * E);
            if (mr_group_exists(mrc_node(r->c, n), a->group) ||
                !mrc_completion(r->c, n, r->next_token, &comp) ||
                comp.result != MR_EGROUP_DELETED) {
                snprintf(msg, sizeof msg, "group %llu removed at index %llu still on node %u",
                         (unsigned long long)a->group, (unsigned long long)comp.index, n);
                fail(r, msg);
            }
        }
    }
    /* Moves: the final voters are the expected members, for the groups whose every
     * membership request was acknowledged (a request lost with a crashed node may or
     * may not have happened). */
    for (mr_group_id g = 1; g <= r->groups; g++) {
        mr_node_id l = mrc_leader(r->c, g, NULL);
        struct mr_group_status st;
        bool all_acked = true;
        if (r->removing[g - 1])
            continue;
        for (size_t i = 0; i < r->n_admin; i++) {
            struct mr_completion comp;
            if (r->admin[i].group == g &&
                (!mrc_completion(r->c, r->admin[i].node, r->admin[i].token, &comp) ||
                 (comp.result != MR_OK &&
                  !(r->admin[i].raced && comp.result == MR_EBADCONF)))) {
                all_acked = false;
                if (getenv("MSIM_DEBUG"))
                    fprintf(stderr, "group %llu admin token %llu on node %u: %s\n",
                            (unsigned long long)g, (unsigned long long)r->admin[i].token,
                            r->admin[i].node,
                            mrc_completion(r->c, r->admin[i].node, r->admin[i].token, &comp)
                                ? mr_strerror(comp.result) : "no completion");
            }
        }
        if (l == 0 || mr_group_status(mrc_node(r->c, l), g, &st) != MR_OK) {
            snprintf(msg, sizeof msg, "group %llu has no leader after healing",
                     (unsigned long long)g);
            fail(r, msg);
            if (getenv("MSIM_DEBUG"))
                dump_group(r, g);
            continue;
        }
        for (int k = 0; k < 3 && all_acked; k++) {
            if (!listed(st.voters, st.n_voters, r->members[g - 1][k]) || st.n_voters != 3) {
                snprintf(msg, sizeof msg, "group %llu: voters differ from the expected members "
                         "(%u voters)", (unsigned long long)g, st.n_voters);
                fail(r, msg);
                if (getenv("MSIM_DEBUG")) {
                    dump_group(r, g);
                    for (size_t i = 0; i < r->n_admin; i++) {
                        struct mr_completion comp;
                        if (r->admin[i].group != g)
                            continue;
                        fprintf(stderr, "  admin %s on node %u%s: %s\n", r->admin[i].cmd,
                                r->admin[i].node, r->admin[i].raced ? " (raced)" : "",
                                mrc_completion(r->c, r->admin[i].node, r->admin[i].token, &comp)
                                    ? mr_strerror(comp.result) : "no completion");
                    }
                }
                break;
            }
        }
    }
}

/* After healing: no replica outside its group's configuration still campaigns.  A
 * replica removed while it was cut off (a zombie) asks the members for votes every
 * election timeout until one of them tells it it was removed (mr_receive.c,
 * replica_removed()), and its node drops it.  A quiesced one stays until it is
 * used (check_admin); a lazily created one that never caught up never campaigns. */
void check_strays(struct run *r)
{
    char msg[256];
    size_t before = 0;
    for (int pass = 0; pass < 2; pass++) {
        for (mr_group_id g = 1; g <= r->groups; g++) {
            mr_node_id l = mrc_leader(r->c, g, NULL);
            struct mr_group_status ls;
            if (r->removing[g - 1] || l == 0 ||
                mr_group_status(mrc_node(r->c, l), g, &ls) != MR_OK)
                continue;
            for (mr_node_id n = 1; n <= r->nodes; n++) {
                struct mr_group_status st;
                if (listed(ls.voters, ls.n_voters, n) || listed(ls.learners, ls.n_learners, n) ||
                    mr_group_status(mrc_node(r->c, n), g, &st) != MR_OK)
                    continue;
                if (pass == 0 && st.n_voters == 0 && st.n_learners == 0)
                    r->empties++; /* never reached by a leader: asks again later */
                if (!listed(st.voters, st.n_voters, n) || st.quiesced)
                    continue; /* it does not campaign */
                if (pass == 0) {
                    before++;
                    continue;
                }
                snprintf(msg, sizeof msg, "group %llu: removed replica %llu on node %u "
                         "still campaigns", (unsigned long long)g,
                         (unsigned long long)st.replica_id, n);
                fail(r, msg);
                if (getenv("MSIM_DEBUG"))
                    dump_group(r, g);
            }
        }
        if (pass == 0 && before == 0)
            break;
        if (pass == 0)
            mrc_run(r->c, 4 * E); /* at least one more vote request each */
    }
    r->strays += before;
}
