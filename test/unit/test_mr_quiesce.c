/*
 * test_mr_quiesce.c — quiescence and waking: idle groups leave the active set on
 * every member, cost nothing per tick and send only node liveness; a proposal or a
 * message wakes them; the followers of a crashed leader's node wake and elect a new
 * leader once the node is declared down (dead_ticks, default 3 election timeouts +
 * the liveness period) plus one election timeout; a node that merely stalls for
 * less than that (a descheduled process) keeps every leadership.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "mr_cluster.h"

#define E 10
#define HB 2
#define DEAD E            /* mr_config.dead_ticks default: one election timeout */
#define RAISED (3 * E + HB) /* an operator's multiraft.dead_ticks for stalling servers */

static struct mrc_cluster *cluster_dead(uint64_t seed, uint32_t dead_ticks)
{
    struct mrc_options o = mrc_options_ticks(3, seed, E, HB);
    o.base.dead_ticks = dead_ticks;
    return mrc_new(&o);
}

static struct mrc_cluster *cluster(uint64_t seed)
{
    return cluster_dead(seed, 0);
}

static void create_groups(struct mrc_cluster *c, mr_group_id n_groups)
{
    mr_node_id members[3] = {1, 2, 3};
    for (mr_group_id g = 1; g <= n_groups; g++)
        assert_int_equal(mr_create_group(mrc_node(c, (mr_node_id)(1 + g % 3)), g, members, 3, g),
                         MR_OK);
}

static void test_idle_groups_quiesce_everywhere(void **state)
{
    struct mrc_cluster *c = cluster(11);
    struct mr_counters before, after;
    (void)state;
    create_groups(c, 30);
    mrc_run(c, 40);
    for (mr_node_id n = 1; n <= 3; n++) {
        assert_int_equal(mr_group_count(mrc_node(c, n)), 30);
        assert_int_equal(mr_active_group_count(mrc_node(c, n)), 0);
    }
    /* Quiesced: no heartbeat entries at all for 5 election timeouts, only liveness. */
    mr_get_counters(mrc_node(c, 1), &before);
    mrc_run(c, 5 * E);
    mr_get_counters(mrc_node(c, 1), &after);
    assert_int_equal(after.heartbeats_sent, before.heartbeats_sent);
    assert_int_equal(after.heartbeat_resps_sent, before.heartbeat_resps_sent);
    assert_int_equal(after.messages_sent, before.messages_sent);
    assert_true(after.liveness_sent > before.liveness_sent);
    /* No group woke up (nobody thinks a node died). */
    assert_int_equal(after.woken, before.woken);
    assert_int_equal(mrc_check(c, NULL, 0), 0);
    mrc_free(c);
}

static void test_proposal_wakes_group(void **state)
{
    struct mrc_cluster *c = cluster(12);
    struct mr_completion comp;
    struct mr_group_status st;
    (void)state;
    create_groups(c, 3);
    mrc_run(c, 40);
    assert_int_equal(mr_group_status(mrc_node(c, 2), 2, &st), MR_OK);
    assert_true(st.quiesced);
    /* From a follower: the group wakes here, the message wakes the leader. */
    assert_int_equal(mr_propose(mrc_node(c, 2), 1, 77, "k", 1, "v", 1, 50), MR_OK);
    assert_int_equal(mr_active_group_count(mrc_node(c, 2)), 1);
    mrc_run(c, 5);
    assert_true(mrc_completion(c, 2, 77, &comp));
    assert_int_equal(comp.result, MR_OK);
    for (mr_node_id n = 1; n <= 3; n++)
        assert_int_equal(mrc_command_events(c, n, 1, "k", 1), 1);
    /* ... and it goes back to sleep, on every node, with an empty in-memory log. */
    mrc_run(c, 20);
    for (mr_node_id n = 1; n <= 3; n++) {
        assert_int_equal(mr_active_group_count(mrc_node(c, n)), 0);
        assert_int_equal(mr_group_status(mrc_node(c, n), 1, &st), MR_OK);
        assert_true(st.first_index > st.last_index);
    }
    assert_int_equal(mrc_check(c, NULL, 0), 0);
    mrc_free(c);
}

/* A host shows each group's status (multiraft.groups) and refreshes it only for
 * the groups a batch visited (mr_batch.visited).  That mirror must stay true while
 * groups quiesce — which happens at a tick, after their last batch — and while
 * the followers of a dead node's groups wake and elect. */
#define MIRROR_GROUPS 30
#define MIRROR_NODES 4
struct status_mirror {
    struct mrc_cluster *c;
    bool present[MIRROR_NODES + 1][MIRROR_GROUPS + 1];
    struct mr_group_status st[MIRROR_NODES + 1][MIRROR_GROUPS + 1];
};

static void mirror_visited(void *arg, mr_node_id node, const mr_group_id *groups, size_t n)
{
    struct status_mirror *m = arg;
    for (size_t i = 0; i < n; i++) {
        assert_true(groups[i] >= 1 && groups[i] <= MIRROR_GROUPS);
        m->present[node][groups[i]] =
            mr_group_status(mrc_node(m->c, node), groups[i], &m->st[node][groups[i]]) == MR_OK;
    }
}

static void assert_mirror_true(const struct status_mirror *m, mr_node_id from, mr_node_id to)
{
    for (mr_node_id n = from; n <= to; n++)
        for (mr_group_id g = 1; g <= MIRROR_GROUPS; g++) {
            struct mr_group_status st;
            const struct mr_group_status *shown = &m->st[n][g];
            assert_int_equal(mr_group_status(mrc_node(m->c, n), g, &st), MR_OK);
            assert_true(m->present[n][g]);
            assert_int_equal(shown->quiesced, st.quiesced);
            assert_int_equal(shown->role, st.role);
            assert_int_equal(shown->term, st.term);
            assert_int_equal(shown->leader_node, st.leader_node);
            assert_int_equal(shown->commit, st.commit);
            assert_int_equal(shown->applied, st.applied);
        }
}

static void test_visited_groups_keep_status_true(void **state)
{
    static struct status_mirror m;
    struct mr_group_status st;
    (void)state;
    memset(&m, 0, sizeof m);
    m.c = cluster(21);
    mrc_set_visited_observer(m.c, mirror_visited, &m);
    create_groups(m.c, MIRROR_GROUPS);
    mrc_run(m.c, 40);
    assert_int_equal(mr_group_status(mrc_node(m.c, 2), 1, &st), MR_OK);
    assert_true(st.quiesced);
    assert_mirror_true(&m, 1, 3);
    /* Node 1 dies: the followers of its groups wake on the others and elect, then
     * quiesce again, leaving node 1's members behind. */
    mrc_crash(m.c, 1);
    mrc_run(m.c, 3 * E);
    assert_mirror_true(&m, 2, 3);
    /* It comes back: everything quiesces again. */
    assert_int_equal(mrc_restart(m.c, 1), MR_OK);
    mrc_run(m.c, 60);
    assert_int_equal(mr_active_group_count(mrc_node(m.c, 2)), 0);
    assert_mirror_true(&m, 2, 3);
    assert_int_equal(mrc_check(m.c, NULL, 0), 0);
    mrc_free(m.c);
}

/* The same mirror for a learner: when its group's leader node is declared dead it
 * wakes but cannot campaign, so nothing of its own happens to it until the new
 * leader writes.  The batch after that tick must still report it (mr_quiesce.c
 * marks a group it wakes; the first tick of the woken group may mark it too). */
static void test_woken_learner_status_is_reported(void **state)
{
    static struct status_mirror m;
    struct mrc_options o = mrc_options_ticks(4, 22, E, HB);
    struct mr_counters before, now;
    struct mr_completion comp;
    mr_node_id members[3] = {1, 2, 3};
    mr_node_id leader;
    raft_term term;
    uint64_t t0;
    (void)state;
    memset(&m, 0, sizeof m);
    m.c = mrc_new(&o);
    assert_int_equal(mr_create_group(mrc_node(m.c, 1), 1, members, 3, 1), MR_OK);
    mrc_run(m.c, 40);
    leader = mrc_leader(m.c, 1, &term);
    assert_true(leader >= 1 && leader <= 3);
    assert_int_equal(mr_propose_conf_change(mrc_node(m.c, leader), 1, 9, MR_CHANGE_ADD_LEARNER, 4,
                                            "learn4", 6, false, NULL, 0, 200),
                     MR_OK);
    mrc_run(m.c, 60);
    assert_true(mrc_completion(m.c, leader, 9, &comp));
    assert_int_equal(comp.result, MR_OK);
    assert_int_equal(mr_active_group_count(mrc_node(m.c, 4)), 0);
    /* The host published every group when it started; from now on, visited only. */
    for (mr_node_id n = 1; n <= 4; n++)
        m.present[n][1] = mr_group_status(mrc_node(m.c, n), 1, &m.st[n][1]) == MR_OK;
    mrc_set_visited_observer(m.c, mirror_visited, &m);
    mr_get_counters(mrc_node(m.c, 4), &before);
    mrc_crash(m.c, leader);
    t0 = mrc_now(m.c);
    do {
        mrc_tick(m.c);
        mr_get_counters(mrc_node(m.c, 4), &now);
    } while (now.woken == before.woken && mrc_now(m.c) - t0 < 10 * E);
    assert_true(now.woken > before.woken);
    assert_true(m.present[4][1]);
    assert_false(m.st[4][1].quiesced);
    mrc_free(m.c);
}

static void test_failover_of_quiesced_groups(void **state)
{
    struct mrc_cluster *c = cluster(13);
    mr_group_id led[60];
    raft_term old_term[60];
    size_t n_led = 0;
    uint64_t crash_at;
    (void)state;
    create_groups(c, 60);
    mrc_run(c, 40);
    for (mr_group_id g = 1; g <= 60; g++) {
        raft_term t;
        if (mrc_leader(c, g, &t) == 1) {
            old_term[n_led] = t;
            led[n_led++] = g;
        }
    }
    assert_true(n_led >= 10);
    assert_int_equal(mr_active_group_count(mrc_node(c, 2)), 0);
    crash_at = mrc_now(c);
    mrc_crash(c, 1);
    for (size_t done = 0; done < n_led && mrc_now(c) - crash_at <= 2 * E;) {
        mrc_tick(c);
        done = 0;
        for (size_t i = 0; i < n_led; i++) {
            raft_term t;
            mr_node_id l = mrc_leader(c, led[i], &t);
            done += l != 0 && l != 1 && t > old_term[i];
        }
    }
    for (size_t i = 0; i < n_led; i++) {
        raft_term t;
        mr_node_id l = mrc_leader(c, led[i], &t);
        assert_true(l == 2 || l == 3);
        assert_true(t > old_term[i]);
    }
    /* Not before the node is declared down (a shorter stall keeps them)... */
    assert_true(mrc_now(c) - crash_at >= DEAD - HB);
    /* ... and within two election timeouts of the crash (issue #4). */
    assert_true(mrc_now(c) - crash_at <= 2 * E);
    /* The old leader comes back: everything converges, safety holds. */
    assert_int_equal(mrc_restart(c, 1), MR_OK);
    mrc_run(c, 6 * E);
    assert_int_equal(mr_propose(mrc_node(c, 1), led[0], 5, "after", 5, "x", 1, 100), MR_OK);
    mrc_run(c, 10);
    assert_int_equal(mrc_command_events(c, 1, led[0], "after", 5), 1);
    assert_int_equal(mrc_check(c, NULL, 0), 0);
    mrc_free(c);
}

static void test_partitioned_leader_node(void **state)
{
    struct mrc_cluster *c = cluster(14);
    struct mr_completion comp;
    (void)state;
    create_groups(c, 9);
    mrc_run(c, 40);
    mrc_partition(c, 1, 2, true);
    mrc_partition(c, 1, 3, true);
    mrc_run(c, DEAD + 2 * E);
    for (mr_group_id g = 1; g <= 9; g++) {
        mr_node_id l = mrc_leader(c, g, NULL);
        assert_true(l == 2 || l == 3);
    }
    mrc_heal_all(c);
    mrc_run(c, 4 * E);
    /* The healed node learns the new terms (per-group term in every heartbeat). */
    assert_int_equal(mr_propose(mrc_node(c, 1), 1, 9, "h", 1, "x", 1, 100), MR_OK);
    mrc_run(c, 10);
    assert_true(mrc_completion(c, 1, 9, &comp));
    assert_int_equal(comp.result, MR_OK);
    assert_int_equal(mrc_check(c, NULL, 0), 0);
    mrc_free(c);
}

/* Snapshot of (leader node, term) of groups 1..n. */
static void leaders_of(struct mrc_cluster *c, mr_group_id n, mr_node_id *node, raft_term *term)
{
    for (mr_group_id g = 1; g <= n; g++)
        node[g - 1] = mrc_leader(c, g, &term[g - 1]);
}

/* The chaos finding (docs/sim-findings.md, "idle groups re-elect their leaders"): a
 * node whose process stalls — not ticked, its envelopes held up both ways — used to
 * lose every leadership it held at once, and the groups then ping-ponged.  Below
 * the dead-node threshold nothing may change: no new term, no new leader — with the
 * default threshold (one election timeout) and with a raised one (3E + HB). */
static void test_stall_below_threshold_keeps_leaders(void **state)
{
    const uint32_t stalls[] = {E / 2, E - HB - 1, E, 2 * E, 3 * E - 1};
    const uint32_t dead[] = {0, 0, RAISED, RAISED, RAISED};
    (void)state;
    for (size_t k = 0; k < sizeof stalls / sizeof stalls[0]; k++) {
        struct mrc_cluster *c = cluster_dead(20 + k, dead[k]);
        mr_node_id before[60], after[60];
        raft_term tb[60], ta[60];
        size_t led = 0;
        create_groups(c, 60);
        mrc_run(c, 40);
        for (mr_node_id n = 1; n <= 3; n++)
            assert_int_equal(mr_active_group_count(mrc_node(c, n)), 0);
        leaders_of(c, 60, before, tb);
        for (size_t i = 0; i < 60; i++)
            led += before[i] == 1;
        assert_true(led >= 10);
        mrc_stall(c, 1, true);
        mrc_run(c, stalls[k]);
        mrc_stall(c, 1, false);
        mrc_run(c, 4 * E);
        leaders_of(c, 60, after, ta);
        for (size_t i = 0; i < 60; i++) {
            assert_int_equal(after[i], before[i]);
            assert_int_equal(ta[i], tb[i]);
        }
        assert_int_equal(mrc_check(c, NULL, 0), 0);
        mrc_free(c);
    }
}

/* A stall longer than the threshold is indistinguishable from a crash: the groups
 * the stalled node led fail over (and only those, once: PreVote and the others'
 * leases keep it from ping-ponging), and it rejoins as a follower. */
static void test_long_stall_fails_over(void **state)
{
    struct mrc_cluster *c = cluster(30);
    mr_node_id before[60], after[60];
    raft_term tb[60], ta[60];
    (void)state;
    create_groups(c, 60);
    mrc_run(c, 40);
    leaders_of(c, 60, before, tb);
    mrc_stall(c, 1, true);
    mrc_run(c, DEAD + E);
    mrc_stall(c, 1, false);
    mrc_run(c, 4 * E);
    leaders_of(c, 60, after, ta);
    for (size_t i = 0; i < 60; i++) {
        if (before[i] == 1) {
            assert_true(after[i] == 2 || after[i] == 3);
            assert_true(ta[i] > tb[i] && ta[i] <= tb[i] + 2);
        } else {
            assert_int_equal(after[i], before[i]);
            assert_int_equal(ta[i], tb[i]);
        }
    }
    assert_int_equal(mrc_check(c, NULL, 0), 0);
    mrc_free(c);
}

struct prevote_watch {
    mr_group_id group;
    int seen;    /* PREVOTE_RESP from node 2 to node 3 for the group */
    int reject;  /* of the last one */
};

static void watch_prevote(void *arg, mr_node_id node, const struct mr_batch *b)
{
    struct prevote_watch *w = arg;
    if (node != 2)
        return;
    for (size_t i = 0; i < b->n_envelopes; i++)
        for (size_t k = 0; b->envelopes[i].to_node == 3 && k < b->envelopes[i].n_messages; k++) {
            const struct mr_message *mm = &b->envelopes[i].messages[k];
            if (mm->group == w->group && mm->msg.type == RAFT_MSG_PREVOTE_RESP) {
                w->seen++;
                w->reject = mm->msg.reject;
            }
        }
}

/* Sends node 2 a PREVOTE for `group` as if node 3's replica campaigned. */
static void inject_prevote(struct mrc_cluster *c, mr_group_id group)
{
    struct mr_group_status s2, s3;
    struct mr_message mm;
    assert_int_equal(mr_group_status(mrc_node(c, 2), group, &s2), MR_OK);
    assert_int_equal(mr_group_status(mrc_node(c, 3), group, &s3), MR_OK);
    memset(&mm, 0, sizeof mm);
    mm.group = group;
    mm.msg.type = RAFT_MSG_PREVOTE;
    mm.msg.from = s3.replica_id;
    mm.msg.to = s2.replica_id;
    mm.msg.term = s3.term + 1;
    mm.msg.index = s3.last_index;
    mm.msg.log_term = s3.term; /* the leader's no-op of this term is the last entry */
    assert_int_equal(mrc_receive_one(c, 3, 2, &mm), MR_OK);
    mrc_settle(c);
}

/* A quiescing group drops its log from memory at once but leaves its rows to a
 * later compacted write (one every compact_threshold entries), so a group woken by
 * one command at a time writes no meta row and deletes no rows when it goes back
 * to sleep.  The rows stay bounded, a restart loads past them, and nothing is
 * applied twice. */
static void test_quiesced_rows_are_deleted_lazily(void **state)
{
    struct mrc_cluster *c = cluster(14);
    size_t most = 0, kept = 0;
    char cmd[16];
    (void)state;
    create_groups(c, 1);
    mrc_run(c, 40);
    for (int i = 0; i < 150; i++) {
        mr_node_id leader = mrc_leader(c, 1, NULL);
        snprintf(cmd, sizeof cmd, "c%d", i);
        assert_int_equal(mr_propose(mrc_node(c, leader), 1, 100 + (uint64_t)i, cmd, strlen(cmd),
                                    "v", 1, 50),
                         MR_OK);
        mrc_run(c, 20);
        for (mr_node_id n = 1; n <= 3; n++) {
            size_t rows = mrc_stored_log_rows(c, n, 1);
            assert_int_equal(mr_active_group_count(mrc_node(c, n)), 0);
            most = rows > most ? rows : most;
            kept += rows > 0;
        }
        if (i == 75) {
            mrc_crash(c, 3);
            assert_int_equal(mrc_restart(c, 3), MR_OK);
        }
    }
    assert_true(kept > 0);      /* rows outlived quiescence ... */
    assert_true(most <= 64);    /* ... but never more than compact_threshold */
    for (int i = 0; i < 150; i++) {
        snprintf(cmd, sizeof cmd, "c%d", i);
        for (mr_node_id n = 1; n <= 3; n++)
            assert_int_equal(mrc_command_events(c, n, 1, cmd, strlen(cmd)), 1);
    }
    assert_int_equal(mrc_check(c, NULL, 0), 0);
    mrc_free(c);
}

/* Dissertation §9.6 / §4.2.3 for quiesced groups: a quiesced follower's leader lease
 * is its leader's node liveness, computed when the request arrives.  While the
 * leader's node is heard from (its groups asleep, so no group heartbeat for ages) the
 * PreVote is refused; once that node has been silent for an election timeout (here:
 * stalled, not yet declared down under a raised dead_ticks) it is granted. */
static void test_quiesced_lease_follows_node_liveness(void **state)
{
    struct mrc_cluster *c = cluster_dead(40, RAISED);
    struct prevote_watch w;
    struct mr_group_status st;
    raft_term t0 = 0, t1 = 0;
    (void)state;
    create_groups(c, 30);
    mrc_run(c, 40);
    memset(&w, 0, sizeof w);
    for (mr_group_id g = 1; g <= 30 && w.group == 0; g++)
        if (mrc_leader(c, g, &t0) == 1)
            w.group = g;
    assert_true(w.group != 0);
    mrc_set_batch_observer(c, watch_prevote, &w);
    /* Asleep for 5 election timeouts, leader's node alive: refused. */
    mrc_run(c, 5 * E);
    assert_int_equal(mr_group_status(mrc_node(c, 2), w.group, &st), MR_OK);
    assert_true(st.quiesced);
    w.seen = 0;
    inject_prevote(c, w.group);
    assert_int_equal(w.seen, 1);
    assert_int_equal(w.reject, 1);
    /* The refusal woke node 2's replica, and the refusal's answer node 3's, both
     * without their leader: they run on the leader's node liveness until they hear
     * it, so node 2's own PreVote later is refused too, wakes the leader (awake
     * two election timeouts, for CheckQuorum to judge it: mr_leader_stay_awake),
     * and the group goes back to sleep — no election. */
    mrc_run(c, 5 * E);
    assert_int_equal(mrc_leader(c, w.group, &t1), 1);
    assert_true(t1 == t0);
    /* Leader's node silent for more than an election timeout: granted (its leader is
     * still node 1: a PreVote changes nothing by itself). */
    mrc_stall(c, 1, true);
    mrc_run(c, E + HB + 1);
    assert_int_equal(mr_group_status(mrc_node(c, 2), w.group, &st), MR_OK);
    assert_true(st.quiesced);
    /* (Node 3's replica, woken above, may have asked node 2 itself meanwhile:
     * only the answer to the injected request counts.) */
    w.seen = 0;
    inject_prevote(c, w.group);
    assert_int_equal(w.seen, 1);
    assert_int_equal(w.reject, 0);
    mrc_stall(c, 1, false);
    mrc_set_batch_observer(c, NULL, NULL);
    mrc_run(c, 4 * E);
    assert_int_equal(mrc_leader(c, w.group, NULL), 1);
    assert_int_equal(mrc_check(c, NULL, 0), 0);
    mrc_free(c);
}

/* Which followers sent a PREVOTE in which tick, per group, and how often both
 * followers of a group did in the same tick. */
struct prevote_ticks {
    struct mrc_cluster *c;
    uint64_t at[31][4]; /* group, node: the last tick it sent a PREVOTE (+1) */
    int together;
};

static void watch_prevote_ticks(void *arg, mr_node_id node, const struct mr_batch *b)
{
    struct prevote_ticks *w = arg;
    uint64_t now = mrc_now(w->c) + 1;
    for (size_t i = 0; i < b->n_envelopes; i++)
        for (size_t k = 0; k < b->envelopes[i].n_messages; k++) {
            const struct mr_message *mm = &b->envelopes[i].messages[k];
            if (mm->msg.type != RAFT_MSG_PREVOTE || mm->group > 30 || w->at[mm->group][node] == now)
                continue;
            w->at[mm->group][node] = now;
            for (mr_node_id o = 1; o <= 3; o++)
                if (o != node && w->at[mm->group][o] == now)
                    w->together++;
        }
}

/* Both followers of a quiesced group are woken in the same tick by a stray message
 * (a stale PreVote here; in msim seed 4061 a removed replica's) and not by their
 * leader.  Their own timeouts then only send PreVotes, which wake the leader.  When
 * the two timeouts fire in the same tick, each follower is a pre-candidate when the
 * other's PreVote arrives, and it must still refuse it while the leader's node is
 * heard: granting it, the two deposed a live, quiesced leader (docs/sim-findings.md,
 * finding 13). */
static void test_followers_timing_out_together_keep_the_leader(void **state)
{
    int together = 0;
    (void)state;
    for (uint64_t seed = 1; seed <= 8; seed++) {
        struct mrc_cluster *c = cluster(seed);
        struct prevote_ticks w;
        mr_node_id leader[31];
        raft_term term[31];
        create_groups(c, 30);
        mrc_run(c, 40);
        for (mr_group_id g = 1; g <= 30; g++) {
            leader[g] = mrc_leader(c, g, &term[g]);
            assert_true(leader[g] != 0);
        }
        memset(&w, 0, sizeof w);
        w.c = c;
        mrc_set_batch_observer(c, watch_prevote_ticks, &w);
        for (mr_group_id g = 1; g <= 30; g++)
            for (mr_node_id f = 1; f <= 3; f++) {
                struct mr_group_status st, other;
                struct mr_message mm;
                mr_node_id o = f % 3 + 1 == leader[g] ? (f + 1) % 3 + 1 : f % 3 + 1;
                if (f == leader[g])
                    continue;
                assert_int_equal(mr_group_status(mrc_node(c, f), g, &st), MR_OK);
                assert_true(st.quiesced);
                assert_int_equal(mr_group_status(mrc_node(c, o), g, &other), MR_OK);
                memset(&mm, 0, sizeof mm);
                mm.group = g;
                mm.msg.type = RAFT_MSG_PREVOTE;
                mm.msg.from = other.replica_id;
                mm.msg.to = st.replica_id;
                mm.msg.term = st.term; /* stale: refused, but it wakes the group */
                assert_int_equal(mrc_receive_one(c, o, f, &mm), MR_OK);
            }
        mrc_settle(c);
        mrc_run(c, 6 * E);
        for (mr_group_id g = 1; g <= 30; g++) {
            raft_term t = 0;
            assert_int_equal(mrc_leader(c, g, &t), leader[g]);
            assert_true(t == term[g]);
        }
        together += w.together;
        mrc_set_batch_observer(c, NULL, NULL);
        assert_int_equal(mrc_check(c, NULL, 0), 0);
        mrc_free(c);
    }
    /* The case happened (the seeds make it happen a few times). */
    assert_true(together > 0);
}

/* A woken pre-candidate refuses PreVotes for its quiesced leader's sake only while
 * that leader could still answer (docs/sim-findings.md, finding 23).  Node Z, cut off,
 * declares the leader's node down and wakes its replica, which becomes a
 * pre-candidate keeping the leader's lease; meanwhile the leader removes itself, so
 * the group is {Z, the other} and needs Z.  Healed, the leader's node is alive but
 * its replica is gone: Z refused the other's PreVotes for good, and the other, ahead
 * of Z, refused Z's.  Now the lease ends and the group elects a leader.  Found in
 * review. */
static void test_a_lease_for_a_removed_leader_ends(void **state)
{
    (void)state;
    for (uint64_t seed = 1; seed <= 3; seed++) {
        struct mrc_cluster *c = cluster(seed);
        mr_node_id members[3] = {1, 2, 3}, l, z, other;
        assert_int_equal(mr_create_group(mrc_node(c, 1), 1, members, 3, 1), MR_OK);
        mrc_run(c, 80);
        l = mrc_leader(c, 1, NULL);
        assert_true(l != 0);
        z = l % 3 + 1;
        other = 6 - l - z;
        for (mr_node_id n = 1; n <= 3; n++)
            mrc_partition(c, z, n, true);
        mrc_run(c, 30); /* z declares l's node down and wakes its replica */
        assert_int_equal(mrc_change(c, l, 1, 1, MR_CHANGE_REMOVE_VOTER, l, "rm", 40), MR_OK);
        mrc_heal_all(c);
        mrc_run(c, 12 * E);
        assert_true(mrc_leader(c, 1, NULL) == z || mrc_leader(c, 1, NULL) == other);
        assert_int_equal(mr_propose(mrc_node(c, z), 1, 2, "z", 1, "v", 1, 0), MR_OK);
        assert_int_equal(mr_propose(mrc_node(c, other), 1, 3, "o", 1, "v", 1, 0), MR_OK);
        mrc_run(c, 4 * E);
        assert_int_equal(mrc_result(c, z, 2), MR_OK);
        assert_int_equal(mrc_result(c, other, 3), MR_OK);
        assert_int_equal(mrc_check(c, NULL, 0), 0);
        mrc_free(c);
    }
}

/* The same with five members and two followers cut off from the leader for less
 * than the dead-node threshold: they stay asleep, and the first PreVote after the
 * heal wakes them with the removed leader's replica as their lease.  Each PreVote
 * they refuse restarts their own timers, so they never became pre-candidates and
 * refused for as long as the leader's node lived: up to 42 election timeouts
 * without a leader in seeds 5, 9 and 10 (docs/sim-findings.md, finding 24). */
static void test_a_woken_followers_lease_for_a_removed_leader_ends(void **state)
{
    (void)state;
    for (uint64_t seed = 1; seed <= 10; seed++) {
        struct mrc_options o = mrc_options_ticks(5, seed, E, HB);
        struct mrc_cluster *c;
        mr_node_id members[5] = {1, 2, 3, 4, 5}, l, z1, z2, now;
        struct mr_group_status st;
        uint32_t t;
        c = mrc_new(&o);
        assert_int_equal(mr_create_group(mrc_node(c, 1), 1, members, 5, 1), MR_OK);
        mrc_run(c, 120);
        l = mrc_leader(c, 1, NULL);
        assert_true(l != 0);
        z1 = l % 5 + 1;
        z2 = z1 % 5 + 1;
        assert_int_equal(mr_group_status(mrc_node(c, z1), 1, &st), MR_OK);
        assert_true(st.quiesced);
        assert_int_equal(mr_group_status(mrc_node(c, z2), 1, &st), MR_OK);
        assert_true(st.quiesced);
        mrc_partition(c, z1, l, true);
        mrc_partition(c, z2, l, true);
        assert_int_equal(mrc_change(c, l, 1, 1, MR_CHANGE_REMOVE_VOTER, l, "rm", 5), MR_OK);
        mrc_heal_all(c);
        for (t = 0; t < 12 * E; t++) {
            if ((now = mrc_leader(c, 1, NULL)) != 0 && now != l)
                break;
            mrc_tick(c);
        }
        if (t == 12 * E)
            fail_msg("seed %llu: no leader %u ticks after the heal", (unsigned long long)seed, t);
        assert_int_equal(mrc_check(c, NULL, 0), 0);
        mrc_free(c);
    }
}

/* Groups led by node 1 after nodes `restart` (k of them) crash and come back at
 * once: how many changed leader or term. */
static int moved_after_restart(uint64_t seed, const mr_node_id *restart, int k, int *led_by_1)
{
    struct mrc_cluster *c = cluster(seed);
    mr_node_id leader[31];
    raft_term term[31];
    int moved = 0;
    create_groups(c, 30);
    mrc_run(c, 60);
    assert_int_equal(mr_active_group_count(mrc_node(c, 1)), 0);
    *led_by_1 = 0;
    for (mr_group_id g = 1; g <= 30; g++) {
        leader[g] = mrc_leader(c, g, &term[g]);
        *led_by_1 += leader[g] == 1;
    }
    for (int i = 0; i < k; i++)
        mrc_crash(c, restart[i]);
    mrc_tick(c);
    for (int i = 0; i < k; i++)
        assert_int_equal(mrc_restart(c, restart[i]), MR_OK);
    mrc_run(c, 6 * E);
    for (mr_group_id g = 1; g <= 30; g++) {
        raft_term t;
        mr_node_id l = mrc_leader(c, g, &t);
        moved += leader[g] == 1 && (l != 1 || t != term[g]);
    }
    assert_int_equal(mrc_check(c, NULL, 0), 0);
    mrc_free(c);
    return moved;
}

/* Restarting followers is no fault of the leader's: a quiesced leader on a node
 * that never stopped keeps its groups.  With both followers restarted at once,
 * every group node 1 led elected another leader within an election timeout (the
 * restored replicas knew no leader and granted each other's PreVote; finding 25). */
static void test_restarted_followers_keep_a_live_leader(void **state)
{
    mr_node_id one[1] = {2}, both[2] = {2, 3};
    int led = 0, led_sum = 0;
    (void)state;
    for (uint64_t seed = 1; seed <= 4; seed++) {
        assert_int_equal(moved_after_restart(seed, one, 1, &led), 0);
        assert_int_equal(moved_after_restart(seed, both, 2, &led), 0);
        led_sum += led;
    }
    assert_true(led_sum > 20);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_idle_groups_quiesce_everywhere),
        cmocka_unit_test(test_proposal_wakes_group),
        cmocka_unit_test(test_visited_groups_keep_status_true),
        cmocka_unit_test(test_woken_learner_status_is_reported),
        cmocka_unit_test(test_failover_of_quiesced_groups),
        cmocka_unit_test(test_partitioned_leader_node),
        cmocka_unit_test(test_stall_below_threshold_keeps_leaders),
        cmocka_unit_test(test_long_stall_fails_over),
        cmocka_unit_test(test_quiesced_lease_follows_node_liveness),
        cmocka_unit_test(test_followers_timing_out_together_keep_the_leader),
        cmocka_unit_test(test_quiesced_rows_are_deleted_lazily),
        cmocka_unit_test(test_a_lease_for_a_removed_leader_ends),
        cmocka_unit_test(test_a_woken_followers_lease_for_a_removed_leader_ends),
        cmocka_unit_test(test_restarted_followers_keep_a_live_leader),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
