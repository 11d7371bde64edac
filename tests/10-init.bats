#!/usr/bin/env bats
# backup init: a repository stock git reads, private, never overwritten.

load test_helper

setup() { setup_config; }

@test "init creates a bare git repository stock git accepts" {
	run backup init
	assert_success
	assert_output --partial "initialized repository '$REPO'"
	run git --git-dir="$REPO" rev-parse --is-bare-repository
	assert_output true
	run git --git-dir="$REPO" config core.logAllRefUpdates
	assert_output always
	git --git-dir="$REPO" fsck --full
	# The format travels with git, in the state ref.
	run git --git-dir="$REPO" cat-file blob refs/backup/state:format
	assert_output "backup repository format 2"
	[ -d "$REPO/backup/dedup" ] && [ -d "$REPO/backup/locks" ]
}

@test "the repository is private whatever the umask" {
	umask 000
	backup init -q
	[ "$(stat -c %a "$REPO")" = 700 ]
	[ "$(stat -c %a "$REPO/backup")" = 700 ]
	[ "$(stat -c %a "$REPO/config")" = 600 ]
	# Nothing in it, the state's objects included, is open to others.
	run find "$REPO" -perm /077
	assert_output ""
}

@test "init refuses to overwrite an existing repository or folder" {
	backup init -q
	run -1 backup init
	assert_output --partial "already exists"
	mkdir -p "$T/other" && echo keep >"$T/other/file"
	run -1 backup init --repo "$T/other"
	assert_output --partial "already exists"
	[ "$(cat "$T/other/file")" = keep ]
}

@test "--repo and BACKUP_REPO replace repository.path" {
	backup init -q --repo "$T/r2"
	git --git-dir="$T/r2" rev-parse -q --verify refs/backup/state
	BACKUP_REPO=$T/r3 backup init -q
	git --git-dir="$T/r3" rev-parse -q --verify refs/backup/state
	[ ! -e "$REPO" ]
}

@test "a missing, foreign or newer repository is refused with the fix" {
	run -1 backup list
	assert_output --partial "no repository at '$REPO'"
	git init -q --bare "$REPO"
	run -1 backup list
	assert_output --partial "is not a backup repository"
	rm -rf "$REPO"
	backup init -q
	# A newer backup's state commit, made with stock git.
	blob=$(echo "backup repository format 99" | git --git-dir="$REPO" hash-object -w --stdin)
	tree=$(git --git-dir="$REPO" ls-tree refs/backup/state | sed "s/[0-9a-f]\{40\}\tformat\$/$blob\tformat/" |
		git --git-dir="$REPO" mktree)
	commit=$(git --git-dir="$REPO" -c user.name=t -c user.email=t@t commit-tree "$tree" </dev/null)
	git --git-dir="$REPO" update-ref refs/backup/state "$commit"
	run -1 backup list
	assert_output --partial "has format 99, newer than this backup (3); upgrade backup"
}

@test "a malformed configuration is named and nothing happens" {
	printf '[repository\n\tpath = x\n' >"$BACKUP_CONFIG"
	run -1 backup init
	assert_output --partial "malformed configuration"
	run -1 backup init --config "$T/nonexistent.conf"
	assert_output --partial "cannot read the configuration"
}

@test "--json prints the repository created" {
	run backup init --json
	assert_success
	assert_output "{\"repository\":\"$REPO\"}"
}

@test "an unknown key in the global configuration is named with its line" {
	printf '[repository]\n\tpath = %s\n[machines]\n\tdirectory = /etc\n' "$REPO" >"$BACKUP_CONFIG"
	run -1 backup init
	assert_output "backup: $BACKUP_CONFIG:4: unknown key 'machines.directory'; see backup.conf(5)"
	[ ! -e "$REPO" ]
}

@test "stock git's own upkeep accepts the repository's settings, old ones mended" {
	backup init -q
	run git --git-dir="$REPO" gc --auto
	assert_success
	assert_output ""
	# Repositories made by 0.1.0 said gc.auto=false: git takes it for a
	# number and fails in every fetch. The next command mends it.
	git --git-dir="$REPO" config gc.auto false
	run -128 git --git-dir="$REPO" gc --auto
	backup list -q
	run git --git-dir="$REPO" config gc.auto
	assert_output 0
	run git --git-dir="$REPO" gc --auto
	assert_success
	assert_output ""
}
