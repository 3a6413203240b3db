#!/bin/bash
# The host converges on the configuration: create in dependency order,
# recreate only what changed, remove what is no longer declared, keep the
# last good configuration on errors, never touch `clbsd run` containers,
# boot declared containers when the daemon starts, and finish an
# interrupted convergence without duplicates or leftovers.
. "$(dirname "$0")/../lib.sh"
t_setup
t_forge
state() { field "$1" state 2>/dev/null; }
names() { clbsd --json ps -a | python3 -c 'import json,sys
print(" ".join(sorted(c["name"] for c in json.load(sys.stdin))))'; }

clbsd run -d --name adhoc forge sleep 300 >/dev/null
cat >"$CONF" <<'C'
(container db :image "forge" :command ("sleep" "300"))
(container web :image "forge" :command ("sh" "-c" "echo $GREETING; sleep 300")
  :env (("GREETING" . "hello")) :depends-on (db)
  :volumes ((:dataset "data" :path "/data")))
(container idle :image "forge" :command ("sleep" "300") :state stopped
  :volumes ((:dataset "cache" :path "/cache")))
C
plan=$(clbsd plan)
db_line=$(echo "$plan" | grep -n '^create db:' | cut -d: -f1)
web_line=$(echo "$plan" | grep -n '^create web:' | cut -d: -f1)
[ -n "$db_line" ] && [ -n "$web_line" ] && [ "$db_line" -lt "$web_line" ] &&
	echo "$plan" | grep -q '^create idle:' && ok plan_in_dependency_order ||
	fail plan_in_dependency_order "$plan"
clbsd apply >/dev/null
[ "$(state db)" = running ] && [ "$(state web)" = running ] && [ "$(state idle)" = created ] &&
	ok apply_converges || fail apply_converges "db=$(state db) web=$(state web) idle=$(state idle)"
[ "$(field db managed)" = true ] && [ "$(field adhoc managed)" = false ] && ok ownership_recorded ||
	fail ownership_recorded "db=$(field db managed) adhoc=$(field adhoc managed)"
[ "$(clbsd plan)" = 'nothing to do: the host matches the configuration' ] && ok noop_when_converged ||
	fail noop_when_converged "$(clbsd plan)"

clbsd exec web sh -c 'echo kept > /data/file'
db_pid=$(field db pid)
web_pid=$(field web pid)
sed -i 's/hello/bonjour/' "$CONF"
[ "$(clbsd plan)" = "recreate web: :env changed" ] && ok plan_names_the_change ||
	fail plan_names_the_change "$(clbsd plan)"
kill -HUP "$DAEMON_PID"
wait_until 10 sh -c "$BUILD/clbsd --socket $SOCK logs web 2>/dev/null | grep -q bonjour" &&
	ok sighup_recreates_changed || fail sighup_recreates_changed "$(clbsd logs web)"
[ "$(field db pid)" = "$db_pid" ] && ok unchanged_keeps_pid || fail unchanged_keeps_pid "db restarted"
[ "$(field web pid)" != "$web_pid" ] || fail sighup_recreates_changed "same pid"
[ "$(clbsd exec web cat /data/file)" = kept ] && ok named_volume_survives_recreate ||
	fail named_volume_survives_recreate "lost"

# rm -v wipes the named volumes with the container; the reconciler then
# makes it again, fresh.
clbsd rm -f -v web >/dev/null
[ ! -e "$ROOT/volumes/web/data/file" ] && ok rm_volumes_wipes || fail rm_volumes_wipes "data kept"
clbsd apply >/dev/null
[ "$(state web)" = running ] && [ -d "$ROOT/volumes/web/data" ] && ok recreated_after_rm ||
	fail recreated_after_rm "$(state web)"
db_pid=$(field db pid)

# A live key (:restart) changes the running container without a recreate.
sed -i 's/(container db :image "forge" :command ("sleep" "300"))/(container db :image "forge" :command ("sleep" "300") :restart always)/' "$CONF"
clbsd apply >/dev/null
[ "$(field db pid)" = "$db_pid" ] &&
	[ "$(clbsd --json inspect db | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["config"]["restart"]["policy"])')" = always ] &&
	ok live_restart_policy || fail live_restart_policy "$(clbsd --json inspect db | head -c 300)"
kill -KILL "$db_pid"
wait_until 10 sh -c "[ \"\$($BUILD/clbsd --socket $SOCK --json inspect db | python3 -c 'import json,sys; c=json.load(sys.stdin)[0]; print(c[\"state\"], c[\"restart_count\"])')\" = 'running 1' ]" &&
	ok live_restart_policy_applies || fail live_restart_policy_applies "$(clbsd ps -a)"
sed -i 's/ :restart always)/)/' "$CONF"
clbsd apply >/dev/null
db_pid=$(field db pid)

# A typo changes nothing and says where; the fix converges.
cp "$CONF" "$TMP/good.conf"
sed -i 's/:image "forge" :command ("sleep" "300"))$/:imgae "forge" :command ("sleep" "300"))/' "$CONF"
out=$(clbsd apply 2>&1)
rc=$?
[ $rc -eq 1 ] && echo "$out" | grep -q 'clbsd.conf:1:[0-9]*: .*did you mean :image' &&
	ok typo_reports_position || fail typo_reports_position "rc=$rc: $out"
clbsd status | grep -q 'did you mean :image' && ok status_shows_error || fail status_shows_error "$(clbsd status)"
[ "$(field db pid)" = "$db_pid" ] && [ "$(state web)" = running ] && ok typo_changes_nothing ||
	fail typo_changes_nothing "db=$(state db) web=$(state web)"
cp "$TMP/good.conf" "$CONF"
clbsd apply >/dev/null && ! clbsd status | grep -q 'config errors' && ok fix_converges ||
	fail fix_converges "$(clbsd status)"

# Cycles are refused with the cycle named.
cat >"$TMP/cycle.conf" <<'C'
(container a :image "forge" :depends-on (b))
(container b :image "forge" :depends-on (a))
C
out=$("$BUILD/clbsdd" -n --config "$TMP/cycle.conf" 2>&1 >/dev/null)
echo "$out" | grep -Eq 'a -> b -> a|b -> a -> b' && ok cycle_named || fail cycle_named "$out"

# :state stopped -> running starts it; removal from the file removes it.
sed -i 's/ :state stopped//' "$CONF"
clbsd apply >/dev/null
[ "$(state idle)" = running ] && ok state_change_applies || fail state_change_applies "$(state idle)"
python3 -c 'import re,sys; s=open(sys.argv[1]).read(); open(sys.argv[1],"w").write(re.sub(r"\(container idle[^\n]*\n[^\n]*cache[^\n]*\n", "", s))' "$CONF"
clbsd apply >/dev/null
! clbsd inspect idle >/dev/null 2>&1 && ok removed_when_undeclared || fail removed_when_undeclared "still there"
[ -d "$ROOT/volumes/idle/cache" ] && ok undeclared_keeps_volumes || fail undeclared_keeps_volumes "gone"
[ "$(state adhoc)" = running ] && ok adhoc_never_reaped || fail adhoc_never_reaped "$(state adhoc)"

# Editing the file is enough: the daemon watches it (a rename-style save too).
sed 's/"300"))$/"301"))/' "$CONF" >"$TMP/new.conf" && mv "$TMP/new.conf" "$CONF"
# (Match the command itself: "301" can also turn up inside a hex id.)
argv_of() { clbsd --json inspect "$1" | python3 -c 'import json,sys
c=json.load(sys.stdin)[0]; print(" ".join(c["config"]["argv"]) if c["state"]=="running" else "")'; }
wait_until 5 sh -c "[ \"\$($BUILD/clbsd --socket $SOCK --json inspect db | python3 -c 'import json,sys; c=json.load(sys.stdin)[0]; print(\" \".join(c[\"config\"][\"argv\"]) if c[\"state\"]==\"running\" else \"\")')\" = 'sleep 301' ]" &&
	ok file_edit_converges || fail file_edit_converges "$(argv_of db): $(clbsd plan)"

# The operator's stop of a declared container is recorded, not undone.
clbsd stop -t 0 db >/dev/null
grep -q '(override db :state stopped)' "$(dirname "$CONF")/conf.d/90-live.conf" &&
	ok stop_recorded_live || fail stop_recorded_live "$(cat "$(dirname "$CONF")/conf.d/90-live.conf" 2>&1)"
clbsd apply >/dev/null
sleep 0.5
[ "$(state db)" = exited ] && ok stop_not_undone ||
	fail stop_not_undone "$(state db): $(clbsd events --container db | tail -n 12)
$(grep -E 'reconcile|config' "$TMP/daemon.log" | tail -n 25)"
clbsd start db >/dev/null
grep -q '(override db :state running)' "$(dirname "$CONF")/conf.d/90-live.conf" &&
	[ "$(state db)" = running ] && ok start_recorded_live || fail start_recorded_live "$(state db)"
db_pid=$(field db pid)

# A declared name taken by an unmanaged container is a conflict, untouched.
clbsd run -d --name taken forge sleep 300 >/dev/null
echo '(container taken :image "forge" :command ("true"))' >>"$CONF"
clbsd plan | grep -q '^conflict taken' && ok unmanaged_name_conflict || fail unmanaged_name_conflict "$(clbsd plan)"
clbsd apply >/dev/null 2>&1
[ "$(field taken managed)" = false ] && [ "$(state taken)" = running ] && ok conflict_untouched ||
	fail conflict_untouched "$(state taken)"
clbsd rm -f taken >/dev/null
grep -v '^(container taken' "$CONF" >"$TMP/c2" && cp "$TMP/c2" "$CONF"
clbsd apply >/dev/null

# Boot: a daemon that starts finds declared containers down and starts them.
t_kill_daemon TERM
for p in $(t_shim_pids); do kill -KILL "$p" 2>/dev/null; done
sleep 0.5
t_start_daemon || exit 1
wait_until 10 sh -c "[ \"\$($BUILD/clbsd --socket $SOCK --json inspect web | python3 -c 'import json,sys; print(json.load(sys.stdin)[0][\"state\"])')\" = running ]" &&
	[ "$(state db)" = running ] && ok boot_starts_declared || fail boot_starts_declared "db=$(state db) web=$(state web)"

# Kill the daemon while it creates 20 containers; a new one ends with exactly
# the declared set: no duplicates, no leftovers.
for i in $(seq 1 20); do echo "(container n$i :image \"forge\" :command (\"sleep\" \"300\"))"; done >>"$CONF"
kill -HUP "$DAEMON_PID"
sleep 0.15
t_kill_daemon KILL
t_start_daemon || exit 1
want="adhoc db $(seq 1 20 | sed 's/^/n/' | sort | tr '\n' ' ')web"
want=$(echo "$want" | tr ' ' '\n' | sort | tr '\n' ' ' | sed 's/ $//')
wait_until 30 sh -c "[ \"\$($BUILD/clbsd --socket $SOCK ps | tail -n +2 | wc -l)\" -ge 23 ]"
[ "$(names)" = "$want" ] && ok interrupted_converges_exactly || fail interrupted_converges_exactly "$(names)"
# A container.json emptied by a power failure (a --rm container's is not
# fsynced) is cleared at start like an unfinished create.
mkdir -p "$ROOT/containers/torn"
: >"$ROOT/containers/torn/container.json"
t_kill_daemon TERM
t_start_daemon || exit 1
wait_until 10 sh -c "[ \"\$($BUILD/clbsd --socket $SOCK ps | tail -n +2 | wc -l)\" -ge 23 ]"
[ ! -e "$ROOT/containers/torn" ] && ok empty_record_cleared || fail empty_record_cleared "kept"
left=$(find "$ROOT/containers" -mindepth 1 -maxdepth 1 -type d | wc -l)
[ "$left" -eq 23 ] && ok no_leftover_dirs || fail no_leftover_dirs "$left dirs"
t_done
