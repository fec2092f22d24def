# multiraft.max_groups holds under concurrent create_group calls: the calling
# backends check the published count, but all of them can pass that check
# before any group is published; the worker, which creates them one at a time,
# refuses the rest.  Groups past the limit used to be created without a
# status row: no SQL function could reach or remove them.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use MultiraftTest;

my ($node) = start_cluster(1, 'multiraft.max_groups' => 2);
sub sql { return $node->safe_psql('postgres', $_[0]); }

ok(poll_until($node, "SELECT value FROM multiraft.stats WHERE name = 'worker_serving'", '1'),
	'the worker serves');
sql("SELECT multiraft.create_group(1, ARRAY[1])");

# Six sessions wait on a lock, then all create a group at once.
my $gate = $node->background_psql('postgres');
$gate->query_safe('SELECT pg_advisory_lock(42)');
my @s;
for my $g (11 .. 16)
{
	my $b = $node->background_psql('postgres', on_error_stop => 0);
	$b->query_until(qr/started/, "\\echo started\n"
		  . "WITH gate AS MATERIALIZED (SELECT pg_advisory_lock_shared(42) x) "
		  . "SELECT 'created ' || $g FROM gate, multiraft.create_group($g, ARRAY[1]);\n"
		  . "\\echo done $g\n");
	push @s, $b;
}
ok(poll_until($node, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted", '6'),
	'six create_group calls wait at the gate');
$gate->query_safe('SELECT pg_advisory_unlock(42)');
my ($created, $refused) = (0, 0);
for my $i (0 .. 5)
{
	my $g = 11 + $i;
	pump_until($s[$i]->{run}, $s[$i]->{timeout}, \$s[$i]->{stdout}, qr/done $g/);
	$created++ if $s[$i]->{stdout} =~ /created $g/;
	$refused++ if $s[$i]->{stderr} =~ /multiraft\.max_groups \(2\) groups/;
	$s[$i]->quit;
}
$gate->quit;
is($created, 1, 'one of them creates its group');
is($refused, 5, 'the others are refused for multiraft.max_groups');
is(sql("SELECT count(*) FROM multiraft.group_meta"), '2', 'two groups are stored');
is(sql("SELECT count(*) FROM multiraft.groups"), '2', 'and both are visible');

# Lowered below what the node holds: the groups past it would run unseen (the
# status rows are sized by it), every SQL function saying they do not exist.
# The worker stays idle with a clear message instead.
$node->append_conf('postgresql.conf', "multiraft.max_groups = 1\n");
$node->restart;
ok($node->wait_for_log(qr/multiraft worker idle: node 1 holds 2 groups, more than multiraft\.max_groups \(1\)/),
	'a node holding more groups than max_groups says so');
is(sql("SELECT value FROM multiraft.stats WHERE name = 'worker_serving'"), '0', 'and does not serve');
$node->append_conf('postgresql.conf', "multiraft.max_groups = 2\n");
$node->restart;
ok(poll_until($node, "SELECT value FROM multiraft.stats WHERE name = 'worker_serving'", '1'),
	'raised again, it serves');
is(sql("SELECT count(*) FROM multiraft.groups"), '2', 'both groups again');

$node->stop;
done_testing();
