;;;; bench.lisp -- bench/lisp's measurements, in one SBCL process.
;;;;
;;;; 1. Exit -> callback: N containers run `true` one after another; for
;;;;    each, the time from the daemon's container.exited event (its "time",
;;;;    the daemon noticing the exit) to a callback registered with ON
;;;;    running, and to `clbsd events -f --json` printing the same event (a
;;;;    child process whose lines this process timestamps as they arrive).
;;;;    Both are measured against the same clock, in the same run.
;;;; 2. Round trip: with M containers, (containers) against `clbsd ps -a
;;;;    --json` (a process per call, as a user runs it).

(defpackage #:clbsd.bench
  (:use #:cl #:clbsd)
  (:shadowing-import-from #:clbsd #:every))
(in-package #:clbsd.bench)

(defun now-ns ()
  (multiple-value-bind (s ns) (sb-unix::clock-gettime sb-unix:clock-realtime)
    (+ (* s 1000000000) ns)))

(defun rfc3339-ns (string)
  "Unix nanoseconds of \"2026-12-07T05:10:56.267123456Z\"."
  (flet ((num (start end) (parse-integer string :start start :end end)))
    (let* ((secs (- (encode-universal-time (num 17 19) (num 14 16) (num 11 13)
                                           (num 8 10) (num 5 7) (num 0 4) 0)
                    2208988800))
           (dot (position #\. string))
           (z (position #\Z string))
           (frac (if dot (subseq string (1+ dot) z) "0"))
           (ns (* (parse-integer frac) (expt 10 (- 9 (length frac))))))
      (+ (* secs 1000000000) ns))))

(defun pct (values p)
  (let ((v (sort (copy-list values) #'<)))
    (nth (min (1- (length v)) (floor (* p (length v)))) v)))

(defun ms (ns) (/ ns 1d6))

(defun exit-latency (n cli socket)
  (let* ((proc (sb-ext:run-program cli (list "--socket" socket "events" "-f" "--json"
                                             "--type" "container.exited")
                                   :output :stream :wait nil :search nil))
         (lock (bt:make-lock))
         (cli-seen (make-hash-table :test #'equal))
         (lisp-seen (make-hash-table :test #'equal))
         (reader (bt:make-thread
                  (lambda ()
                    (loop for line = (read-line (sb-ext:process-output proc) nil)
                          while line
                          do (let* ((at (now-ns))
                                    (j (yason:parse line)))
                               (bt:with-lock-held (lock)
                                 (setf (gethash (gethash "container" j) cli-seen)
                                       (- at (rfc3339-ns (gethash "time" j))))))))
                  :name "cli reader")))
    (on :any :exited (lambda (c e)
                       (let ((at (now-ns)))
                         (bt:with-lock-held (lock)
                           (setf (gethash (name c) lisp-seen)
                                 (- at (rfc3339-ns (event-time e))))))))
    (sleep 1)
    (dotimes (i n)
      (let ((name (format nil "lat~d" i)))
        (run-container "forge" :name name :command '("true"))
        (loop repeat 500
              until (bt:with-lock-held (lock)
                      (and (gethash name cli-seen) (gethash name lisp-seen)))
              do (sleep 0.005))
        (remove-container name :force t)))
    (sb-ext:process-kill proc 15)
    (sb-ext:process-wait proc)
    (ignore-errors (bt:join-thread reader))
    (let ((lisp (loop for v being the hash-values of lisp-seen collect v))
          (clis (loop for v being the hash-values of cli-seen collect v)))
      (format t "exit -> callback (~d exits):      p50 ~,2f ms  p99 ~,2f ms~%"
              (length lisp) (ms (pct lisp 0.5)) (ms (pct lisp 0.99)))
      (format t "exit -> clbsd events -f (~d):     p50 ~,2f ms  p99 ~,2f ms~%"
              (length clis) (ms (pct clis 0.5)) (ms (pct clis 0.99)))
      (format t "callback - CLI:                    p50 ~,2@f ms  (target: callback p50 <= 5 ms, within 2 ms of the CLI)~%"
              (- (ms (pct lisp 0.5)) (ms (pct clis 0.5)))))))

(defun time-ns (fn)
  (let ((start (now-ns))) (funcall fn) (- (now-ns) start)))

(defun round-trip (m reps cli socket)
  (dotimes (i m)
    (create-container "forge" :name (format nil "rt~d" i) :command '("true")))
  (let ((count (length (containers))))
    (let ((raw (loop repeat reps
                     collect (time-ns (lambda ()
                                        (clbsd::call "GET" "/v1/containers?all=1" :raw t)))))
          (lisp (loop repeat reps collect (time-ns (lambda () (containers)))))
          (clis (loop repeat reps
                      collect (time-ns
                               (lambda ()
                                 (sb-ext:run-program cli (list "--socket" socket "ps" "-a" "--json")
                                                     :output nil :search nil))))))
      (format t "(containers), ~d containers:      p50 ~,2f ms  p99 ~,2f ms~%"
              count (ms (pct lisp 0.5)) (ms (pct lisp 0.99)))
      (format t "  of which the request alone:     p50 ~,2f ms (the rest is JSON parsing)~%"
              (ms (pct raw 0.5)))
      (format t "clbsd ps -a --json, ~d containers: p50 ~,2f ms  p99 ~,2f ms~%"
              count (ms (pct clis 0.5)) (ms (pct clis 0.99)))))
  (dotimes (i m)
    (remove-container (format nil "rt~d" i) :force t)))

(defun main (&key (exits 200) (containers 100) (reps 50))
  (let ((cli (sb-posix:getenv "CLBSD_CLI"))
        (socket (sb-posix:getenv "CLBSD_SOCKET")))
    (exit-latency exits cli socket)
    (round-trip containers reps cli socket)))
