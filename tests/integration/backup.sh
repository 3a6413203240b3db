#!/bin/bash
# :backup across a simulated fortnight of daily backups (the daemon runs
# with CLBSD_TEST_CLOCK=1, so `clbsd backup NAME --at TIME` gives each
# backup its day: time injected, not waited for), on zfs, to a directory
# (web, from the host-wide :backup) and to a second daemon (db, unix:):
# the tiers are pruned on both ends and here, an incremental is smaller
# than the full, restore --at brings back an older day's data (checksums),
# a failing destination is retried with backoff while the container keeps
# running untouched, and status, `clbsd backups` and events show it all.
. "$(dirname "$0")/../lib.sh"
export CLBSD_TEST_CLOCK=1
t_before_start() {
	t_zfs_setup || return 1
	# The daemon's ssh (for the ssh:// destination), written once sshd is up.
	export CLBSD_SSH_COMMAND="sh $TMP/ssh-wrap"
	export CLBSD_REMOTE="$BUILD/clbsd"
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
BK="$TMP/backups"
D2=""
SSHD=""
c2() { "$BUILD/clbsd" --socket "$SOCK2" "$@"; }
stop2() {
	for n in $(c2 --json ps -a 2>/dev/null | python3 -c 'import json,sys
for c in json.load(sys.stdin): print(c["name"])' 2>/dev/null); do c2 rm -f "$n" >/dev/null 2>&1; done
	[ -n "$D2" ] && kill "$D2" 2>/dev/null
	[ -n "$D2" ] && wait "$D2" 2>/dev/null
	D2=""
	find /sys/fs/cgroup -maxdepth 2 -type d -name "clbsd-$T_ID-2" -exec rmdir {} + 2>/dev/null
}
stop_sshd() { [ -n "$SSHD" ] && kill "$SSHD" 2>/dev/null && wait "$SSHD" 2>/dev/null; SSHD=""; }
trap 'stop_sshd; stop2; t_cleanup' EXIT
mkdir -p "$ROOT2/images" "$TMP/etc2"
cp -a "${ROOT:?}"/images/. "$ROOT2/images/"
echo "(host :storage (:driver zfs :pool \"$ZPOOL\" :root \"$ZPOOL/clbsd2\"))" >"$TMP/etc2/clbsd.conf"
env -u CLBSD_TEST_CLOCK unshare --net -- "$BUILD/clbsdd" --root "$ROOT2" --run "$RUN2" --socket "$SOCK2" \
	--config "$TMP/etc2/clbsd.conf" --cgroup-parent "clbsd-$T_ID-2" --pool=0 >>"$TMP/daemon2.log" 2>&1 &
D2=$!
wait_until 15 c2 info >/dev/null 2>&1 || { fail target_up "$(tail -5 "$TMP/daemon2.log")"; t_done; exit 1; }

# An sshd on loopback (as migrate.sh): the second daemon over ssh too.
FAR=""
if [ -x /usr/sbin/sshd ]; then
	S="$TMP/ssh"
	mkdir -p "$S" /run/sshd
	ssh-keygen -q -t ed25519 -N '' -f "$S/host" && ssh-keygen -q -t ed25519 -N '' -f "$S/id"
	cp "$S/id.pub" "$S/authorized_keys"
	port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
	cat >"$S/config" <<SSHCONF
Port $port
ListenAddress 127.0.0.1
HostKey $S/host
PidFile $S/pid
AuthorizedKeysFile $S/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
SSHCONF
	/usr/sbin/sshd -D -e -f "$S/config" 2>>"$TMP/sshd.log" &
	SSHD=$!
	# The daemon has a network namespace of its own: its ssh enters this
	# test's, where sshd listens.
	printf 'exec nsenter --net=/proc/%s/ns/net ssh -i %s -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR "$@"\n' "$$" "$S/id" >"$TMP/ssh-wrap"
	wait_until 5 sh "$TMP/ssh-wrap" -o BatchMode=yes -p "$port" root@127.0.0.1 true ||
		fail sshd_up "$(cat "$TMP/sshd.log")"
	FAR="(container far :image \"forge\" :command (\"sleep\" \"600\")
  :backup (:to \"ssh://root@127.0.0.1:$port$SOCK2\"))"
fi

# web: the host's :backup (a directory); db: its own (the second daemon);
# flaky: a destination that is not there; quiet: opted out; far: the
# second daemon over ssh.
cat >"$CONF" <<CONF
(host :storage (:driver zfs :pool "$ZPOOL" :root "$ZPOOL/clbsd")
  :backup (:every "1d" :keep (:daily 1 :weekly 2 :monthly 0) :to "file://$BK"))
(container web :image "forge" :command ("sleep" "600"))
(container db :image "forge" :command ("sleep" "600")
  :backup (:every "1d" :keep (:daily 1 :weekly 2 :monthly 0) :to "unix:$SOCK2"))
(container flaky :image "forge" :command ("sleep" "600")
  :backup (:every "1d" :to "unix:$TMP/nowhere.sock"))
(container quiet :image "forge" :command ("sleep" "600") :backup nil)
$FAR
CONF
clbsd apply >/dev/null
running() { [ "$(clbsd ps | grep -c ' running')" -ge "$([ -n "$FAR" ] && echo 5 || echo 4)" ]; }
wait_until 20 running || fail running "$(clbsd ps -a)"

# Thursday 2026-01-01 to Friday 2026-01-09, one backup a day at 03:00 UTC,
# each day's data different; day 1 also writes a 2 MB blob (the full).
clbsd exec web sh -c 'head -c 2000000 /dev/urandom > /blob'
clbsd exec db sh -c 'head -c 2000000 /dev/urandom > /blob'
declare -A SUM_WEB SUM_DB
ok_days=0
for d in 1 2 3 4 5 6 7 8 9; do
	day=$(printf '2026-01-%02dT03:00:00Z' "$d")
	clbsd exec web sh -c "echo web-day-$d > /data"
	clbsd exec db sh -c "echo db-day-$d > /data"
	if [ "$d" = 4 ] || [ "$d" = 9 ]; then
		SUM_WEB[$d]=$(clbsd exec web md5sum /data /blob)
		SUM_DB[$d]=$(clbsd exec db md5sum /data /blob)
	fi
	# The two containers' backups run side by side.
	clbsd backup web --at "$day" >"$TMP/web.$d" 2>&1 &
	pw=$!
	clbsd backup db --at "$day" >"$TMP/db.$d" 2>&1 &
	pd=$!
	wait $pw && wait $pd && ok_days=$((ok_days + 1))
done
[ "$ok_days" = 9 ] && ok nine_daily_backups || fail nine_daily_backups "$(cat "$TMP"/web.* "$TMP"/db.*)"
grep -q "incremental" "$TMP/web.2" && grep -q "full" "$TMP/web.1" && grep -q "incremental" "$TMP/db.9" &&
	ok incrementals_after_the_full || fail incrementals_after_the_full "$(cat "$TMP/web.1" "$TMP/web.2" "$TMP/db.9")"

# The tiers (:daily 1 :weekly 2): Fri 9 (the day, and its ISO week) and
# Sun 4 (the newest of the week before) are kept.
labels() { python3 -c 'import json,sys; print(" ".join(sorted(s["label"] for s in json.load(sys.stdin) if s["label"].startswith("backup-"))))'; }
want="backup-20260104-030000 backup-20260109-030000"
here_web=$(clbsd --json snapshots web | labels)
here_db=$(clbsd --json snapshots db | labels)
there_db=$(c2 --json snapshots db | labels)
[ "$here_web" = "$want" ] && [ "$here_db" = "$want" ] && ok pruned_here || fail pruned_here "web: $here_web; db: $here_db"
[ "$there_db" = "$want" ] && ok pruned_on_second_daemon || fail pruned_on_second_daemon "$there_db"
# The directory keeps what 4 and 9 need: the chain 1..4 (full 1, then
# incrementals) and 9 (a new full: a chain holds at most 7 incrementals);
# 5 to 8 are gone.
files=$(cd "$BK/web" && find . -name '*.clbsd' | sort | tr '\n' ' ')
want_files="./backup-20260101-030000.clbsd ./backup-20260102-030000.clbsd ./backup-20260103-030000.clbsd ./backup-20260104-030000.clbsd ./backup-20260109-030000.clbsd "
[ "$files" = "$want_files" ] && ok pruned_in_directory || fail pruned_in_directory "$files"
python3 - "$BK/web/index.json" <<'PY' && ok index_lists_chains || fail index_lists_chains "$(cat "$BK/web/index.json")"
import json, sys
b = {e["label"]: e for e in json.load(open(sys.argv[1]))["backups"]}
assert b["backup-20260101-030000"]["base"] is None
assert b["backup-20260104-030000"]["base"] == "backup-20260103-030000"
assert b["backup-20260109-030000"]["base"] is None
assert b["backup-20260102-030000"]["bytes"] * 5 < b["backup-20260101-030000"]["bytes"], b
PY
full=$(stat -c %s "$BK/web/backup-20260101-030000.clbsd")
incr=$(stat -c %s "$BK/web/backup-20260102-030000.clbsd")
[ "$incr" -lt "$full" ] && ok incremental_smaller_than_full || fail incremental_smaller_than_full "$incr >= $full"
# The backups on the second daemon are a stopped container, untouched by its reconciler.
[ "$(c2 --json inspect db | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["state"])')" != running ] &&
	ok copy_there_is_stopped || fail copy_there_is_stopped "$(c2 ps -a)"

# Restore an older day beside the original: day 4's data, checksums equal.
clbsd restore web --from "file://$BK" --at 2026-01-04T12:00:00Z --as web-old >/dev/null 2>"$TMP/restore.err" &&
	clbsd start web-old >/dev/null &&
	[ "$(clbsd exec web-old md5sum /data /blob)" = "${SUM_WEB[4]}" ] && [ "$(clbsd exec web-old cat /data)" = web-day-4 ] &&
	ok restore_dir_at_older_day || fail restore_dir_at_older_day "$(cat "$TMP/restore.err"; clbsd exec web-old cat /data 2>&1)"
clbsd restore db --from "unix:$SOCK2" --at 2026-01-05 --as db-old >/dev/null 2>"$TMP/restore2.err" &&
	clbsd start db-old >/dev/null &&
	[ "$(clbsd exec db-old md5sum /data /blob)" = "${SUM_DB[4]}" ] &&
	ok restore_remote_at_older_day || fail restore_remote_at_older_day "$(cat "$TMP/restore2.err"; clbsd exec db-old cat /data 2>&1)"
clbsd restore db --from "unix:$SOCK2" --as db-new >/dev/null 2>&1 && clbsd start db-new >/dev/null &&
	[ "$(clbsd exec db-new md5sum /data /blob)" = "${SUM_DB[9]}" ] &&
	ok restore_newest || fail restore_newest "$(clbsd exec db-new cat /data 2>&1)"
# (a removal on zfs finishes on a worker: the clone may be listed a moment longer)
no_clone_there() { ! c2 ps -a | grep -q restore-; }
wait_until 10 no_clone_there && ok restore_leaves_nothing_there || fail restore_leaves_nothing_there "$(c2 ps -a)"
out=$(clbsd restore web --from "$BK" 2>&1) || rc=$?
[ "${rc:-0}" -ne 0 ] && echo "$out" | grep -q "exists here" && ok restore_refuses_over_existing ||
	fail restore_refuses_over_existing "$out"

# --replace of the declared, running web: set aside, day 4 restored into
# its declaration and started; the plan stays empty; undo brings back the
# container it replaced; a damaged archive puts the old one back.
state_of() { clbsd --json inspect "$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["state"])'; }
web_runs() { [ "$(state_of web)" = running ]; }
clbsd restore web --from "$BK" --at 2026-01-04 --replace >/dev/null 2>"$TMP/replace.err" &&
	wait_until 10 web_runs && [ "$(clbsd exec web md5sum /data /blob)" = "${SUM_WEB[4]}" ] &&
	ok restore_replace_running || fail restore_replace_running "$(cat "$TMP/replace.err"; clbsd ps -a)"
clbsd --json inspect web | python3 -c 'import json,sys; assert json.load(sys.stdin)[0]["managed"]' &&
	clbsd --json plan | python3 -c 'import json,sys; p=json.load(sys.stdin); a=p["actions"] if isinstance(p,dict) else p; assert not a, a' &&
	ok restore_into_declaration || fail restore_into_declaration "$(clbsd plan; clbsd --json inspect web | head -c 600)"
clbsd undo web >/dev/null 2>&1 && wait_until 10 web_runs && [ "$(clbsd exec web cat /data)" = web-day-9 ] &&
	ok undo_after_restore || fail undo_after_restore "$(clbsd exec web cat /data 2>&1)"
mkdir -p "$TMP/bad/web"
cp "$BK/web/index.json" "$BK"/web/backup-20260109-030000.clbsd "$TMP/bad/web/"
truncate -s 100000 "$TMP/bad/web/backup-20260109-030000.clbsd"
rc=0
out=$(clbsd restore web --from "$TMP/bad" --replace 2>&1) || rc=$?
[ "$rc" -ne 0 ] && wait_until 10 web_runs && [ "$(clbsd exec web cat /data)" = web-day-9 ] &&
	ok failed_restore_puts_old_back || fail failed_restore_puts_old_back "rc=$rc $out; $(clbsd ps -a)"
rc=0
out=$(clbsd restore web --from "$BK" --at 2025-12-31 --as web-x 2>&1) || rc=$?
[ "$rc" -ne 0 ] && echo "$out" | grep -q "no backup of web" && ok restore_before_first_refused ||
	fail restore_before_first_refused "$out"

# Over ssh: a full then an incremental backup, and a restore of the first.
if [ -n "$FAR" ]; then
	clbsd exec far sh -c 'echo far-1 > /data'
	clbsd backup far --at 2026-01-01T03:00:00Z >"$TMP/far.1" 2>&1 &&
		clbsd exec far sh -c 'echo far-2 > /data' &&
		clbsd backup far --at 2026-01-02T03:00:00Z >"$TMP/far.2" 2>&1 &&
		grep -q full "$TMP/far.1" && grep -q incremental "$TMP/far.2" &&
		[ "$(c2 --json snapshots far | labels)" = "backup-20260101-030000 backup-20260102-030000" ] &&
		ok backup_over_ssh || fail backup_over_ssh "$(cat "$TMP/far.1" "$TMP/far.2"; c2 snapshots far)"
	clbsd restore far --from "ssh://root@127.0.0.1:$port$SOCK2" --at 2026-01-01 --as far-old >/dev/null 2>"$TMP/far.err" &&
		clbsd start far-old >/dev/null && [ "$(clbsd exec far-old cat /data)" = far-1 ] &&
		ok restore_over_ssh || fail restore_over_ssh "$(cat "$TMP/far.err")"
else
	skip backup_over_ssh "no /usr/sbin/sshd (scripts/deps.sh check installs openssh-server)"
fi

# A destination that is not there: the backup fails, is retried with
# backoff (1 s, 2 s, 4 s under the test clock), and the container runs on
# untouched (same process, same file).
pid0=$(clbsd --json inspect flaky | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["pid"])')
clbsd exec flaky sh -c 'echo precious > /data'
rc=0
out=$(clbsd backup flaky 2>&1) || rc=$?
[ "$rc" -ne 0 ] && echo "$out" | grep -q "nowhere.sock" && ok failing_destination_fails || fail failing_destination_fails "$out"
fails() { clbsd --json backups | python3 -c 'import json,sys
print([b for b in json.load(sys.stdin) if b["name"]=="flaky"][0]["failures"])'; }
# Two more tries by themselves, 1 s then 2 s later.
two_retries() { [ "$(fails)" -ge 3 ]; }
wait_until 12 two_retries &&
	ok failure_retried_with_backoff || fail failure_retried_with_backoff "failures $(fails)"
pid1=$(clbsd --json inspect flaky | python3 -c 'import json,sys; c=json.load(sys.stdin)[0]; print(c["pid"] if c["state"]=="running" else "stopped")')
[ "$pid1" = "$pid0" ] && [ "$(clbsd exec flaky cat /data)" = precious ] &&
	[ "$(clbsd --json snapshots flaky | labels)" = "" ] && ok failure_leaves_container_untouched ||
	fail failure_leaves_container_untouched "pid $pid0 -> $pid1; $(clbsd snapshots flaky)"
events=$(clbsd events --since 0 --json)
echo "$events" | grep -q '"backup.failed".*"flaky"\|"flaky".*"backup.failed"' &&
	echo "$events" | grep '"backup.done"' | grep -q '"size"' && ok backup_events || fail backup_events "$(echo "$events" | grep backup | tail -3)"

# Status: the state of each, and nothing for the container that opted out.
st=$(clbsd status)
echo "$st" | grep -q "^web .*backup-20260109-030000" && echo "$st" | grep -q "^flaky .*FAILED" &&
	! echo "$st" | grep -q "^quiet " && ok status_shows_backups || fail status_shows_backups "$st"
clbsd --json inspect web | python3 -c 'import json,sys
b = json.load(sys.stdin)[0]["backup"]
assert b["last_label"] == "backup-20260109-030000" and b["size"] > 0 and b["error"] is None, b
assert b["next_run"] and b["to"].startswith("file://"), b' && ok inspect_shows_backup || fail inspect_shows_backup "$(clbsd --json inspect web)"
rc=0
out=$(clbsd backup quiet 2>&1) || rc=$?
[ "$rc" -ne 0 ] && echo "$out" | grep -q "no :backup" && ok opted_out_has_none || fail opted_out_has_none "$out"
t_done
