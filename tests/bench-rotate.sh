#!/bin/bash
# The cost of space reclamation: 30 simulated days of daily backups of the
# benchmark corpus (each day changes about 1 % of the files: appends, edits,
# new files, deletions), then `rotate` at day 30 under /usr/bin/time.
# Usage: tests/bench-rotate.sh [CORPUS]   (default /tmp/bench/corpus.pristine)
# Works on a copy in $BENCH/rotate (default /tmp/bench); prints the figures.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
bk=$top/backup
src=${1:-/tmp/bench/corpus.pristine}
work=${BENCH:-/tmp/bench}/rotate
command -v faketime >/dev/null || { echo "bench-rotate: needs faketime" >&2; exit 1; }
rm -rf "$work" && mkdir -p "$work/machines"
# A private copy: a rebuild during the benchmark must not pull the binary away.
cp "$top/backup" "$work/backup"
bk=$work/backup
echo "copying the corpus ..." >&2
cp -a "$src" "$work/data"
export BACKUP_CONFIG=$work/backup.conf
printf '[repository]\n\tpath = %s/repo\n[machines]\n\tdir = %s/machines\n\troot = %s/restored\n' \
	"$work" "$work" "$work" >"$BACKUP_CONFIG"
printf '[machine]\n\tplan = 100G\n[disk "root"]\n\tsource = %s/data\n\tsize = 50G\n' "$work" >"$work/machines/bench.conf"
"$bk" init -q
"$bk" enable -q bench
mapfile -t files < <(find "$work/data" -type f -size +1k | sort)
n=${#files[@]}
RANDOM=42
for day in $(seq 0 29); do
	date=$(date -u -d "2026-10-01 +$day days" +%F)
	# About 1 % of the files change a little every day, and one new 2 MiB file arrives.
	for i in $(seq 1 $((n / 100))); do
		f=${files[$(( (RANDOM * 32768 + RANDOM) % n ))]}
		[ -f "$f" ] && printf 'day %s change %s\n' "$day" "$i" >>"$f"
	done
	head -c 2M /dev/urandom >"$work/data/new-$day.bin"
	[ "$day" -ge 3 ] && rm -f "$work/data/new-$((day - 3)).bin"
	faketime "$date 02:30:00" "$bk" run -q bench
done
echo "repository before rotate: $(du -sm "$work/repo" | cut -f1) MB" >&2
"$bk" list bench >&2
/usr/bin/time -f "rotate: %e s wall, %M KB peak RSS" \
	faketime "2026-10-31 12:00:00" "$bk" rotate bench
echo "repository after rotate: $(du -sm "$work/repo" | cut -f1) MB" >&2
"$bk" check -q && echo "check: sound" >&2
