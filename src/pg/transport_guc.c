/*
 * transport_guc.c — configuration parameters of the node-to-node transport.
 *
 * multiraft.cluster_id: every batch carries it and receivers reject batches of
 * another cluster, so two clusters whose node registries got mixed up (a copied
 * postgresql.conf, a reused address) cannot corrupt each other's groups.  Set it
 * to the same value on every node of one cluster; 0 is the default cluster.
 *
 * multiraft.inbox_size: shared memory for received, not yet processed frames
 * (sized at server start).
 *
 * multiraft.adopt_links: whether a receive_stream() backend hands its link to
 * the worker after the handshake (transport_adopt.h).  Off keeps every link in
 * its backend, visible in pg_stat_activity; it applies to links opened after.
 */
#include "postgres.h"

#include "utils/guc.h"

#include "inbox.h"
#include "transport_adopt.h"
#include "wire.h"

int			multiraft_cluster_id = 0;
int			multiraft_inbox_size_kb = 8 * 1024;

void
transport_define_gucs(void)
{
	DefineCustomIntVariable("multiraft.cluster_id",
							"Identity of the multiraft cluster this server belongs to.",
							"The same on every node; messages from another cluster are rejected.",
							&multiraft_cluster_id, 0, 0, PG_INT32_MAX,
							PGC_POSTMASTER, 0, NULL, NULL, NULL);
	/* At least a few of the largest frames must fit. */
	DefineCustomIntVariable("multiraft.inbox_size",
							"Shared memory for messages received from other nodes.",
							"Messages that arrive while it is full are dropped (and counted).",
							&multiraft_inbox_size_kb, 8 * 1024,
							(4 * MR_WIRE_MAX_FRAME) / 1024, 1024 * 1024,
							PGC_POSTMASTER, GUC_UNIT_KB, NULL, NULL, NULL);
	DefineCustomBoolVariable("multiraft.adopt_links",
							 "Whether the worker reads its peers' links itself.",
							 "When on, a node link's backend hands its connection to the worker "
							 "after the handshake (unless it uses TLS or GSS encryption) and exits.",
							 &multiraft_adopt_links, true,
							 PGC_SIGHUP, 0, NULL, NULL, NULL);
}
