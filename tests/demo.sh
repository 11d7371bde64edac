#!/bin/sh
# The main job on a built-in default: a demo configuration and repository
# inside the checkout (demo/, ignored by git) that back up a real folder of
# this machine, list the backup, restore it as a new machine and compare.
# DEMO_SOURCE replaces the folder (default /usr/share/doc).
set -e
top=$(cd "$(dirname "$0")/.." && pwd)
demo=$top/demo
src=${DEMO_SOURCE:-/usr/share/doc}
export BACKUP_CONFIG=$demo/backup.conf
bk=$top/backup
mkdir -p "$demo/machines"
cat >"$BACKUP_CONFIG" <<CONF
[repository]
	path = $demo/repo
[machines]
	dir = $demo/machines
	root = $demo/restored
CONF
cat >"$demo/machines/demo.conf" <<CONF
[machine]
	plan = 20G
[disk "root"]
	source = $src
	size = 10G
	filesystem = ext4
[profile "default"]
	root = sda
	sda = root
CONF
[ -d "$demo/repo" ] || "$bk" init
"$bk" enable -q demo
echo "== backup run demo   (backs up $src)"
"$bk" run demo
echo "== backup run demo   (again: unchanged files are not read)"
"$bk" run demo
echo "== backup list"
"$bk" list
name=restored-$(date +%Y%m%d%H%M%S)
echo "== backup restore demo --new $name"
"$bk" restore demo --new "$name"
echo "== compare with rsync (no output means identical)"
rsync -aHAXn --checksum -i "$src/" "$demo/restored/$name/disks/root/"
echo "== backup check --read-data"
"$bk" check --read-data
echo "== backup drill demo   (restore to a scratch machine, verify every file, clean up)"
"$bk" drill demo
echo "== backup rotate --dry-run"
"$bk" rotate --dry-run demo
echo "demo done: repository $demo/repo, restored machine $demo/restored/$name"
