# Log compaction on one node: thousands of commands through one group, and the
# shared log table stays bounded while the events keep every command; the
# compacted group restarts from its log start.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use MultiraftTest;

my ($node) = start_cluster(1);
sub sql { return $node->safe_psql('postgres', $_[0]); }
# The worker notices CREATE EXTENSION within a second.
ok(poll_until($node, "SELECT value FROM multiraft.stats WHERE name = 'worker_serving'", '1'), 'the worker serves');

sql("SELECT multiraft.create_group(g, ARRAY[1]) FROM generate_series(1, 2) g");
ok(poll_until($node, "SELECT count(*) FROM multiraft.groups WHERE role = 'leader'", '2'), 'two groups');

my $n = 3000;
my $max_rows = 0;
# In chunks, sampling the log size between them: it must stay bounded all along.
for my $chunk (1 .. 6)
{
	my $from = ($chunk - 1) * ($n / 6) + 1;
	my $to = $chunk * ($n / 6);
	sql("DO \$\$ BEGIN FOR i IN $from..$to LOOP
	       PERFORM multiraft.submit(1 + i % 2, convert_to(repeat('x', 64), 'UTF8'), 'c' || i);
	     END LOOP; END \$\$");
	my $rows = sql("SELECT count(*) FROM multiraft.log");
	$max_rows = $rows if $rows > $max_rows;
}
is(sql("SELECT count(*) FROM multiraft.events WHERE event_type = 'command'"), $n, "$n command events");
cmp_ok($max_rows, '<=', 400, "the log table stayed bounded (at most $max_rows rows for $n entries)");
my ($start, $applied) = split(/\|/, sql("SELECT log_start_index, applied_index FROM multiraft.group_meta WHERE group_id = 1"));
cmp_ok($start, '>', 0, "group 1 compacted up to $start");
is(sql("SELECT count(*) FROM multiraft.log WHERE group_id = 1 AND log_index <= $start"), '0',
	'no rows ending at or below log_start_index');
is(sql("SELECT coalesce(count(*) = max(log_index) - min(log_index) + 1, true) FROM multiraft.log_entries(1)"), 't',
	'the remaining log has no holes');
ok(poll_until($node, "SELECT first_index > 1 FROM multiraft.status(1)", 't'), 'status first_index moves');
# No member lags: nothing is kept past the retention window (a gauge of stats).
is(sql("SELECT value FROM multiraft.stats WHERE name = 'log_bytes_retained'"), '0',
	'nothing kept past the retention window');

# The compacted group restarts from its log start and carries on.
$node->stop('fast');
$node->start;
ok(poll_until($node, "SELECT count(*) FROM multiraft.groups WHERE role = 'leader'", '2'), 'groups back after restart');
my $next = sql("SELECT multiraft.submit(1, '\\x01'::bytea, 'after-restart')");
cmp_ok($next, '>', $applied, 'the log continues after the compacted prefix');
is(sql("SELECT multiraft.submit(1, '\\x01'::bytea, 'c2')"),
	sql("SELECT log_index FROM multiraft.events WHERE command_id = 'c2'"),
	'dedup of a command whose entry was compacted away still holds');
is(sql("SELECT count(*) FROM multiraft.events WHERE event_type = 'command'"), $n + 1, 'no command applied twice');

# A group that quiesces drops its log from memory but leaves its rows for a later
# compacted write (one every compact_threshold entries): waking it for one
# command writes no row deletion.  Rows below the stored log start then survive a
# restart, are skipped by the load and deleted by the next compaction.
sql("SELECT multiraft.create_group(3, ARRAY[1])");
ok(poll_until($node, "SELECT role FROM multiraft.groups WHERE group_id = 3", 'leader'), 'group 3');
my $q1 = sql("SELECT multiraft.submit(3, '\\x03'::bytea, 'q1')");
ok(poll_until($node, "SELECT quiesced FROM multiraft.groups WHERE group_id = 3", 't'), 'group 3 quiesced');
sql("SELECT multiraft.submit(3, '\\x03'::bytea, 'q2')");
ok(poll_until($node, "SELECT quiesced FROM multiraft.groups WHERE group_id = 3", 't'), 'and again');
cmp_ok(sql("SELECT count(*) FROM multiraft.log WHERE group_id = 3 AND log_index <= $q1"), '>', 0,
	'the rows of a quiesced group outlive its in-memory log');
$node->stop('fast');
$node->start;
ok(poll_until($node, "SELECT role FROM multiraft.groups WHERE group_id = 3", 'leader'), 'group 3 after restart');
sql("DO \$\$ BEGIN FOR i IN 1..100 LOOP
       PERFORM multiraft.submit(3, '\\x03'::bytea, 'r' || i);
     END LOOP; END \$\$");
ok(poll_until($node, "SELECT quiesced FROM multiraft.groups WHERE group_id = 3", 't'), 'group 3 quiesced after 100 more');
is(sql("SELECT count(*) FROM multiraft.log WHERE group_id = 3 AND log_index <= $q1"), '0',
	'rows left below the log start before the restart are deleted by a later compaction');
is(sql("SELECT count(*) FROM multiraft.events WHERE group_id = 3 AND event_type = 'command'"), '102',
	'each of them applied once');

# Commands without a command_id leave no dedup record: the proposing node's
# session in the group's state stands for them (src/multiraft/mr_session.c), and
# it stays a few bytes.  (A new generated-id window rebuilds the node, with a
# new session.)
$node->append_conf('postgresql.conf', 'multiraft.generated_id_window = 100');
$node->reload;
ok(poll_until($node, "SHOW multiraft.generated_id_window", '100'), 'a small generated-id window');
ok(poll_until($node, "SELECT count(*) FROM multiraft.groups WHERE role = 'leader'", '3'),
	'the worker rebuilt its node for the new window');
sql("DO \$\$ BEGIN FOR i IN 1..1000 LOOP
       PERFORM multiraft.submit(2, '\\x02'::bytea);
     END LOOP; END \$\$");
is(sql("SELECT count(*) FROM multiraft.events WHERE group_id = 2 AND event_type = 'command'
          AND command_id ~ '^1-[0-9]+-[0-9a-f]{16}\$'"), '1000', '1000 commands with generated ids applied');
is(sql("SELECT count(*) FROM multiraft.dedup WHERE group_id = 2
          AND convert_from(command_id, 'UTF8') ~ '^1-[0-9]+-[0-9a-f]{16}\$'"), '0',
	'they left no dedup records');
is(sql("SELECT count(*) FROM multiraft.dedup WHERE group_id = 2"),
	$n / 2, 'the records of explicit ids are all kept');
my $state = sql("SELECT length(layer_state) FROM multiraft.group_meta WHERE group_id = 2");
cmp_ok($state, '<', 200, "the group's state holds the session in $state bytes");
my ($ret, $out, $err) = $node->psql('postgres',
	"SELECT multiraft.submit(2, '\\x02'::bytea, '1-5-0123456789abcdef')");
like($err, qr/has the form of a generated id/, 'a caller cannot pass an id of the generated form');

# The lagging-log budgets take effect at a reload, without rebuilding the node.
my $starts = sql("SELECT value FROM multiraft.stats WHERE name = 'worker_starts'");
my $elected = sql("SELECT value FROM multiraft.stats WHERE name = 'leaders_elected'");
$node->append_conf('postgresql.conf', "multiraft.lagging_log = '1MB'\nmultiraft.lagging_log_per_group = '64kB'");
$node->reload;
ok(poll_until($node, "SHOW multiraft.lagging_log", '1MB'), 'a smaller node-wide lagging-log budget');
is(sql("SHOW multiraft.lagging_log_per_group"), '64kB', 'and per group');
cmp_ok(sql("SELECT multiraft.submit(2, '\\x03'::bytea, 'after-budget')"), '>', 0,
	'the node serves on');
is(sql("SELECT value FROM multiraft.stats WHERE name = 'worker_starts'"), $starts,
	'the worker did not restart');
is(sql("SELECT value FROM multiraft.stats WHERE name = 'leaders_elected'"), $elected,
	'nor rebuild its node (no election)');

$node->stop;
done_testing();
