#!/bin/bash
# (:snapshots (:every D :keep N)): scheduled snapshots are taken and pruned
# to the newest N; snapshots taken by hand are left alone.
. "$(dirname "$0")/../lib.sh"
t_setup
t_forge
cat >"$CONF" <<'CONF'
(container sched :image "forge" :command ("sleep" "300")
  :snapshots (:every "10s" :keep 2))
CONF
clbsd apply >/dev/null
wait_until 10 sh -c "$BUILD/clbsd --socket $SOCK ps | grep -q '^sched .*running'" || fail running "$(clbsd ps -a)"
clbsd snapshot sched mine >/dev/null
autos() { clbsd snapshots sched | awk 'NR>1 {print $1}' | grep -c '^auto-'; }
three() { grep -c 'sched.*container.snapshot' <(clbsd events --since 0 --json) | awk '{exit !($1 >= 4)}'; }
wait_until 15 sh -c "[ \$($BUILD/clbsd --socket $SOCK snapshots sched | grep -c '^auto-') -ge 1 ]" &&
	ok scheduled_snapshot_taken || fail scheduled_snapshot_taken "$(clbsd snapshots sched)"
# Three ticks (plus the one by hand): two scheduled ones remain.
wait_until 30 three && sleep 1
[ "$(autos)" = 2 ] && ok pruned_to_keep || fail pruned_to_keep "$(clbsd snapshots sched)"
clbsd snapshots sched | grep -q '^mine ' && ok hand_made_kept || fail hand_made_kept "$(clbsd snapshots sched)"
clbsd events --since 0 --json | grep -q 'container.snapshot_destroyed' && ok prune_event ||
	fail prune_event "no destroy event"
t_done
