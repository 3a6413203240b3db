#!/bin/bash
# The storage of docker containers, on a real private dockerd: their data
# (clbsd volumes bound into them) survives snapshot and rollback, clones
# carry it, export -> rm -> import gives it back with the image's id and
# runs, an import whose image this dockerd lacks fails and leaves nothing,
# migrate moves one to another daemon on another dockerd (a declared one
# with its declaration), a declared one is
# set aside at a recreate and `clbsd undo` brings it back, and a remote
# endpoint refuses clbsd volumes at create. ZFS_VARIANT=1 (docker_zfs.sh)
# runs the same on a zfs-fuse pool.
. "$(dirname "$0")/../lib.sh"

IMG="clbsd-bbs-$$:1"
DOCKERD2_PID=""
t_before_start() {
	if [ "${ZFS_VARIANT:-0}" = 1 ]; then
		t_zfs_setup || return 1
		# shellcheck disable=SC2034 # read by t_start_daemon
		DAEMON_NS="--net"
	fi
	if ! t_dockerd_start; then
		skip all "no dockerd could be started here: $(tail -2 "$TMP/dockerd.log" 2>/dev/null)"
		t_zfs_cleanup
		return 1
	fi
	if ! t_docker_image "$IMG"; then
		echo "FAIL $T_NAME.image: docker import failed"
		t_dockerd_stop
		t_zfs_cleanup
		return 1
	fi
	host_conf >"$CONF"
}
# The host form: the endpoint, and the pool in the zfs variant.
host_conf() {
	local storage=""
	[ -n "$ZPOOL" ] && storage=":storage (:driver zfs :pool \"$ZPOOL\" :root \"$ZPOOL/clbsd\")"
	echo "(host $storage :docker (:endpoint \"${1:-unix://$DOCKER_SOCK}\"))"
}
ROOT_B="" RUN_B="" SOCK_B="" D2=""
c2() { "$BUILD/clbsd" --socket "$SOCK_B" "$@"; }
dk2() { docker -H "unix://$TMP/docker2.sock" "$@"; }
stop2() {
	local n
	if [ -n "$D2" ]; then
		for n in $(c2 ps -a --format '{{.Name}}' 2>/dev/null); do c2 rm -f "$n" >/dev/null 2>&1; done
		kill "$D2" 2>/dev/null
		wait "$D2" 2>/dev/null
		D2=""
	fi
	if [ -n "$DOCKERD2_PID" ]; then
		dk2 ps -aq | while read -r id; do dk2 rm -f "$id" >/dev/null 2>&1; done
		kill "$DOCKERD2_PID" 2>/dev/null
		wait "$DOCKERD2_PID" 2>/dev/null
		DOCKERD2_PID=""
	fi
	find /sys/fs/cgroup -maxdepth 2 -type d -name "clbsd-$T_ID-2" -exec rmdir {} + 2>/dev/null
}
docker_cleanup() {
	stop2
	if [ -n "$DAEMON_PID" ] && kill -0 "$DAEMON_PID" 2>/dev/null && [ -n "$DOCKERD_PID" ]; then
		host_conf >"$CONF"
		clbsd apply >/dev/null 2>&1
		local n
		for n in $(clbsd ps -a --format '{{.Name}}' 2>/dev/null); do
			clbsd rm -f "$n" >/dev/null 2>&1
		done
	fi
	if [ -n "$DOCKERD_PID" ]; then
		dk ps -aq | while read -r id; do dk rm -f "$id" >/dev/null 2>&1; done
		t_dockerd_stop
	fi
	grep -o " $TMP/d[a-z0-9]*[^ ]*" /proc/mounts | sort -r | while read -r m; do
		umount -l "$m" 2>/dev/null
	done
	# zfs: the pool goes once nothing holds its datasets; dockerd's
	# containers and a second daemon may for a few seconds after they end.
	if [ -n "$ZPOOL" ]; then
		t_kill_daemon TERM
		if wait_until 30 zpool destroy -f "$ZPOOL" 2>/dev/null; then
			ZPOOL=""
		else
			echo "zpool destroy: $(zpool destroy -f "$ZPOOL" 2>&1)"
			grep -l "$ZPOOL\|$TMP/root" /proc/[0-9]*/mountinfo 2>/dev/null | while read -r f; do
				f=${f%/mountinfo}
				echo "held by ${f#/proc/} $(cat "$f/comm" 2>/dev/null) $(readlink "$f/ns/mnt")"
			done | sort -u -k3 | head -5
		fi
	fi
}
t_setup
trap 'rc=$?; docker_cleanup; (exit $rc); t_cleanup' EXIT

LONG='trap "exit 0" TERM; sleep 1000 & wait'
LONG_SEXP='trap \"exit 0\" TERM; sleep 1000 & wait'
# The data a test writes and reads back: a file of random bytes in the volume.
sum_in() { "$@" sh -c 'cat /data/blob /data/note' 2>/dev/null | md5sum | cut -d' ' -f1; }

# ---- snapshot, rollback, list, remove ----
clbsd run -d --kind docker --network none --name db -v data:/data "$IMG" sh -c "$LONG" >/dev/null ||
	fail run "$(tail -3 "$TMP/daemon.log")"
clbsd exec db sh -c 'head -c 200000 /dev/urandom > /data/blob; echo one > /data/note'
sum1=$(sum_in clbsd exec db)
clbsd snapshot db s1 >/dev/null && ok snapshot_taken || fail snapshot_taken "$(clbsd snapshot db s1 2>&1)"
clbsd exec db sh -c 'echo two > /data/note; rm /data/blob'
clbsd snapshots db | grep -q '^s1 ' && ok snapshots_listed || fail snapshots_listed "$(clbsd snapshots db 2>&1)"
pid0=$(field db pid)
out=$(clbsd rollback -t 2 db s1 2>&1)
[ "$(field db state)" = running ] && [ "$(field db pid)" != "$pid0" ] &&
	[ "$(sum_in clbsd exec db)" = "$sum1" ] && ok rollback_restores_data_and_runs ||
	fail rollback_restores_data_and_runs "$out state=$(field db state) $(clbsd exec db cat /data/note 2>&1)"
clbsd snapshot db s2 >/dev/null && clbsd snapshots --rm s2 db >/dev/null &&
	! clbsd snapshots db | grep -q '^s2 ' && ok snapshot_removed || fail snapshot_removed "$(clbsd snapshots db 2>&1)"

# ---- clone: a docker container of the same spec, with the volume as at s1 ----
clbsd exec db sh -c 'echo three > /data/note'
clbsd clone db@s1 db2 >/dev/null && clbsd start db2 >/dev/null &&
	[ "$(field db2 kind)" = docker ] && [ "$(sum_in clbsd exec db2)" = "$sum1" ] &&
	[ "$(clbsd exec db cat /data/note)" = three ] &&
	[ "$(dk inspect -f '{{index .Config.Labels "org.clbsd.name"}}' db2)" = db2 ] && ok clone_runs_with_data ||
	fail clone_runs_with_data "$(clbsd exec db2 cat /data/note 2>&1) / $(tail -3 "$TMP/daemon.log")"
out=$(clbsd rm -f -v db2 2>&1) || fail rm_clone "$out"

# ---- export -> rm -> import: the same data, the image by its id, running ----
sum3=$(sum_in clbsd exec db)
imgid=$(dk image inspect -f '{{.Id}}' "$IMG")
clbsd export -o "$TMP/db.clbsd" db >/dev/null && ok export_made || fail export_made "$(tail -3 "$TMP/daemon.log")"
head -c 4096 "$TMP/db.clbsd" | grep -q "\"id\":\"$imgid\"" && head -c 4096 "$TMP/db.clbsd" | grep -q '"kind":"docker"' &&
	ok export_names_image_id || fail export_names_image_id "$(head -c 600 "$TMP/db.clbsd")"
out=$(clbsd rm -f -v db 2>&1) || fail rm_with_volumes "$out"
out=$(clbsd import "$TMP/db.clbsd" 2>&1) && clbsd start db >/dev/null &&
	[ "$(field db kind)" = docker ] && [ "$(field db state)" = running ] &&
	[ "$(sum_in clbsd exec db)" = "$sum3" ] && ok export_rm_import_same_data ||
	fail export_rm_import_same_data "$out $(sum_in clbsd exec db) vs $sum3"
# An edited header is refused as for native archives (the checksum covers it).
cp "$TMP/db.clbsd" "$TMP/edited.clbsd"
printf 'X' | dd of="$TMP/edited.clbsd" bs=1 seek=200 conv=notrunc 2>/dev/null
out=$(clbsd import --name edited "$TMP/edited.clbsd" 2>&1)
rc=$?
[ $rc -ne 0 ] && echo "$out" | grep -q "damaged or was edited" && ok edited_header_refused ||
	fail edited_header_refused "$out"

# ---- an archive's request is checked as a create's: a host bind needs --allow-host-access ----
mkdir -p "$TMP/hostdir"
clbsd create --kind docker --network none --name hb -v "$TMP/hostdir:/h" "$IMG" true >/dev/null
clbsd export -o "$TMP/hb.clbsd" hb >/dev/null && clbsd rm -f hb >/dev/null
out=$(clbsd import "$TMP/hb.clbsd" 2>&1)
rc=$?
[ $rc -ne 0 ] && echo "$out" | grep -q "asks for access to the host: a bind of the host's $TMP/hostdir at /h" &&
	! clbsd inspect hb >/dev/null 2>&1 && clbsd import --allow-host-access "$TMP/hb.clbsd" >/dev/null 2>&1 &&
	[ "$(field hb kind)" = docker ] && ok import_host_bind_needs_allowing ||
	fail import_host_bind_needs_allowing "rc=$rc $out"
clbsd rm -f hb >/dev/null 2>&1

# ---- an import whose image this dockerd lacks: a clear error, nothing made ----
out=$(clbsd export --with-image -o "$TMP/dbimg.clbsd" db 2>&1) || fail export_with_image "$out"
out=$(clbsd rm -f -v db 2>&1) || fail rm_with_volumes "$out"
dk rmi -f "$IMG" >/dev/null
out=$(clbsd import --name lost "$TMP/db.clbsd" 2>&1)
rc=$?
[ $rc -ne 0 ] && echo "$out" | grep -q "$IMG" && echo "$out" | grep -q "not in this dockerd" &&
	! clbsd inspect lost >/dev/null 2>&1 && [ ! -e "${ROOT:?}/containers/lost" ] && [ ! -e "$ROOT/volumes/lost" ] &&
	[ -z "$(dk ps -aq --filter name=lost)" ] && ok import_missing_image_fails_cleanly ||
	fail import_missing_image_fails_cleanly "rc=$rc $out $(ls "$ROOT/containers" "$ROOT/volumes")"
# ---- export --with-image: the archive carries the image, which import loads ----
out=$(clbsd import --name carried "$TMP/dbimg.clbsd" 2>&1) && clbsd start carried >/dev/null &&
	[ "$(dk image inspect -f '{{.Id}}' "$IMG" 2>/dev/null)" = "$imgid" ] &&
	[ "$(sum_in clbsd exec carried)" = "$sum3" ] && ok import_loads_carried_image ||
	fail import_loads_carried_image "$out $(dk images 2>&1 | tail -2)"
clbsd rm -f -v carried >/dev/null 2>&1
dk image inspect "$IMG" >/dev/null 2>&1 || t_docker_image "$IMG" || fail image_again "docker import failed"
imgid=$(dk image inspect -f '{{.Id}}' "$IMG")

# ---- migrate to another daemon on another dockerd ----
mkdir -p "$TMP/etc2"
dockerd --iptables=false --ip6tables=false --bridge=none --data-root "$TMP/docker2" \
	--exec-root "$TMP/dexec2" -H "unix://$TMP/docker2.sock" -p "$TMP/docker2.pid" \
	>>"$TMP/dockerd2.log" 2>&1 &
DOCKERD2_PID=$!
if wait_until 30 dk2 info >/dev/null 2>&1; then
	ROOT_B="$TMP/root2" RUN_B="$TMP/run2" SOCK_B="$TMP/run2/clbsd.sock"
	storage2=""
	[ -n "$ZPOOL" ] && storage2=":storage (:driver zfs :pool \"$ZPOOL\" :root \"$ZPOOL/clbsd2\")"
	echo "(host $storage2 :docker (:endpoint \"unix://$TMP/docker2.sock\"))" >"$TMP/etc2/clbsd.conf"
	# shellcheck disable=SC2086 # DAEMON_NS is a list of options
	unshare ${DAEMON_NS:---mount --net --propagation private} -- "$BUILD/clbsdd" --root "$ROOT_B" --run "$RUN_B" \
		--socket "$SOCK_B" --config "$TMP/etc2/clbsd.conf" --cgroup-parent "clbsd-$T_ID-2" \
		>>"$TMP/daemon2.log" 2>&1 &
	D2=$!
	wait_until 15 c2 info >/dev/null 2>&1 || fail target_up "$(tail -5 "$TMP/daemon2.log")"
	clbsd run -d --kind docker --network none --name mover -v data:/data "$IMG" sh -c "$LONG" >/dev/null
	clbsd exec mover sh -c 'head -c 300000 /dev/urandom > /data/blob; echo moved > /data/note'
	msum=$(sum_in clbsd exec mover)
	# The target's dockerd lacks the image: --with-image carries it.
	out=$(clbsd migrate --with-image -t 2 mover --to "unix:$SOCK_B" 2>&1 | tr "\n" " ")
	st2=$(c2 --json inspect mover 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["state"])' 2>/dev/null)
	[ "$st2" = running ] && [ "$(sum_in c2 exec mover)" = "$msum" ] && ! clbsd inspect mover >/dev/null 2>&1 &&
		[ -n "$(dk2 ps -q --filter name=mover)" ] && [ -z "$(dk ps -aq --filter name=mover)" ] &&
		[ "$(dk2 image inspect -f '{{.Id}}' "$IMG" 2>/dev/null)" = "$imgid" ] &&
		ok migrate_moves_docker_container || fail migrate_moves_docker_container "$out state=$st2 $(tail -3 "$TMP/daemon2.log")"
	# A declared one moves with its declaration (its image is there now).
	{
		host_conf
		echo "(container dmover :kind docker :image \"$IMG\" :network none
  :volumes ((:dataset \"data\" :path \"/data\")) :command (\"sh\" \"-c\" \"$LONG_SEXP\"))"
	} >"$CONF"
	clbsd apply >/dev/null
	wait_until 20 sh -c '"$0" --socket "$1" exec dmover true 2>/dev/null' "$BUILD/clbsd" "${SOCK:?}"
	clbsd exec dmover sh -c 'head -c 100000 /dev/urandom > /data/blob; echo declared > /data/note'
	dsum=$(sum_in clbsd exec dmover)
	out=$(clbsd migrate -t 2 dmover "unix:$SOCK_B" 2>&1 | tr "\n" " ")
	st2=$(c2 --json inspect dmover 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["state"])' 2>/dev/null)
	pl1=$(clbsd --json plan | python3 -c 'import json,sys; print(json.load(sys.stdin)["actions"])')
	pl2=$(c2 --json plan | python3 -c 'import json,sys; print(json.load(sys.stdin)["actions"])')
	[ "$st2" = running ] && [ "$(sum_in c2 exec dmover)" = "$dsum" ] && [ "$pl1" = "[]" ] &&
		[ "$pl2" = "[]" ] && grep -q "(moved dmover" "$TMP/etc/conf.d/90-live.conf" &&
		grep -q "(container dmover" "$TMP/etc2/conf.d/90-live.conf" &&
		ok migrate_declared_docker || fail migrate_declared_docker "$out state=$st2 $pl1 $pl2"
	rm -f "$TMP/etc2/conf.d/90-live.conf"
	c2 apply >/dev/null 2>&1
	stop2
else
	fail dockerd2 "$(tail -3 "$TMP/dockerd2.log")"
fi

# ---- :snapshot-before-change: a recreate sets it aside, `clbsd undo` brings it back ----
decl() {
	host_conf
	echo "(container keep :kind docker :image \"$IMG\" :network none :env ((\"V\" . \"$1\"))
  :volumes ((:dataset \"data\" :path \"/data\")) :command (\"sh\" \"-c\" \"$LONG_SEXP\"))"
}
decl one >"$CONF"
clbsd apply >/dev/null
wait_until 20 sh -c '[ "$("$0" --socket "$1" --json inspect keep 2>/dev/null | python3 -c "import json,sys; print(json.load(sys.stdin)[0][\"state\"])")" = running ]' "$BUILD/clbsd" "${SOCK:?}"
clbsd exec keep sh -c 'echo kept > /data/note'
decl two >"$CONF"
clbsd apply >/dev/null
wait_until 20 sh -c '"$0" --socket "$1" exec keep env 2>/dev/null | grep -qx V=two' "$BUILD/clbsd" "${SOCK:?}"
clbsd exec keep env | grep -qx V=two && ok recreate_applied || fail recreate_applied "$(clbsd exec keep env 2>&1)"
out=$(clbsd undo keep 2>&1)
wait_until 20 sh -c '"$0" --socket "$1" exec keep env 2>/dev/null | grep -qx V=one' "$BUILD/clbsd" "${SOCK:?}"
clbsd exec keep env | grep -qx V=one && [ "$(clbsd exec keep cat /data/note)" = kept ] && ok undo_brings_back_docker ||
	fail undo_brings_back_docker "$out $(clbsd exec keep env 2>&1 | grep V=)"
host_conf >"$CONF"
clbsd apply >/dev/null
clbsd rm -f keep >/dev/null 2>&1

# ---- a remote endpoint: clbsd volumes are refused at create, saying why ----
host_conf "tcp://127.0.0.1:9" >"$CONF"
clbsd apply >/dev/null 2>&1
out=$(clbsd create --kind docker --network none --name far -v data:/data "$IMG" true 2>&1)
rc=$?
[ $rc -ne 0 ] && echo "$out" | grep -q "another host's dockerd" && ! clbsd inspect far >/dev/null 2>&1 &&
	ok remote_endpoint_refuses_volumes || fail remote_endpoint_refuses_volumes "rc=$rc $out"
host_conf >"$CONF"
clbsd apply >/dev/null 2>&1
t_done
