#!/bin/bash
# export --snapshots and host export --snapshots on zfs (datasets of one
# pool under zfs-fuse): a container's own snapshots travel inside its
# stream as a chain and the import makes them again under their labels,
# each with its own content (a rollback on the target finds the files of
# that moment, in the rootfs and in a named volume); one LABEL carries
# only that one; a whole host round trip keeps them; --since with
# --snapshots is refused; a cut-short archive is refused with nothing left.
. "$(dirname "$0")/../lib.sh"
t_before_start() {
	t_zfs_setup || return 1
	cat >"$CONF" <<CONF
(host :storage (:driver zfs :pool "$ZPOOL" :root "$ZPOOL/clbsd"))
CONF
	# shellcheck disable=SC2034 # read by t_start_daemon
	DAEMON_NS="--net"
}
t_setup
t_forge
# Targets: daemon N has its own root, run dir, socket, config and dataset.
# shellcheck disable=SC2034 # set and read through eval in startn/stopn
D2=""
# shellcheck disable=SC2034 # set and read through eval in startn/stopn
D3=""
cn() { local n=$1; shift; "$BUILD/clbsd" --socket "$TMP/run$n/clbsd.sock" "$@"; }
c2() { cn 2 "$@"; }
c3() { cn 3 "$@"; }
startn() {
	local n=$1
	mkdir -p "$TMP/etc$n/conf.d" "$TMP/root$n/images"
	echo "(host :storage (:driver zfs :pool \"$ZPOOL\" :root \"$ZPOOL/clbsd$n\"))" >"$TMP/etc$n/clbsd.conf"
	unshare --net -- "$BUILD/clbsdd" --root "$TMP/root$n" --run "$TMP/run$n" \
		--socket "$TMP/run$n/clbsd.sock" --config "$TMP/etc$n/clbsd.conf" \
		--cgroup-parent "clbsd-$T_ID-$n" --pool=0 >>"$TMP/daemon$n.log" 2>&1 &
	eval "D$n=$!"
	wait_until 60 cn "$n" info >/dev/null 2>&1
}
stopn() {
	local n=$1 pid
	eval "pid=\$D$n"
	for c in $(cn "$n" --json ps -a 2>/dev/null | python3 -c 'import json,sys
for c in json.load(sys.stdin): print(c["name"])' 2>/dev/null); do cn "$n" rm -f -v "$c" >/dev/null 2>&1; done
	[ -n "$pid" ] && kill "$pid" 2>/dev/null
	[ -n "$pid" ] && wait "$pid" 2>/dev/null
	eval "D$n="
	find /sys/fs/cgroup -maxdepth 2 -type d -name "clbsd-$T_ID-$n" -exec rmdir {} + 2>/dev/null
}
trap 'stopn 3; stopn 2; t_cleanup' EXIT
# Daemon 2 takes single exports: it needs the image; daemon 3 a host export.
mkdir -p "$TMP/root2/images"
cp -a "${ROOT:?}"/images/. "$TMP/root2/images/"
startn 2 || { fail target_up "$(tail -5 "$TMP/daemon2.log")"; t_done; exit 1; }
labels() { "$@" --json snapshots web 2>/dev/null | python3 -c 'import json,sys
print(" ".join(s["label"] for s in json.load(sys.stdin) if not s["label"].startswith("export-")))'; }
# What container NAME of daemon root R holds at this moment: its rootfs
# file, its volume file, and whether only2 is in the volume.
content() {
	local r=$1 name=$2
	echo "$(cat "$r/containers/$name/rootfs/r.txt" 2>&1) $(cat "$r/volumes/$name/data/f" 2>&1) $(test -e "$r/volumes/$name/data/only2" && echo only2)"
}

# web: three snapshots, each with its own content, and changes after them.
clbsd run -d --name web -v data:/srv forge sleep 300 >/dev/null
clbsd exec web sh -c 'echo r1 > /r.txt; echo v1 > /srv/f'
clbsd snapshot web s1 >/dev/null
clbsd exec web sh -c 'echo r2 > /r.txt; echo v2 > /srv/f; echo x > /srv/only2'
clbsd snapshot web s2 >/dev/null
clbsd exec web sh -c 'echo r3 > /r.txt; echo v3 > /srv/f; rm /srv/only2'
clbsd snapshot web s3 >/dev/null
clbsd exec web sh -c 'echo now > /r.txt; echo vnow > /srv/f'
[ "$(labels clbsd)" = "s1 s2 s3" ] || fail source_snapshots "$(clbsd snapshots web 2>&1)"

# --snapshots all: the three travel; on the target each has its content.
out=$(clbsd --json export --snapshots all -o "$TMP/all.clbsd" web 2>&1)
echo "$out" | python3 -c 'import json,sys; assert json.load(sys.stdin)["snapshots"] == ["s1","s2","s3"]' 2>/dev/null &&
	ok export_all_lists_them || fail export_all_lists_them "$out"
out=$(c2 import "$TMP/all.clbsd" 2>&1)
[ "$(labels c2)" = "s1 s2 s3" ] && ok import_makes_all_labels || fail import_makes_all_labels "$out $(c2 snapshots web 2>&1)"
R2="$TMP/root2"
[ "$(content "$R2" web)" = "now vnow " ] && ok import_has_current_files || fail import_has_current_files "$(content "$R2" web)"
got=""
for s in s3 s2 s1; do
	c2 rollback -f web "$s" >/dev/null 2>&1 || got="$got rollback $s failed;"
	got="$got $s:$(content "$R2" web);"
done
[ "$got" = " s3:r3 v3 ; s2:r2 v2 only2; s1:r1 v1 ;" ] && ok each_snapshot_has_its_content ||
	fail each_snapshot_has_its_content "$got"
# A snapshot that came with the import goes whole (its volume's too), and
# its label can be taken again.
c2 snapshots --rm s1 web >/dev/null 2>&1
left=$(zfs list -H -t snapshot -o name -r "$ZPOOL/clbsd2" | grep "/web\(/.*\)\?@s1$")
[ -z "$left" ] && c2 snapshot web s1 >/dev/null 2>&1 && ok imported_snapshot_removed_whole ||
	fail imported_snapshot_removed_whole "$left"

# One LABEL: only s2 travels (as the first, whole), with its content.
out=$(clbsd export --snapshots s2 -o "$TMP/one.clbsd" web 2>&1) || fail export_one_label "$out"
out=$(c2 import --name one "$TMP/one.clbsd" 2>&1)
l=$(c2 --json snapshots one 2>/dev/null | python3 -c 'import json,sys
print(" ".join(s["label"] for s in json.load(sys.stdin) if not s["label"].startswith("export-")))')
[ "$l" = s2 ] && ok one_label_only_that_one || fail one_label_only_that_one "$out: $l"
c2 rollback -f one s2 >/dev/null 2>&1
[ "$(content "$R2" one)" = "r2 v2 only2" ] && ok one_label_content || fail one_label_content "$(content "$R2" one)"

# Refusals: a label web lacks, --since with --snapshots, a bad list.
out=$(clbsd export --snapshots s1,nope -o "$TMP/no.clbsd" web 2>&1)
rc=$?
[ $rc -ne 0 ] && echo "$out" | grep -q nope && [ ! -e "$TMP/no.clbsd" ] && [ "$(labels clbsd)" = "s1 s2 s3" ] &&
	ok unknown_label_refused || fail unknown_label_refused "$out $(labels clbsd)"
out=$(clbsd export --snapshot k1 -o "$TMP/k1.clbsd" web 2>&1) || fail kept_export "$out"
out=$(clbsd export --since k1 --snapshots all -o "$TMP/inc.clbsd" web 2>&1)
rc=$?
[ $rc -ne 0 ] && echo "$out" | grep -q -- "--since" && ok since_with_snapshots_refused || fail since_with_snapshots_refused "$out"
out=$(curl -s --unix-socket "$SOCK" -X POST -d "{\"path\":\"$TMP/inc2.clbsd\",\"from\":\"k1\"}" \
	"http://x/v1/containers/web/export?snapshots=all" 2>&1)
echo "$out" | grep -q "whole export" && [ ! -e "$TMP/inc2.clbsd" ] && ok api_since_with_snapshots_refused ||
	fail api_since_with_snapshots_refused "$out"
out=$(clbsd export --snapshots 's1,,x' -o "$TMP/bad.clbsd" web 2>&1)
rc=$?
[ $rc -ne 0 ] && echo "$out" | grep -q -- "--snapshots" && ok bad_list_refused || fail bad_list_refused "$out"

# A cut-short archive: refused, and nothing of it left on the target.
size=$(stat -c %s "$TMP/all.clbsd")
head -c $((size * 2 / 3)) "$TMP/all.clbsd" >"$TMP/cut.clbsd"
out=$(c2 import --name cut "$TMP/cut.clbsd" 2>&1)
rc=$?
left=$(zfs list -H -o name -r "$ZPOOL/clbsd2" 2>/dev/null | grep -c "/cut\(/\|\$\)")
[ $rc -ne 0 ] && [ "$left" = 0 ] && ! c2 inspect cut >/dev/null 2>&1 && [ ! -e "$R2/containers/cut" ] &&
	ok cut_archive_refused_leaves_nothing || fail cut_archive_refused_leaves_nothing "rc=$rc left=$left $out"

# host export --snapshots all: a whole host, and web's snapshots with it.
clbsd run -d --name db forge sleep 300 >/dev/null
clbsd exec db sh -c 'echo rows > /db.txt'
out=$(clbsd host export --snapshots all --label h1 -o "$TMP/h1.host" 2>&1) && ok host_export_with_snapshots ||
	fail host_export_with_snapshots "$out"
out=$(clbsd host export --snapshots all --since h1 -o "$TMP/h2.host" 2>&1)
rc=$?
[ $rc -ne 0 ] && echo "$out" | grep -q -- "--since" && [ ! -e "$TMP/h2.host" ] && ok host_since_with_snapshots_refused ||
	fail host_since_with_snapshots_refused "$out"
out=$(clbsd host export --snapshots nope -o "$TMP/h3.host" 2>&1)
rc=$?
[ $rc -ne 0 ] && echo "$out" | grep -q nope && [ ! -e "$TMP/h3.host" ] && ok host_unknown_label_refused ||
	fail host_unknown_label_refused "$out"
startn 3 || fail target_up "third daemon: $(tail -5 "$TMP/daemon3.log")"
out=$(c3 host import "$TMP/h1.host" 2>&1)
rc=$?
# k1 (kept by the export above) is web's too, h1 the host export's own.
[ $rc -eq 0 ] && [ "$(labels c3)" = "s1 s2 s3 k1 h1" ] && [ "$(c3 exec db cat /db.txt 2>&1)" = rows ] &&
	ok host_import_makes_labels || fail host_import_makes_labels "rc=$rc $out: $(labels c3)"
c3 stop -t 1 web >/dev/null 2>&1
c3 rollback -f web s2 >/dev/null 2>&1
[ "$(content "$TMP/root3" web)" = "r2 v2 only2" ] && ok host_import_snapshot_content ||
	fail host_import_snapshot_content "$(content "$TMP/root3" web)"
t_done
