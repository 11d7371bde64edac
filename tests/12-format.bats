#!/usr/bin/env bats
# The repository format: everything that defines a repository travels in
# git (refs/backup/state), so any copy stock git makes is a repository.

load test_helper
load sshd

setup() { setup_repo web1; }
teardown() { sshd_stop; }

# mirror SRC DST: the copy a new user makes, through git's transport.
mirror() { git clone -q --mirror --no-local "$1" "$2"; }

@test "init writes format 2: the state ref, a clean fsck, nothing defining in backup/" {
	run git --git-dir="$REPO" for-each-ref --format='%(refname) %(objecttype)' refs/backup
	assert_output "refs/backup/state commit"
	run git --git-dir="$REPO" cat-file blob refs/backup/state:format
	assert_output "backup repository format 2"
	# A commit without parents whose tree holds the format and the state.
	run git --git-dir="$REPO" log --format=%P refs/backup/state -1
	assert_output ""
	run git --git-dir="$REPO" ls-tree --name-only refs/backup/state
	assert_output "$(printf 'format\nstate')"
	run git --git-dir="$REPO" config --blob refs/backup/state:state machine.web1.enabled
	assert_output true
	git --git-dir="$REPO" fsck --full --strict
	[ ! -e "$REPO/backup/format" ] && [ ! -e "$REPO/backup/state" ]
	# Every change is a commit of the ref, with a reflog entry.
	run git --git-dir="$REPO" log -g --format=%gs refs/backup/state
	assert_line "backup: set machine.web1.enabled"
	assert_line "backup: init"
}

@test "a mirror clone is a repository: list, restore, drill, check, run and rotate work on it" {
	make_torture_tree "$T/src"
	backup run -q web1
	backup run -q --snapshot web1
	mirror "$REPO" "$T/copy.git"
	[ ! -e "$T/copy.git/backup" ]
	export BACKUP_REPO=$T/copy.git
	run backup list
	assert_success
	assert_output --partial "daily"
	assert_output --partial "snapshot"
	run backup restore web1 --path / --to "$T/out"
	assert_success
	run tree_diff "$T/src" "$T/out"
	assert_output ""
	run backup drill web1
	assert_success
	assert_output --partial "drill passed"
	run backup check --read-data
	assert_success
	assert_output --partial "is sound"
	echo new >"$T/src/new"
	run backup run web1
	assert_success
	run backup rotate
	assert_success
	rm -rf "$T/out" && backup restore web1 --path / --to "$T/out" -q
	run tree_diff "$T/src" "$T/out"
	assert_output ""
	run backup check --read-data
	assert_success
	git --git-dir="$T/copy.git" fsck --full
	# Only rebuildable things and locks were made in the copy.
	run ls -A "$T/copy.git/backup"
	assert_output "$(printf 'dedup\nlocks')"
}

@test "copies by git push --mirror, git fetch and git clone --mirror over SSH are repositories" {
	make_torture_tree "$T/src"
	rm -f "$T/src/sparse"
	backup run -q web1
	backup schedule -q web1 --window W6
	cp -a "$T/src" "$T/kept"
	git init -q --bare "$T/pushed.git"
	git --git-dir="$REPO" push -q --mirror "$T/pushed.git"
	git init -q --bare "$T/fetched.git"
	git --git-dir="$T/fetched.git" fetch -q "$REPO" '+refs/*:refs/*'
	sshd_start "$T/sshd"
	git clone -q --mirror "$(sshd_url "$REPO")" "$T/ssh.git"
	sshd_stop
	for copy in pushed fetched ssh; do
		export BACKUP_REPO=$T/$copy.git
		rm -rf "$T/out"
		backup restore web1 --path / --to "$T/out" -q
		run tree_diff "$T/kept" "$T/out"
		assert_output ""
		run backup schedule web1
		assert_output --partial W6
		echo "$copy" >"$T/src/$copy"
		run backup run web1
		assert_success
		run backup check --read-data
		assert_success
		git --git-dir="$T/$copy.git" fsck --full
	done
}

@test "a clone builds its dedup index from the packs once, then deduplicates against them" {
	head -c 2000000 /dev/urandom >"$T/src/big"
	backup run -q web1
	mirror "$REPO" "$T/copy.git"
	export BACKUP_REPO=$T/copy.git
	[ -z "$(ls "$T/copy.git/backup/dedup" 2>/dev/null)" ] || [ ! -e "$T/copy.git/backup/dedup" ]
	# The same bytes under a new name: stored again unless the index knows them.
	cp "$T/src/big" "$T/src/big2"
	run backup run --json web1
	assert_success
	assert_output --partial "built the dedup index of 1 pack"
	[ "$(echo "$output" | grep '^\[' | json_field bytes_stored)" -lt 10000 ]
	# Once: the next runs find every pack indexed.
	cp "$T/src/big" "$T/src/big3"
	run backup run --json web1
	assert_success
	refute_output --partial "built the dedup index"
	[ "$(echo "$output" | json_field bytes_stored)" -lt 10000 ]
	# An unchanged tree stores nothing new.
	run backup run --json web1
	assert_success
	refute_output --partial "built the dedup index"
	[ "$(echo "$output" | json_field bytes_stored)" -lt 10000 ]
	run backup check --read-data
	assert_success
}

@test "enable, schedule, auto-enrol and cancel state survive a mirror clone" {
	define_machine web2 "$T/src"
	backup enable -q web2
	backup schedule -q web1 --window W6 --day tue
	backup enable -q --auto-enroll on
	echo x >"$T/src/a"
	backup run -q web2
	faketime "$(date -d '-1 hour' '+%Y-%m-%d %H:%M:%S')" "$BK" cancel -q --yes web2
	mirror "$REPO" "$T/copy.git"
	export BACKUP_REPO=$T/copy.git
	run backup schedule web1
	assert_output --partial "W6"
	assert_output --partial "tuesday"
	run backup run web1
	assert_success
	# The cancel's 24-hour wait came along.
	run -1 backup enable web2
	assert_output --partial "was cancelled less than 24 hours ago"
	# Auto-enrolment too: a machine defined now is enrolled on first run.
	define_machine web3 "$T/src"
	run backup run web3
	assert_success
}

@test "state changes keep entries they do not know, and concurrent ones all land" {
	# An entry of a later version (the encryption keys), added with stock git.
	blob=$(echo "a key" | git --git-dir="$REPO" hash-object -w --stdin)
	keys=$(printf '100644 blob %s\tk1\n' "$blob" | git --git-dir="$REPO" mktree)
	tree=$(git --git-dir="$REPO" ls-tree refs/backup/state | { cat; printf '040000 tree %s\tkeys\n' "$keys"; } |
		git --git-dir="$REPO" mktree)
	commit=$(git --git-dir="$REPO" -c user.name=t -c user.email=t@t commit-tree "$tree" </dev/null)
	git --git-dir="$REPO" update-ref refs/backup/state "$commit"
	for i in 1 2 3 4 5 6; do define_machine "m$i" "$T/src"; done
	for i in 1 2 3 4 5 6; do backup enable -q "m$i" & done
	wait
	for i in 1 2 3 4 5 6; do
		run git --git-dir="$REPO" config --blob refs/backup/state:state "machine.m$i.enabled"
		assert_output true
	done
	run git --git-dir="$REPO" cat-file blob refs/backup/state:keys/k1
	assert_output "a key"
	git --git-dir="$REPO" fsck --full
	backup check -q
}

@test "space reclamation keeps the state ref whole and its reflog valid" {
	echo x >"$T/src/a"
	backup run -q web1
	backup schedule -q web1 --window W2
	backup schedule -q web1 --window W4
	old=$(git --git-dir="$REPO" rev-parse refs/backup/state@{1})
	echo y >"$T/src/a"
	backup run -q web1
	run backup rotate
	assert_success
	# The state ref, its commit and its objects live; the reflog names only
	# them now (git fsck reads both ids of every entry).
	run backup schedule web1
	assert_output --partial W4
	git --git-dir="$REPO" fsck --full
	run git --git-dir="$REPO" log -g --format=%H refs/backup/state
	assert_output "$(git --git-dir="$REPO" rev-parse refs/backup/state)"
	# The commits left behind are loose objects reclamation does not touch.
	git --git-dir="$REPO" cat-file -e "$old"
	backup schedule -q web1 --window W6
	backup check -q
	git --git-dir="$REPO" fsck --full
}

@test "check verifies the state ref" {
	run backup check
	assert_success
	# A state commit whose format blob is not a format line.
	blob=$(echo "not a format" | git --git-dir="$REPO" hash-object -w --stdin)
	tree=$(git --git-dir="$REPO" ls-tree refs/backup/state | sed "s/[0-9a-f]\{40\}\tformat\$/$blob\tformat/" |
		git --git-dir="$REPO" mktree)
	commit=$(git --git-dir="$REPO" -c user.name=t -c user.email=t@t commit-tree "$tree" </dev/null)
	good=$(git --git-dir="$REPO" rev-parse refs/backup/state)
	git --git-dir="$REPO" update-ref refs/backup/state "$commit"
	run -1 backup list
	assert_output --partial "refs/backup/state holds no valid format"
	# A state text that does not parse opens, and check names it.
	git --git-dir="$REPO" update-ref refs/backup/state "$good"
	state_config machine.web1.x y
	blob=$(printf '[machine "web1"\n' | git --git-dir="$REPO" hash-object -w --stdin)
	tree=$(git --git-dir="$REPO" ls-tree refs/backup/state | sed "s/[0-9a-f]\{40\}\tstate\$/$blob\tstate/" |
		git --git-dir="$REPO" mktree)
	commit=$(git --git-dir="$REPO" -c user.name=t -c user.email=t@t commit-tree "$tree" </dev/null)
	git --git-dir="$REPO" update-ref refs/backup/state "$commit"
	run -1 backup check --json
	assert_output --partial '"state_ok":false'
	# A state ref naming a missing object.
	echo 1234567890123456789012345678901234567890 >"$REPO/refs/backup/state"
	run -1 backup list
	assert_output --partial "refs/backup/state names no readable commit"
}

# make_format1 REPO: turns a repository into the format-1 one that backup
# wrote before format 2, with stock git and files: the same packs, slots
# and sidecars; the version in backup/format and the state in backup/state
# (format 1's only difference, docs/FORMAT.md "Versions"); no state ref.
make_format1() {
	git --git-dir="$1" cat-file blob refs/backup/state:state >"$1/backup/state"
	echo "backup repository format 1" >"$1/backup/format"
	chmod 600 "$1/backup/state" "$1/backup/format"
	git --git-dir="$1" update-ref -d refs/backup/state
	git --git-dir="$1" prune --expire=now
	rmdir "$1/refs/backup" "$1/logs/refs/backup" 2>/dev/null || true
}

# A format-1 repository with backups and every kind of state.
setup_format1() {
	make_torture_tree "$T/src"
	backup run -q web1
	backup schedule -q web1 --window W6 --day tue
	backup enable -q --auto-enroll on
	make_format1 "$REPO"
	run git --git-dir="$REPO" for-each-ref refs/backup
	assert_output ""
}

# The state of setup_format1 is all there, read with stock git.
assert_state_kept() {
	run git --git-dir="$1" config --blob refs/backup/state:state --list
	assert_line "machine.web1.enabled=true"
	assert_line "machine.web1.window=W6"
	assert_line "machine.web1.day=tuesday"
	assert_line "service.autoenroll=true"
}

@test "a format-1 repository is read as it is, and 'backup upgrade' upgrades it in place" {
	setup_format1
	run backup list
	assert_success
	assert_output --partial daily
	backup restore web1 --path / --to "$T/out" -q
	run tree_diff "$T/src" "$T/out"
	assert_output ""
	run backup check --read-data
	assert_success
	run backup schedule web1
	assert_output --partial W6
	# Reading changed nothing.
	[ -f "$REPO/backup/format" ] && [ -f "$REPO/backup/state" ]
	run backup upgrade
	assert_success
	assert_output "upgraded repository '$REPO' from format 1 to format 2"
	[ ! -e "$REPO/backup/format" ] && [ ! -e "$REPO/backup/state" ]
	run git --git-dir="$REPO" cat-file blob refs/backup/state:format
	assert_output "backup repository format 2"
	assert_state_kept "$REPO"
	git --git-dir="$REPO" fsck --full --strict
	run backup upgrade --json
	assert_success
	assert_output "{\"repository\":\"$REPO\",\"from\":2,\"format\":2,\"upgraded\":false}"
	run backup check --read-data
	assert_success
	# And now a clone of it is a repository.
	mirror "$REPO" "$T/copy.git"
	assert_state_kept "$T/copy.git"
	rm -rf "$T/out" && backup --repo "$T/copy.git" restore web1 --path / --to "$T/out" -q
	run tree_diff "$T/src" "$T/out"
	assert_output ""
	git --git-dir="$T/copy.git" fsck --full
}

@test "the first command that writes upgrades a format-1 repository" {
	setup_format1
	cp -a "$REPO" "$T/f1"
	run backup run web1
	assert_success
	assert_output --partial "upgraded repository '$REPO' to format 2"
	assert_state_kept "$REPO"
	[ ! -e "$REPO/backup/format" ]
	run backup run web1
	refute_output --partial "upgraded"
	git --git-dir="$REPO" fsck --full
	# A state change, and rotate, do it too; a dry run does not.
	for cmd in "enable web1" "rotate --dry-run" "rotate"; do
		rm -rf "$REPO" && cp -a "$T/f1" "$REPO"
		run backup $cmd
		assert_success
		if [ "$cmd" = "rotate --dry-run" ]; then
			[ -f "$REPO/backup/format" ] || fail "a dry run upgraded"
			refute_output --partial "upgraded"
		else
			assert_output --partial "upgraded repository '$REPO' to format 2"
			assert_state_kept "$REPO"
			[ ! -e "$REPO/backup/format" ] || fail "'$cmd' did not upgrade"
		fi
	done
}

@test "a clone of a format-1 repository is refused with the fix" {
	setup_format1
	mirror "$REPO" "$T/copy.git"
	run -1 backup --repo "$T/copy.git" list
	assert_output "backup: '$T/copy.git' is a copy of a format-1 repository: git did not copy its service state; run 'backup upgrade' on the original, then copy it again"
	run -1 backup --repo "$T/copy.git" upgrade
	assert_output --partial "run 'backup upgrade' on the original"
	# Nothing was made in the copy.
	[ ! -e "$T/copy.git/backup" ]
	# The fix works.
	backup upgrade -q
	rm -rf "$T/copy.git" && mirror "$REPO" "$T/copy.git"
	run backup --repo "$T/copy.git" list
	assert_success
}

@test "leftover format-1 files beside the state ref: format 2, tidied by the next upgrade" {
	setup_format1
	cp "$REPO/backup/format" "$REPO/backup/state" "$T/"
	backup upgrade -q
	cp "$T/format" "$T/state" "$REPO/backup/"
	# The ref wins, whatever the files say.
	git config -f "$REPO/backup/state" machine.web1.window W10
	run backup schedule web1
	assert_output --partial W6
	run backup upgrade
	assert_output "repository '$REPO' is already format 2"
	[ ! -e "$REPO/backup/format" ] && [ ! -e "$REPO/backup/state" ]
}

SHIM=$BATS_TEST_DIRNAME/faultshim.so

# faults MODE CHECK ARGS...: runs `backup ARGS` on a fresh copy of
# $T/orig with a kill -9 (MODE kill) or a full disk (MODE enospc) at a
# durable step in the repository (tests/faultshim.c), then runs CHECK,
# which asserts the repository opens and is whole. As in 75-crash, the
# suite samples the steps (fault_steps: about 12 points, shared by the two
# modes); `make check-crash` takes every one in both.
faults() {
	local mode=$1 check=$2 total n code steps
	shift 2
	[ -f "$SHIM" ] || skip "tests/faultshim.so is not built (make check builds it)"
	rm -rf "$REPO" && cp -a "$T/orig" "$REPO"
	FAULT_DIR=$REPO FAULT_COUNT=$T/count LD_PRELOAD=$SHIM "$BK" "$@" >/dev/null 2>&1 || true
	total=$(cat "$T/count")
	[ "$total" -gt 3 ] || fail "only $total steps counted for '$*'"
	steps=$(fault_steps "$mode" "$total")
	for n in $steps; do
		rm -rf "$REPO" && cp -a "$T/orig" "$REPO"
		code=0
		FAULT_DIR=$REPO FAULT_AT=$n FAULT_MODE=$mode LD_PRELOAD=$SHIM "$BK" -q "$@" >"$T/fault.out" 2>&1 || code=$?
		if [ "$mode" = enospc ] && [ "$code" != 0 ]; then
			[ "$code" = 1 ] || fail "step $n/$total of '$*': exit $code on a full disk"
			grep -q "No space left on device" "$T/fault.out" ||
				fail "step $n/$total of '$*': no clear message: $(cat "$T/fault.out")"
		fi
		$check "$mode at step $n/$total of '$*'"
	done
	echo "# $mode: $total steps of '$*', at" $steps >&3
}

# After a fault in the upgrade: it opens (format 1 or 2) with its state,
# the next upgrade finishes it, and everything checks clean.
upgrade_recovers() {
	run backup schedule web1
	[ "$status" = 0 ] || fail "$1: it does not open: $output"
	[[ $output = *W6* ]] || fail "$1: the schedule is lost: $output"
	run backup upgrade
	[ "$status" = 0 ] || fail "$1: the next upgrade failed: $output"
	[ ! -e "$REPO/backup/format" ] || fail "$1: backup/format is left"
	assert_state_kept "$REPO"
	run backup check --read-data
	[ "$status" = 0 ] || fail "$1: check failed: $output"
	git --git-dir="$REPO" fsck --full --no-dangling >/dev/null 2>&1 || fail "$1: git fsck failed"
}

@test "a crash or a full disk at any durable step of the upgrade leaves a repository that opens" {
	setup_format1
	cp -a "$REPO" "$T/orig"
	faults kill upgrade_recovers upgrade
	faults enospc upgrade_recovers upgrade
}

# After a fault in a state change: it opens with the old state or the new.
change_recovers() {
	run backup schedule web1
	[ "$status" = 0 ] || fail "$1: it does not open: $output"
	[[ $output = *W6* || $output = *W8* ]] || fail "$1: the schedule is lost: $output"
	run backup schedule web1 --window W8
	[ "$status" = 0 ] || fail "$1: the next change failed: $output"
	run backup schedule web1
	[[ $output = *W8* ]] || fail "$1: the next change was lost: $output"
	run backup check
	[ "$status" = 0 ] || fail "$1: check failed: $output"
	git --git-dir="$REPO" fsck --full --no-dangling >/dev/null 2>&1 || fail "$1: git fsck failed"
}

@test "a crash or a full disk at any durable step of a state change leaves the old state or the new" {
	echo x >"$T/src/a"
	backup run -q web1
	backup schedule -q web1 --window W6
	cp -a "$REPO" "$T/orig"
	faults kill change_recovers schedule web1 --window W8
	faults enospc change_recovers schedule web1 --window W8
	# On format 1, the change upgrades first: every step of both.
	rm -rf "$T/orig"
	make_format1 "$REPO"
	cp -a "$REPO" "$T/orig"
	faults kill change_recovers schedule web1 --window W8
	faults enospc change_recovers schedule web1 --window W8
}
