#!/bin/bash
# The create request of POST /v1/containers stays compatible: every key
# today's clients send (the CLI's run/create included) makes the same
# container as the daemon before the typed spec did. Each request's
# container, as inspect shows it, must hold every field of its golden file
# in tests/golden/spec_api/ (made by the daemon before the change; new
# fields may be added, none may change or go). Mistyped keys are refused,
# naming the key.
. "$(dirname "$0")/../lib.sh"
t_before_start() {
	mkdir -p "$TMP/vol"
	echo '(host :network (:bridge "clbsd0" :subnet "10.88.0.0/24"))' >"$CONF"
}
t_setup
t_forge
command -v curl >/dev/null || { skip all "curl is not installed"; t_done; exit 0; }
GOLD="$TOP/tests/golden/spec_api"

api() {
	curl -s -o "$TMP/body" -w '%{http_code}' --unix-socket "$SOCK" -X "$1" \
		-H 'Content-Type: application/json' ${3:+-d "$3"} "http://localhost$2"
}

# The fields of inspect that say what the request made, with the test's
# temporary paths and the per-run values (ids, times, addresses) taken out.
normalise() {
	python3 -c 'import json, sys
c = json.load(sys.stdin)
tmp = sys.argv[1]
def scrub(v):
    if isinstance(v, str):
        return v.replace(tmp, "$TMP")
    if isinstance(v, list):
        return [scrub(x) for x in v]
    if isinstance(v, dict):
        return {k: scrub(x) for k, x in v.items()}
    return v
out = {"image": c["image"], "config": c["config"], "network": c["network"],
       "storage_props": c.get("storage_props"), "state": c["state"]}
for n in out["network"].get("networks", []):
    n.pop("ip", None); n.pop("ip6", None)
print(json.dumps(scrub(out), indent=1, sort_keys=True))' "$TMP"
}

# Every field of the golden file ($1) has the same value in the output ($2).
subset() {
	python3 -c 'import json, sys
want = json.load(open(sys.argv[1])); got = json.load(open(sys.argv[2]))
bad = []
def walk(w, g, path):
    if isinstance(w, dict):
        if not isinstance(g, dict):
            bad.append(path); return
        for k in w:
            if k not in g: bad.append(path + "." + k)
            else: walk(w[k], g[k], path + "." + k)
    elif w != g:
        bad.append("%s: want %r got %r" % (path, w, g))
walk(want, got, "")
print("\n".join(bad)); sys.exit(1 if bad else 0)' "$1" "$2"
}

check_req() {
	local name=$1 body=$2
	local code
	code=$(api POST /v1/containers "$body")
	if [ "$code" != 201 ]; then
		fail "$name" "create: $code $(cat "$TMP/body")"
		return
	fi
	code=$(api GET "/v1/containers/$name")
	normalise <"$TMP/body" >"$TMP/$name.json"
	if [ -n "${SPEC_API_UPDATE:-}" ]; then
		cp "$TMP/$name.json" "$GOLD/$name.json"
	fi
	if out=$(subset "$GOLD/$name.json" "$TMP/$name.json"); then
		ok "$name"
	else
		fail "$name" "$out"
	fi
}

# What `clbsd run`/`clbsd create` send with every flag.
check_req cli-all "{\"name\":\"cli-all\",\"image\":\"forge\",\"command\":[\"sleep\",\"1\"],
  \"env\":[\"A=1\",\"B=two words\",\"A=3\"],\"volumes\":[{\"source\":\"$TMP/vol\",\"dest\":\"/data\",\"readonly\":true}],
  \"workdir\":\"/tmp\",\"user\":\"1000:1000\",\"hostname\":\"box\",\"tty\":true,\"stdin\":true,
  \"memory\":\"64M\",\"pids\":64,\"cpus\":0.5,\"restart\":\"on-failure:3\",
  \"network\":\"bridge\",\"ip\":\"10.88.0.77\",\"aliases\":[\"al1\",\"al0\"],\"dns\":[\"10.88.0.1\"],
  \"publish\":[\"127.0.0.1:18080:80\",\"18081:81/udp\"],\"userns\":\"host\"}"
check_req minimal '{"name":"minimal","image":"forge","command":["true"]}'
check_req nulls '{"name":"nulls","image":"forge","command":null,"env":null,"volumes":null,"workdir":null,
  "user":null,"hostname":null,"memory":null,"pids":null,"cpus":null,"restart":null,"storage":null,
  "network":null,"ip":null,"aliases":null,"dns":null,"publish":null,"userns":null}'
check_req rm-none '{"name":"rm-none","image":"forge:latest","command":["true"],"auto_remove":true,
  "network":"none","memory":8388608,"restart":"no","tty":false,"stdin":false}'
check_req always-host '{"name":"always-host","image":"forge","restart":"always","network":"host",
  "env":[]}'
check_req onfail-list '{"name":"onfail-list","image":"forge","restart":"on-failure",
  "network":["default"],"publish":["18090:90"]}'

# A mistyped key is refused, naming it; so is a mistyped storage key.
code=$(api POST /v1/containers '{"name":"typo","image":"forge","comand":["true"]}')
[ "$code" = 400 ] && grep -q 'comand' "$TMP/body" && ok unknown_key_named ||
	fail unknown_key_named "$code $(cat "$TMP/body")"
code=$(api POST /v1/containers '{"name":"typo2","image":"forge","storage":{"qouta":1}}')
[ "$code" = 400 ] && grep -q 'qouta' "$TMP/body" && ok unknown_storage_key_named ||
	fail unknown_storage_key_named "$code $(cat "$TMP/body")"
t_done
