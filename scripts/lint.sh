#!/bin/bash
# The project's static checks, one "ok/FAIL/skip lint.NAME" line each, so
# tests/run.sh counts them in `make check` and `make lint` runs them alone.
#
#   scripts/lint.sh [CHECK...]   CHECK: shellcheck format layers cppcheck emacs clang
#                                (default: all of them)
#
#   scripts     shellcheck on every shell script of the project
#   format      C files match .clang-format (the tree was formatted once;
#               `clang-format -i FILE` fixes a finding)
#   layers      no folder of src/ includes one above it or beside it
#               (scripts/layers.py holds the ranks, docs/architecture.md
#               the map)
#   cppcheck    cppcheck's warning class, with the project's macros known
#               (contrib/cppcheck.cfg); a finding that is wrong is
#               suppressed inline with a comment saying why
#   emacs       the Emacs package byte-compiles without warnings and is
#               checkdoc- and package-lint-clean (scripts/emacs-lint.sh)
#   clang       the whole tree builds with clang -Werror in build-clang/
#               (gcc builds with -Werror in CI; this keeps both clean)
# Exit status 1 when a check failed.
set -u
cd "$(dirname "$0")/.." || exit 2
checks=("$@")
[ "${#checks[@]}" -gt 0 ] || checks=(shellcheck format layers cppcheck emacs clang)
failed=0

fail() {
	echo "FAIL lint.$1: $2"
	failed=1
}

c_files() {
	git ls-files 'src/*.c' 'src/*.h' 'include/*.h' 'tests/*.c' 'tests/*.h' 2>/dev/null ||
		find src include tests -name '*.[ch]'
}

shell_files() {
	ls scripts/*.sh tests/*.sh tests/*/*.sh .ci/run 2>/dev/null
	grep -l '^#!/bin/\(ba\)\?sh' bench/* lisp/* 2>/dev/null
}

for c in "${checks[@]}"; do
	case $c in
	shellcheck)
		if ! command -v shellcheck >/dev/null; then
			echo "skip lint.shellcheck: shellcheck is not installed"
		elif mapfile -t f < <(shell_files | sort -u) && shellcheck "${f[@]}"; then
			echo "ok lint.shellcheck"
		else
			fail shellcheck "see the findings above"
		fi
		;;
	format)
		if ! command -v clang-format >/dev/null; then
			echo "skip lint.format: clang-format is not installed"
			continue
		fi
		bad=()
		while read -r f; do
			clang-format --dry-run --Werror "$f" >/dev/null 2>&1 || bad+=("$f")
		done < <(c_files)
		if [ "${#bad[@]}" -eq 0 ]; then
			echo "ok lint.format"
		else
			fail format "not formatted (clang-format -i): ${bad[*]}"
		fi
		;;
	layers)
		if out=$(python3 scripts/layers.py 2>&1); then
			echo "ok lint.layers"
		else
			echo "$out"
			fail layers "see the findings above"
		fi
		;;
	cppcheck)
		if ! command -v cppcheck >/dev/null; then
			echo "skip lint.cppcheck: cppcheck is not installed"
			continue
		fi
		if out=$(cppcheck -q -j2 --enable=warning --std=c11 -D_GNU_SOURCE -Iinclude -Isrc \
			--library=contrib/cppcheck.cfg --inline-suppr --error-exitcode=1 \
			--template='{file}:{line}: {severity}: {message} [{id}]' src 2>&1); then
			echo "ok lint.cppcheck"
		else
			echo "$out"
			fail cppcheck "see the findings above"
		fi
		;;
	emacs)
		if ! command -v emacs >/dev/null; then
			echo "skip lint.emacs: emacs is not installed"
		elif scripts/emacs-lint.sh; then
			echo "ok lint.emacs"
		else
			fail emacs "see the findings above"
		fi
		;;
	clang)
		if ! command -v clang >/dev/null; then
			echo "skip lint.clang: clang is not installed"
		elif out=$(make -s -j2 BUILD=build-clang CC=clang CI=true all 2>&1); then
			echo "ok lint.clang"
		else
			echo "$out" | grep -E 'error|warning' | head -n 40
			fail clang "clang -Werror build failed (make BUILD=build-clang CC=clang CI=true)"
		fi
		;;
	*)
		echo "usage: scripts/lint.sh [shellcheck|format|layers|cppcheck|emacs|clang]..." >&2
		exit 2
		;;
	esac
done
exit "$failed"
