#!/bin/bash
# The persistent console: attach replays the scrollback, two viewers see the
# same screen, input from one reaches the process, Ctrl-Q detaches without
# touching it, and the window size follows the attaching terminal.
. "$(dirname "$0")/../lib.sh"
command -v tmux >/dev/null || { skip all "tmux is not installed"; exit 0; }
t_setup
t_forge
TM="tmux -L clbsd-$T_ID"
trap '$TM kill-server 2>/dev/null; t_cleanup' EXIT

clbsd run -d -t -i --name con forge sh -c 'echo marker-before-attach; exec sh' >/dev/null
sleep 0.3
CON="$BUILD/clbsd --socket $SOCK console con"
$TM new-session -d -s v1 -x 100 -y 30 "$CON; echo viewer1-ended; sleep 30"
$TM new-session -d -s v2 -x 90 -y 20 "$CON; echo viewer2-ended; sleep 30"
pane() { $TM capture-pane -p -t "$1" -S -100; }
wait_until 5 sh -c "$TM capture-pane -p -t v1 | grep -q marker-before-attach" && ok scrollback_replayed ||
	fail scrollback_replayed "$(pane v1)"
wait_until 5 sh -c "$TM capture-pane -p -t v2 | grep -q marker-before-attach" && ok second_viewer_replayed ||
	fail second_viewer_replayed "$(pane v2)"

$TM send-keys -t v1 'echo typed-$((6*7))' Enter
wait_until 5 sh -c "$TM capture-pane -p -t v1 | grep -q typed-42" && ok input_reaches_process ||
	fail input_reaches_process "$(pane v1)"
wait_until 5 sh -c "$TM capture-pane -p -t v2 | grep -q typed-42" && ok both_viewers_see_output ||
	fail both_viewers_see_output "$(pane v2)"

# Window size follows the terminal that attached (or resized) last.
$TM resize-window -t v1 -x 80 -y 25
sleep 0.3
rows=$($TM display -p -t v1 '#{pane_height}')
$TM send-keys -t v1 'stty size' Enter
wait_until 5 sh -c "$TM capture-pane -p -t v1 | grep -q '^$rows 80$'" &&
	ok window_size_follows || fail window_size_follows "want '$rows 80': $(pane v1)"

$TM send-keys -t v1 'tty' Enter
wait_until 5 sh -c "$TM capture-pane -p -t v1 | grep -q '^/dev/console$'" &&
	ok console_is_a_named_tty || fail console_is_a_named_tty "$(pane v1)"

$TM send-keys -t v1 C-q
wait_until 5 sh -c "$TM capture-pane -p -t v1 | grep -q viewer1-ended" && ok ctrl_q_detaches ||
	fail ctrl_q_detaches "$(pane v1)"
[ "$(field con state)" = running ] && ok detach_keeps_process || fail detach_keeps_process "$(field con state)"

# A later attach still replays what happened before, including typed-42.
$TM new-session -d -s v3 "$CON; echo viewer3-ended; sleep 30"
wait_until 5 sh -c "$TM capture-pane -p -t v3 | grep -q typed-42" && ok reattach_replays ||
	fail reattach_replays "$(pane v3)"
$TM send-keys -t v3 'exit' Enter
wait_until 5 sh -c "$TM capture-pane -p -t v2 | grep -q viewer2-ended" && ok viewers_end_on_exit ||
	fail viewers_end_on_exit "$(pane v2)"
wait_until 5 sh -c "[ \"\$($BUILD/clbsd --socket $SOCK --json inspect con | python3 -c 'import json,sys; print(json.load(sys.stdin)[0][\"state\"])')\" = exited ]" &&
	ok container_exited || fail container_exited "$(field con state)"
t_done
