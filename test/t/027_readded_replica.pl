# A node removed from a group and added back at once gets a new replica, which
# the leader brings up from its last snapshot — taken before the removal — and
# the log after it.  The new replica thus applies entries the old one already
# applied on this node, the removal of the old replica among them.  Exactly-once
# is per node: the command ids the old replica applied are kept (the group lives
# on), so none of those entries produces a second event here.  The batch that
# removed the old replica used to drop its own records, and the new replica then
# announced its predecessor's removal a second time (found by test/chaos, seed
# 2026).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use MultiraftTest;

my @n = start_cluster_with_group(50);
sub sql { my ($i, $q) = @_; return $n[$i]->safe_psql('postgres', $q); }
my $before = sql(0, "SELECT multiraft.submit(50, '\\x01'::bytea, 'before')");
# Quiescing compacts the leader's in-memory log: its snapshot is now taken here.
ok(poll_until($n[0], "SELECT quiesced FROM multiraft.groups WHERE group_id = 50", 't'), 'group 50 quiesced');

# Then, without a pause that would let the group quiesce again: a command, the
# removal of node 3 and its addition.
my ($x, $removed, $added) = split /\|/, sql(0,
	"SELECT multiraft.submit(50, '\\x02'::bytea, 'x'),
	        multiraft.change_membership(50, 'remove_voter', 3, NULL, 'out-3'),
	        multiraft.change_membership(50, 'add_voter', 3, NULL, 'in-3')");
ok($x < $removed && $removed < $added, "x at $x, node 3 removed at $removed, added at $added");
ok(poll_until($n[2], "SELECT applied_index >= $added FROM multiraft.status(50)", 't'),
	'the new replica on node 3 catches up');
is(sql(2, "SELECT count(*) FROM multiraft.events WHERE group_id = 50 AND event_type = 'snapshot_applied'"),
	'1', 'it started from a snapshot');
is(sql(2, "SELECT count(*) FROM multiraft.events WHERE group_id = 50 AND event_type = 'group_removed'"),
	'1', 'node 3 saw its old replica removed');
is(sql(2, "SELECT string_agg(coalesce(command_id, event_type) || '\@' || log_index, ' ' ORDER BY event_id)
           FROM multiraft.events WHERE group_id = 50 AND log_index > 1 AND event_type <> 'snapshot_applied'"),
	"before\@$before x\@$x out-3\@$removed group_removed\@$removed in-3\@$added",
	'each entry announced once on node 3, across both of its replicas');
is(sql(2, "SELECT count(*) FROM multiraft.dedup WHERE group_id = 50 AND command_id IN ('x', 'out-3', 'in-3')"),
	'3', 'node 3 keeps the command ids of both replicas');

$_->stop for @n;
done_testing();
