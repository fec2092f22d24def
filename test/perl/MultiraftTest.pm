# MultiraftTest — helpers for multi-node multiraft TAP tests on top of
# PostgreSQL::Test::Cluster: start N preloaded nodes that know each other,
# and poll for conditions with a generous bound (never fixed sleeps).
package MultiraftTest;

use strict;
use warnings;
use Exporter 'import';
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use IPC::Run ();
use Test::More;
use Time::HiRes qw(usleep);

our @EXPORT = qw(start_cluster start_cluster_with_group poll_until node_conf transport_counter mr_link
                 restart_after_crash);

# Extra postgresql.conf lines for node $id; %opts may override settings.
sub node_conf
{
	my ($id, %opts) = @_;
	my %conf = (
		shared_preload_libraries => "'multiraft'",
		'multiraft.node_id'      => $id,
		'multiraft.database'     => "'postgres'",
		'multiraft.tick_interval' => '20ms',
		%opts);
	return join('', map { "$_ = $conf{$_}\n" } sort keys %conf);
}

# Start $n nodes named node1..node$n, CREATE EXTENSION on each and register
# every node on every node.  Returns the list of PostgreSQL::Test::Cluster.
sub start_cluster
{
	my ($n, %opts) = @_;
	my @nodes;
	for my $i (1 .. $n)
	{
		my $node = PostgreSQL::Test::Cluster->new("node$i");
		$node->init;
		$node->append_conf('postgresql.conf', node_conf($i, %opts));
		$node->start;
		push @nodes, $node;
	}
	for my $node (@nodes)
	{
		$node->safe_psql('postgres', 'CREATE EXTENSION multiraft');
		for my $i (1 .. $n)
		{
			my $peer = $nodes[ $i - 1 ];
			# Cluster.pm listens on a Unix socket only: libpq takes a directory as host.
			my $host = $peer->host;
			my $port = $peer->port;
			$node->safe_psql('postgres',
				"SELECT multiraft.add_node($i, '$host', $port)");
		}
	}
	return @nodes;
}

# start_cluster(3), then group $group created on node 1 with all three nodes as
# members; returns the nodes once the workers serve and node 3 follows node 1.
sub start_cluster_with_group
{
	my ($group) = @_;
	my @nodes = start_cluster(3);
	ok(poll_until($_, "SELECT value FROM multiraft.stats WHERE name = 'worker_serving'", '1'),
		'the worker serves')
	  for @nodes;
	$nodes[0]->safe_psql('postgres', "SELECT multiraft.create_group($group, ARRAY[1, 2, 3])");
	ok(poll_until($nodes[2],
			"SELECT leader_node_id FROM multiraft.groups WHERE group_id = $group", '1'),
		"group $group led by node 1, as node 3 sees it");
	return @nodes;
}

# Poll $query on $node until it returns $expected, for at most $timeout seconds.
# Returns true on success; the last value is reported on failure.
sub poll_until
{
	my ($node, $query, $expected, $timeout) = @_;
	$timeout //= $PostgreSQL::Test::Utils::timeout_default;
	my $last = '';
	my $deadline = time() + $timeout;
	while (time() < $deadline)
	{
		# An error (e.g. a replica not created yet: "group N does not exist") only
		# means "not yet"; the last error is reported if the bound runs out.
		my ($ret, $out, $err) = $node->psql('postgres', $query);
		$last = $ret == 0 ? $out : "ERROR: $err";
		return 1 if $ret == 0 && $out eq $expected;
		usleep(50_000);
	}
	Test::More::diag("poll_until: '$query' gave '$last', expected '$expected'");
	return 0;
}


# A node-wide transport counter of $node (multiraft._transport_stats()).
sub transport_counter
{
	my ($node, $name) = @_;
	return $node->safe_psql('postgres',
		"SELECT value FROM multiraft._transport_stats() WHERE name = '$name'");
}

# test/tools/mr_link against $node, playing a peer's worker: @args are its
# FROM_NODE TO_NODE CLUSTER_ID and options/frames; returns its one-line answer.
sub mr_link
{
	my ($node, @args) = @_;
	my $tool = ($ENV{TESTDIR} // '.') . '/test/tools/mr_link';
	my $conninfo = 'host=' . $node->host . ' port=' . $node->port . ' dbname=postgres';
	my ($out, $err);
	IPC::Run::run([ $tool, $conninfo, @args ], '>', \$out, '2>', \$err);
	chomp $out;
	return $out || "stderr: $err";
}

# Starts $node again after kill -9 (true once it runs).
sub restart_after_crash
{
	my ($node) = @_;
	# Orphaned backends of the killed postmaster release shared memory in a moment.
	# A container's init may never reap the killed postmaster: a zombie keeps its
	# pid "alive" for the lock file check, so a lock file of a dead or zombie
	# process is removed first.
	my $pidfile = $node->data_dir . '/postmaster.pid';
	for (1 .. 60)
	{
		if (open(my $fh, '<', $pidfile))
		{
			my $pid = <$fh>;
			close($fh);
			chomp($pid) if defined $pid;
			my $state = '';
			if (defined $pid && open(my $st, '<', "/proc/$pid/stat"))
			{
				my $line = <$st>;
				close($st);
				$state = (split(' ', $line))[2] // '';
			}
			unlink($pidfile) if $state eq '' || $state eq 'Z';
		}
		$node->{_pid} = undef;
		return 1 if $node->start(fail_ok => 1);
		usleep(500_000);
	}
	return 0;
}

1;
