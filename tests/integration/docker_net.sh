#!/bin/bash
# Docker containers on clbsd's networks (docs/docker.md, "Networks"), on a
# real private dockerd that shares the daemon's network namespace (the
# script runs in a network namespace of its own, which is "the host"): a
# docker and a native container reach each other by name on a named
# network, a pinned :ip, :publish from the host's loopback, the ingress
# with a docker backend, :http health gating it, the image's HEALTHCHECK
# through dockerd firing clbsd's health events, doctor, port rules back
# after clbsdd restarts, a remote endpoint refusing clbsd's networks, and
# nothing left behind (veths, nft rules, Docker networks).
if [ -z "${DNET_NS:-}" ]; then
	DNET_NS=1 exec unshare --net -- "$0" "$@"
fi
. "$(dirname "$0")/../lib.sh"
ip link set lo up
# The daemon keeps this network namespace: dockerd plumbs on its bridges.
export DAEMON_NS="--mount --propagation private"
P80=18180
P443=18543
IMG="clbsd-dnet-$$:1"
HIMG="clbsd-dnet-hc-$$:1"

host_form() {
	cat <<CONF
(host :docker (:endpoint "unix://$DOCKER_SOCK")
      :network (:bridge "clbsd0" :subnet "10.88.0.0/24")
      :ingress (:listen ("127.0.0.1:$P80") :tls-listen ("127.0.0.1:$P443")
                :default-domain "home.lan" :tls (:ca auto)))
(network lab :subnet "10.89.7.0/24")
CONF
}
# A busybox image with every applet (nc, ping, httpd, wget), and one with a HEALTHCHECK.
images() {
	local rf="$TMP/dnroot" a
	mkdir -p "$rf/bin" "$rf/etc" "$rf/tmp" "$rf/www"
	cp -L "$(command -v busybox)" "$rf/bin/busybox" || return 1
	for a in $("$rf/bin/busybox" --list); do
		[ "$a" = busybox ] || ln -sf busybox "$rf/bin/$a"
	done
	echo 'root:x:0:0:root:/root:/bin/sh' >"$rf/etc/passwd"
	tar -C "$rf" -cf "$TMP/dnroot.tar" . || return 1
	dk import -c 'CMD ["/bin/sh"]' "$TMP/dnroot.tar" "$IMG" >/dev/null || return 1
	# HEALTHCHECK through the Engine API's import (changes=), as `docker import -c` does.
	dk import -c 'CMD ["/bin/sh"]' \
		-c 'HEALTHCHECK --interval=1s --timeout=1s --retries=1 CMD test -e /tmp/ok' \
		"$TMP/dnroot.tar" "$HIMG" >/dev/null
}
t_before_start() {
	if ! t_dockerd_start; then
		skip all "no dockerd could be started here: $(tail -2 "$TMP/dockerd.log" 2>/dev/null)"
		return 1
	fi
	if ! images; then
		echo "FAIL $T_NAME.image: docker import failed"
		t_dockerd_stop
		return 1
	fi
	host_form >"$CONF"
}
docker_cleanup() {
	if [ -n "$DAEMON_PID" ] && kill -0 "$DAEMON_PID" 2>/dev/null && [ -n "$DOCKERD_PID" ]; then
		host_form >"$CONF"
		clbsd apply >/dev/null 2>&1
		local n
		for n in $(clbsd ps -a --format '{{.Name}}' 2>/dev/null); do
			clbsd rm -f "$n" >/dev/null 2>&1
		done
	fi
	if [ -n "$DOCKERD_PID" ]; then
		dk ps -aq | while read -r id; do dk rm -f "$id" >/dev/null 2>&1; done
		dk rmi -f "$IMG" "$HIMG" >/dev/null 2>&1
		t_dockerd_stop
	fi
}
t_setup
trap 'rc=$?; docker_cleanup; (exit $rc); t_cleanup' EXIT
t_forge

ip_of() { clbsd --json inspect "$1" | python3 -c 'import json,sys
n=json.load(sys.stdin)[0]["network"]["networks"]
print(n[0].get("ip","") if n else "")'; }

# ---- names across kinds on a named network ----
clbsd run -d --kind docker --name dweb --network lab --network-alias dalias "$IMG" \
	sh -c "printf '#!/bin/sh\necho hello-from-dweb\n' >/serve; chmod +x /serve; exec nc -ll -p 80 -e /serve" \
	>/dev/null 2>"$TMP/err" || fail run_docker_on_network "$(cat "$TMP/err")"
clbsd run -d --name nweb --network lab forge \
	sh -c "printf '#!/bin/sh\necho hello-from-nweb\n' >/serve; chmod +x /serve; exec nc -ll -p 80 -e /serve" \
	>/dev/null 2>"$TMP/err" || fail run_native_on_network "$(cat "$TMP/err")"
dip=$(ip_of dweb)
case "$dip" in
10.89.7.*) ok docker_address_from_clbsd_ipam ;;
*) fail docker_address_from_clbsd_ipam "ip=$dip $(clbsd inspect dweb 2>&1 | head -20)" ;;
esac
[ "$(dk inspect -f '{{(index .NetworkSettings.Networks "clbsd-lab").IPAddress}}' dweb 2>&1)" = "$dip" ] &&
	[ "$(dk inspect -f '{{.HostConfig.RestartPolicy.Name}}' dweb)" = no ] &&
	ok dockerd_has_the_same_address || fail dockerd_has_the_same_address "$(dk inspect dweb 2>&1 | grep -A3 clbsd-lab)"
out=$(clbsd exec nweb sh -c 'nc -w 3 dweb 80 </dev/null' 2>&1)
[ "$out" = hello-from-dweb ] && ok native_reaches_docker_by_name || fail native_reaches_docker_by_name "got '$out'"
out=$(clbsd exec nweb sh -c 'nc -w 3 dalias 80 </dev/null' 2>&1)
[ "$out" = hello-from-dweb ] && ok native_reaches_docker_alias || fail native_reaches_docker_alias "got '$out'"
out=$(clbsd exec dweb sh -c 'nc -w 3 nweb 80 </dev/null' 2>&1)
[ "$out" = hello-from-nweb ] && ok docker_reaches_native_by_name || fail docker_reaches_native_by_name "got '$out'"
clbsd exec dweb ping -c 1 -W 2 nweb >/dev/null 2>&1 && ok docker_pings_native ||
	fail docker_pings_native "$(clbsd exec dweb ping -c 1 -W 2 nweb 2>&1)"
# A native container made later is in the docker container's /etc/hosts at once.
clbsd run -d --name nlate --network lab forge sleep 1000 >/dev/null
clbsd exec dweb cat /etc/hosts | grep -qw nlate && ok docker_hosts_follow_peers ||
	fail docker_hosts_follow_peers "$(clbsd exec dweb cat /etc/hosts 2>&1)"
clbsd rm -f nlate >/dev/null

# ---- a pinned address and published ports, on the host's bridge ----
clbsd run -d --kind docker --name dpub --ip 10.88.0.77 -p 8088:80 -p 127.0.0.1:8089:80 "$IMG" \
	sh -c "printf '#!/bin/sh\necho hello-published\n' >/serve; chmod +x /serve; exec nc -ll -p 80 -e /serve" \
	>/dev/null 2>"$TMP/err" || fail run_docker_published "$(cat "$TMP/err")"
[ "$(ip_of dpub)" = 10.88.0.77 ] &&
	[ "$(clbsd exec dpub ip -4 -o addr show eth0 | awk '{print $4}')" = 10.88.0.77/24 ] &&
	ok pinned_ip || fail pinned_ip "clbsd=$(ip_of dpub) in=$(clbsd exec dpub ip -4 -o addr 2>&1)"
hnc() { busybox nc -w 3 "$@" </dev/null 2>&1; }
out=$(hnc 127.0.0.1 8088)
[ "$out" = hello-published ] && ok publish_from_host_loopback || fail publish_from_host_loopback "got '$out'"
out=$(hnc 127.0.0.1 8089)
[ "$out" = hello-published ] && ok publish_on_loopback_address || fail publish_on_loopback_address "got '$out'"
# The same address after a restart.
clbsd restart -t 1 dpub >/dev/null
[ "$(ip_of dpub)" = 10.88.0.77 ] && wait_until 5 sh -c '[ "$(busybox nc -w 2 127.0.0.1 8088 </dev/null)" = hello-published ]' &&
	ok publish_after_restart || fail publish_after_restart "$(clbsd ps -a)"
# Stopped: its port rule is gone.
clbsd stop -t 1 dpub >/dev/null
! nft list chain inet clbsd ports 2>/dev/null | grep -q 'clbsd/c/dpub/' && ok stop_drops_port_rules ||
	fail stop_drops_port_rules "$(nft list chain inet clbsd ports 2>&1)"

# ---- IPv6: a network with :subnet6 gives the docker container its v6 address too ----
clbsd network create --subnet 10.98.0.0/24 --subnet6 fd00:98::/64 six >/dev/null ||
	fail network_create_v6 "$(clbsd network create --subnet 10.98.0.0/24 --subnet6 fd00:98::/64 six 2>&1)"
clbsd run -d --kind docker --name d6 --network six "$IMG" sleep 1000 >/dev/null 2>"$TMP/err" ||
	fail run_docker_v6 "$(cat "$TMP/err")"
clbsd run -d --name n6 --network six forge sleep 1000 >/dev/null
d6=$(clbsd --json inspect d6 | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["network"]["networks"][0].get("ip6",""))')
case "$d6" in
fd00:98::*) clbsd exec d6 ip -6 -o addr show eth0 | grep -q " $d6/64 " &&
	wait_until 5 sh -c "$BUILD/clbsd --socket $SOCK exec n6 ping -6 -c1 -W1 $d6 >/dev/null 2>&1" &&
	ok ipv6_docker_address || fail ipv6_docker_address "$d6: $(clbsd exec d6 ip -6 addr 2>&1)" ;;
*) fail ipv6_docker_address "got '$d6'" ;;
esac
clbsd rm -f d6 n6 >/dev/null
clbsd network rm six >/dev/null || fail network_rm_v6 "$(clbsd network rm six 2>&1)"

# ---- doctor ----
out=$(clbsd doctor dweb 2>&1)
rc=$?
[ $rc = 0 ] && echo "$out" | grep -q "^ok eth0 has $dip/24 in the container (plumbed by dockerd)" &&
	echo "$out" | grep -q "^ok veth .* (dockerd's, for eth0) is on bridge cbr-lab and up" &&
	echo "$out" | grep -q "^ok the container's default route goes via 10.89.7.1" &&
	ok doctor_explains_docker_route || fail doctor_explains_docker_route "rc=$rc $out"

# ---- ingress with a docker backend, health-gated by an :http check ----
cat >>"$CONF" <<EOF
(container dsite :kind docker :image "$IMG" :domain "dsite" :port 80
  :health (:http "/ready" :interval "1s" :timeout "1s" :retries 1)
  :command ("sh" "-c" "mkdir -p /www; echo hello-dsite > /www/index.html; exec httpd -f -p 80 -h /www"))
EOF
clbsd apply >/dev/null 2>&1
get() { curl -s -m 3 -H "Host: $1" "http://127.0.0.1:$P80${2:-/}"; }
code() { curl -s -m 3 -o /dev/null -w '%{http_code}' -H "Host: $1" "http://127.0.0.1:$P80/"; }
wait_until 30 sh -c "$BUILD/clbsd --socket $SOCK --json inspect dsite | grep -q '\"unhealthy\"'"
wait_until 10 sh -c "[ \"\$(curl -s -m 1 -o /dev/null -w '%{http_code}' -H 'Host: dsite.home.lan' http://127.0.0.1:$P80/)\" = 503 ]"
[ "$(code dsite.home.lan)" = 503 ] && ok http_health_gates_docker_backend ||
	fail http_health_gates_docker_backend "$(code dsite.home.lan) $(clbsd --json inspect dsite | head -c 300)"
clbsd exec dsite sh -c 'echo ready > /www/ready' >/dev/null
wait_until 15 sh -c "[ \"\$(curl -s -m 1 -H 'Host: dsite.home.lan' http://127.0.0.1:$P80/)\" = hello-dsite ]"
[ "$(get dsite.home.lan)" = hello-dsite ] && [ "$(field dsite health.status)" = healthy ] &&
	ok ingress_routes_to_docker || fail ingress_routes_to_docker "$(code dsite.home.lan) $(get dsite.home.lan)"
ca="$ROOT/ingress/ca/ca.pem"
out=$(curl -s -m 3 --cacert "$ca" --resolve "dsite.home.lan:$P443:127.0.0.1" "https://dsite.home.lan:$P443/" 2>&1)
[ "$out" = hello-dsite ] && ok ingress_tls_to_docker || fail ingress_tls_to_docker "$out"

# ---- declared: a recreate keeps the address; three on a new network start side by side ----
sip=$(ip_of dsite)
did=$(field dsite docker.id)
sed -i 's/echo hello-dsite >/echo hello-dsite2 >/' "$CONF"
{
	echo '(network par :subnet "10.89.9.0/24")'
	for i in 1 2 3; do
		echo "(container par$i :kind docker :image \"$IMG\" :network (par) :command (\"sleep\" \"1000\"))"
	done
} >>"$CONF"
clbsd apply >/dev/null 2>&1
par_up() { for i in 1 2 3; do [ "$(field "par$i" state)" = running ] || return 1; done; }
wait_until 30 par_up && ok parallel_starts_share_a_new_network ||
	fail parallel_starts_share_a_new_network "$(clbsd ps -a 2>&1) $(grep -i 'par[0-9]' "$TMP/daemon.log" | grep -i error | tail -3)"
[ "$(dk network ls --format '{{.Name}}' | grep -c '^clbsd-par$')" = 1 ] && ok one_docker_network_per_clbsd_network ||
	fail one_docker_network_per_clbsd_network "$(dk network ls)"
clbsd exec par1 ping -c1 -W2 par3 >/dev/null 2>&1 && ok declared_docker_by_name ||
	fail declared_docker_by_name "$(clbsd exec par1 cat /etc/hosts 2>&1)"
wait_until 20 sh -c "[ \"\$(curl -s -m 1 -H 'Host: dsite.home.lan' http://127.0.0.1:$P80/)\" = hello-dsite2 ]"
[ "$(field dsite docker.id)" != "$did" ] && [ "$(ip_of dsite)" = "$sip" ] && ok recreate_keeps_address ||
	fail recreate_keeps_address "id $did -> $(field dsite docker.id), ip $sip -> $(ip_of dsite)"

# ---- the image's HEALTHCHECK, run by dockerd ----
cat >>"$CONF" <<EOF
(container dhc :kind docker :image "$HIMG" :network none
  :command ("sh" "-c" "trap 'exit 0' TERM; sleep 1000 & wait")
  :on ((:health "echo \$CLBSD_EVENT >> $TMP/hook.out")))
(container napp :image "forge" :network none :command ("sleep" "1000") :depends-on (dhc))
EOF
clbsd apply >/dev/null 2>&1
wait_until 20 sh -c "[ \"\$($BUILD/clbsd --socket $SOCK --json inspect dhc | python3 -c 'import json,sys; print(json.load(sys.stdin)[0].get(\"health\",{}).get(\"status\",\"\"))')\" = unhealthy ]"
[ "$(field dhc health.status)" = unhealthy ] && ok image_healthcheck_unhealthy ||
	fail image_healthcheck_unhealthy "$(clbsd --json inspect dhc | head -c 400)"
[ "$(field napp state)" != running ] && ok image_healthcheck_holds_dependant ||
	fail image_healthcheck_holds_dependant "napp is $(field napp state)"
clbsd exec dhc touch /tmp/ok >/dev/null
wait_until 20 sh -c "[ \"\$($BUILD/clbsd --socket $SOCK --json inspect dhc | python3 -c 'import json,sys; print(json.load(sys.stdin)[0].get(\"health\",{}).get(\"status\",\"\"))')\" = healthy ]"
[ "$(field dhc health.status)" = healthy ] &&
	clbsd events --container dhc --type container.health 2>/dev/null | grep -q 'status=healthy' &&
	ok image_healthcheck_events || fail image_healthcheck_events "$(clbsd events --container dhc 2>&1 | tail -5)"
napp_state() { "$BUILD/clbsd" --socket "$SOCK" --json inspect napp | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["state"])'; }
napp_running() { [ "$(napp_state)" = running ]; }
wait_until 15 napp_running
[ "$(napp_state)" = running ] && ok image_healthcheck_releases_dependant ||
	fail image_healthcheck_releases_dependant "napp is $(napp_state)"
wait_until 10 grep -q container.health "$TMP/hook.out" && ok health_hook_fires ||
	fail health_hook_fires "$(cat "$TMP/hook.out" 2>&1)"
clbsd ps 2>/dev/null | grep '^dhc ' | grep -q '(healthy)' && ok ps_shows_health ||
	fail ps_shows_health "$(clbsd ps 2>&1)"
# A declared :health wins: dockerd is told not to run the image's.
[ "$(dk inspect -f '{{index .Config.Healthcheck.Test 0}}' dsite)" = NONE ] && ok clbsd_health_wins ||
	fail clbsd_health_wins "$(dk inspect -f '{{json .Config.Healthcheck}}' dsite)"

# ---- clbsdd restarts: the docker container's port rules come back ----
clbsd start dpub >/dev/null
t_kill_daemon TERM
nft flush chain inet clbsd ports 2>/dev/null
t_start_daemon
# Until dockerd's event stream is followed again its containers show "waiting".
dpub_back() {
	[ "$(hnc 127.0.0.1 8088)" = hello-published ] && [ "$(field dpub state)" = running ] &&
		[ "$(field dpub pid)" = "$(dk inspect -f '{{.State.Pid}}' dpub)" ]
}
wait_until 15 dpub_back && ok ports_back_after_daemon_restart ||
	fail ports_back_after_daemon_restart "$(clbsd ps -a 2>&1)"

# ---- a remote endpoint: clbsd's networks are refused, saying why ----
sed -i "s|unix://$DOCKER_SOCK|tcp://127.0.0.1:1|" "$CONF"
clbsd apply >/dev/null 2>&1
out=$(clbsd create --kind docker --name remote -p 8099:80 "$IMG" true 2>&1)
rc=$?
[ $rc -ne 0 ] && echo "$out" | grep -q "clbsd's networks are on this host" &&
	! clbsd inspect remote >/dev/null 2>&1 && ok remote_endpoint_refuses_networks ||
	fail remote_endpoint_refuses_networks "rc=$rc $out"

# ---- nothing left behind ----
host_form >"$CONF"
clbsd apply >/dev/null 2>&1
for n in $(clbsd ps -a --format '{{.Name}}'); do clbsd rm -f "$n" >/dev/null 2>&1; done
wait_until 10 sh -c "! docker -H unix://$DOCKER_SOCK network ls --format '{{.Name}}' | grep -q '^clbsd-'"
wait_until 10 sh -c "! ip -o link | grep -Eq 'veth|cb[0-9]-'"
left_links=$(ip -o link | grep -E 'veth|cb[0-9]-' | cut -d: -f2)
left_nets=$(dk network ls --format '{{.Name}}' | grep '^clbsd-')
left_rules=$(nft list chain inet clbsd ports 2>/dev/null | grep 'clbsd/c/')
[ -z "$left_links" ] && [ -z "$left_nets" ] && [ -z "$left_rules" ] && [ -z "$(dk ps -aq)" ] &&
	ok nothing_left_behind || fail nothing_left_behind "links=$left_links nets=$left_nets rules=$left_rules"
t_done
