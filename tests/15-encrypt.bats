#!/usr/bin/env bats
# The data path of an encrypted repository: every blob (chunks and .meta)
# sealed, dedup keys a MAC; run, restore (--new, --existing, --path), drill
# and check --read-data open it with the passphrase or --key-file; check
# needs no key; tampering is caught by the tags; stock git still fscks,
# pushes and clones it.

load test_helper
load sshd

setup() {
	setup_config
	# Wrapped keys made here use scrypt N=2^10 (lib/crypto.h): fast tests.
	export BACKUP_INSECURE_TEST_KDF=1
	printf 'correct horse battery\n' >"$T/pw1"
	printf 'not the passphrase\n' >"$T/wrong"
	unset BACKUP_PASSWORD_FILE BACKUP_PASSWORD_COMMAND BACKUP_NEW_PASSWORD_FILE BACKUP_NEW_PASSWORD_COMMAND
	mkdir -p "$T/src"
	define_machine web1 "$T/src"
	BACKUP_PASSWORD_FILE=$T/pw1 backup -q init --encrypt 2>/dev/null
	backup enable -q web1
	export BACKUP_PASSWORD_FILE=$T/pw1
}

teardown() {
	sshd_stop	# the receiver test's; nothing when none was started
	# The lock test's holder, when the test failed before releasing it
	# (read-write: opening the fifo never blocks).
	if [ -n "${holder:-}" ] && kill -0 "$holder" 2>/dev/null; then
		echo go 1<>"$T/release"
		wait "$holder" || true
	fi
}

# Files whose content must never appear in the repository: distinctive
# text (several chunks once compressed away) and random bytes.
make_corpus() {
	mkdir -p "$T/src/docs"
	seq -f 'line %g of the secret document, which nobody may read' 1 6000 >"$T/src/docs/secret.txt"
	head -c 300000 /dev/urandom >"$T/src/random.bin"
	printf 'a small private note, one chunk only\n' >"$T/src/note"
	cp "$T/src/random.bin" "$T/src/docs/copy.bin"
}

# no_leak FILE...: no 16-byte run of any FILE (windows of fewer than 6
# distinct bytes aside) is in any file of the repository, nor in any
# object as stock git inflates it.
no_leak() {
	git --git-dir="$REPO" cat-file --batch-all-objects --batch >"$T/objects"
	python3 - "$REPO" "$T/objects" "$@" <<-'EOF'
	import os, sys
	repo, objects, corpus = sys.argv[1], sys.argv[2], sys.argv[3:]
	W = 16
	windows = set()
	for f in corpus:
	    b = open(f, "rb").read()
	    for i in range(len(b) - W + 1):
	        w = b[i:i + W]
	        if len(set(w)) >= 6:
	            windows.add(w)
	assert len(windows) > 1000, len(windows)
	files = [objects] + [os.path.join(d, n) for d, _, ns in os.walk(repo) for n in ns]
	for p in files:
	    b = open(p, "rb").read()
	    for i in range(len(b) - W + 1):
	        if b[i:i + W] in windows:
	            sys.exit("a 16-byte run of the corpus is in %s at %d" % (p, i))
	EOF
}

# rewrite REF PATH OID [NAME]: the backup REF names, with the tree entry
# PATH (stored names: "$(disk REF)/$note") pointing at OID (and named NAME),
# committed as stock git could with the same message, and REF moved to it.
rewrite() {
	local ref=$1 path=$2 oid=$3 name=${4:-} commit tree
	tree=$(rewrite_tree "$ref^{tree}" "$path" "$oid" "$name")
	commit=$(git --git-dir="$REPO" cat-file commit "$ref" | sed "1s/^tree .*/tree $tree/" |
		git --git-dir="$REPO" hash-object -t commit -w --stdin)
	git --git-dir="$REPO" update-ref "$ref" "$commit"
}

rewrite_tree() {
	local t=$1 path=$2 oid=$3 name=$4 first new
	first=${path%%/*}
	if [ "$first" = "$path" ]; then
		new=$oid
	else
		new=$(rewrite_tree "$(git --git-dir="$REPO" rev-parse "$t:$first")" "${path#*/}" "$oid" "$name")
		name=
	fi
	git --git-dir="$REPO" ls-tree "$t" |
		awk -v n="$first" -v o="$new" -v nn="$name" 'BEGIN { FS = OFS = "\t" }
			$2 == n { split($1, a, " "); $1 = a[1] " " a[2] " " o; if (nn != "") $2 = nn } { print }' |
		git --git-dir="$REPO" mktree
}

# Stored names are sealed, the disks' labels too: entries are found by
# what they are. disk REF: the stored name of the backup's one disk;
# top REF: its tree, as "REF:NAME".
disk() {
	git --git-dir="$REPO" ls-tree "$1" | awk -F'\t' 'NR == 1 { print $2 }'
}

top() {
	echo "$1:$(disk "$1")"
}

# Stored names are sealed: entries are found by what they are.
# blobs TREEISH: the names of its blob entries but .meta.
blobs() {
	git --git-dir="$REPO" ls-tree "$1" | awk -F'\t' '$1 ~ / blob / && $2 != ".meta" { print $2 }'
}

# smallest TREEISH: the name of its smallest blob but .meta (the note: other
# files may be one blob or several chunks, as the chunker cuts them).
smallest() {
	git --git-dir="$REPO" ls-tree -l "$1" |
		awk -F'\t' '$1 ~ / blob / && $2 != ".meta" { split($1, a, " "); print a[4] "\t" $2 }' |
		sort -n | head -1 | cut -f2
}

# folders TREEISH: the names of its folder trees (those with a .meta).
folders() {
	local n
	git --git-dir="$REPO" ls-tree "$1" | awk -F'\t' '$1 ~ / tree / { print $2 }' | while read -r n; do
		if git --git-dir="$REPO" cat-file -e "$1/$n/.meta" 2>/dev/null; then echo "$n"; fi
	done
}

# blob_with FILE: writes FILE as a blob with stock git, prints its id.
blob_with() {
	git --git-dir="$REPO" hash-object -w "$1"
}

# damaged SLOT PATH: the backup in web1's SLOT, whose trees were changed
# under its sealed commit, is refused as damaged by restore (nothing
# written) and named by check --read-data.
damaged() {
	run backup restore "web1:$1" --path "$2" --to "$T/out-$1"
	assert_failure
	assert_line "backup: backup 'web1:$1' is damaged; run 'backup check'"
	[ ! -e "$T/out-$1" ]
	run backup check --read-data
	assert_failure
	assert_line --regexp "^backup: slot 'refs/backups/web1/$1' names a damaged backup [0-9a-f]{40}; run 'backup check'$"
}

@test "round trip of every kind of file is exact; dedup works; fsck clean; check needs no key" {
	make_torture_tree "$T/src"
	make_corpus
	run backup run web1
	assert_success
	run backup restore web1 --new r1
	assert_success
	run tree_diff "$T/src" "$MROOT/r1/disks/root"
	assert_output ""
	[ "$(stat -c %i "$MROOT/r1/disks/root/file")" = "$(stat -c %i "$MROOT/r1/disks/root/dir/hardlink")" ]
	[ "$(du -k "$MROOT/r1/disks/root/sparse" | cut -f1)" -lt 1000 ]
	backup restore -q web1 --path /docs --path /note --to "$T/out"
	run tree_diff "$T/src/docs" "$T/out/docs"
	assert_output ""
	cmp "$T/src/note" "$T/out/note"
	run backup drill web1
	assert_success
	assert_output --partial "drill passed"
	run backup check --read-data
	assert_success
	git --git-dir="$REPO" fsck --full --strict
	# No change: nothing stored but metadata; the copy of random.bin was
	# stored once (its chunks are deduplicated by their MAC).
	run --separate-stderr backup --json run web1
	assert_success
	[ "$(echo "$output" | json_field bytes_stored)" -lt 100000 ]
	# The sidecars rebuilt from the keys in front of the blobs are the
	# ones the runs wrote.
	cat "$REPO"/backup/dedup/*.sdx | sha256sum >"$T/sdx"
	run backup check --repair-index
	assert_success
	cat "$REPO"/backup/dedup/*.sdx | sha256sum | diff - "$T/sdx"
	# check without --read-data reads no blob: no passphrase needed.
	unset BACKUP_PASSWORD_FILE
	run setsid -w "$BK" check </dev/null
	assert_success
}

@test "restore --existing on an encrypted repository is exact" {
	make_corpus
	backup run -q web1
	backup restore -q web1 --new web2
	run tree_diff "$T/src" "$MROOT/web2/disks/root"
	assert_output ""
	echo changed >"$T/src/note"
	backup run -q web1
	run backup restore web1 --existing web2
	assert_success
	run tree_diff "$T/src" "$MROOT/web2/disks/root-r1"
	assert_output ""
}

@test "no 16-byte run of any file's content is in the repository, raw or as git inflates it" {
	make_corpus
	backup run -q web1
	echo "one more line" >>"$T/src/docs/secret.txt"
	backup run -q --snapshot web1
	no_leak "$T/src/docs/secret.txt" "$T/src/random.bin" "$T/src/note"
	# And the dedup keys are not the chunks' SHA-256: whoever holds a
	# known file cannot test whether it is stored.
	sum=$(sha256sum "$T/src/note" | cut -d' ' -f1)
	for f in "$REPO"/backup/dedup/*.sdx; do
		! od -An -tx1 -v "$f" | tr -d ' \n' | grep -q "$sum"
	done
	# The key is the first 32 bytes of the blob, and the sidecar has it.
	oid=$(git --git-dir="$REPO" rev-parse "$(top refs/backups/web1/daily)/$(smallest "$(top refs/backups/web1/daily)")")
	key=$(git --git-dir="$REPO" cat-file blob "$oid" | head -c 32 | od -An -tx1 -v | tr -d ' \n')
	cat "$REPO"/backup/dedup/*.sdx | od -An -tx1 -v | tr -d ' \n' | grep -q "$key$oid"
}

@test "a wrong or missing passphrase: one line, exit 1, nothing changed or written" {
	make_corpus
	backup run -q web1
	echo new >"$T/src/new"
	before=$( (git --git-dir="$REPO" for-each-ref; ls -R "$REPO/objects") | sha256sum)
	for cmd in "run web1" "run web1 --snapshot" "restore web1 --path / --to $T/out" "restore web1 --new r2" \
		"drill web1" "check --read-data" "check --repair-index"; do
		run -1 env BACKUP_PASSWORD_FILE="$T/wrong" "$BK" $cmd
		assert_output "backup: wrong passphrase: it opens none of the 1 key of repository '$REPO'"
		run -1 env -u BACKUP_PASSWORD_FILE setsid -w "$BK" $cmd </dev/null
		assert_output "backup: no passphrase: set BACKUP_PASSWORD_FILE or BACKUP_PASSWORD_COMMAND, or run on a terminal"
	done
	[ ! -e "$T/out" ] && [ ! -e "$MROOT/r2" ]
	after=$( (git --git-dir="$REPO" for-each-ref; ls -R "$REPO/objects") | sha256sum)
	[ "$before" = "$after" ]
}

# run reads the source while the passphrase's scrypt runs on a thread of
# its own (lib/keys.h, walk_start() in lib/walk.h): what needs the key waits
# for it, and a key that does not open stops the run as before.
@test "run with a wrong passphrase takes no lock, runs no preHook, reports no disk error, writes nothing" {
	make_corpus
	backup run -q web1
	mkdir -p "$T/src2/a/b"
	echo two >"$T/src2/a/b/f"
	define_machine web2 "$T/src2" "[backup]" "	preHook = touch $T/hook-ran"
	define_machine gone "$T/no-such-source"
	backup enable -q web2
	backup enable -q gone
	before=$( (git --git-dir="$REPO" for-each-ref; ls -R "$REPO/objects" "$REPO/backup") | sha256sum)
	for cmd in "run web2" "run gone" "run web1 gone web2" "--json run --all"; do
		run -1 env BACKUP_PASSWORD_FILE="$T/wrong" "$BK" $cmd
		assert_output "backup: wrong passphrase: it opens none of the 1 key of repository '$REPO'"
	done
	[ ! -e "$T/hook-ran" ]
	after=$( (git --git-dir="$REPO" for-each-ref; ls -R "$REPO/objects" "$REPO/backup") | sha256sum)
	[ "$before" = "$after" ]
	# With the passphrase: the preHook, the disk error and the backups as ever.
	run -1 backup run web1 gone web2
	assert_line --partial "cannot read the disk source '$T/no-such-source'"
	[ -e "$T/hook-ran" ]
	backup restore -q web2 --path / --to "$T/out" </dev/null
	run tree_diff "$T/src2" "$T/out"
	assert_output ""
}

# The default scrypt parameters (not the tests' fast ones) give the source's
# reading ahead time to run; what it read must be exactly what a walk reads.
# slow_repo: a new encrypted repository $T/slow whose key has the default
# scrypt parameters, with machine m backing up $T/tree (40 folders, 3 deep).
slow_repo() {
	unset BACKUP_INSECURE_TEST_KDF
	export BACKUP_CONFIG=$T/slow.conf
	mkdir -p "$T/slow.machines" "$T/slow.root"
	printf '[repository]\n\tpath = %s\n[machines]\n\tdir = %s\n\troot = %s\n' \
		"$T/slow" "$T/slow.machines" "$T/slow.root" >"$BACKUP_CONFIG"
	printf '[machine]\n\tplan = 10G\n[disk "root"]\n\tsource = %s\n\tsize = 1G\n\tfilesystem = ext4\n' \
		"$T/tree" >"$T/slow.machines/m.conf"
	for i in $(seq 1 40); do
		mkdir -p "$T/tree/d$i/e/f"
		echo "file $i" >"$T/tree/d$i/a"
		echo "deep $i" >"$T/tree/d$i/e/f/b"
	done
	backup init -q --encrypt
	backup enable -q m
}

@test "a run whose source was read while the key opened is exact, changed files and folders included" {
	slow_repo
	backup run -q m
	echo changed >>"$T/tree/d7/a"
	rm -r "$T/tree/d9"
	mkdir "$T/tree/d40/new"
	echo new >"$T/tree/d40/new/c"
	backup run -q m
	backup restore -q m --path / --to "$T/out" </dev/null
	run tree_diff "$T/tree" "$T/out"
	assert_output ""
	run backup run -q m
	assert_success
	run backup restore -q m --path / --to "$T/out2" </dev/null
	run tree_diff "$T/tree" "$T/out2"
	assert_output ""
}

# What was read while the key opened is older than a wait for a lock: a
# run that had to wait reads the source again after it.
@test "a run that waited for its machine's lock backs up what changed during the wait" {
	slow_repo
	backup run -q m
	lockf=$T/slow/backup/locks/m.lock
	mkfifo "$T/release"
	flock "$lockf" sh -c "read x <'$T/release'" >/dev/null 2>&1 &
	holder=$!
	until ! flock -n "$lockf" true; do kill -0 "$holder"; sleep 0.1; done
	(exec $EXEC_PREFIX "$BK" run -q --wait 600 m) &
	runner=$!
	# It has the lock open: its key opened and it is waiting.
	until ls -l "/proc/$runner/fd" 2>/dev/null | grep -q 'm\.lock$'; do kill -0 "$runner"; sleep 0.1; done
	echo "changed while the run waited" >>"$T/tree/d1/a"
	echo go >"$T/release"
	wait "$holder"
	wait "$runner"
	backup restore -q m --path / --to "$T/out" </dev/null
	run tree_diff "$T/tree" "$T/out"
	assert_output ""
}

@test "--key-file opens the data path without a passphrase" {
	make_corpus
	backup key export >"$T/exp" 2>/dev/null
	unset BACKUP_PASSWORD_FILE
	run backup --key-file "$T/exp" run web1
	assert_success
	backup --key-file "$T/exp" restore -q web1 --path /docs --to "$T/out" </dev/null
	run tree_diff "$T/src/docs" "$T/out/docs"
	assert_output ""
	run backup --key-file "$T/exp" check --read-data </dev/null
	assert_success
}

# Any change below a backup's commit changes its root tree, which the
# commit's seal binds, so each is caught there first; the names (bound to
# their folder's .meta and their objects) and the blobs' tags would catch it
# too (tests/unit/test_tree.c, tests/unit/test_crypto.c).
@test "a tampered blob, a blob moved behind another key, a tampered .meta: each caught" {
	make_corpus
	backup run -q web1
	S=refs/backups/web1/daily
	n=$(smallest "$(top "$S")")
	d=$(folders "$(top "$S")")
	note=$(git --git-dir="$REPO" rev-parse "$(top "$S")/$n")
	# One byte of the sealed frame changed: a valid git object.
	git --git-dir="$REPO" cat-file blob "$note" >"$T/blob"
	flip_byte "$T/blob" 50
	rewrite "$S" "$(disk "$S")/$n" "$(blob_with "$T/blob")"
	git --git-dir="$REPO" fsck --full
	damaged daily /note
	# check without the key sees only that every object is there.
	run env -u BACKUP_PASSWORD_FILE "$BK" check
	assert_success

	# The note's sealed frame behind the dedup key of another blob.
	backup run -q web1
	n=$(smallest "$(top "$S")")
	other=$(git --git-dir="$REPO" rev-parse "$(top "$S")/$d/.meta")
	{ git --git-dir="$REPO" cat-file blob "$other" | head -c 32
	  git --git-dir="$REPO" cat-file blob "$note" | tail -c +33; } >"$T/moved"
	rewrite "$S" "$(disk "$S")/$n" "$(blob_with "$T/moved")"
	damaged daily /note

	# The disk's top folder's .meta with a byte changed.
	backup run -q web1
	meta=$(git --git-dir="$REPO" rev-parse "$(top "$S")/.meta")
	git --git-dir="$REPO" cat-file blob "$meta" >"$T/meta"
	flip_byte "$T/meta" middle
	rewrite "$S" "$(disk "$S")/.meta" "$(blob_with "$T/meta")"
	damaged daily /docs
	# A folder below with its .meta changed.
	backup run -q web1
	d=$(folders "$(top "$S")")
	meta=$(git --git-dir="$REPO" rev-parse "$(top "$S")/$d/.meta")
	git --git-dir="$REPO" cat-file blob "$meta" >"$T/meta"
	flip_byte "$T/meta" middle
	rewrite "$S" "$(disk "$S")/$d/.meta" "$(blob_with "$T/meta")"
	damaged daily /docs/secret.txt
}

@test "no file or folder name is in the repository; a name altered or two blobs swapped is caught" {
	make_corpus
	mkdir "$T/src/private-documents-folder"
	printf 'the first confidential text\n' >"$T/src/private-documents-folder/confidential-memo.txt"
	printf 'the other confidential one\n' >"$T/src/private-documents-folder/quarterly-figures.txt"
	backup run -q web1
	backup run -q --snapshot web1
	git --git-dir="$REPO" cat-file --batch-all-objects --batch >"$T/objects"
	for name in private-documents-folder confidential-memo.txt quarterly-figures.txt secret.txt random.bin; do
		for f in "$T/objects" $(find "$REPO" -type f); do
			! grep -qaF "$name" "$f" || fail "'$name' found in $f"
		done
	done
	git --git-dir="$REPO" fsck --full --strict
	# Nothing changed: the folders keep their trees, names included.
	[ "$(git --git-dir="$REPO" rev-parse "$(top refs/backups/web1/daily)")" = \
	  "$(git --git-dir="$REPO" rev-parse "$(top refs/backups/web1/snapshot)")" ]
	run backup check --read-data
	assert_success

	S=refs/backups/web1/daily
	# The two files of equal size in the private folder swap their blobs.
	for d in $(folders "$(top "$S")"); do
		[ "$(blobs "$(top "$S")/$d" | wc -l)" = 2 ] && p=$d
	done
	set -- $(blobs "$(top "$S")/$p")
	a=$(git --git-dir="$REPO" rev-parse "$(top "$S")/$p/$1")
	b=$(git --git-dir="$REPO" rev-parse "$(top "$S")/$p/$2")
	rewrite "$S" "$(disk "$S")/$p/$1" "$b"
	rewrite "$S" "$(disk "$S")/$p/$2" "$a"
	git --git-dir="$REPO" fsck --full
	# The folder's tree changed, so its own sealed name, bound to its
	# tree, no longer opens: the damage is named there.
	damaged daily /private-documents-folder

	# A stored name with one character changed.
	S=refs/backups/web1/snapshot
	n=$(smallest "$(top "$S")")
	case $n in A*) m=B${n#A} ;; *) m=A${n#?} ;; esac
	rewrite "$S" "$(disk "$S")/$n" "$(git --git-dir="$REPO" rev-parse "$(top "$S")/$n")" "$m"
	git --git-dir="$REPO" fsck --full
	damaged snapshot /note
	# Without the key, check sees every object present.
	run env -u BACKUP_PASSWORD_FILE "$BK" check
	assert_success
}

@test "a run after a run takes the sealed names of what is bound as before; what changed is sealed anew, exact" {
	make_corpus
	mkdir -p "$T/src/a/b/c"
	printf 'kept as it is\n' >"$T/src/a/keep.txt"
	printf 'kept too\n' >"$T/src/a/b/keep2.txt"
	seq 1 500 >"$T/src/a/b/c/deep.txt"
	backup run -q web1
	# Changed in place, deep down: the .meta of a and a/b stay as they
	# were, but the trees of b and c are new, so their names are sealed
	# anew while those of keep.txt and keep2.txt are taken as they were.
	echo 501 >>"$T/src/a/b/c/deep.txt"
	# A rename, and content changed under the same name and size.
	mv "$T/src/docs/secret.txt" "$T/src/docs/renamed.txt"
	printf 'A SMALL PRIVATE NOTE, ONE CHUNK ONLY\n' >"$T/src/note"
	backup run -q --snapshot web1
	run backup check --read-data
	assert_success
	backup restore -q web1:snapshot --new r2
	run tree_diff "$T/src" "$MROOT/r2/disks/root"
	assert_output ""
	# And nothing changed (the atimes of folders aside, which reading
	# them moved): the names of the files taken again.
	backup run -q web1
	backup restore -q web1 --new r3
	run tree_diff "$T/src" "$MROOT/r3/disks/root"
	assert_output ""
	# A name taken from the backup before is authenticated as any other:
	# keep.txt's, in folder a (the folder of root that holds a folder).
	S=refs/backups/web1/daily
	for d in $(folders "$(top "$S")"); do
		[ -n "$(folders "$(top "$S")/$d")" ] && a=$d
	done
	n=$(blobs "$(top "$S")/$a")
	case $n in A*) m=B${n#A} ;; *) m=A${n#?} ;; esac
	rewrite "$S" "$(disk "$S")/$a/$n" "$(git --git-dir="$REPO" rev-parse "$(top "$S")/$a/$n")" "$m"
	damaged daily /a/keep.txt
}

@test "push to a path remote and clone carry an encrypted repository; the clone restores with the key" {
	make_corpus
	backup run -q web1
	git init -q --bare "$T/far.git"
	backup remote add far "$T/far.git"
	run backup push far
	assert_success
	run git --git-dir="$T/far.git" fsck --full --no-progress
	assert_success
	# The state, keys included, went with the slots.
	run git --git-dir="$T/far.git" cat-file blob refs/backup/state:format
	assert_output "backup repository format 3"
	run backup clone "$T/far.git" "$T/clone"
	assert_success
	export BACKUP_REPO=$T/clone
	backup restore -q web1 --path /docs --path /random.bin --to "$T/out"
	run tree_diff "$T/src/docs" "$T/out/docs"
	assert_output ""
	cmp "$T/src/random.bin" "$T/out/random.bin"
	run backup check --read-data
	assert_success
	# A mirror made by stock git has no dedup sidecars: its first run
	# builds them from the keys in front of the blobs, and deduplicates.
	git clone -q --mirror --no-local "$REPO" "$T/mirror.git"
	export BACKUP_REPO=$T/mirror.git
	run --separate-stderr backup --json run web1
	assert_success
	[ "$(echo "$output" | json_field bytes_stored)" -lt 100000 ]
	run backup check --read-data
	assert_success
	git --git-dir="$T/mirror.git" fsck --full --strict
}

@test "labels and every commit field but machine, kind and dates are sealed; list shows them with the key" {
	make_corpus
	backup run -q web1 --snapshot --label "confidential-label-text"
	S=refs/backups/web1/snapshot
	run git --git-dir="$REPO" cat-file commit "$S"
	assert_line "backup web1 snapshot"
	assert_line "machine web1"
	assert_line "kind snapshot"
	assert_line --regexp "^start [0-9]+\.[0-9]{9}$"
	assert_line --regexp "^sealed [0-9a-f]+$"
	refute_line --regexp "^(label|disk|plan|profile|files|bytes|files-read|bytes-read|bytes-stored) "
	git --git-dir="$REPO" cat-file --batch-all-objects --batch >"$T/objects"
	for f in "$T/objects" $(find "$REPO" -type f); do
		! grep -qaF "confidential-label-text" "$f" || fail "the label is in $f"
		! grep -qaF "$T/src" "$f" || fail "the source path is in $f"
	done
	run backup list
	assert_success
	assert_line --regexp "^web1 +snapshot .* confidential-label-text$"
	run backup --json list
	[ "$(echo "$output" | json_field label)" = confidential-label-text ]
	run -1 env -u BACKUP_PASSWORD_FILE setsid -w "$BK" list </dev/null
	assert_output "backup: no passphrase: set BACKUP_PASSWORD_FILE or BACKUP_PASSWORD_COMMAND, or run on a terminal"
	# rotate and check need no key.
	run env -u BACKUP_PASSWORD_FILE "$BK" rotate
	assert_success
	run env -u BACKUP_PASSWORD_FILE "$BK" check
	assert_success
	# A clear field changed, a sealed one, or the fields unsealed: the
	# backup is damaged.
	for edit in 's/^kind snapshot$/kind automatic/' 's/^\(sealed .\{40\}\)0/\11/; t; s/^\(sealed .\{40\}\)./\10/' \
		's/^sealed .*/label forged/'; do
		git --git-dir="$REPO" cat-file commit "$S" | sed "$edit" |
			git --git-dir="$REPO" hash-object -t commit -w --stdin >"$T/forged"
		[ "$(cat "$T/forged")" != "$(git --git-dir="$REPO" rev-parse "$S")" ]
		git --git-dir="$REPO" update-ref refs/backups/web1/daily "$(cat "$T/forged")"
		run backup check --read-data
		assert_failure
		assert_line --regexp "^backup: slot 'refs/backups/web1/daily' names a damaged backup [0-9a-f]{40}; run 'backup check'$"
		run backup restore web1:daily --path /note --to "$T/out"
		assert_failure
		[ ! -e "$T/out/note" ]
	done
}

@test "an append-only receiver accepts encrypted backups and applies retention without the key" {
	make_corpus
	backup run -q web1
	backup init -q --receiver "$T/rcv"
	sshd_start "$T/sshd"
	sshd_new_key k1
	backup receiver authorize "$T/rcv" --machine web1 --append "$SSHD_DIR/ak/root" "$SSHD_DIR/k1.pub" -q
	sshd_use_key k1
	backup remote add vault "$(sshd_url "$T/rcv")"
	run backup push vault web1
	assert_success
	assert_line --regexp "^web1 daily [0-9a-f]{12} pushed"
	echo changed >"$T/src/note"
	backup run -q web1
	run backup push vault web1
	assert_success
	[ "$(git --git-dir="$T/rcv" rev-parse refs/backups/web1/daily)" = "$(git --git-dir="$REPO" rev-parse refs/backups/web1/daily)" ]
	# The receiver has no key, and needs none.
	unset BACKUP_PASSWORD_FILE
	run backup --repo "$T/rcv" list web1 --json
	assert_success
	assert_output --partial '"slots":["kept"]'
	run backup --repo "$T/rcv" rotate
	assert_success
	run backup --repo "$T/rcv" check
	assert_success
	run git --git-dir="$T/rcv" fsck --full --strict --no-progress
	assert_success
	git --git-dir="$T/rcv" cat-file --batch-all-objects --batch >"$T/objects"
	! grep -qaF "secret.txt" "$T/objects"
}

@test "a flipped byte in a pack: check --read-data names the sealed blob and its file, restore refuses" {
	flipped_pack_byte_is_named
}

# lower_state GITDIR [keep-keys]: the state of GITDIR rewritten with stock
# git as a hostile remote could: its format line says 2 (not encrypted),
# with the `encryption` and `keys` entries kept or dropped.
lower_state() {
	local g=$1 keep=${2:-} fmt tree commit
	fmt=$(printf 'backup repository format 2\n' | git --git-dir="$g" hash-object -w --stdin)
	tree=$(git --git-dir="$g" ls-tree refs/backup/state |
		awk -v f="$fmt" -v k="$keep" 'BEGIN { FS = OFS = "\t" }
			$2 == "format" { split($1, a, " "); $1 = a[1] " " a[2] " " f }
			($2 == "encryption" || $2 == "keys") && k == "" { next } { print }' |
		git --git-dir="$g" mktree)
	commit=$(git --git-dir="$g" -c user.name=t -c user.email=t@t commit-tree "$tree" </dev/null)
	git --git-dir="$g" update-ref refs/backup/state "$commit"
}

@test "a remote that serves an encrypted repository as unencrypted: clone refuses it, fetch never lowers the format" {
	make_corpus
	backup run -q web1
	git init -q --bare "$T/far.git"
	backup remote add far "$T/far.git"
	backup push -q far
	cp -a "$T/far.git" "$T/far.orig"
	# The format line lowered, the keys kept.
	lower_state "$T/far.git" keep-keys
	run -1 backup clone "$T/far.git" "$T/clone"
	assert_output "backup: not cloned: the service state of remote 'origin' says its repository is not encrypted but holds the 'encryption' entry of an encrypted one: its format was lowered; clone from a copy you trust"
	[ ! -e "$T/clone" ] && [ -z "$(ls -d "$T"/.clone.clone-* 2>/dev/null)" ]
	# A copy made with stock git is refused as it opens.
	git clone -q --mirror --no-local "$T/far.git" "$T/mirror1.git"
	run -1 backup --repo "$T/mirror1.git" run web1
	assert_output "backup: repository '$T/mirror1.git' is damaged: refs/backup/state says format 2 (not encrypted) but holds the 'encryption' entry of an encrypted one: its format was lowered; take the repository from a copy you trust"
	# The keys dropped as well: the sealed backups give it away.
	rm -rf "$T/far.git" && cp -a "$T/far.orig" "$T/far.git"
	lower_state "$T/far.git"
	run -1 backup clone "$T/far.git" "$T/clone"
	assert_output "backup: not cloned: refs/backups/web1/daily on remote 'origin' is an encrypted backup, but the remote's service state says the repository is not encrypted: it was replaced or lost; clone from a copy you trust"
	[ ! -e "$T/clone" ]
	# A stock git copy of it opens, but no run writes plaintext into it.
	git clone -q --mirror --no-local "$T/far.git" "$T/mirror2.git"
	before=$(ls -R "$T/mirror2.git/objects" | sha256sum)
	run -1 backup --repo "$T/mirror2.git" run web1
	assert_output "backup: repository '$T/mirror2.git' says it is not encrypted (format 2), yet refs/backups/web1/daily names an encrypted backup: its state was replaced or lost; no backup taken (take the repository from a copy you trust)"
	[ "$before" = "$(ls -R "$T/mirror2.git/objects" | sha256sum)" ]
	# Whoever has the key learns it is not the repository meant.
	backup key export >"$T/exp" 2>/dev/null
	run -1 backup --repo "$T/mirror2.git" --key-file "$T/exp" restore web1 --path /note --to "$T/out"
	assert_output "backup: repository '$T/mirror2.git' is not encrypted, so --key-file '$T/exp' is not its key; check that it is the repository you meant"
	[ ! -e "$T/out" ]
	# The commit made to look plain too: the sealed .meta still tells.
	commit=$(git --git-dir="$T/far.git" cat-file commit refs/backups/web1/daily | sed 's/^sealed .*/label -/' |
		git --git-dir="$T/far.git" hash-object -t commit -w --stdin)
	git --git-dir="$T/far.git" update-ref refs/backups/web1/daily "$commit"
	run -1 backup clone "$T/far.git" "$T/clone"
	assert_output --partial "backup: not cloned: refs/backups/web1/daily on remote 'origin' is an encrypted backup"
	# No state at all.
	git --git-dir="$T/far.git" update-ref -d refs/backup/state
	run -1 backup clone "$T/far.git" "$T/clone"
	assert_output --partial "but the remote's service state is missing: it was replaced or lost; clone from a copy you trust"
	[ ! -e "$T/clone" ]

	# A fetch takes no state: a remote serving format 2 and a plain
	# backup leaves this repository encrypted and its slot where it was.
	P=$T/plain
	backup --repo "$P" init -q
	backup --repo "$P" enable -q web1
	backup --repo "$P" run -q web1
	git --git-dir="$P" push -q -f "$T/far.git" refs/backups/web1/daily refs/backup/state
	daily=$(git --git-dir="$REPO" rev-parse refs/backups/web1/daily)
	run -1 backup fetch far
	assert_line --regexp "^backup: refs/backups/web1/daily \(web1 daily\) from remote 'far' not taken: [0-9a-f]{40} is a backup of an unencrypted repository, and this one is encrypted$"
	[ "$(git --git-dir="$REPO" rev-parse refs/backups/web1/daily)" = "$daily" ]
	run git --git-dir="$REPO" cat-file blob refs/backup/state:format
	assert_output "backup repository format 3"
	run backup check --read-data
	assert_success
	# And a plain repository takes no encrypted backup.
	backup --repo "$P" remote add enc "$T/far.orig"
	run -1 backup --repo "$P" fetch enc
	assert_line --regexp "^backup: refs/backups/web1/daily \(web1 daily\) from remote 'enc' not taken: [0-9a-f]{40} is an encrypted backup, and this repository is not encrypted$"
}

@test "no disk label and no host name is in any file of the repository, of a copy or of its clone" {
	mkdir -p "$T/src2"
	echo "the second machine's file" >"$T/src2/f"
	cat >"$MACHINES/web2.conf" <<-CONF
	[machine]
		plan = 10G
	[disk "private-disk-label"]
		source = $T/src2
		size = 1G
		filesystem = ext4
	[profile "default"]
		root = sda
		sda = private-disk-label
	CONF
	backup enable -q web2
	make_corpus
	backup run -q web1
	backup run -q web2
	backup run -q --snapshot web2
	git init -q --bare "$T/far.git"
	backup remote add far "$T/far.git"
	backup push -q far
	backup clone -q "$T/far.git" "$T/clone"
	host=$(hostname)
	for r in "$REPO" "$T/far.git" "$T/clone"; do
		git --git-dir="$r" cat-file --batch-all-objects --batch >"$T/objects"
		for f in "$T/objects" $(find "$r" -type f); do
			! grep -qaF "private-disk-label" "$f" || fail "the disk label is in $f"
			# (On a host named localhost there is nothing to tell apart.)
			[ "$host" = localhost ] || ! grep -qaF "backup@$host" "$f" || fail "the host name is in $f"
		done
	done
	# With the key the label is read back, and the backup restores.
	run backup --json list web2
	assert_success
	assert_output --partial '"disks":["private-disk-label"]'
	for r in "$REPO" "$T/clone"; do
		rm -rf "$T/out"
		backup --repo "$r" restore -q web2 --path /f --to "$T/out"
		cmp "$T/src2/f" "$T/out/f"
		run backup --repo "$r" check --read-data
		assert_success
	done
	# Without it, check and rotate see each disk's tree.
	run env -u BACKUP_PASSWORD_FILE "$BK" check
	assert_success
	run env -u BACKUP_PASSWORD_FILE "$BK" rotate
	assert_success
	git --git-dir="$REPO" fsck --full --strict
}
