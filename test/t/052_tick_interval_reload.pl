# A request waits for its whole timeout_ms whatever multiraft.tick_interval
# becomes meanwhile.  The worker hands the layer a deadline in ticks, counted at
# the interval current when it takes the request; lowered by a reload, the
# ticks passed faster and the call failed "timed out after 8000 ms" a second
# after it began (found by a review).  The backend now times out by its own
# clock.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use MultiraftTest;

my @n = start_cluster(2);
ok(poll_until($_, "SELECT value FROM multiraft.stats WHERE name = 'worker_serving'", '1'),
	'the worker serves')
  for @n;
$n[0]->safe_psql('postgres', 'SELECT multiraft.create_group(1, ARRAY[1, 2])');
ok(poll_until($n[1], 'SELECT role FROM multiraft.status(1)', 'follower'), 'node 2 follows group 1');
$n[1]->stop;    # nothing commits now

$n[0]->append_conf('postgresql.conf', "multiraft.tick_interval = '1000ms'\n");
$n[0]->reload;
ok(poll_until($n[0], 'SHOW multiraft.tick_interval', '1s'), 'ticks of a second');

my $bg = $n[0]->background_psql('postgres', on_error_stop => 0);
my $start = time();
$bg->query_until(qr/sent/, "\\echo sent\nSELECT multiraft.submit(1, '\\x01'::bytea, 'slow-ticks', 8000);\n");
ok(poll_until($n[0], "SELECT value FROM multiraft.stats WHERE name = 'requests_in_progress'", '1'),
	'the submit waits');
$n[0]->append_conf('postgresql.conf', "multiraft.tick_interval = '10ms'\n");
$n[0]->reload;
ok(pump_until($bg->{run}, IPC::Run::timer($PostgreSQL::Test::Utils::timeout_default),
		\$bg->{stderr}, qr/timed out/), 'the submit times out');
my $elapsed = time() - $start;
cmp_ok($elapsed, '>=', 7.9, sprintf('after its 8 s, not earlier: %.1f s', $elapsed));
$bg->quit;
ok(poll_until($n[0], "SELECT value FROM multiraft.stats WHERE name = 'requests_in_progress'", '0'),
	'and its slot is freed');
$n[0]->stop;
done_testing();
