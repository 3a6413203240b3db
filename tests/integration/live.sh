#!/bin/bash
# Live changes that persist: PATCH /v1/containers/NAME records the keys it
# changes as an override in conf.d/90-live.conf, checked with the whole
# configuration first (a bad change names the key and changes nothing),
# applied by the reconciler (a recreate only when the spec hash changes),
# and kept across a daemon restart and `clbsd apply`.
. "$(dirname "$0")/../lib.sh"
t_setup
t_forge
LIVE="$TMP/etc/conf.d/90-live.conf"
# patch NAME JSON: the HTTP code; the body in $TMP/body.
patch() {
	curl -s -o "$TMP/body" -w '%{http_code}' --unix-socket "$SOCK" -X PATCH \
		-H 'Content-Type: application/json' -d "$2" "http://x/v1/containers/$1"
}

cat >"$CONF" <<'C'
(container web :image "forge" :command ("sh" "-c" "echo G=$G; sleep 300")
  :env (("G" . "one")) :limits (:cpus 1))
C
clbsd apply >/dev/null
[ "$(field web state)" = running ] && ok declared_runs || fail declared_runs "$(field web state)"

# A live key (:restart, routing) keeps the running container.
pid=$(field web pid)
code=$(patch web '{"restart": "always", "domain": "web.lan", "port": 8080}')
[ "$code" = 200 ] && [ "$(field web pid)" = "$pid" ] && [ "$(field web config.restart.policy)" = always ] &&
	ok patch_live_keys_keep_pid || fail patch_live_keys_keep_pid "$code $(cat "$TMP/body")"
grep -q '(override web .*:restart always' "$LIVE" && grep -q ':domain "web.lan"' "$LIVE" &&
	grep -q ':port 8080' "$LIVE" && ok override_written ||
	fail override_written "$(cat "$LIVE" 2>&1)"

# Keys in the hash recreate: env, memory (cpus kept from the file), stop_signal.
code=$(patch web '{"env": ["G=two"], "memory": "256M", "stop_signal": "SIGINT"}')
[ "$code" = 200 ] && [ "$(field web pid)" != "$pid" ] && ok patch_hash_keys_recreate ||
	fail patch_hash_keys_recreate "$code $(cat "$TMP/body")"
wait_until 10 sh -c "$BUILD/clbsd --socket $SOCK logs web 2>/dev/null | grep -q G=two" &&
	ok patch_env_applied || fail patch_env_applied "$(clbsd logs web 2>&1)"
grep -q ':limits (:memory "256M" :cpus 1.0)' "$LIVE" && grep -q ':stop-signal "SIGINT"' "$LIVE" &&
	ok limits_merged_with_file || fail limits_merged_with_file "$(cat "$LIVE")"
[ "$(clbsd plan)" = 'nothing to do: the host matches the configuration' ] && ok converged ||
	fail converged "$(clbsd plan)"

# A bad PATCH names the key and changes nothing.
before=$(cat "$LIVE")
pid=$(field web pid)
code=$(patch web '{"restart": "sometimes"}')
[ "$code" = 400 ] && grep -q restart "$TMP/body" && [ "$(cat "$LIVE")" = "$before" ] &&
	[ "$(field web pid)" = "$pid" ] && ok bad_value_changes_nothing ||
	fail bad_value_changes_nothing "$code $(cat "$TMP/body")"
code=$(patch web '{"port": 70000, "memory": "512M"}')
[ "$code" = 400 ] && grep -q ':port' "$TMP/body" && [ "$(cat "$LIVE")" = "$before" ] &&
	[ "$(field web pid)" = "$pid" ] && ok bad_form_key_changes_nothing ||
	fail bad_form_key_changes_nothing "$code $(cat "$TMP/body")"
code=$(patch web '{"colour": "blue"}')
[ "$code" = 400 ] && grep -q colour "$TMP/body" && ok unknown_key_named ||
	fail unknown_key_named "$code $(cat "$TMP/body")"

# Not declared: refused, with what to do.
clbsd run -d --name adhoc forge sleep 300 >/dev/null
code=$(patch adhoc '{"restart": "always"}')
[ "$code" = 409 ] && grep -q 'declare it' "$TMP/body" && ok undeclared_refused ||
	fail undeclared_refused "$code $(cat "$TMP/body")"
code=$(patch nosuch '{"restart": "always"}')
[ "$code" = 404 ] && ok unknown_refused || fail unknown_refused "$code $(cat "$TMP/body")"

# Survives clbsd apply and a daemon restart.
clbsd apply >/dev/null
[ "$(field web pid)" = "$pid" ] && [ "$(field web config.restart.policy)" = always ] && ok survives_apply ||
	fail survives_apply "$(field web config.restart.policy) $(field web pid) $pid $(clbsd ps -a 2>&1)"
t_kill_daemon TERM
t_start_daemon || exit 1
wait_until 10 sh -c '[ "$(clbsd --json inspect web 2>/dev/null | grep -c "\"running\"")" != 0 ]'
[ "$(field web config.restart.policy)" = always ] && [ "$(clbsd plan)" = 'nothing to do: the host matches the configuration' ] &&
	ok survives_restart || fail survives_restart "$(field web config.restart.policy) $(clbsd plan)"

# stop/start still records :state next to the other keys.
clbsd stop web >/dev/null
grep -q ':restart always' "$LIVE" && grep -q ':state stopped' "$LIVE" && ok state_kept_with_keys ||
	fail state_kept_with_keys "$(cat "$LIVE")"
clbsd start web >/dev/null

# clbsd update: the same through the CLI, bad values refused by name.
pid=$(field web pid)
out=$(clbsd update web --restart on-failure:3 --port 9090 2>&1)
[ "$out" = web ] && [ "$(field web pid)" = "$pid" ] && grep -q ':restart (on-failure 3)' "$LIVE" &&
	grep -q ':port 9090' "$LIVE" && ok cli_update || fail cli_update "$out $(cat "$LIVE")"
before=$(cat "$LIVE")
if out=$(clbsd update web --memory lots 2>&1); then
	fail cli_update_bad_value "accepted: $out"
else
	echo "$out" | grep -q memory && [ "$(cat "$LIVE")" = "$before" ] && ok cli_update_bad_value ||
		fail cli_update_bad_value "$out"
fi
clbsd update web --env G=three >/dev/null &&
	wait_until 10 sh -c "$BUILD/clbsd --socket $SOCK logs web 2>/dev/null | grep -q G=three" &&
	ok cli_update_recreates || fail cli_update_recreates "$(clbsd logs web 2>&1)"
clbsd rm -f adhoc >/dev/null

# Live declaration and removal.
out=$(clbsd declare extra --image forge --command sleep --command 300 --restart always 2>&1)
[ "$out" = extra ] && [ "$(field extra state)" = running ] &&
	grep -q '^(container extra :image "forge" :command ("sleep" "300") :restart always)' "$LIVE" &&
	ok declare_live || fail declare_live "$out $(cat "$LIVE")"
before=$(cat "$LIVE")
if out=$(clbsd declare broken --command true 2>&1); then
	fail declare_needs_image "accepted: $out"
else
	echo "$out" | grep -q ':image' && [ "$(cat "$LIVE")" = "$before" ] && ok declare_needs_image ||
		fail declare_needs_image "$out"
fi
clbsd declare web --image forge >/dev/null 2>&1 && fail declare_taken "accepted" || ok declare_taken
# config diff: what the live layer changes against the files, and folded.
out=$(clbsd config diff 2>&1)
echo "$out" | grep -q '^amended web' && echo "$out" | grep -q '^  :restart no -> (on-failure 3)' &&
	echo "$out" | grep -q '^declared extra' && ok config_diff || fail config_diff "$out"
clbsd config diff --fold >"$TMP/folded" 2>&1
grep -q '^(container web' "$TMP/folded" && grep -q '^(container extra' "$TMP/folded" &&
	ok config_diff_fold || fail config_diff_fold "$(cat "$TMP/folded")"
# Folding: the folded forms as the main file, no live layer: nothing to do.
cp "$CONF" "$TMP/conf.orig"
grep -v '^;' "$TMP/folded" >"$CONF.new" && mv "$CONF.new" "$CONF"
mv "$LIVE" "$TMP/live.orig"
[ "$(clbsd plan)" = 'nothing to do: the host matches the configuration' ] &&
	[ "$(clbsd config diff)" = 'the live layer changes nothing' ] && ok fold_is_equivalent ||
	fail fold_is_equivalent "$(clbsd plan) $(cat "$CONF")"
mv "$TMP/conf.orig" "$CONF"
mv "$TMP/live.orig" "$LIVE"
clbsd apply >/dev/null
out=$(clbsd undeclare extra 2>&1)
[ "$out" = extra ] && ! grep -q extra "$LIVE" && ! clbsd inspect extra >/dev/null 2>&1 &&
	ok undeclare_live_declaration || fail undeclare_live_declaration "$out $(cat "$LIVE")"
clbsd undeclare web >/dev/null && grep -q '^(undeclare web)' "$LIVE" &&
	! grep -q '(override web' "$LIVE" && ! clbsd inspect web >/dev/null 2>&1 &&
	ok undeclare_file_declaration || fail undeclare_file_declaration "$(cat "$LIVE")"
clbsd apply >/dev/null
! clbsd inspect web >/dev/null 2>&1 && ok undeclare_survives_apply ||
	fail undeclare_survives_apply "web is back"
t_done
