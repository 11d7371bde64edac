#!/usr/bin/env bats
# The command line itself: dispatch, multicall links, help, usage errors.

load test_helper

@test "backup --list prints every command with a summary" {
	run backup --list
	assert_success
	assert_line --regexp '^init	'
	assert_line --regexp '^run	'
	assert_line --regexp '^restore	'
	assert_line --regexp '^check	'
}

@test "every command answers --help with its usage" {
	for c in $(backup --list | cut -f1); do
		run backup "$c" --help
		assert_success
		assert_output --partial "usage: backup $c"
	done
}

@test "a backup-COMMAND link is the same as backup COMMAND" {
	ln -s "$BK" "$T/backup-list"
	run "$T/backup-list" --help
	assert_success
	assert_output --partial "usage: backup list"
}

@test "unknown commands and options are usage errors (exit 2)" {
	run -2 backup frobnicate
	assert_output --partial "'frobnicate' is not a backup command"
	setup_config
	run -2 backup list --frob
	assert_output --partial "unknown option '--frob'"
	run -2 backup
}

@test "--wait takes a number of seconds, 0 or more, in every command that waits" {
	setup_config
	for c in "run web1" "rotate" "cancel --yes web1" "restore web1 --existing web2"; do
		run -2 backup $c --wait -1
		assert_output --partial "backup: --wait takes a number of seconds >= 0"
		run -2 backup $c --wait soon
		assert_output --partial "option '--wait' wants a number, not 'soon'"
	done
}

@test "--version prints the version" {
	run backup --version
	assert_success
	assert_output --regexp '^backup [0-9]+\.[0-9]+'
}

@test "every command has a man page whose synopsis matches its usage" {
	for c in $(backup --list | cut -f1); do
		page=$BATS_TEST_DIRNAME/../man/backup-$c.1
		[ -f "$page" ] || fail "no man page for $c"
		backup "$c" --help | sed -n 's/^\(usage\|   or\): //p' | while read -r line; do
			first=$(echo "$line" | awk '{print $1, $2}')
			# The page writes a command's hyphens as "\-", as roff wants.
			sed 's/\\-/-/g' "$page" | grep -qF -- "$first" || fail "man page of $c lacks '$line'"
		done
	done
}

@test "the completions know every command and read options from --list-opts" {
	for c in $(backup --list | cut -f1); do
		run backup "$c" --list-opts
		assert_success
	done
	run backup run --list-opts
	assert_output --partial "--snapshot"
	assert_output --partial "--wait="
	for f in backup.bash _backup backup.fish; do
		grep -q -- "--list" "$BATS_TEST_DIRNAME/../completions/$f" || fail "$f does not ask backup --list"
		grep -q -- "--list-opts" "$BATS_TEST_DIRNAME/../completions/$f" || fail "$f does not ask --list-opts"
	done
}

@test "bash completion completes commands and options" {
	run bash -c "
		backup() { '$BK' \"\$@\"; }
		source '$BATS_TEST_DIRNAME/../completions/backup.bash'
		COMP_WORDS=(backup re); COMP_CWORD=1; _backup; echo \"\${COMPREPLY[*]}\"
		COMP_WORDS=(backup run --sn); COMP_CWORD=2; _backup; echo \"\${COMPREPLY[*]}\""
	assert_success
	assert_line --index 0 --partial restore
	assert_line --index 1 --partial --snapshot
}

@test "a full stdout is an error, not silence" {
	setup_repo
	run bash -c "'$BK' list --json > /dev/full"
	assert_failure 1
	assert_output --partial "cannot write the output"
}

@test "make install puts the binary, a link per command, man pages and completions in place" {
	run make -C "$BATS_TEST_DIRNAME/.." --no-print-directory install DESTDIR="$T/inst" PREFIX=/usr
	assert_success
	for c in $(backup --list | cut -f1); do
		[ -L "$T/inst/usr/bin/backup-$c" ] || fail "no link backup-$c"
		[ -f "$T/inst/usr/share/man/man1/backup-$c.1" ] || fail "no man page for $c"
	done
	run "$T/inst/usr/bin/backup-list" --help
	assert_output --partial "usage: backup list"
	[ -f "$T/inst/usr/share/man/man5/backup.conf.5" ]
	[ -f "$T/inst/usr/share/bash-completion/completions/backup" ]
	[ -f "$T/inst/usr/share/zsh/vendor-completions/_backup" ]
	[ -f "$T/inst/usr/share/fish/vendor_completions.d/backup.fish" ]
}

@test "bash completion offers machine names for the commands that take one" {
	setup_config
	define_machine web1 /tmp
	define_machine web2 /tmp
	for c in run rotate enable cancel schedule list; do
		run bash -c "
			backup() { '$BK' \"\$@\"; }
			source '$BATS_TEST_DIRNAME/../completions/backup.bash'
			COMP_WORDS=(backup $c ''); COMP_CWORD=2; _backup; echo \"\${COMPREPLY[*]}\""
		assert_output --partial web1
		assert_output --partial web2
	done
	run bash -c "
		backup() { '$BK' \"\$@\"; }
		source '$BATS_TEST_DIRNAME/../completions/backup.bash'
		COMP_WORDS=(backup cancel web1 ''); COMP_CWORD=3; _backup; echo \"[\${COMPREPLY[*]}]\""
	assert_output "[]"
}
