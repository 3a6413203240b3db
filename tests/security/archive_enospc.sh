#!/bin/bash
# A load that fills the disk says so (it was reported as bad JSON: the
# write error was lost and index.json left short), and leaves no staging
# directory and no image behind.
. "$(dirname "$0")/../lib.sh"

# The image store on a small tmpfs of its own, for the full-disk case; the
# daemon's namespace gets its copy at start, the host's is unmounted at exit.
IMAGES_MNT=""
t_before_start() {
	mkdir -p "$ROOT/images"
	if mount -t tmpfs -o size=8m,mode=0700 clbsd-test "$ROOT/images"; then
		IMAGES_MNT="$ROOT/images"
	fi
	return 0
}
t_setup
trap 'rc=$?; [ -n "$IMAGES_MNT" ] && umount -l "$IMAGES_MNT"; (exit $rc); t_cleanup' EXIT

FORGE=("python3" "$TOP/tests/security/archive_forge.py")

# ---- a full disk during load ----
if [ -n "$IMAGES_MNT" ]; then
	echo '[[{"name": "big", "size": 16777216}]]' >"$TMP/spec.json"
	"${FORGE[@]}" oci "$TMP/big.tar" "$TMP/spec.json"
	out=$(clbsd load --name big:1 "$TMP/big.tar" 2>&1)
	rc=$?
	if [ $rc -ne 0 ] && grep -q "disk is full" <<<"$out" && ! grep -qi "json" <<<"$out"; then
		ok load_enospc_says_disk_full
	else
		fail load_enospc_says_disk_full "status $rc: $out"
	fi
	! ls -d "$ROOT"/images/.staging-* >/dev/null 2>&1 && ! clbsd image inspect big:1 >/dev/null 2>&1 &&
		ok load_enospc_leaves_nothing || fail load_enospc_leaves_nothing "$(ls -a "$ROOT/images")"
else
	skip load_enospc "cannot mount a tmpfs here"
fi

t_done
