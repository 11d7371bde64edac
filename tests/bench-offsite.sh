#!/bin/bash
# make bench-offsite: the nightly offsite job of issues 10 and 11 beside
# restic and borg, on the shared corpus (../shared/bench), in one run on
# this machine. Works in $BENCH_OFFSITE (default /tmp/bench-offsite);
# nothing lands in the checkout. The figures go in docs/PERFORMANCE.md.
#
# SSH, to a loopback sshd (tests/sshd.bash):
#   backup-ssh   backup run bench --push=offsite, the remote an append-only
#                receiver (backup init --receiver; its key from backup
#                receiver authorize, so every push goes through receiver
#                serve, the hook and git's fsck of what comes in)
#   restic-sftp  restic -r sftp: (Debian's sftp-server subsystem)
#   borg-ssh     borg create ssh://... (borg serve on the remote side)
# S3, to a Ceph radosgw on loopback (tests/ceph.sh, memstore):
#   backup-s3    backup run bench, then backup push off (the two halves of
#                run --push, timed apart so that the push's own peak RSS
#                shows), to s3://bench-backup
#   restic-s3    restic -r s3:http://127.0.0.1:PORT/bench-restic
#
# Each tool: a full night, a no-change night, and (after make-corpus.sh
# mutate) a 1 %-mutated night; then the recovery on a "new host" (no local
# repository, no cache): backup clone (for S3: init + remote add + fetch
# while clone cannot take an endpoint) and backup restore --new, restic
# restore with an empty cache, borg extract; each checked exact with
# rsync -aHAXn --checksum -i --delete (it must print nothing).
#
# Per step: wall, CPU (user+sys) and peak RSS of the client's process tree
# (GNU time -v, as ../shared/bench/compare.sh), the server's CPU (sshd and
# everything it ran: the reaped children's times of our sshd; ceph-mon,
# ceph-osd and radosgw: their own), bytes on the wire (SSH: the ssh
# client's "Transferred: sent N, received M bytes" per connection, i.e. the
# encrypted stream without TCP/IP headers, logged with LogLevel VERBOSE to a
# file with -E for every tool alike; S3: radosgw's put_b/get_b
# counters, the objects' bytes without HTTP headers, and its request
# count), and the other CPU time the machine spent meanwhile ("foreign":
# other jobs on a shared machine). Before each step it waits (at most
# WAIT_IDLE_MAX s) for the machine to be under IDLE_PCT % busy.
#
# Environment: BENCH_OFFSITE, PRISTINE (default /tmp/bench/corpus.pristine,
# the corpus of make bench, built there when missing), TOOLS (a subset of
# the five names above), WAIT_IDLE_MAX=60, IDLE_PCT=15, KEEP=1 (keep the
# repositories and restores).
set -uo pipefail
export LC_ALL=C TZ=UTC
top=$(cd "$(dirname "$0")/.." && pwd)
shared=${SHARED_BENCH:-$top/../shared/bench}
MAKE_CORPUS=$shared/make-corpus.sh
BK=$top/backup
W=${BENCH_OFFSITE:-/tmp/bench-offsite}
PRISTINE=${PRISTINE:-/tmp/bench/corpus.pristine}
CORPUS=$W/corpus
OUT=${OUT:-$W/results-$(date +%Y%m%d-%H%M%S)}
TOOLS=${TOOLS:-backup-ssh restic-sftp borg-ssh backup-s3 restic-s3}
KEEP=${KEEP:-0}
HZ=$(getconf CLK_TCK)
export BK CORPUS W

[ -x "$MAKE_CORPUS" ] || { echo "bench-offsite: no $MAKE_CORPUS; set SHARED_BENCH" >&2; exit 1; }
[ -x "$BK" ] || { echo "bench-offsite: build backup first (make backup)" >&2; exit 1; }
missing=
for p in restic borgbackup rsync acl attr time openssh-server openssh-client python3 curl \
	ceph-mon ceph-osd ceph-common radosgw uuid-runtime; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

has() { case " $TOOLS " in *" $1 "*) return 0 ;; esac; return 1; }
want_ssh=0 want_s3=0
for t in $TOOLS; do
	case $t in
	backup-ssh | restic-sftp | borg-ssh) want_ssh=1 ;;
	backup-s3 | restic-s3) want_s3=1 ;;
	*) echo "bench-offsite: unknown tool '$t'" >&2; exit 2 ;;
	esac
done

# ----------------------------------------------------------------- helpers --
log() { printf '%s %s\n' "$(date +%T)" "$*" | tee -a "$OUT/run.log" >&2; }
now() { date +%s.%N; }
fsub() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.2f", a-b}'; }
cpu_busy() { awk '/^cpu /{print $2+$3+$4+$7+$8+$9}' /proc/stat; }
# The machine is shared: wait until it is under IDLE_PCT % busy over 2 s.
wait_idle() {
	local max=${WAIT_IDLE_MAX:-60} pct=${IDLE_PCT:-15} waited=0 b0 b1
	while [ "$waited" -lt "$max" ]; do
		b0=$(cpu_busy); sleep 2; b1=$(cpu_busy)
		[ $((b1 - b0)) -lt $((2 * HZ * $(nproc) * pct / 100)) ] && break
		waited=$((waited + 2))
	done
	echo "$waited"
}
parse_time() {
	awk -F': ' '
	/Elapsed \(wall clock\)/ { n=split($2,p,":"); w=0; for(i=1;i<=n;i++) w=w*60+p[i] }
	/User time/ { u=$2 } /System time/ { s=$2 }
	/Maximum resident set size/ { r=$2 }
	END { printf "%.2f %.2f %.2f %d\n", w, u, s, r }' "$1"
}
# CPU ticks of a process: its own, and its reaped children's.
proc_ticks() { [ -r "/proc/$1/stat" ] && sed 's/.*) //' "/proc/$1/stat" | awk '{print $12+$13+$14+$15}' || echo 0; }
# The server side's CPU ticks so far (target ssh or s3).
server_ticks() {
	local sum=0 pid name
	if [ "$1" = ssh ]; then
		sum=$(proc_ticks "$SSHD_PID")
	else
		while read -r pid _; do sum=$((sum + $(proc_ticks "$pid"))); done <"$W/ceph/pids"
	fi
	echo "$sum"
}
# Bytes on the wire so far: "up down requests".
wire() {
	if [ "$1" = ssh ]; then
		sed -n 's/.*Transferred: sent \([0-9]*\), received \([0-9]*\) bytes.*/\1 \2/p' "$SSHD_DIR/client.log" |
			awk '{u+=$1; d+=$2; n++} END {printf "%.0f %.0f %d\n", u, d, n}'
	else
		ceph --admin-daemon "$W/ceph/run/client.rgw.a.asok" perf dump 2>/dev/null | python3 -c '
import json, sys
try:
    r = json.load(sys.stdin)["rgw"]
    print(r["put_b"], r["get_b"], r["req"])
except Exception:
    print(0, 0, 0)'
	fi
}

# measure TARGET TOOL STEP FUNC ARGS...: one row of $OUT/steps.tsv
measure() {
	local target=$1 tool=$2 step=$3 fn=$4
	shift 4
	local tf="$OUT/$tool-$step.time" lf="$OUT/$tool-$step.log" rc waited load b0 b1 s0 s1 w0 w1
	sync
	waited=$(wait_idle)
	load=$(cut -d' ' -f1 /proc/loadavg)
	log "$tool $step: $fn $* (waited ${waited}s for idle, load $load)"
	read -r -a w0 < <(wire "$target")
	s0=$(server_ticks "$target")
	b0=$(cpu_busy)
	/usr/bin/time -v -o "$tf" bash -c "$fn \"\$@\"" _ "$@" >"$lf" 2>&1
	rc=$?
	# The server's side of a connection ends (and is reaped) just after.
	sleep 1
	b1=$(cpu_busy)
	s1=$(server_ticks "$target")
	read -r -a w1 < <(wire "$target")
	read -r wall user sys rss < <(parse_time "$tf")
	local server foreign
	server=$(awk -v d=$((s1 - s0)) -v hz="$HZ" 'BEGIN{printf "%.2f", d/hz}')
	foreign=$(awk -v d=$((b1 - b0)) -v hz="$HZ" -v u="$user" -v s="$sys" -v v="$server" \
		'BEGIN{f=d/hz-u-s-v; printf "%.1f", f<0?0:f}')
	printf '%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%s\t%s\n' "$target" "$tool" "$step" "$rc" "$wall" \
		"$user" "$sys" "$server" "$rss" $((w1[0] - w0[0])) $((w1[1] - w0[1])) $((w1[2] - w0[2])) \
		"$load/w${waited}s/f${foreign}s" >>"$OUT/steps.tsv"
	log "  rc=$rc wall=${wall}s user=${user}s sys=${sys}s server=${server}s maxrss=${rss}KiB up=$((w1[0] - w0[0]))B down=$((w1[1] - w0[1]))B conn/req=$((w1[2] - w0[2])) foreign=${foreign}s"
	[ "$rc" = 0 ] || { log "  FAILED, tail of $lf:"; tail -5 "$lf" | tee -a "$OUT/run.log" >&2; }
	return "$rc"
}

# verify TOOL DIR: the restore must be the corpus exactly.
verify() {
	local n
	rsync -aHAXn --checksum -i --delete "$CORPUS/" "$2/" >"$OUT/$1-verify.txt" 2>&1
	n=$(wc -l <"$OUT/$1-verify.txt")
	printf '%s\t%s\n' "$1" "$n" >>"$OUT/verify.tsv"
	log "  verify $1: rsync itemized $n lines$([ "$n" = 0 ] && echo ' (exact)')"
}

# ---------------------------------------------------------------- the tools --
# backup: a machine "bench" whose one disk is the corpus (as the adapter of
# make bench), its configuration beside the repository in $1.
backup_setup() {
	local d=$1
	rm -rf "$d"
	mkdir -p "$d/machines" "$d/root"
	printf '[repository]\n\tpath = %s\n[machines]\n\tdir = %s\n\troot = %s\n' "$d/repo" "$d/machines" "$d/root" >"$d/conf"
	printf '[machine]\n\tplan = 100G\n[disk "root"]\n\tsource = %s\n\tsize = 50G\n\tfilesystem = ext4\n' "$CORPUS" >"$d/machines/bench.conf"
	BACKUP_CONFIG=$d/conf "$BK" init -q && BACKUP_CONFIG=$d/conf "$BK" enable -q bench
}
# A new host: a configuration with no machine, for the clone.
newhost_setup() {
	rm -rf "$1"
	mkdir -p "$1/machines" "$1/root"
	printf '[repository]\n\tpath = %s\n[machines]\n\tdir = %s\n\troot = %s\n' "$1/repo" "$1/machines" "$1/root" >"$1/conf"
}

# SSH: the machine's key can only push bench's slots to the receiver;
# restic and borg log in with an unrestricted key.
bssh_night() { BACKUP_CONFIG=$W/ssh/backup/conf GIT_SSH_COMMAND="$SSH_BACKUP" "$BK" run --json --push=offsite bench; }
bssh_clone() { GIT_SSH_COMMAND="$SSH_BACKUP" BACKUP_CONFIG=$W/ssh/new/conf "$BK" clone "$RCV_URL" "$W/ssh/new/repo"; }
bssh_restore() { BACKUP_CONFIG=$W/ssh/new/conf "$BK" restore bench --new bench; }
rsftp() { RESTIC_PASSWORD=bench restic -r "sftp:root@127.0.0.1:$W/ssh/restic" -o sftp.command="$SSH_PEERS 127.0.0.1 -s sftp" "$@"; }
rsftp_init() { rsftp --cache-dir "$W/cache/restic-sftp" init --repository-version 2; }
rsftp_night() { rsftp --cache-dir "$W/cache/restic-sftp" backup --compression auto --host bench "$CORPUS"; }
rsftp_restore() { rsftp --cache-dir "$W/cache/restic-sftp-new" restore latest --host bench --target "$1.tmp" && mv "$1.tmp$CORPUS" "$1" && rm -rf "$1.tmp"; }
borg_env() { export BORG_RSH="$SSH_PEERS" BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=yes BORG_RELOCATED_REPO_ACCESS_IS_OK=yes; }
borg_url() { echo "ssh://root@127.0.0.1:$SSHD_PORT$W/ssh/borg"; }
borg_init() { borg_env; BORG_BASE_DIR=$W/cache/borg borg init -e none "$(borg_url)"; }
borg_night() { borg_env; BORG_BASE_DIR=$W/cache/borg borg create --compression zstd,3 --stats "$(borg_url)::night$1" "$CORPUS"; }
borg_restore() { borg_env; mkdir -p "$1.tmp" && (cd "$1.tmp" && BORG_BASE_DIR=$W/cache/borg-new borg extract "$(borg_url)::night3") && mv "$1.tmp$CORPUS" "$1" && rm -rf "$1.tmp"; }

# S3: credentials as AWS tools take them.
bs3_run() { BACKUP_CONFIG=$W/s3/backup/conf "$BK" run bench; }
bs3_push() { BACKUP_CONFIG=$W/s3/backup/conf "$BK" push --json off bench; }
bs3_clone() {
	local c=$W/s3/new/conf
	if "$BK" clone --help 2>&1 | grep -q -- --endpoint; then
		BACKUP_CONFIG=$c "$BK" clone --endpoint "$S3_ENDPOINT" s3://bench-backup "$W/s3/new/repo"
	else
		BACKUP_CONFIG=$c "$BK" init -q && BACKUP_CONFIG=$c "$BK" remote add -q off s3://bench-backup &&
			git --git-dir="$W/s3/new/repo" config remote.off.endpoint "$S3_ENDPOINT" &&
			BACKUP_CONFIG=$c "$BK" fetch off
	fi
}
bs3_restore() { BACKUP_CONFIG=$W/s3/new/conf "$BK" restore bench --new bench; }
rs3() { RESTIC_PASSWORD=bench restic -r "s3:$S3_ENDPOINT/bench-restic" "$@"; }
rs3_init() { rs3 --cache-dir "$W/cache/restic-s3" init --repository-version 2; }
rs3_night() { rs3 --cache-dir "$W/cache/restic-s3" backup --compression auto --host bench "$CORPUS"; }
rs3_restore() { rs3 --cache-dir "$W/cache/restic-s3-new" restore latest --host bench --target "$1.tmp" && mv "$1.tmp$CORPUS" "$1" && rm -rf "$1.tmp"; }
export -f bssh_night bssh_clone bssh_restore rsftp rsftp_init rsftp_night rsftp_restore borg_env borg_url \
	borg_init borg_night borg_restore bs3_run bs3_push bs3_clone bs3_restore rs3 rs3_init rs3_night rs3_restore

# ------------------------------------------------------------------- servers --
cleanup() {
	[ -n "${SSHD_PID:-}" ] && sshd_stop
	[ -f "$W/ceph/pids" ] && "$top/tests/ceph.sh" stop "$W/ceph"
	if [ "$KEEP" != 1 ]; then
		rm -rf "$W/ssh" "$W/s3" "$W/cache" "$W/restore-"*
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$OUT" "$W/cache"
: >"$OUT/steps.tsv"
: >"$OUT/verify.tsv"
rm -rf "$W/ssh" "$W/s3" "$W/cache"/* "$W/restore-"*
{
	echo "date: $(date -Is)"
	echo "host: $(uname -srm), $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), $(free -g | awk '/Mem:/{print $2}') GiB RAM"
	echo "backup: $("$BK" --version 2>&1 | head -1), commit $(git -C "$top" log -1 --format='%h %s' 2>/dev/null)"
	echo "restic: $(restic version | head -1); borg: $(borg --version); git: $(git --version); ssh: $(ssh -V 2>&1)"
	echo "radosgw: $(radosgw --version 2>&1 | head -1)"
} >"$OUT/env.txt"
cat "$OUT/env.txt" >&2

if [ ! -d "$PRISTINE/real" ]; then
	log "building the corpus $PRISTINE"
	"$MAKE_CORPUS" build "$PRISTINE" >>"$OUT/run.log" 2>&1 || exit 1
fi
log "resetting $CORPUS from $PRISTINE"
"$MAKE_CORPUS" reset "$CORPUS" "$PRISTINE" >>"$OUT/run.log" 2>&1 || exit 1
CORPUS_BYTES=$(du -sb "$CORPUS" | cut -f1)
echo "corpus: $CORPUS_BYTES bytes (du -sb), $(find "$CORPUS" -type f | wc -l) file names" >>"$OUT/env.txt"

if [ "$want_ssh" = 1 ]; then
	# shellcheck source=tests/sshd.bash
	. "$top/tests/sshd.bash"
	SSHD_SFTP=1 SSHD_PERMIT_ENV=HOME sshd_start "$W/ssh/sshd" || exit 1
	cp "$SSHD_DIR/ssh_config" "$SSHD_DIR/ssh_config.peers"
	RCV=$W/ssh/receiver
	"$BK" init -q --receiver "$RCV" || exit 1
	sshd_new_key bench
	"$BK" receiver authorize -q "$RCV" --machine bench --append "$SSHD_DIR/ak/root" "$SSHD_DIR/bench.pub" || exit 1
	sshd_use_key bench
	cp "$SSHD_DIR/ssh_config" "$SSHD_DIR/ssh_config.backup"
	RCV_URL=$(sshd_url "$RCV")
	# Every key logs in as root, whose shell is bash: sshd runs each
	# session's command (a forced command, sftp-server, borg serve) with
	# bash -c, and bash reads ~/.bashrc when started by sshd. On a
	# developer's machine that file can cost more than the job (here
	# pyenv's init: about 1 s of CPU and 1.5 s of wall per login, for
	# backup and restic alike). A receiver is a dedicated account; the
	# keys' HOME is an empty folder, as such an account's would be.
	mkdir -p "$SSHD_DIR/home"
	sed -i -e "s|^ssh-|environment=\"HOME=$SSHD_DIR/home\" ssh-|" \
		-e "s|^restrict,|environment=\"HOME=$SSHD_DIR/home\",restrict,|" "$SSHD_DIR/ak/root"
	# The ssh client of every tool logs its byte counts to one file.
	printf '\tLogLevel VERBOSE\n' | tee -a "$SSHD_DIR/ssh_config.backup" >>"$SSHD_DIR/ssh_config.peers"
	: >"$SSHD_DIR/client.log"
	SSH_BACKUP="ssh -F $SSHD_DIR/ssh_config.backup -E $SSHD_DIR/client.log"
	SSH_PEERS="ssh -F $SSHD_DIR/ssh_config.peers -E $SSHD_DIR/client.log"
	export SSHD_DIR SSHD_PORT RCV_URL SSH_BACKUP SSH_PEERS
	log "sshd on 127.0.0.1:$SSHD_PORT, receiver $RCV"
	if has backup-ssh; then
		backup_setup "$W/ssh/backup" && BACKUP_CONFIG=$W/ssh/backup/conf "$BK" remote add -q offsite "$RCV_URL" || exit 1
	fi
fi
if [ "$want_s3" = 1 ]; then
	# Both tools' repositories stay in the OSD's memory at once.
	CEPH_MEMSTORE_BYTES=$((8 << 30)) "$top/tests/ceph.sh" start "$W/ceph" || exit 1
	. "$W/ceph/env"
	export S3_ENDPOINT AWS_ACCESS_KEY_ID=$S3_ACCESS_KEY AWS_SECRET_ACCESS_KEY=$S3_SECRET_KEY
	log "radosgw on $S3_ENDPOINT"
	if has backup-s3; then
		curl -fsS -o /dev/null --aws-sigv4 aws:amz:us-east-1:s3 --user "$S3_ACCESS_KEY:$S3_SECRET_KEY" \
			-H "x-amz-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" \
			-X PUT "$S3_ENDPOINT/bench-backup" || exit 1
		backup_setup "$W/s3/backup" && BACKUP_CONFIG=$W/s3/backup/conf "$BK" remote add -q off s3://bench-backup &&
			git --git-dir="$W/s3/backup/repo" config remote.off.endpoint "$S3_ENDPOINT" || exit 1
	fi
fi

# On these VMs the first process to fill gigabytes of page cache pays a
# first-touch cost: one untimed writer of the corpus's size goes first.
log "warm-up writer, untimed"
dd if=/dev/zero of="$W/warmup.bin" bs=1M count=$((CORPUS_BYTES >> 20)) status=none
sync
rm -f "$W/warmup.bin"
warm() { find "$CORPUS" -type f -print0 | xargs -0 cat >/dev/null; }

# ------------------------------------------------------------------ nights --
night() {
	local n=$1 step=$2
	if has backup-ssh; then warm; measure ssh backup-ssh "$step" bssh_night; fi
	if has restic-sftp; then warm; measure ssh restic-sftp "$step" rsftp_night; fi
	if has borg-ssh; then warm; measure ssh borg-ssh "$step" borg_night "$n"; fi
	if has backup-s3; then
		warm
		measure s3 backup-s3 "$step.run" bs3_run && measure s3 backup-s3 "$step.push" bs3_push
	fi
	if has restic-s3; then warm; measure s3 restic-s3 "$step" rs3_night; fi
}
has restic-sftp && { measure ssh restic-sftp init rsftp_init || exit 1; }
has borg-ssh && { measure ssh borg-ssh init borg_init || exit 1; }
has restic-s3 && { measure s3 restic-s3 init rs3_init || exit 1; }
night 1 full
night 2 nochange
log "mutating the corpus"
"$MAKE_CORPUS" mutate "$CORPUS" >>"$OUT/env.txt" 2>&1 || exit 1
night 3 mutated

# ---------------------------------------------------------------- recovery --
# Each restore is deleted (untimed) before the next one runs.
recover() {
	local tool=$1 dest
	case $tool in
	backup-ssh)
		newhost_setup "$W/ssh/new"
		measure ssh "$tool" recovery.clone bssh_clone &&
			measure ssh "$tool" recovery.restore bssh_restore && verify "$tool" "$W/ssh/new/root/bench/disks/root"
		dest=$W/ssh/new
		;;
	backup-s3)
		newhost_setup "$W/s3/new"
		measure s3 "$tool" recovery.clone bs3_clone &&
			measure s3 "$tool" recovery.restore bs3_restore && verify "$tool" "$W/s3/new/root/bench/disks/root"
		dest=$W/s3/new
		;;
	*)
		dest=$W/restore-$tool
		rm -rf "$dest" "$dest.tmp"
		local fn=${2}_restore target=ssh
		[ "$tool" = restic-s3 ] && target=s3
		measure "$target" "$tool" recovery "$fn" "$dest" && verify "$tool" "$dest"
		;;
	esac
	[ "$KEEP" = 1 ] || { rm -rf "$dest" "$dest.tmp"; sync; }
}
has backup-ssh && recover backup-ssh
has restic-sftp && recover restic-sftp rsftp
has borg-ssh && recover borg-ssh borg
has backup-s3 && recover backup-s3
has restic-s3 && recover restic-s3 rs3

# ------------------------------------------------------------------ report --
{
	echo "## bench-offsite $(date -Is)"
	echo
	sed 's/^/    /' "$OUT/env.txt"
	echo
	echo "A step of backup-s3 is its run and its push summed (peak RSS: the larger);"
	echo "backup's recovery is its clone and its restore summed. CPU: the client's"
	echo "user+sys; server: sshd and all it ran, or ceph-mon + ceph-osd + radosgw."
	echo "Wire: SSH stream bytes counted by the ssh client, or object bytes counted by radosgw."
	echo
	echo "| target | tool | step | wall s | client CPU s | server CPU s | peak RSS MiB | up MB | down MB | conns/requests | wall / restic's |"
	echo "|---|---|---|---|---|---|---|---|---|---|---|"
	awk -F'\t' '
	{ split($3, s, "."); k = $1 SUBSEP $2 SUBSEP s[1]
	  if (!(k in wall)) { order[++n] = k }
	  wall[k] += $5; cpu[k] += $6 + $7; srv[k] += $8; if ($9 > rss[k]) rss[k] = $9
	  up[k] += $10; down[k] += $11; req[k] += $12; if ($4 != 0) fail[k] = 1 }
	END {
	  for (i = 1; i <= n; i++) {
	    split(order[i], p, SUBSEP); if (p[3] == "init") continue
	    r = p[1] == "ssh" ? "restic-sftp" : "restic-s3"; rk = p[1] SUBSEP r SUBSEP p[3]
	    ratio = (rk in wall && wall[rk] > 0) ? sprintf("%.2f", wall[order[i]] / wall[rk]) : "-"
	    printf "| %s | %s | %s | %s%.2f | %.1f | %.1f | %.0f | %.1f | %.1f | %d | %s |\n", p[1], p[2], p[3],
	      fail[order[i]] ? "FAILED " : "", wall[order[i]], cpu[order[i]], srv[order[i]], rss[order[i]] / 1024,
	      up[order[i]] / 1e6, down[order[i]] / 1e6, req[order[i]], ratio } }' "$OUT/steps.tsv"
	echo
	echo "Restores checked with rsync -aHAXn --checksum -i --delete (lines itemized; 0 = exact):"
	echo
	awk -F'\t' '{ printf "- %s: %s\n", $1, $2 }' "$OUT/verify.tsv"
	echo
	echo "### Every step"
	echo
	echo "| target | tool | step | rc | wall s | user s | sys s | server CPU s | peak RSS KiB | up B | down B | conns/requests | load before / idle wait / foreign CPU |"
	echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
	awk -F'\t' '{ printf "|"; for (i = 1; i <= NF; i++) printf " %s |", $i; printf "\n" }' "$OUT/steps.tsv"
	echo
	echo "Logs: $OUT"
} >"$OUT/summary.md"
cat "$OUT/summary.md"
