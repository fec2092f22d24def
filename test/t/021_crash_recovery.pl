# Crash safety on one node: kill -9 of the postmaster, then an immediate
# shutdown, each while pgbench submits to four groups.  Afterwards every
# acknowledged submit is present exactly once, no event is duplicated, every
# applied command entry still in the log has its event, no event lies beyond the
# applied index, and the groups carry on.  Then a kill -9 right after the events
# were consumed: none of them is announced again.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use MultiraftTest;

my ($node) = start_cluster(1);
sub sql { return $node->safe_psql('postgres', $_[0]); }
# The worker notices CREATE EXTENSION within a second.
ok(poll_until($node, "SELECT value FROM multiraft.stats WHERE name = 'worker_serving'", '1'), 'the worker serves');

sql("SELECT multiraft.create_group(g, ARRAY[1]) FROM generate_series(1, 4) g");
ok(poll_until($node, "SELECT count(*) FROM multiraft.groups WHERE role = 'leader'", '4'), 'four groups');

my $script = PostgreSQL::Test::Utils::tempdir() . '/submit.sql';
PostgreSQL::Test::Utils::append_to_file($script,
	"\\set g random(1, 4)\nSELECT multiraft.submit(:g, '\\x00112233'::bytea);\n");

sub start_load
{
	my ($out, $err) = ('', '');
	my $h = IPC::Run::start(
		[ 'pgbench', '-n', '-c', '4', '-T', '60', '-f', $script,
		  '-h', $node->host, '-p', $node->port, 'postgres' ],
		'>', \$out, '2>', \$err);
	return $h;
}

# Submits with known ids, one at a time, until the server goes away or $max
# were acknowledged; returns the acknowledged ids with their indexes.
sub submit_acked
{
	my ($prefix, $max, $crash) = @_;
	my @acked;
	my $s = $node->background_psql('postgres', on_error_stop => 0);
	for my $i (1 .. $max)
	{
		my $g = 1 + $i % 4;
		my ($o, $ret);
		eval { ($o, $ret) = $s->query("SELECT multiraft.submit($g, '\\xaa'::bytea, '$prefix-$i')"); };
		last if $@ || !defined $ret || $ret != 0 || $o !~ /^\d+$/;
		push @acked, [ "$prefix-$i", $g, $o ];
		$crash->() if $i == int($max / 2) && $crash;
	}
	eval { $s->quit; };
	return @acked;
}

sub check_state
{
	my ($label, @acked) = @_;
	ok(poll_until($node, "SELECT count(*) FROM multiraft.groups WHERE role = 'leader'", '4'),
		"$label: the groups come back");
	my $ids = join(',', map { "'$_->[0]'" } @acked);
	is(sql("SELECT count(*) FROM unnest(ARRAY[$ids]::text[]) a(id)
             WHERE (SELECT count(*) FROM multiraft.events e
                     WHERE e.command_id = a.id AND e.event_type = 'command') = 1"),
		scalar(@acked), "$label: each of the " . scalar(@acked) . " acknowledged submits has exactly one event");
	my $values = join(',', map { "('$_->[0]', $_->[1], $_->[2])" } @acked);
	my $bad = sql("SELECT count(*) FROM (VALUES $values) a(id, g, ix)
	                WHERE (SELECT count(*) FROM multiraft.events e WHERE e.command_id = a.id
	                          AND e.group_id = a.g AND e.log_index = a.ix) <> 1");
	is($bad, 0, "$label: ... in the group and at the index submit returned");
	is(sql("SELECT count(*) FROM (SELECT 1 FROM multiraft.events WHERE event_type = 'command'
	         GROUP BY group_id, log_index HAVING count(*) > 1) d"), '0', "$label: no log index has two events");
	is(sql("SELECT count(*) FROM (SELECT 1 FROM multiraft.events WHERE event_type = 'command'
	         GROUP BY group_id, command_id HAVING count(*) > 1) d"), '0', "$label: no command id has two events");
	# The meta row's applied index may trail (MR_META_LAG): the live one, once the
	# restarted node has re-applied what it trailed by.
	ok(poll_until($node, "SELECT count(*) FROM multiraft.events e JOIN multiraft.groups s USING (group_id)
	         WHERE e.event_type = 'command' AND e.log_index > s.applied_index", '0'),
		"$label: no event beyond the applied index");
	is(sql("SELECT count(*) FROM multiraft.group_meta m JOIN multiraft.groups s USING (group_id)
	         WHERE s.applied_index - m.applied_index NOT BETWEEN 0 AND 64"), '0',
		"$label: the meta row trails the applied index by at most 64 entries");
	# Entry layout (multiraft.h): u8 kind | u16 id length | id | payload; kind 1 = command.
	is(sql("SELECT count(*) FROM multiraft.log_entries() l JOIN multiraft.group_meta m USING (group_id)
	         WHERE l.log_index <= m.applied_index AND l.entry_type = 0 AND length(l.data) > 3
	           AND get_byte(l.data, 0) = 1
	           AND NOT EXISTS (SELECT 1 FROM multiraft.events e
	                            WHERE e.group_id = l.group_id AND e.log_index <= l.log_index
	                              AND e.command_id = convert_from(substring(l.data FROM 4 FOR
	                                    get_byte(l.data, 1) + 256 * get_byte(l.data, 2)), 'UTF8'))"),
		'0', "$label: every applied command entry still in the log has its event");
	is(sql("SELECT count(*) FROM multiraft.events a JOIN multiraft.events b USING (group_id)
	         WHERE a.event_type = 'command' AND b.event_type = 'command'
	           AND a.log_index < b.log_index AND a.event_id > b.event_id"), '0',
		"$label: events of a group are in log order");
}

# ---- round 1: kill -9 of the postmaster under load
my $load = start_load();
ok(poll_until($node, "SELECT count(*) > 50 FROM multiraft.events WHERE event_type = 'command'", 't'),
	'load is running');
my @acked = submit_acked('k', 400, sub { $node->kill9; });
cmp_ok(scalar(@acked), '>', 10, 'some submits were acknowledged before the crash');
$load->kill_kill;
ok(restart_after_crash($node), 'restarted after kill -9');
check_state('kill -9', @acked);

# ---- round 2: immediate shutdown under load
$load = start_load();
my @acked2 = submit_acked('i', 300, sub { $node->stop('immediate'); });
cmp_ok(scalar(@acked2), '>', 10, 'submits acknowledged before the immediate stop');
$load->kill_kill;
$node->start;
check_state('immediate', @acked, @acked2);

# ---- round 3: events consumed just before a kill -9 do not come back.  A group's
# meta row trails its applied index by up to 64 entries, so the restarted worker
# applies those entries again; multiraft.events_consumed tells it how far their
# events went out once they are no longer in the queue.
sql("SELECT multiraft.create_group(5, ARRAY[1])");
ok(poll_until($node, "SELECT role FROM multiraft.groups WHERE group_id = 5", 'leader'), 'group 5');
sql("DO \$\$ BEGIN FOR i IN 1..20 LOOP
       PERFORM multiraft.submit(5, '\\x05'::bytea);
     END LOOP; END \$\$");
is(sql("SELECT count(*) FROM multiraft.consume_events(1000, 5) WHERE event_type = 'command'"), '20',
	'its 20 command events are consumed');
cmp_ok(sql("SELECT s.applied_index - m.applied_index FROM multiraft.groups s
             JOIN multiraft.group_meta m USING (group_id) WHERE group_id = 5"), '>', 0,
	'its meta row trails the applied index');
$node->kill9;
ok(restart_after_crash($node), 'restarted after kill -9 right after consuming');
ok(poll_until($node, "SELECT s.applied_index >= c.log_index
                        FROM multiraft.groups s JOIN multiraft.events_consumed c USING (group_id)
                       WHERE group_id = 5", 't'),
	'group 5 applied again past what was consumed');
is(sql("SELECT count(*) FROM multiraft.events WHERE group_id = 5 AND event_type = 'command'"), '0',
	'no consumed event is announced again');

# ---- the groups carry on and still refuse duplicates of acknowledged ids
my $last = $acked2[-1];
is(sql("SELECT multiraft.submit($last->[1], '\\x00'::bytea, '$last->[0]')"), $last->[2],
	'a duplicate of an acknowledged id returns its index after the crashes');
my $next = sql("SELECT multiraft.submit(1, '\\x01'::bytea, 'after')");
ok($next > 0, 'new submits commit');

$node->stop;
done_testing();
