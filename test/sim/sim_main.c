/*
 * sim_main.c — mrsim, the deterministic simulator of the Raft core.
 *
 *   mrsim --seeds N --steps S     runs seeds 1..N (S steps each, then healing)
 *   mrsim --seed N [--trace] [--verbose]
 *                                 one seed; --trace prints every event (replay)
 *   --first K                     with --seeds: start at seed K
 *   --bootstrap conf|snapshot|mixed
 *                                 how the initial members get their configuration
 *                                 (see sim_cluster.h); the seed picks with "mixed"
 *
 * Ends with "sim: seeds=N steps=S violations=V" (V = failing seeds); exit status 1
 * if V > 0.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim_run.h"

/* Default bootstrap mode (see docs/sim-findings.md, finding 1). */
#define SIM_BOOT_DEFAULT SIM_BOOT_SNAPSHOT

static uint64_t parse_u64(const char *s, const char *what)
{
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (*s == 0 || *end != 0) {
        fprintf(stderr, "mrsim: bad %s '%s'\n", what, s);
        exit(2);
    }
    return v;
}

static void usage(void)
{
    fprintf(stderr, "usage: mrsim [--seeds N] [--first K] [--seed N] [--steps S] [--trace] "
                    "[--verbose] [--bootstrap conf|snapshot|mixed]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    uint64_t seeds = 100, first = 1, steps = 2000;
    bool single = false, trace = false, verbose = false;
    int bootstrap = SIM_BOOT_DEFAULT;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--trace") == 0) {
            trace = true;
        } else if (strcmp(a, "--verbose") == 0) {
            trace = verbose = true;
        } else if (i + 1 < argc && strcmp(a, "--seeds") == 0) {
            seeds = parse_u64(argv[++i], "--seeds");
        } else if (i + 1 < argc && strcmp(a, "--first") == 0) {
            first = parse_u64(argv[++i], "--first");
        } else if (i + 1 < argc && strcmp(a, "--seed") == 0) {
            first = parse_u64(argv[++i], "--seed");
            seeds = 1;
            single = true;
        } else if (i + 1 < argc && strcmp(a, "--bootstrap") == 0) {
            const char *b = argv[++i];
            bootstrap = strcmp(b, "conf") == 0       ? SIM_BOOT_CONF
                        : strcmp(b, "snapshot") == 0 ? SIM_BOOT_SNAPSHOT
                        : strcmp(b, "mixed") == 0    ? SIM_BOOT_MIXED
                                                     : -1;
            if (bootstrap < 0)
                usage();
        } else if (i + 1 < argc && strcmp(a, "--steps") == 0) {
            steps = parse_u64(argv[++i], "--steps");
        } else {
            usage();
        }
    }
    if (trace && !single) {
        fprintf(stderr, "mrsim: --trace needs --seed N\n");
        return 2;
    }

    uint64_t failed = 0, shown = 0;
    struct sim_stats tot;
    memset(&tot, 0, sizeof tot);
    for (uint64_t s = first; s < first + seeds; s++) {
        struct sim_opts o = {.seed = s, .steps = steps, .trace = trace, .verbose = verbose,
                             .bootstrap = bootstrap,
                             .out = stdout};
        /* After a few detailed failures, only one line per failing seed. */
        FILE *devnull = NULL;
        if (shown >= 5 && !single) {
            devnull = fopen("/dev/null", "w");
            if (devnull)
                o.out = devnull;
        }
        struct sim_result res;
        sim_run(&o, &res);
        if (devnull)
            fclose(devnull);
        if (res.violations) {
            failed++;
            shown++;
            if (o.out != stdout || trace)
                printf("seed %" PRIu64 ": VIOLATION: %s\n", s, res.what);
        }
        tot.events += res.st.events;
        tot.leaders += res.st.leaders;
        tot.applied += res.st.applied;
        tot.snapshots_installed += res.st.snapshots_installed;
        tot.crashes += res.st.crashes;
        tot.partitions += res.st.partitions;
        tot.conf_changes += res.st.conf_changes;
        tot.transfers += res.st.transfers;
        tot.compactions += res.st.compactions;
        tot.proposals += res.st.proposals;
        tot.committed += res.st.committed;
        tot.dropped += res.st.dropped;
        tot.forwarded_lost += res.st.forwarded_lost;
        tot.reads_ok += res.st.reads_ok;
        tot.reads += res.st.reads;
        if (res.st.heal_ticks > tot.heal_ticks)
            tot.heal_ticks = res.st.heal_ticks;
        if (res.st.max_index > tot.max_index)
            tot.max_index = res.st.max_index;
        tot.nodes += res.st.nodes;
    }
    printf("sim: totals: events=%" PRIu64 " leaders=%" PRIu64 " proposals=%" PRIu64
           " committed=%" PRIu64 " dropped=%" PRIu64 " fwd-lost=%" PRIu64 " applied=%" PRIu64
           " snapshots=%" PRIu64 " compactions=%" PRIu64 " conf-changes=%" PRIu64
           " transfers=%" PRIu64 " crashes=%" PRIu64 " partitions=%" PRIu64 " reads=%" PRIu64
           "/%" PRIu64 " replicas=%" PRIu64 " max-index=%" PRIu64 " max-heal-ticks=%" PRIu64 "\n",
           tot.events, tot.leaders, tot.proposals, tot.committed, tot.dropped,
           tot.forwarded_lost, tot.applied, tot.snapshots_installed, tot.compactions,
           tot.conf_changes, tot.transfers, tot.crashes, tot.partitions, tot.reads_ok, tot.reads,
           tot.nodes, tot.max_index, tot.heal_ticks);
    printf("sim: seeds=%" PRIu64 " steps=%" PRIu64 " violations=%" PRIu64 "\n", seeds, steps,
           failed);
    return failed ? 1 : 0;
}
