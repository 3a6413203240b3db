#!/bin/bash
# :cap-add, :cap-drop, :sysctls and :devices on real namespaces: what a VPN
# container (a tun device, NET_ADMIN, ip_forward) needs works only when it
# is given, for `clbsd run`, `exec` and a declared container alike, and bad
# values are refused with the key and the position.
. "$(dirname "$0")/../lib.sh"
t_setup
t_forge
[ -c /dev/net/tun ] || {
	skip all "no /dev/net/tun on this host (modprobe tun)"
	t_done
	exit 0
}

r() { clbsd run --rm "$@" 2>&1; }

# NET_ADMIN: an address and a route in the container's own network namespace.
out=$(r --cap-add NET_ADMIN forge sh -c 'ip addr add 10.201.0.1/32 dev lo && ip route add 10.202.0.0/16 dev lo && ip route | grep -c 10.202')
[ "$out" = 1 ] && ok cap_add_net_admin || fail cap_add_net_admin "$out"
out=$(r forge sh -c 'ip addr add 10.201.0.1/32 dev lo 2>/dev/null && echo added || echo refused')
[ "$out" = refused ] && ok default_lacks_net_admin || fail default_lacks_net_admin "$out"
# A dropped default: chown (CAP_CHOWN) fails for root.
out=$(r --cap-drop chown forge sh -c 'touch /tmp/f && chown 1 /tmp/f 2>/dev/null && echo chowned || echo refused')
[ "$out" = refused ] && ok cap_drop_chown || fail cap_drop_chown "$out"
out=$(r --cap-drop ALL --cap-add NET_ADMIN forge sh -c 'grep CapEff /proc/self/status')
[ "$out" = "CapEff:	0000000000001000" ] && ok cap_drop_all_keeps_adds || fail cap_drop_all_keeps_adds "$out"

# exec gets the container's set too.
clbsd run -d --name vpn --cap-add net_admin --sysctl net.ipv4.ip_forward=1 \
	--sysctl kernel.shmmax=12345678 --device /dev/net/tun --label role=vpn forge sleep 300 >/dev/null
out=$(clbsd exec vpn sh -c 'ip link set lo mtu 1400 && echo set' 2>&1)
[ "$out" = set ] && ok exec_has_cap_add || fail exec_has_cap_add "$out"
# Sysctls are read back inside; the host's stay as they were.
out=$(clbsd exec vpn cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shmmax 2>&1 | tr '\n' ' ')
[ "$out" = "1 12345678 " ] && ok sysctls_written_inside || fail sysctls_written_inside "$out"
[ "$(cat /proc/sys/kernel/shmmax)" != 12345678 ] && ok host_sysctl_untouched ||
	fail host_sysctl_untouched "$(cat /proc/sys/kernel/shmmax)"
# The tun device opens (an fd on it; EBADFD only comes with I/O before TUNSETIFF).
out=$(clbsd exec vpn sh -c 'exec 3<>/dev/net/tun && echo opened' 2>&1)
[ "$out" = opened ] && ok device_usable || fail device_usable "$out"
out=$(r forge sh -c 'test -e /dev/net/tun && echo present || echo absent')
[ "$out" = absent ] && ok device_absent_by_default || fail device_absent_by_default "$out"
# A node made by hand for the same numbers is refused by the cgroup's list.
out=$(r forge sh -c 'mknod /tmp/tun c 10 200 && (exec 3<>/tmp/tun) 2>/dev/null && echo opened || echo refused')
[ "$out" = refused ] && ok device_not_allowed_without_key || fail device_not_allowed_without_key "$out"
clbsd --json inspect vpn | python3 -c '
import json, sys
c = json.load(sys.stdin)[0]["config"]
assert c["labels"] == ["role=vpn"], c
assert c["sysctls"] == ["kernel.shmmax=12345678", "net.ipv4.ip_forward=1"], c
assert c["devices"][0]["path"] == "/dev/net/tun", c
' && ok inspect_shows_keys || fail inspect_shows_keys "$(clbsd --json inspect vpn | head -c 600)"
clbsd rm -f vpn >/dev/null

# :entrypoint replaces the image's and its CMD.
out=$(r --entrypoint /bin/echo forge hello)
[ "$out" = hello ] && ok entrypoint_replaces || fail entrypoint_replaces "$out"

# Declared, the same keys converge.
cat >"$CONF" <<'C'
(container dvpn :image "forge" :command ("sleep" "300")
  :cap-add (net_admin) :sysctls (("net.ipv4.ip_forward" . "1"))
  :devices ("/dev/net/tun:/dev/net/tun:rw"))
C
clbsd apply >/dev/null
wait_until 15 sh -c "[ \"\$('$BUILD/clbsd' --socket '$SOCK' exec dvpn cat /proc/sys/net/ipv4/ip_forward 2>/dev/null)\" = 1 ]" &&
	ok declared_sysctl || fail declared_sysctl "$(clbsd ps -a)"
out=$(clbsd exec dvpn sh -c 'ip addr add 10.203.0.1/32 dev lo && exec 3<>/dev/net/tun && echo ok' 2>&1)
[ "$out" = ok ] && ok declared_caps_and_device || fail declared_caps_and_device "$out"
clbsd plan | grep -q 'nothing to do' && ok declared_converged || fail declared_converged "$(clbsd plan)"

# Bad values: the key and the position, nothing made.
cat >"$TMP/bad.conf" <<'C'
(container b :image "forge"
  :cap-add (net_admn)
  :sysctls (("kernel.panic" . "1"))
  :devices ("/dev/nope/x:rwz"))
C
out=$("$BUILD/clbsdd" -n --config "$TMP/bad.conf" 2>&1 >/dev/null)
echo "$out" | grep -q "bad.conf:2:13: container b: :cap-add: unknown capability \"net_admn\"" &&
	echo "$out" | grep -q "bad.conf:3:14: container b: :sysctls: \"kernel.panic\" is not namespaced" &&
	echo "$out" | grep -q "bad.conf:4:13: container b: :devices: device \"/dev/nope/x:rwz\"" &&
	ok bad_values_with_positions || fail bad_values_with_positions "$out"
out=$(r --cap-add NOPE forge true)
echo "$out" | grep -q 'unknown capability "NOPE"' && ok api_refuses_cap || fail api_refuses_cap "$out"
out=$(r --sysctl vm.swappiness=1 forge true)
echo "$out" | grep -q 'is not namespaced' && ok api_refuses_sysctl || fail api_refuses_sysctl "$out"
out=$(r --network host --sysctl net.ipv4.ip_forward=1 forge true)
echo "$out" | grep -q 'need the container.s own network namespace' && ok net_sysctl_refused_on_host ||
	fail net_sysctl_refused_on_host "$out"
out=$(r --device /dev/nonexistent0 forge true)
echo "$out" | grep -q 'device /dev/nonexistent0: not on this host' && ok missing_device_refused ||
	fail missing_device_refused "$out"
[ "$(clbsd ps -a -q 2>/dev/null | tr '\n' ' ')" = "dvpn " ] && ok nothing_half_made ||
	fail nothing_half_made "$(clbsd ps -a)"
t_done
