#!/bin/bash
# User namespaces (--userns auto): the container's root is an unprivileged
# host uid from a range of its own, its files still look right inside
# (idmapped mounts), and the range is stable across restarts, daemon
# restarts, recreates and export/import. The zfs-fuse refusal is in
# userns-zfs.sh.
. "$(dirname "$0")/../lib.sh"
t_setup
t_forge

x() { clbsd exec "$@" 2>&1; }
base_of() { field "$1" config.userns.uid 2>/dev/null; }
# The Uid: line of a host pid's status: "real effective saved fs".
host_uids() { awk '/^Uid:/ {print $2, $3, $4, $5}' "/proc/$1/status"; }

vol="$TMP/vol"
mkdir -p "$vol"
clbsd run -d --name u1 --userns auto -v "$vol:/data" forge sleep 300 >/dev/null ||
	fail create "clbsd run --userns auto failed"
b1=$(base_of u1)
case "$b1" in
'' | *[!0-9]*) fail range_recorded "config.userns.uid is \"$b1\"" ;;
*) [ "$b1" -ge 65536 ] && ok range_recorded || fail range_recorded "base $b1 is not above the host's ids" ;;
esac

# Inside: root, and the image's files are root's.
[ "$(x u1 id -u)" = 0 ] && ok inside_uid_is_0 || fail inside_uid_is_0 "$(x u1 id -u)"
own=$(x u1 stat -c '%u %g' /bin/busybox)
[ "$own" = "0 0" ] && ok image_files_owned_by_root_inside || fail image_files_owned_by_root_inside "$own"
map=$(x u1 cat /proc/self/uid_map | awk '{print $1, $2, $3}')
[ "$map" = "0 $b1 65536" ] && ok uid_map_is_the_range || fail uid_map_is_the_range "$map"

# Outside: the init runs as the range's base, not as root.
pid=$(field u1 pid)
uids=$(host_uids "$pid")
[ "$uids" = "$b1 $b1 $b1 $b1" ] && ok init_runs_as_base_uid_on_host ||
	fail init_runs_as_base_uid_on_host "pid $pid Uid: $uids (base $b1)"
gids=$(awk '/^Gid:/ {print $2}' "/proc/$pid/status")
groups=$(awk '/^Groups:/ {$1=""; print}' "/proc/$pid/status" | tr -d ' ')
# Group 0 inside (the range's base) and nothing of the host's (root's group 0 would open files).
[ "$gids" = "$(field u1 config.userns.gid)" ] && [ "$groups" = "$gids" ] && ok no_host_groups ||
	fail no_host_groups "Gid $gids Groups '$groups'"
# An exec'd process joins the user namespace too.
[ "$(x u1 cat /proc/self/uid_map | awk '{print $2}')" = "$b1" ] && ok exec_joins_userns ||
	fail exec_joins_userns "$(x u1 cat /proc/self/uid_map)"

# A host directory bound in is not idmapped: what the container makes
# there is root's inside and the range's base on the host, and host root's
# files are nobody's inside: the container cannot write them.
# (The operator gives the directory to the range, as with podman's :U.)
chown "$b1:$b1" "$vol"
x u1 sh -c 'echo hi > /data/made' >/dev/null
in_own=$(x u1 stat -c '%u %g' /data/made)
out_own=$(stat -c '%u %g' "$vol/made" 2>/dev/null)
[ "$in_own" = "0 0" ] && [ "$out_own" = "$b1 $b1" ] && ok bind_files_shifted_to_range ||
	fail bind_files_shifted_to_range "inside '$in_own', on the host '$out_own' (base $b1)"
mkdir -p "$vol/rootdir"
echo original >"$vol/rootdir/rootfile"
chmod 0644 "$vol/rootdir/rootfile"
[ "$(x u1 stat -c '%u' /data/rootdir/rootfile)" = 65534 ] && ok host_root_file_is_nobodys_inside ||
	fail host_root_file_is_nobodys_inside "$(x u1 stat -c '%u' /data/rootdir/rootfile)"
x u1 sh -c 'echo pwned >> /data/rootdir/rootfile; echo pwned > /data/rootdir/new' >/dev/null
x u1 sh -c 'chmod 0666 /data/rootdir/rootfile; chown 0 /data/rootdir/rootfile' >/dev/null
x u1 sh -c 'rm -f /data/rootdir/rootfile' >/dev/null
[ "$(cat "$vol/rootdir/rootfile")" = original ] && [ "$(stat -c '%u %a' "$vol/rootdir/rootfile")" = "0 644" ] &&
	[ ! -e "$vol/rootdir/new" ] && ok write_host_root_file_through_bind_refused ||
	fail write_host_root_file_through_bind_refused "$(ls -ln "$vol" "$vol/rootdir" 2>&1)"
touch "$vol/given"
chown $((b1 + 1000)):$((b1 + 1000)) "$vol/given"
[ "$(x u1 stat -c '%u' /data/given)" = 1000 ] && ok bind_file_of_the_range_seen_inside ||
	fail bind_file_of_the_range_seen_inside "$(x u1 stat -c '%u' /data/given)"

# Two containers: disjoint ranges.
clbsd run -d --name u2 --userns auto forge sleep 300 >/dev/null
b2=$(base_of u2)
if [ -n "$b2" ] && [ "$b2" != "$b1" ] && { [ $((b2 - b1)) -ge 65536 ] || [ $((b1 - b2)) -ge 65536 ]; }; then
	ok ranges_disjoint
else
	fail ranges_disjoint "u1 $b1, u2 $b2"
fi
# Without --userns: the host's ids, as before.
clbsd run -d --name plain forge sleep 300 >/dev/null
pp=$(field plain pid)
[ "$(host_uids "$pp" | cut -d' ' -f1)" = 0 ] && [ -z "$(base_of plain)" ] && ok host_ids_without_userns ||
	fail host_ids_without_userns "pid $pp: $(host_uids "$pp")"

# Stable across a restart and a daemon restart.
clbsd restart u1 >/dev/null
[ "$(base_of u1)" = "$b1" ] && [ "$(host_uids "$(field u1 pid)" | cut -d' ' -f1)" = "$b1" ] &&
	ok range_stable_across_restart || fail range_stable_across_restart "now $(base_of u1), was $b1"
t_kill_daemon TERM
t_start_daemon
[ "$(base_of u1)" = "$b1" ] && [ "$(x u1 cat /proc/self/uid_map | awk '{print $2}')" = "$b1" ] &&
	ok range_stable_across_daemon_restart ||
	fail range_stable_across_daemon_restart "now $(base_of u1), was $b1"

# Root inside is nobody on the host: a process with the container's
# credentials that reaches a host file (as an escape from the mount
# namespace would) cannot write or read root's files.
hostfile="$TMP/host-owned"
echo original >"$hostfile"
chmod 0644 "$hostfile"
pid=$(field u1 pid)
nsenter --target "$pid" --user -S 0 -G 0 sh -c "echo pwned >> '$hostfile'" 2>/dev/null
[ "$(cat "$hostfile")" = original ] && ok container_root_cannot_write_host_root_file ||
	fail container_root_cannot_write_host_root_file "the file now holds: $(cat "$hostfile")"
nsenter --target "$pid" --user -S 0 -G 0 cat /etc/shadow >/dev/null 2>&1 &&
	fail container_root_cannot_read_shadow "read /etc/shadow" || ok container_root_cannot_read_shadow

# A setuid-root binary planted inside: root inside only. With no_new_privs
# it does not even raise a user inside; and what container root runs is
# the base uid outside. (busybox picks its applet by argv[0]: one copy per name.)
x u1 sh -c 'mkdir -p /s && for a in id sleep; do cp /bin/busybox /s/$a; chmod 4755 /s/$a; done' >/dev/null
[ "$(x u1 stat -c '%u %a' /s/id)" = "0 4755" ] || fail setuid_planted "$(x u1 stat -c '%u %a' /s/id)"
e=$(clbsd exec -u 1000 u1 /s/id -u 2>&1)
[ "$e" = 1000 ] && ok setuid_root_not_raised_inside || fail setuid_root_not_raised_inside "euid $e"
x u1 sh -c '/s/sleep 123 >/dev/null 2>&1 &' >/dev/null
sp=""
for p in $(pgrep -x sleep); do
	tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -q '^/s/sleep 123' && sp=$p
done
if [ -n "$sp" ]; then
	[ "$(host_uids "$sp" | cut -d' ' -f2)" = "$b1" ] && ok setuid_root_is_base_uid_outside ||
		fail setuid_root_is_base_uid_outside "euid on the host: $(host_uids "$sp")"
else
	fail setuid_root_is_base_uid_outside "the planted binary's process was not found"
fi
# From the host, the planted file is out of reach of unprivileged users
# (<root>/containers is 0700): it cannot be run as a host setuid-root binary.
planted=$(find "$ROOT/containers/u1" -path '*/s/id' -perm -4000 2>/dev/null | head -n 1)
if [ -z "$planted" ]; then
	fail planted_setuid_unreachable_from_host "the planted file was not found under $ROOT/containers/u1"
elif runuser -u nobody -- "$planted" -u >/dev/null 2>&1; then
	fail planted_setuid_unreachable_from_host "nobody ran $planted"
else
	ok planted_setuid_unreachable_from_host
fi

# Recreate of a declared container keeps its range (keyed by name).
cat >"$CONF" <<'EOF'
(container decl :image "forge" :command ("sleep" "300") :userns auto :env (("V" . "1"))
  :volumes ((:dataset "data" :path "/data")))
EOF
clbsd apply >/dev/null 2>&1
wait_until 20 sh -c "[ \"\$('$BUILD/clbsd' --socket '$SOCK' ps --json 2>/dev/null | grep -c decl)\" -gt 0 ]"
bd=$(base_of decl)
id1=$(field decl id)
sed -i 's/"1"/"2"/' "$CONF"
clbsd apply >/dev/null 2>&1
wait_until 20 sh -c "[ \"\$('$BUILD/clbsd' --socket '$SOCK' --json inspect decl | python3 -c 'import json,sys; print(json.load(sys.stdin)[0][\"id\"])')\" != '$id1' ]"
if [ -n "$bd" ] && [ "$(field decl id)" != "$id1" ] && [ "$(base_of decl)" = "$bd" ]; then
	ok range_stable_across_recreate
else
	fail range_stable_across_recreate "before $bd ($id1), after $(base_of decl) ($(field decl id))"
fi
# A named volume is clbsd's own storage: idmapped, what root makes there is
# root's inside and stored as 0 (so it is the same files under any range).
x decl sh -c 'echo hi > /data/made' >/dev/null
in_own=$(x decl stat -c '%u %g' /data/made)
made=$(find "$ROOT/volumes" -path '*decl*' -name made 2>/dev/null | head -n 1)
out_own=$(stat -c '%u %g' "$made" 2>/dev/null)
[ "$in_own" = "0 0" ] && [ "$out_own" = "0 0" ] && ok named_volume_idmapped ||
	fail named_volume_idmapped "inside '$in_own', on the host '$out_own' ($made)"
: >"$CONF"
clbsd apply >/dev/null 2>&1

# Export and import: the range travels, kept where it is free.
clbsd stop u2 >/dev/null
# A clone shares the source's files but not its range.
if clbsd clone u2 u2c >/dev/null 2>&1; then
	bc=$(base_of u2c)
	[ -n "$bc" ] && [ "$bc" != "$b2" ] && [ "$bc" != "$b1" ] && [ "$(base_of u2)" = "$b2" ] &&
		ok clone_gets_its_own_range || fail clone_gets_its_own_range "u2 $b2, its clone $bc"
	clbsd rm -f u2c >/dev/null
else
	fail clone_gets_its_own_range "clbsd clone failed: $(clbsd clone u2 u2c 2>&1)"
fi
if clbsd export -o "$TMP/u2.tar" u2 >/dev/null 2>&1; then
	clbsd rm -f u2 >/dev/null
	clbsd import --name u2 "$TMP/u2.tar" >/dev/null 2>&1
	[ "$(base_of u2)" = "$b2" ] && ok range_travels_with_import ||
		fail range_travels_with_import "imported with $(base_of u2), exported with $b2"
	clbsd import --name u3 "$TMP/u2.tar" >/dev/null 2>&1
	b3=$(base_of u3)
	[ -n "$b3" ] && [ "$b3" != "$b2" ] && [ "$b3" != "$b1" ] && ok import_of_taken_range_gets_another ||
		fail import_of_taken_range_gets_another "u3 $b3 (u1 $b1, u2 $b2)"
	clbsd start u3 >/dev/null && [ "$(x u3 id -u)" = 0 ] && ok imported_container_runs ||
		fail imported_container_runs "$(x u3 id -u)"
else
	fail range_travels_with_import "export failed"
fi

# The API refuses what it does not know.
clbsd create --userns bogus forge true >/dev/null 2>&1 && fail bad_mode_refused "accepted" ||
	ok bad_mode_refused
t_done
