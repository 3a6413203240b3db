#!/bin/bash
# clbsd import-compose: every compose file of tests/compose/ translates into
# a configuration `clbsdd -n` accepts; a stack imported as native containers
# (busybox's forge) converges, and its services reach each other by name on
# the project's network; bad files exit 1 with the position, usage errors 2.
. "$(dirname "$0")/../lib.sh"
t_setup
t_forge
SRC=$(cd "$(dirname "$0")/.." && pwd)/compose
hostns() { nsenter -t "$DAEMON_PID" -n -- "$@"; }
hostns ip link set lo up

# Every usable fixture: status 0 and a configuration clbsdd -n takes.
bad=""
for f in "$SRC"/*.yml; do
	n=$(basename "$f" .yml)
	case "$n" in bad_*) continue ;; esac
	if ! clbsd import-compose --docker "$f" -o "$TMP/$n.conf" 2>"$TMP/$n.err"; then
		bad="$bad $n(import: $(head -c 300 "$TMP/$n.err"))"
	elif ! "$BUILD/clbsdd" -n --config "$TMP/$n.conf" >/dev/null 2>"$TMP/$n.n"; then
		bad="$bad $n(clbsdd -n: $(head -c 300 "$TMP/$n.n"))"
	fi
done
[ -z "$bad" ] && ok every_fixture_passes_clbsdd_n || fail every_fixture_passes_clbsdd_n "$bad"

# The warnings name the file, line, column, service and key.
clbsd import-compose --docker "$SRC/security.yml" >/dev/null 2>"$TMP/w"
grep -q "security.yml:24:5: service vpn: key privileged: no translation; left out" "$TMP/w" &&
	ok warning_lines_have_positions || fail warning_lines_have_positions "$(cat "$TMP/w")"

# Exit statuses: 1 for a file that gives no usable configuration, 2 for usage.
clbsd import-compose "$SRC/bad_yaml.yml" >/dev/null 2>"$TMP/e"
rc=$?
[ $rc = 1 ] && grep -q "bad_yaml.yml:4:3: YAML:" "$TMP/e" && ok yaml_error_exits_1 ||
	fail yaml_error_exits_1 "rc=$rc $(cat "$TMP/e")"
clbsd import-compose "$SRC/bad_no_services.yml" >/dev/null 2>&1
rc=$?
[ $rc = 1 ] && ok no_services_exits_1 || fail no_services_exits_1 "rc=$rc"
clbsd import-compose >/dev/null 2>&1
rc1=$?
clbsd import-compose --native --docker "$SRC/command.yml" >/dev/null 2>&1
rc2=$?
[ $rc1 = 2 ] && [ $rc2 = 2 ] && ok usage_exits_2 || fail usage_exits_2 "rc=$rc1 $rc2"

# Without --native or --docker, an image in the daemon's store makes a native service.
clbsd import-compose "$SRC/stack_native.yml" 2>/dev/null | grep -q ':kind native' &&
	ok image_in_store_is_native || fail image_in_store_is_native "$(clbsd import-compose "$SRC/stack_native.yml" 2>&1)"
# No daemon to ask: docker.
CLBSD_SOCKET=$TMP/none.sock "$BUILD/clbsd" --socket "$TMP/none.sock" import-compose \
	"$SRC/stack_native.yml" 2>/dev/null | grep -q ':kind docker' &&
	ok no_daemon_means_docker || fail no_daemon_means_docker "native without a daemon"

# The stack, native: the client reaches the server by its service name.
clbsd import-compose --native -p cmp "$SRC/stack_native.yml" -o "$CONF" 2>"$TMP/e" ||
	fail import_native "$(cat "$TMP/e")"
clbsd apply >/dev/null 2>&1
reply() { clbsd exec client cat /tmp/reply 2>/dev/null; }
wait_until 60 sh -c "[ \"\$('$BUILD/clbsd' --socket '$SOCK' exec client cat /tmp/reply 2>/dev/null)\" = pong ]" &&
	ok services_reach_each_other_by_name ||
	fail services_reach_each_other_by_name "reply=$(reply) $(clbsd ps -a) $(clbsd plan 2>&1 | head -5)"
[ "$(field server state)" = running ] && [ "$(field client state)" = running ] &&
	ok stack_converged || fail stack_converged "$(clbsd ps -a)"
clbsd plan | grep -q 'nothing to do' && ok plan_is_empty || fail plan_is_empty "$(clbsd plan)"
: >"$CONF"
clbsd apply >/dev/null 2>&1
t_done
