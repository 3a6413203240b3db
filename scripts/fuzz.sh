#!/bin/sh
# make fuzz: run each libFuzzer target for FUZZ_SECONDS (default 60) on its
# seed corpus (tests/fuzz/corpus/<target>/, kept in git; new finds go to a
# scratch copy so the tree stays clean). A crash stops with its reproducer.
set -eu
secs=${FUZZ_SECONDS:-60}
for bin in "$@"; do
	name=$(basename "$bin" | sed 's/^fuzz_//')
	seeds="tests/fuzz/corpus/$name"
	work=$(mktemp -d "/tmp/clbsd-fuzz-$name.XXXXXX")
	[ -d "$seeds" ] && cp -r "$seeds/." "$work/"
	echo "== $bin for ${secs}s"
	"$bin" -max_total_time="$secs" -artifact_prefix="build-fuzz/$name-" "$work" 2>&1 | tail -n 3
	rm -rf "$work"
done
