#!/bin/bash
# The ingress layer against a real nginx: routing by Host, the 404 and 503
# pages, refused domains, rejected configurations that leave the old one
# serving (a missing certificate, a listen address taken), HTTPS through the
# local CA, websockets, path routes and :max-body.
#
# No daemon: build/tools/ingress-tool renders and applies, nginx runs on
# 127.0.0.1 from a temporary prefix, and the backends are small python3
# servers. Everything started here is stopped by its pid.
. "$(dirname "$0")/../lib.sh"
T_NAME=ingress
TOOL="$BUILD/tools/ingress-tool"
PIDS=()

cleanup() {
	local rc=$? p
	# Writes to a reader that went away fail quietly here instead of ending
	# the cleanup half way.
	trap '' PIPE
	if [ "$T_DONE" -ne 1 ]; then
		echo "FAIL $T_NAME.incomplete: the script stopped early (status $rc)"
		T_FAILED=1
	fi
	for p in "${PIDS[@]}"; do
		kill "$p" 2>/dev/null
	done
	for p in "${PIDS[@]}"; do
		wait "$p" 2>/dev/null
	done
	if [ "$T_FAILED" -ne 0 ] && [ -f "$TMP/ngx/logs/error.log" ]; then
		echo "--- nginx error log (tail)"
		tail -n 20 "$TMP/ngx/logs/error.log"
	fi
	[ -n "${TMP:-}" ] && rm -rf "$TMP"
	exit "$T_FAILED"
}

command -v nginx >/dev/null || { skip all "nginx is not installed (scripts/deps.sh check installs it)"; exit 0; }
command -v python3 >/dev/null || { skip all "python3 is not installed"; exit 0; }
command -v curl >/dev/null || { skip all "curl is not installed"; exit 0; }
[ -x "$TOOL" ] || { echo "FAIL $T_NAME.build: $TOOL is missing (make all)"; exit 1; }
TMP=$(mktemp -d /tmp/clbsd-ingress.XXXXXX)
trap cleanup EXIT
trap 'exit 143' TERM INT
# A reader that goes away (`... | head`) must not leave the backends running.
trap 'exit 141' PIPE
trap 'exit 129' HUP

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# A backend that says who it is and echoes the proxy headers; it answers a
# websocket handshake with 101 and echoes one text frame.
cat >"$TMP/backend.py" <<'EOF'
import base64, hashlib, http.server, socketserver, sys
name, port = sys.argv[1], int(sys.argv[2])
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def reply(self):
        if self.headers.get("Upgrade", "").lower() == "websocket":
            key = self.headers["Sec-WebSocket-Key"]
            acc = base64.b64encode(hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()).decode()
            self.send_response(101)
            self.send_header("Upgrade", "websocket")
            self.send_header("Connection", "Upgrade")
            self.send_header("Sec-WebSocket-Accept", acc)
            self.end_headers()
            self.wfile.flush()
            hdr = self.rfile.read(2)
            n = hdr[1] & 0x7f
            mask = self.rfile.read(4)
            data = bytes(b ^ mask[i % 4] for i, b in enumerate(self.rfile.read(n)))
            self.wfile.write(bytes([0x81, len(data)]) + data)
            self.wfile.flush()
            self.close_connection = True
            return
        n = int(self.headers.get("Content-Length") or 0)
        if n:
            self.rfile.read(n)
        body = "backend %s path %s\n" % (name, self.path)
        for h in ("X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host", "X-Real-IP"):
            body += "%s: %s\n" % (h, self.headers.get(h, "-"))
        b = body.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(b)))
        self.end_headers()
        self.wfile.write(b)
    do_GET = do_POST = reply
class S(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
S(("127.0.0.1", port), H).serve_forever()
EOF

# A websocket client: handshake through nginx, one frame there and back.
cat >"$TMP/wsclient.py" <<'EOF'
import base64, os, socket, sys
host, port = sys.argv[1], int(sys.argv[2])
s = socket.create_connection(("127.0.0.1", port), timeout=5)
key = base64.b64encode(os.urandom(16)).decode()
s.sendall(("GET /ws HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n" % (host, key)).encode())
head = b""
while b"\r\n\r\n" not in head:
    c = s.recv(1)
    if not c: break
    head += c
if not head.startswith(b"HTTP/1.1 101"):
    print("no 101: %r" % head[:60]); sys.exit(1)
msg = b"hello through nginx"
mask = os.urandom(4)
s.sendall(bytes([0x81, 0x80 | len(msg)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(msg)))
hdr = s.recv(2)
data = b""
while len(data) < (hdr[1] & 0x7f):
    data += s.recv(64)
print(data.decode())
EOF

start_backend() { # start_backend NAME PORT
	python3 "$TMP/backend.py" "$1" "$2" >/dev/null 2>&1 &
	PIDS+=($!)
}

HTTP=$(free_port)
HTTPS=$(free_port)
P_A=$(free_port) P_B=$(free_port) P_C=$(free_port) P_D=$(free_port) P_APP=$(free_port)
for b in "a $P_A" "b $P_B" "c $P_C" "d $P_D" "app $P_APP"; do
	# shellcheck disable=SC2086 # name and port
	start_backend $b
done
for p in $P_A $P_B $P_C $P_D $P_APP; do
	wait_until 10 curl -s -o /dev/null "http://127.0.0.1:$p/" || fail backends "backend on $p did not start"
done

NGX="$TMP/ngx"
CA="$TMP/ca"
spec() { # spec [EXTRA ROUTE LINES...]: the base spec plus extra lines
	cat <<EOF
dir $NGX
listen 127.0.0.1:$HTTP
tls-listen 127.0.0.1:$HTTPS
default-domain test.lan
tls-ca $CA
route a 127.0.0.1 $P_A up a
route b 127.0.0.1 $P_B up b.test.lan,b2.example.org
route c 127.0.0.1 $P_C up c ws
route db 127.0.0.1 $P_D starting db
route app 127.0.0.1 $P_APP up a path=/app
route small 127.0.0.1 $P_B up small max-body=1k
route apps 127.0.0.1 $P_C up *.apps
EOF
	local l
	for l in "$@"; do echo "$l"; done
}
spec >"$TMP/spec"
"$TOOL" ca "$TMP/spec" >/dev/null || fail ca "ingress-tool ca failed"
out=$("$TOOL" apply "$TMP/spec")
check first_apply_written [ "$out" = written ]
nginx -p "$NGX/" -c "$NGX/nginx.conf" -g 'daemon off;' >"$TMP/nginx.out" 2>&1 &
NGINX_PID=$!
PIDS+=("$NGINX_PID")
if ! wait_until 10 test -s "$NGX/nginx.pid"; then
	fail nginx_start "nginx did not start: $(cat "$TMP/nginx.out")"
fi
wait_until 5 curl -s -o /dev/null "http://127.0.0.1:$HTTP/"

get() { # get HOST [PATH] [CURL ARGS...]: the body
	local host=$1 path=${2:-/}
	shift 2 2>/dev/null || shift
	curl -s --max-time 5 -H "Host: $host" "$@" "http://127.0.0.1:$HTTP$path"
}
code() { # code HOST [PATH] [CURL ARGS...]: the status
	local host=$1 path=${2:-/}
	shift 2 2>/dev/null || shift
	curl -s -o /dev/null -w '%{http_code}' --max-time 5 -H "Host: $host" "$@" "http://127.0.0.1:$HTTP$path"
}

# Each name reaches its own backend.
ok_route=1
for pair in "a.test.lan a" "b.test.lan b" "b2.example.org b" "c.test.lan c" "x.apps.test.lan c" \
	"y.z.apps.test.lan c"; do
	read -r host want <<<"$pair"
	body=$(get "$host")
	case "$body" in "backend $want path /"*) ;; *) ok_route=0; fail route_by_host "$host answered: $body" ;; esac
done
[ "$ok_route" = 1 ] && ok route_by_host

body=$(get a.test.lan /x)
if grep -q '^X-Forwarded-Host: a.test.lan$' <<<"$body" && grep -q '^X-Forwarded-Proto: http$' <<<"$body" &&
	grep -q '^X-Forwarded-For: 127.0.0.1$' <<<"$body" && grep -q '^X-Real-IP: 127.0.0.1$' <<<"$body"; then
	ok forwarded_headers
else
	fail forwarded_headers "backend saw: $body"
fi

body=$(get nobody.test.lan)
if [ "$(code nobody.test.lan)" = 404 ] && grep -q 'No service is routed' <<<"$body"; then
	ok unknown_host_404
else
	fail unknown_host_404 "got: $body"
fi

body=$(get db.test.lan)
if [ "$(code db.test.lan)" = 503 ] && grep -q 'db is starting' <<<"$body"; then
	ok down_route_503_names_service
else
	fail down_route_503_names_service "got: $body"
fi

# Path routes: /app and below go to app, the rest of the name to a.
if [[ "$(get a.test.lan /app/x)" == "backend app path /app/x"* ]] &&
	[[ "$(get a.test.lan /app)" == "backend app path /app"* ]] &&
	[[ "$(get a.test.lan /application)" == "backend a path /application"* ]]; then
	ok path_routes
else
	fail path_routes "a.test.lan/app/x: $(get a.test.lan /app/x | head -n 1)"
fi

head -c 4096 /dev/zero >"$TMP/4k"
c_big=$(code small.test.lan / --data-binary @"$TMP/4k")
c_small=$(code small.test.lan / --data-binary "tiny")
if [ "$c_big" = 413 ] && [ "$c_small" = 200 ]; then ok max_body; else fail max_body "4k: $c_big, tiny: $c_small"; fi

ws=$(python3 "$TMP/wsclient.py" c.test.lan "$HTTP" 2>&1)
if [ "$ws" = "hello through nginx" ]; then ok websocket_upgrade; else fail websocket_upgrade "$ws"; fi
# Without :websocket the upgrade is not passed on.
ws=$(python3 "$TMP/wsclient.py" a.test.lan "$HTTP" 2>&1)
case "$ws" in "no 101"*) ok websocket_only_when_asked ;; *) fail websocket_only_when_asked "$ws" ;; esac

# HTTPS with the local CA: curl verifies against ca.pem.
body=$(curl -s --max-time 5 --cacert "$CA/ca.pem" --resolve "a.test.lan:$HTTPS:127.0.0.1" \
	"https://a.test.lan:$HTTPS/")
case "$body" in
"backend a path /"*) grep -q '^X-Forwarded-Proto: https$' <<<"$body" && ok https_local_ca ||
	fail https_local_ca "no X-Forwarded-Proto https: $body" ;;
*) fail https_local_ca "got: $body" ;;
esac
body=$(curl -s --max-time 5 --cacert "$CA/ca.pem" --resolve "x.apps.test.lan:$HTTPS:127.0.0.1" \
	"https://x.apps.test.lan:$HTTPS/")
case "$body" in "backend c path /"*) ok https_wildcard ;; *) fail https_wildcard "got: $body" ;; esac
if curl -s --max-time 5 --cacert "$CA/ca.pem" --resolve "nobody.test.lan:$HTTPS:127.0.0.1" \
	"https://nobody.test.lan:$HTTPS/" >/dev/null; then
	fail https_unknown_name_refused "an unknown name got a TLS handshake"
else
	ok https_unknown_name_refused
fi
if curl -s --max-time 5 --resolve "a.test.lan:$HTTPS:127.0.0.1" "https://a.test.lan:$HTTPS/" >/dev/null; then
	fail https_needs_ca "verified without the CA"
else
	ok https_needs_ca
fi

# Refused values never reach nginx.conf.
before=$(cat "$NGX/nginx.conf")
spec "route evil 127.0.0.1 $P_A up a;b" >"$TMP/spec.evil"
out=$("$TOOL" apply "$TMP/spec.evil")
rc=$?
if [ "$rc" = 2 ] && [[ "$out" == refused:* ]] && [ "$(cat "$NGX/nginx.conf")" = "$before" ]; then
	ok bad_domain_refused
else
	fail bad_domain_refused "status $rc: $out"
fi
bad=0
for d in 'x } server {' 'a;b' 'web$host' 'a b' '-a.lan'; do
	"$TOOL" check domain "$d" >/dev/null && { bad=1; fail domain_check "accepted '$d'"; }
done
for p in '/a;b' '/a }' '/$x' 'x'; do
	"$TOOL" check path "$p" >/dev/null && { bad=1; fail path_check "accepted '$p'"; }
done
[ "$bad" = 0 ] && ok refused_values

# The same text again: nothing to do, no reload.
out=$("$TOOL" apply "$TMP/spec")
check apply_unchanged [ "$out" = unchanged ]

# A new route serves once apply returns.
spec "route d 127.0.0.1 $P_D up d" >"$TMP/spec2"
"$TOOL" ca "$TMP/spec2" >/dev/null
out=$("$TOOL" apply "$TMP/spec2")
if [ "$out" = reloaded ] && [[ "$(get d.test.lan)" == "backend d path /"* ]]; then
	ok new_route_after_reload
else
	fail new_route_after_reload "apply said $out; d.test.lan: $(get d.test.lan | head -n 1)"
fi
# Health gating: the container goes down, its name answers 503.
sed "s/^route d \(.*\) up d$/route d \1 down d/" "$TMP/spec2" >"$TMP/spec3"
out=$("$TOOL" apply "$TMP/spec3")
if [ "$out" = reloaded ] && [ "$(code d.test.lan)" = 503 ] && grep -q 'd is down' <<<"$(get d.test.lan)"; then
	ok route_leaves_pool_when_down
else
	fail route_leaves_pool_when_down "apply said $out; $(get d.test.lan)"
fi

# nginx -t refuses a missing certificate: the old configuration keeps serving.
before=$(cat "$NGX/nginx.conf")
spec "route e 127.0.0.1 $P_D up e cert=$TMP/missing.pem key=$TMP/missing.key" >"$TMP/spec.badcert"
out=$("$TOOL" apply "$TMP/spec.badcert")
rc=$?
if [ "$rc" = 3 ] && [[ "$out" == *"[emerg]"*"missing.pem"* ]] && [ "$(cat "$NGX/nginx.conf")" = "$before" ] &&
	[[ "$(get a.test.lan)" == "backend a path /"* ]] && [ "$(code e.test.lan)" = 404 ]; then
	ok rejected_bad_cert_keeps_old
else
	fail rejected_bad_cert_keeps_old "status $rc: $out"
fi
if ! ls "$NGX"/.nginx.conf.* >/dev/null 2>&1; then ok no_temp_files_left; else fail no_temp_files_left "$(ls -a "$NGX")"; fi

# A listen address taken by another program passes nginx -t (it does not
# bind); apply finds it before the reload, and the old configuration keeps
# serving.
TAKEN=$(free_port)
python3 -c 'import socket,sys,time
s=socket.socket(); s.bind(("127.0.0.1",int(sys.argv[1]))); s.listen(); time.sleep(600)' "$TAKEN" &
HOLDER=$!
PIDS+=("$HOLDER")
wait_until 5 python3 -c 'import socket,sys; socket.create_connection(("127.0.0.1",int(sys.argv[1])),1)' "$TAKEN" 2>/dev/null
before=$(cat "$NGX/nginx.conf")
spec "route f 127.0.0.1 $P_D up f" | sed "s/^listen .*/&\nlisten 127.0.0.1:$TAKEN/" >"$TMP/spec.taken"
"$TOOL" ca "$TMP/spec.taken" >/dev/null
out=$("$TOOL" apply "$TMP/spec.taken")
rc=$?
if [ "$rc" = 3 ] && [[ "$out" == *"127.0.0.1:$TAKEN is in use by another program"* ]] &&
	[ "$(cat "$NGX/nginx.conf")" = "$before" ] &&
	[[ "$(get a.test.lan)" == "backend a path /"* ]] && [ "$(code f.test.lan)" = 404 ]; then
	ok rejected_listen_taken_keeps_old
else
	fail rejected_listen_taken_keeps_old "status $rc: $out"
fi
kill "$HOLDER" 2>/dev/null
wait "$HOLDER" 2>/dev/null

# An address that is not on this host passes nginx -t and the probe above;
# the master refuses it at reload, and apply restores the old text.
before=$(cat "$NGX/nginx.conf")
spec "route f 127.0.0.1 $P_D up f" | sed "s/^listen .*/&\nlisten 192.0.2.1:$HTTP/" >"$TMP/spec.foreign"
"$TOOL" ca "$TMP/spec.foreign" >/dev/null
out=$("$TOOL" apply "$TMP/spec.foreign")
rc=$?
if [ "$rc" = 3 ] && [[ "$out" == *"[emerg] bind() to 192.0.2.1:$HTTP failed"* ]] &&
	[ "$(cat "$NGX/nginx.conf")" = "$before" ] && [[ "$(get a.test.lan)" == "backend a path /"* ]] &&
	[ "$(code f.test.lan)" = 404 ]; then
	ok rejected_at_reload_keeps_old
else
	fail rejected_at_reload_keeps_old "status $rc: $out"
fi

# The master still takes good configurations afterwards.
out=$("$TOOL" apply "$TMP/spec")
if [ "$out" = reloaded ] && [ "$(code d.test.lan)" = 404 ]; then ok reload_after_rejection; else fail reload_after_rejection "apply said $out"; fi

# Graceful stop by pid; nothing of this test keeps running.
kill -QUIT "$NGINX_PID"
wait "$NGINX_PID" 2>/dev/null
left=""
for p in "${PIDS[@]}"; do
	[ "$p" = "$NGINX_PID" ] || [ "$p" = "$HOLDER" ] || kill "$p" 2>/dev/null
done
for p in "${PIDS[@]}"; do
	wait "$p" 2>/dev/null
	kill -0 "$p" 2>/dev/null && left="$left $p"
done
if [ -z "$left" ] && ! pgrep -f "$NGX/" >/dev/null; then ok nothing_left_running; else fail nothing_left_running "still running:$left"; fi
PIDS=()
t_done
