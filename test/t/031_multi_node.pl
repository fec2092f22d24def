# Groups spanning several servers, end to end through the libpq transport:
# creation from one node, submit on leaders and followers with identical events
# everywhere, 200 groups electing leaders, coalesced heartbeats, the loss and
# return of the busiest node, membership changes (removing the leader, a learner
# that does not vote), leadership transfer, read_index on a follower, and a
# five-node cluster.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use MultiraftTest;
use Time::HiRes qw(usleep time);

my @n = start_cluster(3);

sub sql { my ($i, $q) = @_; return $n[$i]->safe_psql('postgres', $q); }

# The events a member recorded for a group, in a form comparable across nodes.
sub events_of
{
	my ($node, $group) = @_;
	return $node->safe_psql('postgres',
		"SELECT coalesce(string_agg(event_type || '/' || log_index || '/' || coalesce(command_id, '') || '/'
		        || coalesce(md5(payload), '') || '/' || coalesce(node_id::text, '')
		        || '/' || coalesce(change_type, ''), ',' ORDER BY log_index), '')
		   FROM multiraft.events
		  WHERE group_id = $group AND event_type IN ('command', 'membership_change')");
}

# Every listed node has the same events for the group, and at least $min of them.
sub events_agree
{
	my ($group, $min, @nodes) = @_;
	my $deadline = time() + $PostgreSQL::Test::Utils::timeout_default;
	my @ev;
	while (time() < $deadline)
	{
		@ev = map { events_of($_, $group) } @nodes;
		my $count = () = $ev[0] =~ /,/g;
		$count++ if $ev[0] ne '';
		return 1 if $count >= $min && !grep { $_ ne $ev[0] } @ev;
		usleep(100_000);
	}
	diag("group $group events differ or are too few:\n" . join("\n", @ev));
	return 0;
}

# The leader of a group as seen by $node (empty if none yet).
sub leader_of
{
	my ($node, $group) = @_;
	return $node->safe_psql('postgres',
		"SELECT coalesce(leader_node_id::text, '') FROM multiraft.status($group)");
}

sub wait_leader
{
	my ($node, $group, $not) = @_;
	$not //= 0;
	return poll_until($node,
		"SELECT leader_node_id IS NOT NULL AND leader_node_id <> $not FROM multiraft.status($group)",
		't');
}

for my $i (0 .. 2)
{
	ok(poll_until($n[$i], "SELECT count(*) FROM multiraft.nodes WHERE connected", '3'),
		'node' . ($i + 1) . ' connected to every peer');
}

# ---------------------------------------------------------------- one group
sql(0, "SELECT multiraft.create_group(1, ARRAY[1, 2, 3])");
for my $i (0 .. 2)
{
	ok(poll_until($n[$i], "SELECT count(*) FROM multiraft.groups WHERE group_id = 1", '1'),
		'group 1 exists on node' . ($i + 1));
	ok(wait_leader($n[$i], 1), 'node' . ($i + 1) . ' knows the leader of group 1');
	is(sql($i, "SELECT array_to_string(voters, ',') FROM multiraft.status(1)"), '1,2,3',
		'node' . ($i + 1) . ' sees three voters');
}

# submit on every member, leader and followers alike
my @idx;
for my $i (0 .. 2)
{
	push @idx, sql($i, "SELECT multiraft.submit(1, '\\x0$i'::bytea, 'from-node" . ($i + 1) . "')");
}
ok($idx[0] < $idx[1] && $idx[1] < $idx[2], "submits commit in order (@idx)");
ok(events_agree(1, 3, @n), 'every member has the same command events for group 1');
# multiraft.stats counts the raft traffic (the transport counts frames apart)
for my $i (0 .. 2)
{
	ok(poll_until($n[$i], "SELECT bool_and(value > 0) FROM multiraft.stats
	                        WHERE name IN ('messages_sent', 'messages_received', 'bytes_sent',
	                                       'batches_sent', 'batches_received')", 't'),
		'node' . ($i + 1) . ': raft messages, bytes and batches sent and received are counted');
}
# ... and by kind: the leader sent the APPENDs, the followers answered them, and
# the two submits made on followers went to the leader as forwarded commands
# (a follower's count may include a resubmission, never less than its one).
{
	my $ldr = leader_of($n[0], 1);
	my %kind;
	for my $i (0 .. 2)
	{
		for my $row (split /\n/, sql($i, "SELECT name || '=' || value FROM multiraft.stats
		                                 WHERE name IN ('appends_sent', 'append_responses_sent',
		                                                'proposals_forwarded')"))
		{
			my ($k, $v) = split /=/, $row;
			$kind{$i + 1}{$k} = $v;
		}
	}
	cmp_ok($kind{$ldr}{appends_sent}, '>=', 6, "leader node$ldr counted its APPENDs to both followers");
	for my $f (grep { $_ != $ldr } 1 .. 3)
	{
		cmp_ok($kind{$f}{append_responses_sent}, '>', 0, "follower node$f counted its answers");
		cmp_ok($kind{$f}{proposals_forwarded}, '>=', 1, "follower node$f counted its forwarded submit");
	}
}
is(sql(2, "SELECT log_index FROM multiraft.events WHERE group_id = 1 AND command_id = 'from-node1'"),
	$idx[0], 'the index submit returned is the logged one');

# ---------------------------------------------------------------- read_index / transfer
my $leader = leader_of($n[0], 1);
my $follower = (grep { $_ != $leader } 1 .. 3)[0];
my $ri = sql($follower - 1, "SELECT multiraft.read_index(1)");
cmp_ok($ri, '>=', $idx[2], "read_index on follower node$follower covers the last commit");

my $target = (grep { $_ != $leader } 1 .. 3)[1];
sql($follower - 1, "SELECT multiraft.transfer_leadership(1, $target)");
for my $i (0 .. 2)
{
	ok(poll_until($n[$i], "SELECT leader_node_id FROM multiraft.status(1)", $target),
		'node' . ($i + 1) . " sees node$target leading group 1 after the transfer");
}
my $after = sql(0, "SELECT multiraft.submit(1, '\\x10'::bytea, 'after-transfer')");
cmp_ok($after, '>', $idx[2], 'group 1 commits under its new leader');

# A command larger than one wire frame (512 kB) travels in chunks.
my $big = sql(0, "SELECT multiraft.submit(1, decode(repeat('c0ffee', 300000), 'hex'), 'big')");
for my $i (0 .. 2)
{
	ok(poll_until($n[$i],
		"SELECT md5(payload) = md5(decode(repeat('c0ffee', 300000), 'hex')) FROM multiraft.events
		  WHERE group_id = 1 AND command_id = 'big'", 't'),
		'node' . ($i + 1) . ' has the 900 kB command intact');
}
cmp_ok(sql(0, "SELECT sum(value) FROM multiraft.stats WHERE name = 'transport_chunked_batches_received'")
	  + sql(1, "SELECT sum(value) FROM multiraft.stats WHERE name = 'transport_chunked_batches_received'")
	  + sql(2, "SELECT sum(value) FROM multiraft.stats WHERE name = 'transport_chunked_batches_received'"),
	'>=', 2, 'the followers reassembled it from chunks');

# ---------------------------------------------------------------- 200 groups
# Coalesced heartbeats: the envelopes a node sends each peer per second are
# bounded by its tick rate (50/s at 20 ms), whatever the number of groups.
sub sent_to_peers
{
	my ($i) = @_;
	return sql($i, "SELECT coalesce(sum(envelopes_sent), 0) FROM multiraft.nodes");
}
sub envelope_rates
{
	my @s0 = map { sent_to_peers($_) } 0 .. 2;
	my $w0 = time();
	sleep(3);
	my $elapsed = time() - $w0;
	my @s1 = map { sent_to_peers($_) } 0 .. 2;
	return map { ($s1[$_] - $s0[$_]) / $elapsed / 2 } 0 .. 2;    # per peer
}
my @base = envelope_rates();
note(sprintf('envelopes/s per peer with 1 group: %.1f %.1f %.1f', @base));

my $t0 = time();
for my $i (0 .. 2)
{
	my $lo = 1000 + $i * 67;
	my $hi = $i == 2 ? 1199 : $lo + 66;
	sql($i, "SELECT count(multiraft.create_group(g, ARRAY[1, 2, 3])) FROM generate_series($lo, $hi) g");
}
for my $i (0 .. 2)
{
	ok(poll_until($n[$i],
		"SELECT count(*) FROM multiraft.groups WHERE group_id BETWEEN 1000 AND 1199 AND leader_node_id IS NOT NULL",
		'200', 120), 'node' . ($i + 1) . ' sees a leader in each of 200 groups');
}
note(sprintf("200 groups created and led everywhere in %.1f s", time() - $t0));

my @rates = envelope_rates();
for my $i (0 .. 2)
{
	cmp_ok($rates[$i], '<=', 2 * $base[$i] + 10,
		sprintf('node%d sends %.1f envelopes/s per peer with 201 groups (%.1f with 1)',
			$i + 1, $rates[$i], $base[$i]));
}
my ($busiest) = sql(0, "SELECT leader_node_id FROM multiraft.groups WHERE leader_node_id IS NOT NULL
	  GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1");
my $hb = sql($busiest - 1, "SELECT value FROM multiraft.stats WHERE name = 'heartbeat_entries_coalesced'");
cmp_ok($hb, '>', 0, "node$busiest, leading the most groups, coalesced $hb heartbeat entries");

# ---------------------------------------------------------------- lose the busiest node
my ($victim) = split /\|/, sql(0,
	"SELECT leader_node_id FROM multiraft.groups WHERE leader_node_id IS NOT NULL
	  GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1");
my @alive = grep { $_ != $victim } 1 .. 3;
my $led = sql(0, "SELECT count(*) FROM multiraft.groups WHERE leader_node_id = $victim");
note("stopping node$victim, leader of $led groups");
$n[ $victim - 1 ]->stop('immediate');

for my $s (@alive)
{
	ok(poll_until($n[ $s - 1 ],
		"SELECT count(*) FROM multiraft.groups WHERE leader_node_id IS NULL OR leader_node_id = $victim",
		'0', 120), "node$s: every group elected a leader other than node$victim");
}
my $ok = 0;
for my $g (1000 .. 1019)
{
	my $s = $alive[ $g % 2 ];
	my ($ret, $out, $err) = $n[ $s - 1 ]->psql('postgres',
		"SELECT multiraft.submit($g, '\\xaa'::bytea, 'while-down-$g')");
	$ok++ if $ret == 0;
	diag("submit to group $g on node$s: $err") if $ret != 0;
}
is($ok, 20, 'the two remaining nodes keep committing');

# ---------------------------------------------------------------- catch up
$n[ $victim - 1 ]->start;
ok(poll_until($n[ $victim - 1 ], "SELECT count(*) FROM multiraft.nodes WHERE connected", '3'),
	"restarted node$victim reconnects");
ok(events_agree($_, 1, map { $n[ $_ - 1 ] } 1 .. 3), "group $_: node$victim caught up")
  for (1000, 1001, 1019);
ok(events_agree(1, 5, @n), 'group 1 identical on all three nodes after the restart');

# ---------------------------------------------------------------- membership
sql(0, "SELECT multiraft.create_group(2, ARRAY[1, 2])");
ok(wait_leader($n[1], 2), 'group 2 {1,2} has a leader');
sql(1, "SELECT multiraft.change_membership(2, 'add_voter', 3, '\\xbeef'::bytea, 'add-3')");
ok(poll_until($n[2], "SELECT array_to_string(voters, ',') FROM multiraft.status(2)", '1,2,3'),
	'node3 joined group 2 as a voter');
sql(2, "SELECT multiraft.submit(2, '\\x01'::bytea, 'g2-a')");
ok(events_agree(2, 2, @n), 'group 2 events (membership change + command) agree');
is(sql(2, "SELECT change_type || ':' || node_id || ':' || encode(payload, 'hex')
             FROM multiraft.events WHERE group_id = 2 AND command_id = 'add-3'"),
	'add_voter:3:beef', 'membership_change event carries type, node and payload');

# remove the leader itself
my $l2 = leader_of($n[0], 2);
ok($l2 ne '', "group 2 leader is node$l2");
my @rest = grep { $_ != $l2 } 1 .. 3;
sql($l2 - 1, "SELECT multiraft.change_membership(2, 'remove_voter', $l2, NULL, 'remove-leader')");
for my $r (@rest)
{
	ok(poll_until($n[ $r - 1 ],
		"SELECT leader_node_id IS NOT NULL AND leader_node_id <> $l2
		        AND NOT ($l2 = ANY (voters)) FROM multiraft.status(2)", 't', 60),
		"node$r: group 2 has a new leader without node$l2");
}
sql($rest[0] - 1, "SELECT multiraft.submit(2, '\\x02'::bytea, 'g2-b')");
ok(events_agree(2, 4, map { $n[ $_ - 1 ] } @rest), 'group 2 commits without its old leader');

# ... and back: the new replica on node$l2 replays the log, but finds in its dedup
# records the commands its removed replica already applied (MR_GW_KEEP_DEDUP):
# every command event exactly once on every node.
sql($rest[0] - 1, "SELECT multiraft.change_membership(2, 'add_voter', $l2, NULL, 'readd-leader')");
sql($rest[1] - 1, "SELECT multiraft.submit(2, '\\x03'::bytea, 'g2-c')");
ok(poll_until($n[ $l2 - 1 ],
	"SELECT count(*) FROM multiraft.events WHERE group_id = 2 AND command_id = 'g2-c'", '1', 60),
	"node$l2: back in group 2, it applies new commands");
for my $i (0 .. 2)
{
	is(sql($i, "SELECT count(*) FROM (SELECT command_id FROM multiraft.events
	              WHERE group_id = 2 AND event_type = 'command'
	              GROUP BY command_id HAVING count(*) > 1) d"), '0',
		'node' . ($i + 1) . ': no command event twice in group 2');
}
# (The log was compacted while it was out: it got a snapshot, whose dedup records
# include the command committed meanwhile — at most one event for it, and the record.)
ok(sql($l2 - 1, "SELECT count(*) FROM multiraft.events WHERE group_id = 2 AND command_id = 'g2-b'") <= 1
	&& sql($l2 - 1, "SELECT count(*) FROM multiraft.dedup WHERE group_id = 2 AND command_id = 'g2-b'::bytea") == 1,
	"node$l2: the command committed while it was out is known, at most once");

# a learner receives events but does not vote
sql(0, "SELECT multiraft.create_group(3, ARRAY[1, 2])");
ok(wait_leader($n[0], 3), 'group 3 {1,2} has a leader');
sql(0, "SELECT multiraft.change_membership(3, 'add_learner', 3, NULL, 'learner-3')");
ok(poll_until($n[2], "SELECT role FROM multiraft.status(3)", 'learner'), 'node3 is a learner of group 3');
is(sql(2, "SELECT array_to_string(voters, ',') || '|' || array_to_string(learners, ',') FROM multiraft.status(3)"),
	'1,2|3', 'learner listed apart from voters');
my ($tret, $tout, $terr) = $n[0]->psql('postgres', 'SELECT multiraft.transfer_leadership(3, 3)');
like($terr, qr/node 3 is a learner of group 3, not a voter/,
	'a transfer to the learner says it is a learner (not "not a member")');
sql(1, "SELECT multiraft.submit(3, '\\x03'::bytea, 'g3-a')");
ok(events_agree(3, 2, @n), 'the learner records the same events');

# a learner is made a voter only once it holds the log (dissertation §4.2.1):
# down, its promotion waits and times out; back and caught up, it is promoted
$n[2]->stop('immediate');
sql(0, "SELECT multiraft.submit(3, '\\x04'::bytea, 'g3-b')");
my ($pret, $pout, $perr) = $n[1]->psql('postgres',
	"SELECT multiraft.change_membership(3, 'add_voter', 3, NULL, 'promote-3', 2000)");
isnt($pret, 0, 'promoting a learner that is down does not complete');
like($perr, qr/timed out after 2000 ms.*becomes a voter only once it holds every entry/s,
	'and says why it waits');
is(sql(0, "SELECT array_to_string(voters, ',') || '|' || array_to_string(learners, ',') FROM multiraft.status(3)"),
	'1,2|3', 'the learner stays a learner');
$n[2]->start;
ok(poll_until($n[2], "SELECT count(*) FROM multiraft.events WHERE group_id = 3 AND command_id = 'g3-b'", '1'),
	'node3 catches up with group 3');
sql(1, "SELECT multiraft.change_membership(3, 'add_voter', 3, NULL, 'promote-3')");
is(sql(0, "SELECT array_to_string(voters, ',') || '|' || array_to_string(learners, ',') FROM multiraft.status(3)"),
	'1,2,3|', 'back and caught up, the learner is promoted');
ok(poll_until($n[2], "SELECT role <> 'learner' FROM multiraft.status(3)", 't'), 'node3 knows it votes');
ok(events_agree(3, 4, @n), 'every member records the same events');
is(sql(2, "SELECT count(*) FROM multiraft.events WHERE group_id = 3 AND change_type = 'add_voter'"),
	'1', 'the promotion among them, once');

# an invalid change: without a command_id (an id made for the call) the node's own
# view fails it at once; under a caller's id, which an earlier call that timed out
# may have sent, only the leader's answer through the log fails it, and that answer
# stays the id's verdict on every member
my ($iret, $iout, $ierr) = $n[1]->psql('postgres',
	"SELECT multiraft.change_membership(3, 'add_voter', 3)");
isnt($iret, 0, 'adding a voter that is one already fails');
like($ierr, qr/not valid for the current membership/, 'as invalid');
($iret, $iout, $ierr) = $n[2]->psql('postgres',
	"SELECT multiraft.change_membership(3, 'add_voter', 3, NULL, 'again-3')");
like($ierr, qr/not valid for the current membership/,
	'under a caller\'s id too, answered by the leader');
ok(poll_until($_, "SELECT count(*) FROM multiraft.dedup WHERE group_id = 3 AND command_id = 'again-3'::bytea", '1'),
	$_->name . ': the refusal is recorded as the id\'s verdict') for @n;
($iret, $iout, $ierr) = $n[0]->psql('postgres',
	"SELECT multiraft.change_membership(3, 'remove_voter', 3, NULL, 'again-3')");
like($ierr, qr/not valid for the current membership/,
	'asked again under the refused id, a change that would apply fails the same way');
is(sql(0, "SELECT array_to_string(voters, ',') FROM multiraft.status(3)"), '1,2,3',
	'and changes nothing');

# a follower that removes itself may not hear the commit of its own removal (the
# leader stops replicating to it): then it cannot tell the outcome and says so
# rather than "not a member"; either way the removal committed
my $l3 = leader_of($n[0], 3);
my ($f3) = grep { $_ != $l3 } 1 .. 3;
my ($sret, $sout, $serr) = $n[ $f3 - 1 ]->psql('postgres',
	"SELECT multiraft.change_membership(3, 'remove_voter', $f3, NULL, 'self-remove-$f3')");
ok($sret == 0 || $serr =~ /node $f3 was removed from group 3 while multiraft.change_membership was waiting/,
	"node$f3 removing itself: the change's index, or an outcome it cannot know")
	or diag($serr);
note($sret == 0 ? "it returned index $sout" : "it said: $serr");
ok(poll_until($n[ $l3 - 1 ], "SELECT $f3 = ANY (voters) FROM multiraft.status(3)", 'f'),
	"node$f3 is no longer a voter of group 3");

$_->stop for @n;

# ---------------------------------------------------------------- five nodes
# (own node names: start_cluster's node1..node3 data directories still exist)
my @f;
for my $i (1 .. 5)
{
	my $node = PostgreSQL::Test::Cluster->new("five$i");
	$node->init;
	$node->append_conf('postgresql.conf', node_conf($i));
	$node->start;
	push @f, $node;
}
for my $node (@f)
{
	$node->safe_psql('postgres', 'CREATE EXTENSION multiraft');
	$node->safe_psql('postgres', join('; ',
		map { "SELECT multiraft.add_node($_, '" . $f[ $_ - 1 ]->host . "', " . $f[ $_ - 1 ]->port . ")" } 1 .. 5));
}
sub fsql { my ($i, $q) = @_; return $f[$i]->safe_psql('postgres', $q); }
for my $i (0 .. 4)
{
	ok(poll_until($f[$i], "SELECT count(*) FROM multiraft.nodes WHERE connected", '5'),
		'five nodes: node' . ($i + 1) . ' connected to every peer');
}
fsql(2, "SELECT multiraft.create_group(50, ARRAY[1, 2, 3, 4, 5])");
ok(wait_leader($f[$_], 50), 'five nodes: node' . ($_ + 1) . ' knows the leader') for 0 .. 4;
fsql($_, "SELECT multiraft.submit(50, int4send($_), 'five-$_')") for 0 .. 4;
ok(events_agree(50, 5, @f), 'five nodes: identical events everywhere');

# two nodes down (one of them the leader): the other three still commit
my $l50 = leader_of($f[0], 50);
my $other = (grep { $_ != $l50 } 1 .. 5)[0];
$f[ $l50 - 1 ]->stop('immediate');
$f[ $other - 1 ]->stop('immediate');
my @up = grep { $_ != $l50 && $_ != $other } 1 .. 5;
ok(wait_leader($f[ $up[0] - 1 ], 50, $l50), 'five nodes: a new leader after losing two');
fsql($up[$_] - 1, "SELECT multiraft.submit(50, '\\xff'::bytea, 'five-down-$_')") for 0 .. 2;
ok(events_agree(50, 8, map { $f[ $_ - 1 ] } @up), 'five nodes: three survivors commit and agree');

# learner does not vote: voters {a, b}, learner c; with b down nothing commits
my ($va, $vb, $lc) = @up;
fsql($va - 1, "SELECT multiraft.create_group(51, ARRAY[$va, $vb])");
ok(wait_leader($f[ $va - 1 ], 51), 'group 51 has a leader');
fsql($va - 1, "SELECT multiraft.change_membership(51, 'add_learner', $lc)");
ok(poll_until($f[ $lc - 1 ], "SELECT role FROM multiraft.status(51)", 'learner'), "node$lc learns group 51");
$f[ $vb - 1 ]->stop('immediate');
my $lead51 = leader_of($f[ $va - 1 ], 51);
my ($ret, $out, $err) = $f[ $va - 1 ]->psql('postgres',
	"SELECT multiraft.submit(51, '\\x01'::bytea, 'no-quorum', 3000)");
isnt($ret, 0, 'with one of two voters down the learner does not make a quorum');
like($err, qr/timed out|raft/, "and the submit fails ($err)");
is(fsql($lc - 1, "SELECT role FROM multiraft.status(51)"), 'learner', 'the learner never campaigns');

$f[ $_ - 1 ]->stop for ($va, $lc);
done_testing();
