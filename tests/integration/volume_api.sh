#!/bin/bash
# Named volumes from the API: a volume "NAME:/dir[:ro]" in POST
# /v1/containers (what `clbsd run -v NAME:/dir` sends) makes the named
# volume NAME on first use and reuses it after, exactly as the
# configuration's (:dataset NAME ...) does; DELETE ?volumes=1 removes it;
# absolute host paths keep working. With VOLUME_API_ZFS=1 (zfs_volume_api.sh)
# the daemon runs on a zfs pool and the volume must be a dataset.
. "$(dirname "$0")/../lib.sh"
t_before_start() {
	mkdir -p "$TMP/host"
	echo host-file >"$TMP/host/f"
	if [ -n "${VOLUME_API_ZFS:-}" ]; then
		t_zfs_setup || return 1
		echo "(host :storage (:driver zfs :pool \"$ZPOOL\" :root \"$ZPOOL/clbsd\"))" >"$CONF"
		# shellcheck disable=SC2034 # read by t_start_daemon
		DAEMON_NS="--net"
	fi
}
t_setup
t_forge
command -v curl >/dev/null || { skip all "curl is not installed"; t_done; exit 0; }

api() {
	curl -s -o "$TMP/body" -w '%{http_code}' --unix-socket "$SOCK" -X "$1" \
		-H 'Content-Type: application/json' ${3:+-d "$3"} "http://localhost$2"
}
vol_source() {
	clbsd --json inspect "$1" | python3 -c 'import json,sys
for v in json.load(sys.stdin)[0]["config"]["volumes"]:
    if v["dest"] == sys.argv[1]: print(v["source"])' "$2"
}
# On zfs, whether volume $2 of container $1 is a dataset ($3: "yes" or "no"); else always true.
dataset_is() {
	[ -z "${VOLUME_API_ZFS:-}" ] && return 0
	if zfs list -H -o name "$ZPOOL/clbsd/volumes/$1/$2" >/dev/null 2>&1; then
		[ "$3" = yes ]
	else
		[ "$3" = no ]
	fi
}

body="{\"name\":\"vapi\",\"image\":\"forge\",\"command\":[\"sleep\",\"300\"],
  \"volumes\":[\"data:/data\",\"conf:/conf:ro\",\"$TMP/host:/host:ro\",{\"source\":\"$TMP/host\",\"dest\":\"/host2\"}]}"
code=$(api POST '/v1/containers?start=1' "$body")
[ "$code" = 201 ] && ok create_with_named_volume || fail create_with_named_volume "$code $(cat "$TMP/body")"
src=$(vol_source vapi /data)
[ "$src" = "$ROOT/volumes/vapi/data" ] && [ -d "$src" ] && dataset_is vapi data yes &&
	ok named_volume_made || fail named_volume_made "source '$src'"
clbsd exec vapi sh -c 'echo kept >/data/f' && [ "$(cat "$src/f")" = kept ] &&
	ok named_volume_writable || fail named_volume_writable "$(ls -la "$src")"
clbsd exec vapi sh -c 'echo x >/conf/f' 2>/dev/null && fail ro_named_volume "wrote to a :ro volume" ||
	ok ro_named_volume
[ "$(clbsd exec vapi cat /host/f)" = host-file ] && [ "$(clbsd exec vapi cat /host2/f)" = host-file ] &&
	ok host_paths_still_work || fail host_paths_still_work "$(clbsd exec vapi ls /host /host2 2>&1)"

# Removed without ?volumes=1, made again: the same volume, with its file.
clbsd rm -f vapi >/dev/null
wait_until 10 sh -c "! $BUILD/clbsd --socket $SOCK inspect vapi >/dev/null 2>&1"
code=$(api POST '/v1/containers?start=1' "$body")
[ "$code" = 201 ] && [ "$(clbsd exec vapi cat /data/f)" = kept ] && ok named_volume_reused ||
	fail named_volume_reused "$code $(cat "$TMP/body")"

# The configuration's named volume of the same container is that volume too.
code=$(api DELETE '/v1/containers/vapi?force=1&volumes=1')
[ "$code" = 204 ] && wait_until 10 sh -c "! test -e '$ROOT/volumes/vapi/data'" && dataset_is vapi data no &&
	ok delete_volumes_removes || fail delete_volumes_removes "$code $(ls "$ROOT/volumes" 2>&1)"

# `clbsd run -v NAME:/dir` sends the same: a named volume.
clbsd run -d --name vcli -v cli-data:/d forge sleep 300 >/dev/null &&
	[ "$(vol_source vcli /d)" = "$ROOT/volumes/vcli/cli-data" ] && dataset_is vcli cli-data yes &&
	ok cli_named_volume || fail cli_named_volume "$(vol_source vcli /d)"
clbsd rm -f vcli >/dev/null

# A source that is neither a name nor an absolute path is refused, naming it.
code=$(api POST /v1/containers '{"name":"badv","image":"forge","volumes":["rel/dir:/data"]}')
[ "$code" = 400 ] && grep -q 'rel/dir' "$TMP/body" && ok bad_source_refused ||
	fail bad_source_refused "$code $(cat "$TMP/body")"
t_done
