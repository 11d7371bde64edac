#!/usr/bin/env bats
# backup restore --existing (new disks and a profile on a machine, --overwrite)
# and --disk-format ext4 (disks as image files made with mke2fs -d).

load test_helper

setup() { setup_repo web1; }

teardown() {
	if [ -n "${MOUNTED:-}" ]; then
		umount "$MOUNTED" 2>/dev/null || true
	fi
}

# The machine file of $1.
conf() { printf '%s\n' "$MACHINES/$1.conf"; }

# Lists every name under $1 with its type, mode and owner, and every file's
# size, mtime and checksum: equal before and after means nothing there
# changed. (A folder's mtime is left out: making and removing a disk that
# failed changes that of the disks folder.)
snapshot_dir() {
	(cd "$1" && find . -printf '%p %y %m %U:%G\n' | sort &&
		find . ! -type d -printf '%p %s %T@\n' | sort &&
		find . -type f -print0 | sort -z | xargs -0r sha256sum)
}

# Makes web2: a machine with one folder disk of 1G under machines.root,
# restored from web1's backup of the file "old", and a hand-written comment.
make_web2() {
	echo old >"$T/src/old"
	backup run -q web1
	backup restore -q web1 --new web2
	rm "$T/src/old"
	sed -i '1i # web2: the staging web server' "$(conf web2)"
	git config -f "$(conf web2)" machine.plan "${1:-10G}"
}

# Puts the files of ext4 image $1 in folder $2: a read-only loop mount where
# this host allows one (then MOUNTED is set), else debugfs's rdump, which
# keeps the contents and the permission bits but no set-id or sticky bit.
open_image() {
	mkdir -p "$2"
	if mount -o loop,ro "$1" "$2" 2>/dev/null; then
		MOUNTED=$2
		return 0
	fi
	debugfs -R "rdump / $2" "$1" >/dev/null 2>&1
}

# What differs between folder $1 and the files of an opened image $2.
image_diff() {
	if [ -n "${MOUNTED:-}" ]; then
		# Times to the second: the precision mke2fs -d keeps.
		rsync -aHAXn --checksum -i --delete --exclude=/lost+found "$1/" "$2/"
	else
		# The regular files: their contents and permission bits.
		local d
		for d in "$1" "$2"; do
			(cd "$d" && find . -path ./lost+found -prune -o -type f -print0 | sort -z |
				xargs -0r stat -c '%n %s %a' | sed 's/[0-7]*\([0-7]\{3\}\)$/\1/' &&
				find . -path ./lost+found -prune -o -type f -print0 | sort -z | xargs -0r sha256sum) \
				>"$d.files"
		done
		diff "$1.files" "$2.files"
	fi
}

@test "--existing adds the backup's disks and a profile; the machine's own disks stay" {
	make_web2
	make_torture_tree "$T/src"
	backup run -q web1
	snapshot_dir "$MROOT/web2/disks/root" >"$T/before"
	run backup restore web1 --existing web2
	assert_success
	id=$(git --git-dir="$REPO" rev-parse refs/backups/web1/daily)
	profile=restore-${id:0:8}
	assert_output --partial "into machine 'web2' as disks root-r1 and profile '$profile'"
	c=$(conf web2)
	[ "$(git config -f "$c" disk.root-r1.source)" = "$MROOT/web2/disks/root-r1" ]
	[ "$(git config -f "$c" disk.root-r1.size)" = 1073741824 ]
	[ "$(git config -f "$c" profile.$profile.root)" = sda ]
	[ "$(git config -f "$c" profile.$profile.sda)" = root-r1 ]
	# The machine's disk and profile are as they were, and so is its comment.
	[ "$(git config -f "$c" disk.root.source)" = "$MROOT/web2/disks/root" ]
	[ "$(git config -f "$c" profile.default.sda)" = root ]
	head -1 "$c" | grep -qx '# web2: the staging web server'
	diff "$T/before" <(snapshot_dir "$MROOT/web2/disks/root")
	run tree_diff "$T/src" "$MROOT/web2/disks/root-r1"
	assert_output ""
	run backup boot-config web2 --list
	assert_output --partial "$profile"
	# Into the machine the backup came from, twice: new labels each time.
	backup restore -q web1 --existing web1
	backup restore -q web1 --existing web1
	[ "$(git config -f "$(conf web1)" disk.root-r2.source)" = "$MROOT/web1/disks/root-r2" ]
	[ "$(git config -f "$(conf web1)" profile.$profile-2.sda)" = root-r2 ]
	[ "$(git config -f "$(conf web1)" disk.root.source)" = "$T/src" ]
}

@test "--existing without room: exit 4, one line with both figures, nothing changed" {
	make_web2 2G
	mkdir -p "$T/data" && echo d >"$T/data/d" && echo r >"$T/src/r"
	define_machine web1 "$T/src" '[disk "data"]' "	source = $T/data" '	size = 2G' '[profile "default"]' '	sdb = data'
	backup run -q web1
	cp "$(conf web2)" "$T/conf.before"
	snapshot_dir "$MROOT" >"$T/before"
	run -4 backup restore web1 --existing web2
	assert_equal "${#lines[@]}" 1
	assert_output --partial "not enough space on machine 'web2'"
	assert_output --partial "needs 3.0 GiB (3221225472 bytes)"
	assert_output --partial "has 1.0 GiB (1073741824 bytes) unallocated"
	assert_output --partial "resize its disks"
	assert_output --partial "--overwrite"
	assert_output --partial "bigger plan"
	cmp "$(conf web2)" "$T/conf.before"
	diff "$T/before" <(snapshot_dir "$MROOT")
	# Even with its disks freed, a plan below the space required is too small.
	run -4 backup restore web1 --existing web2 --overwrite
	assert_equal "${#lines[@]}" 1
	assert_output --partial "even with its disks freed"
	assert_output --partial "needs 3.0 GiB (3221225472 bytes)"
	assert_output --partial "plan is 2.0 GiB (2147483648 bytes)"
	cmp "$(conf web2)" "$T/conf.before"
	diff "$T/before" <(snapshot_dir "$MROOT")
}

@test "--overwrite replaces the machine's disks and profiles with the backup's" {
	make_web2
	make_torture_tree "$T/src"
	backup run -q web1
	backup boot-config -q web2 --boot default
	run backup restore web1 --existing web2 --overwrite
	assert_success
	c=$(conf web2)
	id=$(git --git-dir="$REPO" rev-parse refs/backups/web1/daily)
	# The profile that booted is gone: the restored one boots.
	[ "$(git config -f "$c" machine.boot)" = "restore-${id:0:8}" ]
	[ ! -e "$MROOT/web2/disks/root" ]
	run git config -f "$c" --get-regexp '^(disk|profile)\.(root|default)\.'
	assert_failure
	run tree_diff "$T/src" "$MROOT/web2/disks/root-r1"
	assert_output ""
	grep -qx '# web2: the staging web server' "$c"
	# No empty section of the old disk or profile is left behind.
	run grep -E '^\[(disk "root"|profile "default")\]' "$c"
	assert_failure

	# Room only once the old disks are gone: read first, delete, restore.
	git config -f "$c" machine.plan 1G
	echo more >"$T/src/more"
	backup run -q web1
	run backup restore web1 --existing web2 --overwrite --json
	assert_success
	[ ! -e "$MROOT/web2/disks/root-r1" ]
	run tree_diff "$T/src" "$MROOT/web2/disks/root-r2"
	assert_output ""
	[ "$(ls "$MROOT/web2/disks")" = root-r2 ]
	backup boot-config web2 --list -q
}

@test "--overwrite never deletes a disk outside machines.root/NAME" {
	echo keep >"$T/src/keep"
	backup run -q web1
	run backup restore web1 --existing web1 --overwrite
	assert_success
	assert_output --partial "disk 'root' of 'web1' ('$T/src') is not inside '$MROOT/web1'"
	[ "$(cat "$T/src/keep")" = keep ]
	[ "$(git config -f "$(conf web1)" disk.root-r1.source)" = "$MROOT/web1/disks/root-r1" ]
	run git config -f "$(conf web1)" disk.root.source
	assert_failure
}

@test "--overwrite from a damaged backup leaves the machine as it was" {
	make_web2
	head -c 3000000 /dev/urandom >"$T/src/data"
	backup run -q web1
	damage_largest_pack
	cp "$(conf web2)" "$T/conf.before"
	snapshot_dir "$MROOT" >"$T/before"
	# Both fit: the restore fails before anything is deleted.
	run -1 backup restore web1 --existing web2 --overwrite
	assert_output --partial "its data in the repository is damaged"
	assert_output --partial "machine 'web2' left as it was"
	cmp "$(conf web2)" "$T/conf.before"
	diff "$T/before" <(snapshot_dir "$MROOT")
	# Room only once the old disks are gone: the backup is read first.
	git config -f "$(conf web2)" machine.plan 1G
	cp "$(conf web2)" "$T/conf.before"
	run -1 backup restore web1 --existing web2 --overwrite
	assert_output --partial "'root:/data': the backup cannot read this file"
	assert_output --partial "cannot be read in full (1 damaged); nothing deleted, machine 'web2' left as it was"
	cmp "$(conf web2)" "$T/conf.before"
	diff "$T/before" <(snapshot_dir "$MROOT")
}

@test "--disk-format ext4 makes images that pass e2fsck and hold every file" {
	make_torture_tree "$T/src"
	touch -d '2011-01-01 01:02:03.456' "$T/src"
	backup run -q web1
	run backup restore web1 --new r1 --disk-format ext4
	assert_success
	img=$MROOT/r1/disks/root.img
	[ "$(git config -f "$(conf r1)" disk.root.source)" = "$img" ]
	[ "$(git config -f "$(conf r1)" disk.root.filesystem)" = ext4 ]
	[ "$(stat -c %s "$img")" = 1073741824 ]
	[ "$(ls -A "$MROOT/r1/disks")" = root.img ]
	run e2fsck -fn "$img"
	assert_success
	# The root folder's own metadata, nanoseconds included, set with debugfs.
	run debugfs -R 'stat /' "$img"
	assert_output --partial "mtime: 0x4d1e7d0b:6cb80800"
	open_image "$img" "$T/mnt"
	run image_diff "$T/src" "$T/mnt"
	assert_output ""
	if [ -n "${MOUNTED:-}" ]; then
		[ "$(stat -c %i "$T/mnt/file")" = "$(stat -c %i "$T/mnt/dir/hardlink")" ]
		[ "$(stat -c %t,%T "$T/mnt/blockdev")" = 7,c8 ]
		getfacl -p "$T/mnt/dir/sub" | grep -q "default:group:54321:r-x"
		[ "$(stat -c %a "$T/mnt/setuid")" = 4755 ]
		[ "$(du -k "$T/mnt/sparse" | cut -f1)" -lt 1000 ]
	fi
}

@test "--existing --disk-format ext4 adds image disks" {
	make_web2
	echo new >"$T/src/new"
	backup run -q web1
	backup restore -q web1 --existing web2 --disk-format ext4
	img=$MROOT/web2/disks/root-r1.img
	[ "$(git config -f "$(conf web2)" disk.root-r1.source)" = "$img" ]
	[ "$(git config -f "$(conf web2)" disk.root-r1.filesystem)" = ext4 ]
	run e2fsck -fn "$img"
	assert_success
	run debugfs -R 'cat /new' "$img"
	assert_output --partial new
}

@test "a disk too small for its content: exit 4 naming it, nothing left behind" {
	define_machine web1 "$T/src"
	git config -f "$(conf web1)" disk.root.size 2M
	head -c 3000000 /dev/urandom >"$T/src/big"
	backup run -q web1
	run -4 backup restore web1 --new r1 --disk-format ext4
	assert_output --partial "disk 'root' of backup"
	assert_output --partial "does not fit its recorded size of 2.0 MiB (2097152 bytes)"
	assert_output --partial "--disk-format dir"
	[ ! -e "$MROOT/r1" ]
	[ ! -e "$(conf r1)" ]
	# Into an existing machine: its file and folders are as they were.
	make_web2
	cp "$(conf web2)" "$T/conf.before"
	snapshot_dir "$MROOT" >"$T/before"
	run -4 backup restore web1 --existing web2 --disk-format ext4
	assert_output --partial "disk 'root' of backup"
	cmp "$(conf web2)" "$T/conf.before"
	diff "$T/before" <(snapshot_dir "$MROOT")
	# As folders, the recorded size is not a limit.
	backup restore -q web1 --new r2
	cmp "$T/src/big" "$MROOT/r2/disks/root/big"
}

@test "--existing --json describes the disks made and removed" {
	make_web2
	backup run -q web1
	run backup restore web1 --existing web2 --overwrite --json
	assert_success
	echo "$output" | python3 -c '
import json, sys
d = json.load(sys.stdin)
assert d["machine"] == "web2", d
assert d["overwrite"] is True and d["disk_format"] == "dir", d
assert d["profile"].startswith("restore-"), d
assert d["required_bytes"] == 1 << 30 and d["unallocated_bytes"] == 9 << 30, d
assert [x["label"] for x in d["disks"]] == ["root-r1"], d
assert d["disks"][0]["from"] == "root" and d["disks"][0]["size"] == 1 << 30, d
assert d["removed_disks"] == [{"label": "root", "source": d["disks"][0]["path"][:-3], "deleted": True}], d
assert d["removed_profiles"] == ["default"], d
assert d["errors"] == 0, d
'
}

@test "restore --existing and --disk-format: usage and unknown machines" {
	echo x >"$T/src/x"
	backup run -q web1
	run -2 backup restore web1 --new r1 --overwrite
	assert_output --partial "--overwrite goes with --existing"
	run -2 backup restore web1 --new r1 --disk-format xfs
	assert_output --partial "--disk-format is dir or ext4"
	run -2 backup restore web1 --new r1 --existing web1
	run -2 backup restore web1 --path /x --to "$T/o" --disk-format ext4
	run -1 backup restore web1 --existing nosuch
	assert_output --partial "unknown machine 'nosuch'"
	[ ! -e "$MROOT/nosuch" ]
}
