#!/bin/bash
# Golden tests of `clbsd plan`: from the state of tests/golden/plan/base.conf,
# each CASE.conf must plan exactly CASE.plan (order and reasons included).
# Set CLBSD_GOLDEN_UPDATE=1 to rewrite the .plan files from what is printed.
. "$(dirname "$0")/../lib.sh"
t_setup
t_forge
G="$TOP/tests/golden/plan"
generation() { clbsd --json "$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["generation"])'; }
for case_file in "$G"/*.conf; do
	name=$(basename "$case_file" .conf)
	[ "$name" = base ] && continue
	# The daemon's own watch applies a copied file about 100 ms after it
	# changes; a plan slower than that (a loaded or sanitized build) would
	# see the case already applied. The base is let settle (the watch reloads
	# it once more after apply), then a plan counts only if the daemon's
	# generation had not moved when a second plan was read after it; else
	# it is retried from the base. A wrong plan stays wrong.
	for _ in 1 2 3; do
		cp "$G/base.conf" "$CONF"
		clbsd apply >/dev/null || { got="base did not apply"; break; }
		gen=$(generation status)
		for _ in $(seq 20); do
			sleep 0.3
			g=$(generation status)
			[ "$g" = "$gen" ] && break
			gen=$g
		done
		cp "$case_file" "$CONF"
		got=$(clbsd plan 2>&1)
		[ "$(generation plan)" = "$gen" ] && break
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
