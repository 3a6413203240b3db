#!/bin/bash
# Kernel attacks from inside a container, each refused by the seccomp
# allow-list (src/runtime/linux/secure.c) with the errno the filter gives,
# and the host unchanged afterwards: io_uring, AF_VSOCK, pidfd_getfd,
# process_madvise, TIOCSTI (also with high bits in the request), and the
# attacks that always failed and must keep failing (mount, namespaces,
# clone3, keyctl, bpf, perf, ptrace, open_by_handle_at, kexec, modules,
# the 32-bit ABI, unknown calls, writes to /proc/sys and /sys).
# tests/security/helpers/sc_attack.c makes the calls busybox cannot.
. "$(dirname "$0")/../lib.sh"
HELPER="$BUILD/tests/security/sc_attack"
[ -x "$HELPER" ] || {
	echo "FAIL seccomp.helper: $HELPER is missing (make)"
	exit 1
}
t_setup
t_forge

MARK=clbsd-sc-attack
# What the attacks could change on the host: loaded modules, a kexec kernel,
# the core_pattern and profiling knobs, keys (not namespaced), the host's
# name and clock setting, and mounts (the helper names its mount $MARK).
host_state() {
	cat /proc/modules /sys/kernel/kexec_loaded /sys/kernel/kexec_crash_loaded \
		/proc/sys/kernel/core_pattern /sys/kernel/profiling 2>/dev/null
	uname -n
	grep -c "$MARK" /proc/keys /proc/self/mountinfo "/proc/$DAEMON_PID/mountinfo" 2>/dev/null
}

clbsd run -d --name sc -v "$HELPER:/sc_attack:ro" forge sleep 300 >/dev/null ||
	fail run "could not start the attacking container"

# attack NAME ERRNO [ARG]: sc_attack NAME in the container is refused with
# ERRNO, and the host is as it was.
attack() {
	local name=$1 want=$2 before out rc
	shift 2
	before=$(host_state)
	out=$(clbsd exec sc /sc_attack "$name" "$@" 2>&1)
	rc=$?
	if [ "$rc" -ne 1 ] || ! grep -q "^refused: $name: errno=$want " <<<"$out"; then
		fail "$name" "expected errno=$want, got: $out (status $rc)"
	elif [ "$(host_state)" != "$before" ]; then
		fail "$name" "refused, but the host changed"
	else
		ok "$name"
	fi
}

# What the filter adds to Docker's defaults (these got through before).
attack io_uring_setup EPERM
attack vsock EAFNOSUPPORT
attack pidfd_getfd EPERM
attack process_madvise EPERM
attack tiocsti EPERM
attack tiocsti_high EPERM
# Attacks that always failed and must keep failing.
attack mount EPERM
attack unshare_user EPERM
attack unshare_mount EPERM
attack clone_newuser EPERM
attack clone3 ENOSYS
attack keyctl EPERM
attack bpf EPERM
attack perf_event_open EPERM
attack ptrace EPERM
attack open_by_handle_at EPERM
attack kexec_load EPERM
attack init_module EPERM
attack finit_module EPERM
attack int80 ENOSYS
attack unknown ENOSYS
# Not the filter's: the read-only /proc/sys and /sys mounts.
attack write_proc_sys EROFS /proc/sys/kernel/core_pattern
attack write_sys EROFS /sys/kernel/profiling

# The ptrace attack aimed at the container's init: still running, untraced.
st=$(clbsd exec sc cat /proc/1/status)
grep -q '^TracerPid:[[:space:]]*0$' <<<"$st" && ok init_not_traced ||
	fail init_not_traced "$(grep -E '^(State|TracerPid)' <<<"$st")"

# The container's command itself (not only exec'd processes) is filtered.
out=$(clbsd run --rm -v "$HELPER:/sc_attack:ro" forge /sc_attack io_uring_setup 2>&1)
grep -q "^refused: io_uring_setup: errno=EPERM " <<<"$out" && ok init_path_filtered ||
	fail init_path_filtered "$out"

# Ordinary work still runs under the allow-list: threads, pipes, sockets.
# The client retries until the listener listens, and reads a file: from a
# pipe, a late `echo hi` (a loaded host) let it see the listener's
# half-close (its stdin is /dev/null) first and exit sending nothing.
out=$(clbsd exec sc sh -c 'echo a | sort | wc -l; nc -l -p 8080 > /tmp/got &
	echo hi > /tmp/msg; n=0; until nc -w 2 127.0.0.1 8080 < /tmp/msg 2>/dev/null; do
	n=$((n + 1)); [ $n -lt 100 ] || break; sleep 0.1; done; wait; cat /tmp/got' 2>&1)
[ "$(tr '\n' ' ' <<<"$out")" = "1 hi " ] && ok ordinary_calls_allowed ||
	fail ordinary_calls_allowed "$out"
t_done
