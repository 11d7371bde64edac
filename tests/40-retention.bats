#!/usr/bin/env bats
# Retention and rotate: the seed's slots over simulated weeks (faketime), and
# space that no kept backup needs coming back.

load test_helper

setup() {
	setup_repo web1
	backup schedule -q web1 --window W2 --day sunday
}

slots_of() { backup list web1 --json | python3 -c '
import json, sys
for b in json.load(sys.stdin):
    print(b["created"][:10], ",".join(sorted(b["slots"])))'; }

@test "thirty simulated days: after each, exactly the seed's slots with the promised ages" {
	command -v faketime >/dev/null || skip "faketime is not installed"
	for day in $(seq 0 29); do
		date=$(date -u -d "2026-11-01 +$day days" +%F)
		echo "$date" >"$T/src/day"
		# A snapshot now and then: it must survive rotation untouched.
		if [ "$day" = 3 ]; then
			faketime "$date 01:00:00" "$BK" run -q --snapshot --label day3 web1
		fi
		faketime "$date 02:30:00" "$BK" run -q web1
		run faketime "$date 03:00:00" python3 - "$date" <<PY
import json, subprocess, sys, datetime
now = datetime.datetime.fromisoformat(sys.argv[1] + "T02:30:00")
l = json.loads(subprocess.check_output(["$BK", "list", "web1", "--json"]))
auto = [b for b in l if b["kind"] == "automatic"]
snap = [b for b in l if b["kind"] == "snapshot"]
def age(b):
    return (now - datetime.datetime.fromisoformat(b["created"][:-1])).total_seconds() / 86400
slots = {}
for b in auto:
    for s in b["slots"]:
        slots[s] = b
assert all(b["slots"] for b in auto), "an automatic backup with no slot was kept"
assert all(age(b) <= 14 for b in auto), "a backup older than 14 days was kept"
assert age(slots["daily"]) < 1, "daily is not the newest"
day = int(sys.argv[1][8:10]) - 1
if "weekly" in slots:
    w = slots["weekly"]
    assert age(w) < 7 and datetime.datetime.fromisoformat(w["created"][:-1]).weekday() == 6
assert ("weekly" in slots) == (day >= 0), slots  # 2026-11-01 is a Sunday
if "biweekly" in slots:
    b = slots["biweekly"]
    assert 7 - 0.01 <= age(b) <= 14 and datetime.datetime.fromisoformat(b["created"][:-1]).weekday() == 6
assert ("biweekly" in slots) == (day >= 7), (day, slots)  # last week's, also when its run came a moment later
assert len(auto) <= 3
assert (len(snap) == 1) == (day >= 3)
PY
		[ "$status" = 0 ] || fail "day $date: $output"
	done
	# The biweekly backup restores the right day: the Sunday 8-14 days ago.
	backup restore web1:biweekly --path /day --to "$T/out" -q
	[ "$(cat "$T/out/day")" = 2026-11-22 ]
	backup restore web1:snapshot --path /day --to "$T/snap" -q
	[ "$(cat "$T/snap/day")" = 2026-11-04 ]
	git --git-dir="$REPO" fsck --full
}

@test "rotate expires by age when runs were missed, and --dry-run changes nothing" {
	command -v faketime >/dev/null || skip "faketime is not installed"
	head -c 2000000 /dev/urandom >"$T/src/a"
	faketime "2026-11-02 02:30:00" "$BK" run -q web1
	head -c 2000000 /dev/urandom >"$T/src/b"
	faketime "2026-11-03 02:30:00" "$BK" run -q web1
	before=$(du -sb "$REPO/objects" | cut -f1)
	run faketime "2026-11-20 00:00:00" "$BK" rotate --dry-run --json
	assert_success
	echo "$output" | python3 -c '
import json, sys
d = json.load(sys.stdin)
m = d["machines"][0]
assert m["keep"] == [] and len(m["delete"]) == 1, m
assert d["reclaim"]["dry_run"] and d["reclaim"]["bytes"] > 3000000, d'
	[ "$(du -sb "$REPO/objects" | cut -f1)" = "$before" ]
	[ "$(backup list --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" = 1 ]
	run faketime "2026-11-20 00:00:00" "$BK" rotate
	assert_success
	assert_output --partial "delete"
	assert_output --partial "reclaimed"
	run backup list --json
	assert_output "[]"
	after=$(du -sb "$REPO/objects" | cut -f1)
	[ "$after" -lt 100000 ] || fail "still $after bytes after reclaiming everything"
	git --git-dir="$REPO" fsck --full
	backup check --read-data
}

@test "space no kept backup needs comes back; what is kept stays whole" {
	head -c 3000000 /dev/urandom >"$T/src/keep"
	backup run -q web1
	head -c 5000000 /dev/urandom >"$T/src/temp"
	backup run -q --snapshot web1
	rm "$T/src/temp"
	backup run -q --snapshot web1
	before=$(du -sb "$REPO/objects" | cut -f1)
	run backup rotate --json
	assert_success
	freed=$(echo "$output" | python3 -c 'import json,sys; print(json.load(sys.stdin)["reclaim"]["bytes"])')
	after=$(du -sb "$REPO/objects" | cut -f1)
	[ $((before - after)) -gt 4500000 ] || fail "only $((before - after)) bytes came back"
	[ "$freed" -gt 4500000 ]
	git --git-dir="$REPO" fsck --full
	backup check --read-data
	backup restore web1 --new r1 -q
	run tree_diff "$T/src" "$MROOT/r1/disks/root"
	assert_output ""
	# The dedup index names nothing that is gone: the same bytes are stored again.
	git --git-dir="$REPO" reflog show refs/backups/web1/snapshot | grep -c . | grep -qx 1
}

@test "kill -9 during rotate at many instants: every kept backup intact" {
	for i in 1 2 3 4 5 6; do
		head -c 4000000 /dev/urandom >"$T/src/f$i"
		backup run -q --snapshot web1
		rm "$T/src/f$i"
	done
	echo stays >"$T/src/stays"
	backup run -q --snapshot web1
	for delay in 0.01 0.03 0.06 0.1 0.2; do
		kill_after "$delay" rotate -q
		run backup check --read-data
		assert_success
		rm -rf "$T/out"
		backup restore web1:snapshot --path /stays --to "$T/out" -q
		[ "$(cat "$T/out/stays")" = stays ]
	done
	run backup rotate
	assert_success
	git --git-dir="$REPO" fsck --full
}

@test "a run of another machine while space is reclaimed waits, and nothing is lost" {
	head -c 20000000 /dev/urandom >"$T/src/big"
	backup run -q --snapshot web1
	rm "$T/src/big" && echo small >"$T/src/small"
	backup run -q --snapshot web1
	mkdir -p "$T/src2" && head -c 3000000 /dev/urandom >"$T/src2/x"
	define_machine web2 "$T/src2"
	backup enable -q web2
	"$BK" rotate -q --wait 30 &
	p1=$!
	"$BK" run -q web2 &
	p2=$!
	wait "$p1"
	wait "$p2"
	backup check --read-data
	backup restore web2 --new r2 -q
	cmp "$T/src2/x" "$MROOT/r2/disks/root/x"
}

@test "rotate of a busy machine exits 75; a busy repository defers reclamation" {
	echo x >"$T/src/a"
	backup run -q web1
	exec 9>"$REPO/backup/locks/web1.lock"
	flock 9
	run -75 backup rotate web1
	assert_output --partial "machine 'web1' is busy"
	exec 9>&-
	exec 8>"$REPO/backup/locks/.repo.lock"
	flock -s 8
	run backup rotate web1
	assert_success
	assert_output --partial "deferred"
	exec 8>&-
}

@test "a commit-graph that stock git gc wrote never outlives the commits rotate deletes" {
	weekly_day_not_today web1
	echo a >"$T/src/a"
	backup run -q web1
	git --git-dir="$REPO" gc -q
	[ -f "$REPO/objects/info/commit-graph" ]
	echo b >"$T/src/b"
	sleep 1
	backup run -q web1
	backup rotate -q
	run git --git-dir="$REPO" fsck --full --no-progress
	assert_success
	run backup check -q
	assert_success
}
