#!/bin/bash
# The jail: PID 1, own hostname, host invisible, no mounts, no modules, no
# links, read-only /proc/sys and /sys, reduced capabilities, no_new_privs,
# seccomp.
. "$(dirname "$0")/../lib.sh"
t_setup
t_forge
clbsd run -d --name jail --hostname jailed forge sleep 300 >/dev/null
x() { clbsd exec jail "$@" 2>&1; }

[ "$(x cat /proc/1/cmdline | tr '\0' ' ')" = "sleep 300 " ] && ok pid1_is_the_command ||
	fail pid1_is_the_command "$(x cat /proc/1/cmdline)"
[ "$(x hostname)" = jailed ] && ok own_hostname || fail own_hostname "$(x hostname)"
n=$(x ps -o pid | tail -n +2 | wc -l)
[ "$n" -le 3 ] && ok host_processes_invisible || fail host_processes_invisible "$n processes"
[ "$(clbsd run --rm forge sh -c 'echo $$')" = 1 ] && ok run_shell_is_pid1 ||
	fail run_shell_is_pid1 "not pid 1"

x mount -t tmpfs none /mnt >/dev/null && fail mount_refused "mount worked" || ok mount_refused
x insmod /bin/busybox >/dev/null && fail module_load_refused "insmod worked" || ok module_load_refused
x ip link add d0 type dummy >/dev/null && fail link_creation_refused "ip link add worked" ||
	ok link_creation_refused
x unshare -m -u true >/dev/null && fail new_namespaces_refused "unshare worked" ||
	ok new_namespaces_refused
x nsenter -t 1 -m true >/dev/null 2>&1 && fail setns_refused "nsenter worked" || ok setns_refused
# busybox date -s reports the refusal but exits 0: look at the clock itself.
x date -s 2001-01-01 >/dev/null 2>&1
[ "$(x date +%Y)" = "$(date +%Y)" ] && ok clock_refused || fail clock_refused "the clock moved"
x swapon /dev/null >/dev/null 2>&1 && fail swapon_refused "swapon worked" || ok swapon_refused
x sh -c 'echo x > /proc/sys/kernel/hostname' >/dev/null && fail proc_sys_readonly "write worked" ||
	ok proc_sys_readonly
x sh -c 'echo 1 > /sys/kernel/profiling' >/dev/null && fail sys_readonly "write worked" ||
	ok sys_readonly
# Masked /proc files read as empty where the kernel has them.
masked=$(x sh -c 'for f in /proc/kcore /proc/keys /proc/timer_list /proc/sched_debug; do
	[ -e $f ] && echo "$f $(cat $f 2>/dev/null | wc -c)"; done')
[ -n "$masked" ] && ! echo "$masked" | grep -qv ' 0$' && ok proc_paths_masked ||
	fail proc_paths_masked "$masked"
ifaces=$(x ls /sys/class/net 2>/dev/null || x cat /proc/net/dev)
echo "$ifaces" | grep -q eth0 && fail loopback_only "$ifaces" || ok loopback_only

st=$(x cat /proc/self/status)
eff=$(echo "$st" | awk '/^CapEff/ {print $2}')
# Docker's default set: chown dac_override fowner fsetid kill setgid setuid
# setpcap net_bind_service net_raw sys_chroot mknod audit_write setfcap.
[ "$eff" = 00000000a80425fb ] && ok capabilities_reduced || fail capabilities_reduced "CapEff=$eff"
echo "$st" | grep -q '^NoNewPrivs:[[:space:]]*1' && ok no_new_privs || fail no_new_privs "not set"
echo "$st" | grep -q '^Seccomp:[[:space:]]*2' && ok seccomp_filter || fail seccomp_filter "not filtered"
ls_dev=$(x ls /dev | tr '\n' ' ')
for n in null zero full random urandom tty ptmx pts shm; do
	echo " $ls_dev " | grep -q " $n " || { fail minimal_dev "missing /dev/$n in: $ls_dev"; break; }
done && ok minimal_dev
x sh -c 'echo hi > /dev/null && head -c 4 /dev/urandom | wc -c' | grep -q 4 && ok dev_nodes_work ||
	fail dev_nodes_work "null/urandom unusable"
t_done
