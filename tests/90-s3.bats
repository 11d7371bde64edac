#!/usr/bin/env bats
# The S3 client (lib/s3.c, driven by tests/s3probe) against a real Ceph
# radosgw, started once for this file on free loopback ports
# (tests/ceph.sh) and stopped after it, also when a test fails. The
# transient-failure tests use a small fake server instead, which answers
# 503 or nothing at all on demand.

load test_helper

PROBE=$BATS_TEST_DIRNAME/s3probe

setup_file() {
	export BATS_NO_PARALLELIZE_WITHIN_FILE=true
	[ -x "$PROBE" ] || make -s -C "$BATS_TEST_DIRNAME/.." tests/s3probe >&2
	export CEPH_DIR=$BATS_FILE_TMPDIR/ceph
	local msg
	if ! msg=$("$BATS_TEST_DIRNAME/ceph.sh" start "$CEPH_DIR" 2>&1); then
		echo "$msg" >&2
		return 1
	fi
	# The start-up time, in the TAP stream.
	echo "# ${msg##*$'\n'}" >&3
	. "$CEPH_DIR/env"
	export S3_ENDPOINT AWS_ACCESS_KEY_ID=$S3_ACCESS_KEY AWS_SECRET_ACCESS_KEY=$S3_SECRET_KEY
	export S3_BUCKET=probe-bucket
	export LOG=$BATS_FILE_TMPDIR/all-output
	: >"$LOG"
	"$PROBE" mb
}

teardown_file() {
	"$BATS_TEST_DIRNAME/ceph.sh" stop "$BATS_FILE_TMPDIR/ceph"
	[ -z "${FAKE_PID:-}" ] || kill "$FAKE_PID" 2>/dev/null || true
}

# Runs the driver; everything it prints is also kept in $LOG, which the
# last test searches for secrets.
probe() {
	local rc=0
	$EXEC_PREFIX "$PROBE" "$@" >"$T/probe.out" 2>"$T/probe.err" || rc=$?
	cat "$T/probe.out" "$T/probe.err" >>"$LOG"
	cat "$T/probe.out"
	cat "$T/probe.err" >&2
	return $rc
}

# s3_remote URL: remote "off" of this host's repository (the one
# BACKUP_CONFIG names) is URL, on this file's radosgw.
s3_remote() {
	backup remote add -q off "$1"
	git --git-dir="$(git config -f "$BACKUP_CONFIG" repository.path)" config remote.off.endpoint "$S3_ENDPOINT"
}

# race_pushes MACHINE_A MACHINE_B: this host pushes MACHINE_A and host b
# ($T/b/backup.conf) MACHINE_B to remote off at once, both listing the
# bucket before either writes (BACKUP_TEST_S3_RENDEZVOUS). Both must exit
# 0, meet there and push one slot; their --json in $T/a.out and $T/b.out,
# their errors in $T/a.err and $T/b.err (printed).
race_pushes() {
	local a b ra=0 rb=0

	mkdir "$T/meet"
	BACKUP_TEST_S3_RENDEZVOUS=$T/meet:2 "$BK" push --json off "$1" >"$T/a.out" 2>"$T/a.err" &
	a=$!
	BACKUP_TEST_S3_RENDEZVOUS=$T/meet:2 BACKUP_CONFIG=$T/b/backup.conf "$BK" push --json off "$2" \
		>"$T/b.out" 2>"$T/b.err" &
	b=$!
	wait "$a" || ra=$?
	wait "$b" || rb=$?
	cat "$T/a.err" "$T/b.err"
	[ "$ra" = 0 ] && [ "$rb" = 0 ]
	[ "$(ls "$T/meet" | wc -l)" = 2 ]
	[ "$(json_field pushed <"$T/a.out")" = 1 ]
	[ "$(json_field pushed <"$T/b.out")" = 1 ]
}

# s3_new_host DIR URL: a new host in DIR (new_host) with an empty
# repository whose remote "off" is URL; BACKUP_CONFIG is now its.
s3_new_host() {
	new_host "$1"
	backup init -q
	s3_remote "$2"
}

# Exactly one line on stderr, matching the pattern.
one_line() {
	[ "${#stderr_lines[@]}" = 1 ] || { printf 'stderr has %s lines:\n%s\n' "${#stderr_lines[@]}" "$stderr"; return 1; }
	[[ $stderr == $1 ]] || { printf 'stderr: %s\nwanted: %s\n' "$stderr" "$1"; return 1; }
}

@test "a multi-MiB object goes up and comes back byte for byte, whole and in ranges" {
	head -c 12582917 /dev/urandom >"$T/big"
	run --separate-stderr probe put data/big "$T/big"
	assert_success
	run --separate-stderr probe get data/big "$T/got"
	assert_success
	cmp "$T/big" "$T/got"
	run --separate-stderr probe head data/big
	assert_success
	[ "$(echo "$output" | cut -d' ' -f1)" = 12582917 ]
	# A range from the middle, and the last bytes.
	probe get data/big "$T/range" 5000000 1234567
	cmp "$T/range" <(tail -c +5000001 "$T/big" | head -c 1234567)
	probe get data/big "$T/tail" 12582900 17
	cmp "$T/tail" <(tail -c 17 "$T/big")
	# Virtual-host addressing: the bucket in the host name.
	probe --vhost --endpoint "${S3_ENDPOINT/127.0.0.1/localhost}" get data/big "$T/vhost"
	cmp "$T/big" "$T/vhost"
	# A missing key is ERR_NOTFOUND, and says nothing.
	run --separate-stderr probe get data/none "$T/none"
	assert_failure 2
	assert_output ERR_NOTFOUND
	[ -z "$stderr" ]
}

@test "a create-only put is refused the second time, and the first object stays" {
	echo first >"$T/a"
	echo second >"$T/b"
	run --separate-stderr probe put once/k "$T/a" --create-only
	assert_success
	run --separate-stderr probe put once/k "$T/b" --create-only
	assert_failure 6
	assert_output ERR_EXISTS
	[ -z "$stderr" ]
	probe get once/k "$T/got"
	cmp "$T/a" "$T/got"
}

@test "a listing pages through more keys than one page holds" {
	echo x >"$T/x"
	for i in $(seq -w 1 11); do
		probe put "many/k$i" "$T/x" >/dev/null
	done
	probe put "other/k" "$T/x" >/dev/null
	run --separate-stderr probe --stats --max-keys 3 ls many/
	assert_success
	[ "${#lines[@]}" = 11 ]
	[ "${lines[0]}" = "many/k01 2" ]
	[ "${lines[10]}" = "many/k11 2" ]
	# 11 keys at 3 a page: 4 requests.
	[[ $stderr == "requests 4 retries 0 "* ]]
}

@test "a multipart upload is interrupted, resumed and completed; another is aborted" {
	head -c 23000000 /dev/urandom >"$T/mp"
	part=$((5 * 1024 * 1024))
	# Two parts of five go up, then the uploader stops.
	run --separate-stderr probe mpu-put mp/file "$T/mp" $part --stop-after 2
	assert_success
	id=$output
	run --separate-stderr probe mpu-ls mp/
	assert_output "mp/file $id"
	# Not an object until completed.
	run --separate-stderr probe get mp/file "$T/got"
	assert_failure 2
	# The resume finds the upload, sends only the three parts it lacks.
	run --separate-stderr probe mpu-resume mp/file "$T/mp" $part
	assert_success
	assert_output 3
	probe get mp/file "$T/got"
	cmp "$T/mp" "$T/got"
	run --separate-stderr probe mpu-ls mp/
	assert_output ""

	run --separate-stderr probe mpu-put mp/other "$T/mp" $part --stop-after 1
	assert_success
	probe mpu-abort mp/other "$output"
	run --separate-stderr probe mpu-ls mp/
	assert_output ""
	run --separate-stderr probe mpu-resume mp/other "$T/mp" $part
	assert_failure 2
	assert_output ERR_NOTFOUND
}

@test "Object Lock: the server refuses to delete a locked version or shorten its lock" {
	echo kept >"$T/k"
	probe --bucket locked-bucket mb --lock
	run --separate-stderr probe --bucket locked-bucket put k "$T/k" --lock COMPLIANCE 3600
	assert_success
	version=$output
	run --separate-stderr probe --bucket locked-bucket head k
	assert_success
	[ "$(echo "$output" | cut -d' ' -f4)" = COMPLIANCE ]
	run --separate-stderr probe --bucket locked-bucket rm k "$version"
	assert_failure 24
	assert_output S3_ERR_LOCKED
	[ -z "$stderr" ]
	# Longer is allowed, shorter is not.
	probe --bucket locked-bucket retain k "$version" COMPLIANCE 7200
	run --separate-stderr probe --bucket locked-bucket retain k "$version" COMPLIANCE 60
	assert_failure 24
	# A plain delete only hides the key; the version is still there and
	# still refused.
	probe --bucket locked-bucket rm k
	run --separate-stderr probe --bucket locked-bucket get k "$T/got"
	assert_failure 2
	run --separate-stderr probe --bucket locked-bucket rm k "$version"
	assert_failure 24
}

@test "credentials come from AWS_PROFILE and the shared credentials file" {
	mkdir -p "$HOME/.aws"
	printf '[default]\naws_access_key_id = NOBODY\naws_secret_access_key = nothing\n[ci]\naws_access_key_id = %s\naws_secret_access_key = %s\n' \
		"$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY" >"$HOME/.aws/credentials"
	run --separate-stderr env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY AWS_PROFILE=ci "$PROBE" ls once/
	assert_success
	assert_output "once/k 6"
	run --separate-stderr env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY AWS_PROFILE=nope "$PROBE" ls once/
	assert_failure 1
	one_line "backup: no credentials for profile 'nope' (AWS_PROFILE) in '$HOME/.aws/credentials' or '$HOME/.aws/config'"
}

@test "a wrong secret key gets one clear line" {
	run --separate-stderr env AWS_SECRET_ACCESS_KEY=NotTheSecret0123456789 "$PROBE" ls
	assert_failure 20
	assert_output S3_ERR_DENIED
	one_line "backup: the S3 server at '$S3_ENDPOINT' refused the signature of access key '$AWS_ACCESS_KEY_ID' from the environment; the secret key is wrong"
	echo "$output$stderr" >>"$LOG"
	# A HEAD has no body to explain: still one line, still denied.
	run --separate-stderr env AWS_SECRET_ACCESS_KEY=NotTheSecret0123456789 "$PROBE" head data/big
	assert_failure 20
	one_line "backup: access denied to 's3://probe-bucket/data/big'*"
	echo "$output$stderr" >>"$LOG"
	run --separate-stderr env AWS_ACCESS_KEY_ID=NOSUCHKEY "$PROBE" ls
	assert_failure 20
	one_line "backup: the S3 server at '$S3_ENDPOINT' does not know access key 'NOSUCHKEY' from the environment"
	echo "$output$stderr" >>"$LOG"
}

@test "a missing bucket gets one clear line" {
	run --separate-stderr probe --bucket no-such-bucket ls
	assert_failure 21
	assert_output S3_ERR_NOBUCKET
	one_line "backup: bucket 'no-such-bucket' does not exist at '$S3_ENDPOINT'; create it or correct the remote's URL"
	echo x >"$T/x"
	run --separate-stderr probe --bucket no-such-bucket put k "$T/x"
	assert_failure 21
	one_line "backup: bucket 'no-such-bucket' does not exist*"
}

@test "a clock an hour off gets one clear line" {
	command -v faketime >/dev/null || fail "faketime is not installed (tests/install-deps.sh)"
	run --separate-stderr faketime -f +1h "$PROBE" ls
	assert_failure 22
	assert_output S3_ERR_SKEW
	one_line "backup: this host's clock is 1 h 0 min ahead of the S3 server's at '$S3_ENDPOINT' (S3 allows 15 min); set the clock right"
	echo "$output$stderr" >>"$LOG"
	# A HEAD's 403 has no body: the server's Date tells.
	run --separate-stderr faketime -f -2h "$PROBE" head data/big
	assert_failure 22
	one_line "backup: this host's clock is 2 h 0 min behind the S3 server's*"
	echo "$output$stderr" >>"$LOG"
}

# A repository with web1 backed up, and remote "off" on the bucket
# $1 under prefix $2.
setup_pushed_repo() {
	setup_repo web1
	# One slot per backup, whatever the day.
	weekly_day_not_today web1
	local i
	for i in 1 2 3 4 5; do head -c 50000 /dev/urandom >"$T/src/f$i"; done
	head -c 3000000 /dev/urandom >"$T/src/big"
	echo web1 >"$T/src/hostname"
	backup run -q web1
	s3_remote "s3://$1/$2"
}

# Rebuilds a bare git repository from the bucket's packs and each slot's
# newest manifest, as a reader of the layout would.
rebuild_from_bucket() {
	local bucket=$1 prefix=$2 dest=$3 key size ref commit
	git init -q --bare "$dest"
	while read -r key size; do
		probe --bucket "$bucket" get "$key" "$dest/objects/pack/${key##*/}"
	done < <(probe --bucket "$bucket" ls "$prefix/objects/pack/")
	while read -r key size; do
		probe --bucket "$bucket" get "$key" "$T/manifest"
		ref=$(sed -n 's/^ref //p' "$T/manifest")
		commit=$(sed -n 's/^commit //p' "$T/manifest")
		# The listing is sorted: the newest manifest of a slot comes last.
		git --git-dir="$dest" update-ref "$ref" "$commit"
	done < <(probe --bucket "$bucket" ls "$prefix/slots/")
}

@test "push to S3: packs, then indexes, then slots; only what the bucket lacks" {
	setup_pushed_repo probe-bucket repo1
	run backup push off
	assert_success
	assert_line --index 0 --regexp '^web1 daily [0-9a-f]{12} pushed$'
	assert_line --index 1 --regexp "^pushed 1 slot to 'off': [0-9]+ objects, .* in .* s$"
	# Every local pack and index is there, and one manifest naming the slot.
	for f in "$REPO"/objects/pack/pack-*; do
		run --separate-stderr probe head "repo1/objects/pack/${f##*/}"
		assert_success
		[ "$(echo "$output" | cut -d' ' -f1)" = "$(stat -c %s "$f")" ]
	done
	run --separate-stderr probe ls repo1/slots/
	assert_success
	[ "${#lines[@]}" = 1 ]
	[[ ${lines[0]} == "repo1/slots/web1/daily/"*"-$(git --git-dir="$REPO" rev-parse refs/backups/web1/daily) "* ]]
	# The bucket alone makes a whole repository that stock git accepts.
	rebuild_from_bucket probe-bucket repo1 "$T/copy.git"
	run git --git-dir="$T/copy.git" fsck --full --no-progress
	assert_success
	[ "$(git --git-dir="$T/copy.git" rev-parse refs/backups/web1/daily)" = \
	  "$(git --git-dir="$REPO" rev-parse refs/backups/web1/daily)" ]

	# Nothing new: nothing sent.
	before=$(probe ls repo1/ | wc -l)
	run backup push off
	assert_success
	assert_output "remote 'off' is up to date"
	[ "$(probe ls repo1/ | wc -l)" = "$before" ]

	# A new backup: its new packs and indexes, and one new manifest.
	packs_before=$(ls "$REPO"/objects/pack/*.pack | wc -l)
	echo changed >"$T/src/new-file"
	backup run -q web1
	new_packs=$(( $(ls "$REPO"/objects/pack/*.pack | wc -l) - packs_before ))
	[ "$new_packs" -ge 1 ]
	run backup push --json off
	assert_success
	[ "$(echo "$output" | json_field pushed)" = 1 ]
	[ "$(echo "$output" | json_field bytes)" -lt 100000 ]
	[ "$(probe ls repo1/ | wc -l)" = $((before + 2 * new_packs + 1)) ]
	rm -rf "$T/copy.git"
	rebuild_from_bucket probe-bucket repo1 "$T/copy.git"
	run git --git-dir="$T/copy.git" fsck --full --no-progress
	assert_success
	[ "$(git --git-dir="$T/copy.git" rev-parse refs/backups/web1/daily)" = \
	  "$(git --git-dir="$REPO" rev-parse refs/backups/web1/daily)" ]
}

@test "push to S3 killed mid-upload: no slot without its objects; the next push resumes" {
	setup_pushed_repo probe-bucket repo3
	# A pack above the part size (64 MiB; 5 MiB here) goes up in parts.
	export BACKUP_TEST_S3_PART_SIZE=$((5 << 20))
	head -c 40000000 /dev/urandom >"$T/src/huge"
	backup run -q web1
	# Killed (SIGKILL, by a test hook) once two parts of its multipart
	# upload are on the bucket: a poll from here loses the race when the
	# server is fast.
	run -137 env BACKUP_TEST_S3_KILL_AFTER_PARTS=2 "$BK" push -q off
	read -r key id < <(probe mpu-ls repo3/)
	[ "$(probe mpu-parts "$key" "$id" | wc -l)" -eq 2 ]
	run --separate-stderr probe ls repo3/slots/
	assert_output ""
	run backup -v push --json off
	assert_success
	assert_line --partial "resuming the upload of 's3://probe-bucket/repo3/objects/pack/pack-"
	# The parts already there are not sent again.
	[ "$(echo "${lines[-1]}" | json_field bytes)" -lt 35000000 ]
	run --separate-stderr probe mpu-ls repo3/
	assert_output ""
	rebuild_from_bucket probe-bucket repo3 "$T/copy.git"
	run git --git-dir="$T/copy.git" fsck --full --no-progress
	assert_success
	[ "$(git --git-dir="$T/copy.git" rev-parse refs/backups/web1/daily)" = \
	  "$(git --git-dir="$REPO" rev-parse refs/backups/web1/daily)" ]
}

@test "push to S3 killed with its temporary folder full: the next push removes it, not a running push's" {
	setup_pushed_repo probe-bucket pushtmp
	mkdir "$T/tmp"
	# Killed (SIGKILL, by a test hook) once the service state's pack is
	# written in its folder, before it goes up.
	run -137 env TMPDIR="$T/tmp" BACKUP_TEST_S3_KILL_STATE_PACK=1 "$BK" push -q off
	left=$(ls "$T/tmp")
	[[ $left == backup-push-* ]]
	[ -n "$(ls -A "$T/tmp/$left")" ]
	# A folder another push holds (its flock) stays; so does an earlier
	# version's backup-state-XXXXXX younger than an hour; an older one goes.
	mkdir "$T/tmp/backup-push-running" "$T/tmp/backup-state-young" "$T/tmp/backup-state-old"
	for d in backup-push-running backup-state-young backup-state-old; do echo x >"$T/tmp/$d/pack-x.pack"; done
	touch -d '2 hours ago' "$T/tmp/backup-state-old"
	python3 -c 'import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDONLY)
fcntl.flock(fd, fcntl.LOCK_EX)
open(sys.argv[2], "w").close()
time.sleep(120)' "$T/tmp/backup-push-running" "$T/locked" &
	holder=$!
	while [ ! -e "$T/locked" ]; do sleep 0.05; done
	run --separate-stderr env TMPDIR="$T/tmp" "$BK" -v push off
	kill "$holder"
	wait "$holder" || true
	assert_success
	[[ $stderr == *"removed '$T/tmp/$left', which a push that was killed left"* ]]
	[ "$(ls "$T/tmp")" = "backup-push-running
backup-state-young" ]
	rebuild_from_bucket probe-bucket pushtmp "$T/copy.git"
	run git --git-dir="$T/copy.git" fsck --full --no-progress
	assert_success
}

@test "fetch from S3 into another repository: every pack, verified, and each slot's newest value" {
	setup_pushed_repo probe-bucket repo4
	backup push -q off
	echo second >"$T/src/second"
	backup run -q web1
	backup push -q off
	want=$(git --git-dir="$REPO" rev-parse refs/backups/web1/daily)
	# A new host: an empty repository with the same remote.
	s3_new_host "$T/b" s3://probe-bucket/repo4
	# The transport alone: it receives the packs and names the slot,
	# and moves no ref.
	run --separate-stderr probe --stats fetch "$T/b/repo" off
	assert_success
	# The slot, then the service state the push sent with it.
	[ "${#lines[@]}" = 2 ]
	assert_line --index 0 "refs/backups/web1/daily - $want updated"
	assert_line --index 1 "refs/backup/state $(git --git-dir="$T/b/repo" rev-parse refs/backup/state) $(git --git-dir="$REPO" rev-parse refs/backup/state) updated"
	run git --git-dir="$T/b/repo" rev-parse -q --verify refs/backups/web1/daily
	assert_failure
	# backup fetch: the slot is taken; the copy checks and restores.
	run env BACKUP_CONFIG="$T/b/backup.conf" "$BK" fetch off
	assert_success
	assert_output --regexp "^web1 daily ${want:0:12} fetched"
	[ "$(git --git-dir="$T/b/repo" rev-parse refs/backups/web1/daily)" = "$want" ]
	run env BACKUP_CONFIG="$T/b/backup.conf" "$BK" check -q --read-data
	assert_success
	BACKUP_CONFIG=$T/b/backup.conf backup restore web1 --path / --to "$T/out"
	run tree_diff "$T/src" "$T/out"
	assert_output ""
	# Again: nothing to receive.
	run env BACKUP_CONFIG="$T/b/backup.conf" "$BK" fetch off
	assert_success
	assert_output "up to date with remote 'off'"
	run --separate-stderr probe --stats fetch "$T/b/repo" off
	assert_success
	assert_line --index 0 "refs/backups/web1/daily $want $want up-to-date"
	[[ $stderr == "objects 0 bytes 0" ]]

	# A pack damaged on the bucket is refused, and nothing of it stays.
	key=$(probe ls repo4/objects/pack/ | grep '\.pack ' | head -1 | cut -d' ' -f1)
	probe get "$key" "$T/p"
	flip_byte "$T/p" middle
	probe put "repo4/objects/pack/${key##*/}" "$T/p" >/dev/null
	rm -f "$T/b/repo/objects/pack/${key##*/}" "$T/b/repo/objects/pack/$(basename "${key##*/}" .pack).idx"
	run --separate-stderr probe fetch "$T/b/repo" off
	assert_failure 1
	one_line "backup: 's3://probe-bucket/$key' does not match its index, or is damaged"
	[ -z "$(ls "$T/b/repo/objects/pack/" | grep -v '^pack-')" ]
}

@test "fetch from S3 receives packs over several connections at once; killed mid-way, the next completes" {
	setup_pushed_repo probe-bucket par1
	for i in 1 2 3; do
		head -c 400000 /dev/urandom >"$T/src/n$i"
		backup run -q web1
	done
	backup push -q off
	want=$(git --git-dir="$REPO" rev-parse refs/backups/web1/daily)
	npacks=$(probe ls par1/objects/pack/ | grep -c '\.pack ')
	[ "$npacks" -ge 4 ]
	s3_new_host "$T/b" s3://probe-bucket/par1
	# Three streams each receive a pack, then one is put in place and the
	# fetch is killed (SIGKILL, a test hook): the other two were received
	# at the same time and are only temporary files, which nothing names.
	run -137 env BACKUP_TEST_S3_FETCH_BARRIER=1 BACKUP_TEST_S3_KILL_AFTER_PACKS=1 "$BK" fetch -q off
	[ "$(ls "$T/b/repo"/objects/pack/*.pack | wc -l)" = 1 ]
	[ "$(ls "$T/b/repo"/objects/pack/*.idx | wc -l)" = 1 ]
	[ "$(ls "$T/b/repo"/objects/pack/ | grep -c '^tmp_pack_')" = 2 ]
	[ "$(ls "$T/b/repo"/objects/pack/ | grep -c '^tmp_idx_')" = 2 ]
	run git --git-dir="$T/b/repo" rev-parse -q --verify refs/backups/web1/daily
	assert_failure
	run backup check -q
	assert_success
	run git --git-dir="$T/b/repo" fsck --full --no-progress
	assert_success
	# One stream, the same kill: nothing but the one pack was received.
	rm -f "$T/b/repo"/objects/pack/tmp_*
	run -137 env BACKUP_TEST_S3_STREAMS=1 BACKUP_TEST_S3_FETCH_BARRIER=1 BACKUP_TEST_S3_KILL_AFTER_PACKS=1 \
		"$BK" fetch -q off
	[ "$(ls "$T/b/repo"/objects/pack/*.pack | wc -l)" = 2 ]
	[ -z "$(ls "$T/b/repo"/objects/pack/ | grep '^tmp_')" ]
	# The next fetch brings the rest, and the copy is whole.
	run backup fetch off
	assert_success
	assert_output --regexp "^web1 daily ${want:0:12} fetched"
	[ "$(ls "$T/b/repo"/objects/pack/*.pack | wc -l)" = "$npacks" ]
	run backup check --read-data
	assert_success
	backup restore -q web1 --path / --to "$T/out"
	run tree_diff "$T/src" "$T/out"
	assert_output ""
}

@test "a damaged pack among several received at once is refused with one line; nothing half-made stays" {
	setup_pushed_repo probe-bucket par2
	for i in 1 2 3; do
		head -c 400000 /dev/urandom >"$T/src/n$i"
		backup run -q web1
	done
	backup push -q off
	[ "$(probe ls par2/objects/pack/ | grep -c '\.pack ')" -ge 4 ]
	key=$(probe ls par2/objects/pack/ | grep '\.pack ' | sort -k2 -n | tail -1 | cut -d' ' -f1)
	probe get "$key" "$T/p"
	flip_byte "$T/p" middle
	probe put "$key" "$T/p" >/dev/null
	s3_new_host "$T/b" s3://probe-bucket/par2
	run --separate-stderr backup fetch off
	assert_failure 1
	one_line "backup: 's3://probe-bucket/$key' does not match its index, or is damaged"
	# The damaged pack is not here, no temporary file stays, every pack
	# here has its index, and no slot moved.
	[ ! -e "$T/b/repo/objects/pack/${key##*/}" ]
	[ -z "$(ls "$T/b/repo/objects/pack/" | grep -v '^pack-')" ]
	for p in "$T/b/repo"/objects/pack/*.pack; do
		[ -e "$p" ] || continue
		[ -e "${p%.pack}.idx" ]
	done
	[ -z "$(git --git-dir="$T/b/repo" for-each-ref refs/backups)" ]
	run backup check -q
	assert_success
	run git --git-dir="$T/b/repo" fsck --full --no-progress
	assert_success
}

@test "push to S3 with objectLock: every object it writes is locked" {
	setup_pushed_repo push-locked r
	probe --bucket push-locked mb --lock
	git --git-dir="$REPO" config remote.off.objectLock true
	run backup push -q off
	assert_success
	assert_output ""
	now=$(date +%s)
	pack=$(cd "$REPO/objects/pack" && ls -S pack-*.pack | head -1)
	for key in "r/objects/pack/$pack" "r/objects/pack/${pack%.pack}.idx" \
		"$(probe --bucket push-locked ls r/slots/ | cut -d' ' -f1)"; do
		run --separate-stderr probe --bucket push-locked head "$key"
		assert_success
		read -r size etag version mode until <<<"$output"
		[ "$mode" = COMPLIANCE ]
		# 15 days, give or take the test's own time.
		[ "$until" -gt $((now + 14 * 86400)) ]
		[ "$until" -lt $((now + 16 * 86400)) ]
		# A stolen key cannot delete the version.
		run --separate-stderr probe --bucket push-locked rm "$key" "$version"
		assert_failure 24
	done
}

@test "push to S3: a wrong secret or a missing bucket is one line, and nothing changes here" {
	setup_pushed_repo no-such-bucket x
	run --separate-stderr backup push off
	assert_failure 1
	one_line "backup: bucket 'no-such-bucket' does not exist at '$S3_ENDPOINT'; create it or correct the remote's URL"
	git --git-dir="$REPO" config remote.off.url s3://probe-bucket/repo2
	run --separate-stderr env AWS_SECRET_ACCESS_KEY=NotTheSecret0123456789 "$BK" push off
	assert_failure 1
	one_line "backup: the S3 server at '$S3_ENDPOINT' refused the signature of access key '$AWS_ACCESS_KEY_ID' from the environment; the secret key is wrong"
	echo "$output$stderr" >>"$LOG"
	run backup check -q
	assert_success
	run --separate-stderr probe ls repo2/
	assert_output ""
}

@test "clone from S3 on a new host: the state comes, and list, restore, drill and check work" {
	setup_pushed_repo probe-bucket clone1
	make_torture_tree "$T/src/torture"
	backup schedule -q web1 --window W6 --day friday
	backup run -q web1
	backup run -q web1 --snapshot --label before
	backup push -q off
	old_list=$(backup list --json)
	# The state went up as a pack of its own, then its manifest.
	state=$(git --git-dir="$REPO" rev-parse refs/backup/state)
	run --separate-stderr probe ls clone1/state/
	[ "${#lines[@]}" = 1 ]
	[[ ${lines[0]} == "clone1/state/"*"-$state "* ]]
	new_host
	run backup clone s3://probe-bucket/clone1 --endpoint "$S3_ENDPOINT" --region us-east-1
	assert_success
	assert_line "repository '$T/new/repo' made from s3://probe-bucket/clone1; its remote 'origin' names it"
	[ "$(git --git-dir="$T/new/repo" rev-parse refs/backup/state)" = "$state" ]
	run backup list --json
	assert_output "$old_list"
	# Where the service is, in the clone's remote; never a secret.
	[ "$(git --git-dir="$T/new/repo" config remote.origin.endpoint)" = "$S3_ENDPOINT" ]
	[ "$(git --git-dir="$T/new/repo" config remote.origin.region)" = us-east-1 ]
	! grep -rF -e "$AWS_SECRET_ACCESS_KEY" -e "$AWS_ACCESS_KEY_ID" "$T/new/repo/config"
	# The schedule is service state: it came with the clone.
	MACHINES=$T/new/machines define_machine web1 "$T/src"
	run backup schedule web1
	assert_output --partial W6
	assert_output --partial friday
	backup restore -q web1 --path / --to "$T/out"
	run tree_diff "$T/src" "$T/out"
	assert_output ""
	backup restore -q web1:snapshot --new web9
	run tree_diff "$T/src" "$T/new/mroot/web9/disks/root"
	assert_output ""
	run backup drill web1
	assert_success
	run backup check --read-data
	assert_success
	run git --git-dir="$T/new/repo" fsck --full --no-progress
	assert_success
	# The new host backs up and pushes to the same bucket.
	echo changed >"$T/src/hostname"
	backup run -q web1
	run backup push origin
	assert_success
	assert_line --regexp '^web1 daily [0-9a-f]{12} pushed$'
}

@test "a clone from S3 killed mid-way leaves no repository; the next one completes" {
	setup_pushed_repo probe-bucket clone2
	backup push -q off
	echo more >"$T/src/more"
	backup run -q web1
	backup push -q off
	[ "$(probe ls clone2/objects/pack/ | grep -c '\.pack ')" -ge 3 ]
	new_host
	# Options that are not for the URL given, or not an endpoint.
	run -2 backup clone "$T/elsewhere" --endpoint "$S3_ENDPOINT"
	assert_output --partial "--endpoint and --region are for s3:// URLs only"
	run -2 backup clone s3://probe-bucket/clone2 --endpoint ftp://host
	assert_output --partial "'ftp://host' is not an S3 endpoint"
	run -2 backup clone s3://probe-bucket/clone2 --endpoint http://someone:NotTheSecret0123456789@host:1
	assert_output --partial "an S3 endpoint takes no user or password"
	refute_output --partial NotTheSecret0123456789
	run --separate-stderr backup clone s3://no-such-bucket/x --endpoint "$S3_ENDPOINT"
	assert_failure 1
	one_line "backup: bucket 'no-such-bucket' does not exist at '$S3_ENDPOINT'; create it or correct the remote's URL"
	[ ! -e "$T/new/repo" ]
	# Killed (SIGKILL, by a test hook) once the first pack is in place.
	run -137 env BACKUP_TEST_S3_KILL_AFTER_PACKS=1 "$BK" clone -q s3://probe-bucket/clone2 --endpoint "$S3_ENDPOINT"
	[ ! -e "$T/new/repo" ]
	leftover=$(compgen -G "$T/new/.repo.clone-*")
	[ "$(ls "$leftover"/objects/pack/*.pack | wc -l)" = 1 ]
	run -1 backup list
	assert_output --partial "no repository at '$T/new/repo'"
	# A clone running now holds its folder (an flock, as a clone does):
	# that one stays; the killed one's goes, and the next clone says so.
	mkdir "$T/new/.repo.clone-running"
	echo x >"$T/new/.repo.clone-running/f"
	python3 -c 'import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDONLY)
fcntl.flock(fd, fcntl.LOCK_EX)
open(sys.argv[2], "w").close()
time.sleep(120)' "$T/new/.repo.clone-running" "$T/held" &
	holder=$!
	for _ in $(seq 1 1200); do [ -e "$T/held" ] && break; sleep 0.05; done
	[ -e "$T/held" ]
	run --separate-stderr backup clone s3://probe-bucket/clone2 --endpoint "$S3_ENDPOINT"
	kill "$holder"
	wait "$holder" || true
	assert_success
	one_line "backup: warning: removed '$leftover', which a clone that was killed left"
	[ ! -e "$leftover" ]
	[ -e "$T/new/.repo.clone-running/f" ]
	[ "$(compgen -G "$T/new/.repo.clone-*")" = "$T/new/.repo.clone-running" ]
	[ "$(git --git-dir="$T/new/repo" rev-parse refs/backups/web1/daily)" = \
	  "$(git --git-dir="$REPO" rev-parse refs/backups/web1/daily)" ]
	run backup check --read-data
	assert_success
}

@test "fetch and clone from S3 skip a slot whose manifest names a pack the bucket lacks, with one line" {
	setup_pushed_repo probe-bucket miss
	backup run -q web1 --snapshot
	backup push -q off
	ls "$REPO"/objects/pack/*.pack >"$T/packs1"
	echo more >"$T/src/more"
	backup run -q web1
	backup push -q off
	daily=$(git --git-dir="$REPO" rev-parse refs/backups/web1/daily)
	new=$(ls "$REPO"/objects/pack/*.pack | comm -13 "$T/packs1" - | head -1)
	new=${new##*/}
	[ -n "$new" ]
	probe rm "miss/objects/pack/$new"
	new_host
	run --separate-stderr backup clone s3://probe-bucket/miss --endpoint "$S3_ENDPOINT"
	assert_failure 1
	one_line "backup: refs/backups/web1/daily (web1 daily) from remote 'origin' not taken: its manifest slots/web1/daily/*-$daily names ${new%.pack}, which is not on the bucket (with its index); the slot is skipped"
	assert_line --regexp "^web1 snapshot [0-9a-f]{12} fetched$"
	# The rest came whole: the snapshot, the state; no daily.
	run git --git-dir="$T/new/repo" for-each-ref --format='%(refname)' refs/backups
	assert_output refs/backups/web1/snapshot
	run backup check --read-data
	assert_success
	# A fetch says the same, and changes nothing.
	run --separate-stderr backup fetch origin
	assert_failure 1
	one_line "backup: refs/backups/web1/daily (web1 daily) from remote 'origin' not taken: *the slot is skipped"
	run git --git-dir="$T/new/repo" for-each-ref --format='%(refname)' refs/backups
	assert_output refs/backups/web1/snapshot
}

@test "push of one machine to S3 sends only the packs its slots need" {
	setup_pushed_repo probe-bucket one
	before=$(ls "$REPO"/objects/pack/*.pack)
	mkdir -p "$T/dbsrc"
	head -c 2000000 /dev/urandom >"$T/dbsrc/db"
	define_machine db1 "$T/dbsrc"
	backup enable -q db1
	weekly_day_not_today db1
	backup run -q db1
	run backup push off db1
	assert_success
	assert_line --regexp '^db1 daily [0-9a-f]{12} pushed$'
	refute_line --partial web1
	# None of web1's packs went, and db1's slot alone is there.
	for f in $before; do
		run --separate-stderr probe head "one/objects/pack/${f##*/}"
		assert_failure 2
	done
	run --separate-stderr probe ls one/slots/
	[ "${#lines[@]}" = 1 ]
	[[ ${lines[0]} == one/slots/db1/daily/* ]]
	# A clone of it restores db1; then the whole push sends web1's.
	new_host
	backup clone -q s3://probe-bucket/one --endpoint "$S3_ENDPOINT"
	backup restore -q db1 --path / --to "$T/out"
	run tree_diff "$T/dbsrc" "$T/out"
	assert_output ""
	export BACKUP_CONFIG=$T/backup.conf
	run backup push off
	assert_success
	assert_line --regexp '^web1 daily [0-9a-f]{12} pushed$'
	for f in $before; do
		probe head "one/objects/pack/${f##*/}" >/dev/null
	done
}

@test "push sends of a local pack only the objects the bucket lacks, also after a local rotate; clones are whole" {
	setup_pushed_repo probe-bucket subset
	backup push -q off
	conf=$BACKUP_CONFIG
	# Host b, a repository of its own, backs up db2: two of web1's files
	# (on the bucket already, in web1's pack) and one of its own. Its one
	# pack is partly on the bucket: the rest goes in a pack of its own.
	new_host "$T/b"
	backup init -q
	mkdir -p "$T/bsrc"
	cp "$T/src/f1" "$T/src/f2" "$T/bsrc/"
	head -c 300000 /dev/urandom >"$T/bsrc/own"
	MACHINES=$T/b/machines define_machine db2 "$T/bsrc"
	backup enable -q db2
	weekly_day_not_today db2
	backup run -q db2
	s3_remote s3://probe-bucket/subset
	# (Its data pack holds f1 and f2; its other pack, its trees and commit.)
	f1=$(git --git-dir="$REPO" rev-parse refs/backups/web1/daily:root/f1)
	bpack=$(cd "$T/b/repo/objects/pack" && for f in pack-*.idx; do
		if git show-index <"$f" | grep -q " $f1 "; then echo "${f%.idx}"; fi; done)
	n=$(git show-index <"$T/b/repo/objects/pack/$bpack.idx" | wc -l)
	total=$(for f in "$T/b/repo"/objects/pack/*.idx; do git show-index <"$f"; done | wc -l)
	run --separate-stderr backup -v push --json off db2
	assert_success
	[[ $stderr == *"$((n - 2)) of the $n objects of $bpack are not on the bucket: they go in a pack of their own"* ]]
	# (The objects sent count the service state's too: b's first push.)
	state=$(git --git-dir="$T/b/repo" rev-list --objects refs/backup/state | wc -l)
	[ "$(echo "$output" | json_field objects)" = $((total - 2 + state)) ]
	run --separate-stderr probe head "subset/objects/pack/$bpack.pack"
	assert_failure 2
	# Its manifest names web1's data pack, its own other pack and the new
	# one, all there.
	probe get "$(probe ls subset/slots/db2/daily/ | cut -d' ' -f1)" "$T/manifest"
	[ "$(grep -c '^pack ' "$T/manifest")" = 3 ]
	while read -r _ p; do
		probe head "subset/objects/pack/$p.pack" >/dev/null
		probe head "subset/objects/pack/$p.idx" >/dev/null
	done < <(grep '^pack ' "$T/manifest")
	new_host "$T/c"
	backup clone -q s3://probe-bucket/subset --endpoint "$S3_ENDPOINT"
	run git --git-dir="$T/c/repo" fsck --full --no-progress
	assert_success
	run backup check --read-data
	assert_success
	backup restore -q db2 --path / --to "$T/c/db2"
	run tree_diff "$T/bsrc" "$T/c/db2"
	assert_output ""
	# Host a's own rotate rewrites its first pack (big is dead once the
	# next backup is daily): the rewritten pack's objects are all on the
	# bucket, in the old one, so only the new backup's pack goes.
	export BACKUP_CONFIG=$conf
	rm "$T/src/big"
	ls "$REPO"/objects/pack/*.idx >"$T/before"
	backup run -q web1
	new=$(ls "$REPO"/objects/pack/*.idx | grep -vxFf "$T/before")
	want=$(for f in $new; do git show-index <"$f"; done | wc -l)
	run backup rotate --json web1
	assert_success
	echo "$output" | grep -q '"packs_rewritten":[1-9]'
	run --separate-stderr backup push --json off web1
	assert_success
	[ "$(echo "$output" | json_field objects)" = "$want" ]
	[ "$(echo "$output" | json_field bytes)" -lt 200000 ]
	clone_is_whole "$T/c2" s3://probe-bucket/subset
}

@test "two hosts push different machines into one prefix at once: both land" {
	setup_pushed_repo probe-bucket race
	# Host b: a copy of this repository that backs up db1, whose files
	# are web1's (so db1 needs web1's packs too), and pushes db1 alone.
	mkdir -p "$T/b"
	cp -a "$REPO" "$T/b/repo"
	new_host "$T/b"
	MACHINES=$T/b/machines define_machine db1 "$T/src"
	backup enable -q db1
	weekly_day_not_today db1
	backup run -q db1
	export BACKUP_CONFIG=$T/backup.conf
	echo newer >"$T/src/newer"
	backup run -q web1
	# Both list the bucket before either writes (a test hook), so both
	# send the packs they share and race for every one of them.
	race_pushes web1 db1
	[ -z "$(cat "$T/a.err" "$T/b.err")" ]
	# Both sent the packs they share: the objects of web1's first backup.
	shared=$(for f in $(cd "$T/b/repo/objects/pack" && ls pack-*.idx); do
		[ -e "$REPO/objects/pack/$f" ] && git show-index <"$REPO/objects/pack/$f"; done | wc -l)
	[ "$(json_field objects <"$T/a.out")" -ge "$shared" ]
	[ "$(json_field objects <"$T/b.out")" -ge "$shared" ]
	# A third host clones both machines' slots, whole.
	new_host "$T/c"
	backup clone -q s3://probe-bucket/race --endpoint "$S3_ENDPOINT"
	[ "$(git --git-dir="$T/c/repo" rev-parse refs/backups/web1/daily)" = \
	  "$(git --git-dir="$REPO" rev-parse refs/backups/web1/daily)" ]
	[ "$(git --git-dir="$T/c/repo" rev-parse refs/backups/db1/daily)" = \
	  "$(git --git-dir="$T/b/repo" rev-parse refs/backups/db1/daily)" ]
	run backup check --read-data
	assert_success
	backup restore -q web1 --path / --to "$T/out"
	run tree_diff "$T/src" "$T/out"
	assert_output ""
}

@test "two hosts send the same large pack in parts at once: one completes it, the other takes it as done" {
	setup_pushed_repo probe-bucket mprace
	# A pack above the part size (5 MiB here) goes up in parts.
	export BACKUP_TEST_S3_PART_SIZE=$((5 << 20))
	head -c 12000000 /dev/urandom >"$T/src/large"
	backup run -q web1
	# Host b: a copy of this repository, which pushes the same slot.
	mkdir -p "$T/b"
	cp -a "$REPO" "$T/b/repo"
	new_host "$T/b"
	export BACKUP_CONFIG=$T/backup.conf
	# Both list the bucket before either writes (a test hook): both send
	# every pack, the large one in parts, to the same key. Whichever
	# completes second finds the pack there (before completing, or as its
	# upload gone) and takes it as done. (A 412 on the completion, which
	# AWS sends, is not produced by radosgw 16: it ignores If-None-Match
	# there.)
	race_pushes web1 web1
	# (radosgw may answer the completion that comes second 500, which is
	# retried like any transient answer.)
	[ -z "$(cat "$T/a.err" "$T/b.err" | grep -v ': 500 InternalError; trying again$')" ]
	run --separate-stderr probe mpu-ls mprace/
	assert_output ""
	large=$(ls -S "$REPO"/objects/pack/*.pack | head -1)
	run --separate-stderr probe head "mprace/objects/pack/${large##*/}"
	assert_success
	[ "$(echo "$output" | cut -d' ' -f1)" = "$(stat -c %s "$large")" ]
	clone_is_whole "$T/c1" s3://probe-bucket/mprace
	run git --git-dir="$T/c1/repo" fsck --full --no-progress
	assert_success
}

@test "an encrypted repository goes to S3 and comes back: its keys with the state, restore and check" {
	setup_config
	mkdir -p "$T/src"
	define_machine web1 "$T/src"
	# Wrapped keys made here use scrypt N=2^10 (lib/crypto.h): fast tests.
	export BACKUP_INSECURE_TEST_KDF=1
	printf 'correct horse battery\n' >"$T/pw1"
	export BACKUP_PASSWORD_FILE=$T/pw1
	backup -q init --encrypt 2>/dev/null
	backup enable -q web1
	head -c 300000 /dev/urandom >"$T/src/f"
	backup run -q web1
	s3_remote s3://probe-bucket/enc
	run backup push off
	assert_success
	assert_line --regexp '^web1 daily [0-9a-f]{12} pushed$'
	new_host
	run backup clone s3://probe-bucket/enc --endpoint "$S3_ENDPOINT"
	assert_success
	backup restore -q web1 --path / --to "$T/out"
	run tree_diff "$T/src" "$T/out"
	assert_output ""
	run backup check --read-data
	assert_success
	# Retention on the bucket reads the manifests, not the sealed commits.
	run backup rotate --remote origin
	assert_success
	assert_line --regexp "^web1: keep   [0-9a-f]{12} "
}

# A bucket prefix $2 on bucket $1 as retention finds it: web1's backup of
# 19 days ago pushed, then today's (which also needs the old one's packs);
# db1's backup of 19 days ago (its own data) pushed, and nothing since.
# With "lock" as $3, remote.off.objectLock is set. Sets db_packs.
# The pushes are at the real time: the server checks the signatures' dates.
setup_expired_bucket() {
	local i old base
	# Every date from one instant: the weekly day is 3 days on, which
	# neither 19 days back nor today (or tomorrow, past midnight) is.
	base=$(date +%s)
	setup_repo web1
	backup schedule -q web1 --day "$(date -d "@$((base + 3 * 86400))" +%A | tr 'A-Z' 'a-z')"
	for i in 1 2 3; do head -c 50000 /dev/urandom >"$T/src/f$i"; done
	echo web1 >"$T/src/hostname"
	head -c 1000000 /dev/urandom >"$T/src/old-only"
	mkdir -p "$T/dbsrc"
	head -c 1500000 /dev/urandom >"$T/dbsrc/db"
	define_machine db1 "$T/dbsrc"
	backup enable -q db1
	backup schedule -q db1 --day "$(date -d "@$((base + 3 * 86400))" +%A | tr 'A-Z' 'a-z')"
	s3_remote "s3://$1/$2"
	[ "${3:-}" != lock ] || git --git-dir="$REPO" config remote.off.objectLock true
	old=$(date -d "@$((base - 19 * 86400))" '+%Y-%m-%d %H:%M:%S')
	faketime "$old" "$BK" run -q web1
	faketime "$old" "$BK" run -q db1
	backup push -q off
	rm "$T/src/old-only"
	backup run -q web1
	# A state change, so that the bucket has an older state too.
	backup schedule -q web1 --window W6
	backup push -q off
	# The packs that hold db1's backup (its commit, and its file's data).
	local c
	c=$(git --git-dir="$REPO" rev-parse refs/backups/db1/daily)
	db_packs=$(cd "$REPO/objects/pack" && for f in pack-*.idx; do
		if git show-index <"$f" | grep -q " $c "; then echo "${f%.idx}"; fi; done)
	[ -n "$db_packs" ]
	[ "$(probe --bucket "$1" ls "$2/slots/" | wc -l)" = 3 ]
	[ "$(probe --bucket "$1" ls "$2/state/" | wc -l)" = 2 ]
}

@test "rotate --remote: the rules expire slots on the bucket, then the packs no kept backup needs" {
	setup_expired_bucket probe-bucket rot1
	# A key under state/ that is no state manifest and sorts after them.
	echo note >"$T/note"
	probe put rot1/state/zz-note "$T/note"
	run backup rotate --remote off --dry-run
	assert_success
	assert_line --regexp "^web1: keep   [0-9a-f]{12} .* daily \(0\.0 days old\)$"
	assert_line --regexp "^db1: would delete [0-9a-f]{12} .* daily \(19\.0 days old\)$"
	assert_line "remote 'off': nothing changed (dry run)"
	[ "$(probe ls rot1/slots/ | wc -l)" = 3 ]
	# The packs are minutes old: a push may still be naming them.
	run backup rotate --remote off
	assert_success
	assert_line --regexp "^db1: delete [0-9a-f]{12} "
	assert_line --regexp "^remote 'off': 3 manifests and 0 packs deleted .*, 0 slots moved$"
	assert_line --regexp "^remote 'off': [0-9]+ packs no manifest names left: younger than a day"
	run --separate-stderr probe ls rot1/slots/
	assert_output --regexp "^rot1/slots/web1/daily/.*-$(git --git-dir="$REPO" rev-parse refs/backups/web1/daily) "
	[ "${#lines[@]}" = 1 ]
	# The newest state stays, and the key that is no state is not ours.
	run --separate-stderr probe ls rot1/state/
	[ "${#lines[@]}" = 2 ]
	assert_line --regexp "^rot1/state/.*-$(git --git-dir="$REPO" rev-parse refs/backup/state) "
	assert_line --regexp "^rot1/state/zz-note "
	# Once old enough (a test hook), they go; db1's packs with them.
	run env BACKUP_TEST_S3_GRACE_SECONDS=0 "$BK" rotate --remote off --json
	assert_success
	[ "$(echo "$output" | json_field packs_deleted)" -ge 1 ]
	[ "$(echo "$output" | json_field locked)" = 0 ]
	for p in $db_packs; do
		run --separate-stderr probe head "rot1/objects/pack/$p.pack"
		assert_failure 2
		run --separate-stderr probe head "rot1/objects/pack/$p.idx"
		assert_failure 2
	done
	# What stays is whole: a clone restores web1 and checks every byte.
	new_host
	backup clone -q s3://probe-bucket/rot1 --endpoint "$S3_ENDPOINT"
	run backup list
	refute_output --partial db1
	run backup check --read-data
	assert_success
	backup restore -q web1 --path / --to "$T/out"
	run tree_diff "$T/src" "$T/out"
	assert_output ""
	# Nothing more to do.
	export BACKUP_CONFIG=$T/backup.conf
	run env BACKUP_TEST_S3_GRACE_SECONDS=0 "$BK" rotate -q --remote off --json
	[ "$(echo "$output" | json_field manifests_deleted)" = 0 ]
	[ "$(echo "$output" | json_field packs_deleted)" = 0 ]
	run -2 backup rotate --remote 'bad name'
	run -1 backup rotate --remote nothere
	assert_output --partial "no remote 'nothere'"
}

@test "rotate --remote moves a slot the rules give to another backup, as the local rotate would" {
	setup_repo web1
	echo data >"$T/src/f"
	# A backup on the weekly day 8 days ago: then daily and weekly; now
	# too old for weekly, so biweekly (and still daily).
	old=$(date -d '-8 days' '+%Y-%m-%d %H:%M:%S')
	backup schedule -q web1 --day "$(date -d "$old" +%A | tr 'A-Z' 'a-z')"
	faketime "$old" "$BK" run -q web1
	s3_remote s3://probe-bucket/moved
	backup push -q off
	id=$(git --git-dir="$REPO" rev-parse refs/backups/web1/daily)
	[ "$(git --git-dir="$REPO" rev-parse refs/backups/web1/weekly)" = "$id" ]
	# A bucket without a service state: no weekly day to go by, so no
	# guess; weekly stays as it is, and the run says why.
	probe ls moved/state/ >"$T/states"
	while read -r key _; do probe rm "$key"; done <"$T/states"
	run --separate-stderr backup rotate --remote off --dry-run
	assert_success
	assert_line --regexp "^web1: keep   ${id:0:12} .*  daily,weekly \(8\.0 days old\)$"
	one_line "backup: warning: remote 'off' holds no service state (state/ is empty), so the machines' weekly days are unknown: weekly and biweekly slots stay as they are; push the state from the host that schedules them"
	backup push -q off
	[ "$(probe ls moved/state/ | wc -l)" = 1 ]
	# This host's weekly day differs from the bucket's (the state pushed):
	# the bucket's rules, not this host's.
	day=$(git --git-dir="$REPO" cat-file blob refs/backup/state:state | sed -n 's/^[[:space:]]*day = //p')
	backup schedule -q web1 --day "$(date -d "@$(($(date -d "$old" +%s) + 86400))" +%A | tr 'A-Z' 'a-z')"
	run backup rotate --remote off
	assert_success
	assert_line --regexp "^web1: keep   ${id:0:12} .*  daily,biweekly \(8\.0 days old\)$"
	assert_line --regexp "^remote 'off': 1 manifests and 0 packs deleted .*, 1 slots moved$"
	run --separate-stderr probe ls moved/slots/
	[ "${#lines[@]}" = 2 ]
	assert_line --index 0 --regexp "^moved/slots/web1/biweekly/.*-$id "
	assert_line --index 1 --regexp "^moved/slots/web1/daily/.*-$id "
	# The local rotate, by the same day, agrees; the clone has the same slots.
	backup schedule -q web1 --day "$day"
	backup rotate -q web1
	new_host
	backup clone -q s3://probe-bucket/moved --endpoint "$S3_ENDPOINT"
	[ "$(git --git-dir="$T/new/repo" for-each-ref --format='%(refname) %(objectname)' refs/backups)" = \
	  "$(git --git-dir="$REPO" for-each-ref --format='%(refname) %(objectname)' refs/backups)" ]
}

@test "rotate --remote in a prefix two hosts share: a machine's weekly day is that of the newest state listing it" {
	setup_repo web1
	weekly_day_not_today web1
	echo web >"$T/src/f"
	conf=$BACKUP_CONFIG
	# Host b backs up db2 on its weekly day, which is no Sunday (the day
	# a machine without a day in the state has), and pushes first.
	old=$(date -d '2 days ago' '+%Y-%m-%d %H:%M:%S')
	[ "$(date -d "$old" +%u)" != 7 ] || old=$(date -d '3 days ago' '+%Y-%m-%d %H:%M:%S')
	new_host "$T/b"
	backup init -q
	mkdir -p "$T/bsrc"
	echo db >"$T/bsrc/f"
	MACHINES=$T/b/machines define_machine db2 "$T/bsrc"
	backup enable -q db2
	backup schedule -q db2 --day "$(date -d "$old" +%A | tr 'A-Z' 'a-z')"
	faketime "$old" "$BK" run -q db2
	s3_remote s3://probe-bucket/share
	backup push -q off
	id=$(git --git-dir="$T/b/repo" rev-parse refs/backups/db2/daily)
	[ "$(git --git-dir="$T/b/repo" rev-parse refs/backups/db2/weekly)" = "$id" ]
	# Host a pushes web1 after: the bucket's newest state, a's, lists web1 alone.
	export BACKUP_CONFIG=$conf
	backup run -q web1
	s3_remote s3://probe-bucket/share
	backup push -q off
	[ "$(probe ls share/state/ | wc -l)" = 2 ]
	# db2's day is b's state's: its weekly stays.
	run --separate-stderr backup rotate --remote off --dry-run
	assert_success
	[ -z "$stderr" ]
	assert_line --regexp "^db2: keep   ${id:0:12} .*  daily,weekly \([0-9.]+ days old\)$"
	# With b's state gone, no state lists db2: its weekly stays as it
	# is, and the run says so once.
	probe rm "$(probe ls share/state/ | head -1 | cut -d' ' -f1)"
	run --separate-stderr backup rotate --remote off
	assert_success
	assert_line --regexp "^db2: keep   ${id:0:12} .*  daily,weekly \([0-9.]+ days old\)$"
	one_line "backup: warning: remote 'off': no service state on it lists machine 'db2' (another host pushed the newest), so its weekly day is unknown: its weekly and biweekly slots stay as they are; push the state from the host that schedules it"
	run --separate-stderr probe ls share/slots/db2/weekly/
	assert_output --regexp "^share/slots/db2/weekly/.*-$id [0-9]+$"
}

@test "rotate --remote with Object Lock: what is locked stays and is reported" {
	probe --bucket rot-locked mb --lock
	setup_expired_bucket rot-locked long lock
	run env BACKUP_TEST_S3_GRACE_SECONDS=0 "$BK" rotate --remote off
	assert_success
	assert_line --regexp "^db1: delete [0-9a-f]{12} "
	assert_line --regexp "^remote 'off': 0 manifests and 0 packs deleted .*, 0 slots moved$"
	assert_line --regexp "^remote 'off': [1-9][0-9]* objects left: Object Lock keeps them until 20[0-9-]{8}T"
	# Every slot manifest is still there, and readable.
	[ "$(probe --bucket rot-locked ls long/slots/ | wc -l)" = 3 ]
	new_host
	backup clone -q s3://rot-locked/long --endpoint "$S3_ENDPOINT"
	run backup check --read-data
	assert_success
}

@test "rotate --remote with Object Lock: once the locks end, what no kept backup needs goes" {
	probe --bucket rot-short mb --lock
	# Locks of a few seconds from each write (a test hook).
	export BACKUP_TEST_S3_LOCK_SECONDS=3
	setup_expired_bucket rot-short s lock
	unset BACKUP_TEST_S3_LOCK_SECONDS
	# Wait for the last lock to end, on the server's clock (this machine's).
	last=0
	while read -r key size; do
		read -r size etag version mode until < <(probe --bucket rot-short head "$key")
		[ "$mode" = COMPLIANCE ]
		[ "$until" -gt "$last" ] && last=$until
	done < <(probe --bucket rot-short ls s/)
	while [ "$(date +%s)" -le $((last + 1)) ]; do sleep 0.2; done
	run env BACKUP_TEST_S3_GRACE_SECONDS=0 "$BK" rotate --remote off --json
	assert_success
	[ "$(echo "$output" | json_field locked)" = 0 ]
	[ "$(echo "$output" | json_field manifests_deleted)" -ge 3 ]
	[ "$(probe --bucket rot-short ls s/slots/ | wc -l)" = 1 ]
	for p in $db_packs; do
		run --separate-stderr probe --bucket rot-short head "s/objects/pack/$p.pack"
		assert_failure 2
	done
	new_host
	backup clone -q s3://rot-short/s --endpoint "$S3_ENDPOINT"
	run backup check --read-data
	assert_success
}

# The bytes of the packs and indexes under prefix $1 of probe-bucket.
pack_bytes() {
	probe ls "$1/objects/pack/" | awk '{ s += $2 } END { print s + 0 }'
}

# clone_is_whole DIR URL: a clone of URL into new host DIR passes check
# --read-data and restores web1's daily (and its snapshot, when there is
# one) exactly as $T/src; then the old host's config is back.
clone_is_whole() {
	local conf=$BACKUP_CONFIG
	new_host "$1"
	backup clone -q "$2" --endpoint "$S3_ENDPOINT"
	run backup check --read-data
	assert_success
	backup restore -q web1 --path / --to "$1/out"
	run tree_diff "$T/src" "$1/out"
	assert_output ""
	if git --git-dir="$1/repo" rev-parse -q --verify refs/backups/web1/snapshot >/dev/null; then
		backup restore -q web1:snapshot --path / --to "$1/snap"
		run tree_diff "$T/src" "$1/snap"
		assert_output ""
	fi
	export BACKUP_CONFIG=$conf
}

@test "rotate --remote repacks a pack an expired backup shared with a kept one; the bucket shrinks, a clone restores exact" {
	setup_expired_bucket probe-bucket repack
	# web1's old backup wrote one pack: old-only (which only it needs)
	# beside f1..f3 and the hostname, which today's backup needs too.
	before=$(pack_bytes repack)
	run env BACKUP_TEST_S3_GRACE_SECONDS=0 "$BK" rotate --remote off
	assert_success
	# Three expired (two slot values, an old state) and web1's daily, which
	# the repack replaced.
	assert_line --regexp "^remote 'off': 4 manifests and [0-9]+ packs deleted .*, 0 slots moved$"
	assert_line "remote 'off': 1 packs partly needed repacked into 1"
	# db1's 1.5 MB and old-only's 1 MB are gone.
	after=$(pack_bytes repack)
	[ "$after" -lt $((before - 2400000)) ]
	# web1's manifest names the new pack, and every pack it names is there.
	run --separate-stderr probe ls repack/slots/
	[ "${#lines[@]}" = 1 ]
	probe get "${lines[0]%% *}" "$T/manifest"
	while read -r _ p; do
		probe head "repack/objects/pack/$p.pack" >/dev/null
		probe head "repack/objects/pack/$p.idx" >/dev/null
	done < <(grep '^pack ' "$T/manifest")
	clone_is_whole "$T/c1" s3://probe-bucket/repack
	# Nothing more to repack or delete.
	run env BACKUP_TEST_S3_GRACE_SECONDS=0 "$BK" rotate --remote off --json
	assert_success
	[ "$(echo "$output" | json_field packs_repacked)" = 0 ]
	[ "$(echo "$output" | json_field packs_deleted)" = 0 ]
	[ "$(pack_bytes repack)" = "$after" ]
}

@test "push after rotate --remote repacked a pack this host holds: it sends what the bucket lacks, not the old pack" {
	setup_expired_bucket probe-bucket pingpong
	# web1's old pack holds old-only (1 MB, dead once the old backups
	# expire) beside f1..f3, which today's backup needs: it is repacked.
	old=$(cd "$REPO/objects/pack" && for f in pack-*.idx; do
		if git show-index <"$f" | grep -q " $(git --git-dir="$REPO" rev-parse refs/backups/web1/daily:root/f1) "; then
			echo "${f%.idx}"; fi; done)
	[ "$(echo "$old" | wc -w)" = 1 ]
	run env BACKUP_TEST_S3_GRACE_SECONDS=0 "$BK" rotate --remote off
	assert_success
	assert_line "remote 'off': 1 packs partly needed repacked into 1"
	run --separate-stderr probe head "pingpong/objects/pack/$old.pack"
	assert_failure 2
	# This host still holds the old pack (no local rotate reclaimed it). A
	# new backup of web1 (db1 expired on the bucket, not here: it is not
	# pushed): only its own new objects go, found missing by the bucket's
	# indexes, not the old pack by its name.
	[ -e "$REPO/objects/pack/$old.pack" ]
	ls "$REPO"/objects/pack/*.idx >"$T/before"
	echo changed >"$T/src/new-file"
	backup run -q web1
	new=$(ls "$REPO"/objects/pack/*.idx | grep -vxFf "$T/before")
	want=$(for f in $new; do git show-index <"$f"; done | wc -l)
	run --separate-stderr backup -v push --json off web1
	assert_success
	[ "$(echo "$output" | json_field pushed)" = 1 ]
	[ "$(echo "$output" | json_field objects)" = "$want" ]
	[ "$(echo "$output" | json_field bytes)" -lt 200000 ]
	# The index the rotation wrote was read once, and is kept here: the
	# next push that needs the bucket's indexes reads it from the cache.
	[[ $stderr == *"reading the index of pack-"*" from the bucket"* ]]
	run --separate-stderr probe head "pingpong/objects/pack/$old.pack"
	assert_failure 2
	echo again >"$T/src/new-file"
	backup run -q web1
	run --separate-stderr backup -v push --json off web1
	assert_success
	[ "$(echo "$output" | json_field pushed)" = 1 ]
	[[ $stderr != *"reading the index of pack-"* ]]
	# A truncated cache file is not trusted: read again from the bucket.
	for f in "$REPO"/backup/cache/s3-off/pack-*.idx; do truncate -s 100 "$f"; done
	echo third >"$T/src/new-file"
	backup run -q web1
	run --separate-stderr backup -v push --json off web1
	assert_success
	[[ $stderr == *"reading the index of pack-"*" from the bucket"* ]]
	# No change: nothing read, nothing sent.
	run --separate-stderr backup -v push --json off web1
	assert_success
	[ "$(echo "$output" | json_field pushed)" = 0 ]
	[ "$(echo "$output" | json_field objects)" = 0 ]
	[[ $stderr != *"reading the index"* ]]
	# The next rotation finds nothing come back to repack or delete.
	run env BACKUP_TEST_S3_GRACE_SECONDS=0 "$BK" rotate --remote off --json
	assert_success
	[ "$(echo "$output" | json_field packs_repacked)" = 0 ]
	run --separate-stderr probe head "pingpong/objects/pack/$old.pack"
	assert_failure 2
	clone_is_whole "$T/c1" s3://probe-bucket/pingpong
	run git --git-dir="$T/c1/repo" fsck --full --no-progress
	assert_success
}

@test "rotate --remote from a host without the pack reads only its live objects, by ranges; a clone restores exact" {
	setup_expired_bucket probe-bucket ranged
	f1=$(git --git-dir="$REPO" rev-parse refs/backups/web1/daily:root/f1)
	old=$(cd "$REPO/objects/pack" && for f in pack-*.idx; do
		if git show-index <"$f" | grep -q " $f1 "; then echo "${f%.idx}"; fi; done)
	size=$(stat -c %s "$REPO/objects/pack/$old.pack")
	# old-only's 1 MB is in it, dead once the old backups expire.
	[ "$size" -gt 1000000 ]
	# Another host, whose repository has none of the packs, rotates.
	s3_new_host "$T/r" s3://probe-bucket/ranged
	mkdir "$T/tmp"
	run --separate-stderr env TMPDIR="$T/tmp" BACKUP_TEST_S3_GRACE_SECONDS=0 "$BK" -v rotate --remote off --json
	assert_success
	[ "$(echo "$output" | json_field packs_repacked)" = 1 ]
	[[ $stderr == *"repacking $old: "* ]]
	# f1..f3 and the hostname came by ranges; old-only did not come at all.
	fetched=$(echo "$output" | json_field bytes_fetched)
	[ "$fetched" -gt 150000 ]
	[ "$fetched" -lt $((size - 900000)) ]
	[ -z "$(ls -A "$T/tmp")" ]
	run --separate-stderr probe head "ranged/objects/pack/$old.pack"
	assert_failure 2
	clone_is_whole "$T/c1" s3://probe-bucket/ranged
	run git --git-dir="$T/c1/repo" fsck --full --no-progress
	assert_success
}

@test "rotate --remote repacks a pack stock git wrote with deltas: it reads that pack whole; a clone restores exact" {
	setup_repo web1
	weekly_day_not_today web1
	# Two files alike (one chunk each; random bytes, which zstd stores as
	# they are), whose blobs git stores one as a delta of the other, and a
	# dead-to-be 1 MB.
	head -c 60000 /dev/urandom >"$T/src/t1"
	{ cat "$T/src/t1"; echo changed; } >"$T/src/t2"
	head -c 1000000 /dev/urandom >"$T/src/old-only"
	faketime "$(date -d '19 days ago' '+%Y-%m-%d %H:%M:%S')" "$BK" run -q web1
	# Stock git packs that backup's objects again, with deltas, in place
	# of backup's own packs.
	g="git --git-dir=$REPO"
	new=$($g rev-list --objects refs/backups/web1/daily | $g pack-objects -q --window=10 --depth=10 --no-reuse-delta --no-reuse-object "$REPO/objects/pack/pack")
	for f in "$REPO"/objects/pack/pack-*.pack; do
		[ "$f" = "$REPO/objects/pack/pack-$new.pack" ] || rm -f "$f" "${f%.pack}.idx"
	done
	$g verify-pack -v "$REPO/objects/pack/pack-$new.idx" | grep -q 'chain length = 1'
	backup remote add -q off s3://probe-bucket/deltas
	git --git-dir="$REPO" config remote.off.endpoint "$S3_ENDPOINT"
	backup push -q off
	run --separate-stderr probe head "deltas/objects/pack/pack-$new.pack"
	assert_success
	rm "$T/src/old-only"
	backup run -q web1
	backup push -q off
	# Another host, without that pack, rotates: the old backup expires,
	# and the pack (1 MB of it dead) is repacked, read whole for its deltas.
	new_host "$T/r"
	backup init -q
	backup remote add -q off s3://probe-bucket/deltas
	git --git-dir="$T/r/repo" config remote.off.endpoint "$S3_ENDPOINT"
	run --separate-stderr env BACKUP_TEST_S3_GRACE_SECONDS=0 "$BK" -v rotate --remote off --json
	assert_success
	[ "$(echo "$output" | json_field packs_repacked)" = 1 ]
	[[ $stderr == *"pack-$new holds deltas: it is read whole"* ]]
	run --separate-stderr probe head "deltas/objects/pack/pack-$new.pack"
	assert_failure 2
	clone_is_whole "$T/c1" s3://probe-bucket/deltas
	run git --git-dir="$T/c1/repo" fsck --full --no-progress
	assert_success
}

@test "rotate --remote repacks two packs that hold one object into a pack that lists it once; a clone restores exact" {
	setup_expired_bucket probe-bucket repackdup
	conf=$BACKUP_CONFIG
	# Host b, a repository of its own, backs up db2, which holds web1's
	# f1 too: b's old pack and web1's old pack both hold f1's blob, and
	# both are partly dead once the old backups expire.
	new_host "$T/b"
	backup init -q
	mkdir -p "$T/bsrc"
	cp "$T/src/f1" "$T/bsrc/f1"
	head -c 1000000 /dev/urandom >"$T/bsrc/old-only"
	MACHINES=$T/b/machines define_machine db2 "$T/bsrc"
	backup enable -q db2
	s3_remote s3://probe-bucket/repackdup
	faketime "$(date -d '19 days ago' '+%Y-%m-%d %H:%M:%S')" "$BK" run -q db2
	# b's pack goes up whole, f1 with it, as when both hosts push at once
	# (a push that finds f1 on the bucket would not send it again).
	for f in "$T/b/repo"/objects/pack/pack-*; do
		probe put "repackdup/objects/pack/${f##*/}" "$f" >/dev/null
	done
	backup push -q off
	rm "$T/bsrc/old-only"
	backup run -q db2
	backup push -q off
	export BACKUP_CONFIG=$conf
	# The shared blob is in a pack of each host.
	blob=$(git --git-dir="$REPO" rev-parse refs/backups/web1/daily:root/f1)
	n=0
	for d in "$REPO" "$T/b/repo"; do
		for f in "$d"/objects/pack/pack-*.idx; do
			! git show-index <"$f" | grep -q " $blob " || n=$((n + 1))
		done
	done
	[ "$n" = 2 ]
	run env BACKUP_TEST_S3_GRACE_SECONDS=0 "$BK" rotate --remote off
	assert_success
	assert_line "remote 'off': 2 packs partly needed repacked into 1"
	# Each index on the bucket lists each id once, and the clone is whole.
	mkdir "$T/idx"
	while read -r key _; do
		probe get "$key" "$T/idx/${key##*/}"
		[ -z "$(git show-index <"$T/idx/${key##*/}" | cut -d' ' -f2 | sort | uniq -d)" ]
	done < <(probe ls repackdup/objects/pack/ | grep '\.idx ')
	clone_is_whole "$T/c1" s3://probe-bucket/repackdup
	new_host "$T/c1"
	backup restore -q db2 --path / --to "$T/c1/db2"
	run tree_diff "$T/bsrc" "$T/c1/db2"
	assert_output ""
	export BACKUP_CONFIG=$conf
}

@test "rotate --remote with a manifest whose backup cannot be read: it warns, repacks nothing, and still deletes what no manifest names" {
	setup_expired_bucket probe-bucket unread
	# A slot manifest of machine ghost whose commit is in no pack, here or
	# on the bucket (it names a pack the bucket lacks).
	ghost=0123456789abcdef0123456789abcdef01234567
	key=unread/slots/ghost/daily/20260101T000000.000000Z-$ghost
	printf 'backup slot 1\nref refs/backups/ghost/daily\ncommit %s\npushed %s\ncreated %s\nkind automatic\npack pack-%s\n' \
		"$ghost" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$(date +%s)" "$(printf '%040d' 0)" >"$T/ghost"
	probe put "$key" "$T/ghost"
	run --separate-stderr env BACKUP_TEST_S3_GRACE_SECONDS=0 "$BK" rotate --remote off --json
	assert_success
	[[ $stderr == *"backup: warning: the backup that '"*"$key' names cannot be read from the bucket or here; no pack is repacked this time"* ]]
	[ "$(echo "$output" | json_field packs_repacked)" = 0 ]
	[ "$(echo "$output" | json_field packs_deleted)" -ge 1 ]
	for p in $db_packs; do
		run --separate-stderr probe head "unread/objects/pack/$p.pack"
		assert_failure 2
	done
	# Once that manifest is gone, the next rotation repacks, and what
	# stays is whole.
	probe rm "$key"
	run env BACKUP_TEST_S3_GRACE_SECONDS=0 "$BK" rotate --remote off
	assert_success
	assert_line "remote 'off': 1 packs partly needed repacked into 1"
	clone_is_whole "$T/c1" s3://probe-bucket/unread
}

@test "rotate --remote killed at each step of a repack: every kept slot stays whole, and the next rotate completes" {
	setup_expired_bucket probe-bucket repackkill
	# A snapshot of today: its manifest, too, names the old shared pack.
	backup run -q web1 --snapshot
	backup push -q off
	before=$(pack_bytes repackkill)
	# The rotations' temporary folders, where the test sees them.
	mkdir "$T/tmp"
	# Killed (SIGKILL, by a test hook) once the new pack is up, once the
	# first new manifest is written (of two: daily's and snapshot's), once
	# the old manifests are gone and the old pack not yet.
	for step in 1 2 3; do
		run -137 env TMPDIR="$T/tmp" BACKUP_TEST_S3_GRACE_SECONDS=0 BACKUP_TEST_S3_KILL_REPACK=$step "$BK" rotate --remote off
		clone_is_whole "$T/k$step" s3://probe-bucket/repackkill
		[ "$(probe ls repackkill/slots/web1/snapshot/ | wc -l)" -ge 1 ]
		[ "$(probe ls repackkill/slots/web1/daily/ | wc -l)" -ge 1 ]
		# The killed one's folder is left; the next rotation removes it.
		[ "$(ls "$T/tmp" | grep -c '^backup-rotate-')" = 1 ]
	done
	# The killed rotates' locks stay; the next rotate, on the same host,
	# finds their processes gone and deletes them.
	run env TMPDIR="$T/tmp" BACKUP_TEST_S3_GRACE_SECONDS=0 "$BK" rotate --remote off
	assert_success
	[ -z "$(ls -A "$T/tmp")" ]
	[ "$(pack_bytes repackkill)" -lt $((before - 2400000)) ]
	clone_is_whole "$T/k4" s3://probe-bucket/repackkill
}

# Waits (at most 60 s) until the file $1 exists and holds a line matching $2.
wait_for_line() {
	local _
	for _ in $(seq 1 1200); do
		grep -q -- "$2" "$1" 2>/dev/null && return 0
		sleep 0.05
	done
	fail "no line '$2' in $1 within 60 s: $(cat "$1" 2>/dev/null)"
}

@test "rotate --remote while a push runs: rotate deletes nothing and exits 75; the push lands whole" {
	setup_expired_bucket probe-bucket lockrace
	# db1 backs up today the same data: its new slot names the old packs
	# that rotate would delete with db1's expired slot.
	backup run -q db1
	probe ls lockrace/ >"$T/before"
	grep -q ' ' "$T/before"
	# The push holds its lock, and has listed the bucket (a test hook
	# stops it there until a second file comes to $T/meet).
	mkdir "$T/meet"
	BACKUP_TEST_S3_RENDEZVOUS=$T/meet:2 "$BK" push --json off >"$T/push.out" 2>"$T/push.err" &
	pid=$!
	for _ in $(seq 1 1200); do [ -n "$(ls "$T/meet")" ] && break; sleep 0.05; done
	[ -n "$(ls "$T/meet")" ]
	run --separate-stderr probe ls lockrace/locks/
	assert_output --regexp "^lockrace/locks/push-[^ ]+-$pid-[0-9]+ [0-9]+$"
	run --separate-stderr env BACKUP_TEST_S3_GRACE_SECONDS=0 "$BK" rotate --remote off
	touch "$T/meet/release"
	rc=0
	wait "$pid" || rc=$?
	[ "$status" = 75 ]
	one_line "backup: remote 'off' is busy: a push from * has been running since 20*Z (lock locks/push-*-$pid-*); nothing was deleted; rotate again when it has ended"
	[ -z "$output" ]
	cat "$T/push.err"
	[ "$rc" = 0 ]
	[ "$(json_field pushed <"$T/push.out")" = 1 ]
	# Nothing went; the push added its packs and db1's manifest, and
	# neither lock stayed.
	probe ls lockrace/ >"$T/after"
	[ -z "$(comm -23 <(cut -d' ' -f1 "$T/before") <(cut -d' ' -f1 "$T/after"))" ]
	[ "$(comm -13 <(cut -d' ' -f1 "$T/before") <(cut -d' ' -f1 "$T/after") | grep -c /slots/db1/)" = 1 ]
	[ -z "$(probe ls lockrace/locks/)" ]
	# Now rotate runs: db1's old slot value goes, its packs stay (the new
	# value names them), and a clone is whole.
	run env BACKUP_TEST_S3_GRACE_SECONDS=0 "$BK" rotate --remote off
	assert_success
	[ -z "$(probe ls lockrace/locks/)" ]
	new_host
	backup clone -q s3://probe-bucket/lockrace --endpoint "$S3_ENDPOINT"
	[ "$(git --git-dir="$T/new/repo" rev-parse refs/backups/db1/daily)" = \
	  "$(git --git-dir="$REPO" rev-parse refs/backups/db1/daily)" ]
	run backup check --read-data
	assert_success
}

@test "rotate --remote while another rotate holds the bucket: it deletes nothing and exits 75" {
	setup_expired_bucket probe-bucket rotrace
	echo x >"$T/lock"
	probe put "rotrace/locks/rotate-otherhost-4242-$(date +%s)" "$T/lock" --create-only
	probe ls rotrace/ >"$T/before"
	run --separate-stderr env BACKUP_TEST_S3_GRACE_SECONDS=0 "$BK" rotate --remote off
	[ "$status" = 75 ]
	one_line "backup: remote 'off' is busy: another rotate from otherhost has been running since 20*Z (lock locks/rotate-otherhost-4242-*); nothing was deleted; rotate again when it has ended"
	[ -z "$output" ]
	probe ls rotrace/ >"$T/after"
	diff "$T/before" "$T/after"
	# A rotate's lock this host left, whose process is gone, holds
	# nothing back: it is deleted with a warning.
	probe rm "$(probe ls rotrace/locks/ | cut -d' ' -f1)"
	sh -c 'echo $$' >"$T/deadpid"
	host=$(hostname | tr '/ -' '___')
	probe put "rotrace/locks/rotate-$host-$(cat "$T/deadpid")-$(date +%s)" "$T/lock" --create-only
	run --separate-stderr env BACKUP_TEST_S3_GRACE_SECONDS=0 "$BK" rotate --remote off
	assert_success
	one_line "backup: warning: the rotate lock *locks/rotate-$host-$(cat "$T/deadpid")-* (host $host, pid $(cat "$T/deadpid")) was left by a process that is gone; it is ignored and deleted"
	[ -z "$(probe ls rotrace/locks/)" ]
	clone_is_whole "$T/c1" s3://probe-bucket/rotrace
}

@test "rotate --remote stops before it writes once it has held the bucket too long, or once a push has begun" {
	setup_expired_bucket probe-bucket rotstop
	probe ls rotstop/ >"$T/before"
	# A bound of 0 s (a test hook) instead of half an hour: it stops
	# before its first write.
	run --separate-stderr env BACKUP_TEST_S3_GRACE_SECONDS=0 BACKUP_TEST_S3_ROTATE_BUDGET=0 "$BK" rotate --remote off
	[ "$status" = 75 ]
	one_line "backup: remote 'off': this rotate has held the bucket for * s, near the 3600 s after which a push takes its lock for stale; it stops here, the bucket whole; rotate again to go on"
	probe ls rotstop/ >"$T/after"
	diff "$T/before" "$T/after"
	# A push that begins once the rotate has looked (a test hook stops
	# the rotate there until $T/pause/go exists): the rotate finds its
	# lock before it writes, stops, and the push, which waited for the
	# rotate's lock to go, lands.
	backup run -q db1
	mkdir "$T/pause"
	BACKUP_TEST_S3_GRACE_SECONDS=0 BACKUP_TEST_S3_ROTATE_PAUSE=$T/pause "$BK" rotate --remote off \
		>"$T/rot.out" 2>"$T/rot.err" &
	rpid=$!
	for _ in $(seq 1 1200); do [ -e "$T/pause/paused" ] && break; sleep 0.05; done
	[ -e "$T/pause/paused" ]
	"$BK" push --json --wait 120 off >"$T/push.out" 2>"$T/push.err" &
	ppid=$!
	for _ in $(seq 1 1200); do probe ls rotstop/locks/ | grep -q /push- && break; sleep 0.05; done
	probe ls rotstop/locks/ | grep -q /push-
	probe ls rotstop/ | grep -v /locks/ >"$T/before"
	touch "$T/pause/go"
	rc=0
	wait "$rpid" || rc=$?
	cat "$T/rot.err"
	[ "$rc" = 75 ]
	[ "$(wc -l <"$T/rot.err")" = 1 ]
	grep -q "^backup: remote 'off' is busy: a push from .* (lock locks/push-.*-$ppid-[0-9]*); this rotate stops here, deleting nothing more; rotate again when it has ended$" "$T/rot.err"
	rc=0
	wait "$ppid" || rc=$?
	cat "$T/push.err"
	[ "$rc" = 0 ]
	[ "$(json_field pushed <"$T/push.out")" = 1 ]
	probe ls rotstop/ >"$T/after"
	[ -z "$(comm -23 <(cut -d' ' -f1 "$T/before") <(cut -d' ' -f1 "$T/after"))" ]
	[ -z "$(probe ls rotstop/locks/)" ]
	run env BACKUP_TEST_S3_GRACE_SECONDS=0 "$BK" rotate --remote off
	assert_success
	clone_is_whole "$T/c1" s3://probe-bucket/rotstop
}

@test "push to S3 while a rotate holds the bucket: it waits, then exits 75 and writes nothing" {
	setup_pushed_repo probe-bucket lockwait
	echo x >"$T/lock"
	probe put "lockwait/locks/rotate-otherhost-4242-$(date +%s)" "$T/lock" --create-only
	probe ls lockwait/ >"$T/before"
	# A bound of 2 s (a test hook) instead of --wait's or ten minutes.
	run --separate-stderr env BACKUP_TEST_S3_LOCK_WAIT=2 "$BK" push off
	[ "$status" = 75 ]
	one_line "backup: remote 'off' is busy: a rotate from otherhost has been deleting there since 20*Z; push again when it has ended, or pass --wait SECONDS"
	[ -z "$output" ]
	probe ls lockwait/ >"$T/after"
	diff "$T/before" "$T/after"
	# --wait 0: at once.
	run --separate-stderr "$BK" push --wait 0 off
	[ "$status" = 75 ]
	# A push that waits goes on once the rotate's lock is gone.
	"$BK" -v push --wait 120 off >"$T/push.out" 2>"$T/push.err" &
	pid=$!
	wait_for_line "$T/push.err" "waiting for the rotate from otherhost"
	probe rm "lockwait/locks/$(probe ls lockwait/locks/ | grep -o 'rotate-[^ ]*')"
	rc=0
	wait "$pid" || rc=$?
	cat "$T/push.err"
	[ "$rc" = 0 ]
	grep -q "^pushed 1 slot to 'off'" "$T/push.out"
	[ -z "$(probe ls lockwait/locks/)" ]
	new_host
	backup clone -q s3://probe-bucket/lockwait --endpoint "$S3_ENDPOINT"
	run backup check --read-data
	assert_success
}

@test "stale bucket locks: a killed push's does not block rotate, nor a killed rotate's a push" {
	setup_expired_bucket probe-bucket lockstale
	echo x >"$T/lock"
	# Written 25 h ago (push locks are stale after 24 h, rotate's after 1 h).
	old=$(( $(date +%s) - 25 * 3600 ))
	probe put "lockstale/locks/push-deadhost-17-$old" "$T/lock" --create-only
	probe put "lockstale/locks/rotate-deadhost-18-$old" "$T/lock" --create-only
	run --separate-stderr env BACKUP_TEST_S3_GRACE_SECONDS=0 "$BK" rotate --remote off --json
	assert_success
	[ "$(echo "$output" | json_field packs_deleted)" -ge 1 ]
	[[ $stderr == *"the push lock "*"locks/push-deadhost-17-$old"*" (host deadhost, since "*") is stale (older than 86400 s); it is ignored and deleted"* ]]
	run --separate-stderr probe ls lockstale/locks/
	assert_output --regexp "^lockstale/locks/rotate-deadhost-18-$old [0-9]+$"
	echo more >"$T/src/more"
	backup run -q web1
	run --separate-stderr "$BK" push --wait 0 off web1
	assert_success
	[[ $stderr == *"the rotate lock "*"(host deadhost, since "*") is stale (older than 3600 s); it is ignored"* ]]
	assert_line --regexp "^pushed 1 slot to 'off'"
	new_host
	backup clone -q s3://probe-bucket/lockstale --endpoint "$S3_ENDPOINT"
	run backup check --read-data
	assert_success
}

# A fake S3 server on a free port, path-style, that behaves by bucket:
# "flaky" answers 503 twice, then a listing; "busy" always answers 503;
# "hang" reads the request and never answers. Sets FAKE_URL and FAKE_PID.
start_fake() {
	python3 - "$T/fake.port" <<'PY' &
import http.server, os, socketserver, sys, time
portfile = sys.argv[1]
count = {}
class H(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass
    def do_GET(self):
        bucket = self.path.split("/")[1].split("?")[0]
        count[bucket] = count.get(bucket, 0) + 1
        if bucket == "hang":
            time.sleep(30)
            return
        if bucket == "busy" or count[bucket] <= 2:
            body = b"<Error><Code>SlowDown</Code><Message>busy</Message></Error>"
            self.send_response(503)
        else:
            body = (b"<ListBucketResult><IsTruncated>false</IsTruncated><Contents>"
                    b"<Key>k</Key><Size>1</Size></Contents></ListBucketResult>")
            self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
class S(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
s = S(("127.0.0.1", 0), H)
open(portfile + ".tmp", "w").write(str(s.server_address[1]))
os.rename(portfile + ".tmp", portfile)
s.serve_forever()
PY
	FAKE_PID=$!
	for _ in $(seq 1 600); do [ -s "$T/fake.port" ] && break; sleep 0.05; done
	[ -s "$T/fake.port" ] || fail "the fake S3 server did not start within 30 s"
	FAKE_URL=http://127.0.0.1:$(cat "$T/fake.port")
}

stop_fake() {
	kill "$FAKE_PID" 2>/dev/null || true
	wait "$FAKE_PID" 2>/dev/null || true
	FAKE_PID=
}

@test "transient answers are retried with backoff, then given up with one line" {
	start_fake
	run --separate-stderr probe --endpoint "$FAKE_URL" --bucket flaky --backoff-ms 50 --stats ls
	assert_success
	assert_output "k 1"
	[[ $stderr == "requests 3 retries 2 "* ]]

	SECONDS=0
	run --separate-stderr probe --endpoint "$FAKE_URL" --bucket busy --retries 3 --backoff-ms 50 --verbose ls
	assert_failure 23
	assert_output S3_ERR_UNAVAILABLE
	# Three "trying again" lines at -v, then the one message.
	[ "${#stderr_lines[@]}" = 4 ]
	[[ ${stderr_lines[3]} == "backup: the S3 server at '$FAKE_URL' answered GET 's3://busy' with 503 SlowDown (gave up after 4 tries in "*" s)" ]]
	# Bounded, not fast: a busy machine may take seconds, never minutes.
	[ "$SECONDS" -lt 30 ]

	# A server that never answers: the stall limit ends each try.
	SECONDS=0
	run --separate-stderr probe --endpoint "$FAKE_URL" --bucket hang --retries 1 --backoff-ms 50 --stall 1 ls
	stop_fake
	assert_failure 23
	one_line "backup: cannot reach the S3 server at '$FAKE_URL': Operation too slow*gave up after 2 tries in *"
	[ "$SECONDS" -lt 60 ]
}

@test "radosgw stopped: a clear error after bounded retries" {
	pid=$(awk '$2 == "rgw.a" { print $1 }' "$CEPH_DIR/pids")
	[ -n "$pid" ]
	kill -9 "$pid"
	SECONDS=0
	run --separate-stderr probe --retries 3 --backoff-ms 100 --verbose get data/big "$T/got"
	assert_failure 23
	assert_output S3_ERR_UNAVAILABLE
	[[ ${stderr_lines[-1]} == "backup: cannot reach the S3 server at '$S3_ENDPOINT': "*"Couldn't connect to server (gave up after 4 tries in "*" s)" ]]
	[ "$SECONDS" -lt 60 ]
}

@test "no secret appears in any output of this file" {
	[ -s "$LOG" ]
	grep -q "S3_ERR_" "$LOG"
	! grep -F -e "$AWS_SECRET_ACCESS_KEY" -e NotTheSecret0123456789 "$LOG"
}
