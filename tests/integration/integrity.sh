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
t_done
