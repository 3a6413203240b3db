#!/bin/bash
# Bad input exits 2 with a clear one-line reason and makes nothing on disk.
. "$(dirname "$0")/../lib.sh"
t_setup
t_forge
before=$(find "$ROOT/containers" | sort)

expect2() {
	local name=$1 want=$2
	shift 2
	local out rc
	out=$(clbsd "$@" 2>&1 >/dev/null)
	rc=$?
	if [ $rc -ne 2 ]; then
		fail "$name" "exit $rc (want 2): $out"
	elif ! echo "$out" | grep -qi -- "$want"; then
		fail "$name" "message does not mention '$want': $out"
	else
		ok "$name"
	fi
}
expect2 bad_name "\.\./x" run --name ../x forge true
expect2 unknown_image "nosuchimage" run nosuchimage true
expect2 bad_size "12Q" run --memory 12Q forge true
expect2 relative_volume "relative" run -v relative/dir:/data forge true
expect2 traversing_volume "\.\." run -v /tmp/../etc:/data forge true
expect2 bad_pids "pids" run --pids many forge true
expect2 bad_restart "restart" run --restart sometimes forge true
expect2 unknown_flag "unknown\|unrecognized\|invalid" run --frobnicate forge true
expect2 missing_image "image\|argument\|usage" run
expect2 unknown_command "nonsense" nonsense
expect2 create_bad_name "\.\./x" create --name ../x forge true
after=$(find "$ROOT/containers" | sort)
[ "$before" = "$after" ] && ok nothing_created || fail nothing_created "$(diff <(echo "$before") <(echo "$after"))"
# The API refuses it too, with a 400 and a JSON error body.
code=$(curl -s -o "$TMP/body" -w '%{http_code}' --unix-socket "$SOCK" -X POST \
	-H 'Content-Type: application/json' -d '{"image":"forge","name":"../x"}' http://localhost/v1/containers)
[ "$code" = 400 ] && grep -q '"invalid_argument"' "$TMP/body" && ok api_400_json ||
	fail api_400_json "code $code body $(cat "$TMP/body")"
# Routing (docs/api.md, Errors): an unknown path is a 404, a known path with
# another method a 405 naming the methods it takes in Allow, and a container
# route for a container that does not exist a 404 naming it.
code=$(curl -s -o "$TMP/body" -D "$TMP/head" -w '%{http_code}' --unix-socket "$SOCK" \
	http://localhost/v1/containers/web/start)
[ "$code" = 405 ] && grep -qi '^Allow: POST' "$TMP/head" && grep -q '"invalid_argument"' "$TMP/body" &&
	ok api_405_allow || fail api_405_allow "code $code head $(cat "$TMP/head") body $(cat "$TMP/body")"
code=$(curl -s -o "$TMP/body" -D "$TMP/head" -w '%{http_code}' --unix-socket "$SOCK" -X POST \
	http://localhost/v1/images/forge:latest)
[ "$code" = 405 ] && grep -qi '^Allow: GET, DELETE' "$TMP/head" && ok api_405_allow_image ||
	fail api_405_allow_image "code $code head $(cat "$TMP/head") body $(cat "$TMP/body")"
code=$(curl -s -o "$TMP/body" -w '%{http_code}' --unix-socket "$SOCK" -X POST \
	http://localhost/v1/containers/nosuch/frobnicate)
[ "$code" = 404 ] && grep -q 'no such endpoint /v1/containers/nosuch/frobnicate' "$TMP/body" &&
	ok api_404_endpoint || fail api_404_endpoint "code $code body $(cat "$TMP/body")"
code=$(curl -s -o "$TMP/body" -w '%{http_code}' --unix-socket "$SOCK" -X POST \
	http://localhost/v1/containers/nosuch/stop)
[ "$code" = 404 ] && grep -q 'no container \\"nosuch\\"' "$TMP/body" &&
	ok api_404_names_container || fail api_404_names_container "code $code body $(cat "$TMP/body")"
clbsd run --help | grep -q -- '--memory' && ok help_lists_flags || fail help_lists_flags "no --memory in help"
if clbsd run --help >/dev/null; then ok help_exits_0; else fail help_exits_0 "nonzero"; fi
# The socket is root-equivalent: other users are kept out, with a hint.
if command -v setpriv >/dev/null; then
	chmod 755 "$TMP" "$RUN"
	out=$(setpriv --reuid 65534 --regid 65534 --clear-groups "$BUILD/clbsd" --socket "$SOCK" info 2>&1)
	rc=$?
	[ $rc -eq 1 ] && echo "$out" | grep -q 'group clbsd' && ok non_root_refused ||
		fail non_root_refused "rc=$rc: $out"
	# Even through a socket someone opened up, the daemon checks the peer.
	chmod 666 "$SOCK"
	out=$(setpriv --reuid 65534 --regid 65534 --clear-groups "$BUILD/clbsd" --socket "$SOCK" info 2>&1)
	rc=$?
	chmod 660 "$SOCK"
	[ $rc -eq 1 ] && echo "$out" | grep -q 'may not use this socket' && ok peer_credentials_checked ||
		fail peer_credentials_checked "rc=$rc: $out"
	perm=$(stat -c '%a' "$SOCK")
	[ "$perm" = 660 ] && ok socket_mode_0660 || fail socket_mode_0660 "mode $perm"
else
	skip non_root_refused "setpriv is not installed"
fi
t_done
