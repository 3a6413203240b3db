#!/bin/bash
# clbsd host export / import of a homelab with routes, TLS and, when a
# private dockerd can be started, a docker container with data in a
# volume, between two daemons on this host (two roots, sockets, network
# namespaces, so each has its own ingress on the same ports, as two
# machines would; dir storage). On real nginx: the source routes a
# container's :domain over HTTP and HTTPS with its own CA; after the
# import, the target's plan is empty, the route answers through the
# target's ingress over HTTPS, the certificate verifies against the CA file
# the target now has, and that CA is the source's (same fingerprint); the
# docker container's volume has the same checksum.
#
# Each "machine" has its own dockerd at the same socket path: the second
# daemon's mount namespace has the second dockerd's socket bound over the
# first one's, so the configuration the archive carries (its :docker
# endpoint) names the right dockerd on both sides.
. "$(dirname "$0")/../lib.sh"

P80=18080
P443=18443
IMG="clbsd-bbh-$$:1"
HAVE_DOCKER=0
DOCKERD2_PID=""
NO_DOCKER_WHY=""
# The source's configuration: the network, the ingress with the local CA,
# a native container serving a page on :domain/:port, and the docker
# container with a volume when there is a dockerd.
host_conf() {
	local docker=""
	[ "$HAVE_DOCKER" = 1 ] && docker=":docker (:endpoint \"unix://$DOCKER_SOCK\")"
	cat <<CONF
(host :network (:bridge "clbsd0" :subnet "10.88.0.0/24")
      :ingress (:listen ("127.0.0.1:$P80") :tls-listen ("127.0.0.1:$P443")
                :default-domain "home.lan" :tls (:ca auto))
      $docker)
(container web :image "forge" :domain "web" :port 80
  :volumes ((:dataset "www" :path "/www"))
  :command ("sh" "-c" "[ -f /www/index.html ] || echo hello-lab > /www/index.html; exec httpd -f -p 80 -h /www"))
(container shop :image "forge" :domain "shop" :port 80
  :tls (:cert "$TMP/ssl/shop.pem" :key "$TMP/ssl/shop.key")
  :command ("sh" "-c" "mkdir -p /w; echo hello-shop > /w/index.html; exec httpd -f -p 80 -h /w"))
CONF
	[ "$HAVE_DOCKER" = 1 ] && cat <<CONF
(container store :kind docker :image "$IMG" :network none
  :volumes ((:dataset "blobs" :path "/data"))
  :command ("sh" "-c" "trap 'exit 0' TERM; sleep 1000 & wait"))
CONF
	return 0
}
t_before_start() {
	if ! command -v nginx >/dev/null || ! command -v curl >/dev/null || ! command -v openssl >/dev/null; then
		skip all "nginx, curl or openssl is not installed (scripts/deps.sh check installs them)"
		return 1
	fi
	if ! t_dockerd_start; then
		NO_DOCKER_WHY="no dockerd could be started here: $(tail -2 "$TMP/dockerd.log" 2>/dev/null | tr '\n' ' ')"
		t_dockerd_stop
	elif ! t_docker_image "$IMG"; then
		NO_DOCKER_WHY="docker import of the busybox image failed"
		t_dockerd_stop
	else
		HAVE_DOCKER=1
	fi
	# A route with its own certificate (:tls (:cert :key)): host files the archive carries.
	mkdir -p "$TMP/ssl"
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
		-subj /CN=shop.home.lan -addext subjectAltName=DNS:shop.home.lan \
		-keyout "$TMP/ssl/shop.key" -out "$TMP/ssl/shop.pem" >/dev/null 2>&1 || return 1
	host_conf >"$CONF"
}
t_setup
ROOT_B="$TMP/root2"
RUN_B="$TMP/run2"
SOCK_B="$RUN_B/clbsd.sock"
D2=""
mkdir -p "$TMP/etc2/conf.d"
: >"$TMP/etc2/clbsd.conf"
c2() { "$BUILD/clbsd" --socket "$SOCK_B" "$@"; }
dk2() { docker -H "unix://$TMP/docker2.sock" "$@"; }
start2() {
	local bind=""
	[ "$HAVE_DOCKER" = 1 ] && bind="mount --bind '$TMP/docker2.sock' '$DOCKER_SOCK' && "
	unshare --mount --net --propagation private -- sh -c "$T_DETACH_ZFS; $bind"'exec "$@"' sh \
		"$BUILD/clbsdd" --root "$ROOT_B" --run "$RUN_B" --socket "$SOCK_B" \
		--config "$TMP/etc2/clbsd.conf" --cgroup-parent "clbsd-$T_ID-2" \
		>>"$TMP/daemon2.log" 2>&1 &
	D2=$!
	wait_until 10 c2 info >/dev/null 2>&1
}
stop2() {
	local n
	if [ -n "$D2" ]; then
		: >"$TMP/etc2/clbsd.conf"
		rm -f "$TMP/etc2/conf.d/"*.conf
		c2 apply >/dev/null 2>&1
		for n in $(c2 ps -a --format '{{.Name}}' 2>/dev/null); do c2 rm -f -v "$n" >/dev/null 2>&1; done
		kill "$D2" 2>/dev/null
		wait "$D2" 2>/dev/null
		D2=""
	fi
	if [ -n "$DOCKERD2_PID" ]; then
		dk2 ps -aq | while read -r id; do dk2 rm -f "$id" >/dev/null 2>&1; done
		kill "$DOCKERD2_PID" 2>/dev/null
		wait "$DOCKERD2_PID" 2>/dev/null
		DOCKERD2_PID=""
	fi
	find /sys/fs/cgroup -maxdepth 3 -type d -name "clbsd-$T_ID-2" 2>/dev/null |
		while read -r d; do find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null; done
}
# Before t_cleanup, keeping the script's status for it: the second daemon
# and dockerd, then the first daemon's docker containers and dockerd.
cleanup() {
	local rc=$?
	stop2
	[ "$HAVE_DOCKER" = 1 ] && t_docker_cleanup "$IMG"
	grep -o " $TMP/d[a-z0-9]*[^ ]*" /proc/mounts | sort -r | while read -r m; do
		umount -l "$m" 2>/dev/null
	done
	return "$rc"
}
trap 'cleanup; t_cleanup' EXIT
t_forge

ns1() { nsenter -t "$DAEMON_PID" -n -- "$@"; }
ns2() { nsenter -t "$D2" -n -- "$@"; }
ns1 ip link set lo up
# https NS CA: the page of web.home.lan over TLS through that daemon's ingress.
https() { "$1" curl -s -m 3 --cacert "$2" --resolve "web.home.lan:$P443:127.0.0.1" "https://web.home.lan:$P443/" 2>&1; }
http() { "$1" curl -s -m 3 -H "Host: web.home.lan" "http://127.0.0.1:$P80/" 2>&1; }
state() { "$@" --json inspect "$N" 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["state"])' 2>/dev/null; }
fingerprint() { openssl x509 -noout -fingerprint -sha256 -in "$1" 2>&1; }

clbsd apply >/dev/null 2>&1
routed1() { [ "$(http ns1)" = hello-lab ]; }
wait_until 30 routed1 && ok source_route_answers || fail source_route_answers "$(http ns1); $(clbsd ps -a)"
CA1="$ROOT/ingress/ca/ca.pem"
out=$(https ns1 "$CA1")
[ "$out" = hello-lab ] && ok source_https_verifies || fail source_https_verifies "$out"
clbsd exec web sh -c 'echo hello-moved > /www/index.html'

if [ "$HAVE_DOCKER" = 1 ]; then
	N=store
	wait_until 20 sh -c '[ "$("$0" --socket "$1" --json inspect store 2>/dev/null | python3 -c "import json,sys; print(json.load(sys.stdin)[0][\"state\"])" 2>/dev/null)" = running ]' \
		"$BUILD/clbsd" "$SOCK"
	clbsd exec store sh -c 'head -c 300000 /dev/urandom > /data/blob; echo kept > /data/note'
	sum_store=$(clbsd exec store sh -c 'cat /data/blob /data/note' | md5sum)
	[ "$(state clbsd)" = running ] && [ -n "$sum_store" ] && ok source_docker_has_data ||
		fail source_docker_has_data "$(clbsd ps -a)"
	# The second machine's dockerd.
	dockerd --iptables=false --ip6tables=false --bridge=none --data-root "$TMP/docker2" \
		--exec-root "$TMP/dexec2" -H "unix://$TMP/docker2.sock" -p "$TMP/docker2.pid" \
		>>"$TMP/dockerd2.log" 2>&1 &
	DOCKERD2_PID=$!
	wait_until 30 dk2 info >/dev/null 2>&1 || fail dockerd2_up "$(tail -3 "$TMP/dockerd2.log")"
else
	skip docker_container "$NO_DOCKER_WHY"
fi

start2 || fail target_up "the second daemon did not start: $(tail -5 "$TMP/daemon2.log")"
ns2 ip link set lo up

out=$(clbsd host export -o "$TMP/lab.host" 2>&1) && ok export_writes_archive ||
	fail export_writes_archive "$out"
tar tf "$TMP/lab.host" | grep -qx 'ca/ca.pem' && tar tf "$TMP/lab.host" | grep -qx 'ca/ca.key' &&
	ok archive_carries_ca || fail archive_carries_ca "$(tar tf "$TMP/lab.host" 2>&1)"
# The routing container and its image are each daemon's own (made from its
# nginx): not in the archive; the target makes its own.
members=$(tar tf "$TMP/lab.host" 2>&1)
carried=$(tar xOf "$TMP/lab.host" manifest.json 2>&1 | python3 -c 'import json,sys; m=json.load(sys.stdin)
print(" ".join(sorted([c["name"] for c in m["containers"]] + [n for i in m["images"] for n in i["names"]])))' 2>&1)
echo "$members" | grep -qx 'containers/web.clbsd' && ! echo "$members" | grep -q 'containers/ingress' &&
	! echo "$carried" | grep -q 'ingress' && ok routing_container_not_carried ||
	fail routing_container_not_carried "$carried; $members"

tar tf "$TMP/lab.host" | grep -qx 'tls/cert-1.pem' && tar tf "$TMP/lab.host" | grep -qx 'tls/key-1.pem' &&
	ok archive_carries_route_tls_files || fail archive_carries_route_tls_files "$members"
# The target has no such files: the archive brings them to the same paths.
mv "$TMP/ssl" "$TMP/ssl.source"

# Its :docker endpoint is host access: listed and refused without the flag.
if [ "$HAVE_DOCKER" = 1 ]; then
	out=$(c2 host import "$TMP/lab.host" 2>&1)
	rc=$?
	[ $rc -ne 0 ] && grep -q "talks to the Docker endpoint unix://$DOCKER_SOCK" <<<"$out" &&
		[ -z "$(c2 ps -aq)" ] && ok docker_endpoint_needs_allow_host_access ||
		fail docker_endpoint_needs_allow_host_access "$(echo "$out" | tr '\n' '|')"
fi
out=$(c2 host import --allow-host-access "$TMP/lab.host" 2>&1) && ok import_succeeds ||
	fail import_succeeds "$(echo "$out" | tr '\n' '|')"
CA2="$ROOT_B/ingress/ca/ca.pem"
[ -f "$CA2" ] && [ "$(fingerprint "$CA2")" = "$(fingerprint "$CA1")" ] &&
	[ "$(stat -c %a "$ROOT_B/ingress/ca/ca.key")" = 600 ] && ok ca_is_the_sources ||
	fail ca_is_the_sources "$(fingerprint "$CA2") vs $(fingerprint "$CA1")"
plan=$(c2 --json plan 2>&1 | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["actions"]))' 2>&1)
[ "$plan" = 0 ] && ok plan_empty || fail plan_empty "$(c2 plan 2>&1)"
moved2() { [ "$(https ns2 "$CA2")" = hello-moved ]; }
wait_until 30 moved2 && ok target_https_verifies_with_its_ca ||
	fail target_https_verifies_with_its_ca "$(https ns2 "$CA2"); $(c2 ps -a 2>&1)"
[ "$(http ns2)" = hello-moved ] && [ "$(c2 --json inspect ingress 2>&1 | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["image"])' 2>&1)" = clbsd-ingress:latest ] &&
	ok target_http_route_answers || fail target_http_route_answers "$(http ns2) $(c2 ps -a 2>&1)"
# The route's own certificate and key, put where the configuration reads them.
cmp -s "$TMP/ssl/shop.pem" "$TMP/ssl.source/shop.pem" && cmp -s "$TMP/ssl/shop.key" "$TMP/ssl.source/shop.key" &&
	[ "$(stat -c %a "$TMP/ssl/shop.key")" = 600 ] && [ "$(stat -c %a "$TMP/ssl/shop.pem")" = 644 ] &&
	ok route_tls_files_installed || fail route_tls_files_installed "$(ls -l "$TMP/ssl" 2>&1)"
shop2() { ns2 curl -s -m 3 --cacert "$TMP/ssl.source/shop.pem" --resolve "shop.home.lan:$P443:127.0.0.1" "https://shop.home.lan:$P443/" 2>&1; }
shop_ok() { [ "$(shop2)" = hello-shop ]; }
wait_until 30 shop_ok && ok target_route_own_cert_verifies || fail target_route_own_cert_verifies "$(shop2)"
# The leaf the target serves is signed by that CA, whose file is the source's.
leaf=$(ns2 sh -c "openssl s_client -connect 127.0.0.1:$P443 -servername web.home.lan </dev/null 2>/dev/null |
	openssl x509 -noout -issuer" 2>&1)
echo "$leaf" | grep -q "clbsd local CA" && ok target_leaf_issued_by_ca || fail target_leaf_issued_by_ca "$leaf"

if [ "$HAVE_DOCKER" = 1 ]; then
	N=store
	wait_until 20 sh -c '[ "$("$0" --socket "$1" --json inspect store 2>/dev/null | python3 -c "import json,sys; print(json.load(sys.stdin)[0][\"state\"])" 2>/dev/null)" = running ]' \
		"$BUILD/clbsd" "$SOCK_B"
	got=$(c2 exec store sh -c 'cat /data/blob /data/note' 2>&1 | md5sum)
	[ "$(state c2)" = running ] && [ "$got" = "$sum_store" ] &&
		[ "$(dk2 inspect -f '{{index .Config.Labels "org.clbsd.name"}}' store 2>&1)" = store ] &&
		ok docker_data_moved || fail docker_data_moved "state=$(state c2) $got vs $sum_store $(c2 ps -a 2>&1)"
fi
out=$(clbsd host diff "unix:$SOCK_B" 2>&1) && ok host_diff_empty || fail host_diff_empty "$out"
t_done
