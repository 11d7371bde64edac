#!/usr/bin/env bats
# backup run: automatic backups into the daily slot, incremental, locked.

load test_helper

setup() { setup_repo web1; }

@test "run takes a backup into the daily slot, visible to stock git" {
	echo hello >"$T/src/a"
	run backup run web1
	assert_success
	assert_output --regexp '^web1 daily [0-9a-f]{40}: 1 files'
	run git --git-dir="$REPO" log --format=%s refs/backups/web1/daily
	assert_output "backup web1 automatic"
	git --git-dir="$REPO" fsck --full
}

@test "an unchanged re-run reads no content; a change reads only that file" {
	head -c 5000000 /dev/urandom >"$T/src/big"
	echo small >"$T/src/small"
	backup run -q web1
	run backup run --json web1
	assert_success
	[ "$(echo "$output" | json_field bytes_read)" = 0 ]
	[ "$(echo "$output" | json_field files_read)" = 0 ]
	[ "$(echo "$output" | json_field files)" = 2 ]
	echo changed >>"$T/src/small"
	run backup run --json web1
	[ "$(echo "$output" | json_field files_read)" = 1 ]
	[ "$(echo "$output" | json_field bytes_read)" = 14 ]
}

@test "a link is read once: an unchanged link stores nothing new; a replaced one is noticed" {
	echo a >"$T/src/a"
	mkdir "$T/src/d"
	ln -s ../a "$T/src/d/l1"
	ln -s /nowhere "$T/src/l2"
	# An atime older than the ctime: reading a link moves its atime
	# (relatime), which the next run must not take for a change.
	touch -h -a -d '2001-02-03 04:05:06' "$T/src/d/l1" "$T/src/l2"
	backup run -q web1
	t1=$(git --git-dir="$REPO" rev-parse 'refs/backups/web1/daily^{tree}')
	run backup run --json web1
	assert_success
	t2=$(git --git-dir="$REPO" rev-parse 'refs/backups/web1/daily^{tree}')
	[ "$t1" = "$t2" ] || fail "an unchanged tree was stored again: $(git --git-dir="$REPO" diff-tree -r --name-only "$t1" "$t2")"
	ln -sfn /elsewhere "$T/src/l2"
	backup run -q web1
	backup restore web1 --new r1 -q
	[ "$(readlink "$MROOT/r1/disks/root/l2")" = /elsewhere ]
	[ "$(readlink "$MROOT/r1/disks/root/d/l1")" = ../a ]
}

@test "a change of attributes alone (ctime) is noticed" {
	echo hello >"$T/src/a"
	backup run -q web1
	setfattr -n user.new -v 1 "$T/src/a"
	run backup run --json web1
	[ "$(echo "$output" | json_field files_read)" = 1 ]
}

@test "a 1-byte change in a 100 MiB file stores about one chunk" {
	head -c 100M /dev/urandom >"$T/src/huge"
	backup run -q web1
	printf 'Z' | dd of="$T/src/huge" bs=1 seek=50000000 conv=notrunc status=none
	run backup run --json web1
	stored=$(echo "$output" | json_field bytes_stored)
	# One chunk is at most 4 MiB; plus the trees and metadata.
	[ "$stored" -lt $((5 * 1024 * 1024)) ] || fail "stored $stored bytes"
	[ "$stored" -gt 100000 ] || fail "stored only $stored bytes"
}

@test "identical content is stored once across files and machines" {
	head -c 2000000 /dev/urandom >"$T/src/one"
	cp "$T/src/one" "$T/src/two"
	mkdir "$T/src2" && cp "$T/src/one" "$T/src2/three"
	define_machine web2 "$T/src2"
	backup enable -q web2
	run backup run --json web1
	stored=$(echo "$output" | json_field bytes_stored)
	[ "$stored" -lt 2100000 ] || fail "stored $stored"
	run backup run --json web2
	[ "$(echo "$output" | json_field bytes_stored)" -lt 10000 ]
}

@test "exclude patterns skip matching paths" {
	mkdir -p "$T/src/cache/deep" "$T/src/keep"
	echo x >"$T/src/cache/deep/f"
	echo y >"$T/src/keep/f"
	echo z >"$T/src/skip.tmp"
	define_machine web1 "$T/src" "[backup]" "	exclude = $T/src/cache" "	exclude = *.tmp"
	backup run -q web1
	backup restore web1 --new r1 -q
	[ -f "$MROOT/r1/disks/root/keep/f" ]
	[ ! -e "$MROOT/r1/disks/root/cache" ]
	[ ! -e "$MROOT/r1/disks/root/skip.tmp" ]
}

@test "preHook runs before the disks are read; a failing one aborts" {
	define_machine web1 "$T/src" "[backup]" "	preHook = echo dumped-by-\$BACKUP_MACHINE > $T/src/dump" \
		"	postHook = echo \$BACKUP_STATUS > $T/post"
	backup run -q web1
	backup restore web1 --path /dump --to "$T/out" -q
	[ "$(cat "$T/out/dump")" = dumped-by-web1 ]
	[ "$(cat "$T/post")" = 0 ]
	define_machine web1 "$T/src" "[backup]" "	preHook = exit 7"
	before=$(git --git-dir="$REPO" rev-parse refs/backups/web1/daily)
	run -1 backup run web1
	assert_output --partial "preHook of 'web1' failed (exit 7)"
	[ "$(git --git-dir="$REPO" rev-parse refs/backups/web1/daily)" = "$before" ]
}

@test "a file that cannot be read is named, the rest backed up, exit 3" {
	echo ok >"$T/src/good"
	echo secret >"$T/src/bad"
	chmod 000 "$T/src/bad"
	# root reads anything: take the capability away with setpriv.
	run -3 setpriv --inh-caps=-all --bounding-set=-dac_override,-dac_read_search "$BK" run web1
	assert_output --partial "cannot read '$T/src/bad'"
	backup restore web1 --path /good --to "$T/out" -q
	[ "$(cat "$T/out/good")" = ok ]
}

@test "a second job on the same machine exits 75 at once, or waits" {
	echo x >"$T/src/a"
	exec 9>"$REPO/backup/locks/web1.lock"
	flock 9
	run -75 backup run web1
	assert_output --partial "machine 'web1' is busy"
	( sleep 1; flock -u 9 ) &
	run backup run --wait 10 web1
	assert_success
	exec 9>&-
}

@test "a machine that is not enrolled is refused with the fix" {
	define_machine web9 "$T/src"
	run -1 backup run web9
	assert_output --partial "run 'backup enable web9' first"
}

@test "an unknown machine and a bad machine file are named" {
	run -1 backup run nosuch
	assert_output --partial "unknown machine 'nosuch'"
	printf '[machine]\n\tplan = lots\n[disk "root"]\n\tsource = /tmp\n' >"$MACHINES/web1.conf"
	run -1 backup run web1
	assert_output --partial "machine.plan 'lots' is not a size"
	printf '[machine]\n\tplan = 1G\n[disk "root"]\n\tsize = 1G\n' >"$MACHINES/web1.conf"
	run -1 backup run web1
	assert_output --partial "disk 'root' has no source"
}

@test "run --all backs up every enrolled machine" {
	mkdir -p "$T/src2" && echo b >"$T/src2/b" && echo a >"$T/src/a"
	define_machine web2 "$T/src2"
	define_machine web3 "$T/src2"
	backup enable -q web2
	run backup run --all --json
	assert_success
	run backup list --json
	[ "$(echo "$output" | python3 -c 'import json,sys; print(sorted(b["machine"] for b in json.load(sys.stdin)))')" = "['web1', 'web2']" ]
}

@test "the run never crosses into another file system" {
	mountpoint -q /proc || skip "no /proc"
	echo x >"$T/src/a"
	mkdir "$T/src/mnt"
	mount -t tmpfs none "$T/src/mnt" || skip "cannot mount tmpfs here"
	echo hidden >"$T/src/mnt/other-fs"
	define_machine web1 "$T/src"
	backup run -q web1
	umount "$T/src/mnt"
	backup restore web1 --new r1 -q
	[ -d "$MROOT/r1/disks/root/mnt" ]
	[ ! -e "$MROOT/r1/disks/root/mnt/other-fs" ]
}

@test "progress goes to stderr on a terminal, never with -q or into a pipe" {
	echo x >"$T/src/a"
	run script -qec "'$BK' run web1" /dev/null
	assert_success
	assert_output --partial "MiB/s"
	run script -qec "'$BK' run -q web1" /dev/null
	refute_output --partial "MiB/s"
	run backup run web1
	refute_output --partial "MiB/s"
}

@test "a bad machine file is named with its line, and a disk given twice is refused" {
	printf '[machine]\n\tplan = 10G\n\n# a comment\n[disk "root"]\n\tsource = /tmp\n\tsize = lots\n' >"$MACHINES/web1.conf"
	run -1 backup run web1
	assert_output "backup: $MACHINES/web1.conf:7: disk.root.size 'lots' is not a size; write it like 25G"
	printf '[machine]\n\tplan = 10G\n[disk "root"]\n\tsource = /tmp\n[disk "root"]\n\tsize = 1G\n' >"$MACHINES/web1.conf"
	run -1 backup run web1
	assert_output --partial "web1.conf:5: disk 'root' is defined twice"
	printf '[machine]\n\tplan = 10G\n[disk "root"]\n\tsource = /tmp\n\tcolour = red\n' >"$MACHINES/web1.conf"
	run -1 backup run web1
	assert_output --partial "web1.conf:5: unknown key 'disk.root.colour'"
	printf '[machine]\n\tplan = 10G\n[disk "root"\n' >"$MACHINES/web1.conf"
	run -1 backup run web1
	assert_output --partial "web1.conf:3"
	[ -z "$(ls "$REPO/objects/pack")" ]
}

@test "hooks run in the documented environment only" {
	define_machine web1 "$T/src" "[backup]" "	preHook = env > $T/hook-env"
	SECRET_TOKEN=hunter2 TZ=Europe/Paris backup run -q web1
	grep -qx "BACKUP_MACHINE=web1" "$T/hook-env"
	grep -qx "BACKUP_KIND=automatic" "$T/hook-env"
	grep -qx "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" "$T/hook-env"
	grep -qx "TZ=Europe/Paris" "$T/hook-env"
	! grep -q SECRET_TOKEN "$T/hook-env"
	! grep -q BACKUP_CONFIG "$T/hook-env"
}
