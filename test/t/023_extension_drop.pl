# DROP EXTENSION while the worker serves: it goes back to waiting for CREATE
# EXTENSION, and serves again (with empty tables) once the extension is back.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use MultiraftTest;

my ($node) = start_cluster(1);
sub sql { return $node->safe_psql('postgres', $_[0]); }
# The worker notices CREATE EXTENSION within a second.
ok(poll_until($node, "SELECT value FROM multiraft.stats WHERE name = 'worker_serving'", '1'), 'the worker serves');

sql("SELECT multiraft.create_group(1, ARRAY[1])");
ok(poll_until($node, "SELECT role FROM multiraft.status(1)", 'leader'), 'group 1 led here');
sql("SELECT multiraft.submit(1, '\\x01'::bytea, 'before-drop')");
my $pid = sql("SELECT pid FROM pg_stat_activity WHERE backend_type = 'multiraft worker'");

my $offset = -s $node->logfile;
sql("DROP EXTENSION multiraft");
ok($node->wait_for_log(qr/multiraft worker: extension dropped; waiting for CREATE EXTENSION/, $offset),
	'the worker notices the drop');
is(sql("SELECT pid FROM pg_stat_activity WHERE backend_type = 'multiraft worker'"), $pid,
	'the same worker process keeps running');

$offset = -s $node->logfile;
sql("CREATE EXTENSION multiraft");
sql("SELECT multiraft.add_node(1, '" . $node->host . "', " . $node->port . ")");
ok($node->wait_for_log(qr/multiraft worker serving node 1/, $offset), 'it serves again after CREATE EXTENSION');
is(sql("SELECT count(*) FROM multiraft.groups"), '0', 'no group survives the drop');
sql("SELECT multiraft.create_group(1, ARRAY[1])");
ok(poll_until($node, "SELECT role FROM multiraft.status(1)", 'leader'), 'group 1 can be created again');
my $i = sql("SELECT multiraft.submit(1, '\\x02'::bytea, 'before-drop')");
is(sql("SELECT count(*) FROM multiraft.events WHERE command_id = 'before-drop' AND log_index = $i"), '1',
	'the new group starts from scratch');

# Dropped and created again in one transaction: the same name, other tables.
# The worker must not go on serving the node it had in memory (it showed group
# 1 led here over empty tables, until a write failed on a vanished relation).
$offset = -s $node->logfile;
sql("BEGIN; DROP EXTENSION multiraft; CREATE EXTENSION multiraft; COMMIT;");
ok($node->wait_for_log(qr/multiraft worker: extension dropped; waiting for CREATE EXTENSION/, $offset),
	'the worker notices a drop and create in one transaction');
sql("SELECT multiraft.add_node(1, '" . $node->host . "', " . $node->port . ")");
ok($node->wait_for_log(qr/multiraft worker serving node 1/, $offset), 'and serves the new extension');
is(sql("SELECT count(*) FROM multiraft.groups"), '0', 'with none of the old groups');

$node->stop;
done_testing();
