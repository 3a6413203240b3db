#!/bin/bash
# Shared helpers for integration tests. Source it, then call t_setup.
#
# Every test gets its own temporary root, run directory and socket, a daemon
# started in a private mount and network namespace, and a cgroup parent that
# carries the test's id. t_cleanup (run on exit, also after a failure) removes
# the containers, stops the daemon and every shim by pid, and checks that no
# cgroup or process of the test is left behind.
set -u
TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${BUILD:-build}
case "$BUILD" in /*) ;; *) BUILD="$TOP/$BUILD" ;; esac
T_NAME=$(basename "$0" .sh)
T_ID="t$$"
T_FAILED=0
T_DONE=0
DAEMON_PID=

ok() { echo "ok $T_NAME.$1"; }
fail() {
	echo "FAIL $T_NAME.$1: ${2:-}"
	T_FAILED=1
}
skip() { echo "skip $T_NAME.$1: $2"; }
# check NAME CMD...: ok when CMD succeeds.
check() {
	local name=$1
	shift
	if "$@"; then ok "$name"; else fail "$name" "command failed: $*"; fi
}

# wait_until SECONDS CMD...: poll CMD every 50 ms until it succeeds.
wait_until() {
	local limit=$1
	shift
	local end=$((SECONDS + limit))
	while [ $SECONDS -le $end ]; do
		"$@" && return 0
		sleep 0.05
	done
	return 1
}

clbsd() { "$BUILD/clbsd" --socket "$SOCK" "$@"; }

# A field of `clbsd inspect --json NAME` (jq-free: python3 is in deps).
field() {
	clbsd --json inspect "$1" 2>/dev/null |
		python3 -c 'import json,sys; v=json.load(sys.stdin)[0]
for k in sys.argv[1].split("."): v=v[k]
print(str(v).lower() if isinstance(v,bool) else v)' "$2"
}

t_require_root() {
	if [ "$(id -u)" -ne 0 ]; then
		skip all "integration tests need root"
		exit 0
	fi
}

# T_DETACH_ZFS: shell commands to run first in a new private mount
# namespace. It starts with a copy of every zfs-fuse mount of the tests
# running at the same time (test_zfs, zfs.sh): the copy keeps their datasets
# busy ("dataset is busy", "pool is busy") as long as the namespace lives, so
# it is detached there (the host's mounts stay).
# shellcheck disable=SC2016 # expanded by the sh that runs it
T_DETACH_ZFS='grep -s " - fuse.zfs " /proc/self/mountinfo | cut -d" " -f5 | sort -r |
	while read -r m; do umount -l "$m"; done'

# DAEMON_ARGS: one extra option for clbsdd (e.g. --pool=0). DAEMON_NS: the
# namespaces it gets (default a private mount namespace and a network one;
# the zfs test keeps the host's mounts, where zfs-fuse mounts its datasets).
t_start_daemon() {
	# The mount and network namespaces are throwaway: nothing the daemon
	# or its containers do there can touch the host's.
	local detach_zfs="$T_DETACH_ZFS; "'exec "$@"'
	[ -n "${DAEMON_NS:-}" ] && detach_zfs='exec "$@"'
	# shellcheck disable=SC2086 # DAEMON_NS is a list of options
	unshare ${DAEMON_NS:---mount --net --propagation private} -- sh -c "$detach_zfs" sh \
		"$BUILD/clbsdd" --root "$ROOT" --run "$RUN" --socket "$SOCK" \
		--cgroup-parent "clbsd-$T_ID" --log-level debug --config "$CONF" \
		${DAEMON_ARGS:+"$DAEMON_ARGS"} >>"$TMP/daemon.log" 2>&1 &
	DAEMON_PID=$!
	wait_until 10 test -S "$SOCK" || {
		echo "daemon did not come up:"
		tail -n 30 "$TMP/daemon.log"
		return 1
	}
	wait_until 5 "$BUILD/clbsd" --socket "$SOCK" info >/dev/null 2>&1
}

# A second daemon, another "host" on this one (host export/import tests):
# its own root, run directory, socket, configuration ($TMP/etc2/clbsd.conf,
# empty, with conf.d) and cgroup parent, in its own mount and network
# namespaces. c2 talks to it; t_second_stop removes its containers and the
# networks made through its API, then stops it.
ROOT2="" RUN2="" SOCK2="" D2=""
t_second_setup() {
	ROOT2="$TMP/root2"
	RUN2="$TMP/run2"
	SOCK2="$RUN2/clbsd.sock"
	mkdir -p "$TMP/etc2/conf.d"
	: >"$TMP/etc2/clbsd.conf"
}
c2() { "$BUILD/clbsd" --socket "$SOCK2" "$@"; }
t_second_start() {
	unshare --mount --net --propagation private -- sh -c "$T_DETACH_ZFS; "'exec "$@"' sh \
		"$BUILD/clbsdd" --root "$ROOT2" --run "$RUN2" --socket "$SOCK2" \
		--config "$TMP/etc2/clbsd.conf" --cgroup-parent "clbsd-$T_ID-2" --pool=0 \
		>>"$TMP/daemon2.log" 2>&1 &
	D2=$!
	wait_until 10 c2 info >/dev/null 2>&1
}
t_second_stop() {
	local n
	for n in $(c2 ps -a --json 2>/dev/null | python3 -c 'import json,sys
for c in json.load(sys.stdin): print(c["name"])' 2>/dev/null); do c2 rm -f -v "$n" >/dev/null 2>&1; done
	for n in $(c2 network ls --json 2>/dev/null | python3 -c 'import json,sys
for n in json.load(sys.stdin):
    if n.get("source") == "api": print(n["name"])' 2>/dev/null); do c2 network rm "$n" >/dev/null 2>&1; done
	[ -n "$D2" ] && kill "$D2" 2>/dev/null
	[ -n "$D2" ] && wait "$D2" 2>/dev/null
	D2=""
	find /sys/fs/cgroup -maxdepth 2 -type d -name "clbsd-$T_ID-2" -exec rmdir {} + 2>/dev/null
}

t_kill_daemon() {
	local sig=${1:-TERM}
	if [ -n "$DAEMON_PID" ]; then
		kill -s "$sig" "$DAEMON_PID" 2>/dev/null
		wait "$DAEMON_PID" 2>/dev/null
		DAEMON_PID=
	fi
	rm -f "$SOCK"
}

# The pids of every shim of this test (from their state files).
t_shim_pids() {
	local f
	for f in "$RUN"/containers/*/shim.json; do
		[ -f "$f" ] || continue
		python3 -c 'import json,sys; d=json.load(open(sys.argv[1]))
print(d.get("shim_pid",0) if d.get("status")=="running" else 0)' "$f" 2>/dev/null
	done
}

# Cgroup directories of this test still present on the host.
t_leftover_cgroups() {
	find /sys/fs/cgroup -maxdepth 3 -type d -name "clbsd-$T_ID" 2>/dev/null |
		while read -r d; do find "$d" -mindepth 1 -type d; done
}

# ---- zfs: a file-backed pool under zfs-fuse, made for this test only ----
ZPOOL=""
ZPOOL_FILE=""
ZFS_FUSE_PID=""
zfs_answers() { timeout 5 zpool list -H >/dev/null 2>&1; }
# A live zfs-fuse (a zombie one, not yet reaped by its parent, does not count).
fuse_running() {
	local f
	for f in /proc/[0-9]*/comm; do
		[ "$(cat "$f" 2>/dev/null)" = zfs-fuse ] || continue
		awk '{exit $3 == "Z"}' "${f%/comm}/stat" 2>/dev/null && return 0
	done
	return 1
}
# Test runs may overlap (two checkouts on one machine) and share the one
# zfs-fuse: each registers its pid under $ZFS_SHARE/users, and the last one
# to leave stops the zfs-fuse a test started (its pid in $ZFS_SHARE/pid),
# never one that was running before; flock keeps the steps apart.
ZFS_SHARE=/run/clbsd-tests/zfs
zfs_lock() {
	mkdir -p "$ZFS_SHARE/users" && exec {ZFS_LOCK_FD}>"$ZFS_SHARE/lock" && flock "$ZFS_LOCK_FD"
}
zfs_unlock() { exec {ZFS_LOCK_FD}>&-; }
# pid_gone PID: no such process, or a zombie its parent has not reaped.
pid_gone() { [ ! -e "/proc/$1" ] || awk '{exit $3 != "Z"}' "/proc/$1/stat" 2>/dev/null; }
# t_zfs_setup: sets ZPOOL, or prints a skip line and returns 1.
t_zfs_setup() {
	command -v zpool >/dev/null && command -v zfs-fuse >/dev/null ||
		{ skip all "zfs-fuse is not installed (scripts/deps.sh check installs it)"; return 1; }
	zfs_lock || { echo "FAIL $T_NAME.zfs_fuse: cannot lock $ZFS_SHARE"; return 1; }
	: >"$ZFS_SHARE/users/$$"
	if ! zfs_answers; then
		if fuse_running; then
			wait_until 10 zfs_answers ||
				{ zfs_unlock; skip all "zfs-fuse runs but does not answer"; return 1; }
		else
			[ -w /dev/fuse ] || { zfs_unlock; skip all "/dev/fuse is not usable here"; return 1; }
			mkdir -p /run/zfs
			setsid zfs-fuse --no-daemon --no-kstat-mount </dev/null >/dev/null 2>&1 {ZFS_LOCK_FD}>&- &
			ZFS_FUSE_PID=$!
			echo "$ZFS_FUSE_PID" >"$ZFS_SHARE/pid"
			wait_until 10 zfs_answers ||
				{ zfs_unlock; echo "FAIL $T_NAME.zfs_fuse: did not answer"; return 1; }
		fi
	fi
	zfs_unlock
	ZPOOL="clbsdi$$"
	ZPOOL_FILE="$TMP/pool.img"
	truncate -s 768M "$ZPOOL_FILE"
	zpool create -m none "$ZPOOL" "$ZPOOL_FILE" || { echo "FAIL $T_NAME.zpool: create failed"; ZPOOL=""; return 1; }
}
t_zfs_cleanup() {
	if [ -n "$ZPOOL" ]; then
		# zfs-fuse answers "busy" for a while when mount namespaces come
		# and go beside the pool (other tests, a loaded machine).
		local why=""
		wait_until 30 eval 'why=$(zpool destroy -f "$ZPOOL" 2>&1)' ||
			echo "FAIL $T_NAME.cleanup: pool $ZPOOL left: $why"
		ZPOOL=""
	fi
	[ -e "$ZFS_SHARE/users/$$" ] || return 0
	zfs_lock || return 0
	rm -f "$ZFS_SHARE/users/$$"
	local u pid
	for u in "$ZFS_SHARE"/users/*; do
		[ -e "$u" ] || continue
		kill -0 "${u##*/}" 2>/dev/null || rm -f "$u"
	done
	pid=$(cat "$ZFS_SHARE/pid" 2>/dev/null)
	if [ -n "$pid" ] && [ -z "$(ls -A "$ZFS_SHARE/users")" ]; then
		kill "$pid" 2>/dev/null
		if [ "$pid" = "$ZFS_FUSE_PID" ]; then
			wait "$pid" 2>/dev/null
		else
			wait_until 10 eval "! awk '{exit \$3 == \"Z\"}' /proc/$pid/stat 2>/dev/null"
		fi
		rm -f "$ZFS_SHARE/pid"
	fi
	ZFS_FUSE_PID=""
	zfs_unlock
}

# ---- docker: a private dockerd for this test (tests/integration/docker.sh) ----
DOCKERD_PID=""
# t_dockerd_start: dockerd on $TMP/docker.sock with its own data and exec
# roots, no bridge and no iptables rules; returns 1 when it does not answer.
t_dockerd_start() {
	command -v dockerd >/dev/null && command -v docker >/dev/null || return 1
	DOCKER_SOCK="$TMP/docker.sock"
	dockerd --iptables=false --ip6tables=false --bridge=none --data-root "$TMP/docker" \
		--exec-root "$TMP/dexec" -H "unix://$DOCKER_SOCK" -p "$TMP/docker.pid" \
		>>"$TMP/dockerd.log" 2>&1 &
	DOCKERD_PID=$!
	wait_until 30 docker -H "unix://$DOCKER_SOCK" info >/dev/null 2>&1
}
# t_dockerd_stop: stop it by its pid and wait; no mount of it may stay.
t_dockerd_stop() {
	[ -n "$DOCKERD_PID" ] || return 0
	kill "$DOCKERD_PID" 2>/dev/null
	wait "$DOCKERD_PID" 2>/dev/null
	DOCKERD_PID=""
	local m
	grep -o " $TMP/d[a-z]*[^ ]*" /proc/mounts | sort -r | while read -r m; do
		umount -l "$m" 2>/dev/null
	done
}
# t_docker_image NAME: the host's static busybox as an image in the dockerd
# (docker import of a rootfs tar: no registry).
t_docker_image() {
	local rf="$TMP/bbroot" a
	mkdir -p "$rf/bin" "$rf/etc" "$rf/tmp"
	cp -L "$(command -v busybox)" "$rf/bin/busybox" || return 1
	for a in sh sleep echo cat ls true false id env printf kill; do
		ln -sf busybox "$rf/bin/$a"
	done
	echo 'root:x:0:0:root:/root:/bin/sh' >"$rf/etc/passwd"
	tar -C "$rf" -cf "$TMP/bbroot.tar" . &&
		docker -H "unix://$DOCKER_SOCK" import -c 'CMD ["/bin/sh"]' "$TMP/bbroot.tar" "$1" >/dev/null
}

# dk ARGS: the docker CLI, on the test's private dockerd.
dk() { docker -H "unix://$DOCKER_SOCK" "$@"; }
# t_docker_before_start IMG: a docker test's t_before_start: a private
# dockerd with IMG in it and a configuration naming its endpoint; 1 (the
# script skips, or fails on the image) when either cannot be had.
t_docker_before_start() {
	if ! t_dockerd_start; then
		skip all "no dockerd could be started here: $(tail -2 "$TMP/dockerd.log" 2>/dev/null)"
		return 1
	fi
	if ! t_docker_image "$1"; then
		echo "FAIL $T_NAME.image: docker import failed"
		t_dockerd_stop
		return 1
	fi
	echo "(host :docker (:endpoint \"unix://$DOCKER_SOCK\"))" >"$CONF"
}
# t_docker_cleanup IMG: before t_cleanup: clbsd removes its containers while
# dockerd answers, then what is left in dockerd goes, IMG, and dockerd,
# which must leave no mount behind.
t_docker_cleanup() {
	if [ -n "$DAEMON_PID" ] && kill -0 "$DAEMON_PID" 2>/dev/null && [ -n "$DOCKERD_PID" ]; then
		echo "(host :docker (:endpoint \"unix://$DOCKER_SOCK\"))" >"$CONF"
		clbsd apply >/dev/null 2>&1
		local n
		for n in $(clbsd ps -a --format '{{.Name}}' 2>/dev/null); do
			clbsd rm -f "$n" >/dev/null 2>&1
		done
	fi
	if [ -n "$DOCKERD_PID" ]; then
		dk ps -aq | while read -r id; do dk rm -f "$id" >/dev/null 2>&1; done
		dk rmi -f "$1" >/dev/null 2>&1
		t_dockerd_stop
		grep -q " $TMP/d" /proc/mounts && echo "FAIL $T_NAME.cleanup: dockerd left mounts"
	fi
}

# t_done: the script reached its end (a script that stops early fails).
t_done() { T_DONE=1; }

t_cleanup() {
	local rc=$?
	if [ "$T_DONE" -ne 1 ]; then
		echo "FAIL $T_NAME.incomplete: the script stopped early (status $rc)"
		T_FAILED=1
	fi
	if [ -n "$DAEMON_PID" ] && kill -0 "$DAEMON_PID" 2>/dev/null; then
		# Declare nothing first, or the reconciler would bring back what
		# the loop below removes.
		[ -n "${CONF:-}" ] && : >"$CONF" && clbsd apply >/dev/null 2>&1
		local n
		for n in $(clbsd ps -a --json 2>/dev/null | python3 -c 'import json,sys
for c in json.load(sys.stdin): print(c["name"])' 2>/dev/null); do
			clbsd rm -f "$n" >/dev/null 2>&1
		done
	fi
	t_kill_daemon TERM
	# Built by `make asan`, the daemon reports what ASan, LSan or UBSan
	# found in its log (a leak only when it ends): that fails the test.
	local san='ERROR: (Address|Leak)Sanitizer|:[0-9]+:[0-9]+: runtime error:' san_found=0
	if [ -f "$TMP/daemon.log" ] && grep -qE "$san" "$TMP/daemon.log"; then
		echo "FAIL $T_NAME.sanitizer: $(grep -m1 -oE "($san).*" "$TMP/daemon.log")"
		T_FAILED=1
		san_found=1
	fi
	local p
	for p in $(t_shim_pids); do
		[ "$p" -gt 0 ] 2>/dev/null && kill -KILL "$p" 2>/dev/null
	done
	sleep 0.2
	# Whatever still runs in the test's cgroups (an init whose shim was
	# killed) is stopped by its pid, then the cgroups go.
	local f p
	find /sys/fs/cgroup -maxdepth 4 -path "*clbsd-$T_ID*" -name cgroup.procs 2>/dev/null |
		while read -r f; do
			while read -r p; do
				echo "FAIL $T_NAME.cleanup: leftover process $p in ${f%/cgroup.procs}"
				kill -KILL "$p" 2>/dev/null
			done <"$f"
		done
	sleep 0.2
	find /sys/fs/cgroup -maxdepth 3 -type d -name "clbsd-$T_ID" 2>/dev/null |
		while read -r d; do find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null; done
	t_zfs_cleanup
	if [ "$T_FAILED" -ne 0 ] && [ -f "$TMP/daemon.log" ]; then
		echo "--- daemon log (tail)"
		tail -n 40 "$TMP/daemon.log"
	fi
	if [ "$san_found" -eq 1 ]; then
		# Last, as run.sh shows the last 60 lines: each finding with its
		# first frames in clbsd's code.
		echo "--- sanitizer findings in the daemon log"
		awk '/ERROR: .*Sanitizer|: runtime error:|^(Direct|Indirect) leak|^SUMMARY/ { print; n = 0; next }
			/^ +#[0-9]+ .*\/src\// && n < 3 { print; n++ }' "$TMP/daemon.log" | head -n 40
	fi
	rm -rf "$TMP"
	exit "$T_FAILED"
}

t_setup() {
	t_require_root
	TMP=$(mktemp -d "/tmp/clbsd-$T_NAME.XXXXXX")
	ROOT="$TMP/root"
	RUN="$TMP/run"
	SOCK="$RUN/clbsd.sock"
	# Never the host's /etc/clbsd: each test declares what it wants here.
	CONF="$TMP/etc/clbsd.conf"
	mkdir -p "$TMP/etc"
	export CLBSD_SOCKET="$SOCK"
	trap t_cleanup EXIT
	trap 'exit 143' TERM INT
	# A test may prepare what the daemon needs at its first start.
	if declare -F t_before_start >/dev/null; then
		t_before_start || { T_DONE=1; exit 0; }
	fi
	t_start_daemon || exit 1
}

# t_forge: the forge image every test runs on.
t_forge() {
	clbsd forge >/dev/null || {
		echo "FAIL $T_NAME.forge: clbsd forge failed"
		exit 1
	}
}
