#!/bin/bash
# clbsdd supervises the Lisp control plane when the configuration has
# (host :lisp ...): started with the options the form gives, its output in
# the daemon's log, restarted with backoff when it exits, shown by
# `clbsd status`, stopped when the form goes and when the daemon stops.
# A stand-in script takes clbsd-lisp's place (:command), so no SBCL is needed.
. "$(dirname "$0")/../lib.sh"
t_setup
FAKE="$TMP/fake-lisp"
cat >"$FAKE" <<EOF2
#!/bin/sh
echo "fake-lisp \$*"
[ -e "$TMP/crash" ] && exit 3
exec sleep 300
EOF2
chmod +x "$FAKE"
lisp() { clbsd --json status | python3 -c 'import json,sys; v=json.load(sys.stdin)["lisp"]
for k in sys.argv[1].split("."): v=v[k] if v is not None else None
print(v)' "$1"; }

cat >"$CONF" <<C
(host :lisp (:swank "127.0.0.1:4999" :init "/etc/clbsd/init.lisp" :command "$FAKE"))
C
clbsd apply >/dev/null
wait_until 10 grep -q 'lisp: fake-lisp --socket .* --swank-interface 127.0.0.1 --swank-port 4999 --init /etc/clbsd/init.lisp' "$TMP/daemon.log" &&
	ok started_with_options || fail started_with_options "$(grep lisp "$TMP/daemon.log")"
pid=$(lisp pid)
[ "$(lisp state)" = running ] && kill -0 "$pid" 2>/dev/null && ok status_shows_it ||
	fail status_shows_it "$(clbsd --json status)"
clbsd status | grep -q "lisp: running (pid $pid)" && ok human_status || fail human_status "$(clbsd status)"

# It exits: restarted with backoff (1 s, then 2 s ...).
touch "$TMP/crash"
kill "$pid"
wait_until 10 sh -c '[ "$(grep -c "control plane exited with 3; restarting" "'"$TMP/daemon.log"'")" -ge 2 ]' &&
	ok restarted_with_backoff || fail restarted_with_backoff "$(grep lisp "$TMP/daemon.log")"
[ "$(lisp last_exit)" = "exited with 3" ] && ok last_exit_shown || fail last_exit_shown "$(lisp last_exit)"
rm -f "$TMP/crash"
wait_until 15 sh -c '[ "$(clbsd --json status | grep -c "\"running\"")" != 0 ]'
[ "$(lisp state)" = running ] && [ "$(lisp restarts)" -ge 2 ] && ok running_again ||
	fail running_again "$(clbsd --json status)"

# New options: restarted with them; the form gone: stopped.
pid=$(lisp pid)
sed -i 's/4999/4998/' "$CONF"
clbsd apply >/dev/null
wait_until 10 grep -q -- '--swank-port 4998' "$TMP/daemon.log" && ! kill -0 "$pid" 2>/dev/null &&
	ok new_options_restart || fail new_options_restart "$(grep lisp "$TMP/daemon.log")"
pid=$(lisp pid)
: >"$CONF"
clbsd apply >/dev/null
wait_until 10 sh -c "! kill -0 $pid 2>/dev/null" && [ "$(lisp state)" = None ] &&
	ok stopped_without_form || fail stopped_without_form "$(clbsd --json status)"

# The daemon's stop stops it.
cat >"$CONF" <<C
(host :lisp (:command "$FAKE"))
C
clbsd apply >/dev/null
wait_until 10 sh -c '[ "$(clbsd --json status | grep -c "\"running\"")" != 0 ]'
pid=$(lisp pid)
t_kill_daemon TERM
! kill -0 "$pid" 2>/dev/null && ok stops_with_daemon || fail stops_with_daemon "pid $pid alive"
t_start_daemon
wait_until 10 sh -c '[ "$(clbsd --json status | grep -c "\"running\"")" != 0 ]'
pid=$(lisp pid)
t_kill_daemon KILL
wait_until 5 sh -c "! kill -0 $pid 2>/dev/null" && ok gone_with_killed_daemon ||
	fail gone_with_killed_daemon "pid $pid alive"
t_start_daemon
: >"$CONF"
clbsd apply >/dev/null
t_done
