#!/bin/bash
# `clbsd run` of a docker container without -d, on a real private dockerd:
# its output comes as the container writes it (before it ends), in order,
# its exit status is the container's, and --rm leaves nothing.
. "$(dirname "$0")/../lib.sh"

IMG="clbsd-bb-$$:1"
t_before_start() { t_docker_before_start "$IMG"; }
t_setup
# shellcheck disable=SC2154 # rc is assigned in the trap itself
trap 'rc=$?; t_docker_cleanup "$IMG"; (exit $rc); t_cleanup' EXIT

# Many lines, in order, on both streams; the exit status; nothing left.
clbsd run --rm --kind docker --network none --name many "$IMG" \
	sh -c 'i=0; while [ $i -lt 300 ]; do echo "line $i"; i=$((i+1)); done; echo finished >&2; exit 5' \
	>"$TMP/out" 2>"$TMP/err"
rc=$?
expect=$(i=0; while [ $i -lt 300 ]; do echo "line $i"; i=$((i + 1)); done)
[ $rc -eq 5 ] && [ "$(cat "$TMP/out")" = "$expect" ] && [ "$(cat "$TMP/err")" = finished ] &&
	! clbsd ps -a | grep -q '^many ' && ! dk inspect many >/dev/null 2>&1 &&
	ok output_in_order_status_and_removal ||
	fail output_in_order_status_and_removal "rc=$rc lines=$(wc -l <"$TMP/out") err=$(cat "$TMP/err")"

# The first line arrives while the container still runs (followed, not read at the end).
mkfifo "$TMP/fifo"
"$BUILD/clbsd" --socket "$SOCK" run --rm --kind docker --network none --name slow "$IMG" \
	sh -c 'echo first; sleep 4; echo second' >"$TMP/fifo" 2>/dev/null &
RUN_PID=$!
exec 3<"$TMP/fifo"
read -r -t 30 first <&3
state=$(field slow state 2>/dev/null)
rest=$(cat <&3)
exec 3<&-
wait "$RUN_PID"
rc=$?
[ "$first" = first ] && [ "$state" = running ] && [ "$rest" = second ] && [ $rc -eq 0 ] &&
	ok output_streams_while_running ||
	fail output_streams_while_running "first=$first state=$state rest=$rest rc=$rc"

# Without --rm the container stays, exited with its status.
clbsd run --kind docker --network none --name kept "$IMG" sh -c 'echo kept; exit 2' >"$TMP/out" 2>&1
rc=$?
[ $rc -eq 2 ] && [ "$(cat "$TMP/out")" = kept ] && [ "$(field kept state)" = exited ] &&
	[ "$(field kept exit_code)" = 2 ] && ok without_rm_kept_exited ||
	fail without_rm_kept_exited "rc=$rc out=$(cat "$TMP/out") state=$(field kept state)"
clbsd rm -f kept >/dev/null
# A follower that goes away while the container is quiet: the daemon lets go of it.
clbsd run -d --kind docker --network none --name quiet "$IMG" sh -c 'echo hi; sleep 1000' >/dev/null
timeout 2 "$BUILD/clbsd" --socket "$SOCK" logs -f quiet >"$TMP/q" 2>&1
rc=$?
sleep 1.5
[ $rc -eq 124 ] && [ "$(cat "$TMP/q")" = hi ] && clbsd rm -f quiet >/dev/null &&
	clbsd info >/dev/null && ! grep -q 'logs:' "$TMP/daemon.log" && ok follower_gone_released ||
	fail follower_gone_released "rc=$rc out=$(cat "$TMP/q") $(grep 'logs:' "$TMP/daemon.log" | tail -2)"
t_done
