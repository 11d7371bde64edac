#!/usr/bin/env bats
# backup cancel: every backup deleted, space reclaimed, the 24-hour wait.

load test_helper

setup() { setup_repo web1; }

@test "cancel deletes every backup, snapshot too, reclaims the space and disables the machine" {
	head -c 4000000 /dev/urandom >"$T/src/a"
	backup run -q web1
	backup run -q --snapshot --label s web1
	mkdir -p "$T/src2" && echo other >"$T/src2/o"
	define_machine web2 "$T/src2"
	backup enable -q web2
	backup run -q web2
	before=$(du -sb "$REPO/objects" | cut -f1)
	run backup cancel web1 --yes
	assert_success
	assert_output --partial "cancelled 'web1': 2 backups deleted"
	assert_output --partial "reclaimed"
	after=$(du -sb "$REPO/objects" | cut -f1)
	[ $((before - after)) -gt 3500000 ] || fail "only $((before - after)) bytes came back"
	run backup list web1 --json
	assert_output "[]"
	run -1 backup run web1
	assert_output --partial "not enrolled"
	git --git-dir="$REPO" fsck --full
	backup check --read-data
	# The other machine is untouched.
	backup restore web2 --path /o --to "$T/out" -q
	[ "$(cat "$T/out/o")" = other ]
}

@test "enable is refused for 24 hours after a cancel, then allowed (faketime)" {
	command -v faketime >/dev/null || skip "faketime is not installed"
	echo x >"$T/src/a"
	# A frozen clock: a slow start must not move the time the cancel records.
	faketime -f "2026-11-10 12:00:00" "$BK" cancel -q --yes web1
	run faketime "2026-11-11 11:59:00" "$BK" enable web1
	assert_failure 1
	assert_output --partial "can be enabled again from 2026-11-11T12:00:00Z"
	run faketime "2026-11-11 12:00:01" "$BK" enable web1
	assert_success
}

@test "cancel needs --yes when there is no terminal, and asks on one" {
	echo x >"$T/src/a"
	backup run -q web1
	run -2 backup cancel web1 </dev/null
	assert_output --partial "confirm with --yes"
	run script -qec "echo n | '$BK' cancel web1" /dev/null
	[ "$(backup list web1 --json)" != "[]" ]
	run -2 backup cancel
}

@test "kill -9 during cancel: the other machines' backups stay whole" {
	mkdir -p "$T/src2" && head -c 3000000 /dev/urandom >"$T/src2/keep"
	define_machine web2 "$T/src2"
	backup enable -q web2
	backup run -q web2
	for delay in 0.01 0.05 0.1; do
		head -c 8000000 /dev/urandom >"$T/src/a$delay"
		"$BK" enable -q web1 2>/dev/null || state_config --unset machine.web1.cancelledAt
		backup enable -q web1
		backup run -q web1
		kill_after "$delay" cancel -q --yes web1
		backup check --read-data
		rm -rf "$T/out"
		backup restore web2 --path /keep --to "$T/out" -q
		cmp "$T/src2/keep" "$T/out/keep"
	done
}

@test "cancel of a name that is neither defined nor backed up is refused" {
	run -1 backup cancel --yes web1x
	assert_output --partial "unknown machine 'web1x'"
	run -1 backup enable web1x
	refute_output --partial "cancelled"
}
