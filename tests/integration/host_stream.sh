#!/bin/bash
# clbsd host export -o - | clbsd host import - between two daemons on this
# host (dir storage): the homelab moves whole through a pipe, as through
# ssh, with no archive kept on either side; an archive file read from
# standard input imports the same. A stream cut short, a damaged member
# or manifest, a member the plan does not put there and an archive with
# no plan are refused, and the target keeps no configuration of theirs;
# run again whole, the import completes. An export whose reader goes
# away fails and starts again what it stopped.
. "$(dirname "$0")/../lib.sh"
t_setup
t_forge
t_second_setup
# The target back to fresh: no containers, networks or configuration.
fresh2() {
	t_second_stop
	rm -rf "$ROOT2" "$RUN2" "$TMP/etc2"
	t_second_setup
	t_second_start
}
trap 't_second_stop; clbsd network rm lab >/dev/null 2>&1; t_cleanup' EXIT
t_second_start || { fail target_up "second daemon did not start"; t_done; exit 1; }
export TMPDIR="$TMP/spool"
mkdir -p "$TMPDIR"

mkdir -p "$(dirname "$CONF")/conf.d"
printf ';; notes of this host\n' >"$(dirname "$CONF")/conf.d/10-notes.conf"
cat >"$(dirname "$CONF")/conf.d/20-app.conf" <<'APP'
(container app :image "forge" :command ("sleep" "300")
  :volumes ((:dataset "appdata" :path "/data")))
(container front :image "forge" :command ("sleep" "300") :depends-on (app))
APP
clbsd apply >/dev/null
wait_until 15 sh -c '[ "$("$0" --socket "$1" --json inspect front | python3 -c "import json,sys; print(json.load(sys.stdin)[0][\"state\"])")" = running ]' "$BUILD/clbsd" "${SOCK:?}"
clbsd exec app sh -c 'echo declared > /data/f'
clbsd network create --subnet 10.232.0.0/24 lab >/dev/null
clbsd run -d --name web --network lab -v data:/srv forge sleep 300 >/dev/null
clbsd exec web sh -c 'head -c 3000000 /dev/urandom > /srv/blob; echo hello > /index.html'
clbsd create --name idle forge true >/dev/null
sum_web=$(clbsd exec web md5sum /srv/blob)
state2() { c2 --json inspect "$1" 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["state"])' 2>/dev/null; }

# Through a pipe.
clbsd host export -o - 2>"$TMP/xerr" | c2 host import - >"$TMP/out" 2>"$TMP/err"
rcs=("${PIPESTATUS[@]}")
[ "${rcs[0]}" = 0 ] && [ "${rcs[1]}" = 0 ] && ok stream_moves_the_host ||
	fail stream_moves_the_host "rc=${rcs[*]} $(cat "$TMP/xerr" "$TMP/err")"
[ "$(c2 exec web md5sum /srv/blob 2>&1)" = "$sum_web" ] && [ "$(c2 exec web cat /index.html)" = hello ] &&
	[ "$(c2 exec app cat /data/f 2>&1)" = declared ] && ok stream_data_equal || fail stream_data_equal "$(c2 ps -a)"
[ "$(state2 front)" = running ] && [ "$(state2 idle)" != running ] &&
	[ "$(c2 --json inspect app | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["managed"])')" = True ] &&
	ok stream_states_and_declarations || fail stream_states_and_declarations "$(c2 ps -a)"
# app before front (front depends on it), the undeclared ones before both.
order=$(grep -o 'container [a-z]* imported' "$TMP/err" | awk '{print $2}' | tr '\n' ' ')
case "$order" in
*app*front*) ok stream_dependencies_first ;;
*) fail stream_dependencies_first "$order" ;;
esac
plan=$(c2 --json plan | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["actions"]))')
out=$(clbsd host diff "unix:$SOCK2" 2>&1)
rc=$?
[ "$plan" = 0 ] && [ $rc -eq 0 ] && [ -f "$TMP/etc2/conf.d/10-notes.conf" ] && ok stream_plan_and_diff_empty ||
	fail stream_plan_and_diff_empty "plan=$plan rc=$rc $out"
[ -z "$(ls -A "$TMPDIR")" ] && ok stream_leaves_no_spool || fail stream_leaves_no_spool "$(ls -A "$TMPDIR")"

# An archive file has its plan first too: read from standard input, it imports the same.
clbsd host export -o "$TMP/lab.host" >/dev/null 2>&1
[ "$(tar tf "$TMP/lab.host" | head -1)" = plan.json ] && [ "$(tar tf "$TMP/lab.host" | tail -1)" = manifest.json ] &&
	ok archive_plan_first_manifest_last || fail archive_plan_first_manifest_last "$(tar tf "$TMP/lab.host")"
fresh2
c2 host import - <"$TMP/lab.host" >/dev/null 2>"$TMP/err" && [ "$(c2 exec web md5sum /srv/blob 2>&1)" = "$sum_web" ] &&
	ok file_through_stdin || fail file_through_stdin "$(cat "$TMP/err")"

# Cut short: refused, the containers made so far stay, no configuration of it.
fresh2
size=$(stat -c %s "$TMP/lab.host")
head -c $((size - 4096)) "$TMP/lab.host" | c2 host import - >/dev/null 2>"$TMP/err"
rc=$?
[ $rc -ne 0 ] && grep -q "cut short" "$TMP/err" && [ ! -e "$TMP/etc2/conf.d/20-app.conf" ] &&
	[ ! -e "$TMP/etc2/conf.d/10-notes.conf" ] && ok cut_stream_installs_no_config ||
	fail cut_stream_installs_no_config "rc=$rc $(cat "$TMP/err"; ls "$TMP/etc2/conf.d")"
c2 host import - <"$TMP/lab.host" >/dev/null 2>"$TMP/err" && [ "$(state2 front)" = running ] &&
	[ "$(c2 --json plan | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["actions"]))')" = 0 ] &&
	ok cut_stream_then_whole_completes || fail cut_stream_then_whole_completes "$(cat "$TMP/err")"

# A damaged configuration member: refused before anything is made.
fresh2
python3 - "$TMP/lab.host" "$TMP/badconf.host" <<'PY'
import sys
b = bytearray(open(sys.argv[1], 'rb').read())
i = b.index(b';; notes of this host')
b[i] = ord('#')
open(sys.argv[2], 'wb').write(b)
PY
c2 host import - <"$TMP/badconf.host" >/dev/null 2>"$TMP/err"
rc=$?
[ $rc -ne 0 ] && grep -q "damaged" "$TMP/err" && [ "$(c2 ps -a -q | wc -l)" = 0 ] &&
	ok damaged_config_member_refused_first || fail damaged_config_member_refused_first "rc=$rc $(cat "$TMP/err")"

# A damaged container member (the last byte of its data): the manifest at the end says so.
python3 - "$TMP/lab.host" "$TMP/badctr.host" <<'PY'
import sys, tarfile
src = open(sys.argv[1], 'rb').read()
b = bytearray(src)
with tarfile.open(sys.argv[1]) as t:
    m = [x for x in t.getmembers() if x.name == 'containers/idle.clbsd'][0]
b[m.offset_data + m.size - 1] ^= 1
open(sys.argv[2], 'wb').write(b)
PY
c2 host import - <"$TMP/badctr.host" >/dev/null 2>"$TMP/err"
rc=$?
[ $rc -ne 0 ] && grep -q "damaged" "$TMP/err" && [ ! -e "$TMP/etc2/conf.d/20-app.conf" ] &&
	ok damaged_container_member_refused || fail damaged_container_member_refused "rc=$rc $(cat "$TMP/err")"

# A member the plan does not put there, and an archive with no plan.
fresh2
python3 - "$TMP/lab.host" "$TMP/swap.host" "$TMP/noplan.host" <<'PY'
import sys, tarfile, io
with tarfile.open(sys.argv[1]) as t:
    ms = [(m, t.extractfile(m).read()) for m in t.getmembers()]
def write(path, ms):
    with tarfile.open(path, 'w', format=tarfile.USTAR_FORMAT) as o:
        for m, d in ms:
            o.addfile(m, io.BytesIO(d))
i = [k for k, (m, d) in enumerate(ms) if m.name.startswith('containers/')]
sw = list(ms)
sw[i[0]], sw[i[1]] = sw[i[1]], sw[i[0]]
write(sys.argv[2], sw)
write(sys.argv[3], [x for x in ms if x[0].name != 'plan.json'])
PY
c2 host import - <"$TMP/swap.host" >/dev/null 2>"$TMP/err"
rc=$?
[ $rc -ne 0 ] && grep -q "where its plan puts" "$TMP/err" && [ ! -e "$TMP/etc2/conf.d/20-app.conf" ] &&
	ok out_of_order_member_refused || fail out_of_order_member_refused "rc=$rc $(cat "$TMP/err")"
fresh2
c2 host import - <"$TMP/noplan.host" >/dev/null 2>"$TMP/err"
rc=$?
[ $rc -ne 0 ] && grep -q "older than streams" "$TMP/err" && [ "$(c2 ps -a -q | wc -l)" = 0 ] &&
	ok archive_without_plan_refused || fail archive_without_plan_refused "rc=$rc $(cat "$TMP/err")"

# The reader goes away: the export fails, and what --stop stopped runs again.
clbsd host export --stop -o - 2>"$TMP/xerr" | head -c 65536 >/dev/null
rc=${PIPESTATUS[0]}
[ "$rc" -ne 0 ] && [ "$(clbsd --json inspect web | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["state"])')" = running ] &&
	ok reader_gone_export_undone || fail reader_gone_export_undone "rc=$rc $(cat "$TMP/xerr"; clbsd ps -a)"
[ -z "$(ls -A "$TMPDIR")" ] && ok export_stream_leaves_no_staging || fail export_stream_leaves_no_staging "$(ls -A "$TMPDIR")"

# Usage: standard output or input a terminal is refused (script gives one).
if command -v script >/dev/null; then
	script -qec "$BUILD/clbsd --socket $SOCK host export -o -" /dev/null >"$TMP/tty" 2>&1
	grep -q "is a terminal" "$TMP/tty" && ok export_to_terminal_refused || fail export_to_terminal_refused "$(cat "$TMP/tty")"
fi
t_done
