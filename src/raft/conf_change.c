/*
 * conf_change.c — the compact binary encoding of configuration-change entries.
 * Layout (little endian): u8 version(=1) | u8 type | u64 replica | u32 ctx_len | ctx.
 */
#include "raft_internal.h"

#define CC_VERSION 1

static void put_u64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}
static void put_u32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}
static uint64_t get_u64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}
static uint32_t get_u32(const unsigned char *p)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++)
        v |= (uint32_t)p[i] << (8 * i);
    return v;
}

size_t raft_conf_change_encoded_size(const struct raft_conf_change *cc)
{
    return RAFT_CONF_CHANGE_HEADER_SIZE + cc->context_len;
}

size_t raft_conf_change_encode(const struct raft_conf_change *cc, void *buf)
{
    unsigned char *p = buf;
    p[0] = CC_VERSION;
    p[1] = cc->type;
    put_u64(p + 2, cc->replica);
    put_u32(p + 10, cc->context_len);
    if (cc->context_len > 0)
        memcpy(p + RAFT_CONF_CHANGE_HEADER_SIZE, cc->context, cc->context_len);
    return RAFT_CONF_CHANGE_HEADER_SIZE + cc->context_len;
}

int raft_conf_change_decode(const void *data, size_t len, struct raft_conf_change *out)
{
    const unsigned char *p = data;
    uint32_t clen;
    if (data == NULL || len < RAFT_CONF_CHANGE_HEADER_SIZE || p[0] != CC_VERSION)
        return RAFT_ECORRUPT;
    if (p[1] < RAFT_CC_ADD_VOTER || p[1] > RAFT_CC_ADD_LEARNER)
        return RAFT_ECORRUPT;
    clen = get_u32(p + 10);
    if ((size_t)clen != len - RAFT_CONF_CHANGE_HEADER_SIZE)
        return RAFT_ECORRUPT;
    out->type = p[1];
    out->replica = get_u64(p + 2);
    if (out->replica == RAFT_NONE)
        return RAFT_ECORRUPT;
    out->context_len = clen;
    out->context = clen > 0 ? p + RAFT_CONF_CHANGE_HEADER_SIZE : NULL;
    return RAFT_OK;
}
