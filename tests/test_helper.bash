bats_require_minimum_version 1.5.0
# Loaded by every tests/*.bats: a private configuration, machines folder and
# repository per test, and `backup` run through $EXEC_PREFIX so the whole
# suite can run under valgrind or a sanitizer build.
export LC_ALL=C TZ=UTC
# faketime and the fault injector are LD_PRELOADed: let a sanitizer build run under them.
export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0
export HOME=$BATS_TEST_TMPDIR
BK=${BK:-$BATS_TEST_DIRNAME/../backup}
BK=$(cd "$(dirname "$BK")" && pwd)/$(basename "$BK")

# python3 resolved once per run, to the interpreter it names: a version
# manager's shim in PATH (pyenv's runs several shell scripts, about half a
# second of CPU, on every call) would otherwise be paid by each of the
# hundreds of calls the tests make. The same interpreter either way.
if [ ! -x "$BATS_RUN_TMPDIR/bin/python3" ]; then
	mkdir -p "$BATS_RUN_TMPDIR/bin"
	ln -sfn "$(python3 -c 'import sys; print(sys.executable)')" "$BATS_RUN_TMPDIR/bin/python3.$$"
	mv -fT "$BATS_RUN_TMPDIR/bin/python3.$$" "$BATS_RUN_TMPDIR/bin/python3"
fi
case :$PATH: in *":$BATS_RUN_TMPDIR/bin:"*) ;; *) export PATH=$BATS_RUN_TMPDIR/bin:$PATH ;; esac

bats_load_library bats-support
bats_load_library bats-assert

backup() { $EXEC_PREFIX "$BK" "$@"; }

T=$BATS_TEST_TMPDIR
export BACKUP_CONFIG=$T/backup.conf
REPO=$T/repo
MACHINES=$T/machines
MROOT=$T/mroot
unset BACKUP_REPO

setup_config() {
	mkdir -p "$MACHINES"
	cat >"$BACKUP_CONFIG" <<CONF
[repository]
	path = $REPO
[machines]
	dir = $MACHINES
	root = $MROOT
CONF
}

# define_machine NAME SOURCE [more machine-file lines]
define_machine() {
	local name=$1 src=$2
	shift 2
	{
		printf '[machine]\n\tplan = 10G\n[disk "root"]\n\tsource = %s\n\tsize = 1G\n\tfilesystem = ext4\n' "$src"
		printf '[profile "default"]\n\troot = sda\n\tsda = root\n'
		for l in "$@"; do printf '%s\n' "$l"; done
	} >"$MACHINES/$name.conf"
}

# A repository with machine NAME (default web1) enrolled, backing up $T/src.
setup_repo() {
	setup_config
	mkdir -p "$T/src"
	define_machine "${1:-web1}" "$T/src"
	backup init -q
	backup enable -q "${1:-web1}"
}

# new_host [DIR]: a new host (default $T/new): its own config, machines
# folder and repository path DIR/repo, nothing of the old one's.
new_host() {
	local d=${1:-$T/new}
	export BACKUP_CONFIG=$d/backup.conf
	mkdir -p "$d/machines"
	cat >"$BACKUP_CONFIG" <<CONF
[repository]
	path = $d/repo
[machines]
	dir = $d/machines
	root = $d/mroot
CONF
}

# kill_after DELAY ARGS...: runs backup ARGS and kills it with SIGKILL after
# DELAY seconds, like a power cut (it may have finished by then).
kill_after() {
	local delay=$1 pid
	shift
	"$BK" "$@" &
	pid=$!
	sleep "$delay"
	kill -9 "$pid" 2>/dev/null || true
	wait "$pid" || true
}

# fault_steps MODE TOTAL: the durable steps (of 1..TOTAL, counted by
# tests/faultshim.so) at which a fault test of MODE (kill or enospc)
# injects its fault, in order. `make check-crash` sets FAULT_STRIDE=1:
# every step, in both modes. The suite samples: about FAULT_SAMPLES
# (default 12) points spread evenly over the command, of which a kill takes
# every other one and a full disk the ones between, so that between them
# the two modes still fall at every sampled point; the last step (the one
# that makes the result visible) is taken in both.
fault_steps() {
	local mode=$1 total=$2 samples=${FAULT_SAMPLES:-12} stride i=0 n
	{
		if [ -n "${FAULT_STRIDE:-}" ]; then
			seq 1 "$FAULT_STRIDE" "$total"
		else
			stride=$(((total + samples - 1) / samples))
			for n in $(seq 1 "$stride" "$total"); do
				case $mode:$((i % 2)) in kill:0 | enospc:1) echo "$n" ;; esac
				i=$((i + 1))
			done
		fi
		echo "$total"
	} | sort -nu
}

# Flips a bit in the middle of the largest pack: the data of the biggest file.
damage_largest_pack() {
	flip_byte "$(ls -S "$REPO"/objects/pack/*.pack | head -1)" middle
}

# flipped_pack_byte_is_named: backs up a 3 MB file of machine web1 (source
# $T/src), flips a byte of the largest pack, and asserts that
# check --read-data names the blob, its file and its backup, and that a
# restore of the file refuses and writes nothing.
flipped_pack_byte_is_named() {
	head -c 3000000 /dev/urandom >"$T/src/data"
	backup run -q web1
	damage_largest_pack
	run -1 backup check --read-data
	assert_output --partial "damaged: blob"
	assert_output --partial "root:/data"
	assert_output --partial "in backup $(git --git-dir="$REPO" rev-parse refs/backups/web1/daily)"
	run -1 backup restore web1 --path /data --to "$T/out"
	assert_output --partial "cannot restore 'data': its data in the repository is damaged"
	[ ! -e "$T/out/data" ]
}

# flip_byte FILE POS|middle: flips one bit of FILE in place.
flip_byte() {
	chmod u+w "$1"
	python3 -c '
import sys
p = sys.argv[1]
b = bytearray(open(p, "rb").read())
i = len(b) // 2 if sys.argv[2] == "middle" else int(sys.argv[2])
b[i] ^= 0x40
open(p, "wb").write(b)' "$1" "$2"
}

# Prints what differs between two trees (content, metadata, ns times); nothing when equal.
tree_diff() {
	rsync -aHAXn --checksum --modify-window=-1 -i --delete "$1/" "$2/"
}

# Field of the first object of a JSON document: json_field KEY < doc
json_field() {
	python3 -c 'import json,sys
d=json.load(sys.stdin)
d=d[0] if isinstance(d,list) else d
print(d[sys.argv[1]])' "$1"
}

# Fills $1 with every kind of file and metadata a backup must keep.
make_torture_tree() {
	local d=$1
	mkdir -p "$d/dir/sub" "$d/.git/objects" "$d/empty"
	echo "hello" >"$d/file"
	: >"$d/emptyfile"
	head -c 3000000 /dev/urandom >"$d/random3m"
	printf 'x%.0s' $(seq 1 1000) >"$d/dir/sub/text"
	ln "$d/file" "$d/dir/hardlink"
	ln -s file "$d/symlink"
	ln -s /nonexistent/target "$d/dangling"
	mkfifo "$d/fifo"
	mknod "$d/chardev" c 1 3
	mknod "$d/blockdev" b 7 200
	truncate -s 50M "$d/sparse"
	printf 'data in the middle' | dd of="$d/sparse" bs=1 seek=20000000 conv=notrunc status=none
	echo "[core]" >"$d/.git/config"
	echo "[submodule]" >"$d/.gitmodules"
	echo x >"$d/git~1"
	echo x >"$d/a\\.git"
	echo x >"$d/x\\git~1"
	echo x >"$d/%41percent"
	echo x >"$d/.hidden"
	echo x >"$d/$(printf 'new\nline')"
	echo x >"$d/$(printf 'latin1-\xe9')"
	echo x >"$d/$(printf 'utf8-\xc3\xa9')"
	echo x >"$d/with space"
	echo x >"$d/setuid"
	chmod 4755 "$d/setuid"
	chmod 1777 "$d/dir"
	echo x >"$d/owned"
	chown 12345:54321 "$d/owned"
	setfattr -n user.comment -v "a value" "$d/file"
	setfattr -n user.bin -v 0x00ff00 "$d/dir/sub/text"
	setfacl -m u:12345:rwx "$d/dir/sub/text"
	setfacl -d -m g:54321:rx "$d/dir/sub"
	touch -h -d '2001-02-03 04:05:06.123456789' "$d/symlink"
	touch -d '1999-12-31 23:59:59.987654321' "$d/file"
	touch -d '2020-01-01 00:00:00.5' "$d/dir/sub"
}

# weekly_day_not_today [MACHINE]: moves the machine's weekly day to the
# day after tomorrow, for tests that expect a backup in `daily` alone (a
# backup taken on the weekly day, Sunday by default, also holds `weekly`).
# Not tomorrow: a test that runs across midnight would then back up on it.
weekly_day_not_today() {
	backup schedule -q "${1:-web1}" --day "$(date -d '2 days' +%a | tr 'A-Z' 'a-z')"
}

# state_config ARGS...: `git config` on the repository's service state,
# which is the blob `state` of the commit refs/backup/state names. Reads
# with git alone; a change becomes a new state commit, as backup makes.
state_config() {
	local f=$T/state.edit tree blob commit
	git --git-dir="$REPO" cat-file blob refs/backup/state:state >"$f"
	git config -f "$f" "$@" || { rm -f "$f"; return 1; }
	blob=$(git --git-dir="$REPO" hash-object -w "$f")
	rm -f "$f"
	tree=$(git --git-dir="$REPO" ls-tree refs/backup/state | grep -v '	state$' |
		{ cat; printf '100644 blob %s\tstate\n' "$blob"; } | git --git-dir="$REPO" mktree)
	commit=$(GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@t GIT_COMMITTER_NAME=t GIT_COMMITTER_EMAIL=t@t \
		git --git-dir="$REPO" commit-tree "$tree" </dev/null)
	git --git-dir="$REPO" update-ref refs/backup/state "$commit"
}

# faketime [-f] TIME COMMAND...: COMMAND under a controlled clock through
# libfaketime itself. Debian's faketime wrapper keeps a semaphore named by
# its pid in /dev/shm and fails ("sem_open: File exists") when a wrapper
# killed earlier left one under a pid that comes round again. As with the
# wrapper, TIME is read by date(1) and the clock runs on from it; with -f
# it is given to libfaketime as it is ("2026-11-10 12:00:00" stands still,
# "+1h" is an offset).
faketime() {
	local t lib
	if [ "$1" = -f ]; then
		t=$2
		shift 2
	else
		t="@$(date -d "$1" '+%Y-%m-%d %H:%M:%S')" || return 1
		shift
	fi
	lib=$(ls /usr/lib/*/faketime/libfaketime.so.1 | head -1)
	LD_PRELOAD=${LD_PRELOAD:+$LD_PRELOAD:}$lib FAKETIME=$t "$@"
}
