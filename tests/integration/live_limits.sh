#!/bin/bash
# Limits change live: a change to :limits alone (PATCH, clbsd update, or an
# edit of the file) is written to the running container's cgroup in place,
# the same process keeps running, and the reconciler plans it as "update",
# not "recreate". A limit the kernel refuses (memory below what the
# container uses) is reported with the kernel's answer and changes nothing:
# not the cgroup, not the live layer, not the container's record. A
# container made with clbsd run changes its limits live too (Docker's
# update), and only those.
. "$(dirname "$0")/../lib.sh"
t_setup
t_forge
LIVE="$TMP/etc/conf.d/90-live.conf"
MEM=/sys/fs/cgroup/memory
[ -d "$MEM" ] || {
	skip all "the limits are read from cgroup v1 files (cgroup v2: the unit test covers its writes)"
	t_done
	exit 0
}
cgfile() { cat "/sys/fs/cgroup/$1/$(field "$2" cgroup)/$3" 2>/dev/null; }

cat >"$CONF" <<'C'
(container lim :image "forge" :command ("sleep" "300") :limits (:memory "64M" :pids 50))
(container filed :image "forge" :command ("sleep" "300") :limits (:memory "32M"))
(container hog :image "forge"
  :command ("sh" "-c" "x=$(head -c 30000000 /dev/zero | tr '\\0' a); echo ready; sleep 300; echo ${#x}")
  :limits (:memory "128M"))
C
clbsd apply >/dev/null
[ "$(field lim state)" = running ] && [ "$(cgfile memory lim memory.limit_in_bytes)" = $((64 << 20)) ] &&
	ok declared_with_limits || fail declared_with_limits "$(clbsd ps -a 2>&1)"

# clbsd update of :limits only: the same process, the new values in the cgroup.
pid=$(field lim pid)
out=$(clbsd update lim --memory 128M --pids 80 --cpus 0.5 2>&1)
[ "$out" = lim ] && [ "$(field lim pid)" = "$pid" ] && ok update_keeps_pid ||
	fail update_keeps_pid "$out: pid $(field lim pid), was $pid"
[ "$(cgfile memory lim memory.limit_in_bytes)" = $((128 << 20)) ] &&
	[ "$(cgfile memory lim memory.memsw.limit_in_bytes)" = $((128 << 20)) ] &&
	[ "$(cgfile pids lim pids.max)" = 80 ] && [ "$(cgfile cpu lim cpu.cfs_quota_us)" = 50000 ] &&
	ok cgroup_written_in_place ||
	fail cgroup_written_in_place "$(cgfile memory lim memory.limit_in_bytes) $(cgfile pids lim pids.max) $(cgfile cpu lim cpu.cfs_quota_us)"
[ "$(field lim config.limits.memory)" = $((128 << 20)) ] && [ "$(field lim config.limits.pids)" = 80 ] &&
	[ "$(field lim config.limits.cpus)" = 0.5 ] && ok inspect_shows_new_limits ||
	fail inspect_shows_new_limits "$(field lim config.limits)"
grep -q '(override lim .*:limits (:memory "128M" :cpus 0.5 :pids 80)' "$LIVE" && ok override_recorded ||
	fail override_recorded "$(cat "$LIVE" 2>&1)"
[ "$(clbsd plan)" = 'nothing to do: the host matches the configuration' ] && ok converged ||
	fail converged "$(clbsd plan)"
clbsd config diff 2>&1 | grep -q '^  :limits .* (in place)$' && ok config_diff_in_place ||
	fail config_diff_in_place "$(clbsd config diff 2>&1)"
clbsd events --type container.updated 2>&1 | grep -q lim && ok update_event ||
	fail update_event "$(clbsd events --type container.updated 2>&1 | tail -3)"

# Kept across a daemon restart and clbsd apply: same process, same limits.
t_kill_daemon TERM
t_start_daemon || exit 1
wait_until 10 sh -c '[ "$(clbsd --json inspect lim 2>/dev/null | grep -c "\"running\"")" != 0 ]'
clbsd apply >/dev/null
[ "$(field lim pid)" = "$pid" ] && [ "$(cgfile memory lim memory.limit_in_bytes)" = $((128 << 20)) ] &&
	[ "$(clbsd plan)" = 'nothing to do: the host matches the configuration' ] && ok survives_restart ||
	fail survives_restart "pid $(field lim pid)/$pid, $(cgfile memory lim memory.limit_in_bytes), $(clbsd plan)"

# An edit of the file: plan says update, apply writes it in place.
fpid=$(field filed pid)
sed -i 's/:limits (:memory "32M")/:limits (:memory "48M")/' "$CONF"
clbsd plan 2>&1 | grep -q 'update filed' && ! clbsd plan 2>&1 | grep -q 'recreate' && ok plan_shows_update ||
	fail plan_shows_update "$(clbsd plan 2>&1)"
clbsd apply >/dev/null
[ "$(field filed pid)" = "$fpid" ] && [ "$(cgfile memory filed memory.limit_in_bytes)" = $((48 << 20)) ] &&
	[ "$(field filed config.limits.memory)" = $((48 << 20)) ] && ok file_edit_in_place ||
	fail file_edit_in_place "pid $(field filed pid)/$fpid $(cgfile memory filed memory.limit_in_bytes)"
# A change of another recreate key still recreates.
sed -i 's/("sleep" "300") :limits (:memory "48M")/("sleep" "301") :limits (:memory "40M")/' "$CONF"
clbsd plan 2>&1 | grep -q 'recreate filed' && ok other_keys_recreate || fail other_keys_recreate "$(clbsd plan 2>&1)"
clbsd apply >/dev/null

# Memory below what the container uses (30 MB it holds: the shell does not
# exec its last command, so it keeps x): the kernel's answer, nothing changed.
wait_until 20 sh -c "$BUILD/clbsd --socket $SOCK logs hog 2>/dev/null | grep -q ready" ||
	fail hog_ready "$(clbsd logs hog 2>&1)"
hpid=$(field hog pid)
before=$(cat "$LIVE")
if out=$(clbsd update hog --memory 8M 2>&1); then
	fail below_usage_refused "accepted: $out"
else
	echo "$out" | grep -q 'the kernel refused the new limits' && echo "$out" | grep -q 'memory' &&
		echo "$out" | grep -q 'nothing was changed' && ok below_usage_refused ||
		fail below_usage_refused "$out"
fi
[ "$(cat "$LIVE")" = "$before" ] && [ "$(field hog pid)" = "$hpid" ] &&
	[ "$(cgfile memory hog memory.limit_in_bytes)" = $((128 << 20)) ] &&
	[ "$(cgfile memory hog memory.memsw.limit_in_bytes)" = $((128 << 20)) ] &&
	[ "$(field hog config.limits.memory)" = $((128 << 20)) ] &&
	[ "$(clbsd plan)" = 'nothing to do: the host matches the configuration' ] && ok below_usage_changes_nothing ||
	fail below_usage_changes_nothing "$(cgfile memory hog memory.limit_in_bytes) $(field hog config.limits.memory) $(clbsd plan) $(cat "$LIVE")"

# Keys only a create request has are refused by name, with the reason.
patch() {
	curl -s -o "$TMP/body" -w '%{http_code}' --unix-socket "$SOCK" -X PATCH \
		-H 'Content-Type: application/json' -d "$2" "http://x/v1/containers/$1"
}
before=$(cat "$LIVE")
code=$(patch lim '{"memory": "100M", "stdin": true}')
[ "$code" = 400 ] && grep -q '\\"stdin\\" cannot be changed: whether standard input' "$TMP/body" &&
	[ "$(cat "$LIVE")" = "$before" ] && ok stdin_refused_by_name || fail stdin_refused_by_name "$code $(cat "$TMP/body")"
code=$(patch lim '{"auto_remove": true}')
[ "$code" = 400 ] && grep -q 'auto_remove.*cannot remove itself' "$TMP/body" && ok auto_remove_refused_by_name ||
	fail auto_remove_refused_by_name "$code $(cat "$TMP/body")"

# A clbsd run container: its limits change live, nothing is recorded.
clbsd run -d --name adhoc --memory 64M forge sleep 300 >/dev/null
apid=$(field adhoc pid)
out=$(clbsd update adhoc --memory 96M --pids 20 2>&1)
[ "$out" = adhoc ] && [ "$(field adhoc pid)" = "$apid" ] &&
	[ "$(cgfile memory adhoc memory.limit_in_bytes)" = $((96 << 20)) ] &&
	[ "$(cgfile pids adhoc pids.max)" = 20 ] && [ "$(field adhoc config.limits.memory)" = $((96 << 20)) ] &&
	! grep -q adhoc "$LIVE" && ok imperative_limits_live ||
	fail imperative_limits_live "$out $(cgfile memory adhoc memory.limit_in_bytes) $(field adhoc config.limits.memory)"
if out=$(clbsd update adhoc --restart always 2>&1); then
	fail imperative_other_keys_refused "accepted: $out"
else
	echo "$out" | grep -q '"restart"' && echo "$out" | grep -q 'declare it' && ok imperative_other_keys_refused ||
		fail imperative_other_keys_refused "$out"
fi
clbsd stop adhoc >/dev/null
clbsd update adhoc --memory 80M >/dev/null && clbsd start adhoc >/dev/null &&
	[ "$(cgfile memory adhoc memory.limit_in_bytes)" = $((80 << 20)) ] && ok stopped_takes_limits_at_start ||
	fail stopped_takes_limits_at_start "$(cgfile memory adhoc memory.limit_in_bytes)"
clbsd rm -f adhoc >/dev/null
t_done
