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
	cp "$G/base.conf" "$CONF"
	clbsd apply >/dev/null || { fail "$name" "base did not apply"; continue; }
	cp "$case_file" "$CONF"
	got=$(clbsd plan 2>&1)
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
