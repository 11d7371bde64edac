#!/bin/sh
# make check-fresh: the README's two commands on a freshly bootstrapped
# minimal Debian 12, as a new user would run them.
#
# Builds a `debootstrap --variant=minbase bookworm` root (kept as a tarball
# under /var/tmp, so later runs start in seconds), clones the committed tree
# of this checkout into /root/backup inside it, reads the two commands from
# README.md's "The two commands" section and runs them there, in order, as
# root, with a clean environment. Exits non-zero naming the first command
# that failed. Run as root on Debian 12 (debootstrap is installed if
# missing). CHECK_FRESH_KEEP=1 keeps the root afterwards for a look inside.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
cache=${CHECK_FRESH_CACHE:-/var/tmp/backup-check-fresh-bookworm-minbase.tar}
mirror=${CHECK_FRESH_MIRROR:-http://deb.debian.org/debian}

say() { echo "check-fresh: $*" >&2; }
die() { say "$*"; exit 1; }

[ "$(id -u)" = 0 ] || die "must run as root (it builds a chroot)"
git -C "$top" rev-parse --verify -q HEAD >/dev/null || die "'$top' has no commit to clone"

# The two commands: the indented lines of the README's section, comments cut.
cmds=$(awk '/^## /{ on = ($0 == "## The two commands") ; next }
	on && /^    [^ ]/ { sub(/^    /, ""); sub(/[ \t]+#.*$/, ""); print }' "$top/README.md")
[ "$(printf '%s\n' "$cmds" | grep -c .)" = 2 ] ||
	die "README.md's section \"The two commands\" must hold exactly two indented command lines"

if ! command -v debootstrap >/dev/null; then
	say "installing debootstrap"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null ||
		die "cannot install debootstrap; apt-get install debootstrap"
fi

root=$(mktemp -d /var/tmp/backup-check-fresh.XXXXXX)
chmod 755 "$root"

# Stops whatever still runs inside the root (a server a test left behind),
# detaches loop devices backed by files in it, unmounts everything below it
# and removes it, but only once nothing is mounted there any more.
cleanup() {
	for p in /proc/[0-9]*; do
		[ "$(readlink "$p/root" 2>/dev/null)" = "$root" ] && kill -9 "${p#/proc/}" 2>/dev/null
	done
	losetup -nO NAME,BACK-FILE 2>/dev/null | while read -r dev file; do
		case $file in "$root"/*) losetup -d "$dev" 2>/dev/null ;; esac
	done
	findmnt -rno TARGET | grep "^$root/" | sort -r | while read -r m; do
		umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
	done
	if findmnt -rno TARGET | grep -q "^$root/"; then
		say "left $root in place: something is still mounted below it"
	elif [ "${CHECK_FRESH_KEEP:-0}" = 1 ]; then
		say "kept the root in $root"
	else
		rm -rf "$root"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ -s "$cache" ]; then
	say "unpacking the minimal Debian 12 of $cache"
	tar --numeric-owner -xpf "$cache" -C "$root"
else
	say "bootstrapping a minimal Debian 12 (debootstrap --variant=minbase bookworm)"
	debootstrap --variant=minbase bookworm "$root" "$mirror" >"$root.debootstrap.log" 2>&1 ||
		{ tail -5 "$root.debootstrap.log" >&2; die "debootstrap failed; see $root.debootstrap.log"; }
	rm -f "$root.debootstrap.log"
	tar --numeric-owner -cpf "$cache.tmp.$$" -C "$root" . && mv "$cache.tmp.$$" "$cache"
fi

# A Debian server's usual sources, the host's name resolution, and the
# kernel's file systems (loop devices, /proc for the tests).
cat >"$root/etc/apt/sources.list" <<EOF
deb $mirror bookworm main
deb $mirror bookworm-updates main
deb http://deb.debian.org/debian-security bookworm-security main
EOF
cp /etc/resolv.conf "$root/etc/resolv.conf"
mount -t proc proc "$root/proc"
mount -t sysfs sysfs "$root/sys"
mount --rbind /dev "$root/dev"
mount --make-rslave "$root/dev"
mount -t tmpfs tmpfs "$root/run"

git clone -q --no-local "$top" "$root/root/backup"
say "cloned $(git -C "$top" rev-parse --short HEAD) into /root/backup"

n=0
status=0
while IFS= read -r cmd <&3; do
	n=$((n + 1))
	say "command $n: $cmd"
	set +e
	chroot "$root" /usr/bin/env -i HOME=/root TERM=dumb LANG=C.UTF-8 \
		PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
		/bin/sh -c "cd /root/backup && $cmd" 3<&-
	status=$?
	set -e
	if [ "$status" != 0 ]; then
		say "'$cmd' failed with exit status $status on a fresh Debian 12"
		exit 1
	fi
done 3<<EOF
$cmds
EOF
say "both commands of README.md passed on a fresh Debian 12"
