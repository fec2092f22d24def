# A request waits for the worker on a condition variable, which PostgreSQL's
# deadlock detector does not see.  A transaction that consumed events (a lock on
# multiraft.events) and then submits, while a DDL statement on that table queues
# behind it and the worker's next batch queues behind the DDL, closed a cycle
# that froze every group of the node until the submit's timeout.  The waiting
# backend now looks for that cycle and fails with a deadlock error.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use MultiraftTest;

my ($node) = start_cluster(1);
sub sql { return $node->safe_psql('postgres', $_[0]); }

ok(poll_until($node, "SELECT value FROM multiraft.stats WHERE name = 'worker_serving'", '1'),
	'the worker serves');
sql("SELECT multiraft.create_group(1, ARRAY[1])");
sql("SELECT multiraft.create_group(2, ARRAY[1])");
ok(poll_until($node, "SELECT role FROM multiraft.groups WHERE group_id = 1", 'leader'), 'group 1 led here');
ok(poll_until($node, "SELECT role FROM multiraft.groups WHERE group_id = 2", 'leader'), 'group 2 led here');

my $consumer = $node->background_psql('postgres', on_error_stop => 0);
$consumer->query_safe("\\set VERBOSITY verbose");
$consumer->query_safe("BEGIN");
$consumer->query_safe("SELECT count(*) FROM multiraft.consume_events()");
my $ddl = $node->background_psql('postgres', on_error_stop => 0);
$ddl->query_until(qr/go/, "\\echo go\nCREATE INDEX ON multiraft.events (created_at);\n");
ok(poll_until($node,
	"SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'CREATE INDEX%' AND wait_event_type = 'Lock'", '1'),
	'the DDL waits for the consumer');

# A long timeout: before, the node stayed frozen for all of it.
$consumer->query_until(qr/sent/,
	"\\echo sent\nSELECT multiraft.submit(1, '\\x01'::bytea, 'in-consumer-txn', 600000);\n");
ok(pump_until($consumer->{run}, IPC::Run::timer($PostgreSQL::Test::Utils::timeout_default),
		\$consumer->{stderr}, qr/ERROR/),
	'the submit in the consumer\'s transaction ends');
like($consumer->{stderr}, qr/deadlock with the multiraft worker/, 'with a deadlock error');
like($consumer->{stderr}, qr/it may still commit/, 'which says the command may still commit');
# Not class 40 (40P01), which tells clients that a retry is safe: the worker had
# taken the command, which may commit, and a retry without command_id applied it
# twice (found by a review).
like($consumer->{stderr}, qr/ERROR:  57014: deadlock with the multiraft worker/,
	'with the SQLSTATE of a timeout, not of a transaction rollback');

# Its transaction aborted: the DDL and then the worker go on.
$consumer->query("ROLLBACK");
ok(poll_until($node,
	"SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'CREATE INDEX%' AND state = 'active'", '0'),
	'the DDL completes');
my ($ret, $out, $err) = $node->psql('postgres', "SELECT multiraft.submit(2, '\\x02'::bytea, 'after', 30000)");
is($ret, 0, 'the node serves again') or diag($err);
$consumer->quit;
$ddl->quit;

$node->stop;
done_testing();
