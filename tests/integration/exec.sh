#!/bin/bash
# exec joins the running container: its namespaces, its root, its env.
. "$(dirname "$0")/../lib.sh"
t_setup
t_forge
clbsd run -d --name box --hostname boxed -e FROM_RUN=yes forge sleep 300 >/dev/null
[ "$(clbsd exec box hostname)" = boxed ] && ok same_uts || fail same_uts "$(clbsd exec box hostname)"
[ "$(clbsd exec box cat /proc/1/cmdline | tr '\0' ' ')" = "sleep 300 " ] && ok same_pid_namespace ||
	fail same_pid_namespace "pid 1 is not the container's command"
clbsd exec box sh -c 'echo made > /tmp/made'
[ "$(clbsd exec box cat /tmp/made)" = made ] && ok same_root || fail same_root "file not seen"
[ "$(clbsd exec box sh -c 'echo $FROM_RUN')" = yes ] && ok inherits_env || fail inherits_env "no env"
[ "$(clbsd exec -e EXTRA=1 box sh -c 'echo $EXTRA')" = 1 ] && ok extra_env || fail extra_env "no extra"
clbsd exec box sh -c 'exit 7'
[ $? -eq 7 ] && ok exit_status || fail exit_status "wrong status"
clbsd exec box /bin/nonexistent >/dev/null 2>&1
rc=$?
[ $rc -eq 127 ] && ok missing_command_127 || fail missing_command_127 "rc=$rc"
[ "$(clbsd exec -u 33 box id -u)" = 33 ] && ok exec_user || fail exec_user "$(clbsd exec -u 33 box id -u)"
[ "$(clbsd exec -w /etc box pwd)" = /etc ] && ok exec_workdir || fail exec_workdir "wrong dir"
echo piped | clbsd exec -i box cat >"$TMP/o" 2>&1
[ "$(cat "$TMP/o")" = piped ] && ok exec_stdin || fail exec_stdin "$(cat "$TMP/o")"
clbsd stop -t 0 box >/dev/null
clbsd exec box true >/dev/null 2>&1 && fail exec_stopped_refused "exec into a stopped container" ||
	ok exec_stopped_refused
t_done
