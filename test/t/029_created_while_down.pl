# A group created while its other members are down.  The creator, a configuration
# of one, adds node 2 alone and then needs node 2 for every quorum; it steps down
# when it does not hear it.  No leader has reached node 2, so node 2 has no
# replica of the group: when it comes back, the creator's vote requests create
# one (docs/sim-findings.md, finding 16), it votes, and the group gets its leader
# and its third member.  Before, those requests were dropped for an unknown group
# and the group never had a leader again.
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
sql(0, "SELECT multiraft.create_group(70, ARRAY[1, 2, 3])");
ok(poll_until($n[0], "SELECT array_length(voters, 1) FROM multiraft.status(70)", '2'),
	'the creator adds node 2 alone');
ok(poll_until($n[0], "SELECT leader_node_id IS NULL FROM multiraft.status(70)", 't'),
	'and steps down without it');

$n[$_]->start for (1, 2);
for my $i (0 .. 2)
{
	ok(poll_until($n[$i], "SELECT array_length(voters, 1) || ':' || (leader_node_id IS NOT NULL)
	                       FROM multiraft.status(70)", '3:true'),
		'node ' . ($i + 1) . ' has the three voters and a leader');
}
my $index = sql(1, "SELECT multiraft.submit(70, '\\x01'::bytea, 'after')");
ok(poll_until($n[2], "SELECT applied_index >= $index FROM multiraft.status(70)", 't'),
	'a command submitted on node 2 reaches node 3');

$_->stop for @n;
done_testing();
