#!/bin/bash
# --userns auto with networks: the veth the daemon moves into a container's
# network namespace (owned by the container's user namespace) still works,
# two userns containers reach each other, sysfs shows the container's own
# interfaces, and --network host (sysfs of a namespace the container does
# not own: bound read-only instead) and a terminal still start.
. "$(dirname "$0")/../lib.sh"
t_before_start() {
	cat >"$CONF" <<'EOF2'
(host :network (:bridge "clbsd0" :subnet "10.88.0.0/24"))
EOF2
}
t_setup
t_forge
x() { clbsd exec "$@" 2>&1; }

clbsd run -d --name n1 --userns auto forge sleep 300 >/dev/null || fail run "n1 failed"
clbsd run -d --name n2 --userns auto forge sleep 300 >/dev/null || fail run "n2 failed"
a1=$(x n1 ip -4 -o addr show eth0 | awk '{print $4}' | cut -d/ -f1)
case "$a1" in 10.88.0.*) ok veth_address_inside ;; *) fail veth_address_inside "eth0: '$a1'" ;; esac
x n2 ping -c 1 -W 2 "$a1" >/dev/null && ok userns_containers_reach_each_other ||
	fail userns_containers_reach_each_other "$(x n2 ping -c 1 -W 2 "$a1")"
x n1 ls /sys/class/net | grep -qx eth0 && ok sysfs_of_own_netns ||
	fail sysfs_of_own_netns "$(x n1 ls /sys/class/net)"
# The container's root holds CAP_NET_BIND_SERVICE over its own network namespace.
x n1 sh -c 'httpd -f -p 80 & sleep 0.5; cat /proc/net/tcp /proc/net/tcp6 | grep -q ":0050 0*:0000 0A" &&
	echo listening; kill $!' | grep -q listening && ok low_port_bind || fail low_port_bind "no listener on :80"

out=$(clbsd run --rm --userns auto --network host forge sh -c 'id -u; ls /sys/class/net | head -n 1' 2>&1)
[ "$(echo "$out" | head -n 1)" = 0 ] && [ -n "$(echo "$out" | sed -n 2p)" ] && ok host_network ||
	fail host_network "$out"
out=$(script -qec "$BUILD/clbsd --socket $SOCK run --rm -t --userns auto forge tty" /dev/null 2>&1 | tr -d '\r')
echo "$out" | grep -q '^/dev/' && ok terminal || fail terminal "$out"
t_done
