#!/bin/bash
# Logs: kept after exit, both streams, --tail, and -f that follows and ends
# when the container exits.
. "$(dirname "$0")/../lib.sh"
t_setup
t_forge
clbsd run -d --name talk forge sh -c 'for i in 1 2 3 4 5; do echo line$i; echo err$i >&2; done' >/dev/null
wait_until 5 sh -c "[ \"\$($BUILD/clbsd --socket $SOCK --json inspect talk | python3 -c 'import json,sys; print(json.load(sys.stdin)[0][\"state\"])')\" = exited ]"
clbsd logs talk >"$TMP/o" 2>"$TMP/e"
[ "$(tr '\n' ' ' <"$TMP/o")" = "line1 line2 line3 line4 line5 " ] && ok logs_after_exit ||
	fail logs_after_exit "$(cat "$TMP/o")"
[ "$(wc -l <"$TMP/e")" -eq 5 ] && grep -q err3 "$TMP/e" && ok logs_stderr_separate ||
	fail logs_stderr_separate "$(cat "$TMP/e")"
# --tail counts records of both streams together, like docker logs.
clbsd run --name counted forge seq 1 10 >/dev/null
[ "$(clbsd logs --tail 3 counted | tr '\n' ' ')" = "8 9 10 " ] && ok logs_tail ||
	fail logs_tail "$(clbsd logs --tail 3 counted)"

clbsd run -d --name ticker forge sh -c 'for i in 1 2 3 4 5 6; do echo tick$i; sleep 0.2; done' >/dev/null
timeout 10 "$BUILD/clbsd" --socket "$SOCK" logs -f ticker >"$TMP/f" 2>&1
rc=$?
[ $rc -eq 0 ] && ok follow_ends_on_exit || fail follow_ends_on_exit "rc=$rc"
[ "$(tr '\n' ' ' <"$TMP/f")" = "tick1 tick2 tick3 tick4 tick5 tick6 " ] && ok follow_sees_all ||
	fail follow_sees_all "$(cat "$TMP/f")"

clbsd run -d --name slow forge sh -c 'sleep 0.5; echo late; sleep 30' >/dev/null
timeout 3 "$BUILD/clbsd" --socket "$SOCK" logs -f slow >"$TMP/s" 2>&1
grep -q late "$TMP/s" && ok follow_gets_new_output || fail follow_gets_new_output "$(cat "$TMP/s")"

# Rotation: more than the size limit keeps the newest output readable.
clbsd run -d --name chatty forge sh -c 'i=0; while [ $i -lt 200000 ]; do echo "line $i of a long chatty log to force rotation"; i=$((i+1)); done' >/dev/null
wait_until 60 sh -c "[ \"\$($BUILD/clbsd --socket $SOCK --json inspect chatty | python3 -c 'import json,sys; print(json.load(sys.stdin)[0][\"state\"])')\" = exited ]"
ls "$ROOT/containers/chatty/logs/container.log.1" >/dev/null 2>&1 && ok log_rotates ||
	fail log_rotates "$(ls -la "$ROOT/containers/chatty/logs")"
[ "$(clbsd logs --tail 1 chatty)" = "line 199999 of a long chatty log to force rotation" ] &&
	ok log_tail_after_rotation || fail log_tail_after_rotation "$(clbsd logs --tail 1 chatty)"
t_done
