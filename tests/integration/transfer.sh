#!/bin/bash
# export and import: a round trip reproduces every file; the archive is
# checked before anything is made; a damaged or foreign file, a missing
# image or a taken name change nothing; a daemon killed during an import
# leaves either the whole container or nothing.
. "$(dirname "$0")/../lib.sh"
t_setup
t_forge

count() { find "$ROOT/containers" -mindepth 1 -maxdepth 1 -name '[!.]*' | wc -l; }
no_recv() { ! find "$ROOT/tmp" -mindepth 1 -maxdepth 1 -name '.recv-*' | grep -q .; }
sums() { clbsd exec "$1" sh -c 'find /data /etc -type f | sort | xargs md5sum'; }
clbsd run -d --name src forge sleep 300 >/dev/null
clbsd exec src sh -c 'mkdir -p /data/sub; head -c 300000 /dev/urandom > /data/blob; echo hello > /data/sub/x; echo changed >> /etc/hosts'
before=$(sums src)
out=$(clbsd export -o "$TMP/src.clbsd" src)
[ "$out" = "$TMP/src.clbsd" ] && [ -s "$TMP/src.clbsd" ] && ok export_writes_file || fail export_writes_file "$out"
head -c 4096 "$TMP/src.clbsd" | python3 -c 'import json,sys; h=json.loads(sys.stdin.read()); assert h["format"]=="clbsd-export" and h["image"]["id"] and len(h["stream_xxh3"])==32' &&
	ok export_header || fail export_header "$(head -c 300 "$TMP/src.clbsd")"
clbsd export -o "$TMP/src.clbsd" src >/dev/null 2>&1 && fail export_no_overwrite "overwrote" || ok export_no_overwrite
[ -z "$(clbsd snapshots src | tail -n +2)" ] && ok export_leaves_no_snapshot || fail export_leaves_no_snapshot "$(clbsd snapshots src)"

clbsd rm -f src >/dev/null
[ "$(clbsd import "$TMP/src.clbsd")" = src ] && [ "$(field src state)" = created ] && ok import_recreates ||
	fail import_recreates "$(field src state)"
clbsd start src >/dev/null
[ "$(sums src)" = "$before" ] && ok round_trip_checksums || fail round_trip_checksums "$(diff <(echo "$before") <(sums src))"
[ "$(clbsd import --name copy "$TMP/src.clbsd")" = copy ] && clbsd start copy >/dev/null &&
	[ "$(sums copy)" = "$before" ] && ok import_under_new_name || fail import_under_new_name "copy differs"

# Refusals that change nothing.
n_before=$(count)
out=$(clbsd import "$TMP/src.clbsd" 2>&1)
[ $? -eq 1 ] && echo "$out" | grep -q "exists already" && ok import_name_taken || fail import_name_taken "$out"
cp "$TMP/src.clbsd" "$TMP/bad.clbsd"
printf 'X' | dd of="$TMP/bad.clbsd" bs=1 seek=9000 conv=notrunc 2>/dev/null
out=$(clbsd import --name bad "$TMP/bad.clbsd" 2>&1)
[ $? -eq 1 ] && echo "$out" | grep -q "damaged" && ok import_damaged_refused || fail import_damaged_refused "$out"
head -c 20000 "$TMP/src.clbsd" >"$TMP/cut.clbsd"
out=$(clbsd import --name cut "$TMP/cut.clbsd" 2>&1)
[ $? -eq 1 ] && echo "$out" | grep -q "cut short" && ok import_truncated_refused || fail import_truncated_refused "$out"
echo 'not an export' >"$TMP/junk"
out=$(clbsd import --name junk "$TMP/junk" 2>&1)
[ $? -eq 1 ] && echo "$out" | grep -q "not a clbsd export" && ok import_junk_refused || fail import_junk_refused "$out"
# Edited and sealed again (the header has a checksum of its own).
python3 "$TOP/tests/security/archive_forge.py" edit "$BUILD/tests/security/xxh128" \
	"$TMP/src.clbsd" "$TMP/noimg.clbsd" 'h["image"]["id"] = "0" * 64'
out=$(clbsd import --name noimg "$TMP/noimg.clbsd" 2>&1)
[ $? -eq 1 ] && echo "$out" | grep -q "needs image" && ok import_missing_image || fail import_missing_image "$out"
[ "$(count)" = "$n_before" ] && no_recv &&
	ok refusals_leave_nothing || fail refusals_leave_nothing "$(ls -a "$ROOT/containers" "$ROOT/tmp")"
clbsd import --name 'Bad_Name' "$TMP/src.clbsd" >/dev/null 2>&1
[ $? -eq 2 ] && ok import_bad_name_usage || fail import_bad_name_usage "status not 2"

# A daemon killed during an import: the whole container or nothing.
clbsd exec src sh -c 'head -c 40000000 /dev/urandom > /data/big'
clbsd export -o "$TMP/big.clbsd" src >/dev/null
clbsd import --name half "$TMP/big.clbsd" >/dev/null 2>&1 &
ipid=$!
sleep 0.2
t_kill_daemon KILL
wait "$ipid" 2>/dev/null
t_start_daemon || exit 1
if clbsd inspect half >/dev/null 2>&1; then
	clbsd start half >/dev/null
	[ "$(clbsd exec half md5sum /data/big | cut -d' ' -f1)" = "$(clbsd exec src md5sum /data/big | cut -d' ' -f1)" ] &&
		ok killed_import_whole_or_nothing || fail killed_import_whole_or_nothing "half container differs"
else
	[ ! -e "$ROOT/containers/half" ] && no_recv &&
		ok killed_import_whole_or_nothing || fail killed_import_whole_or_nothing "$(ls -a "$ROOT/containers" "$ROOT/tmp")"
fi

# An import into a name whose volumes were kept (rm without -v), cut short
# by the daemon's end after the container's files and a new volume moved
# in (as its marker says): the next start removes those and keeps the
# volume that was there before, which a new container of that name finds.
clbsd run -d --name keep -v kv:/kv forge sleep 300 >/dev/null
clbsd exec keep sh -c 'echo precious > /kv/f'
clbsd rm -f keep >/dev/null
t_kill_daemon KILL
mkdir -p "$ROOT/containers/keep" "$ROOT/volumes/keep/fresh" "$ROOT/transfer"
cp "$ROOT/containers/src/container.json" "$ROOT/containers/keep/"
echo new >"$ROOT/volumes/keep/fresh/g"
printf '{"name":"keep","since":%s,"volumes_before":["kv"]}' "$(date +%s)" >"$ROOT/transfer/recv-keep.json"
t_start_daemon || exit 1
! clbsd inspect keep >/dev/null 2>&1 && [ ! -e "$ROOT/containers/keep" ] && [ ! -e "$ROOT/volumes/keep/fresh" ] &&
	[ ! -e "$ROOT/transfer/recv-keep.json" ] && grep -q "import into keep was cut short" "$TMP/daemon.log" &&
	[ "$(clbsd run --rm --name keep -v kv:/kv forge cat /kv/f 2>&1)" = precious ] &&
	ok cut_short_import_keeps_volumes_that_were_there ||
	fail cut_short_import_keeps_volumes_that_were_there "$(ls -a "$ROOT/containers" "$ROOT/volumes/keep" 2>&1) $(grep keep "$TMP/daemon.log" | tail -5)"
t_done
