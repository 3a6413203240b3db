#!/bin/bash
# Hostile host archives (`clbsd host import`, docs/host.md "What is
# refused") and a hostile `host diff ssh://...`. Each archive is forged by
# host_forge.py with every checksum computed again (a checksum is no
# signature), so only the importer's checks of what the manifest says stand
# in the way. Each import runs with --force (the strongest the operator can
# give) and must write nothing outside this daemon's own config places,
# remove nothing, and, when it is refused, say why.
. "$(dirname "$0")/../lib.sh"
t_setup

FORGE=("python3" "$TOP/tests/security/host_forge.py" "$BUILD/tests/security/xxh128")
ARCH="$TMP/arch"
OUTSIDE="$TMP/outside"
VICTIMS="$TMP/victims"
ETC="$(dirname "$CONF")"
mkdir -p "$ARCH" "$OUTSIDE" "$VICTIMS" "$ETC/conf.d"
echo keep >"$VICTIMS/v.clbsd"
echo keep >"$VICTIMS/w.tar"
echo '(host)' >"$CONF"
clbsd apply >/dev/null

# forge NAME SPEC-JSON: the archive $ARCH/NAME.host.
forge() { printf '%s' "$2" >"$TMP/spec.json" && "${FORGE[@]}" "$ARCH/$1.host" "$TMP/spec.json"; }
# The host as it was: nothing outside, the victims there, the config and conf.d as they were.
snapshot() {
	{
		find "$OUTSIDE" "$VICTIMS" "$ETC" "$ARCH" -print0 | sort -z | xargs -0 ls -ld --time-style=+ 2>&1
		cat "$CONF" "$VICTIMS"/*
	} | md5sum
}
# refused NAME PATTERN SPEC: the import of the forged archive fails saying PATTERN and changes nothing.
refused() {
	local name=$1 pat=$2 before out rc
	forge "$name" "$3" || {
		fail "$name" "forge failed"
		return
	}
	before=$(snapshot)
	out=$(clbsd host import --force "$ARCH/$name.host" 2>&1)
	rc=$?
	rm -f "$ARCH/$name.host"
	forge "$name" "$3" # the same file again: the snapshot compares like with like
	if [ $rc -eq 0 ]; then
		fail "$name" "accepted: $out"
	elif ! grep -qi -- "$pat" <<<"$out"; then
		fail "$name" "no \"$pat\" in: $out"
	elif [ "$(snapshot)" != "$before" ]; then
		fail "$name" "the host changed: $(ls -la "$OUTSIDE" "$VICTIMS" "$ETC" "$ETC/conf.d")"
	else
		ok "$name"
	fi
	rm -f "$ARCH/$name.host"
}

# 1. The Lisp init file's destination came from the archive: any file as root.
forge lisp_init_path "$(cat <<EOF
{"members": {"config/lisp-init.lisp": "* * * * * root touch $OUTSIDE/pwned\n"},
 "manifest": {"config": [{"member": "config/lisp-init.lisp", "role": "lisp_init",
                          "path": "$OUTSIDE/cron-job"}]}}
EOF
)"
# A Lisp init file runs in the daemon's Lisp: without --allow-host-access
# it is listed and refused, and nothing is written.
out=$(clbsd host import --force "$ARCH/lisp_init_path.host" 2>&1)
rc=$?
[ $rc -ne 0 ] && grep -q "config/lisp-init.lisp: a Lisp init file" <<<"$out" &&
	grep -q -- "--allow-host-access" <<<"$out" && [ -z "$(ls -A "$OUTSIDE")" ] && [ ! -e "$ETC/cron-job" ] &&
	ok lisp_init_needs_allow_host_access || fail lisp_init_needs_allow_host_access "rc=$rc $out"
out=$(clbsd host import --force --allow-host-access "$ARCH/lisp_init_path.host" 2>&1)
rc=$?
[ -z "$(ls -A "$OUTSIDE")" ] && [ $rc -eq 0 ] && [ -f "$ETC/cron-job" ] &&
	ok lisp_init_goes_beside_this_config_only ||
	fail lisp_init_goes_beside_this_config_only "rc=$rc $out; outside: $(ls -A "$OUTSIDE"); etc: $(ls -A "$ETC")"
rm -f "$ETC/cron-job"
refused lisp_init_dotdot_name "plain file name" "$(cat <<EOF
{"members": {"config/lisp-init.lisp": "x"},
 "manifest": {"config": [{"member": "config/lisp-init.lisp", "role": "lisp_init", "path": "$OUTSIDE/.."}]}}
EOF
)"

# A configuration that runs host commands and binds host paths: listed, with
# where each is, and refused before anything is made.
HOSTILE_CONF='(host)\n(container evil :image \"forge\"\n  :volumes ((:bind \"/etc\" :path \"/h\"))\n  :on ((:start \"touch /tmp/pwned\")))\n'
refused config_binds_host_path "config/main.conf:2:[0-9]*: container evil: binds the host's /etc at /h (read-write)" "{\"members\": {\"config/main.conf\": \"$HOSTILE_CONF\"},
 \"manifest\": {\"config\": [{\"member\": \"config/main.conf\", \"role\": \"main\", \"path\": \"/x\"}]}}"
refused config_runs_host_command "hook (:on (:start ...)) runs on the host: /bin/sh -c touch /tmp/pwned" "{\"members\": {\"config/main.conf\": \"$HOSTILE_CONF\"},
 \"manifest\": {\"config\": [{\"member\": \"config/main.conf\", \"role\": \"main\", \"path\": \"/x\"}]}}"

# 2. Config member names: a prefix that is not there (a short name), a path, a wrong suffix, another CA file.
refused ca_short_member "has no place" '{"members": {"c": "x"},
 "manifest": {"config": [{"member": "c", "role": "ca", "path": "/x"}]}}'
refused confd_short_member "has no place" '{"members": {"c": "x"},
 "manifest": {"config": [{"member": "c", "role": "confd", "path": "/x"}]}}'
refused confd_member_escapes "NAME.conf" '{"members": {"config/conf.d/../../outside/x.conf": "x"},
 "manifest": {"config": [{"member": "config/conf.d/../../outside/x.conf", "role": "confd", "path": "/x"}]}}'
refused confd_member_not_conf "NAME.conf" '{"members": {"config/conf.d/run.sh": "x"},
 "manifest": {"config": [{"member": "config/conf.d/run.sh", "role": "confd", "path": "/x"}]}}'
refused confd_member_hidden "NAME.conf" '{"members": {"config/conf.d/.x.conf": "x"},
 "manifest": {"config": [{"member": "config/conf.d/.x.conf", "role": "confd", "path": "/x"}]}}'
refused ca_member_other_file "ca/ca.pem and ca/ca.key" '{"members": {"ca/../../../etc/x": "x"},
 "manifest": {"config": [{"member": "ca/../../../etc/x", "role": "ca", "path": "/x"}]}}'
# A route's TLS file goes only where the archive's configuration reads one.
refused tls_file_not_named "no :tls cert" "{\"members\": {\"tls/cert-1.pem\": \"x\"},
 \"manifest\": {\"config\": [{\"member\": \"tls/cert-1.pem\", \"role\": \"tls_cert\", \"path\": \"$OUTSIDE/cron-job\"}]}}"
TLS_CONF='(host)\n(container shop :image \"forge\" :domain \"shop.lab\" :port 80\n  :tls (:cert \"/etc/ssl/s.pem\" :key \"/etc/ssl/s.key\"))\n'
refused tls_key_at_cert_path "no :tls key" "{\"members\": {\"config/main.conf\": \"$TLS_CONF\", \"tls/key-1.pem\": \"x\"},
 \"manifest\": {\"config\": [{\"member\": \"config/main.conf\", \"role\": \"main\", \"path\": \"/x\"},
  {\"member\": \"tls/key-1.pem\", \"role\": \"tls_key\", \"path\": \"/etc/ssl/s.pem\"}]}}"
refused config_unknown_role "none of main" '{"members": {"config/main.conf": "x"},
 "manifest": {"config": [{"member": "config/main.conf", "role": "cron", "path": "/x"}]}}'

# 3. Manifest names that become stage paths and API URLs; files there must not be removed.
refused container_name_escapes "invalid name" '{"members": {"containers/../../victims/v.clbsd": "x"},
 "manifest": {"containers": [{"name": "../../victims/v", "member": "containers/../../victims/v.clbsd",
                              "kind": "native", "running": false}]}}'
refused container_member_other "invalid name" '{"members": {"containers/b.clbsd": "x"},
 "manifest": {"containers": [{"name": "a", "member": "containers/b.clbsd", "kind": "native"}]}}'
refused image_id_not_hex "invalid id" '{"members": {"images/../victims/w.tar": "x"},
 "manifest": {"images": [{"id": "../victims/w", "member": "images/../victims/w.tar", "names": ["x"]}]}}'
refused network_name_url "invalid name" '{"manifest": {"networks": [{"name": "../containers/x", "subnet": "10.9.9.0/24"}]}}'

# 4. A configuration that does not load here: every file is put back as it was.
conf_before=$(md5sum <"$CONF")
echo ';; mine' >"$ETC/conf.d/10-mine.conf"
forge bad_config '{"members": {"config/main.conf": "(host)\n;; theirs\n",
 "config/conf.d/10-mine.conf": ";; theirs\n",
 "config/conf.d/20-bad.conf": "(container bad :image \"forge\" :no-such-key 1)\n"},
 "manifest": {"config": [{"member": "config/main.conf", "role": "main", "path": "/x"},
  {"member": "config/conf.d/10-mine.conf", "role": "confd", "path": "/x"},
  {"member": "config/conf.d/20-bad.conf", "role": "confd", "path": "/x"}]}}'
out=$(clbsd host import --force "$ARCH/bad_config.host" 2>&1)
rc=$?
[ $rc -ne 0 ] && grep -q "put back" <<<"$out" && grep -qi "no-such-key" <<<"$out" &&
	[ "$(md5sum <"$CONF")" = "$conf_before" ] && [ "$(cat "$ETC/conf.d/10-mine.conf")" = ';; mine' ] &&
	[ ! -e "$ETC/conf.d/20-bad.conf" ] && clbsd plan >/dev/null 2>&1 &&
	ok config_that_does_not_load_is_put_back ||
	fail config_that_does_not_load_is_put_back "rc=$rc $out; $(ls -A "$ETC/conf.d"); $(cat "$CONF")"
rm -f "$ETC/conf.d/10-mine.conf"

# 5. host diff ssh://: one quoted command for the remote shell, `--` before
# the host. The fake ssh logs its arguments and runs the command with sh
# here, as the remote shell would (CLBSD_REMOTE: this build's clbsd).
cat >"$TMP/fakessh" <<EOF
#!/bin/sh
printf '%s\n' "\$@" >"$TMP/ssh.args"
while [ \$# -gt 1 ]; do shift; done
exec sh -c "\$1"
EOF
chmod +x "$TMP/fakessh"
export CLBSD_REMOTE="$BUILD/clbsd"
export CLBSD_SSH_COMMAND="$TMP/fakessh -x"
out=$(clbsd host diff "ssh://me@example:2222$SOCK" 2>&1)
rc=$?
[ $rc -eq 0 ] && grep -qx -- "--" "$TMP/ssh.args" && grep -qx -- "2222" "$TMP/ssh.args" &&
	grep -qx "me@example" "$TMP/ssh.args" && ok diff_ssh_runs_quoted_command ||
	fail diff_ssh_runs_quoted_command "rc=$rc $out; $(cat "$TMP/ssh.args" 2>&1)"
rm -f "$TMP/ssh.args"
out=$(clbsd host diff "ssh://example$SOCK;touch $OUTSIDE/pwned" 2>&1)
rc=$?
[ $rc -ne 0 ] && [ -z "$(ls -A "$OUTSIDE")" ] && ok diff_ssh_socket_not_a_command ||
	fail diff_ssh_socket_not_a_command "rc=$rc $out; $(ls -A "$OUTSIDE")"
rm -f "$TMP/ssh.args"
out=$(clbsd host diff "ssh://-oProxyCommand=touch $OUTSIDE/pwned2" 2>&1)
rc=$?
[ $rc -ne 0 ] && [ -z "$(ls -A "$OUTSIDE")" ] && [ ! -e "$TMP/ssh.args" ] &&
	grep -q "expected" <<<"$out" && ok diff_ssh_host_not_an_option ||
	fail diff_ssh_host_not_an_option "rc=$rc $out; $(ls -A "$OUTSIDE")"
unset CLBSD_REMOTE CLBSD_SSH_COMMAND
t_done
