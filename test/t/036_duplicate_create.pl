# One group id created on two nodes that never heard of each other's call: the
# misuse the contract rules out (create_group is called once), which neither node
# can refuse alone.  Node 1 creates group 80 while nodes 2 and 3 are down; then node
# 2 creates it while nodes 1 and 3 are down.  Each starts a group of its own, with
# replica 1 on itself and the other as replica 2.  When they meet, each one's
# messages address a higher replica id on the other node, which used to replace the
# other's replica — dropping it and every command committed in it.  Now both keep
# their replicas, count the refused messages and say so in the server log.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use MultiraftTest;

my @n = start_cluster(3);
sub sql { my ($i, $q) = @_; return $n[$i]->safe_psql('postgres', $q); }
ok(poll_until($_, "SELECT value FROM multiraft.stats WHERE name = 'worker_serving'", '1'), 'the worker serves') for @n;

$n[$_]->stop('immediate') for (1, 2);
sql(0, "SELECT multiraft.create_group(80, ARRAY[1, 2, 3])");
ok(poll_until($n[0], "SELECT array_length(voters, 1) FROM multiraft.status(80)", '2'),
	'node 1 creates group 80 and adds node 2 alone');
$n[0]->stop('immediate');

$n[1]->start;
ok(poll_until($n[1], "SELECT value FROM multiraft.stats WHERE name = 'worker_serving'", '1'),
	'node 2 serves');
sql(1, "SELECT multiraft.create_group(80, ARRAY[1, 2, 3])");
ok(poll_until($n[1], "SELECT array_length(voters, 1) FROM multiraft.status(80)", '2'),
	'node 2 creates group 80 too and adds node 1 alone');

my $log_offset = -s $n[0]->logfile;
$n[0]->start;
for my $i (0, 1)
{
	ok(poll_until($n[$i], "SELECT value > 0 FROM multiraft.stats WHERE name = 'replica_conflicts'", 't'),
		'node ' . ($i + 1) . ' refuses the other group\'s messages');
	is(sql($i, "SELECT replica_id FROM multiraft.status(80)"), '1',
		'node ' . ($i + 1) . ' keeps its own replica 1');
	is(sql($i, "SELECT count(*) FROM multiraft.events
	            WHERE group_id = 80 AND event_type = 'group_removed'"), '0',
		'node ' . ($i + 1) . ' never dropped it');
}
ok($n[0]->wait_for_log(qr/refused \d+ messages? for group 80 .*whose replica ids contradict/, $log_offset),
	'node 1 says so in its log');

$_->stop for @n[0, 1];
done_testing();
