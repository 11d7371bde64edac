#!/usr/bin/env bats
# backup boot-config: list the profiles, choose the one that boots, print one
# as an fstab, a systemd-nspawn command line or JSON.

load test_helper

CONF=$MACHINES/web1.conf

# web1: a root folder, a data folder mounted at /srv, a www folder at the
# default /mnt/www, and two profiles; comments and odd spacing that an
# edit must keep.
setup() {
	setup_config
	mkdir -p "$T/root" "$T/data" "$T/www"
	cat >"$CONF" <<EOF
# web1, by hand
[machine]
	plan = 10G   ; the plan
[disk "root"]
	source = $T/root
	size = 1G
[disk "data"]
	source = $T/data
	size = 2G
	mount = /srv
[disk "www"]
	source = $T/www
	size = 512M
[profile "default"]
	root = sda
	sda = root
	sdb = data
[profile "rescue"]
	# boots from the data disk
	root = sdb
	sda = root
	sdb = data
	sdc = www
EOF
}

@test "--list shows each profile, its devices and root, and which boots" {
	run backup boot-config web1
	assert_success
	assert_line --index 0 --regexp '^BOOTS +PROFILE +ROOT +DEVICES$'
	assert_line --index 1 --regexp '^\* +default +sda +sda=root sdb=data$'
	assert_line --index 2 --regexp '^ +rescue +sdb +sda=root sdb=data sdc=www$'
	run backup boot-config web1 --list
	assert_success
	assert_line --index 1 --regexp '^\* +default'
	git config -f "$CONF" machine.boot rescue
	run backup boot-config web1
	assert_line --index 1 --regexp '^ +default'
	assert_line --index 2 --regexp '^\* +rescue'
}

@test "--list --json is an array of {name, root, devices, boots}" {
	run backup boot-config web1 --json
	assert_success
	run python3 -c 'import json,sys
d=json.loads(sys.argv[1])
assert d == [
 {"name":"default","root":"sda","devices":{"sda":"root","sdb":"data"},"boots":True},
 {"name":"rescue","root":"sdb","devices":{"sda":"root","sdb":"data","sdc":"www"},"boots":False}], d' "$output"
	assert_success
}

@test "--boot records machine.boot and keeps the rest of the file as it was" {
	cp "$CONF" "$T/before"
	chmod 640 "$CONF"
	run backup boot-config web1 --boot rescue
	assert_success
	assert_output "machine 'web1' boots profile 'rescue' (root disk 'data')"
	[ "$(git config -f "$CONF" machine.boot)" = rescue ]
	# One line added, nothing else touched: comments, spacing, order, mode.
	run diff "$T/before" "$CONF"
	[ "$status" -eq 1 ]
	[ "$(echo "$output" | grep -c '^[<>]')" = 1 ]
	assert_line --regexp '^>[[:space:]]+boot = rescue$'
	[ "$(stat -c %a "$CONF")" = 640 ]
	run backup boot-config web1 --json
	[ "$(echo "$output" | python3 -c 'import json,sys; print([p["name"] for p in json.load(sys.stdin) if p["boots"]])')" = "['rescue']" ]
	# Back to default: the value is replaced, not repeated.
	backup boot-config -q web1 --boot default
	[ "$(git config -f "$CONF" --get-all machine.boot)" = default ]
	grep -q '^# web1, by hand$' "$CONF"
	grep -q 'plan = 10G   ; the plan' "$CONF"
	grep -q '# boots from the data disk' "$CONF"
}

@test "bootCommand runs with its placeholders and environment" {
	mkdir -p "$T/root disk"
	git config -f "$CONF" disk.root.source "$T/root disk"
	# shellcheck disable=SC2016 # expanded by the bootCommand's shell
	git config -f "$CONF" machine.bootCommand \
		'printf "[%%s]\n" %r %p %m 100%% "$BACKUP_MACHINE" "$BACKUP_PROFILE" "$BACKUP_ROOT" >"$HOME/ran"'
	run backup boot-config web1 --boot default
	assert_success
	assert_line "bootCommand exited 0"
	run cat "$T/ran"
	assert_output "[$T/root disk]
[default]
[web1]
[100%]
[web1]
[default]
[$T/root disk]"
	# The rescue profile's root is the data disk.
	run backup boot-config web1 --boot rescue --json
	assert_success
	[ "$(echo "$output" | json_field boot_command_status)" = 0 ]
	[ "$(sed -n 1p "$T/ran")" = "[$T/data]" ]
}

@test "a failing bootCommand is reported with its status; the profile stays recorded" {
	git config -f "$CONF" machine.bootCommand 'echo starting %m; exit 3'
	run -1 backup boot-config web1 --boot rescue
	assert_line "starting web1"
	assert_line --partial "the bootCommand of 'web1' failed (exit 3)"
	[ "$(git config -f "$CONF" machine.boot)" = rescue ]
	# Under --json its output goes to stderr: stdout is the JSON document.
	run -1 --separate-stderr backup boot-config web1 --boot default --json
	[ "$(echo "$output" | json_field boot_command_status)" = 3 ]
	[ "$(echo "$output" | json_field profile)" = default ]
	[ "$(echo "$output" | json_field root_disk)" = root ]
	[[ $stderr == *"starting web1"* ]]
}

@test "an unknown profile, a missing disk or a bad bootCommand leave the file byte-identical" {
	git config -f "$CONF" machine.bootCommand 'touch "$HOME/ran"'
	cp "$CONF" "$T/before"
	run -1 backup boot-config web1 --boot nosuch
	assert_output "backup: machine 'web1' has no profile 'nosuch'; see 'backup boot-config web1 --list'"
	cmp "$T/before" "$CONF"

	rmdir "$T/www"
	run -1 backup boot-config web1 --boot rescue
	assert_output --partial "disk 'www' of profile 'rescue' is missing: no folder '$T/www' on this host"
	assert_output --partial "restore the disk or fix disk.www.source in '$CONF'"
	[ "${#lines[@]}" = 1 ]
	cmp "$T/before" "$CONF"

	# An image source must be an image file, a folder source a folder.
	mkdir "$T/www" "$T/data.img"
	git config -f "$CONF" disk.data.source "$T/data.img"
	cp "$CONF" "$T/before"
	run -1 backup boot-config web1 --boot default
	assert_output --partial "'$T/data.img' is not an image file"
	cmp "$T/before" "$CONF"
	git config -f "$CONF" disk.data.source "$T/data"

	git config -f "$CONF" machine.bootCommand 'echo %x'
	cp "$CONF" "$T/before"
	run -1 backup boot-config web1 --boot rescue
	assert_output --partial "unknown placeholder '%x'"
	cmp "$T/before" "$CONF"

	# A profile that assigns an undefined disk: the file is refused whole.
	git config -f "$CONF" profile.rescue.sdd nodisk
	cp "$CONF" "$T/before"
	run -1 backup boot-config web1 --boot rescue
	assert_output --partial "assigns sdd to disk 'nodisk', which is not defined"
	cmp "$T/before" "$CONF"
	[ ! -e "$T/ran" ]
}

@test "--print fstab: root at /, the others at their mount, parents first; findmnt --verify finds no error" {
	# Mount points that exist on this host too, since findmnt checks them
	# here; share (sdb) nests in usr (sdc), so it must come after it.
	truncate -s 8M "$T/img.img"
	mkfs.ext4 -q -F "$T/img.img"
	mkdir -p "$T/usr" "$T/share"
	cat >>"$CONF" <<EOF
[disk "usr"]
	source = $T/usr
	mount = /usr/
[disk "share"]
	source = $T/share
	mount = /usr/share
[disk "img"]
	source = $T/img.img
	filesystem = ext4
	mount = /var
[profile "host"]
	root = sda
	sda = root
	sdb = share
	sdc = usr
	sdd = img
EOF
	backup boot-config web1 --print host --format fstab >"$T/fstab"
	run grep -v '^#' "$T/fstab"
	assert_output "$T/root / none bind 0 0
$T/usr /usr none bind 0 0
$T/img.img /var ext4 loop 0 2
$T/share /usr/share none bind 0 0"
	run findmnt --verify --tab-file "$T/fstab"
	assert_success
	assert_line --partial "0 parse errors, 0 errors"
	refute_line --partial "[E]"
	# fstab is the default format.
	run backup boot-config web1 --print host
	assert_output "$(cat "$T/fstab")"
}

@test "--print fstab: an image root is a loop mount with pass 1; default mount points" {
	truncate -s 8M "$T/root.img"
	mkfs.ext4 -q -F "$T/root.img"
	mkdir -p "$T/a b"
	git config -f "$CONF" disk.root.source "$T/root.img"
	git config -f "$CONF" disk.root.filesystem ext4
	git config -f "$CONF" disk.www.source "$T/a b"
	run backup boot-config web1 --print rescue
	assert_success
	assert_line --index 1 "$T/data / none bind 0 0"
	assert_line --index 2 "$T/root.img /mnt/root ext4 loop 0 2"
	assert_line --index 3 "${T}/a\\040b /mnt/www none bind 0 0"
	git config -f "$CONF" profile.rescue.root sda
	backup boot-config web1 --print rescue >"$T/fstab"
	run grep -v '^#' "$T/fstab"
	assert_line --index 0 "$T/root.img / ext4 loop 0 1"
	assert_line --index 1 "$T/data /srv none bind 0 0"
	assert_line --index 2 "${T}/a\\040b /mnt/www none bind 0 0"
	# /mnt/www and /srv/ exist only on the booted machine: findmnt, which
	# checks mount points on this host, may miss them, but finds nothing else.
	run findmnt --verify --tab-file "$T/fstab"
	assert_line --partial "0 parse errors"
	run grep -F '[E]' <<<"$output"
	refute_line --regexp '^ *\[E\] ([^u]|u[^n]|un[^r])'
	run grep -cvF 'unreachable on boot required target' <<<"$output"
	assert_output 0
}

@test "two disks at one mount point are refused" {
	# In rescue, the root disk mounts at its default, /mnt/root.
	git config -f "$CONF" disk.www.mount //mnt/root/
	cp "$CONF" "$T/before"
	run -1 backup boot-config web1 --print rescue
	assert_output --partial "disks 'root' and 'www' of profile 'rescue' both mount at '/mnt/root'; set disk.www.mount"
	run -1 backup boot-config web1 --boot rescue
	assert_output --partial "both mount at '/mnt/root'"
	cmp "$T/before" "$CONF"
	git config -f "$CONF" disk.www.mount /srv/../x
	run -1 backup boot-config web1 --print rescue
	assert_output --partial "has a '.' or '..' component"
}

@test "--print nspawn boots the root disk and binds the others, quoted for the shell" {
	run backup boot-config web1 --print default --format nspawn
	assert_success
	assert_output "systemd-nspawn --boot --machine=web1 --directory=$T/root --bind=$T/data:/srv"
	# Paths with blanks are quoted, colons in --bind escaped.
	mkdir -p "$T/w w:1"
	git config -f "$CONF" disk.www.source "$T/w w:1"
	run backup boot-config web1 --print rescue --format nspawn
	assert_success
	assert_output "systemd-nspawn --boot --machine=web1 --directory=$T/data --bind=$T/root:/mnt/root --bind='$T/w w\\:1:/mnt/www'"
	# The line is one a shell reads back into the same words.
	eval "set -- $output"
	[ "$6" = "--bind=$T/w w\\:1:/mnt/www" ]
}

@test "--print nspawn: an image root is --image, another image is loop-mounted first" {
	truncate -s 8M "$T/root.img" "$T/data.img"
	git config -f "$CONF" disk.root.source "$T/root.img"
	git config -f "$CONF" disk.data.source "$T/data.img"
	run backup boot-config web1 --print default --format nspawn
	assert_success
	assert_line --index 0 --partial "disk 'data' is an image file"
	assert_line --index 1 "mkdir -p /run/backup/web1/data && mount -o loop -t ext4 $T/data.img /run/backup/web1/data"
	assert_line --index 2 "systemd-nspawn --boot --machine=web1 --image=$T/root.img --bind=/run/backup/web1/data:/srv"
	[ "${#lines[@]}" = 3 ]
}

@test "--print json: the profile with its resolved disks" {
	run backup boot-config web1 --print rescue --format json
	assert_success
	run python3 -c 'import json,sys
d=json.loads(sys.argv[1]); T=sys.argv[2]
assert d["machine"] == "web1" and d["profile"] == "rescue" and d["root"] == "sdb", d
assert d["boots"] is False and d["devices"] == {"sda":"root","sdb":"data","sdc":"www"}, d
assert d["disks"] == [
 {"device":"sda","label":"root","source":T+"/root","type":"folder","mount":"/mnt/root","size":1<<30,"filesystem":"ext4"},
 {"device":"sdb","label":"data","source":T+"/data","type":"folder","mount":"/","size":2<<30,"filesystem":"ext4"},
 {"device":"sdc","label":"www","source":T+"/www","type":"folder","mount":"/mnt/www","size":512<<20,"filesystem":"ext4"}], d' "$output" "$T"
	assert_success
	# --json with --print is --format json.
	run backup boot-config web1 --print rescue --json
	[ "$(echo "$output" | json_field profile)" = rescue ]
}

@test "usage errors exit 2; an unknown machine or profile exits 1" {
	run -2 backup boot-config
	assert_output --partial "boot-config needs one machine"
	run -2 backup boot-config web1 web2
	run -2 backup boot-config web1 --list --boot default
	assert_output --partial "exclude each other"
	run -2 backup boot-config web1 --boot default --print default
	run -2 backup boot-config web1 --print default --format xml
	assert_output --partial "--format takes fstab, nspawn or json, not 'xml'"
	run -2 backup boot-config web1 --format json
	run -2 backup boot-config web1 --print default --json --format nspawn
	run -2 backup boot-config web1 --boot
	run -1 backup boot-config nosuch
	assert_output --partial "unknown machine 'nosuch'"
	run -1 backup boot-config web1 --print nosuch
	assert_output --partial "machine 'web1' has no profile 'nosuch'"
	run -1 backup boot-config 'bad/name'
}

@test "the completions offer profiles for --boot and --print and the formats" {
	run bash -c "
		backup() { '$BK' \"\$@\"; }
		source '$BATS_TEST_DIRNAME/../completions/backup.bash'
		COMP_WORDS=(backup boot-config web1 --boot ''); COMP_CWORD=4; _backup; echo \"\${COMPREPLY[*]}\"
		COMP_WORDS=(backup boot-config web1 --print r); COMP_CWORD=4; _backup; echo \"\${COMPREPLY[*]}\"
		COMP_WORDS=(backup boot-config web1 --format ''); COMP_CWORD=4; _backup; echo \"\${COMPREPLY[*]}\"
		COMP_WORDS=(backup boot-config ''); COMP_CWORD=2; _backup; echo \"\${COMPREPLY[*]}\""
	assert_success
	assert_line --index 0 "default rescue"
	assert_line --index 1 "rescue"
	assert_line --index 2 "fstab nspawn json"
	assert_line --index 3 "web1"
}
