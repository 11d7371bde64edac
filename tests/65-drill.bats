#!/usr/bin/env bats
# backup drill: restore to a scratch machine, verify every file, report, clean up.

load test_helper

setup() { setup_repo web1; }
teardown() { [ -z "${shared:-}" ] || rm -rf "$shared"; }

# Parses a JUnit file with python's XML parser and prints: the suite's name,
# tests and failures, then one line per testcase "NAME<TAB>FAILURE TEXT".
junit_summary() {
	python3 - "$1" <<'PY'
import sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
suites = [root] if root.tag == 'testsuite' else root.findall('testsuite')
assert len(suites) == 1, 'one testsuite'
s = suites[0]
print(s.get('name'), s.get('tests'), s.get('failures'), sep='\t')
for c in s.findall('testcase'):
    f = c.find('failure')
    print(c.get('name'), '' if f is None else f.text.replace('\n', '|'), sep='\t')
PY
}

@test "a drill of a sound backup passes, reports its time and leaves nothing behind" {
	make_torture_tree "$T/src"
	backup run -q web1
	id=$(git --git-dir="$REPO" rev-parse refs/backups/web1/daily)
	run backup drill web1
	assert_success
	assert_output --partial "drill of web1: backup $id (daily"
	assert_line --regexp '^disk root: [0-9]+ files, .*; restored in [0-9.]+ s, verified in [0-9.]+ s: ok$'
	assert_output --regexp 'drill passed: 1 disk, 19 files, [0-9]+ bytes, every file matches the backup; recovery [0-9.]+ s \(restore [0-9.]+ s, verify [0-9.]+ s\)'
	refute_output --partial mismatch
	# The scratch machine is gone, and it never was a machine.
	[ -z "$(ls -A "$MROOT")" ]
	[ "$(ls "$MACHINES")" = web1.conf ]
	run -0 backup drill -q web1
	assert_output ""
}

@test "drill --json and --junit: the documented fields, valid XML" {
	weekly_day_not_today web1
	make_torture_tree "$T/src"
	backup run -q web1
	id=$(git --git-dir="$REPO" rev-parse refs/backups/web1/daily)
	run -0 backup drill web1 --json --junit "$T/drill.xml"
	echo "$output" | python3 -c '
import json, sys
d = json.load(sys.stdin)
want = sys.argv[1]
assert d["ok"] is True and d["machine"] == "web1" and d["backup"] == want, d
assert d["slots"] == ["daily"] and d["disk_format"] == "dir" and d["kept"] is False
assert d["files"] == 19 and d["bytes"] > 55000000 and d["dirs"] == 6 and d["others"] == 5
assert d["mismatch_count"] == 0 and d["mismatches"] == [] and d["damaged"] == 0
for k in ("restore_seconds", "verify_seconds", "total_seconds"):
    assert isinstance(d[k], float) and d[k] >= 0, k
assert d["scratch"].startswith(sys.argv[2] + "/.drill-web1-")
[disk] = d["disks"]
assert disk["label"] == "root" and disk["ok"] is True and disk["restore_ok"] is True
assert disk["path"] == d["scratch"] + "/disks/root" and disk["files"] == 19
' "$id" "$MROOT"
	run -0 junit_summary "$T/drill.xml"
	assert_line --index 0 "backup drill web1	3	0"
	assert_line --index 1 "restore disk root	"
	assert_line --index 2 "verify disk root	"
	assert_line --index 3 "machine file	"
	grep -q "<property name=\"backup\" value=\"$id\"/>" "$T/drill.xml"
}

@test "drill --keep keeps the scratch machine, exact, and says where it is" {
	weekly_day_not_today web1
	make_torture_tree "$T/src"
	backup run -q web1
	run -0 backup drill web1 --keep
	assert_output --regexp "scratch machine kept in '$MROOT/\.drill-web1-[0-9]+'"
	scratch=$(ls -d "$MROOT"/.drill-web1-*)
	run tree_diff "$T/src" "$scratch/disks/root"
	assert_output ""
	# Its machine file, beside its disks: never in the machines folder.
	[ "$(git config -f "$scratch/web1.conf" disk.root.source)" = "$scratch/disks/root" ]
	[ "$(ls "$MACHINES")" = web1.conf ]
	# A name no machine can have: machine names never start with '.'.
	run -2 backup drill "$(basename "$scratch")"
}

@test "a drill of a backup with a damaged pack fails and names the damaged file" {
	head -c 3000000 /dev/urandom >"$T/src/data"
	echo fine >"$T/src/fine"
	backup run -q web1
	damage_largest_pack
	run -1 backup drill web1 --junit "$T/drill.xml"
	assert_output --partial "disk root: 2 files"
	assert_line --regexp "^mismatch: root:/data: damaged: .*in the repository is damaged"
	assert_output --partial "drill FAILED: 1 mismatch (1 where the backup is damaged)"
	refute_output --partial "root:/fine"
	[ -z "$(ls -A "$MROOT")" ]
	run -0 junit_summary "$T/drill.xml"
	assert_line --index 0 "backup drill web1	3	1"
	assert_line --index 2 --regexp "^verify disk root	root:/data: damaged: "
	run -1 --separate-stderr backup drill web1 --json
	[ "$(echo "$output" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["ok"], d["damaged"], [(m["disk"], m["path"], m["what"]) for m in d["mismatches"]])')" = "False 1 [('root', '/data', 'damaged')]" ]
}

@test "a drill that cannot restore owners reports every uid and gid that differs" {
	# A drill run by a user who may not chown: the restored files are its
	# own, not the backup's owners, and the drill must say so.
	shared=$(mktemp -d /tmp/drill-bats.XXXXXX)
	chmod 755 "$shared"
	mkdir -p "$shared/src" "$shared/machines"
	echo x >"$shared/src/mine"
	echo y >"$shared/src/owned"
	# Names XML must escape, or cannot carry at all.
	echo z >"$shared/src/a<b&c\"d'e"
	echo z >"$shared/src/$(printf 'latin1-\xe9\x01')"
	chown 12345:54321 "$shared/src/owned"
	printf '[repository]\n\tpath = %s/repo\n[machines]\n\tdir = %s/machines\n\troot = %s/mroot\n' \
		"$shared" "$shared" "$shared" >"$shared/backup.conf"
	export BACKUP_CONFIG=$shared/backup.conf MACHINES=$shared/machines
	define_machine web1 "$shared/src"
	backup init -q
	backup enable -q web1
	backup run -q web1
	chown -R 65534:65534 "$shared"
	run -1 env HOME="$shared" setpriv --reuid=65534 --regid=65534 --clear-groups $EXEC_PREFIX "$BK" drill web1 \
		--junit "$shared/drill.xml"
	junit=$(junit_summary "$shared/drill.xml")
	rm -rf "$shared"
	assert_line "mismatch: root:/owned: uid: the backup has 12345, the folder 65534"
	assert_line "mismatch: root:/owned: gid: the backup has 54321, the folder 65534"
	assert_line "mismatch: root:/mine: uid: the backup has 0, the folder 65534"
	assert_line "mismatch: root:/: uid: the backup has 0, the folder 65534"
	# Text keeps a name's bytes, but shows control bytes as \xNN.
	assert_line $'mismatch: root:/latin1-\xe9\\x01: uid: the backup has 0, the folder 65534'
	assert_output --partial "drill FAILED"
	# The JUnit file is valid XML that carries every name.
	run -0 echo "$junit"
	assert_line --index 0 "backup drill web1	3	1"
	assert_line --index 2 --partial 'root:/a<b&c"d'"'"'e: uid: the backup has 0, the folder 65534'
	assert_line --index 2 --partial 'root:/latin1-\xe9\x01: gid: the backup has 0, the folder 65534'
}

@test "drill takes SRC as MACHINE:SLOT or an id, and refuses another machine's backup" {
	echo one >"$T/src/v"
	backup run -q web1
	id=$(git --git-dir="$REPO" rev-parse refs/backups/web1/daily)
	run -0 backup drill web1 web1:daily --json
	[ "$(echo "$output" | json_field backup)" = "$id" ]
	run -0 backup drill web1 "${id:0:10}" -q
	define_machine web2 "$T/src"
	backup enable -q web2
	backup run -q web2
	run -1 backup drill web1 web2
	assert_output --partial "is of machine 'web2', not 'web1'"
	run -1 backup drill web3
	assert_output --partial "no backup 'web3'"
}

@test "drill usage errors are exit 2" {
	run -2 backup drill
	assert_output --partial "usage: backup drill MACHINE [SRC]"
	run -2 backup drill web1 web1 extra
	run -2 backup drill web1 --disk-format xfs
	assert_output --partial "--disk-format is 'dir' or 'ext4', not 'xfs'"
	run -2 backup drill 'bad/name'
}

# Skips the test when this host cannot loop-mount an image (not root, no
# loop devices): an ext4 drill verifies its images through a mount.
skip_without_loop_mount() {
	case $output in
	*"cannot mount the image"*) skip "no loop mounts here" ;;
	esac
}

@test "drill --disk-format ext4 verifies the images through the kernel's ext4" {
	make_torture_tree "$T/src"
	backup run -q web1
	run backup drill web1 --disk-format ext4 --json
	skip_without_loop_mount
	assert_success
	echo "$output" | python3 -c '
import json, sys
d = json.load(sys.stdin)
assert d["ok"] is True and d["disk_format"] == "ext4" and d["mtime_precision"] == "second", d
assert d["files"] == 19 and d["mismatch_count"] == 0
[disk] = d["disks"]
assert disk["path"] == d["scratch"] + "/disks/root.img", disk
'
	[ -z "$(ls -A "$MROOT")" ]
	! grep -qF "$MROOT" /proc/mounts
	run -0 backup drill web1 --disk-format ext4 --keep
	assert_output --partial "mtimes are compared to the second"
	scratch=$(ls -d "$MROOT"/.drill-web1-*)
	# Unmounted, and an image e2fsck accepts, of the recorded size.
	! grep -qF "$MROOT" /proc/mounts
	e2fsck -fn "$scratch/disks/root.img"
	[ "$(stat -c %s "$scratch/disks/root.img")" = 1073741824 ]
	[ "$(git config -f "$scratch/web1.conf" disk.root.source)" = "$scratch/disks/root.img" ]
}

@test "drill --disk-format ext4 of a damaged backup names the damaged file" {
	head -c 3000000 /dev/urandom >"$T/src/data"
	echo fine >"$T/src/fine"
	backup run -q web1
	damage_largest_pack
	run -1 backup drill web1 --disk-format ext4 --junit "$T/drill.xml"
	assert_line "mismatch: root:/: restore: 1 file could not be restored, so no image was made"
	assert_line --regexp "^mismatch: root:/data: damaged: .*in the repository is damaged"
	[ -z "$(ls -A "$MROOT")" ]
	run -0 junit_summary "$T/drill.xml"
	assert_line --index 0 "backup drill web1	3	2"
	assert_line --index 1 --partial "restore disk root	root:/: restore: "
	assert_line --index 2 --partial "verify disk root	root:/data: damaged: "
}

@test "an interrupted drill stops, removes its scratch machine and exits 130" {
	for i in $(seq 1 100); do head -c 1048576 /dev/urandom >"$T/src/f$i"; done
	backup run -q web1
	for sig in TERM INT; do
		# Not through the function: $! must be the process itself.
		$EXEC_PREFIX "$BK" drill web1 >"$T/out" 2>&1 &
		pid=$!
		for i in $(seq 1 1000); do
			compgen -G "$MROOT/.drill-web1-*" >/dev/null && break
			sleep 0.01
		done
		kill -s "$sig" "$pid"
		rc=0
		wait "$pid" || rc=$?
		[ "$rc" = 130 ]
		run cat "$T/out"
		assert_output --partial "interrupted: the drill of 'web1' did not finish"
		refute_output --partial "drill passed"
		[ -z "$(ls -A "$MROOT")" ]
	done
}

@test "the JUnit report follows the user's umask, not the repository's 077" {
	echo x >"$T/src/a"
	backup run -q web1
	(umask 022 && "$BK" drill -q web1 --junit "$T/report.xml")
	[ "$(stat -c %a "$T/report.xml")" = 644 ]
}

@test "a drill removes the scratch machine a killed drill left behind" {
	echo x >"$T/src/a"
	backup run -q web1
	mkdir -p "$MROOT/.drill-web1-999999999/disks/root" "$MROOT/.drill-web1-$$/disks"
	run backup drill web1
	assert_success
	assert_output --partial "left by a drill that was killed"
	[ ! -e "$MROOT/.drill-web1-999999999" ]
	# One whose process still runs (this shell) is not touched.
	[ -d "$MROOT/.drill-web1-$$" ]
}
