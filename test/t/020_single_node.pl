# One node, single-member groups: the worker loop and the storage tables end to
# end — create, submit (with and without command id), events exactly once and in
# order, NOTIFY, duplicates, status, read_index, remove_group, clean restart.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use MultiraftTest;
use Time::HiRes qw(usleep);

my ($node) = start_cluster(1);
sub sql { return $node->safe_psql('postgres', $_[0]); }

ok(poll_until($node, "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'multiraft worker'", '1'),
	'worker runs');
ok($node->wait_for_log(qr/multiraft worker serving node 1/), 'worker serves');

# ---------------------------------------------------------------- create
sql("SELECT multiraft.create_group(1, ARRAY[1])");
ok(poll_until($node, "SELECT role FROM multiraft.status(1)", 'leader'), 'group 1 elects this node');
is(sql("SELECT count(*) FROM multiraft.group_meta WHERE group_id = 1"), '1', 'meta row written');
is(sql("SELECT count(*) FROM multiraft.events WHERE group_id = 1 AND event_type = 'group_created'"),
	'1', 'one group_created event');
is(sql("SELECT node_id FROM multiraft.events WHERE group_id = 1 AND event_type = 'group_created'"),
	'1', 'group_created names this node');
ok(poll_until($node,
	"SELECT count(*) > 0 FROM multiraft.events WHERE group_id = 1 AND event_type = 'leader_elected' AND node_id = 1",
	't'), 'leader_elected event');

my ($ret, $out, $err) = $node->psql('postgres', "SELECT multiraft.create_group(1, ARRAY[1])");
like($err, qr/group 1 already exists/, 'creating it twice fails');

# ---------------------------------------------------------------- submit
my $i1 = sql("SELECT multiraft.submit(1, '\\x0a01'::bytea, 'cmd-a')");
my $i2 = sql("SELECT multiraft.submit(1, '\\x0a02'::bytea)");
my $i3 = sql("SELECT multiraft.submit(1, '\\x0a03'::bytea, 'cmd-c')");
ok($i1 > 0 && $i1 < $i2 && $i2 < $i3, "indexes increase ($i1 < $i2 < $i3)");

my $term = sql("SELECT term FROM multiraft.status(1)");
is(sql("SELECT string_agg(log_index || '/' || coalesce(command_id, 'NULL') || '/' || encode(payload, 'hex') || '/' || term,
                        ',' ORDER BY event_id)
        FROM multiraft.events WHERE group_id = 1 AND event_type = 'command' AND command_id <> ''
         AND command_id IN ('cmd-a', 'cmd-c')"),
	"$i1/cmd-a/0a01/$term,$i3/cmd-c/0a03/$term", 'command events carry index, id, payload and term');
is(sql("SELECT count(*) FROM multiraft.events WHERE group_id = 1 AND event_type = 'command'"), '3',
	'one event per command');
is(sql("SELECT command_id IS NOT NULL AND command_id NOT IN ('cmd-a', 'cmd-c') FROM multiraft.events
       WHERE group_id = 1 AND log_index = $i2"), 't', 'a NULL command id gets a fresh id');
is(sql("SELECT count(*) FROM multiraft.events WHERE group_id = 1 AND event_type = 'command'
        AND (node_id IS NOT NULL OR change_type IS NOT NULL OR created_at IS NULL)"), '0',
	'command events leave node_id/change_type NULL and have created_at');
is(sql("SELECT bool_and(a.event_id < b.event_id) FROM multiraft.events a JOIN multiraft.events b
       ON a.group_id = b.group_id AND a.log_index < b.log_index
      WHERE a.group_id = 1 AND a.event_type = 'command' AND b.event_type = 'command'"), 't',
	'event ids follow log order');

# duplicates: first index, no new event, no new log entry applied twice
is(sql("SELECT multiraft.submit(1, '\\xffff'::bytea, 'cmd-a')"), $i1, 'duplicate id returns the first index');
is(sql("SELECT count(*) FROM multiraft.events WHERE group_id = 1 AND command_id = 'cmd-a'"), '1',
	'duplicate adds no event');
is(sql("SELECT count(*) FROM multiraft.dedup WHERE group_id = 1"), '2',
	'one dedup record per id given (a generated one has none: its session stands for it)');

# ---------------------------------------------------------------- many groups
sql("SELECT multiraft.create_group(g, ARRAY[1]) FROM generate_series(2, 6) g");
ok(poll_until($node, "SELECT count(*) FROM multiraft.groups WHERE role = 'leader'", '6'),
	'six groups led here');
sql("DO \$\$ BEGIN FOR i IN 1..5 LOOP FOR g IN 2..6 LOOP PERFORM multiraft.submit(g, int4send(i), 'g' || g || '-' || i); END LOOP; END LOOP; END \$\$");
is(sql("SELECT count(*) FROM (SELECT group_id, array_agg(command_id ORDER BY event_id) AS ids,
                                   array_agg(log_index ORDER BY event_id) AS ix
                              FROM multiraft.events WHERE event_type = 'command' AND group_id BETWEEN 2 AND 6
                             GROUP BY group_id) s
      WHERE ids = ARRAY(SELECT 'g' || group_id || '-' || i FROM generate_series(1, 5) i)
        AND ix = ARRAY(SELECT unnest(ix) ORDER BY 1)"), '5',
	'each group has its commands once, in submission and log order');

# ---------------------------------------------------------------- NOTIFY
my $listener = $node->background_psql('postgres');
$listener->query_safe('LISTEN multiraft_events');
my $i4 = sql("SELECT multiraft.submit(3, '\\x33'::bytea, 'notify-me')");
my $seen = 0;
for (1 .. 100)
{
	my $o = $listener->query_safe('SELECT 1');
	if ($o =~ /Asynchronous notification "multiraft_events" with payload "3:$i4"/) { $seen = 1; last; }
	usleep(100_000);
}
ok($seen, "NOTIFY multiraft_events '3:$i4' received");
$listener->quit;

# ---------------------------------------------------------------- status, read_index
ok(poll_until($node, "SELECT applied_index >= $i3 AND commit_index >= applied_index
                             AND last_index >= commit_index AND voters = ARRAY[1] AND leader_node_id = 1
                             AND node_id = 1 AND replica_id > 0 AND term > 0 FROM multiraft.status(1)", 't'),
	'status shows indexes, voters and leader');
my $r = sql("SELECT multiraft.read_index(1)");
ok($r >= $i3, "read_index ($r) covers every committed index ($i3)");
cmp_ok(sql("SELECT value FROM multiraft.stats WHERE name = 'batches_written'"), '>', 0, 'batches counted');
# The appends above had to reach the disk; a flushed batch is a written one.
is(sql("SELECT f > 0 AND f <= w FROM (SELECT max(value) FILTER (WHERE name = 'batches_flushed') f,
                                          max(value) FILTER (WHERE name = 'batches_written') w
                                     FROM multiraft.stats) s"), 't',
	'flushed batches counted among the written ones');

# ---------------------------------------------------------------- remove_group
sql("SELECT multiraft.remove_group(6)");
ok(poll_until($node, "SELECT count(*) FROM multiraft.events WHERE group_id = 6 AND event_type = 'group_removed'", '1'),
	'one group_removed event');
ok(poll_until($node, "SELECT count(*) FROM multiraft.groups WHERE group_id = 6", '0'), 'group 6 gone from status');
is(sql("SELECT (SELECT count(*) FROM multiraft.group_meta WHERE group_id = 6)
           + (SELECT count(*) FROM multiraft.log WHERE group_id = 6)
           + (SELECT count(*) FROM multiraft.dedup WHERE group_id = 6)"), '0', 'its rows are deleted');
is(sql("SELECT min_replica_id FROM multiraft.tombstone WHERE group_id = 6"), '-1', 'tombstone marks it removed');
($ret, $out, $err) = $node->psql('postgres', "SELECT multiraft.submit(6, '\\x00'::bytea)");
like($err, qr/group 6 does not exist/, 'submit to a removed group fails');
($ret, $out, $err) = $node->psql('postgres', "SELECT multiraft.create_group(6, ARRAY[1])");
like($err, qr/group 6 already exists/, 'a removed group id is never reused');

# ---------------------------------------------------------------- clean restart
my $events_before = sql("SELECT count(*) FROM multiraft.events");
my $commands_before = sql("SELECT count(*) FROM multiraft.events WHERE event_type IN ('command', 'membership_change')");
$node->stop('fast');
$node->start;
ok(poll_until($node, "SELECT count(*) FROM multiraft.groups WHERE role = 'leader'", '5'),
	'the five groups come back and lead');
is(sql("SELECT count(*) FROM multiraft.events WHERE event_type IN ('command', 'membership_change')"),
	$commands_before, 'no command event re-applied after restart');
is(sql("SELECT count(*) FROM multiraft.events WHERE event_type IN ('command', 'membership_change') AND group_id <> 6
          AND command_id !~ '^[0-9]+-[0-9]+-[0-9a-f]{16}\$'"),
	sql("SELECT count(*) FROM multiraft.dedup"), 'one dedup record per command event with a given id');
is(sql("SELECT multiraft.submit(1, '\\x00'::bytea, 'cmd-c')"), $i3, 'dedup survives the restart');
my $i5 = sql("SELECT multiraft.submit(1, '\\x0a05'::bytea, 'cmd-e')");
ok($i5 > $i3, 'new commands continue the log');
($ret, $out, $err) = $node->psql('postgres', "SELECT multiraft.create_group(6, ARRAY[1])");
like($err, qr/group 6 already exists/, 'the tombstone survives the restart');
cmp_ok(sql("SELECT count(*) FROM multiraft.events"), '>', $events_before, 'events kept');

$node->stop;
done_testing();
