/*
 * sim_msg.h — deep copies of struct raft_message for the simulated network.
 *
 * A message in rd.messages is owned by the sender's raft until its raft_advance(), so
 * the network keeps its own copy (entries, entry data and snapshot in one block).
 */
#ifndef SIM_MSG_H
#define SIM_MSG_H

#include <stddef.h>
#include <stdint.h>

#include "raft.h"

struct sim_msg {
    struct raft_message m;     /* pointers point into this block */
    uint32_t from_incarnation; /* sender's incarnation when sent (for reports) */
    struct raft_snapshot snap;
};

struct sim_msg *sim_msg_copy(const struct raft_message *m);
void sim_msg_free(struct sim_msg *sm);

/* One-line description ("APPEND 1->2 t=3 lt=2 i=5 c=4 n=2"), into buf. */
void sim_msg_format(const struct raft_message *m, char *buf, size_t len);
/* Our own names, so traces are readable even against a partial core. */
const char *sim_msg_type_name(int type);

#endif /* SIM_MSG_H */
