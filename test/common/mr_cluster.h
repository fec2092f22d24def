/*
 * mr_cluster.h — a deterministic in-process cluster of multi-raft nodes for the unit
 * tests, the many-group simulator (test/msim) and the benchmarks.
 *
 * Each node has a model of what its host would have persisted (the storage contract
 * of multiraft.h: group meta rows, log rows, dedup records, tombstones, events), the
 * storage callbacks answered from that model, and completions recorded after each
 * batch is "persisted".  A network of deep-copied envelopes with optional faults
 * (drop, duplicate, delay/reorder, partitions) connects them.  A crash frees the
 * node (everything not persisted is lost); a restart rebuilds it from the model.
 * Time is driven only by mrc_tick().
 *
 * As the PostgreSQL host does, a batch without mr_batch.must_sync is committed
 * without waiting for its flush: the node's storage callbacks and every query
 * below see it at once (it is committed), but it becomes durable only with the
 * node's next must_sync batch (the WAL is sequential), and a crash before that
 * loses it — its rows and its events — although its envelopes left and its
 * completions were delivered.  The node then re-applies its durable log.  Events
 * are the events table: those of a lost batch leave it (a reader may have seen
 * them; none consumed them, since a consumer's commit flushes), and mrc_check
 * still holds them to what every node applied at their index.
 *
 * Node ids are 1..n_nodes.  No cmocka dependency; failures are returned.
 */
#ifndef MULTIRAFT_MR_CLUSTER_H
#define MULTIRAFT_MR_CLUSTER_H

#include "multiraft.h"

#define MRC_MAX_NODES 20

struct mrc_options {
    uint32_t n_nodes;
    uint64_t seed;
    struct mr_config base;     /* node_id, storage and allocator are filled per node */
    uint32_t drop_pct;         /* envelopes dropped, in percent */
    uint32_t dup_pct;          /* envelopes duplicated */
    uint32_t max_delay;        /* delivery delay in ticks, uniform in [0, max_delay] */
    bool no_leader_check;      /* skip the per-tick election-safety scan (big runs) */
    bool sync_every_batch;     /* flush every batch, must_sync or not: no crash loses
                                  a committed batch (to tell whether a failure
                                  needs that loss) */
};

/* One recorded event (data copied). */
struct mrc_event {
    uint8_t type;
    mr_group_id group;
    raft_index index;
    raft_term term;
    mr_node_id node_id;
    uint8_t change_type;
    uint16_t cmd_len;
    unsigned char *cmd;
    size_t payload_len;
    unsigned char *payload;
};

struct mrc_cluster;

/* NULL if o->n_nodes exceeds MRC_MAX_NODES (0 means 3). */
struct mrc_cluster *mrc_new(const struct mrc_options *o);
/* Options for n_nodes nodes with these election and heartbeat timeouts (ticks),
 * everything else by default. */
struct mrc_options mrc_options_ticks(uint32_t n_nodes, uint64_t seed, uint32_t election,
                                     uint32_t heartbeat);
/* n_nodes nodes with default options. */
struct mrc_cluster *mrc_new_nodes(uint32_t n_nodes, uint64_t seed);
/* 3 nodes and group 1 (members 1, 2, 3) created by node 1 and led by it after 40
 * ticks; NULL if the seed made that otherwise. */
struct mrc_cluster *mrc_new_one_group(uint64_t seed);
/* o's nodes (at least 3) and groups 1..groups (members 1, 2, 3), each created by
 * node 1 + g % 3, after 40 ticks; NULL if a creation failed. */
struct mrc_cluster *mrc_new_groups(const struct mrc_options *o, mr_group_id groups);
/* 3 nodes with these timeouts (mrc_options_ticks) and groups 1..groups as above;
 * NULL unless every group then has a leader and every replica sleeps. */
struct mrc_cluster *mrc_new_idle_groups(uint64_t seed, uint32_t election, uint32_t heartbeat,
                                        mr_group_id groups);
void mrc_free(struct mrc_cluster *c);

/* An allocator failing, once when armed, the growth of node `node`'s set of awake
 * groups (mr_cluster_fail_active.c): set f->c once the cluster exists. */
struct mrc_fail_active {
    struct mrc_cluster *c;
    mr_node_id node;
    bool armed;
    int failures;
};
void mrc_fail_active_allocator(struct mrc_fail_active *f, mr_node_id node,
                               struct raft_allocator *out);
/* Groups awake (not quiesced) on the live nodes, summed. */
size_t mrc_active_groups(struct mrc_cluster *c);
/* Whether each of groups 1..groups has a leader on a live node (mrc_leader). */
bool mrc_all_led(struct mrc_cluster *c, mr_group_id groups);

/* The live node (NULL if crashed). */
struct mr_node *mrc_node(struct mrc_cluster *c, mr_node_id id);
uint64_t mrc_now(const struct mrc_cluster *c);

/* One tick on every live node, then rounds of ready/persist/send and deliveries of
 * due envelopes until quiet (bounded). */
void mrc_tick(struct mrc_cluster *c);
void mrc_run(struct mrc_cluster *c, uint32_t ticks);
/* Processes pending output and due deliveries without ticking. */
void mrc_settle(struct mrc_cluster *c);
/* A copy of a generated-id command (payload "p") of session (node, epoch) with
 * number seq and floor, bound `expires`, id of at most 32 bytes, reaching the
 * group's leader as a forwarded proposal (from `node`, or another member if node
 * leads), as retries and a duplicating network make them; then runs 3 ticks. */
void mrc_forward_generated(struct mrc_cluster *c, mr_group_id group, mr_node_id node,
                           uint64_t epoch, uint64_t seq, uint64_t floor, raft_index expires,
                           const char *id);
/* Hands node `to` one message as if node `from` had sent it (outside the
 * simulated network); returns mr_receive()'s result. */
int mrc_receive_one(struct mrc_cluster *c, mr_node_id from, mr_node_id to,
                    const struct mr_message *m);

void mrc_crash(struct mrc_cluster *c, mr_node_id id);
/* Crashes node id inside its next batch: after the batch's early messages (leader
 * appends, mr_envelope.n_early_messages) left and before anything of it was
 * persisted — the window dissertation §10.2.1 opens.  mrc_restart() of a node still
 * armed crashes it first. */
void mrc_crash_in_next_batch(struct mrc_cluster *c, mr_node_id id);
/* Crashes node id right after its next batch committed without a flush (no
 * must_sync): its messages left, its completions were delivered, and the crash
 * loses it with every batch committed since the node's last flush — the most a
 * crash of this host can lose.  mrc_restart() of a node still armed crashes it
 * first. */
void mrc_crash_after_unflushed(struct mrc_cluster *c, mr_node_id id);
int mrc_restart(struct mrc_cluster *c, mr_node_id id);
/* Nodes restored from their store because mr_ready() ran out of memory (the
 * harness does what the host does: throws the batch away, restores the node). */
uint64_t mrc_restores(const struct mrc_cluster *c);
/* Drops each raft message (not heartbeats) for which drop() returns true as it
 * enters the network; NULL: none. */
void mrc_set_message_filter(struct mrc_cluster *c,
                            bool (*drop)(void *arg, mr_node_id from, mr_node_id to,
                                         const struct raft_message *m),
                            void *arg);
bool mrc_is_up(const struct mrc_cluster *c, mr_node_id id);
/* Stalls (true) or resumes node id: a descheduled process, not a crash — while
 * stalled it is not ticked and processes nothing; envelopes to it wait in the
 * network and are delivered after it resumes (its state is kept). */
void mrc_stall(struct mrc_cluster *c, mr_node_id id, bool stalled);
/* Cut (blocked = true) or heal both directions between a and b. */
/* Whether node is among list[0 .. n) (a status's voters or learners). */
bool mrc_node_in(const mr_node_id *list, uint32_t n, mr_node_id node);
void mrc_partition(struct mrc_cluster *c, mr_node_id a, mr_node_id b, bool blocked);
/* The same in one direction: envelopes from `from` to `to` are lost. */
void mrc_block(struct mrc_cluster *c, mr_node_id from, mr_node_id to, bool blocked);
void mrc_heal_all(struct mrc_cluster *c);
void mrc_set_faults(struct mrc_cluster *c, uint32_t drop_pct, uint32_t dup_pct,
                    uint32_t max_delay);

/* Proposes a membership change of `node` on node `on` (command id `id`, no
 * payload), runs `ticks` ticks and returns its outcome: the proposal's error, the
 * completion's result, or 1 if it has not completed. */
int mrc_change(struct mrc_cluster *c, mr_node_id on, mr_group_id group, uint64_t token,
               int type, mr_node_id node, const char *id, uint32_t ticks);
/* The result of the completion recorded for (node, token), or 1 if there is none. */
int mrc_result(const struct mrc_cluster *c, mr_node_id node, uint64_t token);

/* Completion recorded for (node, token): true if present (the last one). */
bool mrc_completion(const struct mrc_cluster *c, mr_node_id node, uint64_t token,
                    struct mr_completion *out);
/* Number of completions recorded for (node, token) (exactly-once checks). */
size_t mrc_completion_count(const struct mrc_cluster *c, mr_node_id node, uint64_t token);

/* Events recorded (committed; in a crash those not yet flushed go) on a node, in
 * order. */
size_t mrc_event_count(const struct mrc_cluster *c, mr_node_id node);
const struct mrc_event *mrc_event_at(const struct mrc_cluster *c, mr_node_id node, size_t i);
/* Events of this type (enum mr_event_type) in group on node. */
size_t mrc_type_events(const struct mrc_cluster *c, mr_node_id node, mr_group_id group,
                       int type);
/* Occurrences of a COMMAND event with this command id in group on node. */
/* The log index of the first command event with that id on node (0: none). */
raft_index mrc_command_index(const struct mrc_cluster *c, mr_node_id node, mr_group_id group,
                             const void *cmd, size_t cmd_len);
size_t mrc_command_events(const struct mrc_cluster *c, mr_node_id node, mr_group_id group,
                          const void *cmd, size_t cmd_len);
/* The same, counting membership_change events too (they share a group's ids). */
size_t mrc_id_events(const struct mrc_cluster *c, mr_node_id node, mr_group_id group,
                     const void *cmd, size_t cmd_len);
/* Whether the node's persisted dedup records contain the command id. */
bool mrc_has_dedup(const struct mrc_cluster *c, mr_node_id node, mr_group_id group,
                   const void *cmd, size_t cmd_len);
/* Whether a group meta row is persisted on the node; whether it is tombstoned. */
bool mrc_stored_group(const struct mrc_cluster *c, mr_node_id node, mr_group_id group);
bool mrc_stored_tombstone(const struct mrc_cluster *c, mr_node_id node, mr_group_id group,
                          raft_id *min_replica);
/* The applied index of the group's stored meta row (0 without one). */
raft_index mrc_stored_applied(const struct mrc_cluster *c, mr_node_id node, mr_group_id group);
/* How many log rows of the group the node has persisted (compacted ones included
 * until a compacted write deletes them). */
size_t mrc_stored_log_rows(const struct mrc_cluster *c, mr_node_id node, mr_group_id group);
/* Whether the node installed a snapshot for the group at some point. */
bool mrc_snapshot_installed(const struct mrc_cluster *c, mr_node_id node, mr_group_id group);
/* Batches the node committed since its last flush (a crash now loses them), and
 * the batches and events its crashes lost so far. */
size_t mrc_unflushed_batches(const struct mrc_cluster *c, mr_node_id node);
size_t mrc_lost_batches(const struct mrc_cluster *c, mr_node_id node);
size_t mrc_lost_events(const struct mrc_cluster *c, mr_node_id node);
/* The events of command id cmd (commands and membership changes) a crash took
 * from the node's table: it writes them again once it applies its log. */
size_t mrc_lost_id_events(const struct mrc_cluster *c, mr_node_id node, mr_group_id group,
                          const void *cmd, size_t cmd_len);

/* The node that leads the group with the highest term among live nodes (0 = none). */
mr_node_id mrc_leader(struct mrc_cluster *c, mr_group_id group, raft_term *term);

/* Envelopes delivered so far from a to b (sent into the network, before faults),
 * and how many of them were empty (liveness only). */
uint64_t mrc_envelopes(const struct mrc_cluster *c, mr_node_id a, mr_node_id b);
uint64_t mrc_empty_envelopes(const struct mrc_cluster *c, mr_node_id a, mr_node_id b);

/* Called with every batch of every node before it is persisted (tests inspect). */
void mrc_set_batch_observer(struct mrc_cluster *c,
                            void (*fn)(void *arg, mr_node_id node, const struct mr_batch *b),
                            void *arg);
/* Called after every advance with the groups that batch visited (mr_batch.visited),
 * when a host would refresh the status it shows for them. */
void mrc_set_visited_observer(struct mrc_cluster *c,
                              void (*fn)(void *arg, mr_node_id node,
                                         const mr_group_id *groups, size_t n),
                              void *arg);

/* Safety checks over everything recorded so far: at most one leader per (group,
 * term) observed (checked at every tick), and for each group every node's command /
 * membership events agree on (index -> command id, payload), with strictly
 * increasing indexes and no command id twice.  Events lost in a crash are held to
 * the agreement (a reader may have seen them) but not counted: the node writes
 * them again.  Also counted as violations: a batch without must_sync that holds
 * what a crash could not re-derive (entries, a term or vote, a snapshot, a created
 * or removed group, a tombstone).  Returns the number of violations and writes the
 * first description into err. */
size_t mrc_check(struct mrc_cluster *c, char *err, size_t err_len);

#endif /* MULTIRAFT_MR_CLUSTER_H */
