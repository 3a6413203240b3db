;;;; timers.lisp -- (every "1h" fn) and per-container timers.
;;;;
;;;; A timer is a thread that sleeps and then hands its function to a worker:
;;;; a container's timer to that container's worker (so it runs in order
;;;; with the container's callbacks, never beside them), a global timer to
;;;; the :TIMERS worker.  A slow timer function delays only its own worker.

(in-package #:clbsd)

(defun parse-duration (duration)
  "Seconds in DURATION: a number of seconds, or a string of numbers with
units ns us ms s m h d, summed (\"1h30m\", \"250ms\"), as in the config files."
  (etypecase duration
    (real duration)
    (string
     (let ((total 0) (i 0) (n (length duration)))
       (when (zerop n) (error 'invalid-argument :code "invalid_argument"
                                                :message "empty duration"))
       (loop while (< i n)
             do (let* ((end (or (position-if-not (lambda (ch) (or (digit-char-p ch) (char= ch #\.)))
                                                 duration :start i)
                                n))
                       (number (and (> end i)
                                    (let ((*read-default-float-format* 'double-float))
                                      (with-standard-io-syntax
                                        (read-from-string duration t nil :start i :end end)))))
                       (uend (or (position-if (lambda (ch) (or (digit-char-p ch) (char= ch #\.)))
                                              duration :start end)
                                 n))
                       (unit (subseq duration end uend))
                       (factor (cdr (assoc unit '(("ns" . 1/1000000000) ("us" . 1/1000000)
                                                  ("ms" . 1/1000) ("s" . 1) ("m" . 60)
                                                  ("h" . 3600) ("d" . 86400))
                                           :test #'string=))))
                  (unless (and (realp number) factor)
                    (error 'invalid-argument :code "invalid_argument"
                                             :message (format nil "bad duration ~s: write numbers with units ns us ms s m h d, e.g. \"1h30m\"" duration)))
                  (incf total (* number factor))
                  (setf i uend)))
       total))))

(defstruct (timer (:print-object
                   (lambda (tm s)
                     (print-unreadable-object (tm s :type t)
                       (format s "every ~as~@[ ~a~]~@[ ~a~]~:[~; cancelled~]"
                               (timer-seconds tm) (timer-container tm) (timer-name tm)
                               (timer-cancelled tm))))))
  seconds function container name thread (cancelled nil))

(defvar *timers* '() "Running timers, newest first.")

(defun fire (tm)
  (let ((fn (timer-function tm)) (name (timer-container tm)))
    (if name
        (enqueue name (lambda ()
                        (funcall fn (or (gethash name *registry*)
                                        (make-instance 'container :name name)))))
        (enqueue :timers fn))))

(defun timer-loop (tm)
  (loop
    (let ((deadline (+ (get-internal-real-time)
                       (* (timer-seconds tm) internal-time-units-per-second))))
      (loop for left = (/ (- deadline (get-internal-real-time)) internal-time-units-per-second)
            while (and (plusp left) (not (timer-cancelled tm)))
            do (sleep (min left 0.25)))
      (when (timer-cancelled tm) (return))
      (fire tm))))

(defun every (interval function &key container name)
  "Call FUNCTION every INTERVAL (\"1h\", \"30s\", or seconds).  With
CONTAINER, FUNCTION gets the container and runs on that container's worker,
in order with its callbacks; without, it gets no argument and runs on the
timers' worker.  NAME replaces an earlier timer of that name.  Returns the
timer, for CANCEL-TIMER.
  (every \"1h\" (lambda () (snapshot \"db\")))
  (every \"5m\" (lambda (c) (unless (running-p c) (start-container c))) :container \"web\")"
  (let ((seconds (parse-duration interval)))
    (unless (plusp seconds)
      (error 'invalid-argument :code "invalid_argument"
                               :message (format nil "timer interval ~s is not positive" interval)))
    (let ((tm (make-timer :seconds seconds :function function
                          :container (and container (ctr-name container)) :name name)))
      (bt:with-recursive-lock-held (*lock*)
        (when name
          (dolist (old (remove name *timers* :key #'timer-name :test-not #'equal))
            (cancel-timer old)))
        (push tm *timers*))
      (setf (timer-thread tm)
            (bt:make-thread (lambda () (timer-loop tm))
                            :name (format nil "clbsd timer ~a" (or name seconds))))
      tm)))

(defun cancel-timer (timer)
  "Stop TIMER (a timer or its name).  Returns T when one was running."
  (bt:with-recursive-lock-held (*lock*)
    (let ((tm (if (timer-p timer) timer (find timer *timers* :key #'timer-name :test #'equal))))
      (when tm
        (setf (timer-cancelled tm) t
              *timers* (remove tm *timers*))
        t))))

(defun timers ()
  "The running timers, oldest first."
  (reverse *timers*))
