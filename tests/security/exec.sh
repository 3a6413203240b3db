#!/bin/bash
# Issue 14, item 1: a process the host starts in a running container (clbsd
# exec, a :cmd health check, an (:exec ...) hook) must be out of reach of the
# container until it is locked down: not dumpable before it joins the
# container, nothing of the shim's open, seccomp and no_new_privs from the
# credential change on, and never the host's clbsd-shim as its executable
# (CVE-2016-9962, CVE-2019-5736). The attacks run inside the container
# (helpers/exec_race.c) in a loop for a bounded time while the host execs
# into it in a loop, and must succeed zero times.
. "$(dirname "$0")/../lib.sh"
H="$BUILD/tests/security/exec_race"
DUR=${EXEC_RACE_SECONDS:-12}
t_before_start() {
	[ -x "$H" ] || { skip all "$H is not built (make BUILD=$BUILD all)"; return 1; }
}
t_setup
t_forge
SECRET="tok-$$-$RANDOM$RANDOM"
shim_sum=$(sha256sum <"$BUILD/clbsd-shim")

clbsd run -d --name victim -v "$H:/exec_race:ro" forge sleep 600 >/dev/null ||
	{ fail victim "cannot start the container"; t_done; exit; }

# The exec'd process as its command sees itself: locked, fds 0-2 only.
if out=$(clbsd exec victim /exec_race --self 2>&1); then
	ok exec_locked_when_it_runs
else
	fail exec_locked_when_it_runs "$out"
fi
exe=$(echo "$out" | awk '/^exe / {print $2}')
[ "$exe" = /exec_race ] && ok exec_exe_is_the_command || fail exec_exe_is_the_command "$out"

# A command whose interpreter is /proc/self/exe runs whatever the process
# was before its exec: that must never be the host's clbsd-shim file.
clbsd exec victim sh -c 'printf "#!/proc/self/exe\n" >/tmp/selfexe && chmod +x /tmp/selfexe'

# The race: the attack loops inside while the host execs, with a secret in
# the exec's environment, and (every third one) the /proc/self/exe script.
clbsd exec victim /exec_race "$DUR" >"$TMP/race.out" 2>&1 &
apid=$!
sleep 0.3
n=0
while kill -0 "$apid" 2>/dev/null; do
	if [ $((n % 3)) -eq 2 ]; then
		clbsd exec -e "TOKEN=$SECRET" victim /tmp/selfexe >/dev/null 2>&1
	else
		clbsd exec -e "TOKEN=$SECRET" victim true >/dev/null 2>&1
	fi
	n=$((n + 1))
done
wait "$apid"
rc=$?
summary=$(grep '^attempts ' "$TMP/race.out")
echo "# exec race: $n host execs; $summary"
grep '^ESCAPE' "$TMP/race.out" | head -n 5 | sed 's/^/# /'
case $rc in
1) ok exec_race_refused ;;
3) fail exec_race_refused "the attack never saw an exec'd process (nothing proved): $(cat "$TMP/race.out")" ;;
*) fail exec_race_refused "status $rc: $(head -c 2000 "$TMP/race.out")" ;;
esac
targets=$(echo "$summary" | sed -n 's/.*targets=\([0-9]*\).*/\1/p')
[ "${targets:-0}" -ge 10 ] && ok exec_race_saw_execs ||
	fail exec_race_saw_execs "only ${targets:-0} targets seen in ${DUR}s ($n execs): the test proves nothing"
grep -q "$SECRET" "$TMP/race.out" && fail exec_secret_not_leaked "the exec's TOKEN reached the attacker" ||
	ok exec_secret_not_leaked

# Nothing on the host changed: the shim binary, the container's shim log.
[ "$(sha256sum <"$BUILD/clbsd-shim")" = "$shim_sum" ] && ok host_shim_unchanged ||
	fail host_shim_unchanged "clbsd-shim changed"
clbsd exec victim true >/dev/null && ok victim_still_works || fail victim_still_works "exec failed"

# :cmd health checks take the same path: a check that passes only when it
# is locked down and holds nothing but 0-2, attacked while it runs.
# (:exec ...) hooks too: one at start and one every second, each failing
# (hook.failed) unless it is locked down when it runs.
cat >"$CONF" <<C
(container hc :image "forge" :command ("sleep" "300")
  :volumes ((:bind "$H" :path "/exec_race" :ro t))
  :health (:cmd ("/exec_race" "--self") :interval "200ms" :timeout "200ms" :retries 1)
  :on ((:start (:exec "/exec_race" "--self")) (:every "1s" (:exec "/exec_race" "--self"))))
C
clbsd apply >/dev/null 2>&1
health() { clbsd --json inspect hc 2>/dev/null | python3 -c 'import json,sys
h=json.load(sys.stdin)[0].get("health"); print(h["status"] if h else "none")' 2>/dev/null; }
wait_until 15 sh -c "[ \"\$(BUILD=$BUILD; $BUILD/clbsd --socket $SOCK --json inspect hc 2>/dev/null | python3 -c 'import json,sys; print((json.load(sys.stdin)[0].get(\"health\") or {}).get(\"status\"))' 2>/dev/null)\" = healthy ]" &&
	ok health_cmd_locked_when_it_runs || fail health_cmd_locked_when_it_runs "health $(health)"
hdur=$((DUR / 2))
clbsd exec hc /exec_race "$hdur" >"$TMP/hrace.out" 2>&1
rc=$?
hsum=$(grep '^attempts ' "$TMP/hrace.out")
echo "# health race: $hsum"
grep '^ESCAPE' "$TMP/hrace.out" | head -n 5 | sed 's/^/# /'
case $rc in
1) ok health_race_refused ;;
3) fail health_race_refused "the attack never saw a health check (nothing proved)" ;;
*) fail health_race_refused "status $rc: $(head -c 2000 "$TMP/hrace.out")" ;;
esac
[ "$(health)" = healthy ] && ok health_still_healthy || fail health_still_healthy "$(health)"
hooks_passed() {
	hooks_ok=$(clbsd events --type hook.finished --container hc --json 2>/dev/null | grep -c '"exit_code":0')
	[ "$hooks_ok" -ge 2 ]
}
wait_until 10 hooks_passed
hooks_bad=$(clbsd events --type hook.failed --container hc --json 2>/dev/null | wc -l)
[ "$hooks_ok" -ge 2 ] && [ "$hooks_bad" -eq 0 ] && ok exec_hook_locked_when_it_runs ||
	fail exec_hook_locked_when_it_runs "$hooks_ok hooks passed, $hooks_bad failed: $(clbsd events --type hook --container hc 2>&1 | tail -n 3)"
t_done
