# The node link's receive side, CALL multiraft.receive_stream(): one long call
# per link that holds no snapshot, outlives statement_timeout, refuses a wrong
# cluster or node up front, drops (and counts) bad frames without losing the
# link, and is closed to everyone but multiraft_peer; and the sending side,
# which cuts a link whose backend stopped reading.  test/tools/mr_link plays
# the peer's worker.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use MultiraftTest;

# The backend's side of a link: multiraft.adopt_links = off keeps every link
# there (034_link_adoption.pl covers the hand-over to the worker).
my @n = start_cluster(2, 'multiraft.adopt_links' => 'off');
my $links = "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'CALL multiraft.receive_stream(%'";

sub sql { my ($i, $q) = @_; return $n[$i]->safe_psql('postgres', $q); }

ok(poll_until($n[0], "SELECT count(*) FROM multiraft.nodes WHERE connected", '2'),
	'node1 linked to node2');
ok(poll_until($n[0], "$links AND state = 'active' AND backend_xmin IS NULL AND backend_xid IS NULL AND xact_start IS NULL", '1'),
	'the link from node2 is one active call holding no snapshot, no xid, no open-ended transaction');
is(sql(0, "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid)
            WHERE a.query LIKE 'CALL multiraft.receive_stream(%' AND l.locktype <> 'virtualxid'"),
	'0', 'and no lock but its virtual xid');
# So a concurrent index build, which waits out older snapshots, does not wait for it.
sql(0, 'CREATE TABLE cic (x int)');
my ($ret, $out, $err) = $n[0]->psql('postgres',
	"SET statement_timeout = '60s'; CREATE INDEX CONCURRENTLY cic_x ON cic (x)");
is($ret, 0, 'CREATE INDEX CONCURRENTLY is not held up by the links' . ($err ? ": $err" : ''));

# Refused before the stream opens: the sender sees why.
like(mr_link($n[0], 2, 1, 42), qr/from cluster 42 rejected/, 'another cluster is refused at the door');
like(mr_link($n[0], 2, 7, 0), qr/link for node 7 reached node 1/, 'a link meant for another node is refused');
like(mr_link($n[0], 1, 1, 0), qr/link from invalid node 1/, 'a link claiming to come from this node is refused');
($ret, $out, $err) = $n[0]->psql('postgres',
	'BEGIN; CALL multiraft.receive_stream(2, 1, 0); COMMIT;');
like($err, qr/must be called with CALL outside a transaction block/,
	'inside a transaction block it would hold a snapshot: refused');

# Frames: good ones reach the worker, bad ones are dropped and counted, and the
# stream goes on to the end.
my $rejected = transport_counter($n[0], 'transport_rejected');
my $envelopes = transport_counter($n[0], 'transport_envelopes_received');
is(mr_link($n[0], 2, 1, 0, '\x080118022001', '\x0123456789abcdef', '\x080118032001', '\x080118022001'),
	'done', 'a stream with two bad frames among good ones runs to its end');
is(transport_counter($n[0], 'transport_rejected') - $rejected, 2, 'the garbage and the frame from another node are counted');
ok(poll_until($n[0],
	"SELECT value >= $envelopes + 2 FROM multiraft._transport_stats() WHERE name = 'transport_envelopes_received'",
	't'), 'the two good frames reached the worker');
like(mr_link($n[0], 2, 1, 0, '--fail', 'sender gave up', '\x080118022001'),
	qr/multiraft node link ended by the peer: sender gave up/, 'CopyFail ends the call with the reason');
is(sql(0, "SELECT count(*) FROM multiraft.nodes WHERE connected"), '2',
	'the real link was not disturbed');

# statement_timeout is for statements, not for links.
sql(0, "ALTER SYSTEM SET statement_timeout = '200ms'");
$n[0]->reload;
sql(0, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE 'CALL multiraft.receive_stream(%'");
ok(poll_until($n[0], "$links AND state = 'active'", '1'), 'node2 opened a new link');
my $pid = sql(0, "SELECT pid FROM pg_stat_activity WHERE query LIKE 'CALL multiraft.receive_stream(%'");
my $connects = sql(1, "SELECT connects FROM multiraft.nodes WHERE node_id = 1");
sql(1, "SELECT multiraft.create_group(1, '{1,2}')");
ok(poll_until($n[1], "SELECT leader_node_id IS NOT NULL FROM multiraft.status(1)", 't'), 'group 1 has a leader');
# Traffic over the link for well past the timeout.
my $t0 = time();
my $submits = 0;
while (time() - $t0 < 2)
{
	sql(1, "SELECT multiraft.submit(1, '\\x01')");
	$submits++;
}
cmp_ok($submits, '>', 0, "commands went through ($submits)");
is(sql(0, "SELECT pid FROM pg_stat_activity WHERE query LIKE 'CALL multiraft.receive_stream(%'"),
	$pid, 'the link backend outlived statement_timeout');
is(sql(1, "SELECT connects FROM multiraft.nodes WHERE node_id = 1"), $connects,
	'node2 did not have to reconnect');
sql(0, "ALTER SYSTEM RESET statement_timeout");
$n[0]->reload;

# A link whose backend stops reading (SIGSTOP) is cut once the sender's output
# has been stuck for 15 s, and a new one takes its place.
$n[1]->psql('postgres', 'SELECT multiraft.transfer_leadership(1, 2)');
ok(poll_until($n[1], "SELECT leader_node_id FROM multiraft.status(1)", '2'), 'node2 leads group 1');
my $stuck = sql(0, "SELECT pid FROM pg_stat_activity WHERE query LIKE 'CALL multiraft.receive_stream(%'");
kill 'STOP', $stuck;
# 1 MB entries that node2 must send to node1 fill the socket buffers (they
# cannot commit without node1: each submit times out).
for my $i (1 .. 24)
{
	$n[1]->psql('postgres',
		"SELECT multiraft.submit(1, pg_catalog.convert_to(repeat('x', 1000000), 'UTF8'), NULL, 100)");
}
ok(poll_until($n[1], "SELECT last_error LIKE '%stopped reading%' FROM multiraft.nodes WHERE node_id = 1", 't', 60),
	'node2 cuts the link that stopped reading');
kill 'CONT', $stuck;
ok(poll_until($n[0], "SELECT count(*) FROM pg_stat_activity WHERE pid = $stuck", '0'),
	'the stopped backend goes once it runs again');
ok(poll_until($n[1], "SELECT connected FROM multiraft.nodes WHERE node_id = 1", 't'),
	'node2 linked again');
is(sql(1, "SELECT multiraft.submit(1, '\\x02') > 0"), 't', 'and group 1 commits again');

# The sender learns why its stream ended.
sql(0, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE 'CALL multiraft.receive_stream(%'");
ok(poll_until($n[1], "SELECT last_error LIKE '%terminating connection%' FROM multiraft.nodes WHERE node_id = 1", 't'),
	'node2 shows why its link ended');
ok(poll_until($n[1], "SELECT connected FROM multiraft.nodes WHERE node_id = 1", 't'),
	'and links again');

# Only multiraft_peer.
sql(0, 'CREATE ROLE outsider LOGIN');
($ret, $out, $err) = $n[0]->psql('postgres', 'CALL multiraft.receive_stream(2, 1, 0)',
	extra_params => [ '-U', 'outsider' ]);
like($err, qr/permission denied for procedure receive_stream/, 'outsider may not open a link');

# A link that carried frames and then nothing for a minute is ended: its peer
# vanished without a word (a host rebooted, a partition swallowed its packets)
# and has opened another link since; before, the backend waited in a read for
# as long as TCP let it (hours without keepalives), holding a connection slot.
like(mr_link($n[0], 2, 1, 0, '--silent', '\x080118022001'),
	qr/no message from node 2 for 60 s: ending its link/,
	'a link silent for a minute after its frames is ended');

$_->stop for @n;
done_testing();
