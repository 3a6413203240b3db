;;;; api.lisp -- the daemon's API as Lisp functions.
;;;;
;;;; Container arguments are designators: a CONTAINER, a name string or a
;;;; symbol (WEB means "web").  Answers about containers are CONTAINER
;;;; objects from the registry; every other answer is a plist with keyword
;;;; keys (:op :create :name "web"), nested the same way, easy to read at the
;;;; REPL.  Names avoid COMMON-LISP's symbols (APPLY-CONFIG, REMOVE-CONTAINER).

(in-package #:clbsd)

(defun keyword-key (string)
  (intern (substitute #\- #\_ (string-upcase string)) :keyword))

(defun plistify (value)
  "Parsed JSON with objects turned into plists (keyword keys, recursively)."
  (cond ((hash-table-p value)
         (let ((keys (sort (loop for k being the hash-keys of value collect k) #'string<)))
           (loop for k in keys
                 append (list (keyword-key k) (plistify (gethash k value))))))
        ((consp value) (mapcar #'plistify value))
        (t value)))

(defun json-value (value)
  "A Lisp value as the API wants it: symbols as lower-case strings, T and
NIL as booleans, dotted pairs (\"K\" . \"V\") as \"K=V\"."
  (cond ((eq value t) t)
        ((null value) 'yason:false)
        ((keywordp value) (string-downcase (symbol-name value)))
        ((symbolp value) (string-downcase (symbol-name value)))
        ((and (consp value) (atom (cdr value)) (cdr value))
         (format nil "~a=~a" (car value) (cdr value)))
        ((and (consp value) (keywordp (first value)))
         ;; A plist is a JSON object.
         (let ((h (make-hash-table :test #'equal)))
           (loop for (k v) on value by #'cddr
                 do (setf (gethash (substitute #\_ #\- (string-downcase (symbol-name k))) h)
                          (json-value v)))
           h))
        ((consp value) (mapcar #'json-value value))
        (t value)))

;;; The keys of a create request (POST /v1/containers), by their Lisp name.
(defparameter *create-keys*
  '((:image "image") (:command "command") (:env "env") (:volumes "volumes")
    (:workdir "workdir") (:user "user") (:hostname "hostname") (:tty "tty")
    (:stdin "stdin") (:memory "memory") (:pids "pids") (:cpus "cpus")
    (:restart "restart") (:auto-remove "auto_remove") (:network "network")
    (:ip "ip") (:aliases "aliases") (:dns "dns") (:publish "publish")
    (:userns "userns") (:storage "storage") (:stop-signal "stop_signal"))
  "Lisp keyword -> the API's create-body key.")

(defparameter *spec-keys*
  '((:entrypoint "entrypoint") (:labels "labels") (:cap-add "cap_add")
    (:cap-drop "cap_drop") (:sysctls "sysctls") (:devices "devices"))
  "Keys of a declaration (and the create body) CREATE-CONTAINER does not take.")

(defun volume-json (v)
  "A volume as the API's {source, dest, readonly}; accepts that form as a
plist (:source :dest :readonly) or the config's (:bind SRC :path DEST :ro B)."
  (if (and (consp v) (keywordp (first v)))
      (obj "source" (or (getf v :source) (getf v :bind) (getf v :dataset))
           "dest" (or (getf v :dest) (getf v :path))
           "readonly" (if (or (getf v :readonly) (getf v :ro)) t 'yason:false))
      v))

(defun request-body (plist &key (keys *create-keys*) name)
  "The JSON object for PLIST's keys; an unknown key signals UNSUPPORTED-KEY."
  (let ((h (make-hash-table :test #'equal)))
    (when name (setf (gethash "name" h) name))
    (loop for (k v) on plist by #'cddr
          for entry = (assoc k keys)
          do (unless entry
               (error 'unsupported-key :code "invalid_argument"
                      :message (format nil "unknown key ~s; known keys: ~{~s~^ ~}"
                                       k (mapcar #'first keys))))
             (setf (gethash (second entry) h)
                   (case k
                     (:volumes (mapcar #'volume-json v))
                     (:restart (if (and (consp v) (string-equal (string (first v)) "on-failure"))
                                   (format nil "on-failure:~d" (second v))
                                   (json-value v)))
                     ((:command :aliases :dns :publish :env :entrypoint :cap-add :cap-drop
                       :devices)
                      (mapcar #'json-value (if (listp v) v (list v))))
                     ;; ("K" . "V") or the config's ("K" "V"): "K=V".
                     ((:labels :sysctls)
                      (mapcar (lambda (p)
                                (if (consp p)
                                    (format nil "~a=~a" (car p)
                                            (if (consp (cdr p)) (second p) (cdr p)))
                                    p))
                              v))
                     ;; Keys only the configuration has take their value as the
                     ;; file writes it (PATCH, docs/api.md): a list goes as its text.
                     ((:health :on :ingress :tls :snapshots :depends-on :domain :kind :path)
                      (if (consp v)
                          (let ((*print-case* :downcase)) (prin1-to-string v))
                          (json-value v)))
                     (t (json-value v)))))
    h))

(defun ctr-path (c &optional suffix)
  (format nil "/v1/containers/~a~@[/~a~]" (seg (ctr-name c)) suffix))

;;; Containers

(defun fresh (c thunk)
  "Run THUNK, a request answered with C's container, and install the
answer in C's object; if an event changed the object while the request
ran, read the container again until an answer is not older than the events."
  (let* ((name (ctr-name c))
         (generation (generation-of name))
         (json (funcall thunk)))
    (loop repeat 5
          do (unless (hash-table-p json)
               (return-from fresh json))
             (let ((obj (install json generation)))
               (when obj (return-from fresh obj)))
             (setf generation (generation-of name)
                   json (handler-case (request-once "GET" (ctr-path name) nil nil)
                          (clbsd-error () (return-from fresh (gethash name *registry*))))))
    (intern-container json)))

(defmacro with-fresh ((c) &body request)
  `(fresh ,c (lambda () ,@request)))

(defun containers (&key (all t))
  "Every container (only running ones when ALL is NIL), as CONTAINER objects.
  (containers) => (#<CONTAINER web running 10.88.0.2> ...)"
  (let* ((before (bt:with-lock-held (*objects-lock*)
                   (loop for name being the hash-keys of *registry* using (hash-value c)
                         collect (cons name (%generation c)))))
         (answer (call "GET" (query "/v1/containers" "all" all))))
    (if (listp answer)
        (mapcar (lambda (json)
                  (let ((name (gethash "name" json)))
                    ;; A container an event changed meanwhile keeps the event's news.
                    (or (install json (or (cdr (assoc name before :test #'equal)) 0))
                        (gethash name *registry*)
                        (intern-container json))))
                answer)
        answer)))

(defun find-container (c &key wait-start)
  "The container named by C, fresh from the daemon (NOT-FOUND if none).
WAIT-START waits for a start in progress to finish.
  (find-container \"web\")  (find-container 'web)"
  (with-fresh (c) (call "GET" (query (ctr-path c) "wait_start" wait-start))))

(defun refresh (c)
  "Read C again from the daemon (normally the event follower does it)."
  (find-container c))

(defun create-container (image &rest keys &key name start &allow-other-keys)
  "Create a container from IMAGE; KEYS are the create body's (:command :env
:memory :pids :cpus :restart :volumes :publish :network :ip :entrypoint
:labels :cap-add :cap-drop :sysctls :devices ...).  With START, start it too.
  (create-container \"forge\" :name \"web\" :command '(\"httpd\" \"-f\") :memory \"64M\")"
  (let ((plist (loop for (k v) on keys by #'cddr
                     unless (member k '(:name :start)) append (list k v))))
    (intern-container
     (call "POST" (query "/v1/containers" "start" start)
           :body (request-body (list* :image image plist) :name name
                                       :keys (append *create-keys* *spec-keys*))))))

(defun run-container (image &rest keys &key name &allow-other-keys)
  "Create and start a container (what `clbsd run -d` does); returns it running.
  (run-container \"forge\" :name \"job\" :command '(\"sleep\" \"60\"))"
  (declare (ignore name))
  (apply #'create-container image :start t keys))

(defun start-container (c)
  "Start C; returns it.  (start-container \"web\")"
  (with-fresh (c) (call "POST" (ctr-path c "start"))))

(defun stop-container (c &key timeout)
  "Stop C: SIGTERM, then SIGKILL after TIMEOUT seconds (default 10).
  (stop-container \"web\" :timeout 2)"
  (with-fresh (c) (call "POST" (query (ctr-path c "stop") "t" timeout))))

(defun restart-container (c &key timeout)
  "Stop C (as STOP-CONTAINER) and start it again.  (restart-container \"web\")"
  (with-fresh (c) (call "POST" (query (ctr-path c "restart") "t" timeout))))

(defun kill-container (c &key (signal "KILL"))
  "Send SIGNAL (a name like \"HUP\" or a number) to C's init.
  (kill-container \"web\" :signal \"HUP\")"
  (with-fresh (c) (call "POST" (query (ctr-path c "kill") "signal" signal))))

(defun remove-container (c &key force volumes)
  "Remove C (FORCE kills a running one first; VOLUMES removes its named
volumes too).  Returns its name.  (remove-container \"web\" :force t)"
  (call "DELETE" (query (ctr-path c) "force" force "volumes" volumes))
  (let ((obj (gethash (ctr-name c) *registry*)))
    (when obj
      (setf (removed-p obj) t)
      (remhash (ctr-name c) *registry*)))
  (ctr-name c))

(defun wait-container (c &key removed)
  "Wait until C is not running (or, with REMOVED, gone); returns its exit
code and the daemon's answer as a plist, and C's object is fresh.  (wait-container \"job\") => 0, (...)"
  (let ((answer (call "POST" (query (ctr-path c "wait") "condition" (and removed "removed")))))
    ;; The container's object shows the exit too, follower or not.
    (unless (or removed (not (hash-table-p answer)))
      (handler-case (with-fresh (c) (request-once "GET" (ctr-path c) nil nil))
        (clbsd-error () nil)))
    (values (jget answer "exit_code") (plistify answer))))

(defun exec-in (c command &key env workdir user)
  "Run COMMAND (an argv list, or a string for /bin/sh -c) in C to its end.
Returns three values: its standard output, its exit code, its standard error.
  (exec-in \"web\" '(\"cat\" \"/etc/hostname\")) => \"web~%\", 0, \"\""
  (let ((argv (if (stringp command) (list "/bin/sh" "-c" command) command)))
    (let ((answer (call "POST" (ctr-path c "exec")
                        :body (obj "command" argv
                                   "env" (if env (mapcar #'json-value env) :omit)
                                   "workdir" (or workdir :omit)
                                   "user" (or user :omit)))))
      (values (jget answer "stdout") (jget answer "exit_code") (jget answer "stderr")))))

(defun log-text (line raw)
  "The text of a CRI log record (TIME STREAM TAG TEXT), or LINE when RAW."
  (if raw
      line
      (let* ((p1 (position #\Space line))
             (p2 (and p1 (position #\Space line :start (1+ p1))))
             (p3 (and p2 (position #\Space line :start (1+ p2)))))
        (if p3 (subseq line (1+ p3)) line))))

(defun logs (c &key tail since raw)
  "C's output so far, a list of lines (TAIL: only the last N; SINCE: an RFC
3339 time; RAW: keep the CRI prefix \"TIME stdout F \").
  (logs \"web\" :tail 10)"
  (let ((text (call "GET" (query (ctr-path c "logs") "tail" tail "since" since) :raw t)))
    ;; The last record may come without its newline: keep it too.
    (loop with start = 0
          while (< start (length text))
          collect (let ((nl (or (position #\Newline text :start start) (length text))))
                    (prog1 (log-text (subseq text start nl) raw) (setf start (1+ nl)))))))

(defun follow-logs (c function &key tail raw)
  "Call FUNCTION with each line of C's output as it comes, until C exits
(or FUNCTION returns :STOP).  TAIL starts with the last N lines.
  (follow-logs \"web\" #'print :tail 0)"
  (clbsd.http:with-request (conn "GET" (query (ctr-path c "logs") "follow" t "tail" tail))
    (when (>= (clbsd.http::connection-status conn) 400)
      (signal-daemon-error (clbsd.http::connection-status conn)
                           (sb-ext:octets-to-string (clbsd.http:read-body conn)) "GET logs"))
    (loop for line = (clbsd.http:read-body-line conn)
          while line
          until (eq (funcall function (log-text line raw)) :stop))))

(defclass log-stream (sb-gray:fundamental-character-input-stream)
  ((conn :initarg :conn) (raw :initarg :raw) (line :initform "") (index :initform 0)
   (eof :initform nil))
  (:documentation "A character stream over a container's followed output."))

(defmethod sb-gray:stream-read-char ((s log-stream))
  (with-slots (conn raw line index eof) s
    (loop
      (when (< index (length line))
        (return (prog1 (char line index) (incf index))))
      (when eof (return :eof))
      (let ((next (clbsd.http:read-body-line conn)))
        (if next
            (setf line (format nil "~a~%" (log-text next raw)) index 0)
            (setf eof t))))))

(defmethod sb-gray:stream-unread-char ((s log-stream) ch)
  (declare (ignore ch))
  (decf (slot-value s 'index))
  nil)

(defmethod close ((s log-stream) &key abort)
  (declare (ignore abort))
  (clbsd.http:close-connection (slot-value s 'conn))
  (call-next-method))

(defun log-stream (c &key (follow t) tail raw)
  "A character input stream of C's output (followed until C exits unless
FOLLOW is NIL).  Close it when done.
  (with-open-stream (s (log-stream \"web\")) (read-line s))"
  (let ((conn (clbsd.http:open-request "GET" (query (ctr-path c "logs") "follow" follow
                                                    "tail" tail))))
    (when (>= (clbsd.http::connection-status conn) 400)
      (unwind-protect
           (signal-daemon-error (clbsd.http::connection-status conn)
                                (sb-ext:octets-to-string (clbsd.http:read-body conn)) "GET logs")
        (clbsd.http:close-connection conn)))
    (make-instance 'log-stream :conn conn :raw raw)))

(defun stats (c)
  "C's resource use: (:cpu-usage-ns N :memory-usage N :memory-limit N
:pids-current N ...).  (getf (stats \"web\") :memory-usage)"
  (plistify (call "GET" (ctr-path c "stats"))))

(defun all-stats ()
  "The stats of every running container, a list of plists."
  (plistify (call "GET" "/v1/stats")))

;;; Snapshots, rollback, clone, export, import

(defun snapshot (c &optional label)
  "Snapshot C (LABEL optional); returns the list of its snapshots.
  (snapshot \"db\" \"before-upgrade\")"
  (plistify (call "POST" (ctr-path c "snapshots") :body (obj "label" (or label :omit)))))

(defun snapshots (c)
  "C's snapshots, oldest first: plists (:label :created-at :used)."
  (plistify (call "GET" (ctr-path c "snapshots"))))

(defun remove-snapshot (c label)
  "Destroy C's snapshot LABEL; returns the remaining list."
  (plistify (call "DELETE" (format nil "~a/~a" (ctr-path c "snapshots") (seg label)))))

(defun rollback (c label &key force timeout)
  "Roll C back to snapshot LABEL (stopped first and started again when it
ran; FORCE also when newer snapshots exist).  (rollback \"db\" \"before-upgrade\")"
  (with-fresh (c) (call "POST" (query (ctr-path c "rollback") "label" label
                                        "force" force "t" timeout))))

(defun clone-container (c new-name &key label)
  "A new container NEW-NAME from C's files (or its snapshot LABEL).
  (clone-container \"db\" \"db-test\")"
  (intern-container (call "POST" (ctr-path c "clone")
                          :body (obj "name" (ctr-name new-name) "label" (or label :omit)))))

(defun export-container (c path)
  "Write C (files, snapshots, settings) to the archive PATH (absolute, on the
daemon's host).  Returns (:name :path :stream-bytes ...).
  (export-container \"db\" \"/tmp/db.clbsd\")"
  (plistify (call "POST" (ctr-path c "export") :body (obj "path" (namestring path)))))

(defun import-container (path &key name allow-host-access)
  "Make a container from an archive written by EXPORT-CONTAINER.
  (import-container \"/tmp/db.clbsd\" :name \"db2\")"
  (intern-container (call "POST" (query "/v1/import" "allow_host_access" allow-host-access)
                          :body (obj "path" (namestring path)
                                     "name" (if name (ctr-name name) :omit)))))

(defun undo-container (c)
  "Bring back the container set aside at C's last recreate."
  (with-fresh (c) (call "POST" (ctr-path c "undo"))))

(defparameter *live-keys*
  '((:domain "domain") (:port "port") (:health "health") (:state "state")
    (:depends-on "depends_on") (:path "path") (:snapshots "snapshots")
    (:on "on") (:ingress "ingress") (:tls "tls") (:kind "kind")
    (:snapshot-before-change "snapshot_before_change"))
  "Declarable keys that are not in the create body, sent by UPDATE-CONTAINER as they are.")

(defun update-container (c &rest keys)
  "Change declarable keys of C live: PATCH /v1/containers/NAME with KEYS in
the create body's form (:memory \"256M\" :restart \"always\" ...), persisted
by the daemon in its live layer (conf.d/90-live.conf) and applied by its
reconciler: a change of the limits alone (:memory :cpus :pids) is written
to the running container in place, other keys in the spec hash recreate
it.  Of a container made with CREATE-CONTAINER only the limits change
(live, not recorded: Docker's update); its other keys signal CONFLICT.
A limit the kernel refuses (memory below what the container uses) signals
CONFLICT with its answer, and nothing changes.
  (update-container \"web\" :memory \"256M\")"
  (let ((answer (call "PATCH" (ctr-path c)
                      :body (request-body keys :keys (append *create-keys* *spec-keys*
                                                             *live-keys*)))))
    (if (and (hash-table-p answer) (gethash "name" answer))
        (intern-container answer)
        (find-container c))))

;;; The setters use UPDATE-CONTAINER.
(defmacro define-setter (reader key)
  `(defmethod (setf ,reader) (value (c container))
     (update-container c ,key value)
     value))

(defgeneric (setf memory-limit) (value container)
  (:documentation "Set the memory limit live: (setf (memory-limit c) \"256M\")."))
(defgeneric (setf pids-limit) (value container)
  (:documentation "Set the process limit live."))
(defgeneric (setf cpu-limit) (value container)
  (:documentation "Set the CPU limit live."))
(defgeneric (setf restart-policy) (value container)
  (:documentation "Set the restart policy: \"no\", \"always\", \"on-failure:3\"."))
(defgeneric (setf env) (value container)
  (:documentation "Set the environment (a list of \"K=V\" or (\"K\" . \"V\"))."))
(defgeneric (setf domain) (value container)
  (:documentation "Set the ingress domain."))
(defgeneric (setf ports) (value container)
  (:documentation "Set the published ports (\"HOST:CTR\" strings)."))
(defgeneric (setf service-port) (value container)
  (:documentation "Set the port the service listens on (:port)."))
(define-setter memory-limit :memory)
(define-setter pids-limit :pids)
(define-setter cpu-limit :cpus)
(define-setter restart-policy :restart)
(define-setter env :env)
(define-setter domain :domain)
(define-setter ports :publish)
(define-setter service-port :port)

;;; The configuration

(defun plan ()
  "What applying the configuration files would do, without doing it: a list
of plists (:op \"create\" :name \"web\" :reason ...).  (plan)"
  (plistify (jget (call "GET" "/v1/plan") "actions")))

(defun apply-config (&key dry-run)
  "Reload the configuration and run a reconcile pass (as `clbsd apply`);
returns the pass summary (:actions :failures :duration-ms ...)."
  (plistify (call "POST" (query "/v1/apply" "dry_run" dry-run))))

(defun status ()
  "The configuration in force and the last pass (as `clbsd status`), a plist."
  (plistify (call "GET" "/v1/status")))

;;; Images

(defun images ()
  "Every image, a list of plists (:names (\"forge:latest\") :id ... :size ...)."
  (plistify (call "GET" "/v1/images")))

(defun find-image (ref)
  "The image REF (name[:tag], id or unique id prefix), a plist."
  (plistify (call "GET" (format nil "/v1/images/~a" (seg ref)))))

(defun forge-image (&optional (name "forge:latest"))
  "Build the busybox image NAME (as `clbsd forge`)."
  (plistify (call "POST" "/v1/images/forge" :body (obj "name" name))))

(defun import-image (path name)
  "Import the root file system directory PATH as image NAME."
  (plistify (call "POST" "/v1/images/import" :body (obj "path" (namestring path) "name" name))))

(defun remove-image (ref &key force)
  "Remove image REF (FORCE: even when a container uses it)."
  (call "DELETE" (query (format nil "/v1/images/~a" (seg ref)) "force" force))
  ref)

(defun tag-image (ref name)
  "Point NAME at image REF."
  (plistify (call "POST" (format nil "/v1/images/~a/tag" (seg ref)) :body (obj "name" name))))

(defun build-image (context &key tag file args no-cache network (output *standard-output*))
  "Build the Cblockfile in directory CONTEXT (absolute) as TAG; the build's
output goes to OUTPUT (a stream, or NIL).  Returns the image as a plist; a
failed build signals CLBSD-ERROR with code \"build_failed\".
  (build-image \"/srv/app\" :tag \"app:1\")"
  (let ((body (obj "context" (namestring context) "tag" (or tag :omit) "file" (or file :omit)
                   "args" (if args (mapcar #'json-value args) :omit)
                   "no_cache" (if no-cache t :omit) "network" (or network :omit))))
    (clbsd.http:with-request (conn "POST" "/v1/build" :body (to-json body))
      (let ((status (clbsd.http::connection-status conn)))
        (when (>= status 400)
          (signal-daemon-error status (sb-ext:octets-to-string (clbsd.http:read-body conn))
                               "POST /v1/build"))
        (loop for line = (clbsd.http:read-body-line conn)
              while line
              do (let ((j (ignore-errors (from-json line))))
                   (cond ((jget j "image") (return (plistify (jget j "image"))))
                         ((jget j "error")
                          (error 'clbsd-error :code (jget j "error" "code")
                                              :message (jget j "error" "message")
                                              :status status :request "POST /v1/build"))
                         ((and output (jget j "output"))
                          (write-string (jget j "output") output))
                         ((and output (jget j "instruction"))
                          (format output "~&step ~a/~a: ~a~%" (jget j "step") (jget j "of")
                                  (jget j "instruction")))))
              finally (error 'clbsd-error :code "build_failed" :status status
                                          :message "the build stream ended without a result"))))))

;;; Networks

(defun networks ()
  "The networks, a list of plists (:name :subnet :bridge :containers ...)."
  (plistify (call "GET" "/v1/networks")))

(defun find-network (name)
  "The network NAME, a plist."
  (plistify (call "GET" (format nil "/v1/networks/~a" (seg name)))))

(defun create-network (name &key subnet internal)
  "Make the network NAME (SUBNET like \"10.90.0.0/24\")."
  (plistify (call "POST" "/v1/networks"
                  :body (obj "name" name "subnet" (or subnet :omit)
                             "internal" (if internal t 'yason:false)))))

(defun remove-network (name)
  "Remove the network NAME (refused while containers use it)."
  (call "DELETE" (format nil "/v1/networks/~a" (seg name)))
  name)

(defun doctor (c)
  "Check C's networking piece by piece: returns the check lines (\"ok ...\"
or \"bad ...: fix: ...\") and the number of problems.  (doctor \"web\")"
  (let ((answer (call "GET" (ctr-path c "doctor"))))
    (values (jget answer "checks") (jget answer "problems"))))
