#!/bin/bash
# What the container is told to be: env, workdir, user, hostname, volumes.
. "$(dirname "$0")/../lib.sh"
t_setup
t_forge

out=$(clbsd run --rm --name envy -e GREETING=hi forge sh -c 'echo "$GREETING $HOSTNAME"')
[ "$out" = "hi envy" ] && ok env_and_hostname_env || fail env_and_hostname_env "$out"
out=$(FROM_SHELL=passed clbsd run --rm -e FROM_SHELL -e UNSET_HERE forge sh -c 'echo "$FROM_SHELL/${UNSET_HERE-unset}"')
[ "$out" = "passed/unset" ] && ok env_bare_key_from_shell || fail env_bare_key_from_shell "$out"
out=$(clbsd run --rm -w /tmp forge pwd)
[ "$out" = /tmp ] && ok workdir || fail workdir "$out"
out=$(clbsd run --rm -u 1000:1001 forge id)
echo "$out" | grep -q 'uid=1000' && echo "$out" | grep -q 'gid=1001' && ok user_numeric ||
	fail user_numeric "$out"
out=$(clbsd run --rm -u nobody forge id -u)
[ "$out" = 65534 ] && ok user_by_name || fail user_by_name "$out"
out=$(clbsd run --rm --hostname box.home.lan forge hostname)
[ "$out" = box.home.lan ] && ok hostname || fail hostname "$out"

mkdir -p "$TMP/vol"
echo from-host >"$TMP/vol/in"
out=$(clbsd run --rm -v "$TMP/vol:/data" forge sh -c 'cat /data/in; echo from-ctr > /data/out')
[ "$out" = from-host ] && [ "$(cat "$TMP/vol/out")" = from-ctr ] && ok volume_rw ||
	fail volume_rw "$out"
clbsd run --rm -v "$TMP/vol:/data:ro" forge sh -c 'echo x > /data/nope' >/dev/null 2>&1 &&
	fail volume_ro "write to a read-only volume worked" || ok volume_ro
[ ! -e "$TMP/vol/nope" ] || fail volume_ro_nofile "file appeared"

# The container's writes stay in its own layer, not in the image.
clbsd run --name writer forge sh -c 'echo x > /etc/written' >/dev/null
ls "$ROOT"/images/*/rootfs/etc/written >/dev/null 2>&1 && fail image_untouched "image modified" ||
	ok image_untouched
clbsd rm writer >/dev/null
t_done
