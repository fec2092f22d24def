/* sim_net.c — simulated network: latency, loss, duplication, partitions (sim_net.h). */
#include "sim_net.h"

#include <stdlib.h>
#include <string.h>

void sim_net_init(struct sim_net *net, struct sim_rng *rng,
                  void *(*copy_payload)(void *ctx, const void *payload),
                  void (*free_payload)(void *ctx, void *payload), void *ctx)
{
    memset(net, 0, sizeof *net);
    net->rng = rng;
    net->copy_payload = copy_payload;
    net->free_payload = free_payload;
    net->ctx = ctx;
    net->prof.min_delay = 1;
    net->prof.max_delay = 5;
    net->prof.spike_delay = 40;
}

void sim_net_destroy(struct sim_net *net)
{
    for (size_t i = 0; i < net->n; i++)
        net->free_payload(net->ctx, net->heap[i].payload);
    free(net->heap);
    net->heap = NULL;
    net->n = net->cap = 0;
}

static bool before(const struct sim_packet *a, const struct sim_packet *b)
{
    return a->deliver_at < b->deliver_at || (a->deliver_at == b->deliver_at && a->seq < b->seq);
}

static void heap_push(struct sim_net *net, const struct sim_packet *p)
{
    if (net->n == net->cap) {
        size_t nc = net->cap ? net->cap * 2 : 256;
        struct sim_packet *nh = realloc(net->heap, nc * sizeof *nh);
        if (nh == NULL)
            abort();
        net->heap = nh;
        net->cap = nc;
    }
    size_t i = net->n++;
    net->heap[i] = *p;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!before(&net->heap[i], &net->heap[parent]))
            break;
        struct sim_packet t = net->heap[i];
        net->heap[i] = net->heap[parent];
        net->heap[parent] = t;
        i = parent;
    }
}

static void heap_pop(struct sim_net *net, struct sim_packet *out)
{
    *out = net->heap[0];
    net->heap[0] = net->heap[--net->n];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < net->n && before(&net->heap[l], &net->heap[m]))
            m = l;
        if (r < net->n && before(&net->heap[r], &net->heap[m]))
            m = r;
        if (m == i)
            break;
        struct sim_packet t = net->heap[i];
        net->heap[i] = net->heap[m];
        net->heap[m] = t;
        i = m;
    }
}

static uint64_t latency(struct sim_net *net)
{
    const struct sim_net_profile *p = &net->prof;
    if (p->spike_ppm && sim_rng_ppm(net->rng, p->spike_ppm))
        return sim_rng_range(net->rng, p->max_delay, p->spike_delay > p->max_delay ? p->spike_delay : p->max_delay);
    return sim_rng_range(net->rng, p->min_delay, p->max_delay);
}

int sim_net_send(struct sim_net *net, uint64_t now, uint32_t from, uint32_t to, void *payload)
{
    net->st.sent++;
    struct sim_packet p = {.deliver_at = now + latency(net), .seq = net->next_seq++,
                           .from = from, .to = to, .payload = payload};
    if (net->prof.drop_ppm && sim_rng_ppm(net->rng, net->prof.drop_ppm)) {
        net->st.dropped_send++;
        p.lost = true;
        heap_push(net, &p);
        return 0;
    }
    int copies = 1;
    if (net->prof.dup_ppm && sim_rng_ppm(net->rng, net->prof.dup_ppm)) {
        struct sim_packet d = p;
        d.payload = net->copy_payload(net->ctx, payload);
        d.deliver_at = now + latency(net);
        d.seq = net->next_seq++;
        heap_push(net, &d);
        net->st.duplicated++;
        copies = 2;
    }
    heap_push(net, &p);
    return copies;
}

bool sim_net_next_time(const struct sim_net *net, uint64_t *t)
{
    if (net->n == 0)
        return false;
    *t = net->heap[0].deliver_at;
    return true;
}

bool sim_net_pop(struct sim_net *net, struct sim_packet *out, bool *lost)
{
    if (net->n == 0)
        return false;
    heap_pop(net, out);
    *lost = out->lost || net->blocked[out->from][out->to];
    if (!out->lost && *lost)
        net->st.dropped_partition++;
    else if (!*lost)
        net->st.delivered++;
    return true;
}

void sim_net_free_payload(struct sim_net *net, void *payload)
{
    net->free_payload(net->ctx, payload);
}

void sim_net_block(struct sim_net *net, uint32_t from, uint32_t to, bool symmetric)
{
    net->blocked[from][to] = true;
    if (symmetric)
        net->blocked[to][from] = true;
}

void sim_net_unblock(struct sim_net *net, uint32_t from, uint32_t to, bool symmetric)
{
    net->blocked[from][to] = false;
    if (symmetric)
        net->blocked[to][from] = false;
}

void sim_net_heal_all(struct sim_net *net)
{
    memset(net->blocked, 0, sizeof net->blocked);
}

bool sim_net_is_blocked(const struct sim_net *net, uint32_t from, uint32_t to)
{
    return net->blocked[from][to];
}
