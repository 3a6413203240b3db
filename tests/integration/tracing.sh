#!/bin/bash
# The USDT probes (src/util/trace.h, docs/tracing.md): every probe clbsdd
# carries is documented and declared for FreeBSD's dtrace, and nothing is
# documented that the binary lacks; and bpftrace, attached to the running
# daemon's container__start, sees a container start by its name.
. "$(dirname "$0")/../lib.sh"

DOC="$TOP/docs/tracing.md"
PROVIDER="$TOP/src/util/clbsd_provider.d"

# The probe names of provider clbsd in the daemon's ELF notes.
probes_in_binary() {
	readelf -n "$BUILD/clbsdd" | awk '/Provider: /{p = $2} /Name: / && p == "clbsd" {print $2}' |
		sort -u
}
# docs/tracing.md's probe tables: rows that start with | `name` |.
probes_in_doc() {
	sed -nE 's/^\| `([a-z_]+)` \|.*/\1/p' "$DOC" | sort -u
}
# The .d file declares `probe name(...)`.
probes_in_provider() {
	sed -nE 's/^[[:space:]]*probe ([a-z_]+)\(.*/\1/p' "$PROVIDER" | sort -u
}

t_before_start() {
	if ! command -v readelf >/dev/null; then
		skip all "readelf is not installed (binutils)"
		return 1
	fi
	if [ -z "$(probes_in_binary)" ]; then
		# trace.h compiles the probes away without <sys/sdt.h>.
		skip all "$BUILD/clbsdd has no clbsd probes: built without <sys/sdt.h> (systemtap-sdt-dev)"
		return 1
	fi
}
t_setup

bin=$(probes_in_binary)
doc=$(probes_in_doc)
prov=$(probes_in_provider)
[ "$(echo "$bin" | wc -l)" -ge 10 ] && ok probes_in_notes ||
	fail probes_in_notes "only $(echo "$bin" | wc -l) probes in readelf -n: $(echo "$bin" | tr '\n' ' ')"
undocumented=$(comm -23 <(echo "$bin") <(echo "$doc"))
[ -z "$undocumented" ] && ok every_probe_documented ||
	fail every_probe_documented "in the binary, not in docs/tracing.md: $(echo "$undocumented" | tr '\n' ' ')"
missing=$(comm -13 <(echo "$bin") <(echo "$doc"))
[ -z "$missing" ] && ok every_documented_probe_present ||
	fail every_documented_probe_present "in docs/tracing.md, not in the binary: $(echo "$missing" | tr '\n' ' ')"
[ "$prov" = "$bin" ] && ok provider_file_matches ||
	fail provider_file_matches "src/util/clbsd_provider.d differs: $(diff <(echo "$bin") <(echo "$prov") | grep '^[<>]' | tr '\n' ' ')"

# bpftrace on the live daemon. The kernel may refuse BPF or uprobes (no
# CONFIG_UPROBE_EVENTS, lockdown, a container without CAP_BPF): then a skip
# with the reason, never a silent pass.
attach() {
	if ! command -v bpftrace >/dev/null; then
		skip bpftrace_sees_start "bpftrace is not installed (scripts/deps.sh check installs it)"
		return
	fi
	if [ ! -d /sys/bus/event_source/devices/uprobe ]; then
		skip bpftrace_sees_start "the kernel has no uprobe event source (CONFIG_UPROBE_EVENTS)"
		return
	fi
	local out
	if ! out=$(timeout 10 bpftrace -e 'BEGIN { exit(); }' 2>&1); then
		skip bpftrace_sees_start "the kernel refuses BPF: $(echo "$out" | grep -m1 -i error)"
		return
	fi
	t_forge
	timeout 15 bpftrace -p "$DAEMON_PID" -e \
		'usdt:'"$BUILD/clbsdd"':clbsd:container__start { printf("started %s pid %d\n", str(arg0), arg1); }' \
		>"$TMP/bt.out" 2>&1 &
	BT_PID=$!
	if ! wait_until 10 grep -q '^Attaching' "$TMP/bt.out"; then
		out=$(grep -m1 -iE 'error|denied|not permitted' "$TMP/bt.out")
		stop_bpftrace
		case "$out" in
		*"not permitted"* | *denied* | *ockdown*)
			skip bpftrace_sees_start "the kernel refuses the uprobe: $out"
			;;
		*) fail bpftrace_sees_start "bpftrace did not attach: $(tr '\n' ' ' <"$TMP/bt.out")" ;;
		esac
		return
	fi
	# Attaching is printed before the probes are in: give them a moment.
	sleep 0.5
	clbsd run -d --name traced forge sleep 300 >/dev/null
	local pid
	pid=$(field traced pid)
	if wait_until 5 grep -q "^started traced pid $pid\$" "$TMP/bt.out"; then
		ok bpftrace_sees_start
	else
		fail bpftrace_sees_start "no start of traced (pid $pid) seen: $(tr '\n' ' ' <"$TMP/bt.out")"
	fi
	stop_bpftrace
}
BT_PID=
stop_bpftrace() {
	if [ -n "$BT_PID" ]; then
		kill -INT "$BT_PID" 2>/dev/null
		wait "$BT_PID" 2>/dev/null
		BT_PID=
	fi
}
trap 'stop_bpftrace; t_cleanup' EXIT
attach
t_done
