# A request keeps its timeout_ms whatever multiraft.tick_interval becomes
# meanwhile.  The worker hands the layer a deadline in ticks, counted at the
# interval current when it takes the request; lowered by a reload, the ticks
# passed faster and the call failed "timed out after 20000 ms" a fraction of a
# second later, although its command could still commit (found by a review).
# The layer's deadlines are now counted again in the new ticks
# (mr_rescale_deadlines).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use MultiraftTest;

my @n = start_cluster(2);
ok(poll_until($_, "SELECT value FROM multiraft.stats WHERE name = 'worker_serving'", '1'),
	'the worker serves')
  for @n;
$n[0]->safe_psql('postgres', 'SELECT multiraft.create_group(1, ARRAY[1, 2])');
ok(poll_until($n[1], 'SELECT role FROM multiraft.status(1)', 'follower'), 'node 2 follows group 1');
ok(poll_until($n[0], 'SELECT role FROM multiraft.status(1)', 'leader'), 'node 1 leads group 1');
$n[1]->stop;    # nothing commits now

sub ticks
{
	return $n[0]->safe_psql('postgres', "SELECT value FROM multiraft.stats WHERE name = 'ticks'");
}
$n[0]->append_conf('postgresql.conf', "multiraft.tick_interval = '1000ms'\n");
$n[0]->reload;
ok(poll_until($n[0], 'SHOW multiraft.tick_interval', '1s'), 'ticks of a second');

my $bg = $n[0]->background_psql('postgres', on_error_stop => 0);
$bg->query_until(qr/sent/,
	"\\echo sent\nSELECT 'index=' || multiraft.submit(1, '\\x01'::bytea, 'slow-ticks', 20000);\n");
ok(poll_until($n[0], "SELECT value FROM multiraft.stats WHERE name = 'requests_in_progress'", '1'),
	'the submit waits');
my $before = ticks();
$n[0]->append_conf('postgresql.conf', "multiraft.tick_interval = '10ms'\n");
$n[0]->reload;
# 50 ticks: the worker ticks every 10 ms now, and the 22 ticks the call was
# given at a second each have passed.
ok(poll_until($n[0], "SELECT value >= $before + 50 FROM multiraft.stats WHERE name = 'ticks'", 't'),
	'the worker ticks every 10 ms');
$n[1]->start;    # the group commits again, well within the call's 20 s
ok(pump_until($bg->{run}, IPC::Run::timer($PostgreSQL::Test::Utils::timeout_default),
		\$bg->{stdout}, qr/index=\d+/), 'the submit returns its index');
unlike($bg->{stderr}, qr/timed out/, 'and did not time out');
$bg->quit;
is($n[0]->safe_psql('postgres', "SELECT value FROM multiraft.stats WHERE name = 'requests_in_progress'"),
	'0', 'no request left in progress');
$_->stop for @n;
done_testing();
