#!/usr/bin/env bats
# backup restore: exact round trips, to a new machine and of single paths.

load test_helper

setup() { setup_repo web1; }

@test "round trip of every kind of file and metadata is exact (ns times included)" {
	make_torture_tree "$T/src"
	backup run -q web1
	run backup restore web1 --new r1
	assert_success
	run tree_diff "$T/src" "$MROOT/r1/disks/root"
	assert_output ""
	# rsync does not compare these: check them directly.
	[ "$(stat -c %i "$MROOT/r1/disks/root/file")" = "$(stat -c %i "$MROOT/r1/disks/root/dir/hardlink")" ]
	[ "$(stat -c %t,%T "$MROOT/r1/disks/root/blockdev")" = 7,c8 ]
	[ "$(du -k "$MROOT/r1/disks/root/sparse" | cut -f1)" -lt 1000 ]
	getfacl -p "$MROOT/r1/disks/root/dir/sub" | grep -q "default:group:54321:r-x"
	[ "$(stat -c %U:%G "$MROOT/r1/disks/root/owned")" = "$(stat -c %U:%G "$T/src/owned")" ]
	[ "$(stat -c %y "$MROOT/r1/disks/root/symlink")" = "$(stat -c %y "$T/src/symlink")" ]
	git --git-dir="$REPO" fsck --full
}

@test "restore reads a repository that stock git repacked (deflate, deltas)" {
	make_torture_tree "$T/src"
	seq 1 200000 >"$T/src/numbers"
	backup run -q web1
	seq 1 200001 >"$T/src/numbers"
	backup run -q --snapshot web1
	# Levels 0 and 1 start their zlib streams as ours do (78 01) but hold
	# git's own blocks; the default level does not. Every one is read right.
	for level in 1 0 6; do
		git --git-dir="$REPO" -c pack.compression=$level repack -a -d -f -q
		# The packs are git's now: none of ours is left to read directly.
		run bash -c "ls '$REPO'/objects/pack/*.pack | wc -l"
		assert_output 1
		run backup restore web1 --new r$level
		assert_success
		run tree_diff "$T/src" "$MROOT/r$level/disks/root"
		assert_output ""
	done
}

@test "restore --new writes the machine file: disks, sizes, profiles, plan" {
	echo x >"$T/src/a"
	define_machine web1 "$T/src" '[profile "rescue"]' '	root = sda' '	sda = root'
	backup run -q web1
	backup restore web1 --new r1 -q
	conf=$MACHINES/r1.conf
	[ "$(git config -f "$conf" disk.root.source)" = "$MROOT/r1/disks/root" ]
	[ "$(git config -f "$conf" disk.root.size)" = 1073741824 ]
	[ "$(git config -f "$conf" disk.root.filesystem)" = ext4 ]
	[ "$(git config -f "$conf" profile.default.sda)" = root ]
	[ "$(git config -f "$conf" profile.rescue.root)" = sda ]
	[ "$(git config -f "$conf" machine.plan)" = 10737418240 ]
	# The new machine is a machine like any other.
	backup enable -q r1
	run backup run r1
	assert_success
}

@test "restore --new refuses an existing machine and leaves nothing half-made" {
	echo x >"$T/src/a"
	backup run -q web1
	run -1 backup restore web1 --new web1
	assert_output --partial "machine 'web1' already exists"
	[ ! -e "$MROOT/web1" ]
	run -1 backup restore web1 --new 'bad/name'
	assert_output --partial "not a valid machine name"
}

@test "restore --path brings back single files and folders with metadata" {
	make_torture_tree "$T/src"
	backup run -q web1
	run backup restore web1 --path /file --path /dir/sub --to "$T/out"
	assert_success
	[ "$(cat "$T/out/file")" = hello ]
	[ "$(stat -c %y "$T/out/file")" = "$(stat -c %y "$T/src/file")" ]
	run tree_diff "$T/src/dir/sub" "$T/out/dir/sub"
	assert_output ""
	[ ! -e "$T/out/random3m" ]
}

@test "LABEL:/path restores from another disk into DIR/LABEL" {
	mkdir -p "$T/data/www" && echo page >"$T/data/www/index.html" && echo r >"$T/src/r"
	define_machine web1 "$T/src" '[disk "data"]' "	source = $T/data" '	size = 2G' '[profile "default"]' '	sdb = data'
	backup run -q web1
	backup restore web1 --path data:/www --path /r --to "$T/out" -q
	[ "$(cat "$T/out/data/www/index.html")" = page ]
	[ "$(cat "$T/out/r")" = r ]
	run -1 backup restore web1 --path nodisk:/x --to "$T/out"
	assert_output --partial "has no disk 'nodisk'"
	run -1 backup restore web1 --path /nosuch --to "$T/out"
	assert_output --partial "has no '/nosuch'"
}

@test "SRC may be MACHINE, MACHINE:SLOT or an id prefix" {
	echo one >"$T/src/v"
	backup run -q web1
	id=$(git --git-dir="$REPO" rev-parse refs/backups/web1/daily)
	backup restore "web1:daily" --path /v --to "$T/a" -q
	backup restore "${id:0:8}" --path /v --to "$T/b" -q
	[ "$(cat "$T/a/v")" = one ] && [ "$(cat "$T/b/v")" = one ]
	run -1 backup restore web1:weekly --path /v --to "$T/c"
	assert_output --partial "no backup 'web1:weekly'"
	run -1 backup restore nosuch --path /v --to "$T/c"
	assert_output --partial "no backup 'nosuch'"
	run -2 backup restore web1
	run -2 backup restore web1 --path /v
}

@test "restore never writes through a symlink planted in the target" {
	mkdir -p "$T/src/etc" && echo new >"$T/src/etc/passwd"
	backup run -q web1
	mkdir -p "$T/out" "$T/victim"
	echo precious >"$T/victim/passwd"
	ln -s "$T/victim" "$T/out/etc"
	backup restore web1 --path /etc/passwd --to "$T/out" -q
	[ "$(cat "$T/victim/passwd")" = precious ]
	[ -d "$T/out/etc" ] && [ ! -L "$T/out/etc" ]
	[ "$(cat "$T/out/etc/passwd")" = new ]
}

@test "--json describes what was restored" {
	echo x >"$T/src/a"
	backup run -q web1
	run backup restore web1 --new r1 --json
	assert_success
	[ "$(echo "$output" | json_field machine)" = r1 ]
	[ "$(echo "$output" | json_field files)" = 1 ]
}
