#!/bin/bash
# clbsd host export / import between daemons on zfs (datasets of one pool
# under zfs-fuse): every container is snapshotted at one moment without
# being stopped; the homelab arrives with equal data and `host diff` finds
# nothing; `--since` carries only the changes and updates the import in
# place; a daemon killed in the middle of an export leaves no archive and
# no temporary file, and one killed in the middle of an import leaves whole
# containers or none, after which the import is run again and completes.
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
# Targets: daemon N has its own root, run dir, socket, config and dataset.
# shellcheck disable=SC2034 # set and read through eval in startn/stopn
D2=""
D3=""
cn() { local n=$1; shift; "$BUILD/clbsd" --socket "$TMP/run$n/clbsd.sock" "$@"; }
c2() { cn 2 "$@"; }
c3() { cn 3 "$@"; }
startn() {
	local n=$1
	mkdir -p "$TMP/etc$n/conf.d"
	[ -e "$TMP/etc$n/clbsd.conf" ] ||
		echo "(host :storage (:driver zfs :pool \"$ZPOOL\" :root \"$ZPOOL/clbsd$n\"))" >"$TMP/etc$n/clbsd.conf"
	unshare --net -- "$BUILD/clbsdd" --root "$TMP/root$n" --run "$TMP/run$n" \
		--socket "$TMP/run$n/clbsd.sock" --config "$TMP/etc$n/clbsd.conf" \
		--cgroup-parent "clbsd-$T_ID-$n" --pool=0 >>"$TMP/daemon$n.log" 2>&1 &
	eval "D$n=$!"
	# A daemon killed mid-import cleans up before it listens: zfs-fuse may
	# answer "busy" for a while when other tests run beside this one.
	# zfs-fuse can take a while to settle after a daemon killed mid-receive
	# (its orphaned zfs recv ends on EOF and is undone) on a loaded machine.
	wait_until 150 cn "$n" info >/dev/null 2>&1 && return 0
	# What it waits on (its zfs commands, its kernel wait), for the failure's message.
	local p
	eval "p=\$D$n"
	{
		echo "daemon $n still starting: $(ps -o pid,etime,args --ppid "$p" | tr '\n' '|')"
		echo "daemon $n wchan: $(cat "/proc/$p/wchan" 2>&1) stack: $(tr '\n' '|' <"/proc/$p/stack" 2>&1)"
		echo "zfs processes: $(pgrep -a zfs | tr '\n' '|')"
	} >>"$TMP/daemon$n.log"
	return 1
}
stopn() {
	local n=$1 pid
	eval "pid=\$D$n"
	for c in $(cn "$n" --json ps -a 2>/dev/null | python3 -c 'import json,sys
for c in json.load(sys.stdin): print(c["name"])' 2>/dev/null); do cn "$n" rm -f -v "$c" >/dev/null 2>&1; done
	[ -n "$pid" ] && kill "$pid" 2>/dev/null
	[ -n "$pid" ] && wait "$pid" 2>/dev/null
	eval "D$n="
	find /sys/fs/cgroup -maxdepth 2 -type d -name "clbsd-$T_ID-$n" -exec rmdir {} + 2>/dev/null
}
trap 'stopn 3; stopn 2; t_cleanup' EXIT
startn 2 || { fail target_up "$(tail -5 "$TMP/daemon2.log")"; t_done; exit 1; }
staten() { cn "$1" --json inspect "$2" 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["state"])' 2>/dev/null; }

# The homelab: three running containers with data, one with a named volume.
clbsd run -d --name web -v data:/srv forge sleep 300 >/dev/null
# web's volume is big enough that its receive takes a while: the kill
# below lands between web's own dataset and its volume's.
clbsd exec web sh -c 'head -c 40000000 /dev/urandom > /srv/blob; echo hello > /index.html'
clbsd run -d --name db forge sleep 300 >/dev/null
clbsd exec db sh -c 'echo rows > /db.txt'
clbsd run -d --name cache forge sleep 300 >/dev/null
pid_web=$(field web pid)

clbsd host export --label h1 -o "$TMP/h1.host" >"$TMP/out" 2>"$TMP/err" && ok export_writes_archive ||
	fail export_writes_archive "$(cat "$TMP/out" "$TMP/err")"
! grep -q "own moment" "$TMP/err" && [ "$(field web pid)" = "$pid_web" ] &&
	ok export_runs_without_stopping || fail export_runs_without_stopping "$(cat "$TMP/err")"
# One `zfs snapshot -r`: web (its dataset, its volumes' group and volume), db,
# cache have h1; nothing outside containers/ and volumes/ keeps one.
list=$(zfs list -H -t snapshot -o name -r "$ZPOOL/clbsd")
[ "$(echo "$list" | grep -c "@h1$")" -ge 5 ] && [ "$(echo "$list" | grep "@h1$" | grep -vc "/containers/\|/volumes/")" = 0 ] &&
	ok one_snapshot_of_all_containers || fail one_snapshot_of_all_containers "$list"

out=$(c2 host import "$TMP/h1.host" 2>&1)
rc=$?
[ $rc -eq 0 ] && [ "$(staten 2 web)" = running ] && [ "$(c2 exec web md5sum /srv/blob)" = "$(clbsd exec web md5sum /srv/blob)" ] &&
	[ "$(c2 exec db cat /db.txt)" = rows ] && ok import_moves_homelab || fail import_moves_homelab "rc=$rc $out"
out=$(clbsd host diff "unix:$TMP/run2/clbsd.sock" 2>&1)
rc=$?
[ $rc -eq 0 ] && ok diff_empty || fail diff_empty "rc=$rc $out"

# Incremental: only what changed since h1, applied in place.
clbsd exec db sh -c 'echo more >> /db.txt'
clbsd host export --label h2 --since h1 -o "$TMP/h2.host" >/dev/null 2>"$TMP/err" ||
	fail incremental_export "$(cat "$TMP/err")"
[ "$(stat -c %s "$TMP/h2.host")" -lt "$(stat -c %s "$TMP/h1.host")" ] && ok incremental_is_smaller ||
	fail incremental_is_smaller "$(stat -c %s "$TMP/h1.host" "$TMP/h2.host")"
out=$(c2 host import "$TMP/h2.host" 2>&1)
rc=$?
[ $rc -eq 0 ] && [ "$(c2 exec db tail -1 /db.txt)" = more ] && [ "$(staten 2 db)" = running ] &&
	ok incremental_updates_in_place || fail incremental_updates_in_place "rc=$rc $(echo "$out" | tr '\n' '|') $(grep -i "storage\|db" "$TMP/daemon2.log" | grep -v "api:" | tail -15 | tr '\n' '|')"
out=$(clbsd host diff "unix:$TMP/run2/clbsd.sock" 2>&1)
rc=$?
[ $rc -eq 0 ] && ok diff_empty_after_increment || fail diff_empty_after_increment "rc=$rc $out"
# The increment came with the exporter's container.json among the files:
# after a restart daemon 2 still has its own record (web's volume is in
# its root, not the exporter's).
kill "$D2"
wait "$D2" 2>/dev/null
D2=""
startn 2 || fail target_up "second daemon after restart: $(tail -5 "$TMP/daemon2.log")"
vsrc=$(c2 --json inspect web 2>&1 | python3 -c 'import json,sys
for v in json.load(sys.stdin)[0]["config"]["volumes"]: print(v["source"])' 2>&1)
case "$vsrc" in
"$TMP/root2/volumes/web/"*) ok record_kept_after_increment ;;
*) fail record_kept_after_increment "$vsrc" ;;
esac

# Daemon 2 killed while an increment is received: web's own dataset has
# the new snapshot, its (big) volume does not yet. At the next start web
# is back at h2 as a whole, with daemon 2's own record; the import run
# again completes.
clbsd exec web sh -c 'head -c 40000000 /dev/urandom > /srv/blob2'
clbsd exec db sh -c 'echo newest >> /db.txt'
clbsd host export --label h2b --since h2 -o "$TMP/h2b.host" >/dev/null 2>"$TMP/err" ||
	fail incremental_export_h2b "$(cat "$TMP/err")"
c2 host import "$TMP/h2b.host" >/dev/null 2>"$TMP/imp" &
imp=$!
wait_until 60 zfs list -H -o name "$ZPOOL/clbsd2/containers/web@h2b" >/dev/null 2>&1 ||
	fail killed_increment_back_at_base "web's increment never began: $(cat "$TMP/imp")"
kill -KILL "$D2"
wait "$D2" 2>/dev/null
D2=""
wait "$imp"
rc=$?
rm -f "$TMP/run2/clbsd.sock"
startn 2 || fail target_up "second daemon after kill: $(tail -5 "$TMP/daemon2.log")"
snaps=$(zfs list -H -t snapshot -o name -r "$ZPOOL/clbsd2" | grep "/\(containers\|volumes\)/web\(/\|@\)" | grep -c "@h2b$")
vsrc=$(c2 --json inspect web 2>&1 | python3 -c 'import json,sys
for v in json.load(sys.stdin)[0]["config"]["volumes"]: print(v["source"])' 2>&1)
c2 start web >/dev/null 2>&1
blob2=$(c2 exec web sh -c 'test -e /srv/blob2 && md5sum < /srv/blob2 || echo none' 2>&1)
case "$vsrc" in
"$TMP/root2/volumes/web/"*) rec=ok ;;
*) rec="$vsrc" ;;
esac
[ $rc -ne 0 ] && [ "$rec" = ok ] && [ "$snaps" = 0 ] && [ "$blob2" = none ] &&
	grep -q "import of changes into web was cut short" "$TMP/daemon2.log" &&
	[ "$(c2 exec web md5sum /srv/blob)" = "$(clbsd exec web md5sum /srv/blob)" ] &&
	ok killed_increment_back_at_base ||
	fail killed_increment_back_at_base "rc=$rc rec=$rec h2b-snapshots=$snaps blob2=$blob2 $(grep -v "api:" "$TMP/daemon2.log" | tail -12)"
out=$(c2 host import "$TMP/h2b.host" 2>&1)
rc=$?
[ $rc -eq 0 ] && grep -q "at h2b already: left as it is" <<<"$out" &&
	[ "$(c2 exec web md5sum /srv/blob2 2>&1)" = "$(clbsd exec web md5sum /srv/blob2)" ] &&
	[ "$(c2 exec db tail -1 /db.txt)" = newest ] && ok killed_increment_rerun_completes ||
	fail killed_increment_rerun_completes "rc=$rc $out $(c2 ps -a)"
clbsd exec web rm /srv/blob2
stopn 2

# The source daemon killed in the middle of an export: no archive, no
# temporary file, and after its restart a new export works.
clbsd host export --label h3 -o "$TMP/h3.host" >/dev/null 2>&1 &
exp=$!
wait_until 10 sh -c 'ls -a "$0" | grep -q "^\.clbsd-host-"' "$TMP"
t_kill_daemon KILL
wait "$exp"
rc=$?
left=$(find "$TMP" -maxdepth 1 \( -name '.clbsd-host-*' -o -name 'h3.host*' \) | wc -l)
[ $rc -ne 0 ] && [ "$left" = 0 ] && ok killed_export_leaves_nothing ||
	fail killed_export_leaves_nothing "rc=$rc $(ls -a "$TMP")"
t_start_daemon || fail restart "daemon did not come back"
clbsd host export --label h4 -o "$TMP/h4.host" >/dev/null 2>&1 && ok export_after_restart ||
	fail export_after_restart "$(tail -5 "$TMP/daemon.log")"

# A daemon killed in the middle of an import: each container is whole or
# absent; started again, the import is run again and completes.
startn 3 || fail target_up "third daemon: $(tail -5 "$TMP/daemon3.log")"
c3 host import "$TMP/h4.host" >/dev/null 2>"$TMP/imp" &
imp=$!
# Killed once web's own dataset (with the exporter's container.json in
# it) is received, while its volume is: the next start must not load it.
wait_until 60 zfs list -H -o name "$ZPOOL/clbsd3/containers/web" >/dev/null 2>&1 ||
	fail killed_import_leaves_whole_or_nothing "web's receive never began: $(cat "$TMP/imp")"
kill -KILL "$D3"
wait "$D3" 2>/dev/null
D3=""
wait "$imp"
rc=$?
rm -f "$TMP/run3/clbsd.sock"
startn 3 || fail target_up "third daemon after kill: $(tail -5 "$TMP/daemon3.log")"
whole=1
there=0
whyfail=""
for n in $(c3 --json ps -a | python3 -c 'import json,sys
for c in json.load(sys.stdin): print(c["name"])'); do
	there=$((there + 1))
	started=$(c3 start "$n" 2>&1) || whyfail="$whyfail start $n: $started;"
	[ "$n" = db ] && [ "$(c3 exec db tail -1 /db.txt)" != "$(clbsd exec db tail -1 /db.txt)" ] && whole=0
	[ "$n" = web ] && [ "$(c3 exec web md5sum /srv/blob)" != "$(clbsd exec web md5sum /srv/blob)" ] && whole=0
done
# An absent container left no dataset behind (its own nor its volumes').
for n in web db cache; do
	c3 inspect "$n" >/dev/null 2>&1 && continue
	left=$(zfs list -H -o name -r "$ZPOOL/clbsd3" 2>/dev/null | grep "/$n\(/\|\$\)")
	[ -z "$left" ] || { whole=0; whyfail="$whyfail left of $n: $left;"; }
done
[ $rc -ne 0 ] && [ "$whole" = 1 ] && [ "$there" -lt 3 ] && ok killed_import_leaves_whole_or_nothing ||
	fail killed_import_leaves_whole_or_nothing "rc=$rc there=$there $whyfail $(c3 ps -a) $(cat "$TMP/imp") $(grep -v "api:" "$TMP/daemon3.log" | tail -20)"
out=$(c3 host import "$TMP/h4.host" 2>&1)
rc=$?
[ $rc -eq 0 ] && [ "$(c3 ps -q | wc -l)" = 3 ] && ok import_rerun_completes ||
	fail import_rerun_completes "rc=$rc $out $(c3 ps -a)"
out=$(clbsd host diff "unix:$TMP/run3/clbsd.sock" 2>&1)
rc=$?
[ $rc -eq 0 ] && ok diff_empty_after_rerun || fail diff_empty_after_rerun "rc=$rc $out"
t_done
