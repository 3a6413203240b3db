#!/bin/bash
# --userns auto on zfs storage (zfs-fuse): FUSE file systems take idmapped
# mounts only when their server supports it, and zfs-fuse does not. The
# create is refused, saying why and what to do, and nothing is left made;
# the host default (host ... :userns auto) is refused the same way, and
# --userns host still works there.
. "$(dirname "$0")/../lib.sh"
t_before_start() {
	t_zfs_setup || return 1
	cat >"$CONF" <<CONF
(host :storage (:driver zfs :pool "$ZPOOL" :root "$ZPOOL/clbsd"))
CONF
	# zfs-fuse mounts datasets in the host's mount namespace (see integration/zfs.sh).
	# shellcheck disable=SC2034 # read by t_start_daemon
	DAEMON_NS="--net"
}
t_setup
t_forge
ds="$ZPOOL/clbsd"

out=$(clbsd create --name z1 --userns auto forge true 2>&1)
rc=$?
if [ "$rc" -ne 0 ] && echo "$out" | grep -q "userns auto: the zfs storage cannot be idmapped on zfs-fuse" &&
	echo "$out" | grep -q "use --userns host"; then
	ok refused_at_create_with_reason
else
	fail refused_at_create_with_reason "status $rc: $out"
fi
! clbsd inspect z1 >/dev/null 2>&1 && ! zfs list -H "$ds/containers/z1" >/dev/null 2>&1 &&
	[ ! -e "$ROOT/containers/z1" ] && ok nothing_left_made ||
	fail nothing_left_made "$(zfs list -H -o name -r "$ds/containers" 2>&1)"

# The host default applies to containers created without --userns.
cat >"$CONF" <<CONF
(host :storage (:driver zfs :pool "$ZPOOL" :root "$ZPOOL/clbsd") :userns auto)
CONF
clbsd apply >/dev/null 2>&1
out=$(clbsd create --name z2 forge true 2>&1) && fail host_default_refused "created: $out" ||
	{ echo "$out" | grep -q "cannot be idmapped" && ok host_default_refused ||
		fail host_default_refused "$out"; }
clbsd create --name z3 --userns host forge true >/dev/null 2>&1 &&
	ok userns_host_still_works || fail userns_host_still_works "create or start failed"
t_done
