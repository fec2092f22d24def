# remove_group with commands still waiting: a command proposed after the removal
# entry fails with "raft group deleted" once the removal commits, the removal
# itself returns, both members record group_removed and drop the group's rows.
# Two nodes (the group needs its second member to commit anything).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use MultiraftTest;

my @n = start_cluster(2);
sub sql { my ($i, $q) = @_; return $n[$i]->safe_psql('postgres', $q); }
# The workers notice CREATE EXTENSION within a second.
ok(poll_until($_, "SELECT value FROM multiraft.stats WHERE name = 'worker_serving'", '1'), 'the worker serves') for @n;

sql(0, "SELECT multiraft.create_group(1, ARRAY[1, 2])");
ok(poll_until($n[1], "SELECT count(*) FROM multiraft.groups WHERE group_id = 1", '1', 60),
	'the group reaches node 2');
ok(poll_until($n[0], "SELECT voters FROM multiraft.status(1)", '{1,2}', 60), 'both are voters');
ok(poll_until($n[0], "SELECT leader_node_id IS NOT NULL FROM multiraft.status(1)", 't', 60), 'a leader');
my $i1 = sql(0, "SELECT multiraft.submit(1, '\\x01'::bytea, 'first')");
ok($i1 > 0, 'a command commits with both members');

# Without node 2 nothing commits: the removal and a later command both wait.
my $last = sql(0, "SELECT last_index FROM multiraft.status(1)");
$n[1]->stop('fast');
my $remover = $n[0]->background_psql('postgres', on_error_stop => 0);
$remover->query_until(qr/removing/, "\\echo removing\nSELECT multiraft.remove_group(1);\n");
my $waiter = $n[0]->background_psql('postgres', on_error_stop => 0);
# The removal entry is in node 1's log before the command is proposed.
ok(poll_until($n[0], "SELECT last_index > $last FROM multiraft.status(1)", 't', 60),
	'the removal is appended and waits');
$waiter->query_until(qr/submitting/, "\\echo submitting\nSELECT multiraft.submit(1, '\\x02'::bytea, 'late', 60000);\n");
ok(poll_until($n[0], "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT multiraft.submit(1, %late%'", '1'),
	'a later submit is waiting');

$n[1]->start;
ok(poll_until($n[0], "SELECT count(*) FROM multiraft.events WHERE group_id = 1 AND event_type = 'group_removed'", '1', 60),
	'node 1 records group_removed');
# The follower learns of the removal even when the leader dropped the group before
# any message carried the new commit index (the leader repeats a "group removed"
# notice with its heartbeats; a replica that still talks about the group is told).
ok(poll_until($n[1], "SELECT count(*) FROM multiraft.events WHERE group_id = 1 AND event_type = 'group_removed'", '1', 60),
	'node 2 records group_removed');

my ($out, $ret) = $waiter->query('SELECT 1');
my $err = $waiter->{stderr};
like($err, qr/raft group deleted/, 'the waiting submit fails with "raft group deleted"');
$remover->quit;
$waiter->quit;

for my $i (0, 1)
{
	ok(poll_until($n[$i], "SELECT count(*) FROM multiraft.groups WHERE group_id = 1", '0', 60),
		'node ' . ($i + 1) . ' dropped the group');
	is(sql($i, "SELECT (SELECT count(*) FROM multiraft.group_meta WHERE group_id = 1)
	                 + (SELECT count(*) FROM multiraft.log WHERE group_id = 1)
	                 + (SELECT count(*) FROM multiraft.dedup WHERE group_id = 1)"), '0',
		'node ' . ($i + 1) . ' deleted its rows');
	is(sql($i, "SELECT count(*) FROM multiraft.events WHERE group_id = 1 AND command_id = 'late'"), '0',
		'node ' . ($i + 1) . ' has no event for the late command');
	is(sql($i, "SELECT min_replica_id FROM multiraft.tombstone WHERE group_id = 1"), '-1',
		'node ' . ($i + 1) . ' keeps a tombstone');
}
# Each tombstone names the group it removed (its incarnation), the same on both.
my @inc = map { sql($_, "SELECT incarnation FROM multiraft.tombstone WHERE group_id = 1") } (0, 1);
ok($inc[0] ne '0' && $inc[0] eq $inc[1], "both tombstones keep the group's incarnation ($inc[0])");

$_->stop for @n;
done_testing();
