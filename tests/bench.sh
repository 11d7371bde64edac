#!/bin/sh
# make bench: backup beside restic, borg and bup on the shared corpus
# (../shared/bench). Works in /tmp (BENCH); nothing lands in the checkout.
# TOOLS="backup restic" limits the tools; the figures go in docs/PERFORMANCE.md.
# BENCH_ENCRYPTED=1 adds the column backupenc: backup on an encrypted
# repository (tests/bench-adapter.sh), next to backup, and the extra
# column backupenckey: the same opened with --key-file instead of the
# passphrase, which shows what the passphrase's scrypt costs.
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
exec "$bench/compare.sh" ${TOOLS:-$default}
