#!/bin/bash
# Events: typed, numbered, filtered, followed, and kept across daemon
# restarts in the journal.
. "$(dirname "$0")/../lib.sh"
t_setup
t_forge
clbsd run --name one forge true >/dev/null
clbsd run --name two forge true >/dev/null
evjson() { clbsd events --json "$@" | python3 -c 'import json,sys
for l in sys.stdin: e=json.loads(l); print(e["seq"], e["type"], e["container"] or "-")'; }

if out=$(timeout 5 "$BUILD/clbsd" --socket "$SOCK" events --json) && [ -n "$out" ]; then
	ok without_follow_exits
else
	fail without_follow_exits "did not end, or printed nothing"
fi
seqs=$(evjson | awk '{print $1}')
[ "$(echo "$seqs" | sort -n | tr '\n' ' ')" = "$(echo "$seqs" | tr '\n' ' ')" ] &&
	[ "$(echo "$seqs" | sort -u | wc -l)" = "$(echo "$seqs" | wc -l)" ] && ok seq_increasing ||
	fail seq_increasing "$seqs"
evjson --container one | awk '{print $3}' | sort -u | grep -qx one &&
	[ "$(evjson --container one | awk '{print $3}' | sort -u | wc -l)" = 1 ] && ok filter_container ||
	fail filter_container "$(evjson --container one)"
types=$(evjson --type container.exited | awk '{print $2}' | sort -u)
[ "$types" = container.exited ] && ok filter_type || fail filter_type "$types"
[ "$(evjson --type image | awk '{print $2}' | sort -u)" = image.imported ] && ok filter_type_prefix ||
	fail filter_type_prefix "$(evjson --type image)"
last=$(evjson | tail -n 1 | awk '{print $1}')
[ -z "$(evjson --since "$last")" ] && ok since_excludes_seen || fail since_excludes_seen "$(evjson --since "$last")"

timeout 10 "$BUILD/clbsd" --socket "$SOCK" events -f --json --container three >"$TMP/f" &
FP=$!
sleep 0.3
clbsd run --name three forge true >/dev/null
wait_until 5 grep -q '"container.exited"' "$TMP/f" && ok follow_sees_new || fail follow_sees_new "$(cat "$TMP/f")"
kill "$FP" 2>/dev/null
wait "$FP" 2>/dev/null

# After a restart the ring is empty, but the journal remembers, and numbering continues.
t_kill_daemon TERM
t_start_daemon || exit 1
evjson --since 0 | grep -q 'container.created one' && ok journal_survives_restart ||
	fail journal_survives_restart "$(evjson --since 0 | head)"
newest=$(evjson --since 0 | tail -n 1 | awk '{print $1}')
[ "$newest" -gt "$last" ] && evjson --since "$last" | grep -q 'daemon.started' && ok seq_continues ||
	fail seq_continues "newest=$newest last=$last"
t_done
