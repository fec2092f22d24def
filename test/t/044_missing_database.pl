# multiraft.database that does not exist (or was dropped, or takes no
# connections): the worker fails to connect, exits, and the postmaster starts it
# again a second later.  It used to do so forever, two log lines a second; each
# start after such failures now waits twice as long as the one before (up to
# 5 minutes), and the worker serves once the database is there.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use MultiraftTest;

my $node = PostgreSQL::Test::Cluster->new('node1');
$node->init;
$node->append_conf('postgresql.conf', node_conf(1, 'multiraft.database' => "'later'"));
$node->start;

ok($node->wait_for_log(qr/multiraft worker could not connect to database "later" at its last 2 starts; trying again in 4 s/),
	'the third start waits 4 s before it tries');
my $fatal = () = slurp_file($node->logfile) =~ /FATAL:  database "later" does not exist/g;
cmp_ok($fatal, '<=', 3, "each start tried once ($fatal failures so far)");

$node->safe_psql('postgres', 'CREATE DATABASE later');
ok(poll_until($node, "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'multiraft worker' AND datname = 'later'", '1'),
	'once the database exists, the worker connects to it');
my $offset = -s $node->logfile;
$node->safe_psql('later', 'CREATE EXTENSION multiraft');
$node->safe_psql('later', "SELECT multiraft.add_node(1, '" . $node->host . "', " . $node->port . ")");
ok($node->wait_for_log(qr/multiraft worker serving node 1/, $offset), 'and serves');

$node->stop;
done_testing();
