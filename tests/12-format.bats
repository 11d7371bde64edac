#!/usr/bin/env bats
# The repository format: everything that defines a repository travels in
# git (refs/backup/state), so any copy stock git makes is a repository.

load test_helper

setup() { setup_repo web1; }

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
