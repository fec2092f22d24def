# The SQL API on one node with the worker serving: what each role may do when the
# calls succeed (the error paths are in sql/api_*.sql), and remove_node refusing
# nodes that are still members of a local group (node_is_member over the status).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use MultiraftTest;

my ($node) = start_cluster(1);
my $dir = $node->host;
# node 2 is registered but never runs
$node->safe_psql('postgres', "SELECT multiraft.add_node(2, '$dir', 1)");
$node->safe_psql('postgres', q{
	CREATE ROLE app_admin LOGIN IN ROLE multiraft_admin;
	CREATE ROLE app_writer LOGIN IN ROLE multiraft_writer;
	CREATE ROLE app_reader LOGIN});
ok(poll_until($node, "SELECT value FROM multiraft.stats WHERE name = 'worker_serving'", '1'),
	'worker serves');

sub as
{
	my ($role, $sql) = @_;
	my ($ret, $out, $err) = $node->psql('postgres', "SET ROLE $role; $sql");
	return ($ret, $out, $err);
}

# multiraft_admin creates a group; the others may not
my ($ret, $out, $err) = as('app_writer', "SELECT multiraft.create_group(7, '{1}')");
like($err, qr/permission denied for function create_group/, 'a writer cannot create a group');
($ret, $out, $err) = as('app_admin', "SELECT multiraft.create_group(7, '{1}')");
is($ret, 0, 'an admin creates group 7') or diag($err);
ok(poll_until($node, "SELECT role FROM multiraft.status(7)", 'leader'), 'this node leads group 7');

# a read-only transaction changes nothing, as with nextval(); it may read
($ret, $out, $err) = $node->psql('postgres',
	"BEGIN READ ONLY; SELECT multiraft.submit(7, '\\x01', 'read-only'); COMMIT");
like($err, qr/cannot execute multiraft\.submit\(\) in a read-only transaction/,
	'no submit in a read-only transaction');
is($node->safe_psql('postgres', "SELECT count(*) FROM multiraft.events WHERE command_id = 'read-only'"),
	'0', '... and nothing was submitted');
($ret, $out, $err) = $node->psql('postgres',
	"BEGIN READ ONLY; SELECT multiraft.create_group(8, '{1}'); COMMIT");
like($err, qr/cannot execute multiraft\.create_group\(\) in a read-only transaction/,
	'no create_group in a read-only transaction');
($ret, $out, $err) = $node->psql('postgres',
	"BEGIN READ ONLY; SELECT multiraft.read_index(7) > 0; COMMIT");
is($out, 't', 'read_index in a read-only transaction') or diag($err);

# everybody reads the status; it is the same row as in multiraft.groups
($ret, $out, $err) = as('app_reader',
	"SELECT node_id, role, leader_node_id, voters, learners FROM multiraft.status(7)");
is($out, '1|leader|1|{1}|{}', 'PUBLIC reads status(7)');
($ret, $out, $err) = as('app_reader',
	"SELECT count(*) FROM multiraft.groups g, multiraft.status(7) s WHERE g = s");
is($out, '1', 'multiraft.groups shows the same row');

# multiraft_writer submits, reads and consumes; admin and reader may not
($ret, $out, $err) = as('app_admin', "SELECT multiraft.submit(7, '\\x01')");
like($err, qr/permission denied for function submit/, 'an admin cannot submit');
($ret, $out, $err) = as('app_reader', "SELECT multiraft.read_index(7)");
like($err, qr/permission denied for function read_index/, 'a reader cannot read_index');
($ret, $out, $err) = as('app_writer', "SELECT multiraft.submit(7, '\\xc0ffee', 'w-1')");
like($out, qr/^\d+$/, "a writer submits (index $out)");
my $index = $out;
($ret, $out, $err) = as('app_writer', "SELECT multiraft.read_index(7) >= $index");
is($out, 't', 'read_index covers the submitted command');
($ret, $out, $err) = as('app_writer',
	"SELECT string_agg(event_type || ':' || coalesce(command_id, ''), ',' ORDER BY event_id) "
	  . "FROM multiraft.consume_events(100, 7) WHERE event_type = 'command'");
is($out, 'command:w-1', 'a writer consumes the command event');

# membership: admin adds node 2 as a learner (one voter: commits at once)
($ret, $out, $err) = as('app_writer', "SELECT multiraft.change_membership(7, 'add_learner', 2)");
like($err, qr/permission denied for function change_membership/, 'a writer cannot change membership');
($ret, $out, $err) = as('app_admin', "SELECT multiraft.change_membership(7, 'add_learner', 2, NULL, 'learner-2')");
is($ret, 0, "an admin adds node 2 as a learner (index $out)") or diag($err);
is($node->safe_psql('postgres', "SELECT voters::text || learners::text FROM multiraft.status(7)"),
	'{1}{2}', 'status lists the learner');
is($node->safe_psql('postgres', "SELECT multiraft.node_is_member(2)"), 't', 'node 2 is a member');

# remove_node refuses members, here and for this node itself
($ret, $out, $err) = as('app_admin', "SELECT multiraft.remove_node(2)");
like($err, qr/node 2 is still a member of a group on this node/, 'remove_node refuses a learner');
($ret, $out, $err) = as('app_admin', "SELECT multiraft.remove_node(1)");
like($err, qr/node 1 is still a member of a group on this node/, 'remove_node refuses a voter');

# transfer to the current leader returns at once
($ret, $out, $err) = as('app_admin', "SELECT multiraft.transfer_leadership(7, 1, 5000)");
is($ret, 0, 'transfer_leadership to the leader itself') or diag($err);

# after removing node 2 from the group, it can be forgotten
($ret, $out, $err) = as('app_admin', "SELECT multiraft.change_membership(7, 'remove_voter', 2)");
is($ret, 0, 'an admin removes node 2 from group 7') or diag($err);
ok(poll_until($node, "SELECT multiraft.node_is_member(2)", 'f'), 'node 2 is no longer a member');

# A transaction that names node 2 in a change holds its registry row until it
# ends: remove_node waits for it, then finds the node a member (before, it checked
# the groups at once and could remove the node under a change still being made)
my $holder = $node->background_psql('postgres', on_error_stop => 0);
$holder->query_safe("BEGIN; SET ROLE app_admin; "
	  . "SELECT multiraft.change_membership(7, 'add_learner', 2, NULL, 'learner-2b')");
my $remover = $node->background_psql('postgres', on_error_stop => 0);
$remover->query_until(qr/started/, "\\echo started\nSET ROLE app_admin;\n"
	  . "SELECT multiraft.remove_node(2);\n");
ok(poll_until($node, "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
	  . "AND query LIKE '%remove_node%'", '1'), 'remove_node waits for the transaction naming node 2');
$holder->query_safe("COMMIT");
$holder->quit;
ok(pump_until($remover->{run}, $remover->{timeout}, \$remover->{stderr},
	qr/node 2 is still a member of a group on this node/), 'then finds node 2 a member');
$remover->quit;
($ret, $out, $err) = as('app_admin', "SELECT multiraft.change_membership(7, 'remove_voter', 2)");
is($ret, 0, 'an admin removes node 2 from group 7 again') or diag($err);
ok(poll_until($node, "SELECT multiraft.node_is_member(2)", 'f'), 'node 2 is no longer a member');
($ret, $out, $err) = as('app_admin', "SELECT multiraft.remove_node(2)");
is($ret, 0, 'remove_node succeeds now') or diag($err);

# the admin removes the group; then the node itself may go
($ret, $out, $err) = as('app_admin', "SELECT multiraft.remove_group(7)");
is($ret, 0, 'an admin removes group 7') or diag($err);
ok(poll_until($node, "SELECT count(*) FROM multiraft.groups", '0'), 'no group is left');
is($node->safe_psql('postgres', "SELECT multiraft.node_is_member(1)"), 'f', 'node 1 is in no group');
is($node->safe_psql('postgres', "SELECT value FROM multiraft.stats WHERE name = 'requests_in_progress'"),
	'0', 'no request slot in use');

$node->stop;
done_testing();
