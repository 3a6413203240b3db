#!/bin/bash
# A docker container's limits change in place, as `docker update` does:
# clbsd update (and a declared :limits edit, planned as "update") has
# dockerd change the container it made, running or stopped, with the same
# dockerd id and process. dockerd cannot lift a limit: clbsd update says
# so and changes nothing, and the reconciler recreates instead. A value
# dockerd refuses changes nothing either.
. "$(dirname "$0")/../lib.sh"

IMG="clbsd-bb-$$:1"
t_before_start() { t_docker_before_start "$IMG"; }
t_setup
trap 'rc=$?; t_docker_cleanup "$IMG"; (exit $rc); t_cleanup' EXIT

LONG='trap "exit 0" TERM; sleep 1000 & wait'
LONG_SEXP='trap \"exit 0\" TERM; sleep 1000 & wait'
hc() { dk inspect -f '{{.HostConfig.Memory}} {{.HostConfig.NanoCpus}} {{if .HostConfig.PidsLimit}}{{.HostConfig.PidsLimit}}{{else}}0{{end}}' "$1" 2>&1; }

# ---- clbsd update of a running docker container ----
clbsd run -d --kind docker --network none --name lim --memory 64M --pids 50 "$IMG" sh -c "$LONG" >/dev/null
did=$(field lim docker.id)
dpid=$(dk inspect -f '{{.State.Pid}}' lim)
out=$(clbsd update lim --memory 128M --pids 80 --cpus 0.5 2>&1)
[ "$out" = lim ] && [ "$(hc lim)" = "$((128 << 20)) 500000000 80" ] &&
	[ "$(field lim docker.id)" = "$did" ] && [ "$(dk inspect -f '{{.State.Pid}}' lim)" = "$dpid" ] &&
	ok update_in_place_same_process || fail update_in_place_same_process "$out: $(hc lim), id $(field lim docker.id)/$did"
[ "$(field lim config.limits.memory)" = $((128 << 20)) ] && [ "$(field lim config.limits.pids)" = 80 ] &&
	clbsd events --type container.updated --json 2>&1 | grep -q '"in_place":true' &&
	ok inspect_and_event || fail inspect_and_event "$(field lim config.limits) $(clbsd events --type container.updated 2>&1 | tail -2)"

# A value dockerd refuses: its answer, nothing changed.
out=$(clbsd update lim --memory 5M 2>&1)
rc=$?
[ $rc -ne 0 ] && [ "$(hc lim)" = "$((128 << 20)) 500000000 80" ] &&
	[ "$(field lim config.limits.memory)" = $((128 << 20)) ] && ok refused_value_unchanged ||
	fail refused_value_unchanged "rc=$rc $out / $(hc lim)"

# Stopped: dockerd's container takes them, and so does the next start.
clbsd stop -t 5 lim >/dev/null
clbsd update lim --memory 96M >/dev/null 2>&1
clbsd start lim >/dev/null
[ "$(hc lim)" = "$((96 << 20)) 500000000 80" ] && [ "$(field lim state)" = running ] &&
	[ "$(field lim docker.id)" = "$did" ] && ok stopped_update_kept_at_start ||
	fail stopped_update_kept_at_start "$(hc lim) $(field lim state)"
clbsd rm -f lim >/dev/null

# ---- declared: an edit of :limits is an update, a lifted limit a recreate ----
cat >>"$CONF" <<EOC
(container svc :kind docker :image "$IMG" :network none :command ("sh" "-c" "$LONG_SEXP")
  :limits (:memory "64M" :pids 40))
EOC
clbsd apply >/dev/null
sid=$(field svc docker.id)
sed -i 's/:limits (:memory "64M" :pids 40)/:limits (:memory "80M" :pids 40)/' "$CONF"
plan=$(clbsd plan 2>&1)
[ "$plan" = "update svc: :limits changed (in place)" ] && ok plan_says_update || fail plan_says_update "$plan"
clbsd apply >/dev/null
[ "$(field svc docker.id)" = "$sid" ] && [ "$(hc svc)" = "$((80 << 20)) 0 40" ] &&
	[ "$(clbsd plan)" = 'nothing to do: the host matches the configuration' ] && ok declared_update_in_place ||
	fail declared_update_in_place "$(field svc docker.id)/$sid $(hc svc) $(clbsd plan)"
sed -i 's/:limits (:memory "80M" :pids 40)/:limits (:memory "80M")/' "$CONF"
plan=$(clbsd plan 2>&1)
echo "$plan" | grep -q '^recreate svc: ' && ok lifted_limit_recreates || fail lifted_limit_recreates "$plan"
clbsd apply >/dev/null
[ "$(field svc state)" = running ] && [ "$(field svc docker.id)" != "$sid" ] && [ "$(hc svc)" = "$((80 << 20)) 0 0" ] &&
	ok recreated_without_limit || fail recreated_without_limit "$(hc svc) $(field svc state)"
t_done
