#!/bin/bash
# The container basics a user relies on first: forge, run attached with the
# command's exit status, create/start, ps, inspect fields, images.
. "$(dirname "$0")/../lib.sh"
t_setup
t_forge

clbsd info | grep -Eq '^cgroup: (v1|v2|hybrid)$' && ok info_reports_cgroup_layout ||
	fail info_reports_cgroup_layout "$(clbsd info)"

out=$(clbsd run --rm forge echo hello 2>&1)
[ "$out" = hello ] && ok run_prints_output || fail run_prints_output "got: $out"

clbsd run --rm forge sh -c 'echo out; echo err >&2; exit 3' >"$TMP/o" 2>"$TMP/e"
rc=$?
[ $rc -eq 3 ] && ok run_exit_status || fail run_exit_status "rc=$rc"
[ "$(cat "$TMP/o")" = out ] && [ "$(cat "$TMP/e")" = err ] && ok run_separates_streams ||
	fail run_separates_streams "stdout=$(cat "$TMP/o") stderr=$(cat "$TMP/e")"

# --rm removes the container after it exits.
wait_until 5 sh -c "! $BUILD/clbsd --socket $SOCK ps -a | grep -q forge" &&
	ok rm_flag_removes || fail rm_flag_removes "$(clbsd ps -a)"

name=$(clbsd create --name later forge sleep 30)
[ "$name" = later ] && [ "$(field later state)" = created ] && ok create ||
	fail create "name=$name state=$(field later state)"
clbsd start later >/dev/null && [ "$(field later state)" = running ] && ok start ||
	fail start "state=$(field later state)"
pid=$(field later pid)
[ "$pid" -gt 0 ] 2>/dev/null && kill -0 "$pid" && ok pid_is_live || fail pid_is_live "pid=$pid"
clbsd ps | grep -q '^later ' && ok ps_lists_running || fail ps_lists_running "$(clbsd ps)"

json=$(clbsd --json inspect later)
missing=$(echo "$json" | python3 -c 'import json,sys
c=json.load(sys.stdin)[0]
need=["name","id","image","state","pid","exit_code","started_at","finished_at","restart_count","oom_killed"]
print(" ".join(k for k in need if k not in c))')
[ -z "$missing" ] && ok inspect_fields || fail inspect_fields "missing: $missing"

clbsd images | grep -q '^forge:latest ' && ok images_lists_forge || fail images_lists_forge "$(clbsd images)"
clbsd image rm forge >/dev/null 2>&1 && fail image_rm_refuses_in_use "removed an image in use" ||
	ok image_rm_refuses_in_use

# Import a directory as an image and run from it.
mkdir -p "$TMP/tree"
cp -a "$ROOT"/images/*/rootfs/. "$TMP/tree/"
echo imported >"$TMP/tree/marker"
clbsd image import "$TMP/tree" mine:1.0 >/dev/null &&
	[ "$(clbsd run --rm mine:1.0 cat /marker)" = imported ] && ok image_import ||
	fail image_import "import or run failed"
clbsd image rm mine:1.0 >/dev/null && ! clbsd images | grep -q '^mine:1.0' &&
	ok image_rm || fail image_rm "$(clbsd images)"
# rm --force of an image in use keeps its tree for that container, and the
# tree goes when the container does.
clbsd image import "$TMP/tree" gone:1 >/dev/null
clbsd create --name holder gone:1 sleep 1 >/dev/null
gid=$(field holder image_id)
clbsd image rm -f gone:1 >/dev/null && ! clbsd images | grep -q '^gone' &&
	[ -d "$ROOT/images/$gid/rootfs" ] && ok image_rm_force_keeps_tree_in_use ||
	fail image_rm_force_keeps_tree_in_use "$(ls "$ROOT/images")"
clbsd rm holder >/dev/null
[ ! -e "$ROOT/images/$gid" ] && ok unnamed_image_collected || fail unnamed_image_collected "still there"
# wait blocks until the container stops and prints its exit code.
clbsd run -d --name waiter forge sh -c 'sleep 0.5; exit 3' >/dev/null
[ "$(clbsd wait waiter)" = 3 ] && [ "$(field waiter state)" = exited ] && ok wait_prints_exit_code ||
	fail wait_prints_exit_code "$(clbsd wait waiter) $(field waiter state)"
# run returns once the daemon knows: an immediate start runs it again.
clbsd run --name again forge sh -c 'echo ran' >/dev/null
clbsd start again >/dev/null && [ "$(clbsd wait again)" = 0 ] && [ "$(clbsd logs again | grep -c ran)" = 2 ] &&
	ok start_right_after_run || fail start_right_after_run "$(clbsd logs again)"
t_done
