/*
 * propose.c — proposals: a leader appends commands (and one configuration change
 * at a time, §4.1) to its log and replicates them; a follower forwards commands
 * to its leader, which appends the forwarded ones it can take (raft.h, PROPOSALS).
 */
#include "raft_internal.h"

int raft_propose(struct raft *r, const void *data, size_t len, raft_index *index,
                 raft_term *term)
{
    struct raft_buf b = {data, len};
    return raft_propose_batch(r, &b, 1, index, term);
}

int raft_propose_batch(struct raft *r, const struct raft_buf *bufs, size_t n,
                       raft_index *first_index, raft_term *term)
{
    int rc;
    if (first_index != NULL)
        *first_index = 0;
    if (term != NULL)
        *term = 0;
    if (r->busy)
        return RAFT_EBUSY;
    if (n == 0 || n > UINT32_MAX)
        return RAFT_EINVAL;
    for (size_t i = 0; i < n; i++)
        if (bufs[i].len == 0 || bufs[i].len > UINT32_MAX || bufs[i].data == NULL)
            return RAFT_EINVAL;
    if (r->role == RAFT_LEADER) {
        if (r->transferee != RAFT_NONE)
            return RAFT_ETRANSFER; /* dissertation §3.10 */
        /* A leader removing itself appends nothing after its removal: once that
         * commits and it steps down, every remaining voter that holds the removal
         * is then at least as up to date as the departing leader, whose vote the
         * others may still need while they have not applied the change. */
        if (r->removing_self)
            return RAFT_ENOTMEMBER;
        rc = raft_leader_append(r, bufs, n, RAFT_ENTRY_NORMAL, first_index);
        if (rc == RAFT_OK && term != NULL)
            *term = r->term;
        return rc;
    }
    if (r->role != RAFT_FOLLOWER || r->leader == RAFT_NONE || r->no_forward)
        return RAFT_ENOTLEADER;
    {
        /* Forward to the leader; data is copied into the arena (valid until advance). */
        struct raft_message m;
        struct raft_entry *ents = raft_arena_alloc(r, sizeof *ents * n);
        if (ents == NULL)
            return RAFT_ENOMEM;
        for (size_t i = 0; i < n; i++) {
            void *p = raft_arena_alloc(r, bufs[i].len);
            if (p == NULL)
                return RAFT_ENOMEM;
            memcpy(p, bufs[i].data, bufs[i].len);
            ents[i].term = 0;
            ents[i].index = 0;
            ents[i].type = RAFT_ENTRY_NORMAL;
            ents[i].data = p;
            ents[i].len = (uint32_t)bufs[i].len;
        }
        memset(&m, 0, sizeof m);
        m.type = RAFT_MSG_PROPOSE;
        m.to = r->leader;
        m.term = r->term;
        m.entries = ents;
        m.n_entries = (uint32_t)n;
        rc = raft_send(r, &m);
        return rc == RAFT_OK ? RAFT_FORWARDED : rc;
    }
}

int raft_step_propose(struct raft *r, const struct raft_message *m)
{
    struct raft_buf stack[16];
    struct raft_buf *bufs = stack;
    size_t n = 0;
    int rc;
    /* Forwarded proposals a leader cannot take are dropped (the proposer times out:
     * raft.h, PROPOSALS). */
    if (r->role != RAFT_LEADER || r->transferee != RAFT_NONE || r->removing_self ||
        m->n_entries == 0)
        return RAFT_OK;
    if (m->n_entries > 16) {
        bufs = raft_mem_alloc(r, sizeof *bufs * m->n_entries);
        if (bufs == NULL)
            return RAFT_ENOMEM;
    }
    for (uint32_t i = 0; i < m->n_entries; i++) {
        const struct raft_entry *e = &m->entries[i];
        if (e->type != RAFT_ENTRY_NORMAL || e->len == 0)
            continue; /* only ordinary commands may be forwarded */
        bufs[n].data = e->data;
        bufs[n].len = e->len;
        n++;
    }
    rc = n > 0 ? raft_leader_append(r, bufs, n, RAFT_ENTRY_NORMAL, NULL) : RAFT_OK;
    if (bufs != stack)
        raft_mem_free(r, bufs, sizeof *bufs * m->n_entries);
    return rc;
}

int raft_propose_conf_change(struct raft *r, const struct raft_conf_change *cc,
                             raft_index *index, raft_term *term)
{
    unsigned char stack[256];
    unsigned char *buf = stack;
    struct raft_buf b;
    size_t sz;
    raft_index idx = 0;
    int rc;
    if (index != NULL)
        *index = 0;
    if (term != NULL)
        *term = 0;
    if (r->busy)
        return RAFT_EBUSY;
    if (cc == NULL || (cc->context_len > 0 && cc->context == NULL))
        return RAFT_EINVAL;
    if (r->role != RAFT_LEADER)
        return RAFT_ENOTLEADER;
    if (r->transferee != RAFT_NONE)
        return RAFT_ETRANSFER;
    if (r->pending_conf_index > r->log.applied)
        return RAFT_ECONFPENDING; /* at most one uncommitted change (§4.1) */
    rc = raft_conf_validate(r, cc);
    if (rc != RAFT_OK)
        return rc;
    sz = raft_conf_change_encoded_size(cc);
    if (sz > sizeof stack) {
        buf = raft_mem_alloc(r, sz);
        if (buf == NULL)
            return RAFT_ENOMEM;
    }
    raft_conf_change_encode(cc, buf);
    b.data = buf;
    b.len = sz;
    rc = raft_leader_append(r, &b, 1, RAFT_ENTRY_CONF_CHANGE, &idx);
    if (buf != stack)
        raft_mem_free(r, buf, sz);
    if (rc != RAFT_OK)
        return rc;
    r->pending_conf_index = idx;
    if (cc->type == RAFT_CC_REMOVE && cc->replica == r->id)
        r->removing_self = true;
    if (index != NULL)
        *index = idx;
    if (term != NULL)
        *term = r->term;
    return RAFT_OK;
}
