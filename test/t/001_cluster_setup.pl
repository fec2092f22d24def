# Three preloaded nodes: each runs the multiraft worker, registers every node,
# and the set-up errors of SPEC.md are raised where they belong.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use MultiraftTest;

my @nodes = start_cluster(3);

for my $i (0 .. 2)
{
	my $node = $nodes[$i];
	ok(poll_until($node,
		"SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'multiraft worker'", '1'),
		"node" . ($i + 1) . " runs the multiraft worker");
	is($node->safe_psql('postgres', 'SELECT string_agg(node_id::text, \',\' ORDER BY node_id) FROM multiraft.nodes'),
		'1,2,3', "node" . ($i + 1) . " knows every node");
}

# The worker logs that it serves once CREATE EXTENSION ran.
ok($nodes[0]->wait_for_log(qr/multiraft worker serving node 1/), 'worker serves after CREATE EXTENSION');

# CREATE EXTENSION outside multiraft.database is refused.
$nodes[0]->safe_psql('postgres', 'CREATE DATABASE other');
my ($ret, $out, $err) = $nodes[0]->psql('other', 'CREATE EXTENSION multiraft');
isnt($ret, 0, 'CREATE EXTENSION in another database fails');
like($err, qr/multiraft can only be created in database "postgres"/, 'and says which database');

# SIGTERM stops the worker cleanly and the postmaster restarts it.
my $pid = $nodes[1]->safe_psql('postgres',
	"SELECT pid FROM pg_stat_activity WHERE backend_type = 'multiraft worker'");
$nodes[1]->safe_psql('postgres', "SELECT pg_terminate_backend($pid)");
ok(poll_until($nodes[1],
	"SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'multiraft worker' AND pid <> $pid", '1'),
	'worker restarted after SIGTERM');

# SIGHUP reloads settings in the worker without restarting it.
my $pid2 = $nodes[2]->safe_psql('postgres',
	"SELECT pid FROM pg_stat_activity WHERE backend_type = 'multiraft worker'");
$nodes[2]->append_conf('postgresql.conf', "multiraft.tick_interval = '30ms'\n");
$nodes[2]->reload;
is($nodes[2]->safe_psql('postgres', 'SHOW multiraft.tick_interval'), '30ms', 'reload applied');
is($nodes[2]->safe_psql('postgres',
	"SELECT pid FROM pg_stat_activity WHERE backend_type = 'multiraft worker'"), $pid2,
	'worker kept running across reload');

# A node without multiraft.node_id: the worker idles and SQL functions refuse.
my $bare = PostgreSQL::Test::Cluster->new('bare');
$bare->init;
$bare->append_conf('postgresql.conf', "shared_preload_libraries = 'multiraft'\n");
$bare->start;
ok($bare->wait_for_log(qr/multiraft worker idle: multiraft.node_id is not set/),
	'worker without node_id logs why it idles');
$bare->safe_psql('postgres', 'CREATE EXTENSION multiraft');
($ret, $out, $err) = $bare->psql('postgres', "SELECT multiraft.add_node(1, '127.0.0.1', 5432)");
like($err, qr/multiraft.node_id is not set/, 'SQL functions need multiraft.node_id');

# Without shared_preload_libraries the library refuses to load.
my $unloaded = PostgreSQL::Test::Cluster->new('unloaded');
$unloaded->init;
$unloaded->start;
($ret, $out, $err) = $unloaded->psql('postgres', 'CREATE EXTENSION multiraft');
like($err, qr/multiraft must be loaded via shared_preload_libraries/,
	'loading without shared_preload_libraries is an error');

$_->stop for (@nodes, $bare, $unloaded);
done_testing();
