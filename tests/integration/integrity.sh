#!/bin/bash
# File integrity (docs/integrity.md): a container's files against the mtree
# manifest recorded at create: clean, then each kind of change reported with
# exit 1, volumes left out, --update, stopped containers, the :integrity
# schedule's event and hook, and what a hostile tree plants (a FIFO, a
# symlink to /) neither hangs the check nor leads it out of the tree.
. "$(dirname "$0")/../lib.sh"
t_setup
t_forge
LOG="$TMP/drift.log"
touch "$LOG"
cat >"$CONF" <<C
(container web :image "forge" :command ("sleep" "300")
  :volumes ((:dataset "data" :path "/srv/data"))
  :integrity (:exclude ("/var/log")))
(container watched :image "forge" :command ("sleep" "300")
  :integrity (:every "1s"
              :on-drift ("sh" "-c" "echo drift \$CLBSD_CONTAINER \$CLBSD_EVENT \$CLBSD_DRIFT_COUNT >> $LOG")))
C
clbsd apply >/dev/null
[ "$(field web state)" = running ] || fail apply "web is $(field web state)"

# scheduled_event TYPE NAME: NAME has had a TYPE event from a scheduled check.
scheduled_event() {
	clbsd events --type "$1" --container "$2" --json | grep -q '"source":"schedule"'
}

# verify NAME: its output in $OUT, its status in $RC.
verify() {
	OUT=$(clbsd verify "$@" 2>&1)
	RC=$?
}

verify web
[ "$RC" = 0 ] && grep -q '^web: clean' <<<"$OUT" && ok fresh_container_clean ||
	fail fresh_container_clean "rc=$RC $OUT"
[ -f "$ROOT/containers/web/integrity.mtree" ] && head -1 "$ROOT/containers/web/integrity.mtree" | grep -q '^#mtree' &&
	ok manifest_beside_container_json || fail manifest_beside_container_json "$(ls "$ROOT/containers/web")"
IMG=$(clbsd image inspect forge --format '{{.id}}' 2>/dev/null || true)
[ -n "$IMG" ] && [ -f "$ROOT/images/$IMG/integrity.mtree" ] && ok image_manifest_recorded ||
	fail image_manifest_recorded "image $IMG: $(ls "$ROOT/images/$IMG" 2>&1)"
# The format is mtree(5): the BSDs' mtree(8) checks the image's tree with it.
if command -v mtree >/dev/null && [ -d "$ROOT/images/$IMG/rootfs" ]; then
	mtree -f "$ROOT/images/$IMG/integrity.mtree" -p "$ROOT/images/$IMG/rootfs" >"$TMP/mtree.out" 2>&1 &&
		ok bsd_mtree_reads_manifest || fail bsd_mtree_reads_manifest "$(head -20 "$TMP/mtree.out")"
else
	skip bsd_mtree_reads_manifest "no mtree(8) (Debian: mtree-netbsd) or no image tree here"
fi

# Writes clbsd's data paths take are not drift: a volume, an excluded path.
clbsd exec web sh -c 'echo v > /srv/data/new; mkdir -p /var/log; echo l > /var/log/x'
verify web
[ "$RC" = 0 ] && ok volume_and_excluded_not_reported || fail volume_and_excluded_not_reported "rc=$RC $OUT"

clbsd exec web sh -c 'echo changed >> /etc/passwd'
verify web
[ "$RC" = 1 ] && grep -q '^M /etc/passwd (size [0-9]* -> [0-9]*, digest)$' <<<"$OUT" && ok changed_file ||
	fail changed_file "rc=$RC $OUT"
clbsd exec web sh -c 'echo x > /etc/added; rm /etc/group; chmod 600 /etc/hostname 2>/dev/null || chmod 600 /etc/passwd'
clbsd exec web sh -c 'ln -sf /tmp/elsewhere /bin/ls'
verify web
[ "$RC" = 1 ] && grep -q '^A /etc/added$' <<<"$OUT" && ok added_file || fail added_file "rc=$RC $OUT"
[ "$RC" = 1 ] && grep -q '^D /etc/group$' <<<"$OUT" && ok removed_file || fail removed_file "rc=$RC $OUT"
grep -Eq '^M /etc/(hostname|passwd) \(mode 0644 -> 0600' <<<"$OUT" && ok chmod_reported || fail chmod_reported "$OUT"
grep -Eq '^M /bin/ls \(target (/bin/)?busybox -> /tmp/elsewhere\)$' <<<"$OUT" && ok symlink_retarget ||
	fail symlink_retarget "$OUT"
clbsd verify --json web >"$TMP/rep.json" || true
jq -e '.clean == false and .added == 1 and .removed == 1 and (.drift | map(select(.path == "/bin/ls"))[0].what == ["target"])' \
	"$TMP/rep.json" >/dev/null && ok json_report || fail json_report "$(cat "$TMP/rep.json")"
clbsd events --type integrity.drift --container web --json | grep -q '"source":"verify"' &&
	ok drift_event || fail drift_event "$(clbsd events --type integrity --container web)"

# A hostile tree: a FIFO where a file was, a symlink to / (and one into a
# directory the check might follow); the check neither waits nor walks the host.
clbsd exec web sh -c 'rm /etc/added; mkfifo /etc/added; ln -s / /rootlink; ln -s /etc /bin/etclink'
t0=$(date +%s)
verify web
dt=$(($(date +%s) - t0))
[ "$RC" = 1 ] && [ "$dt" -lt 10 ] && grep -q '^A /etc/added$' <<<"$OUT" && ok fifo_not_opened ||
	fail fifo_not_opened "rc=$RC ${dt}s $OUT"
grep -q '^A /rootlink$' <<<"$OUT" && ! grep -q '^A /rootlink/' <<<"$OUT" && ! grep -q "^A /bin/etclink/" <<<"$OUT" &&
	ok symlink_not_followed || fail symlink_not_followed "$OUT"

# A sparse 8 TiB file would be hours of hashing zeros: the check's budget
# refuses it at once, loudly (exit 3 with the reason, an integrity.failed event).
clbsd exec web truncate -s 8796093022208 /big8t
t0=$(date +%s)
verify web
dt=$(($(date +%s) - t0))
[ "$RC" = 3 ] && [ "$dt" -lt 10 ] && grep -q 'sparse file of 8796093022208 bytes' <<<"$OUT" &&
	ok sparse_file_fails_fast || fail sparse_file_fails_fast "rc=$RC ${dt}s $OUT"
clbsd events --type integrity.failed --container web --json | grep -q '"reason":".*sparse' &&
	ok failed_check_event || fail failed_check_event "$(clbsd events --type integrity --container web)"
clbsd exec web rm /big8t

verify --update web
[ "$RC" = 0 ] && grep -q 'manifest updated' <<<"$OUT" && ok update_accepts || fail update_accepts "rc=$RC $OUT"
verify web
[ "$RC" = 0 ] && ok clean_after_update || fail clean_after_update "rc=$RC $OUT"

# Stopped: the container's layers read as the host sees them.
clbsd stop -t 0 web >/dev/null
verify web
[ "$RC" = 0 ] && ok stopped_clean || fail stopped_clean "rc=$RC $OUT"
if [ -d "$ROOT/containers/web/upper/etc" ]; then
	echo y >"$ROOT/containers/web/upper/etc/stopped-add"
	verify web
	[ "$RC" = 1 ] && grep -q '^A /etc/stopped-add$' <<<"$OUT" && ok stopped_drift || fail stopped_drift "rc=$RC $OUT"
	# A clone is checked against its source's baseline, not its own files.
	clbsd clone web webc >/dev/null
	verify webc
	[ "$RC" = 1 ] && grep -q '^A /etc/stopped-add$' <<<"$OUT" && ok clone_keeps_baseline ||
		fail clone_keeps_baseline "rc=$RC $OUT"
	clbsd rm -f webc >/dev/null
	rm -f "$ROOT/containers/web/upper/etc/stopped-add"
else
	skip stopped_drift "no overlay upper layer here ($(field web storage))"
fi

# A manifest that is not one is an error (exit 3), never a crash or a hang:
# a well-formed entry naming contents= a FIFO must not make the reader open
# it (a FIFO with no writer would block the check for good).
mkfifo "$TMP/manifest.fifo"
printf '#mtree\n./etc/shadow type=file contents=%s\n' "$TMP/manifest.fifo" >"$ROOT/containers/web/integrity.mtree"
OUT=$(timeout 20 "$BUILD/clbsd" --socket "$SOCK" verify web 2>&1)
RC=$?
[ "$RC" != 124 ] && [ "$RC" = 1 ] && ok hostile_manifest_contents_not_opened ||
	fail hostile_manifest_contents_not_opened "rc=$RC $OUT"
printf '#mtree\n/etc/shadow type=file\n' >"$ROOT/containers/web/integrity.mtree"
verify web
[ "$RC" = 3 ] && ok hostile_manifest_refused || fail hostile_manifest_refused "rc=$RC $OUT"
verify --update web
[ "$RC" = 0 ] && verify web && [ "$RC" = 0 ] && ok damaged_manifest_replaced_by_update ||
	fail damaged_manifest_replaced_by_update "rc=$RC $OUT"

verify nosuch
[ "$RC" = 3 ] && ok unknown_container || fail unknown_container "rc=$RC $OUT"
verify
[ "$RC" = 2 ] && ok usage || fail usage "rc=$RC $OUT"

# The schedule: a drift in watched fires the event and runs :on-drift.
clbsd exec watched sh -c 'echo evil > /bin/evil'
wait_until 10 grep -q '^drift watched integrity.drift 1$' "$LOG" && ok scheduled_hook_runs ||
	fail scheduled_hook_runs "$(cat "$LOG"); $(clbsd events --type integrity --container watched)"
clbsd events --type integrity.drift --container watched --json | grep -q '"source":"schedule"' &&
	ok scheduled_drift_event || fail scheduled_drift_event "$(clbsd events --type integrity --container watched)"

# A scheduled check that finds the last one still running is an event, not a
# line in the log: 6 GiB to hash take longer than the 1 s schedule.
clbsd exec watched truncate -s 6442450944 /big6g
wait_until 60 scheduled_event integrity.skipped watched &&
	ok skipped_check_event || fail skipped_check_event "$(clbsd events --type integrity --container watched | tail -5)"
clbsd exec watched rm /big6g

# AUDITCFG with a file class: a container of the image is checked at each
# start (and hourly) without an :integrity of its own.
CTX="$TMP/ctx"
mkdir -p "$CTX"
printf 'FROM forge\nAUDITCFG "fc,fw"\nCMD ["sleep", "600"]\n' >"$CTX/Cblockfile"
clbsd build -t audited:1 "$CTX" >/dev/null 2>&1
clbsd run -d --name au audited:1 >/dev/null
wait_until 20 scheduled_event integrity.ok au &&
	ok auditcfg_checks_at_start || fail auditcfg_checks_at_start "$(clbsd events --type integrity --container au)"
clbsd exec au sh -c 'echo planted > /etc/planted'
clbsd stop -t 0 au >/dev/null
clbsd start au >/dev/null
wait_until 20 scheduled_event integrity.drift au &&
	ok auditcfg_scheduled_drift_event || fail auditcfg_scheduled_drift_event "$(clbsd events --type integrity --container au)"
clbsd rm -f au >/dev/null

# A built image: its manifest is recorded at build and lists what the
# Cblockfile's steps made; a container of it is clean, then drifts.
CTX2="$TMP/ctx2"
mkdir -p "$CTX2"
echo "app 1" >"$CTX2/app.conf"
printf 'FROM forge\nCOPY app.conf /etc/app.conf\nRUN echo built > /etc/built\nVOLUME /data /var/lib/app/\nCMD ["sleep", "600"]\n' >"$CTX2/Cblockfile"
clbsd build -t built:1 "$CTX2" >"$TMP/build.out" 2>&1 || fail build "$(tail -5 "$TMP/build.out")"
BIMG=$(clbsd image inspect built:1 --format '{{.id}}' 2>/dev/null || true)
APPSUM=$(sha256sum "$CTX2/app.conf" | cut -d' ' -f1)
BMAN="$ROOT/images/$BIMG/integrity.mtree"
[ -n "$BIMG" ] && [ -f "$BMAN" ] && grep -q "^\./etc/app\.conf .*sha256digest=$APPSUM" "$BMAN" &&
	grep -q '^\./etc/built ' "$BMAN" && ok built_image_manifest ||
	fail built_image_manifest "image ${BIMG:-none}: $(grep -s 'etc/app\|etc/built' "$BMAN" | head -3)"
clbsd run -d --name bu built:1 >/dev/null
verify bu
[ "$RC" = 0 ] && grep -q '^bu: clean' <<<"$OUT" && ok built_container_clean || fail built_container_clean "rc=$RC $OUT"
clbsd exec bu sh -c 'echo app 2 > /etc/app.conf'
verify bu
[ "$RC" = 1 ] && grep -q '^M /etc/app.conf (.*digest)$' <<<"$OUT" && ok built_container_drifts ||
	fail built_container_drifts "rc=$RC $OUT"

# The image's VOLUME paths: a directory at each (the image has none there),
# 0755 and the container's root's; what is written there is not drift.
clbsd exec bu sh -c 'test -d /data && test -d /var/lib/app && stat -c "%a %u:%g" /data /var/lib/app' >"$TMP/vol.out" 2>&1
[ "$(cat "$TMP/vol.out")" = "755 0:0
755 0:0" ] && ok image_volume_dirs_made || fail image_volume_dirs_made "$(cat "$TMP/vol.out")"
WROTE=no
clbsd exec bu sh -c 'echo d > /data/x && echo a > /var/lib/app/y' && WROTE=yes
verify bu
[ "$WROTE" = yes ] && [ "$RC" = 1 ] && ! grep -q '/data\|/var/lib/app' <<<"$OUT" && ok image_volumes_not_drift ||
	fail image_volumes_not_drift "wrote: $WROTE rc=$RC $OUT"
jq -e '.excluded | index("/data") and index("/var/lib/app")' <(clbsd verify --json bu) >/dev/null &&
	ok image_volumes_listed_excluded || fail image_volumes_listed_excluded "$(clbsd verify --json bu)"
# With a user namespace the directory is the container's root's too (made
# through the idmapped rootfs as the range's root), and verify stays clean.
if clbsd run -d --name bun --userns auto built:1 >"$TMP/bun.out" 2>&1; then
	OWN=$(clbsd exec bun stat -c '%a %u:%g' /data 2>&1)
	verify bun
	[ "$OWN" = "755 0:0" ] && [ "$RC" = 0 ] && ok image_volume_dir_userns ||
		fail image_volume_dir_userns "owner $OWN; rc=$RC $OUT"
	clbsd rm -f bun >/dev/null
else
	skip image_volume_dir_userns "no --userns auto here: $(cat "$TMP/bun.out")"
fi
# A volume of its own at the path: mounted there, nothing made below it.
clbsd run -d --name bv -v bvdata:/data built:1 >/dev/null &&
	clbsd exec bv sh -c 'echo v > /data/v' && [ -f "$ROOT/volumes/bv/bvdata/v" ] &&
	ok image_volume_own_volume || fail image_volume_own_volume "$(clbsd ps -a 2>&1 | grep bv)"
clbsd rm -f -v bv >/dev/null

# clbsd run's own :integrity: --integrity-exclude leaves a path out,
# --integrity-include takes one back from the defaults (here an image
# VOLUME); kept in the container's record across a daemon restart.
clbsd run -d --name api --integrity-exclude /etc/app.conf --integrity-include /var/lib/app built:1 >/dev/null
clbsd exec api sh -c 'echo app 3 > /etc/app.conf; echo d > /data/x; echo a > /var/lib/app/y'
verify api
[ "$RC" = 1 ] && grep -q '^A /var/lib/app/y$' <<<"$OUT" && ! grep -q '/etc/app.conf\|/data' <<<"$OUT" &&
	ok run_integrity_flags || fail run_integrity_flags "rc=$RC $OUT"
[ "$(field api config.integrity.exclude)" = "['/etc/app.conf']" ] && ok run_integrity_inspect ||
	fail run_integrity_inspect "$(field api config.integrity 2>&1)"
t_kill_daemon TERM
t_start_daemon
verify api
[ "$RC" = 1 ] && grep -q '^A /var/lib/app/y$' <<<"$OUT" && ! grep -q '/etc/app.conf' <<<"$OUT" &&
	ok run_integrity_after_restart || fail run_integrity_after_restart "rc=$RC $OUT"
# Bad input never reaches the daemon; the API refuses what only the
# configuration has (a host command), naming it.
OUT=$(clbsd run -d --name bad --integrity-exclude etc built:1 2>&1)
RC=$?
[ "$RC" = 2 ] && grep -q 'integrity-exclude.*absolute path' <<<"$OUT" && ok run_integrity_bad_path || fail run_integrity_bad_path "rc=$RC $OUT"
OUT=$(curl -s --unix-socket "$SOCK" -X POST -H 'Content-Type: application/json' \
	-d '{"image":"built:1","integrity":{"every":"1h","on_drift":["true"]}}' http://clbsd/v1/containers)
grep -q 'on_drift.. is the configuration' <<<"$OUT" && ok api_integrity_on_drift_refused ||
	fail api_integrity_on_drift_refused "$OUT"
# --integrity-every: scheduled checks of its own, also after a daemon restart.
clbsd run -d --name sched --integrity-every 1s built:1 >/dev/null
wait_until 20 scheduled_event integrity.ok sched && ok run_integrity_every ||
	fail run_integrity_every "$(clbsd events --type integrity --container sched)"
t_kill_daemon TERM
t_start_daemon
clbsd exec sched sh -c 'echo planted > /etc/planted'
wait_until 20 scheduled_event integrity.drift sched && ok run_integrity_every_after_restart ||
	fail run_integrity_every_after_restart "$(clbsd events --type integrity --container sched)"
clbsd rm -f sched >/dev/null
clbsd rm -f bu api >/dev/null
t_done
