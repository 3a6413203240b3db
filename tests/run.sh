#!/bin/bash
# Runs every test: the static checks, the integration scripts, the unit test
# binaries and the fuzz targets. Each prints "ok NAME", "FAIL NAME: why" or
# "skip NAME: why" per case; this script counts them. The last line is
# "N passed, N failed" (", N skipped" follows when any were skipped). Exit
# status 1 when anything failed.
#
#   tests/run.sh [PATTERN]   only scripts/binaries whose path contains PATTERN
#
# CLBSD_TEST_JOBS=N runs N of them at once (default: 1; `make check` passes
# the number of CPUs). Every test is already apart from the others (its own
# root, socket, namespaces, cgroups, pool, dockerd); one whose script holds
# the line "# clbsd-test: alone" runs with nothing beside it, and two that
# use zfs (a pool under the one zfs-fuse: "zfs" in the path, t_zfs_setup in
# the script, or the line "# clbsd-test: zfs") never run at once. Each
# one's output is printed whole when it ends; the long ones start first.
set -u
cd "$(dirname "$0")/.." || exit 2
BUILD=${BUILD:-build}
export BUILD
pattern=${1:-}
jobs_max=${CLBSD_TEST_JOBS:-1}
case $jobs_max in '' | *[!0-9]* | 0) echo "CLBSD_TEST_JOBS: expected a number > 0" >&2; exit 2 ;; esac
passed=0 failed=0 skipped=0
failures=()
logs=$(mktemp -d /tmp/clbsd-tests.XXXXXX)
trap 'rm -rf "$logs"' EXIT

# The queue: what (its name), its command line (%q-quoted) and its kind:
# alone, zfs or "" (see above).
q_what=() q_cmd=() q_kind=()
add() { # WHAT KIND CMD...
	local what=$1 kind=$2 line
	shift 2
	printf -v line '%q ' "$@"
	q_what+=("$what") q_cmd+=("$line") q_kind+=("$kind")
}
match() { case "$1" in *"$pattern"*) return 0 ;; esac; return 1; }

# The static checks of scripts/lint.sh but the clang build, which the fuzz
# build's clang -Werror covers in CI and `make lint` runs in full.
if [ -z "$pattern" ] || [ "$pattern" = lint ]; then
	add lint "" scripts/lint.sh shellcheck format layers cppcheck emacs
fi
for t in tests/emacs/*.sh tests/lisp/*.sh tests/security/*.sh tests/integration/*.sh; do
	[ -f "$t" ] && match "$t" || continue
	kind=
	case $t in *zfs*) kind=zfs ;; esac
	grep -q '^# clbsd-test: zfs\|t_zfs_setup' "$t" && kind=zfs
	grep -q '^# clbsd-test: alone' "$t" && kind=alone
	add "$t" "$kind" timeout 600 bash "$t"
done
for t in "$BUILD"/tests/*/test_*; do
	[ -x "$t" ] && match "$t" || continue
	kind=
	case $t in *zfs*) kind=zfs ;; esac
	add "$t" "$kind" "$t"
done
# The fuzz targets (built by `make fuzz-build`, which `make check` runs), a
# few seconds each on their seed corpora: one "ok/FAIL fuzz.NAME" each, and
# a crash leaves its input in $FUZZ_BUILD/crashes/. `make fuzz` runs longer.
FUZZ_BUILD=${FUZZ_BUILD:-build-fuzz}
for src in tests/fuzz/fuzz_*.c; do
	[ -f "$src" ] && match "$src" || continue
	bin=$FUZZ_BUILD/$(basename "$src" .c)
	if [ -x "$bin" ]; then
		add "$bin" "" env FUZZ_TIME="${FUZZ_CHECK_TIME:-3}" scripts/fuzz.sh "$bin"
	else
		name=$(basename "$src" .c)
		echo "skip fuzz.${name#fuzz_}: $bin is not built (make fuzz-build)"
		skipped=$((skipped + 1))
	fi
done

# One test's report, whole: its cases, and its output's tail when it failed.
report() { # I SECONDS
	local i=$1 what=${q_what[$1]} log="$logs/$1.log" rc p f s
	rc=$(cat "$logs/$i.rc" 2>/dev/null || echo 1)
	echo "== $what"
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
	echo "   ($2 s)"
}

declare -A running=() started=()
n_alone=0 n_zfs=0
finish_one() {
	local pid
	wait -n -p pid "${!running[@]}" 2>/dev/null
	[ -n "${pid:-}" ] && [ -n "${running[$pid]:-}" ] || return 0
	local i=${running[$pid]}
	unset "running[$pid]"
	case ${q_kind[$i]} in alone) n_alone=0 ;; zfs) n_zfs=0 ;; esac
	report "$i" $((SECONDS - ${started[$i]}))
}
# Whether queued test I may start now, beside what runs.
may_start() {
	[ "${#running[@]}" -lt "$jobs_max" ] && [ "$n_alone" = 0 ] || return 1
	case ${q_kind[$1]} in
	alone) [ "${#running[@]}" = 0 ] ;;
	zfs) [ "$n_zfs" = 0 ] ;;
	esac
}
pending=("${!q_what[@]}")
while [ "${#pending[@]}" -gt 0 ]; do
	# The first queued test that may start, in queue order.
	pick=-1
	for k in "${!pending[@]}"; do
		if may_start "${pending[$k]}"; then
			pick=$k
			break
		fi
		# An alone test waits for the others to end; none starts after it.
		[ "${q_kind[${pending[$k]}]}" = alone ] && break
	done
	if [ "$pick" -lt 0 ]; then
		finish_one
		continue
	fi
	i=${pending[$pick]}
	unset "pending[$pick]"
	pending=("${pending[@]}")
	started[$i]=$SECONDS
	(
		eval "${q_cmd[$i]}" >"$logs/$i.log" 2>&1 </dev/null
		echo $? >"$logs/$i.rc"
	) &
	running[$!]=$i
	case ${q_kind[$i]} in alone) n_alone=1 ;; zfs) n_zfs=1 ;; esac
done
while [ "${#running[@]}" -gt 0 ]; do finish_one; done

if [ "${#failures[@]}" -gt 0 ]; then
	echo "failed: ${failures[*]}"
fi
if [ "$skipped" -gt 0 ]; then
	echo "$passed passed, $failed failed, $skipped skipped"
else
	echo "$passed passed, $failed failed"
fi
[ "$failed" -eq 0 ]
