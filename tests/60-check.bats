#!/usr/bin/env bats
# backup check: presence of every object; with --read-data, every byte.

load test_helper

setup() { setup_repo web1; }

@test "check passes on a sound repository and says what it read" {
	make_torture_tree "$T/src"
	backup run -q web1
	run backup check
	assert_success
	assert_output --partial "is sound"
	run backup check --read-data --json
	assert_success
	[ "$(echo "$output" | json_field ok)" = True ]
	[ "$(echo "$output" | json_field backups)" = 1 ]
}

@test "a flipped byte in a pack: check --read-data names it, restore refuses" {
	flipped_pack_byte_is_named
	run -1 backup restore web1 --new r1
	[ ! -e "$MACHINES/r1.conf" ]
	[ ! -e "$MROOT/r1" ]
}

@test "a missing pack is found by the plain check" {
	echo x >"$T/src/a"
	backup run -q web1
	rm -f "$REPO"/objects/pack/*
	run -1 backup check
	assert_output --partial "damaged"
}

@test "a damaged pack index fails its checksum" {
	echo x >"$T/src/a"
	backup run -q web1
	# Flip a bit of the first object id (bytes 1032-1051), which every index
	# has: writing a fixed byte at a fixed offset changed nothing when the
	# byte was already that value, or appended one to a one-object index.
	for idx in "$REPO"/objects/pack/*.idx; do
		flip_byte "$idx" 1040
	done
	run -1 backup check
	assert_output --partial "fails its checksum"
}

@test "a damaged dedup index is reported and --repair-index rebuilds it" {
	head -c 2000000 /dev/urandom >"$T/src/a"
	backup run -q web1
	sdx=$(ls "$REPO"/backup/dedup/*.sdx | head -1)
	chmod u+w "$sdx"
	printf '\x01' | dd of="$sdx" bs=1 seek=20 conv=notrunc status=none
	run -1 backup check
	assert_output --partial "the dedup index of pack"
	assert_output --partial "--repair-index"
	run backup check --repair-index --read-data
	assert_success
	assert_output --partial "rebuilt the dedup index"
	# Deduplication works again: the same bytes are not stored twice.
	cp "$T/src/a" "$T/src/b"
	run backup run --json web1
	[ "$(echo "$output" | json_field bytes_stored)" -lt 10000 ]
}

@test "a dedup index entry naming the wrong bytes is caught by --read-data" {
	head -c 100000 /dev/urandom >"$T/src/a"
	backup run -q web1
	# Rewrite every sidecar with wrong SHA-256 values but a valid checksum.
	for f in "$REPO"/backup/dedup/*.sdx; do
		chmod u+w "$f"
		python3 - "$f" <<'PY'
import hashlib, sys
p = sys.argv[1]
b = bytearray(open(p, 'rb').read())
n = int.from_bytes(b[8:12], 'big')
for i in range(n):
    b[12 + 52 * i] ^= 0xff
body = bytes(b[:-32])
open(p, 'wb').write(body + hashlib.sha256(body).digest())
PY
	done
	run -1 backup check --read-data
	assert_output --partial "names other bytes"
	run backup check --repair-index --read-data
	assert_success
}

@test "check --read-data catches a flipped byte anywhere in packs, indexes and dedup indexes" {
	make_torture_tree "$T/src"
	rm -f "$T/src/sparse" "$T/src/random3m"
	backup run -q web1
	cp -a "$REPO" "$T/repo.orig"
	for f in $(cd "$REPO" && ls objects/pack/*.pack objects/pack/*.idx backup/dedup/*.sdx); do
		size=$(stat -c %s "$REPO/$f")
		for pos in $(python3 -c "import random; random.seed('$f'); print(*sorted(random.sample(range($size), min(8, $size))))"); do
			rm -rf "$REPO" && cp -a "$T/repo.orig" "$REPO"
			flip_byte "$REPO/$f" "$pos"
			run backup check --read-data
			[ "$status" = 1 ] || fail "a flipped byte at $pos of $f went unnoticed: $output"
			assert_output --partial "damaged"
		done
	done
}
