# Transport under pressure: the smallest inbox, large commands (each one chunked
# on the wire) submitted on every node at once, and a peer's receiving backends
# killed in the middle.  Whatever is dropped on the way (full inbox, lost
# chunks, cut connections) is counted, Raft resends it, and every member ends
# with the same events.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use MultiraftTest;
use Time::HiRes qw(time);

# Links stay in their backends (multiraft.adopt_links = off), so frames go
# through the small inbox and the links can be cut with pg_terminate_backend.
my @n = start_cluster(3, 'multiraft.inbox_size' => "'2304kB'", 'multiraft.adopt_links' => 'off');

for my $i (0 .. 2)
{
	ok(poll_until($n[$i], "SELECT count(*) FROM multiraft.nodes WHERE connected", '3'),
		'node' . ($i + 1) . ' connected');
}
$n[0]->safe_psql('postgres', "SELECT multiraft.create_group(7, ARRAY[1, 2, 3])");
ok(poll_until($n[$_], "SELECT leader_node_id IS NOT NULL FROM multiraft.status(7)", 't'),
	'node' . ($_ + 1) . ' knows the leader of group 7') for 0 .. 2;

# 3 nodes x 8 commands of 600 kB each, concurrently.
my $per_node = 8;
my $t0 = time();
my @runs;
for my $i (0 .. 2)
{
	my $sql = join('', map {
		"SELECT multiraft.submit(7, decode(repeat(lpad(to_hex($i * 100 + $_), 2, '0'), 600000), 'hex'), "
		  . "'big-$i-$_', 60000);\n" } 1 .. $per_node);
	my ($out, $err) = ('', '');
	my $h = IPC::Run::start(
		[ 'psql', '-XAtq', '-v', 'ON_ERROR_STOP=1', '-d', $n[$i]->connstr('postgres'), '-c', $sql ],
		'>', \$out, '2>', \$err);
	push @runs, [ $h, \$out, \$err ];
}

# Meanwhile cut node1's receiving connections on node2 twice.
for (1 .. 2)
{
	Time::HiRes::sleep(0.5);
	$n[1]->safe_psql('postgres',
		"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'multiraft node 1'");
}

my $failed = 0;
for my $r (@runs)
{
	$r->[0]->finish;
	if ($r->[0]->result != 0)
	{
		$failed++;
		diag('submit session failed: ' . ${ $r->[2] });
	}
}
is($failed, 0, 'every large submit committed');
my $elapsed = time() - $t0;
note(sprintf('%d commands of 600 kB committed in %.1f s', 3 * $per_node, $elapsed));

# Every member ends up with the same 24 commands, payloads intact.
my $q = "SELECT count(*) || ':' || coalesce(md5(string_agg(command_id || md5(payload), ',' ORDER BY log_index)), '')
           FROM multiraft.events WHERE group_id = 7 AND event_type = 'command'";
ok(poll_until($n[0], "SELECT count(*) FROM multiraft.events WHERE group_id = 7 AND event_type = 'command'",
	3 * $per_node), 'node1 has every command');
my $want = $n[0]->safe_psql('postgres', $q);
for my $i (1 .. 2)
{
	ok(poll_until($n[$i], $q, $want), 'node' . ($i + 1) . ' has the same commands in the same order');
}
is($n[2]->safe_psql('postgres',
	"SELECT count(*) FROM multiraft.events WHERE group_id = 7 AND event_type = 'command'
	    AND payload <> decode(repeat(lpad(to_hex(substring(command_id FROM 'big-(\\d)')::int * 100
	                                + substring(command_id FROM 'big-\\d-(\\d+)')::int), 2, '0'), 600000), 'hex')"),
	'0', 'no payload was damaged on the way');

for my $i (0 .. 2)
{
	my %s = map { split /\|/ } split /\n/, $n[$i]->safe_psql('postgres',
		"SELECT name || '|' || value FROM multiraft._transport_stats()");
	note(sprintf('node%d: chunks %d, chunked batches %d, reassembly failures %d, inbox drops %d, '
		  . 'send drops %d, disconnects %d, rejected %d',
		$i + 1, map { $s{"transport_$_"} // -1 }
		  qw(chunks_received chunked_batches_received reassembly_failures inbox_drops
		  send_drops disconnects rejected)));
	is($s{transport_rejected}, 0, 'node' . ($i + 1) . ' rejected nothing its peers sent');
}
is(scalar(grep { $_ > 0 } map {
	$n[$_]->safe_psql('postgres', "SELECT value FROM multiraft._transport_stats() WHERE name = 'transport_chunked_batches_received'")
} 0 .. 2), 3, 'every node reassembled chunked batches');

$_->stop for @n;
done_testing();
