#!/usr/bin/env bats
# The append-only receiver: `backup init --receiver`, client keys with
# `backup receiver authorize`, stock git push of slot refs through the real
# sshd of tests/sshd.bash, and every refusal of the receiver's hook.

load test_helper
load sshd

RCV=$BATS_TEST_TMPDIR/rcv

setup() {
	setup_repo web1
	define_machine web2 "$T/src2"
	mkdir -p "$T/src2"
	echo two >"$T/src2/file"
	backup enable -q web2
	echo one >"$T/src/file"
	backup run -q web1
	backup init -q --receiver "$RCV"
	sshd_start "$T/sshd"
	sshd_new_key k1
	sshd_new_key k2
	sshd_new_key stranger
	backup receiver authorize "$RCV" --machine web1 --append "$SSHD_DIR/ak/root" "$SSHD_DIR/k1.pub" -q
	backup receiver authorize "$RCV" --machine web2 --append "$SSHD_DIR/ak/root" "$SSHD_DIR/k2.pub" -q
	sshd_use_key k1
	URL=$(sshd_url "$RCV")
}

teardown() {
	sshd_stop
}

# push REFSPEC...: what `backup push` does, stock git push of slot refs.
push() {
	git -C "$REPO" push --porcelain "$URL" "$@"
}

# Both ends stay valid whatever was refused.
fsck_both() {
	run git --git-dir="$RCV" fsck --full --strict
	assert_success
	run git --git-dir="$REPO" fsck --full
	assert_success
}

id_of() { git --git-dir="${2:-$REPO}" rev-parse "$1"; }

@test "init --receiver makes a repository set up for pushes, and refuses an existing one" {
	run git --git-dir="$RCV" config receive.unpackLimit
	assert_output 1
	run git --git-dir="$RCV" config receive.fsck.hasDotgit
	assert_output ignore
	run git --git-dir="$RCV" config receive.fsckObjects
	assert_output true
	run git --git-dir="$RCV" config gc.auto
	assert_output 0
	[ -x "$RCV/hooks/pre-receive" ]
	grep -qF "$BK' receiver hook" "$RCV/hooks/pre-receive"
	run -1 backup init --receiver "$RCV"
	assert_output --partial "already exists"
	run -2 backup init --receiver ""
	# An empty receiver is an empty backup repository.
	run backup --repo "$RCV" list
	assert_success
	run backup --repo "$RCV" check
	assert_success
}

@test "authorize prints a restricted forced-command line for one public key" {
	run backup receiver authorize "$RCV" --machine web1 --machine web2 "$SSHD_DIR/k1.pub"
	assert_success
	assert_output --regexp "^restrict,command=\"'[^']*/backup' receiver serve '$RCV' --machine web1 --machine web2\" ssh-ed25519 [A-Za-z0-9+/=]+ k1$"
	run -1 backup receiver authorize "$RCV" --machine web1 "$SSHD_DIR/k1"
	assert_output --partial "private key"
	run -2 backup receiver authorize "$RCV" "$SSHD_DIR/k1.pub"
	assert_output --partial "needs --machine"
	run -2 backup receiver authorize "$RCV" --machine ../x "$SSHD_DIR/k1.pub"
	run -1 backup receiver authorize "$REPO" --machine web1 "$SSHD_DIR/k1.pub"
	assert_output --partial "not a receiver"
}

@test "a key pushes its machine's slots; the receiver is a backup repository that restores them" {
	loose=$(find "$RCV/objects" -path '*/objects/??/*' -type f | sort)
	run push refs/backups/web1/daily:refs/backups/web1/daily
	assert_success
	assert_output --partial "*	refs/backups/web1/daily:refs/backups/web1/daily	[new reference]"
	[ "$(id_of refs/backups/web1/daily "$RCV")" = "$(id_of refs/backups/web1/daily)" ]
	# One pack per push, never loose objects.
	[ "$(find "$RCV/objects" -path '*/objects/??/*' -type f | sort)" = "$loose" ]
	run backup --repo "$RCV" list --json
	assert_success
	assert_output --partial '"machine":"web1"'
	run backup --repo "$RCV" check --read-data
	assert_success
	backup --repo "$RCV" restore web1 --path /file --to "$T/out" -q
	[ "$(cat "$T/out/file")" = one ]
	fsck_both
}

@test "a slot moves to a newer backup; the one it replaced stays on the receiver as kept" {
	push refs/backups/web1/daily:refs/backups/web1/daily
	first=$(id_of refs/backups/web1/daily)
	echo changed >"$T/src/file"
	backup run -q web1
	second=$(id_of refs/backups/web1/daily)
	run push --force refs/backups/web1/daily:refs/backups/web1/daily
	assert_success
	[ "$(id_of refs/backups/web1/daily "$RCV")" = "$second" ]
	[ "$(id_of refs/backups/web1/kept/$first "$RCV")" = "$first" ]
	run backup --repo "$RCV" list web1 --json
	assert_output --partial '"slots":["kept"]'
	run backup --repo "$RCV" check
	assert_success
	backup --repo "$RCV" restore "$first" --path /file --to "$T/old" -q
	[ "$(cat "$T/old/file")" = one ]
	fsck_both
}

@test "refused: deleting a slot" {
	push refs/backups/web1/daily:refs/backups/web1/daily
	run push :refs/backups/web1/daily
	assert_failure
	assert_output --partial "refusing to delete 'refs/backups/web1/daily': the receiver is append-only"
	assert_output --partial "!	:refs/backups/web1/daily	[remote rejected]"
	git --git-dir="$RCV" rev-parse -q --verify refs/backups/web1/daily
	fsck_both
}

@test "refused: rewinding a slot to an older backup" {
	first=$(id_of refs/backups/web1/daily)
	git -C "$REPO" update-ref refs/keep/first "$first"
	echo changed >"$T/src/file"
	backup run -q web1
	second=$(id_of refs/backups/web1/daily)
	push refs/backups/web1/daily:refs/backups/web1/daily
	run push --force refs/keep/first:refs/backups/web1/daily
	assert_failure
	assert_output --partial "refusing to rewind 'refs/backups/web1/daily': backup ${first:0:12}"
	assert_output --partial "is older than ${second:0:12}"
	[ "$(id_of refs/backups/web1/daily "$RCV")" = "$second" ]
	fsck_both
}

@test "refused: another machine's ref, and another machine's backup in one's own slot" {
	backup run -q web2
	run push refs/backups/web2/daily:refs/backups/web2/daily
	assert_failure
	assert_output --partial "[remote rejected]"
	run push refs/backups/web1/daily:refs/backups/web2/daily
	assert_failure
	run push refs/backups/web2/daily:refs/backups/web1/daily
	assert_failure
	assert_output --partial "backup $(id_of refs/backups/web2/daily | cut -c1-12) is one of machine 'web2'"
	run git --git-dir="$RCV" for-each-ref refs/backups/
	assert_output ""
	# web2's own key may write web2, and web1's key does not even see it.
	sshd_use_key k2
	run push refs/backups/web2/daily:refs/backups/web2/daily
	assert_success
	sshd_use_key k1
	run git ls-remote "$URL"
	assert_success
	refute_output --partial web2
	fsck_both
}

@test "refused: refs that are not backup slots, and commits that are not backups" {
	run push refs/backups/web1/daily:refs/heads/main
	assert_failure
	assert_output --partial "[remote rejected]"
	run push refs/backups/web1/daily:refs/backups/web1/monthly
	assert_failure
	assert_output --partial "refusing 'refs/backups/web1/monthly': not a backup slot"
	run push refs/backups/web1/daily:refs/backups/web1/kept/x
	assert_failure
	assert_output --partial "not a backup slot"
	# A backup in the wrong kind of slot.
	run push refs/backups/web1/daily:refs/backups/web1/snapshot
	assert_failure
	assert_output --partial "is an automatic backup, not a snapshot"
	# A commit of stock git is not a backup.
	tree=$(git --git-dir="$REPO" mktree </dev/null)
	c=$(git --git-dir="$REPO" -c user.name=x -c user.email=x@x commit-tree -m "backup web1 automatic" "$tree")
	run push "$c:refs/backups/web1/daily"
	assert_failure
	assert_output --partial "refusing 'refs/backups/web1/daily': ${c:0:12} is not a backup"
	run git --git-dir="$RCV" for-each-ref refs/backups/
	assert_output ""
	fsck_both
}

@test "refused: an unknown key, a key with no machine, interactive logins and other commands" {
	sshd_use_key stranger
	run push refs/backups/web1/daily:refs/backups/web1/daily
	assert_failure
	assert_output --partial "Permission denied"
	# A forced command that names no machine lets nothing through.
	line=$(backup receiver authorize "$RCV" --machine web1 "$SSHD_DIR/stranger.pub" | sed 's/ --machine web1//')
	echo "$line" >>"$SSHD_DIR/ak/root"
	run push refs/backups/web1/daily:refs/backups/web1/daily
	assert_failure
	assert_output --partial "this key may write no machine's backups"
	sshd_use_key k1
	run ssh -F "$SSHD_DIR/ssh_config" 127.0.0.1
	assert_failure
	assert_output --partial "interactive logins are refused"
	run ssh -F "$SSHD_DIR/ssh_config" 127.0.0.1 cat /etc/passwd
	assert_failure
	assert_output --partial "refusing the command 'cat /etc/passwd'"
	refute_output --partial "root:"
	run ssh -F "$SSHD_DIR/ssh_config" 127.0.0.1 "git-receive-pack '$REPO'"
	assert_failure
	assert_output --partial "this key may use only the repository '$RCV'"
	# The client cannot steer git through its environment.
	run env GIT_NAMESPACE=web2 git -C "$REPO" push "$URL" refs/backups/web1/daily:refs/backups/web1/daily
	assert_success
	run git --git-dir="$RCV" for-each-ref --format='%(refname)' refs/backups/
	assert_output refs/backups/web1/daily
	fsck_both
}

@test "a key fetches and clones its own machines' backups only" {
	backup run -q web2
	push refs/backups/web1/daily:refs/backups/web1/daily
	sshd_use_key k2
	push refs/backups/web2/daily:refs/backups/web2/daily
	sshd_use_key k1
	run git ls-remote "$URL"
	assert_success
	assert_output --partial refs/backups/web1/daily
	refute_output --partial web2
	git clone -q --mirror "$URL" "$T/copy.git"
	run git --git-dir="$T/copy.git" for-each-ref --format='%(refname)'
	assert_output refs/backups/web1/daily
	# Nor can it fetch another machine's backup by its id.
	run git --git-dir="$T/copy.git" fetch "$URL" "$(id_of refs/backups/web2/daily)"
	assert_failure
	fsck_both
}
