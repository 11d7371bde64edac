#!/usr/bin/env bats
# Offsite copies over SSH: a real sshd on a loopback port (tests/sshd.bash).

load test_helper
load sshd

setup() {
	sshd_start "$T/sshd"
}

teardown() {
	sshd_stop
}

@test "the test sshd serves stock git over ssh and refuses a changed host key" {
	git init -q --bare "$T/far.git"
	git init -q "$T/w"
	git -C "$T/w" -c user.name=t -c user.email=t@t commit -q --allow-empty -m one
	run git -C "$T/w" push -q "$(sshd_url "$T/far.git")" HEAD:refs/heads/main
	assert_success
	run git --git-dir="$T/far.git" rev-parse refs/heads/main
	assert_output "$(git -C "$T/w" rev-parse HEAD)"
	# Another host key at the same address: ssh refuses, as it must.
	ssh-keygen -q -t ed25519 -N '' -f "$T/other"
	printf '[127.0.0.1]:%s %s\n' "$SSHD_PORT" "$(cut -d' ' -f1,2 "$T/other.pub")" >"$SSHD_DIR/known_hosts"
	run git -C "$T/w" push -q "$(sshd_url "$T/far.git")" HEAD:refs/heads/other
	assert_failure
	assert_output --partial "Host key verification failed"
}

# A repository with web1 backed up from a tree of a few MiB.
setup_backed_up() {
	setup_repo web1
	local i
	for i in $(seq 1 30); do head -c 100000 /dev/urandom >"$T/src/f$i"; done
	head -c 3000000 /dev/urandom >"$T/src/big"
	mkdir -p "$T/src/etc"
	echo web1 >"$T/src/etc/hostname"
	backup run -q web1
}

# Both ends clean for stock git, and the local repository for backup.
both_clean() {
	run git --git-dir="$REPO" fsck --full --no-progress
	assert_success
	run git --git-dir="$1" fsck --full --no-progress
	assert_success
	run backup check -q
	assert_success
}

@test "remote add, list and remove keep git remotes in the repository's config" {
	setup_repo
	run backup remote add far "$T/far.git"
	assert_success
	assert_output "remote 'far' added: $T/far.git"
	run backup remote add off "ssh://bk@host.example:2222/srv/backup.git"
	assert_success
	run backup remote add scp "bk@host.example:backup.git"
	assert_success
	(cd "$T" && backup remote add rel ./rel.git)
	run backup remote list
	assert_success
	assert_line --index 0 "far	$T/far.git"
	assert_line --index 1 "off	ssh://bk@host.example:2222/srv/backup.git"
	assert_line --index 2 "rel	$T/./rel.git"
	assert_line --index 3 "scp	bk@host.example:backup.git"
	run --separate-stderr backup remote list --json
	assert_success
	python3 -c 'import json,sys; d=json.load(sys.stdin); assert [r["transport"] for r in d]==["path","ssh","path","ssh"], d' <<<"$output"
	# Ordinary git remotes: stock git sees them, with the slots to push.
	run git --git-dir="$REPO" config remote.off.url
	assert_output "ssh://bk@host.example:2222/srv/backup.git"
	run git --git-dir="$REPO" config remote.off.push
	assert_output "+refs/backups/*:refs/backups/*"
	run backup remote remove off
	assert_success
	run git --git-dir="$REPO" config --get-regexp '^remote\.off\.'
	assert_failure
	run backup remote list
	refute_output --partial "off"
}

@test "remote refuses bad names and URLs with one line" {
	setup_repo
	run -2 backup remote add 'bad name' "$T/x"
	assert_line --index 0 --partial "'bad name' cannot name a remote"
	run -2 backup remote add -- -x "$T/x"
	run -2 backup remote add far 'ssh://host.example'
	assert_line --index 0 --partial "has no path"
	run -2 backup remote add far 'ssh://host.example:99999/x'
	assert_line --index 0 --partial "bad port"
	run -2 backup remote add far 'ssh://-oProxyCommand=x/y'
	assert_line --index 0 --partial "bad user or host"
	run -2 backup remote add far 'https://host.example/x.git'
	assert_line --index 0 --partial "transport backup does not support"
	run -2 backup remote add far ''
	run -2 backup remote add far 's3://x/prefix'
	assert_output --partial "does not name an S3 bucket"
	run -2 backup remote add far 's3://bucket/a+b'
	assert_output --partial "has a prefix S3 keys should not hold"
	backup remote add far "$T/far.git"
	run -1 backup remote add far "$T/other.git"
	assert_output --partial "remote 'far' already exists"
	run -1 backup remote remove nosuch
	assert_output "backup: no remote 'nosuch'; see 'backup remote list'"
	run -2 backup remote frob
	run -2 backup remote add far
	run backup remote list
	assert_output "far	$T/far.git"
}

@test "push to a path remote sends every slot, then nothing" {
	setup_backed_up
	backup run -q web1 --snapshot --label before
	git init -q --bare "$T/far.git"
	backup remote add far "$T/far.git"
	run backup push far
	assert_success
	assert_line --partial "web1 daily"
	assert_line --partial "web1 snapshot"
	assert_line --regexp "^pushed 2 slots to 'far': [0-9]+ objects"
	for s in daily snapshot; do
		[ "$(git --git-dir="$T/far.git" rev-parse refs/backups/web1/$s)" = "$(git --git-dir="$REPO" rev-parse refs/backups/web1/$s)" ]
	done
	both_clean "$T/far.git"
	# The only remote is the default one; nothing left to send.
	run --separate-stderr backup push --json
	assert_success
	python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["pushed"]==0 and d["objects"]==0 and all(r["status"]=="up-to-date" for r in d["refs"]), d' <<<"$output"
	run backup push -q
	assert_success
	assert_output ""
	# Stock git push NAME sends the slots too.
	backup run -q web1 --snapshot --label again
	run git --git-dir="$REPO" push -q far
	assert_success
	[ "$(git --git-dir="$T/far.git" rev-parse refs/backups/web1/snapshot)" = "$(git --git-dir="$REPO" rev-parse refs/backups/web1/snapshot)" ]
}

@test "push over ssh, then a 1% change sends about the changed bytes" {
	setup_backed_up
	git init -q --bare "$T/far.git"
	git --git-dir="$T/far.git" config receive.unpackLimit 1
	backup remote add off "$(sshd_url "$T/far.git")"
	run --separate-stderr backup push --json off
	assert_success
	full=$(python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["pushed"]==1, d; print(d["bytes"])' <<<"$output")
	[ "$full" -gt 3000000 ]
	# 1 %: one file of 100 kB rewritten out of 6 MB.
	head -c 100000 /dev/urandom >"$T/src/f7"
	backup run -q web1
	run --separate-stderr backup push --json off
	assert_success
	python3 -c '
import json, sys
d = json.load(sys.stdin)
assert d["pushed"] == 1 and d["refused"] == 0, d
assert 100000 <= d["bytes"] <= 100000 + 40000, d
assert d["objects"] <= 8, d
assert d["seconds"] >= 0, d' <<<"$output"
	[ "$(git --git-dir="$T/far.git" rev-parse refs/backups/web1/daily)" = "$(git --git-dir="$REPO" rev-parse refs/backups/web1/daily)" ]
	both_clean "$T/far.git"
}

# What stock git counts for pushing the local refs onto the remote's
# (rev-list --disk-usage, as pack-objects walks): "OBJECTS BYTES", the
# bytes with a pack's header and trailer.
git_counts() {
	local revs
	revs=$( (git --git-dir="$REPO" for-each-ref --format='%(objectname)' refs/backups/ refs/backup/state
		git --git-dir="$1" for-each-ref --format='^%(objectname)') | sort -u)
	echo "$(git --git-dir="$REPO" rev-list --objects --objects-edge-aggressive --no-object-names --stdin <<<"$revs" | grep -vc '^-') \
$(($(git --git-dir="$REPO" rev-list --objects --objects-edge-aggressive --disk-usage --stdin <<<"$revs" | grep -v '^-') + 32))"
}

@test "a push reports the objects and bytes git counts, from several packs and loose objects" {
	setup_backed_up
	git init -q --bare "$T/far.git"
	backup remote add off "$T/far.git"
	expect=$(git_counts "$T/far.git")
	run --separate-stderr backup push --json off
	assert_success
	[ "$(python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["objects"], d["bytes"])' <<<"$output")" = "$expect" ]
	# Two runs: what the next push sends lies in two packs, among others.
	echo one >"$T/src/f1"
	backup run -q web1
	head -c 50000 /dev/urandom >"$T/src/f2"
	backup run -q web1
	[ "$(find "$REPO/objects/pack" -name '*.idx' | wc -l)" -ge 3 ]
	# A loose object among them: the state moved by a command.
	backup schedule -q web1 --day mon
	[ -n "$(find "$REPO/objects" -path '*/objects/??/*' -type f)" ]
	expect=$(git_counts "$T/far.git")
	run --separate-stderr backup push --json off
	assert_success
	[ "$(python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["objects"], d["bytes"])' <<<"$output")" = "$expect" ]
	both_clean "$T/far.git"
}

# The sessions sshd has accepted so far.
logins() { grep -c "Accepted publickey" "$SSHD_DIR/sshd.log"; }

@test "a push makes one ssh connection, and still reports what the remote had" {
	setup_backed_up
	git init -q --bare "$T/far.git"
	backup remote add off "$(sshd_url "$T/far.git")"
	backup push -q off
	old=$(git --git-dir="$REPO" rev-parse refs/backups/web1/daily)
	echo changed >"$T/src/f1"
	backup run -q web1
	before=$(logins)
	run --separate-stderr backup push --json off
	assert_success
	[ "$(logins)" = $((before + 1)) ]
	OLD=$old NEW=$(git --git-dir="$REPO" rev-parse refs/backups/web1/daily) python3 -c '
import json, os, sys
d = json.load(sys.stdin)
r = [r for r in d["refs"] if r["ref"] == "refs/backups/web1/daily"][0]
assert r["old"] == os.environ["OLD"] and r["new"] == os.environ["NEW"] and r["status"] == "pushed", d
assert d["pushed"] == 1 and 1 <= d["objects"] <= 8 and d["bytes"] > 0, d' <<<"$output"
	# Nothing new: still one connection, and every ref up to date.
	before=$(logins)
	run --separate-stderr backup push --json off
	assert_success
	[ "$(logins)" = $((before + 1)) ]
	python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["pushed"]==0 and d["objects"]==0 and all(r["status"]=="up-to-date" and r["old"]==r["new"] for r in d["refs"]), d' <<<"$output"
	both_clean "$T/far.git"
}

@test "a clone and a fetch make one ssh connection each, and take only slots and the state" {
	setup_backed_up
	git init -q --bare "$T/far.git"
	backup remote add off "$(sshd_url "$T/far.git")"
	backup push -q off
	# A ref that is no slot, with an object of its own: it does not come.
	junk=$(echo junk-only-here | git --git-dir="$T/far.git" hash-object -w --stdin)
	git --git-dir="$T/far.git" update-ref refs/heads/junk "$(git --git-dir="$T/far.git" -c user.name=t -c user.email=t@t commit-tree \
		"$(printf '100644 blob %s\tj\n' "$junk" | git --git-dir="$T/far.git" mktree)" -m junk)"
	new_host
	before=$(logins)
	run backup clone "$(sshd_url "$T/far.git")"
	assert_success
	[ "$(logins)" = $((before + 1)) ]
	[ "$(git --git-dir="$T/new/repo" rev-parse refs/backups/web1/daily)" = \
	  "$(git --git-dir="$REPO" rev-parse refs/backups/web1/daily)" ]
	[ "$(git --git-dir="$T/new/repo" rev-parse refs/backup/state)" = \
	  "$(git --git-dir="$REPO" rev-parse refs/backup/state)" ]
	run git --git-dir="$T/new/repo" cat-file -e "$junk"
	assert_failure
	[ -z "$(git --git-dir="$T/new/repo" for-each-ref refs/backup-fetch refs/heads)" ]
	# A new backup on the remote: the fetch brings it over one connection.
	(export BACKUP_CONFIG=$T/backup.conf
	 echo changed >"$T/src/f1"
	 backup run -q web1 --snapshot
	 backup push -q off)
	before=$(logins)
	run backup fetch --json origin
	assert_success
	[ "$(logins)" = $((before + 1)) ]
	python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["fetched"]==1 and d["objects"]>=1 and d["bytes"]>0, d' <<<"$output"
	[ "$(git --git-dir="$T/new/repo" rev-parse refs/backups/web1/snapshot)" = \
	  "$(git --git-dir="$REPO" rev-parse refs/backups/web1/snapshot)" ]
	# Nothing new: one connection, nothing fetched.
	before=$(logins)
	run backup fetch origin
	assert_success
	assert_output "up to date with remote 'origin'"
	[ "$(logins)" = $((before + 1)) ]
	[ -z "$(git --git-dir="$T/new/repo" for-each-ref refs/backup-fetch refs/heads)" ]
	[ -z "$(ls -A "$T/new/repo/backup/locks" | grep trace)" ]
	run backup check --read-data
	assert_success
	run git --git-dir="$T/new/repo" fsck --full --no-progress
	assert_success
}

@test "a ref the remote refuses is named, exit 1, and not reported pushed" {
	setup_backed_up
	backup run -q web1 --snapshot
	git init -q --bare "$T/far.git"
	# A per-ref hook: the daily slot goes in, the snapshot is refused.
	cat >"$T/far.git/hooks/update" <<'HOOK'
#!/bin/sh
case $1 in */snapshot) echo "denied: $1 is not for this receiver" >&2; exit 1;; esac
exit 0
HOOK
	chmod +x "$T/far.git/hooks/update"
	backup remote add off "$(sshd_url "$T/far.git")"
	run -1 backup push off
	assert_output --partial "remote: denied: refs/backups/web1/snapshot is not for this receiver"
	assert_output --partial "backup: remote 'off' refused refs/backups/web1/snapshot (web1 snapshot): hook declined"
	assert_line --regexp "^web1 daily [0-9a-f]{12} pushed"
	refute_line --regexp "^web1 snapshot"
	refute_output --partial "pushed 2"
	run git --git-dir="$T/far.git" rev-parse --verify -q refs/backups/web1/snapshot
	assert_failure
	[ "$(git --git-dir="$T/far.git" rev-parse refs/backups/web1/daily)" = "$(git --git-dir="$REPO" rev-parse refs/backups/web1/daily)" ]
	run -1 --separate-stderr backup push --json off
	python3 -c '
import json, sys
d = json.load(sys.stdin)
assert d["pushed"] == 0 and d["refused"] == 1, d
st = {r["ref"]: r["status"] for r in d["refs"]}
assert st["refs/backups/web1/snapshot"] == "refused" and st["refs/backups/web1/daily"] == "up-to-date", d' <<<"$output"
	both_clean "$T/far.git"
}

@test "a remote that hides the service state keeps its own; the slots still go" {
	setup_backed_up
	git init -q --bare "$T/far.git"
	# As a receiver does: every ref hidden but the machine's slots.
	git --git-dir="$T/far.git" config --add receive.hideRefs refs/backup/
	backup remote add off "$T/far.git"
	run backup push off
	assert_success
	assert_output --partial "remote 'off' keeps its own service state"
	assert_line --partial "web1 daily"
	run git --git-dir="$T/far.git" rev-parse --verify -q refs/backup/state
	assert_failure
	run git --git-dir="$REPO" config remote.off.pushState
	assert_output false
	head -c 1000 /dev/urandom >"$T/src/f1"
	backup run -q web1
	run backup push off
	assert_success
	refute_output --partial "service state"
	both_clean "$T/far.git"
}

@test "a changed host key refuses the push" {
	setup_backed_up
	git init -q --bare "$T/far.git"
	backup remote add off "$(sshd_url "$T/far.git")"
	ssh-keygen -q -t ed25519 -N '' -f "$T/other"
	printf '[127.0.0.1]:%s %s\n' "$SSHD_PORT" "$(cut -d' ' -f1,2 "$T/other.pub")" >"$SSHD_DIR/known_hosts"
	run -1 backup push off
	assert_output --partial "cannot reach remote 'off'"
	assert_output --partial "Host key verification failed"
	run git --git-dir="$T/far.git" for-each-ref
	assert_output ""
	# remote.NAME.sshCommand is the way to give this remote its own ssh.
	sshd_use_key client
	printf '[127.0.0.1]:%s %s\n' "$SSHD_PORT" "$(cut -d' ' -f1,2 "$SSHD_DIR/host_ed25519.pub")" >"$T/good_hosts"
	git --git-dir="$REPO" config remote.off.sshCommand "ssh -F $SSHD_DIR/ssh_config -o UserKnownHostsFile=$T/good_hosts"
	run backup push off
	assert_success
	both_clean "$T/far.git"
}

# Makes the client's ssh slow (about 1 MB/s towards the remote), so that a
# push can be cut in the middle of its transfer. The relay ends with ssh.
slow_ssh() {
	cat >"$T/slowssh" <<SH
#!/usr/bin/env python3
import os, subprocess, sys, threading, time
p = subprocess.Popen(["ssh", "-F", "$SSHD_DIR/ssh_config"] + sys.argv[1:], stdin=subprocess.PIPE)
def relay():
    try:
        while True:
            b = os.read(0, 32768)
            if not b:
                break
            p.stdin.write(b)
            p.stdin.flush()
            time.sleep(0.03)
        p.stdin.close()
    except OSError:
        pass
threading.Thread(target=relay, daemon=True).start()
os._exit(p.wait())
SH
	chmod +x "$T/slowssh"
	export GIT_SSH_COMMAND=$T/slowssh
}

# Waits until the remote $1 is receiving a pack into its quarantine.
wait_receiving() {
	local i
	for i in $(seq 1 600); do
		compgen -G "$1/objects/tmp_objdir-incoming-*/pack/tmp_pack_*" >/dev/null && return 0
		sleep 0.05
	done
	return 1
}

# A cut push leaves its quarantine folder on the far end (git does not
# remove it when the connection dies; git prune does, two weeks later):
# checks it holds no pack that git would read, and removes it.
drop_quarantine() {
	run find "$1/objects/pack" -name '*.idx' -newer "$1/HEAD"
	assert_output ""
	rm -rf "$1"/objects/tmp_objdir-incoming-*
}

@test "a push killed mid-transfer, or its sshd killed, leaves both ends clean; the next push completes" {
	setup_backed_up
	git init -q --bare "$T/far.git"
	git --git-dir="$T/far.git" config receive.unpackLimit 1
	backup remote add off "$(sshd_url "$T/far.git")"
	slow_ssh
	# The whole job at once, as a power cut would: backup, git, ssh.
	setsid "$BK" -q push off &
	pid=$!
	wait_receiving "$T/far.git"
	kill -9 -- -"$pid"
	wait "$pid" || true
	drop_quarantine "$T/far.git"
	both_clean "$T/far.git"
	run git --git-dir="$T/far.git" for-each-ref
	assert_output ""
	# The far end's session dies in the middle instead.
	"$BK" -q push off 2>"$T/err" &
	pid=$!
	wait_receiving "$T/far.git"
	pkill -9 -P "$SSHD_PID"
	st=0
	wait "$pid" || st=$?
	[ "$st" -eq 1 ]
	drop_quarantine "$T/far.git"
	run cat "$T/err"
	assert_output --partial "cannot push to remote 'off'"
	both_clean "$T/far.git"
	run git --git-dir="$T/far.git" for-each-ref
	assert_output ""
	sshd_use_key client
	run backup push off
	assert_success
	assert_line --partial "web1 daily"
	[ "$(git --git-dir="$T/far.git" rev-parse refs/backups/web1/daily)" = "$(git --git-dir="$REPO" rev-parse refs/backups/web1/daily)" ]
	both_clean "$T/far.git"
}

@test "push over ssh, then clone on a new host: list, restore and drill work as on the original" {
	setup_backed_up
	make_torture_tree "$T/src/torture"
	backup schedule -q web1 --window W6 --day friday
	backup run -q web1
	backup run -q web1 --snapshot --label before-upgrade
	git init -q --bare "$T/far.git"
	backup remote add off "$(sshd_url "$T/far.git")"
	backup push -q off
	both_clean "$T/far.git"
	old_list=$(backup list --json)
	new_host
	run backup clone "$(sshd_url "$T/far.git")"
	assert_success
	assert_line "repository '$T/new/repo' made from $(sshd_url "$T/far.git"); its remote 'origin' names it"
	run backup list --json
	assert_output "$old_list"
	# The machine files are the admin's (configuration management); the
	# schedule is service state and came with the clone.
	define_machine_at() { printf '[machine]\n\tplan = 10G\n[disk "root"]\n\tsource = %s\n\tsize = 1G\n[profile "default"]\n\troot = sda\n\tsda = root\n' "$2" >"$T/new/machines/$1.conf"; }
	define_machine_at web1 "$T/src"
	run backup schedule web1
	assert_output --partial "W6"
	assert_output --partial "friday"
	run backup remote list
	assert_output "origin	$(sshd_url "$T/far.git")"
	# Single paths, a new machine, an existing one: as on the original.
	backup restore -q web1 --path / --to "$T/out"
	run tree_diff "$T/src" "$T/out"
	assert_output ""
	backup restore -q web1:snapshot --new web9
	run tree_diff "$T/src" "$T/new/mroot/web9/disks/root"
	assert_output ""
	mkdir -p "$T/other"
	define_machine_at web8 "$T/other"
	run backup restore web1 --existing web8
	assert_success
	run backup drill web1
	assert_success
	run backup check --read-data
	assert_success
	run git --git-dir="$T/new/repo" fsck --full --no-progress
	assert_success
	# The new host backs up and pushes to the same remote.
	echo changed >"$T/src/etc/hostname"
	run backup run web1
	assert_success
	run backup push origin
	assert_success
	[ "$(git --git-dir="$T/far.git" rev-parse refs/backups/web1/daily)" = "$(git --git-dir="$T/new/repo" rev-parse refs/backups/web1/daily)" ]
}

@test "clone refuses a folder in use, and a cut clone leaves no repository" {
	setup_backed_up
	head -c 3000000 /dev/urandom >"$T/src/big2"
	backup run -q web1
	git init -q --bare "$T/far.git"
	backup remote add off "$(sshd_url "$T/far.git")"
	backup push -q off
	run -1 backup clone "$(sshd_url "$T/far.git")" "$REPO"
	assert_output --partial "'$REPO' already exists and is not an empty folder"
	run -2 backup clone 'https://example.com/x'
	run -2 backup clone
	new_host
	slow_ssh
	setsid "$BK" -q clone "$(sshd_url "$T/far.git")" &
	pid=$!
	for i in $(seq 1 600); do
		compgen -G "$T/new/.repo.clone-*/objects/pack/tmp_pack_*" >/dev/null && break
		compgen -G "$T/new/.repo.clone-*/objects/pack/.tmp-*" >/dev/null && break
		sleep 0.05
	done
	kill -9 -- -"$pid"
	wait "$pid" || true
	[ ! -e "$T/new/repo" ]
	run -1 backup list
	assert_output --partial "no repository at '$T/new/repo'"
	sshd_use_key client
	run backup clone "$(sshd_url "$T/far.git")"
	assert_success
	run backup check
	assert_success
}

@test "fetch never puts one machine's backup in another's slot, nor replaces a newer backup" {
	setup_backed_up
	define_machine web2 "$T/src"
	backup enable -q web2
	backup run -q web2
	git init -q --bare "$T/far.git"
	backup remote add far "$T/far.git"
	backup push -q far
	new_host
	backup clone -q "$T/far.git"
	# The copy gets a newer web1 backup; the remote gets a wrong web2 slot
	# and a newer web1 snapshot.
	export BACKUP_CONFIG=$T/backup.conf
	echo newer >"$T/src/etc/hostname"
	backup run -q web1 --snapshot
	backup push -q far
	web1=$(git --git-dir="$REPO" rev-parse refs/backups/web1/daily)
	git --git-dir="$T/far.git" update-ref refs/backups/web2/daily "$web1"
	new_host
	define_machine web1 "$T/src"
	mv "$MACHINES/web1.conf" "$T/new/machines/web1.conf"
	backup run -q web1
	local_daily=$(git --git-dir="$T/new/repo" rev-parse refs/backups/web1/daily)
	run -1 backup fetch origin
	assert_output --partial "refs/backups/web2/daily (web2 daily) from remote 'origin' not taken: $web1 is a backup of machine 'web1', not of 'web2'"
	assert_output --partial "web1 daily ${local_daily:0:12} kept"
	assert_output --partial "web1 snapshot"
	[ "$(git --git-dir="$T/new/repo" rev-parse refs/backups/web1/daily)" = "$local_daily" ]
	[ "$(git --git-dir="$T/new/repo" rev-parse refs/backups/web1/snapshot)" = "$(git --git-dir="$REPO" rev-parse refs/backups/web1/snapshot)" ]
	[ "$(git --git-dir="$T/new/repo" rev-parse refs/backups/web2/daily)" != "$web1" ]
	run backup check
	assert_success
	run git --git-dir="$T/new/repo" fsck --full --no-progress
	assert_success
}

@test "run --push backs up then pushes; a failed push keeps the backup and exits 5" {
	setup_backed_up
	git init -q --bare "$T/far.git"
	backup remote add far "$T/far.git"
	echo one >"$T/src/etc/motd"
	run backup run web1 --push
	assert_success
	assert_line --regexp "^web1 daily [0-9a-f]{40}: "
	assert_line --regexp "^web1 daily [0-9a-f]{12} pushed"
	[ "$(git --git-dir="$T/far.git" rev-parse refs/backups/web1/daily)" = "$(git --git-dir="$REPO" rev-parse refs/backups/web1/daily)" ]
	# A remote that cannot be reached: the backup is taken and kept, exit 5.
	backup remote add gone "$T/nowhere.git"
	echo two >"$T/src/etc/motd"
	before=$(git --git-dir="$REPO" rev-parse refs/backups/web1/daily)
	run -5 backup run web1 --push=gone
	assert_output --partial "cannot reach remote 'gone'"
	assert_output --partial "backed up, but the push to 'gone' failed; the backups are kept here"
	after=$(git --git-dir="$REPO" rev-parse refs/backups/web1/daily)
	[ "$before" != "$after" ]
	backup restore -q web1 --path /etc/motd --to "$T/out"
	[ "$(cat "$T/out/etc/motd")" = two ]
	run backup check
	assert_success
	# machine.push makes every run push, without --push; --json holds both.
	define_machine web1 "$T/src" '[machine]' '	push = far'
	echo three >"$T/src/etc/motd"
	run --separate-stderr backup run --json web1
	assert_success
	python3 -c '
import json, sys
d = json.load(sys.stdin)
assert len(d["backups"]) == 1 and d["backups"][0]["machine"] == "web1", d
assert len(d["pushes"]) == 1 and d["pushes"][0]["remote"] == "far" and d["pushes"][0]["pushed"] == 1, d' <<<"$output"
	[ "$(git --git-dir="$T/far.git" rev-parse refs/backups/web1/daily)" = "$(git --git-dir="$REPO" rev-parse refs/backups/web1/daily)" ]
	run -2 backup run web1 --push='bad name'
	run git --git-dir="$T/far.git" fsck --full --no-progress
	assert_success
	run git --git-dir="$REPO" fsck --full --no-progress
	assert_success
}

@test "run --push over ssh to a remote that refuses: exit 5, backup kept" {
	setup_backed_up
	git init -q --bare "$T/far.git"
	printf '#!/bin/sh\necho "denied: full" >&2\nexit 1\n' >"$T/far.git/hooks/pre-receive"
	chmod +x "$T/far.git/hooks/pre-receive"
	backup remote add off "$(sshd_url "$T/far.git")"
	echo x >"$T/src/etc/motd"
	before=$(git --git-dir="$REPO" rev-parse refs/backups/web1/daily)
	run -5 backup run -q web1 --push=off
	assert_output --partial "remote: denied: full"
	assert_output --partial "refused refs/backups/web1/daily"
	[ "$(git --git-dir="$REPO" rev-parse refs/backups/web1/daily)" != "$before" ]
	run backup check
	assert_success
}

@test "schedule --print runs the push in the same job when the machine is pushed" {
	setup_repo
	run backup schedule web1 --print cron
	refute_output --partial "--push"
	define_machine web1 "$T/src" '[machine]' '	push = offsite'
	run backup schedule web1 --print cron
	assert_output --partial " run --wait 3600 --push=offsite web1 && "
	refute_output --partial "rotate --wait 3600 --push"
	run backup schedule web1 --print systemd
	assert_line --regexp '^ExecStart=.* run --wait 3600 --push=offsite web1$'
	printf '[backup]\n\tpush = usb\n' >>"$BACKUP_CONFIG"
	define_machine web2 "$T/src"
	run backup schedule web2 --print cron
	assert_output --partial " run --wait 3600 --push=usb web2 && "
}

@test "a format-1 repository is upgraded by its first push, so its clone has the state" {
	setup_backed_up
	backup schedule -q web1 --window W6 --day tue
	# Format 1, as 12-format makes it: the state in backup/, no state ref.
	git --git-dir="$REPO" cat-file blob refs/backup/state:state >"$REPO/backup/state"
	echo "backup repository format 1" >"$REPO/backup/format"
	chmod 600 "$REPO/backup/state" "$REPO/backup/format"
	git --git-dir="$REPO" update-ref -d refs/backup/state
	git init -q --bare "$T/far.git"
	backup remote add far "$T/far.git"
	# A copy of it made before the upgrade has no state: the clone says so.
	git --git-dir="$REPO" push -q far
	new_host
	run backup clone "$T/far.git" "$T/new/old"
	assert_success
	assert_output --partial "the remote has no service state"
	export BACKUP_CONFIG=$T/backup.conf
	run backup push far
	assert_success
	assert_output --partial "upgraded repository '$REPO' to format 2"
	assert_output --partial "service state pushed to 'far'"
	new_host
	define_machine web1 "$T/src"
	mv "$MACHINES/web1.conf" "$T/new/machines/"
	run backup clone "$T/far.git"
	assert_success
	refute_output --partial "no service state"
	run backup schedule web1
	assert_output --partial "W6"
	run backup list
	assert_line --partial "web1"
	run git --git-dir="$T/far.git" fsck --full --no-progress
	assert_success
}

@test "push to an append-only receiver: slots go, its own state is kept, a refused slot is named" {
	setup_backed_up
	define_machine web2 "$T/src"
	backup enable -q web2
	backup run -q web2
	backup init -q --receiver "$T/rcv"
	sshd_new_key k1
	backup receiver authorize "$T/rcv" --machine web1 --append "$SSHD_DIR/ak/root" "$SSHD_DIR/k1.pub" -q
	sshd_use_key k1
	backup remote add vault "$(sshd_url "$T/rcv")"
	# web2 is not this key's: the receiver hides it and refuses it, named;
	# web1 goes; the state is the receiver's own, which is no error.
	run -1 backup push vault
	assert_output --partial "backup: remote 'vault' refused refs/backups/web2/daily (web2 daily): deny updating a hidden ref"
	assert_output --partial "remote 'vault' keeps its own service state"
	assert_line --regexp "^web1 daily [0-9a-f]{12} pushed"
	[ "$(git --git-dir="$T/rcv" rev-parse refs/backups/web1/daily)" = "$(git --git-dir="$REPO" rev-parse refs/backups/web1/daily)" ]
	run git --git-dir="$T/rcv" rev-parse --verify -q refs/backups/web2/daily
	assert_failure
	run git --git-dir="$T/rcv" rev-parse --verify -q refs/backup/state
	assert_success
	[ "$(git --git-dir="$T/rcv" rev-parse refs/backup/state)" != "$(git --git-dir="$REPO" rev-parse refs/backup/state)" ]
	# Its own machine alone: nothing refused, the state not offered again.
	run backup push vault web1
	assert_success
	refute_output --partial "refused"
	refute_output --partial "service state"
	# A rewind is the hook's to refuse: named with its words.
	git --git-dir="$REPO" update-ref refs/backups/web1/snapshot "$(git --git-dir="$REPO" rev-parse refs/backups/web2/daily)"
	run -1 backup push vault web1
	assert_output --partial "is one of machine 'web2'"
	assert_output --partial "refused refs/backups/web1/snapshot (web1 snapshot)"
	git --git-dir="$REPO" update-ref -d refs/backups/web1/snapshot
	# A 1 % change sends about 1 %, as to a plain copy.
	head -c 100000 /dev/urandom >"$T/src/f7"
	backup run -q web1
	run --separate-stderr backup push --json vault web1
	assert_success
	python3 -c '
import json, sys
d = json.load(sys.stdin)
assert d["pushed"] == 1 and d["refused"] == 0, d
assert d["bytes"] <= 100000 + 40000, d' <<<"$output"
	run backup --repo "$T/rcv" check
	assert_success
	run git --git-dir="$T/rcv" fsck --full --no-progress
	assert_success
}
