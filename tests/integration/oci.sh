#!/bin/bash
# OCI images: export to an OCI archive that skopeo (and docker, when a
# dockerd can run here) accepts, load it back unchanged, load docker save
# archives with whiteouts, refuse archives that escape the rootfs, tag and
# prune, and pull from Debian's docker-registry on loopback.
. "$(dirname "$0")/../lib.sh"
t_setup
t_forge

REG_PID=""
TOKREG_PID=""
DOCKERD_PID=""
DOCKER_SOCK="$TMP/docker.sock"
oci_cleanup() {
	if [ -n "$TOKREG_PID" ]; then
		kill "$TOKREG_PID" 2>/dev/null
		wait "$TOKREG_PID" 2>/dev/null
	fi
	if [ -n "$REG_PID" ]; then
		kill "$REG_PID" 2>/dev/null
		wait "$REG_PID" 2>/dev/null
		kill -0 "$REG_PID" 2>/dev/null && echo "FAIL $T_NAME.cleanup: registry $REG_PID still runs"
	fi
	if [ -n "$DOCKERD_PID" ]; then
		DOCKER_HOST="unix://$DOCKER_SOCK" docker rmi -f "clbsd-oci-$T_ID:1" >/dev/null 2>&1
		kill "$DOCKERD_PID" 2>/dev/null
		wait "$DOCKERD_PID" 2>/dev/null
		grep -q " $TMP/docker" /proc/mounts && echo "FAIL $T_NAME.cleanup: dockerd left mounts"
	fi
}
trap 'rc=$?; oci_cleanup; (exit $rc); t_cleanup' EXIT

if ! command -v skopeo >/dev/null || ! command -v docker-registry >/dev/null; then
	skip all "skopeo or docker-registry is not installed (scripts/deps.sh check installs them)"
	t_done
	exit 0
fi

# inside CMD...: run in the daemon's network namespace, where loopback is
# the only network and the registry listens.
inside() { nsenter -t "$DAEMON_PID" -n "$@"; }
inside ip link set lo up

img_field() {
	clbsd image inspect "$1" | python3 -c 'import json,sys; v=json.load(sys.stdin)[0]
for k in sys.argv[1].split("."): v=v[k]
print(json.dumps(v) if isinstance(v,(list,dict)) else v)' "$2"
}
# A listing of a tree: path, type, mode, owner, size, whole-second mtime, link target.
tree_list() { (cd "$1" && find . -mindepth 1 -printf '%p %y %m %U:%G %s %Ts %l\n' | sort); }
same_tree() {
	local a b
	a=$(tree_list "$ROOT/images/$(img_field "$1" id)/rootfs")
	b=$(tree_list "$ROOT/images/$(img_field "$2" id)/rootfs")
	[ "$a" = "$b" ] && [ "$(contents "$1")" = "$(contents "$2")" ]
}
# The sha256 of every regular file of an image.
contents() { (cd "$ROOT/images/$(img_field "$1" id)/rootfs" && find . -type f -exec sha256sum {} + | sort -k2); }
staging_left() { ls -d "$ROOT"/images/.staging-* >/dev/null 2>&1; }

# ---- export ----
digest=$(clbsd image export forge -o "$TMP/forge.tar")
[ "$digest" = "$(img_field forge digest)" ] && ok export_digest_is_recorded ||
	fail export_digest_is_recorded "export $digest, image $(img_field forge digest)"
sk=$(skopeo inspect "oci-archive:$TMP/forge.tar" 2>"$TMP/skopeo.err" |
	python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["Digest"], d["Os"], d["Architecture"])')
[ "$sk" = "$digest linux amd64" ] || [ "$sk" = "$digest linux $(uname -m)" ] &&
	ok skopeo_inspect_accepts || fail skopeo_inspect_accepts "'$sk' $(cat "$TMP/skopeo.err")"
cfg=$(skopeo inspect --config "oci-archive:$TMP/forge.tar" |
	python3 -c 'import json,sys; c=json.load(sys.stdin)["config"]; print(c.get("Cmd"), c.get("Env"))')
case "$cfg" in *"/bin/sh"*PATH=*) ok export_config ;; *) fail export_config "$cfg" ;; esac
# Content-addressed ids: the id is the digest of the OCI config blob, as docker's.
forge_id=$(img_field forge id)
cfgd=$(skopeo inspect --raw "oci-archive:$TMP/forge.tar" |
	python3 -c 'import json,sys; print(json.load(sys.stdin)["config"]["digest"])')
[ "$cfgd" = "sha256:$forge_id" ] && ok id_is_config_digest || fail id_is_config_digest "$cfgd, id $forge_id"
clbsd image export forge -o "$TMP/forge2.tar" >/dev/null
cmp -s "$TMP/forge.tar" "$TMP/forge2.tar" && ok export_reproducible ||
	fail export_reproducible "two exports differ"
clbsd image export forge -o "$TMP/no/such/dir/x.tar" >/dev/null 2>&1
[ $? -eq 2 ] && ok export_bad_target_is_usage || fail export_bad_target_is_usage "status $?"
! ls "$TMP"/*.tmp-* >/dev/null 2>&1 && ok export_no_temp_left ||
	fail export_no_temp_left "$(ls "$TMP")"

# ---- load it back ----
clbsd image load --name back:1 "$TMP/forge.tar" >/dev/null || fail load_oci "load failed"
same_tree forge back:1 && ok roundtrip_same_files || fail roundtrip_same_files "trees differ"
[ "$(img_field forge config)" = "$(img_field back:1 config)" ] && ok roundtrip_same_config ||
	fail roundtrip_same_config "$(img_field back:1 config)"
[ "$(clbsd run --rm back:1 echo round-trip)" = "round-trip" ] && ok roundtrip_runs ||
	fail roundtrip_runs "run failed"
# Without --name the name in index.json is used.
clbsd image rm forge >/dev/null 2>&1 # still used? no: no container; reload gives it back
clbsd load -i "$TMP/forge.tar" >/dev/null && clbsd image inspect forge:latest >/dev/null &&
	ok load_uses_ref_name || fail load_uses_ref_name "forge:latest not loaded"

# Owners, modes, hard links, symlinks, fifos and empty dirs survive a round trip.
sp=$TMP/special
mkdir -p "$sp/bin" "$sp/empty" "$sp/home/u"
cp "$ROOT/images/$(img_field forge id)/rootfs/bin/busybox" "$sp/bin/busybox"
ln "$sp/bin/busybox" "$sp/bin/hard"
ln -s busybox "$sp/bin/sh"
echo secret >"$sp/home/u/file"
chown -R 1234:5678 "$sp/home/u"
chmod 4750 "$sp/home/u/file"
mkfifo "$sp/fifo"
# As a docker archive, since a tar keeps the hard link (an import copies it apart).
mkdir -p "$TMP/spa"
tar -C "$sp" -cf "$TMP/spa/layer.tar" .
echo '{"config":{"Cmd":["/bin/sh"]}}' >"$TMP/spa/config.json"
echo '[{"Config":"config.json","RepoTags":["special:1"],"Layers":["layer.tar"]}]' >"$TMP/spa/manifest.json"
tar -C "$TMP/spa" -cf "$TMP/spa.tar" manifest.json config.json layer.tar
clbsd image load "$TMP/spa.tar" >/dev/null && clbsd image export special:1 -o "$TMP/special.tar" >/dev/null &&
	clbsd image load --name special:2 "$TMP/special.tar" >/dev/null && same_tree special:1 special:2 &&
	ok roundtrip_owners_modes_specials || fail roundtrip_owners_modes_specials "trees differ"
[ "$(stat -c %h "$ROOT/images/$(img_field special:2 id)/rootfs/bin/hard" 2>/dev/null)" = 2 ] &&
	ok roundtrip_hard_links || fail roundtrip_hard_links "not a hard link"
# An OCI layout directory (as skopeo writes one) loads in place.
skopeo copy -q "oci-archive:$TMP/forge.tar" "oci:$TMP/layout:forge:dir" &&
	clbsd image load --name fromdir:1 "$TMP/layout" >/dev/null && same_tree forge fromdir:1 &&
	ok load_layout_dir || fail load_layout_dir "failed"
# Docker 25+ and containerd: the full name in io.containerd.image.name, the tag in ref.name.
python3 - "$TMP/layout/index.json" <<'EOF'
import json, sys
p = sys.argv[1]; j = json.load(open(p))
j["manifests"][0]["annotations"] = {"io.containerd.image.name": "docker.io/library/ctrd:7",
                                    "org.opencontainers.image.ref.name": "7"}
json.dump(j, open(p, "w"))
EOF
clbsd image load "$TMP/layout" >/dev/null && clbsd image inspect ctrd:7 >/dev/null &&
	ok load_containerd_name || fail load_containerd_name "$(clbsd images)"

# ---- docker save archives ----
skopeo copy -q "oci-archive:$TMP/forge.tar" "docker-archive:$TMP/docker.tar:dock/forge:2" &&
	clbsd image load "$TMP/docker.tar" >/dev/null && same_tree forge dock/forge:2 &&
	ok docker_archive_load || fail docker_archive_load "$(tar tf "$TMP/docker.tar" | head -5)"
gzip -c "$TMP/docker.tar" >"$TMP/docker.tar.gz"
clbsd image load --name gz:1 "$TMP/docker.tar.gz" >/dev/null && same_tree forge gz:1 &&
	ok compressed_archive_load || fail compressed_archive_load "failed"

# Two layers by hand: a whiteout and an opaque directory in the second.
mk=$TMP/mk
mkdir -p "$mk/l1/etc" "$mk/l1/var/cache/deep" "$mk/l1/bin" "$mk/l2/etc" "$mk/l2/var/cache" "$mk/out"
echo motd >"$mk/l1/etc/motd"
echo keep >"$mk/l1/etc/keep"
echo old >"$mk/l1/var/cache/deep/old"
echo tool >"$mk/l1/bin/tool"
: >"$mk/l2/etc/.wh.motd"
: >"$mk/l2/var/cache/.wh..wh..opq"
echo new >"$mk/l2/var/cache/new"
: >"$mk/l2/.wh.bin"
tar -C "$mk/l1" -cf "$mk/out/layer1.tar" .
tar -C "$mk/l2" -cf "$mk/out/layer2.tar" .
cat >"$mk/out/config.json" <<'EOF'
{"architecture":"amd64","os":"linux","config":{"Cmd":["/bin/tool"],"WorkingDir":"/etc","Env":["A=1"]},
 "rootfs":{"type":"layers","diff_ids":[]}}
EOF
echo '[{"Config":"config.json","RepoTags":["wh:1"],"Layers":["layer1.tar","layer2.tar"]}]' \
	>"$mk/out/manifest.json"
tar -C "$mk/out" -cf "$TMP/wh.tar" manifest.json config.json layer1.tar layer2.tar
if clbsd image load "$TMP/wh.tar" >/dev/null; then
	wr="$ROOT/images/$(img_field wh:1 id)/rootfs"
	[ ! -e "$wr/etc/motd" ] && [ -f "$wr/etc/keep" ] && [ ! -e "$wr/etc/.wh.motd" ] &&
		ok whiteout_removes || fail whiteout_removes "$(ls -a "$wr/etc")"
	[ ! -e "$wr/var/cache/deep" ] && [ -f "$wr/var/cache/new" ] && [ ! -e "$wr/var/cache/.wh..wh..opq" ] &&
		ok opaque_dir || fail opaque_dir "$(ls -a "$wr/var/cache")"
	[ ! -e "$wr/bin" ] && ok whiteout_dir || fail whiteout_dir "bin is still there"
	[ "$(img_field wh:1 config.workdir) $(img_field wh:1 config.env)" = '/etc ["A=1"]' ] &&
		ok docker_config || fail docker_config "$(img_field wh:1 config)"
else
	fail whiteout_removes "load failed"
fi

# ---- escapes are refused and leave nothing ----
n_images() { find "$ROOT/images" -mindepth 1 -maxdepth 1 | wc -l; }
n_before=$(n_images)
python3 - "$mk/evil1.tar" <<'EOF'
import io, sys, tarfile
with tarfile.open(sys.argv[1], "w") as t:
    i = tarfile.TarInfo("../../../escaped-oci-test"); d = b"pwned\n"; i.size = len(d)
    t.addfile(i, io.BytesIO(d))
EOF
mkdir -p "$mk/e1"
cp "$mk/evil1.tar" "$mk/e1/layer.tar"
cp "$mk/out/config.json" "$mk/e1/config.json"
echo '[{"Config":"config.json","RepoTags":["evil:1"],"Layers":["layer.tar"]}]' >"$mk/e1/manifest.json"
tar -C "$mk/e1" -cf "$TMP/evil1.tar" manifest.json config.json layer.tar
out=$(clbsd image load "$TMP/evil1.tar" 2>&1)
rc=$?
[ $rc -ne 0 ] && ! clbsd image inspect evil:1 >/dev/null 2>&1 && ok dotdot_refused ||
	fail dotdot_refused "status $rc: $out"
case "$out" in *outside*) ok dotdot_says_why ;; *) fail dotdot_says_why "$out" ;; esac
# A symlink to outside in one layer, a file through it in the next.
mkdir -p "$TMP/outside" "$mk/s1" "$mk/s2/esc" "$mk/e2"
ln -s "$TMP/outside" "$mk/s1/esc"
echo pwned >"$mk/s2/esc/pwned"
tar -C "$mk/s1" -cf "$mk/e2/layer1.tar" esc
tar -C "$mk/s2" -cf "$mk/e2/layer2.tar" esc/pwned
cp "$mk/out/config.json" "$mk/e2/config.json"
echo '[{"Config":"config.json","RepoTags":["evil:2"],"Layers":["layer1.tar","layer2.tar"]}]' \
	>"$mk/e2/manifest.json"
tar -C "$mk/e2" -cf "$TMP/evil2.tar" manifest.json config.json layer1.tar layer2.tar
out=$(clbsd image load "$TMP/evil2.tar" 2>&1)
[ ! -e "$TMP/outside/pwned" ] && ! clbsd image inspect evil:2 >/dev/null 2>&1 &&
	ok symlink_escape_refused || fail symlink_escape_refused "$out"
# An archive whose manifest names a file outside it.
mkdir -p "$mk/e3"
cp "$mk/out/config.json" "$mk/e3/config.json"
echo '[{"Config":"config.json","RepoTags":["evil:3"],"Layers":["../../../../etc/passwd"]}]' \
	>"$mk/e3/manifest.json"
tar -C "$mk/e3" -cf "$TMP/evil3.tar" manifest.json config.json
! clbsd image load "$TMP/evil3.tar" >/dev/null 2>&1 && ok manifest_escape_refused ||
	fail manifest_escape_refused "loaded"
[ ! -e /escaped-oci-test ] && [ ! -e "$ROOT/escaped-oci-test" ] && ok nothing_escaped ||
	fail nothing_escaped "a file escaped"
[ "$(n_images)" = "$n_before" ] && ! staging_left && ok failed_loads_leave_nothing ||
	fail failed_loads_leave_nothing "$(ls -a "$ROOT/images")"
echo "not an archive" >"$TMP/junk"
clbsd image load "$TMP/junk" >/dev/null 2>&1
[ $? -eq 2 ] && ok junk_refused || fail junk_refused "status $?"
clbsd image load >/dev/null 2>&1
[ $? -eq 2 ] && ok load_usage || fail load_usage "status $?"

# ---- help and usage errors ----
help_ok=1
for c in "image export" "image load" "image pull" "image tag" "image prune" pull load; do
	# shellcheck disable=SC2086 # the command is two words
	clbsd $c --help | grep -q "^Usage: clbsd $c" || { help_ok=0; fail help "$c --help"; }
	# shellcheck disable=SC2086
	clbsd $c a b c >/dev/null 2>&1
	[ $? -eq 2 ] || { help_ok=0; fail usage_exit_2 "$c a b c"; }
done
[ $help_ok = 1 ] && ok help_and_usage_errors

# ---- tag, prune, rm ----
clbsd image tag back:1 also:2 && [ "$(img_field also:2 id)" = "$(img_field back:1 id)" ] &&
	ok tag || fail tag "also:2 is not back:1"
clbsd image tag nosuch x:1 >/dev/null 2>&1
[ $? -eq 1 ] && ok tag_missing_fails || fail tag_missing_fails "status $?"
clbsd image tag back:1 'Bad Name' >/dev/null 2>&1
[ $? -eq 2 ] && ok tag_usage || fail tag_usage "status $?"
clbsd run -d --name user back:1 sleep 300 >/dev/null
clbsd image rm back:1 >/dev/null 2>&1 && ok rm_one_of_two_names || fail rm_one_of_two_names "refused"
clbsd image rm also:2 >/dev/null 2>&1 && fail rm_refuses_in_use "removed an image in use" ||
	ok rm_refuses_in_use
pruned=$(clbsd --json image prune | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["removed"]))')
[ "$pruned" = 0 ] && clbsd image inspect also:2 >/dev/null && ok prune_keeps_named ||
	fail prune_keeps_named "pruned $pruned"
clbsd rm -f user >/dev/null
clbsd images | grep -q "sha256:" && ok images_show_digest || fail images_show_digest "$(clbsd images)"

# ---- pull from a registry on loopback ----
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$TMP/registry"
cat >"$TMP/registry.yml" <<EOF
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $TMP/registry
http:
  addr: 127.0.0.1:$port
EOF
# nsenter execs the registry (no fork), so $! is the registry's own pid.
nsenter -t "$DAEMON_PID" -n docker-registry serve "$TMP/registry.yml" >"$TMP/registry.log" 2>&1 &
REG_PID=$!
if wait_until 10 inside curl -sf "http://127.0.0.1:$port/v2/" -o /dev/null; then
	inside skopeo copy -q --dest-tls-verify=false "oci-archive:$TMP/forge.tar" \
		"docker://127.0.0.1:$port/test/forge:1" || fail push "skopeo copy failed"
	out=$(clbsd pull "127.0.0.1:$port/test/forge:1" 2>"$TMP/pull.err")
	same_tree forge test/forge:1 && ok pull_same_files || fail pull_same_files "$out $(cat "$TMP/pull.err")"
	grep -q "layer 1/1" "$TMP/pull.err" && ok pull_progress || fail pull_progress "$(cat "$TMP/pull.err")"
	case "$(img_field test/forge:1 source)" in
	"127.0.0.1:$port/test/forge@$digest") ok pull_source_digest ;;
	*) fail pull_source_digest "$(img_field test/forge:1 source), pushed $digest" ;;
	esac
	[ "$(clbsd run --rm test/forge:1 echo pulled)" = pulled ] && ok pull_runs || fail pull_runs "run failed"
	clbsd pull --name bydigest:1 "127.0.0.1:$port/test/forge@$digest" >/dev/null 2>&1 &&
		same_tree forge bydigest:1 && ok pull_by_digest || fail pull_by_digest "failed"
	clbsd pull "127.0.0.1:$port/test/nothing:1" >/dev/null 2>"$TMP/pull.err"
	[ $? -eq 1 ] && grep -q "404" "$TMP/pull.err" && ok pull_missing_fails ||
		fail pull_missing_fails "$(cat "$TMP/pull.err")"
	# Docker schema 2, as docker push writes it.
	inside skopeo copy -q --dest-tls-verify=false --format v2s2 "oci-archive:$TMP/forge.tar" \
		"docker://127.0.0.1:$port/test/v2s2:1" &&
		clbsd pull "127.0.0.1:$port/test/v2s2:1" >/dev/null 2>&1 && same_tree forge test/v2s2:1 &&
		ok pull_docker_schema2 || fail pull_docker_schema2 "failed"
else
	fail registry "docker-registry did not answer: $(tail -3 "$TMP/registry.log")"
fi
# A registry that wants a Bearer token (a small stand-in serving an OCI
# layout): the pull must fetch a token for repository:REPO:pull from the
# realm the challenge names and send it.
skopeo copy -q "oci-archive:$TMP/forge.tar" "oci:$TMP/tokreg:1"
cat >"$TMP/tokreg.py" <<'EOF'
import hashlib, http.server, json, os, sys
root, port = sys.argv[1], int(sys.argv[2])
TOKEN = "t0k3n"
class H(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a): pass
    def send(self, code, body=b"", ctype="application/json", extra=()):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in extra: self.send_header(k, v)
        self.end_headers(); self.wfile.write(body)
    def do_GET(self):
        if self.path.startswith("/token?"):
            q = dict(p.split("=", 1) for p in self.path.split("?", 1)[1].split("&"))
            ok = q.get("service") == "fake" and q.get("scope") == "repository%3Asecret%2Fforge%3Apull"
            return self.send(200 if ok else 403, json.dumps({"token": TOKEN} if ok else {}).encode())
        if self.headers.get("Authorization") != "Bearer " + TOKEN:
            ch = 'Bearer realm="http://127.0.0.1:%d/token",service="fake",scope="repository:secret/forge:pull"' % port
            return self.send(401, b'{"errors":[]}', extra=[("WWW-Authenticate", ch)])
        if self.path == "/v2/": return self.send(200, b"{}")
        parts = self.path.split("/")
        if self.path.startswith("/v2/secret/forge/manifests/"):
            ref = parts[-1]
            if not ref.startswith("sha256:"):
                ref = json.load(open(os.path.join(root, "index.json")))["manifests"][0]["digest"]
            data = open(os.path.join(root, "blobs/sha256", ref[7:]), "rb").read()
            return self.send(200, data, json.loads(data)["mediaType"])
        if self.path.startswith("/v2/secret/forge/blobs/sha256:"):
            p = os.path.join(root, "blobs/sha256", parts[-1][7:])
            if os.path.exists(p): return self.send(200, open(p, "rb").read(), "application/octet-stream")
        self.send(404, b'{"errors":[{"code":"NOT_FOUND"}]}')
http.server.ThreadingHTTPServer(("127.0.0.1", port), H).serve_forever()
EOF
tport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
nsenter -t "$DAEMON_PID" -n python3 "$TMP/tokreg.py" "$TMP/tokreg" "$tport" >"$TMP/tokreg.log" 2>&1 &
TOKREG_PID=$!
if wait_until 10 inside curl -s "http://127.0.0.1:$tport/v2/" -o /dev/null; then
	clbsd pull "127.0.0.1:$tport/secret/forge:1" >/dev/null 2>"$TMP/pull.err" &&
		same_tree forge secret/forge:1 && ok pull_bearer_token ||
		fail pull_bearer_token "$(cat "$TMP/pull.err" "$TMP/tokreg.log")"
else
	fail pull_bearer_token "the token registry did not start: $(cat "$TMP/tokreg.log")"
fi
kill "$TOKREG_PID" 2>/dev/null
wait "$TOKREG_PID" 2>/dev/null
TOKREG_PID=""

# Plain http only for loopback: another host is tried over https only.
out=$(clbsd pull "10.255.255.1:5000/x/y:1" 2>&1)
case "$out" in *"only used for loopback"*) ok http_only_loopback ;; *) fail http_only_loopback "$out" ;; esac
clbsd pull 'NOT A REF' >/dev/null 2>&1
[ $? -eq 2 ] && ok pull_usage || fail pull_usage "status $?"

# ---- docker: skopeo into a dockerd, docker run, docker save back ----
start_dockerd() {
	command -v dockerd >/dev/null && command -v docker >/dev/null || return 1
	dockerd --data-root "$TMP/docker" --exec-root "$TMP/docker-exec" --pidfile "$TMP/docker.pid" \
		-H "unix://$DOCKER_SOCK" --bridge none --iptables=false --ip6tables=false \
		>"$TMP/dockerd.log" 2>&1 &
	DOCKERD_PID=$!
	wait_until 30 env DOCKER_HOST="unix://$DOCKER_SOCK" docker info >/dev/null 2>&1
}
if start_dockerd; then
	export DOCKER_HOST="unix://$DOCKER_SOCK"
	skopeo copy -q --dest-daemon-host "$DOCKER_HOST" "oci-archive:$TMP/forge.tar" \
		"docker-daemon:clbsd-oci-$T_ID:1" && ok skopeo_to_docker || fail skopeo_to_docker "copy failed"
	[ "$(docker image inspect -f '{{.Id}}' "clbsd-oci-$T_ID:1")" = "sha256:$forge_id" ] &&
		ok docker_same_id || fail docker_same_id "$(docker image inspect -f '{{.Id}}' "clbsd-oci-$T_ID:1")"
	docker run --rm --network none "clbsd-oci-$T_ID:1" true && ok docker_run ||
		fail docker_run "docker run failed"
	[ "$(docker run --rm --network none "clbsd-oci-$T_ID:1" sh -c 'echo $PATH')" = \
		/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin ] && ok docker_sees_env ||
		fail docker_sees_env "PATH differs"
	docker save -o "$TMP/saved.tar" "clbsd-oci-$T_ID:1" &&
		clbsd image load --name saved:1 "$TMP/saved.tar" >/dev/null && same_tree forge saved:1 &&
		ok docker_save_load || fail docker_save_load "failed"
	unset DOCKER_HOST
else
	skip docker "no dockerd could be started here: $(tail -2 "$TMP/dockerd.log" 2>/dev/null)"
fi
! staging_left && ok no_staging_left || fail no_staging_left "$(ls -a "$ROOT/images")"
t_done
