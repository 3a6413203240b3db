#!/bin/bash
# Attacks on the API socket (issue 14, item 7, and the HTTP/JSON input attacks
# that already failed): every one must fail, the daemon's memory must stay
# bounded, and a second client must be answered during and after the attack.
# Raw clients are python3 (in deps), run as root or, through setpriv, as
# nobody (65534) on a socket opened up on purpose, so that the daemon's own
# peer check is what refuses them.
. "$(dirname "$0")/../lib.sh"
# Under ASan (make asan), freed memory waits in a quarantine of 256 MB by
# default, which the RSS bounds below would count: keep it small.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=4"
# The daemon starts with a low soft open-file limit and must raise it itself.
t_before_start() { ulimit -Sn 1024; }
t_setup
ulimit -Sn "$(ulimit -Hn)"

RSS_MAX_KB=$((64 * 1024)) # allowed growth of the daemon during an attack

# note TEXT: a measurement, shown when the script runs by itself.
note() { echo "# $T_NAME: $*"; }
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$DAEMON_PID/status"; }
nfds() { find "/proc/$DAEMON_PID/fd" -mindepth 1 -maxdepth 1 | wc -l; }
# info_ok: a second client is answered within 5 seconds.
info_ok() { timeout 5 "$BUILD/clbsd" --socket "$SOCK" info >/dev/null 2>&1; }
# /usr/bin/python3: a python3 found first on root's PATH may be unreadable to nobody.
as_nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }
PY_SYS=/usr/bin/python3
alive() { kill -0 "$DAEMON_PID" 2>/dev/null && info_ok; }

# A raw client: python3 -c "$PY_LIB..." gives connect() and a reader of the answer.
PY_LIB='
import os, socket, sys, time
SOCK = os.environ["SOCK"]
def conn():
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(SOCK)
    return s
def send(s, data):
    """Send, tolerating a daemon that answered at accept and closed unread:
    its answer is already queued for answer() to read."""
    try:
        s.sendall(data)
    except (BrokenPipeError, ConnectionResetError):
        pass
def answer(s, limit=10):
    """The status line the daemon sent before closing, or "" (nothing) or "timeout"."""
    s.settimeout(limit)
    data = b""
    try:
        while True:
            b = s.recv(65536)
            if not b:
                break
            data += b
            if b"\r\n\r\n" in data and b"Content-Length" in data:
                head, _, body = data.partition(b"\r\n\r\n")
                n = int([l for l in head.split(b"\r\n") if l.lower().startswith(b"content-length")][0].split(b":")[1])
                if len(body) >= n:
                    break
    except socket.timeout:
        return "timeout"
    except OSError:
        pass
    return data.split(b"\r\n")[0].decode(errors="replace")
'
export SOCK TMP

# ---- the peer check comes before anything is read ----
# The socket is opened up to everybody so that only the daemon's check is left.
# shellcheck disable=SC2153 # RUN comes from lib.sh
chmod o+x "$TMP" "$RUN"
chmod 666 "$SOCK"

base=$(rss_kb)
out=$(as_nobody "$PY_SYS" -c "$PY_LIB
# 512 MiB of header from a user who may not use the socket.
s = conn()
sent = 0
chunk = b'GET /v1/info HTTP/1.1\r\nX-Pad: ' + b'a' * (1 << 20)
t0 = time.time()
try:
    s.settimeout(10)
    while sent < (512 << 20):
        s.sendall(chunk)
        sent += len(chunk)
        chunk = b'a' * (1 << 20)
except OSError as e:
    pass
print(sent >> 20, round(time.time() - t0, 1), answer(s, 5))
" 2>&1)
grow=$(($(rss_kb) - base))
note "unprivileged_huge_header_refused_unread: daemon RSS +${grow} kB"
# shellcheck disable=SC2086 # the words of the answer
set -- $out
if [ "${1:-999}" -lt 64 ] && [ "$grow" -lt "$RSS_MAX_KB" ] && echo "$out" | grep -q '403'; then
	ok unprivileged_huge_header_refused_unread
else
	fail unprivileged_huge_header_refused_unread "sent MiB, s, answer: $out; rss +${grow} kB"
fi

# 2500 idle connections from nobody: each is closed at once, none is kept.
out=$(as_nobody "$PY_SYS" -c "$PY_LIB
import select
socks = []
for i in range(2500):
    try:
        socks.append(conn())
    except OSError:
        pass
time.sleep(1)
p = select.poll()
for s in socks:
    p.register(s, select.POLLIN)
print(len(socks), len(p.poll(2000)))
" 2>&1)
# shellcheck disable=SC2086 # the words of the answer
set -- $out
if [ "${1:-0}" -gt 2000 ] && [ "${2:-0}" -eq "${1:-1}" ] && info_ok; then
	ok unprivileged_idle_flood_closed
else
	fail unprivileged_idle_flood_closed "connected, answered-and-closed: $out"
fi

# ---- a refused request is audited, a flood of them only a few a second ----
# Each of 200 refused requests is a record (uid, pid) or counted in one
# "suppressed" record: none passes unsaid, and the log grows by a few
# records a second, not one per connection.
refused_sum() {
	"$BUILD/clbsd" --socket "$SOCK" audit --json | python3 -c 'import json,sys
one = sup = 0
for l in sys.stdin:
    r = json.loads(l)
    if r.get("event") == "api.refused" and r.get("uid") == 65534:
        if "suppressed" in r:
            sup += r["suppressed"]
        else:
            one += 1
            assert r.get("pid") and r.get("status") == 403, r
print(one, sup)'
}
settled() { a=$(refused_sum) && sleep 2.2 && [ "$a" = "$(refused_sum)" ]; }
wait_until 15 settled
read -r one0 sup0 <<<"$(refused_sum)"
t0=$(date +%s%N)
as_nobody "$PY_SYS" -c "$PY_LIB
for i in range(200):
    s = conn()
    send(s, b'POST /v1/containers/x/stop HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n')
    answer(s, 5)
    s.close()
" >/dev/null 2>&1
secs=$((($(date +%s%N) - t0) / 1000000000 + 1))
all_said() { read -r one sup <<<"$(refused_sum)" && [ $((one - one0 + sup - sup0)) -eq 200 ]; }
if wait_until 10 all_said && [ $((one - one0)) -ge 1 ] && [ $((one - one0)) -le $(((secs + 1) * 10)) ]; then
	note "refused_requests_audited: $((one - one0)) records, $((sup - sup0)) suppressed in ${secs}s"
	ok refused_requests_audited
else
	fail refused_requests_audited "records $one0 -> ${one:-?}, suppressed $sup0 -> ${sup:-?} in ${secs}s"
fi

chmod 660 "$SOCK"
chmod o-x "$TMP" "$RUN"

# ---- root's own idle connections cannot lock out root ----
python3 -c "$PY_LIB
socks = []
for i in range(2500):
    s = conn()
    # Half a request on every other one, nothing on the rest.
    if i % 2:
        s.sendall(b'GET /v1/info HTTP/1.1\r\nHost: x\r\n')
    socks.append(s)
open(os.environ['TMP'] + '/idle.ready', 'w').close()
time.sleep(30)
" &
idle_pid=$!
wait_until 30 test -e "$TMP/idle.ready"
if info_ok && info_ok; then
	ok root_idle_flood_info_answers
else
	fail root_idle_flood_info_answers "clbsd info did not answer with 2500 idle connections open"
fi
# The oldest idle connections gave way to the newer ones (1,024 at most are kept).
fds_capped() { [ "$(nfds)" -lt 1400 ]; }
wait_until 5 fds_capped
note "root_idle_flood: daemon holds $(nfds) fds with 2500 connections open"
fds_capped && ok root_idle_flood_fds_capped ||
	fail root_idle_flood_fds_capped "daemon holds $(nfds) fds"
# Idle connections without a whole request are closed after 10 s.
sleep 12
fds=$(nfds)
[ "$fds" -lt 200 ] && ok idle_connections_time_out || fail idle_connections_time_out "daemon still holds $fds fds"
kill "$idle_pid" 2>/dev/null
wait "$idle_pid" 2>/dev/null

# ---- slowloris: one header byte a second defeats a per-read timeout, not the deadline ----
out=$(python3 -c "$PY_LIB
s = conn()
t0 = time.time()
req = b'GET /v1/info HTTP/1.1\r\n' + b'X-Slow: ' + b'a' * 60
try:
    for b in req:
        s.send(bytes([b]))
        time.sleep(0.5)
except OSError:
    pass
print(round(time.time() - t0))
" 2>&1)
if [ "${out:-99}" -le 14 ] && alive; then
	ok slowloris_header_deadline
else
	fail slowloris_header_deadline "the connection lasted ${out}s"
fi

# ---- header and body caps ----
base=$(rss_kb)
out=$(python3 -c "$PY_LIB
s = conn()
sent = 0
chunk = b'GET /v1/info HTTP/1.1\r\nX-Pad: ' + b'a' * (1 << 20)
try:
    s.settimeout(10)
    while sent < (512 << 20):
        s.sendall(chunk)
        sent += len(chunk)
        chunk = b'a' * (1 << 20)
except OSError:
    pass
print(sent >> 20, answer(s, 5))
" 2>&1)
grow=$(($(rss_kb) - base))
note "huge_header_refused: daemon RSS +${grow} kB"
# shellcheck disable=SC2086 # the words of the answer
set -- $out
if [ "${1:-999}" -lt 64 ] && [ "$grow" -lt "$RSS_MAX_KB" ] && echo "$out" | grep -q ' 4[0-9][0-9] \|^[0-9]* $' && alive; then
	ok huge_header_refused
else
	fail huge_header_refused "sent MiB, answer: $out; rss +${grow} kB"
fi

out=$(python3 -c "$PY_LIB
s = conn()
# A request line that never ends.
try:
    s.settimeout(10)
    for i in range(64):
        s.sendall(b'GET /' + b'a' * (1 << 20))
except OSError:
    pass
print(answer(s, 5))
" 2>&1)
echo "$out" | grep -q '^HTTP/1.1 4\|^$' && alive && ok endless_request_line_refused ||
	fail endless_request_line_refused "answer: $out"

out=$(python3 -c "$PY_LIB
s = conn()
s.sendall(b'POST /v1/containers HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1073741824\r\n\r\n{')
print(answer(s, 5))
" 2>&1)
echo "$out" | grep -q ' 413' && alive && ok body_over_limit_413 || fail body_over_limit_413 "answer: $out"

# ---- lying chunk sizes ----
chunked() {
	python3 -c "$PY_LIB
s = conn()
s.sendall(b'POST /v1/containers HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n' + sys.argv[1].encode().decode('unicode_escape').encode('latin-1'))
print(answer(s, 15))
" "$1" 2>&1
}
for case in 'ffffffffffffffff\r\n{}\r\n0\r\n\r\n' '-5\r\n{}\r\n0\r\n\r\n' 'zz\r\n{}\r\n0\r\n\r\n' \
	'7fffffff\r\n{}' '2\r\n{}}}}}}}}}}}\r\n0\r\n\r\n' '100\r\n{}'; do
	out=$(chunked "$case")
	# Refused with a 4xx, or closed (a short chunk that never completes: by the deadline).
	if echo "$out" | grep -q '^HTTP/1.1 4\|^$' && alive; then
		ok "lying_chunk_size[$case]"
	else
		fail "lying_chunk_size[$case]" "answer: $out"
	fi
done

# ---- JSON nested 200k deep, and sizes like 12Q ----
post() {
	curl -s -o "$TMP/body" -w '%{http_code}' --max-time 10 --unix-socket "$SOCK" -X POST \
		-H 'Content-Type: application/json' --data-binary "@$1" http://localhost/v1/containers
}
python3 -c 'print("[" * 200000 + "]" * 200000)' >"$TMP/deep1.json"
python3 -c 'print("{\"a\":" * 200000 + "1" + "}" * 200000)' >"$TMP/deep2.json"
for f in deep1 deep2; do
	code=$(post "$TMP/$f.json")
	[ "$code" = 400 ] && grep -q invalid_argument "$TMP/body" && alive && ok "json_nested_200k[$f]" ||
		fail "json_nested_200k[$f]" "code $code: $(head -c 300 "$TMP/body")"
done
# ---- a member of group clbsd cannot lock out root (per-uid limit) ----
# A second daemon, in its own mount namespace where /etc/group makes nobody a
# member of a group clbsd; it runs no containers (no pool), only its API.
API_GID=64999
{ cat /etc/group; echo "clbsd:x:$API_GID:nobody"; } >"$TMP/group"
ROOT2="$TMP/root2"
RUN2="$TMP/run2"
SOCK2="$RUN2/clbsd.sock"
D2=
d2_stop() {
	local rc=$?
	if [ -n "$D2" ]; then
		kill "$D2" 2>/dev/null
		wait "$D2" 2>/dev/null
		D2=
	fi
	return $rc
}
trap 'd2_stop; t_cleanup' EXIT
unshare --mount --net --propagation private -- sh -c "$T_DETACH_ZFS; "'mount --bind "$1" /etc/group && shift && exec "$@"' \
	sh "$TMP/group" "$BUILD/clbsdd" --root "$ROOT2" --run "$RUN2" --socket "$SOCK2" \
	--cgroup-parent "clbsd-$T_ID" --config "$CONF" --pool 0 >>"$TMP/daemon2.log" 2>&1 &
D2=$!
info2_ok() { timeout 5 "$BUILD/clbsd" --socket "$SOCK2" info >/dev/null 2>&1; }
if wait_until 10 info2_ok; then
	chmod o+x "$TMP" "$RUN2"
	member() { setpriv --reuid=65534 --regid=65534 --groups="$API_GID" "$@"; }
	if member "$BUILD/clbsd" --socket "$SOCK2" info >/dev/null 2>&1; then
		ok group_member_allowed
	else
		fail group_member_allowed "$(member "$BUILD/clbsd" --socket "$SOCK2" info 2>&1)"
	fi
	# 400 idle connections from the member: it keeps 128, its oldest give way.
	out=$(SOCK="$SOCK2" member "$PY_SYS" -c "$PY_LIB
import select
socks = [conn() for i in range(400)]
time.sleep(1.5)
p = select.poll()
for s in socks:
    p.register(s, select.POLLIN)
print(400 - len(p.poll(0)))
" 2>&1)
	if [ "${out:-999}" -le 128 ] 2>/dev/null && info2_ok; then
		ok group_member_idle_flood_capped_per_uid
	else
		fail group_member_idle_flood_capped_per_uid "member kept ${out} idle connections"
	fi
	# 200 event followers (busy once their request is read, never idle): 128
	# at most are served (older ones still idle give way to newer), one more
	# is refused with 503, and root is still answered.
	SOCK="$SOCK2" member "$PY_SYS" -c "$PY_LIB
socks = []
for i in range(200):
    s = conn()
    send(s, b'GET /v1/events?follow=1 HTTP/1.1\r\nHost: x\r\n\r\n')
    socks.append(s)
time.sleep(2)
ok = 0
for s in socks:
    s.settimeout(2)
    try:
        head = s.recv(4096).split(b'\r\n')[0]
    except OSError:
        head = b''
    ok += head.startswith(b'HTTP/1.1 200')
# All of its connections are busy now: one more is refused, not queued.
s = conn()
send(s, b'GET /v1/info HTTP/1.1\r\nHost: x\r\n\r\n')
st = answer(s, 5)
print(ok, (st.split(' ') + ['none', 'none'])[1], flush=True)
time.sleep(30)
" >"$TMP/busy.out" 2>&1 &
	busy_pid=$!
	wait_until 30 test -s "$TMP/busy.out"
	read -r served refused _ <"$TMP/busy.out"
	served=${served:-999} refused=${refused:-none}
	if [ "$served" -le 128 ] 2>/dev/null && [ "$refused" = 503 ] && info2_ok; then
		ok group_member_busy_flood_cannot_lock_out_root
	else
		fail group_member_busy_flood_cannot_lock_out_root "served $served, one more: $refused"
	fi
	kill "$busy_pid" 2>/dev/null
	wait "$busy_pid" 2>/dev/null
	note "group member: $served followers served, one more answered $refused"
else
	skip group_member "the second daemon did not start: $(tail -n 3 "$TMP/daemon2.log")"
fi
d2_stop

# ---- out of fds: accept backs off instead of spinning ----
if command -v prlimit >/dev/null; then
	nofile=$(prlimit --pid "$DAEMON_PID" --nofile --output SOFT,HARD --noheadings)
	# Only the soft limit: raising a hard one back needs CAP_SYS_RESOURCE.
	prlimit --pid "$DAEMON_PID" --nofile=$(($(nfds) + 40)):"$(echo "$nofile" | awk '{print $2}')"
	ticks() { awk '{print $14 + $15}' "/proc/$DAEMON_PID/stat"; }
	python3 -c "$PY_LIB
socks = []
for i in range(300):
    try:
        socks.append(conn())
    except OSError:
        pass
open(os.environ['TMP'] + '/emfile.ready', 'w').close()
time.sleep(8)
" &
	emfile_pid=$!
	wait_until 30 test -e "$TMP/emfile.ready"
	t0=$(ticks)
	sleep 3
	used=$(($(ticks) - t0)) # clock ticks (100/s) over 3 s
	note "emfile_backoff: $used CPU ticks in 3 s while out of fds"
	if timeout 10 "$BUILD/clbsd" --socket "$SOCK" info >/dev/null 2>&1 && [ "$used" -lt 150 ]; then
		ok emfile_backoff
	else
		fail emfile_backoff "cpu ticks in 3 s: $used; info answered: $(info_ok && echo yes || echo no)"
	fi
	kill "$emfile_pid" 2>/dev/null
	wait "$emfile_pid" 2>/dev/null
	# shellcheck disable=SC2086 # two numbers
	set -- $nofile
	prlimit --pid "$DAEMON_PID" --nofile="$1:$2"
	alive && ok emfile_recovered || fail emfile_recovered "the daemon does not answer"
else
	skip emfile_backoff "prlimit is not installed"
fi

# ---- a paused event follower: the bus drops for it, with a marker, and never waits ----
# The flood goes on until the daemon says it drops for the follower (how many
# events that takes depends on the build's speed, ASan or not), then as much
# again: everything past the high mark must be dropped, not kept.
base=$(rss_kb)
out=$(python3 -c "$PY_LIB
f = conn()
f.sendall(b'GET /v1/events?follow=1 HTTP/1.1\r\nHost: x\r\n\r\n')
f.settimeout(10)
f.recv(4096)  # the head: subscribed; from now on the follower reads nothing
log = open(os.environ['TMP'] + '/daemon.log', 'rb')
log.seek(0, 2)
c = conn()
def apply():
    # Each apply publishes three events.
    c.sendall(b'POST /v1/apply HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n')
    d = b''
    while b'\r\n\r\n' not in d:
        d += c.recv(65536)
    head, _, body = d.partition(b'\r\n\r\n')
    n = int([l for l in head.split(b'\r\n') if l.lower().startswith(b'content-length')][0].split(b':')[1])
    while len(body) < n:
        body += c.recv(65536)
n = 0
seen = b''
dropping = False
t0 = time.time()
while not dropping and time.time() - t0 < 120:
    apply()
    n += 1
    if n % 10 == 0:
        seen = seen[-200:] + log.read()
        dropping = b'an event follower is' in seen
if dropping:
    for i in range(n):
        apply()
rss = open('/proc/$DAEMON_PID/status').read().split('VmRSS:')[1].split()[0]
f.settimeout(3)
data = b''
try:
    while True:
        b = f.recv(1 << 20)
        if not b:
            break
        data += b
except socket.timeout:
    pass
print(rss, data.count(b'\"type\":\"events.dropped\"'), dropping, 2 * n if dropping else n)
" 2>&1)
# shellcheck disable=SC2086 # four words
set -- $out
grow=$((${1:-999999999} - base))
note "paused_event_follower_dropped_with_marker: daemon RSS +${grow} kB after ${4:-?} applies"
if [ "$grow" -lt "$RSS_MAX_KB" ] && [ "${2:-0}" -ge 1 ] && [ "${3:-}" = True ] && alive; then
	ok paused_event_follower_dropped_with_marker
else
	fail paused_event_follower_dropped_with_marker \
		"rss +${grow} kB, markers: ${2:-?}, the daemon dropped: ${3:-?} ($out)"
fi

# The daemon raised its soft open-file limit to the hard one at start.
soft=$(awk '/^Max open files/ {print $4}' "/proc/$DAEMON_PID/limits")
hard=$(awk '/^Max open files/ {print $5}' "/proc/$DAEMON_PID/limits")
[ "$soft" = "$hard" ] && ok rlimit_nofile_raised ||
	fail rlimit_nofile_raised "soft $soft hard $hard"

# ---- a paused log follower does not grow the daemon ----
t_forge
echo '{"name":"q1","image":"forge","command":["true"],"memory":"12Q"}' >"$TMP/q.json"
code=$(post "$TMP/q.json")
[ "$code" = 400 ] && grep -q '12Q' "$TMP/body" && alive && ok size_12Q_400 ||
	fail size_12Q_400 "code $code: $(cat "$TMP/body")"
out=$(clbsd create --name q2 --memory 12Q forge true 2>&1)
rc=$?
[ $rc -ne 0 ] && echo "$out" | grep -q 12Q && alive && ok size_12Q_cli || fail size_12Q_cli "rc=$rc: $out"
clbsd inspect q1 >/dev/null 2>&1 || clbsd inspect q2 >/dev/null 2>&1 &&
	fail size_12Q_nothing_made "a container was made" || ok size_12Q_nothing_made

clbsd run -d --name spew forge sh -c 'yes spew-spew-spew-spew-spew-spew-spew' >/dev/null
sleep 1
base=$(rss_kb)
out=$(python3 -c "$PY_LIB
s = conn()
s.sendall(b'GET /v1/containers/spew/logs?follow=1 HTTP/1.1\r\nHost: x\r\n\r\n')
time.sleep(10)
rss = open('/proc/$DAEMON_PID/status').read().split('VmRSS:')[1].split()[0]
s.settimeout(5)
got = 0
t0 = time.time()
while got < (8 << 20) and time.time() - t0 < 5:
    b = s.recv(1 << 20)
    if not b:
        break
    got += len(b)
print(rss, got >> 20)
" 2>&1)
# shellcheck disable=SC2086 # the words of the answer
set -- $out
grow=$((${1:-999999999} - base))
note "paused_log_follower_bounded: daemon RSS +${grow} kB"
if [ "$grow" -lt "$RSS_MAX_KB" ] && [ "${2:-0}" -ge 1 ] && alive; then
	ok paused_log_follower_bounded
else
	fail paused_log_follower_bounded "rss +${grow} kB while paused, then read ${2:-?} MiB ($out)"
fi
# The whole log, not followed, to a reader that does not read either.
base=$(rss_kb)
out=$(python3 -c "$PY_LIB
s = conn()
s.sendall(b'GET /v1/containers/spew/logs HTTP/1.1\r\nHost: x\r\n\r\n')
time.sleep(5)
print(open('/proc/$DAEMON_PID/status').read().split('VmRSS:')[1].split()[0])
" 2>&1)
grow=$((${out:-999999999} - base))
note "paused_log_reader_bounded: daemon RSS +${grow} kB"
[ "$grow" -lt "$RSS_MAX_KB" ] && alive && ok paused_log_reader_bounded ||
	fail paused_log_reader_bounded "rss +${grow} kB"
clbsd rm -f spew >/dev/null 2>&1
# A build whose RUN writes fast, to a client that does not read.
mkdir -p "$TMP/ctx"
printf 'FROM forge\nRUN yes spew-spew-spew-spew-spew-spew-spew | head -n 1000000\n' >"$TMP/ctx/Cblockfile"
base=$(rss_kb)
out=$(python3 -c "$PY_LIB
import json
body = json.dumps({'context': os.environ['TMP'] + '/ctx', 'tag': 'spewer', 'args': {}, 'no_cache': True}).encode()
s = conn()
s.sendall(b'POST /v1/build HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n' % len(body) + body)
# Paused until the build is done, however long the RUN takes: its whole
# output (36 MB) is offered to a reader that reads nothing.
def built():
    q = conn()
    q.sendall(b'GET /v1/images/spewer HTTP/1.1\r\nHost: x\r\n\r\n')
    st = answer(q, 5)
    q.close()
    return st.startswith('HTTP/1.1 200')
peak = 0
t0 = time.time()
done = False
while not done and time.time() - t0 < 300:
    time.sleep(0.5)
    rss = int(open('/proc/$DAEMON_PID/status').read().split('VmRSS:')[1].split()[0])
    peak = max(peak, rss)
    done = built()
s.settimeout(60)
tail = b''
marks = 0
image = False
try:
    while not image and b'build_failed' not in tail:
        b = s.recv(1 << 20)
        if not b:
            break
        # Lines are short: a marker is whole in the last 200 bytes and this chunk.
        tail = tail[-200:] + b
        marks += tail.count(b'lines of output dropped') - tail[:200].count(b'lines of output dropped')
        image = b'\"image\"' in tail
except socket.timeout:
    pass
print(peak, marks, image)
" 2>&1)
# shellcheck disable=SC2086 # three words
set -- $out
grow=$((${1:-999999999} - base))
note "paused_build_reader_bounded: daemon RSS +${grow} kB"
if [ "$grow" -lt "$RSS_MAX_KB" ] && [ "${2:-0}" -ge 1 ] && [ "${3:-}" = True ] && alive; then
	ok paused_build_reader_bounded
else
	fail paused_build_reader_bounded "rss +${grow} kB at most, drop markers, image built: $out"
fi
t_done
