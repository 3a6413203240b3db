#!/bin/bash
# Interactive exec in a docker container: `clbsd exec -it` under script(1)
# (a real terminal) runs a shell in the container, the typed command's
# output comes back and the shell's exit status is clbsd's; `exec -i`
# without a terminal passes stdin through to its end and back.
. "$(dirname "$0")/../lib.sh"

IMG="clbsd-bb-$$:1"
t_before_start() { t_docker_before_start "$IMG"; }
it_cleanup() {
	if [ -n "$DAEMON_PID" ] && kill -0 "$DAEMON_PID" 2>/dev/null && [ -n "$DOCKERD_PID" ]; then
		local n
		for n in $(clbsd ps -a --format '{{.Name}}' 2>/dev/null); do
			clbsd rm -f "$n" >/dev/null 2>&1
		done
	fi
	if [ -n "$DOCKERD_PID" ]; then
		dk ps -aq | while read -r id; do dk rm -f "$id" >/dev/null 2>&1; done
		t_dockerd_stop
		grep -q " $TMP/d" /proc/mounts && echo "FAIL $T_NAME.cleanup: dockerd left mounts"
	fi
}
t_setup
trap 'rc=$?; it_cleanup; (exit $rc); t_cleanup' EXIT
if ! command -v script >/dev/null; then
	skip all "script(1) is not installed (bsdutils)"
	t_done
	exit 0
fi

clbsd run -d --kind docker --network none --name web "$IMG" sleep 1000 >/dev/null ||
	fail setup "run failed"

# A terminal: script(1) gives clbsd one; the shell reads what is "typed".
# shellcheck disable=SC2016 # expanded by the container's shell
printf 'echo marker-$((40+2)) $(tty)\nexit 3\n' |
	timeout 30 script -qec "$BUILD/clbsd --socket $SOCK exec -it web sh" /dev/null >"$TMP/it.out" 2>&1
rc=$?
tr -d '\r' <"$TMP/it.out" >"$TMP/it.txt"
grep -q "^marker-42 /dev/pts/" "$TMP/it.txt" && ok exec_it_output_with_tty ||
	fail exec_it_output_with_tty "$(cat "$TMP/it.txt")"
[ $rc -eq 3 ] && ok exec_it_exit_code || fail exec_it_exit_code "rc=$rc $(cat "$TMP/it.txt")"

# Without a terminal: stdin to its end, stdout and stderr apart, the status.
out=$(printf 'one\ntwo\n' | timeout 30 "$BUILD/clbsd" --socket "$SOCK" exec -i web sh -c 'cat; echo to-err >&2; exit 4' 2>"$TMP/err")
rc=$?
[ "$out" = "$(printf 'one\ntwo')" ] && [ "$(cat "$TMP/err")" = to-err ] && [ $rc -eq 4 ] &&
	ok exec_i_stdin_streams_status || fail exec_i_stdin_streams_status "rc=$rc out=$out err=$(cat "$TMP/err")"

# ---- console: the container's own stream (attach), detach key, exit status ----
clbsd run -d -t -i --kind docker --network none --name con "$IMG" sh >/dev/null ||
	fail setup "run -t -i failed"
# Ctrl-Q detaches and leaves it running (typed once the terminal is raw:
# before, the line discipline takes Ctrl-Q as XON).
(sleep 1; printf '\021'; sleep 1) | timeout 30 script -qec "$BUILD/clbsd --socket $SOCK console con" /dev/null >"$TMP/c1.out" 2>&1
rc=$?
grep -q "detached from con" "$TMP/c1.out" && [ $rc -eq 0 ] && [ "$(field con state)" = running ] &&
	ok console_detach_keeps_running || fail console_detach_keeps_running "rc=$rc $(tr -d '\r' <"$TMP/c1.out")"
# shellcheck disable=SC2016 # expanded by the container's shell
printf 'echo cons-$((2+3))\nexit 7\n' |
	timeout 30 script -qec "$BUILD/clbsd --socket $SOCK console con" /dev/null >"$TMP/c2.out" 2>&1
rc=$?
tr -d '\r' <"$TMP/c2.out" >"$TMP/c2.txt"
grep -q "^cons-5" "$TMP/c2.txt" && [ $rc -eq 7 ] && ok console_runs_and_exits_with_status ||
	fail console_runs_and_exits_with_status "rc=$rc $(cat "$TMP/c2.txt")"
msg=$(clbsd console con 2>&1)
rc=$?
[ $rc -ne 0 ] && echo "$msg" | grep -q "not running" && ok console_stopped_refused ||
	fail console_stopped_refused "$msg"

# The session socket goes with the session.
ls "$RUN"/docker-*-*.sock >/dev/null 2>&1 && fail session_socket_removed "$(ls "$RUN")" ||
	ok session_socket_removed

t_done
