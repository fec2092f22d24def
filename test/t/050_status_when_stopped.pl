# The status the worker publishes goes with it: once it exits, multiraft.status
# says "raft processing stopped" and multiraft.groups is empty, until a worker
# serves again.  It used to keep every group's last status, a leader among
# them, while multiraft.stats said that no worker served.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use MultiraftTest;

my ($node) = start_cluster(1);
ok(poll_until($node, "SELECT value FROM multiraft.stats WHERE name = 'worker_serving'", '1'),
	'the worker serves');
$node->safe_psql('postgres', 'SELECT multiraft.create_group(1, ARRAY[1])');
ok(poll_until($node, 'SELECT role FROM multiraft.status(1)', 'leader'), 'node 1 leads group 1');

# The postmaster is stopped, so that no worker starts again while we look.
my $bg = $node->background_psql('postgres', on_error_stop => 0);
my $postmaster = $node->{_pid};
# (a test that dies while the postmaster is stopped must not hang the teardown)
END { kill 'CONT', $postmaster if defined $postmaster; }
kill 'STOP', $postmaster;
$bg->query_safe("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE backend_type = 'multiraft worker'");
my $gone = 0;
for (1 .. 600)
{
	if ($bg->query("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'multiraft worker'") eq '0')
	{
		$gone = 1;
		last;
	}
	select(undef, undef, undef, 0.05);
}
ok($gone, 'the worker exited');
$bg->query('SELECT role FROM multiraft.status(1)');
like($bg->{stderr}, qr/raft processing stopped/, 'status() says raft processing stopped');
is($bg->query('SELECT count(*) FROM multiraft.groups'), '0', 'the groups view is empty');
is($bg->query("SELECT value FROM multiraft.stats WHERE name = 'worker_serving'"), '0',
	'stats say no worker serves');
kill 'CONT', $postmaster;
$bg->quit;

ok(poll_until($node, 'SELECT role FROM multiraft.status(1)', 'leader'),
	'a new worker publishes the status again');
$node->stop;
done_testing();
