#!/bin/bash
# The CLI's command table at work: options after positionals (as Docker
# users type them), --format and -q, logs by time, usage errors that name
# what is wrong (exit 2), the generated bash completion, man pages and
# make install.
. "$(dirname "$0")/../lib.sh"
t_setup
t_forge

# ---- options anywhere before the command's own argv ----
clbsd run -d --name web forge sleep 300 >/dev/null
clbsd run -d --name db forge sh -c 'echo one; echo two; sleep 0.3' >/dev/null
start=$SECONDS
out=$(clbsd stop web -t 1 2>&1)
[ "$out" = web ] && [ $((SECONDS - start)) -le 5 ] && [ "$(field web state)" = exited ] &&
	ok stop_name_then_time || fail stop_name_then_time "$out (state $(field web state))"
out=$(timeout 10 "$BUILD/clbsd" --socket "$SOCK" logs db -f 2>&1)
[ "$(echo "$out" | tr '\n' ' ')" = "one two " ] && ok logs_name_then_follow ||
	fail logs_name_then_follow "$out"
clbsd inspect web --json | python3 -c 'import json,sys; assert json.load(sys.stdin)[0]["name"] == "web"' &&
	ok inspect_name_then_json || fail inspect_name_then_json "not the JSON of web"
clbsd ps -a --json >"$TMP/a" && clbsd --json ps -a >"$TMP/b" && cmp -s "$TMP/a" "$TMP/b" &&
	ok json_before_or_after || fail json_before_or_after "ps -a --json differs from --json ps -a"
# What follows IMAGE (run) or NAME (exec) is the container's: -t and --help included.
out=$(clbsd run --rm forge echo -t --help)
[ "$out" = "-t --help" ] && ok run_command_keeps_its_options || fail run_command_keeps_its_options "$out"
clbsd start web >/dev/null
out=$(clbsd exec web echo x -e --json)
[ "$out" = "x -e --json" ] && ok exec_command_keeps_its_options || fail exec_command_keeps_its_options "$out"

# ---- -v NAME:/path: the container's named volume, made on first use ----
clbsd run --name vol -v data:/data forge sh -c 'echo kept >/data/f' >/dev/null
clbsd rm vol >/dev/null
out=$(clbsd run --rm --name vol -v data:/data:ro forge sh -c 'cat /data/f; touch /data/g 2>/dev/null && echo writable')
[ "$out" = kept ] && ok named_volume_kept_read_only || fail named_volume_kept_read_only "$out"
clbsd run --name vol -v data:/data forge true >/dev/null && clbsd rm -v vol >/dev/null
out=$(clbsd run --rm --name vol -v data:/data forge ls /data)
[ -z "$out" ] && ok named_volume_removed_by_rm_v || fail named_volume_removed_by_rm_v "$out"
mkdir -p "$TMP/hostdir" && echo host >"$TMP/hostdir/f"
[ "$(clbsd run --rm -v "$TMP/hostdir:/h:ro" forge cat /h/f)" = host ] && ok host_path_volume ||
	fail host_path_volume "an absolute host path no longer binds"

# ---- --stop-signal: what stop sends first ----
clbsd run -d --name sig --stop-signal USR1 forge sh -c 'trap "echo got-usr1; exit 0" USR1; while :; do sleep 0.1; done' >/dev/null
clbsd inspect sig --format '{{.Config.StopSignal}}' | grep -q USR1 && ok stop_signal_recorded ||
	fail stop_signal_recorded "$(clbsd inspect sig --format '{{json .Config}}')"
clbsd stop sig -t 5 >/dev/null
[ "$(clbsd logs sig)" = got-usr1 ] && [ "$(field sig exit_code)" = 0 ] && ok stop_signal_sent ||
	fail stop_signal_sent "logs '$(clbsd logs sig)', exit $(field sig exit_code)"
clbsd rm sig >/dev/null

# ---- --format and -q ----
[ "$(clbsd ps --format '{{.Name}} {{.State}} {{.Image}}')" = "web running $(field web image)" ] &&
	ok ps_format_fields || fail ps_format_fields "$(clbsd ps --format '{{.Name}} {{.State}} {{.Image}}')"
id=$(field web id)
[ "$(clbsd ps --format '{{.ID}}')" = "${id:0:12}" ] && ok ps_format_short_id ||
	fail ps_format_short_id "$(clbsd ps --format '{{.ID}}') vs $id"
[ "$(clbsd inspect --format '{{.ID}}' web)" = "$id" ] && ok inspect_format_whole_id ||
	fail inspect_format_whole_id "$(clbsd inspect --format '{{.ID}}' web)"
clbsd ps --format '{{.Status}}|{{.Ports}}|' | grep -q '^Up .*||$' && ok ps_format_status_ports ||
	fail ps_format_status_ports "$(clbsd ps --format '{{.Status}}|{{.Ports}}|')"
[ "$(clbsd inspect web -f '{{.Config.Command}} {{json .Config.Command}} {{.ExitCode}}')" = \
	'["sleep","300"] ["sleep","300"] 0' ] && ok inspect_format_paths ||
	fail inspect_format_paths "$(clbsd inspect web -f '{{.Config.Command}} {{json .Config.Command}} {{.ExitCode}}')"
clbsd ps -a --format '{{json .}}' | python3 -c 'import json,sys
names = sorted(json.loads(l)["name"] for l in sys.stdin)
assert names == ["db", "web"], names' && ok ps_format_json_dot || fail ps_format_json_dot "not one JSON object per container"
out=$(clbsd ps -a --format 'table {{.Name}}\t{{.State}}')
[ "$(echo "$out" | head -1 | tr -s ' ')" = "NAME STATE" ] && echo "$out" | grep -q '^db  *exited$' &&
	ok ps_format_table || fail ps_format_table "$out"
out=$(clbsd ps --format '{{.Nmae}}' 2>&1)
rc=$?
[ $rc -eq 2 ] && echo "$out" | grep -q '\.Nmae' && ok format_unknown_field_exit_2 ||
	fail format_unknown_field_exit_2 "rc=$rc: $out"
[ "$(clbsd ps -a -q | sort | tr '\n' ' ')" = "db web " ] && ok ps_quiet || fail ps_quiet "$(clbsd ps -a -q)"
img=$(clbsd --json images | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])')
img=${img#sha256:}
[ "$(clbsd images -q)" = "${img:0:12}" ] && ok images_quiet || fail images_quiet "$(clbsd images -q) vs $img"
[ "$(clbsd images --format '{{.Repository}}:{{.Tag}} {{.Size}}' | cut -d' ' -f1)" = forge:latest ] &&
	ok images_format || fail images_format "$(clbsd images --format '{{.Repository}}:{{.Tag}} {{.Size}}')"

# ---- logs --tail, --since, --until, --timestamps ----
clbsd run --name clock forge sh -c 'for i in 1 2 3 4; do echo l$i; sleep 1; done' >/dev/null
clbsd logs --timestamps clock >"$TMP/ts"
[ "$(wc -l <"$TMP/ts")" -eq 4 ] && grep -qE '^20[0-9-]+T[0-9:.]+Z l1$' "$TMP/ts" && ok logs_timestamps ||
	fail logs_timestamps "$(cat "$TMP/ts")"
t2=$(sed -n 2p "$TMP/ts" | cut -d' ' -f1)
t4=$(sed -n 4p "$TMP/ts" | cut -d' ' -f1)
[ "$(clbsd logs clock --since "$t2" | tr '\n' ' ')" = "l2 l3 l4 " ] && ok logs_since ||
	fail logs_since "$(clbsd logs clock --since "$t2")"
[ "$(clbsd logs clock --since "$t2" --until "$t4" | tr '\n' ' ')" = "l2 l3 " ] && ok logs_since_until ||
	fail logs_since_until "$(clbsd logs clock --since "$t2" --until "$t4")"
[ "$(clbsd logs clock --since 10m | tr '\n' ' ')" = "l1 l2 l3 l4 " ] &&
	[ -z "$(clbsd logs clock --until 10m)" ] && ok logs_relative_times ||
	fail logs_relative_times "$(clbsd logs clock --since 10m) / $(clbsd logs clock --until 10m)"
# -t as docker spells it, -T as clbsd did.
[ "$(clbsd logs clock --tail 2 -t | cut -d' ' -f2 | tr '\n' ' ')" = "l3 l4 " ] &&
	[ "$(clbsd logs clock -n 1 -T | cut -d' ' -f2)" = l4 ] && ok logs_tail_timestamps ||
	fail logs_tail_timestamps "$(clbsd logs clock --tail 2 -t)"
# -f with --until ends when that time has passed, though the container runs on.
until=$(date -u -d '+2 seconds' +%Y-%m-%dT%H:%M:%SZ)
start=$SECONDS
timeout 15 "$BUILD/clbsd" --socket "$SOCK" logs -f --until "$until" web >/dev/null
rc=$?
[ $rc -eq 0 ] && [ $((SECONDS - start)) -le 6 ] && ok logs_follow_until_ends ||
	fail logs_follow_until_ends "rc=$rc after $((SECONDS - start)) s"

# ---- usage errors: exit 2, a message naming the option or argument ----
expect2() {
	local name=$1 want=$2
	shift 2
	local out rc
	out=$(clbsd "$@" 2>&1 >/dev/null)
	rc=$?
	if [ $rc -ne 2 ]; then
		fail "$name" "exit $rc (want 2): $out"
	elif ! echo "$out" | grep -qF -- "$want"; then
		fail "$name" "message does not mention '$want': $out"
	else
		ok "$name"
	fi
}
expect2 usage_unknown_option "'--frob'" stop web --frob
expect2 usage_missing_value "'-t' needs a value" stop web -t
expect2 usage_flag_value "'--force' takes no value" rm --force=yes web
expect2 usage_missing_arg "missing NAME" logs
expect2 usage_extra_arg 'unexpected argument "extra"' logs web extra
expect2 usage_bad_name '"Web"' stop Web
expect2 usage_bad_time '"yesterday"' logs web --since yesterday
expect2 usage_bad_template "{{.Name" ps --format '{{.Name'
expect2 usage_group_command '"frob"' image frob
clbsd stop --help | grep -q -- '--time SECS' && clbsd help stop | grep -q '^Usage: clbsd stop' &&
	clbsd help image rm | grep -q '^Usage: clbsd image rm' && ok help_from_table ||
	fail help_from_table "stop --help / help stop / help image rm"

# ---- bash completion, generated from the table ----
clbsd completion bash >"$TMP/completion"
bash -n "$TMP/completion" && ok completion_script_parses || fail completion_script_parses "bash -n"
complete_words() {
	# complete_words WORD...: the candidates for the last word, as bash sees a TAB there.
	bash -c 'source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1))
COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}; _clbsd; printf "%s\n" "${COMPREPLY[@]}"' \
		sh "$TMP/completion" "$BUILD/clbsd" --socket "$SOCK" "$@"
}
[ "$(complete_words st | sort | tr '\n' ' ')" = "start stats status stop " ] && ok complete_command ||
	fail complete_command "$(complete_words st)"
[ "$(complete_words stop w)" = web ] && [ "$(complete_words logs -f "" | sort | tr '\n' ' ')" = "clock db web " ] &&
	ok complete_container_name || fail complete_container_name "$(complete_words stop w) / $(complete_words logs -f '')"
[ "$(complete_words image r)" = rm ] && [ "$(complete_words stop --ti)" = --time ] &&
	ok complete_subcommand_and_option ||
	fail complete_subcommand_and_option "$(complete_words image r) / $(complete_words stop --ti)"
# An image's tag: bash replaces what follows the ':', so "latest" completes "forge:la".
[ "$(complete_words run -d forge:la)" = latest ] && [ "$(complete_words run -d fo)" = forge:latest ] &&
	ok complete_image || fail complete_image "$(complete_words run -d forge:la) / $(complete_words run -d fo)"

# ---- man pages and make install ----
dest="$TMP/dest"
if make -s -C "$TOP" BUILD="$BUILD" install DESTDIR="$dest" PREFIX=/usr >"$TMP/install.log" 2>&1; then
	missing=""
	for f in bin/clbsd sbin/clbsdd libexec/clbsd/clbsd-shim share/man/man1/clbsd.1 \
		share/man/man5/clbsd.conf.5 share/man/man8/clbsdd.8 share/bash-completion/completions/clbsd; do
		[ -s "$dest/usr/$f" ] || missing="$missing $f"
	done
	[ -z "$missing" ] && ok install_files || fail install_files "missing:$missing"
	warn=$(groff -man -Tutf8 -ww "$dest/usr/share/man/man1/clbsd.1" "$dest/usr/share/man/man5/clbsd.conf.5" \
		"$dest/usr/share/man/man8/clbsdd.8" 2>&1 >/dev/null)
	[ -z "$warn" ] && ok man_pages_format || fail man_pages_format "$warn"
	MANWIDTH=100 man -l "$dest/usr/share/man/man1/clbsd.1" 2>/dev/null | grep -q 'clbsd stop \[OPTIONS\] NAME' &&
		MANWIDTH=100 man -l "$dest/usr/share/man/man8/clbsdd.8" 2>/dev/null | grep -q -- '--cgroup-parent' &&
		ok man_pages_from_sources || fail man_pages_from_sources "a command or an option is missing"
	cmp -s "$dest/usr/share/bash-completion/completions/clbsd" "$TMP/completion" &&
		ok install_completion || fail install_completion "differs from clbsd completion bash"
else
	fail install_files "make install failed: $(tail -5 "$TMP/install.log")"
fi
t_done
