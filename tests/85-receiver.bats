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

@test "a clone from the receiver gets the objects as stored, with no delta search" {
	local i
	for i in $(seq 1 40); do seq "$i" 400 >"$T/src/f$i"; done
	backup run -q web1
	push refs/backups/web1/daily:refs/backups/web1/daily
	echo changed >"$T/src/f7"
	backup run -q web1
	push +refs/backups/web1/daily:refs/backups/web1/daily
	git clone -q --mirror "$URL" "$T/copy.git"
	# Both backups came (the replaced one as kept): similar trees and
	# .meta blobs, which a delta search would have made deltas of.
	[ "$(git --git-dir="$T/copy.git" for-each-ref refs/backups/web1/ | wc -l)" = 2 ]
	run git verify-pack -v "$T"/copy.git/objects/pack/*.idx
	assert_success
	refute_output --partial "chain length"
	fsck_both
}

# The receiver's clock: serve, git and the hook run under libfaketime at
# the time in $T/now (the client's key line gets the variables in front).
receiver_clock() {
	local lib=/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1
	[ -f "$lib" ] || skip "libfaketime is not installed"
	printf '%s\n' "$1" >"$T/now"
	grep -q FAKETIME "$SSHD_DIR/ak/root" && return 0
	sed -i "s|command=\"|command=\"env TZ=UTC ASAN_OPTIONS=verify_asan_link_order=0 LD_PRELOAD=$lib FAKETIME_TIMESTAMP_FILE=$T/now FAKETIME_NO_CACHE=1 |" \
		"$SSHD_DIR/ak/root"
}

# day DATE: the client's nightly run at 02:30, its push at 03:00 and the
# receiver's rotate at 04:00, each at its own time.
day() {
	faketime "$1 02:30:00" "$BK" run -q web1
	receiver_clock "$1 03:00:00"
	git -C "$REPO" push -q --force "$URL" 'refs/backups/web1/*:refs/backups/web1/*'
	faketime "$1 04:00:00" "$BK" --repo "$RCV" rotate -q
}

# The ids of the backups a repository keeps, sorted.
ids() { backup --repo "$1" list web1 --json | python3 -c '
import json, sys
for b in sorted(json.load(sys.stdin), key=lambda b: b["id"]):
    print(b["id"])'; }

@test "a replaced backup stays on the receiver until the receiver's rotate expires it by the seed's rules" {
	command -v faketime >/dev/null || skip "faketime is not installed"
	# A fresh client whose backups start on 2026-11-03, a Tuesday.
	export BACKUP_REPO=$T/client REPO=$T/client
	backup init -q
	backup enable -q web1
	backup schedule -q web1 --day sunday
	for d in $(seq 2 20); do
		date=$(date -u -d "2026-11-01 +$d days" +%F)
		echo "$date" >"$T/src/file"
		faketime "$date 02:30:00" "$BK" run -q web1
		receiver_clock "$date 03:00:00"
		before=$(git --git-dir="$RCV" rev-parse -q --verify refs/backups/web1/daily || true)
		git -C "$REPO" push -q --force "$URL" 'refs/backups/web1/*:refs/backups/web1/*'
		# Until the receiver's rotate, the backup daily left is kept there.
		if [ -n "$before" ]; then
			[ "$(git --git-dir="$RCV" rev-parse "refs/backups/web1/kept/$before" 2>/dev/null)" = "$before" ] ||
				git --git-dir="$RCV" for-each-ref --format='%(objectname)' 'refs/backups/web1/' | grep -q "$before" ||
				fail "$date: the replaced daily $before is gone before the receiver's rotate"
		fi
		faketime "$date 04:00:00" "$BK" --repo "$RCV" rotate -q
		# Then the receiver keeps exactly what the client keeps: the seed's rules.
		[ "$(ids "$RCV")" = "$(ids "$REPO")" ] || fail "$date: receiver $(ids "$RCV" | cut -c1-8) client $(ids "$REPO" | cut -c1-8)"
		run git --git-dir="$RCV" fsck --full --strict
		[ "$status" = 0 ] || fail "$date: $output"
	done
	# The receiver learned web1's weekly day from its first weekly backup.
	run backup --repo "$RCV" schedule web1 --json
	assert_output --partial '"day":"sunday","day_default":false'
	backup --repo "$RCV" restore web1:biweekly --path /file --to "$T/out" -q
	[ "$(cat "$T/out/file")" = 2026-11-08 ]
	run backup --repo "$RCV" check --read-data
	assert_success
}

# has ID: the receiver still holds backup ID under some ref.
has() { git --git-dir="$RCV" for-each-ref --format='%(objectname)' refs/backups/ | grep -qx "$1"; }

@test "forged dates: a compromised client cannot make the receiver expire the weekly and biweekly early" {
	command -v faketime >/dev/null || skip "faketime is not installed"
	export BACKUP_REPO=$T/client REPO=$T/client
	backup init -q
	backup enable -q web1
	for d in $(seq 0 9); do
		echo "day $d" >"$T/src/file"
		day "$(date -u -d "2026-11-01 +$d days" +%F)"
	done
	weekly=$(id_of refs/backups/web1/weekly "$RCV")
	biweekly=$(id_of refs/backups/web1/biweekly "$RCV")
	# The attacker, root on the client on Tuesday 2026-11-10 10:00, makes
	# backups of web1 dated as it likes in a repository of its own.
	receiver_clock "2026-11-10 10:00:00"
	export BACKUP_REPO=$T/evil
	backup init -q
	backup enable -q web1
	echo forged >"$T/src/file"
	# Backdated to the weekly day, later than the real weekly: into weekly.
	faketime "2026-11-08 05:00:00" "$BK" run -q web1
	run git -C "$T/evil" push --force "$URL" refs/backups/web1/daily:refs/backups/web1/weekly
	assert_success
	past=$(id_of refs/backups/web1/daily "$T/evil")
	# Dated in the future, on a weekly day: into every slot.
	faketime "2026-11-22 02:30:00" "$BK" run -q web1
	future=$(id_of refs/backups/web1/daily "$T/evil")
	run git -C "$T/evil" push --force "$URL" refs/backups/web1/daily:refs/backups/web1/daily \
		refs/backups/web1/daily:refs/backups/web1/weekly refs/backups/web1/daily:refs/backups/web1/biweekly
	assert_success
	[ "$(id_of refs/backups/web1/weekly "$RCV")" = "$future" ]
	[ "$(id_of refs/backups/web1/biweekly "$RCV")" = "$future" ]
	# The receiver dates them by their arrival: the future one arrived at
	# 10:00, the past one counts as 12 hours before it arrived at most.
	run faketime "2026-11-10 11:00:00" "$BK" --repo "$RCV" rotate --dry-run --json
	assert_success
	assert_output --partial "{\"id\":\"$future\",\"created\":\"2026-11-10T10:00:00Z\""
	assert_output --partial "{\"id\":\"$past\",\"created\":\"2026-11-09T22:00:00Z\""
	# So the real weekly and biweekly live their full terms on the receiver.
	faketime "2026-11-10 11:00:00" "$BK" --repo "$RCV" rotate -q
	has "$weekly" && has "$biweekly" || fail "the real weekly or biweekly expired early"
	faketime "2026-11-15 02:00:00" "$BK" --repo "$RCV" rotate -q
	has "$biweekly" || fail "the real biweekly expired before it was 14 days old"
	faketime "2026-11-15 03:00:00" "$BK" --repo "$RCV" rotate -q
	! has "$biweekly" || fail "the real biweekly outlived 14 days"
	faketime "2026-11-22 02:00:00" "$BK" --repo "$RCV" rotate -q
	has "$weekly" || fail "the real weekly expired before it was 14 days old"
	backup --repo "$RCV" restore "$weekly" --path /file --to "$T/out" -q
	[ "$(cat "$T/out/file")" = "day 7" ]
	run backup --repo "$RCV" check
	assert_success
	run git --git-dir="$RCV" fsck --full --strict
	assert_success
}

@test "after forged dates the honest client's next push is no rewind" {
	command -v faketime >/dev/null || skip "faketime is not installed"
	export BACKUP_REPO=$T/client REPO=$T/client
	backup init -q
	backup enable -q web1
	day 2026-11-09
	receiver_clock "2026-11-09 10:00:00"
	export BACKUP_REPO=$T/evil
	backup init -q
	backup enable -q web1
	faketime "2099-01-01 00:00:00" "$BK" run -q web1
	git -C "$T/evil" push -q --force "$URL" refs/backups/web1/daily:refs/backups/web1/daily
	export BACKUP_REPO=$T/client
	echo next >"$T/src/file"
	day 2026-11-10
	[ "$(id_of refs/backups/web1/daily "$RCV")" = "$(id_of refs/backups/web1/daily)" ]
	# A backup older than the one in the slot, by the receiver's dates, is a rewind.
	faketime "2026-11-09 12:00:00" "$BK" --repo "$T/evil" run -q web1
	run git -C "$T/evil" push --force "$URL" refs/backups/web1/daily:refs/backups/web1/daily
	assert_failure
	assert_output --partial "refusing to rewind"
}

@test "a receiver's weekly day of a machine is set there, without the machine's file" {
	run backup --repo "$RCV" schedule web9 --day monday
	assert_success
	run backup --repo "$RCV" schedule web9 --json
	assert_output --partial '"day":"monday","day_default":false'
	run -1 backup --repo "$RCV" schedule web9 --print cron
	assert_output --partial "is a receiver"
	run -1 backup schedule web9
	assert_output --partial "web9"
}

@test "backup push to a receiver: the slots go, the receiver keeps its own service state" {
	backup remote add offsite "$URL"
	run backup push offsite web1
	assert_success
	assert_output --partial "web1 daily"
	[ "$(id_of refs/backups/web1/daily "$RCV")" = "$(id_of refs/backups/web1/daily)" ]
	echo changed >"$T/src/file"
	backup run -q web1
	run backup push offsite web1
	assert_success
	[ "$(id_of refs/backups/web1/daily "$RCV")" = "$(id_of refs/backups/web1/daily)" ]
	run backup --repo "$RCV" list web1 --json
	assert_output --partial '"slots":["kept"]'
	# A refusal is named, and the push fails.
	backup run -q web2
	run backup push offsite web2
	assert_failure 1
	assert_output --partial "refs/backups/web2/daily"
	fsck_both
}

@test "schedule --receiver prints the receiver's daily rotate, and that job runs" {
	run backup schedule --receiver "$RCV" --print cron
	assert_success
	assert_output --partial "--repo $RCV rotate --wait 3600 -q"
	job=$(printf '%s\n' "$output" | grep -v '^#' | cut -d' ' -f6-)
	push refs/backups/web1/daily:refs/backups/web1/daily
	run sh -c "$job"
	assert_success
	run backup schedule --receiver "$RCV" --print systemd --window W6 --output "$T/units"
	assert_success
	grep -qx "ExecStart=$BK --repo $RCV rotate --wait 3600 -q" "$T"/units/backup-rotate-receiver-*.service
	grep -qx "OnCalendar=\*-\*-\* 06:00:00.*" "$T"/units/backup-rotate-receiver-*.timer
	run backup schedule --receiver "$RCV" --print systemd --output "$T/units" --json
	assert_success
	[ "$(echo "$output" | json_field receiver)" = "$RCV" ]
	[ "$(echo "$output" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["files"]))')" = 2 ]
	run -2 backup schedule --receiver "$RCV" web1 --print cron
	run -2 backup schedule --receiver "$RCV"
	run -1 backup schedule --receiver "$REPO" --print cron
	assert_output --partial "not a receiver"
	run -1 backup --repo "$RCV" schedule web1 --print cron
	assert_output --partial "schedule --receiver DIR --print cron"
}
