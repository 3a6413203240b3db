#!/bin/bash
# cgroup limits: a memory hog is OOM-killed and reported; the pids limit
# holds; stats report usage against the limits.
. "$(dirname "$0")/../lib.sh"
t_setup
t_forge
clbsd events -f >"$TMP/events" 2>&1 &
EVPID=$!

# busybox tail keeps the whole "last line" of /dev/zero in memory.
clbsd run -d --name hog --memory 16M forge tail /dev/zero >/dev/null
wait_until 20 sh -c "[ \"\$($BUILD/clbsd --socket $SOCK --json inspect hog | python3 -c 'import json,sys; print(json.load(sys.stdin)[0][\"state\"])')\" = exited ]"
[ "$(field hog oom_killed)" = true ] && ok oom_killed_in_inspect ||
	fail oom_killed_in_inspect "state=$(field hog state) oom_killed=$(field hog oom_killed)"
[ "$(field hog exit_code)" = 137 ] && ok oom_exit_code || fail oom_exit_code "$(field hog exit_code)"
wait_until 3 grep -q 'container.oom' "$TMP/events" && ok oom_event ||
	fail oom_event "$(cat "$TMP/events")"
kill "$EVPID" 2>/dev/null
wait "$EVPID" 2>/dev/null

clbsd run -d --name forky --pids 8 forge sleep 300 >/dev/null
out=$(clbsd exec forky sh -c 'for i in 1 2 3 4 5 6 7 8 9 10 11 12; do sleep 30 & done; wait' 2>&1)
n=$(clbsd exec forky ps -o pid | tail -n +2 | wc -l)
echo "$out" | grep -qi 'resource temporarily unavailable\|can.t fork\|fork' && [ "$n" -le 9 ] &&
	ok pids_limit_holds || fail pids_limit_holds "n=$n out=$out"

clbsd run -d --name measured --memory 32M --pids 16 --cpus 0.5 forge sleep 300 >/dev/null
stats=$(clbsd --json stats measured 2>&1)
echo "$stats" | python3 -c 'import json,sys
s=json.load(sys.stdin)
s=s[0] if isinstance(s,list) else s
assert s["memory_limit"]==32*1024*1024, s
assert s["pids_limit"]==16, s
assert s["memory_usage"]>0 and s["pids_current"]>=1, s' && ok stats_report_limits ||
	fail stats_report_limits "$stats"
cg=$(field measured cgroup)
period=$(cat "/sys/fs/cgroup/cpu/$cg/cpu.cfs_period_us" 2>/dev/null)
quota=$(cat "/sys/fs/cgroup/cpu/$cg/cpu.cfs_quota_us" 2>/dev/null)
if [ -n "$period" ]; then
	[ $((quota * 2)) -eq "$period" ] && ok cpu_quota || fail cpu_quota "quota=$quota period=$period"
else
	max=$(cat "/sys/fs/cgroup/$cg/cpu.max" 2>/dev/null)
	[ "$max" = "50000 100000" ] && ok cpu_quota || fail cpu_quota "cpu.max: '$max'"
fi
t_done
