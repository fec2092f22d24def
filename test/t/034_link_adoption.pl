# Adopted node links (src/pg/transport_adopt.c): a receive_stream() backend
# hands its connection to the worker after the handshake and exits, and the
# worker reads the stream itself.  The links carry commands, chunked large
# ones included; bad frames are dropped and counted, broken framing closes
# only that link, a hand-over datagram that is not one is ignored, a worker
# restart re-adopts every link, and multiraft.adopt_links = off keeps new
# links in their backends.  test/tools/mr_link plays a peer's worker.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Socket;
use Cwd ();
use MultiraftTest;

my @n = start_cluster(3);
my $backends = "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'CALL multiraft.receive_stream(%'";

sub sql { my ($i, $q) = @_; return $n[$i]->safe_psql('postgres', $q); }
sub worker_pid
{
	my ($i) = @_;
	return sql($i, "SELECT pid FROM pg_stat_activity WHERE backend_type = 'multiraft worker'");
}

for my $i (0 .. 2)
{
	# multiraft.nodes shows this node too, as connected
	ok(poll_until($n[$i], "SELECT count(*) FROM multiraft.nodes WHERE connected", '3'),
		"node" . ($i + 1) . " linked to both peers");
	ok(poll_until($n[$i], $backends, '0'), "node" . ($i + 1) . " serves no link in a backend");
	cmp_ok(transport_counter($n[$i], 'transport_links_adopted'), '>=', 2, "node" . ($i + 1) . " adopted its links");
}
my $sock = $n[0]->data_dir . '/pg_stat_tmp/multiraft_links.socket';
ok(-S $sock, 'the hand-over socket is in the data directory (pg_stat_tmp)');
is(sprintf('%o', (stat $sock)[2] & 0777), '600', 'and only the server user may use it');

# Commands, small and chunked, cross adopted links.
sql(0, "SELECT multiraft.create_group(1, '{1,2,3}')");
ok(poll_until($n[2], "SELECT leader_node_id IS NOT NULL FROM multiraft.status(1)", 't'), 'group 1 has a leader');
for my $i (1 .. 10)
{
	sql($i % 3, sprintf("SELECT multiraft.submit(1, '\\x0a%02x')", $i));
}
sql(1, "SELECT multiraft.submit(1, pg_catalog.convert_to(repeat('y', 700000), 'UTF8'))");
for my $i (0 .. 2)
{
	ok(poll_until($n[$i],
		"SELECT count(*) FROM multiraft.events WHERE group_id = 1 AND event_type = 'command'", '11'),
		'node' . ($i + 1) . ' applied all 11 commands');
}
is(sql(2, "SELECT max(length(payload)) FROM multiraft.events WHERE group_id = 1"), '700000',
	'the chunked command arrived whole');
cmp_ok(transport_counter($n[0], 'transport_chunked_batches_received') + transport_counter($n[2], 'transport_chunked_batches_received'),
	'>', 0, 'in chunks');

# Frames on an adopted link: good ones reach the worker, bad ones are dropped
# and counted, and the stream goes on to its CopyDone.  mr_link plays node 9,
# registered (nothing listens there: the worker only receives from it).
sql(0, "SELECT multiraft.add_node(9, '/nonexistent', 5432)");
ok(poll_until($n[0], "SELECT count(*) FROM multiraft._transport_peers() WHERE node_id = 9", '1'),
	'node1 loaded node 9');
my $rejected = transport_counter($n[0], 'transport_rejected');
my $envelopes = transport_counter($n[0], 'transport_envelopes_received');
my $adopted = transport_counter($n[0], 'transport_links_adopted');
is(mr_link($n[0], 9, 1, 0, '\x080118092001', '\x0123456789abcdef', '\x080118022001', '\x080118092001'),
	'done', 'a stream with two bad frames among good ones runs to its end');
cmp_ok(transport_counter($n[0], 'transport_links_adopted'), '>=', $adopted + 1, 'the worker served it');
ok(poll_until($n[0], "SELECT value - $rejected FROM multiraft._transport_stats() WHERE name = 'transport_rejected'", '2'),
	'the garbage and the frame naming another sender are counted');
cmp_ok(transport_counter($n[0], 'transport_envelopes_received'), '>=', $envelopes + 2, 'the two good frames reached the worker');

# Refused before the hand-over, as before.
like(mr_link($n[0], 9, 1, 42), qr/from cluster 42 rejected/, 'another cluster is refused at the door');

my $pid1 = worker_pid(0);
my $log_offset = -s $n[0]->logfile;
like(mr_link($n[0], 9, 1, 0, '--fail', 'sender gave up', '\x080118092001'), qr/error/,
	'CopyFail ends an adopted stream');
ok($n[0]->wait_for_log(qr/link from node 9 ended by the peer: sender gave up/, $log_offset),
	'and the worker logs why');

# Broken framing closes that link only.
is(mr_link($n[0], 9, 1, 0, '--raw', 'ff00000004'), 'closed', 'an unknown message type closes the link');
is(mr_link($n[0], 9, 1, 0, '--raw', '647fffffff'), 'closed', 'a CopyData longer than any frame closes the link');
is(mr_link($n[0], 9, 1, 0, '--raw', '6400000002'), 'closed', 'a length shorter than its own field closes the link');
is(mr_link($n[0], 9, 1, 0, '--raw', '6400000010000102'), 'open', 'half a message waits for the rest');
is(worker_pid(0), $pid1, 'the worker lives on');
is(sql(0, "SELECT count(*) FROM multiraft.nodes WHERE connected"), '3', 'the real links were not disturbed');

# Frames of an adopted link from a node that is not registered are dropped.
sql(0, "SELECT multiraft.remove_node(9)");
ok(poll_until($n[0], "SELECT count(*) FROM multiraft._transport_peers() WHERE node_id = 9", '0'),
	'node1 forgot node 9');
my $unreg = transport_counter($n[0], 'transport_rejected_unregistered');
is(mr_link($n[0], 9, 1, 0, '\x080118092001', '\x080118092001'), 'done', 'an unregistered node may still open a link');
ok(poll_until($n[0], "SELECT value - $unreg FROM multiraft._transport_stats() WHERE name = 'transport_rejected_unregistered'", '2'),
	'but the worker drops and counts its frames');

# Anything on the hand-over socket that is not a hand-over is ignored.  (From
# the data directory: the full path may exceed what sockaddr_un holds.)
{
	my $cwd = Cwd::getcwd();
	$rejected = transport_counter($n[0], 'transport_rejected');
	chdir $n[0]->data_dir or die "chdir: $!";
	socket(my $s, PF_UNIX, SOCK_DGRAM, 0) or die "socket: $!";
	my $to = pack_sockaddr_un('pg_stat_tmp/multiraft_links.socket');
	send($s, 'not a hand-over', 0, $to) or die "send: $!";
	send($s, pack('Llll', 0x4d524c4b, 2, 1, 0), 0, $to) or die "send: $!";
	close $s;
	chdir $cwd or die "chdir: $!";
	ok(poll_until($n[0], "SELECT value - $rejected FROM multiraft._transport_stats() WHERE name = 'transport_rejected'", '2'),
		'a stray datagram and one without a socket are counted and ignored');
	is(worker_pid(0), $pid1, 'the worker lives on');
}

# A worker restart closes the adopted links; the peers link again and are adopted.
$adopted = transport_counter($n[0], 'transport_links_adopted');
sql(0, "SELECT pg_terminate_backend($pid1)");
ok(poll_until($n[0], "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'multiraft worker' AND pid <> $pid1", '1'),
	'node1 has a new worker');
ok(poll_until($n[0], "SELECT value >= $adopted + 2 FROM multiraft._transport_stats() WHERE name = 'transport_links_adopted'", 't'),
	'which adopted the peers\' new links');
ok(poll_until($n[1], "SELECT count(*) FROM multiraft.nodes WHERE connected", '3'), 'node2 linked again');
sql(0, "SELECT multiraft.submit(1, '\\x0b01')");
ok(poll_until($n[2], "SELECT count(*) FROM multiraft.events WHERE group_id = 1 AND event_type = 'command'", '12'),
	'a command submitted on node1 commits everywhere');

# multiraft.adopt_links = off: new links stay in their backends, and work.
sql(0, 'ALTER SYSTEM SET multiraft.adopt_links = off');
$n[0]->reload;
my $pid2 = worker_pid(0);
sql(0, "SELECT pg_terminate_backend($pid2)");
ok(poll_until($n[0], "SELECT count(*) FROM multiraft.nodes WHERE connected", '3')
	&& poll_until($n[1], "SELECT connected FROM multiraft.nodes WHERE node_id = 1", 't')
	&& poll_until($n[2], "SELECT connected FROM multiraft.nodes WHERE node_id = 1", 't'),
	'node1 has a new worker, linked both ways');
ok(poll_until($n[0], $backends, '2'), 'with adopt_links off the links are served by backends');
for my $i (1 .. 3)
{
	sql($i % 3, sprintf("SELECT multiraft.submit(1, '\\x0c%02x')", $i));
}
for my $i (0 .. 2)
{
	ok(poll_until($n[$i], "SELECT count(*) FROM multiraft.events WHERE group_id = 1 AND event_type = 'command'", '15'),
		'node' . ($i + 1) . ' applied the commands sent over backend links');
}

$_->stop for @n;
done_testing();
