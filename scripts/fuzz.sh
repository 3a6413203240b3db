#!/bin/sh
# Runs libFuzzer targets on their seed corpora and prints one line per
# target in the test runner's format:
#   ok fuzz.NAME: R runs in S s, no crash
#   FAIL fuzz.NAME: ...   (with the reproducer's path and the fuzzer's report)
#
#   scripts/fuzz.sh [BIN...]      default: every build-fuzz/fuzz_* binary
#
# FUZZ_TIME   seconds per target (default 180; `make check` uses 3)
# FUZZ_MERGE  1: merge what raised coverage into tests/fuzz/corpus/NAME/
#
# The seed corpus (tests/fuzz/corpus/NAME/, in git) is only read: new
# inputs go to a scratch directory that is removed afterwards, so the tree
# stays clean unless FUZZ_MERGE asks otherwise. A crash leaves its input in
# build-fuzz/crashes/NAME-crash-*; fix the bug, then add the input to the
# seed corpus so the fix stays tested. Exit status 1 when a target failed.
set -u
cd "$(dirname "$0")/.." || exit 2
secs=${FUZZ_TIME:-180}
merge=${FUZZ_MERGE:-0}
if [ $# -eq 0 ]; then
	set -- build-fuzz/fuzz_*
fi
status=0
for bin in "$@"; do
	name=$(basename "$bin" | sed 's/^fuzz_//')
	if [ ! -x "$bin" ]; then
		echo "FAIL fuzz.$name: $bin is not built (make fuzz-build)"
		status=1
		continue
	fi
	seeds=tests/fuzz/corpus/$name
	crashes=$(dirname "$bin")/crashes
	mkdir -p "$crashes"
	[ -d "$seeds" ] || seeds=
	work=$(mktemp -d "/tmp/clbsd-fuzz-$name.XXXXXX") || exit 2
	mkdir "$work/new" "$work/tmp"
	# The first directory receives new inputs; TMPDIR holds what a target
	# makes (fuzz_create's root), removed below even after a crash.
	TMPDIR=$work/tmp UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1} "$bin" -max_total_time="$secs" -timeout=30 -rss_limit_mb=2048 \
		-print_final_stats=1 -artifact_prefix="$crashes/$name-" \
		"$work/new" ${seeds:+"$seeds"} >"$work/log" 2>&1
	rc=$?
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log")
	took=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$work/log")
	if [ "$rc" -eq 0 ]; then
		echo "ok fuzz.$name: ${runs:-?} runs in ${took:-?} s, no crash"
		if [ "$merge" = 1 ] && [ -n "$seeds" ]; then
			TMPDIR=$work/tmp "$bin" -merge=1 "$seeds" "$work/new" >/dev/null 2>&1 ||
				echo "warning: merging into $seeds failed" >&2
		fi
	else
		art=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$work/log" | tail -n 1)
		echo "FAIL fuzz.$name: exit $rc after ${runs:-?} runs; input: ${art:-none written}"
		grep -E 'ERROR|runtime error|SUMMARY|^    #[0-9]' "$work/log" | head -n 30
		status=1
	fi
	rm -rf "$work"
done
exit "$status"
