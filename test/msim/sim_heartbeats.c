/*
 * sim_heartbeats.c — measures, for 3 nodes and G in {1, 100, 10000} groups, how many
 * envelopes each ordered node pair exchanges per heartbeat interval:
 *   active:   every group kept active (quiescence disabled), steady state;
 *   quiesced: default configuration, once every group has quiesced.
 * Prints one line per G:
 *   heartbeats: nodes=3 groups=G active_msgs_per_interval=X quiesced_msgs_per_interval=Y
 * X and Y are the maxima over the ordered pairs, measured from the envelopes handed to
 * the network.  Exits non-zero if X > 2 (coalescing failed), if a quiesced envelope
 * carries anything but node liveness, or if Y > 1.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mr_cluster.h"

#define HB 2
#define INTERVALS 50

struct measure {
    double per_interval;   /* max over ordered pairs */
    uint64_t non_empty;    /* envelopes that carried something */
    uint64_t heartbeat_entries;
};

static struct measure measure(mr_group_id groups, bool quiesce)
{
    struct mrc_options o;
    struct mrc_cluster *c;
    mr_node_id members[3] = {1, 2, 3};
    uint64_t sent[4][4], empty[4][4], hb0 = 0, hb1 = 0;
    struct measure m;
    memset(&o, 0, sizeof o);
    memset(&m, 0, sizeof m);
    o.n_nodes = 3;
    o.seed = 7;
    o.base.election_ticks = 10;
    o.base.heartbeat_ticks = HB;
    o.base.quiesce_ticks = quiesce ? 0 : UINT32_MAX;
    o.no_leader_check = true;
    c = mrc_new(&o);
    if (c == NULL)
        abort();
    for (mr_group_id g = 1; g <= groups; g++)
        if (mr_create_group(mrc_node(c, (mr_node_id)(1 + g % 3)), g, members, 3, g) != MR_OK)
            abort();
    mrc_run(c, 60); /* bootstrap, elections, quiescence */
    for (mr_node_id a = 1; a <= 3; a++) {
        struct mr_counters k;
        mr_get_counters(mrc_node(c, a), &k);
        hb0 += k.heartbeats_sent + k.heartbeat_resps_sent;
        for (mr_node_id b = 1; b <= 3; b++) {
            sent[a][b] = mrc_envelopes(c, a, b);
            empty[a][b] = mrc_empty_envelopes(c, a, b);
        }
    }
    mrc_run(c, INTERVALS * HB);
    for (mr_node_id a = 1; a <= 3; a++) {
        struct mr_counters k;
        mr_get_counters(mrc_node(c, a), &k);
        hb1 += k.heartbeats_sent + k.heartbeat_resps_sent;
        for (mr_node_id b = 1; b <= 3; b++) {
            uint64_t s = mrc_envelopes(c, a, b) - sent[a][b];
            uint64_t e = mrc_empty_envelopes(c, a, b) - empty[a][b];
            double per = (double)s / INTERVALS;
            if (a == b)
                continue;
            if (per > m.per_interval)
                m.per_interval = per;
            m.non_empty += s - e;
        }
    }
    m.heartbeat_entries = hb1 - hb0;
    mrc_free(c);
    return m;
}

int main(void)
{
    static const mr_group_id sizes[] = {1, 100, 10000};
    int bad = 0;
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        struct measure act = measure(sizes[i], false);
        struct measure q = measure(sizes[i], true);
        printf("heartbeats: nodes=3 groups=%llu active_msgs_per_interval=%.2f "
               "quiesced_msgs_per_interval=%.2f (active heartbeat entries/interval=%.0f, "
               "quiesced non-liveness envelopes=%llu)\n",
               (unsigned long long)sizes[i], act.per_interval, q.per_interval,
               (double)act.heartbeat_entries / INTERVALS, (unsigned long long)q.non_empty);
        if (act.per_interval > 2.0 || q.per_interval > 1.0 || q.non_empty != 0 ||
            act.heartbeat_entries == 0)
            bad = 1;
    }
    if (bad)
        printf("heartbeats: bounds violated\n");
    return bad;
}
