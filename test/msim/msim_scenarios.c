/*
 * msim_scenarios.c — the many-group simulator's fixed scenarios (msim.c's comment
 * says what each checks): failover of the groups a crashed node led, also with
 * survivors that stopped hearing it at different times, and a node that stalls for
 * less and for more than the dead-node threshold.
 */
#include "msim.h"

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
size_t failover(uint64_t seed, mr_group_id groups, uint64_t *worst, size_t *led_out,
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
uint64_t failover_skew(uint64_t seed, mr_group_id groups, uint32_t skew,
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
size_t stall_run(uint64_t seed, mr_group_id groups, uint32_t stall, size_t *led,
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
