#!/bin/bash
# Exporting a running container reads its files from the host while the
# container can change them (issue 14, item 6). The container swaps, in its
# root file system and in a named volume, regular files with FIFOs and
# directories with symlinks to a host directory (and to "/") as fast as it
# can, while the host exports and snapshots it over and over for a bounded
# time. A reader that stats a name and then opens it by name hangs on the
# FIFO (the export never ends, and the container stays busy), or, opening a
# path through a swapped directory, archives the host's files.
#
# Asserted: every export and snapshot ends within its timeout and succeeds
# (the race changes what the container's own archive holds, never whether
# the export works); every archive is a whole tar stream; no archive or
# snapshot holds the host's canary; the daemon answers while exports run.
. "$(dirname "$0")/../lib.sh"
t_setup
t_forge

H="$BUILD/tests/security/export_flip"
if [ ! -x "$H" ]; then
	skip all "$H is not built (make all builds it)"
	t_done
	exit 0
fi
RACE_SECS=${RACE_SECS:-10}
# The host's secret: a directory the container's symlinks point at.
token="clbsd-canary-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
mkdir -p "$TMP/host"
echo "$token" >"$TMP/host/canary"

cat >"$CONF" <<CONF
(container racer
  :image "forge"
  :command ("sleep" "300")
  :volumes ((:dataset "data" :path "/data")
            (:bind "$H" :path "/export_flip" :ro t)))
CONF
clbsd apply >/dev/null
running() { [ "$(field "$1" state)" = running ]; }
wait_until 20 running racer || { fail start "racer did not start: $(clbsd ps -a 2>&1)"; t_done; exit 1; }
clbsd exec racer mkdir /race || fail start "mkdir /race failed"

# The flipper runs a little longer than the host's loop.
clbsd exec racer /export_flip $((RACE_SECS + 4)) "$TMP/host" /race /data >"$TMP/flip.out" 2>&1 &
flip_pid=$!
# Its output comes back when it ends: see its pairs on the host instead (the
# volume's are made last, and the flipping starts right after).
wait_until 20 test -L "$ROOT/volumes/racer/data/lr" -o -L "$ROOT/volumes/racer/data/dr" ||
	fail flipper_started "$(cat "$TMP/flip.out")"

# A FIFO a hung reader waits on: open every FIFO of the container's trees
# read-write for a moment (that never blocks), so a stuck worker goes on and
# the daemon can stop at the end. Only needed when the attack worked.
release_fifos() {
	local f
	find "$ROOT/containers/racer" "$ROOT/volumes/racer" -type p 2>/dev/null |
		while read -r f; do
			exec 3<>"$f" && sleep 0.05 && exec 3>&-
		done
}

exports=0 exported=0 hung=0 failed=0 snaps=0 snapped=0 pings=0 answered=0
failmsg=""
end=$((SECONDS + RACE_SECS))
while [ $SECONDS -lt $end ]; do
	i=$((exports + snaps))
	if [ $((i % 3)) -eq 2 ]; then
		snaps=$((snaps + 1))
		timeout 15 "$BUILD/clbsd" --socket "$SOCK" snapshot racer "s$i" >"$TMP/op.out" 2>&1 &
	else
		exports=$((exports + 1))
		timeout 15 "$BUILD/clbsd" --socket "$SOCK" export -o "$TMP/e$i.clbsd" racer \
			>"$TMP/op.out" 2>&1 &
	fi
	op=$!
	# The daemon answers while the export runs.
	pings=$((pings + 1))
	timeout 5 "$BUILD/clbsd" --socket "$SOCK" info >/dev/null 2>&1 && answered=$((answered + 1))
	wait "$op"
	rc=$?
	if [ $rc -eq 124 ]; then
		hung=$((hung + 1))
		release_fifos
	elif [ $rc -ne 0 ]; then
		failed=$((failed + 1))
		failmsg=$(head -c 300 "$TMP/op.out")
	elif [ -f "$TMP/e$i.clbsd" ]; then
		exported=$((exported + 1))
	else
		snapped=$((snapped + 1))
	fi
done
wait "$flip_pid"
flip_rc=$?
[ $hung -eq 0 ] || { release_fifos; release_fifos; }
[ $flip_rc -eq 0 ] && grep -q '^flips=' "$TMP/flip.out" && ok flipper ||
	fail flipper "status $flip_rc: $(cat "$TMP/flip.out")"

# Numbers, for the report.
skipped=$(grep -c "changed while" "$TMP/daemon.log")
echo "# exports=$exports exported=$exported snapshots=$snaps snapped=$snapped hung=$hung" \
	"failed=$failed pings=$pings answered=$answered $(grep '^flips=' "$TMP/flip.out")" \
	"entries_skipped_by_the_daemon=$skipped"

[ $hung -eq 0 ] && ok no_hang || fail no_hang "$hung of $((exports + snaps)) runs did not end in 15 s"
[ $failed -eq 0 ] && ok all_succeed || fail all_succeed "$failed runs failed, the last: $failmsg"
[ $answered -eq $pings ] && ok daemon_answers ||
	fail daemon_answers "$((pings - answered)) of $pings requests were not answered in 5 s"
[ $exported -gt 0 ] && [ $((exported + snapped)) -gt 2 ] && ok raced ||
	fail raced "too few exports to prove anything ($exported exports, $snapped snapshots)"

# Every archive is a whole tar stream after its 4096-byte header, and none
# holds the canary (the tar is not compressed: grep reads its data).
bad="" leaked=""
for f in "$TMP"/e*.clbsd; do
	[ -f "$f" ] || continue
	tail -c +4097 "$f" | tar -tf - >/dev/null 2>&1 || bad="$bad ${f##*/}"
	grep -qaF "$token" "$f" && leaked="$leaked ${f##*/}"
done
[ -z "$bad" ] && ok archives_whole || fail archives_whole "not a tar stream:$bad"
# The kept snapshots hold no canary and no host file either.
grep -rqaF "$token" "$ROOT/containers/racer/snapshots" 2>/dev/null &&
	leaked="$leaked snapshots"
[ -z "$leaked" ] && ok no_host_file || fail no_host_file "the host's canary is in:$leaked"
[ "$(cat "$TMP/host/canary")" = "$token" ] && [ "$(ls "$TMP/host")" = canary ] &&
	ok host_unchanged || fail host_unchanged "$(ls -l "$TMP/host")"

# The container is still usable: a last export of it, now quiet, works.
timeout 60 "$BUILD/clbsd" --socket "$SOCK" export -o "$TMP/last.clbsd" racer >/dev/null 2>&1 &&
	ok export_after_race || fail export_after_race "failed"

# A tree nested 4000 directories deep: a walk that recursed once per level
# without a bound ran out of the worker's stack and took the daemon down.
# Now the export is refused with the reason, and the daemon goes on.
if clbsd exec racer mkdir /deep && clbsd exec racer /export_flip --deep 4000 /deep >/dev/null; then
	out=$(timeout 60 "$BUILD/clbsd" --socket "$SOCK" export -o "$TMP/deep.clbsd" racer 2>&1)
	rc=$?
	[ $rc -ne 0 ] && [ $rc -ne 124 ] && grep -q "nests too deep" <<<"$out" && [ ! -e "$TMP/deep.clbsd" ] &&
		ok deep_tree_refused || fail deep_tree_refused "status $rc: $out"
	kill -0 "$DAEMON_PID" 2>/dev/null && timeout 5 "$BUILD/clbsd" --socket "$SOCK" info >/dev/null 2>&1 &&
		ok deep_tree_daemon_alive || fail deep_tree_daemon_alive "the daemon is gone"
	snaps=$(clbsd snapshots racer 2>&1) && ! awk 'NR > 1 {print $1}' <<<"$snaps" | grep -q '^export-' &&
		ok deep_tree_no_leftover || fail deep_tree_no_leftover "$snaps"
else
	fail deep_tree_refused "could not make the deep tree"
fi
t_done
