#!/bin/bash
# Migration that keeps the declaration, between two daemons on this host:
# import --declared (the record comes from the target's declaration, and
# its refusals), then clbsd migrate of declared containers: the declaration
# moves into the target's live layer, the source records (moved ...), both
# plans are empty, data and volumes arrive, the image is sent when the target
# lacks it, --all goes in dependency order, and a target daemon killed
# between the phases leaves the source running and nothing on the target.
. "$(dirname "$0")/../lib.sh"
t_setup
t_forge
ROOT2="$TMP/root2"
RUN2="$TMP/run2"
SOCK2="$RUN2/clbsd.sock"
CONF2="$TMP/etc2/clbsd.conf"
LIVE2="$TMP/etc2/conf.d/90-live.conf"
mkdir -p "$TMP/etc2"
: >"$CONF2"
D2=""
start2() {
	unshare --mount --net --propagation private -- sh -c "$T_DETACH_ZFS; "'exec "$@"' sh \
		"$BUILD/clbsdd" --root "$ROOT2" --run "$RUN2" --socket "$SOCK2" --config "$CONF2" \
		--cgroup-parent "clbsd-$T_ID-2" --pool=0 >>"$TMP/daemon2.log" 2>&1 &
	D2=$!
	wait_until 10 c2 info >/dev/null 2>&1
}
c2() { "$BUILD/clbsd" --socket "$SOCK2" "$@"; }
stop2() {
	if [ -n "$D2" ] && kill -0 "$D2" 2>/dev/null; then
		: >"$CONF2"
		rm -f "$LIVE2"
		c2 apply >/dev/null 2>&1
		for n in $(c2 ps -a --json 2>/dev/null | python3 -c 'import json,sys
for c in json.load(sys.stdin): print(c["name"])' 2>/dev/null); do c2 rm -f "$n" >/dev/null 2>&1; done
		kill "$D2" 2>/dev/null
		wait "$D2" 2>/dev/null
	fi
	D2=""
	find /sys/fs/cgroup -maxdepth 2 -type d -name "clbsd-$T_ID-2" -exec rmdir {} + 2>/dev/null
}
trap 'stop2; t_cleanup' EXIT
jget() { python3 -c 'import json,sys; v=json.load(sys.stdin)
for k in sys.argv[1].split("."): v=v[int(k)] if isinstance(v,list) else v[k]
print(str(v).lower() if isinstance(v,bool) else v)' "$1"; }
running() { [ "$(field "$1" state)" = running ]; }
running2() { [ "$(c2 --json inspect "$1" 2>/dev/null | jget 0.state)" = running ]; }
plan_empty() { [ "$("$@" --json plan | jget actions)" = "[]" ]; }

# A declared container with data in its rootfs and in a volume.
cat >"${CONF:?}" <<'EOF'
(container web :image "forge" :command ("sleep" "300")
  :volumes ((:dataset "data" :path "/srv/data")))
EOF
clbsd apply >/dev/null
wait_until 20 running web || fail web_up "$(clbsd ps -a)"
clbsd exec web sh -c 'echo precious > /state; echo vol > /srv/data/f'
FORM=$(clbsd --json inspect web | jget 0.declaration)
case "$FORM" in "(container web"*) ok inspect_declaration ;; *) fail inspect_declaration "$FORM" ;; esac
clbsd export -o "$TMP/web.clbsd" web >/dev/null || fail export "export failed"

# The target has the same image (copied, as migrate.sh does) and another one.
mkdir -p "$ROOT2/images"
cp -a "${ROOT:?}"/images/. "$ROOT2/images/"
start2 || { fail target_up "second daemon did not start"; exit 1; }
mkdir -p "$TMP/other/bin"
c2 image import "$TMP/other" other >/dev/null || fail other_image "image import failed"

# import --declared: refused when not declared, of another kind, on another image.
out=$(c2 import --declared "$TMP/web.clbsd" 2>&1) && fail refuse_undeclared "$out" ||
	{ echo "$out" | grep -q "is not declared here" && ok refuse_undeclared ||
		fail refuse_undeclared "$out"; }
out=$(c2 import --declared --declaration '(container web :kind docker :image "forge")' \
	"$TMP/web.clbsd" 2>&1) && fail refuse_kind "$out" ||
	{ echo "$out" | grep -q "declared here as a docker one" && ! grep -qs web "$LIVE2" &&
		ok refuse_kind || fail refuse_kind "$out / $(cat "$LIVE2" 2>&1)"; }
out=$(c2 import --declared --declaration '(container web :image "other")' \
	"$TMP/web.clbsd" 2>&1) && fail refuse_image "$out" ||
	{ echo "$out" | grep -q "declared here on image other" && ! grep -qs web "$LIVE2" &&
		! c2 inspect web >/dev/null 2>&1 && ok refuse_image ||
		fail refuse_image "$out / $(cat "$LIVE2" 2>&1)"; }

# Into the declaration it comes with: managed, plan empty, files and volume there.
out=$(c2 import --declared --declaration "$FORM" "$TMP/web.clbsd" 2>&1)
[ "$out" = web ] && [ "$(c2 --json inspect web | jget 0.managed)" = true ] &&
	grep -q "(container web" "$LIVE2" && plan_empty c2 &&
	ok import_declared || fail import_declared "$out $(c2 --json plan)"
c2 start web >/dev/null
[ "$(c2 exec web cat /state)" = precious ] && [ "$(c2 exec web cat /srv/data/f)" = vol ] &&
	plan_empty c2 && ok import_declared_data || fail import_declared_data "$(c2 ps -a)"
# ---- clbsd migrate of a declared container, to a target without its image ----
stop2
rm -rf "$ROOT2" "$TMP/etc2/conf.d"
start2 || { fail target_up "second daemon did not come back"; exit 1; }
before=$(clbsd exec web cat /state /srv/data/f | sha256sum)
out=$(clbsd migrate -t 1 web "unix:$SOCK2" 2>"$TMP/progress")
[ "$out" = web ] && grep -q "sent its image" "$TMP/progress" && ok image_sent ||
	fail image_sent "$out $(cat "$TMP/progress")"
running2 web && [ "$(c2 exec web cat /state /srv/data/f | sha256sum)" = "$before" ] &&
	ok migrated_data_equal || fail migrated_data_equal "$(c2 ps -a)"
plan_empty c2 && grep -q "(container web" "$LIVE2" &&
	[ "$(c2 --json inspect web | jget 0.managed)" = true ] &&
	ok target_declared_plan_empty || fail target_declared_plan_empty "$(c2 --json plan) $(cat "$LIVE2")"
grep -q '(moved web :to "unix:' "$TMP/etc/conf.d/90-live.conf" && plan_empty clbsd &&
	! clbsd inspect web >/dev/null 2>&1 && clbsd status | grep -q "moved: *web to unix:" &&
	ok source_moved || fail source_moved "$(clbsd status) $(clbsd --json plan)"
# ps -a lists the moved declaration as a row of its own (STATE moved, no id);
# ps and ps -q do not; --json carries {"moved": {"to", "at"}}.
clbsd ps -a >"$TMP/ps" 2>&1
head -n1 "$TMP/ps" | grep -q "^NAME  *ID  *IMAGE  *KIND  *COMMAND  *STATE  *STATUS  *PID  *ADDRESS  *PORTS$" &&
	grep -Eq "^web +moved +Moved to unix:$SOCK2 .* ago +-$" "$TMP/ps" &&
	ok ps_all_moved_row || fail ps_all_moved_row "$(cat "$TMP/ps")"
! clbsd ps | grep -q "^web " && ! clbsd ps -a -q | grep -qx web &&
	! clbsd ps -q | grep -qx web && ok ps_plain_and_quiet_skip_moved ||
	fail ps_plain_and_quiet_skip_moved "$(clbsd ps; clbsd ps -a -q)"
clbsd --json ps -a | python3 -c 'import json,sys,re
rows=[c for c in json.load(sys.stdin) if c["name"]=="web"]
assert len(rows)==1, rows
r=rows[0]
assert r["state"]=="moved" and "id" not in r, r
assert r["moved"]["to"]==sys.argv[1], r
assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", r["moved"]["at"]), r' "unix:$SOCK2" \
	2>"$TMP/err" && ok ps_json_moved || fail ps_json_moved "$(cat "$TMP/err")"
clbsd apply >/dev/null
! clbsd inspect web >/dev/null 2>&1 && plan_empty clbsd && ok apply_leaves_moved ||
	fail apply_leaves_moved "$(clbsd ps -a)"

# Back again: the source's own file declares it; the (moved ...) form goes.
out=$(c2 migrate -t 1 web "unix:${SOCK:?}" 2>&1)
running web && [ "$(clbsd exec web cat /state /srv/data/f | sha256sum)" = "$before" ] &&
	plan_empty clbsd && ! grep -qs "moved web" "$TMP/etc/conf.d/90-live.conf" &&
	[ "$(field web managed)" = true ] && ! c2 inspect web >/dev/null 2>&1 &&
	grep -q "(moved web" "$LIVE2" && plan_empty c2 && ok migrate_back ||
	fail migrate_back "$out $(clbsd --json plan)"

# ---- the target daemon killed between the steps ----
cat >>"$CONF" <<'EOF'
(container kv :image "forge" :command ("sleep" "300"))
EOF
clbsd apply >/dev/null
wait_until 20 running kv || fail kv_up "$(clbsd ps -a)"
out=$(CLBSD_MIGRATE_HOOK="[ \"\$1\" = imported ] && kill -KILL $D2" \
	"$BUILD/clbsd" --socket "$SOCK" migrate -t 1 kv "unix:$SOCK2" 2>&1)
rc=$?
wait "$D2" 2>/dev/null
D2=""
[ $rc -ne 0 ] && running kv && plan_empty clbsd &&
	! grep -qs "moved kv" "$TMP/etc/conf.d/90-live.conf" &&
	ok killed_target_source_runs || fail killed_target_source_runs "rc=$rc $out"
start2 || { fail target_up "second daemon did not come back"; exit 1; }
gone2() { ! c2 inspect "$1" >/dev/null 2>&1; }
wait_until 10 gone2 kv && ! grep -qs "container kv" "$LIVE2" &&
	[ ! -e "$ROOT2/transfer/import-kv.json" ] && plan_empty c2 &&
	ok killed_target_nothing_half || fail killed_target_nothing_half "$(c2 ps -a; cat "$LIVE2")"

# ---- --all: dependencies first ----
cat >>"$CONF" <<'EOF'
(container db :image "forge" :command ("sleep" "300"))
(container app :image "forge" :command ("sleep" "300") :depends-on (db))
EOF
clbsd apply >/dev/null
wait_until 20 running app || fail app_up "$(clbsd ps -a)"
out=$(clbsd migrate --all -t 1 "unix:$SOCK2" 2>"$TMP/progress")
order=$(grep -o "^migrate [a-z]*: done" "$TMP/progress" | awk '{print $2}' | tr -d : | tr "\n" " ")
case "$order" in *db*app*) ordered=1 ;; *) ordered=0 ;; esac
[ "$ordered" = 1 ] && running2 app && running2 db && running2 web && running2 kv &&
	[ -z "$(clbsd ps -a -q)" ] && plan_empty clbsd && plan_empty c2 &&
	ok migrate_all_in_order || fail migrate_all_in_order "$order / $out / $(cat "$TMP/progress")"
stop2
rm -rf "$ROOT2"
t_done
