#!/bin/bash
# Undo: a recreate sets the old container aside (:snapshot-before-change t,
# the default) and `clbsd undo` brings it back whole, running, and keeps the
# reconciler from redoing the change until the configuration changes again.
. "$(dirname "$0")/../lib.sh"
t_setup
t_forge

conf() { # V and the command's tail
	cat >"$CONF" <<CONF
(container web :image "forge" :env (("V" . "$1"))
  :command ("sh" "-c" "echo \$V > /started; $2"))
(container plain :image "forge" :env (("V" . "$1")) :command ("sleep" "3600")
  :snapshot-before-change nil)
CONF
}
env_of() { clbsd exec "$1" sh -c 'echo $V' 2>&1; }

conf 1 "exec sleep 3600"
clbsd apply >/dev/null
wait_until 10 sh -c "$BUILD/clbsd --socket $SOCK ps | grep -q '^web .*running'"
clbsd exec web sh -c 'echo precious > /data.txt'
old_id=$(field web id)

# A bad change: the new command exits at once.
conf 2 "exit 3"
clbsd apply >/dev/null 2>&1
wait_until 10 sh -c "[ \"\$($BUILD/clbsd --socket $SOCK --json inspect web | python3 -c 'import json,sys; print(json.load(sys.stdin)[0][\"id\"])')\" != $old_id ]"
[ -d "$ROOT/undo/web" ] && [ "$(field web id)" != "$old_id" ] && ok recreate_sets_old_aside ||
	fail recreate_sets_old_aside "$(ls "$ROOT/undo" 2>&1)"
[ ! -d "$ROOT/undo/plain" ] && ok opt_out_destroys_old || fail opt_out_destroys_old "plain was set aside"
clbsd --json inspect web | python3 -c 'import json,sys; u=json.load(sys.stdin)[0]["undo"]; assert u and u["running"]' &&
	ok inspect_shows_undo || fail inspect_shows_undo "$(clbsd --json inspect web)"

clbsd undo web >/dev/null 2>"$TMP/err" || fail undo_runs "$(cat "$TMP/err")"
[ "$(field web id)" = "$old_id" ] && [ "$(field web state)" = running ] && ok undo_restores_running ||
	fail undo_restores_running "id $(field web id) state $(field web state)"
[ "$(clbsd exec web cat /data.txt 2>&1)" = precious ] && [ "$(env_of web)" = 1 ] && ok undo_restores_files_and_spec ||
	fail undo_restores_files_and_spec "$(clbsd exec web cat /data.txt 2>&1) V=$(env_of web)"
[ ! -e "$ROOT/undo/web" ] && ok undo_consumes_aside || fail undo_consumes_aside "$(ls "$ROOT/undo")"
# The reconciler does not redo the undone change...
out=$(clbsd plan 2>&1)
echo "$out" | grep -q "recreate web" && fail undo_holds_against_reconciler "$out" || ok undo_holds_against_reconciler
clbsd apply >/dev/null 2>&1
[ "$(field web id)" = "$old_id" ] && ok apply_keeps_undone || fail apply_keeps_undone "web was recreated"
# ...until the configuration asks for something new.
conf 3 "exec sleep 3600"
clbsd apply >/dev/null 2>&1
wait_until 10 sh -c "[ \"\$($BUILD/clbsd --socket $SOCK exec web sh -c 'echo \$V' 2>/dev/null)\" = 3 ]" &&
	ok new_change_applies || fail new_change_applies "V=$(env_of web)"

out=$(clbsd undo plain 2>&1)
rc=$?
[ $rc -ne 0 ] && echo "$out" | grep -q "nothing to undo" && ok undo_without_aside_refused ||
	fail undo_without_aside_refused "rc=$rc $out"
echo '' >"$CONF"
clbsd apply >/dev/null 2>&1
t_done
