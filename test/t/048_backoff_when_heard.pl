# A peer that reaches this node while this node cannot reach it (a wrong port
# here, no pg_hba entry or no free connection slot there) is retried with the
# backoff (100 ms growing to 2 s), once early when it is first heard: every
# envelope from it reset the backoff and retried at once, at the rate of its
# envelopes (found by a review; transport.c, transport_peer_heard).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use MultiraftTest;

my ($node) = start_cluster(1);
sub sql { return $node->safe_psql('postgres', $_[0]); }
ok(poll_until($node, "SELECT value FROM multiraft.stats WHERE name = 'worker_serving'", '1'),
	'the worker serves');
my $port = PostgreSQL::Test::Cluster::get_free_port();    # nothing listens there
sql("SELECT multiraft.add_node(5, '127.0.0.1', $port)");
ok(poll_until($node, "SELECT connect_failures >= 5 FROM multiraft.nodes WHERE node_id = 5", 't'),
	'node 5 cannot be reached; the backoff has grown');
my $before = sql("SELECT connect_failures FROM multiraft.nodes WHERE node_id = 5");
# Node 5 speaks to us: an empty envelope (version 1, cluster 0, node 5 -> node 1)
# every 20 ms for 10 s, as a live peer's liveness and raft messages would.
sql("DO \$\$ BEGIN FOR i IN 1 .. 500 LOOP
       PERFORM multiraft.receive('\\x080118052001'::bytea); PERFORM pg_sleep(0.02);
     END LOOP; END \$\$");
my $after = sql("SELECT connect_failures FROM multiraft.nodes WHERE node_id = 5");
cmp_ok($after - $before, '<=', 10,
	'retried with the backoff (about 5 attempts in 10 s), not at every envelope heard: ' . ($after - $before));
done_testing();
