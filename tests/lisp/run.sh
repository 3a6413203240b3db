#!/bin/bash
# The Common Lisp layer (lisp/, docs/lisp.md) against a real clbsdd: the
# FiveAM suite (lisp/tests/tests.lisp, one "ok lisp.NAME" line per test),
# then the control plane process: init files (a bad one is reported, the rest
# loads) and its Swank server driven from emacs --batch with Debian's SLIME.
#
# The suite asks this script to restart the daemon (reconnection without
# loss) by creating $TMP/restart-request; the script restarts it and creates
# $TMP/restart-done.
. "$(dirname "$0")/../lib.sh"
# shellcheck disable=SC2034 # used by lib.sh
T_NAME=lisp
for tool in sbcl emacs; do
	if ! command -v "$tool" >/dev/null; then
		skip all "$tool is not installed (scripts/deps.sh check installs it)"
		exit 0
	fi
done
t_setup
t_forge
export CLBSD_TEST_TMP="$TMP" CLBSD_TEST_CONF="$CONF" CLBSD_TEST_CLI="$BUILD/clbsd"
LISP_PID=
CP_PID=
stop_lisp() {
	[ -n "$LISP_PID" ] && kill "$LISP_PID" 2>/dev/null && wait "$LISP_PID" 2>/dev/null
	[ -n "$CP_PID" ] && kill "$CP_PID" 2>/dev/null && wait "$CP_PID" 2>/dev/null
	LISP_PID=''
	CP_PID=''
}
trap 'stop_lisp; t_cleanup' EXIT

sbcl --noinform --disable-ldb --end-runtime-options --no-sysinit --no-userinit \
	--disable-debugger --eval '(require :asdf)' \
	--eval "(asdf:load-asd \"$TOP/lisp/clbsd.asd\")" \
	--eval '(let ((*standard-output* *error-output*)) (handler-bind ((warning (function muffle-warning))) (asdf:load-system "clbsd/tests")))' \
	--eval '(uiop:quit (if (clbsd.tests:run-and-report) 0 1))' >"$TMP/lisp.out" 2>&1 &
LISP_PID=$!
while kill -0 "$LISP_PID" 2>/dev/null; do
	if [ -e "$TMP/restart-request" ]; then
		rm -f "$TMP/restart-request"
		t_kill_daemon TERM
		sleep 0.3
		t_start_daemon
		touch "$TMP/restart-done"
	fi
	sleep 0.05
done
wait "$LISP_PID"
rc=$?
LISP_PID=
grep -E '^(ok|FAIL|skip) ' "$TMP/lisp.out"
if [ "$rc" -ne 0 ] || ! grep -q '^[0-9]* passed, [0-9]* failed' "$TMP/lisp.out"; then
	fail suite "sbcl exited with $rc; output:"
	tail -n 40 "$TMP/lisp.out" | sed 's/^/| /'
fi
grep '^[0-9]* passed, [0-9]* failed' "$TMP/lisp.out"

# The control plane: init.lisp, then init.d/*.lisp; a bad file is reported
# with its file, form and condition, and the files after it still load.
mkdir -p "$TMP/init.d"
cat >"$TMP/init.lisp" <<'EOL'
(defvar *loaded* (list :init))
EOL
cat >"$TMP/init.d/10-bad.lisp" <<'EOL'
(push :bad-before *loaded*)
(error "deliberately broken init form")
(push :bad-after *loaded*)
EOL
cat >"$TMP/init.d/20-good.lisp" <<'EOL'
(push :good *loaded*)
(defhook remember-exits (c :exited) (push (name c) *loaded*))
EOL
# The saved core `make lisp` builds (make check does), else (missing, or
# older than a source file) the script that runs the same from source.
CP="$BUILD/clbsd-lisp"
if [ ! -x "$CP" ] || [ -n "$(find "$TOP/lisp" -name '*.lisp' -newer "$CP")" ]; then
	CP="$TOP/lisp/clbsd-lisp"
fi
echo "control plane: $CP"
"$CP" --swank-port 0 --init "$TMP/init.lisp" --init-dir "$TMP/init.d" \
	>"$TMP/cp.out" 2>"$TMP/cp.err" &
CP_PID=$!
if wait_until 120 grep -q 'swank listening on 127.0.0.1:' "$TMP/cp.out"; then
	ok control_plane_starts
else
	fail control_plane_starts "$(tail -n 20 "$TMP/cp.err")"
fi
port=$(sed -n 's/^clbsd-lisp: swank listening on 127.0.0.1:\([0-9]*\)$/\1/p' "$TMP/cp.out")
grep -q "init file $TMP/init.d/10-bad.lisp, form 2 (error \"deliberately broken init form\"): simple-error: deliberately broken init form" "$TMP/cp.err" &&
	ok control_plane_reports_bad_init_form || fail control_plane_reports_bad_init_form "$(cat "$TMP/cp.err")"
ss -ltn 2>/dev/null | grep -q "127.0.0.1:$port " && ! ss -ltn | grep -q "0.0.0.0:$port " &&
	ok swank_on_loopback_only || fail swank_on_loopback_only "$(ss -ltn | grep ":$port ")"

timeout 30 "$CP" --no-init --swank-port 0 --swank-interface 0.0.0.0 >"$TMP/remote.out" 2>&1
rc=$?
[ $rc -eq 2 ] && grep -q 'refusing to serve Swank' "$TMP/remote.out" && ok swank_refuses_remote ||
	fail swank_refuses_remote "rc=$rc $(tail -n 3 "$TMP/remote.out")"

clbsd run -d --name swanky forge sleep 300 >/dev/null
clbsd run --name quick forge true >/dev/null
cat >"$TMP/slime-test.el" <<'EOL'
;; Connect to the control plane's Swank from emacs --batch with Debian's SLIME.
(require 'slime)
(slime-setup '(slime-repl))
(setq slime-protocol-version 'ignore)
(defun check-eval (label form)
  (let ((v (slime-eval form)))
    (princ (format "%s=%S\n" label v))))
(let ((port (string-to-number (getenv "SWANK_PORT"))))
  (slime-connect "127.0.0.1" port)
  ;; Wait until the connection's own start-up requests (contribs, the
  ;; REPL) are answered: a synchronous eval meanwhile gets their replies.
  (let ((deadline (+ (float-time) 30)))
    (while (and (< (float-time) deadline)
                (not (and (slime-connected-p) (null (slime-rex-continuations)))))
      (accept-process-output nil 0.1)))
  (unless (slime-connected-p) (princ "not connected\n") (kill-emacs 1))
  (princ (format "repl-package=%S\n" (slime-lisp-package)))
  (check-eval "package" '(cl:package-name cl:*package*))
  (check-eval "names" '(cl:mapcar (cl:function clbsd:name) (clbsd:containers)))
  (check-eval "loaded" '(cl:symbol-value (cl:find-symbol "*LOADED*" "CLBSD-USER")))
  (check-eval "stop" '(cl:string-downcase (cl:symbol-name (clbsd:state (clbsd:stop-container "swanky" :timeout 1)))))
  ;; A hook defined at the REPL, saved for the next start.
  (check-eval "persist" '(cl:let ((cl:*package* (cl:find-package "CLBSD-USER")))
                            (cl:eval (cl:read-from-string "(defhook saved-hook (c :started) (push (list :saved (name c)) *loaded*))"))
                            (cl:namestring (clbsd:persist))))
  (slime-disconnect)
  (kill-emacs 0))
EOL
if SWANK_PORT=$port timeout 60 emacs --batch -Q -L /usr/share/emacs/site-lisp/elpa/slime-2.27 \
	-l "$TMP/slime-test.el" >"$TMP/emacs.out" 2>&1; then
	ok slime_connects
else
	fail slime_connects "$(tail -n 20 "$TMP/emacs.out")"
fi
grep -q '^package="CLBSD-USER"' "$TMP/emacs.out" && grep -q '^repl-package="CLBSD-USER"' "$TMP/emacs.out" &&
	ok slime_lands_in_clbsd_user ||
	fail slime_lands_in_clbsd_user "$(grep -a 'package=' "$TMP/emacs.out")"
names=$(grep -a '^names=' "$TMP/emacs.out")
echo "$names" | grep -q '"swanky"' && echo "$names" | grep -q '"quick"' &&
	ok slime_lists_containers || fail slime_lists_containers "$names"
grep -q '^stop="exited"' "$TMP/emacs.out" && [ "$(field swanky state)" = exited ] &&
	ok slime_stops_container || fail slime_stops_container "$(grep -a '^stop=' "$TMP/emacs.out") state $(field swanky state)"
loaded=$(grep -a '^loaded=' "$TMP/emacs.out")
# init.lisp ran, 10-bad.lisp's forms around the bad one ran, 20-good.lisp
# ran after it, and its hook saw quick's and swanky's exits.
echo "$loaded" | grep -q ':good :bad-after :bad-before :init' && ok init_rest_loads_after_bad_form ||
	fail init_rest_loads_after_bad_form "$loaded"
echo "$loaded" | grep -q '"quick"' && ok init_hook_runs || fail init_hook_runs "$loaded"
grep -q "^persist=\"$TMP/init.d/90-live.lisp\"" "$TMP/emacs.out" &&
	tr -s ' \n' '  ' <"$TMP/init.d/90-live.lisp" | grep -q '(defhook saved-hook (c :started) (push' &&
	! grep -q 'remember-exits' "$TMP/init.d/90-live.lisp" && ok persist_writes_live_file ||
	fail persist_writes_live_file "$(grep -a '^persist=' "$TMP/emacs.out") $(cat "$TMP/init.d/90-live.lisp" 2>&1)"

# The next start of the control plane has the saved hook.
stop_lisp
"$CP" --swank-port 0 --init "$TMP/init.lisp" --init-dir "$TMP/init.d" >"$TMP/cp2.out" 2>"$TMP/cp2.err" &
CP_PID=$!
wait_until 120 grep -q 'swank listening on 127.0.0.1:' "$TMP/cp2.out"
port=$(sed -n 's/^clbsd-lisp: swank listening on 127.0.0.1:\([0-9]*\)$/\1/p' "$TMP/cp2.out")
clbsd start swanky >/dev/null
cat >"$TMP/slime-test2.el" <<'EOL'
(require 'slime)
(slime-setup '())
(setq slime-protocol-version 'ignore)
(slime-connect "127.0.0.1" (string-to-number (getenv "SWANK_PORT")))
(let ((deadline (+ (float-time) 30)))
  (while (and (< (float-time) deadline)
              (not (and (slime-connected-p) (null (slime-rex-continuations)))))
    (accept-process-output nil 0.1)))
(let ((deadline (+ (float-time) 10)) v)
  ;; The saved hook runs on swanky's start (the follower delivers it).
  (while (and (< (float-time) deadline)
              (not (member '(:saved "swanky")
                           (setq v (slime-eval '(cl:remove-if-not (cl:function cl:consp)
                                                  (cl:symbol-value (cl:find-symbol "*LOADED*" "CLBSD-USER"))))))))
    (sleep-for 0.2))
  (princ (format "saved=%S
" v)))
(princ (format "hooks=%S
" (slime-eval '(cl:mapcar (cl:function cl:car) (clbsd:hooks)))))
(kill-emacs 0)
EOL
SWANK_PORT=$port timeout 60 emacs --batch -Q -L /usr/share/emacs/site-lisp/elpa/slime-2.27 \
	-l "$TMP/slime-test2.el" >"$TMP/emacs2.out" 2>&1
grep -q '^hooks=("saved-hook")' "$TMP/emacs2.out" && grep -q '^saved=.*(:saved "swanky")' "$TMP/emacs2.out" &&
	ok persisted_hook_loads_at_next_start ||
	fail persisted_hook_loads_at_next_start "$(grep -a -E '^(saved|hooks)=' "$TMP/emacs2.out") $(tail -n 5 "$TMP/cp2.err")"
stop_lisp
t_done
