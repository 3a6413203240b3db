#!/bin/bash
# Host export and import of N containers (default 20) holding MB of data in
# total (default 1024, in their named volumes) between two daemons on zfs
# (two datasets of one file-backed pool under zfs-fuse), against plain
# `zfs send | zfs recv` of the same datasets, in one run: through a file
# (export, then import), and streamed (`host export -o - | host import -`,
# the pipe the peer uses too). Prints each one's time and throughput and
# the ratios clbsd / zfs (target >= 0.8, streamed).
#
# The peer is one `zfs send ds@snap | zfs recv` per container and volume
# dataset (after one `zfs snapshot -r`), into a dataset with mountpoint=none:
# `zfs send -R` would carry the mountpoint properties, and its copy would
# try to mount over the source's directories on this one host. (Its
# copies are not mounted, clbsd's are: a mounted peer copy is "busy" to
# zfs-fuse's destroy for a long while after.)
#
#   bench/host/export.sh [MB] [N]
set -u
MB=${1:-1024}
N=${2:-20}
cd "$(dirname "$0")/../.." || exit 2
# shellcheck source=tests/lib.sh
. tests/lib.sh
T_NAME=bench_host_export
for b in clbsd clbsdd clbsd-shim; do
	[ -x "$BUILD/$b" ] || { echo "bench/host/export.sh: build first (make)" >&2; exit 2; }
done
t_before_start() {
	t_zfs_setup || return 1
	# The data three times (source, target, the peer's copy), and room to keep the
	# pool mostly empty (zfs-fuse slows down as it fills).
	zpool destroy -f "$ZPOOL" && truncate -s $((MB * 8 + 2048))M "$ZPOOL_FILE" &&
		zpool create -m none "$ZPOOL" "$ZPOOL_FILE" || return 1
	cat >"$CONF" <<CONF
(host :storage (:driver zfs :pool "$ZPOOL" :root "$ZPOOL/clbsd"))
CONF
	# shellcheck disable=SC2034 # read by t_start_daemon
	DAEMON_NS="--net"
}
t_setup
t_forge
ROOT2="$TMP/root2"
RUN2="$TMP/run2"
SOCK2="$RUN2/clbsd.sock"
mkdir -p "$TMP/etc2/conf.d"
echo "(host :storage (:driver zfs :pool \"$ZPOOL\" :root \"$ZPOOL/clbsd2\"))" >"$TMP/etc2/clbsd.conf"
c2() { "$BUILD/clbsd" --socket "$SOCK2" "$@"; }
unshare --net -- "$BUILD/clbsdd" --root "$ROOT2" --run "$RUN2" --socket "$SOCK2" \
	--config "$TMP/etc2/clbsd.conf" --cgroup-parent "clbsd-$T_ID-2" --pool=0 >>"$TMP/daemon2.log" 2>&1 &
D2=$!
stop2() {
	for n in $(c2 --json ps -a 2>/dev/null | python3 -c 'import json,sys
for c in json.load(sys.stdin): print(c["name"])' 2>/dev/null); do c2 rm -f -v "$n" >/dev/null 2>&1; done
	kill "$D2" 2>/dev/null && wait "$D2" 2>/dev/null
	find /sys/fs/cgroup -maxdepth 2 -type d -name "clbsd-$T_ID-2" -exec rmdir {} + 2>/dev/null
}
trap 'stop2; zfs destroy -r "$ZPOOL/peer" >/dev/null 2>&1; t_cleanup' EXIT
wait_until 15 c2 info >/dev/null 2>&1 || { echo "target did not start" >&2; exit 1; }

# N running containers, the data spread over their volumes (incompressible).
per=$((MB * 1048576 / N))
for i in $(seq "$N"); do
	clbsd run -d --name "c$i" -v "data:/data" forge sleep 100000 >/dev/null ||
		{ echo "run c$i failed" >&2; exit 1; }
	clbsd exec "c$i" sh -c "head -c $per /dev/urandom > /data/blob" ||
		{ echo "writing c$i's data failed" >&2; exit 1; }
done
sync
echo "bench/host/export.sh: $N containers, $MB MB in their volumes, zfs-fuse, $(nproc) CPUs"

# The peer: the same datasets, one snapshot, one send | recv each, into
# a copy removed afterwards. It runs right before the streamed clbsd and
# right after it (zfs-fuse slows down over a run, and with every dataset
# mounted: the two are averaged and both printed, with the ratio to each).
PEER=()
peer() {
	local t0 t1 ds k=0
	zfs snapshot -r "$ZPOOL/clbsd@peer" || exit 1
	zfs create -o mountpoint=none "$ZPOOL/peer" || exit 1
	t0=$(date +%s.%N)
	for ds in $(zfs list -H -o name -t filesystem -r "$ZPOOL/clbsd/containers" "$ZPOOL/clbsd/volumes" |
		grep -E "/(containers|volumes)/"); do
		k=$((k + 1))
		zfs send "$ds@peer" | zfs recv "$ZPOOL/peer/d$k" || { echo "zfs send | recv of $ds failed" >&2; exit 1; }
	done
	t1=$(date +%s.%N)
	PEER+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')")
	K=$k
	zfs destroy -r "$ZPOOL/peer" >/dev/null 2>&1
	zfs destroy -r "$ZPOOL/clbsd@peer" >/dev/null 2>&1
}

# clbsd: host export, then host import into the second daemon.
t0=$(date +%s.%N)
clbsd host export --label bench -o "$TMP/bench.host" >/dev/null 2>"$TMP/err" ||
	{ echo "host export failed: $(cat "$TMP/err")" >&2; exit 1; }
t1=$(date +%s.%N)
c2 host import "$TMP/bench.host" >/dev/null 2>"$TMP/err" ||
	{ echo "host import failed: $(cat "$TMP/err")" >&2; exit 1; }
t2=$(date +%s.%N)
size=$(stat -c %s "$TMP/bench.host")
rm -f "$TMP/bench.host"
clbsd host diff "unix:$SOCK2" >"$TMP/diff" 2>&1 || { echo "the copy differs: $(head -5 "$TMP/diff")" >&2; exit 1; }

# clbsd streamed: host export -o - | host import -, the two halves at once
# (onto the target emptied again: its containers and volumes removed).
for n in $(c2 --json ps -a | python3 -c 'import json,sys
for c in json.load(sys.stdin): print(c["name"])'); do c2 rm -f -v "$n" >/dev/null || exit 1; done
peer
t5=$(date +%s.%N)
clbsd host export --label bench2 -o - 2>"$TMP/err" | c2 host import - >/dev/null 2>"$TMP/err2"
rcs=("${PIPESTATUS[@]}")
t6=$(date +%s.%N)
[ "${rcs[0]}" = 0 ] && [ "${rcs[1]}" = 0 ] ||
	{ echo "host export -o - | host import - failed: $(cat "$TMP/err" "$TMP/err2")" >&2; exit 1; }
clbsd host diff "unix:$SOCK2" >"$TMP/diff" 2>&1 || { echo "the streamed copy differs: $(head -5 "$TMP/diff")" >&2; exit 1; }

# The peer, once more, after clbsd.
peer

awk -v mb="$MB" -v a="$t0" -v b="$t1" -v c="$t2" -v p1="${PEER[0]}" -v p2="${PEER[1]}" -v f="$t5" -v g="$t6" \
	-v size="$size" -v k="$K" 'BEGIN {
	ex = b - a; im = c - b; cl = c - a; zf = (p1 + p2) / 2; st = g - f
	printf "%-36s %8s %10s\n", "", "SECONDS", "MB/S"
	printf "%-36s %8.2f %10.0f\n", "clbsd host export -o FILE", ex, mb / ex
	printf "%-36s %8.2f %10.0f\n", "clbsd host import FILE", im, mb / im
	printf "%-36s %8.2f %10.0f\n", "  the two, one after the other", cl, mb / cl
	printf "%-36s %8.2f %10.0f\n", "clbsd host export -o - | import -", st, mb / st
	printf "%-36s %8.2f %10.0f   (before %.2f s, after %.2f s)\n", "zfs send | recv (" k " datasets)", zf, mb / zf, p1, p2
	printf "archive: %.0f MB\n", size / 1048576
	printf "ratio clbsd / zfs throughput: streamed %.2f (target >= 0.8; %.2f and %.2f to the runs before and after); through a file %.2f\n", zf / st, p1 / st, p2 / st, zf / cl
}'
t_done
