# A snapshot carries every command id a caller gave that its group committed,
# and travels in one envelope of at most 64 MB plus twice max_command_size.
# Past that it cannot be sent: the leader must leave it out of the envelope
# with a warning that says why, and still send the other groups' messages to
# that node.  The history is made by inserting dedup records directly (about
# 70 MB of 200-byte ids), instead of submitting three million commands.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);
use MultiraftTest;

my @n = start_cluster_with_group(1);
$n[0]->safe_psql('postgres', 'SELECT multiraft.create_group(2, ARRAY[1, 2, 3])');
ok(poll_until($n[2], "SELECT leader_node_id FROM multiraft.groups WHERE group_id = 2", '1'),
	'group 2 led by node 1, as node 3 sees it');

$n[2]->stop('fast');
# Old history: ids applied at index 1, long before anything node 3 lacks, on
# both nodes that may lead (building such a snapshot may stall a worker past
# an election timeout, and the other one take over).
$_->safe_psql('postgres', q{
	INSERT INTO multiraft.dedup (group_id, command_id, log_index)
	SELECT 1, convert_to(repeat('h', 200) || i, 'UTF8'), 1 FROM generate_series(1, 340000) i})
  for @n[0, 1];
# More entries than the leader keeps for a member whose node is down.
$n[0]->safe_psql('postgres', q{
	DO $$ BEGIN FOR i IN 1 .. 1100 LOOP PERFORM multiraft.submit(1, '\x01'::bytea); END LOOP; END $$});

my @offset = map { -s $_->logfile } @n[0, 1];
$n[2]->start;
my $said = 0;
for (1 .. 600)
{
	for my $i (0, 1)
	{
		$said = 1
		  if $n[$i]->log_contains(
			qr/cannot send a snapshot of group 1 to node 3: it is \d+ bytes, more than the limit of \d+/,
			$offset[$i]);
	}
	last if $said;
	usleep(100_000);
}
ok($said, 'the leader says why it cannot send the snapshot');

# The other group's messages to node 3 still go through.
my $ix = $n[0]->safe_psql('postgres', q{SELECT multiraft.submit(2, '\x02'::bytea, 'after')});
ok(poll_until($n[2],
		"SELECT count(*) FROM multiraft.events WHERE group_id = 2 AND command_id = 'after' AND log_index = $ix",
		'1'),
	'node 3 applies group 2\'s command');
is($n[0]->safe_psql('postgres', "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'multiraft worker'"),
	'1', 'the leader\'s worker goes on');
is($n[2]->safe_psql('postgres', "SELECT count(*) FROM multiraft.events
	WHERE group_id = 1 AND event_type = 'snapshot_applied' AND log_index > 1"),
	'0', 'node 3 applied no snapshot of group 1');
cmp_ok($n[2]->safe_psql('postgres', 'SELECT applied_index FROM multiraft.status(1)'), '<', 1000,
	'and stays behind in it');

$_->stop for @n;
done_testing();
