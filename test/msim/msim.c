/*
 * msim.c — the many-group simulator: several multi-raft nodes, each hosting a share
 * of G groups with overlapping 3-member memberships, under message loss,
 * duplication, delay/reordering, partitions and crash-restarts that lose everything
 * not persisted.  A seed reproduces a run exactly.
 *
 * Checked per seed (test/common/mr_cluster.h, mrc_check): at most one leader per
 * (group, term); on every node each group's command / membership events have
 * increasing indexes, agree across nodes on (index -> command id, payload), and no
 * command id is applied twice; and after healing, every acknowledged command id
 * appears exactly once in each member's events (or, for a member that installed a
 * snapshot, in its persisted dedup records).
 *
 * Then the failover scenario: 3 nodes, F groups (default 10,000) quiesced; the node
 * that leads about a third of them crashes; every one of those groups must have a
 * new leader within two election timeouts (the node is declared down after
 * mr_config.dead_ticks, default one election timeout).
 *
 * Then the stall scenario (docs/sim-findings.md, "idle groups re-elect their
 * leaders"): 5 nodes, S groups (default 2,000) of 3 members, converged and idle
 * (all quiesced); node 1 stalls — not ticked, every envelope to or from it held up —
 * for E/2 and E-HB-1 ticks (below the dead-node threshold: no leader may change)
 * and for 2E and 3E (a crash as far as the others can tell: exactly the groups it
 * led must fail over, once: no other group changes leader, and none ping-pongs
 * back to it — their term rose by one election at most).
 *
 * Usage: msim [--seeds N] [--groups G] [--ticks T] [--failover-groups F]
 *             [--stall-groups S] [--seed S]
 * Prints one closing line: msim: seeds=N groups=G violations=V
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mr_cluster.h"

#define E 10
#define HB 2
#define DEAD E             /* mr_config.dead_ticks default: one election timeout */
#define FAILOVER_BOUND (2 * E)  /* issue #4: every group re-led within 2x the timeout */

struct proposal {
    mr_group_id group;
    mr_node_id node;
    uint64_t token;
    char cmd[24];
    bool generated;            /* mr_propose_generated (never retried by id) */
};

struct run {
    struct mrc_cluster *c;
    uint64_t prng;
    uint32_t nodes;
    mr_group_id groups;
    mr_node_id (*members)[3];
    struct proposal *props;
    size_t n_props, cap_props;
    uint64_t next_token;
    size_t violations;
    char first[256];
    size_t crashes, batch_crashes, partitions, acked, expired;
    /* Group removals and membership moves requested during the run. */
    struct admin {
        mr_group_id group;
        mr_node_id node;       /* where it was requested */
        uint64_t token;
        bool removal;
        bool promotion;        /* add_voter of a node added as a learner just before */
        bool raced;            /* part of a move that another member raced: a refusal
                                  (MR_EBADCONF) is a right answer */
        char cmd[32];          /* its command id (membership changes) */
    } *admin;
    size_t n_admin, cap_admin;
    bool *removing;            /* per group: a removal was requested */
    size_t zombies, moves, learner_moves, promoted; /* promoted: learner moves whose
                                                      promotion completed */
    size_t raced_moves, refused; /* moves raced by another member's add_voter; their
                                    requests refused (MR_EBADCONF) */
    size_t strays;          /* removed replicas still campaigning after healing */
    size_t empties;         /* replicas of non-members that never learned anything */
    /* Reads: the index must cover every index committed before the call began. */
    struct read_req {
        mr_group_id group;
        mr_node_id node;
        uint64_t token;
        raft_index min_index;
    } *reads;
    size_t n_reads, cap_reads, transfers, reads_ok;
};

static uint64_t rnd(struct run *r)
{
    uint64_t z = (r->prng += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static void fail(struct run *r, const char *msg)
{
    if (r->violations++ == 0)
        snprintf(r->first, sizeof r->first, "%s", msg);
}

static void propose_some(struct run *r, int count)
{
    for (int i = 0; i < count; i++) {
        /* Most of the load on a few hot groups: long logs, compaction, snapshots for
         * members that lag behind a crash or a partition. */
        mr_group_id g = rnd(r) % 4 != 0 ? 1 + rnd(r) % 4 : 1 + rnd(r) % r->groups;
        mr_node_id on = r->members[g - 1][rnd(r) % 3];
        struct proposal p;
        if (!mrc_is_up(r->c, on))
            continue;
        memset(&p, 0, sizeof p);
        p.group = g;
        p.node = on;
        p.token = ++r->next_token;
        /* A few retries of an earlier id: exactly-once must hold for them too. */
        if (r->n_props > 0 && rnd(r) % 10 == 0) {
            const struct proposal *old = &r->props[rnd(r) % r->n_props];
            if (old->group == g && !old->generated)
                memcpy(p.cmd, old->cmd, sizeof p.cmd);
        }
        /* A third of the fresh ones with a generated id: a small window
         * (generated_id_window) makes some expire and sessions get dropped. */
        if (p.cmd[0] == 0) {
            p.generated = rnd(r) % 3 == 0;
            snprintf(p.cmd, sizeof p.cmd, "%s%llu", p.generated ? "g" : "c",
                     (unsigned long long)p.token);
        }
        /* A quarter of the generated ones with a short deadline: their waiters
         * give up (MR_ETIMEOUT), the session's floor passes them, and their late
         * copies must then never apply on any node. */
        if ((p.generated ? mr_propose_generated : mr_propose)(
                mrc_node(r->c, on), g, p.token, p.cmd, strlen(p.cmd), p.cmd, strlen(p.cmd),
                p.generated && rnd(r) % 4 == 0 ? 2 + (uint32_t)(rnd(r) % 20) : 0) != MR_OK)
            continue;
        if (r->n_props == r->cap_props) {
            r->cap_props = r->cap_props ? 2 * r->cap_props : 1024;
            r->props = realloc(r->props, r->cap_props * sizeof *r->props);
            if (r->props == NULL)
                abort();
        }
        r->props[r->n_props++] = p;
    }
}

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
        a.token = ++r->next_token;
        snprintf(a.cmd, sizeof a.cmd, "race-%llu", (unsigned long long)a.token);
        /* Every other racer's id counts as generated for the call (it is unique), which
         * lets its own view refuse it at once; the others, as a caller's ids, are
         * refused only by the leader (mr_conf.c, answered_by_log). */
        if (mr_propose_conf_change(mrc_node(r->c, on), a.group, a.token, MR_CHANGE_ADD_VOTER,
                                   add, a.cmd, strlen(a.cmd), (a.token & 1) != 0, NULL, 0,
                                   0) == MR_OK) {
            admin_push(r, a);
            r->raced_moves++;
        }
        return;
    }
}

/* Now and then: remove a group, or (5 nodes) move one replica of a group to a node
 * outside it (add_voter the new node, or add_learner then add_voter, then
 * remove_voter an old one), all requested on a random live member. */
static void admin_some(struct run *r)
{
    mr_group_id g = 1 + rnd(r) % r->groups;
    mr_node_id on = r->members[g - 1][rnd(r) % 3];
    struct admin a;
    if (r->removing[g - 1] || !mrc_is_up(r->c, on) || !mr_group_exists(mrc_node(r->c, on), g))
        return;
    /* One move of a group at a time: the expected members are updated when a move is
     * requested, and the changes of two moves requested on different members may
     * commit interleaved (a promotion waits for its learner; the other move's removal
     * of that learner may commit first, and the promotion then adds the node afresh). */
    for (size_t i = 0; i < r->n_admin; i++)
        if (r->admin[i].group == g && !mrc_completion(r->c, r->admin[i].node,
                                                      r->admin[i].token, NULL))
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
            a.token = ++r->next_token;
            snprintf(a.cmd, sizeof a.cmd, "learn-%llu", (unsigned long long)a.token);
            if (mr_propose_conf_change(mrc_node(r->c, on), g, a.token, MR_CHANGE_ADD_LEARNER,
                                       add, a.cmd, strlen(a.cmd), false, NULL, 0, 0) != MR_OK)
                return;
            admin_push(r, a);
            r->learner_moves++;
            a.promotion = true;
        }
        a.token = ++r->next_token;
        snprintf(a.cmd, sizeof a.cmd, "add-%llu", (unsigned long long)a.token);
        if (mr_propose_conf_change(mrc_node(r->c, on), g, a.token, MR_CHANGE_ADD_VOTER, add,
                                   a.cmd, strlen(a.cmd), false, NULL, 0, 0) != MR_OK)
            return;
        admin_push(r, a);
        if (a.raced)
            race(r, a, add);
        a.promotion = false;
        a.token = ++r->next_token;
        snprintf(a.cmd, sizeof a.cmd, "del-%llu", (unsigned long long)a.token);
        if (mr_propose_conf_change(mrc_node(r->c, on), g, a.token, MR_CHANGE_REMOVE_VOTER, del,
                                   a.cmd, strlen(a.cmd), false, NULL, 0, 0) != MR_OK)
            return;
        admin_push(r, a);
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

/* A membership change refused to its caller (MR_EBADCONF: by its node's view or by
 * the leader's) committed nowhere: no member recorded an event with its id. */
static void check_refusals(struct run *r)
{
    char msg[256];
    for (size_t i = 0; i < r->n_admin; i++) {
        const struct admin *a = &r->admin[i];
        struct mr_completion comp;
        if (a->removal || !mrc_completion(r->c, a->node, a->token, &comp) ||
            comp.result != MR_EBADCONF)
            continue;
        r->refused++;
        for (mr_node_id n = 1; n <= r->nodes; n++)
            if (mrc_id_events(r->c, n, a->group, a->cmd, strlen(a->cmd)) != 0) {
                snprintf(msg, sizeof msg, "group %llu: %s was refused on node %u but "
                         "committed (an event on node %u)", (unsigned long long)a->group,
                         a->cmd, a->node, n);
                fail(r, msg);
                break;
            }
    }
}

/* After healing: groups whose removal committed are gone everywhere; a replica that
 * missed the removal while quiesced (a "zombie") must go away as soon as it is used. */
static void check_admin(struct run *r)
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
static void check_strays(struct run *r)
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

/* The group's voters (node ids) as its leader sees them after healing. */
static uint32_t final_voters(struct run *r, mr_group_id g, mr_node_id *out)
{
    struct mr_group_status st;
    mr_node_id l = mrc_leader(r->c, g, NULL);
    if (l == 0 || mr_group_status(mrc_node(r->c, l), g, &st) != MR_OK)
        return 0;
    for (uint32_t i = 0; i < st.n_voters && i < MR_MAX_MEMBERS; i++)
        out[i] = st.voters[i];
    return st.n_voters < MR_MAX_MEMBERS ? st.n_voters : MR_MAX_MEMBERS;
}

/* Reads and leadership transfers on random members of the hot groups. */
static void reads_and_transfers(struct run *r)
{
    mr_group_id g = 1 + rnd(r) % 4;
    mr_node_id on = r->members[g - 1][rnd(r) % 3];
    struct read_req q;
    if (r->removing[g - 1] || !mrc_is_up(r->c, on) || !mr_group_exists(mrc_node(r->c, on), g))
        return;
    /* One move of a group at a time: the expected members are updated when a move is
     * requested, and the changes of two moves requested on different members may
     * commit interleaved (a promotion waits for its learner; the other move's removal
     * of that learner may commit first, and the promotion then adds the node afresh). */
    for (size_t i = 0; i < r->n_admin; i++)
        if (r->admin[i].group == g && !mrc_completion(r->c, r->admin[i].node,
                                                      r->admin[i].token, NULL))
            return;
    if (rnd(r) % 8 == 0) {
        mr_node_id to = r->members[g - 1][rnd(r) % 3];
        if (mr_transfer_leadership(mrc_node(r->c, on), g, to, ++r->next_token, 3 * E) == MR_OK)
            r->transfers++;
        return;
    }
    memset(&q, 0, sizeof q);
    q.group = g;
    q.node = on;
    q.token = ++r->next_token;
    for (mr_node_id n = 1; n <= r->nodes; n++) {
        struct mr_group_status st;
        if (mrc_is_up(r->c, n) && mr_group_status(mrc_node(r->c, n), g, &st) == MR_OK &&
            st.commit > q.min_index)
            q.min_index = st.commit;
    }
    if (mr_read_index(mrc_node(r->c, on), g, q.token, 0) != MR_OK)
        return;
    if (r->n_reads == r->cap_reads) {
        r->cap_reads = r->cap_reads ? 2 * r->cap_reads : 256;
        r->reads = realloc(r->reads, r->cap_reads * sizeof *r->reads);
        if (r->reads == NULL)
            abort();
    }
    r->reads[r->n_reads++] = q;
}

static size_t check_reads(struct run *r)
{
    char msg[256];
    size_t ok = 0;
    for (size_t i = 0; i < r->n_reads; i++) {
        struct mr_completion comp;
        const struct read_req *q = &r->reads[i];
        if (!mrc_completion(r->c, q->node, q->token, &comp) || comp.result != MR_OK)
            continue;
        ok++;
        if (comp.index < q->min_index) {
            snprintf(msg, sizeof msg, "group %llu: read index %llu below commit %llu seen "
                     "before the read began", (unsigned long long)q->group,
                     (unsigned long long)comp.index, (unsigned long long)q->min_index);
            fail(r, msg);
        }
    }
    return ok;
}

static void check_acked(struct run *r)
{
    char msg[256];
    for (size_t i = 0; i < r->n_props; i++) {
        const struct proposal *p = &r->props[i];
        struct mr_completion comp;
        if (mrc_completion(r->c, p->node, p->token, &comp) && comp.result == MR_EEXPIRED &&
            !r->removing[p->group - 1]) {
            /* Expired: decided by the log position, so on no node an event. */
            mr_node_id voters[MR_MAX_MEMBERS];
            uint32_t nv = final_voters(r, p->group, voters);
            r->expired++;
            for (uint32_t k = 0; k < nv; k++)
                if (mrc_command_events(r->c, voters[k], p->group, p->cmd, strlen(p->cmd)) != 0) {
                    snprintf(msg, sizeof msg, "group %llu: expired command %s applied on node %u",
                             (unsigned long long)p->group, p->cmd, voters[k]);
                    fail(r, msg);
                }
            continue;
        }
        if (!mrc_completion(r->c, p->node, p->token, &comp) || comp.result != MR_OK ||
            r->removing[p->group - 1])
            continue;
        if (mrc_completion_count(r->c, p->node, p->token) != 1) {
            snprintf(msg, sizeof msg, "token %llu completed twice", (unsigned long long)p->token);
            fail(r, msg);
        }
        mr_node_id voters[MR_MAX_MEMBERS];
        uint32_t nv = final_voters(r, p->group, voters);
        for (uint32_t k = 0; k < nv; k++) {
            mr_node_id n = voters[k];
            size_t ev = mrc_command_events(r->c, n, p->group, p->cmd, strlen(p->cmd));
            if (ev == 1)
                continue;
            /* (A generated id has no record: its session stands for it.) */
            if (ev == 0 && mrc_snapshot_installed(r->c, n, p->group) &&
                (p->generated || mrc_has_dedup(r->c, n, p->group, p->cmd, strlen(p->cmd))))
                continue;
            snprintf(msg, sizeof msg, "group %llu: acknowledged command %s has %zu events on node %u",
                     (unsigned long long)p->group, p->cmd, ev, n);
            fail(r, msg);
        }
    }
}

static size_t run_seed(uint64_t seed, uint32_t nodes, mr_group_id groups, uint32_t ticks,
                       char *err, size_t err_len)
{
    struct mrc_options o;
    struct run r;
    /* Up to one crashed node at a time with 3 nodes, two with 5 (then some groups
     * lose their quorum for a while). */
    mr_node_id down[2] = {0, 0};
    uint64_t down_until[2] = {0, 0}, part_until = 0;
    uint32_t max_down = nodes >= 5 ? 2 : 1;
    char msg[256];

    memset(&r, 0, sizeof r);
    r.prng = seed * 0x2545F4914F6CDD1DULL + nodes;
    r.nodes = nodes;
    r.groups = groups;
    memset(&o, 0, sizeof o);
    o.n_nodes = nodes;
    o.seed = seed;
    o.base.election_ticks = E;
    o.base.heartbeat_ticks = 2;
    o.base.compact_threshold = 8;    /* compact often: snapshots get exercised */
    o.base.log_retention = 16;
    o.base.generated_id_window = 40; /* small: expiry and dropped sessions happen */
    r.c = mrc_new(&o);
    r.members = calloc(groups, sizeof *r.members);
    r.removing = calloc(groups, sizeof *r.removing);
    if (r.c == NULL || r.members == NULL || r.removing == NULL)
        abort();
    for (mr_group_id g = 1; g <= groups; g++) {
        /* Overlapping 3-member sets chosen at random among the nodes. */
        mr_node_id *m = r.members[g - 1];
        m[0] = (mr_node_id)(1 + rnd(&r) % nodes);
        do m[1] = (mr_node_id)(1 + rnd(&r) % nodes); while (m[1] == m[0]);
        do m[2] = (mr_node_id)(1 + rnd(&r) % nodes); while (m[2] == m[0] || m[2] == m[1]);
        if (mr_create_group(mrc_node(r.c, m[0]), g, m, 3, (1ull << 40) + g) != MR_OK)
            fail(&r, "create_group refused");
    }
    mrc_run(r.c, 3 * E);
    mrc_set_faults(r.c, 5, 2, 2);
    for (uint32_t t = 0; t < ticks; t++) {
        uint64_t roll = rnd(&r) % 1000;
        propose_some(&r, (int)(rnd(&r) % 10));
        if (rnd(&r) % 8 == 0)
            admin_some(&r);
        if (rnd(&r) % 2 == 0)
            reads_and_transfers(&r);
        for (uint32_t k = 0; k < max_down; k++) {
            if (down[k] != 0 && mrc_now(r.c) >= down_until[k]) {
                if (mrc_restart(r.c, down[k]) != MR_OK)
                    fail(&r, "restart failed");
                down[k] = 0;
            } else if (down[k] == 0 && roll < 15) {
                mr_node_id victim = (mr_node_id)(1 + rnd(&r) % nodes);
                if (!mrc_is_up(r.c, victim))
                    continue;
                down[k] = victim;
                down_until[k] = mrc_now(r.c) + E + rnd(&r) % (3 * E);
                /* Half the crashes hit inside a batch, after its early appends
                 * left and before it was persisted (§10.2.1). */
                if (rnd(&r) % 2 == 0) {
                    mrc_crash_in_next_batch(r.c, victim);
                    r.batch_crashes++;
                } else {
                    mrc_crash(r.c, victim);
                }
                r.crashes++;
                break;
            }
        }
        if (part_until != 0 && mrc_now(r.c) >= part_until) {
            mrc_heal_all(r.c);
            part_until = 0;
        } else if (part_until == 0 && roll >= 990) {
            mr_node_id a = (mr_node_id)(1 + rnd(&r) % nodes);
            for (mr_node_id b = 1; b <= nodes; b++)
                if (b != a && rnd(&r) % 2 == 0)
                    mrc_partition(r.c, a, b, true);
            part_until = mrc_now(r.c) + E + rnd(&r) % (4 * E);
            r.partitions++;
        }
        mrc_tick(r.c);
    }
    /* Heal everything; the waiting proposals are re-proposed and complete. */
    mrc_heal_all(r.c);
    mrc_set_faults(r.c, 0, 0, 0);
    for (uint32_t k = 0; k < max_down; k++)
        if (down[k] != 0 && mrc_restart(r.c, down[k]) != MR_OK)
            fail(&r, "restart failed");
    mrc_run(r.c, 12 * E);
    if (mrc_check(r.c, msg, sizeof msg) != 0)
        fail(&r, msg);
    if (getenv("MSIM_DUMP_GROUP") != NULL) {
        mr_group_id dg = strtoull(getenv("MSIM_DUMP_GROUP"), NULL, 10);
        for (mr_node_id n = 1; n <= nodes; n++)
            for (size_t i = 0; i < mrc_event_count(r.c, n); i++) {
                const struct mrc_event *e = mrc_event_at(r.c, n, i);
                if (e->group == dg)
                    fprintf(stderr, "node %u ev#%zu %s index=%llu term=%llu node=%u cmd=%.*s\n",
                            n, i, mr_event_type_name(e->type), (unsigned long long)e->index,
                            (unsigned long long)e->term, e->node_id, (int)e->cmd_len,
                            (const char *)e->cmd);
            }
    }
    check_acked(&r);
    check_admin(&r);
    check_refusals(&r);
    check_strays(&r);
    r.reads_ok = check_reads(&r);
    {
        size_t acked = 0;
        for (size_t i = 0; i < r.n_props; i++)
            acked += mrc_completion(r.c, r.props[i].node, r.props[i].token, NULL);
        r.acked = acked;
        if (acked * 10 < r.n_props * 8) {
            snprintf(msg, sizeof msg, "only %zu of %zu proposals completed after healing",
                     acked, r.n_props);
            fail(&r, msg);
        }
    }
    {
        struct mr_counters sum, one;
        size_t snaps = 0;
        memset(&sum, 0, sizeof sum);
        for (mr_node_id n = 1; n <= nodes; n++)
            for (size_t i = 0; i < mrc_event_count(r.c, n); i++)
                snaps += mrc_event_at(r.c, n, i)->type == MR_EVENT_SNAPSHOT_APPLIED;
        for (mr_node_id n = 1; n <= nodes; n++) {
            mr_get_counters(mrc_node(r.c, n), &one);
            sum.snapshots_applied += one.snapshots_applied;
            sum.duplicates += one.duplicates;
            sum.reproposals += one.reproposals;
            sum.dropped += one.dropped;
            sum.conflicts += one.conflicts;
        }
        for (size_t i = 0; i < r.n_admin; i++) {
            struct mr_completion comp;
            if (r.admin[i].promotion && mrc_completion(r.c, r.admin[i].node, r.admin[i].token,
                                                       &comp) && comp.result == MR_OK)
                r.promoted++;
        }
        snprintf(err, err_len, "%s", r.violations ? r.first : "ok");
        printf("msim:   seed=%llu nodes=%u proposals=%zu acked=%zu crashes=%zu "
               "(in a batch %zu) expired=%zu partitions=%zu snapshots_installed=%zu duplicates=%llu reproposals=%llu admin=%zu moves=%zu (through a learner %zu, promoted %zu; raced %zu, refused %zu) "
               "zombies_cleared=%zu strays=%zu empty_strays=%zu reads=%zu/%zu transfers=%zu "
               "conflicts=%llu\n",
               (unsigned long long)seed, nodes, r.n_props, r.acked, r.crashes,
               r.batch_crashes, r.expired, r.partitions, snaps, (unsigned long long)sum.duplicates,
               (unsigned long long)sum.reproposals, r.n_admin, r.moves, r.learner_moves, r.promoted, r.raced_moves, r.refused, r.zombies, r.strays, r.empties, r.reads_ok,
               r.n_reads, r.transfers, (unsigned long long)sum.conflicts);
    }
    mrc_free(r.c);
    free(r.members);
    free(r.removing);
    free(r.admin);
    free(r.reads);
    free(r.props);
    return r.violations;
}

/* A cluster for the failover and stall scenarios: `nodes` nodes, the default
 * timing (E, HB), no leader-uniqueness check (these scenarios crash and stall
 * leaders on purpose and check what they need themselves). */
static struct mrc_cluster *scenario_cluster(uint32_t nodes, uint64_t seed)
{
    struct mrc_options o;
    struct mrc_cluster *c;
    memset(&o, 0, sizeof o);
    o.n_nodes = nodes;
    o.seed = seed;
    o.base.election_ticks = E;
    o.base.heartbeat_ticks = HB;
    o.no_leader_check = true;
    c = mrc_new(&o);
    if (c == NULL)
        abort();
    return c;
}

/* Failover: returns violations; *worst = ticks until the last group had a leader. */
static size_t failover(uint64_t seed, mr_group_id groups, uint64_t *worst, size_t *led_out,
                       char *err, size_t err_len)
{
    struct mrc_cluster *c = scenario_cluster(3, seed);
    mr_node_id members[3] = {1, 2, 3};
    mr_group_id *led;
    raft_term *terms;
    size_t n_led = 0, violations = 0, done = 0;
    uint64_t crash_at;
    led = calloc(groups, sizeof *led);
    terms = calloc(groups, sizeof *terms);
    if (led == NULL || terms == NULL)
        abort();
    for (mr_group_id g = 1; g <= groups; g++)
        mr_create_group(mrc_node(c, (mr_node_id)(1 + g % 3)), g, members, 3, g);
    mrc_run(c, 4 * E);
    for (mr_group_id g = 1; g <= groups; g++) {
        raft_term t;
        if (mrc_leader(c, g, &t) == 1) {
            terms[n_led] = t;
            led[n_led++] = g;
        }
    }
    if (mr_active_group_count(mrc_node(c, 2)) != 0) {
        snprintf(err, err_len, "failover: %zu groups still active before the crash",
                 mr_active_group_count(mrc_node(c, 2)));
        violations++;
    }
    crash_at = mrc_now(c);
    mrc_crash(c, 1);
    while (done < n_led && mrc_now(c) - crash_at < 4 * E) {
        mrc_tick(c);
        while (done < n_led) {
            raft_term t;
            mr_node_id l = mrc_leader(c, led[done], &t);
            if (l == 0 || t <= terms[done])
                break;
            done++;
        }
    }
    *worst = mrc_now(c) - crash_at;
    *led_out = n_led;
    if (done < n_led || *worst > FAILOVER_BOUND) {
        if (violations++ == 0)
            snprintf(err, err_len, "failover: %zu of %zu groups led by the crashed node had a new "
                     "leader after %llu ticks (bound %d)", done, n_led,
                     (unsigned long long)*worst, FAILOVER_BOUND);
    }
    mrc_free(c);
    free(led);
    free(terms);
    return violations;
}

/* Failover when the survivors heard the crashed node at different times: node
 * `early` (2: the designated candidate of every group; 3: the other voter) stops
 * hearing node 1 `skew` ticks before node 1 crashes, the other survivor hears it
 * to the end.  Returns the ticks from the crash until every group has a new
 * leader (docs/sim-findings.md, finding 8: this took up to 46 ticks). */
static uint64_t failover_skew(uint64_t seed, mr_group_id groups, uint32_t skew,
                              mr_node_id early)
{
    struct mrc_cluster *c = scenario_cluster(3, seed);
    mr_node_id members[3] = {1, 2, 3};
    uint64_t t0, took = 0;
    for (mr_group_id g = 1; g <= groups; g++)
        mr_create_group(mrc_node(c, 1), g, members, 3, g);
    mrc_run(c, 6 * E);
    mrc_partition(c, 1, early, true);
    mrc_run(c, skew);
    t0 = mrc_now(c);
    mrc_crash(c, 1);
    mrc_heal_all(c);
    while (took == 0 && mrc_now(c) - t0 < 8 * E) {
        size_t ok = 0;
        mrc_tick(c);
        for (mr_group_id g = 1; g <= groups; g++) {
            mr_node_id l = mrc_leader(c, g, NULL);
            ok += l == 2 || l == 3;
        }
        if (ok == groups)
            took = mrc_now(c) - t0;
    }
    mrc_free(c);
    return took ? took : 8 * E;
}

/* Stall: node 1 of 5 stalls for `stall` ticks on an idle cluster.  Returns
 * violations; *led = groups node 1 led, *changed = groups whose (leader, term)
 * changed, *collateral = of those, groups node 1 did not lead. */
static size_t stall_run(uint64_t seed, mr_group_id groups, uint32_t stall, size_t *led,
                        size_t *changed, size_t *collateral, char *err, size_t err_len)
{
    struct mrc_cluster *c = scenario_cluster(5, seed);
    mr_node_id *before;
    raft_term *terms;
    size_t violations = 0, active = 0;
    before = calloc(groups, sizeof *before);
    terms = calloc(groups, sizeof *terms);
    if (before == NULL || terms == NULL)
        abort();
    for (mr_group_id g = 1; g <= groups; g++) {
        mr_node_id a = (mr_node_id)(1 + g % 5);
        mr_node_id m[3] = {a, (mr_node_id)(a % 5 + 1), (mr_node_id)((a + 1) % 5 + 1)};
        mr_create_group(mrc_node(c, a), g, m, 3, g);
    }
    mrc_run(c, 4 * E);
    for (mr_node_id n = 1; n <= 5; n++)
        active += mr_active_group_count(mrc_node(c, n));
    if (active != 0) {
        snprintf(err, err_len, "stall: %zu replicas still active before the stall", active);
        violations++;
    }
    *led = *changed = *collateral = 0;
    for (mr_group_id g = 1; g <= groups; g++) {
        before[g - 1] = mrc_leader(c, g, &terms[g - 1]);
        *led += before[g - 1] == 1;
    }
    mrc_stall(c, 1, true);
    mrc_run(c, stall);
    mrc_stall(c, 1, false);
    mrc_run(c, 4 * E);
    for (mr_group_id g = 1; g <= groups; g++) {
        raft_term t;
        mr_node_id l = mrc_leader(c, g, &t);
        if (l != before[g - 1] || t != terms[g - 1]) {
            (*changed)++;
            /* Collateral: a group node 1 did not lead, or one that went back to node 1
             * or held more than two elections (ping-pong, split votes). */
            *collateral += before[g - 1] != 1 || l == 1 || t > terms[g - 1] + 2;
        }
    }
    if (stall + HB < DEAD) {
        /* Below the threshold a stalled node is not a dead one. */
        if (*changed != 0 && violations++ == 0)
            snprintf(err, err_len, "stall of %u ticks (< dead threshold %d): %zu leader "
                     "changes", stall, DEAD, *changed);
    } else if ((*changed != *led || *collateral != 0) && violations++ == 0) {
        snprintf(err, err_len, "stall of %u ticks (>= dead threshold %d): %zu of %zu groups "
                 "failed over, %zu others changed", stall, DEAD, *changed - *collateral, *led,
                 *collateral);
    }
    mrc_free(c);
    free(before);
    free(terms);
    return violations;
}

int main(int argc, char **argv)
{
    uint32_t seeds = 8, ticks = 300;
    mr_group_id groups = 1000, fo_groups = 10000, stall_groups = 2000;
    uint64_t first_seed = 1, worst = 0;
    size_t violations = 0, led = 0;
    char err[256];
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--seeds") == 0)
            seeds = (uint32_t)strtoul(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--groups") == 0)
            groups = strtoull(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--ticks") == 0)
            ticks = (uint32_t)strtoul(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--failover-groups") == 0)
            fo_groups = strtoull(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--stall-groups") == 0)
            stall_groups = strtoull(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--seed") == 0)
            first_seed = strtoull(argv[i + 1], NULL, 10);
        else {
            fprintf(stderr, "usage: msim [--seeds N] [--groups G] [--ticks T] "
                            "[--failover-groups F] [--stall-groups S] [--seed S]\n");
            return 2;
        }
    }
    for (uint32_t s = 0; s < seeds; s++) {
        for (uint32_t nodes = 3; nodes <= 5; nodes += 2) {
            size_t v = run_seed(first_seed + s, nodes, groups, ticks, err, sizeof err);
            printf("msim: seed=%llu nodes=%u groups=%llu ticks=%u violations=%zu%s%s\n",
                   (unsigned long long)(first_seed + s), nodes, (unsigned long long)groups,
                   ticks, v, v ? " first: " : "", v ? err : "");
            fflush(stdout);
            violations += v;
        }
    }
    if (fo_groups > 0) {
        size_t v = failover(first_seed, fo_groups, &worst, &led, err, sizeof err);
        printf("msim: failover groups=%llu led_by_crashed=%zu new_leaders_within=%llu ticks "
               "(bound 2E = %d, dead_ticks %d) violations=%zu%s%s\n",
               (unsigned long long)fo_groups, led, (unsigned long long)worst, FAILOVER_BOUND,
               DEAD,
               v, v ? " first: " : "", v ? err : "");
        violations += v;
    }
    if (fo_groups > 0) {
        const uint32_t skews[] = {0, 2, 4, 6, 8};
        for (mr_node_id early = 2; early <= 3; early++)
            for (size_t k = 0; k < sizeof skews / sizeof skews[0]; k++) {
                uint64_t took = failover_skew(first_seed + 76 + k, 30, skews[k], early);
                size_t v = took > FAILOVER_BOUND;
                printf("msim: failover-skew node %u stops hearing node 1 %u ticks early: "
                       "groups=30 new_leaders_within=%llu ticks (bound 2E = %d) "
                       "violations=%zu\n", early, skews[k], (unsigned long long)took,
                       FAILOVER_BOUND, v);
                violations += v;
            }
    }
    if (stall_groups > 0) {
        const uint32_t stalls[] = {E / 2, E - HB - 1, 2 * E, 3 * E};
        for (size_t k = 0; k < sizeof stalls / sizeof stalls[0]; k++) {
            size_t n_led, changed, collateral;
            size_t v = stall_run(first_seed + k, stall_groups, stalls[k], &n_led, &changed,
                                 &collateral, err, sizeof err);
            printf("msim: stall node=1 ticks=%u (dead threshold %d) groups=%llu "
                   "led_by_stalled=%zu leader_changes=%zu (expected %zu) other_changes=%zu "
                   "violations=%zu%s%s\n",
                   stalls[k], DEAD, (unsigned long long)stall_groups, n_led, changed,
                   stalls[k] + HB < DEAD ? (size_t)0 : n_led, collateral, v,
                   v ? " first: " : "", v ? err : "");
            fflush(stdout);
            violations += v;
        }
    }
    printf("msim: seeds=%u groups=%llu violations=%zu\n", seeds, (unsigned long long)groups,
           violations);
    return violations == 0 ? 0 : 1;
}
