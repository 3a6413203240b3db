#!/bin/bash
# Hostile archives: `clbsd import` of an edited export, and `clbsd load` of
# image archives that try to write outside, link to host files or make the
# daemon read one. Each attack must fail with a clear error, and the host
# must be unchanged: nothing written outside, the canary file neither read
# (its token never shows up, in an error or in a container's output) nor
# linked to. The archives are made by archive_forge.py, and sealed again
# with the xxh128 helper, so only the daemon's own checks stand in the way.
. "$(dirname "$0")/../lib.sh"
t_setup
t_forge

FORGE=("python3" "$TOP/tests/security/archive_forge.py")
XXH="$BUILD/tests/security/xxh128"
TOKEN="canary-$RANDOM$RANDOM$RANDOM"
CANARY="$TMP/host-canary"
echo "$TOKEN" >"$CANARY"
OUTSIDE="$TMP/outside"
mkdir -p "$OUTSIDE"
SPEC="$TMP/spec.json"

n_ctrs() { find "$ROOT/containers" -mindepth 1 -maxdepth 1 -name '[!.]*' | wc -l; }
n_images() { find "$ROOT/images" -mindepth 1 -maxdepth 1 | wc -l; }
# The host is as it was: nothing landed outside, the canary is one file with one link.
host_unchanged() {
	[ -z "$(ls -A "$OUTSIDE")" ] && [ "$(cat "$CANARY")" = "$TOKEN" ] &&
		[ "$(stat -c %h "$CANARY")" = 1 ] && [ ! -e /pwned-archive-test ]
}
# refused NAME OUT STATUS PATTERN: the attack failed, said PATTERN, leaked nothing.
refused() {
	local name=$1 out=$2 rc=$3 pat=$4
	if [ "$rc" -eq 0 ]; then
		fail "$name" "accepted: $out"
	elif ! grep -qi -- "$pat" <<<"$out"; then
		fail "$name" "no \"$pat\" in: $out"
	elif grep -q "$TOKEN" <<<"$out"; then
		fail "$name" "the error shows the host file's content: $out"
	elif ! host_unchanged; then
		fail "$name" "the host changed: $(ls -A "$OUTSIDE")"
	else
		ok "$name"
	fi
}

# ---- import: the record in an export's header ----
clbsd run -d --name src forge sleep 300 >/dev/null
clbsd exec src sh -c 'echo data > /etc/mine'
clbsd stop -t 1 src >/dev/null
clbsd export -o "$TMP/src.clbsd" src >/dev/null || fail export "export failed"
argv=$(field src config.argv)
n0=$(n_ctrs)

# The attack of the issue: / at /host, the host's network, a command that prints a host file.
EVIL='c = h["container"]["config"]
c["volumes"] = [{"source": "/", "dest": "/host", "readonly": False}]
c["command"] = c["argv"] = ["cat", "/host'"$CANARY"'"]
h["container"]["network"] = {"mode": "host", "networks": []}'

# Edited but not sealed again: the header's checksum shows it.
"${FORGE[@]}" rawedit "$TMP/src.clbsd" "$TMP/raw.clbsd" "$EVIL"
out=$(clbsd import --name raw "$TMP/raw.clbsd" 2>&1)
refused import_edited_header_refused "$out" $? "was edited"

# Sealed again (anyone can): the host access is listed and refused without the flag.
"${FORGE[@]}" edit "$XXH" "$TMP/src.clbsd" "$TMP/evil.clbsd" "$EVIL"
out=$(clbsd import --name evil "$TMP/evil.clbsd" 2>&1)
refused import_host_access_refused "$out" $? "--allow-host-access"
grep -q "host's / at /host" <<<"$out" && grep -q "network host" <<<"$out" &&
	ok import_host_access_listed || fail import_host_access_listed "$out"
[ "$(n_ctrs)" = "$n0" ] && ! clbsd inspect evil >/dev/null 2>&1 &&
	ok import_refusal_makes_nothing || fail import_refusal_makes_nothing "$(ls "$ROOT/containers")"
# The same by the API, without the query parameter.
out=$(curl -s --unix-socket "$SOCK" -X POST -d "{\"path\":\"$TMP/evil.clbsd\",\"name\":\"evil\"}" \
	http://clbsd/v1/import)
refused import_api_needs_parameter "$out" 1 "allow_host_access"

# A host bind alone (no host network) is host access too.
"${FORGE[@]}" edit "$XXH" "$TMP/src.clbsd" "$TMP/bind.clbsd" \
	'h["container"]["config"]["volumes"] = [{"source": "'"$OUTSIDE"'", "dest": "/o", "readonly": False}]'
out=$(clbsd import --name bind "$TMP/bind.clbsd" 2>&1)
refused import_host_bind_refused "$out" $? "--allow-host-access"

# A named volume of another container is a host path, not this one's volume.
"${FORGE[@]}" edit "$XXH" "$TMP/src.clbsd" "$TMP/other.clbsd" \
	'h["container"]["config"]["volumes"] = [{"source": "'"$ROOT"'/volumes/victim/data", "dest": "/v"}]'
out=$(clbsd import --name other "$TMP/other.clbsd" 2>&1)
refused import_other_volume_refused "$out" $? "--allow-host-access"

# The resolved argv is not taken from the archive: it is made again from command and image.
"${FORGE[@]}" edit "$XXH" "$TMP/src.clbsd" "$TMP/argv.clbsd" \
	'h["container"]["config"]["argv"] = ["cat", "'"$CANARY"'"]'
if clbsd import --name argv "$TMP/argv.clbsd" >/dev/null 2>&1; then
	[ "$(field argv config.argv)" = "$argv" ] && ok import_argv_remade ||
		fail import_argv_remade "$(field argv config.argv)"
	clbsd rm -f argv >/dev/null
else
	fail import_argv_remade "the import failed"
fi

# Whatever a create refuses, an import refuses with the same words.
check_refused() {
	local name=$1 edit=$2 pat=$3
	"${FORGE[@]}" edit "$XXH" "$TMP/src.clbsd" "$TMP/$name.clbsd" "$edit"
	local o
	o=$(clbsd import --name "${name//_/-}" "$TMP/$name.clbsd" 2>&1)
	refused "$name" "$o" $? "$pat"
	[ "$(n_ctrs)" = "$n0" ] || fail "$name" "a container was left: $(ls "$ROOT/containers")"
}
check_refused import_bad_env_refused 'h["container"]["config"]["env"] = ["NOEQUALS"]' "is not KEY=VALUE"
check_refused import_dest_root_refused \
	'h["container"]["config"]["volumes"] = [{"source": "'"$ROOT"'/volumes/src/data", "dest": "/"}]' \
	"volume destination"
check_refused import_bad_hostname_refused 'h["container"]["config"]["hostname"] = "Bad_Host!"' \
	"not a DNS name"
check_refused import_bad_restart_refused \
	'h["container"]["config"]["restart"] = {"policy": "sometimes", "max_retries": 0}' \
	"invalid restart policy"
check_refused import_bad_network_refused 'h["container"]["network"] = {"mode": "container:x"}' \
	"network"

# Version 1 (no header checksum) is still read, through the same checks.
"${FORGE[@]}" rawedit "$TMP/src.clbsd" "$TMP/v1.clbsd" 'h["version"] = 1; del h["header_xxh3"]'
clbsd import --name v1 "$TMP/v1.clbsd" >/dev/null 2>&1 && ok import_version1_read ||
	fail import_version1_read "$(clbsd import --name v1 "$TMP/v1.clbsd" 2>&1)"
clbsd rm -f v1 >/dev/null 2>&1
"${FORGE[@]}" rawedit "$TMP/evil.clbsd" "$TMP/evil1.clbsd" 'h["version"] = 1; del h["header_xxh3"]'
out=$(clbsd import --name evil1 "$TMP/evil1.clbsd" 2>&1)
refused import_version1_host_access_refused "$out" $? "--allow-host-access"

# With the flag the operator allowed it: it is imported, and said.
if out=$(clbsd import --allow-host-access --name allowed "$TMP/bind.clbsd" 2>&1) &&
	grep -q "has volume $OUTSIDE at /o" <<<"$out"; then
	ok import_flag_allows_and_says
else
	fail import_flag_allows_and_says "$out"
fi
clbsd rm -f allowed >/dev/null 2>&1

# Fields a create cannot set are dropped, not trusted.
"${FORGE[@]}" edit "$XXH" "$TMP/src.clbsd" "$TMP/fields.clbsd" \
	'h["container"].update({"id": "../../x", "managed": True, "spec": "(x)", "shim_socket": "/tmp/evil.sock", "cgroup": "/"})'
if clbsd import --name fields "$TMP/fields.clbsd" >/dev/null 2>&1; then
	id=$(field fields id)
	[[ "$id" =~ ^[0-9a-f]{64}$ ]] && [ "$(field fields managed)" = false ] &&
		[ "$(field fields shim_socket)" = "$RUN/shims/fields.sock" ] &&
		ok import_unsettable_fields_dropped ||
		fail import_unsettable_fields_dropped "$id $(field fields shim_socket)"
	clbsd rm -f fields >/dev/null
else
	fail import_unsettable_fields_dropped "the import failed"
fi

# ---- import: the stream (dir driver: a tar) ----
if [ "$(clbsd --json info | python3 -c 'import json,sys; print(json.load(sys.stdin)["storage"]["driver"])')" = dir ]; then
	stream_attack() {
		local name=$1 members=$2 edit=${3:-}
		echo "$members" >"$SPEC"
		"${FORGE[@]}" addtar "$XXH" "$TMP/src.clbsd" "$TMP/$name.clbsd" "$SPEC" ${edit:+"$edit"}
		local o
		o=$(clbsd import --name "${name//_/-}" "$TMP/$name.clbsd" 2>&1)
		refused "$name" "$o" $? "not allowed\|damaged\|symlink\|refus"
		[ "$(n_ctrs)" = "$n0" ] || fail "$name" "a container was left: $(ls "$ROOT/containers")"
	}
	stream_attack import_tar_dotdot_refused \
		'[{"name": "layer/../../../../../../../../'"$OUTSIDE"'/dotdot", "data": "x"}]'
	stream_attack import_tar_absolute_refused '[{"name": "'"$OUTSIDE"'/abs", "data": "x"}]'
	stream_attack import_tar_symlink_then_file_refused \
		'[{"name": "layer/esc", "type": "symlink", "link": "'"$OUTSIDE"'"},
		  {"name": "layer/esc/pwned", "data": "x"}]'
	stream_attack import_tar_hardlink_out_refused \
		'[{"name": "layer/hl", "type": "hardlink", "link": "'"$CANARY"'"}]'
	stream_attack import_tar_hardlink_dotdot_refused \
		'[{"name": "layer/hl", "type": "hardlink", "link": "layer/../../../../../../../..'"$CANARY"'"}]'
	# A "named volume" that is a symlink to the host's /: it would need no flag.
	stream_attack import_tar_volume_symlink_refused \
		'[{"name": "volumes/data", "type": "symlink", "link": "/"}]' \
		'h["container"]["config"]["volumes"] = [{"source": "'"$ROOT"'/volumes/src/data", "dest": "/v"}]'
	# State files the daemon uses (hosts is bind-mounted into the container).
	stream_attack import_tar_state_symlink_refused \
		'[{"name": "state/hosts", "type": "symlink", "link": "'"$CANARY"'"}]'
	stream_attack import_tar_state_storage_entry_refused \
		'[{"name": "state/rootfs", "type": "symlink", "link": "'"$OUTSIDE"'"}]'
else
	skip import_tar "the daemon's storage is not dir"
fi

# ---- load: image archives ----
i0=$(n_images)
load_attack() {
	local name=$1 kind=$2 layers=$3 pat=$4
	shift 4
	echo "$layers" >"$SPEC"
	"${FORGE[@]}" "$kind" "$TMP/$name.tar" "$SPEC" "$@"
	local o
	o=$(clbsd load "$TMP/$name.tar" 2>&1)
	refused "$name" "$o" $? "$pat"
	[ "$(n_images)" = "$i0" ] || fail "$name" "an image was left: $(ls -a "$ROOT/images")"
}
load_attack load_dotdot_refused oci \
	'[[{"name": "../../../../../../../..'"$OUTSIDE"'/dotdot", "data": "x"}]]' "outside"
load_attack load_absolute_refused oci '[[{"name": "'"$OUTSIDE"'/abs", "data": "x"}]]' "outside"
load_attack load_symlink_then_file_refused oci \
	'[[{"name": "esc", "type": "symlink", "link": "'"$OUTSIDE"'"}, {"name": "esc/pwned", "data": "x"}]]' \
	"symlink"
load_attack load_symlink_across_layers_refused oci \
	'[[{"name": "esc", "type": "symlink", "link": "'"$OUTSIDE"'"}], [{"name": "esc/pwned", "data": "x"}]]' \
	"symlink"
load_attack load_hardlink_out_refused oci '[[{"name": "hl", "type": "hardlink", "link": "'"$CANARY"'"}]]' \
	"outside"
load_attack load_hardlink_dotdot_refused docker \
	'[[{"name": "hl", "type": "hardlink", "link": "../../../../../../../..'"$CANARY"'"}]]' "outside"
# index.json / manifest.json planted as symlinks to a host file: never read.
load_attack load_index_symlink_refused oci '[[{"name": "f", "data": "x"}]]' "symbolic link" \
	index-symlink "$CANARY"
load_attack load_manifest_symlink_refused docker '[[{"name": "f", "data": "x"}]]' "symbolic link" \
	manifest-symlink "$CANARY"
# The same in a layout directory (clbsd load DIR), and a FIFO as index.json.
mkdir -p "$TMP/layout"
echo '{"imageLayoutVersion":"1.0.0"}' >"$TMP/layout/oci-layout"
ln -s "$CANARY" "$TMP/layout/index.json"
out=$(clbsd load "$TMP/layout" 2>&1)
refused load_dir_index_symlink_refused "$out" $? "symbolic link"
rm "$TMP/layout/index.json"
mkfifo "$TMP/layout/index.json"
out=$(timeout 20 "$BUILD/clbsd" --socket "$SOCK" load "$TMP/layout" 2>&1)
rc=$?
[ $rc -ne 124 ] && refused load_dir_index_fifo_refused "$out" $rc "not a regular file" ||
	fail load_dir_index_fifo_refused "the load hung on a FIFO"
# A blob whose content does not match its digest.
echo '[[{"name": "f", "data": "x"}]]' >"$SPEC"
"${FORGE[@]}" oci "$TMP/good.tar" "$SPEC"
mkdir -p "$TMP/bad"
tar -C "$TMP/bad" -xf "$TMP/good.tar"
for b in "$TMP"/bad/blobs/sha256/*; do
	if tar -tf "$b" >/dev/null 2>&1; then echo junk >>"$b"; fi
done
out=$(clbsd load "$TMP/bad" 2>&1)
refused load_digest_mismatch_refused "$out" $? "damaged"
[ "$(n_images)" = "$i0" ] && ok load_refusals_leave_nothing ||
	fail load_refusals_leave_nothing "$(ls -a "$ROOT/images")"
# The well-formed archive loads: the refusals above are about the attacks.
clbsd load --name fine:1 "$TMP/good.tar" >/dev/null 2>&1 && ok load_good_archive ||
	fail load_good_archive "$(clbsd load --name fine:1 "$TMP/good.tar" 2>&1)"

host_unchanged && ok host_unchanged || fail host_unchanged "$(ls -A "$OUTSIDE")"
t_done
