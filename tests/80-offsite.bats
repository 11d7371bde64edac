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
