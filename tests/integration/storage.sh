#!/bin/bash
# The dir driver's copy fallback (for file systems overlayfs refuses as an
# upper layer): containers get a full copy of the image, isolated writes,
# and rm removes it all.
. "$(dirname "$0")/../lib.sh"
export CLBSD_NO_OVERLAY=1
t_setup
t_forge
clbsd info | grep -q 'overlay: false' && ok copy_mode_reported || fail copy_mode_reported "$(clbsd info)"
clbsd run --name writer forge sh -c 'echo mine > /etc/mine; cat /etc/hostname' >/dev/null
[ "$(field writer storage)" = copy ] && ok storage_is_copy || fail storage_is_copy "$(field writer storage)"
[ -f "$ROOT/containers/writer/fs/etc/mine" ] && ok writes_in_own_copy || fail writes_in_own_copy "not in fs/"
ls "$ROOT"/images/*/rootfs/etc/mine >/dev/null 2>&1 && fail image_untouched "image modified" || ok image_untouched
[ "$(clbsd run --rm forge sh -c 'cat /etc/mine 2>/dev/null || echo absent')" = absent ] &&
	ok other_containers_isolated || fail other_containers_isolated "write leaked"
# A second run of the same container sees what the first one wrote.
clbsd run --name keeper forge sh -c 'cat /etc/kept 2>/dev/null || echo absent; echo kept > /etc/kept' >/dev/null
clbsd start keeper >/dev/null
wait_until 5 sh -c "[ \"\$($BUILD/clbsd --socket $SOCK logs keeper | tr '\n' ' ')\" = 'absent kept ' ]" &&
	ok restart_keeps_copy || fail restart_keeps_copy "$(clbsd logs keeper)"
clbsd rm -f writer >/dev/null
[ ! -e "$ROOT/containers/writer" ] && ok rm_removes_copy || fail rm_removes_copy "left behind"
t_done
