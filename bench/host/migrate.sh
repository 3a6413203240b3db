#!/bin/bash
# Migrate downtime of a running, declared container with MB of data (default
# 1024) between two daemons on zfs (two datasets of one file-backed pool
# under zfs-fuse, the set-up of tests/integration/zfs_migrate.sh). The bulk
# is sent while it runs; it is down from the end of its stop here to running
# there: the last incremental send and import, and the start. Prints the
# downtime clbsd migrate reports and its parts (the last export here, the
# import there, the start there), the whole migration's time, and the data
# rate of the full send; target: downtime <= 1 s. Then its floor, the same
# increment by hand with bare zfs commands, and the ratio of the two
# medians (see "floor" below). Both daemons log at debug
# level, which times every zfs command (BENCH_LOGS=DIR keeps their logs).
#
#   bench/host/migrate.sh [MB] [RUNS]   (default 1024 MB, 3 runs, back and forth)
set -u
MB=${1:-1024}
RUNS=${2:-3}
cd "$(dirname "$0")/../.." || exit 2
# shellcheck source=tests/lib.sh
. tests/lib.sh
T_NAME=bench_migrate
for b in clbsd clbsdd clbsd-shim; do
	[ -x "$BUILD/$b" ] || { echo "bench/host/migrate.sh: build first (make)" >&2; exit 2; }
done
t_before_start() {
	t_zfs_setup || return 1
	# Room for the data twice (both ends) and their snapshots.
	zpool destroy -f "$ZPOOL" && truncate -s $((MB * 3 + 1024))M "$ZPOOL_FILE" &&
		zpool create -m none "$ZPOOL" "$ZPOOL_FILE" || return 1
	cat >"$CONF" <<CONF
(host :storage (:driver zfs :pool "$ZPOOL" :root "$ZPOOL/clbsd"))
(container big :image "forge" :command ("sleep" "100000")
  :volumes ((:dataset "data" :path "/data")))
CONF
	# shellcheck disable=SC2034 # read by t_start_daemon
	DAEMON_NS="--net"
}
t_setup
t_forge
ROOT2="$TMP/root2"
RUN2="$TMP/run2"
SOCK2="$RUN2/clbsd.sock"
mkdir -p "$TMP/etc2"
echo "(host :storage (:driver zfs :pool \"$ZPOOL\" :root \"$ZPOOL/clbsd2\"))" >"$TMP/etc2/clbsd.conf"
c2() { "$BUILD/clbsd" --socket "$SOCK2" "$@"; }
unshare --net -- "$BUILD/clbsdd" --root "$ROOT2" --run "$RUN2" --socket "$SOCK2" \
	--config "$TMP/etc2/clbsd.conf" --cgroup-parent "clbsd-$T_ID-2" --pool=0 \
	--log-level debug >>"$TMP/daemon2.log" 2>&1 &
D2=$!
stop2() {
	rm -f "$TMP/etc2/conf.d/90-live.conf"
	c2 apply >/dev/null 2>&1
	for n in $(c2 --json ps -a 2>/dev/null | python3 -c 'import json,sys
for c in json.load(sys.stdin): print(c["name"])' 2>/dev/null); do c2 rm -f -v "$n" >/dev/null 2>&1; done
	kill "$D2" 2>/dev/null && wait "$D2" 2>/dev/null
	find /sys/fs/cgroup -maxdepth 2 -type d -name "clbsd-$T_ID-2" -exec rmdir {} + 2>/dev/null
}
# BENCH_LOGS=DIR: both daemons' logs are copied there (each zfs command's time).
trap 'stop2; [ -n "${BENCH_LOGS:-}" ] && cp "$TMP/daemon.log" "$TMP/daemon2.log" "$BENCH_LOGS/"; t_cleanup' EXIT
wait_until 15 c2 info >/dev/null 2>&1 || { echo "target did not start" >&2; exit 1; }
wait_until 30 sh -c '"$0" --socket "$1" exec big true 2>/dev/null' "$BUILD/clbsd" "$SOCK" ||
	{ echo "big did not start" >&2; exit 1; }
# Incompressible data in the volume, written once.
clbsd exec big sh -c "head -c $((MB * 1048576)) /dev/urandom > /data/blob" ||
	{ echo "writing the data failed" >&2; exit 1; }
sum=$(clbsd exec big md5sum /data/blob | cut -d' ' -f1)
echo "bench/host/migrate.sh: $MB MB in a volume of a declared container, zfs-fuse, $(nproc) CPUs"
printf '%-4s %-5s %-8s %-8s %-8s %-8s %-8s %-8s %s\n' RUN DIR STOP_S DOWN_S EXPORT_S \
	IMPORT_S START_S TOTAL_S FULL_SEND_MB_S
from="$SOCK" to="$SOCK2"
downs=()
for i in $(seq "$RUNS"); do
	t0=$(date +%s.%N)
	left=""
	if ! "$BUILD/clbsd" --socket "$from" migrate -t 1 big "unix:$to" 2>"$TMP/progress" >/dev/null; then
		# Moved, but zfs-fuse called the source's dataset busy: the row
		# counts; the way back is blocked by the copy left there.
		grep -q "moved, but removing it here failed" "$TMP/progress" ||
			{ echo "migrate failed: $(cat "$TMP/progress")" >&2; exit 1; }
		left="(the source's copy could not be removed: $(grep -o 'cannot destroy.*' "$TMP/progress"))"
	fi
	t1=$(date +%s.%N)
	down=$(sed -n 's/.*down \([0-9.]*\) s.*/\1/p' "$TMP/progress")
	stop=$(sed -n 's/.*stopped in \([0-9.]*\) s.*/\1/p' "$TMP/progress")
	parts=$(sed -n 's/.*export \([0-9.]*\), import \([0-9.]*\), start \([0-9.]*\) s.*/\1 \2 \3/p' \
		"$TMP/progress")
	read -r exp imp sta <<<"${parts:-? ? ?}"
	total=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
	mbs=$(awk -v mb="$MB" -v t="$total" -v d="$down" 'BEGIN { printf "%.0f", mb / (t - d) }')
	dir=$([ "$from" = "$SOCK" ] && echo "a->b" || echo "b->a")
	printf '%-4s %-5s %-8s %-8s %-8s %-8s %-8s %-8.2f %s\n' "$i" "$dir" "$stop" "$down" "$exp" \
		"$imp" "$sta" "$total" "$mbs"
	downs+=("$down")
	at=$to
	got=$("$BUILD/clbsd" --socket "$to" exec big md5sum /data/blob | cut -d' ' -f1)
	[ "$got" = "$sum" ] || { echo "data differs after run $i" >&2; exit 1; }
	[ -n "$left" ] && { echo "$left; stopping"; break; }
	tmp=$from from=$to to=$tmp
done
echo "target: downtime <= 1 s (FULL_SEND_MB_S is the data over the time outside the downtime)"

# The floor: the storage part of the downtime with nothing of clbsd around
# it. The container's dataset and its volume (where it runs now) are copied
# whole to a scratch dataset once; then each run takes a snapshot of both,
# unmounts the copies (zfs-fuse serves stale pages to a mounted dataset
# that receives), sends each as the changes since the last one straight
# into `zfs recv -F` (-F instead of a rollback, as clbsd receives), and
# mounts both again. clbsd's downtime adds its checks and records, its
# API calls, the image's and volumes' bookkeeping and the start.
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
secs_since() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.3f", b - a }'; }
root=$([ "$at" = "$SOCK" ] && echo "$ZPOOL/clbsd" || echo "$ZPOOL/clbsd2")
top=$root/containers/big vol=$root/volumes/big/data fl=$ZPOOL/floor
zfs create -o mountpoint="$TMP/floor" "$fl" && zfs snapshot "$top@floor0" &&
	zfs snapshot "$vol@floor0" && zfs send "$top@floor0" | zfs recv "$fl/c" &&
	zfs send "$vol@floor0" | zfs recv "$fl/v" ||
	{ echo "floor: the copy failed" >&2; exit 1; }
floors=()
printf '%-4s %s\n' RUN FLOOR_S
for i in $(seq "$RUNS"); do
	b=$((i - 1))
	t0=$(date +%s.%N)
	zfs snapshot "$top@floor$i" && zfs snapshot "$vol@floor$i" &&
		zfs umount "$fl/c" && zfs umount "$fl/v" &&
		zfs send -i "@floor$b" "$top@floor$i" | zfs recv -F "$fl/c" &&
		zfs send -i "@floor$b" "$vol@floor$i" | zfs recv -F "$fl/v" &&
		zfs mount "$fl/c" && zfs mount "$fl/v" || { echo "floor: run $i failed" >&2; exit 1; }
	floors+=("$(secs_since "$t0")")
	printf '%-4s %s\n' "$i" "${floors[-1]}"
	zfs destroy "$top@floor$b" && zfs destroy "$vol@floor$b"
done
# The copy and the last snapshots go with the pool (zfs-fuse calls a
# dataset it just mounted busy for a while).
dm=$(median "${downs[@]}") fm=$(median "${floors[@]}")
echo "downtime (median) $dm s, floor (median) $fm s: $(awk -v d="$dm" -v f="$fm" 'BEGIN { printf "%.1f", d / f }') x the floor"
t_done
