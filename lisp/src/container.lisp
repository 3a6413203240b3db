;;;; container.lisp -- containers as CLOS objects.
;;;;
;;;; One CONTAINER object per name, kept in a registry: FIND-CONTAINER and
;;;; CONTAINERS hand out the same object every time and refresh it in place,
;;;; and the event follower (events.lisp) updates it from each event, so a
;;;; reference held at the REPL stays current without polling.  The object
;;;; holds the daemon's JSON for it as an immutable snapshot that is replaced
;;;; whole, so a reader on another thread never sees half an update.

(in-package #:clbsd)

(defclass container ()
  ((name :initarg :name :reader name :documentation "The container's name.")
   (json :initarg :json :initform (make-hash-table :test #'equal) :accessor %json
         :documentation "The daemon's last answer for it, never mutated.")
   (removed :initform nil :accessor removed-p
            :documentation "True once the daemon reported it removed.")
   (generation :initform 0 :accessor %generation
               :documentation "Bumped at every change of JSON (see INSTALL)."))
  (:documentation "A container of the daemon (native or Docker: see KIND), kept fresh from events."))

(defvar *registry* (make-hash-table :test #'equal :synchronized t)
  "Name -> CONTAINER, every container this image has seen.")

(defun ctr-name (designator)
  "The name of a container designator: a CONTAINER, a string or a symbol."
  (etypecase designator
    (container (name designator))
    (string designator)
    (symbol (string-downcase (symbol-name designator)))))

(defun kw (string)
  (and (stringp string) (plusp (length string))
       (intern (substitute #\- #\_ (string-upcase string)) :keyword)))

;;; Answers and events race: a GET answered while a container exits may
;;; arrive after the exit event was applied.  Every change of an object
;;; bumps its generation; an answer is installed only when the generation
;;; is the one seen before its request was sent (INSTALL), else the caller
;;; reads the container again (FRESH, in api.lisp).

(defvar *objects-lock* (bt:make-lock "clbsd containers"))

(defun generation-of (name)
  "NAME's object's generation (0 when there is no object)."
  (let ((c (gethash name *registry*)))
    (if c (%generation c) 0)))

(defun install (json generation)
  "Install JSON in its container's object if the object is still at
GENERATION; returns the object, or NIL when an event changed it meanwhile."
  (bt:with-lock-held (*objects-lock*)
    (let* ((name (gethash "name" json))
           (c (or (gethash name *registry*)
                  (setf (gethash name *registry*) (make-instance 'container :name name)))))
      (when (= (%generation c) generation)
        (setf (%json c) json (removed-p c) nil)
        (incf (%generation c))
        c))))

(defun intern-container (json)
  "The registry's object for JSON's name, its snapshot replaced by JSON.
Anything but a JSON object (a USE-VALUE restart's value) is returned as is."
  (unless (hash-table-p json)
    (return-from intern-container json))
  (bt:with-lock-held (*objects-lock*)
    (let* ((name (gethash "name" json))
           (c (or (gethash name *registry*)
                  (setf (gethash name *registry*) (make-instance 'container :name name)))))
      (setf (%json c) json (removed-p c) nil)
      (incf (%generation c))
      c)))

(defun amend (c &rest plist)
  "Replace C's snapshot by a copy with PLIST's string keys set."
  (bt:with-lock-held (*objects-lock*)
    (let ((new (make-hash-table :test #'equal)))
      (maphash (lambda (k v) (setf (gethash k new) v)) (%json c))
      (loop for (k v) on plist by #'cddr do (setf (gethash k new) v))
      (setf (%json c) new)
      (incf (%generation c))
      c)))

(defmethod print-object ((c container) stream)
  (print-unreadable-object (c stream :type t)
    (format stream "~a ~(~a~)~@[ ~a~]" (name c) (or (state c) "?") (address c))))

(defmacro define-reader (name (json) documentation &body body)
  `(progn
     (defgeneric ,name (container) (:documentation ,documentation))
     (defmethod ,name ((c container)) (let ((,json (%json c))) ,@body))))

(define-reader raw (j) "The daemon's whole JSON object for the container (a hash table)." j)
(define-reader id (j) "The 64-hex id." (jget j "id"))
(define-reader kind (j) "The runtime: :NATIVE, or :DOCKER for a container dockerd runs."
  (or (kw (jget j "kind")) :native))
(define-reader image (j) "The image reference it was made from." (jget j "image"))
(define-reader image-id (j) "The image's id." (jget j "image_id"))
(define-reader state (j) "One of :CREATED :RUNNING :RESTARTING :EXITED." (kw (jget j "state")))
(define-reader pid (j) "The init's pid on the host, 0 when not running." (or (jget j "pid") 0))
(define-reader exit-code (j) "The last exit status (128 + signal for a death by signal)."
  (jget j "exit_code"))
(define-reader exit-signal (j) "The signal number that ended it, 0 for none." (jget j "signal"))
(define-reader oom-killed-p (j) "True when the last run ended in the OOM killer." (jget j "oom_killed"))
(define-reader created-at (j) "RFC 3339 time of creation." (jget j "created_at"))
(define-reader started-at (j) "RFC 3339 time of the last start, or NIL." (jget j "started_at"))
(define-reader finished-at (j) "RFC 3339 time of the last exit, or NIL." (jget j "finished_at"))
(define-reader restart-count (j) "How often the restart policy restarted it." (jget j "restart_count"))
(define-reader start-error (j) "Why the last start failed, or NIL." (jget j "start_error"))
(define-reader managed-p (j) "True when the configuration declares it." (jget j "managed"))
(define-reader spec-hash (j) "The hash of its declared spec (managed only)." (jget j "spec_hash"))
(define-reader spec (j) "The declared spec, when the daemon reports it (else NIL)."
  (or (jget j "spec") (jget j "declared")))
(define-reader rootfs (j) "Its root file system on the host." (jget j "rootfs"))
(define-reader storage-driver (j) ":OVERLAY, :COPY or :ZFS." (kw (jget j "storage")))
(define-reader shim-pid (j) "Its shim's pid, 0 when not running." (or (jget j "shim_pid") 0))
(define-reader userns (j) "Its user namespace mapping (uid gid count), or NIL."
  (let ((u (jget j "config" "userns")))
    (and (hash-table-p u) (list :uid (jget u "uid") :gid (jget u "gid") :count (jget u "count")))))
(define-reader undo-info (j) "What its last recreate set aside (image, running, set-aside-at), or NIL."
  (let ((u (jget j "undo")))
    (and (hash-table-p u) (plistify u))))
(define-reader cgroup (j) "Its cgroup path below each hierarchy." (jget j "cgroup"))
(define-reader health (j) "NIL, :STARTING, :HEALTHY or :UNHEALTHY." (kw (jget j "health" "status")))
(define-reader health-details (j) "The daemon's health object (status, failures, checks, log)."
  (jget j "health"))
(define-reader command (j) "The command (argv list)." (jget j "config" "command"))
(define-reader env (j) "The environment, a list of \"K=V\"." (jget j "config" "env"))
(define-reader workdir (j) "The working directory." (jget j "config" "workdir"))
(define-reader user (j) "The user, \"UID:GID\"." (jget j "config" "user"))
(define-reader hostname (j) "The hostname inside." (jget j "config" "hostname"))
(define-reader tty-p (j) "True when it has a terminal." (jget j "config" "tty"))
(define-reader volumes (j) "Its volumes: a list of plists (:source :dest :readonly)."
  (mapcar (lambda (v) (list :source (jget v "source") :dest (jget v "dest")
                            :readonly (jget v "readonly")))
          (jget j "config" "volumes")))
(define-reader memory-limit (j) "Memory limit in bytes, NIL for none."
  (let ((m (jget j "config" "limits" "memory"))) (and m (plusp m) m)))
(define-reader pids-limit (j) "Process limit, NIL for none."
  (let ((m (jget j "config" "limits" "pids"))) (and m (plusp m) m)))
(define-reader cpu-limit (j) "CPU limit (number of CPUs), NIL for none."
  (let ((m (jget j "config" "limits" "cpus"))) (and m (plusp m) m)))
(define-reader restart-policy (j) "\"no\", \"always\", \"on-failure\" or \"on-failure:N\"."
  (let ((p (jget j "config" "restart" "policy")) (n (jget j "config" "restart" "max_retries")))
    (if (and (equal p "on-failure") n (plusp n)) (format nil "on-failure:~d" n) p)))
(define-reader auto-remove-p (j) "True when it is removed at its exit." (jget j "config" "auto_remove"))
(define-reader network-mode (j) ":NETWORKS, :HOST or :NONE." (kw (jget j "network" "mode")))
(define-reader addresses (j) "Its networks in order: a list of (NETWORK . IP)."
  (mapcar (lambda (n) (cons (jget n "name") (jget n "ip"))) (jget j "network" "networks")))
(define-reader address (j) "Its address on its first network, or NIL."
  (jget (first (jget j "network" "networks")) "ip"))
(define-reader aliases (j) "Extra names its peers reach it by." (jget j "network" "aliases"))
(define-reader ports (j) "Published ports: \"[IP:]HOST:CTR[/proto]\" strings."
  (jget j "network" "publish"))
(define-reader domain (j) "The ingress domain(s), when the daemon reports them (else NIL)."
  (or (jget j "domain") (jget j "ingress" "domain")))
(define-reader service-port (j) "The port it serves on (:port), when the daemon reports it."
  (or (jget j "port") (jget j "ingress" "port")))

(defgeneric running-p (container)
  (:documentation "True when the container runs (or is restarting).")
  (:method ((c container)) (member (state c) '(:running :restarting))))
