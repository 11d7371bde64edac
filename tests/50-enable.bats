#!/usr/bin/env bats
# backup enable and list: enrolment, auto-enrolment (not retroactive), listing.

load test_helper

setup() { setup_config; mkdir -p "$T/src"; echo x >"$T/src/a"; backup init -q; }

@test "enable enrols a defined machine; an unknown one is refused" {
	define_machine web1 "$T/src"
	run backup enable web1
	assert_success
	assert_output --partial "machine 'web1' enrolled"
	run -1 backup enable nosuch
	assert_output --partial "unknown machine 'nosuch'"
	run -2 backup enable
	run -2 backup enable --auto-enroll maybe
}

@test "auto-enrolment covers machines defined after it, not the ones before" {
	define_machine old "$T/src"
	run backup enable --auto-enroll on
	assert_success
	define_machine new "$T/src"
	run backup run new
	assert_success
	run -1 backup run old
	assert_output --partial "not enrolled"
	backup enable --auto-enroll off -q
	define_machine newer "$T/src"
	run -1 backup run newer
}

@test "enable within 24 h of a cancel is refused with the time it becomes possible" {
	define_machine web1 "$T/src"
	state_config machine.web1.cancelledAt "$(date +%s)"
	run -1 backup enable web1
	assert_output --regexp "can be enabled again from [0-9]{4}-[0-9]{2}-[0-9]{2}T"
	state_config machine.web1.cancelledAt "$(( $(date +%s) - 86401 ))"
	run backup enable web1
	assert_success
}

@test "list shows every kept backup, newest first, with the contract's JSON fields" {
	define_machine web1 "$T/src"
	backup enable -q web1
	weekly_day_not_today web1
	backup run -q web1
	sleep 1
	backup run -q --snapshot --label "before upgrade" web1
	run backup list
	assert_success
	assert_line --index 0 --partial MACHINE
	assert_line --index 1 --partial snapshot
	assert_line --index 1 --partial "before upgrade"
	assert_line --index 2 --partial daily
	run backup list --json
	echo "$output" | python3 -c '
import json, sys
l = json.load(sys.stdin)
assert len(l) == 2, l
s, d = l
for b in l:
    for k in ("id", "machine", "slots", "created", "label", "duration_seconds", "disks", "size_bytes", "space_required_bytes"):
        assert k in b, k
assert s["slots"] == ["snapshot"] and s["label"] == "before upgrade"
assert d["slots"] == ["daily"] and d["disks"] == ["root"]
assert d["space_required_bytes"] == 1 << 30 and d["size_bytes"] == 2
assert s["created"] >= d["created"] and d["created"].endswith("Z")
'
	run backup list nosuch --json
	assert_output "[]"
}

@test "a snapshot replaces the previous one and leaves daily alone" {
	define_machine web1 "$T/src"
	backup enable -q web1
	weekly_day_not_today web1
	backup run -q web1
	daily=$(git --git-dir="$REPO" rev-parse refs/backups/web1/daily)
	backup run -q --snapshot --label one web1
	echo y >"$T/src/b"
	backup run -q --snapshot --label two web1
	run backup list --json
	[ "$(echo "$output" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" = 2 ]
	[ "$(git --git-dir="$REPO" rev-parse refs/backups/web1/daily)" = "$daily" ]
	[ "$(echo "$output" | json_field label)" = two ]
}
