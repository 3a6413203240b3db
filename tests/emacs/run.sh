#!/bin/bash
# The Emacs package against a real daemon: starts a private clbsdd with real
# containers, runs the ERT tests of emacs/clbsd-tests.el in `emacs --batch`,
# then drives a terminal Emacs (`emacs -nw` under tmux): the dashboard
# renders, a stop link is followed with keys, the screen shows the change.
. "$(dirname "$0")/../lib.sh"
command -v emacs >/dev/null || { skip all "emacs is not installed (scripts/deps.sh check)"; exit 0; }
# shellcheck disable=SC2034 # read by lib.sh's ok, fail and skip
T_NAME=emacs
t_setup
t_forge
export CLBSD_CLI="$BUILD/clbsd"

cat >"$CONF" <<'CONF'
(container alpha :image "forge"
  :command ("sh" "-c" "i=0; while true; do echo line-$i; i=$((i+1)); sleep 0.2; done")
  :limits (:memory "64M" :cpus 0.5))
CONF
clbsd apply >/dev/null || { fail setup "apply failed"; t_done; exit 1; }
clbsd run -d --name beta forge sleep 100000 >/dev/null
clbsd create --name gamma forge sleep 100000 >/dev/null
clbsd run -d -t -i --name delta --hostname delta forge sh -c 'echo delta-was-here; exec sh' >/dev/null
wait_until 10 sh -c "$BUILD/clbsd --socket $SOCK ps | grep -q alpha" || fail setup "alpha did not start"

# A remote host: an sshd on loopback (Debian's openssh-server), reached
# the way clbsd.el reaches one, with the API socket forwarded over ssh.
SSHD=""
stop_sshd() { [ -n "$SSHD" ] && kill "$SSHD" 2>/dev/null && wait "$SSHD" 2>/dev/null; SSHD=""; }
trap 'stop_sshd; t_cleanup' EXIT
if [ -x /usr/sbin/sshd ]; then
	S="$TMP/ssh"
	mkdir -p "$S" /run/sshd
	ssh-keygen -q -t ed25519 -N '' -f "$S/host" && ssh-keygen -q -t ed25519 -N '' -f "$S/id"
	cp "$S/id.pub" "$S/authorized_keys"
	port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
	cat >"$S/config" <<SSHCONF
Port $port
ListenAddress 127.0.0.1
HostKey $S/host
PidFile $S/pid
AuthorizedKeysFile $S/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
SSHCONF
	/usr/sbin/sshd -D -e -f "$S/config" 2>>"$TMP/sshd.log" &
	SSHD=$!
	export CLBSD_TEST_SSH_PORT="$port" CLBSD_TEST_SSH_ID="$S/id"
	wait_until 5 ssh -i "$S/id" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
		-o LogLevel=ERROR -o BatchMode=yes -p "$port" root@127.0.0.1 true ||
		fail sshd_up "$(cat "$TMP/sshd.log")"
fi

# clbsd-repl's test starts the Lisp control plane itself (lisp/clbsd-lisp)
# and connects Debian's SLIME to it.
export CLBSD_LISP="$TOP/lisp/clbsd-lisp"
slime_dir=
for d in /usr/share/emacs/site-lisp/elpa/slime-*; do [ -d "$d" ] && slime_dir=$d; done

# One "ok emacs.NAME" or "FAIL emacs.NAME: why" per ERT test.
emacs --batch -Q ${slime_dir:+-L "$slime_dir"} -L "$TOP/emacs" -l "$TOP/emacs/clbsd-tests.el" \
	--eval '(setq clbsd-confirm nil)' -f clbsd-tests-run >"$TMP/ert.out" 2>"$TMP/ert.log"
rc=$?
cat "$TMP/ert.out"
if [ "$rc" -ne 0 ]; then
	grep -q '^FAIL ' "$TMP/ert.out" || fail ert "emacs exited with status $rc"
	# shellcheck disable=SC2034 # read by lib.sh's t_cleanup
	T_FAILED=1
	echo "--- emacs stderr (tail)"
	tail -n 40 "$TMP/ert.log"
fi

# The README's install forms, each in a fresh Emacs: after it, M-x clbsd
# is an (auto)loaded command and a dashboard block renders alpha's row.
check_install() { # NAME ELISP-SETUP [EMACS-OPTION]
	local out
	out=$(emacs --batch "${3:--Q}" --eval "(progn $2
	  (unless (commandp 'clbsd) (error \"clbsd is not a command\"))
	  (require 'org)
	  (with-temp-buffer (org-mode)
	    (insert \"#+BEGIN: clbsd-containers :columns (name state)\n#+END:\n\")
	    (org-update-all-dblocks) (princ (buffer-string))))" 2>&1)
	if echo "$out" | grep -Eq '^\| alpha +\| running'; then
		ok "install.$1"
	else
		fail "install.$1" "$(echo "$out" | tail -n 5)"
	fi
}
check_install load_path "(add-to-list 'load-path \"$TOP/emacs\") (autoload 'clbsd \"clbsd\" nil t)
	  (autoload 'clbsd-repl \"clbsd\" nil t) (with-eval-after-load 'org (require 'clbsd))"
# package.el: the file as a package, with its generated autoloads.
check_install package_file "(setq package-user-dir \"$TMP/elpa\") (package-initialize)
	  (package-install-file \"$TOP/emacs/clbsd.el\")"
check_install package_file_autoloads "(setq package-user-dir \"$TMP/elpa\") (package-initialize)"
# use-package (Debian's elpa-use-package, on the site load path: -q).
check_install use_package "(require 'use-package)
	  (use-package clbsd :load-path \"$TOP/emacs\" :commands (clbsd clbsd-repl)
	    :bind (\"C-c L\" . clbsd-repl))
	  (autoload 'org-dblock-write:clbsd-containers \"clbsd\")" -q
# straight.el's build step, done by hand (straight.el itself is not in
# Debian and cannot be fetched offline): the recipes are read from the
# README itself (the straight-use-package one and use-package's
# :straight one must be the same), their :files expanded in the checkout
# (globs, then (:exclude GLOB...) taking matches out, as straight.el and
# MELPA do), the files selected symlinked into a build directory,
# byte-compiled there, and the autoloads generated from them.
mkdir -p "$TMP/straight/build/clbsd"
selected=$(cd "$TOP" && emacs --batch -Q -l cl-lib --eval '(let (recipes files)
  (with-temp-buffer
    (insert-file-contents "README.md")
    (while (re-search-forward "(straight-use-package\\|:straight (" nil t)
      (goto-char (match-end 0))
      (when (eq (char-before) ?\() (backward-char))
      (when (looking-at "[ \t\n]*\x27") (goto-char (match-end 0)))
      (push (read (current-buffer)) recipes)))
  (unless (and (= (length recipes) 2) (equal (car recipes) (cadr recipes)))
    (error "README: want two equal straight.el recipes, got %S" recipes))
  (dolist (entry (plist-get (cdar recipes) :files))
    (cond ((stringp entry)
           (setq files (append files (file-expand-wildcards entry))))
          ((eq (car-safe entry) :exclude)
           (dolist (g (cdr entry))
             (setq files (cl-set-difference files (file-expand-wildcards g)
                                            :test (function equal)))))
          (t (error "README recipe: :files entry %S not understood here" entry))))
  (princ (mapconcat (function identity) files "\n")))' 2>"$TMP/recipe.log")
want=$(cd "$TOP" && find emacs -maxdepth 1 -name '*.el' ! -name '*-tests.el' | sort)
if [ -n "$selected" ] && [ "$(echo "$selected" | sort)" = "$want" ]; then
	ok install.straight_recipe_files
else
	fail install.straight_recipe_files "selected: ${selected:-nothing} ($(tail -n 2 "$TMP/recipe.log")); want: $want"
fi
for f in $selected; do ln -s "$TOP/$f" "$TMP/straight/build/clbsd/"; done
emacs --batch -Q --eval "(let ((d \"$TMP/straight/build/clbsd/\"))
  (make-directory-autoloads d (expand-file-name \"clbsd-autoloads.el\" d))
  (add-to-list 'load-path d) (byte-recompile-directory d 0))" >"$TMP/straight.log" 2>&1
check_install straight_layout "(add-to-list 'load-path \"$TMP/straight/build/clbsd\")
	  (load \"clbsd-autoloads\")"

stop_sshd

# The terminal: a real Emacs on a tmux pane, driven by keys.
if command -v tmux >/dev/null; then
	TM="tmux -L clbsd-emacs-$T_ID"
	clbsd run -d --name tty forge sleep 100000 >/dev/null
	printf '* Homelab\n#+BEGIN: clbsd-containers :all t :match "^tty$" :columns (name state actions)\n#+END:\n' >"$TMP/dash.org"
	$TM new-session -d -s e -x 160 -y 40 \
		"CLBSD_SOCKET=$SOCK emacs -nw -Q -L $TOP/emacs --eval \"(require 'clbsd)\" $TMP/dash.org"
	pane() { $TM capture-pane -p -t e; }
	wait_until 30 sh -c "$TM capture-pane -p -t e | grep -q 'BEGIN: clbsd-containers'" || fail tty.start "$(pane)"
	# C-c C-c on the BEGIN line renders the block.
	$TM send-keys -t e 'M-<' C-n C-c C-c
	if wait_until 10 sh -c "$TM capture-pane -p -t e | grep -Eq '^\| tty +\| running'"; then
		ok tty.dashboard_renders
	else
		fail tty.dashboard_renders "$(pane)"
	fi
	# Find the row's stop link and follow it with C-c C-o.
	$TM send-keys -t e C-s 'stop:tty' Enter C-c C-o
	if wait_until 20 sh -c "$TM capture-pane -p -t e | grep -Eq '^\| tty +\| exited'"; then
		ok tty.action_changes_screen
	else
		fail tty.action_changes_screen "$(pane)"
	fi
	[ "$(field tty state)" = exited ] && ok tty.container_stopped ||
		fail tty.container_stopped "state $(field tty state)"
	$TM kill-server 2>/dev/null
else
	skip tty "tmux is not installed"
fi
t_done
