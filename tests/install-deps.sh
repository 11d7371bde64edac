#!/bin/sh
# Installs the Debian packages that building and testing backup need.
# Run as root on Debian 12; does nothing when everything is there.
set -e
# systemd: its systemd-analyze checks the units that backup schedule prints.
pkgs="build-essential pkg-config libgit2-dev libarchive-dev libzstd-dev libssl-dev zlib1g-dev
libacl1-dev bats bats-assert bats-support faketime rsync acl attr git zstd groff-base e2fsprogs
systemd clang libclang-rt-14-dev util-linux"
missing=
for p in $pkgs; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
	echo "install-deps: missing packages:$missing; run as root" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends $missing >/dev/null
