#!/bin/bash
# Docker containers under the same model, on a real private dockerd: the
# commands, the exit path (code, restart policy, hook), ownership by labels,
# declared containers across kinds, adoption after restarting clbsdd and
# dockerd, an endpoint down at start, and the refusals that leave nothing.
. "$(dirname "$0")/../lib.sh"

IMG="clbsd-bb-$$:1"
t_before_start() { t_docker_before_start "$IMG"; }
t_setup
# After t_setup, whose trap this replaces: clbsd's containers, then dockerd, then the rest.
trap 'rc=$?; t_docker_cleanup "$IMG"; (exit $rc); t_cleanup' EXIT
t_forge

# A command that stops at once on SIGTERM (a shell as PID 1 ignores signals it has no trap for).
LONG='trap "exit 0" TERM; sleep 1000 & wait'
LONG_SEXP='trap \"exit 0\" TERM; sleep 1000 & wait'

# ---- the commands on one docker container ----
name=$(clbsd run -d --kind docker --network none --name web "$IMG" sh -c "echo out-line; echo err-line >&2; $LONG")
[ "$name" = web ] && [ "$(field web state)" = running ] && [ "$(field web kind)" = docker ] &&
	ok run_docker || fail run_docker "name=$name state=$(field web state) kind=$(field web kind)"
clbsd ps --format '{{.Name}} {{.Kind}}' | grep -qx 'web docker' && clbsd ps | head -1 | grep -q KIND &&
	ok ps_shows_kind || fail ps_shows_kind "$(clbsd ps)"
did=$(field web docker.id)
[ -n "$did" ] && [ "$(dk inspect -f '{{.Id}}' web)" = "$did" ] && ok inspect_has_docker_id ||
	fail inspect_has_docker_id "clbsd=$did docker=$(dk inspect -f '{{.Id}}' web 2>&1)"
labels=$(dk inspect -f '{{index .Config.Labels "org.clbsd.managed"}} {{index .Config.Labels "org.clbsd.name"}} {{index .Config.Labels "org.clbsd.instance"}} {{.HostConfig.RestartPolicy.Name}}' web)
[ "$labels" = "true web $(cat "$ROOT/docker-instance") no" ] && ok labels_and_no_docker_restart ||
	fail labels_and_no_docker_restart "$labels"
# The spec's entrypoint, labels and capabilities reach dockerd; our labels win over the user's.
clbsd run -d --kind docker --network none --name lab --label team=home --label org.clbsd.name=evil \
	--cap-add NET_ADMIN --entrypoint /bin/echo "$IMG" via-entrypoint >/dev/null
got=$(dk inspect -f '{{index .Config.Labels "team"}} {{index .Config.Labels "org.clbsd.name"}} {{.Config.Entrypoint}} {{.HostConfig.CapAdd}}' lab)
[ "$got" = "home lab [/bin/echo] [NET_ADMIN]" ] && ok entrypoint_labels_caps ||
	fail entrypoint_labels_caps "$got"
clbsd rm -f lab >/dev/null
[ "$(dk inspect -f '{{.State.Pid}}' web)" = "$(field web pid)" ] && ok pid_is_dockers ||
	fail pid_is_dockers "docker=$(dk inspect -f '{{.State.Pid}}' web) clbsd=$(field web pid)"

wait_until 5 sh -c "$BUILD/clbsd --socket $SOCK logs web 2>&1 | grep -q err-line"
clbsd logs web >"$TMP/lo" 2>"$TMP/le"
grep -qx out-line "$TMP/lo" && grep -qx err-line "$TMP/le" && ok logs_split_streams ||
	fail logs_split_streams "stdout=$(cat "$TMP/lo") stderr=$(cat "$TMP/le")"
[ "$(clbsd logs --tail 1 web 2>&1 | wc -l)" -eq 1 ] && ok logs_tail ||
	fail logs_tail "$(clbsd logs --tail 1 web 2>&1)"
clbsd logs -t web 2>/dev/null | grep -Eq '^20[0-9-]+T[0-9:.]+Z out-line$' && ok logs_timestamps ||
	fail logs_timestamps "$(clbsd logs -t web 2>&1)"

out=$(clbsd exec web sh -c 'echo in-out; echo in-err >&2; exit 3' 2>"$TMP/xe")
rc=$?
[ "$out" = in-out ] && [ "$(cat "$TMP/xe")" = in-err ] && [ $rc -eq 3 ] && ok exec_streams_and_code ||
	fail exec_streams_and_code "out=$out err=$(cat "$TMP/xe") rc=$rc"
if ! clbsd exec web nosuchcommand >/dev/null 2>&1; then
	ok exec_missing_command_fails
else
	fail exec_missing_command_fails "rc=0"
fi

# Interactive exec (docker_exec_it.sh has the terminal): stdin's end and the status.
msg=$(timeout 30 "$BUILD/clbsd" --socket "$SOCK" exec -i web sh -c 'cat; exit 6' </dev/null 2>&1)
rc=$?
[ $rc -eq 6 ] && [ -z "$msg" ] && ok exec_interactive || fail exec_interactive "rc=$rc $msg"
clbsd stats --no-stream web | grep -q '^web ' && ok stats ||
	fail stats "$(clbsd stats --no-stream web 2>&1)"
# Snapshots and exports of docker containers are their volumes' and state's
# (tests/integration/docker_store.sh covers them): here, one of a container without volumes.
clbsd snapshot web s0 >/dev/null && clbsd snapshots web | grep -q '^s0 ' &&
	clbsd export -o "$TMP/web.clbsd" web >/dev/null && [ -s "$TMP/web.clbsd" ] &&
	ok snapshot_export_of_docker || fail snapshot_export_of_docker "$(clbsd snapshot web s0b 2>&1)"

start=$SECONDS
clbsd stop -t 5 web >/dev/null
[ "$(field web state)" = exited ] && [ "$(field web exit_code)" = 0 ] && [ $((SECONDS - start)) -lt 5 ] &&
	[ "$(dk inspect -f '{{.State.Running}}' web)" = false ] && ok stop || fail stop "state=$(field web state) code=$(field web exit_code)"
clbsd start web >/dev/null && [ "$(field web state)" = running ] &&
	[ "$(field web docker.id)" = "$did" ] && ok start_again_same_container ||
	fail start_again_same_container "state=$(field web state) id=$(field web docker.id)"
clbsd kill -s KILL web >/dev/null
wait_until 10 sh -c "[ \"\$($BUILD/clbsd --socket $SOCK --json inspect web | python3 -c 'import json,sys; print(json.load(sys.stdin)[0][\"state\"])')\" = exited ]"
[ "$(field web exit_code)" = 137 ] && ok kill_exit_code || fail kill_exit_code "$(field web state) $(field web exit_code)"
t0=$(field web started_at)
clbsd restart web >/dev/null && [ "$(field web state)" = running ] && [ "$(field web started_at)" != "$t0" ] &&
	ok restart || fail restart "state=$(field web state)"

clbsd run -d --kind docker --network none --name seven "$IMG" sh -c 'sleep 1; exit 7' >/dev/null
code=$(timeout 20 "$BUILD/clbsd" --socket "$SOCK" wait seven)
[ "$code" = 7 ] && ok wait_prints_exit_code || fail wait_prints_exit_code "got $code"
clbsd events --container seven --type container.exited 2>/dev/null | grep -q 'exit_code=7' &&
	ok exit_event || fail exit_event "$(clbsd events --container seven 2>&1)"

# logs -f follows until the container stops, then ends on its own.
clbsd run -d --kind docker --network none --name ticker "$IMG" \
	sh -c 'sleep 0.5; for i in 1 2 3; do echo tick$i; sleep 0.4; done' >/dev/null
out=$(timeout 15 "$BUILD/clbsd" --socket "$SOCK" logs -f ticker 2>&1)
rc=$?
[ $rc -eq 0 ] && [ "$(echo "$out" | tr '\n' ' ')" = "tick1 tick2 tick3 " ] && ok logs_follow ||
	fail logs_follow "rc=$rc out=$out"
clbsd rm -f ticker >/dev/null
out=$(clbsd rm -f web seven 2>&1)
! clbsd ps -a | grep -q '^web ' && ! dk inspect web >/dev/null 2>&1 && ! dk inspect seven >/dev/null 2>&1 &&
	ok rm_removes_in_dockerd || fail rm_removes_in_dockerd "$out / $(clbsd ps -a) / $(dk ps -a)"

# run without -d: the output and the exit status, as with a native container; --rm leaves nothing.
clbsd run --rm --kind docker --network none --name once "$IMG" sh -c 'echo out; echo err >&2; exit 3' \
	>"$TMP/ro" 2>"$TMP/re"
rc=$?
[ $rc -eq 3 ] && [ "$(cat "$TMP/ro")" = out ] && [ "$(cat "$TMP/re")" = err ] &&
	! clbsd ps -a | grep -q '^once ' && ! dk inspect once >/dev/null 2>&1 && ok run_attached_rm ||
	fail run_attached_rm "rc=$rc out=$(cat "$TMP/ro") err=$(cat "$TMP/re") $(clbsd ps -a)"

# ---- refusals that leave nothing ----
dk run -d --name taken --network none "$IMG" sh -c "$LONG" >/dev/null
tid=$(dk inspect -f '{{.Id}}' taken)
msg=$(clbsd run -d --kind docker --network none --name taken "$IMG" true 2>&1)
rc=$?
[ $rc -ne 0 ] && echo "$msg" | grep -q 'named taken' && echo "$msg" | grep -q 'did not make' &&
	[ "$(dk inspect -f '{{.Id}} {{.State.Running}}' taken)" = "$tid true" ] &&
	! clbsd ps -a | grep -q '^taken ' && ok unmanaged_same_name_is_conflict_untouched ||
	fail unmanaged_same_name_is_conflict_untouched "$msg / $(dk ps -a)"
msg=$(clbsd run -d --kind docker --network none --memory 5M --name small "$IMG" true 2>&1)
rc=$?
[ $rc -ne 0 ] && echo "$msg" | grep -q '6 MiB' && ! clbsd ps -a | grep -q '^small ' &&
	! dk inspect small >/dev/null 2>&1 && [ ! -e "$ROOT/containers/small" ] &&
	ok memory_below_6m_refused_nothing_left || fail memory_below_6m_refused_nothing_left "$msg"
msg=$(clbsd run -d --kind docker --network none --name nope "clbsd-no-such-image-$$:1" true 2>&1)
rc=$?
[ $rc -ne 0 ] && echo "$msg" | grep -q 'No such image' && ! clbsd ps -a | grep -q '^nope ' &&
	[ ! -e "$ROOT/containers/nope" ] && ok missing_image_refused_nothing_left ||
	fail missing_image_refused_nothing_left "$msg"

# ---- declared: both kinds in one pass, hooks, restart policy, recreate ----
cat >"$CONF" <<EOF
(host :docker (:endpoint "unix://$DOCKER_SOCK") :metrics (:listen "127.0.0.1:9323"))
(container db :kind docker :image "$IMG" :network none
  :env (("V" . "1"))
  :health (:cmd ("sh" "-c" "test \$V = 1") :interval "500ms" :timeout "500ms")
  :command ("sh" "-c" "$LONG_SEXP"))
(container app :image "forge" :network none :command ("sleep" "1000") :depends-on (db))
(container flaky :kind docker :image "$IMG" :network none :restart on-failure
  :command ("sh" "-c" "sleep 0.5; exit 3")
  :on ((:exit "echo \$CLBSD_EXIT_CODE >> $TMP/hook.out")))
EOF
clbsd apply >/dev/null
wait_until 20 sh -c "$BUILD/clbsd --socket $SOCK ps --format '{{.Name}} {{.Kind}} {{.State}}' | sort | tr '\n' ' ' | grep -q 'app native running db docker running'" &&
	ok declared_both_kinds_converge || fail declared_both_kinds_converge "$(clbsd ps -a)"
wait_until 10 sh -c "$BUILD/clbsd --socket $SOCK --json inspect db | grep -q '\"status\": \"healthy\"'" &&
	ok health_cmd_through_exec || fail health_cmd_through_exec "$(clbsd --json inspect db | grep -A3 health)"
# Metrics of a docker container (docs/metrics.md): its record's state and
# health, and the kernel's numbers of the cgroup dockerd made for it.
nsenter --net="/proc/$DAEMON_PID/ns/net" ip link set lo up
metric() { # NAME: db's sample of it
	awk -v m="$1" '$1 ~ "^" m "[{]" && $1 ~ /name="db"/ && $1 ~ /kind="docker"/ { print $2; exit }' "$TMP/metrics"
}
db_metrics() {
	nsenter --net="/proc/$DAEMON_PID/ns/net" curl -sf --max-time 5 http://127.0.0.1:9323/metrics >"$TMP/metrics" &&
		[ "$(awk '/^clbsd_container_state[{]/ && /name="db"/ && /kind="docker"/ && /state="running"/ {print $2}' "$TMP/metrics")" = 1 ] &&
		[ "$(awk '/^clbsd_container_health[{]/ && /name="db"/ && /status="healthy"/ {print $2}' "$TMP/metrics")" = 1 ] &&
		awk -v v="$(metric clbsd_container_memory_usage_bytes)" 'BEGIN { exit !(v > 0) }' &&
		awk -v v="$(metric clbsd_container_pids)" 'BEGIN { exit !(v >= 1) }' &&
		awk -v v="$(metric clbsd_container_cpu_seconds_total)" 'BEGIN { exit !(v > 0) }'
}
# The snapshot a scrape reads follows a health result within 15 s (docs/metrics.md).
wait_until 20 db_metrics && ok docker_container_metrics ||
	fail docker_container_metrics "$(grep 'name="db"' "$TMP/metrics" | head -20)"
dbstart=$(field db started_at)
appstart=$(field app started_at)
[[ "$dbstart" < "$appstart" ]] && ok depends_on_across_kinds || fail depends_on_across_kinds "db=$dbstart app=$appstart"
wait_until 20 sh -c "[ \$(grep -c '^3\$' $TMP/hook.out 2>/dev/null) -ge 2 ]" &&
	[ "$(field flaky restart_count)" -ge 1 ] && ok exit_hook_and_restart_policy ||
	fail exit_hook_and_restart_policy "hook=$(cat "$TMP/hook.out" 2>&1) restarts=$(field flaky restart_count)"
dbid=$(field db docker.id)
sed -i 's/("V" . "1")/("V" . "2")/' "$CONF"
clbsd apply >/dev/null
wait_until 20 sh -c "[ \"\$($BUILD/clbsd --socket $SOCK --json inspect db | python3 -c 'import json,sys; c=json.load(sys.stdin)[0]; print(c[\"state\"], c[\"docker\"][\"id\"])')\" != \"running $dbid\" ] && $BUILD/clbsd --socket $SOCK exec db env | grep -qx V=2" &&
	! dk inspect "$dbid" >/dev/null 2>&1 && ok recreate_on_spec_change ||
	fail recreate_on_spec_change "$(clbsd ps -a) $(dk ps -a)"

# ---- a second clbsdd on the same dockerd: its own instance, never ours ----
mkdir -p "$TMP/run2"
echo "(host :docker (:endpoint \"unix://$DOCKER_SOCK\"))" >"$TMP/etc/second.conf"
"$BUILD/clbsdd" --root "$TMP/root2" --run "$TMP/run2" --socket "$TMP/run2/s.sock" \
	--cgroup-parent "clbsd-$T_ID-2" --pool=0 --config "$TMP/etc/second.conf" >>"$TMP/daemon2.log" 2>&1 &
SECOND_PID=$!
if wait_until 10 "$BUILD/clbsd" --socket "$TMP/run2/s.sock" info; then
	dbid=$(field db docker.id)
	msg=$("$BUILD/clbsd" --socket "$TMP/run2/s.sock" run -d --kind docker --network none --name db \
		"$IMG" true 2>&1)
	rc=$?
	[ $rc -ne 0 ] && echo "$msg" | grep -q 'did not make' &&
		[ "$(dk inspect -f '{{.Id}} {{.State.Running}}' db)" = "$dbid true" ] &&
		[ "$(cat "$TMP/root2/docker-instance")" != "$(cat "$ROOT/docker-instance")" ] &&
		ok second_daemon_leaves_ours_alone || fail second_daemon_leaves_ours_alone "rc=$rc $msg"
else
	fail second_daemon_leaves_ours_alone "the second clbsdd did not come up: $(tail -3 "$TMP/daemon2.log")"
fi
kill "$SECOND_PID" 2>/dev/null
wait "$SECOND_PID" 2>/dev/null
# Its cgroup parent (it ran no container there).
find /sys/fs/cgroup -maxdepth 3 -type d -name "clbsd-$T_ID-2" 2>/dev/null |
	while read -r d; do find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null; done

# ---- adoption after restarting clbsdd ----
dbid=$(field db docker.id)
dbpid=$(field db pid)
t_kill_daemon TERM
t_start_daemon
wait_until 10 sh -c "$BUILD/clbsd --socket $SOCK events --container db --type container.adopted 2>/dev/null | grep -q adopted"
[ "$(field db state)" = running ] && [ "$(field db docker.id)" = "$dbid" ] && [ "$(field db pid)" = "$dbpid" ] &&
	ok adopted_after_clbsdd_restart || fail adopted_after_clbsdd_restart "$(field db state) $(field db docker.id)"

# ---- dockerd restarts: its containers stopped, the exit is recorded ----
t_dockerd_stop
wait_until 15 sh -c "[ \"\$($BUILD/clbsd --socket $SOCK --json inspect db | python3 -c 'import json,sys; print(json.load(sys.stdin)[0][\"state\"])')\" = waiting ]" &&
	field db waiting_for | grep -q 'docker endpoint' && ok waiting_while_dockerd_down ||
	fail waiting_while_dockerd_down "$(clbsd --json inspect db)"
[ "$(field app state)" = running ] && ok native_unaffected || fail native_unaffected "$(field app state)"
t_dockerd_start
wait_until 20 sh -c "[ \"\$($BUILD/clbsd --socket $SOCK --json inspect db | python3 -c 'import json,sys; print(json.load(sys.stdin)[0][\"state\"])')\" = exited ]" &&
	ok exit_seen_after_dockerd_restart || fail exit_seen_after_dockerd_restart "$(field db state)"

# ---- dockerd down while clbsdd starts: waiting, then it converges ----
t_kill_daemon TERM
t_dockerd_stop
cat >>"$CONF" <<EOF
(container late :kind docker :image "$IMG" :network none :command ("sh" "-c" "$LONG_SEXP"))
(container nat :image "forge" :network none :command ("sleep" "1000"))
EOF
t_start_daemon
wait_until 20 sh -c "[ \"\$($BUILD/clbsd --socket $SOCK --json inspect nat | python3 -c 'import json,sys; print(json.load(sys.stdin)[0][\"state\"])')\" = running ]" &&
	ok rest_converges_while_endpoint_down || fail rest_converges_while_endpoint_down "$(clbsd ps -a)"
# The plan says beforehand what the pass will: the docker container waits.
out=$(clbsd plan 2>&1)
echo "$out" | grep -q '^create late: .*(waiting for the docker endpoint: ' &&
	! echo "$out" | grep -q '^create nat.*waiting' && ok plan_says_docker_waits ||
	fail plan_says_docker_waits "$out"
# The pass says the docker container waits (not a failure), and nothing failed.
sum=$(clbsd apply --json 2>/dev/null)
echo "$sum" | python3 -c 'import json,sys
s=json.load(sys.stdin)
a=[x for x in s["actions"] if x["name"]=="late"]
assert a and a[0].get("waiting") and "docker endpoint" in a[0]["error"], a
assert s["failures"]==0, s' && ok docker_waits_for_endpoint || fail docker_waits_for_endpoint "$sum"
t_dockerd_start
wait_until 30 sh -c "[ \"\$($BUILD/clbsd --socket $SOCK --json inspect late | python3 -c 'import json,sys; print(json.load(sys.stdin)[0][\"state\"])')\" = running ]" &&
	ok converges_when_dockerd_comes_up || fail converges_when_dockerd_comes_up "$(clbsd ps -a)"

# ---- an endpoint that does not answer ----
sed -i "s#unix://$DOCKER_SOCK#unix://$TMP/nowhere.sock#" "$CONF"
clbsd apply >/dev/null 2>&1
msg=$(clbsd run -d --kind docker --network none --name lost "$IMG" true 2>&1)
rc=$?
[ $rc -ne 0 ] && echo "$msg" | grep -q "nowhere.sock does not answer" && ! clbsd ps -a | grep -q '^lost ' &&
	ok unreachable_endpoint_clear_error || fail unreachable_endpoint_clear_error "$msg"
# What runs there cannot be removed now: an error, not a hang, and the record stays.
msg=$(timeout 20 "$BUILD/clbsd" --socket "$SOCK" rm -f late 2>&1)
rc=$?
[ $rc -ne 0 ] && [ $rc -ne 124 ] && echo "$msg" | grep -q "does not answer" &&
	clbsd ps -a | grep -q '^late ' && ok rm_with_endpoint_down_fails_clearly ||
	fail rm_with_endpoint_down_fails_clearly "rc=$rc $msg"
sed -i "s#unix://$TMP/nowhere.sock#unix://$DOCKER_SOCK#" "$CONF"
clbsd apply >/dev/null 2>&1
t_done
