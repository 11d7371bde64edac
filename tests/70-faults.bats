#!/usr/bin/env bats
# Faults: kill -9 at any instant, a full disk, hostile input.

load test_helper

setup() { setup_repo web1; }

@test "kill -9 during run: the repository checks clean, the last backup restores, the next run works" {
	echo first >"$T/src/first"
	backup run -q web1
	good=$(git --git-dir="$REPO" rev-parse refs/backups/web1/daily)
	head -c 60M /dev/urandom >"$T/src/big1"
	head -c 60M /dev/urandom >"$T/src/big2"
	for delay in 0.05 0.2 0.4 0.7; do
		kill_after "$delay" run -q web1
		run backup check --read-data
		assert_success
		git --git-dir="$REPO" fsck --full
		rm -rf "$T/out"
		backup restore web1:daily --path /first --to "$T/out" -q
		[ "$(cat "$T/out/first")" = first ]
	done
	run backup run web1
	assert_success
	rm -rf "$T/out"
	backup restore web1 --new r1 -q
	run tree_diff "$T/src" "$MROOT/r1/disks/root"
	assert_output ""
}

@test "a full disk during run: one clear error, the previous backup intact" {
	mkdir "$T/small"
	mount -t tmpfs -o size=8M none "$T/small" || skip "cannot mount tmpfs here"
	backup init -q --repo "$T/small/repo"
	backup enable -q --repo "$T/small/repo" web1
	echo first >"$T/src/first"
	backup run -q --repo "$T/small/repo" web1
	before=$(git --git-dir="$T/small/repo" rev-parse refs/backups/web1/daily)
	head -c 20M /dev/urandom >"$T/src/big"
	run -1 backup run --repo "$T/small/repo" web1
	assert_output --partial "No space left on device"
	[ "$(git --git-dir="$T/small/repo" rev-parse refs/backups/web1/daily)" = "$before" ]
	run backup check --read-data --repo "$T/small/repo"
	assert_success
	ls "$T/small/repo/objects/pack" | grep -v '^pack-' && fail "temporary files left behind"
	umount "$T/small"
}

@test "a full disk during restore: the write error, no file called damaged" {
	for i in 1 2 3 4 5 6 7 8; do head -c 1M /dev/urandom >"$T/src/f$i"; done
	backup run -q web1
	mkdir "$T/small"
	mount -t tmpfs -o size=3M none "$T/small" || skip "cannot mount tmpfs here"
	run backup restore web1 --path / --to "$T/small/out"
	umount "$T/small"
	assert_failure
	assert_output --partial "No space left on device"
	refute_output --partial "damaged"
	# The repository is not to blame.
	backup check --read-data
}

@test "a damaged metadata blob is reported, never guessed at" {
	mkdir -p "$T/src/d" && echo x >"$T/src/d/f"
	backup run -q web1
	# Replace the slot with a commit whose tree's .meta is garbage, written with stock git.
	garbage=$(printf 'not metadata' | zstd -q -c | git --git-dir="$REPO" hash-object -w --stdin)
	disk=$(printf '100644 blob %s\t.meta\n' "$garbage" | git --git-dir="$REPO" mktree)
	top=$(printf '040000 tree %s\troot\n' "$disk" | git --git-dir="$REPO" mktree)
	msg=$(git --git-dir="$REPO" log -1 --format=%B refs/backups/web1/daily)
	commit=$(echo "$msg" | GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@t GIT_COMMITTER_NAME=t GIT_COMMITTER_EMAIL=t@t git --git-dir="$REPO" commit-tree "$top")
	git --git-dir="$REPO" update-ref refs/backups/web1/daily "$commit"
	run -1 backup check
	assert_output --partial "damaged: metadata"
	run -1 backup restore web1 --new r1
	assert_output --partial "metadata is missing or damaged"
	[ ! -e "$MACHINES/r1.conf" ]
}

@test "locks left by a killed job never block the next one" {
	echo x >"$T/src/a"
	backup run -q web1
	: >"$REPO/refs/backups/web1/daily.lock"
	: >"$REPO/refs/backup/state.lock"
	: >"$REPO/backup/state.edit.lock"
	run backup run web1
	assert_success
	run backup enable web1
	assert_success
	# enable within the second of setup's changes nothing; a change that
	# commits must remove the stale lock of the state ref.
	run backup schedule -q web1 --window W6
	assert_success
	[ ! -e "$REPO/refs/backups/web1/daily.lock" ]
	[ ! -e "$REPO/refs/backup/state.lock" ]
}

@test "packs removed behind our back are not deduplicated against" {
	head -c 1000000 /dev/urandom >"$T/src/a"
	backup run -q web1
	rm -f "$REPO"/objects/pack/pack-*
	run backup run web1
	assert_success
	run backup check --read-data
	assert_success
	backup restore web1 --new r1 -q
	cmp "$T/src/a" "$MROOT/r1/disks/root/a"
}

@test "a backup written by a newer format is skipped with a warning, not called damaged" {
	echo x >"$T/src/a"
	backup run -q web1
	msg=$(git --git-dir="$REPO" log -1 --format=%B refs/backups/web1/daily | sed 's/^backup-format 1$/backup-format 2/')
	tree=$(git --git-dir="$REPO" rev-parse refs/backups/web1/daily^{tree})
	c=$(echo "$msg" | GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@t GIT_COMMITTER_NAME=t GIT_COMMITTER_EMAIL=t@t git --git-dir="$REPO" commit-tree "$tree")
	git --git-dir="$REPO" update-ref refs/backups/web1/snapshot "$c"
	run backup list
	assert_success
	assert_output --partial "written by a newer backup; skipped"
	assert_output --partial daily
}

@test "SIGTERM or SIGINT stops a run cleanly: exit 130, no temporary files, the next run works" {
	echo first >"$T/src/first"
	backup run -q web1
	head -c 150M /dev/urandom >"$T/src/big"
	# Folders after it that the scanner reads ahead and the walk must hand back.
	for d in a a/b a/b/c a/d e e/f; do mkdir -p "$T/src/tree/$d" && echo x >"$T/src/tree/$d/x"; done
	for sig in TERM INT; do
		"$BK" run -q web1 &
		pid=$!
		# Strike while a pack is being written.
		for i in $(seq 1 200); do
			ls "$REPO/objects/pack" | grep -q '^tmp_pack_' && break
			sleep 0.05
		done
		kill -s "$sig" "$pid"
		code=0
		wait "$pid" || code=$?
		[ "$code" = 130 ] || fail "exit $code after SIG$sig"
		run ls "$REPO/objects/pack"
		refute_output --partial tmp_
		backup check --read-data
	done
	run backup run web1
	assert_success
}
