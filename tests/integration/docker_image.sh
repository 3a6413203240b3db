#!/bin/bash
# Images through dockerd: `clbsd pull --kind docker` from a registry on
# loopback (Debian's docker-registry), `clbsd build --kind docker` of a
# Dockerfile (dockerd builds) and of a Cblockfile (clbsd builds, dockerd
# loads the export), a declared (image NAME :build DIR :kind docker), and
# `clbsd images --kind docker`; the images run as docker containers.
. "$(dirname "$0")/../lib.sh"

IMG="clbsd-bb-$$:1"
REG_PID=""
t_before_start() { t_docker_before_start "$IMG"; }
img_cleanup() {
	if [ -n "$DAEMON_PID" ] && kill -0 "$DAEMON_PID" 2>/dev/null && [ -n "$DOCKERD_PID" ]; then
		echo "(host :docker (:endpoint \"unix://$DOCKER_SOCK\"))" >"$CONF"
		clbsd apply >/dev/null 2>&1
		local n
		for n in $(clbsd ps -a --format '{{.Name}}' 2>/dev/null); do
			clbsd rm -f "$n" >/dev/null 2>&1
		done
	fi
	if [ -n "$REG_PID" ]; then
		kill "$REG_PID" 2>/dev/null
		wait "$REG_PID" 2>/dev/null
	fi
	if [ -n "$DOCKERD_PID" ]; then
		dk ps -aq | while read -r id; do dk rm -f "$id" >/dev/null 2>&1; done
		t_dockerd_stop
		grep -q " $TMP/d" /proc/mounts && echo "FAIL $T_NAME.cleanup: dockerd left mounts"
	fi
}
t_setup
trap 'rc=$?; img_cleanup; (exit $rc); t_cleanup' EXIT

if ! command -v docker-registry >/dev/null; then
	skip registry "docker-registry is not installed (scripts/deps.sh check installs it)"
else
	# ---- pull through dockerd from a registry on loopback ----
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
	docker-registry serve "$TMP/registry.yml" >"$TMP/registry.log" 2>&1 &
	REG_PID=$!
	REF="127.0.0.1:$port/test/bb:1"
	# dockerd trusts 127.0.0.0/8 over plain http (its default --insecure-registry).
	if wait_until 10 curl -sf "http://127.0.0.1:$port/v2/" -o /dev/null &&
		dk tag "$IMG" "$REF" && dk push -q "$REF" >/dev/null 2>&1 && dk rmi "$REF" >/dev/null; then
		out=$(clbsd pull --kind docker "$REF" 2>"$TMP/pull.err")
		rc=$?
		[ $rc -eq 0 ] && [ -n "$(dk images -q "$REF")" ] && echo "$out" | grep -q "into dockerd" &&
			ok pull_into_dockerd || fail pull_into_dockerd "rc=$rc $out $(cat "$TMP/pull.err")"
		grep -q "^done: $REF" "$TMP/pull.err" && grep -qi "pull" "$TMP/pull.err" &&
			ok pull_progress_streamed || fail pull_progress_streamed "$(cat "$TMP/pull.err")"
		[ -z "$(clbsd images -q "$REF" 2>/dev/null | head -1)" ] ||
			! clbsd images | grep -q "test/bb" && ok pull_not_in_clbsd_store ||
			fail pull_not_in_clbsd_store "$(clbsd images)"
		[ "$(clbsd run --rm --kind docker --network none "$REF" echo pulled-runs 2>&1)" = pulled-runs ] &&
			ok pulled_image_runs || fail pulled_image_runs "$(clbsd run --rm --kind docker --network none "$REF" echo x 2>&1)"
		clbsd pull --kind docker "127.0.0.1:$port/test/nothing:1" >/dev/null 2>"$TMP/pull.err"
		rc=$?
		[ $rc -eq 1 ] && grep -q "nothing" "$TMP/pull.err" && grep -q "^clbsd: " "$TMP/pull.err" &&
			grep -q "^failed: " "$TMP/pull.err" && ok pull_missing_fails ||
			fail pull_missing_fails "rc=$rc $(cat "$TMP/pull.err")"
	else
		fail registry "the registry or the push failed: $(tail -3 "$TMP/registry.log")"
	fi
fi
clbsd pull --kind docker --name x:1 "$IMG" >/dev/null 2>"$TMP/e"
[ $? -eq 2 ] && grep -q "name" "$TMP/e" && ok pull_name_refused || fail pull_name_refused "$(cat "$TMP/e")"

# ---- build a Dockerfile with dockerd ----
mkdir -p "$TMP/ctx/sub"
echo "from-the-context" >"$TMP/ctx/sub/file.txt"
ln -s sub/file.txt "$TMP/ctx/link"
cat >"$TMP/ctx/Dockerfile" <<EOF
FROM $IMG
ARG GREETING=none
COPY sub/file.txt /file.txt
RUN echo "\$GREETING" >/greeting && echo built-step-output
CMD ["cat", "/file.txt", "/greeting"]
EOF
out=$(clbsd build --kind docker --network none --build-arg GREETING=hi -t dbuilt:1 "$TMP/ctx" 2>&1)
rc=$?
[ $rc -eq 0 ] && echo "$out" | grep -q "built dbuilt:1" && [ -n "$(dk images -q dbuilt:1)" ] &&
	ok build_dockerfile || fail build_dockerfile "rc=$rc $out"
echo "$out" | grep -q built-step-output && ok build_output_streamed || fail build_output_streamed "$out"
got=$(clbsd run --rm --kind docker --network none dbuilt:1 2>&1 | tr '\n' ' ')
[ "$got" = "from-the-context hi " ] && ok built_image_runs || fail built_image_runs "$got"
# A failing step fails the build, with dockerd's message, and makes nothing.
mkdir -p "$TMP/bad"
printf 'FROM %s\nRUN exit 7\n' "$IMG" >"$TMP/bad/Dockerfile"
out=$(clbsd build --kind docker --network none -t dbad:1 "$TMP/bad" 2>&1)
rc=$?
[ $rc -eq 1 ] && echo "$out" | grep -q "7" && [ -z "$(dk images -q dbad:1)" ] &&
	ok build_failure_reported || fail build_failure_reported "rc=$rc $out"
# A Dockerfile outside the context is refused (dockerd reads it from the tar).
printf 'FROM %s\n' "$IMG" >"$TMP/Outside.Dockerfile"
out=$(clbsd build --kind docker -f "$TMP/Outside.Dockerfile" -t dout:1 "$TMP/ctx" 2>&1)
rc=$?
[ $rc -ne 0 ] && echo "$out" | grep -q "outside the context" && ok build_file_outside_refused ||
	fail build_file_outside_refused "$out"

# ---- a Cblockfile: clbsd builds, dockerd loads the export ----
mkdir -p "$TMP/cctx"
echo "cblock-file" >"$TMP/cctx/hello.txt"
cat >"$TMP/cctx/Cblockfile" <<EOF
FROM forge
COPY hello.txt /hello.txt
CMD ["cat", "/hello.txt"]
EOF
t_forge
out=$(clbsd build --kind docker -t cbuilt:1 "$TMP/cctx" 2>&1)
rc=$?
[ $rc -eq 0 ] && [ -n "$(dk images -q cbuilt:1)" ] && echo "$out" | grep -q "loading the image into dockerd" &&
	ok build_cblockfile_loaded || fail build_cblockfile_loaded "rc=$rc $out"
got=$(clbsd run --rm --kind docker --network none cbuilt:1 2>&1)
[ "$got" = cblock-file ] && ok cblockfile_image_runs_in_docker || fail cblockfile_image_runs_in_docker "$got"

# ---- images --kind docker ----
out=$(clbsd images --kind docker)
echo "$out" | head -1 | grep -q "NAME" && echo "$out" | grep -q "dbuilt:1" &&
	echo "$out" | grep -q "cbuilt:1" && ok images_kind_docker || fail images_kind_docker "$out"
clbsd images | grep -q dbuilt && fail images_native_apart "$(clbsd images)" || ok images_native_apart

# ---- declared: (image NAME :build DIR :kind docker) ----
mkdir -p "$TMP/dctx"
printf 'FROM %s\nRUN echo declared >/what\nCMD ["cat", "/what"]\n' "$IMG" >"$TMP/dctx/Dockerfile"
cat >"$CONF" <<EOF
(host :docker (:endpoint "unix://$DOCKER_SOCK"))
(image decl :build "$TMP/dctx" :kind docker)
EOF
clbsd apply >/dev/null 2>&1
wait_until 60 sh -c "docker -H unix://$DOCKER_SOCK images -q decl:latest | grep -q ."
[ -n "$(dk images -q decl:latest)" ] && ok declared_docker_image_built ||
	fail declared_docker_image_built "$(grep -i decl "$TMP/daemon.log" | tail -5)"
"$BUILD/clbsdd" -n --config "$CONF" >/dev/null 2>"$TMP/n.err" && ok declared_config_valid ||
	fail declared_config_valid "$(cat "$TMP/n.err")"
printf '(image bad :from "x:1" :kind docker)\n' >"$TMP/bad.conf"
"$BUILD/clbsdd" -n --config "$TMP/bad.conf" >/dev/null 2>"$TMP/n.err"
rc=$?
[ $rc -ne 0 ] && grep -q "kind docker goes with :build" "$TMP/n.err" && ok declared_from_docker_refused ||
	fail declared_from_docker_refused "$(cat "$TMP/n.err")"
: >"$CONF"
echo "(host :docker (:endpoint \"unix://$DOCKER_SOCK\"))" >"$CONF"
clbsd apply >/dev/null 2>&1

t_done
