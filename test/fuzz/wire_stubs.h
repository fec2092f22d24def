/*
 * wire_stubs.h — the stand-in for the PostgreSQL server under src/pg/wire.c in
 * the fuzz target fuzz_wire (test/fuzz/wire_stubs.c): palloc & co. allocate in
 * one short-lived "memory context", which wire_stubs_reset() empties, as the
 * server deletes the context a frame was decoded in.
 */
#ifndef MULTIRAFT_WIRE_STUBS_H
#define MULTIRAFT_WIRE_STUBS_H

/* Frees every chunk allocated since the last reset. */
void wire_stubs_reset(void);

#endif
