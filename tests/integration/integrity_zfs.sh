#!/bin/bash
# File integrity on zfs storage (docs/integrity.md): a container is a clone
# of its image's dataset, so its manifest is copied across datasets at
# create (no hard link there), its rootfs is read directly, and drift,
# --update and a clean check work as on dir storage.
. "$(dirname "$0")/../lib.sh"
t_before_start() {
	t_zfs_setup || return 1
	cat >"$CONF" <<CONF
(host :storage (:driver zfs :pool "$ZPOOL" :root "$ZPOOL/clbsd"))
CONF
	# shellcheck disable=SC2034 # read by t_start_daemon
	DAEMON_NS="--net"
}
t_setup
t_forge
verify() {
	OUT=$(clbsd verify "$@" 2>&1)
	RC=$?
}
clbsd run -d --name web forge sleep 300 >/dev/null || fail run_on_zfs "run failed"
[ "$(field web storage)" = zfs ] || fail run_on_zfs "storage $(field web storage)"
[ -f "$ROOT/containers/web/integrity.mtree" ] && [ "$(stat -c %h "$ROOT/containers/web/integrity.mtree")" = 1 ] &&
	ok manifest_copied_across_datasets || fail manifest_copied_across_datasets "$(ls -l "$ROOT/containers/web")"
verify web
[ "$RC" = 0 ] && ok clean_on_zfs || fail clean_on_zfs "rc=$RC $OUT"
clbsd exec web sh -c 'echo x >> /etc/passwd; echo y > /etc/new'
verify web
[ "$RC" = 1 ] && grep -q '^A /etc/new$' <<<"$OUT" && grep -q '^M /etc/passwd (size' <<<"$OUT" &&
	ok drift_on_zfs || fail drift_on_zfs "rc=$RC $OUT"
verify --update web
verify web
[ "$RC" = 0 ] && ok update_on_zfs || fail update_on_zfs "rc=$RC $OUT"
clbsd rm -f web >/dev/null
t_done
