# A node removed from a group while it was down never hears of the removal: the
# leader no longer talks to it.  When it comes back, its replica still believes
# it is a member and asks for votes; the members tell it it was removed
# (MR_HB_REPLICA_REMOVED, docs/multiraft-layer.md), and its node drops the replica
# — rows, meta row and all — with a tombstone and a group_removed event, instead
# of campaigning forever and waking the group every election timeout.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use MultiraftTest;

my @n = start_cluster_with_group(60);
sub sql { my ($i, $q) = @_; return $n[$i]->safe_psql('postgres', $q); }
my $before = sql(0, "SELECT multiraft.submit(60, '\\x01'::bytea, 'before')");
ok(poll_until($n[2], "SELECT applied_index >= $before FROM multiraft.status(60)", 't'),
	'node 3 applied the first command');
my $replica = sql(2, "SELECT replica_id FROM multiraft.status(60)");

$n[2]->stop('immediate');
my $removed = sql(0, "SELECT multiraft.change_membership(60, 'remove_voter', 3, NULL, 'out-3')");
my $after = sql(0, "SELECT multiraft.submit(60, '\\x02'::bytea, 'after')");
ok($before < $removed && $removed < $after, "node 3 removed at $removed while down");
my $term = sql(0, "SELECT term FROM multiraft.status(60)");

$n[2]->start;
ok(poll_until($n[2], "SELECT count(*) FROM multiraft.groups WHERE group_id = 60", '0'),
	'node 3 drops the replica it missed the removal of');
is(sql(2, "SELECT count(*) FROM multiraft.events WHERE group_id = 60 AND event_type = 'group_removed'"),
	'1', 'node 3 announces the removal once');
is(sql(2, "SELECT (SELECT count(*) FROM multiraft.log WHERE group_id = 60) +
                  (SELECT count(*) FROM multiraft.group_meta WHERE group_id = 60)"),
	'0', "node 3 keeps none of the group's rows");
is(sql(2, "SELECT min_replica_id > $replica FROM multiraft.tombstone WHERE group_id = 60"),
	't', 'a tombstone refuses the old replica');
is(sql(0, "SELECT term FROM multiraft.status(60)"), $term, 'the group kept its leader and term');
is(sql(0, "SELECT array_to_string(voters, ',') FROM multiraft.status(60)"),
	'1,2', 'nodes 1 and 2 are the voters');

# Node 3 can be added back: a new replica, which the tombstone lets in.
my $added = sql(1, "SELECT multiraft.change_membership(60, 'add_voter', 3, NULL, 'in-3')");
ok(poll_until($n[2], "SELECT applied_index >= $added FROM multiraft.status(60)", 't'),
	'node 3 added back catches up');
ok(sql(2, "SELECT replica_id FROM multiraft.status(60)") > $replica, 'with a new replica id');

$_->stop for @n;
done_testing();
