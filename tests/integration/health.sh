#!/bin/bash
# Health checks: TCP, HTTP and command checks inside the container, shown by
# ps and inspect, published as events, gating dependants, and restarting a
# container that turns unhealthy when asked to.
. "$(dirname "$0")/../lib.sh"
t_setup
t_forge
health() { clbsd --json inspect "$1" | python3 -c 'import json,sys
h=json.load(sys.stdin)[0].get("health"); print(h["status"] if h else "none")'; }
cat >"$CONF" <<'C'
(container db :image "forge"
  :command ("sh" "-c" "sleep 1.5; while true; do nc -l -p 5432 -e echo hi; done")
  :health (:tcp 5432 :interval "500ms" :timeout "500ms"))
(container app :image "forge" :command ("sleep" "300") :depends-on (db))
(container site :image "forge"
  :command ("sh" "-c" "mkdir -p /www && echo ok > /www/index.html && httpd -f -p 8080 -h /www")
  :health (:http "/" :port 8080 :interval "500ms" :timeout "500ms"))
(container flag :image "forge" :command ("sleep" "300")
  :health (:cmd ("test" "-f" "/tmp/ok") :interval "500ms" :timeout "500ms" :retries 2))
(container flaky :image "forge" :command ("sleep" "300")
  :health (:tcp 9999 :interval "500ms" :retries 2 :timeout "500ms" :restart-unhealthy t))
C
out=$(clbsd apply 2>&1)
case "$out" in *"has errors"*) fail config_valid "$out" ;; *) ok config_valid ;; esac
wait_until 10 sh -c "[ \"\$($BUILD/clbsd --socket $SOCK --json inspect db | python3 -c 'import json,sys; print((json.load(sys.stdin)[0].get(\"health\") or {}).get(\"status\"))')\" = healthy ]" &&
	ok tcp_check_healthy || fail tcp_check_healthy "$(health db)"
clbsd ps | grep '^db ' | grep -q '(healthy)' && ok ps_shows_health || fail ps_shows_health "$(clbsd ps)"
wait_until 10 sh -c "[ \"\$($BUILD/clbsd --socket $SOCK --json inspect app | python3 -c 'import json,sys; print(json.load(sys.stdin)[0][\"state\"])')\" = running ]" ||
	true
healthy_at=$(clbsd events --container db --type container.health --json | python3 -c 'import json,sys
for l in sys.stdin:
    e=json.loads(l)
    if e["attrs"]["status"]=="healthy": print(e["time"]); break')
app_started=$(field app started_at)
[ -n "$healthy_at" ] && [ "$(field app state)" = running ] && [[ "$app_started" > "$healthy_at" ]] &&
	ok dependant_waits_for_healthy || fail dependant_waits_for_healthy "healthy $healthy_at app $app_started"
wait_until 10 sh -c "$BUILD/clbsd --socket $SOCK --json inspect site | grep -q '\"status\": \"healthy\"'" &&
	ok http_check_healthy || fail http_check_healthy "$(health site)"
wait_until 10 sh -c "$BUILD/clbsd --socket $SOCK --json inspect flag | grep -q '\"status\": \"unhealthy\"'" &&
	ok cmd_check_unhealthy || fail cmd_check_unhealthy "$(health flag)"
clbsd exec flag touch /tmp/ok
wait_until 10 sh -c "$BUILD/clbsd --socket $SOCK --json inspect flag | grep -q '\"status\": \"healthy\"'" &&
	ok cmd_check_recovers || fail cmd_check_recovers "$(health flag)"
pid=$(field flaky pid)
wait_until 20 sh -c "p=\$($BUILD/clbsd --socket $SOCK --json inspect flaky | python3 -c 'import json,sys; print(json.load(sys.stdin)[0][\"pid\"])'); [ \"\$p\" != 0 ] && [ \"\$p\" != $pid ]" &&
	ok unhealthy_restarted || fail unhealthy_restarted "pid still $pid, health $(health flaky)"
clbsd events --type container.health --container flag --json | grep -q '"unhealthy"' &&
	ok health_events || fail health_events "no container.health event"
# A restarted daemon resumes the checks of the containers it re-adopts.
t_kill_daemon TERM
t_start_daemon || exit 1
wait_until 10 sh -c "$BUILD/clbsd --socket $SOCK --json inspect site | grep -q '\"status\": \"healthy\"'" &&
	ok checks_resume_after_restart || fail checks_resume_after_restart "$(health site)"
t_done
