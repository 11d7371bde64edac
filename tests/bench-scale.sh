#!/bin/bash
# The scale benchmark: one million small files (generated from a fixed seed)
# and a 20 GiB disk image that is mostly holes with random extents.
# For each: full run, no-change run, restore, with wall time and peak RSS.
# Usage: tests/bench-scale.sh [files|image|both]   (work area $BENCH/scale)
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
what=${1:-both}
work=${BENCH:-/tmp/bench}/scale
mkdir -p "$work"
cp "$top/backup" "$work/backup"
bk=$work/backup

make_files() {
	# 1,000,000 files of 0-4 KiB in 1,000 folders; contents from a seeded PRNG.
	[ -f "$work/files.done" ] && return
	rm -rf "$work/files"
	python3 - "$work/files" <<'PY'
import os, random, sys
root = sys.argv[1]
rnd = random.Random(20261128)
for d in range(1000):
    p = os.path.join(root, "d%03d" % d)
    os.makedirs(p)
    for f in range(1000):
        with open(os.path.join(p, "f%04d" % f), "wb") as fh:
            fh.write(rnd.randbytes(rnd.randrange(0, 4097)))
PY
	touch "$work/files.done"
}

make_image() {
	# 20 GiB sparse file with 64 random extents of 1-16 MiB.
	[ -f "$work/image.done" ] && return
	rm -rf "$work/image" && mkdir -p "$work/image"
	truncate -s 20G "$work/image/disk.img"
	python3 - "$work/image/disk.img" <<'PY'
import random, sys
rnd = random.Random(20261128)
with open(sys.argv[1], "r+b") as f:
    for i in range(64):
        off = rnd.randrange(0, (20 << 30) - (16 << 20)) & ~4095
        f.seek(off)
        f.write(rnd.randbytes(rnd.randrange(1, 17) << 20))
PY
	touch "$work/image.done"
}

measure() {	# name source
	local name=$1 src=$2 conf=$work/$1.conf
	rm -rf "$work/$name.repo" "$work/$name.machines" "$work/$name.restored"
	mkdir -p "$work/$name.machines"
	printf '[repository]\n\tpath = %s\n[machines]\n\tdir = %s\n\troot = %s\n' \
		"$work/$name.repo" "$work/$name.machines" "$work/$name.restored" >"$conf"
	printf '[machine]\n\tplan = 100G\n[disk "root"]\n\tsource = %s\n\tsize = 30G\n' "$src" \
		>"$work/$name.machines/m.conf"
	export BACKUP_CONFIG=$conf
	"$bk" init -q
	"$bk" enable -q m
	/usr/bin/time -f "$name full: %e s, %M KB peak RSS" "$bk" run -q m
	/usr/bin/time -f "$name no-change: %e s, %M KB peak RSS" "$bk" run -q m
	sync
	/usr/bin/time -f "$name restore: %e s, %M KB peak RSS" "$bk" restore -q m --new r1
	echo "$name repository: $(du -sm "$work/$name.repo" | cut -f1) MiB"
	rsync -aHAXn --checksum --delete -i "$src/" "$work/$name.restored/r1/disks/root/" | head -5
	echo "$name restored: $(du -sm "$work/$name.restored/r1/disks/root" | cut -f1) MiB on disk"
	rm -rf "$work/$name.restored"
}

case $what in
files | both) make_files; measure files "$work/files" ;;
esac
case $what in
image | both) make_image; measure image "$work/image" ;;
esac
