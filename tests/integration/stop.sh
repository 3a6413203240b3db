#!/bin/bash
# stop sends SIGTERM and escalates to SIGKILL after the timeout; kill sends
# a chosen signal; restart stops and starts again.
. "$(dirname "$0")/../lib.sh"
t_setup
t_forge

# sleep as PID 1 has no SIGTERM handler, so the kernel ignores SIGTERM.
clbsd run -d --name stubborn forge sleep 300 >/dev/null
t0=$(date +%s%N)
clbsd stop -t 1 stubborn >/dev/null
t1=$(date +%s%N)
ms=$(((t1 - t0) / 1000000))
[ "$ms" -ge 900 ] && [ "$ms" -lt 5000 ] && ok stop_waits_timeout || fail stop_waits_timeout "${ms} ms"
[ "$(field stubborn state)" = exited ] && [ "$(field stubborn exit_code)" = 137 ] &&
	ok stop_escalates_to_sigkill ||
	fail stop_escalates_to_sigkill "state=$(field stubborn state) code=$(field stubborn exit_code)"

# A process that handles SIGTERM stops at once with its own status.
clbsd run -d --name polite forge sh -c 'trap "exit 0" TERM; while true; do sleep 0.1; done' >/dev/null
sleep 0.3
t0=$(date +%s%N)
clbsd stop -t 10 polite >/dev/null
t1=$(date +%s%N)
ms=$(((t1 - t0) / 1000000))
[ "$ms" -lt 3000 ] && [ "$(field polite exit_code)" = 0 ] && ok stop_graceful ||
	fail stop_graceful "${ms} ms, code $(field polite exit_code)"

clbsd run -d --name hup forge sh -c 'trap "echo got-hup" HUP; while true; do sleep 0.1; done' >/dev/null
sleep 0.3
clbsd kill -s HUP hup >/dev/null
wait_until 3 sh -c "$BUILD/clbsd --socket $SOCK logs hup | grep -q got-hup" && ok kill_signal ||
	fail kill_signal "no HUP seen"
[ "$(field hup state)" = running ] && ok kill_hup_keeps_running || fail kill_hup_keeps_running "stopped"
clbsd kill hup >/dev/null
wait_until 3 sh -c "$BUILD/clbsd --socket $SOCK ps -a | grep '^hup ' | grep -q exited" &&
	[ "$(field hup exit_code)" = 137 ] && ok kill_default_sigkill ||
	fail kill_default_sigkill "code $(field hup exit_code)"

clbsd start hup >/dev/null
pid1=$(field hup pid)
clbsd restart -t 0 hup >/dev/null
pid2=$(field hup pid)
[ "$(field hup state)" = running ] && [ "$pid1" != "$pid2" ] && ok restart ||
	fail restart "pids $pid1 $pid2 state $(field hup state)"
clbsd stop nosuch >/dev/null 2>&1
[ $? -eq 1 ] && ok stop_unknown_fails || fail stop_unknown_fails "wrong status"
t_done
