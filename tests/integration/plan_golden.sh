#!/bin/bash
# Golden tests of `clbsd plan`: from the state of tests/golden/plan/base.conf,
# each CASE.conf must plan exactly CASE.plan (order and reasons included).
# Set CLBSD_GOLDEN_UPDATE=1 to rewrite the .plan files from what is printed.
. "$(dirname "$0")/../lib.sh"
t_setup
t_forge
G="$TOP/tests/golden/plan"
for case_file in "$G"/*.conf; do
	name=$(basename "$case_file" .conf)
	[ "$name" = base ] && continue
	# The daemon's own watch applies the copied file about 100 ms after it
	# changes; a plan slower than that (a loaded or sanitized build) sees it
	# applied. Such a race is retried from the base; a wrong plan stays wrong.
	for _ in 1 2 3; do
		cp "$G/base.conf" "$CONF"
		clbsd apply >/dev/null || { got="base did not apply"; break; }
		gen=$(clbsd --json status | python3 -c 'import json,sys; print(json.load(sys.stdin)["generation"])')
		cp "$case_file" "$CONF"
		got=$(clbsd plan 2>&1)
		now=$(clbsd --json status | python3 -c 'import json,sys; print(json.load(sys.stdin)["generation"])')
		[ "$now" = "$gen" ] && break
	done
	if [ "${CLBSD_GOLDEN_UPDATE:-}" = 1 ]; then
		printf '%s\n' "$got" >"$G/$name.plan"
	fi
	if [ "$got" = "$(cat "$G/$name.plan")" ]; then
		ok "$name"
	else
		fail "$name" "$(diff <(echo "$got") "$G/$name.plan")"
	fi
done
t_done
