#!/bin/bash
# Storage reachable by local users on the zfs driver (issue 14, item 3): zfs
# gives every new dataset's root 0755, so the containers and volumes
# datasets, and each container's volumes dataset, are made 0700 by clbsd;
# a setuid-root busybox the container's root makes in a named volume cannot
# be reached by nobody on the host, and nothing under <root> is listable or
# readable by others.
. "$(dirname "$0")/../lib.sh"
t_before_start() {
	t_zfs_setup || return 1
	chmod 0755 "$TMP"
	cat >"$CONF" <<CONF
(host :storage (:driver zfs :pool "$ZPOOL" :root "$ZPOOL/clbsd"))
(container vol
  :image "forge"
  :command ("sleep" "300")
  :volumes ((:dataset "data" :path "/data")))
CONF
	# zfs-fuse mounts in the host's mount namespace, where the daemon must see them.
	# shellcheck disable=SC2034 # read by t_start_daemon
	DAEMON_NS="--net"
	# No pool: a pool init made after the restart below copies the host's
	# mounts, the container's zfs-fuse ones too, and keeps its dataset busy
	# (zfs destroy fails) for as long as it waits.
	# shellcheck disable=SC2034 # read by t_start_daemon
	DAEMON_ARGS="--pool=0"
}
t_setup
t_forge
as_nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }
running() { [ "$(field "$1" state)" = running ]; }
clbsd apply >/dev/null
wait_until 60 running vol || fail session "vol is $(field vol state)"
vol="$ROOT/volumes/vol/data"
findmnt -n -o FSTYPE "$ROOT/volumes/vol/data" | grep -q fuse && ok volume_is_dataset ||
	fail volume_is_dataset "$(findmnt -n "$vol" 2>&1)"

modes=$(stat -c '%n %a' "$ROOT/containers" "$ROOT/volumes" "$ROOT/volumes/vol")
[ "$modes" = "$ROOT/containers 700
$ROOT/volumes 700
$ROOT/volumes/vol 700" ] && ok dataset_roots_private || fail dataset_roots_private "$modes"

clbsd exec vol sh -c 'cp /bin/busybox /data/sush && chmod 4755 /data/sush' ||
	fail setuid_planted "exec failed"
[ -u "$vol/sush" ] && ok setuid_planted || fail setuid_planted "$(ls -l "$vol" 2>&1)"
# Through a shell: setpriv keeps root's capabilities up to its own execve.
out=$(as_nobody /bin/sh -c '"$1" id -u' sh "$vol/sush" 2>&1)
rc=$?
[ $rc -eq 126 ] && echo "$out" | grep -qi "permission denied" && ok setuid_unreachable_for_nobody ||
	fail setuid_unreachable_for_nobody "rc=$rc out=$out"
clbsd snapshot vol s1 >/dev/null || fail snapshot "snapshot failed"
leaks=$(as_nobody find "$ROOT" -mindepth 1 -maxdepth 4 2>/dev/null | grep -v "^$ROOT/ingress" | head -5)
[ -z "$leaks" ] && ok nobody_finds_nothing || fail nobody_finds_nothing "$leaks"

# An older install: the datasets' roots opened up are closed at the next start.
t_kill_daemon TERM
chmod 0755 "$ROOT/containers" "$ROOT/volumes" "$ROOT/volumes/vol"
t_start_daemon || fail restart "daemon did not come back"
modes=$(stat -c '%a' "$ROOT/containers" "$ROOT/volumes" "$ROOT/volumes/vol" | tr '\n' ' ')
[ "$modes" = "700 700 700 " ] && ok old_install_tightened || fail old_install_tightened "$modes"
t_done
