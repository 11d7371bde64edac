#!/bin/sh
# Installs the Debian packages that building, testing and the demo need,
# on a machine that may have nothing but this checkout and a shell (a
# minimal Debian 12 has no make, compiler or git). Run as root on Debian
# 12; does nothing when everything is there. Every program the tests call
# is in this list, or in Debian's minimal base system (make check-fresh
# proves it); the benchmark installs the peers it compares with itself.
set -e
# make, gcc, pkg-config: the build. python3: JSON fields and crafted
# repositories in the tests. systemd: its systemd-analyze checks the units
# that backup schedule prints. e2fsprogs, util-linux: ext4 disk images, loop
# mounts, setpriv. clang, libclang-rt-14-dev: the fuzz targets.
# openssh-server, openssh-client: the offsite tests start their own sshd on
# a loopback port (tests/sshd.bash) and push to it with stock git over ssh.
# libcurl4-openssl-dev: the S3 client (its built-in SigV4 signs requests).
# ceph-mon ceph-osd ceph-common radosgw: the real S3 server the S3 tests
# start on loopback (tests/ceph.sh); uuid-runtime: its uuidgen; curl: its
# pre-warm requests.
pkgs="make build-essential pkg-config libgit2-dev libarchive-dev libzstd-dev libssl-dev zlib1g-dev
libacl1-dev bats bats-assert bats-support faketime rsync acl attr git zstd groff-base e2fsprogs
systemd clang libclang-rt-14-dev util-linux python3 openssh-server openssh-client
libcurl4-openssl-dev ceph-mon ceph-osd ceph-common radosgw uuid-runtime curl"
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
echo "install-deps: installing$missing" >&2
apt-get update -qq
apt-get install -y -qq --no-install-recommends $missing >/dev/null
