/*
 * sim_net.h — the simulated network and its fault model, independent of Raft.
 *
 * Endpoints are small integers (node slots).  A packet carries an opaque payload owned
 * by the network until it is popped; the payload's copy/free functions are supplied
 * by the user (the Raft driver uses sim_msg, a multi-raft driver may carry batches).
 *
 * Faults, all drawn from the caller's PRNG:
 *  - delay: every packet gets a random latency, so packets are reordered;
 *  - loss and duplication at send time (per-mille rates that may change over time);
 *  - latency spikes (a few packets take much longer);
 *  - partitions: a directed "blocked" matrix consulted at DELIVERY time, so packets
 *    in flight when a partition starts are lost too.  Symmetric partitions block
 *    both directions, one-way partitions only one.
 */
#ifndef SIM_NET_H
#define SIM_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sim_rng.h"

#define SIM_NET_MAX_NODES 32

struct sim_packet {
    uint64_t deliver_at;
    uint64_t seq;        /* send order; breaks ties so the schedule is deterministic */
    uint32_t from, to;
    bool lost;           /* lost in transit: popped as a loss at deliver_at */
    void *payload;
};

struct sim_net_profile {
    uint32_t drop_ppm;        /* loss probability at send, per million */
    uint32_t dup_ppm;         /* duplication probability */
    uint32_t spike_ppm;       /* probability of a long delay */
    uint32_t min_delay;       /* latency range in time units */
    uint32_t max_delay;
    uint32_t spike_delay;     /* upper bound of a long delay */
};

struct sim_net_stats {
    uint64_t sent, dropped_send, dropped_partition, duplicated, delivered;
};

struct sim_net {
    struct sim_rng *rng;
    struct sim_packet *heap;  /* binary min-heap on (deliver_at, seq) */
    size_t n, cap;
    uint64_t next_seq;
    bool blocked[SIM_NET_MAX_NODES][SIM_NET_MAX_NODES];  /* [from][to] */
    struct sim_net_profile prof;
    struct sim_net_stats st;
    void *(*copy_payload)(void *ctx, const void *payload);
    void (*free_payload)(void *ctx, void *payload);
    void *ctx;
};

void sim_net_init(struct sim_net *net, struct sim_rng *rng,
                  void *(*copy_payload)(void *ctx, const void *payload),
                  void (*free_payload)(void *ctx, void *payload), void *ctx);
/* Frees every packet still in flight. */
void sim_net_destroy(struct sim_net *net);

/* Takes ownership of payload.  Returns the number of copies that will arrive (0: lost,
 * 2: duplicated).  A lost packet is still queued and popped as a loss at its delivery
 * time, so the user can react the way a real transport would (e.g. report a failed
 * snapshot transfer). */
int sim_net_send(struct sim_net *net, uint64_t now, uint32_t from, uint32_t to,
                 void *payload);

/* Earliest delivery time, false if nothing in flight. */
bool sim_net_next_time(const struct sim_net *net, uint64_t *t);

/* Pops the earliest packet.  *lost is set if it was lost in transit or a partition
 * blocks it now: the caller
 * still owns (and must free, via sim_net_free_payload) the payload either way. */
bool sim_net_pop(struct sim_net *net, struct sim_packet *out, bool *lost);
void sim_net_free_payload(struct sim_net *net, void *payload);

/* Partitions. */
void sim_net_block(struct sim_net *net, uint32_t from, uint32_t to, bool symmetric);
void sim_net_unblock(struct sim_net *net, uint32_t from, uint32_t to, bool symmetric);
void sim_net_heal_all(struct sim_net *net);
bool sim_net_is_blocked(const struct sim_net *net, uint32_t from, uint32_t to);

#endif /* SIM_NET_H */
