#!/bin/bash
# rm -f of a running container leaves no mount, cgroup, process or file.
. "$(dirname "$0")/../lib.sh"
t_setup
t_forge
mkdir -p "$TMP/vol"
clbsd run -d --name doomed -v "$TMP/vol:/data" --memory 32M forge sh -c 'sleep 300 & sleep 300' >/dev/null
pid=$(field doomed pid)
shim=$(field doomed shim_pid)
cg=$(field doomed cgroup)
[ -n "$cg" ] && [ -d "/sys/fs/cgroup/memory/$cg" ] && ok cgroup_reported || fail cgroup_reported "cgroup '$cg'"
kids=$(cat /proc/"$pid"/task/*/children 2>/dev/null)
clbsd rm doomed >/dev/null 2>&1 && fail rm_refuses_running "removed a running container" ||
	ok rm_refuses_running
clbsd rm -f doomed >/dev/null || fail rm_force "rm -f failed"
! clbsd inspect doomed >/dev/null 2>&1 && ok rm_force || fail rm_force "still listed"
sleep 0.3
alive=""
for p in $pid $shim $kids; do kill -0 "$p" 2>/dev/null && alive="$alive $p"; done
[ -z "$alive" ] && ok no_process_left || fail no_process_left "alive:$alive"
[ ! -e "$ROOT/containers/doomed" ] && [ ! -e "$RUN/containers/doomed" ] && ok no_files_left ||
	fail no_files_left "$(ls -R "$ROOT/containers/doomed" "$RUN/containers/doomed" 2>&1)"
[ ! -e "$RUN/shims/doomed.sock" ] && ok no_socket_left || fail no_socket_left "socket remains"
left=$(find /sys/fs/cgroup -maxdepth 3 -path "*/$cg" 2>/dev/null)
[ -z "$left" ] && ok no_cgroup_left || fail no_cgroup_left "$left"
grep -q "containers/doomed" /proc/*/mountinfo 2>/dev/null && fail no_mount_left "a mount remains" ||
	ok no_mount_left
[ -d "$TMP/vol" ] && ok volume_source_kept || fail volume_source_kept "host dir removed"

# A removed container's directory is emptied and kept for the next create
# (a spare): nothing of what it held may show in the next container.
clbsd run --rm forge sh -c 'echo secret > /root/s; mkdir -p /opt/left; echo x > /opt/left/f; chmod 700 /' >/dev/null
wait_until 5 sh -c "ls -d '$ROOT'/containers/.spare-* >/dev/null 2>&1" && ok removed_dir_kept_as_spare ||
	fail removed_dir_kept_as_spare "$(ls -a "$ROOT/containers")"
left=$(find "$ROOT"/containers/.spare-* -mindepth 2 2>/dev/null)
[ -z "$left" ] && ok spare_is_empty || fail spare_is_empty "$left"
out=$(clbsd run --rm forge sh -c 'cat /root/s 2>/dev/null; ls /opt 2>/dev/null; stat -c %a /')
[ "$out" = 755 ] && ok spare_shows_nothing || fail spare_shows_nothing "$out"
t_done
