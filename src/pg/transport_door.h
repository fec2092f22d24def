/*
 * transport_door.h — the receive side's door, shared by the two ways a frame
 * reaches this node: multiraft.receive() (one frame per call, for tools and
 * tests) and multiraft.receive_stream() (one frame per CopyData message, what
 * the peers' workers use).
 */
#ifndef MULTIRAFT_TRANSPORT_DOOR_H
#define MULTIRAFT_TRANSPORT_DOOR_H

#include "wire.h"

/*
 * Validates one frame (decoding it completely) and copies it into the inbox,
 * then wakes the worker.  expect_from: the only sender node accepted (0: any).
 * Returns WIRE_OK also when a full inbox dropped the frame (counted: Raft
 * recovers from lost messages); otherwise the frame is rejected, counted, and
 * *err says why.  Never raises an error for the frame's contents.
 */
extern WireResult door_admit(const char *data, size_t len, uint32 expect_from, char **err);

/* The SQLSTATE for a rejected frame. */
extern int	door_errcode(WireResult r);

#endif
