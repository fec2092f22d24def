# Deletion by address (storage_log.c) after plain VACUUM frees the slots of
# compacted rows and new runs reuse them; then a kill -9 under load and a
# restart: the stored log of every group loads consecutive from its log start,
# no row overlaps another, every acknowledged command has one event, and a
# removed group leaves no log row.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use MultiraftTest;

my ($node) = start_cluster(1);
sub sql { return $node->safe_psql('postgres', $_[0]); }
ok(poll_until($node, "SELECT value FROM multiraft.stats WHERE name = 'worker_serving'", '1'), 'the worker serves');
sql("SELECT multiraft.create_group(g, ARRAY[1]) FROM generate_series(1, 3) g");
ok(poll_until($node, "SELECT count(*) FROM multiraft.groups WHERE role = 'leader'", '3'), 'three groups');

sub burst
{
	my ($tag, $n) = @_;
	sql("DO \$\$ BEGIN FOR i IN 1..$n LOOP
	       PERFORM multiraft.submit(1 + i % 3, '\\x42'::bytea, '$tag' || i);
	     END LOOP; END \$\$");
}

sub log_consistent
{
	my ($label) = @_;
	# rows of a group: no two overlap (ordered by log_index, each first_index > previous log_index)
	is(sql("SELECT count(*) FROM (SELECT group_id, first_index,
	          lag(log_index) OVER (PARTITION BY group_id ORDER BY log_index) AS prev
	          FROM multiraft.log) r WHERE first_index <= prev"), '0', "$label: no overlapping log rows");
	# what loads: consecutive from log_start_index + 1
	is(sql("SELECT count(*) FROM (SELECT l.group_id, l.log_index,
	          lag(l.log_index) OVER (PARTITION BY l.group_id ORDER BY l.log_index) AS prev, m.log_start_index
	          FROM multiraft.log_entries() l JOIN multiraft.group_meta m USING (group_id)
	          WHERE l.log_index > m.log_start_index) x
	        WHERE (prev IS NULL AND log_index <> log_start_index + 1) OR (prev IS NOT NULL AND log_index <> prev + 1)"),
		'0', "$label: every group's log is consecutive from its start");
	is(sql("SELECT count(*) FROM (SELECT 1 FROM multiraft.events WHERE event_type = 'command'
	         GROUP BY group_id, command_id HAVING count(*) > 1) d"), '0', "$label: no duplicated event");
}

my $offset = -s $node->logfile;
burst('a', 600);                          # compaction deletes many runs
sql("VACUUM multiraft.log");              # their slots are free
burst('b', 600);                          # new runs in the freed slots, compacted in turn
sql("VACUUM multiraft.log");
burst('c', 300);
ok(!$node->log_contains(qr/could not persist a batch/, $offset), 'no batch failed');
is(sql("SELECT count(*) FROM multiraft.events WHERE command_id ~ '^[abc][0-9]+\$'"), '1500', 'every command once');
log_consistent('after VACUUM');

# kill -9 while a burst runs, then restart
my $h = $node->background_psql('postgres', on_error_stop => 0);
$h->query_until(qr//, "DO \$\$ BEGIN FOR i IN 1..2000 LOOP PERFORM multiraft.submit(1 + i % 3, '\\x43'::bytea, 'd' || i); END LOOP; END \$\$;\n");
ok(poll_until($node, "SELECT count(*) > 200 FROM multiraft.events WHERE command_id LIKE 'd%'", 't'), 'load runs');
$node->kill9;
eval { $h->quit; };
ok(restart_after_crash($node), 'restarted after kill -9');
ok(poll_until($node, "SELECT count(*) FROM multiraft.groups WHERE role = 'leader'", '3'), 'the groups come back');
log_consistent('after kill -9');
$offset = -s $node->logfile;
burst('e', 300);
ok(!$node->log_contains(qr/could not persist a batch/, $offset), 'no batch fails after the restart');
sql("SELECT multiraft.remove_group(2)");
ok(poll_until($node, "SELECT count(*) FROM multiraft.groups", '2'), 'group 2 removed');
is(sql("SELECT count(*) FROM multiraft.log WHERE group_id = 2"), '0', '... with every log row');
done_testing();
