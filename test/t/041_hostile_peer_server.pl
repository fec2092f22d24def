# What answers at a registered node's address is not trusted to keep the worker
# running: a server that opens the receive stream and at once ends its half of
# the copy (CopyDone) left libpq in COPY IN, and the worker spun forever asking
# for the stream's last result, deaf to pg_terminate_backend, serving no group.
# Nor to make it reconnect ten times a second with a line in the log each time:
# a link lost before it was up a while keeps the backoff growing.
use strict;
use warnings;
use Time::HiRes qw(usleep);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use MultiraftTest;

my ($node) = start_cluster(1);
sub sql { return $node->safe_psql('postgres', $_[0]); }

ok(poll_until($node, "SELECT value FROM multiraft.stats WHERE name = 'worker_serving'", '1'),
	'the worker serves');
sql("SELECT multiraft.create_group(1, ARRAY[1])");
ok(poll_until($node, "SELECT role FROM multiraft.groups WHERE group_id = 1", 'leader'), 'group 1 led here');

my $port = PostgreSQL::Test::Cluster::get_free_port();
my ($out, $err) = ('', '');
my $fake = IPC::Run::start([ 'python3', 'test/tools/fake_peer.py', $port, 'copydone' ],
	'>', \$out, '2>', \$err);
pump_until($fake, IPC::Run::timer($PostgreSQL::Test::Utils::timeout_default), \$out, qr/listening/);

sql("SELECT multiraft.add_node(5, '127.0.0.1', $port)");
ok(pump_until($fake, IPC::Run::timer($PostgreSQL::Test::Utils::timeout_default), \$out, qr/copydone/),
	'the worker opened a stream to the fake node 5, which ended it');

# It goes on serving: ticks, and commands on group 1.
my $ticks = sql("SELECT value FROM multiraft.stats WHERE name = 'ticks'");
ok(poll_until($node, "SELECT value > $ticks + 50 FROM multiraft.stats WHERE name = 'ticks'", 't'),
	'the worker keeps ticking');
for my $i (1 .. 5)
{
	my ($ret, $o, $e) = $node->psql('postgres', "SELECT multiraft.submit(1, '\\x01'::bytea, 'after-$i', 3000)");
	is($ret, 0, "command $i commits while node 5 ends its streams") or diag($e);
}

# Every stream ends at once: the worker backs off up to 2 s between attempts
# (before, each opened stream reset the backoff to 100 ms), and logs the loss
# once.  Counted over 10 s: a slower machine only makes fewer attempts.
$fake->pump_nb;
$out = '';
for (1 .. 50)
{
	usleep(200_000);
	$fake->pump_nb;
}
my $streams = () = $out =~ /copydone/g;
cmp_ok($streams, '<=', 15, "a peer that ends every stream is retried with a growing backoff ($streams in 10 s)");
my $lost = () = slurp_file($node->logfile) =~ /lost connection to node 5/g;
cmp_ok($lost, '<=', 2, "its losses are logged once, not each time ($lost lines)");

my $pid = sql("SELECT pid FROM pg_stat_activity WHERE backend_type = 'multiraft worker'");
sql("SELECT multiraft.remove_node(5)");
$fake->kill_kill;
sql("SELECT pg_terminate_backend($pid)");
ok(poll_until($node, "SELECT count(*) FROM pg_stat_activity WHERE pid = $pid", '0'),
	'the worker can be terminated');
ok(poll_until($node, "SELECT value FROM multiraft.stats WHERE name = 'worker_serving'", '1'),
	'and serves again after its restart');

$node->stop;
done_testing();
