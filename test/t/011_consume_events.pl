# consume_events with concurrent consumers: a consumer never gets an event another
# one holds (FOR UPDATE SKIP LOCKED) nor waits for it, events taken by a rolled-back
# transaction come back, every event is delivered exactly once, and the highest
# index taken per group is recorded (multiraft.events_consumed).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use MultiraftTest;

my ($node) = start_cluster(1);

# Ten events as the worker would record them.
$node->safe_psql('postgres', q{
	INSERT INTO multiraft.events (group_id, event_type, log_index, term, command_id)
	SELECT 5, 'command', i, 1, 'c' || i FROM generate_series(1, 10) i});

# A takes the three oldest and keeps its transaction open.
my $a = $node->background_psql('postgres');
my $taken_a = $a->query_safe(
	"BEGIN; SELECT string_agg(log_index::text, ',' ORDER BY event_id) FROM multiraft.consume_events(3);");
like($taken_a, qr/^1,2,3$/m, 'A takes events 1..3');

# B does not wait for A and does not see A's events.
my $taken_b = $node->safe_psql('postgres',
	"SELECT string_agg(log_index::text, ',' ORDER BY event_id) FROM multiraft.consume_events(4)");
is($taken_b, '4,5,6,7', 'B skips the events A holds');

# A rolls back: its events are there again, oldest first.
$a->query_safe('ROLLBACK;');
my $taken_c = $node->safe_psql('postgres',
	"SELECT string_agg(log_index::text, ',' ORDER BY event_id) FROM multiraft.consume_events()");
is($taken_c, '1,2,3,8,9,10', 'rolled-back events come back in order');

# A group filter and a commit: nothing is delivered twice.
$node->safe_psql('postgres', q{
	INSERT INTO multiraft.events (group_id, event_type, log_index, term)
	SELECT 5 + (i % 2), 'command', i, 1 FROM generate_series(1, 6) i});
$taken_a = $a->query_safe(
	"BEGIN; SELECT string_agg(log_index::text, ',' ORDER BY event_id) FROM multiraft.consume_events(10, 6);");
like($taken_a, qr/^1,3,5$/m, 'A takes the events of group 6');
$taken_b = $node->safe_psql('postgres',
	"SELECT string_agg(group_id || ':' || log_index, ',' ORDER BY event_id) FROM multiraft.consume_events(10)");
is($taken_b, '5:2,5:4,5:6', 'B gets only the rest');
$a->query_safe('COMMIT;');
is($node->safe_psql('postgres', 'SELECT count(*) FROM multiraft.events'), '0', 'queue is empty');
$a->quit;
# What was taken is remembered per group (the worker's restart needs it), without
# a consumer ever waiting for another one's record.
is($node->safe_psql('postgres', q{SELECT string_agg(group_id || ':' || m, ',' ORDER BY group_id)
	FROM (SELECT group_id, max(log_index) m FROM multiraft.events_consumed GROUP BY group_id) x}),
	'5:10,6:5', 'the highest index taken per group is recorded');

$node->stop;
done_testing();
