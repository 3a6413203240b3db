#!/bin/bash
# clbsd host export / import / diff between two daemons on this host (two
# roots, sockets and configurations; dir storage): a small homelab of
# containers with data, a named volume, a network made through the API and
# a conf.d file, and a declared container (into its declaration), moves whole; the data's checksums are equal, `host diff`
# finds nothing, then finds a change. A damaged archive is refused before
# anything is made; a configuration of the target's own is refused without
# --force; a second import of the same archive leaves what is there.
. "$(dirname "$0")/../lib.sh"
t_setup
t_forge
t_second_setup
trap 't_second_stop; clbsd network rm lab >/dev/null 2>&1; t_cleanup' EXIT
t_second_start || { fail target_up "second daemon did not start"; t_done; exit 1; }

# The homelab: a network, containers with data (one with a named volume),
# one stopped, and a conf.d file.
mkdir -p "$(dirname "$CONF")/conf.d"
printf ';; notes of this host\n' >"$(dirname "$CONF")/conf.d/10-notes.conf"
cat >"$(dirname "$CONF")/conf.d/20-app.conf" <<'APP'
(container app :image "forge" :command ("sleep" "300")
  :volumes ((:dataset "appdata" :path "/data")))
APP
clbsd apply >/dev/null
wait_until 15 sh -c '[ "$("$0" --socket "$1" --json inspect app | python3 -c "import json,sys; print(json.load(sys.stdin)[0][\"state\"])")" = running ]' "$BUILD/clbsd" "${SOCK:?}"
clbsd exec app sh -c 'echo declared > /data/f'
clbsd network create --subnet 10.231.0.0/24 lab >/dev/null
clbsd run -d --name web --network lab -v data:/srv forge sleep 300 >/dev/null
clbsd exec web sh -c 'head -c 300000 /dev/urandom > /srv/blob; echo hello > /index.html'
clbsd run -d --name db forge sleep 300 >/dev/null
clbsd exec db sh -c 'echo rows > /db.txt'
clbsd create --name idle forge true >/dev/null
sum_web=$(clbsd exec web md5sum /srv/blob)

clbsd host export -o "$TMP/lab.host" >"$TMP/out" 2>"$TMP/err" && [ -s "$TMP/lab.host" ] &&
	ok export_writes_archive || fail export_writes_archive "$(cat "$TMP/out" "$TMP/err")"
grep -q "its own moment" "$TMP/err" && ok export_says_per_container_on_dir ||
	fail export_says_per_container_on_dir "$(cat "$TMP/err")"
tar tf "$TMP/lab.host" | grep -q '^manifest.json$' && ok archive_is_a_tar || fail archive_is_a_tar "$(tar tf "$TMP/lab.host" 2>&1)"
[ -z "$(find "$TMP" -maxdepth 1 -name '.clbsd-host-*')" ] && ok export_leaves_no_staging ||
	fail export_leaves_no_staging "$(ls -a "$TMP")"
# The dir driver's snapshots are copies: --snapshots is refused, saying so.
out=$(clbsd host export --snapshots all -o "$TMP/snaps.host" 2>&1)
rc=$?
out2=$(clbsd export --snapshots all -o "$TMP/snaps.clbsd" web 2>&1)
rc2=$?
[ $rc -ne 0 ] && [ $rc2 -ne 0 ] && echo "$out" | grep -q "copies" && echo "$out2" | grep -q "copies" &&
	[ ! -e "$TMP/snaps.host" ] && [ ! -e "$TMP/snaps.clbsd" ] && ok snapshots_refused_on_dir ||
	fail snapshots_refused_on_dir "$rc $out / $rc2 $out2"

# A damaged archive: refused before anything is made on the target.
cp "$TMP/lab.host" "$TMP/bad.host"
size=$(stat -c %s "$TMP/bad.host")
printf 'X' | dd of="$TMP/bad.host" bs=1 seek=$((size / 2)) conv=notrunc status=none
out=$(c2 host import "$TMP/bad.host" 2>&1)
rc=$?
[ $rc -ne 0 ] && echo "$out" | grep -q "damaged" && [ "$(c2 ps -a -q | wc -l)" = 0 ] &&
	[ ! -e "$TMP/etc2/conf.d/20-app.conf" ] && ok damaged_archive_refused_first ||
	fail damaged_archive_refused_first "rc=$rc $out $(c2 ps -a)"

# A target with a configuration of its own: refused, saying what differs.
echo '(image other :from "x")' >"$TMP/etc2/conf.d/10-notes.conf"
out=$(c2 host import "$TMP/lab.host" 2>&1)
rc=$?
[ $rc -ne 0 ] && echo "$out" | grep -q "10-notes.conf differs" && [ "$(c2 ps -a -q | wc -l)" = 0 ] &&
	ok own_config_refused || fail own_config_refused "rc=$rc $out"
rm -f "$TMP/etc2/conf.d/10-notes.conf"

out=$(c2 host import "$TMP/lab.host" 2>&1)
rc=$?
[ $rc -eq 0 ] && ok import_succeeds || fail import_succeeds "rc=$rc $(echo "$out" | tr '\n' '|')"
[ "$(c2 exec web md5sum /srv/blob 2>&1)" = "$sum_web" ] && [ "$(c2 exec web cat /index.html)" = hello ] &&
	[ "$(c2 exec db cat /db.txt)" = rows ] && ok data_moved || fail data_moved "$(c2 ps -a)"
[ "$(c2 --json inspect idle | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["state"])')" != running ] &&
	ok stopped_stays_stopped || fail stopped_stays_stopped "$(c2 ps -a)"
[ "$(c2 exec app cat /data/f 2>&1)" = declared ] &&
	[ "$(c2 --json inspect app | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["managed"])')" = True ] &&
	ok declared_container_into_its_declaration || fail declared_container_into_its_declaration "$(c2 ps -a; c2 inspect app | head -30)"
c2 network ls | grep -q "10.231.0.0/24" && ok network_moved || fail network_moved "$(c2 network ls)"
[ -f "$TMP/etc2/conf.d/10-notes.conf" ] && ok config_installed || fail config_installed "$(ls "$TMP/etc2/conf.d")"
plan=$(c2 --json plan | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["actions"]))')
[ "$plan" = 0 ] && ok plan_empty || fail plan_empty "$(c2 plan)"
out=$(clbsd host diff "unix:$SOCK2" 2>&1)
rc=$?
[ $rc -eq 0 ] && ok diff_empty_after_import || fail diff_empty_after_import "rc=$rc $out"
out=$(c2 host diff "$TMP/lab.host" 2>&1) && ok diff_with_file_empty || fail diff_with_file_empty "$out"

# A change shows.
c2 exec db sh -c 'echo more >> /db.txt'
out=$(clbsd host diff "unix:$SOCK2" 2>&1)
rc=$?
[ $rc -eq 1 ] && echo "$out" | grep -q "container db: its files differ" && ok diff_shows_change ||
	fail diff_shows_change "rc=$rc $out"

# Again: what is there is left as it is (an interrupted import is rerun so).
out=$(c2 host import "$TMP/lab.host" 2>&1)
rc=$?
[ $rc -eq 0 ] && echo "$out" | grep -q "container web is here already" &&
	[ "$(c2 exec db cat /db.txt | tail -1)" = more ] && ok rerun_keeps_what_is_there ||
	fail rerun_keeps_what_is_there "rc=$rc $out"
t_done
