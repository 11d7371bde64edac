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

@test "a ref the remote refuses is named, exit 1, and not reported pushed" {
	setup_backed_up
	backup run -q web1 --snapshot
	git init -q --bare "$T/far.git"
	cat >"$T/far.git/hooks/pre-receive" <<'HOOK'
#!/bin/sh
rc=0
while read old new ref; do
	case $ref in */snapshot) echo "denied: $ref is not for this receiver" >&2; rc=1;; esac
done
exit $rc
HOOK
	chmod +x "$T/far.git/hooks/pre-receive"
	backup remote add off "$(sshd_url "$T/far.git")"
	run -1 backup push off
	assert_output --partial "remote: denied: refs/backups/web1/snapshot is not for this receiver"
	assert_output --partial "backup: remote 'off' refused refs/backups/web1/snapshot (web1 snapshot): pre-receive hook declined"
	refute_output --partial "pushed"
	run git --git-dir="$T/far.git" rev-parse --verify -q refs/backups/web1/snapshot
	assert_failure
	run -1 --separate-stderr backup push --json off
	python3 -c '
import json, sys
d = json.load(sys.stdin)
assert d["pushed"] == 0 and d["refused"] == 2, d
assert all(r["status"] == "refused" for r in d["refs"]), d' <<<"$output"
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
