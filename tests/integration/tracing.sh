#!/bin/bash
# The USDT probes (src/util/trace.h, docs/tracing.md): every probe clbsdd
# carries is documented and declared for FreeBSD's dtrace, and nothing is
# documented that the binary lacks; and bpftrace, attached to the running
# daemon, sees a container start by its name (and its pid), an exec, an
# exit code and an API request's status.
. "$(dirname "$0")/../lib.sh"

DOC="$TOP/docs/tracing.md"
PROVIDER="$TOP/src/util/clbsd_provider.d"

# The probe names of provider clbsd in a binary's ELF notes.
probes_in() {
	readelf -n "$1" | awk '/Provider: /{p = $2} /Name: / && p == "clbsd" {print $2}' | sort -u
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
	if [ -z "$(probes_in "$BUILD/clbsdd")" ]; then
		# trace.h compiles the probes away without <sys/sdt.h>.
		skip all "$BUILD/clbsdd has no clbsd probes: built without <sys/sdt.h> (systemtap-sdt-dev)"
		return 1
	fi
}
t_setup

bin=$(probes_in "$BUILD/clbsdd")
doc=$(probes_in_doc)
prov=$(probes_in_provider)
# The points the design promises probes at (issue 20): life cycle,
# reconciler, hooks, health, ingress, API.
want="container__create container__start container__exec container__exec__done container__exit container__oom
container__remove reconcile__pass__start reconcile__pass__end reconcile__action__start
reconcile__action__done hook__start hook__done health__check ingress__reload
api__request__start api__request__done"
absent=$(comm -13 <(echo "$bin") <(echo "$want" | tr ' ' '\n' | sort -u))
[ -z "$absent" ] && ok probes_in_notes ||
	fail probes_in_notes "not in readelf -n $BUILD/clbsdd: $(echo "$absent" | tr '\n' ' ')"
undocumented=$(comm -23 <(echo "$bin") <(echo "$doc"))
[ -z "$undocumented" ] && ok every_probe_documented ||
	fail every_probe_documented "in the binary, not in docs/tracing.md: $(echo "$undocumented" | tr '\n' ' ')"
missing=$(comm -13 <(echo "$bin") <(echo "$doc"))
[ -z "$missing" ] && ok every_documented_probe_present ||
	fail every_documented_probe_present "in docs/tracing.md, not in the binary: $(echo "$missing" | tr '\n' ' ')"
[ "$prov" = "$bin" ] && ok provider_file_matches ||
	fail provider_file_matches "src/util/clbsd_provider.d differs: $(diff <(echo "$bin") <(echo "$prov") | grep '^[<>]' | tr '\n' ' ')"
# A release build may strip the daemon: its probes must stay.
if command -v strip >/dev/null && strip -o "$TMP/clbsdd.stripped" "$BUILD/clbsdd"; then
	stripped=$(probes_in "$TMP/clbsdd.stripped")
	[ "$stripped" = "$bin" ] && ok probes_survive_strip ||
		fail probes_survive_strip "strip dropped probes: $(comm -23 <(echo "$bin") <(echo "$stripped") | tr '\n' ' ')"
else
	skip probes_survive_strip "strip (binutils) is not installed"
fi

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
	local bin="usdt:$BUILD/clbsdd:clbsd"
	# BEGIN runs once every probe is attached. bpftrace compiles its program
	# first (seconds when make check runs tests side by side): generous
	# limits, and stop_bpftrace ends it as soon as the checks are done.
	timeout 60 bpftrace -p "$DAEMON_PID" -e "
		BEGIN { printf(\"ready\\n\"); }
		$bin:container__start { printf(\"start %s pid %d\\n\", str(arg0), arg1); }
		$bin:container__exit { printf(\"exit %s code %d\\n\", str(arg0), arg1); }
		$bin:container__exec { printf(\"exec %s %s\\n\", str(arg0), str(arg1)); }
		$bin:container__exec__done { printf(\"exec-done %s %s code %d ns %d\\n\", str(arg0), str(arg1), arg2, arg3); }
		$bin:api__request__done { printf(\"api %s %s %d\\n\", str(arg0), str(arg1), arg2); }" \
		>"$TMP/bt.out" 2>&1 &
	BT_PID=$!
	wait_until 30 ready_or_gone
	if ! grep -q '^ready$' "$TMP/bt.out"; then
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
	clbsd run -d --name traced forge sleep 300 >/dev/null
	local pid
	pid=$(field traced pid)
	if wait_until 10 grep -q "^start traced pid $pid\$" "$TMP/bt.out"; then
		ok bpftrace_sees_start
	else
		fail bpftrace_sees_start "no start of traced (pid $pid) seen: $(tr '\n' ' ' <"$TMP/bt.out")"
	fi
	clbsd exec traced true
	wait_until 10 grep -q '^exec traced true$' "$TMP/bt.out" && ok bpftrace_sees_exec ||
		fail bpftrace_sees_exec "$(grep '^exec' "$TMP/bt.out" | tr '\n' ' ')"
	# Its end: the exit code, and a duration at least the command's.
	clbsd exec traced sh -c 'sleep 0.2; exit 4' >/dev/null 2>&1
	exec_done_ok() {
		awk '$1 == "exec-done" && $2 == "traced" && $3 == "sh" && $5 == 4 && $7 >= 200000000 { f = 1 }
			END { exit !f }' "$TMP/bt.out"
	}
	wait_until 10 exec_done_ok && ok bpftrace_sees_exec_done ||
		fail bpftrace_sees_exec_done "$(grep '^exec-done' "$TMP/bt.out" | tr '\n' ' ')"
	clbsd run -d --name quitter forge sh -c 'exit 3' >/dev/null
	wait_until 10 grep -q '^exit quitter code 3$' "$TMP/bt.out" && ok bpftrace_sees_exit_code ||
		fail bpftrace_sees_exit_code "$(grep '^exit' "$TMP/bt.out" | tr '\n' ' ')"
	clbsd inspect nosuch >/dev/null 2>&1
	wait_until 10 grep -qE '^api GET /v1/containers/nosuch[^ ]* 404$' "$TMP/bt.out" &&
		ok bpftrace_sees_api_status ||
		fail bpftrace_sees_api_status "$(grep '^api' "$TMP/bt.out" | tr '\n' ' ')"
	stop_bpftrace
}
BT_PID=
ready_or_gone() { grep -q '^ready$' "$TMP/bt.out" || ! kill -0 "$BT_PID" 2>/dev/null; }
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
