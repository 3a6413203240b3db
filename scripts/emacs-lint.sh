#!/bin/sh
# Lint the Emacs package (STYLE.md): byte-compile with warnings as errors,
# checkdoc failing on any warning, and package-lint (Debian's
# elpa-package-lint). The .elc files go to a temporary directory.
set -eu
cd "$(dirname "$0")/.."
command -v emacs >/dev/null || {
	echo "emacs-lint: emacs is not installed (scripts/deps.sh check installs it)" >&2
	exit 1
}
tmp=$(mktemp -d /tmp/clbsd-emacs-lint.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
cp emacs/*.el "$tmp/"
status=0
for f in emacs/*.el; do
	b=$(basename "$f")
	case "$b" in *-tests.el) lib="-l $tmp/clbsd.el" ;; *) lib="" ;; esac
	# shellcheck disable=SC2086 # lib is empty or one option with its value
	emacs --batch -Q -L "$tmp" $lib --eval '(setq byte-compile-error-on-warn t)' \
		-f batch-byte-compile "$tmp/$b" || status=1
	out=$(emacs --batch -Q -L "$tmp" --eval "(progn (require 'checkdoc)
	  (setq checkdoc-diagnostic-buffer \"*checkdoc*\")
	  (checkdoc-file \"$tmp/$b\"))" 2>&1 | grep -v '^Loading' || true)
	if [ -n "$out" ]; then
		echo "$out" | sed "s|$tmp/|emacs/|"
		echo "emacs-lint: checkdoc: $f has warnings" >&2
		status=1
	fi
done
# package-lint checks the package itself (tests are not part of it). -q,
# not -Q: Debian's site files put elpa-package-lint on the load path.
emacs --batch -q -L "$tmp" --eval "(progn
  (setq package-archives nil)
  (require 'package-lint)
  (setq package-lint-main-file \"$tmp/clbsd.el\"))" \
	-f package-lint-batch-and-exit "$tmp/clbsd.el" || status=1
[ "$status" -eq 0 ] && echo "emacs-lint: clean"
exit "$status"
