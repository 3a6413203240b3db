#!/bin/bash
# clbsd build: a multi-stage Cblockfile with RUN in build containers, COPY
# (--from a stage too), ADD, ENV, WORKDIR, USER, ARG, LABEL, EXPOSE, CMD;
# the result runs with its ENV, WORKDIR and USER; an unchanged rebuild runs
# no step; a changed source reruns only what follows it; a broken file
# names its position; a failed build leaves no image and no staging.
. "$(dirname "$0")/../lib.sh"
t_setup
t_forge
CTX="$TMP/ctx"
mkdir -p "$CTX"
echo hello-from-context >"$CTX/hello.txt"
echo added >"$CTX/added.txt"
cat >"$CTX/Cblockfile" <<'CBF'
# A builder stage, then the image.
FROM forge AS builder
RUN echo built-in-stage > /out && \
    echo "second line"
WORKDIR /app
COPY hello.txt .
ENV GREETING=hi

from forge
ARG VER=1
COPY --from=builder /out /out
COPY --from=builder /app/hello.txt /srv/hello.txt
ADD added.txt /srv/
ENV X=1 Y="two words"
WORKDIR /srv
RUN mkdir -p /srv/data && chown 65534:65534 /srv/data
USER 65534:65534
LABEL version=$VER
EXPOSE 8080/tcp
CMD ["sh", "-c", "echo $X $(cat /out) $(pwd) $(id -u) $(cat hello.txt) $(cat added.txt)"]
CBF

out=$(clbsd build -t app:1 "$CTX" 2>&1)
rc=$?
[ $rc -eq 0 ] && echo "$out" | grep -q "built app:1" && ok build_succeeds || fail build_succeeds "rc=$rc $out"
echo "$out" | grep -q "second line" && ok run_output_streamed || fail run_output_streamed "$out"
echo "$out" | grep -q "step 1/15: RUN echo built-in-stage.*(running)" && echo "$out" | grep -q "done in" &&
	ok progress_reported || fail progress_reported "$out"
got=$(clbsd run --rm app:1 2>&1)
[ "$got" = "1 built-in-stage /srv 65534 hello-from-context added" ] && ok env_workdir_user_at_run_time ||
	fail env_workdir_user_at_run_time "got '$got'"
img=$(clbsd --json image inspect app:1)
echo "$img" | python3 -c 'import json,sys
c=json.load(sys.stdin)[0]["config"]
assert c["labels"]["version"]=="1", c
assert "8080/tcp" in c["exposed"], c
assert "Y=two words" in c["env"], c' 2>/dev/null && ok config_has_label_expose_env || fail config_has_label_expose_env "$img"

# Unchanged: no step runs.
out=$(clbsd build -t app:1 "$CTX" 2>&1)
! echo "$out" | grep -q "(running)" && echo "$out" | grep -q "(cached)" && ok unchanged_rebuild_runs_nothing ||
	fail unchanged_rebuild_runs_nothing "$out"

# A changed source: the COPY of it and what follows run, the RUN before it does not.
echo changed >"$CTX/hello.txt"
out=$(clbsd build -t app:1 "$CTX" 2>&1)
echo "$out" | grep -q "step 1/15: RUN echo built-in-stage.*(cached)" &&
	echo "$out" | grep -q "step 2/15: WORKDIR /app (cached)" &&
	echo "$out" | grep -q "step 3/15: COPY hello.txt .*(running)" && ok changed_source_reruns_from_there ||
	fail changed_source_reruns_from_there "$out"
[ "$(clbsd run --rm app:1 2>&1 | awk '{print $5}')" = changed ] && ok rebuilt_image_has_change ||
	fail rebuilt_image_has_change "$(clbsd run --rm app:1 2>&1)"

# A build argument.
clbsd build -t app:2 --build-arg VER=7 "$CTX" >/dev/null 2>&1
[ "$(clbsd --json image inspect app:2 | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["config"]["labels"]["version"])')" = 7 ] &&
	ok build_arg_applies || fail build_arg_applies "$(clbsd --json image inspect app:2 | head -c 300)"

# A broken Cblockfile names its position; nothing is made.
printf 'FROM forge\nRUN true\nCOPPY a b\n' >"$TMP/bad.cbf"
before=$(clbsd --json images | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
out=$(clbsd build -t bad:1 -f "$TMP/bad.cbf" "$CTX" 2>&1)
rc=$?
[ $rc -ne 0 ] && echo "$out" | grep -q "bad.cbf:3:1:" && ok broken_file_names_position || fail broken_file_names_position "rc=$rc $out"

# A failing RUN: no image, no staging left.
printf 'FROM forge\nRUN echo partial > /p\nRUN exit 3\n' >"$TMP/fail.cbf"
out=$(clbsd build -t failed:1 -f "$TMP/fail.cbf" "$CTX" 2>&1)
rc=$?
after=$(clbsd --json images | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
[ $rc -ne 0 ] && echo "$out" | grep -q "exit status 3" && ! clbsd image inspect failed:1 >/dev/null 2>&1 &&
	[ "$before" = "$after" ] && [ -z "$(ls -d "$ROOT"/images/.staging-* 2>/dev/null)" ] &&
	ok failed_build_leaves_no_image || fail failed_build_leaves_no_image "rc=$rc $out before=$before after=$after"
[ -z "$(ls "$ROOT/build/tmp" 2>/dev/null)" ] && ok failed_build_leaves_no_scratch ||
	fail failed_build_leaves_no_scratch "$(ls "$ROOT/build/tmp")"

# --no-cache runs everything again.
out=$(clbsd build --no-cache -t app:1 "$CTX" 2>&1)
! echo "$out" | grep -q "(cached)" && ok no_cache_reruns || fail no_cache_reruns "$out"

# forge --from-host: host programs with their libraries, offline.
clbsd forge --from-host --name hostcat:1 /bin/cat >/dev/null 2>"$TMP/err" || fail forge_from_host "$(cat "$TMP/err")"
out=$(clbsd run --rm hostcat:1 /etc/passwd 2>&1)
echo "$out" | grep -q "^root:" && ok forge_from_host_runs || fail forge_from_host_runs "$out"
clbsd forge --from-host /bin/cat >/dev/null 2>&1
[ $? -eq 2 ] && ok forge_from_host_needs_name || fail forge_from_host_needs_name "status not 2"

# ADD: a local archive is extracted, a URL downloaded, an archive URL both.
CTX3="$TMP/ctx3"
mkdir -p "$CTX3/pkg/sub" "$TMP/www"
echo in-archive >"$CTX3/pkg/sub/file"
tar -C "$CTX3/pkg" -czf "$CTX3/pkg.tar.gz" sub
echo remote-file >"$TMP/www/remote.txt"
tar -C "$CTX3/pkg" -czf "$TMP/www/remote.tar.gz" sub
nsenter -t "$DAEMON_PID" -n ip link set lo up
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
nsenter -t "$DAEMON_PID" -n python3 -m http.server "$port" --bind 127.0.0.1 --directory "$TMP/www" \
	>/dev/null 2>&1 &
WWW=$!
wait_until 5 nsenter -t "$DAEMON_PID" -n curl -s -o /dev/null "http://127.0.0.1:$port/remote.txt"
cat >"$CTX3/Cblockfile" <<CBF
FROM forge
ADD pkg.tar.gz /opt/
ADD http://127.0.0.1:$port/remote.txt /srv/remote.txt
ADD http://127.0.0.1:$port/remote.tar.gz /unpacked
CMD ["sh", "-c", "cat /opt/sub/file /srv/remote.txt /unpacked/sub/file"]
CBF
out=$(clbsd build -t adds:1 "$CTX3" 2>&1)
kill "$WWW" 2>/dev/null
wait "$WWW" 2>/dev/null
got=$(clbsd run --rm adds:1 2>&1 | tr '\n' ' ')
[ "$got" = "in-archive remote-file in-archive " ] && ok add_archive_and_url || fail add_archive_and_url "$out / $got"

# Declared: (image NAME :build DIR) is built by the reconciler, and a
# changed context rebuilds it and recreates the containers that use it.
CTX2="$TMP/ctx2"
mkdir -p "$CTX2"
echo v1 >"$CTX2/version"
printf 'FROM forge\nCOPY version /version\nCMD ["sh", "-c", "cat /version; sleep 3600"]\n' >"$CTX2/Cblockfile"
cat >"$CONF" <<CONF
(image site :build "$CTX2" :args (("UNUSED" . "1")))
(container web :image "site")
CONF
clbsd apply >/dev/null 2>&1
wait_until 20 sh -c "$BUILD/clbsd --socket $SOCK logs web 2>/dev/null | grep -q v1" &&
	ok declared_image_built_and_run || fail declared_image_built_and_run "$(clbsd ps -a) $(clbsd images)"
# An image's HEALTHCHECK is the container's default check.
CTX4="$TMP/ctx4"
mkdir -p "$CTX4"
printf 'FROM forge\nHEALTHCHECK --interval=1s --timeout=1s --retries=1 CMD ["test", "-e", "/ready"]\nCMD ["sleep", "3600"]\n' >"$CTX4/Cblockfile"
cat >>"$CONF" <<CONF
(image hc :build "$CTX4")
(container checked :image "hc")
CONF
clbsd apply >/dev/null 2>&1
hs() { clbsd --json inspect checked 2>/dev/null | python3 -c 'import json,sys; h=json.load(sys.stdin)[0]["health"]; print(h["status"] if h else "none")'; }
wait_until 20 sh -c "$BUILD/clbsd --socket $SOCK --json inspect checked 2>/dev/null | grep -q '\"unhealthy\"'"
[ "$(hs)" = unhealthy ] && ok image_healthcheck_fails_without_file || fail image_healthcheck_fails_without_file "$(hs)"
clbsd exec checked touch /ready
wait_until 10 sh -c "$BUILD/clbsd --socket $SOCK --json inspect checked 2>/dev/null | grep -q '\"healthy\"'"
[ "$(hs)" = healthy ] && ok image_healthcheck_is_default || fail image_healthcheck_is_default "$(hs)"
echo v2 >"$CTX2/version"
clbsd apply >/dev/null 2>&1
wait_until 20 sh -c "$BUILD/clbsd --socket $SOCK logs web 2>/dev/null | grep -q v2" &&
	ok changed_context_rebuilds_and_recreates || fail changed_context_rebuilds_and_recreates "$(clbsd logs web 2>&1) $(clbsd plan 2>&1)"
: >"$CONF"
clbsd apply >/dev/null 2>&1

# Usage errors exit 2.
clbsd build "$CTX" >/dev/null 2>&1
[ $? -eq 2 ] && ok build_needs_tag || fail build_needs_tag "status not 2"
t_done
