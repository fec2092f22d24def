# A session that listens and then stays idle in a transaction keeps the
# server's NOTIFY queue from being freed; a full queue makes every NOTIFY fail
# at commit.  The worker must not let that stop its node: above
# multiraft.notify_queue_max_usage it records events without notifying, warns,
# and notifies again once the queue has room.  The queue is 8 GB; the test
# fills a few pages and lowers the limit below them instead.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);
use MultiraftTest;

my ($node) = start_cluster(1);
sub sql { return $node->safe_psql('postgres', $_[0]); }

ok(poll_until($node, "SELECT value FROM multiraft.stats WHERE name = 'worker_serving'", '1'),
	'the worker serves');
sql("SELECT multiraft.create_group(1, ARRAY[1])");
ok(poll_until($node, "SELECT role FROM multiraft.groups WHERE group_id = 1", 'leader'),
	'group 1 led here');

# An ordinary role that may connect and listen, which any role may.
sql("CREATE ROLE idler LOGIN");
my $idler = $node->background_psql('postgres', extra_params => [ '-U', 'idler' ]);
$idler->query_safe('LISTEN anything');
$idler->query_safe('BEGIN; SELECT 1;');

# A listener that reads what it gets: the application.
my $app = $node->background_psql('postgres');
$app->query_safe('LISTEN multiraft_events');

# Four notifications of 7 kB, each in its own transaction: the queue spans
# several pages that the idler keeps.
sql("SELECT pg_notify('filler', repeat('x', 7000) || $_)") for 1 .. 4;
my $usage = sql('SELECT pg_notification_queue_usage()');
cmp_ok($usage, '>', 1e-6, "the idler keeps the queue from being freed (usage $usage)");

$node->append_conf('postgresql.conf', "multiraft.notify_queue_max_usage = 0.000001\n");
$node->reload;
ok(poll_until($node, 'SHOW multiraft.notify_queue_max_usage', '1e-06'), 'the lower limit is in effect');

# Commands still commit and their events are recorded: the node goes on.  The
# worker reads the queue's usage at most once a second, when it has something
# to notify: submit until it warns.
my $log_offset = -s $node->logfile;
my $warned = 0;
for my $i (1 .. 100)
{
	sql("SELECT multiraft.submit(1, '\\x01'::bytea, 'before-$i')");
	if ($node->log_contains('multiraft is not notifying multiraft_events: the NOTIFY queue is', $log_offset))
	{
		$warned = 1;
		last;
	}
	usleep(100_000);
}
ok($warned, 'the worker warns that it stopped notifying');
my @ix = map { sql("SELECT multiraft.submit(1, '\\x01'::bytea, 'quiet-$_')") } 1 .. 3;
is(sql("SELECT count(*) FROM multiraft.events WHERE group_id = 1 AND command_id LIKE 'quiet-%'"),
	'3', 'the commands commit and their events are recorded');
my $heard = $app->query_safe('SELECT 1');
unlike($heard, qr/payload "1:($ix[0]|$ix[1]|$ix[2])"/,
	'no notification while the queue is fuller than the limit');
is(sql("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'multiraft worker'"), '1',
	'the worker did not restart');

# The idler ends its transaction and leaves: the queue drains and the
# notifications come back (the next check of the usage, within a second).
$idler->query_safe('ROLLBACK;');
$idler->quit;
ok(poll_until($node, 'SELECT pg_notification_queue_usage() < 1e-6', 't'), 'the queue drains');
my $seen = 0;
for my $i (1 .. 100)
{
	my $ix = sql("SELECT multiraft.submit(1, '\\x01'::bytea, 'loud-$i')");
	if ($app->query_safe('SELECT 1') =~ /payload "1:$ix"/) { $seen = 1; last; }
	usleep(100_000);
}
ok($seen, 'notifications resume once the queue has room');
ok($node->wait_for_log(qr/multiraft is notifying multiraft_events again/, $log_offset),
	'the worker logs that it notifies again');
$app->quit;

$node->stop;
done_testing();
