#!/bin/bash
# Hostile registries for `clbsd pull`: content that does not match its
# digest (a layer, a manifest pulled by digest), and redirects to file://
# URLs naming a host file (a blob, a manifest). Each pull must fail with a
# clear error, store no image, and never show the host file's content.
. "$(dirname "$0")/../lib.sh"
t_setup

REG_PID=""
stop_registry() {
	if [ -n "$REG_PID" ]; then
		kill "$REG_PID" 2>/dev/null
		wait "$REG_PID" 2>/dev/null
		REG_PID=""
	fi
}
trap 'stop_registry; t_cleanup' EXIT

TOKEN="canary-$RANDOM$RANDOM$RANDOM"
CANARY="$TMP/host-canary"
echo "{\"schemaVersion\":2,\"token\":\"$TOKEN\"}" >"$CANARY"
n_images() { find "$ROOT/images" -mindepth 1 -maxdepth 1 | wc -l; }
i0=$(n_images)

# The registry runs in the daemon's network namespace, where only loopback is.
inside() { nsenter -t "$DAEMON_PID" -n "$@"; }
inside ip link set lo up
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$TMP/evilreg.py" <<'EOF'
import hashlib, http.server, json, sys
port, canary = int(sys.argv[1]), sys.argv[2]
def dg(b): return "sha256:" + hashlib.sha256(b).hexdigest()
layer = b"a layer that is not what its digest says"
config = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["/bin/sh"]},
                     "rootfs": {"type": "layers", "diff_ids": []}}).encode()
def manifest(ldigest):
    return json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": dg(config),
                   "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": ldigest,
                    "size": 100}]}).encode()
WRONG = dg(b"what the manifest promises")
REDIR = dg(b"a blob that is redirected")
MT = "application/vnd.oci.image.manifest.v1+json"
class H(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a): pass
    def send(self, code, body=b"", ctype="application/json", extra=()):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in extra: self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD": self.wfile.write(body)
    def do_HEAD(self): self.do_GET()
    def do_GET(self):
        p = self.path
        if p == "/v2/": return self.send(200, b"{}")
        if p.endswith("/blobs/" + dg(config)): return self.send(200, config, "application/octet-stream")
        if p.startswith("/v2/evil/mismatch/manifests/"): return self.send(200, manifest(WRONG), MT)
        if p.endswith("/blobs/" + WRONG): return self.send(200, layer, "application/octet-stream")
        if p.startswith("/v2/evil/mdigest/manifests/"): return self.send(200, manifest(WRONG), MT)
        if p.startswith("/v2/evil/redirect/manifests/"): return self.send(200, manifest(REDIR), MT)
        if p.endswith("/blobs/" + REDIR):
            return self.send(302, b"", extra=[("Location", "file://" + canary)])
        if p.startswith("/v2/evil/mredirect/manifests/"):
            return self.send(302, b"", extra=[("Location", "file://" + canary)])
        self.send(404, b'{"errors":[{"code":"NOT_FOUND"}]}')
http.server.ThreadingHTTPServer(("127.0.0.1", port), H).serve_forever()
EOF
# nsenter itself, not the function: $! must be the registry's pid (nsenter
# execs python3 without forking), or the stop below would miss it.
nsenter -t "$DAEMON_PID" -n python3 "$TMP/evilreg.py" "$port" "$CANARY" >"$TMP/evilreg.log" 2>&1 &
REG_PID=$!
if ! wait_until 10 inside curl -sf "http://127.0.0.1:$port/v2/" -o /dev/null; then
	fail registry "the registry did not start: $(cat "$TMP/evilreg.log")"
	t_done
	exit
fi

# refused NAME PATTERN REF: the pull fails, says PATTERN, stores nothing, leaks nothing.
refused() {
	local name=$1 pat=$2 ref=$3 out rc
	out=$(clbsd pull "127.0.0.1:$port/$ref" 2>&1)
	rc=$?
	if [ $rc -eq 0 ]; then
		fail "$name" "pulled: $out"
	elif ! grep -qi -- "$pat" <<<"$out"; then
		fail "$name" "no \"$pat\" in: $out"
	elif grep -q "$TOKEN" <<<"$out" || grep -rqs "$TOKEN" "$ROOT/images"; then
		fail "$name" "the host file's content was read: $out"
	elif [ "$(n_images)" != "$i0" ]; then
		fail "$name" "an image was left: $(ls -a "$ROOT/images")"
	else
		ok "$name"
	fi
}
refused pull_layer_digest_mismatch_refused "hashes to" evil/mismatch:1
wrong=sha256:$(printf x | sha256sum | cut -d' ' -f1)
refused pull_manifest_digest_mismatch_refused "hashes to" "evil/mdigest@$wrong"
refused pull_blob_file_redirect_refused 'protocol "file"' evil/redirect:1
refused pull_manifest_file_redirect_refused 'protocol "file"' evil/mredirect:1
stop_registry
t_done
