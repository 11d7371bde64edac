#!/bin/bash
# A single-node Ceph with an S3 gateway, for the S3 tests: one monitor, one
# OSD that keeps its data in memory (memstore), no manager, and radosgw,
# all on 127.0.0.1 from Debian's packages, every file under DIR, no systemd
# and no root-only devices (docs: ../shared/offsite/MEASURED.md, appendix A).
#
#   tests/ceph.sh start DIR   start it; when it returns 0 the gateway answers,
#                             an S3 user exists and the pools are created, and
#                             DIR/env holds S3_ENDPOINT, S3_REGION,
#                             S3_ACCESS_KEY and S3_SECRET_KEY (shell syntax)
#   tests/ceph.sh stop DIR    stop every process start began, wait for them
#
# Other test runs may run at the same time, so the monitor's and the
# gateway's ports are picked free at start (retried if another process takes
# one first), and the keys are new each time. A start that fails stops what
# it began and prints the log's tail. Processes are stopped by the ids start
# recorded in DIR/pids, never by name. The OSD holds at most
# CEPH_MEMSTORE_BYTES (default 2 GiB) of data, in its memory.
set -u

die() {
	echo "ceph.sh: $*" >&2
	exit 1
}

# A TCP port on 127.0.0.1 that nothing listens on now, below the ephemeral
# range so outgoing connections do not hold it.
free_port() {
	python3 -c '
import random, socket
for _ in range(200):
    p = random.randint(20000, 32000)
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p))
    except OSError:
        continue
    finally:
        s.close()
    print(p)
    break'
}

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
# Notes in the log how long start took to reach each step.
step() { echo "[$(elapsed "$T0") s] $*" >>"$D/log/setup.out"; }

# Starts a daemon in the foreground of its own process group and records
# its id; its output goes to the log.
spawn() {
	local name=$1
	shift
	setsid "$@" -f >>"$D/log/$name.out" 2>&1 </dev/null &
	echo "$! $name" >>"$D/pids"
}

# A process that exited but was not reaped yet (a zombie) is not alive.
alive() {
	local state
	[ -n "$1" ] && [ -r "/proc/$1/stat" ] || return 1
	state=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1)
	[ -n "$state" ] && [ "$state" != Z ]
}

pid_of() {
	awk -v n="$1" '$2 == n { p = $1 } END { print p }' "$D/pids"
}

# Everything is thrown away after a stop, so SIGKILL serves: a clean stop
# would make the memstore OSD write all its data to disk and wait 5 s for a
# monitor that may be gone already.
stop() {
	local pid name i left
	[ -f "$D/pids" ] || return 0
	while read -r pid name; do
		alive "$pid" && kill -9 "$pid" 2>/dev/null
	done <"$D/pids"
	for i in $(seq 1 50); do
		left=
		while read -r pid name; do
			alive "$pid" && left=1
		done <"$D/pids"
		[ -z "$left" ] && break
		sleep 0.1
	done
	rm -f "$D/pids"
	return 0
}

fail() {
	echo "ceph.sh: $*" >&2
	for f in "$D"/log/*.log "$D"/log/*.out; do
		[ -s "$f" ] || continue
		echo "--- $f" >&2
		tail -5 "$f" >&2
	done
	stop
	exit 1
}

write_conf() {
	cat >"$D/ceph.conf" <<CONF
[global]
fsid = $FSID
mon host = v2:127.0.0.1:$MON_PORT
mon initial members = a
public network = 127.0.0.0/8
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
keyring = $D/keyring
run dir = $D/run
admin socket = $D/run/\$name.asok
log file = $D/log/\$name.log
pid file = $D/run/\$name.pid
crash dir = $D/crash
ms bind ipv4 = true
ms bind ipv6 = false
ms bind msgr1 = false
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 1
osd pool default pgp num = 1
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
auth allow insecure global id reclaim = false
mon max pg per osd = 1000
mon data avail warn = 1
mon data avail crit = 0
paxos propose interval = 0.1
osd objectstore = memstore
osd data = $D/osd.\$id
mon data = $D/mon.\$id
client mount timeout = 30
rados mon op timeout = 30
[osd]
keyring = $D/osd.\$id/keyring
memstore device bytes = ${CEPH_MEMSTORE_BYTES:-2147483648}
osd memory target = 939524096
osd op num shards = 1
osd op num threads per shard = 2
[client.rgw.a]
rgw data = $D/rgw
rgw dns name = localhost
rgw thread pool size = 32
CONF
}

# The monitor, on a free port; tried again on another port when something
# else took the port between the pick and the bind.
# Whether process PID listens on 127.0.0.1:PORT (and not some other
# process of another test run that took the port first).
listens() {
	python3 - "$1" "$2" <<'PY'
import os, sys
pid, port = sys.argv[1], int(sys.argv[2])
want = "0100007F:%04X" % port
inodes = set()
for line in open("/proc/net/tcp").read().splitlines()[1:]:
    f = line.split()
    if f[1] == want and f[3] == "0A":
        inodes.add("socket:[%s]" % f[9])
try:
    fds = os.listdir("/proc/%s/fd" % pid)
except OSError:
    sys.exit(1)
for fd in fds:
    try:
        if os.readlink("/proc/%s/fd/%s" % (pid, fd)) in inodes:
            sys.exit(0)
    except OSError:
        pass
sys.exit(1)
PY
}

# Waits until PID listens on PORT; fails when it exits first.
wait_listen() {
	local pid=$1 port=$2 i
	for i in $(seq 1 300); do
		listens "$pid" "$port" && return 0
		alive "$pid" || return 1
		sleep 0.1
	done
	return 1
}

# The monitor, on a free port; tried again on another port when something
# else took the port between the pick and the bind.
start_mon() {
	local try pid
	for try in 1 2 3; do
		MON_PORT=$(free_port)
		[ -n "$MON_PORT" ] || fail "no free port for the monitor"
		rm -rf "$D/mon.a"
		mkdir -p "$D/mon.a"
		write_conf
		monmaptool --create --clobber --addv a "[v2:127.0.0.1:$MON_PORT]" --fsid "$FSID" \
			"$D/monmap" >>"$D/log/setup.out" 2>&1 || fail "monmaptool failed"
		ceph-mon --mkfs -i a --monmap "$D/monmap" --keyring "$D/keyring" \
			>>"$D/log/setup.out" 2>&1 || fail "ceph-mon --mkfs failed"
		spawn mon.a ceph-mon -i a
		pid=$(pid_of mon.a)
		wait_listen "$pid" "$MON_PORT" && return 0
		alive "$pid" && fail "the monitor does not listen on port $MON_PORT"
	done
	fail "the monitor could not bind a port"
}

# One client process does every monitor command of the start (each run of
# the ceph command costs a Python start-up): the OSD's identity, radosgw's
# key, and radosgw's pools. The pools are made before the OSD boots, so it
# creates all their placement groups at once, instead of radosgw and the
# first bucket and object making them one by one (about 2 s each). Prints
# the new OSD's id.
cluster_setup() {
	/usr/bin/python3 - "$1" "$2" "$D/rgw/keyring" <<'PY'
import json, sys, threading
import rados
uuid, key, rgw_keyring = sys.argv[1:4]
c = rados.Rados(conffile="", name="client.admin")
c.conf_read_file()
c.connect(timeout=30)
failed = []
def cmd(inbuf=b"", **args):
    ret, out, err = c.mon_command(json.dumps(args), inbuf, timeout=30)
    if ret != 0:
        failed.append("%s: %s" % (args["prefix"], err))
        raise RuntimeError(failed[-1])
    return out
osd = cmd(json.dumps({"cephx_secret": key}).encode(), prefix="osd new", uuid=uuid, format="json")
out = cmd(prefix="auth get-or-create", entity="client.rgw.a",
          caps=["mon", "allow rw", "osd", "allow rwx"])
open(rgw_keyring, "wb").write(out)
# Sent together, the commands share the monitor's map updates.
def pool(p):
    cmd(prefix="osd pool create", pool=p, pg_num=1, pgp_num=1)
    cmd(prefix="osd pool application enable", pool=p, app="rgw")
threads = [threading.Thread(target=pool, args=(p,)) for p in
           [".rgw.root", "default.rgw.log", "default.rgw.control", "default.rgw.meta",
            "default.rgw.buckets.index", "default.rgw.buckets.data",
            "default.rgw.buckets.non-ec"]]
for t in threads:
    t.start()
for t in threads:
    t.join()
if failed:
    sys.exit("\n".join(failed))
print(json.loads(osd)["osdid"])
c.shutdown()
PY
}

start_osd() {
	local uuid key id
	uuid=$(uuidgen)
	key=$(ceph-authtool --gen-print-key)
	id=$(cluster_setup "$uuid" "$key" 2>>"$D/log/setup.out") || fail "cluster set-up failed"
	step "OSD $id, radosgw key and pools made"
	mkdir -p "$D/osd.$id"
	printf '[osd.%s]\n\tkey = %s\n' "$id" "$key" >"$D/osd.$id/keyring"
	ceph-osd -i "$id" --mkfs --key "$key" --osd-uuid "$uuid" \
		>>"$D/log/setup.out" 2>&1 || fail "ceph-osd --mkfs failed"
	spawn "osd.$id" ceph-osd -i "$id"
}

# radosgw on a free port, tried again on another port when the bind fails.
# It waits for the OSD itself.
start_rgw() {
	local try pid
	for try in 1 2 3; do
		RGW_PORT=$(free_port)
		[ -n "$RGW_PORT" ] || fail "no free port for radosgw"
		spawn rgw.a radosgw -n client.rgw.a --keyring "$D/rgw/keyring" \
			--rgw-frontends "beast endpoint=127.0.0.1:$RGW_PORT"
		pid=$(pid_of rgw.a)
		wait_listen "$pid" "$RGW_PORT" && return 0
		alive "$pid" && fail "radosgw does not listen on port $RGW_PORT"
	done
	fail "radosgw could not bind a port"
}

start() {
	local s3 eh
	T0=$(now)
	[ -e "$D/pids" ] && die "'$D' already holds a running cluster; stop it first"
	mkdir -p "$D" || die "cannot create '$D'"
	D=$(cd "$D" && pwd)
	rm -rf "$D"/mon.a "$D"/osd.* "$D"/rgw "$D"/log "$D"/run "$D"/crash "$D"/env \
		"$D"/monmap "$D"/keyring "$D"/ceph.conf
	mkdir -p "$D/run" "$D/log" "$D/rgw" "$D/crash"
	: >"$D/pids"
	export CEPH_CONF=$D/ceph.conf
	FSID=$(uuidgen)
	ceph-authtool --create-keyring "$D/keyring" --gen-key -n mon. --cap mon 'allow *' \
		>>"$D/log/setup.out" 2>&1 || fail "ceph-authtool failed"
	ceph-authtool "$D/keyring" --gen-key -n client.admin --cap mon 'allow *' \
		--cap osd 'allow *' --cap mds 'allow *' --cap mgr 'allow *' \
		>>"$D/log/setup.out" 2>&1 || fail "ceph-authtool failed"
	start_mon
	step "monitor in quorum on port $MON_PORT"
	start_osd
	step "OSD started"
	start_rgw
	step "radosgw answers on port $RGW_PORT"
	ACCESS=CI$(head -c 9 /dev/urandom | od -An -tx1 | tr -d ' \n' | tr a-f A-F)
	SECRET=$(head -c 24 /dev/urandom | base64 | tr '+/' '-_')
	radosgw-admin user create --uid=ci --display-name=ci --access-key="$ACCESS" \
		--secret-key="$SECRET" >>"$D/log/setup.out" 2>&1 || fail "cannot create the S3 user"
	step "S3 user created"
	ENDPOINT=http://127.0.0.1:$RGW_PORT
	# The first bucket and the first object create the index and data pools
	# (about 2.5 s each on 2 cores): pay that here, not in a test.
	eh="x-amz-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	s3() {
		curl -fsS -o /dev/null --max-time 60 --aws-sigv4 aws:amz:us-east-1:s3 \
			--user "$ACCESS:$SECRET" "$@" 2>>"$D/log/setup.out"
	}
	echo warm >"$D/warm.txt"
	s3 -H "$eh" -X PUT "$ENDPOINT/warmup" &&
		s3 -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" -T "$D/warm.txt" "$ENDPOINT/warmup/o" &&
		s3 -H "$eh" -X DELETE "$ENDPOINT/warmup/o" &&
		s3 -H "$eh" -X DELETE "$ENDPOINT/warmup" || fail "pre-warm requests failed"
	rm -f "$D/warm.txt"
	step "pools pre-warmed"
	(
		umask 077
		cat >"$D/env" <<ENV
S3_ENDPOINT=$ENDPOINT
S3_REGION=us-east-1
S3_ACCESS_KEY=$ACCESS
S3_SECRET_KEY=$SECRET
ENV
	)
	echo "ceph.sh: radosgw ready on $ENDPOINT in $(elapsed "$T0") s" >&2
}

[ $# = 2 ] || die "usage: ceph.sh start|stop DIR"
D=$2
# bats reads its TAP stream from fd 3: daemons must not hold it open.
exec 3>&-
case $1 in
start) start ;;
stop)
	[ -d "$D" ] || exit 0
	D=$(cd "$D" && pwd)
	stop
	;;
*) die "usage: ceph.sh start|stop DIR" ;;
esac
