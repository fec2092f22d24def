# Node-to-node transport: every worker keeps one libpq connection per peer,
# shows its state in multiraft.nodes, survives peers that die, come back or
# never answer, and refuses garbage at multiraft.receive().
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use MultiraftTest;

# Links stay in their backends (multiraft.adopt_links = off): this test cuts
# them with pg_terminate_backend.  034_link_adoption.pl covers adopted links.
my @nodes = start_cluster(3, 'multiraft.adopt_links' => 'off');

my $workers = "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'multiraft worker'";
sub worker_pid
{
	my ($node) = @_;
	return $node->safe_psql('postgres',
		"SELECT pid FROM pg_stat_activity WHERE backend_type = 'multiraft worker'");
}

# Connections come up eagerly, both ways, once every node is registered.
for my $i (0 .. 2)
{
	ok(poll_until($nodes[$i],
		"SELECT count(*) FROM multiraft.nodes WHERE connected", '3'),
		'node' . ($i + 1) . ' is connected to every peer');
	is($nodes[$i]->safe_psql('postgres',
		"SELECT string_agg(state, ',' ORDER BY node_id) FROM multiraft.nodes"),
		join(',', map { $_ == $i + 1 ? 'self' : 'connected' } 1 .. 3),
		'node' . ($i + 1) . ' link states');
}
my $pid1 = worker_pid($nodes[0]);
my $pid2 = worker_pid($nodes[1]);

# A node stopped with -m immediate shows disconnected; the others keep running
# and stay connected to each other.
$nodes[2]->stop('immediate');
for my $i (0 .. 1)
{
	ok(poll_until($nodes[$i],
		"SELECT connected FROM multiraft.nodes WHERE node_id = 3", 'f'),
		'node' . ($i + 1) . ' sees node3 disconnected');
	ok(poll_until($nodes[$i],
		"SELECT last_error IS NOT NULL FROM multiraft.nodes WHERE node_id = 3", 't'),
		'node' . ($i + 1) . ' shows why');
}
is($nodes[0]->safe_psql('postgres', "SELECT connected FROM multiraft.nodes WHERE node_id = 2"),
	't', 'node1 still connected to node2');
is(worker_pid($nodes[0]), $pid1, 'node1 worker kept running');
is(worker_pid($nodes[1]), $pid2, 'node2 worker kept running');
# reconnect attempts back off instead of spinning: a few, not hundreds
my $fails = $nodes[0]->safe_psql('postgres',
	"SELECT connect_failures FROM multiraft.nodes WHERE node_id = 3");
cmp_ok($fails, '<', 50, "node1 backs off while node3 is down ($fails failed attempts)");

# After a restart the links come back by themselves.
$nodes[2]->start;
for my $i (0 .. 2)
{
	ok(poll_until($nodes[$i],
		"SELECT count(*) FROM multiraft.nodes WHERE connected", '3'),
		'node' . ($i + 1) . ' reconnected to every peer');
}
cmp_ok($nodes[0]->safe_psql('postgres',
	"SELECT connects FROM multiraft.nodes WHERE node_id = 3"), '>=', 2,
	'node1 connected to node3 twice');

# A peer that never answers (a listening socket nobody serves) does not stall
# the worker: the link stays down and everything else keeps flowing.
my $port = PostgreSQL::Test::Cluster::get_free_port();
use IO::Socket::INET;
my $hole = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => $port,
	Listen => 5, ReuseAddr => 1) or die "listen: $!";
$nodes[0]->safe_psql('postgres', "SELECT multiraft.add_node(9, '127.0.0.1', $port)");
ok(poll_until($nodes[0],
	"SELECT state FROM multiraft.nodes WHERE node_id = 9", 'connecting'),
	'node1 is stuck connecting to a black hole');
my $before = $nodes[0]->safe_psql('postgres',
	"SELECT value FROM multiraft._transport_stats() WHERE name = 'transport_envelopes_received'");
$nodes[0]->safe_psql('postgres', "SELECT multiraft.receive('\\x080118022001')");
ok(poll_until($nodes[0],
	"SELECT value > $before FROM multiraft._transport_stats() WHERE name = 'transport_envelopes_received'",
	't'), 'node1 worker keeps draining its inbox meanwhile');
is($nodes[0]->safe_psql('postgres', "SELECT count(*) FROM multiraft.nodes WHERE connected"),
	'3', 'node1 keeps its other links');
ok(poll_until($nodes[0],
	"SELECT connect_failures > 0 AND last_error LIKE '%timed out%' FROM multiraft.nodes WHERE node_id = 9", 't', 30),
	'the black-holed connection attempt times out');
$nodes[0]->safe_psql('postgres', "SELECT multiraft.remove_node(9)");
close($hole);

# Garbage sent to receive() from a psql session: a clear ERROR, counted, and
# the worker does not notice.
my ($ret, $out, $err) = $nodes[1]->psql('postgres', "SELECT multiraft.receive('\\x0123456789abcdef')");
isnt($ret, 0, 'garbage is refused');
like($err, qr/invalid multiraft message/, 'with a clear message');
($ret, $out, $err) = $nodes[1]->psql('postgres', "SELECT multiraft.receive('\\x080218012002')");
like($err, qr/unsupported multiraft protocol version 2/, 'an unknown version is refused');
($ret, $out, $err) = $nodes[1]->psql('postgres', "SELECT multiraft.receive('\\x0801102a18012002')");
like($err, qr/from cluster 42 rejected/, 'another cluster is refused');
cmp_ok($nodes[1]->safe_psql('postgres',
	"SELECT value FROM multiraft._transport_stats() WHERE name = 'transport_rejected'"),
	'>=', 3, 'rejections are counted');
is(worker_pid($nodes[1]), $pid2, 'node2 worker still the same process');
is($nodes[1]->safe_psql('postgres', "SELECT count(*) FROM multiraft.nodes WHERE connected"),
	'3', 'node2 links unaffected');

# Sender ids that are not in multiraft.node: the worker would keep a peer for
# each for good.  receive() refuses them with an error, the worker drops those
# of a link; both are counted.
my $unreg = transport_counter($nodes[1], 'transport_rejected_unregistered');
($ret, $out, $err) = $nodes[1]->psql('postgres', "SELECT multiraft.receive('\\x080118082002')");
like($err, qr/from node 8, which is not registered/, 'a frame from an unregistered node is refused');
# 1000 forged sender ids 200 .. 1199 (two-byte varints)
is($nodes[1]->safe_psql('postgres', q{
	DO $$
	DECLARE refused int := 0;
	BEGIN
		FOR i IN 200 .. 1199 LOOP
			BEGIN
				PERFORM multiraft.receive('\x080118'::bytea
					|| decode(lpad(to_hex(i % 128 + 128), 2, '0') || lpad(to_hex(i / 128), 2, '0'), 'hex')
					|| '\x2002'::bytea);
			EXCEPTION WHEN invalid_parameter_value THEN
				refused := refused + 1;
			END;
		END LOOP;
		RAISE NOTICE 'refused %', refused;
	END $$;
	SELECT value FROM multiraft._transport_stats() WHERE name = 'transport_rejected_unregistered'}),
	$unreg + 1001, 'frames claiming 1000 other unregistered senders are all refused and counted');
is(mr_link($nodes[1], 8, 2, 0, '\x080118082002', '\x080118082002'), 'done',
	'a link from an unregistered node may open');
ok(poll_until($nodes[1],
	"SELECT value FROM multiraft._transport_stats() WHERE name = 'transport_rejected_unregistered'",
	$unreg + 1003), 'but the worker drops its frames');

# Decode amplification: a frame of empty messages ("2a 00" repeated) would
# make protobuf-c allocate ~150 times its size; the decoder's budget refuses
# it.  A frame from node1 (registered) to node2:
my $hostile = "'\\x080118012002'::bytea || decode(repeat('2a00', 280000), 'hex')";
($ret, $out, $err) = $nodes[1]->psql('postgres', "SELECT multiraft.receive($hostile)");
like($err, qr/decoding it would take more than \d+ bytes of memory/,
	'a frame of 280000 empty messages is refused for its decoded size');

# The same as a reassembled batch of 2 MB: four chunk frames (as node1), which
# the worker reassembles, then refuses to decode.
sub varint
{
	my ($v) = @_;
	my $s = '';
	while ($v >= 128) { $s .= chr(($v & 127) | 128); $v >>= 7; }
	return $s . chr($v);
}
my $batch = pack('H*', '080118012002') . ("\x2a\x00" x (1024 * 1024));
my $count = int((length($batch) + 512 * 1024 - 1) / (512 * 1024));
my $log_offset = -s $nodes[1]->logfile;
for my $i (0 .. $count - 1)
{
	my $data = substr($batch, $i * 512 * 1024, 512 * 1024);
	my $chunk = "\x08" . varint(4242) . "\x10" . varint($i) . "\x18" . varint($count)
	  . "\x20" . varint(length($batch)) . "\x2a" . varint(length($data)) . $data;
	my $frame = pack('H*', '080118012002') . "\x42" . varint(length($chunk)) . $chunk;
	$nodes[1]->safe_psql('postgres', "SELECT multiraft.receive('\\x" . unpack('H*', $frame) . "')");
}
ok($nodes[1]->wait_for_log(qr/rejected a reassembled message: could not decode multiraft message of 2097158 bytes: decoding it would take more than/,
	$log_offset), 'a reassembled batch of empty messages is refused for its decoded size');
is(worker_pid($nodes[1]), $pid2, 'node2 worker survived all of it');
is($nodes[1]->safe_psql('postgres', "SELECT count(*) FROM multiraft.nodes WHERE connected"),
	'3', 'node2 links still unaffected');

# multiraft.node_conninfo reaches the connections opened after a reload: cut
# node1's link on node2's side and watch it come back with the new options.
$nodes[0]->append_conf('postgresql.conf', "multiraft.node_conninfo = 'application_name=mr_peer_link'\n");
$nodes[0]->reload;
$nodes[1]->safe_psql('postgres',
	"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'multiraft node 1'");
ok(poll_until($nodes[1],
	"SELECT count(*) FROM pg_stat_activity WHERE application_name = 'mr_peer_link'", '1'),
	'node1 reconnected to node2 using multiraft.node_conninfo');
ok(poll_until($nodes[0], "SELECT connected FROM multiraft.nodes WHERE node_id = 2", 't'),
	'node1 shows the link to node2 up again');

# A role without multiraft_peer cannot call receive().
$nodes[1]->safe_psql('postgres', 'CREATE ROLE outsider LOGIN');
($ret, $out, $err) = $nodes[1]->psql('postgres', "SELECT multiraft.receive('\\x080118012002')",
	extra_params => [ '-U', 'outsider' ]);
like($err, qr/permission denied for function receive/, 'outsider may not call receive()');

$_->stop for @nodes;
done_testing();
