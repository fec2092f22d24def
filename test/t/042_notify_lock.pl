# A session committing notifications holds one server-wide lock until its
# commit ends; the worker's commit, which notifies too, used to wait for it
# (a session committing 300,000 notifications stalled every group for 11 s).
# The worker now takes that lock without waiting: if it is held, the batch's
# notifications are deferred and go out with a later transaction.
#
# To hold the lock as long as the test likes, a session's commit waits for a
# synchronous standby that does not exist (synchronous_commit = on for it),
# while the worker commits with 'local', the server's default here.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);
use MultiraftTest;

my ($node) = start_cluster(1,
	'wal_level' => 'replica',
	'max_wal_senders' => '2',
	'synchronous_commit' => "'local'",
	'synchronous_standby_names' => "'nobody'");
sub sql { return $node->safe_psql('postgres', $_[0]); }

ok(poll_until($node, "SELECT value FROM multiraft.stats WHERE name = 'worker_serving'", '1'),
	'the worker serves');
sql("SELECT multiraft.create_group(1, ARRAY[1])");
ok(poll_until($node, "SELECT role FROM multiraft.groups WHERE group_id = 1", 'leader'), 'group 1 led here');

sql("CREATE TABLE holder_rows (x int)");
my $app = $node->background_psql('postgres');
$app->query_safe('LISTEN multiraft_events');

# The holder notifies in a transaction that writes (a commit record to wait
# for), and its commit waits for the standby with the lock held.
my $holder = $node->background_psql('postgres', on_error_stop => 0);
$holder->query_until(qr/started/,
	"\\echo started\nSET synchronous_commit = on;\n"
	  . "BEGIN;\nINSERT INTO holder_rows VALUES (1);\nNOTIFY other_channel, 'x';\nCOMMIT;\n");
ok(poll_until($node, "SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'SyncRep'", '1'),
	'a session holds the NOTIFY lock, its commit waiting')
  or diag(sql("SELECT string_agg(pid || ' ' || coalesce(wait_event_type, '-') || '/' || coalesce(wait_event, '-') || ' ' || state || ' ' || query, E'\\n') FROM pg_stat_activity"));

my ($ret, $out, $err) = $node->psql('postgres',
	"SELECT multiraft.submit(1, '\\x01'::bytea, 'while-held', 5000)");
is($ret, 0, 'a command commits meanwhile: the worker does not wait for the lock') or diag($err);
my $ix = $out;
is(sql("SELECT count(*) FROM multiraft.events WHERE command_id = 'while-held'"), '1', '... its event is recorded');
is(sql("SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid)
         WHERE a.backend_type = 'multiraft worker' AND NOT l.granted"), '0',
	'the worker waits for no lock');

# The holder's wait ends; the deferred notification goes out.
my $hpid = sql("SELECT pid FROM pg_stat_activity WHERE wait_event = 'SyncRep'");
sql("SELECT pg_cancel_backend($hpid)");
my $heard = 0;
for (1 .. 100)
{
	if ($app->query_safe('SELECT 1') =~ /payload "1:(\d+)"/ && $1 >= $ix) { $heard = 1; last; }
	usleep(100_000);
}
ok($heard, "the deferred notification for group 1 (index $ix or later) arrives once the lock is free");
$holder->quit;
$app->quit;

$node->stop;
done_testing();
