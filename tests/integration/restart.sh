#!/bin/bash
# Restart policies with capped exponential backoff and a restart count.
. "$(dirname "$0")/../lib.sh"
t_setup
t_forge
clbsd events -f --json >"$TMP/events" 2>&1 &
EVPID=$!
sleep 0.2

clbsd run -d --name flaky --restart on-failure:3 forge sh -c 'exit 1' >/dev/null
wait_until 15 sh -c "[ \"\$($BUILD/clbsd --socket $SOCK --json inspect flaky | python3 -c 'import json,sys; c=json.load(sys.stdin)[0]; print(c[\"state\"], c[\"restart_count\"])')\" = 'exited 3' ]" &&
	ok on_failure_retries_then_stops ||
	fail on_failure_retries_then_stops "state=$(field flaky state) count=$(field flaky restart_count)"
sleep 0.5
[ "$(field flaky restart_count)" = 3 ] && ok restart_count_capped || fail restart_count_capped "$(field flaky restart_count)"
delays=$(python3 -c 'import json,sys
for l in open(sys.argv[1]):
    try: e=json.loads(l)
    except ValueError: continue
    if e.get("type")=="container.restarting" and e.get("container")=="flaky":
        print(e["attrs"]["delay_ms"])' "$TMP/events" 2>/dev/null | tr '\n' ' ')
[ "$delays" = "100 200 400 " ] && ok backoff_doubles || fail backoff_doubles "delays: '$delays'"

clbsd run -d --name success --restart on-failure forge true >/dev/null
sleep 1
[ "$(field success restart_count)" = 0 ] && [ "$(field success state)" = exited ] &&
	ok on_failure_ignores_success || fail on_failure_ignores_success "count $(field success restart_count)"

clbsd run -d --name always --restart always forge sleep 300 >/dev/null
pid=$(field always pid)
kill -KILL "$pid"
wait_until 5 sh -c "[ \"\$($BUILD/clbsd --socket $SOCK --json inspect always | python3 -c 'import json,sys; c=json.load(sys.stdin)[0]; print(c[\"state\"], c[\"restart_count\"])')\" = 'running 1' ]" &&
	ok always_restarts_after_outside_kill ||
	fail always_restarts_after_outside_kill "state=$(field always state) count=$(field always restart_count)"
clbsd stop -t 0 always >/dev/null
sleep 0.5
[ "$(field always state)" = exited ] && ok stop_beats_always || fail stop_beats_always "$(field always state)"
kill "$EVPID" 2>/dev/null
wait "$EVPID" 2>/dev/null
t_done
