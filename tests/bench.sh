#!/bin/sh
# make bench: backup beside restic, borg and bup on the shared corpus
# (../shared/bench). Works in /tmp (BENCH); nothing lands in the checkout.
# TOOLS="backup restic" limits the tools; the figures go in docs/PERFORMANCE.md.
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
rm -rf "$BENCH/repo-backup" "$BENCH/repo-backup.conf" "$BENCH/repo-backup.machines" "$BENCH/repo-backup.restored"
export ADAPTER_FILE=$bench/backup-adapter.sh BACKUP_BIN=$top/backup
exec "$bench/compare.sh" ${TOOLS:-backup restic borg bup}
