;;;; declare.lisp -- (clbsd:container web :image "forge" ...) at the REPL.
;;;;
;;;; The form is the configuration file's own (docs/config.md): its values
;;;; are not evaluated, so a form pasted from clbsd.conf means the same here.
;;;; DECLARE-CONTAINER is the function beneath it, for computed values.

(in-package #:clbsd)

(defparameter *config-create-keys*
  '(:image :command :env :workdir :user :hostname :tty :userns :volumes :limits
    :network :ip :aliases :dns :publish :restart :state :stop-signal)
  "Config keys a create request can carry (POST /v1/containers).")

(defparameter *config-live-keys*
  '(:kind :depends-on :health :on :domain :port :path :ingress :tls :storage
    :snapshots :snapshot-before-change)
  "Config keys only the daemon's live declaration can take (PATCH, issue 16).")

(defun config->api (plist)
  "The create-body plist for config keys (limits flattened, env pairs joined)."
  (loop for (k v) on plist by #'cddr
        append (case k
                 (:limits (loop for (lk lv) on v by #'cddr
                                append (list (ecase lk (:memory :memory) (:cpus :cpus)
                                               (:pids :pids))
                                             lv)))
                 (:state '())
                 (t (list k v)))))

(defun declare-container (name plist)
  "Declare or amend the container NAME with config keys PLIST, as a
(container NAME ...) form in the files would.  An existing container is
amended through UPDATE-CONTAINER (the daemon's PATCH route, issue 16).  A
new one is created and started (unless :STATE is STOPPED) with the keys a
create request carries; keys only a live declaration takes (:DOMAIN :HEALTH
:ON ...) signal UNSUPPORTED-KEY until the daemon has that route.  Returns
the container."
  (let* ((name (ctr-name name))
         (unknown (loop for (k) on plist by #'cddr
                        unless (or (member k *config-create-keys*) (member k *config-live-keys*))
                          collect k)))
    (when unknown
      (error 'unsupported-key :code "invalid_argument"
                              :message (format nil "container ~a: unknown key~p ~{~s~^ ~}; see docs/config.md"
                                               name (length unknown) unknown)))
    (let ((existing (handler-case (find-container name) (not-found () nil))))
      (cond
        (existing
         (apply #'update-container existing (config->api plist))
         (when (getf plist :state)
           (update-container existing :state (getf plist :state)))
         (find-container name))
        (t
         (let ((live (loop for (k) on plist by #'cddr
                           when (member k *config-live-keys*) collect k)))
           (when live
             (error 'unsupported-key
                    :code "invalid_argument"
                    :message (format nil "container ~a: ~{~s~^ ~} need~:[s~;~] the daemon's live ~
                                          declaration (PATCH /v1/containers/~a), which this clbsdd ~
                                          does not offer yet; declare ~a in the configuration files"
                                     name live (cdr live) name name)))
           (unless (getf plist :image)
             (error 'invalid-argument :code "invalid_argument"
                                      :message (format nil "container ~a: :image is required" name)))
           (apply #'create-container (getf plist :image) :name name
                  :start (not (string-equal (string (or (getf plist :state) "running")) "stopped"))
                  (loop for (k v) on (config->api plist) by #'cddr
                        unless (eq k :image) append (list k v)))))))))

(defmacro container (name &rest keys)
  "Declare or amend container NAME with the configuration file's own keys
(values are not evaluated, as in the file):
  (container web :image \"forge\" :command (\"httpd\" \"-f\" \"-p\" \"80\")
             :limits (:memory \"64M\") :restart always)"
  `(declare-container ',name ',keys))
