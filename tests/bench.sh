#!/bin/sh
# make bench: backup beside restic, borg and bup on the shared corpus
# (../shared/bench). Works in /tmp (BENCH); nothing lands in the checkout.
# TOOLS="backup restic" limits the tools; the figures go in docs/PERFORMANCE.md.
# BENCH_ENCRYPTED=1 adds the column backupenc: backup on an encrypted
# repository (tests/bench-adapter.sh), next to backup, and the extra
# column backupenckey: the same opened with --key-file instead of the
# passphrase, which shows what the passphrase's scrypt costs.
# REPEAT_RESTORE=N (default 2): then N more restores per tool, fair ones
# (tests/bench-restore.sh); 0 for compare.sh's single restores only.
set -e
top=$(cd "$(dirname "$0")/.." && pwd)
bench=${SHARED_BENCH:-$top/../shared/bench}
[ -x "$bench/compare.sh" ] || { echo "bench: no $bench/compare.sh; set SHARED_BENCH" >&2; exit 1; }
missing=
for p in restic borgbackup bup rsync acl attr time; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
fi
export BENCH=${BENCH:-/tmp/bench}
# The adapter keeps the machines and restored disks beside the repository;
# a previous run's would make "restore --new rN" refuse an existing machine.
for r in repo-backup repo-backupenc repo-backupenckey; do
	rm -rf "$BENCH/$r" "$BENCH/$r.conf" "$BENCH/$r.machines" "$BENCH/$r.restored" "$BENCH/$r.pw" "$BENCH/$r.key"
done
export ADAPTER_FILE=$top/tests/bench-adapter.sh SHARED_ADAPTER=$bench/backup-adapter.sh BACKUP_BIN=$top/backup
default="backup restic borg bup"
[ "${BENCH_ENCRYPTED:-0}" = 1 ] && default="backup backupenc backupenckey restic borg bup"
# compare.sh's restores run once each, in the order of the tools, which
# favours the first (docs/PERFORMANCE.md): tests/bench-restore.sh repeats
# them, alternated, each after dropping the page cache, from the
# repositories compare.sh keeps for it. REPEAT_RESTORE=0: compare.sh's only.
export OUT=${OUT:-$BENCH/results-$(date +%Y%m%d-%H%M%S)}
tools=${TOOLS:-$default}
[ "${REPEAT_RESTORE:-2}" -gt 0 ] || exec "$bench/compare.sh" $tools
keep=${KEEP:-0}
status=0
KEEP=1 "$bench/compare.sh" $tools || status=$?
SHARED_BENCH=$bench "$top/tests/bench-restore.sh" $tools || status=$?
if [ "$keep" != 1 ]; then
	for t in $tools; do rm -rf "$BENCH/repo-$t" "$BENCH/cache/$t" "$BENCH/restore-$t"; done
fi
exit "$status"
