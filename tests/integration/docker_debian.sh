#!/bin/bash
# One real service as both kinds: a Debian root file system with
# redis-server, made by mmdebstrap, imported into a private dockerd and into
# clbsd's image store. redis runs as a docker container and as a native one
# on one clbsd network; each reaches the other by name; the docker one keeps
# its data in a clbsd volume, which survives export -> rm -> import. Skips
# when mmdebstrap is missing or no Debian mirror answers.
if [ -z "${DNET_NS:-}" ]; then
	# The root file system is made here, where the mirror is reachable; the
	# test itself runs in a network namespace of its own (as docker_net.sh).
	command -v mmdebstrap >/dev/null ||
		{ echo "skip docker_debian.all: mmdebstrap is not installed (scripts/deps.sh check installs it)"; exit 0; }
	DEB_TAR=$(mktemp /tmp/clbsd-debian.XXXXXX)
	if ! timeout 600 mmdebstrap --variant=minbase --include=redis-server,redis-tools bookworm \
		"$DEB_TAR.tar" >"$DEB_TAR.log" 2>&1; then
		echo "skip docker_debian.all: mmdebstrap could not make a Debian root file system (no mirror?): $(tail -1 "$DEB_TAR.log")"
		rm -f "$DEB_TAR" "$DEB_TAR.tar" "$DEB_TAR.log"
		exit 0
	fi
	DNET_NS=1 DEB_TAR="$DEB_TAR.tar" unshare --net -- "$0" "$@"
	rc=$?
	rm -f "$DEB_TAR" "$DEB_TAR.tar" "$DEB_TAR.log"
	exit $rc
fi
. "$(dirname "$0")/../lib.sh"
ip link set lo up
export DAEMON_NS="--mount --propagation private"
IMG="clbsd-debian-$$:1"

host_form() {
	echo "(host :docker (:endpoint \"unix://$DOCKER_SOCK\") :network (:bridge \"clbsd0\" :subnet \"10.88.0.0/24\"))"
}
t_before_start() {
	if ! t_dockerd_start; then
		skip all "no dockerd could be started here: $(tail -2 "$TMP/dockerd.log" 2>/dev/null)"
		return 1
	fi
	if ! dk import -c 'CMD ["redis-server"]' "$DEB_TAR" "$IMG" >/dev/null; then
		echo "FAIL $T_NAME.image: docker import failed"
		t_dockerd_stop
		return 1
	fi
	host_form >"$CONF"
}
docker_cleanup() {
	if [ -n "$DAEMON_PID" ] && kill -0 "$DAEMON_PID" 2>/dev/null && [ -n "$DOCKERD_PID" ]; then
		local n
		for n in $(clbsd ps -a --format '{{.Name}}' 2>/dev/null); do
			clbsd rm -f -v "$n" >/dev/null 2>&1
		done
	fi
	if [ -n "$DOCKERD_PID" ]; then
		dk ps -aq | while read -r id; do dk rm -f "$id" >/dev/null 2>&1; done
		t_dockerd_stop
	fi
}
t_setup
trap 'rc=$?; docker_cleanup; (exit $rc); t_cleanup' EXIT

mkdir -p "$TMP/debroot"
tar -C "$TMP/debroot" -xf "$DEB_TAR"
clbsd image import "$TMP/debroot" debian-redis:1 >/dev/null || fail image_import "$(tail -3 "$TMP/daemon.log")"

REDIS="/usr/bin/redis-server --bind 0.0.0.0 --protected-mode no --dir /data --appendonly yes"
CLI=/usr/bin/redis-cli
clbsd run -d --kind docker --name rd -v data:/data "$IMG" sh -c "mkdir -p /data; exec $REDIS" >/dev/null ||
	fail run_docker "$(tail -3 "$TMP/daemon.log")"
clbsd run -d --name rn -v data:/data debian-redis:1 sh -c "mkdir -p /data; exec $REDIS" >/dev/null ||
	fail run_native "$(tail -3 "$TMP/daemon.log")"
up() { [ "$(clbsd exec "$1" $CLI ping 2>/dev/null)" = PONG ]; }
wait_until 30 up rd && wait_until 30 up rn && ok redis_runs_as_both_kinds ||
	fail redis_runs_as_both_kinds "$(clbsd logs rd 2>&1 | tail -2) / $(clbsd logs rn 2>&1 | tail -2)"
[ "$(clbsd exec rd $CLI -h rn ping 2>&1)" = PONG ] && [ "$(clbsd exec rn $CLI -h rd ping 2>&1)" = PONG ] &&
	ok kinds_reach_each_other_by_name ||
	fail kinds_reach_each_other_by_name "$(clbsd exec rd $CLI -h rn ping 2>&1) / $(clbsd exec rn $CLI -h rd ping 2>&1)"
# The native one writes into the docker one; the data is in rd's clbsd volume.
clbsd exec rn $CLI -h rd set greeting "from-native" >/dev/null
clbsd exec rd $CLI save >/dev/null
clbsd export -o "$TMP/rd.clbsd" rd >/dev/null || fail export "$(tail -3 "$TMP/daemon.log")"
clbsd rm -f -v rd >/dev/null
out=$(clbsd import "$TMP/rd.clbsd" 2>&1) && clbsd start rd >/dev/null && wait_until 30 up rd &&
	[ "$(clbsd exec rd $CLI get greeting)" = from-native ] && ok data_survives_export_import ||
	fail data_survives_export_import "$out $(clbsd exec rd $CLI get greeting 2>&1)"
t_done
