;;;; tests.lisp -- FiveAM tests of the clbsd library against a real clbsdd.
;;;;
;;;; tests/lisp/run.sh starts the daemon on a temporary root (CLBSD_SOCKET),
;;;; builds forge, and runs RUN-AND-REPORT, which prints one "ok lisp.NAME" or
;;;; "FAIL lisp.NAME: why" line per test and "N passed, N failed" last.

(defpackage #:clbsd.tests
  (:use #:cl #:clbsd #:fiveam)
  (:shadowing-import-from #:clbsd #:every)
  (:export #:run-and-report))

(in-package #:clbsd.tests)

(def-suite clbsd :description "The clbsd Lisp library against a real daemon.")
(in-suite clbsd)

(defvar *order* '() "Test names in definition order (the runner reports in it).")

(defmacro deftest (name &body body)
  `(progn (pushnew ',name *order*) (test ,name ,@body)))

(defun getenv* (name) (sb-posix:getenv name))
(defun tmp (file) (format nil "~a/~a" (getenv* "CLBSD_TEST_TMP") file))

(defun cli (&rest args)
  "Run the clbsd CLI; returns its output and exit code."
  (let* ((out (make-string-output-stream))
         (p (sb-ext:run-program (getenv* "CLBSD_TEST_CLI") args :output out :error out :search nil)))
    (values (get-output-stream-string out) (sb-ext:process-exit-code p))))

(defun now-ms () (/ (get-internal-real-time) (/ internal-time-units-per-second 1000)))

(defmacro wait-for ((&optional (seconds 10)) &body condition)
  "Poll CONDITION every 10 ms for up to SECONDS; its value or NIL."
  `(loop with end = (+ (get-internal-real-time) (* ,seconds internal-time-units-per-second))
         for v = (progn ,@condition)
         when v return v
         when (> (get-internal-real-time) end) return nil
         do (sleep 0.01)))

(defun cleanup (&rest names)
  (dolist (n names) (ignore-errors (remove-container n :force t))))

;;; Connection and conditions

(deftest info
  (let ((i (info)))
    (is (stringp (gethash "version" i)))
    (is (integerp (gethash "pid" i)))))

(deftest condition-not-found
  (let ((c (handler-case (find-container "no-such-ctr") (clbsd-error (e) e))))
    (is (typep c 'not-found))
    (is (equal "not_found" (error-code c)))
    (is (eql 404 (error-status c)))
    (is (search "no-such-ctr" (error-message c)))))

(deftest audit-names-lisp-client
  ;; The audit log tells the library's requests apart (docs/audit.md).
  (handler-case (start-container "no-such-audited")
    (clbsd-error () nil))
  (let ((text (cli "audit" "--json" "--container" "no-such-audited")))
    (is (search "\"client\":\"lisp\"" text))
    (is (search "\"status\":404" text))))

(deftest condition-invalid-argument
  (let ((c (handler-case (create-container "forge" :name "Bad_Name") (clbsd-error (e) e))))
    (is (typep c 'invalid-argument))
    (is (equal "invalid_argument" (error-code c)))
    (is (search "Bad_Name" (error-message c)))))

(deftest condition-conflict
  (unwind-protect
       (progn
         (create-container "forge" :name "dup" :command '("true"))
         (let ((c (handler-case (create-container "forge" :name "dup") (clbsd-error (e) e))))
           (is (typep c 'conflict))
           (is (equal "conflict" (error-code c)))))
    (cleanup "dup")))

(deftest restart-use-value
  (is (eq :none (handler-bind ((not-found (lambda (c) (declare (ignore c)) (use-value :none))))
                  (find-container "no-such-ctr")))))

(deftest restart-retry
  ;; The handler makes what was missing, then asks for the request again.
  (unwind-protect
       (let ((tries 0))
         (let ((c (handler-bind ((not-found (lambda (e)
                                              (declare (ignore e))
                                              (incf tries)
                                              (create-container "forge" :name "late"
                                                                        :command '("true"))
                                              (invoke-restart 'retry))))
                    (find-container "late"))))
           (is (= 1 tries))
           (is (equal "late" (name c)))))
    (cleanup "late")))

(deftest condition-unreachable
  (let ((c (handler-case (let ((*socket-path* "/nonexistent/clbsd.sock")) (info))
             (error (e) e))))
    (is (typep c 'daemon-unreachable))
    (is (equal "/nonexistent/clbsd.sock" (daemon-unreachable-path c)))))

(deftest condition-unknown-key
  (is (typep (handler-case (create-container "forge" :name "k" :colour "red") (error (e) e))
             'unsupported-key)))

(deftest json-reader
  (let ((v (clbsd::parse-json "{\"a\":\"x\\u00e9\\n\\ud83d\\ude00\\\"\",\"b\":[1,-2.5e3,true,false,null],\"c\":{},\"d\":[]}")))
    (is (equal (format nil "x~c~%~c\"" (code-char #xe9) (code-char #x1f600)) (gethash "a" v)))
    (is (equal (list 1 -2500d0 t nil nil) (gethash "b" v)))
    (is (= 0 (hash-table-count (gethash "c" v))))
    (is (null (gethash "d" v))))
  (is (= 3 (clbsd::parse-json " 3 ")))
  (dolist (bad '("{" "[1,]" "{\"a\" 1}" "tru" "1 2" "\"abc" ""))
    (is (typep (handler-case (clbsd::parse-json bad) (error (e) e)) 'error) "~s read" bad)))

(deftest setter-request-body
  ;; What the setters send (PATCH /v1/containers/NAME, issue 16's daemon
  ;; side): the changed keys in the create body's form.
  (flet ((body (&rest keys)
           (clbsd::to-json (clbsd::request-body keys :keys (append clbsd::*create-keys*
                                                                   clbsd::*live-keys*)))))
    (is (equal "{\"memory\":\"256M\"}" (body :memory "256M")))
    (is (equal "{\"restart\":\"on-failure:3\"}" (body :restart '(on-failure 3))))
    (is (equal "{\"env\":[\"K=V\"]}" (body :env '(("K" . "V")))))
    (is (equal "{\"domain\":\"web.home.lan\"}" (body :domain "web.home.lan")))
    (signals unsupported-key (body :colour "red"))))

;;; The life cycle

(deftest life-cycle
  (unwind-protect
       (let ((c (create-container "forge" :name "life" :command '("sleep" "300")
                                          :memory "64M" :pids 64 :env '(("K" . "V")))))
         (is (typep c 'container))
         (is (eq :created (state c)))
         (is (eq c (find-container "life")) "one object per container")
         (is (eql (* 64 1024 1024) (memory-limit c)))
         (is (eql 64 (pids-limit c)))
         (is (member "K=V" (env c) :test #'equal))
         (is (equal '("sleep" "300") (command c)))
         (is (= 64 (length (id c))))
         (is (equal "forge:latest" (image c)))
         (start-container c)
         (is (eq :running (state c)))
         (is (plusp (pid c)))
         (is (plusp (shim-pid c)))
         (is (member (storage-driver c) '(:overlay :copy :zfs)))
         (is (running-p c))
         (let ((old (pid c)))
           (restart-container c :timeout 1)
           (is (eq :running (state c)))
           (is (/= old (pid c))))
         (stop-container c :timeout 1)
         (is (eq :exited (state c)))
         (is (eql 0 (pid c)))
         (start-container 'life)
         ;; kill answers once the signal is sent, not once the init is gone.
         (kill-container "life" :signal "KILL")
         (is (eql 137 (wait-container "life")))
         (is (eq :exited (state c)))
         (is (eql 137 (exit-code c)))
         (is (eql 9 (exit-signal c)))
         (is (equal "life" (remove-container c)))
         (is (removed-p c))
         (signals not-found (find-container "life")))
    (cleanup "life")))

(deftest run-exec-wait
  (unwind-protect
       (let ((c (run-container "forge" :name "runner" :command '("sleep" "300"))))
         (is (eq :running (state c)))
         (multiple-value-bind (out code err) (exec-in c '("sh" "-c" "echo hi; echo oops >&2"))
           (is (equal (format nil "hi~%") out))
           (is (eql 0 code))
           (is (equal (format nil "oops~%") err)))
         (is (eql 3 (nth-value 1 (exec-in c "exit 3"))))
         (run-container "forge" :name "waiter" :command '("sh" "-c" "exit 5"))
         (is (eql 5 (wait-container "waiter"))))
    (cleanup "runner" "waiter")))

(deftest containers-list
  (unwind-protect
       (progn
         (run-container "forge" :name "lst-a" :command '("sleep" "300"))
         (create-container "forge" :name "lst-b" :command '("true"))
         (let ((all (mapcar #'name (containers)))
               (running (mapcar #'name (containers :all nil))))
           (is (member "lst-a" all :test #'equal))
           (is (member "lst-b" all :test #'equal))
           (is (member "lst-a" running :test #'equal))
           (is (not (member "lst-b" running :test #'equal)))))
    (cleanup "lst-a" "lst-b")))

(deftest container-kind
  ;; A native container from the daemon, and a docker one as the API
  ;; reports it (tests/integration/docker.sh checks the field on a real one).
  (unwind-protect
       (let ((c (create-container "forge" :name "knd-a" :command '("true"))))
         (is (eq :native (kind c)))
         (is (eq :native (kind (find-container "knd-a")))))
    (cleanup "knd-a"))
  (let ((j (make-hash-table :test #'equal)))
    (setf (gethash "name" j) "knd-docker" (gethash "kind" j) "docker")
    (let ((c (clbsd::intern-container j)))
      (is (eq :docker (kind c)))
      (remhash "knd-docker" clbsd::*registry*))))

(deftest logs-and-follow
  (unwind-protect
       (progn
         ;; stdout and stderr are separate files the daemon merges by time:
         ;; only each stream's own order is certain.
         (run-container "forge" :name "talker" :command '("sh" "-c" "echo one; echo two; echo err >&2"))
         (wait-container "talker")
         (let ((lines (logs "talker")))
           (is (equal '("one" "two") (remove "err" lines :test #'equal)))
           (is (member "err" lines :test #'equal)))
         (is (= 1 (length (logs "talker" :tail 1))))
         (is (search "stdout F one" (first (logs "talker" :raw t))))
         (run-container "forge" :name "ticker"
                        :command '("sh" "-c" "for i in 1 2 3; do echo tick$i; sleep 0.2; done"))
         (let ((seen '()))
           (follow-logs "ticker" (lambda (l) (push l seen)))
           ;; follow ends when the container exits: every line arrived.
           (is (equal '("tick1" "tick2" "tick3") (reverse seen))))
         (with-open-stream (s (log-stream "talker" :follow nil))
           (let ((lines (loop for l = (read-line s nil) while l collect l)))
             (is (equal '("one" "two") (remove "err" lines :test #'equal))))))
    (cleanup "talker" "ticker")))

(deftest stats
  (unwind-protect
       (progn
         (run-container "forge" :name "stat" :command '("sleep" "300") :memory "32M")
         (let ((s (stats "stat")))
           (is (equal "stat" (getf s :name)))
           (is (plusp (getf s :memory-usage)))
           (is (eql (* 32 1024 1024) (getf s :memory-limit))))
         (is (find "stat" (all-stats) :key (lambda (s) (getf s :name)) :test #'equal)))
    (cleanup "stat")))

(deftest snapshots-rollback-clone-export-import
  (unwind-protect
       (let ((c (run-container "forge" :name "snap" :command '("sleep" "300"))))
         (exec-in c "echo v1 > /f")
         (is (equal '("s1") (mapcar (lambda (s) (getf s :label)) (snapshot c "s1"))))
         (exec-in c "echo v2 > /f")
         (is (equal '("s1") (mapcar (lambda (s) (getf s :label)) (snapshots c))))
         (rollback c "s1" :timeout 1)
         (is (eq :running (state c)))
         (is (equal (format nil "v1~%") (exec-in c "cat /f")))
         (let ((k (clone-container c "snap-clone")))
           (is (equal "snap-clone" (name k)))
           (start-container k)
           (is (equal (format nil "v1~%") (exec-in k "cat /f"))))
         (let ((e (export-container c (tmp "snap.clbsd"))))
           (is (equal (tmp "snap.clbsd") (getf e :path)))
           (is (plusp (getf e :stream-bytes))))
         (let ((i (import-container (tmp "snap.clbsd") :name "snap-imported")))
           (is (equal "snap-imported" (name i))))
         (is (null (remove-snapshot c "s1"))))
    (cleanup "snap" "snap-clone" "snap-imported")))

(deftest plan-apply-status
  (unwind-protect
       (progn
         (with-open-file (o (getenv* "CLBSD_TEST_CONF") :direction :output :if-exists :supersede)
           (write-string "(container declared :image \"forge\" :command (\"sleep\" \"300\"))" o))
         (let ((p (plan)))
           (is (equal "create" (getf (first p) :op)))
           (is (equal "declared" (getf (first p) :name))))
         (let ((pass (apply-config)))
           (is (eql 0 (getf pass :failures)))
           (is (equal "declared" (getf (first (getf pass :actions)) :name))))
         (is (null (plan)))
         (let ((c (find-container "declared")))
           (is (managed-p c))
           (is (stringp (spec-hash c))))
         (let ((s (status)))
           (is (eql 1 (getf s :declared)))
           (is (integerp (getf s :generation)))))
    (with-open-file (o (getenv* "CLBSD_TEST_CONF") :direction :output :if-exists :supersede))
    (ignore-errors (apply-config))
    (cleanup "declared")))

(deftest images-and-build
  (is (find "forge:latest" (images) :key (lambda (i) (first (getf i :names))) :test #'equal))
  (is (equal '("forge:latest") (getf (find-image "forge") :names)))
  (let ((dir (tmp "ctx/")))
    (ensure-directories-exist dir)
    (with-open-file (o (concatenate 'string dir "Cblockfile") :direction :output
                                                              :if-exists :supersede)
      (format o "FROM forge~%RUN echo built > /built~%"))
    (let* ((out (make-string-output-stream))
           (img (build-image (string-right-trim "/" dir) :tag "lispbuilt:1" :output out)))
      (is (equal '("lispbuilt:1") (getf img :names)))
      (is (search "RUN" (get-output-stream-string out)))
      (unwind-protect
           (progn
             (run-container "lispbuilt:1" :name "built" :command '("cat" "/built"))
             (wait-container "built")
             (is (equal '("built") (logs "built"))))
        (cleanup "built")))
    (is (equal "lispbuilt:1" (remove-image "lispbuilt:1")))
    (signals not-found (find-image "lispbuilt:1"))))

(deftest networks-and-doctor
  (is (listp (networks)))
  (unwind-protect
       (progn
         (run-container "forge" :name "lonely" :command '("sleep" "300") :network "none")
         ;; No network: the daemon says why, as a condition.
         (let ((e (handler-case (doctor "lonely") (clbsd-error (e) e))))
           (is (typep e 'invalid-argument))
           (is (plusp (length (error-message e))))))
    (cleanup "lonely")))

(deftest events-list
  (unwind-protect
       (progn
         (run-container "forge" :name "evl" :command '("true"))
         (wait-container "evl")
         (let ((evs (wait-for (5) (let ((l (events :container "evl")))
                                    (and (find "container.exited" l :key #'event-type
                                                                    :test #'equal)
                                         l)))))
           (is (equal '("container.created" "container.started" "container.exited")
                      (remove-if-not (lambda (ty) (member ty '("container.created" "container.started"
                                                               "container.exited")
                                                          :test #'equal))
                                     (mapcar #'event-type evs))))
           (is (every* #'integerp (mapcar #'event-seq evs)))
           (is (eql 0 (event-attr (find "container.exited" evs :key #'event-type :test #'equal)
                                  :exit-code)))
           (is (every* (lambda (e) (equal "container.exited" (event-type e)))
                       (events :container "evl" :type "container.exited")))))
    (cleanup "evl")))

(defun every* (pred list) (cl:every pred list))

(deftest image-functions
  (is (member "forge:latest" (getf (forge-image) :names) :test #'equal))
  (unwind-protect
       (progn
         (is (member "retagged:1" (getf (tag-image "forge" "retagged:1") :names) :test #'equal))
         ;; Import a root file system: forge's own tree.
         (let* ((rootfs (first (directory (format nil "~a/root/images/*/rootfs/"
                                                  (getenv* "CLBSD_TEST_TMP")))))
                (img (import-image (string-right-trim "/" (namestring rootfs)) "imported:1")))
           (is (equal '("imported:1") (getf img :names)))
           (is (equal "imported:1" (first (getf (find-image "imported:1") :names))))))
    (ignore-errors (remove-image "retagged:1"))
    (ignore-errors (remove-image "imported:1"))))

(deftest network-functions
  (handler-case
      (unwind-protect
           (let ((n (create-network "lispnet" :subnet "10.123.0.0/24")))
             (is (equal "lispnet" (getf n :name)))
             (is (equal "10.123.0.0/24" (getf (find-network "lispnet") :subnet)))
             (is (find "lispnet" (networks) :key (lambda (x) (getf x :name)) :test #'equal))
             (is (equal "lispnet" (remove-network "lispnet")))
             (signals not-found (find-network "lispnet")))
        (ignore-errors (remove-network "lispnet")))
    (unavailable (e) (skip "networks unavailable here: ~a" (error-message e)))))

(deftest follow-events-and-refresh
  (unwind-protect
       (let ((since (event-seq (car (last (events))))) (types '()))
         (run-container "forge" :name "fev" :command '("true"))
         (follow-events (lambda (e)
                          (push (event-type e) types)
                          (when (equal (event-type e) "container.exited") :stop))
                        :since since :container "fev")
         (is (equal '("container.exited" "container.started" "container.created") types))
         (let ((c (refresh "fev")))
           (is (eq :exited (state c)))
           (is (eq c (find-container "fev")))))
    (cleanup "fev")))

(deftest undo
  (flet ((conf (text)
           (with-open-file (o (getenv* "CLBSD_TEST_CONF") :direction :output :if-exists :supersede)
             (write-string text o))))
    (unwind-protect
         (progn
           (conf "(container undone :image \"forge\" :command (\"sleep\" \"300\") :env ((\"V\" . \"1\")))")
           (apply-config)
           (let ((old (id (find-container "undone"))))
             (conf "(container undone :image \"forge\" :command (\"sleep\" \"300\") :env ((\"V\" . \"2\")))")
             (apply-config)
             (is (not (equal old (id (find-container "undone")))))
             (is-true (wait-for (10) (undo-info (find-container "undone"))))
             ;; Right after a recreate the daemon may still be deleting the
             ;; replaced container's files and answer 409 ("still exists"):
             ;; the RETRY restart, as a REPL user would take it.
             (let ((c (let ((tries 0))
                        (handler-bind ((conflict (lambda (e)
                                                   (declare (ignore e))
                                                   (when (< (incf tries) 50)
                                                     (sleep 0.1)
                                                     (invoke-restart 'retry)))))
                          (undo-container "undone")))))
               (is (equal old (id c)))
               (is (null (undo-info c)))
               (is (member "V=1" (env c) :test #'equal)))))
      (conf "")
      (ignore-errors (apply-config))
      (cleanup "undone"))))

;;; Objects kept fresh by events, callbacks, isolation

(deftest object-fresh-from-events
  (start-following)
  (unwind-protect
       (let ((c (run-container "forge" :name "fresh" :command '("sleep" "300"))))
         (is (eq :running (state c)))
         ;; Stopped behind the library's back, by the CLI: the object follows.
         (cli "stop" "-t" "1" "fresh")
         (is (eq :exited (wait-for (5) (and (eq (state c) :exited) :exited))))
         (cli "start" "fresh")
         (is-true (wait-for (5) (and (eq (state c) :running) (plusp (pid c)))))
         (cli "rm" "-f" "fresh")
         (is-true (wait-for (5) (removed-p c))))
    (cleanup "fresh")))

(deftest callback-order
  (let ((seen '()) (lock (bt:make-lock)))
    (let ((cb (on "ordered" :any (lambda (c e)
                                   (bt:with-lock-held (lock)
                                     (push (list (name c) (event-type e)) seen))))))
      (unwind-protect
           (progn
             ;; Twice: the same name's events stay in order across its
             ;; removal (its worker retires and a new one takes over).
             (dotimes (i 2)
               (run-container "forge" :name "ordered" :command '("true"))
               (wait-container "ordered")
               (remove-container "ordered"))
             (is-true (wait-for (5) (= 2 (count "container.removed" seen :key #'second
                                                                       :test #'equal))))
             (let ((types (mapcar #'second (reverse seen))))
               (is (equal '("container.created" "container.started" "container.exited"
                            "container.removed"
                            "container.created" "container.started" "container.exited"
                            "container.removed")
                          (remove-if-not (lambda (ty) (member ty '("container.created" "container.started"
                                                                   "container.exited" "container.removed")
                                                              :test #'equal))
                                         types))))
             (is (every* (lambda (s) (equal "ordered" (first s))) seen)))
        (off cb)
        (cleanup "ordered")))))

(deftest callback-isolation
  ;; A callback of SLOW sleeps 5 s; FAST's callback still runs at once.
  (let ((slow-done nil) (slow-started nil) (fast-at nil) (fast-while-slow nil))
    (on "slow" :exited (lambda (c e) (declare (ignore c e))
                         (setf slow-started (now-ms))
                         (sleep 5)
                         (setf slow-done t))
        :name "iso-slow")
    (on "fast" :exited (lambda (c e) (declare (ignore c e))
                         (setf fast-at (now-ms) fast-while-slow (and slow-started (not slow-done))))
        :name "iso-fast")
    (unwind-protect
         (progn
           (run-container "forge" :name "slow" :command '("true"))
           (wait-for (5) slow-started)
           (run-container "forge" :name "fast" :command '("true"))
           (let ((exited-at (progn (wait-container "fast") (now-ms))))
             (is-true (wait-for (3) fast-at))
             (is-true fast-while-slow "fast's callback ran while slow's still slept")
             ;; Milliseconds on an idle machine (bench/lisp measures it); the
             ;; bound leaves room for a loaded one, far below slow's 5 s.
             (is (< (- fast-at exited-at) 1500)
                 "fast's callback ran ~d ms after its exit was seen" (- fast-at exited-at))
             (format t "~&callback-isolation: fast callback ~d ms after wait returned, slow still asleep: ~a~%"
                     (round (- fast-at exited-at)) fast-while-slow)))
      (off "iso-slow") (off "iso-fast")
      (cleanup "slow" "fast"))))

(deftest callback-errors
  (let ((after '()) (reported nil))
    (on "faulty" :started (lambda (c e) (declare (ignore c e)) (error "callback broke")) :name "boom")
    (on "faulty" :exited (lambda (c e) (declare (ignore c)) (push (event-type e) after)) :name "after-boom")
    (on "faulty" :callback-failed (lambda (c e) (declare (ignore c)) (setf reported e)) :name "seen-boom")
    (unwind-protect
         (progn
           (run-container "forge" :name "faulty" :command '("true"))
           (is-true (wait-for (5) after) "the worker survived and ran the next callback")
           (is-true (wait-for (5) reported))
           (is (search "callback broke" (event-attr reported "error")))
           (is (equal "container.started" (event-attr reported "event_type")))
           (let ((e (find "boom" (callback-errors)
                          :key (lambda (x) (ignore-errors (callback-name* (getf x :callback))))
                          :test #'equal)))
             (is (not (null e)))
             (is (typep (getf e :condition) 'simple-error))))
      (off "boom") (off "after-boom") (off "seen-boom")
      (cleanup "faulty"))))

(defun callback-name* (cb) (clbsd::callback-name cb))

(deftest reconnect-without-loss
  ;; Every event from START on reaches the callback exactly once, across a
  ;; restart of the daemon.
  (start-following)
  (let ((seqs '()) (lock (bt:make-lock)) (start (last-seq)))
    (on :any :any (lambda (c e) (declare (ignore c))
                    (bt:with-lock-held (lock) (push (cons (event-seq e) (event-container e)) seqs)))
        :name "all-seqs")
    (unwind-protect
         (progn
           (run-container "forge" :name "before" :command '("true"))
           (wait-container "before")
           (with-open-file (o (tmp "restart-request") :direction :output :if-exists :supersede))
           (is-true (wait-for (30) (probe-file (tmp "restart-done"))) "the daemon restarted")
           (delete-file (tmp "restart-done"))
           (run-container "forge" :name "after" :command '("true"))
           (wait-container "after")
           (let ((daemon (wait-for (10)
                           (let ((d (mapcar #'event-seq (events :since start))))
                             (and (= (length d) (length seqs)) d))))
                 (arrived (bt:with-lock-held (lock) (reverse seqs))))
             (let ((got (mapcar #'car arrived)))
               (is (not (null daemon)) "the callback saw as many events as the daemon kept: ~a vs ~a"
                   (length got) (length (events :since start)))
               ;; Workers run in parallel across containers: compare as sets,
               ;; and each container's own events in order.
               (is (equal daemon (sort (copy-list got) #'<)))
               (is (equal got (remove-duplicates got)))
               (dolist (name (remove-duplicates (mapcar #'cdr arrived) :test #'equal))
                 (let ((own (mapcar #'car (remove name arrived :key #'cdr :test-not #'equal))))
                   (is (equal own (sort (copy-list own) #'<)) "~a's events out of order: ~a"
                       name own))))
             (is (find "daemon.started" (events :since start) :key #'event-type :test #'equal))))
      (off "all-seqs")
      (cleanup "before" "after"))))

;;; Timers

(deftest timers
  (let ((n 0) (container-arg nil))
    (let ((tm (every "100ms" (lambda () (incf n)))))
      (is-true (wait-for (3) (>= n 3)))
      (is (cancel-timer tm))
      ;; A firing already handed to the worker may still run: settle first.
      (sleep 0.5)
      (let ((at n))
        (sleep 0.5)
        (is (= n at) "the timer stopped")))
    (let ((tm (every 0.1 (lambda (c) (setf container-arg c)) :container "timed" :name "ct")))
      (is-true (wait-for (3) container-arg))
      (is (equal "timed" (name container-arg)))
      (is (member tm (timers)))
      (is (cancel-timer "ct"))
      (is (not (member tm (timers)))))
    (is (= 5400 (parse-duration "1h30m")))
    (is (= 1/4 (parse-duration "250ms")))
    (signals invalid-argument (parse-duration "soon"))))

;;; Declarations, hooks, persistence, init files

(deftest container-form
  ;; A name nothing declares is declared live and made by the reconciler;
  ;; the keys of the form are the file's.
  (unwind-protect
       (progn
         (let ((c (container decl :image "forge" :command ("sleep" "300")
                             :limits (:memory "48M") :env (("A" . "1")) :restart always)))
           (is (eq :running (state c)))
           (is-true (managed-p c))
           (is (eql (* 48 1024 1024) (memory-limit c)))
           (is (equal "always" (restart-policy c)))
           (is (member "A=1" (env c) :test #'equal)))
         (let ((c (container decl-stopped :image "forge" :command ("true") :state stopped)))
           (is (eq :created (state c))))
         (signals invalid-argument (container decl-noimage :command ("true")))
         (signals unsupported-key (container decl-bad :image "forge" :colour "red"))
         (signals not-found (find-container "decl-bad"))
         ;; A name a create-container container holds is not taken over.
         (create-container "forge" :name "decl-imp" :command '("sleep" "300"))
         (signals conflict (container decl-imp :image "forge")))
    (ignore-errors (undeclare decl))
    (ignore-errors (undeclare decl-stopped))
    (cleanup "decl-imp")))

(defun live-file () (tmp "etc/conf.d/90-live.conf"))

(defun file-text (path)
  (with-open-file (i path :if-does-not-exist nil)
    (if i (let ((s (make-string (file-length i)))) (subseq s 0 (read-sequence s i))) "")))

(deftest setters-persist
  ;; The setters PATCH a declared container: the daemon records the keys in
  ;; its live layer, so they survive a restart of the daemon; the
  ;; (container ...) form amends a declared container the same way.
  (unwind-protect
       (progn
         (with-open-file (o (getenv* "CLBSD_TEST_CONF") :direction :output :if-exists :supersede)
           (write-string "(container lset :image \"forge\" :command (\"sleep\" \"300\"))" o))
         (apply-config)
         (let ((c (find-container "lset")))
           (setf (restart-policy c) "always")
           (setf (memory-limit c) "64M")
           (setf (env c) '(("A" . "1")))
           (setf (service-port c) 8080)
           (let ((c (find-container "lset")))
             (is (equal "always" (restart-policy c)))
             (is (eql (* 64 1024 1024) (memory-limit c)))
             (is (member "A=1" (env c) :test #'equal))))
         (let ((live (file-text (live-file))))
           (is (search ":restart always" live) "live layer: ~a" live)
           (is (search ":port 8080" live) "live layer: ~a" live))
         (with-open-file (o (tmp "restart-request") :direction :output :if-exists :supersede))
         (is-true (wait-for (30) (probe-file (tmp "restart-done"))) "the daemon restarted")
         (delete-file (tmp "restart-done"))
         (let ((c (wait-for (10) (ignore-errors (find-container "lset")))))
           (is (equal "always" (restart-policy c)))
           (is (eql (* 64 1024 1024) (memory-limit c)))
           (is (member "A=1" (env c) :test #'equal)))
         (is (null (plan)) "the live changes are the declaration now")
         (let ((c (container lset :restart on-failure :limits (:memory "96M"))))
           (is (search "on-failure" (restart-policy c)))
           (is (eql (* 96 1024 1024) (memory-limit c))))
         (is (search ":restart on-failure" (file-text (live-file)))))
    (with-open-file (o (getenv* "CLBSD_TEST_CONF") :direction :output :if-exists :supersede))
    (ignore-errors (delete-file (live-file)))
    (ignore-errors (apply-config))
    (cleanup "lset")))

(deftest create-spec-keys
  ;; The spec's keys create-container did not know are sent as the API takes them.
  (unwind-protect
       (let ((c (create-container "forge" :name "skeys" :command '("true")
                                          :labels '(("role" . "vpn") ("tier" "edge"))
                                          :cap-drop '(:mknod))))
         (let ((labels (gethash "labels" (gethash "config" (raw c)))))
           (is (member "role=vpn" labels :test #'equal) "labels: ~s" labels)
           (is (member "tier=edge" labels :test #'equal) "labels: ~s" labels)))
    (cleanup "skeys")))

(deftest declare-live
  ;; (container NAME ...) of a new name is a live declaration: written as a
  ;; form to the live layer, made and run managed by the reconciler, shown
  ;; by `clbsd config diff`, kept across a daemon restart and `clbsd apply`;
  ;; amending its limits keeps it running; UNDECLARE removes it.
  (unwind-protect
       (let* ((c (container ldecl :image "forge" :command ("sleep" "300")
                            :limits (:memory "48M") :restart always
                            :domain "ldecl.home.lan" :port 8080))
              (pid (pid c)))
         (is (eq :running (state c)))
         (is-true (managed-p c))
         (is (eql (* 48 1024 1024) (memory-limit c)))
         (let ((live (file-text (live-file))))
           (is (search "(container ldecl :image \"forge\"" live) "live layer: ~a" live)
           (is (search ":domain \"ldecl.home.lan\"" live) "live layer: ~a" live))
         (is (search "declared ldecl" (cli "config" "diff")))
         (is (null (plan)))
         (apply-config)
         (is (eql pid (pid (find-container "ldecl"))) "clbsd apply keeps it")
         (with-open-file (o (tmp "restart-request") :direction :output :if-exists :supersede))
         (is-true (wait-for (30) (probe-file (tmp "restart-done"))) "the daemon restarted")
         (delete-file (tmp "restart-done"))
         (let ((c (wait-for (10) (ignore-errors (find-container "ldecl")))))
           (is-true (and c (managed-p c)))
           (is (eql pid (and c (pid c))) "the daemon restart keeps it"))
         (is (null (plan)) "still declared after the restart")
         ;; Amended: its limits change in place, the same process runs on.
         (let ((c (container ldecl :limits (:memory "64M"))))
           (is (eql (* 64 1024 1024) (memory-limit c)))
           (is (eql pid (pid c)) "a change of :limits alone keeps it running"))
         (is (search ":memory \"64M\"" (file-text (live-file))))
         (undeclare ldecl)
         (is (null (search "ldecl" (file-text (live-file)))))
         (signals not-found (find-container "ldecl"))
         (signals not-found (undeclare ldecl)))
    (ignore-errors (undeclare-container "ldecl"))))

(deftest defhook-and-persist
  (let* ((dir (tmp "persist.d/"))
         (*init-dir* (pathname dir)))
    ;; Defined the way a REPL user in CLBSD-USER would.
    (let ((*package* (find-package '#:clbsd-user)))
      (eval (read-from-string "(defhook test-hook (c :exited :on \"hooked\") (push (name c) *hooked*))"))
      (eval (read-from-string "(deftimer test-timer (\"1h\") (values))")))
    (is (find "test-hook" (callbacks) :key #'callback-name* :test #'equal))
    (is (assoc "test-hook" (hooks) :test #'equal))
    (let ((file (persist)))
      (is (equal "90-live.lisp" (file-namestring file)))
      ;; Plain readable Lisp: the same forms, read in CLBSD-USER.
      (let ((forms (with-open-file (in file)
                     (let ((*package* (find-package '#:clbsd-user)))
                       (loop for f = (read in nil in) until (eq f in) collect f)))))
        (is (equal "(in-package #:clbsd-user)"
                   (let ((*package* (find-package '#:clbsd-user)) (*print-case* :downcase))
                     (prin1-to-string (first forms)))))
        (let ((*package* (find-package '#:clbsd-user)))
          (is (equal (read-from-string "(defhook test-hook (c :exited :on \"hooked\") (push (name c) *hooked*))")
                     (second forms)))
          (is (equal (read-from-string "(deftimer test-timer (\"1h\") (values))")
                     (third forms)))))
      ;; The file loads back: a fresh start would have the hook.
      (off "test-hook")
      (cancel-timer "test-timer")
      (is (null (load-init-files :file nil :dir dir)))
      (is (find "test-hook" (callbacks) :key #'callback-name* :test #'equal))
      (is (find "test-timer" (timers) :key #'clbsd::timer-name :test #'equal)))
    (off "test-hook")
    (cancel-timer "test-timer")))

(defvar clbsd-user::*hooked* '())

(deftest persist-leaves-init-files-their-hooks
  ;; A hook an init file defines stays that file's: PERSIST does not copy
  ;; it into 90-live.lisp (an edit of the file would be overridden), until
  ;; the REPL redefines it.
  (let* ((dir (tmp "persist2.d/")) (*init-dir* (pathname dir)))
    (ensure-directories-exist dir)
    (with-open-file (o (concatenate 'string dir "10-file.lisp") :direction :output
                                                               :if-exists :supersede)
      (write-string "(defhook from-file (c :exited) (values))" o))
    (is (null (load-init-files :file nil :dir dir)))
    (is (find "from-file" (callbacks) :key #'callback-name* :test #'equal))
    (is (null (assoc "from-file" (hooks) :test #'equal)))
    (let ((*package* (find-package '#:clbsd-user)))
      (eval (read-from-string "(defhook from-file (c :exited) (list :redefined))")))
    (is (equal (let ((*package* (find-package '#:clbsd-user)))
                 (read-from-string "(defhook from-file (c :exited) (list :redefined))"))
               (cdr (assoc "from-file" (hooks) :test #'equal))))
    (off "from-file")))

(deftest init-file-errors
  (let ((dir (tmp "init.d/")) (file (tmp "init-main.lisp")))
    (ensure-directories-exist dir)
    (flet ((put (path text)
             (with-open-file (o path :direction :output :if-exists :supersede)
               (write-string text o))))
      (put file "(defparameter *init-trace* (list :main))")
      (put (concatenate 'string dir "10-bad.lisp")
           "(push :a *init-trace*) (car 5) (push :b *init-trace*)")
      (put (concatenate 'string dir "20-unreadable.lisp") "(push :c *init-trace*) (oops")
      (put (concatenate 'string dir "30-good.lisp") "(push :good *init-trace*)")
      (put (concatenate 'string dir "notlisp.txt") "(error \"not loaded\")"))
    (let ((errors (load-init-files :file file :dir dir)))
      (is (= 2 (length errors)))
      (is (equal (list (concatenate 'string dir "10-bad.lisp")
                       (concatenate 'string dir "20-unreadable.lisp"))
                 (mapcar #'init-error-file errors)))
      (is (equal '(car 5) (init-error-form (first errors))))
      (is (typep (init-error-condition (first errors)) 'type-error))
      (is (typep (init-error-condition (second errors)) 'end-of-file))
      (is (equal errors (init-errors)))
      (is (equal '(:good :c :b :a :main) (symbol-value (find-symbol "*INIT-TRACE*" "CLBSD-USER")))))))

;;; The runner

(defun run-and-report ()
  "Run every test; print ok/FAIL lines and the totals.  True when all passed."
  (let ((passed 0) (failed 0)
        (*print-pretty* nil))
    (dolist (name (reverse *order*))
      (let* ((results (let ((fiveam:*test-dribble* (make-broadcast-stream))
                            (fiveam:*on-error* nil))
                        (fiveam:run name)))
             (bad (remove-if (lambda (r) (typep r 'fiveam::test-passed)) results)))
        (cond ((and results (null bad))
               (incf passed)
               (format t "ok lisp.~(~a~)~%" name))
              ((and bad (cl:every (lambda (r) (typep r 'fiveam::test-skipped)) bad))
               (format t "skip lisp.~(~a~): ~a~%" name (fiveam::reason (first bad))))
              (t
               (incf failed)
               (format t "FAIL lisp.~(~a~): ~a~%" name
                       (if bad
                           (substitute #\Space #\Newline
                                       (princ-to-string (fiveam::reason (first bad))))
                           "no checks ran"))))
        (finish-output)))
    (format t "~d passed, ~d failed~%" passed failed)
    (zerop failed)))
