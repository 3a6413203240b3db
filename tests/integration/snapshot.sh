#!/bin/bash
# Snapshots, rollback and clones (dir storage): a rollback brings files back
# and the container runs again; clones start from the snapshot or from now
# and are independent; bad requests change nothing.
. "$(dirname "$0")/../lib.sh"
t_setup
t_forge

clbsd run -d --name web forge sleep 300 >/dev/null
clbsd exec web sh -c 'echo v1 > /srv.txt'
[ "$(clbsd snapshot web s1)" = s1 ] && ok snapshot_named || fail snapshot_named "no label printed"
clbsd exec web sh -c 'echo v2 > /srv.txt; echo new > /only-later'
auto=$(clbsd snapshot web)
[[ "$auto" =~ ^[0-9]{8}-[0-9]{6}$ ]] && ok snapshot_default_label || fail snapshot_default_label "$auto"
clbsd snapshots web | awk 'NR>1 {print $1}' | tr '\n' ' ' | grep -q "^s1 $auto $" &&
	ok snapshots_listed_oldest_first || fail snapshots_listed_oldest_first "$(clbsd snapshots web)"
clbsd --json snapshots web | python3 -c 'import json,sys; l=json.load(sys.stdin); assert all(s["created_at"] for s in l)' &&
	ok snapshots_json || fail snapshots_json "$(clbsd --json snapshots web)"

# Newer snapshots exist: refused before anything is stopped.
pid=$(field web pid)
out=$(clbsd rollback -t 1 web s1 2>&1)
rc=$?
[ $rc -eq 1 ] && echo "$out" | grep -q "newer than s1" && [ "$(field web pid)" = "$pid" ] &&
	ok rollback_refuses_newer || fail rollback_refuses_newer "rc=$rc $out pid $(field web pid)"

clbsd rollback -t 1 --force web s1 >/dev/null && [ "$(field web state)" = running ] &&
	[ "$(clbsd exec web cat /srv.txt)" = v1 ] && ! clbsd exec web test -e /only-later &&
	ok rollback_restores_and_restarts ||
	fail rollback_restores_and_restarts "state $(field web state) file $(clbsd exec web cat /srv.txt 2>&1)"
clbsd snapshots web | grep -q "$auto" && fail rollback_force_drops_newer "$auto still listed" ||
	ok rollback_force_drops_newer

# Clones: from a snapshot, and from now.
clbsd exec web sh -c 'echo v3 > /srv.txt'
clbsd clone web@s1 old >/dev/null && clbsd clone web now >/dev/null && ok clone_made || fail clone_made "clone failed"
clbsd start old now >/dev/null
[ "$(clbsd exec old cat /srv.txt)" = v1 ] && [ "$(clbsd exec now cat /srv.txt)" = v3 ] &&
	ok clone_contents || fail clone_contents "old=$(clbsd exec old cat /srv.txt) now=$(clbsd exec now cat /srv.txt)"
clbsd exec now sh -c 'echo mine > /srv.txt'
[ "$(clbsd exec web cat /srv.txt)" = v3 ] && ok clone_independent || fail clone_independent "write leaked"
[ "$(field old image)" = "$(field web image)" ] && [ "$(field old config.command)" = "$(field web config.command)" ] &&
	[ "$(field old managed)" = false ] && ok clone_same_config ||
	fail clone_same_config "$(field old image) $(field old config.command)"

# Bad requests.
clbsd snapshot web 'bad label' >/dev/null 2>&1
[ $? -eq 2 ] && ok bad_label_usage || fail bad_label_usage "status not 2"
out=$(clbsd rollback web nope 2>&1)
[ $? -eq 1 ] && echo "$out" | grep -q "no snapshot nope" && ok rollback_unknown_label || fail rollback_unknown_label "$out"
out=$(clbsd clone web old 2>&1)
[ $? -eq 1 ] && echo "$out" | grep -q "exists already" && ok clone_name_taken || fail clone_name_taken "$out"
out=$(clbsd snapshot ghost 2>&1)
[ $? -eq 1 ] && echo "$out" | grep -q ghost && ok snapshot_unknown_container || fail snapshot_unknown_container "$out"

# Storage properties need zfs: refused on dir storage, nothing made.
out=$(curl -s --unix-socket "$SOCK" -X POST -d '{"name":"q","image":"forge","storage":{"quota":1048576}}' http://x/v1/containers)
echo "$out" | grep -q "need zfs storage" && [ ! -e "$ROOT/containers/q" ] && ok props_refused_on_dir ||
	fail props_refused_on_dir "$out"

# Removing a snapshot, and a container with snapshots.
clbsd snapshots --rm s1 web >/dev/null 2>&1 && ! clbsd snapshots web | grep -q '^s1 ' &&
	ok snapshot_removed || fail snapshot_removed "$(clbsd snapshots web)"
clbsd snapshot web s9 >/dev/null
clbsd rm -f web old now >/dev/null && [ ! -e "$ROOT/containers/web" ] && ok rm_with_snapshots ||
	fail rm_with_snapshots "$(ls "$ROOT/containers")"
t_done
