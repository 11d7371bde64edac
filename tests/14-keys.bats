#!/usr/bin/env bats
# Keys of an encrypted repository: init --encrypt, key list|add|remove|passwd|
# export, --key-file; no secret stored in the clear; a wrong or missing
# passphrase changes nothing; a crash or a full disk at any durable step of a
# key change leaves a repository that opens; a git clone opens with the key.

load test_helper

SHIM=$BATS_TEST_DIRNAME/faultshim.so

setup() {
	setup_config
	# Wrapped keys made here use scrypt N=2^10 (lib/crypto.h): fast tests.
	export BACKUP_INSECURE_TEST_KDF=1
	printf 'correct horse battery\n' >"$T/pw1"
	printf 'second passphrase\n' >"$T/pw2"
	printf 'third one\n' >"$T/pw3"
	unset BACKUP_PASSWORD_FILE BACKUP_PASSWORD_COMMAND BACKUP_NEW_PASSWORD_FILE BACKUP_NEW_PASSWORD_COMMAND
}

# with PWFILE ARGS...: backup with the passphrase in PWFILE.
with() {
	local pw=$1
	shift
	BACKUP_PASSWORD_FILE=$pw backup "$@"
}

# change_digit FILE FIELD: FILE with the first hex digit of line FIELD changed.
change_digit() {
	python3 - "$1" "$2" <<-'EOF'
	import sys
	out = []
	for line in open(sys.argv[1]):
	    if line.startswith(sys.argv[2] + " "):
	        i = len(sys.argv[2]) + 1
	        line = line[:i] + ("1" if line[i] == "0" else "0") + line[i + 1:]
	    out.append(line)
	sys.stdout.write("".join(out))
	EOF
}

# set_state_blob NAME FILE: the state ref's tree with blob NAME replaced by
# FILE, committed as git could.
set_state_blob() {
	local blob tree commit
	blob=$(git --git-dir="$REPO" hash-object -w "$2")
	rm -f "$T/idx"
	git --git-dir="$REPO" read-tree --index-output="$T/idx" refs/backup/state
	GIT_INDEX_FILE=$T/idx git --git-dir="$REPO" update-index --cacheinfo "100644,$blob,$1"
	tree=$(GIT_INDEX_FILE=$T/idx git --git-dir="$REPO" write-tree)
	commit=$(GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@t GIT_COMMITTER_NAME=t GIT_COMMITTER_EMAIL=t@t \
		git --git-dir="$REPO" commit-tree "$tree" </dev/null)
	git --git-dir="$REPO" update-ref refs/backup/state "$commit"
}

init_encrypted() {
	with "$T/pw1" init -q --encrypt 2>/dev/null
}

key_ids() {
	backup key list --json | python3 -c 'import json,sys; print("\n".join(k["id"] for k in json.load(sys.stdin)))'
}

# Everything that defines the repository, to compare before and after.
snapshot_repo() {
	{
		git --git-dir="$REPO" for-each-ref --format='%(refname) %(objectname)'
		git --git-dir="$REPO" log -g --format=%H refs/backup/state 2>/dev/null
		(cd "$REPO" && find . -path ./backup/locks -prune -o -type f -print | sort)
	} >"$1"
}

@test "init --encrypt: format 3, the encryption entry and one wrapped key; fsck clean" {
	run with "$T/pw1" init --encrypt
	assert_success
	assert_line --regexp "^initialized encrypted repository '$REPO' with key [0-9a-f]{16}$"
	refute_output --partial "warning"
	run git --git-dir="$REPO" cat-file blob refs/backup/state:format
	assert_output "backup repository format 3"
	run git --git-dir="$REPO" cat-file blob refs/backup/state:encryption
	assert_line "cipher aes-256-gcm"
	assert_line --regexp '^check [0-9a-f]{32}$'
	run git --git-dir="$REPO" ls-tree -r --name-only refs/backup/state
	assert_line --regexp '^keys/[0-9a-f]{16}$'
	run key_ids
	[ "${#lines[@]}" = 1 ]
	run git --git-dir="$REPO" cat-file blob "refs/backup/state:keys/${lines[0]}"
	assert_line "kdf scrypt 1024 8 1"
	git --git-dir="$REPO" fsck --full --strict
	run backup check
	assert_success
}

@test "no passphrase and no master key in any file of the repository" {
	init_encrypted
	BACKUP_PASSWORD_FILE=$T/pw1 BACKUP_NEW_PASSWORD_FILE=$T/pw2 backup -q key add
	with "$T/pw2" key export >"$T/exported" 2>/dev/null
	hex=$(sed -n 's/^key //p' "$T/exported" | tr -d ' ')
	[ ${#hex} = 64 ]
	# Every object, decompressed, and every file as it lies on disk: the
	# passphrases, the key in hex and the raw key, in one pass.
	git --git-dir="$REPO" cat-file --batch-all-objects --batch >"$T/objects"
	run python3 - "$hex" "$T/objects" $(find "$REPO" -type f) <<-'EOF'
	import sys
	key = sys.argv[1]
	secrets = [b"correct horse battery", b"second passphrase", key.encode(), bytes.fromhex(key)]
	for f in sys.argv[2:]:
	    data = open(f, "rb").read()
	    for s in secrets:
	        if s in data:
	            print("%r found in %s" % (s, f))
	EOF
	assert_success
	assert_output ""
	# Every file was read (the list is not empty).
	[ "$(find "$REPO" -type f | wc -l)" -gt 10 ]
}

@test "the passphrase comes from a file, a command or nowhere: one line, nothing created" {
	run -1 setsid -w "$BK" init --encrypt </dev/null
	assert_output "backup: no passphrase: set BACKUP_PASSWORD_FILE or BACKUP_PASSWORD_COMMAND, or run on a terminal"
	[ ! -e "$REPO" ]
	: >"$T/empty"
	run -1 with "$T/empty" init --encrypt
	assert_output "backup: the passphrase from BACKUP_PASSWORD_FILE is empty"
	[ ! -e "$REPO" ]
	run -1 env BACKUP_PASSWORD_FILE="$T/pw1" BACKUP_PASSWORD_COMMAND="cat $T/pw1" "$BK" init --encrypt
	assert_output "backup: set only one of BACKUP_PASSWORD_FILE and BACKUP_PASSWORD_COMMAND"
	[ ! -e "$REPO" ]
	# A failing command: its status, never its text (it may hold the secret).
	run -1 env BACKUP_PASSWORD_COMMAND="echo hunter2; exit 3" "$BK" init --encrypt
	assert_output "backup: the passphrase command (BACKUP_PASSWORD_COMMAND) failed with exit status 3"
	[ ! -e "$REPO" ]
	run env BACKUP_PASSWORD_COMMAND="cat $T/pw1" "$BK" -q init --encrypt
	assert_success
	run with "$T/pw1" key export
	assert_success
}

@test "a wrong or missing passphrase: one clear line, exit 1, nothing changed" {
	init_encrypted
	snapshot_repo "$T/before"
	for sub in add export passwd "remove 0"; do
		run -1 env BACKUP_NEW_PASSWORD_FILE="$T/pw3" BACKUP_PASSWORD_FILE="$T/pw2" "$BK" key $sub
		assert_output "backup: wrong passphrase: it opens none of the 1 key of repository '$REPO'"
		run -1 setsid -w "$BK" key $sub </dev/null
		assert_output "backup: no passphrase: set BACKUP_PASSWORD_FILE or BACKUP_PASSWORD_COMMAND, or run on a terminal"
	done
	# The new passphrase missing: nothing added either.
	run -1 env BACKUP_PASSWORD_FILE="$T/pw1" setsid -w "$BK" key add </dev/null
	assert_output "backup: no passphrase: set BACKUP_NEW_PASSWORD_FILE or BACKUP_NEW_PASSWORD_COMMAND, or run on a terminal"
	snapshot_repo "$T/after"
	diff "$T/before" "$T/after"
}

@test "key add, passwd and remove round trips; the master key never changes" {
	init_encrypted
	first=$(key_ids)
	with "$T/pw1" key export >"$T/exp1" 2>/dev/null
	run env BACKUP_PASSWORD_FILE="$T/pw1" BACKUP_NEW_PASSWORD_FILE="$T/pw2" "$BK" key add
	assert_success
	assert_output --regexp '^added key [0-9a-f]{16}$'
	second=${output#added key }
	run key_ids
	assert_line "$first"
	assert_line "$second"
	run with "$T/pw2" -q key export
	assert_success
	[ "$output" = "$(cat "$T/exp1")" ]
	# passwd replaces the key the passphrase opens, in one state commit.
	run env BACKUP_PASSWORD_FILE="$T/pw2" BACKUP_NEW_PASSWORD_FILE="$T/pw3" "$BK" key passwd
	assert_success
	assert_output --regexp "^changed the passphrase: key $second is now key [0-9a-f]{16}$"
	third=${output##* }
	run key_ids
	refute_line "$second"
	assert_line "$third"
	run -1 with "$T/pw2" key export
	assert_output --partial "wrong passphrase"
	with "$T/pw3" key export 2>/dev/null | diff - "$T/exp1"
	# The key in use cannot be removed with its own passphrase.
	run -1 with "$T/pw1" key remove "$first"
	assert_output --partial "is the one your passphrase opens"
	run with "$T/pw3" key remove "${first:0:6}"
	assert_success
	assert_output "removed key $first"
	run -1 with "$T/pw1" key export
	run key_ids
	assert_output "$third"
	# The last key stays, whatever opens the repository.
	run -1 backup --key-file "$T/exp1" key remove "$third"
	assert_output "backup: key '$third' is the last key of repository '$REPO': nobody could open it; add another key first"
	run -1 with "$T/pw3" key remove nosuchkey
	assert_output --partial "no key 'nosuchkey'"
	run -2 with "$T/pw3" key remove
	run -2 with "$T/pw3" key frob
	run git --git-dir="$REPO" log -g --format=%gs refs/backup/state
	assert_line "backup: key remove $first"
	assert_line "backup: key passwd $second -> $third"
	assert_line "backup: key add $second"
	git --git-dir="$REPO" fsck --full --strict
}

@test "--key-file opens with an exported key; a mistyped or foreign one is refused" {
	init_encrypted
	with "$T/pw1" key export >"$T/exp" 2>/dev/null
	run backup -q --key-file "$T/exp" key export
	assert_success
	assert_output "$(cat "$T/exp")"
	# Lost every passphrase: the paper key adds a new one.
	run env BACKUP_NEW_PASSWORD_FILE="$T/pw2" "$BK" --key-file "$T/exp" key add
	assert_success
	with "$T/pw2" key export 2>/dev/null | diff - "$T/exp"
	# One digit changed in the key: its check line catches it.
	change_digit "$T/exp" key >"$T/typo"
	run -1 backup --key-file "$T/typo" key export
	assert_output --partial "is not a key that 'backup key export' printed, or it is mistyped"
	# Another repository's key.
	with "$T/pw1" init -q --encrypt --repo "$T/other" 2>/dev/null
	with "$T/pw1" key export --repo "$T/other" >"$T/other.exp" 2>/dev/null
	run -1 backup --key-file "$T/other.exp" key export
	assert_output "backup: the key in '$T/other.exp' is not the key of repository '$REPO'"
	run -1 backup --key-file "$T/nonexistent" key export
	assert_output --partial "cannot read the key file"
	head -c 5000 /dev/zero | tr '\0' ' ' >"$T/huge"
	cat "$T/exp" >>"$T/huge"
	run -1 backup --key-file "$T/huge" key export
	assert_output "backup: '$T/huge' is longer than any key 'backup key export' prints"
	run -2 backup --key-file "$T/exp" key passwd
	run backup -q --json --key-file "$T/exp" key export
	assert_success
	[ "$(echo "$output" | json_field master_key)" = "$(cat "$T/exp")" ]
}

@test "keys belong to encrypted repositories only" {
	backup init -q --repo "$T/plain"
	run -1 backup key list --repo "$T/plain"
	assert_output --partial "is not encrypted"
}

@test "a mirror clone and a backup clone of an encrypted repository open with the same passphrase and key" {
	init_encrypted
	BACKUP_PASSWORD_FILE=$T/pw1 BACKUP_NEW_PASSWORD_FILE=$T/pw2 backup -q key add
	with "$T/pw1" key export >"$T/exp" 2>/dev/null
	git clone -q --mirror --no-local "$REPO" "$T/copy.git"
	export BACKUP_REPO=$T/copy.git
	run key_ids
	[ "${#lines[@]}" = 2 ]
	with "$T/pw2" key export 2>/dev/null | diff - "$T/exp"
	backup --key-file "$T/exp" key export 2>/dev/null | diff - "$T/exp"
	run env BACKUP_PASSWORD_FILE="$T/pw1" BACKUP_NEW_PASSWORD_FILE="$T/pw3" "$BK" key add
	assert_success
	with "$T/pw3" key export 2>/dev/null | diff - "$T/exp"
	# backup clone too: the copy is encrypted, and opens the same way.
	unset BACKUP_REPO
	run backup clone "$REPO" "$T/clone"
	assert_success
	run git --git-dir="$T/clone" cat-file blob refs/backup/state:format
	assert_output "backup repository format 3"
	with "$T/pw2" -q --repo "$T/clone" key export | diff - "$T/exp"
}

@test "a damaged key is named and skipped; the others still open" {
	init_encrypted
	first=$(key_ids)
	BACKUP_PASSWORD_FILE=$T/pw1 BACKUP_NEW_PASSWORD_FILE=$T/pw2 backup -q key add
	with "$T/pw1" key export >"$T/exp" 2>/dev/null
	# Rewrite the first key's blob with one changed byte of its salt, as git could.
	git --git-dir="$REPO" cat-file blob "refs/backup/state:keys/$first" >"$T/good"
	change_digit "$T/good" salt >"$T/bad"
	set_state_blob "keys/$first" "$T/bad"
	run -1 with "$T/pw1" key export
	assert_output --partial "wrong passphrase"
	with "$T/pw2" key export 2>/dev/null | diff - "$T/exp"
}

# fault_each OP SETUP CHECK: at the durable steps of `backup key OP` (with
# pw1 opening, pw2 new), a kill -9 and a full disk there; after each, CHECK
# must pass. SETUP prepares the repository that $T/repo.orig keeps. The
# suite samples the steps (fault_steps: about 12 points, shared by the two
# modes, the last in both); `make check-crash` sets FAULT_STRIDE=1 for
# every one in both.
fault_each() {
	local op=$1 mode n total code
	[ -f "$SHIM" ] || skip "tests/faultshim.so is not built (make check builds it)"
	cp -a "$REPO" "$T/repo.orig"
	rm -f "$T/count"
	BACKUP_PASSWORD_FILE=$T/pw1 BACKUP_NEW_PASSWORD_FILE=$T/pw2 FAULT_DIR=$REPO FAULT_COUNT=$T/count \
		LD_PRELOAD=$SHIM "$BK" -q key $op >/dev/null 2>&1 || fail "'key $op' fails without a fault"
	total=$(cat "$T/count")
	[ "$total" -gt 3 ] || fail "only $total steps counted for 'key $op'"
	for mode in kill enospc; do
		for n in $(fault_steps "$mode" "$total"); do
			rm -rf "$REPO" && cp -a "$T/repo.orig" "$REPO"
			code=0
			BACKUP_PASSWORD_FILE=$T/pw1 BACKUP_NEW_PASSWORD_FILE=$T/pw2 FAULT_DIR=$REPO FAULT_AT=$n \
				FAULT_MODE=$mode LD_PRELOAD=$SHIM "$BK" -q key $op >"$T/fault.out" 2>&1 || code=$?
			if [ "$mode" = enospc ] && [ "$code" != 0 ]; then
				[ "$code" = 1 ] || fail "$mode at step $n/$total of 'key $op': exit $code"
				grep -q "No space left on device" "$T/fault.out" ||
					fail "$mode at step $n/$total of 'key $op': no clear message: $(cat "$T/fault.out")"
				[ "$(wc -l <"$T/fault.out")" = 1 ] ||
					fail "$mode at step $n/$total of 'key $op': more than one line: $(cat "$T/fault.out")"
			fi
			git --git-dir="$REPO" fsck --full --no-dangling >/dev/null 2>&1 ||
				fail "$mode at step $n/$total of 'key $op': git fsck failed"
			backup -q check >/dev/null 2>&1 || fail "$mode at step $n/$total of 'key $op': check failed"
			opens || fail "$mode at step $n/$total of 'key $op': $(cat "$T/why")"
			# And the next key change works.
			BACKUP_PASSWORD_FILE=$T/pw1 BACKUP_NEW_PASSWORD_FILE=$T/pw3 "$BK" -q key add >/dev/null 2>"$T/why" ||
				{ BACKUP_PASSWORD_FILE=$T/pw2 BACKUP_NEW_PASSWORD_FILE=$T/pw3 "$BK" -q key add >/dev/null 2>>"$T/why"; } ||
				fail "$mode at step $n/$total of 'key $op': the next key add failed: $(cat "$T/why")"
		done
	done
	echo "# kill at" $(fault_steps kill "$total") "and enospc at" $(fault_steps enospc "$total") "of the $total steps of 'key $op'" >&3
}

# The repository opens with pw1 or pw2 and gives the master key of before.
opens() {
	local pw
	for pw in "$T/pw1" "$T/pw2"; do
		if BACKUP_PASSWORD_FILE=$pw "$BK" key export 2>"$T/why" | cmp -s - "$T/exp"; then
			return 0
		fi
	done
	echo "neither passphrase opens it: $(cat "$T/why")" >"$T/why"
	return 1
}

@test "a crash or a full disk at any durable step of key add leaves a repository that opens" {
	init_encrypted
	with "$T/pw1" key export >"$T/exp" 2>/dev/null
	fault_each add
}

@test "a crash or a full disk at any durable step of key passwd leaves a repository that opens" {
	init_encrypted
	with "$T/pw1" key export >"$T/exp" 2>/dev/null
	fault_each passwd
}

@test "a crash or a full disk at any durable step of key remove leaves a repository that opens" {
	init_encrypted
	with "$T/pw1" key export >"$T/exp" 2>/dev/null
	# pw1 opens key one, removing key two (pw3's).
	second=$(BACKUP_PASSWORD_FILE=$T/pw1 BACKUP_NEW_PASSWORD_FILE=$T/pw3 backup key add)
	second=${second#added key }
	fault_each "remove $second"
}

@test "on a terminal: the passphrase is asked twice with echo off, and nothing typed is shown" {
	python3 - "$BK" "$T/screen" <<-'EOF'
	import os, pty, sys, select, time
	pid, fd = pty.fork()
	if pid == 0:
	    os.execv(sys.argv[1], [sys.argv[1], "init", "--encrypt"])
	screen = b""
	def until(want):
	    global screen
	    end = time.time() + 20
	    while want not in screen and time.time() < end:
	        if select.select([fd], [], [], 1)[0]:
	            try:
	                screen += os.read(fd, 1024)
	            except OSError:
	                break
	until(b"passphrase for the new repository: ")
	os.write(fd, b"typed secret\n")
	until(b"again: ")
	os.write(fd, b"typed secret\n")
	until(b"initialized encrypted repository")
	_, st = os.waitpid(pid, 0)
	open(sys.argv[2], "wb").write(screen)
	sys.exit(os.waitstatus_to_exitcode(st))
	EOF
	grep -q "initialized encrypted repository" "$T/screen"
	! grep -q "typed secret" "$T/screen"
	printf 'typed secret\n' >"$T/typed"
	run with "$T/typed" -q key export
	assert_success
}

@test "bash completion offers the key commands, then the key ids to remove" {
	init_encrypted
	id=$(key_ids)
	run bash -c "
		backup() { '$BK' \"\$@\"; }
		source '$BATS_TEST_DIRNAME/../completions/backup.bash'
		COMP_WORDS=(backup key ''); COMP_CWORD=2; _backup; echo \"\${COMPREPLY[*]}\"
		COMP_WORDS=(backup key remove ''); COMP_CWORD=3; _backup; echo \"\${COMPREPLY[*]}\"
		COMP_WORDS=(backup --key-file); COMP_CWORD=1; _backup; echo \"\${COMPREPLY[*]}\""
	assert_success
	assert_line --index 0 "list add remove passwd export"
	assert_line --index 1 "$id"
	assert_line --index 2 "--key-file="
}

@test "a damaged or foreign 'encryption' entry: keys are not tried, the damage is named" {
	init_encrypted
	with "$T/pw1" init -q --encrypt --repo "$T/other" 2>/dev/null
	# Another repository's entry: the keys wrap another master key.
	git --git-dir="$T/other" cat-file blob refs/backup/state:encryption >"$T/enc"
	set_state_blob encryption "$T/enc"
	run -1 with "$T/pw1" key export
	assert_line --partial "wraps another master key than its 'encryption' names; ignored"
	assert_line "backup: wrong passphrase: it opens none of the 0 keys of repository '$REPO'"
	# Upper-case digits are not what backup writes.
	git --git-dir="$REPO" cat-file blob refs/backup/state:encryption | sed 's/^check \(.*\)/check \U\1/' >"$T/enc3"
	set_state_blob encryption "$T/enc3"
	run -1 with "$T/pw1" key export
	assert_output "backup: repository '$REPO' is damaged or newer than this backup: its 'encryption' is not understood"
}
