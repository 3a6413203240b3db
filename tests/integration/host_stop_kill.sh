#!/bin/bash
# `clbsd host export --stop` killed (SIGKILL) after it stopped the running
# containers: it leaves them stopped and <root>/host-export.json listing
# them; the next `host export` starts them again first (docs/host.md
# "Consistency"), and an export that ends removes the file.
. "$(dirname "$0")/../lib.sh"
t_setup
t_forge
state() { field "$1" state; }
for n in a b; do
	clbsd run -d --name "$n" forge sleep 300 >/dev/null
	clbsd exec "$n" sh -c 'head -c 200000000 /dev/zero > /big'
done
"$BUILD/clbsd" --socket "$SOCK" host export --stop -o "$TMP/x.host" >/dev/null 2>&1 &
pid=$!
# Killed once both are listed and stopped (the export copies 400 MB then).
wait_until 30 sh -c 'grep -q "\"a\".*\"b\"\|\"b\".*\"a\"" "$0/host-export.json"' "$ROOT"
for _ in $(seq 150); do
	[ "$(state a)" != running ] && [ "$(state b)" != running ] && break
	sleep 0.1
done
kill -KILL "$pid" 2>/dev/null
wait "$pid" 2>/dev/null
[ -f "$ROOT/host-export.json" ] && [ "$(state a)" != running ] && [ "$(state b)" != running ] &&
	ok killed_stop_export_leaves_marker ||
	fail killed_stop_export_leaves_marker "$(cat "$ROOT/host-export.json" 2>&1); a=$(state a) b=$(state b)"
rm -rf "$TMP"/.clbsd-host-* "$TMP"/x.host*
out=$(clbsd host export -o "$TMP/y.host" 2>&1)
rc=$?
[ $rc -eq 0 ] && [ "$(state a)" = running ] && [ "$(state b)" = running ] &&
	[ ! -e "$ROOT/host-export.json" ] && grep -q "killed before it ended" <<<"$out" &&
	ok next_export_starts_them_again ||
	fail next_export_starts_them_again "rc=$rc $out a=$(state a) b=$(state b)"
t_done
