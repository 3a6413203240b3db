#!/bin/bash
# :stop-signal / "stop_signal": a stop sends the container's chosen signal
# first (SIGKILL still follows after the timeout). The containers trap that
# signal and write where it came from into a volume, so the file proves the
# signal was sent; a container that ignored it would take the whole timeout
# and die by SIGKILL instead.
. "$(dirname "$0")/../lib.sh"
t_before_start() { mkdir -p "$TMP/out"; }
t_setup
t_forge
command -v curl >/dev/null || { skip all "curl is not installed"; t_done; exit 0; }

# sh as the container's init: a trapped signal runs the handler (an
# untrapped one would be ignored by pid 1), which writes and exits 0.
trapper() {
	printf '"sh","-c","trap \\"echo %s >/out/%s; exit 0\\" %s; echo ready >/out/%s.ready; while :; do sleep 0.1; done"' \
		"$2" "$1" "$2" "$1"
}

api() {
	curl -s -o "$TMP/body" -w '%{http_code}' --unix-socket "$SOCK" -X "$1" \
		-H 'Content-Type: application/json' ${3:+-d "$3"} "http://localhost$2"
}

# Through the API (what `clbsd run --stop-signal` sends).
code=$(api POST '/v1/containers?start=1' "{\"name\":\"usr1\",\"image\":\"forge\",
  \"stop_signal\":\"SIGUSR1\",\"volumes\":[\"$TMP/out:/out\"],\"command\":[$(trapper usr1 USR1)]}")
[ "$code" = 201 ] || fail api_create "$code $(cat "$TMP/body")"
[ "$(clbsd --json inspect usr1 | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["config"]["stop_signal"])')" = SIGUSR1 ] &&
	ok inspect_shows_stop_signal || fail inspect_shows_stop_signal "$(clbsd --json inspect usr1)"
wait_until 10 test -f "$TMP/out/usr1.ready"
start=$(date +%s)
clbsd stop -t 20 usr1 >/dev/null
took=$(($(date +%s) - start))
[ "$(cat "$TMP/out/usr1" 2>/dev/null)" = USR1 ] && [ "$took" -lt 15 ] &&
	[ "$(field usr1 exit_code)" = 0 ] && ok stop_sends_stop_signal ||
	fail stop_sends_stop_signal "file=$(cat "$TMP/out/usr1" 2>&1) took=${took}s exit=$(field usr1 exit_code)"

# `clbsd run --stop-signal` sends the same.
clbsd run -d --name cli2 --stop-signal USR2 -v "$TMP/out:/out" forge \
	sh -c 'trap "echo USR2 >/out/cli2; exit 0" USR2; echo ready >/out/cli2.ready; while :; do sleep 0.1; done' >/dev/null
wait_until 10 test -f "$TMP/out/cli2.ready"
clbsd stop -t 20 cli2 >/dev/null
[ "$(cat "$TMP/out/cli2" 2>/dev/null)" = USR2 ] && ok cli_stop_signal ||
	fail cli_stop_signal "file=$(cat "$TMP/out/cli2" 2>&1) $(clbsd --json inspect cli2 | head -c 300)"

# The default stays SIGTERM.
code=$(api POST '/v1/containers?start=1' "{\"name\":\"term\",\"image\":\"forge\",
  \"volumes\":[\"$TMP/out:/out\"],\"command\":[$(trapper term TERM)]}")
[ "$code" = 201 ] || fail api_create_default "$code $(cat "$TMP/body")"
wait_until 10 test -f "$TMP/out/term.ready"
clbsd stop -t 20 term >/dev/null
[ "$(cat "$TMP/out/term" 2>/dev/null)" = TERM ] && ok default_is_sigterm ||
	fail default_is_sigterm "file=$(cat "$TMP/out/term" 2>&1)"

# Declared: the reconciler's stop (a :state change) sends it too.
cat >"$CONF" <<C
(container hup :image "forge" :stop-signal "HUP"
  :volumes ((:bind "$TMP/out" :path "/out"))
  :command ($(trapper hup HUP | tr ',' ' ')))
C
clbsd apply >/dev/null
wait_until 10 test -f "$TMP/out/hup.ready" && ok declared_runs || fail declared_runs "$(clbsd ps -a)"
clbsd plan | grep -q 'nothing to do' && ok declared_converged || fail declared_converged "$(clbsd plan)"
sed -i 's/:stop-signal "HUP"/:stop-signal "HUP" :state stopped/' "$CONF"
clbsd apply >/dev/null
wait_until 15 test -f "$TMP/out/hup" && [ "$(cat "$TMP/out/hup")" = HUP ] &&
	ok reconciler_stop_sends_stop_signal ||
	fail reconciler_stop_sends_stop_signal "file=$(cat "$TMP/out/hup" 2>&1) state=$(field hup state)"
clbsd rm -f usr1 term cli2 >/dev/null 2>&1
t_done
