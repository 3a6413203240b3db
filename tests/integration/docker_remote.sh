#!/bin/bash
# Live remote docker endpoints: a private dockerd listening on tcp with TLS
# client certificates (a CA, server and client certificates made here with
# openssl), and the same dockerd over ssh to an sshd on loopback (`ssh HOST
# docker system dial-stdio`, as the docker CLI does). run, ps, logs and rm
# and exec -i go through each; a client certificate from another CA gives a
# clear error.
# dockerd and sshd run in the daemon's network namespace, where loopback is
# the daemon's; root's ~/.ssh is a test directory in the daemon's mount
# namespace only.
. "$(dirname "$0")/../lib.sh"

IMG="clbsd-bb-$$:1"
SSHD=""
remote_cleanup() {
	if [ -n "$DAEMON_PID" ] && kill -0 "$DAEMON_PID" 2>/dev/null && [ -n "$DOCKERD_PID" ]; then
		local n
		for n in $(clbsd ps -a --format '{{.Name}}' 2>/dev/null); do
			clbsd rm -f "$n" >/dev/null 2>&1
		done
	fi
	if [ -n "$SSHD" ]; then
		kill "$SSHD" 2>/dev/null
		wait "$SSHD" 2>/dev/null
	fi
	if [ -n "$DOCKERD_PID" ]; then
		docker -H "unix://$DOCKER_SOCK" ps -aq | while read -r id; do
			docker -H "unix://$DOCKER_SOCK" rm -f "$id" >/dev/null 2>&1
		done
		t_dockerd_stop
		grep -q " $TMP/d" /proc/mounts && echo "FAIL $T_NAME.cleanup: dockerd left mounts"
	fi
}
for tool in dockerd docker openssl; do
	if ! command -v "$tool" >/dev/null; then
		skip all "$tool is not installed (scripts/deps.sh check installs it)"
		exit 0
	fi
done
t_setup
trap 'rc=$?; remote_cleanup; (exit $rc); t_cleanup' EXIT
inside() { nsenter -t "$DAEMON_PID" -n "$@"; }
inside ip link set lo up

# ---- certificates: a CA, dockerd's for 127.0.0.1, a client's; and a stranger's ----
C="$TMP/certs"
mkdir -p "$C"
mkcert() { # NAME CA-PREFIX [SAN]
	openssl req -new -newkey rsa:2048 -nodes -keyout "$C/$1-key.pem" -subj "/CN=$1" \
		-out "$C/$1.csr" 2>/dev/null || return 1
	if [ -n "${3:-}" ]; then
		printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth\n' "$3" >"$C/$1.ext"
	else
		printf 'extendedKeyUsage=clientAuth\n' >"$C/$1.ext"
	fi
	openssl x509 -req -days 2 -in "$C/$1.csr" -CA "$C/$2.pem" -CAkey "$C/$2-key.pem" \
		-CAcreateserial -extfile "$C/$1.ext" -out "$C/$1.pem" 2>/dev/null
}
for ca in ca other-ca; do
	openssl req -x509 -new -newkey rsa:2048 -nodes -days 2 -subj "/CN=clbsd test $ca" \
		-keyout "$C/$ca-key.pem" -out "$C/$ca.pem" 2>/dev/null
done
mkcert server ca "IP:127.0.0.1" && mkcert client ca && mkcert stranger other-ca ||
	{ fail certs "openssl failed"; t_done; exit 1; }
chmod 0600 "$C"/*-key.pem

# ---- the dockerd: tcp with --tlsverify, and a unix socket for this script and ssh ----
port=$(inside python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
DOCKER_SOCK="$TMP/docker.sock"
# nsenter execs dockerd (no fork), so $! is dockerd's own pid.
nsenter -t "$DAEMON_PID" -n dockerd --iptables=false --ip6tables=false --bridge=none \
	--data-root "$TMP/docker" --exec-root "$TMP/dexec" -p "$TMP/docker.pid" \
	-H "unix://$DOCKER_SOCK" -H "tcp://127.0.0.1:$port" \
	--tlsverify --tlscacert "$C/ca.pem" --tlscert "$C/server.pem" --tlskey "$C/server-key.pem" \
	>>"$TMP/dockerd.log" 2>&1 &
DOCKERD_PID=$!
if ! wait_until 30 docker -H "unix://$DOCKER_SOCK" info >/dev/null 2>&1; then
	skip all "no dockerd could be started here: $(tail -2 "$TMP/dockerd.log")"
	t_done
	exit 0
fi
t_docker_image "$IMG" || fail image "docker import failed"

# through ENDPOINT-NAME: run, ps, logs, rm of one container through the current endpoint
through() {
	local how=$1 n="r-$1"
	out=$(clbsd run -d --kind docker --network none --name "$n" "$IMG" sh -c "echo via-$how; sleep 300" 2>&1)
	[ "$out" = "$n" ] && [ "$(dk inspect -f '{{.State.Running}}' "$n" 2>/dev/null)" = true ] &&
		ok "${how}_run" || fail "${how}_run" "$out"
	clbsd ps --format '{{.Name}} {{.Kind}} {{.State}}' | grep -qx "$n docker running" &&
		ok "${how}_ps" || fail "${how}_ps" "$(clbsd ps)"
	wait_until 5 sh -c "$BUILD/clbsd --socket $SOCK logs $n 2>/dev/null | grep -q via-$how"
	[ "$(clbsd logs "$n" 2>&1)" = "via-$how" ] && ok "${how}_logs" || fail "${how}_logs" "$(clbsd logs "$n" 2>&1)"
	# Interactive exec: dockerd's hijacked stream over this transport (one
	# line read, so no end of stdin is needed: TLS cannot be half closed).
	out=$(echo "line-$how" | timeout 30 "$BUILD/clbsd" --socket "$SOCK" exec -i "$n" sh -c 'read l; echo "got $l"; exit 5' 2>&1)
	rc=$?
	[ "$out" = "got line-$how" ] && [ $rc -eq 5 ] && ok "${how}_exec_i" || fail "${how}_exec_i" "rc=$rc $out"
	out=$(clbsd rm -f "$n" 2>&1)
	[ -z "$(dk ps -aq --filter "name=^$n\$")" ] && ! clbsd inspect "$n" >/dev/null 2>&1 &&
		ok "${how}_rm" || fail "${how}_rm" "$out"
}
endpoint() { # the (host :docker ...) form, applied
	printf '(host :docker %s)\n' "$1" >"$CONF"
	clbsd apply >/dev/null 2>&1
	# The follower reconnects to the new endpoint: wait until it answers.
	wait_until 10 sh -c "$BUILD/clbsd --socket $SOCK info 2>/dev/null | grep -qv 'docker.*down'"
}

# ---- tcp:// with TLS client certificates ----
endpoint "(:endpoint \"tcp://127.0.0.1:$port\" :tls-ca \"$C/ca.pem\" :tls-cert \"$C/client.pem\" :tls-key \"$C/client-key.pem\")"
through tls

# A client certificate dockerd's CA did not sign: refused, saying so.
endpoint "(:endpoint \"tcp://127.0.0.1:$port\" :tls-ca \"$C/ca.pem\" :tls-cert \"$C/stranger.pem\" :tls-key \"$C/stranger-key.pem\")"
out=$(clbsd run -d --kind docker --network none --name r-bad "$IMG" true 2>&1)
rc=$?
[ $rc -ne 0 ] && echo "$out" | grep -q "tcp://127.0.0.1:$port" &&
	echo "$out" | grep -Eiq "ssl|tls|certificate|alert" && [ -z "$(dk ps -aq --filter name=r-bad)" ] &&
	ok tls_wrong_client_cert_clear_error || fail tls_wrong_client_cert_clear_error "rc=$rc $out"
clbsd rm -f r-bad >/dev/null 2>&1
# A server certificate the configured CA did not sign: refused too.
endpoint "(:endpoint \"tcp://127.0.0.1:$port\" :tls-ca \"$C/other-ca.pem\" :tls-cert \"$C/client.pem\" :tls-key \"$C/client-key.pem\")"
out=$(clbsd run -d --kind docker --network none --name r-bad2 "$IMG" true 2>&1)
rc=$?
[ $rc -ne 0 ] && echo "$out" | grep -Eiq "ssl|certificate" && ok tls_wrong_ca_clear_error ||
	fail tls_wrong_ca_clear_error "rc=$rc $out"
clbsd rm -f r-bad2 >/dev/null 2>&1

# ---- ssh://, to an sshd on loopback whose sessions see this dockerd ----
if [ ! -x /usr/sbin/sshd ]; then
	fail ssh_endpoint "no /usr/sbin/sshd: scripts/deps.sh check installs openssh-server"
else
	S="$TMP/ssh"
	H="$S/root-home"
	mkdir -p "$H/.ssh" /run/sshd
	ssh-keygen -q -t ed25519 -N '' -f "$S/host" && ssh-keygen -q -t ed25519 -N '' -f "$H/.ssh/id_ed25519"
	cp "$H/.ssh/id_ed25519.pub" "$S/authorized_keys"
	printf 'Host *\n  StrictHostKeyChecking no\n  UserKnownHostsFile /dev/null\n  LogLevel ERROR\n' >"$H/.ssh/config"
	chmod 0700 "$H" "$H/.ssh"
	sport=$(inside python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
	cat >"$S/config" <<CONF
Port $sport
ListenAddress 127.0.0.1
HostKey $S/host
PidFile $S/pid
AuthorizedKeysFile $S/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
SetEnv DOCKER_HOST=unix://$DOCKER_SOCK
CONF
	nsenter -t "$DAEMON_PID" -n /usr/sbin/sshd -D -e -f "$S/config" 2>>"$TMP/sshd.log" &
	SSHD=$!
	# clbsdd's ssh reads root's ~/.ssh: a home holding the test's keys, bound
	# over root's in the daemon's mount namespace only (it goes with it).
	nsenter -t "$DAEMON_PID" -m mount --bind "$H" "$(getent passwd root | cut -d: -f6)" ||
		fail ssh_keys "could not bind the test's home over root's in the daemon's namespace"
	endpoint "(:endpoint \"ssh://root@127.0.0.1:$sport\")"
	through ssh
fi

t_done
