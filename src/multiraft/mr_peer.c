/*
 * mr_peer.c — the other nodes as this node sees them: routing of outgoing raft
 * messages by the replica map, coalescing of heartbeats into one envelope per
 * destination per heartbeat interval, node liveness (every envelope counts; an empty
 * one is sent when nothing else went out for liveness_ticks) and detection of silent
 * nodes (nothing heard for dead_ticks, default one election timeout, see
 * mr_quiesce.c).
 */
#include "mr_internal.h"

struct mr_peer *mr_peer_find(const struct mr_node *n, mr_node_id id)
{
    for (uint32_t i = 0; i < n->n_peers; i++)
        if (n->peers[i]->id == id)
            return n->peers[i];
    return NULL;
}

bool mr_node_alive(const struct mr_node *n, mr_node_id id)
{
    const struct mr_peer *p = mr_peer_find(n, id);
    return p != NULL && p->heard && !p->dead;
}

bool mr_replica_node_dead(const struct mr_node *n, const struct mr_group *g, raft_id id)
{
    const struct mr_peer *p = mr_peer_find(n, mr_map_node(g, id));
    return p != NULL && p->dead;
}

bool mr_replica_node_unheard(const struct mr_node *n, const struct mr_group *g, raft_id id)
{
    mr_node_id node = mr_map_node(g, id);
    const struct mr_peer *p = mr_peer_find(n, node);
    if (node == 0 || node == n->cfg.node_id)
        return false;
    return p != NULL && p->heard ? p->dead : n->now >= n->cfg.dead_ticks;
}

/* Whether a quorum of the group's voters lives on nodes we hear from (ourselves
 * included).  A node cut off from everyone must not force elections: when the
 * partition heals, its inflated terms would depose healthy leaders (PreVote exists to
 * prevent exactly that, dissertation §9.6, and the forced campaign bypasses it). */
bool mr_quorum_alive(const struct mr_node *n, const struct mr_group *g)
{
    struct raft_conf_state cs;
    uint32_t alive = 0;
    raft_get_conf_state(g->raft, &cs);
    for (uint32_t i = 0; i < cs.n_voters; i++) {
        mr_node_id node = mr_map_node(g, cs.voters[i]);
        if (node == n->cfg.node_id || mr_node_alive(n, node))
            alive++;
    }
    return alive >= cs.n_voters / 2 + 1;
}

struct mr_peer *mr_peer_get(struct mr_node *n, mr_node_id id)
{
    struct mr_peer *p = mr_peer_find(n, id);
    if (p != NULL || id == 0 || id == n->cfg.node_id)
        return p;
    if (n->n_peers == n->cap_peers) {
        uint32_t cap = n->cap_peers == 0 ? 8 : n->cap_peers * 2;
        void *q = mr_realloc(n, n->peers, cap * sizeof *n->peers);
        if (q == NULL)
            return NULL;
        n->peers = q;
        n->cap_peers = cap;
    }
    p = mr_alloc(n, sizeof *p);
    if (p == NULL)
        return NULL;
    memset(p, 0, sizeof *p);
    p->id = id;
    n->peers[n->n_peers++] = p;
    return p;
}

static size_t message_bytes(const struct raft_message *m)
{
    size_t b = 64;
    for (uint32_t i = 0; i < m->n_entries; i++)
        b += 24 + m->entries[i].len;
    if (m->snapshot != NULL)
        b += 32 + m->snapshot->len;
    return b;
}

#define HEARTBEAT_BYTES 48u

void mr_heartbeat_of(const struct mr_group *g, raft_id to, struct mr_heartbeat *hb)
{
    memset(hb, 0, sizeof *hb);
    hb->group = g->id;
    hb->incarnation = g->incarnation;
    hb->from = g->replica_id;
    hb->to = to;
}

bool mr_follower_heartbeat(const struct mr_group *g, size_t i, struct raft_progress_info *pi,
                           mr_node_id *to, struct mr_heartbeat *hb)
{
    if (raft_progress_at(g->raft, i, pi) != RAFT_OK || pi->id == g->replica_id)
        return false;
    *to = mr_map_node(g, pi->id);
    if (*to == 0)
        return false;
    mr_heartbeat_of(g, pi->id, hb);
    hb->term = raft_get_term(g->raft);
    return true;
}

void mr_queue_heartbeat(struct mr_node *n, mr_node_id to, const struct mr_heartbeat *hb,
                        bool resp)
{
    struct mr_peer *p = mr_peer_get(n, to);
    if (p == NULL || mr_vec_push(n, resp ? &p->resps : &p->hbs, sizeof *hb, hb) == NULL) {
        n->c.dropped++;
        return;
    }
    /* A read-index round must not wait for the coalescing period. */
    if (hb->context != 0)
        p->urgent_hb = true;
}

/* SNAPSHOT: the core's snapshot carries the group's sessions as of its index (the
 * memory storage keeps them with it, mr_sessions_copy); the data sent is
 * u32 state_len | the group's replicated state as of the snapshot | the host's
 * blob.  (The replica map and the next replica id are merged by the receiver,
 * never rewound: the current ones serve.) */
static const struct raft_snapshot *build_snapshot(struct mr_node *n, struct mr_group *g,
                                                  const struct raft_snapshot *s)
{
    const void *blob = NULL, *sessions = NULL;
    size_t blob_len = 0, sessions_len = 0, state_len;
    struct raft_snapshot *copy;
    unsigned char *data;
    if (s->index != g->applied) {
        if (s->data == NULL || s->len < 4)
            return NULL; /* the sessions as of that index are not known */
        sessions = s->data;
        sessions_len = s->len;
    }
    state_len = mr_state_encode_with(g, sessions, sessions_len, NULL);
    if (n->cfg.storage.snapshot_data != NULL &&
        n->cfg.storage.snapshot_data(n->cfg.storage.user, g->id, s->index, &blob,
                                     &blob_len) < 0)
        return NULL;
    copy = mr_arena_alloc(n, sizeof *copy);
    data = mr_arena_alloc(n, 4 + state_len + blob_len);
    if (copy == NULL || data == NULL)
        return NULL;
    *copy = *s;
    mr_put_u32(data, (uint32_t)state_len);
    mr_state_encode_with(g, sessions, sessions_len, data + 4);
    if (blob_len > 0)
        memcpy(data + 4 + state_len, blob, blob_len);
    copy->data = data;
    copy->len = 4 + state_len + blob_len;
    return copy;
}

void mr_route_message(struct mr_node *n, struct mr_group *g, const struct raft_message *m,
                      bool early)
{
    mr_node_id to = mr_map_node(g, m->to);
    struct mr_peer *p = to != 0 ? mr_peer_get(n, to) : NULL;
    struct mr_message mm;
    if (p == NULL) {
        n->c.dropped++; /* unroutable: replica map has no node for it */
        if (m->type == RAFT_MSG_SNAPSHOT) {
            struct mr_snap_sent ss = {g->id, m->to, false};
            (void)mr_vec_push(n, &n->snaps_sent, sizeof ss, &ss);
        }
        return;
    }
    if (m->type == RAFT_MSG_HEARTBEAT || m->type == RAFT_MSG_HEARTBEAT_RESP) {
        struct mr_heartbeat hb;
        memset(&hb, 0, sizeof hb);
        hb.group = g->id;
        hb.incarnation = g->incarnation;
        hb.from = m->from;
        hb.to = m->to;
        hb.term = m->term;
        hb.commit = m->commit;
        hb.context = m->context;
        hb.reject = m->reject;
        mr_queue_heartbeat(n, to, &hb, m->type == RAFT_MSG_HEARTBEAT_RESP);
        return;
    }
    mm.group = g->id;
    mm.incarnation = g->incarnation;
    mm.msg = *m;
    if (m->type == RAFT_MSG_SNAPSHOT) {
        struct mr_snap_sent ss = {g->id, m->to, true};
        if (m->snapshot == NULL ||
            (mm.msg.snapshot = build_snapshot(n, g, m->snapshot)) == NULL)
            ss.ok = false; /* reported as failed at advance: the leader retries */
        (void)mr_vec_push(n, &n->snaps_sent, sizeof ss, &ss);
        if (!ss.ok) {
            n->c.dropped++;
            return;
        }
        n->c.snapshots_sent++;
    }
    if (mr_vec_push(n, &p->msgs, sizeof mm, &mm) == NULL) {
        n->c.dropped++;
        return;
    }
    if (early) {
        /* Keep the early ones first, in their order (late ones are rare then: a
         * snapshot, a response of a group this node follows). */
        struct mr_message *ms = p->msgs.data;
        if (p->n_early < p->msgs.len - 1) {
            memmove(ms + p->n_early + 1, ms + p->n_early,
                    (p->msgs.len - 1 - p->n_early) * sizeof *ms);
            ms[p->n_early] = mm;
        }
        p->n_early++;
    }
}

void mr_queue_removal_notices(struct mr_node *n, struct mr_group *g, raft_index index)
{
    for (uint32_t i = 0; i < g->n_map; i++) {
        struct mr_notice nt;
        struct mr_peer *p;
        if (g->map[i].node == n->cfg.node_id || (p = mr_peer_get(n, g->map[i].node)) == NULL)
            continue;
        memset(&nt, 0, sizeof nt);
        nt.hb.group = g->id;
        nt.hb.incarnation = g->incarnation;
        nt.hb.to = g->map[i].id;
        nt.hb.commit = index;
        nt.hb.flags = MR_HB_REMOVED;
        nt.from = n->now + n->cfg.election_ticks;
        nt.until = n->now + 10u * n->cfg.election_ticks;
        (void)mr_vec_push(n, &p->notices, sizeof nt, &nt);
    }
}

/* At a heartbeat flush: the live notices join the responses; expired ones go. */
static void add_notices(struct mr_node *n, struct mr_peer *p)
{
    struct mr_notice *nt = p->notices.data;
    size_t keep = 0;
    for (size_t i = 0; i < p->notices.len; i++) {
        if (n->now > nt[i].until)
            continue;
        if (n->now >= nt[i].from)
            (void)mr_vec_push(n, &p->resps, sizeof nt[i].hb, &nt[i].hb);
        nt[keep++] = nt[i];
    }
    p->notices.len = keep;
    if (keep == 0)
        mr_vec_free(n, &p->notices);
}

static bool liveness_due(const struct mr_node *n, const struct mr_peer *p)
{
    return !p->sent_ever || n->now >= p->last_sent + n->cfg.liveness_ticks;
}

static bool peer_has_output(const struct mr_node *n, const struct mr_peer *p)
{
    bool flush = n->hb_flush_due || p->urgent_hb;
    return p->msgs.len > 0 || (flush && (p->hbs.len > 0 || p->resps.len > 0)) ||
           liveness_due(n, p);
}

bool mr_peers_have_output(const struct mr_node *n)
{
    for (uint32_t i = 0; i < n->n_peers; i++)
        if (peer_has_output(n, n->peers[i]))
            return true;
    return false;
}

/* messages_sent by kind (mr_counters). */
static void count_kind(struct mr_node *n, const struct raft_message *m)
{
    switch (m->type) {
    case RAFT_MSG_APPEND:
        if (m->n_entries > 0)
            n->c.appends_sent++;
        else
            n->c.empty_appends_sent++;
        break;
    case RAFT_MSG_APPEND_RESP: n->c.append_responses_sent++; break;
    case RAFT_MSG_DURABLE: n->c.durable_notices_sent++; break;
    case RAFT_MSG_PROPOSE: n->c.proposals_forwarded++; break;
    default: break;
    }
}

int mr_build_envelopes(struct mr_node *n)
{
    for (uint32_t i = 0; i < n->n_peers; i++) {
        struct mr_peer *p = n->peers[i];
        struct mr_envelope env;
        bool flush = n->hb_flush_due || p->urgent_hb;
        size_t bytes = 16;
        if (flush && p->notices.len > 0)
            add_notices(n, p);
        if (!peer_has_output(n, p))
            continue;
        memset(&env, 0, sizeof env);
        env.from_node = n->cfg.node_id;
        env.to_node = p->id;
        env.messages = p->msgs.data;
        env.n_messages = p->msgs.len;
        env.n_early_messages = p->n_early;
        if (flush) {
            env.heartbeats = p->hbs.data;
            env.n_heartbeats = p->hbs.len;
            env.heartbeat_resps = p->resps.data;
            env.n_heartbeat_resps = p->resps.len;
        }
        if (mr_vec_push(n, &n->envelopes, sizeof env, &env) == NULL)
            return MR_ENOMEM;
        for (size_t k = 0; k < env.n_messages; k++) {
            bytes += message_bytes(&env.messages[k].msg);
            count_kind(n, &env.messages[k].msg);
        }
        bytes += HEARTBEAT_BYTES * (env.n_heartbeats + env.n_heartbeat_resps);
        n->c.envelopes_sent++;
        n->c.messages_sent += env.n_messages;
        n->c.heartbeats_sent += env.n_heartbeats;
        n->c.heartbeat_resps_sent += env.n_heartbeat_resps;
        n->c.bytes_sent += bytes;
        if (env.n_messages + env.n_heartbeats + env.n_heartbeat_resps == 0)
            n->c.liveness_sent++;
        p->pc.envelopes++;
        p->pc.messages += env.n_messages;
        p->pc.heartbeats += env.n_heartbeats + env.n_heartbeat_resps;
        p->pc.bytes += bytes;
    }
    return MR_OK;
}

bool mr_envelope_early(const struct mr_envelope *env, struct mr_envelope *out)
{
    memset(out, 0, sizeof *out);
    out->from_node = env->from_node;
    out->to_node = env->to_node;
    out->messages = env->messages;
    out->n_messages = out->n_early_messages = env->n_early_messages;
    return out->n_messages > 0;
}

bool mr_envelope_rest(const struct mr_envelope *env, struct mr_envelope *out)
{
    *out = *env;
    if (env->n_early_messages > 0) { /* messages may be NULL: no arithmetic on it */
        out->messages += env->n_early_messages;
        out->n_messages -= env->n_early_messages;
    }
    out->n_early_messages = 0;
    return env->n_early_messages == 0 || out->n_messages > 0 ||
           out->n_heartbeats + out->n_heartbeat_resps > 0;
}

void mr_peers_after_send(struct mr_node *n)
{
    const struct mr_envelope *envs = n->envelopes.data;
    for (size_t i = 0; i < n->envelopes.len; i++) {
        struct mr_peer *p = mr_peer_find(n, envs[i].to_node);
        if (p == NULL)
            continue;
        p->msgs.len = 0;
        p->n_early = 0;
        if (p->msgs.cap > 256)
            mr_vec_free(n, &p->msgs);
        if (envs[i].heartbeats == p->hbs.data && envs[i].n_heartbeats == p->hbs.len &&
            envs[i].heartbeat_resps == p->resps.data &&
            envs[i].n_heartbeat_resps == p->resps.len &&
            (n->hb_flush_due || p->urgent_hb)) {
            p->hbs.len = 0;
            p->resps.len = 0;
            if (p->hbs.cap > 256)
                mr_vec_free(n, &p->hbs);
            if (p->resps.cap > 256)
                mr_vec_free(n, &p->resps);
            p->urgent_hb = false;
        }
        p->last_sent = n->now;
        p->sent_ever = true;
    }
    n->envelopes.len = 0;
    n->hb_flush_due = false;
}

void mr_peers_tick(struct mr_node *n)
{
    bool any = false;
    /* Mark every silent node first: the wake-up below judges whether a quorum is
     * still reachable, which must not depend on the order of the peers. */
    for (uint32_t i = 0; i < n->n_peers; i++) {
        struct mr_peer *p = n->peers[i];
        p->just_died = false;
        if (p->heard && !p->dead && n->now >= p->last_heard + n->cfg.dead_ticks) {
            p->dead = true;
            p->just_died = true;
            any = true;
        }
    }
    if (!any)
        return;
    for (uint32_t i = 0; i < n->n_peers; i++)
        if (n->peers[i]->just_died)
            mr_wake_led_by(n, n->peers[i]->id);
}
