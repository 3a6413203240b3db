#!/bin/bash
# Containers outlive the daemon: SIGKILL clbsdd, start it again, and it
# re-adopts what runs and reports what exited meanwhile.
. "$(dirname "$0")/../lib.sh"
t_setup
t_forge
clbsd run -d --name survivor forge sh -c 'echo before; sleep 300' >/dev/null
clbsd run -d --name leaver forge sh -c 'sleep 1.5; exit 42' >/dev/null
clbsd run -d -t -i --name tty forge sh >/dev/null
pid=$(field survivor pid)

t_kill_daemon KILL
kill -0 "$pid" 2>/dev/null && ok survives_daemon_sigkill || fail survives_daemon_sigkill "pid $pid gone"
sleep 2 # leaver exits while no daemon runs
t_start_daemon || exit 1

[ "$(field survivor state)" = running ] && [ "$(field survivor pid)" = "$pid" ] && ok readopted ||
	fail readopted "state=$(field survivor state) pid=$(field survivor pid)"
[ "$(field leaver state)" = exited ] && [ "$(field leaver exit_code)" = 42 ] &&
	ok exit_while_down_reported ||
	fail exit_while_down_reported "state=$(field leaver state) code=$(field leaver exit_code)"
clbsd events --since 0 --json >"$TMP/ev" 2>/dev/null
grep '"container.exited"' "$TMP/ev" | grep leaver | grep -q while_daemon_down && ok exit_event_after_restart ||
	fail exit_event_after_restart "$(grep leaver "$TMP/ev")"
clbsd logs survivor | grep -q before && ok logs_after_readopt || fail logs_after_readopt "no logs"
[ "$(clbsd exec survivor echo in)" = in ] && ok exec_after_readopt || fail exec_after_readopt "exec failed"
clbsd stop -t 0 survivor >/dev/null && [ "$(field survivor state)" = exited ] && ok stop_after_readopt ||
	fail stop_after_readopt "state $(field survivor state)"
[ "$(field tty state)" = running ] && ok tty_container_readopted || fail tty_container_readopted "$(field tty state)"

# A clean daemon stop (SIGTERM) also leaves containers running.
pid=$(field tty pid)
t_kill_daemon TERM
kill -0 "$pid" 2>/dev/null && ok survives_daemon_sigterm || fail survives_daemon_sigterm "gone"
t_start_daemon || exit 1
[ "$(field tty state)" = running ] && ok readopted_after_sigterm || fail readopted_after_sigterm "$(field tty state)"
t_done
