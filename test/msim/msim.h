/*
 * msim.h — what the parts of the many-group simulator share: the timing, one
 * seed's run (its cluster, the proposals, membership moves and reads it made, what
 * it counted) and the functions each part offers the others.  msim.c runs a seed
 * and checks its commands and reads; msim_admin.c makes and checks the group
 * removals and membership moves; msim_scenarios.c runs the failover and stall
 * scenarios.
 */
#ifndef MSIM_H
#define MSIM_H

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
    size_t crashes, batch_crashes, unflushed_crashes, partitions, acked, expired;
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

/* msim.c */
uint64_t rnd(struct run *r);
/* Counts a violation; the first one's message is kept for the closing line. */
void fail(struct run *r, const char *msg);

/* msim_admin.c */
/* Whether group g may be asked for a move (or a read or transfer) on node `on`: it is
 * not being removed, `on` is up and hosts it, and no move of it is pending. */
bool group_settled(struct run *r, mr_group_id g, mr_node_id on);
/* Now and then: a group removal or a membership move (see the definition). */
void admin_some(struct run *r);
/* After healing: the moves and removals ended as requested, refused changes
 * committed nowhere, removed replicas are gone. */
void check_admin(struct run *r);
void check_refusals(struct run *r);
void check_strays(struct run *r);

/* msim_scenarios.c */
size_t failover(uint64_t seed, mr_group_id groups, uint64_t *worst, size_t *led_out,
                char *err, size_t err_len);
uint64_t failover_skew(uint64_t seed, mr_group_id groups, uint32_t skew, mr_node_id early);
size_t stall_run(uint64_t seed, mr_group_id groups, uint32_t stall, size_t *led,
                 size_t *changed, size_t *collateral, char *err, size_t err_len);

#endif
