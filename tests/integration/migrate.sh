#!/bin/bash
# migrate between two daemons on this host (two roots): the container ends
# up running on the target with its files and gone from the source; --keep
# keeps the source; a failed migration (the target refuses the import) puts
# everything back. Over ssh too, with the image sent when the target lacks
# it (same id there), and taken back when the migration or its load fails.
. "$(dirname "$0")/../lib.sh"
t_setup
t_forge
# The target: a second daemon with its own root, run dir, socket and cgroups.
ROOT2="$TMP/root2"
RUN2="$TMP/run2"
SOCK2="$RUN2/clbsd.sock"
D2=""
start2() {
	unshare --mount --net --propagation private -- sh -c "$T_DETACH_ZFS; "'exec "$@"' sh \
		"$BUILD/clbsdd" --root "$ROOT2" --run "$RUN2" --socket "$SOCK2" --config "$TMP/none.conf" \
		--cgroup-parent "clbsd-$T_ID-2" --pool=0 >>"$TMP/daemon2.log" 2>&1 &
	D2=$!
	wait_until 10 c2 info >/dev/null 2>&1
}
c2() { "$BUILD/clbsd" --socket "$SOCK2" "$@"; }
stop2() {
	for n in $(c2 ps -a --json 2>/dev/null | python3 -c 'import json,sys
for c in json.load(sys.stdin): print(c["name"])' 2>/dev/null); do c2 rm -f "$n" >/dev/null 2>&1; done
	[ -n "$D2" ] && kill "$D2" 2>/dev/null
	[ -n "$D2" ] && wait "$D2" 2>/dev/null
	D2=""
	find /sys/fs/cgroup -maxdepth 2 -type d -name "clbsd-$T_ID-2" -exec rmdir {} + 2>/dev/null
}
trap 'stop2; t_cleanup' EXIT
start2 || { fail target_up "second daemon did not start"; exit 1; }

# The target refuses the import (a directory of that name is in its way):
# nothing is left there, and the container runs here again. (A missing
# image is no failure any more: migrate sends it, as migrate_decl.sh checks.)
clbsd run -d --name app forge sleep 300 >/dev/null
clbsd exec app sh -c 'echo precious > /state'
pid=$(field app pid)
mkdir -p "$ROOT2/containers/app"
out=$(clbsd migrate -t 1 app --to "unix:$SOCK2" 2>&1)
rc=$?
rmdir "$ROOT2/containers/app"
[ $rc -eq 1 ] && echo "$out" | grep -q "exists already" && [ "$(field app state)" = running ] &&
	! c2 inspect app >/dev/null 2>&1 && [ "$(clbsd exec app cat /state)" = precious ] &&
	ok failed_migration_puts_back || fail failed_migration_puts_back "rc=$rc $out state=$(field app state)"

# The target gets the same image (image ids are not content digests yet, so
# a forge there would differ): copied into its store while it is down.
stop2
mkdir -p "$ROOT2/images"
cp -a "${ROOT:?}"/images/. "$ROOT2/images/"
start2 || { fail target_up "second daemon did not come back"; exit 1; }
out=$(clbsd migrate -t 1 app --to "unix:$SOCK2" 2>"$TMP/progress")
[ "$out" = app ] && grep -q "importing on" "$TMP/progress" && ok migrate_reports_progress ||
	fail migrate_reports_progress "$out $(cat "$TMP/progress")"
[ "$(c2 --json inspect app | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["state"])')" = running ] &&
	[ "$(c2 exec app cat /state)" = precious ] && ok migrated_runs_on_target || fail migrated_runs_on_target "$(c2 ps -a)"
! clbsd inspect app >/dev/null 2>&1 && ! kill -0 "$pid" 2>/dev/null && ok gone_from_source ||
	fail gone_from_source "$(clbsd ps -a)"

# --keep, and a stopped container stays stopped.
clbsd create --name cold forge true >/dev/null
clbsd migrate --keep cold --to "unix:$SOCK2" >/dev/null 2>&1 && clbsd inspect cold >/dev/null &&
	[ "$(c2 --json inspect cold | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["state"])')" = created ] &&
	ok migrate_keep_stopped || fail migrate_keep_stopped "$(c2 ps -a)"

# Over ssh, to an sshd this test runs on loopback (Debian's openssh-server).
SSHD=""
stop_sshd() { [ -n "$SSHD" ] && kill "$SSHD" 2>/dev/null && wait "$SSHD" 2>/dev/null; SSHD=""; }
trap 'stop_sshd; stop2; t_cleanup' EXIT
if [ ! -x /usr/sbin/sshd ]; then
	fail ssh_migrate "no /usr/sbin/sshd: scripts/deps.sh check installs openssh-server"
else
	S="$TMP/ssh"
	mkdir -p "$S" /run/sshd
	ssh-keygen -q -t ed25519 -N '' -f "$S/host" && ssh-keygen -q -t ed25519 -N '' -f "$S/id"
	cp "$S/id.pub" "$S/authorized_keys"
	port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
	cat >"$S/config" <<CONF
Port $port
ListenAddress 127.0.0.1
HostKey $S/host
PidFile $S/pid
AuthorizedKeysFile $S/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
CONF
	/usr/sbin/sshd -D -e -f "$S/config" 2>>"$TMP/sshd.log" &
	SSHD=$!
	export CLBSD_SSH_COMMAND="ssh -i $S/id -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR"
	export CLBSD_REMOTE="$BUILD/clbsd"
	wait_until 5 sh -c "$CLBSD_SSH_COMMAND -o BatchMode=yes -p $port root@127.0.0.1 true" ||
		fail sshd_up "$(cat "$TMP/sshd.log")"
	clbsd run -d --name sapp forge sleep 300 >/dev/null
	clbsd exec sapp sh -c 'echo over-ssh > /state'
	out=$(clbsd migrate -t 1 sapp --to "ssh://root@127.0.0.1:$port$SOCK2" 2>"$TMP/progress")
	[ "$out" = sapp ] &&
		[ "$(c2 --json inspect sapp | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["state"])')" = running ] &&
		[ "$(c2 exec sapp cat /state)" = over-ssh ] && ! clbsd inspect sapp >/dev/null 2>&1 &&
		ok ssh_migrate || fail ssh_migrate "$out $(cat "$TMP/progress")"
	# The target lacks the image: it goes through the same ssh, keeping its id.
	# First the target refuses the import (a directory in the way): the image
	# it was sent goes again with the container, and the source runs on.
	clbsd forge sshimg >/dev/null || fail forge_sshimg "clbsd forge sshimg failed"
	img=$(clbsd --json image inspect sshimg | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])')
	has2() { c2 --json images | python3 -c 'import json,sys
sys.exit(0 if any(i["id"]==sys.argv[1] for i in json.load(sys.stdin)) else 1)' "$1"; }
	clbsd run -d --name simg sshimg sleep 300 >/dev/null
	clbsd exec simg sh -c 'echo with-image > /state'
	! has2 "$img" || fail ssh_image_absent "the target has $img already"
	mkdir -p "$ROOT2/containers/simg"
	out=$(clbsd migrate -t 1 simg --to "ssh://root@127.0.0.1:$port$SOCK2" 2>&1)
	rc=$?
	rmdir "$ROOT2/containers/simg"
	[ $rc -eq 1 ] && echo "$out" | grep -q "sent its image" &&
		echo "$out" | grep -q "removed the image it sent there" && ! has2 "$img" &&
		! c2 inspect simg >/dev/null 2>&1 && [ "$(field simg state)" = running ] &&
		ok ssh_failed_migration_takes_image_back ||
		fail ssh_failed_migration_takes_image_back "rc=$rc $out"
	# The load there works but its answer is lost (the remote clbsd fails
	# after it): the step is named, and the image it made there goes again.
	cat >"$TMP/remote-wrap" <<WRAP
#!/bin/sh
case " \$* " in *" image load "*) "$BUILD/clbsd" "\$@" >/dev/null && : >"$TMP/loaded-there"; echo "connection lost" >&2; exit 255 ;; esac
exec "$BUILD/clbsd" "\$@"
WRAP
	chmod +x "$TMP/remote-wrap"
	out=$(CLBSD_REMOTE="$TMP/remote-wrap" clbsd migrate -t 1 simg \
		--to "ssh://root@127.0.0.1:$port$SOCK2" 2>&1)
	rc=$?
	[ $rc -eq 1 ] && [ -e "$TMP/loaded-there" ] &&
		echo "$out" | grep -q "load its image $img there: .*connection lost" &&
		! has2 "$img" && ! c2 inspect simg >/dev/null 2>&1 &&
		[ "$(field simg state)" = running ] && ok ssh_image_load_failure_undone ||
		fail ssh_image_load_failure_undone "rc=$rc $out"
	# The target has an image of its own under the same name: it keeps it,
	# and the sent one is loaded as sshimg:migrated-ID12.
	c2 forge sshimg >/dev/null || fail forge_sshimg_there "clbsd forge sshimg there failed"
	theirs=$(c2 --json image inspect sshimg | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])')
	out=$(clbsd migrate -t 1 simg --to "ssh://root@127.0.0.1:$port$SOCK2" 2>"$TMP/progress")
	[ "$out" = simg ] && [ "$theirs" != "$img" ] &&
		[ "$(c2 --json image inspect sshimg | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])')" = "$theirs" ] &&
		[ "$(c2 --json image inspect "sshimg:migrated-${img:0:12}" | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])')" = "$img" ] &&
		ok ssh_migrate_keeps_targets_image_name ||
		fail ssh_migrate_keeps_targets_image_name "theirs=$theirs img=$img $out $(cat "$TMP/progress") $(c2 images)"
	[ "$out" = simg ] && grep -q "sent its image, which the target lacked" "$TMP/progress" &&
		[ "$(c2 --json image inspect "$img" | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])')" = "$img" ] &&
		[ "$(c2 --json inspect simg | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["image_id"])')" = "$img" ] &&
		[ "$(c2 exec simg cat /state)" = with-image ] && ! clbsd inspect simg >/dev/null 2>&1 &&
		ok ssh_migrate_sends_image || fail ssh_migrate_sends_image "$out $(cat "$TMP/progress")"
	# A target that refuses (no such socket there): the source keeps running.
	clbsd run -d --name sapp2 forge sleep 300 >/dev/null
	out=$(clbsd migrate -t 1 sapp2 --to "ssh://root@127.0.0.1:$port/nonexistent.sock" 2>&1)
	rc=$?
	[ $rc -ne 0 ] && [ "$(field sapp2 state)" = running ] && ok ssh_migrate_refused_keeps_source ||
		fail ssh_migrate_refused_keeps_source "rc=$rc $out"
	# Export to standard output, import from standard input, through ssh.
	clbsd export -o - sapp2 | $CLBSD_SSH_COMMAND -p "$port" root@127.0.0.1 \
		"$BUILD/clbsd --socket $SOCK2 import --name piped -" >/dev/null 2>"$TMP/err" &&
		c2 inspect piped >/dev/null && ok export_stdout_import_stdin ||
		fail export_stdout_import_stdin "$(cat "$TMP/err")"
	stop_sshd
fi

# Usage errors.
clbsd migrate app >/dev/null 2>&1
[ $? -eq 2 ] && ok migrate_needs_to || fail migrate_needs_to "status not 2"
clbsd migrate app --to "ftp://x" >/dev/null 2>&1
[ $? -eq 2 ] && ok migrate_bad_target || fail migrate_bad_target "status not 2"
t_done
