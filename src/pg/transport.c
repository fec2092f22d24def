/*
 * transport.c — PLACEHOLDER until the libpq transport lands: single-node only.
 * Sends are dropped (counted nowhere), the inbox is always empty, and waiting is
 * a plain latch wait.
 */
#include "postgres.h"

#include "miscadmin.h"
#include "storage/latch.h"
#include "utils/wait_event.h"

#include "transport.h"

void
transport_init(void)
{
}

void
transport_reload_nodes(void)
{
}

void
transport_send(const struct mr_envelope *env)
{
}

void
transport_wait(long timeout_ms)
{
	(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
					 timeout_ms, PG_WAIT_EXTENSION);
	ResetLatch(MyLatch);
}

void
transport_drain_inbox(void (*fn) (const struct mr_envelope *env, void *arg), void *arg)
{
}

void
transport_shutdown(void)
{
}
