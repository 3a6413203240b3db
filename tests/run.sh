#!/bin/bash
# Runs every test: the unit test binaries, then the integration scripts.
# Each prints "ok NAME", "FAIL NAME: why" or "skip NAME: why" per case; this
# script counts them. The last line is "N passed, N failed" (", N skipped"
# follows when any were skipped). Exit status 1 when anything failed.
#
#   tests/run.sh [PATTERN]   only scripts/binaries whose path contains PATTERN
set -u
cd "$(dirname "$0")/.." || exit 2
BUILD=${BUILD:-build}
export BUILD
pattern=${1:-}
passed=0 failed=0 skipped=0
failures=()
log=$(mktemp /tmp/clbsd-tests.XXXXXX)

run_one() {
	local what=$1
	shift
	local start=$SECONDS
	echo "== $what"
	"$@" >"$log" 2>&1
	local rc=$?
	local p f s
	p=$(grep -c '^ok ' "$log")
	f=$(grep -c '^FAIL ' "$log")
	s=$(grep -c '^skip ' "$log")
	grep -E '^(ok|FAIL|skip) ' "$log"
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		# A crash or an error outside any case still counts as a failure.
		echo "FAIL $what: exited with status $rc"
		f=1
	fi
	if [ "$f" -ne 0 ]; then
		echo "--- output of $what"
		tail -n 60 "$log"
		echo "---"
		failures+=("$what")
	fi
	passed=$((passed + p))
	failed=$((failed + f))
	skipped=$((skipped + s))
	echo "   ($((SECONDS - start)) s)"
}

for t in "$BUILD"/tests/*/test_*; do
	[ -x "$t" ] || continue
	case "$t" in *"$pattern"*) ;; *) continue ;; esac
	run_one "$t" "$t"
done
for t in tests/integration/*.sh tests/security/*.sh tests/lisp/*.sh tests/emacs/*.sh; do
	[ -f "$t" ] || continue
	case "$t" in *"$pattern"*) ;; *) continue ;; esac
	run_one "$t" timeout 600 bash "$t"
done
# The fuzz targets (built by `make fuzz-build`, which `make check` runs), a
# few seconds each on their seed corpora: one "ok/FAIL fuzz.NAME" each, and
# a crash leaves its input in $FUZZ_BUILD/crashes/. `make fuzz` runs longer.
FUZZ_BUILD=${FUZZ_BUILD:-build-fuzz}
for src in tests/fuzz/fuzz_*.c; do
	[ -f "$src" ] || continue
	case "$src" in *"$pattern"*) ;; *) continue ;; esac
	bin=$FUZZ_BUILD/$(basename "$src" .c)
	if [ -x "$bin" ]; then
		run_one "$bin" env FUZZ_TIME="${FUZZ_CHECK_TIME:-3}" scripts/fuzz.sh "$bin"
	else
		name=$(basename "$src" .c)
		echo "skip fuzz.${name#fuzz_}: $bin is not built (make fuzz-build)"
		skipped=$((skipped + 1))
	fi
done
# The static checks of scripts/lint.sh but the clang build, which the fuzz
# build's clang -Werror covers in CI and `make lint` runs in full.
lint() {
	scripts/lint.sh shellcheck format layers cppcheck emacs
}
if [ -z "$pattern" ] || [ "$pattern" = lint ]; then
	run_one lint lint
fi
rm -f "$log"

if [ "${#failures[@]}" -gt 0 ]; then
	echo "failed: ${failures[*]}"
fi
if [ "$skipped" -gt 0 ]; then
	echo "$passed passed, $failed failed, $skipped skipped"
else
	echo "$passed passed, $failed failed"
fi
[ "$failed" -eq 0 ]
