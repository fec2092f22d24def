/*
 * mr_cluster_forward.c — forged input for the cluster harness that needs the
 * layer's own encodings (mr_internal.h, whose allocator-bound uthash keeps it
 * out of the harness's other files): copies of generated-id commands.
 */
#include <stdlib.h>
#include <string.h>

#include "mr_internal.h"
#include "mr_cluster.h"

void mrc_forward_generated(struct mrc_cluster *c, mr_group_id group, mr_node_id node,
                           uint64_t epoch, uint64_t seq, uint64_t floor, raft_index expires,
                           const char *id)
{
    mr_node_id leader = mrc_leader(c, group, NULL);
    mr_node_id from = node != leader ? node : (leader == 2 ? 3 : 2);
    struct mr_group_status sf, sl;
    struct mr_session_ref ref = {node, epoch, seq, floor};
    unsigned char data[96];
    struct raft_entry e;
    struct mr_message mm;
    if (leader == 0 || strlen(id) > 32 ||
        mr_group_status(mrc_node(c, from), group, &sf) != MR_OK ||
        mr_group_status(mrc_node(c, leader), group, &sl) != MR_OK)
        abort(); /* a test's mistake */
    memset(&e, 0, sizeof e);
    e.type = RAFT_ENTRY_NORMAL;
    e.data = data;
    e.len = (uint32_t)mr_entry_encode_generated(expires, &ref, id, (uint16_t)strlen(id), "p", 1,
                                                data);
    memset(&mm, 0, sizeof mm);
    mm.group = group;
    mm.msg.type = RAFT_MSG_PROPOSE;
    mm.msg.from = sf.replica_id;
    mm.msg.to = sl.replica_id;
    mm.msg.term = sf.term;
    mm.msg.entries = &e;
    mm.msg.n_entries = 1;
    if (mrc_receive_one(c, from, leader, &mm) != MR_OK)
        abort();
    mrc_run(c, 3);
}
