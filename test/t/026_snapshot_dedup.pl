# A member that joins after the log was compacted gets a snapshot: the leader's
# storage callback packs its command-id records into the snapshot, the new
# member's storage replaces its records with them, and a duplicate of a command
# applied before the member joined is then refused on both members alike.
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

sql(0, "SELECT multiraft.create_group(1, ARRAY[1])");
ok(poll_until($n[0], "SELECT role FROM multiraft.status(1)", 'leader'), 'group 1 led by node 1');
sql(0, "DO \$\$ BEGIN FOR i IN 1..300 LOOP
          PERFORM multiraft.submit(1, int4send(i), 'c' || i);
        END LOOP; END \$\$");
my $start = sql(0, "SELECT log_start_index FROM multiraft.group_meta WHERE group_id = 1");
cmp_ok($start, '>', 1, "node 1 compacted its log (log start $start)");
my $c5 = sql(0, "SELECT log_index FROM multiraft.events WHERE command_id = 'c5'");

my $ix = sql(0, "SELECT multiraft.change_membership(1, 'add_voter', 2)");
ok($ix > 0, 'node 2 added as a voter');
ok(poll_until($n[1], "SELECT count(*) FROM multiraft.events WHERE group_id = 1 AND event_type = 'snapshot_applied'", '1', 60),
	'node 2 installs a snapshot');
ok(poll_until($n[1], "SELECT applied_index >= $ix FROM multiraft.status(1)", 't', 60), 'node 2 catches up');
my $dedup = "SELECT count(*) || '/' || md5(string_agg(encode(command_id, 'hex') || ':' || log_index, ',' ORDER BY command_id))
               FROM multiraft.dedup WHERE group_id = 1";
is(sql(1, $dedup), sql(0, $dedup),
	'node 2 holds the same command-id records as node 1 (snapshot + entries after it)');
is(sql(1, "SELECT log_index FROM multiraft.dedup WHERE group_id = 1 AND command_id = 'c5'::bytea"), $c5,
	'with their first indexes');
cmp_ok(sql(1, "SELECT log_start_index FROM multiraft.group_meta WHERE group_id = 1"), '>', 0,
	'node 2 stores the snapshot as its log start');

# A duplicate of c5, submitted on the new member: refused on both, same answer.
is(sql(1, "SELECT multiraft.submit(1, '\\x00'::bytea, 'c5')"), $c5, 'duplicate on node 2 returns the first index');
my $i2 = sql(1, "SELECT multiraft.submit(1, '\\x01'::bytea, 'after-join')");
ok(poll_until($n[0], "SELECT count(*) FROM multiraft.events WHERE command_id = 'after-join'", '1', 30),
	'a new command reaches node 1');
for my $i (0, 1)
{
	is(sql($i, "SELECT count(*) FROM multiraft.events WHERE command_id = 'c5'"), $i == 0 ? '1' : '0',
		'node ' . ($i + 1) . ': no second event for c5');
	is(sql($i, "SELECT log_index FROM multiraft.events WHERE command_id = 'after-join'"), $i2,
		'node ' . ($i + 1) . ': the new command at the same index');
}

# The new member restarts from its snapshot-based state.
$n[1]->stop('fast');
$n[1]->start;
ok(poll_until($n[1], "SELECT applied_index >= $i2 FROM multiraft.status(1)", 't', 60),
	'node 2 restarts from its compacted state');

$_->stop for @n;
done_testing();
