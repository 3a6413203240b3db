# shellcheck shell=bash
# A private dockerd for a bench's comparison, sourced by the bench scripts:
# its own socket, data and exec roots under DIR, and, when the comparison
# needs docker's networking, its own bridge (made here, removed at stop)
# without iptables rules, so nothing of it stays on the host and the host's
# own docker, if any, is left alone.
#
#   bench_dockerd_start DIR [bridge]   sets DOCKER_HOST; 1 when none starts
#   bench_dockerd_stop                 stops it by its pid, removes its bridge
BENCH_DOCKERD_PID=""
BENCH_DOCKERD_DIR=""
BENCH_DOCKERD_BRIDGE=""
bench_dockerd_start() {
	command -v dockerd >/dev/null && command -v docker >/dev/null || return 1
	BENCH_DOCKERD_DIR=$1
	mkdir -p "$BENCH_DOCKERD_DIR"
	local net=(--bridge=none)
	if [ "${2:-}" = bridge ]; then
		BENCH_DOCKERD_BRIDGE="cbdk$$"
		BENCH_DOCKERD_BRIDGE=${BENCH_DOCKERD_BRIDGE:0:15}
		ip link add name "$BENCH_DOCKERD_BRIDGE" type bridge &&
			ip addr add 172.31.250.1/24 dev "$BENCH_DOCKERD_BRIDGE" &&
			ip link set "$BENCH_DOCKERD_BRIDGE" up || return 1
		net=(--bridge="$BENCH_DOCKERD_BRIDGE")
	fi
	export DOCKER_HOST="unix://$BENCH_DOCKERD_DIR/docker.sock"
	dockerd "${net[@]}" --iptables=false --ip6tables=false --data-root "$BENCH_DOCKERD_DIR/data" \
		--exec-root "$BENCH_DOCKERD_DIR/exec" -H "$DOCKER_HOST" -p "$BENCH_DOCKERD_DIR/docker.pid" \
		>"$BENCH_DOCKERD_DIR/dockerd.log" 2>&1 &
	BENCH_DOCKERD_PID=$!
	local _
	for _ in $(seq 200); do
		docker info >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	return 1
}
bench_dockerd_stop() {
	if [ -n "$BENCH_DOCKERD_PID" ]; then
		kill "$BENCH_DOCKERD_PID" 2>/dev/null
		wait "$BENCH_DOCKERD_PID" 2>/dev/null
		BENCH_DOCKERD_PID=""
	fi
	if [ -n "$BENCH_DOCKERD_DIR" ]; then
		grep -F " $BENCH_DOCKERD_DIR/" /proc/self/mounts | cut -d" " -f2 | sort -r |
			while read -r m; do umount -l "$m"; done
	fi
	if [ -n "$BENCH_DOCKERD_BRIDGE" ]; then
		ip link del "$BENCH_DOCKERD_BRIDGE" 2>/dev/null
		BENCH_DOCKERD_BRIDGE=""
	fi
}
