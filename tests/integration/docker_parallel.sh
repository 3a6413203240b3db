#!/bin/bash
# A reconcile pass applies independent docker actions side by side: a
# declared set with a dependency chain (one link gated on health) and
# independent containers converges in dependency order, as the event
# sequence numbers show, with independent creates in flight together; a
# container that fails (a missing image) holds back its dependant only.
. "$(dirname "$0")/../lib.sh"

IMG="clbsd-bb-$$:1"
t_before_start() { t_docker_before_start "$IMG"; }
t_setup
# shellcheck disable=SC2154 # rc is assigned in the trap itself
trap 'rc=$?; t_docker_cleanup "$IMG"; (exit $rc); t_cleanup' EXIT

LONG_SEXP='trap \"exit 0\" TERM; sleep 1000 & wait'
svc() { # svc NAME [EXTRA...]: a declared docker container that runs until stopped
	local n=$1
	shift
	echo "(container $n :kind docker :image \"$IMG\" :network none :command (\"sh\" \"-c\" \"$LONG_SEXP\") $*)"
}
{
	echo "(host :docker (:endpoint \"unix://$DOCKER_SOCK\"))"
	svc db ':health (:cmd ("true") :interval "300ms" :timeout "300ms")'
	echo "(container bad :kind docker :image \"clbsd-no-such-image-$$:1\" :network none)"
	svc app ':depends-on (db)'
	svc web ':depends-on (app)'
	svc badkid ':depends-on (bad)'
	for i in 1 2 3 4 5; do svc "i$i"; done
} >"$CONF"
clbsd apply >/dev/null 2>&1
all="db app web i1 i2 i3 i4 i5"
running() {
	local n
	for n in $all; do
		[ "$(field "$n" state 2>/dev/null)" = running ] || return 1
	done
}
wait_until 60 running && ok chain_and_independents_converge ||
	fail chain_and_independents_converge "$(clbsd ps -a)"

# Sequence numbers of the events, by type and container.
clbsd events --json >"$TMP/ev.json"
seq_of() { # seq_of TYPE NAME [STATUS]: the first such event's sequence number
	python3 -c 'import json,sys
for l in open(sys.argv[1]):
    e=json.loads(l)
    if e.get("type")==sys.argv[2] and e.get("container")==sys.argv[3] and (len(sys.argv)<5 or (e.get("attrs") or {}).get("status")==sys.argv[4]):
        print(e["seq"]); break' "$TMP/ev.json" "$@"
}
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
# Independent creates are in flight together: several are made before the
# first container has started (one after another, each create would be
# followed by its start).
python3 -c 'import json,sys
made=0
for l in open(sys.argv[1]):
    e=json.loads(l)
    if e.get("type")=="container.started": break
    if e.get("type")=="container.created": made+=1
sys.exit(0 if made>=4 else 1)' "$TMP/ev.json" && ok independent_actions_in_parallel ||
	fail independent_actions_in_parallel "$(grep -E 'container\.(created|started)' "$TMP/ev.json" | head -12)"

# The failing one fails, its dependant is held back, the others ran regardless.
ev_failed() { # ev_failed NAME TEXT: a reconcile.failed event of NAME whose error has TEXT
	python3 -c 'import json,sys
for l in open(sys.argv[1]):
    e=json.loads(l)
    if e.get("type")=="reconcile.failed" and e.get("container")==sys.argv[2] and sys.argv[3] in (e.get("attrs") or {}).get("error",""):
        sys.exit(0)
sys.exit(1)' "$TMP/ev.json" "$@"
}
ev_failed bad "No such image" && ev_failed badkid "held back: dependency bad failed" &&
	[ -z "$(seq_of container.started badkid)" ] && ! dk inspect badkid >/dev/null 2>&1 &&
	ok failure_holds_back_only_its_dependant ||
	fail failure_holds_back_only_its_dependant "$(grep -E 'bad' "$TMP/ev.json" | head -6)"
# Removal of the whole set, side by side too, leaves nothing in dockerd.
echo "(host :docker (:endpoint \"unix://$DOCKER_SOCK\"))" >"$CONF"
clbsd apply >/dev/null 2>&1
wait_until 30 sh -c "[ -z \"\$($BUILD/clbsd --socket $SOCK ps -a -q)\" ]" &&
	[ -z "$(dk ps -aq --filter label=org.clbsd.managed=true)" ] && ok undeclared_set_removed ||
	fail undeclared_set_removed "$(clbsd ps -a) / $(dk ps -a)"
t_done
