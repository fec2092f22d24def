/*
 * mr_codec.c — byte layouts of the layer (multiraft.h, ENTRY ENCODINGS): NORMAL
 * entry data, conf-change contexts, forwarded conf-change requests, the group's
 * replicated state and snapshot data.  Little endian; every decoder checks lengths
 * and returns false on malformed input (callers count and skip).
 */
#include "mr_internal.h"

void mr_put_u16(unsigned char *p, uint16_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
}

void mr_put_u32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

void mr_put_u64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

uint16_t mr_get_u16(const unsigned char *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

uint32_t mr_get_u32(const unsigned char *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

uint64_t mr_get_u64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

size_t mr_entry_encode(uint8_t kind, const void *cmd, uint16_t cmd_len,
                       const void *payload, size_t payload_len, unsigned char *buf)
{
    size_t size = MR_ENTRY_HEADER + cmd_len + payload_len;
    if (buf == NULL)
        return size;
    buf[0] = kind;
    mr_put_u16(buf + 1, cmd_len);
    if (cmd_len > 0)
        memcpy(buf + MR_ENTRY_HEADER, cmd, cmd_len);
    if (payload_len > 0)
        memcpy(buf + MR_ENTRY_HEADER + cmd_len, payload, payload_len);
    return size;
}

void mr_entry_set_generated(unsigned char *buf, raft_index expires,
                            const struct mr_session_ref *ref)
{
    unsigned char *p = buf + MR_ENTRY_HEADER;
    mr_put_u64(p, expires);
    mr_put_u32(p + 8, ref->node);
    mr_put_u64(p + 12, ref->epoch);
    mr_put_u64(p + 20, ref->seq);
    mr_put_u64(p + 28, ref->floor);
}

size_t mr_entry_encode_generated(raft_index expires, const struct mr_session_ref *ref,
                                 const void *cmd, uint16_t cmd_len,
                                 const void *payload, size_t payload_len,
                                 unsigned char *buf)
{
    size_t size = MR_ENTRY_GEN_HEADER + cmd_len + payload_len;
    if (buf == NULL)
        return size; /* the size alone (and no arithmetic on a null pointer) */
    buf[0] = MR_KIND_GENERATED;
    mr_put_u16(buf + 1, cmd_len);
    mr_entry_set_generated(buf, expires, ref);
    if (cmd_len > 0)
        memcpy(buf + MR_ENTRY_GEN_HEADER, cmd, cmd_len);
    if (payload_len > 0)
        memcpy(buf + MR_ENTRY_GEN_HEADER + cmd_len, payload, payload_len);
    return size;
}

/* Kind 4's fields after the common header; false if they cannot be a session's
 * (seq 0 or the largest, a floor above the seq, node 0). */
static bool decode_generated(const unsigned char *p, struct mr_entry_view *out)
{
    out->expires = mr_get_u64(p);
    out->session.node = mr_get_u32(p + 8);
    out->session.epoch = mr_get_u64(p + 12);
    out->session.seq = mr_get_u64(p + 20);
    out->session.floor = mr_get_u64(p + 28);
    return out->session.node != 0 && out->session.seq != 0 &&
           out->session.seq != UINT64_MAX && out->session.floor <= out->session.seq;
}

bool mr_entry_decode(const void *data, size_t len, struct mr_entry_view *out)
{
    const unsigned char *p = data;
    size_t header = MR_ENTRY_HEADER;
    if (p == NULL || len < MR_ENTRY_HEADER)
        return false;
    out->kind = p[0];
    if (out->kind < MR_KIND_COMMAND || out->kind > MR_KIND_CONF_REFUSED)
        return false;
    out->expires = 0;
    memset(&out->session, 0, sizeof out->session);
    if (out->kind == MR_KIND_GENERATED) {
        header = MR_ENTRY_GEN_HEADER;
        if (len < header || !decode_generated(p + MR_ENTRY_HEADER, out))
            return false;
    }
    out->cmd_len = mr_get_u16(p + 1);
    if (len - header < out->cmd_len)
        return false;
    out->cmd = p + header;
    out->payload = out->cmd + out->cmd_len;
    out->payload_len = len - header - out->cmd_len;
    return true;
}

size_t mr_context_encode(mr_node_id node, const void *cmd, uint16_t cmd_len,
                         const void *payload, size_t payload_len, unsigned char *buf)
{
    size_t size = MR_CONTEXT_HEADER + cmd_len + payload_len;
    if (buf == NULL)
        return size;
    mr_put_u32(buf, node);
    mr_put_u16(buf + 4, cmd_len);
    if (cmd_len > 0)
        memcpy(buf + MR_CONTEXT_HEADER, cmd, cmd_len);
    if (payload_len > 0)
        memcpy(buf + MR_CONTEXT_HEADER + cmd_len, payload, payload_len);
    return size;
}

bool mr_context_decode(const void *data, size_t len, struct mr_context_view *out)
{
    const unsigned char *p = data;
    if (p == NULL || len < MR_CONTEXT_HEADER)
        return false;
    out->node = mr_get_u32(p);
    out->cmd_len = mr_get_u16(p + 4);
    if (out->node == 0 || len - MR_CONTEXT_HEADER < out->cmd_len)
        return false;
    out->cmd = p + MR_CONTEXT_HEADER;
    out->payload = out->cmd + out->cmd_len;
    out->payload_len = len - MR_CONTEXT_HEADER - out->cmd_len;
    return true;
}

size_t mr_conf_request_encode(uint8_t change_type, mr_node_id node, const void *payload,
                              size_t payload_len, unsigned char *buf)
{
    size_t size = 5 + payload_len;
    if (buf == NULL)
        return size;
    buf[0] = change_type;
    mr_put_u32(buf + 1, node);
    if (payload_len > 0)
        memcpy(buf + 5, payload, payload_len);
    return size;
}

bool mr_conf_request_decode(const void *data, size_t len,
                            struct mr_conf_request_view *out)
{
    const unsigned char *p = data;
    if (p == NULL || len < 5)
        return false;
    out->change_type = p[0];
    out->node = mr_get_u32(p + 1);
    if (out->change_type < MR_CHANGE_ADD_VOTER || out->change_type > MR_CHANGE_ADD_LEARNER ||
        out->node == 0)
        return false;
    out->payload = p + 5;
    out->payload_len = len - 5;
    return true;
}

/* Version 1 had no sessions (read as none); versions 1 and 2 had no conf_seen
 * (read as 0: nothing known, mr_receive.c's replica_removed() is conservative);
 * versions 1 to 3 had no incarnation (read as 0: unknown, messages of any
 * incarnation are taken, as before); versions 1 to 4 had no leader (read as none:
 * a restored follower then knows no leader, as before). */
#define MR_STATE_VERSION 5

size_t mr_state_encode(const struct mr_group *g, unsigned char *buf)
{
    return mr_state_encode_with(g, NULL, 0, buf);
}

size_t mr_state_encode_with(const struct mr_group *g, const void *sessions,
                            size_t sessions_len, unsigned char *buf)
{
    size_t fixed = 1 + 8 + 8 + 4 + 16 + 4 + (size_t)g->n_map * 12 + 4 + (size_t)g->n_boot * 4;
    unsigned char *p = buf;
    if (sessions == NULL)
        sessions_len = mr_sessions_encode(g, NULL);
    if (buf == NULL)
        return fixed + sessions_len;
    *p++ = MR_STATE_VERSION;
    mr_put_u64(p, g->next_replica_id);
    p += 8;
    mr_put_u64(p, g->conf_seen);
    p += 8;
    mr_put_u32(p, g->incarnation);
    p += 4;
    /* the leader this replica follows, and its term (a hint for a restart) */
    mr_put_u64(p, g->raft != NULL ? raft_get_leader(g->raft) : RAFT_NONE);
    mr_put_u64(p + 8, g->raft != NULL ? raft_get_term(g->raft) : 0);
    p += 16;
    mr_put_u32(p, g->n_map);
    p += 4;
    for (uint32_t i = 0; i < g->n_map; i++) {
        mr_put_u64(p, g->map[i].id);
        mr_put_u32(p + 8, g->map[i].node);
        p += 12;
    }
    mr_put_u32(p, g->n_boot);
    p += 4;
    for (uint32_t i = 0; i < g->n_boot; i++, p += 4)
        mr_put_u32(p, g->boot[i]);
    if (sessions == NULL)
        mr_sessions_encode(g, p);
    else
        memcpy(p, sessions, sessions_len);
    return fixed + sessions_len;
}

static bool conf_has(const struct raft_conf_state *cs, raft_id id)
{
    if (cs == NULL)
        return false;
    for (uint32_t i = 0; i < cs->n_voters; i++)
        if (cs->voters[i] == id)
            return true;
    for (uint32_t i = 0; i < cs->n_learners; i++)
        if (cs->learners[i] == id)
            return true;
    return false;
}

/* A replicated state's fields, read and checked by state_parse(). */
struct state_view {
    uint8_t version;
    raft_id next, seen, leader;
    raft_term leader_term;
    uint32_t incarnation, n_map, n_boot;
    const unsigned char *map, *boot, *sessions; /* sessions NULL: version 1 */
    size_t sessions_len;
};

/* Reads and checks every part of an encoded state without changing anything: what
 * passes here decodes (short of memory running out). */
static bool state_parse(const void *data, size_t len, struct state_view *v)
{
    const unsigned char *p = data;
    size_t head, fixed, used = 0;
    memset(v, 0, sizeof *v);
    if (p == NULL || len < 1 || p[0] < 1 || p[0] > MR_STATE_VERSION)
        return false;
    v->version = p[0];
    /* up to the map's count */
    head = p[0] >= 5 ? 1 + 8 + 8 + 4 + 16 : p[0] >= 4 ? 1 + 8 + 8 + 4 :
           p[0] >= 3 ? 1 + 8 + 8 : 1 + 8;
    if (len < head + 4)
        return false;
    v->next = mr_get_u64(p + 1);
    if (p[0] >= 3)
        v->seen = mr_get_u64(p + 9);
    if (p[0] >= 4)
        v->incarnation = mr_get_u32(p + 17);
    if (p[0] >= 5) {
        v->leader = mr_get_u64(p + 21);
        v->leader_term = mr_get_u64(p + 29);
    }
    v->n_map = mr_get_u32(p + head);
    head += 4; /* the map */
    if ((len - head) / 12 < v->n_map || len - head - (size_t)v->n_map * 12 < 4)
        return false;
    v->map = p + head;
    v->n_boot = mr_get_u32(p + head + (size_t)v->n_map * 12);
    if ((len - head - 4 - (size_t)v->n_map * 12) / 4 < v->n_boot)
        return false;
    v->boot = p + head + (size_t)v->n_map * 12 + 4;
    fixed = head + 4 + (size_t)v->n_map * 12 + (size_t)v->n_boot * 4;
    for (uint32_t i = 0; i < v->n_map; i++) {
        const unsigned char *e = v->map + (size_t)i * 12;
        if (mr_get_u64(e) == RAFT_NONE || mr_get_u32(e + 8) == 0)
            return false;
    }
    if (p[0] == 1)
        return true;
    v->sessions = p + fixed;
    v->sessions_len = len - fixed;
    return mr_sessions_check(v->sessions, v->sessions_len, &used) &&
           used == v->sessions_len;
}

bool mr_state_decode(struct mr_node *n, struct mr_group *g, const void *data, size_t len,
                     bool own_row, const struct raft_conf_state *snap_conf)
{
    struct state_view v;
    raft_id next;
    size_t used = 0;
    if (!state_parse(data, len, &v))
        return false;
    next = v.next;
    /* The sessions are replaced whole (state as of the applied index, or a
     * snapshot's index). */
    if (v.sessions == NULL)
        mr_sessions_free(n, g);
    else if (!mr_sessions_decode(n, g, v.sessions, v.sessions_len, &used))
        return false;
    for (uint32_t i = 0; i < v.n_map; i++) {
        const unsigned char *e = v.map + (size_t)i * 12;
        raft_id id = mr_get_u64(e);
        mr_node_id node = mr_get_u32(e + 8);
        mr_node_id known = mr_map_node(g, id);
        /* (this node's own replica keeps its binding: a sender that says
         * otherwise is wrong, and its message was addressed to it) */
        if ((known == 0 || (known != node && known != n->cfg.node_id &&
                            conf_has(snap_conf, id))) &&
            mr_map_set(n, g, id, node) != MR_OK)
            return false;
        if (id >= next)
            next = id + 1;
    }
    if (next > g->next_replica_id)
        g->next_replica_id = next;
    /* conf_seen is as of the applied index only in the node's own row: a snapshot
     * carries its sender's, as of the sender's applied index (mr_peer.c), which may
     * name changes past the snapshot's configuration. */
    if (own_row && v.seen > g->conf_seen)
        g->conf_seen = v.seen;
    /* A replica keeps the incarnation it was made with (a snapshot of another
     * incarnation never reaches it: mr_receive.c refuses its message). */
    if (g->incarnation == 0)
        g->incarnation = v.incarnation;
    /* A restarted follower's lease (mr_restore_group checks the term) */
    if (own_row && v.leader != RAFT_NONE && v.leader != g->replica_id &&
        mr_group_extra(n, g) != NULL) {
        g->x->lease_leader = v.leader;
        g->x->lease_term = v.leader_term;
    }
    /* The members still to add: the node's own as stored; a snapshot's replace
     * them, as of its sender's applied index (the additions between the snapshot's
     * index and that one follow in the log, and find them already gone). */
    if ((!own_row || v.n_boot > 0) && mr_boot_set(n, g, v.boot, v.n_boot) != MR_OK)
        return false;
    return true;
}

bool mr_state_led(const void *data, size_t len, raft_id replica, raft_term term)
{
    struct state_view v;
    return data != NULL && state_parse(data, len, &v) && v.leader == replica &&
           v.leader_term == term;
}

int mr_boot_set(struct mr_node *n, struct mr_group *g, const unsigned char *p, uint32_t count)
{
    mr_node_id *boot = NULL;
    if (count > 0 && (boot = mr_alloc(n, count * sizeof *boot)) == NULL)
        return MR_ENOMEM;
    for (uint32_t i = 0; i < count; i++)
        boot[i] = mr_get_u32(p + 4 * (size_t)i);
    if (g->n_boot != count || (count > 0 && memcmp(g->boot, boot, count * sizeof *boot) != 0))
        g->flags |= MR_G_META;
    mr_free(n, g->boot);
    g->boot = boot;
    g->n_boot = count;
    return MR_OK;
}

bool mr_snapshot_split(const void *data, size_t len, const void **state,
                       size_t *state_len, const void **blob, size_t *blob_len)
{
    const unsigned char *p = data;
    uint32_t sl;
    if (p == NULL || len < 4)
        return false;
    sl = mr_get_u32(p);
    if (len - 4 < sl)
        return false;
    *state = p + 4;
    *state_len = sl;
    *blob = p + 4 + sl;
    *blob_len = len - 4 - sl;
    return true;
}

bool mr_snapshot_check(const struct mr_node *n, mr_group_id group, const void *data,
                       size_t len)
{
    const void *state, *blob;
    size_t state_len, blob_len;
    struct state_view v;
    return mr_snapshot_split(data, len, &state, &state_len, &blob, &blob_len) &&
           state_parse(state, state_len, &v) &&
           (n->cfg.storage.snapshot_blob_ok == NULL ||
            n->cfg.storage.snapshot_blob_ok(n->cfg.storage.user, group, blob, blob_len));
}

size_t mr_bootstrap_entry(struct mr_node *n, const struct mr_group *g, unsigned char *buf)
{
    size_t ctx_len = mr_context_encode(n->cfg.node_id, NULL, 0, NULL, (size_t)g->n_boot * 4,
                                       NULL);
    struct raft_conf_change cc;
    unsigned char *ctx;
    size_t len;
    memset(&cc, 0, sizeof cc);
    cc.type = RAFT_CC_ADD_VOTER;
    cc.replica = 1;
    cc.context_len = (uint32_t)ctx_len;
    if (buf == NULL)
        return raft_conf_change_encoded_size(&cc);
    if ((ctx = mr_alloc(n, ctx_len)) == NULL)
        return 0;
    mr_context_encode(n->cfg.node_id, NULL, 0, NULL, 0, ctx);
    for (uint32_t i = 0; i < g->n_boot; i++)
        mr_put_u32(ctx + MR_CONTEXT_HEADER + 4 * (size_t)i, g->boot[i]);
    cc.context = ctx;
    len = raft_conf_change_encode(&cc, buf);
    mr_free(n, ctx);
    return len;
}
