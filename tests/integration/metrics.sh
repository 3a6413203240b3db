#!/bin/bash
# Prometheus metrics (docs/metrics.md): off by default; a bad :listen is a
# file:line:col error; once on, /metrics passes promtool's own parser, its
# numbers match the cgroup files, the restart and API request counters
# count, 404 elsewhere; the listener moves and stops on a reload.
. "$(dirname "$0")/../lib.sh"
t_setup
t_forge

# The daemon runs in a network namespace of its own: scrape from inside it.
in_ns() { nsenter --net="/proc/$DAEMON_PID/ns/net" "$@"; }
in_ns ip link set lo up
scrape() { in_ns curl -sf --max-time 5 "http://127.0.0.1:${1:-9323}/metrics"; }
# The value of one sample: metric_name and a label matcher (a regex on the labels).
sample() {
	awk -v m="$2" -v l="$3" '$1 ~ "^" m "([{]|$)" && $1 ~ l { print $2; exit }' "$1"
}

info_metrics() {
	clbsd --json info | python3 -c 'import json,sys; print(json.load(sys.stdin)["metrics"])'
}
[ "$(info_metrics)" = None ] && ! scrape >/dev/null 2>&1 && ok off_by_default ||
	fail off_by_default "info: $(info_metrics)"

printf '(host\n  :metrics (:listen "127.0.0.1:99999"))\n' >"$CONF"
out=$(clbsd apply 2>&1)
echo "$out" | grep -q 'clbsd.conf:2:[0-9]*: .*:metrics :listen' && ok bad_listen_position ||
	fail bad_listen_position "$out"

mkdir -p "$TMP/bk"
cat >"$CONF" <<C
(host :metrics (:listen "127.0.0.1:9323"))
(container steady :image "forge" :command ("sleep" "300") :limits (:memory "32M" :pids 16)
  :backup (:every "1d" :keep (:daily 1 :weekly 0 :monthly 0) :to "file://$TMP/bk"))
(container flappy :image "forge" :command ("sh" "-c" "sleep 0.3; exit 3") :restart always
  :on ((:exit "false")))
C
clbsd apply >/dev/null 2>&1
wait_until 10 sh -c "[ \"\$(\"$BUILD/clbsd\" --socket \"$SOCK\" --json inspect flappy | python3 -c 'import json,sys; print(json.load(sys.stdin)[0][\"restart_count\"])')\" -ge 1 ]"
wait_until 5 scrape >/dev/null && ok listens_after_reload || fail listens_after_reload "$(tail -5 "$TMP/daemon.log")"

# 200 idle connections to the listener (anyone who reaches it may open
# them): it keeps 32 at most, the oldest idle give way, the API still
# answers, a scrape still gets through, and idle ones go after 5 s. What is
# counted is the daemon's own TCP sockets on the listener's port (ss, in its
# network namespace, by its pid), not all its fds: those move with
# flappy's start and exit and the cgroup files kept open for scrapes.
MAX_CONN=32
IDLE_S=5
conns() { in_ns ss -Htnp '( sport = :9323 )' | grep -c "pid=$DAEMON_PID,"; }
# For a failure: the daemon's sockets on the port, their states and peers.
connlist() { in_ns ss -Htnp '( sport = :9323 )' | grep "pid=$DAEMON_PID," | awk '{ print $1, $5 }' | sort | uniq -c | head -5 | tr '\n' ' '; }
note() { echo "# $T_NAME: $*"; }
conns_gone() { [ "$(conns)" = 0 ]; }
# The scrapes before have closed theirs once the daemon read their end.
wait_until 5 conns_gone
conns0=$(conns)
in_ns python3 -c "
import socket, sys, time
socks = []
for i in range(200):
    s = socket.create_connection(('127.0.0.1', 9323))
    if i % 2:
        s.sendall(b'GET /metrics HTTP/1.1\r\nHost: x\r\n')
    socks.append(s)
open(sys.argv[1], 'w').close()
time.sleep(20)
" "$TMP/idle.ready" &
IDLE=$!
wait_until 10 test -e "$TMP/idle.ready"
sleep 0.5
conns1=$(conns)
clbsd info >/dev/null && scrape >/dev/null && [ "$conns0" = 0 ] && [ "$conns1" -ge 1 ] &&
	[ "$conns1" -le "$MAX_CONN" ] && ok idle_flood_capped ||
	fail idle_flood_capped "daemon's connections on :9323: $conns0 before, $conns1 with 200 idle ones (at most $MAX_CONN)"
note "idle_flood: the daemon holds $conns1 connections on :9323 with 200 idle ones open"
# Every one of them is idle past IDLE_S after the flood; the sweep runs
# each second.
wait_until $((IDLE_S * 2)) conns_gone && ok idle_connections_time_out ||
	fail idle_connections_time_out "the daemon still holds $(conns) connections on :9323 ($conns0 before): $(connlist)"
kill "$IDLE" 2>/dev/null
wait "$IDLE" 2>/dev/null

# An OOM kill in steady (32M): a process of its own, not its init, asks
# for 48M (without swap the kernel kills it; with swap it may swap
# instead, and the count is only compared). And block I/O that bypasses
# the page cache, so that it is the container's own.
clbsd exec steady dd if=/dev/zero of=/dev/null bs=48M count=1 >/dev/null 2>&1
clbsd exec steady dd if=/dev/zero of=/io.bin bs=1M count=4 oflag=direct >/dev/null 2>&1
clbsd exec steady dd if=/io.bin of=/dev/null bs=1M iflag=direct >/dev/null 2>&1
clbsd inspect steady >/dev/null
clbsd inspect no-such-container >/dev/null 2>&1
sleep 0.3
scrape >"$TMP/m1"
if command -v promtool >/dev/null; then
	out=$(promtool check metrics <"$TMP/m1" 2>&1) && ok promtool_check || fail promtool_check "$out"
else
	skip promtool_check "promtool is not installed (Debian package prometheus)"
fi

cg=$(field steady cgroup)
mem_file=/sys/fs/cgroup/memory/$cg/memory.usage_in_bytes
[ -f "$mem_file" ] || mem_file=/sys/fs/cgroup/$cg/memory.current
pids_file=/sys/fs/cgroup/pids/$cg/pids.current
[ -f "$pids_file" ] || pids_file=/sys/fs/cgroup/$cg/pids.current
lab='name="steady",kind="native",image="forge:latest"'
mem=$(sample "$TMP/m1" clbsd_container_memory_usage_bytes "$lab")
real=$(cat "$mem_file")
python3 -c "import sys; a,b=int('$mem'),int('$real'); sys.exit(abs(a-b) > max(b//10, 1<<20))" &&
	ok memory_matches_cgroup || fail memory_matches_cgroup "metric=$mem cgroup=$real"
[ "$(sample "$TMP/m1" clbsd_container_pids "$lab")" = "$(cat "$pids_file")" ] &&
	ok pids_match_cgroup || fail pids_match_cgroup "$(grep 'container_pids.*steady' "$TMP/m1")"
[ "$(sample "$TMP/m1" clbsd_container_memory_limit_bytes "$lab")" = $((32 << 20)) ] &&
	[ "$(sample "$TMP/m1" clbsd_container_pids_limit "$lab")" = 16 ] && ok limits_reported ||
	fail limits_reported "$(grep 'limit.*steady' "$TMP/m1")"
cpu=$(sample "$TMP/m1" clbsd_container_cpu_seconds_total "$lab")
cpu_file=/sys/fs/cgroup/cpuacct/$cg/cpuacct.usage
if [ -f "$cpu_file" ]; then real=$(cat "$cpu_file"); else
	real=$(awk '$1 == "usage_usec" { print $2 * 1000 }' "/sys/fs/cgroup/$cg/cpu.stat"); fi
python3 -c "import sys; sys.exit(abs(float('$cpu') - int('$real') / 1e9) > 0.05)" &&
	ok cpu_matches_cgroup || fail cpu_matches_cgroup "metric=$cpu cgroup=$real"
# OOM kills: the cgroup's own count (v1 memory.oom_control, v2
# memory.events: "oom_kill N"), which nothing else changes meanwhile.
oom_file=/sys/fs/cgroup/memory/$cg/memory.oom_control
[ -f "$oom_file" ] || oom_file=/sys/fs/cgroup/$cg/memory.events
oom_real=$(awk '$1 == "oom_kill" { print $2 }' "$oom_file")
oom=$(sample "$TMP/m1" clbsd_container_oom_kills_total "$lab")
if [ -n "$oom_real" ] && [ "$oom" = "$oom_real" ] &&
	{ [ "$oom" -ge 1 ] || [ "$(awk 'NR > 1' /proc/swaps | wc -l)" -gt 0 ]; }; then
	ok oom_kills_match_cgroup
else
	fail oom_kills_match_cgroup "metric=$oom $oom_file: $oom_real"
fi
# Block I/O: the cgroup's bytes read and written (v2 io.stat rbytes/wbytes,
# v1 blkio.throttle.io_service_bytes Read/Write), between a read of the
# file before the scrape and one after. A cgroup without the file (a
# native container on v1 has no blkio cgroup of its own) has no series.
io_file=/sys/fs/cgroup/blkio/$cg/blkio.throttle.io_service_bytes
[ -f "$io_file" ] || io_file=/sys/fs/cgroup/$cg/io.stat
io_bytes() { # read|write
	python3 - "$io_file" "$1" <<'PY'
import sys
f, op = sys.argv[1], sys.argv[2]
n = 0
for line in open(f):
    t = line.split()
    if len(t) == 3 and t[1] == op.capitalize():
        n += int(t[2])
    for kv in t[1:]:
        k, _, v = kv.partition("=")
        if k == op[0] + "bytes":
            n += int(v)
print(n)
PY
}
if [ -f "$io_file" ]; then
	r0=$(io_bytes read) w0=$(io_bytes write)
	scrape >"$TMP/io"
	r1=$(io_bytes read) w1=$(io_bytes write)
	rm=$(sample "$TMP/io" clbsd_container_block_read_bytes_total "$lab")
	wm=$(sample "$TMP/io" clbsd_container_block_write_bytes_total "$lab")
	[ -n "$rm" ] && [ -n "$wm" ] && [ "$r0" -le "$rm" ] && [ "$rm" -le "$r1" ] &&
		[ "$w0" -le "$wm" ] && [ "$wm" -le "$w1" ] && [ "$w1" -ge $((4 << 20)) ] &&
		ok block_io_matches_cgroup ||
		fail block_io_matches_cgroup "metric read=$rm write=$wm; $io_file read $r0..$r1 write $w0..$w1"
else
	note "block I/O: steady's cgroup has no $io_file (no blkio cgroup of its own): no series wanted"
	! grep -q '^clbsd_container_block_[a-z_]*{name="steady"' "$TMP/m1" &&
		ok block_io_matches_cgroup ||
		fail block_io_matches_cgroup "no $io_file, yet: $(grep '^clbsd_container_block.*steady' "$TMP/m1")"
fi
[ "$(sample "$TMP/m1" clbsd_container_state "$lab,state=\"running\"")" = 1 ] &&
	ok state_running || fail state_running "$(grep 'state.*steady' "$TMP/m1")"

# Network counters are per interface: the container's root deleting one
# (here a veth, v0, that sent packets) ends its series (and its peer's),
# it lowers no other. The test's containers have no network of clbsd's.
spid=$(field steady pid)
in_ctr() { nsenter --net="/proc/$spid/ns/net" "$@"; }
in_ctr ip link add v0 type veth peer name v1 && in_ctr ip addr add 10.99.0.1/24 dev v0 &&
	in_ctr ip link set v0 up && in_ctr ip link set v1 up &&
	in_ctr ip neigh add 10.99.0.3 lladdr 02:00:00:00:00:03 dev v0 &&
	in_ctr python3 -c 'import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(5): s.sendto(b"x" * 100, ("10.99.0.3", 9))' 
scrape >"$TMP/n1"
grep -q '^clbsd_container_network_receive_bytes_total{name="steady",[^}]*,interface="v0"}' "$TMP/n1" &&
	grep -q '^clbsd_container_network_receive_bytes_total{name="steady",[^}]*,interface="v1"}' "$TMP/n1" &&
	ok network_counters || fail network_counters "$(grep network "$TMP/n1" | head -3)"
in_ctr ip link del v0
scrape >"$TMP/n2"
net_ok() {
	python3 - "$TMP/n1" "$TMP/n2" <<'PY'
import re, sys
def series(f):
    out = {}
    for line in open(f):
        m = re.match(r'(clbsd_container_network_\w+)\{name="steady",[^}]*interface="([^"]*)"\} (\d+)', line)
        if m:
            out[(m[1], m[2])] = int(m[3])
    return out
a, b = series(sys.argv[1]), series(sys.argv[2])
assert a.get(('clbsd_container_network_transmit_packets_total', 'v0'), 0) >= 5, a
assert ('clbsd_container_network_transmit_packets_total', 'v0') not in b, b
assert all(b[k] >= a[k] for k in b if k in a), (a, b)
PY
}
out=$(net_ok 2>&1) && ok network_per_interface_never_decreases ||
	fail network_per_interface_never_decreases "$out $(grep network_transmit_packets "$TMP/n1" "$TMP/n2")"

fl='name="flappy"'
r1=$(sample "$TMP/m1" clbsd_container_restarts_total "$fl")
# Its exit code shows while it is down (exited, or waiting to restart).
exit_seen() { scrape | grep -q '^clbsd_container_exit_code{name="flappy"[^}]*} 3$'; }
[ "${r1:-0}" -ge 1 ] && wait_until 10 exit_seen && ok restarts_and_exit_code ||
	fail restarts_and_exit_code "$(grep -E '(restarts_total|exit_code).*flappy' "$TMP/m1")"
# flappy's restarts back off (100 ms doubling, lifecycle.c), so the next
# one may be seconds away: at most twice the delay the daemon last announced
# (flappy may be running now, for 0.3 s, and back off double that next),
# and never more than the 30 s cap. Wait that, plus time to start.
last_delay_ms=$(clbsd events --json --container flappy --type container.restarting | tail -n 1 |
	python3 -c 'import json,sys; print(json.load(sys.stdin)["attrs"]["delay_ms"])')
next_s=$(python3 -c "print(int(min(2 * $last_delay_ms, 30000) / 1000 + 0.3 + 5))")
restarts_now() { scrape | awk '/^clbsd_container_restarts_total[{]name="flappy"/ { print $2 }'; }
restarted() { [ "$(restarts_now)" -gt "$r1" ]; }
wait_until "$next_s" restarted && ok restart_counter_increments ||
	fail restart_counter_increments "still $(restarts_now) (was $r1) after ${next_s} s (last backoff ${last_delay_ms} ms)"

get='method="GET",route="/v1/containers/{name}"'
a1=$(sample "$TMP/m1" clbsd_api_requests_total "$get,code=\"200\"")
n404=$(sample "$TMP/m1" clbsd_api_requests_total "$get,code=\"404\"")
clbsd inspect steady >/dev/null
sleep 0.2
scrape >"$TMP/m2"
a2=$(sample "$TMP/m2" clbsd_api_requests_total "$get,code=\"200\"")
[ "${a1:-0}" -ge 1 ] && [ "${a2:-0}" -ge $((a1 + 1)) ] && [ "${n404:-0}" -ge 1 ] &&
	ok api_requests_counted || fail api_requests_counted "a1=$a1 a2=$a2 404=$n404"
grep -q '^clbsd_reconcile_passes_total [1-9]' "$TMP/m2" &&
	grep -q '^clbsd_reconcile_duration_seconds_count [1-9]' "$TMP/m2" &&
	grep -q '^clbsd_reconcile_actions_total{action="create",result="ok"} [1-9]' "$TMP/m2" &&
	grep -q '^clbsd_events_total{type="container.started"} [1-9]' "$TMP/m2" &&
	grep -q '^clbsd_hook_runs_total{event="[a-z.]*"} [1-9]' "$TMP/m2" &&
	grep -q '^clbsd_hook_failures_total{event="[a-z.]*"} [1-9]' "$TMP/m2" &&
	ok daemon_counters || fail daemon_counters "$(grep -E 'reconcile|events_total|hook' "$TMP/m2" | grep -v '^#' | head -20)"

# clbsd stats streams (a table a second) unless --no-stream; --json is one sample.
n=$(timeout 2.5 "$BUILD/clbsd" --socket "$SOCK" stats steady | grep -c '^NAME')
one=$(clbsd stats --no-stream steady)
[ "$n" -ge 2 ] && [ "$(echo "$one" | grep -c '^NAME')" = 1 ] && echo "$one" | grep -q '^steady ' &&
	clbsd --json stats steady | python3 -c 'import json,sys; json.load(sys.stdin)["memory_usage"]' &&
	ok stats_streams || fail stats_streams "tables in 2.5 s: $n; --no-stream: $one"

# Backups (docs/backup.md): the state backup.c keeps, by container.
out=$(clbsd backup steady 2>&1)
backed_up() { scrape | grep -q '^clbsd_backup_last_success_timestamp_seconds{name="steady"} [1-9]'; }
wait_until 20 backed_up && scrape | grep -q '^clbsd_backup_consecutive_failures{name="steady"} 0$' &&
	ok backup_state || fail backup_state "$out / $(scrape | grep '^clbsd_backup')"

code=$(in_ns curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:9323/other)
[ "$code" = 404 ] && ok not_found_elsewhere || fail not_found_elsewhere "$code"

# The kernel's counters (CPU, block I/O, OOM kills) are the cgroup's: they
# keep counting across a daemon restart, the containers keep running.
spid=$(field steady pid)
scrape >"$TMP/r1"
t_kill_daemon
t_start_daemon
in_ns ip link set lo up
wait_until 10 scrape >/dev/null
scrape >"$TMP/r2"
kept_counting() {
	python3 - "$TMP/r1" "$TMP/r2" <<'PY'
import re, sys
def read(f):
    out = {}
    for line in open(f):
        m = re.match(r'(clbsd_container_(cpu_seconds|oom_kills|block_\w+)_total)\{name="steady",[^}]*\} (\S+)$', line)
        if m:
            out[m[1]] = float(m[3])
    return out
a, b = read(sys.argv[1]), read(sys.argv[2])
for k in ('clbsd_container_cpu_seconds_total', 'clbsd_container_oom_kills_total'):
    assert k in a and k in b, (k, a, b)
for k in a:
    assert k in b and b[k] >= a[k], (k, a, b)
assert a['clbsd_container_cpu_seconds_total'] > 0, a
PY
}
out=$(kept_counting 2>&1) && [ "$(field steady pid)" = "$spid" ] &&
	ok kernel_counters_survive_restart ||
	fail kernel_counters_survive_restart "$out; pid $spid -> $(field steady pid)"

# Moved and then stopped by reloads; the containers never notice.
pid=$(field steady pid)
sed -i 's/127.0.0.1:9323/127.0.0.1:9324/' "$CONF"
clbsd apply >/dev/null 2>&1
wait_until 5 scrape 9324 >/dev/null && ! scrape 9323 >/dev/null 2>&1 && ok listener_moves ||
	fail listener_moves "$(grep metrics "$TMP/daemon.log" | tail -3)"
sed -i 's/^(host :metrics (:listen "127.0.0.1:9324"))$//' "$CONF"
clbsd apply >/dev/null 2>&1
wait_until 5 sh -c "! nsenter --net=/proc/$DAEMON_PID/ns/net curl -sf http://127.0.0.1:9324/metrics >/dev/null 2>&1" &&
	[ "$(field steady pid)" = "$pid" ] && ok listener_stops || fail listener_stops "still serving"

# A port in use is an error that stops nothing.
in_ns python3 -c 'import socket,time; s=socket.socket(); s.bind(("127.0.0.1",9325)); s.listen(); time.sleep(30)' &
HOLDER=$!
wait_until 5 in_ns sh -c 'ss -Hltn | grep -q "127.0.0.1:9325 "'
sed -i '1i (host :metrics (:listen "127.0.0.1:9325"))' "$CONF"
clbsd apply >/dev/null 2>&1
in_use() { clbsd --json info | grep -q 'cannot listen on 127.0.0.1:9325'; }
wait_until 5 in_use && [ "$(field steady pid)" = "$pid" ] && ok port_in_use_reported ||
	fail port_in_use_reported "$(clbsd --json info) $(head -3 "$CONF")"
kill "$HOLDER" 2>/dev/null
wait "$HOLDER" 2>/dev/null
t_done
