#!/usr/bin/env bats
# Hostile backups (crafted with stock git by tests/craft-backup.py): restore
# never writes outside its target, whatever the backup claims.

load test_helper

setup() {
	setup_repo web1
	mkdir -p "$T/outside"
}

craft() {
	cat >"$T/spec.json"
	python3 "$BATS_TEST_DIRNAME/craft-backup.py" "$REPO" web1 daily "$T/spec.json" >/dev/null
}

assert_outside_untouched() {
	run ls -A "$T/outside"
	assert_output ""
}

@test "a symlink in the backup never redirects what restore writes" {
	craft <<JSON
{"entries": [
  {"name": "escape", "type": "symlink", "target": "$T/outside",
   "as_tree": {"entries": [{"name": "pwned", "type": "file", "content": "x"}]}},
  {"name": "ok", "type": "file", "content": "fine"}
]}
JSON
	run backup restore web1 --new r1
	assert_success
	[ -L "$MROOT/r1/disks/root/escape" ]
	[ "$(cat "$MROOT/r1/disks/root/ok")" = fine ]
	assert_outside_untouched
	run -1 backup restore web1 --path /escape/pwned --to "$T/out"
	assert_outside_untouched
}

@test "names that climb out (.., a/b, absolute) are damage: nothing is restored" {
	for name in .. "x/../../outside/pwned" "$T/outside/pwned"; do
		craft <<JSON
{"entries": [{"name": "$name", "type": "symlink", "target": "$T/outside"}]}
JSON
		run -1 backup restore web1 --new r1
		assert_output --partial "metadata is missing or damaged"
		[ ! -e "$MACHINES/r1.conf" ]
		[ ! -e "$MROOT/r1" ]
		run -1 backup check
		assert_output --partial "damaged: metadata"
		assert_outside_untouched
	done
}

@test "records out of order or named twice are damage" {
	craft <<JSON
{"entries": [{"name": "b", "type": "file", "content": "1"}, {"name": "a", "type": "file", "content": "2"}]}
JSON
	run -1 backup restore web1 --path / --to "$T/out"
	assert_output --partial "damaged"
	craft <<JSON
{"entries": [{"name": "a", "type": "file", "content": "1"}, {"name": "a", "type": "symlink", "target": "/"}]}
JSON
	run -1 backup restore web1 --path / --to "$T/out2"
	assert_output --partial "damaged"
}

@test "a file whose tree entry is a folder is refused, not guessed at" {
	craft <<JSON
{"entries": [
  {"name": "f", "type": "file", "content": "",
   "as_tree": {"entries": [{"name": "sub", "type": "dir", "tree": {"entries": []}}]}},
  {"name": "g", "type": "file", "content": "good"}
]}
JSON
	run -1 backup restore web1 --path / --to "$T/out"
	[ "$(cat "$T/out/g")" = good ]
	assert_outside_untouched
}

@test "a planted symlink in the target is replaced, never followed" {
	craft <<JSON
{"entries": [{"name": "etc", "type": "dir", "tree": {"entries": [{"name": "passwd", "type": "file", "content": "new"}]}}]}
JSON
	mkdir -p "$T/out"
	ln -s "$T/outside" "$T/out/etc"
	backup restore web1 --path / --to "$T/out" -q
	[ -d "$T/out/etc" ] && [ ! -L "$T/out/etc" ]
	[ "$(cat "$T/out/etc/passwd")" = new ]
	assert_outside_untouched
}
