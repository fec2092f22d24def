# A node removed while a chunked batch of its was half received: its
# reassembly ends with its registration.  It used to keep its slot (and its
# buffer) until it sent again, which a removed node never does: with 64 such
# nodes every slot was taken, and no chunked batch was taken from anyone.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use MultiraftTest;

my ($node) = start_cluster(1);
ok(poll_until($node, "SELECT value FROM multiraft.stats WHERE name = 'worker_serving'", '1'),
	'the worker serves');

sub varint
{
	my ($v) = @_;
	my $s = '';
	while ($v >= 128) { $s .= chr(($v & 127) | 128); $v >>= 7; }
	return $s . chr($v);
}

# Batch header: version 1, from_node $from, to_node 1 (cluster id 0).
sub header { my ($from) = @_; return "\x08\x01\x18" . varint($from) . "\x20\x01"; }

# Chunk $i of $count of the encoded batch $batch, as a frame from $from.
sub chunk_frame
{
	my ($from, $batch, $i, $count) = @_;
	my $size = int((length($batch) + $count - 1) / $count);
	my $data = substr($batch, $i * $size, $size);
	my $chunk = "\x08" . varint(7000 + $from) . "\x10" . varint($i) . "\x18" . varint($count)
	  . "\x20" . varint(length($batch)) . "\x2a" . varint(length($data)) . $data;
	return header($from) . "\x42" . varint(length($chunk)) . $chunk;
}

sub receive
{
	my ($frame) = @_;
	$node->safe_psql('postgres', "SELECT multiraft.receive('\\x" . unpack('H*', $frame) . "')");
}

# Sixty-five registered nodes that do not run (their links fail at once).
$node->safe_psql('postgres',
	"SELECT multiraft.add_node(n, '/nonexistent', 5432) FROM generate_series(100, 164) n");

# Sixty-four of them send the first half of a batch, which the worker takes.
my $chunks = transport_counter($node, 'transport_chunks_received');
receive(chunk_frame($_, header($_), 0, 2)) for 100 .. 163;
ok(poll_until($node,
	"SELECT value FROM multiraft._transport_stats() WHERE name = 'transport_chunks_received'",
	$chunks + 64), 'the worker took 64 first halves');

# They are removed before the rest arrives.
$node->safe_psql('postgres', "SELECT multiraft.remove_node(n) FROM generate_series(100, 163) n");

# The last one sends a whole chunked batch: it is reassembled.
my $batches = transport_counter($node, 'transport_chunked_batches_received');
receive(chunk_frame(164, header(164), $_, 2)) for 0 .. 1;
ok(poll_until($node,
	"SELECT value FROM multiraft._transport_stats() WHERE name = 'transport_chunked_batches_received'",
	$batches + 1, 60), 'a chunked batch is reassembled after 64 senders were removed mid-stream');
cmp_ok(transport_counter($node, 'transport_reassembly_failures'), '>=', 64,
	'the 64 abandoned reassemblies are counted');

$node->stop;
done_testing();
