# A node that lags by about 1 MB in each of 80 groups led by one node catches up.
# Each leader probes it with one APPEND of up to 1 MB, all 80 in one envelope to
# that node, over the limit of a Batch (64 MB + 2 x max_command_size): the sender
# dropped it whole at every heartbeat's answer, for good (found by a review); it
# sends it in parts now (transport.c, send_parts).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use MultiraftTest;

my $G = 80;
my @n = start_cluster(3);
sub sql { my ($i, $q) = @_; return $n[$i]->safe_psql('postgres', $q); }
ok(poll_until($_, "SELECT value FROM multiraft.stats WHERE name = 'worker_serving'", '1'),
	'the worker serves') for @n;
sql(0, "SELECT multiraft.create_group(g, ARRAY[1, 2, 3]) FROM generate_series(1, $G) g");
ok(poll_until($n[0], "SELECT count(*) FROM multiraft.groups WHERE leader_node_id IS NOT NULL", $G),
	'every group has a leader');
for my $g (1 .. $G)
{
	sql(0, "SELECT multiraft.transfer_leadership($g, 1)")
	  if sql(0, "SELECT leader_node_id FROM multiraft.status($g)") ne '1';
}
ok(poll_until($n[0], "SELECT count(*) FROM multiraft.groups WHERE leader_node_id = 1", $G),
	'node 1 leads every group');

$n[2]->stop;
# One command of about 1 MB per group, one at a time: each envelope to node 2
# carries one of them.
my %index;
$index{$_} = sql(0, "SELECT multiraft.submit($_, convert_to(repeat('x', 1000000), 'UTF8'), "
	  . "'big-$_', 30000)") for 1 .. $G;
$n[2]->start;
# Node 3 catches up by entries or, where the leader no longer holds them, by a
# snapshot (which records no command event): its applied index is what counts.
my $values = join(', ', map { "($_, $index{$_})" } 1 .. $G);
ok(poll_until($n[2],
		"SELECT count(*) FROM multiraft.groups g JOIN (VALUES $values) v(group_id, idx) "
		  . "USING (group_id) WHERE g.applied_index >= v.idx", $G),
	'node 3 applies every group\'s command after its restart');
my $drops = () = slurp_file($n[0]->logfile) =~ /dropping a message/g;
is($drops, 0, 'no envelope was dropped as too large');
ok(sql(0, "SELECT value FROM multiraft.stats WHERE name = 'transport_envelopes_split'") > 0,
	'node 1 sent envelopes in parts');
done_testing();
