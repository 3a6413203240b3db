#!/bin/bash
# A daemon killed during an export left FILE.tmp-PID and an export-HEX
# snapshot among the user's snapshots. Now the temporary file is
# FILE.clbsd-tmp-HEX and both are named in a marker under <root>/transfer/:
# the next start removes them, and only them (a user's file with a
# look-alike name and a user's snapshot named export-... stay).
. "$(dirname "$0")/../lib.sh"
t_setup
t_forge

clbsd run -d --name src forge sleep 300 >/dev/null
clbsd exec src sh -c 'head -c 300000000 /dev/zero > /big'
clbsd snapshot src export-mine >/dev/null
echo mine >"$TMP/out.clbsd.clbsd-tmp-0123abcd"
echo mine >"$TMP/out.clbsd.tmp-1"
snaps() { clbsd snapshots src | tail -n +2 | awk '{print $1}' | sort | tr '\n' ' '; }
# With the daemon down: the dir driver keeps snapshots in <ctr_dir>/snapshots/LABEL.
snaps_on_disk() { find "$ROOT/containers/src/snapshots" -mindepth 1 -maxdepth 1 -printf '%f\n' | sort | tr '\n' ' '; }
tmpfile() {
	local f
	for f in "$TMP"/out.clbsd.clbsd-tmp-*; do
		[ -e "$f" ] && [ "${f##*-}" != 0123abcd ] && echo "$f"
	done
}
# The stream is being written: its snapshot exists and the file has grown past the header.
writing() {
	local f
	f=$(tmpfile) && [ -n "$f" ] && [ "$(stat -c %s "$f")" -gt 65536 ]
}

clbsd export -o "$TMP/out.clbsd" src >/dev/null 2>&1 &
epid=$!
if wait_until 60 writing; then
	t_kill_daemon KILL
	wait "$epid" 2>/dev/null
	left=$(tmpfile)
	before=$(snaps_on_disk)
	t_start_daemon || exit 1
	[ -n "$left" ] && [ ! -e "$left" ] && [ ! -e "$TMP/out.clbsd" ] && ok killed_export_tmp_removed ||
		fail killed_export_tmp_removed "left: $left; now: $(ls "$TMP")"
	after=$(snaps)
	grep -q "export-[0-9a-f]\{8\} " <<<"$before" && [ "$after" = "export-mine " ] &&
		ok killed_export_snapshot_removed ||
		fail killed_export_snapshot_removed "before the restart: $before; after: $after"
	[ -f "$TMP/out.clbsd.clbsd-tmp-0123abcd" ] && [ -f "$TMP/out.clbsd.tmp-1" ] &&
		ok users_files_kept || fail users_files_kept "$(ls "$TMP")"
	[ -z "$(ls -A "$ROOT/transfer" 2>/dev/null)" ] && ok markers_removed ||
		fail markers_removed "$(ls -A "$ROOT/transfer")"
	# The container is usable: a new export works.
	clbsd export -o "$TMP/again.clbsd" src >/dev/null && ok export_after_restart ||
		fail export_after_restart "failed"
else
	kill "$epid" 2>/dev/null
	wait "$epid" 2>/dev/null
	fail killed_export "the export never got to writing its stream"
fi
t_done
