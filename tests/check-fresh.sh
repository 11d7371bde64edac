#!/bin/sh
# make check-fresh: the README's two commands on a freshly bootstrapped
# minimal Debian 12, as a new user would run them.
#
# Builds a `debootstrap --variant=minbase bookworm` root (kept as a tarball
# under /var/tmp, so later runs start in seconds), clones the committed tree
# of this checkout into /root/backup inside it, reads the two commands from
# README.md (tests/readme-commands.sh) and runs them there, in order, as
# root, with a clean environment. Exits non-zero naming the first command
# that failed; its last line is the test command's "N passed, N failed"
# (or "0 passed, 1 failed" when a command failed before any test ran).
# Run as root on Debian 12 (debootstrap is installed if missing).
# CHECK_FRESH_KEEP=1 keeps the root afterwards for a look inside.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
cache=${CHECK_FRESH_CACHE:-/var/tmp/backup-check-fresh-bookworm-minbase.tar}
mirror=${CHECK_FRESH_MIRROR:-http://deb.debian.org/debian}

say() { echo "check-fresh: $*" >&2; }
die() {
	say "$*"
	echo "0 passed, 1 failed"
	exit 1
}

[ "$(id -u)" = 0 ] || die "must run as root (it builds a chroot)"
git -C "$top" rev-parse --verify -q HEAD >/dev/null || die "'$top' has no commit to clone"

# The two commands, exactly as README.md gives them.
cmds=$("$top/tests/readme-commands.sh" print) || die "cannot read the two commands of README.md"

if ! command -v debootstrap >/dev/null; then
	say "installing debootstrap"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null ||
		die "cannot install debootstrap; apt-get install debootstrap"
fi

root=$(mktemp -d /var/tmp/backup-check-fresh.XXXXXX)
chmod 755 "$root"
log=$root.log

# Stops whatever still runs inside the root (a server a test left behind),
# detaches loop devices backed by files in it, unmounts everything at and
# below it and removes it, but only once nothing is mounted there any more.
mounted() { findmnt -rno TARGET | grep -e "^$root/" -e "^$root\$"; }
cleanup() {
	for p in /proc/[0-9]*; do
		[ "$(readlink "$p/root" 2>/dev/null)" = "$root" ] && kill -9 "${p#/proc/}" 2>/dev/null
	done
	losetup -nO NAME,BACK-FILE 2>/dev/null | while read -r dev file; do
		case $file in "$root"/*) losetup -d "$dev" 2>/dev/null ;; esac
	done
	mounted | sort -r | while read -r m; do
		umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
	done
	rm -f "$log"
	if mounted >/dev/null; then
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
# kernel's file systems (loop devices, /proc for the tests). The root is
# itself a mount point, as / is on a real host: unshare -m, which the tests
# use, fails in a chroot whose root is not one.
cat >"$root/etc/apt/sources.list" <<EOF
deb $mirror bookworm main
deb $mirror bookworm-updates main
deb http://deb.debian.org/debian-security bookworm-security main
EOF
cp /etc/resolv.conf "$root/etc/resolv.conf"
mount --bind "$root" "$root"
mount -t proc proc "$root/proc"
mount -t sysfs sysfs "$root/sys"
mount --rbind /dev "$root/dev"
mount --make-rslave "$root/dev"
mount -t tmpfs tmpfs "$root/run"

git clone -q --no-local "$top" "$root/root/backup"
say "cloned $(git -C "$top" rev-parse --short HEAD) into /root/backup"

n=0
while IFS= read -r cmd <&3; do
	n=$((n + 1))
	say "command $n: $cmd"
	# The status of the command, not of tee, comes back through a file.
	{
		chroot "$root" /usr/bin/env -i HOME=/root TERM=dumb LANG=C.UTF-8 \
			PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
			/bin/sh -c "cd /root/backup && $cmd" 3<&- </dev/null 2>&1
		echo $? >"$log.status"
	} | tee "$log"
	status=$(cat "$log.status")
	rm -f "$log.status"
	if [ "$status" != 0 ]; then
		say "'$cmd' failed with exit status $status on a fresh Debian 12"
		tally=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$log" | tail -1)
		case $tally in
		*" 0 failed") echo "0 passed, 1 failed" ;;
		?*) echo "$tally" ;;
		*) echo "0 passed, 1 failed" ;;
		esac
		exit 1
	fi
done 3<<EOF
$cmds
EOF
say "both commands of README.md passed on a fresh Debian 12"
grep -E '^[0-9]+ passed, [0-9]+ failed' "$log" | tail -1
