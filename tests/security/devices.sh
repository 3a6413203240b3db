#!/bin/bash
# Device nodes (issue 14, item 4): a node the container makes on a mount
# the host has below a volume's source (a tmpfs), a node the host made in a
# bound directory, a node on the rootfs: none can be opened. Volumes are
# nodev,nosuid all the way down, and the cgroup device allow-list refuses
# every node outside the container's /dev even to a process on a mount
# without nodev, pooled inits included. Nothing reaches the host's kmsg.
. "$(dirname "$0")/../lib.sh"
t_setup
t_forge
x() { clbsd exec "$@" 2>&1; }
MARK="clbsd-devices-$T_ID-$$"
kmsg_has_mark() { dmesg 2>/dev/null | grep -q "$MARK"; }
running() { [ "$(field "$1" state)" = running ]; }

# A volume source with a tmpfs mounted below it, in the daemon's mount
# namespace (private: it goes with the daemon, nothing on the host's).
SRC="$TMP/src"
mkdir -p "$SRC/sub"
nsenter -t "$DAEMON_PID" -m mount -t tmpfs -o mode=0755,size=1m clbsd-dev-test "$SRC/sub" ||
	fail submount "mount tmpfs below the volume source failed"
# A node the host makes in the bound directory itself (its file system has no nodev).
# (loop-control: it hands out loop devices; kmsg: the kernel log. /dev/mem is not in this kernel.)
mknod "$SRC/hostloop" c 10 237 && mknod "$SRC/hostkmsg" c 1 11 || fail host_nodes "mknod on the host failed"
clbsd run -d --name dev -v "$SRC:/vol" forge sleep 300 >/dev/null || fail run "run with the volume failed"
wait_until 10 running dev || fail run "dev is $(field dev state)"

# Every mount of the volume, the one below it too, is nodev and nosuid.
mi=$(x dev cat /proc/self/mountinfo | awk '$5 == "/vol" || $5 == "/vol/sub" {print $5, $6}')
n=$(echo "$mi" | grep -c .)
bad=$(echo "$mi" | grep -v 'nosuid' ; echo "$mi" | grep -v 'nodev')
[ "$n" -eq 2 ] && [ -z "$bad" ] && ok volume_submounts_nodev_nosuid ||
	fail volume_submounts_nodev_nosuid "mounts: $mi"

# The attack: mknod kmsg in the tmpfs below the volume, write to it.
out=$(x dev sh -c "mknod /vol/sub/kmsg c 1 11 && echo made; echo '<0>$MARK' > /vol/sub/kmsg && echo wrote")
if echo "$out" | grep -q '^made' && ! echo "$out" | grep -q '^wrote' &&
	echo "$out" | grep -Eqi 'permission denied|not permitted'; then
	ok submount_node_refused
else
	fail submount_node_refused "$out"
fi
out=$(x dev sh -c "mknod /vol/sub/lc c 10 237 && echo made; : < /vol/sub/lc && echo opened")
echo "$out" | grep -q '^made' && ! echo "$out" | grep -q '^opened' && ok submount_loop_control_refused ||
	fail submount_loop_control_refused "$out"
# Nodes the host planted in the bound directory.
out=$(x dev sh -c ": < /vol/hostloop && echo opened; echo '<0>$MARK' > /vol/hostkmsg && echo wrote")
echo "$out" | grep -Eq '^(opened|wrote)' &&
	fail host_planted_nodes_refused "$out" || ok host_planted_nodes_refused
# On the rootfs (an overlay, nodev) and in /dev (a tmpfs, nodev).
out=$(x dev sh -c "mknod /kmsg c 1 11; mknod /dev/kmsg2 c 1 11; echo '<0>$MARK' > /kmsg && echo wrote1; echo '<0>$MARK' > /dev/kmsg2 && echo wrote2")
echo "$out" | grep -q '^wrote' && fail rootfs_and_dev_nodes_refused "$out" || ok rootfs_and_dev_nodes_refused
kmsg_has_mark && fail host_kmsg_untouched "the marker reached the kernel log" || ok host_kmsg_untouched

# The allow-list itself: the v1 devices controller of the container's cgroup.
cg=$(field dev cgroup)
dl="/sys/fs/cgroup/devices/$cg/devices.list"
if [ -f "$dl" ]; then
	want="c *:* m
b *:* m
c 1:3 rwm
c 1:5 rwm
c 1:7 rwm
c 1:8 rwm
c 1:9 rwm
c 5:0 rwm
c 5:1 rwm
c 5:2 rwm
c 136:* rwm"
	[ "$(cat "$dl")" = "$want" ] && ok device_allow_list || fail device_allow_list "$(cat "$dl")"
	# Where nodev is missing: a process in the container's device cgroup
	# opening nodes the host made on a file system without nodev.
	out=$(python3 - "$dl" "$SRC/hostloop" "$SRC/hostkmsg" "$MARK" <<'PY'
import errno, os, sys
procs = os.path.join(os.path.dirname(sys.argv[1]), "cgroup.procs")
loop, kmsg, mark = sys.argv[2], sys.argv[3], sys.argv[4]
before = []
for p in (loop, kmsg):
    fd = os.open(p, os.O_RDONLY)  # outside the cgroup: the mount lets it open
    os.close(fd)
    before.append("open")
pid = os.fork()
if pid == 0:
    with open(procs, "w") as f:
        f.write("0")
    res = []
    for p, flags in ((loop, os.O_RDONLY), (kmsg, os.O_WRONLY), ("/dev/null", os.O_RDWR)):
        try:
            fd = os.open(p, flags)
            if p == kmsg:
                os.write(fd, ("<0>" + mark + "\n").encode())
            os.close(fd)
            res.append("open")
        except OSError as e:
            res.append(errno.errorcode[e.errno])
    print(" ".join(before + res))
    sys.stdout.flush()
    os._exit(0)
os.waitpid(pid, 0)
PY
)
	[ "$out" = "open open EPERM EPERM open" ] && ok cgroup_refuses_without_nodev ||
		fail cgroup_refuses_without_nodev "$out"
else
	skip device_allow_list "no v1 devices controller here ($dl)"
fi

# A pooled init (no volumes: the pool serves it) has the list from its prepare on.
clbsd run -d --name pooled forge sleep 300 >/dev/null
wait_until 10 running pooled
pcg=$(field pooled cgroup)
case "$pcg" in *pool-*) ok pooled_start ;; *) skip pooled_start "not served by the pool ($pcg)" ;; esac
pdl="/sys/fs/cgroup/devices/$pcg/devices.list"
if [ -f "$pdl" ]; then
	grep -q '^a ' "$pdl" && fail pooled_allow_list "$(cat "$pdl")" ||
		{ grep -qx 'c 1:3 rwm' "$pdl" && ok pooled_allow_list; } || fail pooled_allow_list "$(cat "$pdl")"
fi
# Spare pool slots: each prepared init's cgroup is restricted before any claim.
spares=0
for d in /sys/fs/cgroup/devices/clbsd-"$T_ID"/pool-*; do
	[ -f "$d/devices.list" ] || continue
	spares=$((spares + 1))
	grep -q '^a ' "$d/devices.list" && { fail pool_slots_restricted "$d: $(cat "$d/devices.list")"; spares=-1000; }
done
[ "$spares" -gt 0 ] && ok pool_slots_restricted
[ "$spares" -eq 0 ] && skip pool_slots_restricted "no spare pool slot seen"
out=$(x pooled sh -c "mknod /lc c 10 237 && echo made; : < /lc && echo opened")
echo "$out" | grep -q '^made' && ! echo "$out" | grep -q '^opened' && ok pooled_nodes_refused ||
	fail pooled_nodes_refused "$out"
[ "$(x pooled sh -c 'echo hi > /dev/null && head -c 4 /dev/urandom | wc -c')" = 4 ] &&
	ok pooled_allowed_nodes_work || fail pooled_allowed_nodes_work "null/urandom unusable"
# The allowed nodes still work, terminals included.
out=$(clbsd run --rm -t forge sh -c 'echo ok > /dev/tty && tty' 2>&1 | tr -d '\r')
echo "$out" | grep -q '^ok' && echo "$out" | grep -q '/dev/' && ok terminal_works ||
	fail terminal_works "$out"
kmsg_has_mark && fail host_kmsg_untouched_end "the marker reached the kernel log" ||
	ok host_kmsg_untouched_end
t_done
