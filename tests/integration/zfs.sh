#!/bin/bash
# The daemon on zfs storage (a file-backed pool under zfs-fuse, made for this
# test): containers are datasets cloned from the image, snapshots and
# rollback work on them, a clone is a zfs clone, removal leaves no dataset,
# and the storage choice is recorded so the daemon refuses another driver.
. "$(dirname "$0")/../lib.sh"
t_before_start() {
	t_zfs_setup || return 1
	cat >"$CONF" <<CONF
(host :storage (:driver zfs :pool "$ZPOOL" :root "$ZPOOL/clbsd"))
CONF
	# zfs-fuse mounts datasets in the host's mount namespace: the daemon
	# must see them (it makes no mounts of its own; containers have theirs).
	# shellcheck disable=SC2034 # read by t_start_daemon
	DAEMON_NS="--net"
}
t_setup
t_forge
ds="$ZPOOL/clbsd"
datasets() { zfs list -H -o name -r "$ds" 2>/dev/null; }

clbsd info | grep -qi zfs || grep -q "storage zfs on $ds" "$TMP/daemon.log" && ok daemon_on_zfs ||
	fail daemon_on_zfs "$(grep serving "$TMP/daemon.log")"
clbsd run -d --name web forge sleep 300 >/dev/null || fail run_on_zfs "run failed"
[ "$(field web state)" = running ] && [ "$(field web storage)" = zfs ] && ok run_on_zfs ||
	fail run_on_zfs "state $(field web state) storage $(field web storage)"
# One clone of the image's @base is the whole container: rootfs/ and, beside
# it, the container's state.
datasets | grep -qx "$ds/containers/web" && ! datasets | grep -qx "$ds/containers/web/rootfs" &&
	[ -f "$ROOT/containers/web/container.json" ] && [ -d "$ROOT/containers/web/rootfs/bin" ] &&
	ok container_is_dataset || fail container_is_dataset "$(datasets)"
origin=$(zfs get -H -o value origin "$ds/containers/web" 2>/dev/null)
case "$origin" in "$ds/images/"*@base) ok container_is_clone ;; *) fail container_is_clone "origin '$origin'" ;; esac

clbsd exec web sh -c 'echo v1 > /srv.txt'
clbsd snapshot web s1 >/dev/null
clbsd exec web sh -c 'echo v2 > /srv.txt'
zfs list -H -t snapshot -o name 2>/dev/null | grep -q "containers/web@s1" && ok snapshot_is_zfs ||
	fail snapshot_is_zfs "$(zfs list -H -t snapshot -o name)"
clbsd rollback -t 1 web s1 >/dev/null && [ "$(clbsd exec web cat /srv.txt)" = v1 ] &&
	[ "$(field web state)" = running ] && ok rollback_on_zfs || fail rollback_on_zfs "$(clbsd exec web cat /srv.txt 2>&1)"
clbsd clone web@s1 copy >/dev/null && clbsd start copy >/dev/null &&
	[ "$(clbsd exec copy cat /srv.txt)" = v1 ] && ok clone_on_zfs || fail clone_on_zfs "clone failed"

# Export and import through zfs send/receive.
clbsd exec web sh -c 'head -c 200000 /dev/urandom > /blob'
sum=$(clbsd exec web md5sum /blob)
clbsd export -o "$TMP/web.clbsd" web >/dev/null &&
	[ "$(head -c 4096 "$TMP/web.clbsd" | python3 -c 'import json,sys; print(json.loads(sys.stdin.read())["driver"])')" = zfs ] &&
	clbsd import --name moved "$TMP/web.clbsd" >/dev/null && clbsd start moved >/dev/null &&
	[ "$(clbsd exec moved md5sum /blob)" = "$sum" ] && ok export_import_on_zfs ||
	fail export_import_on_zfs "$(clbsd exec moved md5sum /blob 2>&1)"

# A damaged archive: zfs's own stream checksum refuses it, and nothing is left.
python3 - "$TMP/web.clbsd" "$TMP/bad.clbsd" <<'PY'
import sys
d = bytearray(open(sys.argv[1], 'rb').read())
d[4096 + (len(d) - 4096) // 2] ^= 1
open(sys.argv[2], 'wb').write(d)
PY
out=$(clbsd import --name bad "$TMP/bad.clbsd" 2>&1)
rc=$?
[ $rc -ne 0 ] && echo "$out" | grep -qi "checksum" && ! datasets | grep -q "containers/bad" &&
	! clbsd inspect bad >/dev/null 2>&1 && [ ! -e "$ROOT/containers/bad/container.json" ] &&
	ok damaged_archive_refused || fail damaged_archive_refused "rc=$rc $out $(datasets | grep bad)"

clbsd rm -f copy web moved >/dev/null
left=$(datasets | grep -E "containers/(web|copy|moved)")
[ -z "$left" ] && [ ! -e "$ROOT/containers/web/rootfs/bin" ] && ok rm_leaves_no_dataset ||
	fail rm_leaves_no_dataset "$left"
out=$(clbsd run --rm forge echo once)
[ "$out" = once ] && ! datasets | grep -qE 'containers/c-' && ok run_rm_on_zfs ||
	fail run_rm_on_zfs "out=$out $(datasets)"

# A declared container with a quota: writing past it fails inside with
# "Disk quota exceeded" (EDQUOT) or "No space left on device" (ENOSPC).
cat >>"$CONF" <<'CONF'
(container small :image "forge" :command ("sleep" "300") :storage (:quota "16M" :compression lzjb)
  :env (("V" . "1"))
  :volumes ((:dataset "data" :path "/data" :quota "8M")))
CONF
clbsd apply >/dev/null
wait_until 20 sh -c "$BUILD/clbsd --socket $SOCK ps | grep -q '^small .*running'"
[ "$(zfs get -H -p -o value quota "$ds/containers/small" 2>/dev/null)" = $((16 << 20)) ] &&
	ok quota_set_on_dataset || fail quota_set_on_dataset "$(zfs get -H -o value quota "$ds/containers/small" 2>&1)"
out=$(clbsd exec small sh -c 'dd if=/dev/urandom of=/big bs=1M count=40 2>&1; sync' 2>&1)
echo "$out" | grep -qiE "quota exceeded|no space left" && ok quota_enforced_inside || fail quota_enforced_inside "$out"
# A container whose quota is full cannot write its own state: free it.
clbsd exec small rm -f /big
# :storage applies live: a new quota reaches the dataset, no recreate.
small_id=$(field small id)
sed -i 's/:quota "16M" :compression lzjb/:quota "32M" :compression lzjb/' "$CONF"
clbsd apply >/dev/null
wait_until 10 sh -c "[ \"\$(zfs get -H -p -o value quota $ds/containers/small 2>/dev/null)\" = $((32 << 20)) ]" &&
	[ "$(field small id)" = "$small_id" ] && ok storage_props_apply_live ||
	fail storage_props_apply_live "$(zfs get -H -o value quota "$ds/containers/small" 2>&1)"
# Its named volume is a dataset of its own, with its own quota, and
# survives the container's recreation.
[ "$(zfs get -H -p -o value quota "$ds/volumes/small/data" 2>/dev/null)" = $((8 << 20)) ] &&
	ok volume_is_dataset_with_quota || fail volume_is_dataset_with_quota "$(datasets)"
out=$(clbsd exec small sh -c 'dd if=/dev/urandom of=/data/big bs=1M count=20 2>&1; sync' 2>&1)
echo "$out" | grep -qiE "quota exceeded|no space left" && ok volume_quota_enforced_inside ||
	fail volume_quota_enforced_inside "$out"
clbsd exec small sh -c 'rm -f /data/big; echo kept > /data/note'
sed -i 's/("V" . "1")/("V" . "2")/' "$CONF"
clbsd apply >/dev/null
wait_until 20 sh -c "[ \"\$($BUILD/clbsd --socket $SOCK exec small sh -c 'echo \$V' 2>/dev/null)\" = 2 ]"
[ "$(clbsd exec small cat /data/note 2>&1)" = kept ] && ok volume_survives_recreate ||
	fail volume_survives_recreate "$(clbsd exec small cat /data/note 2>&1)"
# The recreate set the old container aside as a dataset; undo brings it back.
datasets | grep -qx "$ds/undo/small" && ok recreate_sets_aside_dataset || fail recreate_sets_aside_dataset "$(datasets)"
clbsd undo small >/dev/null 2>"$TMP/err" &&
	[ "$(clbsd exec small sh -c 'echo $V' 2>&1)" = 1 ] && [ "$(clbsd exec small cat /data/note 2>&1)" = kept ] &&
	! datasets | grep -qx "$ds/undo/small" && ok undo_on_zfs || fail undo_on_zfs "$(cat "$TMP/err") $(datasets)"
echo '(host :storage (:driver zfs :pool "'"$ZPOOL"'" :root "'"$ZPOOL"'/clbsd"))' >"$CONF"
clbsd apply >/dev/null
wait_until 20 sh -c "! $BUILD/clbsd --socket $SOCK inspect small >/dev/null 2>&1"

# The choice is recorded: the same root with dir storage is refused.
t_kill_daemon TERM
echo '(host :storage (:driver dir))' >"$CONF"
"$BUILD/clbsdd" --root "$ROOT" --run "$RUN" --socket "$SOCK" --config "$CONF" \
	--cgroup-parent "clbsd-$T_ID" --pool=0 >"$TMP/refused.log" 2>&1
rc=$?
[ $rc -ne 0 ] && grep -q "live on zfs storage" "$TMP/refused.log" && ok other_driver_refused ||
	fail other_driver_refused "rc=$rc $(cat "$TMP/refused.log")"
t_done
