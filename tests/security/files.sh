#!/bin/bash
# The daemon reads and watches files a container controls: its /etc/passwd
# and /etc/group (exec -u, :user, USER in a build) and the paths of
# :file-change hooks. What a container plants there must neither hang the
# daemon (a FIFO) nor lead it to the host's files (symlinks, absolute or made
# of ".." chains). And a daemon killed during a build leaves no step
# directory and no RUN container behind once it starts again.
. "$(dirname "$0")/../lib.sh"
t_setup
t_forge

# ---- host files the attacks aim at ----
CANARY="$TMP/host/canary-passwd"
HOSTDIR="$TMP/host/watched"
mkdir -p "$HOSTDIR" "$TMP/host/etc"
echo 'canary:x:4242:4242::/:/bin/sh' >"$CANARY"
echo 'canary:x:4242:4242::/:/bin/sh' >"$TMP/host/etc/passwd"
echo 'canary:x:4242:' >"$TMP/host/etc/group"
host_sum() { cat "$CANARY" "$TMP/host/etc/passwd" "$TMP/host/etc/group" | md5sum; }
before=$(host_sum)

clbsd run -d --name victim forge sleep 300 >/dev/null || fail victim_runs "clbsd run failed"
x() { clbsd exec victim "$@" 2>&1; }
# The container's own account file, with a user the lookups may find.
x sh -c 'cp /etc/group /etc/group.orig && cp /etc/passwd /etc/passwd.orig && echo "app:x:1234:1234::/:/bin/sh" >> /etc/passwd'
[ "$(clbsd exec -u app victim id -u 2>&1)" = 1234 ] && ok user_lookup_works ||
	fail user_lookup_works "$(clbsd exec -u app victim id -u 2>&1)"

# ---- a FIFO as /etc/passwd: refused at once, the daemon keeps answering ----
x sh -c 'rm /etc/passwd && mkfifo /etc/passwd' >/dev/null
t0=$(date +%s%N)
timeout 20 "$BUILD/clbsd" --socket "$SOCK" exec -u someone victim true >"$TMP/fifo.out" 2>&1 &
exec_pid=$!
# Whatever the exec does, the daemon must answer others meanwhile.
if timeout 5 "$BUILD/clbsd" --socket "$SOCK" info >/dev/null 2>&1 &&
	timeout 5 "$BUILD/clbsd" --socket "$SOCK" ps >/dev/null 2>&1; then
	ok fifo_passwd_daemon_answers
else
	fail fifo_passwd_daemon_answers "info or ps did not answer within 5 s"
fi
wait "$exec_pid"
rc=$?
ms=$((($(date +%s%N) - t0) / 1000000))
if [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] && [ "$ms" -lt 5000 ] && grep -qi fifo "$TMP/fifo.out"; then
	ok fifo_passwd_refused
else
	fail fifo_passwd_refused "rc=$rc after ${ms} ms: $(cat "$TMP/fifo.out")"
fi
# A daemon stuck on the FIFO (the bug) is released, so the rest can run:
# opening it for writing, without waiting, gives its reader end-of-file.
release_fifo() {
	local f
	for f in "$ROOT"/containers/victim/upper/etc/passwd "$ROOT"/containers/victim/fs/etc/passwd; do
		[ -p "$f" ] && python3 -c 'import os,sys
try: os.close(os.open(sys.argv[1], os.O_WRONLY | os.O_NONBLOCK))
except OSError: pass' "$f"
	done
	return 0
}
release_fifo
x sh -c 'rm -f /etc/passwd && cp /etc/passwd.orig /etc/passwd' >/dev/null

# ---- symlinks out of the container to the host's files ----
# exec_as_canary NAME: planted as NAME, "canary" must not be found.
exec_as_canary() {
	local name=$1 out
	if ! out=$(timeout 20 "$BUILD/clbsd" --socket "$SOCK" exec -u canary victim id -u 2>&1) &&
		! echo "$out" | grep -q 4242; then
		ok "$name"
	else
		fail "$name" "the host's canary user resolved: $out"
	fi
}
x ln -sf "$CANARY" /etc/passwd >/dev/null
exec_as_canary passwd_absolute_symlink_stays_inside
x ln -sf "../../../../../../../../../..$CANARY" /etc/passwd >/dev/null
exec_as_canary passwd_dotdot_symlink_stays_inside
x ln -sf "/proc/self/root$CANARY" /etc/passwd >/dev/null
exec_as_canary passwd_proc_magic_link_refused
# The group file too (a name lookup of the group part).
x sh -c 'rm -f /etc/passwd && cp /etc/passwd.orig /etc/passwd && ln -sf '"$TMP/host/etc/group"' /etc/group' >/dev/null
! out=$(timeout 20 "$BUILD/clbsd" --socket "$SOCK" exec -u 0:canary victim id -g 2>&1) &&
	! echo "$out" | grep -q 4242 && ok group_symlink_stays_inside ||
	fail group_symlink_stays_inside "$out"
# A directory on the way: /etc itself a symlink to a host directory.
x sh -c 'mv /etc /etc.real && ln -s '"$TMP/host/etc"' /etc' >/dev/null
exec_as_canary etc_dir_symlink_stays_inside
x sh -c 'rm /etc && mv /etc.real /etc && rm /etc/group && cp /etc/group.orig /etc/group' >/dev/null
# A character device node as /etc/passwd is never opened (mknod may be refused).
if x sh -c 'rm /etc/passwd && mknod /etc/passwd c 1 7' >/dev/null; then
	! out=$(timeout 20 "$BUILD/clbsd" --socket "$SOCK" exec -u app victim true 2>&1) &&
		echo "$out" | grep -q "character device" && ok device_passwd_refused ||
		fail device_passwd_refused "$out"
else
	skip device_passwd_refused "mknod is refused in the container"
fi
x sh -c 'rm -f /etc/passwd && cp /etc/passwd.orig /etc/passwd' >/dev/null
# Oversized: past 1 MiB the file is not read.
x sh -c 'cp /etc/passwd.orig /etc/passwd && head -c 2000000 /dev/zero | tr "\0" "#" >> /etc/passwd && echo app:x:1234:1234::/:/bin/sh >> /etc/passwd'
! out=$(timeout 20 "$BUILD/clbsd" --socket "$SOCK" exec -u app victim true 2>&1) &&
	echo "$out" | grep -q "bytes" && ok oversized_passwd_refused ||
	fail oversized_passwd_refused "$out"
x cp /etc/passwd.orig /etc/passwd >/dev/null

# ---- USER in a build, after a RUN step planted the passwd file ----
CTX="$TMP/ctx"
mkdir -p "$CTX"
cat >"$CTX/Cblockfile" <<CBF
FROM forge
RUN ln -sf $CANARY /etc/passwd
USER canary
RUN id -u
CBF
out=$(timeout 120 "$BUILD/clbsd" --socket "$SOCK" build -t planted:1 "$CTX" 2>&1)
rc=$?
[ $rc -ne 0 ] && [ $rc -ne 124 ] && ! echo "$out" | grep -q 4242 && ok build_user_symlink_stays_inside ||
	fail build_user_symlink_stays_inside "rc=$rc $out"
cat >"$CTX/Cblockfile" <<'CBF'
FROM forge
RUN rm /etc/passwd && mkfifo /etc/passwd
USER someone
RUN true
CBF
t0=$(date +%s%N)
out=$(timeout 120 "$BUILD/clbsd" --socket "$SOCK" build -t fifo:1 "$CTX" 2>&1)
rc=$?
[ $rc -ne 0 ] && [ $rc -ne 124 ] && echo "$out" | grep -qi fifo && ok build_user_fifo_refused ||
	fail build_user_fifo_refused "rc=$rc $out"
# COPY --chown looks names up in the tree as well.
echo data >"$CTX/f"
cat >"$CTX/Cblockfile" <<CBF
FROM forge
RUN ln -sf $CANARY /etc/passwd
COPY --chown=canary f /f
CBF
out=$(timeout 120 "$BUILD/clbsd" --socket "$SOCK" build -t chown:1 "$CTX" 2>&1)
rc=$?
[ $rc -ne 0 ] && [ $rc -ne 124 ] && ok build_chown_symlink_stays_inside ||
	fail build_chown_symlink_stays_inside "rc=$rc $out"
cat >"$CTX/Cblockfile" <<'CBF'
FROM forge
RUN rm /etc/passwd && mkfifo /etc/passwd
COPY --chown=someone f /f
CBF
out=$(timeout 120 "$BUILD/clbsd" --socket "$SOCK" build -t chownfifo:1 "$CTX" 2>&1)
rc=$?
[ $rc -ne 0 ] && [ $rc -ne 124 ] && echo "$out" | grep -qi fifo && ok build_chown_fifo_refused ||
	fail build_chown_fifo_refused "rc=$rc $out"

# ---- :file-change :recursive with a symlink to a host directory ----
FIRED="$TMP/fired.log"
: >"$FIRED"
cat >"$CONF" <<C
(container watched :image "forge" :command ("sleep" "300")
  :on ((:file-change "/data" "echo fired >> $FIRED" :recursive t)))
C
clbsd apply >/dev/null 2>&1
is_running() { [ "$(field "$1" state)" = running ]; }
wait_until 20 is_running watched ||
	fail file_change_setup "watched is not running"
clbsd exec watched sh -c "mkdir -p /data/sub && ln -s $HOSTDIR /data/link && ln -s $HOSTDIR /data/sub/link2 && ln -s ../../../../../../..$HOSTDIR /data/rel" >/dev/null 2>&1
# A reload walks /data again, now with the links in it.
touch "$CONF"
clbsd apply >/dev/null 2>&1
sleep 1
: >"$FIRED"
touch "$HOSTDIR/new-on-host"
echo x >"$HOSTDIR/written-on-host"
sleep 1.5
[ ! -s "$FIRED" ] && ok file_change_symlink_not_followed ||
	fail file_change_symlink_not_followed "the hook fired for a host directory: $(cat "$FIRED")"
# The watch works inside: a write below /data fires it.
clbsd exec watched sh -c 'echo y > /data/sub/inside' >/dev/null 2>&1
wait_until 5 test -s "$FIRED" && ok file_change_fires_inside || fail file_change_fires_inside "no run"
# A container with a /data symlinked to the host: nothing is watched there.
: >"$FIRED"
clbsd exec watched sh -c "rm -rf /data && ln -s $HOSTDIR /data" >/dev/null 2>&1
touch "$CONF"
clbsd apply >/dev/null 2>&1
sleep 1
: >"$FIRED"
touch "$HOSTDIR/again"
sleep 1.5
[ ! -s "$FIRED" ] && ok file_change_top_symlink_not_followed ||
	fail file_change_top_symlink_not_followed "the hook fired: $(cat "$FIRED")"
# A tree of many directories gets a bounded number of watches.
clbsd exec watched sh -c 'rm /data && mkdir -p /data && cd /data && i=0; while [ $i -lt 1100 ]; do mkdir d$i; i=$((i+1)); done' >/dev/null 2>&1
touch "$CONF"
clbsd apply >/dev/null 2>&1
wait_until 10 grep -q "watching only 1024 directories" "$TMP/daemon.log" && ok file_change_watches_capped ||
	fail file_change_watches_capped "no cap reported"
: >"$CONF"
clbsd apply >/dev/null 2>&1

[ "$(host_sum)" = "$before" ] && [ "$(cd "$HOSTDIR" && echo *)" = "again new-on-host written-on-host" ] &&
	ok host_files_unchanged || fail host_files_unchanged "a host file changed"

# ---- SIGKILL of the daemon during a RUN step ----
cat >"$CTX/Cblockfile" <<'CBF'
FROM forge
RUN echo long-step-started && sleep 300
CBF
timeout 120 "$BUILD/clbsd" --socket "$SOCK" build -t long:1 "$CTX" >"$TMP/long.out" 2>&1 &
build_pid=$!
# run_procs: processes still in this test's build cgroups.
run_procs() {
	find /sys/fs/cgroup -path "*clbsd-$T_ID/build-*" -name cgroup.procs -exec cat {} + 2>/dev/null
}
# run_shims: shims of this test's build steps (their spec is under our root).
run_shims() {
	local f
	for f in /proc/[0-9]*/cmdline; do
		tr '\0' ' ' 2>/dev/null <"$f" | grep -q -- "--run-spec $ROOT/build/tmp/" && echo "${f%/cmdline}"
	done
}
has_run_procs() { [ -n "$(run_procs)" ]; }
no_run_procs() { [ -z "$(run_procs)" ]; }
no_run_shims() { [ -z "$(run_shims)" ]; }
# The instruction's text holds "long-step", its output "long-step-started".
if wait_until 60 grep -q '^long-step-started' "$TMP/long.out" && wait_until 10 has_run_procs; then
	t_kill_daemon KILL
	wait "$build_pid" 2>/dev/null
	compgen -G "$ROOT/build/tmp/step-*" >/dev/null || fail build_kill_setup "no step directory left to clean"
	[ -n "$(run_procs)" ] || fail build_kill_setup "the RUN container died with the daemon"
	t_start_daemon || fail build_kill_restart "the daemon did not come back"
	[ -z "$(ls -A "$ROOT/build/tmp" 2>/dev/null)" ] && ok build_tmp_cleaned_at_start ||
		fail build_tmp_cleaned_at_start "$(ls "$ROOT/build/tmp")"
	wait_until 10 no_run_procs &&
		ok build_run_container_stopped_at_start || fail build_run_container_stopped_at_start "$(run_procs)"
	wait_until 10 no_run_shims &&
		ok build_run_shim_gone || fail build_run_shim_gone "$(run_shims)"
else
	fail build_kill_setup "the long RUN step did not start: $(cat "$TMP/long.out")"
	kill "$build_pid" 2>/dev/null
	wait "$build_pid" 2>/dev/null
fi
t_done
