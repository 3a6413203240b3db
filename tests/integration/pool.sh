#!/bin/bash
# The shim pool: shims with namespaces and a cgroup made ahead of starts.
# Starts take them and the pool refills; a failure after a pooled start is
# still reported; nothing of the pool outlives the daemon, even on SIGKILL;
# --pool 0 starts every container the ordinary way.
. "$(dirname "$0")/../lib.sh"
t_setup
t_forge

pool_socks() { find "$RUN/pool" -name '*.sock' 2>/dev/null | wc -l; }
# Processes in the test's pool cgroups that no container has claimed (the
# claimed ones are listed in $CLAIMED).
CLAIMED=""
pool_procs() {
	local f n=0
	for f in /sys/fs/cgroup/memory/clbsd-"$T_ID"/pool-*/cgroup.procs; do
		[ -f "$f" ] || continue
		case " $CLAIMED " in *" $(basename "$(dirname "$f")") "*) continue ;; esac
		n=$((n + $(wc -l <"$f")))
	done
	echo "$n"
}
socks_are() { [ "$(pool_socks)" -eq "$1" ]; }
procs_are() { [ "$(pool_procs)" -eq "$1" ]; }

wait_until 5 socks_are 2 && [ "$(pool_procs)" -eq 2 ] && ok pool_filled ||
	fail pool_filled "sockets $(pool_socks), processes $(pool_procs)"

clbsd run -d --name a forge sleep 300 >/dev/null
cg=$(field a cgroup)
CLAIMED="$CLAIMED ${cg#*/}"
case "$cg" in
clbsd-"$T_ID"/pool-*) ok start_takes_pool_shim ;;
*) fail start_takes_pool_shim "cgroup $cg" ;;
esac
[ "$(clbsd exec a hostname)" = a ] && ok pooled_container_is_itself || fail pooled_container_is_itself "$(clbsd exec a hostname)"
grep -q "^$(field a pid)\$" "/sys/fs/cgroup/memory/$cg/cgroup.procs" && ok pooled_init_in_cgroup ||
	fail pooled_init_in_cgroup "pid $(field a pid) not in $cg"
wait_until 5 socks_are 2 && ok pool_refilled || fail pool_refilled "$(pool_socks) sockets"

# Limits are applied to the slot's cgroup at the claim.
clbsd run -d --name lim --memory 48M forge sleep 300 >/dev/null
lcg=$(field lim cgroup)
CLAIMED="$CLAIMED ${lcg#*/}"
[ "$(cat "/sys/fs/cgroup/memory/$lcg/memory.limit_in_bytes")" = $((48 << 20)) ] && ok pooled_limits ||
	fail pooled_limits "$lcg: $(cat "/sys/fs/cgroup/memory/$lcg/memory.limit_in_bytes")"

# Output and exit code through run (attach before the init is ready).
out=$(clbsd run --rm forge sh -c 'echo out; exit 7')
[ $? -eq 7 ] && [ "$out" = out ] && ok pooled_run_attached || fail pooled_run_attached "out=$out"

# A start that fails after it was answered: the reason still reaches the caller.
mkdir "$TMP/vanish"
clbsd create --name vol -v "$TMP/vanish:/x" forge true >/dev/null
rmdir "$TMP/vanish"
curl -s --unix-socket "$SOCK" -X POST "http://x/v1/containers/vol/start?hold=1" >/dev/null
err=$(curl -s --unix-socket "$SOCK" "http://x/v1/containers/vol?wait_start=1" |
	python3 -c 'import json,sys; print(json.load(sys.stdin)["start_error"])')
echo "$err" | grep -q "vanish" && ok late_start_failure_reported || fail late_start_failure_reported "$err"
[ "$(field vol state)" = created ] && ok late_failure_leaves_created || fail late_failure_leaves_created "$(field vol state)"
clbsd rm vol >/dev/null

# A pool shim that dies is replaced.
victim=$(find "$RUN/pool" -name '*.sock' | head -n 1)
vcg="clbsd-$T_ID/$(basename "$victim" .sock)"
vinit=$(cat "/sys/fs/cgroup/memory/$vcg/cgroup.procs")
vshim=$(awk '{print $4}' "/proc/$vinit/stat")
kill -TERM "$vshim"
wait_until 5 test ! -e "/sys/fs/cgroup/memory/$vcg" && ok discarded_shim_cleans_up ||
	fail discarded_shim_cleans_up "$vcg remains"
wait_until 5 socks_are 2 && ok dead_pool_shim_replaced || fail dead_pool_shim_replaced "$(pool_socks)"

# SIGKILL of the daemon: the pool goes by itself; running containers stay.
apid=$(field a pid)
t_kill_daemon KILL
wait_until 5 procs_are 0 && ok pool_gone_with_daemon || fail pool_gone_with_daemon "$(pool_procs) left"
kill -0 "$apid" && ok pooled_container_survives_daemon || fail pooled_container_survives_daemon "pid $apid gone"
t_start_daemon || exit 1
[ "$(field a state)" = running ] && [ "$(field a cgroup)" = "$cg" ] && ok pooled_container_readopted ||
	fail pooled_container_readopted "state $(field a state) cgroup $(field a cgroup)"
clbsd rm -f a lim >/dev/null
[ ! -e "/sys/fs/cgroup/memory/$cg" ] && ok pooled_cgroup_removed || fail pooled_cgroup_removed "$cg remains"

# --pool 0: no pool, cgroups named after the containers.
t_kill_daemon TERM
[ "$(pool_procs)" -eq 0 ] && [ -z "$(ls -A "$RUN/pool")" ] && ok pool_gone_on_stop ||
	fail pool_gone_on_stop "$(pool_procs) processes, files: $(ls -A "$RUN/pool")"
DAEMON_ARGS="--pool=0" t_start_daemon || exit 1
clbsd run -d --name cold forge sleep 300 >/dev/null
[ "$(field cold cgroup)" = "clbsd-$T_ID/cold" ] && [ "$(pool_socks)" -eq 0 ] && ok pool_off ||
	fail pool_off "cgroup $(field cold cgroup), $(pool_socks) sockets"
out=$(clbsd run --rm forge echo cold)
[ "$out" = cold ] && ok cold_run || fail cold_run "$out"
t_done
