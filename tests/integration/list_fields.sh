#!/bin/bash
# GET /v1/containers?fields=...: a client that shows a few columns of many
# containers (the Emacs dashboard) asks for only those members, and for
# the stats in the same answer. Judged against the whole records and
# /v1/stats of the same daemon.
. "$(dirname "$0")/../lib.sh"
t_setup
t_forge
command -v curl >/dev/null || { skip all "curl is not installed"; t_done; exit 0; }

clbsd run -d --name up --memory 64M forge sleep 100000 >/dev/null
clbsd create --name down forge sleep 100000 >/dev/null

get() { # PATH: the body, and the status on the last line
	curl -s -w '\n%{http_code}' --unix-socket "$SOCK" "http://localhost$1"
}

out=$(get '/v1/containers?all=1&fields=name,state,config.limits,stats')
code=$(echo "$out" | tail -n 1)
body=$(echo "$out" | sed '$d')
full=$(get '/v1/containers?all=1' | sed '$d')
stats=$(get '/v1/stats' | sed '$d')
[ "$code" = 200 ] && ok status_200 || fail status_200 "status $code: $body"

# Only the members named, with the values of the whole records.
why=$(python3 -c 'import json, sys
picked = json.loads(sys.argv[1]); full = {c["name"]: c for c in json.loads(sys.argv[2])}
bad = []
if sorted(c["name"] for c in picked) != sorted(full):
    bad.append("names %s, whole records %s" % ([c["name"] for c in picked], list(full)))
for c in picked:
    f = full[c["name"]]
    if set(c) != {"name", "state", "config", "stats"}:
        bad.append("%s has members %s" % (c["name"], sorted(c)))
    if c.get("state") != f["state"]:
        bad.append("%s: state %s, whole record %s" % (c["name"], c.get("state"), f["state"]))
    if c.get("config") != {"limits": f["config"]["limits"]}:
        bad.append("%s: config %s" % (c["name"], c.get("config")))
print("; ".join(bad))' "$body" "$full" 2>&1 || echo "the check failed")
[ -z "$why" ] && ok only_members_named || fail only_members_named "$why"

# The stats of a running container are those of /v1/stats (the counters
# move between the two reads: the same members, the memory limit equal);
# a stopped one has null.
why=$(python3 -c 'import json, sys
picked = {c["name"]: c for c in json.loads(sys.argv[1])}
st = {s["name"]: s for s in json.loads(sys.argv[2])}
bad = []
up, down = picked["up"]["stats"], picked["down"]["stats"]
if not isinstance(up, dict) or set(up) != set(st["up"]):
    bad.append("up: stats %s, /v1/stats %s" % (up, st.get("up")))
elif up["memory_limit"] != 64 << 20 or up["memory_usage"] <= 0 or up["cpu_usage_ns"] <= 0:
    bad.append("up: stats %s" % up)
if down is not None:
    bad.append("down: stats %s" % down)
print("; ".join(bad))' "$body" "$stats" 2>&1 || echo "the check failed")
[ -z "$why" ] && ok stats_in_the_list || fail stats_in_the_list "$why"

# A part of the stats; a part of a member that is null (a stopped one's
# stats, health before a first check) is null.
body=$(get '/v1/containers?all=1&fields=name,stats.memory_usage,health.status' | sed '$d')
why=$(python3 -c 'import json, sys
cs = {c["name"]: c for c in json.loads(sys.argv[1])}
bad = []
if sorted(cs) != ["down", "up"]:
    bad.append("containers: %s" % sorted(cs))
elif cs["up"] != {"name": "up", "stats": {"memory_usage": cs["up"]["stats"]["memory_usage"]}, "health": None}:
    bad.append("up: %s" % cs["up"])
elif cs["down"] != {"name": "down", "stats": None, "health": None}:
    bad.append("down: %s" % cs["down"])
print("; ".join(bad))' "$body" 2>&1 || echo "the check failed")
[ -z "$why" ] && ok parts_of_members || fail parts_of_members "$why"

# Every member a selection can name has the value of the whole record,
# whether the daemon makes it alone (the members most clients ask for) or
# picks it from the whole record (the others); parts too.
sel_all=name,id,image,image_id,state,kind,pid,exit_code,signal,oom_killed,created_at,started_at
sel_all=$sel_all,finished_at,restart_count,start_error,cgroup,config,network,managed,spec_hash
sel_all=$sel_all,health,undo
why=""
for sel in "$sel_all" name,config.limits,config.argv,network.mode name,config.limits \
	name,shim_socket,rootfs,storage,config.limits; do
	body=$(get "/v1/containers?all=1&fields=$sel" | sed '$d')
	full=$(get '/v1/containers?all=1' | sed '$d')
	why=$why$(python3 -c 'import json, sys
sel = sys.argv[3].split(",")
full = {c["name"]: c for c in json.loads(sys.argv[2])}
for c in json.loads(sys.argv[1]):
    f = full[c["name"]]
    want = {}
    for k in sel:
        if "." in k:
            m, p = k.split(".")
            if p in f[m]:
                want.setdefault(m, {})[p] = f[m][p]
        elif k in f:
            want[k] = f[k]
    if c != want:
        print("%s: %s: %s, whole record %s " % (sys.argv[3], c["name"], c, want))' "$body" "$full" "$sel" 2>&1 ||
		echo "the check failed")
done
[ -z "$why" ] && ok members_as_in_record || fail members_as_in_record "$why"

# Without fields= the records are whole, as before.
why=$(python3 -c 'import json, sys
for c in json.loads(sys.argv[1]):
    missing = [k for k in ("id", "config", "network", "health", "undo", "shim_socket") if k not in c]
    if missing or "stats" in c:
        print(c["name"], "missing", missing, "stats" in c)' "$full" 2>&1 || echo "the check failed")
[ -z "$why" ] && ok whole_without_fields || fail whole_without_fields "$why"

# A field that is not one is a 400 naming it; so is an empty selection.
out=$(get '/v1/containers?fields=name,config.limits.cpus')
[ "$(echo "$out" | tail -n 1)" = 400 ] && echo "$out" | grep -qF 'config.limits.cpus\" is not a field' &&
	ok bad_field_400 || fail bad_field_400 "$out"
out=$(get '/v1/containers?fields=')
[ "$(echo "$out" | tail -n 1)" = 400 ] && echo "$out" | grep -q 'fields: empty' &&
	ok empty_fields_400 || fail empty_fields_400 "$out"
t_done
