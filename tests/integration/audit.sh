#!/bin/bash
# The audit log (docs/audit.md): every request that changes something leaves
# exactly one record naming the peer the kernel saw (uid, pid) and its
# result; GETs leave none; a failure records its error; a configuration
# reload its generation; the files rotate by size and `clbsd audit --since`
# reads across them in order; AUDITCFG ex records an exec's argv.
. "$(dirname "$0")/../lib.sh"

# nobody is a member of a group clbsd in the daemon's mount namespace (a
# bound /etc/group, as tests/security/api.sh does), so a non-root request
# proves the uid the record names.
API_GID=64997
t_before_start() {
	{ cat /etc/group; echo "clbsd:x:$API_GID:nobody"; } >"$TMP/group"
	T_DETACH_ZFS="$T_DETACH_ZFS; mount --bind '$TMP/group' /etc/group"
	# Small files, so that a few hundred records rotate.
	printf '(host :audit (:max-size "32K" :files 4))\n' >"$CONF"
}
t_setup
t_forge
chmod o+x "$TMP" "$RUN"
member() { setpriv --reuid=65534 --regid=65534 --groups="$API_GID" "$@"; }

# Every record, one line each: an API record as "METHOD PATH STATUS UID
# CONTAINER", any other as "EVENT SOURCE RESULT UID CONTAINER" (- for what it
# lacks), so that a second record of one change (a config.reload the file
# watch adds behind a live change) is counted too.
records() {
	clbsd audit --json "$@" | python3 -c 'import json,sys
for l in sys.stdin:
    r = json.loads(l)
    g = lambda k: "-" if r.get(k) is None else str(r[k])
    if r.get("event") == "api":
        print(r["method"], r["path"], r["status"], r["uid"], r.get("container") or "-")
    else:
        print(r.get("event"), g("source"), g("result"), g("uid"), g("container"))'
}
count() { records | wc -l; }
generation() { clbsd status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["generation"])'; }

# The file watch coalesces events for 100 ms (src/daemon/watch.h) before it
# reloads: a record it would add behind a change is there well within
# SETTLE seconds, five times that window.
SETTLE=0.5

# One mutating command: exactly one new record, the one wanted (a regex on
# records' line), and nothing after it once the watch has had its chance.
# Sets GEN_DELTA to how much the configuration generation moved.
one() {
	local name=$1 want=$2
	shift 2
	local before after last all gen0
	before=$(count)
	gen0=$(generation)
	"$@" >/dev/null 2>"$TMP/err" || true
	sleep "$SETTLE"
	all=$(records)
	after=$(echo "$all" | wc -l)
	last=$(echo "$all" | tail -n 1)
	GEN_DELTA=$(($(generation) - gen0))
	if [ "$after" -eq $((before + 1)) ] && echo "$last" | grep -Eqx "$want"; then
		ok "one_record[$name]"
	else
		fail "one_record[$name]" "$before -> $after records; new: $(echo "$all" | tail -n +$((before + 1)) | tr '\n' ';'); stderr: $(head -c 300 "$TMP/err")"
	fi
}
# The generation after the last one(): moved by exactly $2.
gen_moved() {
	[ "$GEN_DELTA" = "$2" ] && ok "generation[$1]" || fail "generation[$1]" "moved by $GEN_DELTA, want $2"
}

one run 'POST /v1/containers 201 0 a1|POST /v1/containers 200 0 a1' clbsd run -d --name a1 forge sleep 600
one stop 'POST /v1/containers/a1/stop 200 0 a1' clbsd stop -t 0 a1
one start 'POST /v1/containers/a1/start 200 0 a1' clbsd start a1
one restart 'POST /v1/containers/a1/restart 200 0 a1' clbsd restart -t 0 a1
one exec 'POST /v1/containers/a1/exec 200 0 a1' clbsd exec a1 true
one snapshot 'POST /v1/containers/a1/snapshots 20[01] 0 a1' clbsd snapshot a1 s1
one kill 'POST /v1/containers/a1/kill 20[04] 0 a1' clbsd kill a1
one tag 'POST /v1/images/forge/tag 200 0 -' clbsd image tag forge forge2
one image_rm 'DELETE /v1/images/forge2 20[04] 0 -' clbsd image rm forge2
one rm 'DELETE /v1/containers/a1 204 0 a1' clbsd rm -f a1

# More of the routes that change something.
clbsd run -d --name b1 forge sleep 600 >/dev/null
clbsd snapshot b1 s1 >/dev/null
one clone 'POST /v1/containers/b1/clone 201 0 (b1|c1)' clbsd clone b1 c1
one rollback 'POST /v1/containers/b1/rollback 200 0 b1' clbsd rollback -t 0 b1 s1
one export 'POST /v1/containers/b1/export 200 0 b1' clbsd export -o "$TMP/b1.clbsd" b1
one network_create 'POST /v1/networks 20[01] 0 -' clbsd network create --subnet 10.231.7.0/24 aunet
one network_rm 'DELETE /v1/networks/aunet 20[04] 0 -' clbsd network rm aunet
clbsd image export forge -o "$TMP/forge.tar" >/dev/null
one image_load 'POST /v1/images/load 20[01] 0 -' clbsd image load --name loaded:1 "$TMP/forge.tar"
clbsd image tag forge dangling:1 >/dev/null
one image_prune 'POST /v1/images/prune 200 0 -' clbsd image prune
clbsd rm -f b1 c1 >/dev/null

# Declared containers: a change that writes the live file or reloads the
# configuration is the request's record alone (the watch sees the daemon's
# own write and the files apply loaded, and must not reload them again), and
# moves the generation by one.
printf '(host :audit (:max-size "32K" :files 4))
(container d1 :image "forge" :command ("sleep" "600"))
' >"$TMP/next.conf"
# The daemon is stopped while the file changes and apply is sent, so that
# apply reaches it before the watch's 100 ms have passed (the order a quick
# operator gets): the watch then finds files apply loaded already.
apply_racing_watch() {
	kill -STOP "$DAEMON_PID"
	cp "$TMP/next.conf" "$CONF"
	clbsd apply &
	local ap=$!
	sleep 0.2
	kill -CONT "$DAEMON_PID"
	wait "$ap"
}
one apply 'POST /v1/apply 200 0 -' apply_racing_watch
gen_moved apply 1
clbsd inspect d1 >/dev/null 2>&1 && ok apply_created || fail apply_created "$(clbsd ps -a)"
one patch 'PATCH /v1/containers/d1 200 65534 d1' member "$BUILD/clbsd" --socket "$SOCK" update d1 --memory 64M
gen_moved patch 1
one stop_declared 'POST /v1/containers/d1/stop 200 0 d1' clbsd stop -t 0 d1
gen_moved stop_declared 1
one start_declared 'POST /v1/containers/d1/start 200 0 d1' clbsd start d1
gen_moved start_declared 1
# An edit the watch loads is its one config.reload record; apply of those
# files afterwards is its own record, and loads them again (an explicit
# load, as SIGHUP: it walks :file-change trees again, security/files.sh).
printf '(host :audit (:max-size "32K" :files 4))
(container d1 :image "forge" :command ("sleep" "601"))
' >"$TMP/next.conf"
one edit 'config.reload watch loaded - -' cp "$TMP/next.conf" "$CONF"
gen_moved edit 1
one apply_loaded 'POST /v1/apply 200 0 -' clbsd apply
gen_moved apply_loaded 1
# Undeclared: the reconciler removes it (the live file's overrides of it
# mean nothing then).
printf '(host :audit (:max-size "32K" :files 4))\n' >"$CONF"
clbsd apply >/dev/null

# A member of group clbsd: the record names its uid, not root's.
one member_run 'POST /v1/containers 20[01] 65534 m1' member "$BUILD/clbsd" --socket "$SOCK" run -d --name m1 forge sleep 600
if clbsd audit --json | tail -n 1 | python3 -c 'import json,sys
r = json.loads(sys.stdin.read())
assert r["client"] == "cli" and r["pid"] > 1 and r["gid"] == 65534 and r["request_id"], r'; then
	ok record_names_client_pid_request_id
else
	fail record_names_client_pid_request_id "$(clbsd audit --json | tail -n 1)"
fi

# Reading leaves nothing.
before=$(count)
clbsd ps -a >/dev/null
clbsd inspect m1 >/dev/null
clbsd logs m1 >/dev/null 2>&1
clbsd events >/dev/null
clbsd status >/dev/null
clbsd audit >/dev/null
after=$(count)
[ "$before" = "$after" ] && ok gets_leave_none || fail gets_leave_none "$before -> $after"

# A failed request records its status and error.
one failed 'POST /v1/containers/nosuch/start 404 0 nosuch' clbsd start nosuch
if clbsd audit --json --container nosuch | tail -n 1 | grep -q '"error":"no container'; then
	ok failure_records_error
else
	fail failure_records_error "$(clbsd audit --json --container nosuch | tail -n 1)"
fi

# --container keeps that container's records only.
[ "$(records --container m1 | awk '{print $5}' | sort -u)" = m1 ] && ok filter_container ||
	fail filter_container "$(records --container m1)"

# A reload by SIGHUP records the generation it loaded, or the error that kept
# the last one (a second (host) form is refused).
reload_rec() {
	clbsd audit --json | python3 -c 'import json,sys
rs = [json.loads(l) for l in sys.stdin]
rs = [r for r in rs if r.get("event") == "config.reload" and r.get("source") == "sighup"]
print(len(rs), rs[-1]["generation"], rs[-1]["result"], "error" in rs[-1]) if rs else print(0)'
}
sighup_recs() { [ "$(reload_rec | cut -d" " -f1)" -ge "$1" ]; }
printf '(host :audit (:max-size "32K" :files 4))
(host)
' >"$CONF"
sleep 0.3
kill -HUP "$DAEMON_PID"
if wait_until 5 sighup_recs 1 && [ "$(reload_rec | cut -d" " -f3-)" = "rejected True" ]; then
	ok reload_records_rejection
else
	fail reload_records_rejection "$(reload_rec)"
fi
printf '(host :audit (:max-size "32K" :files 4))
; reloaded
' >"$CONF"
sleep 0.3
kill -HUP "$DAEMON_PID"
if wait_until 5 sighup_recs 2; then
	gen=$(clbsd status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["generation"])')
	got=$(reload_rec)
	# The watch loaded the edit before (0.3 s); SIGHUP reloads whatever the
	# files are, and its generation is the one in force.
	if [ "$(echo "$got" | cut -d" " -f3)" = loaded ] && [ "$(echo "$got" | cut -d" " -f2)" = "$gen" ]; then
		ok reload_records_generation
	else
		fail reload_records_generation "record: $got, status generation: $gen"
	fi
else
	fail reload_records_generation "no second config.reload record from sighup: $(reload_rec)"
fi

# Rotation: 200 refused requests (each a record) take the log past 32K a few
# times; the files keep increasing seq, and --since reads across them.
mark=$(date -u +%Y-%m-%dT%H:%M:%S.%NZ)
sleep 0.01
python3 - "$SOCK" <<'EOF'
import socket, sys
for i in range(200):
    s = socket.socket(socket.AF_UNIX)
    s.connect(sys.argv[1])
    s.sendall(b"POST /v1/containers/rot%d/start HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n" % i)
    while s.recv(4096):
        pass
    s.close()
EOF
n_rot=$(find "$ROOT/audit" -name 'audit.log.*' | wc -l)
got=$(clbsd audit --json --since "$mark" | grep -c '"path":"/v1/containers/rot')
if [ "$n_rot" -ge 1 ] && [ "$got" = 200 ]; then
	ok rotation_since_reads_across_files
else
	fail rotation_since_reads_across_files "$n_rot rotated files, $got of 200 records since $mark"
fi
# On disk, oldest file first, seq goes up by one from record to record.
if python3 - "$ROOT/audit" <<'EOF'; then
import json, os, sys
d = sys.argv[1]
files = sorted((f for f in os.listdir(d) if f.startswith("audit.log.")), key=lambda f: -int(f.rsplit(".", 1)[1]))
seqs = []
for f in files + ["audit.log"]:
    st = os.stat(os.path.join(d, f))
    assert st.st_mode & 0o777 == 0o600, (f, oct(st.st_mode))
    seqs += [json.loads(l)["seq"] for l in open(os.path.join(d, f))]
assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), seqs
EOF
	ok rotation_keeps_order
else
	fail rotation_keeps_order "$(ls -l "$ROOT/audit")"
fi

# AUDITCFG ex: an exec into a container of the image records its argv; a
# container of an image without it does not.
CTX="$TMP/ctx"
mkdir -p "$CTX"
printf 'FROM forge\nAUDITCFG "ex,lo"\nCMD ["sleep", "600"]\n' >"$CTX/Cblockfile"
clbsd build -t audited:1 "$CTX" >/dev/null 2>&1
clbsd run -d --name ex1 audited:1 >/dev/null
# A build is recorded when it ends, with its result.
printf 'FROM forge\nCOPY missing-file /x\n' >"$TMP/broken.cbf"
clbsd build -t broken:1 -f "$TMP/broken.cbf" "$CTX" >/dev/null 2>&1
builds=$(clbsd audit --json | grep '"path":"/v1/build"')
if [ "$(echo "$builds" | wc -l)" = 2 ] && echo "$builds" | head -n 1 | grep -q '"status":200' &&
	! echo "$builds" | head -n 1 | grep -q '"error"' &&
	echo "$builds" | tail -n 1 | grep -q '"error":".*missing-file'; then
	ok build_records_its_result
else
	fail build_records_its_result "$builds"
fi
clbsd exec ex1 echo audited-argv >/dev/null
clbsd exec m1 echo plain-argv >/dev/null
last_exec() {
	clbsd audit --json --container "$1" | grep '"path":"/v1/containers/'"$1"'/exec"' | tail -n 1
}
if last_exec ex1 | grep -q '"argv":\["echo","audited-argv"\]' && ! last_exec m1 | grep -q argv; then
	ok auditcfg_ex_records_argv
else
	fail auditcfg_ex_records_argv "ex1: $(last_exec ex1); m1: $(last_exec m1)"
fi

# A console session (straight to the shim) is recorded; with lo, its end too.
timeout 1 "$BUILD/clbsd" --socket "$SOCK" console ex1 </dev/null >/dev/null 2>&1
two_console_recs() { [ "$(clbsd audit --json --container ex1 | grep -c '"event":"console\.')" -ge 2 ]; }
if wait_until 5 two_console_recs; then
	ok console_session_recorded
else
	fail console_session_recorded "$(clbsd audit --json --container ex1 | grep console)"
fi

# -f follows: a record written after it started arrives.
timeout 10 "$BUILD/clbsd" --socket "$SOCK" audit -f --json --container fol >"$TMP/follow" &
FP=$!
sleep 0.3
clbsd start fol >/dev/null 2>&1
if wait_until 5 grep -q '"path":"/v1/containers/fol/start"' "$TMP/follow"; then
	ok follow_sees_new
else
	fail follow_sees_new "$(cat "$TMP/follow")"
fi
kill "$FP" 2>/dev/null
wait "$FP" 2>/dev/null

# After a restart, the old records are there and numbering goes on.
last_seq() { clbsd audit --json | tail -n 1 | python3 -c 'import json,sys; print(json.load(sys.stdin)["seq"])'; }
before=$(last_seq)
t_kill_daemon TERM
t_start_daemon || exit 1
if clbsd audit --json --container nosuch | grep -q '"status":404' &&
	[ "$(clbsd audit --json | python3 -c 'import json,sys
s = [json.loads(l)["seq"] for l in sys.stdin]
print(int(s == list(range(s[0], s[0] + len(s)))))')" = 1 ] && [ "$(last_seq)" -gt "$before" ]; then
	ok restart_keeps_records_and_numbering
else
	fail restart_keeps_records_and_numbering "last seq before $before, after $(last_seq)"
fi

# The human form: TIME STATUS METHOD PATH key=value.
clbsd audit --container nosuch | tail -n 1 | grep -Eq '^[0-9T:.-]+Z 404 POST /v1/containers/nosuch/start .*uid=0' &&
	ok human_format || fail human_format "$(clbsd audit --container nosuch | tail -n 1)"
# A request path with an escape sequence (%1b) is shown escaped, never raw.
curl -s -o /dev/null --unix-socket "$SOCK" -X POST 'http://clbsd/v1/containers/%1b%5b31mred/stop'
if clbsd audit | grep -F 'u001B[31mred/stop' | grep -vq $'\x1b' &&
	! clbsd audit | grep -q $'\x1b'; then
	ok human_format_escapes_control_bytes
else
	fail human_format_escapes_control_bytes "$(clbsd audit | tail -n 1 | od -c | head -5)"
fi
# A follower that falls behind more than the ring holds (stopped, while
# thousands of requests come) is told what it missed: an audit.gap line,
# never a silent jump in seq.
"$BUILD/clbsd" --socket "$SOCK" audit -f --json >"$TMP/behind" &
FP=$!
sleep 0.3
kill -STOP "$FP"
curl -s -o /dev/null --unix-socket "$SOCK" -X POST 'http://clbsd/v1/containers/g[1-12000]/stop'
kill -CONT "$FP"
caught_up() { tail -n 1 "$TMP/behind" | grep -q '"path":"/v1/containers/g12000/stop"'; }
wait_until 20 caught_up
kill "$FP" 2>/dev/null
wait "$FP" 2>/dev/null
if verdict=$(python3 -c 'import json,sys
prev, gap, gaps, bad = None, 0, 0, []
for l in open(sys.argv[1]):
    r = json.loads(l)
    if r.get("event") == "audit.gap":
        gap, gaps = r["missed"], gaps + 1
        continue
    if prev is not None and r["seq"] != prev + 1 + gap:
        bad.append((prev, r["seq"], gap))
    prev, gap = r["seq"], 0
print(gaps, bad[:3])
sys.exit(1 if bad or not gaps or prev is None else 0)' "$TMP/behind") && caught_up; then
	ok follow_behind_sees_gap
else
	fail follow_behind_sees_gap "$verdict; last: $(tail -n 1 "$TMP/behind" | head -c 300)"
fi
t_done
