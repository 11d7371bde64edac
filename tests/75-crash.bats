#!/usr/bin/env bats
# A crash or a full disk at every durable step (write, fsync, rename, unlink
# in the repository) of run (plain and encrypted), rotate and cancel, through
# tests/faultshim.so.
# The suite samples the steps (fault_steps in test_helper.bash: about 12
# points per command, shared by the crash and the full-disk test);
# `make check-crash` takes every one in both.

load test_helper

SHIM=$BATS_TEST_DIRNAME/faultshim.so
export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0

setup() {
	[ -f "$SHIM" ] || skip "tests/faultshim.so is not built (make check builds it)"
	setup_repo web1
	mkdir -p "$T/src/d"
	head -c 600000 /dev/urandom >"$T/src/d/keep"
	echo one >"$T/src/one"
	backup run -q web1
	mkdir -p "$T/kept"
	cp -a "$T/src/." "$T/kept/"
	backup run -q --snapshot --label before web1
	# What the command under test will add or delete.
	head -c 900000 /dev/urandom >"$T/src/new"
	rm "$T/src/one"
	cp -a "$REPO" "$T/repo.orig"
}

count_steps() {
	rm -f "$T/count"
	FAULT_DIR=${FAULT_DIR:-$REPO} FAULT_COUNT=$T/count LD_PRELOAD=$SHIM "$BK" "$@" >/dev/null 2>&1 || true
	cat "$T/count"
}

# After a fault: the repository checks clean with every byte read, the
# backups kept before are intact, and the next command succeeds.
assert_recovers() {
	local what=$1
	shift
	run backup check --read-data
	[ "$status" = 0 ] || fail "$what: check failed: $output"
	git --git-dir="$REPO" fsck --full --no-dangling >/dev/null 2>&1 || fail "$what: git fsck failed"
	if git --git-dir="$REPO" rev-parse -q --verify refs/backups/web1/snapshot >/dev/null; then
		rm -rf "$T/out"
		backup restore web1:snapshot --path / --to "$T/out" -q || fail "$what: restore failed"
		run tree_diff "$T/kept" "$T/out"
		[ -z "$output" ] || fail "$what: the snapshot does not restore exactly: $output"
	fi
	if [ -n "${ENCRYPTED:-}" ]; then
		run git --git-dir="$REPO" cat-file blob refs/backup/state:format
		[ "$output" = "backup repository format 3" ] || fail "$what: the repository is no longer encrypted: $output"
	fi
	run backup "$@"
	[ "$status" = 0 ] || fail "$what: the next '$*' failed: $output"
	run backup check --read-data
	[ "$status" = 0 ] || fail "$what: check after the next '$*' failed: $output"
}

enumerate() {
	local mode=$1
	shift
	local total steps n
	total=$(count_steps "$@")
	[ "$total" -gt 3 ] || fail "only $total steps counted for '$*'"
	steps=$(fault_steps "$mode" "$total")
	for n in $steps; do
		rm -rf "$REPO" && cp -a "$T/repo.orig" "$REPO"
		code=0
		FAULT_DIR=$REPO FAULT_AT=$n FAULT_MODE=$mode LD_PRELOAD=$SHIM "$BK" -q "$@" >"$T/fault.out" 2>&1 || code=$?
		if [ "$mode" = enospc ] && [ "$code" != 0 ]; then
			[ "$code" = 1 ] || fail "step $n/$total of '$*': exit $code on a full disk"
			grep -q "No space left on device" "$T/fault.out" || fail "step $n/$total of '$*': no clear message: $(cat "$T/fault.out")"
		fi
		assert_recovers "$mode at step $n/$total of '$*'" "$@"
	done
	echo "# $mode: $total steps of '$*', at" $steps >&3
}

@test "a crash at any durable step of run leaves everything recoverable" {
	enumerate kill run web1
}

@test "a full disk at any durable step of run: a clear error, nothing lost" {
	enumerate enospc run web1
}

# The repository of setup(), encrypted: the same two backups taken again
# into a format-3 one, and the same change of the source left for the run
# under test.
encrypt_repo() {
	export BACKUP_INSECURE_TEST_KDF=1 BACKUP_PASSWORD_FILE=$T/pw ENCRYPTED=1
	printf 'crash test passphrase\n' >"$T/pw"
	rm -rf "$REPO" "$T/repo.orig" "$T/kept"
	mv "$T/src/new" "$T/new.aside"
	echo one >"$T/src/one"
	backup -q init --encrypt 2>/dev/null
	backup enable -q web1
	backup run -q web1
	mkdir -p "$T/kept"
	cp -a "$T/src/." "$T/kept/"
	backup run -q --snapshot --label before web1
	mv "$T/new.aside" "$T/src/new"
	rm "$T/src/one"
	cp -a "$REPO" "$T/repo.orig"
}

# Every blob sealed as it is written, the sidecars keyed by a MAC: a crash
# or a full disk anywhere in between still leaves every backup whole and
# readable with the key (check --read-data opens every blob and name), and
# the repository encrypted. Six points shared by the two tests in the
# suite, every step in both with `make check-crash`.
@test "a crash at any durable step of run on an encrypted repository: every backup whole, still encrypted" {
	encrypt_repo
	FAULT_SAMPLES=${FAULT_SAMPLES:-6} enumerate kill run web1
}

@test "a full disk at any durable step of run on an encrypted repository: a clear error, nothing lost" {
	encrypt_repo
	FAULT_SAMPLES=${FAULT_SAMPLES:-6} enumerate enospc run web1
}

# Leaves data for rotate to reclaim: a daily backup replaced by the next one.
make_garbage() {
	head -c 800000 /dev/urandom >"$T/src/gone"
	backup run -q web1
	rm "$T/src/gone"
	backup run -q web1
	rm -rf "$T/repo.orig" && cp -a "$REPO" "$T/repo.orig"
}

@test "a crash at any durable step of rotate leaves every kept backup whole" {
	make_garbage
	enumerate kill rotate
}

@test "a full disk at any durable step of rotate: nothing lost" {
	make_garbage
	enumerate enospc rotate
}

@test "a crash at any durable step of cancel leaves the other machine whole" {
	# cancel web2 must never touch web1's snapshot.
	mkdir -p "$T/src2" && head -c 700000 /dev/urandom >"$T/src2/x"
	define_machine web2 "$T/src2"
	backup enable -q web2
	backup run -q web2
	rm -rf "$T/repo.orig" && cp -a "$REPO" "$T/repo.orig"
	total=$(count_steps cancel --yes web2)
	steps=$(fault_steps kill "$total")
	for n in $steps; do
		rm -rf "$REPO" && cp -a "$T/repo.orig" "$REPO"
		FAULT_DIR=$REPO FAULT_AT=$n LD_PRELOAD=$SHIM "$BK" -q cancel --yes web2 >/dev/null 2>&1 || true
		assert_recovers "kill at step $n/$total of cancel" rotate
	done
	echo "# kill: $total steps of 'cancel', at" $steps >&3
}

@test "a crash at any durable step of restore --new: never a half-made machine, and the next restore works" {
	total=$(FAULT_DIR=$T/m count_steps restore web1:snapshot --new r1)
	rm -rf "$MROOT/r1" "$MACHINES/r1.conf"
	[ "$total" -gt 3 ] || fail "only $total steps counted"
	steps=$(fault_steps kill "$total")
	for n in $steps; do
		rm -rf "$MROOT/r1" "$MACHINES/r1.conf"
		FAULT_DIR=$T/m FAULT_AT=$n LD_PRELOAD=$SHIM "$BK" -q restore web1:snapshot --new r1 >/dev/null 2>&1 || true
		if [ -e "$MACHINES/r1.conf" ]; then
			# Defined means complete.
			run tree_diff "$T/kept" "$MROOT/r1/disks/root"
			[ -z "$output" ] || fail "step $n/$total: r1 is defined but differs: $output"
			continue
		fi
		run backup restore web1:snapshot --new r1
		[ "$status" = 0 ] || fail "step $n/$total: the next restore failed: $output"
		run tree_diff "$T/kept" "$MROOT/r1/disks/root"
		[ -z "$output" ] || fail "step $n/$total: the next restore differs: $output"
	done
	echo "# kill: $total steps of 'restore --new', at" $steps >&3
}

@test "a full disk at any durable step of cancel or restore --new: a clear error, nothing lost" {
	mkdir -p "$T/src2" && head -c 700000 /dev/urandom >"$T/src2/x"
	define_machine web2 "$T/src2"
	backup enable -q web2
	backup run -q web2
	rm -rf "$T/repo.orig" && cp -a "$REPO" "$T/repo.orig"
	enumerate enospc cancel --yes web2
	rm -rf "$REPO" && cp -a "$T/repo.orig" "$REPO"
	total=$(FAULT_DIR=$T/m count_steps restore web1:snapshot --new r1)
	steps=$(fault_steps enospc "$total")
	for n in $steps; do
		rm -rf "$MROOT/r1" "$MACHINES/r1.conf"
		code=0
		FAULT_DIR=$T/m FAULT_AT=$n FAULT_MODE=enospc LD_PRELOAD=$SHIM "$BK" -q restore web1:snapshot --new r1 \
			>"$T/fault.out" 2>&1 || code=$?
		if [ "$code" != 0 ]; then
			grep -q "No space left on device" "$T/fault.out" || fail "step $n/$total: no clear message: $(cat "$T/fault.out")"
			[ ! -e "$MACHINES/r1.conf" ] || fail "step $n/$total: a failed restore defined r1"
			[ ! -e "$MROOT/r1" ] || fail "step $n/$total: a failed restore left $MROOT/r1"
		else
			run tree_diff "$T/kept" "$MROOT/r1/disks/root"
			[ -z "$output" ] || fail "step $n/$total: r1 differs: $output"
		fi
	done
	echo "# enospc: $total steps of 'restore --new', at" $steps >&3
}
