/*
 * test_mr_batch.c — one batch for all groups (one write per group, one envelope per
 * destination), completions travel with the writes that make them true, restart
 * from the persisted model without duplicates, malformed input, shutdown, durable
 * notices in the late part of envelopes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "mr_internal.h" /* mr_entry_encode: a hand-made PROPOSE */
#include "mr_cluster.h"

static struct mrc_cluster *cluster(uint64_t seed)
{
    struct mrc_options o;
    memset(&o, 0, sizeof o);
    o.n_nodes = 3;
    o.seed = seed;
    return mrc_new(&o);
}

/* A cluster whose group 1 (members 1, 2, 3) is led by node 1. */
static struct mrc_cluster *one_group(uint64_t seed)
{
    struct mrc_cluster *c = cluster(seed);
    mr_node_id members[3] = {1, 2, 3};
    assert_int_equal(mr_create_group(mrc_node(c, 1), 1, members, 3, 1), MR_OK);
    mrc_run(c, 40);
    assert_int_equal(mrc_leader(c, 1, NULL), 1);
    return c;
}

struct observed {
    size_t max_writes, max_envelopes_to_one, batches, bad_completions, completions;
    bool dup_dest;
};

static void observe(void *arg, mr_node_id node, const struct mr_batch *b)
{
    struct observed *o = arg;
    if (node != 1)
        return;
    o->batches++;
    if (b->n_groups > o->max_writes)
        o->max_writes = b->n_groups;
    for (size_t i = 0; i < b->n_envelopes; i++)
        for (size_t k = 0; k < i; k++)
            if (b->envelopes[i].to_node == b->envelopes[k].to_node)
                o->dup_dest = true;
    /* A command completion comes with the dedup record of its first application
     * (the fact a restart re-applies against; the meta row's applied index may
     * lag, MR_META_LAG). */
    for (size_t i = 0; i < b->n_completions; i++) {
        const struct mr_completion *c = &b->completions[i];
        bool covered = false;
        if (c->kind != MR_REQ_COMMAND || c->result != MR_OK)
            continue;
        o->completions++;
        for (size_t k = 0; k < b->n_dedup; k++)
            if (b->dedup[k].group == c->group && b->dedup[k].index == c->index)
                covered = true;
        if (!covered)
            o->bad_completions++;
    }
}

static void test_one_batch_for_all_groups(void **state)
{
    struct mrc_cluster *c = cluster(41);
    mr_node_id members[3] = {1, 2, 3};
    struct observed o;
    char cmd[16];
    (void)state;
    for (mr_group_id g = 1; g <= 50; g++)
        assert_int_equal(mr_create_group(mrc_node(c, 1), g, members, 3, g), MR_OK);
    mrc_run(c, 40);
    memset(&o, 0, sizeof o);
    mrc_set_batch_observer(c, observe, &o);
    for (mr_group_id g = 1; g <= 50; g++) {
        snprintf(cmd, sizeof cmd, "c%llu", (unsigned long long)g);
        assert_int_equal(mr_propose(mrc_node(c, 1), g, 100 + g, cmd, strlen(cmd), "p", 1, 100),
                         MR_OK);
    }
    mrc_settle(c);
    assert_int_equal(o.max_writes, 50);
    assert_false(o.dup_dest);
    assert_int_equal(o.completions, 50);
    assert_int_equal(o.bad_completions, 0);
    /* Commit needs one round trip: a handful of batches, not one per group. */
    assert_true(o.batches <= 6);
    assert_int_equal(mrc_check(c, NULL, 0), 0);
    mrc_free(c);
}

static void test_restart_without_duplicates(void **state)
{
    struct mrc_cluster *c = cluster(42);
    mr_node_id members[3] = {1, 2, 3};
    struct mr_completion comp, again;
    char cmd[16];
    (void)state;
    assert_int_equal(mr_create_group(mrc_node(c, 1), 1, members, 3, 1), MR_OK);
    mrc_run(c, 30);
    bool skipped[100] = {false};
    for (int i = 0; i < 100; i++) {
        mr_node_id on = (mr_node_id)(1 + i % 3);
        snprintf(cmd, sizeof cmd, "k%d", i);
        if (i == 40)
            mrc_crash(c, 2);
        if (i == 70)
            assert_int_equal(mrc_restart(c, 2), MR_OK);
        if (!mrc_is_up(c, on)) {
            skipped[i] = true;
            continue;
        }
        assert_int_equal(mr_propose(mrc_node(c, on), 1, 10 + i, cmd, strlen(cmd), "v", 1, 200),
                         MR_OK);
        if (i % 7 == 0)
            mrc_tick(c);
    }
    mrc_run(c, 60);
    {
        size_t acked = 0;
        for (int i = 0; i < 100; i++)
            acked += mrc_completion(c, (mr_node_id)(1 + i % 3), 10 + i, NULL);
        assert_true(acked >= 80);
    }
    for (mr_node_id n = 1; n <= 3; n++)
        for (int i = 0; i < 100; i++) {
            snprintf(cmd, sizeof cmd, "k%d", i);
            struct mr_completion ack;
            /* Only acknowledged commands must be there (a crash loses the requests
             * that were still in memory, with their completions). */
            if (skipped[i] || !mrc_completion(c, (mr_node_id)(1 + i % 3), 10 + i, &ack) ||
                ack.result != MR_OK)
                continue;
            assert_true(mrc_command_events(c, n, 1, cmd, strlen(cmd)) == 1 ||
                        (mrc_snapshot_installed(c, n, 1) &&
                         mrc_has_dedup(c, n, 1, cmd, strlen(cmd))));
        }
    /* The same id again after the restart: the first index, no new event. */
    assert_true(mrc_completion(c, 1, 10, &comp));
    assert_int_equal(mr_propose(mrc_node(c, 2), 1, 999, "k0", 2, "v", 1, 100), MR_OK);
    mrc_run(c, 10);
    assert_true(mrc_completion(c, 2, 999, &again));
    assert_int_equal(again.result, MR_OK);
    assert_int_equal(again.index, comp.index);
    for (mr_node_id n = 1; n <= 3; n++)
        assert_true(mrc_command_events(c, n, 1, "k0", 2) <= 1);
    assert_int_equal(mrc_check(c, NULL, 0), 0);
    mrc_free(c);
}

static void test_malformed_entries_are_skipped(void **state)
{
    struct mrc_cluster *c = cluster(43);
    struct raft_entry es[4];
    unsigned char bad_cc[5] = {1, 2, 3, 4, 5};
    unsigned char bad_normal[4] = {9, 0, 0, 0};
    unsigned char short_cmd[5] = {1, 200, 0, 'x', 'y'};
    unsigned char good[5] = {1, 1, 0, 'g', 'p'};
    struct mr_message m;
    struct mr_counters before, after;
    (void)state;
    memset(es, 0, sizeof es);
    es[0] = (struct raft_entry){1, 1, bad_normal, sizeof bad_normal, RAFT_ENTRY_NORMAL};
    es[1] = (struct raft_entry){1, 2, bad_cc, sizeof bad_cc, RAFT_ENTRY_CONF_CHANGE};
    es[2] = (struct raft_entry){1, 3, short_cmd, sizeof short_cmd, RAFT_ENTRY_NORMAL};
    es[3] = (struct raft_entry){1, 4, good, sizeof good, RAFT_ENTRY_NORMAL};
    memset(&m, 0, sizeof m);
    m.group = 500;
    m.msg.type = RAFT_MSG_APPEND;
    m.msg.from = 1;
    m.msg.to = 2;
    m.msg.term = 1;
    m.msg.commit = 4;
    m.msg.entries = es;
    m.msg.n_entries = 4;
    mr_get_counters(mrc_node(c, 2), &before);
    assert_int_equal(mrc_receive_one(c, 1, 2, &m), MR_OK);
    mrc_settle(c);
    mr_get_counters(mrc_node(c, 2), &after);
    assert_int_equal(after.malformed - before.malformed, 3);
    assert_int_equal(mrc_command_events(c, 2, 500, "g", 1), 1);
    mrc_free(c);
}

static void test_shutdown_completes_everything(void **state)
{
    struct mrc_cluster *c = cluster(44);
    mr_node_id members[3] = {1, 2, 3};
    struct mr_completion comp;
    (void)state;
    assert_int_equal(mr_create_group(mrc_node(c, 1), 1, members, 3, 1), MR_OK);
    mrc_run(c, 30);
    mrc_partition(c, 2, 1, true);
    mrc_partition(c, 2, 3, true);
    assert_int_equal(mr_propose(mrc_node(c, 2), 1, 5, "s", 1, "v", 1, 0), MR_OK);
    assert_int_equal(mr_read_index(mrc_node(c, 2), 1, 6, 0), MR_OK);
    mrc_run(c, 3);
    assert_int_equal(mr_shutdown(mrc_node(c, 2)), MR_OK);
    mrc_settle(c);
    assert_true(mrc_completion(c, 2, 5, &comp));
    assert_int_equal(comp.result, MR_ESTOPPED);
    assert_true(mrc_completion(c, 2, 6, &comp));
    assert_int_equal(comp.result, MR_ESTOPPED);
    assert_int_equal(mr_propose(mrc_node(c, 2), 1, 7, "t", 1, "v", 1, 0), MR_ESTOPPED);
    /* Deadlines: a request that cannot finish times out exactly once. */
    assert_int_equal(mr_propose(mrc_node(c, 3), 1, 8, "u", 1, "v", 1, 0), MR_OK);
    mrc_crash(c, 1);
    assert_int_equal(mr_propose(mrc_node(c, 3), 1, 9, "w", 1, "v", 1, 5), MR_OK);
    mrc_run(c, 8);
    assert_true(mrc_completion(c, 3, 9, &comp));
    assert_int_equal(comp.result, MR_ETIMEOUT);
    assert_int_equal(mrc_completion_count(c, 3, 9), 1);
    mrc_free(c);
}

/* Batching by holding (mr_request.c): a command made while its group has a round
 * in flight waits for that round to commit and then leaves at once — no tick — in
 * one append with the others made meanwhile; commands made in the same pass are
 * never split. */
struct round_watch {
    mr_group_id group;   /* 0: any group */
    size_t rounds;       /* envelopes node 1 sent to node 2 with entries of group */
    size_t max_entries;  /* most entries of group in one of them */
};

static void watch_rounds(void *arg, mr_node_id node, const struct mr_batch *b)
{
    struct round_watch *w = arg;
    if (node != 1)
        return;
    for (size_t i = 0; i < b->n_envelopes; i++) {
        size_t entries = 0;
        for (size_t k = 0; b->envelopes[i].to_node == 2 && k < b->envelopes[i].n_messages; k++) {
            const struct mr_message *mm = &b->envelopes[i].messages[k];
            if ((w->group == 0 || mm->group == w->group) && mm->msg.type == RAFT_MSG_APPEND)
                entries += mm->msg.n_entries;
        }
        if (entries > 0)
            w->rounds++;
        if (entries > w->max_entries)
            w->max_entries = entries;
    }
}

static void test_commands_wait_for_the_round_in_flight(void **state)
{
    struct mrc_cluster *c;
    struct round_watch w;
    struct mr_counters before, after;
    uint64_t t0;
    (void)state;
    c = one_group(45);
    memset(&w, 0, sizeof w);
    mrc_set_batch_observer(c, watch_rounds, &w);
    /* Same pass: A and B leave together. */
    assert_int_equal(mr_propose(mrc_node(c, 1), 1, 1, "A", 1, "a", 1, 0), MR_OK);
    assert_int_equal(mr_propose(mrc_node(c, 1), 1, 2, "B", 1, "b", 1, 0), MR_OK);
    t0 = mrc_now(c);
    mrc_settle(c);
    assert_true(mrc_completion(c, 1, 1, NULL) && mrc_completion(c, 1, 2, NULL));
    assert_int_equal(w.rounds, 1);
    assert_int_equal(w.max_entries, 2);
    /* A round in flight (the followers stalled): C, D, E wait, then go as one. */
    mr_get_counters(mrc_node(c, 1), &before);
    memset(&w, 0, sizeof w);
    assert_int_equal(mr_propose(mrc_node(c, 1), 1, 3, "C", 1, "c", 1, 0), MR_OK);
    mrc_stall(c, 2, true);
    mrc_stall(c, 3, true);
    mrc_settle(c);
    assert_int_equal(mr_propose(mrc_node(c, 1), 1, 4, "D", 1, "d", 1, 0), MR_OK);
    mrc_settle(c);
    assert_int_equal(mr_propose(mrc_node(c, 1), 1, 5, "E", 1, "e", 1, 0), MR_OK);
    mrc_settle(c);
    assert_false(mrc_completion(c, 1, 3, NULL));
    mrc_stall(c, 2, false);
    mrc_stall(c, 3, false);
    mrc_settle(c);
    assert_int_equal(mrc_now(c), t0); /* no tick needed */
    for (uint64_t t = 3; t <= 5; t++)
        assert_true(mrc_completion(c, 1, t, NULL));
    mr_get_counters(mrc_node(c, 1), &after);
    assert_int_equal(after.held_commands - before.held_commands, 2);
    assert_int_equal(w.rounds, 2);    /* C's round, then D+E's */
    assert_int_equal(w.max_entries, 2);
    assert_int_equal(mrc_check(c, NULL, 0), 0);
    mrc_free(c);
}

/* The leader holds a follower's forwarded commands too while its own round is in
 * flight: they join its next round instead of starting one of their own. */
static void test_forwarded_commands_join_the_leaders_next_round(void **state)
{
    struct mrc_cluster *c;
    struct mr_group_status s2;
    struct round_watch w;
    struct mr_counters before, after;
    unsigned char data[16];
    struct raft_entry e;
    struct mr_message mm;
    (void)state;
    c = one_group(46);
    assert_int_equal(mr_group_status(mrc_node(c, 2), 1, &s2), MR_OK);
    mr_get_counters(mrc_node(c, 1), &before);
    memset(&w, 0, sizeof w);
    mrc_set_batch_observer(c, watch_rounds, &w);
    assert_int_equal(mr_propose(mrc_node(c, 1), 1, 3, "C", 1, "c", 1, 0), MR_OK);
    mrc_stall(c, 2, true);
    mrc_stall(c, 3, true);
    mrc_settle(c);
    /* Node 2's forwarded command arrives while C is in flight. */
    memset(&e, 0, sizeof e);
    e.type = RAFT_ENTRY_NORMAL;
    e.data = data;
    e.len = (uint32_t)mr_entry_encode(MR_KIND_COMMAND, "F", 1, "f", 1, data);
    memset(&mm, 0, sizeof mm);
    mm.group = 1;
    mm.msg.type = RAFT_MSG_PROPOSE;
    mm.msg.from = s2.replica_id;
    mm.msg.to = 1;
    mm.msg.term = s2.term;
    mm.msg.entries = &e;
    mm.msg.n_entries = 1;
    assert_int_equal(mrc_receive_one(c, 2, 1, &mm), MR_OK);
    assert_int_equal(mr_propose(mrc_node(c, 1), 1, 4, "D", 1, "d", 1, 0), MR_OK);
    mrc_settle(c);
    mrc_stall(c, 2, false);
    mrc_stall(c, 3, false);
    mrc_settle(c);
    for (mr_node_id n = 1; n <= 3; n++) {
        assert_int_equal(mrc_command_events(c, n, 1, "F", 1), 1);
        assert_int_equal(mrc_command_events(c, n, 1, "D", 1), 1);
    }
    mr_get_counters(mrc_node(c, 1), &after);
    assert_int_equal(after.held_commands - before.held_commands, 2);
    assert_int_equal(w.rounds, 2);    /* C's round, then F + D */
    assert_int_equal(w.max_entries, 2);
    assert_int_equal(mrc_check(c, NULL, 0), 0);
    mrc_free(c);
}

/* The round in flight is the node's, not a group's: a command in another group
 * this node leads waits for it too, and leaves at once when it lands, together
 * with the commands of every group made meanwhile.  (With many groups each sees
 * a command only now and then: a round per group would batch nothing.) */
static void test_other_groups_wait_for_the_nodes_round(void **state)
{
    struct mrc_cluster *c = cluster(47);
    mr_node_id members[3] = {1, 2, 3};
    struct round_watch w;
    struct mr_counters before, after;
    uint64_t t0;
    (void)state;
    assert_int_equal(mr_create_group(mrc_node(c, 1), 1, members, 3, 1), MR_OK);
    assert_int_equal(mr_create_group(mrc_node(c, 1), 2, members, 3, 2), MR_OK);
    mrc_run(c, 40);
    assert_int_equal(mrc_leader(c, 1, NULL), 1);
    assert_int_equal(mrc_leader(c, 2, NULL), 1);
    mrc_settle(c);
    memset(&w, 0, sizeof w); /* any group */
    mrc_set_batch_observer(c, watch_rounds, &w);
    mr_get_counters(mrc_node(c, 1), &before);
    t0 = mrc_now(c);
    assert_int_equal(mr_propose(mrc_node(c, 1), 1, 3, "C", 1, "c", 1, 0), MR_OK);
    mrc_stall(c, 2, true);
    mrc_stall(c, 3, true);
    mrc_settle(c);
    assert_int_equal(mr_propose(mrc_node(c, 1), 2, 4, "D", 1, "d", 1, 0), MR_OK);
    assert_int_equal(mr_propose(mrc_node(c, 1), 1, 5, "E", 1, "e", 1, 0), MR_OK);
    mrc_settle(c);
    assert_false(mrc_completion(c, 1, 3, NULL));
    mrc_stall(c, 2, false);
    mrc_stall(c, 3, false);
    mrc_settle(c);
    assert_int_equal(mrc_now(c), t0); /* no tick needed */
    for (uint64_t t = 3; t <= 5; t++)
        assert_true(mrc_completion(c, 1, t, NULL));
    mr_get_counters(mrc_node(c, 1), &after);
    assert_int_equal(after.held_commands - before.held_commands, 2);
    assert_int_equal(w.rounds, 2);      /* C's round, then D + E in one envelope */
    assert_int_equal(w.max_entries, 2);
    assert_int_equal(mrc_check(c, NULL, 0), 0);
    mrc_free(c);
}

/* A group that cannot commit (its followers are down) holds the node's other
 * groups for at most batch_hold_ticks, once: the next round starts without it. */
static void test_a_group_without_quorum_holds_the_others_briefly(void **state)
{
    struct mrc_options o;
    struct mrc_cluster *c;
    mr_node_id m1[3] = {1, 2, 3}, m2[3] = {1, 4, 5};
    struct mr_counters before, after;
    uint64_t t0;
    (void)state;
    memset(&o, 0, sizeof o);
    o.n_nodes = 5;
    o.seed = 48;
    c = mrc_new(&o);
    assert_int_equal(mr_create_group(mrc_node(c, 1), 1, m1, 3, 1), MR_OK);
    assert_int_equal(mr_create_group(mrc_node(c, 1), 2, m2, 3, 2), MR_OK);
    mrc_run(c, 40);
    assert_int_equal(mrc_leader(c, 1, NULL), 1);
    assert_int_equal(mrc_leader(c, 2, NULL), 1);
    mrc_settle(c);
    mrc_crash(c, 2);
    mrc_crash(c, 3);
    mr_get_counters(mrc_node(c, 1), &before);
    assert_int_equal(mr_propose(mrc_node(c, 1), 1, 10, "A", 1, "a", 1, 0), MR_OK);
    mrc_settle(c);
    assert_int_equal(mr_propose(mrc_node(c, 1), 2, 11, "B", 1, "b", 1, 0), MR_OK);
    mrc_settle(c);
    assert_false(mrc_completion(c, 1, 11, NULL)); /* held behind A's round */
    t0 = mrc_now(c);
    while (!mrc_completion(c, 1, 11, NULL) && mrc_now(c) < t0 + 10) {
        mrc_tick(c);
        mrc_settle(c);
    }
    assert_true(mrc_completion(c, 1, 11, NULL));
    assert_true(mrc_now(c) <= t0 + 2); /* batch_hold_ticks */
    /* The next command of group 2 does not wait for group 1 again. */
    t0 = mrc_now(c);
    assert_int_equal(mr_propose(mrc_node(c, 1), 2, 12, "C", 1, "c", 1, 0), MR_OK);
    mrc_settle(c);
    assert_true(mrc_completion(c, 1, 12, NULL));
    assert_int_equal(mrc_now(c), t0);
    assert_false(mrc_completion(c, 1, 10, NULL));
    mr_get_counters(mrc_node(c, 1), &after);
    assert_int_equal(after.held_commands - before.held_commands, 1);
    mrc_free(c);
}

/* A follower does not hold: its commands are forwarded at once, even while an
 * earlier one of its own is still in flight, so that they join the leader's next
 * round (where the holding happens) instead of waiting for their node's previous
 * round to come back applied — about one round more per command. */
static void test_followers_forward_without_holding(void **state)
{
    struct mrc_cluster *c;
    struct mr_counters before, after;
    (void)state;
    c = one_group(47);
    mr_get_counters(mrc_node(c, 2), &before);
    mrc_stall(c, 1, true); /* X stays in flight */
    assert_int_equal(mr_propose(mrc_node(c, 2), 1, 1, "X", 1, "x", 1, 0), MR_OK);
    mrc_settle(c);
    assert_int_equal(mr_propose(mrc_node(c, 2), 1, 2, "Y", 1, "y", 1, 0), MR_OK);
    mrc_settle(c);
    assert_false(mrc_completion(c, 2, 1, NULL));
    mr_get_counters(mrc_node(c, 2), &after);
    assert_int_equal(after.held_commands - before.held_commands, 0);
    assert_int_equal(after.proposals - before.proposals, 2);
    mrc_stall(c, 1, false);
    mrc_settle(c);
    assert_true(mrc_completion(c, 2, 1, NULL) && mrc_completion(c, 2, 2, NULL));
    for (mr_node_id n = 1; n <= 3; n++) {
        assert_int_equal(mrc_command_events(c, n, 1, "X", 1), 1);
        assert_int_equal(mrc_command_events(c, n, 1, "Y", 1), 1);
    }
    assert_int_equal(mrc_check(c, NULL, 0), 0);
    mrc_free(c);
}

/* Durable notices (raft.h) claim that the leader's write is done: they must be in
 * the late part of an envelope, which the host sends only after persisting the
 * batch, never among the early APPENDs.  With them a follower commits its own
 * command without a commit-only APPEND from the leader. */
struct notices {
    size_t early, late, commit_only;
};

static void observe_notices(void *arg, mr_node_id node, const struct mr_batch *b)
{
    struct notices *o = arg;
    if (node != 1)
        return;
    for (size_t i = 0; i < b->n_envelopes; i++) {
        const struct mr_envelope *e = &b->envelopes[i];
        for (size_t k = 0; k < e->n_messages; k++) {
            const struct raft_message *m = &e->messages[k].msg;
            if (m->type == RAFT_MSG_DURABLE && k < e->n_early_messages)
                o->early++;
            else if (m->type == RAFT_MSG_DURABLE)
                o->late++;
            if (m->type == RAFT_MSG_APPEND && m->n_entries == 0 &&
                m->context == RAFT_APPEND_COMMIT_ONLY)
                o->commit_only++;
        }
    }
}

static void test_durable_notices_leave_after_the_write(void **state)
{
    struct mrc_cluster *c;
    struct notices o;
    (void)state;
    c = one_group(53);
    memset(&o, 0, sizeof o);
    mrc_set_batch_observer(c, observe_notices, &o);
    assert_int_equal(mr_propose(mrc_node(c, 2), 1, 1, "F", 1, "f", 1, 0), MR_OK);
    mrc_settle(c);
    assert_true(mrc_completion(c, 2, 1, NULL));
    assert_int_equal(o.early, 0);
    assert_true(o.late >= 2); /* one per follower */
    assert_int_equal(o.commit_only, 0);
    for (mr_node_id n = 1; n <= 3; n++)
        assert_int_equal(mrc_command_events(c, n, 1, "F", 1), 1);
    mrc_set_batch_observer(c, NULL, NULL);
    assert_int_equal(mrc_check(c, NULL, 0), 0);
    mrc_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_batch_for_all_groups),
        cmocka_unit_test(test_restart_without_duplicates),
        cmocka_unit_test(test_malformed_entries_are_skipped),
        cmocka_unit_test(test_shutdown_completes_everything),
        cmocka_unit_test(test_commands_wait_for_the_round_in_flight),
        cmocka_unit_test(test_forwarded_commands_join_the_leaders_next_round),
        cmocka_unit_test(test_followers_forward_without_holding),
        cmocka_unit_test(test_other_groups_wait_for_the_nodes_round),
        cmocka_unit_test(test_a_group_without_quorum_holds_the_others_briefly),
        cmocka_unit_test(test_durable_notices_leave_after_the_write),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
