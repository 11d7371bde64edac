# A real OpenSSH server on a free loopback port, for the tests of remotes
# and receivers (load it after test_helper.bash). Throwaway ed25519 keys,
# its own known_hosts, nothing outside $1 and $HOME/.ssh. Measured set-up:
# ../shared/offsite/MEASURED.md, appendix B.
#
#   sshd_start DIR      starts sshd for logins as root with the client key
#                       $DIR/client (authorised with no restriction), and
#                       writes the client's ssh config $DIR/ssh_config
#                       (exported as GIT_SSH_COMMAND="ssh -F ...": ssh
#                       reads ~/.ssh from the passwd entry, not $HOME) so
#                       that `git` reaches it as host "127.0.0.1" on
#                       $SSHD_PORT, checking its host key against
#                       $DIR/known_hosts. Sets SSHD_DIR, SSHD_PORT,
#                       SSHD_PID, SSHD_KEY, GIT_SSH_COMMAND. With
#                       SSHD_SFTP=1 it also serves sftp (Debian's default
#                       subsystem line), for restic in make bench-offsite.
#                       SSHD_PERMIT_ENV=PATTERNS: sshd_config's
#                       PermitUserEnvironment (environment="..." options
#                       of authorized_keys lines), e.g. HOME.
#   sshd_stop           stops it (call it from teardown).
#   sshd_new_key NAME   makes the client key $SSHD_DIR/NAME (and NAME.pub).
#   sshd_authorize LINE replaces the authorized_keys of root with LINE
#                       (an options-prefixed key line, for receivers).
#   sshd_use_key NAME   makes the client present key NAME instead.
#   sshd_url PATH       prints ssh://root@127.0.0.1:PORT/PATH.

sshd_start() {
	SSHD_DIR=$(cd "$1" 2>/dev/null && pwd || { mkdir -p "$1" && cd "$1" && pwd; })
	local try log
	mkdir -p "$SSHD_DIR/ak" /run/sshd
	chmod 755 /run/sshd
	ssh-keygen -q -t ed25519 -N '' -C host -f "$SSHD_DIR/host_ed25519"
	sshd_new_key client
	SSHD_KEY=$SSHD_DIR/client
	cp "$SSHD_KEY.pub" "$SSHD_DIR/ak/root"
	log=$SSHD_DIR/sshd.log
	for try in 1 2 3 4 5 6 7 8 9 10; do
		SSHD_PORT=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
		cat >"$SSHD_DIR/sshd_config" <<EOF
Port $SSHD_PORT
ListenAddress 127.0.0.1
HostKey $SSHD_DIR/host_ed25519
PidFile $SSHD_DIR/sshd.pid
AuthorizedKeysFile $SSHD_DIR/ak/%u
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PermitRootLogin prohibit-password
LogLevel VERBOSE
${SSHD_SFTP:+Subsystem sftp /usr/lib/openssh/sftp-server}
${SSHD_PERMIT_ENV:+PermitUserEnvironment $SSHD_PERMIT_ENV}
EOF
		: >"$log"
		/usr/sbin/sshd -D -f "$SSHD_DIR/sshd_config" -E "$log" &
		SSHD_PID=$!
		# Up to 30 s: a loaded machine may be slow to start it. One that
		# neither listens nor exits by then is stopped, never waited for.
		local i
		for i in $(seq 1 1500); do
			kill -0 "$SSHD_PID" 2>/dev/null || break
			grep -q "Server listening" "$log" && break
			sleep 0.02
		done
		if kill -0 "$SSHD_PID" 2>/dev/null && grep -q "Server listening" "$log"; then
			break
		fi
		kill "$SSHD_PID" 2>/dev/null || true
		wait "$SSHD_PID" 2>/dev/null || true
		SSHD_PID=
	done
	[ -n "$SSHD_PID" ] || { cat "$log" >&2; echo "sshd did not start" >&2; return 1; }
	printf '[127.0.0.1]:%s %s\n' "$SSHD_PORT" "$(cut -d' ' -f1,2 "$SSHD_DIR/host_ed25519.pub")" \
		>"$SSHD_DIR/known_hosts"
	sshd_use_key client
	export SSHD_DIR SSHD_PORT SSHD_PID SSHD_KEY
}

sshd_stop() {
	[ -n "${SSHD_PID:-}" ] || return 0
	kill "$SSHD_PID" 2>/dev/null || true
	wait "$SSHD_PID" 2>/dev/null || true
	SSHD_PID=
}

sshd_new_key() {
	rm -f "$SSHD_DIR/$1" "$SSHD_DIR/$1.pub"
	ssh-keygen -q -t ed25519 -N '' -C "$1" -f "$SSHD_DIR/$1"
}

sshd_authorize() {
	printf '%s\n' "$1" >"$SSHD_DIR/ak/root"
}

# The client side as a user would set it up in ~/.ssh/config, with no
# StrictHostKeyChecking=no anywhere.
sshd_use_key() {
	cat >"$SSHD_DIR/ssh_config" <<EOF
Host 127.0.0.1
	Port $SSHD_PORT
	User root
	IdentityFile $SSHD_DIR/$1
	IdentitiesOnly yes
	UserKnownHostsFile $SSHD_DIR/known_hosts
	StrictHostKeyChecking yes
	BatchMode yes
EOF
	chmod 600 "$SSHD_DIR/ssh_config"
	export GIT_SSH_COMMAND="ssh -F $SSHD_DIR/ssh_config"
}

sshd_url() {
	printf 'ssh://root@127.0.0.1:%s%s\n' "$SSHD_PORT" "$1"
}
