;;;; events.lisp -- the event follower, callbacks, and one worker per container.
;;;;
;;;; Invariants:
;;;; - One reader thread follows GET /v1/events?follow=1&since=LAST.  It
;;;;   keeps LAST, the sequence number of the last event it handed on, skips
;;;;   any event at or below it, and reconnects with it after an error, a
;;;;   daemon restart or an events.dropped notice: no event is lost or
;;;;   delivered twice (the daemon's numbers continue across its restarts).
;;;; - The reader never runs user code and never waits on the network for
;;;;   anyone but the daemon: it updates the container objects from the
;;;;   event's own attributes and puts the event in the mailbox of the
;;;;   container's worker (the global worker for events without a container).
;;;; - Each worker is one thread with one mailbox: the events of a container
;;;;   are handled in order, different containers in parallel, and a slow or
;;;;   failing callback delays only its own container's later events.  A
;;;;   callback's error is caught, logged, kept in CALLBACK-ERRORS and
;;;;   delivered as a local :CALLBACK-FAILED event; the worker goes on.

(in-package #:clbsd)

(defstruct (event (:constructor make-event (seq type time container attrs)))
  "An event of the daemon: SEQ (its number), TYPE (\"container.exited\"),
TIME (RFC 3339), CONTAINER (a name or NIL), ATTRS (a hash table)."
  seq type time container attrs)

(defun event-attr (event key)
  "An attribute of EVENT: KEY is a string (\"exit_code\") or a keyword (:exit-code)."
  (jget (event-attrs event)
        (if (symbolp key) (substitute #\_ #\- (string-downcase (symbol-name key))) key)))

(defun parse-event (line)
  (let ((j (from-json line)))
    (make-event (jget j "seq") (jget j "type") (jget j "time") (jget j "container")
                (or (jget j "attrs") (make-hash-table :test #'equal)))))

(defvar *log-function*
  (lambda (fmt &rest args)
    (ignore-errors
     (format *error-output* "~&clbsd: ~?~%" fmt args)
     (finish-output *error-output*)))
  "Called as (FUNCTION FORMAT-CONTROL &rest ARGS) for what the library logs.")

(defun log-msg (fmt &rest args)
  (apply *log-function* fmt args))

;;; Callbacks

(defstruct (callback (:print-object
                      (lambda (cb s)
                        (print-unreadable-object (cb s :type t)
                          (format s "~s ~s ~a" (callback-target cb) (callback-event cb)
                                  (or (callback-name cb) ""))))))
  target event function name)

(defvar *lock* (bt:make-recursive-lock "clbsd events"))
(defvar *callbacks* '() "Every registered CALLBACK, newest first.")
(defvar *callback-errors* '() "The last failures of callbacks, newest first.")
(defparameter *max-callback-errors* 100)

(defparameter *event-keywords*
  '((:created . "container.created") (:started . "container.started")
    (:exited . "container.exited") (:oom . "container.oom")
    (:health . "container.health") (:restarting . "container.restarting")
    (:stopped . "container.stopped") (:removed . "container.removed")
    (:adopted . "container.adopted") (:updated . "container.updated")
    (:file-changed . "file.changed") (:timer . "timer.fired")
    (:hook-failed . "hook.failed") (:callback-failed . "callback.failed"))
  "ON's event keywords and the daemon's event types they stand for.")

(defun event-type-of (keyword)
  (or (cdr (assoc keyword *event-keywords*))
      (format nil "container.~a" (substitute #\_ #\- (string-downcase (symbol-name keyword))))))

(defun type-matches (want type)
  "WANT (:ANY, a keyword or a daemon type or dotted prefix) matches TYPE."
  (cond ((eq want :any) (string/= type "callback.failed"))
        ((keywordp want) (string= (event-type-of want) type))
        (t (or (string= want type)
               (and (> (length type) (length want))
                    (string= want type :end2 (length want))
                    (char= (char type (length want)) #\.))))))

(defun callback-matches (cb event)
  (let ((target (callback-target cb)))
    (and (type-matches (callback-event cb) (event-type event))
         (or (eq target :any) (equal target (event-container event))))))

(defun on (target event function &key name)
  "Call FUNCTION with (CONTAINER EVENT) for every EVENT of TARGET.
TARGET is a container designator or :ANY; EVENT is :CREATED :STARTED
:EXITED :OOM :HEALTH :RESTARTING :STOPPED :REMOVED :ADOPTED :UPDATED
:FILE-CHANGED :TIMER :HOOK-FAILED :CALLBACK-FAILED, :ANY, or a daemon event
type or prefix (\"image\", \"config.loaded\").  CONTAINER is the CONTAINER
object (NIL for events of no container).  Starts following the daemon's
events if nothing follows them yet.  NAME replaces an earlier callback of
that name.  Returns the callback, for OFF.
  (on \"web\" :exited (lambda (c e) (format t \"~a: ~a~%\" (name c) (event-attr e :exit-code))))"
  (check-type function (or function symbol))
  (let ((cb (make-callback :target (if (eq target :any) :any (ctr-name target))
                           :event event :function function :name name)))
    (bt:with-recursive-lock-held (*lock*)
      (when name
        (setf *callbacks* (remove name *callbacks* :key #'callback-name :test #'equal)))
      (push cb *callbacks*))
    (start-following)
    cb))

(defun off (callback-or-target &optional (event :any))
  "Remove callbacks: a CALLBACK returned by ON, every callback of a name
(a string given as ON's :NAME), or every one of a target (a container or
:ANY) for EVENT (every event when :ANY).  Returns how many were removed.
  (off cb)  (off \"web\")  (off :any :exited)"
  (bt:with-recursive-lock-held (*lock*)
    (let* ((before (length *callbacks*))
           (keep (remove-if
                  (lambda (cb)
                    (typecase callback-or-target
                      (callback (eq cb callback-or-target))
                      (t (let ((target (if (eq callback-or-target :any)
                                           :any (ctr-name callback-or-target))))
                           (or (equal (callback-name cb) target)
                               (and (equal (callback-target cb) target)
                                    (or (eq event :any)
                                        (equal (callback-event cb) event))))))))
                  *callbacks*)))
      (setf *callbacks* keep)
      (- before (length keep)))))

(defun callbacks ()
  "The registered callbacks, oldest first."
  (reverse *callbacks*))

(defun callback-errors ()
  "The last callback failures, newest first: plists (:time :callback :event :condition)."
  *callback-errors*)

;;; Workers

(defstruct worker key mailbox thread)

(defvar *workers* (make-hash-table :test #'equal :synchronized t)
  "Container name (or :GLOBAL) -> its WORKER.")

(defun run-callbacks (container event)
  (dolist (cb (reverse *callbacks*))
    (when (callback-matches cb event)
      (handler-case (funcall (callback-function cb) container event)
        (error (condition)
          (callback-failed cb event condition))))))

(defun callback-failed (cb event condition)
  (let ((text (ignore-errors (princ-to-string condition))))
    (log-msg "callback ~a for ~a (event ~a ~a) failed: ~a"
             (or (callback-name cb) (callback-function cb))
             (or (event-container event) "-") (event-seq event) (event-type event) text)
    (bt:with-recursive-lock-held (*lock*)
      (push (list :time (get-universal-time) :callback cb :event event :condition condition)
            *callback-errors*)
      (when (> (length *callback-errors*) *max-callback-errors*)
        (setf *callback-errors* (subseq *callback-errors* 0 *max-callback-errors*))))
    (unless (equal (event-type event) "callback.failed")
      (let ((attrs (make-hash-table :test #'equal)))
        (setf (gethash "error" attrs) text
              (gethash "event_seq" attrs) (event-seq event)
              (gethash "event_type" attrs) (event-type event)
              (gethash "callback" attrs) (princ-to-string (or (callback-name cb)
                                                               (callback-function cb))))
        (enqueue (or (event-container event) :global)
                 (make-event 0 "callback.failed" nil (event-container event) attrs))))))

(defparameter *refresh-types*
  '("container.created" "container.started" "container.adopted" "container.updated"
    "container.health" "container.undone" "container.rollback")
  "Events after which a worker reads the container again before its callbacks run.")

(defun handle-item (key item)
  (etypecase item
    (function (handler-case (funcall item)
                (error (e) (log-msg "timer on ~a failed: ~a" key e))))
    (event
     (let* ((name (event-container item))
            (c (and name (or (gethash name *registry*)
                             (make-instance 'container :name name)))))
       (when (and c (member (event-type item) *refresh-types* :test #'string=))
         (handler-case
             (fresh name (lambda () (request-once "GET" (ctr-path name) nil nil)))
           (error () nil)))
       (run-callbacks c item)))))

(defvar *retiring* (make-hash-table :test #'equal :synchronized t)
  "Container name -> the thread of its retired worker, still finishing.")

(defun worker-loop (worker)
  ;; A worker made for a name whose last worker was retired (a container
  ;; removed and made again) starts once that one is done: one name's
  ;; events stay in order even across its removal.
  (let ((previous (gethash (worker-key worker) *retiring*)))
    (when (and previous (not (eq previous (bt:current-thread))))
      (ignore-errors (bt:join-thread previous))
      (sb-ext:with-locked-hash-table (*retiring*)
        (when (eq (gethash (worker-key worker) *retiring*) previous)
          (remhash (worker-key worker) *retiring*)))))
  (loop for item = (sb-concurrency:receive-message (worker-mailbox worker))
        until (eq item :quit)
        do (handler-case (handle-item (worker-key worker) item)
             (error (e) (log-msg "worker ~a: ~a" (worker-key worker) e)))))

(defun worker-for (key)
  (bt:with-recursive-lock-held (*lock*)
    (or (gethash key *workers*)
        (let ((w (make-worker :key key :mailbox (sb-concurrency:make-mailbox))))
          (setf (worker-thread w)
                (bt:make-thread (lambda () (worker-loop w))
                                :name (format nil "clbsd worker ~a" key)))
          (setf (gethash key *workers*) w)))))

(defun enqueue (key item)
  (sb-concurrency:send-message (worker-mailbox (worker-for key)) item))

(defun retire-worker (key)
  (bt:with-recursive-lock-held (*lock*)
    (let ((w (gethash key *workers*)))
      (when w
        (remhash key *workers*)
        (setf (gethash key *retiring*) (worker-thread w))
        (sb-concurrency:send-message (worker-mailbox w) :quit)))))

;;; Keeping container objects fresh from the events' own attributes.

(defun apply-event (event)
  (let* ((name (event-container event))
         (c (and name (gethash name *registry*)))
         (type (event-type event)))
    (when c
      (cond ((string= type "container.started")
             (amend c "state" "running" "pid" (or (event-attr event "pid") (pid c))))
            ((string= type "container.exited")
             (amend c "state" "exited" "pid" 0 "exit_code" (event-attr event "exit_code")
                      "signal" (event-attr event "signal")
                      "oom_killed" (event-attr event "oom_killed")
                      "finished_at" (event-time event)))
            ((string= type "container.restarting")
             (amend c "state" "restarting" "restart_count" (event-attr event "restart_count")))
            ((string= type "container.health")
             (let ((h (make-hash-table :test #'equal)))
               (when (hash-table-p (jget (%json c) "health"))
                 (maphash (lambda (k v) (setf (gethash k h) v)) (jget (%json c) "health")))
               (setf (gethash "status" h) (event-attr event "status")
                     (gethash "failures" h) (event-attr event "failures"))
               (amend c "health" h)))
            ((string= type "container.removed")
             (setf (removed-p c) t)
             (remhash name *registry*))))))

(defun dispatch (event)
  (apply-event event)
  (let* ((name (event-container event))
         (key (or name :global)))
    (when (or (some (lambda (cb) (callback-matches cb event)) *callbacks*)
              (and name (gethash name *registry*)
                   (member (event-type event) *refresh-types* :test #'string=)))
      (enqueue key event))
    (when (and name (string= (event-type event) "container.removed"))
      (retire-worker name))))

;;; The follower

(defvar *last-seq* nil "The sequence number of the last event handed on.")
(defvar *follower* nil "The reader thread, or NIL.")
(defvar *follow-conn* nil)
(defvar *stop-following* nil)

(defun last-seq ()
  "The sequence number of the last event the follower handed on (NIL before any)."
  *last-seq*)

(defun current-seq ()
  "The number of the daemon's newest event (0 when it has none)."
  (clbsd.http:with-request (conn "GET" "/v1/events")
    (let ((last 0))
      (loop for line = (clbsd.http:read-body-line conn)
            while line
            do (let ((seq (ignore-errors (jget (from-json line) "seq"))))
                 (when (and (integerp seq) (> seq last)) (setf last seq))))
      last)))

(defun follow-once ()
  "Follow from *LAST-SEQ* until the stream ends; NIL when it ended cleanly."
  (clbsd.http:with-request (conn "GET" (query "/v1/events" "follow" t "since" *last-seq*))
    (setf *follow-conn* conn)
    (let ((status (clbsd.http::connection-status conn)))
      (when (>= status 400)
        (error "GET /v1/events answered ~d" status)))
    (loop for line = (clbsd.http:read-body-line conn)
          while (and line (not *stop-following*))
          do (let ((event (handler-case (parse-event line)
                            (error (e) (log-msg "bad event line ~s: ~a" line e) nil))))
               (when event
                 (cond ((equal (event-type event) "events.dropped")
                        ;; The daemon dropped events for us: ask again from LAST.
                        (log-msg "~a events dropped; reading them again from ~a"
                                 (event-attr event "dropped") *last-seq*)
                        (return))
                       ((and (integerp (event-seq event))
                             (or (null *last-seq*) (> (event-seq event) *last-seq*)))
                        (setf *last-seq* (event-seq event))
                        (dispatch event))))))))

(defun follow-loop ()
  (let ((backoff 0.05) (failing nil))
    (loop until *stop-following*
          do (handler-case
                 (progn
                   (unless *last-seq* (setf *last-seq* (current-seq)))
                   (when failing
                     (log-msg "event stream: following again from ~a" *last-seq*)
                     (setf failing nil))
                   (follow-once)
                   (setf backoff 0.05))
               (error (e)
                 ;; Said once per outage, not once per attempt.
                 (unless (or *stop-following* failing)
                   (setf failing t)
                   (log-msg "event stream: ~a; reconnecting from ~a" e *last-seq*))))
             (setf *follow-conn* nil)
             (unless *stop-following*
               (sleep backoff)
               (setf backoff (min 1.0 (* 2 backoff)))))))

(defun following-p ()
  "True while the event follower runs."
  (and *follower* (bt:thread-alive-p *follower*) t))

(defun start-following (&key since)
  "Start the event follower unless it runs.  SINCE (a sequence number)
replays the events after it first; by default it starts with new events.
ON calls this; the control plane calls it at start."
  (bt:with-recursive-lock-held (*lock*)
    (unless (following-p)
      (setf *stop-following* nil)
      (when since (setf *last-seq* since))
      (unless *last-seq*
        (setf *last-seq* (handler-case (current-seq) (error () nil))))
      (setf *follower* (bt:make-thread #'follow-loop :name "clbsd events"))))
  *follower*)

(defun stop-following ()
  "Stop the event follower (callbacks stay registered; LAST-SEQ is kept, so a
later START-FOLLOWING resumes where this one stopped)."
  (let ((thread *follower*))
    (when thread
      (setf *stop-following* t)
      (let ((conn *follow-conn*))
        (when (and conn (clbsd.http::connection-socket conn))
          (ignore-errors (sb-bsd-sockets:socket-shutdown
                          (clbsd.http::connection-socket conn) :direction :io))))
      (handler-case (sb-thread:join-thread thread :timeout 5 :default nil)
        (error () nil))
      (when (bt:thread-alive-p thread) (ignore-errors (bt:destroy-thread thread)))
      (setf *follower* nil))
    t))

;;; Reading events directly (without callbacks)

(defun events (&key since container type)
  "The events the daemon keeps (after SINCE; of CONTAINER; of TYPE or a
dotted prefix), oldest first, as EVENT structures.
  (events :container \"web\" :type \"container.exited\")"
  (clbsd.http:with-request (conn "GET" (query "/v1/events" "since" since
                                              "container" (and container (ctr-name container))
                                              "type" type))
    (let ((status (clbsd.http::connection-status conn)))
      (when (>= status 400)
        (signal-daemon-error status (sb-ext:octets-to-string (clbsd.http:read-body conn))
                             "GET /v1/events")))
    (loop for line = (clbsd.http:read-body-line conn)
          while line
          when (plusp (length line)) collect (parse-event line))))

(defun follow-events (function &key since container type)
  "Call FUNCTION with each event as it comes (after SINCE first, when
given), in this thread, until FUNCTION returns :STOP or the stream ends.
Callbacks (ON) are the usual way; this is the raw stream.
  (follow-events (lambda (e) (print (event-type e)) nil) :type \"container\")"
  (clbsd.http:with-request (conn "GET" (query "/v1/events" "follow" t "since" since
                                              "container" (and container (ctr-name container))
                                              "type" type))
    (loop for line = (clbsd.http:read-body-line conn)
          while line
          until (and (plusp (length line))
                     (eq (funcall function (parse-event line)) :stop)))))
