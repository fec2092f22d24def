/* sim_msg.c — message deep copy and formatting (see sim_msg.h). */
#include "sim_msg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static size_t align8(size_t n)
{
    return (n + 7u) & ~(size_t)7u;
}

struct sim_msg *sim_msg_copy(const struct raft_message *m)
{
    size_t n_ent = m->entries ? m->n_entries : 0;
    const struct raft_snapshot *s = m->snapshot;
    size_t sz = align8(sizeof(struct sim_msg));
    size_t off_ent = sz;
    sz += align8(n_ent * sizeof(struct raft_entry));
    size_t off_ids = sz;
    if (s != NULL)
        sz += ((size_t)s->conf.n_voters + s->conf.n_learners) * sizeof(raft_id);
    size_t off_bytes = sz;
    for (size_t i = 0; i < n_ent; i++)
        sz += m->entries[i].len;
    if (s != NULL)
        sz += s->len;

    unsigned char *blk = malloc(sz);
    if (blk == NULL)
        abort();
    struct sim_msg *sm = (struct sim_msg *)blk;
    memset(sm, 0, sizeof *sm);
    sm->m = *m;
    sm->m.entries = NULL;
    sm->m.snapshot = NULL;
    unsigned char *bytes = blk + off_bytes;
    if (n_ent > 0) {
        struct raft_entry *ents = (struct raft_entry *)(blk + off_ent);
        for (size_t i = 0; i < n_ent; i++) {
            ents[i] = m->entries[i];
            if (m->entries[i].len > 0) {
                memcpy(bytes, m->entries[i].data, m->entries[i].len);
                ents[i].data = bytes;
                bytes += m->entries[i].len;
            } else {
                ents[i].data = NULL;
            }
        }
        sm->m.entries = ents;
    }
    if (s != NULL) {
        raft_id *ids = (raft_id *)(blk + off_ids);
        sm->snap = *s;
        if (s->conf.n_voters)
            memcpy(ids, s->conf.voters, s->conf.n_voters * sizeof(raft_id));
        if (s->conf.n_learners)
            memcpy(ids + s->conf.n_voters, s->conf.learners,
                   s->conf.n_learners * sizeof(raft_id));
        sm->snap.conf.voters = ids;
        sm->snap.conf.learners = ids + s->conf.n_voters;
        if (s->len > 0) {
            memcpy(bytes, s->data, s->len);
            sm->snap.data = bytes;
        } else {
            sm->snap.data = NULL;
        }
        sm->m.snapshot = &sm->snap;
    }
    return sm;
}

void sim_msg_free(struct sim_msg *sm)
{
    free(sm);
}

const char *sim_msg_type_name(int type)
{
    static const char *const names[] = {
        "?", "APPEND", "APPEND_RESP", "VOTE", "VOTE_RESP", "PREVOTE", "PREVOTE_RESP",
        "HEARTBEAT", "HEARTBEAT_RESP", "SNAPSHOT", "TIMEOUT_NOW", "PROPOSE",
        "READ_INDEX", "READ_INDEX_RESP", "TRANSFER_LEADER", "DURABLE"};
    if (type < 0 || type > RAFT_MSG_TYPE_MAX)
        return "?";
    return names[type];
}

void sim_msg_format(const struct raft_message *m, char *buf, size_t len)
{
    int k = snprintf(buf, len, "%s %llu->%llu t=%llu", sim_msg_type_name(m->type),
                     (unsigned long long)m->from, (unsigned long long)m->to,
                     (unsigned long long)m->term);
    if (k < 0 || (size_t)k >= len)
        return;
    switch (m->type) {
    case RAFT_MSG_APPEND:
    case RAFT_MSG_PROPOSE:
        snprintf(buf + k, len - (size_t)k, " lt=%llu i=%llu c=%llu n=%u",
                 (unsigned long long)m->log_term, (unsigned long long)m->index,
                 (unsigned long long)m->commit, (unsigned)m->n_entries);
        break;
    case RAFT_MSG_APPEND_RESP:
        snprintf(buf + k, len - (size_t)k, " i=%llu%s lt=%llu hint=%llu",
                 (unsigned long long)m->index, m->reject ? " REJECT" : "",
                 (unsigned long long)m->log_term, (unsigned long long)m->reject_hint);
        break;
    case RAFT_MSG_VOTE:
    case RAFT_MSG_PREVOTE:
        snprintf(buf + k, len - (size_t)k, " last=%llu/%llu",
                 (unsigned long long)m->index, (unsigned long long)m->log_term);
        break;
    case RAFT_MSG_VOTE_RESP:
    case RAFT_MSG_PREVOTE_RESP:
        snprintf(buf + k, len - (size_t)k, "%s", m->reject ? " REJECT" : " GRANT");
        break;
    case RAFT_MSG_DURABLE:
        snprintf(buf + k, len - (size_t)k, " i=%llu c=%llu", (unsigned long long)m->index,
                 (unsigned long long)m->commit);
        break;
    case RAFT_MSG_HEARTBEAT:
        snprintf(buf + k, len - (size_t)k, " c=%llu ctx=%llu", (unsigned long long)m->commit,
                 (unsigned long long)m->context);
        break;
    case RAFT_MSG_HEARTBEAT_RESP:
    case RAFT_MSG_READ_INDEX:
        snprintf(buf + k, len - (size_t)k, " ctx=%llu", (unsigned long long)m->context);
        break;
    case RAFT_MSG_READ_INDEX_RESP:
        snprintf(buf + k, len - (size_t)k, " i=%llu ctx=%llu%s", (unsigned long long)m->index,
                 (unsigned long long)m->context, m->reject ? " REJECT" : "");
        break;
    case RAFT_MSG_SNAPSHOT:
        if (m->snapshot)
            snprintf(buf + k, len - (size_t)k, " snap=%llu/%llu v=%u l=%u",
                     (unsigned long long)m->snapshot->index,
                     (unsigned long long)m->snapshot->term, m->snapshot->conf.n_voters,
                     m->snapshot->conf.n_learners);
        break;
    case RAFT_MSG_TRANSFER_LEADER:
        snprintf(buf + k, len - (size_t)k, " target=%llu", (unsigned long long)m->index);
        break;
    default:
        break;
    }
}
