#!/bin/bash
# A reconcile pass applies independent native actions side by side: a
# declared set with a dependency chain (one link gated on health) and
# independent containers converges in dependency order, as the event
# sequence numbers show, with independent creates in flight together; a
# container that fails (an image that does not exist) holds back its
# dependant only; stops go dependants first.
. "$(dirname "$0")/../lib.sh"
t_setup
t_forge

svc() { # svc NAME [EXTRA...]: a declared native container that runs until stopped
	# (by SIGKILL: sleep as PID 1 ignores SIGTERM, and each stop would wait
	# out its 10 s timeout; the order of the stops is what is checked)
	local n=$1
	shift
	echo "(container $n :image \"forge\" :network none :stop-signal \"KILL\" :command (\"sleep\" \"1000\") $*)"
}
declare_all() { # declare_all [STATE]: the set, the chain with :state STATE
	local st=${1:-running}
	svc db ":state $st" ':health (:cmd ("true") :interval "300ms" :timeout "300ms")'
	echo '(container bad :image "clbsd-no-such-image" :network none :command ("true"))'
	svc app ":state $st" ':depends-on (db)'
	svc web ":state $st" ':depends-on (app)'
	svc badkid ':depends-on (bad)'
	for i in 1 2 3 4 5; do svc "i$i"; done
}
declare_all >"$CONF"
clbsd apply >/dev/null 2>&1
all="db app web i1 i2 i3 i4 i5"
running() {
	local n
	for n in $all; do
		[ "$(field "$n" state 2>/dev/null)" = running ] || return 1
	done
}
wait_until 30 running && ok chain_and_independents_converge ||
	fail chain_and_independents_converge "$(clbsd ps -a)"

# Sequence numbers of the events, by type and container.
seq_of() { # seq_of TYPE NAME [STATUS]: the first such event's sequence number
	python3 -c 'import json,sys
for l in open(sys.argv[1]):
    e=json.loads(l)
    if e.get("type")==sys.argv[2] and e.get("container")==sys.argv[3] and (len(sys.argv)<5 or (e.get("attrs") or {}).get("status")==sys.argv[4]):
        print(e["seq"]); break' "$TMP/ev.json" "$@"
}
clbsd events --json >"$TMP/ev.json"
db_started=$(seq_of container.started db)
db_healthy=$(seq_of container.health db healthy)
app_created=$(seq_of container.created app)
app_started=$(seq_of container.started app)
web_created=$(seq_of container.created web)
web_started=$(seq_of container.started web)
if [ -n "$db_started" ] && [ -n "$db_healthy" ] && [ -n "$app_started" ] && [ -n "$web_started" ] &&
	[ "$db_started" -lt "$db_healthy" ] && [ "$db_healthy" -lt "$app_created" ] &&
	[ "$app_created" -lt "$app_started" ] && [ "$app_started" -lt "$web_created" ] &&
	[ "$web_created" -lt "$web_started" ]; then
	ok dependants_start_after_dependency_healthy_and_running
else
	fail dependants_start_after_dependency_healthy_and_running \
		"db started=$db_started healthy=$db_healthy app created=$app_created started=$app_started web created=$web_created started=$web_started"
fi
# Several creates before the first start: the starts were in flight together.
python3 -c 'import json,sys
made=0
for l in open(sys.argv[1]):
    e=json.loads(l)
    if e.get("type")=="container.started": break
    if e.get("type")=="container.created": made+=1
sys.exit(0 if made>=4 else 1)' "$TMP/ev.json" && ok independent_actions_in_parallel ||
	fail independent_actions_in_parallel "$(grep -E 'container\.(created|started)' "$TMP/ev.json" | head -12)"
ev_failed() { # ev_failed NAME TEXT: a reconcile.failed event of NAME whose error has TEXT
	python3 -c 'import json,sys
for l in open(sys.argv[1]):
    e=json.loads(l)
    if e.get("type")=="reconcile.failed" and e.get("container")==sys.argv[2] and sys.argv[3] in (e.get("attrs") or {}).get("error",""):
        sys.exit(0)
sys.exit(1)' "$TMP/ev.json" "$@"
}
ev_failed bad "clbsd-no-such-image" && ev_failed badkid "held back: dependency bad failed" &&
	[ -z "$(seq_of container.started badkid)" ] && ok failure_holds_back_only_its_dependant ||
	fail failure_holds_back_only_its_dependant "$(grep -E 'bad' "$TMP/ev.json" | head -6)"

# Stopping the chain: dependants first, each after the one that depends on it has stopped.
since=$(python3 -c 'import json,sys; print(max(json.loads(l)["seq"] for l in open(sys.argv[1])))' "$TMP/ev.json")
declare_all stopped >"$CONF"
clbsd apply >/dev/null 2>&1
stopped() { [ "$(field db state)" = exited ] && [ "$(field app state)" = exited ] && [ "$(field web state)" = exited ]; }
wait_until 30 stopped
clbsd events --json --since "$since" >"$TMP/ev.json"
web_x=$(seq_of container.exited web)
app_x=$(seq_of container.exited app)
db_x=$(seq_of container.exited db)
[ -n "$web_x" ] && [ -n "$app_x" ] && [ -n "$db_x" ] && [ "$web_x" -lt "$app_x" ] && [ "$app_x" -lt "$db_x" ] &&
	[ "$(field i1 state)" = running ] && ok stops_dependants_first ||
	fail stops_dependants_first "web=$web_x app=$app_x db=$db_x $(clbsd ps -a)"
t_done
