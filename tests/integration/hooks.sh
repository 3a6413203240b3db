#!/bin/bash
# :on hooks: start and exit hooks with their environment, :exec inside the
# container, :every timers, :file-change in a volume, failures reported, and
# a hook that hangs delays no other container.
. "$(dirname "$0")/../lib.sh"
t_setup
t_forge
LOG="$TMP/hooks.log"
touch "$LOG"
cat >"$CONF" <<C
(container slow :image "forge" :command ("sleep" "300")
  :on ((:start "sleep 30")))
(container fast :image "forge" :command ("sh" "-c" "sleep 1; exit 3")
  :on ((:start "echo start \$CLBSD_CONTAINER \$CLBSD_EVENT pid=\$CLBSD_PID >> $LOG")
       (:exit ("sh" "-c" "echo exit \$CLBSD_CONTAINER code=\$CLBSD_EXIT_CODE >> $LOG"))))
(container inside :image "forge" :command ("sleep" "300")
  :volumes ((:dataset "data" :path "/data"))
  :on ((:start (:exec "sh" "-c" "sleep 0.3; echo made-inside > /tmp/mark"))
       (:every "1s" "echo tick >> $LOG")
       (:file-change "/data" "echo changed \$CLBSD_EVENT >> $LOG")
       (:exit "exit 7")))
C
t0=$(date +%s%N)
clbsd apply >/dev/null
ms=$((($(date +%s%N) - t0) / 1000000))
[ "$(field fast state)" = running ] && [ "$ms" -lt 10000 ] && ok hanging_hook_delays_nothing ||
	fail hanging_hook_delays_nothing "apply took ${ms} ms, fast is $(field fast state)"
wait_until 5 grep -q '^start fast container.started pid=[1-9]' "$LOG" && ok start_hook_env ||
	fail start_hook_env "$(cat "$LOG")"
wait_until 5 grep -q '^exit fast code=3$' "$LOG" && ok exit_hook_exit_code || fail exit_hook_exit_code "$(cat "$LOG")"
wait_until 5 sh -c "[ \"\$($BUILD/clbsd --socket $SOCK exec inside cat /tmp/mark 2>/dev/null)\" = made-inside ]" &&
	ok exec_hook_runs_inside || fail exec_hook_runs_inside "no mark"
wait_until 5 sh -c "[ \$(grep -c '^tick$' '$LOG') -ge 2 ]" && ok every_fires || fail every_fires "$(cat "$LOG")"
clbsd exec inside sh -c 'echo x > /data/f'
wait_until 5 grep -q '^changed file.changed$' "$LOG" && ok file_change_in_volume ||
	fail file_change_in_volume "$(cat "$LOG")"
clbsd events --type hook.finished --json >"$TMP/ev"
grep -q '"command":"sleep 30"' "$TMP/ev" && fail hook_event_recorded "sleep 30 finished too early" || true
grep '"container":"fast"' "$TMP/ev" | grep -q '"exit_code":0' && ok hook_event_recorded ||
	fail hook_event_recorded "$(cat "$TMP/ev")"
# An (:exec ...) hook's duration is its run's, as a host command's is.
grep '"container":"inside"' "$TMP/ev" | grep '"command":"(exec) sh' |
	python3 -c 'import json,sys; sys.exit(0 if json.loads(sys.stdin.readline())["attrs"]["duration_ms"] >= 250 else 1)' 2>/dev/null &&
	ok exec_hook_duration || fail exec_hook_duration "$(grep '"container":"inside"' "$TMP/ev")"
clbsd stop -t 0 inside >/dev/null
wait_until 5 sh -c "$BUILD/clbsd --socket $SOCK events --type hook.failed --container inside --json | grep -q '\"exit_code\":7'" &&
	ok failed_hook_reported || fail failed_hook_reported "$(clbsd events --type hook --container inside)"
t_done
