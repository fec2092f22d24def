/*
 * mr_session.c — exactly-once for commands with a generated id, by sessions
 * (Ongaro's dissertation §6.3) kept in each group's replicated state instead of a
 * dedup record per command.
 *
 * A node proposing generated-id commands is a client with one session per start
 * (node, mr_config.session_epoch).  It numbers its commands 1, 2, ... (one
 * sequence for all groups), and every copy of a command carries its number (seq)
 * and the session's floor: the lowest seq of its commands still waiting in that
 * group.  So each seq below the floor has been decided by then — applied, or
 * given up by its waiter (a deadline, a failure).
 *
 * Applying a command records its seq; the floor it carries discards the record
 * below it.  A copy whose seq is below the floor or recorded is not applied:
 * either it was, or its waiter has gone and it now never will be, which only a
 * late copy of a given-up command can meet (the outcome of a given-up command is
 * unknown to its caller anyway).  The decision depends on the log alone, so every
 * replica makes the same one, and duplicated or reordered messages change
 * nothing.  The record holds about as many seqs as the session had commands in
 * flight in the group, usually none; a bound (MR_SESSION_MAX_SEQS) keeps a stuck
 * command from growing it.  A session goes once the group's log passes the
 * largest bound (`expires`) of its commands: past it, no copy of them can apply.
 *
 * The sessions travel in the group's state (meta row, snapshots).  The meta row
 * may trail the applied index (MR_META_LAG): after a crash the layer re-applies
 * from the row's state and makes the same decisions, and the host's highest
 * stored event index (mr_restore_announced) keeps it from announcing them again.
 * A snapshot carries them as of its own index (mr_sessions_copy).
 */
#include "mr_internal.h"

static void session_free(struct mr_node *n, struct mr_session *s)
{
    mr_free(n, s->seqs);
}

void mr_sessions_free(struct mr_node *n, struct mr_group *g)
{
    for (uint32_t i = 0; i < g->n_sessions; i++)
        session_free(n, &g->sessions[i]);
    mr_free(n, g->sessions);
    g->sessions = NULL;
    g->n_sessions = 0;
}

/* Sessions whose bound `index` has passed: no copy of their commands can apply. */
static void drop_expired(struct mr_node *n, struct mr_group *g, raft_index index)
{
    uint32_t k = 0;
    for (uint32_t i = 0; i < g->n_sessions; i++) {
        if (g->sessions[i].expires < index)
            session_free(n, &g->sessions[i]);
        else
            g->sessions[k++] = g->sessions[i];
    }
    g->n_sessions = k;
}

static struct mr_session *session_get(struct mr_node *n, struct mr_group *g,
                                      const struct mr_session_ref *ref)
{
    struct mr_session *s;
    for (uint32_t i = 0; i < g->n_sessions; i++)
        if (g->sessions[i].node == ref->node && g->sessions[i].epoch == ref->epoch)
            return &g->sessions[i];
    s = mr_realloc(n, g->sessions, (g->n_sessions + 1) * sizeof *s);
    if (s == NULL)
        return NULL;
    g->sessions = s;
    s = &g->sessions[g->n_sessions++];
    memset(s, 0, sizeof *s);
    s->node = ref->node;
    s->epoch = ref->epoch;
    return s;
}

/* Index of the first seq >= seq. */
static uint32_t seq_pos(const struct mr_session *s, uint64_t seq)
{
    uint32_t lo = 0, hi = s->n_seqs;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (s->seqs[mid] < seq)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static void drop_front(struct mr_session *s, uint32_t k)
{
    memmove(s->seqs, s->seqs + k, (s->n_seqs - k) * sizeof *s->seqs);
    s->n_seqs -= k;
}

/* floor = max(floor, to), then over every seq recorded right above it. */
static void raise_floor(struct mr_session *s, uint64_t to)
{
    if (to > s->floor) {
        s->floor = to;
        drop_front(s, seq_pos(s, to));
    }
    while (s->n_seqs > 0 && s->seqs[0] == s->floor) {
        drop_front(s, 1);
        s->floor++;
    }
}

bool mr_session_apply(struct mr_node *n, struct mr_group *g,
                      const struct mr_session_ref *ref, raft_index expires,
                      raft_index index)
{
    struct mr_session *s;
    uint32_t pos;
    drop_expired(n, g, index);
    if ((s = session_get(n, g, ref)) == NULL) {
        /* out of memory: its copies would not be recognised; the batch fails and
         * the host restores the node (mr_event_push) */
        n->ready_incomplete = true;
        return true;
    }
    pos = seq_pos(s, ref->seq);
    if (ref->seq < s->floor || (pos < s->n_seqs && s->seqs[pos] == ref->seq))
        return false;
    if (s->n_seqs == s->cap_seqs) {
        uint32_t cap = s->cap_seqs == 0 ? 4 : 2 * s->cap_seqs;
        uint64_t *seqs = mr_realloc(n, s->seqs, cap * sizeof *seqs);
        if (seqs == NULL) {
            n->ready_incomplete = true;
            return true;
        }
        s->seqs = seqs;
        s->cap_seqs = cap;
    }
    memmove(s->seqs + pos + 1, s->seqs + pos, (s->n_seqs - pos) * sizeof *s->seqs);
    s->seqs[pos] = ref->seq;
    s->n_seqs++;
    if (expires > s->expires)
        s->expires = expires;
    raise_floor(s, ref->floor);
    /* A command stuck below a long run of later ones: give its gap up. */
    while (s->n_seqs > MR_SESSION_MAX_SEQS)
        raise_floor(s, s->seqs[0]);
    return true;
}

unsigned char *mr_sessions_copy(struct mr_node *n, const struct mr_group *g, size_t *len)
{
    unsigned char *p;
    *len = mr_sessions_encode(g, NULL);
    if ((p = mr_alloc(n, *len)) != NULL)
        mr_sessions_encode(g, p);
    return p;
}

#define SESSION_FIXED 32u /* u32 node | u64 epoch | u64 floor | u64 expires | u32 n */

size_t mr_sessions_encode(const struct mr_group *g, unsigned char *buf)
{
    size_t size = 4;
    unsigned char *p = buf;
    for (uint32_t i = 0; i < g->n_sessions; i++)
        size += SESSION_FIXED + (size_t)g->sessions[i].n_seqs * 8;
    if (buf == NULL)
        return size;
    mr_put_u32(p, g->n_sessions);
    p += 4;
    for (uint32_t i = 0; i < g->n_sessions; i++) {
        const struct mr_session *s = &g->sessions[i];
        mr_put_u32(p, s->node);
        mr_put_u64(p + 4, s->epoch);
        mr_put_u64(p + 12, s->floor);
        mr_put_u64(p + 20, s->expires);
        mr_put_u32(p + 28, s->n_seqs);
        p += SESSION_FIXED;
        for (uint32_t k = 0; k < s->n_seqs; k++, p += 8)
            mr_put_u64(p, s->seqs[k]);
    }
    return size;
}

bool mr_sessions_check(const unsigned char *p, size_t len, size_t *used)
{
    uint32_t cnt;
    size_t off = 4;
    if (len < 4)
        return false;
    cnt = mr_get_u32(p);
    /* Each session takes at least SESSION_FIXED bytes: a count the data cannot
     * hold is refused before anything is read (or, decoding, allocated). */
    if (cnt > (len - 4) / SESSION_FIXED)
        return false;
    for (uint32_t i = 0; i < cnt; i++) {
        const unsigned char *q = p + off;
        uint32_t n_seqs;
        uint64_t prev;
        if (len - off < SESSION_FIXED)
            return false;
        n_seqs = mr_get_u32(q + 28);
        prev = mr_get_u64(q + 12); /* the floor */
        off += SESSION_FIXED;
        if (mr_get_u32(q) == 0 || n_seqs > MR_SESSION_MAX_SEQS || (len - off) / 8 < n_seqs)
            return false;
        for (uint32_t k = 0; k < n_seqs; k++, off += 8) {
            uint64_t seq = mr_get_u64(p + off);
            if (seq <= prev)
                return false; /* sorted, all above the floor */
            prev = seq;
        }
    }
    *used = off;
    return true;
}

bool mr_sessions_decode(struct mr_node *n, struct mr_group *g, const unsigned char *p,
                        size_t len, size_t *used)
{
    struct mr_session *ss = NULL;
    uint32_t cnt, done = 0;
    size_t off = 4;
    if (!mr_sessions_check(p, len, used))
        return false;
    cnt = mr_get_u32(p);
    if (cnt > 0 && (ss = mr_alloc(n, cnt * sizeof *ss)) == NULL)
        return false;
    for (; done < cnt; done++) {
        struct mr_session *s = &ss[done];
        const unsigned char *q = p + off;
        memset(s, 0, sizeof *s);
        s->node = mr_get_u32(q);
        s->epoch = mr_get_u64(q + 4);
        s->floor = mr_get_u64(q + 12);
        s->expires = mr_get_u64(q + 20);
        s->n_seqs = mr_get_u32(q + 28);
        off += SESSION_FIXED;
        if (s->n_seqs > 0 && (s->seqs = mr_alloc(n, s->n_seqs * sizeof *s->seqs)) == NULL)
            break;
        s->cap_seqs = s->n_seqs;
        for (uint32_t k = 0; k < s->n_seqs; k++, off += 8)
            s->seqs[k] = mr_get_u64(p + off);
    }
    if (done < cnt) { /* out of memory */
        for (uint32_t i = 0; i < done; i++)
            session_free(n, &ss[i]);
        mr_free(n, ss);
        return false;
    }
    mr_sessions_free(n, g);
    g->sessions = ss;
    g->n_sessions = cnt;
    return true;
}
