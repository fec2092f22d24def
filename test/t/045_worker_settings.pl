# The worker logs into multiraft.database and takes the settings an operator
# gives that database (or the server) for its users.  With
# default_transaction_read_only = on every batch failed ("cannot execute INSERT
# in a read-only transaction") and the node reloaded its groups once a second;
# with lock_timeout a batch that waited for a lock failed the same way.  The
# worker now overrides those for itself (worker_settings.c).
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
sql("SELECT multiraft.create_group(g, ARRAY[1]) FROM generate_series(1, 5) g");
ok(poll_until($node, "SELECT count(*) FROM multiraft.groups WHERE role = 'leader'", '5'), 'groups 1-5 led here');
is(sql("SHOW multiraft.restart_wakes_per_tick"), '1000', 'restored groups wake 1,000 per tick by default');
# (and the restart below wakes them one per tick)
$node->append_conf('postgresql.conf', "multiraft.restart_wakes_per_tick = 1");

# (this test's own sessions keep writing and waiting)
$ENV{PGOPTIONS} = '-c default_transaction_read_only=off -c lock_timeout=0';
sql("ALTER DATABASE postgres SET default_transaction_read_only = on");
sql("ALTER DATABASE postgres SET default_transaction_isolation = 'serializable'");
sql("ALTER DATABASE postgres SET lock_timeout = '20ms'");
my $offset = -s $node->logfile;
$node->restart;
ok(poll_until($node, "SELECT value FROM multiraft.stats WHERE name = 'worker_serving'", '1'),
	'the worker serves again, under the database\'s settings');
{
	local $ENV{PGOPTIONS} = '';
	is(sql('SHOW default_transaction_read_only'), 'on', 'which a new session takes');
}
ok(poll_until($node, "SELECT count(*) FROM multiraft.groups WHERE role = 'leader'", '5'),
	'the five groups lead again, woken one per tick');

for my $i (1 .. 5)
{
	my ($ret, $out, $err) = $node->psql('postgres',
		"SELECT multiraft.submit(1, '\\x0$i'::bytea, 'ro-$i', 30000)");
	is($ret, 0, "submit $i under a read-only default") or diag($err);
}

# A transaction holds a lock that keeps the worker's inserts into events waiting
# longer than the database's lock_timeout.
my $holder = $node->background_psql('postgres', on_error_stop => 0);
$holder->query_safe("BEGIN");
$holder->query_safe("LOCK TABLE multiraft.events IN SHARE MODE");
my $submitter = $node->background_psql('postgres', on_error_stop => 0);
$submitter->query_until(qr/sent/,
	"\\echo sent\nSELECT multiraft.submit(1, '\\x10'::bytea, 'under-lock', 60000);\n");
ok(poll_until($node,
	"SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'multiraft worker' AND wait_event_type = 'Lock'", '1'),
	'the worker waits for the lock');
# Twenty-five times the database's lock_timeout: a worker under it fails its
# batch and reloads well within this.
ok(poll_until($node,
	"SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid) WHERE a.backend_type = 'multiraft worker' AND NOT l.granted AND now() - l.waitstart > interval '500 ms'", '1'),
	'and keeps waiting, past the database\'s lock_timeout');
$holder->query_safe("COMMIT");
ok(poll_until($node, "SELECT count(*) FROM multiraft.events WHERE command_id = 'under-lock'", '1'),
	'the command waiting for the lock is applied once it is released');
$submitter->quit;
$holder->quit;

# The same default in postgresql.conf, at a reload: the worker's override
# outranks the file.
$node->append_conf('postgresql.conf', "default_transaction_read_only = on");
is(sql("SELECT setting FROM pg_file_settings WHERE name = 'default_transaction_read_only' AND error IS NULL"),
	'on', 'postgresql.conf sets a read-only default');
$node->reload;
for my $i (1 .. 3)
{
	my ($ret, $out, $err) = $node->psql('postgres',
		"SELECT multiraft.submit(1, '\\x2$i'::bytea, 'after-reload-$i', 30000)");
	is($ret, 0, "submit $i after the reload") or diag($err);
}

my $log = slurp_file($node->logfile, $offset);
unlike($log, qr/could not persist a batch/, 'no batch failed');
unlike($log, qr/read-only transaction|lock timeout/, 'not for a read-only default, nor a lock timeout');
is(sql("SELECT count(*) FROM multiraft.events WHERE command_id LIKE 'ro-%'"), '5',
	'every command applied once');

$node->stop;
done_testing();
