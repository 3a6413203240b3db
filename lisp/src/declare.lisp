;;;; declare.lisp -- (clbsd:container web :image "forge" ...) at the REPL.
;;;;
;;;; The form is the configuration file's own (docs/config.md): its values
;;;; are not evaluated, so a form pasted from clbsd.conf means the same here.
;;;; DECLARE-CONTAINER is the function beneath it, for computed values.  A
;;;; name nothing declares is declared live (POST /v1/declarations: the
;;;; daemon writes the form to conf.d/90-live.conf and its reconciler makes
;;;; the container), a declared one is amended (PATCH), exactly as editing
;;;; the files would; UNDECLARE takes a declaration back.

(in-package #:clbsd)

(defparameter *config-keys*
  '(:kind :image :entrypoint :command :env :labels :workdir :user :hostname :tty
    :stop-signal :userns :cap-add :cap-drop :sysctls :devices :volumes :limits
    :network :ip :aliases :dns :publish :state :restart :depends-on :health :on
    :domain :port :path :ingress :tls :storage :snapshots :backup
    :snapshot-before-change)
  "The keys of a (container NAME ...) form (docs/config.md).")

(defun config->api (plist)
  "The request-body plist for config keys: :LIMITS flattened to :MEMORY
:CPUS :PIDS, every other key as it is."
  (loop for (k v) on plist by #'cddr
        append (case k
                 (:limits (loop for (lk lv) on v by #'cddr
                                append (list (ecase lk (:memory :memory) (:cpus :cpus)
                                               (:pids :pids))
                                             lv)))
                 (t (list k v)))))

(defun declared-body (name plist)
  (request-body (config->api plist) :keys (append *create-keys* *spec-keys* *live-keys*)
                                    :name name))

(defun declare-container (name plist)
  "Declare or amend the container NAME with config keys PLIST, as a
(container NAME ...) form in the files would.  A name nothing declares is
declared live: the daemon checks the form with the whole configuration,
writes it to conf.d/90-live.conf and its reconciler makes the container
(started unless :STATE is STOPPED); it survives a daemon restart and `clbsd
apply`, and `clbsd config diff` shows it.  A declared container is amended
through UPDATE-CONTAINER (PATCH): only the keys given change.  A container
made with CREATE-CONTAINER has the name: CONFLICT.  Returns the container,
or NIL while it is declared but not made yet (waiting on a dependency)."
  (let* ((name (ctr-name name))
         (unknown (loop for (k) on plist by #'cddr
                        unless (member k *config-keys*) collect k)))
    (when unknown
      (error 'unsupported-key :code "invalid_argument"
                              :message (format nil "container ~a: unknown key~p ~{~s~^ ~}; see docs/config.md"
                                               name (length unknown) unknown)))
    (let ((existing (handler-case (find-container name) (not-found () nil))))
      (flet ((amend ()
               (apply #'update-container name (config->api plist))
               (handler-case (find-container name) (not-found () nil))))
        (cond
          ((and existing (managed-p existing)) (amend))
          (existing
           (error 'conflict
                  :code "conflict" :status 409
                  :message (format nil "container ~a exists and the configuration did not make it ~
                                        (create-container, clbsd run): remove it first ~
                                        (remove-container ~s) or declare another name"
                                   name name)))
          (t
           (unless (getf plist :image)
             (error 'invalid-argument :code "invalid_argument"
                                      :message (format nil "container ~a: :image is required" name)))
           (let ((answer (handler-case (call "POST" "/v1/declarations"
                                             :body (declared-body name plist))
                           ;; Declared already, not made yet: amend it.
                           (conflict () (return-from declare-container (amend))))))
             (if (and (hash-table-p answer) (gethash "id" answer))
                 (intern-container answer)
                 (handler-case (find-container name) (not-found () nil))))))))))

(defun undeclare-container (c)
  "Take back the declaration of C, as deleting its form from the files
would: a live declaration leaves conf.d/90-live.conf, one in the files gets
an (undeclare NAME) form there; the reconciler removes the container.
Returns the pass's summary.  NOT-FOUND when C is not declared.
  (undeclare-container \"web\")"
  (plistify (call "DELETE" (format nil "/v1/declarations/~a" (seg (ctr-name c))))))

(defmacro container (name &rest keys)
  "Declare or amend container NAME with the configuration file's own keys
(values are not evaluated, as in the file):
  (container web :image \"forge\" :command (\"httpd\" \"-f\" \"-p\" \"80\")
             :limits (:memory \"64M\") :restart always)"
  `(declare-container ',name ',keys))

(defmacro undeclare (name)
  "Take back the declaration of container NAME (not evaluated): (undeclare web)."
  `(undeclare-container ',name))
