#!/bin/bash
# Live migration between two daemons on zfs (two datasets of one pool under
# zfs-fuse): the bulk is sent while the container runs, then it stops and
# only what changed since is sent; it ends running on the target with every
# file, writes made after the first send included, and the migration leaves
# no snapshot behind. An incremental import into a running container, or
# without its base, is refused. A declared container migrates live into
# its declaration, carried to the target's live layer.
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
ROOT2="$TMP/root2"
RUN2="$TMP/run2"
SOCK2="$RUN2/clbsd.sock"
D2=""
c2() { "$BUILD/clbsd" --socket "$SOCK2" "$@"; }
stop2() {
	# Nothing declared there first, or its reconciler brings back what goes.
	rm -f "$TMP/etc2/conf.d/90-live.conf"
	c2 apply >/dev/null 2>&1
	for n in $(c2 --json ps -a 2>/dev/null | python3 -c 'import json,sys
for c in json.load(sys.stdin): print(c["name"])' 2>/dev/null); do c2 rm -f "$n" >/dev/null 2>&1; done
	[ -n "$D2" ] && kill "$D2" 2>/dev/null
	[ -n "$D2" ] && wait "$D2" 2>/dev/null
	D2=""
	find /sys/fs/cgroup -maxdepth 2 -type d -name "clbsd-$T_ID-2" -exec rmdir {} + 2>/dev/null
}
trap 'stop2; t_cleanup' EXIT
# The target: its own dataset of the same pool, and the same image.
mkdir -p "$ROOT2/images" "$TMP/etc2"
cp -a "${ROOT:?}"/images/. "$ROOT2/images/"
echo "(host :storage (:driver zfs :pool \"$ZPOOL\" :root \"$ZPOOL/clbsd2\"))" >"$TMP/etc2/clbsd.conf"
unshare --net -- "$BUILD/clbsdd" --root "$ROOT2" --run "$RUN2" --socket "$SOCK2" \
	--config "$TMP/etc2/clbsd.conf" --cgroup-parent "clbsd-$T_ID-2" --pool=0 >>"$TMP/daemon2.log" 2>&1 &
D2=$!
wait_until 15 c2 info >/dev/null 2>&1 || { fail target_up "$(tail -5 "$TMP/daemon2.log")"; t_done; exit 1; }

# A container that keeps writing: a counter file, and a blob written once.
# Started again on the target, it notes the count it finds there (/found)
# and goes on from it.
clbsd run -d --name live forge sh -c '[ -e /blob ] || { head -c 3000000 /dev/urandom > /blob.tmp; mv /blob.tmp /blob; }
i=$(cat /count 2>/dev/null || echo 0); echo $i > /found.tmp; mv /found.tmp /found; while true; do i=$((i+1)); echo $i > /count; sleep 0.05; done' >/dev/null
wait_until 10 clbsd exec live test -s /blob
sum=$(clbsd exec live md5sum /blob)
count0=$(clbsd exec live cat /count)
out=$(clbsd migrate -t 2 live --to "unix:$SOCK2" 2>"$TMP/progress")
grep -q "exporting while it runs" "$TMP/progress" && grep -q "exporting what changed since" "$TMP/progress" &&
	ok migrate_sends_while_running || fail migrate_sends_while_running "$out $(cat "$TMP/progress")"
[ "$out" = live ] && [ "$(c2 --json inspect live | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["state"])')" = running ] &&
	[ "$(c2 exec live md5sum /blob)" = "$sum" ] && ok live_migrated_runs_with_files ||
	fail live_migrated_runs_with_files "$out $(cat "$TMP/progress"): $sum vs $(c2 exec live md5sum /blob 2>&1)"
# The changes made between the first send and the stop arrived too: the
# target found the count of the stop, not the one of the first send. The
# source wrote 0 to /found at its start; wait for the target's shell to
# write its own (renamed into place, so never read half written).
wait_until 10 sh -c '[ "$("$0" --socket "$1" exec live cat /found)" != 0 ]' "$BUILD/clbsd" "$SOCK2"
count1=$(c2 exec live cat /found 2>&1)
[ "$count1" -gt "$((count0 + 5))" ] 2>/dev/null && ok changes_after_first_send_arrive ||
	fail changes_after_first_send_arrive "count before $count0, on the target $count1"
! clbsd inspect live >/dev/null 2>&1 && ok live_gone_from_source || fail live_gone_from_source "$(clbsd ps -a)"
left=$(zfs list -H -t snapshot -o name 2>/dev/null | grep -c "@migrate-" || true)
[ "$left" = 0 ] && ok migration_leaves_no_snapshot || fail migration_leaves_no_snapshot "$(zfs list -H -t snapshot -o name)"

# By hand: a full export keeping its snapshot, then an incremental one.
clbsd run -d --name inc forge sleep 300 >/dev/null
clbsd exec inc sh -c 'echo one > /f'
clbsd export --snapshot base -o "$TMP/full.clbsd" inc >/dev/null &&
	c2 import "$TMP/full.clbsd" >/dev/null || fail incremental_by_hand "full export/import failed"
clbsd exec inc sh -c 'echo two > /f'
clbsd export --snapshot next --since base -o "$TMP/incr.clbsd" inc >/dev/null ||
	fail incremental_by_hand "incremental export failed"
[ "$(stat -c %s "$TMP/incr.clbsd")" -lt "$(stat -c %s "$TMP/full.clbsd")" ] && ok incremental_is_smaller ||
	fail incremental_is_smaller "$(stat -c %s "$TMP/incr.clbsd" "$TMP/full.clbsd")"
c2 start inc >/dev/null
out=$(c2 import "$TMP/incr.clbsd" 2>&1)
rc=$?
[ $rc -ne 0 ] && echo "$out" | grep -q "stop it" && ok incremental_into_running_refused ||
	fail incremental_into_running_refused "rc=$rc $out"
c2 stop -t 1 inc >/dev/null
c2 import "$TMP/incr.clbsd" >/dev/null && c2 start inc >/dev/null &&
	[ "$(c2 exec inc cat /f)" = two ] && ok incremental_import_updates || fail incremental_import_updates "$(c2 exec inc cat /f 2>&1)"
out=$(clbsd import --name other "$TMP/incr.clbsd" 2>&1)
rc=$?
[ $rc -ne 0 ] && echo "$out" | grep -q "import the full export first" && ok incremental_without_base_refused ||
	fail incremental_without_base_refused "rc=$rc $out"

# A declared container, live: the full send goes into its declaration,
# provisionally, the changes after the stop update it, and it is committed.
cat >>"$CONF" <<'EOF'
(container dweb :image "forge" :command ("sleep" "300")
  :volumes ((:dataset "data" :path "/srv/data")))
EOF
clbsd apply >/dev/null
wait_until 20 sh -c '[ "$("$0" --socket "$1" --json inspect dweb | python3 -c "import json,sys; print(json.load(sys.stdin)[0][\"state\"])")" = running ]' \
	"$BUILD/clbsd" "${SOCK:?}"
clbsd exec dweb sh -c 'echo vol > /srv/data/f; echo st > /state'
out=$(clbsd migrate -t 1 dweb "unix:$SOCK2" 2>"$TMP/progress")
plan2=$(c2 --json plan | python3 -c 'import json,sys; print(json.load(sys.stdin)["actions"])')
plan1=$(clbsd --json plan | python3 -c 'import json,sys; print(json.load(sys.stdin)["actions"])')
[ "$out" = dweb ] && grep -q "exporting while it runs" "$TMP/progress" &&
	[ "$(c2 exec dweb cat /srv/data/f /state | tr '\n' ' ')" = "vol st " ] &&
	[ "$plan1" = "[]" ] && [ "$plan2" = "[]" ] && grep -q "(container dweb" "$TMP/etc2/conf.d/90-live.conf" &&
	grep -q "(moved dweb" "$TMP/etc/conf.d/90-live.conf" && [ ! -e "$ROOT2/transfer/import-dweb.json" ] &&
	ok declared_live_migration || fail declared_live_migration "$out $plan1 $plan2 $(cat "$TMP/progress")"
t_done
