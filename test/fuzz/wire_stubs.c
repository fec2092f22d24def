/*
 * wire_stubs.c — the few PostgreSQL server symbols src/pg/wire.c uses, so that
 * the fuzz target fuzz_wire can run it without a server (wire_stubs.h).
 *
 * Memory: the server runs wire.c in a short-lived memory context and deletes it
 * after each frame.  Here every palloc'd chunk is its own malloc() block (so
 * that AddressSanitizer sees each chunk's bounds), linked into one list that
 * wire_stubs_reset() frees after each input.  The link sits in a header before
 * the chunk, poisoned under AddressSanitizer so that a read just before a chunk
 * is still reported.  GetMemoryChunkSpace() charges what PostgreSQL 15's
 * AllocSet (the server's contexts) would: the request rounded up to a power of
 * two (at least 8) up to 8 kB, MAXALIGN'd above, plus a 16-byte chunk header,
 * so that wire.c's decode budget refuses the same frames as in the server.
 *
 * Whatever would raise an ERROR in the server (a request above MaxAllocSize
 * without MCXT_ALLOC_HUGE, out of memory without MCXT_ALLOC_NO_OOM) aborts: wire.h
 * promises that no function there throws on bad input.
 *
 * Under MemorySanitizer, the chunks MemoryContextAllocExtended() returns are
 * marked initialised: wire.c allocates through it only what protobuf-c fills
 * (its allocator, and pack_batch()'s output), and protobuf-c is the system's
 * uninstrumented library, whose writes MemorySanitizer does not see.  palloc'd
 * chunks (what wire.c itself fills) stay checked.
 */
#define _GNU_SOURCE
#include "postgres.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "lib/stringinfo.h"
#include "utils/memutils.h"

#include "guc.h"
#include "wire_stubs.h"

/* port.h sends these to libpgport, which the fuzz target does not link. */
#undef vsnprintf
#undef snprintf
#undef vfprintf
#undef fprintf

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#include <sanitizer/asan_interface.h>
#define HDR_POISON(h) ASAN_POISON_MEMORY_REGION((h), sizeof(struct chunk_hdr))
#define HDR_UNPOISON(h) ASAN_UNPOISON_MEMORY_REGION((h), sizeof(struct chunk_hdr))
#endif
#if __has_feature(memory_sanitizer)
#include <sanitizer/msan_interface.h>
#define FILLED_BY_PROTOBUF_C(p, n) __msan_unpoison((p), (n))
#endif
#endif
#ifndef HDR_POISON
#define HDR_POISON(h) ((void)0)
#define HDR_UNPOISON(h) ((void)0)
#endif
#ifndef FILLED_BY_PROTOBUF_C
#define FILLED_BY_PROTOBUF_C(p, n) ((void)0)
#endif

/* The GUCs wire.c reads, at their defaults (src/pg/guc.c). */
int multiraft_max_command_size = 1024 * 1024;

MemoryContext CurrentMemoryContext = NULL;

/* 32 bytes: keeps the chunk 16-aligned like malloc's blocks. */
struct chunk_hdr {
    struct chunk_hdr *prev;
    struct chunk_hdr *next;
    Size space;     /* what GetMemoryChunkSpace() answers */
    Size magic;
};

#define CHUNK_MAGIC ((Size)0x5749524553545542) /* "WIRESTUB" */
#define AS_HDR(p) ((struct chunk_hdr *)((char *)(p) - sizeof(struct chunk_hdr)))

static struct chunk_hdr *chunks;    /* live chunks, newest first */

static void die(const char *what, Size size)
{
    fprintf(stderr, "wire_stubs: %s (%zu bytes) — in the server this would raise an ERROR\n",
            what, (size_t)size);
    abort();
}

/* PostgreSQL 15 aset.c: AllocSetAlloc's rounding, AllocSetGetChunkSpace's answer. */
static Size allocset_space(Size size)
{
    const Size chunk_limit = 8192; /* ALLOC_CHUNK_LIMIT */
    const Size chunk_hdr = 16;     /* ALLOC_CHUNKHDRSZ */
    Size rounded = 8;

    if (size > chunk_limit)
        return MAXALIGN(size) + chunk_hdr;
    while (rounded < size)
        rounded <<= 1;
    return rounded + chunk_hdr;
}

static void *chunk_alloc(Size size, int flags)
{
    struct chunk_hdr *h;

    if (!((flags & MCXT_ALLOC_HUGE) ? AllocHugeSizeIsValid(size) : AllocSizeIsValid(size)))
        die("invalid memory alloc request size", size);
    h = malloc(sizeof(*h) + (size > 0 ? size : 1));
    if (h == NULL) {
        if (flags & MCXT_ALLOC_NO_OOM)
            return NULL;
        die("out of memory", size);
    }
    h->prev = NULL;
    h->next = chunks;
    h->space = allocset_space(size);
    h->magic = CHUNK_MAGIC;
    if (chunks != NULL) {
        HDR_UNPOISON(chunks);
        chunks->prev = h;
        HDR_POISON(chunks);
    }
    chunks = h;
    HDR_POISON(h);
    if (flags & MCXT_ALLOC_ZERO)
        memset(h + 1, 0, size);
    return h + 1;
}

static struct chunk_hdr *chunk_of(void *p, const char *caller)
{
    struct chunk_hdr *h = AS_HDR(p);

    HDR_UNPOISON(h);
    if (h->magic != CHUNK_MAGIC) {
        fprintf(stderr, "wire_stubs: %s(%p): not a palloc'd chunk\n", caller, p);
        abort();
    }
    return h;
}

void *MemoryContextAllocExtended(MemoryContext context, Size size, int flags)
{
    void *p;

    (void)context;
    p = chunk_alloc(size, flags);
    if (p != NULL)
        FILLED_BY_PROTOBUF_C(p, size);
    return p;
}

void *palloc(Size size)
{
    return chunk_alloc(size, 0);
}

void *palloc0(Size size)
{
    return chunk_alloc(size, MCXT_ALLOC_ZERO);
}

void pfree(void *p)
{
    struct chunk_hdr *h = chunk_of(p, "pfree");

    if (h->prev != NULL) {
        HDR_UNPOISON(h->prev);
        h->prev->next = h->next;
        HDR_POISON(h->prev);
    } else
        chunks = h->next;
    if (h->next != NULL) {
        HDR_UNPOISON(h->next);
        h->next->prev = h->prev;
        HDR_POISON(h->next);
    }
    h->magic = 0;
    free(h);
}

Size GetMemoryChunkSpace(void *p)
{
    struct chunk_hdr *h = chunk_of(p, "GetMemoryChunkSpace");
    Size space = h->space;

    HDR_POISON(h);
    return space;
}

void wire_stubs_reset(void)
{
    while (chunks != NULL) {
        struct chunk_hdr *h = chunks;

        HDR_UNPOISON(h);
        chunks = h->next;
        free(h);
    }
}

/* ---------------------------------------------------------------- strings */

static char *vformat(const char *fmt, va_list ap)
{
    va_list ap2;
    int n;
    char *s;

    va_copy(ap2, ap);
    n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0)
        die("vsnprintf failed", 0);
    s = palloc((Size)n + 1);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    return s;
}

char *psprintf(const char *fmt, ...)
{
    va_list ap;
    char *s;

    va_start(ap, fmt);
    s = vformat(fmt, ap);
    va_end(ap);
    return s;
}

void initStringInfo(StringInfo str)
{
    str->maxlen = 1024;
    str->data = palloc(str->maxlen);
    str->data[0] = '\0';
    str->len = 0;
    str->cursor = 0;
}

void appendStringInfoString(StringInfo str, const char *s)
{
    size_t n = strlen(s);

    if ((size_t)str->len + n + 1 > (size_t)str->maxlen) {
        size_t newlen = (size_t)str->maxlen * 2;
        char *data;

        while ((size_t)str->len + n + 1 > newlen)
            newlen *= 2;
        if (newlen > MaxAllocSize)
            die("out of memory: StringInfo would exceed MaxAllocSize", newlen);
        data = palloc(newlen);
        memcpy(data, str->data, (size_t)str->len + 1);
        pfree(str->data);
        str->data = data;
        str->maxlen = (int)newlen;
    }
    memcpy(str->data + str->len, s, n + 1);
    str->len += (int)n;
}

void appendStringInfo(StringInfo str, const char *fmt, ...)
{
    va_list ap;
    char *s;

    va_start(ap, fmt);
    s = vformat(fmt, ap);
    va_end(ap);
    appendStringInfoString(str, s);
    pfree(s);
}
