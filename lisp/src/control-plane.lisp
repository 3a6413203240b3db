;;;; control-plane.lisp -- the clbsd-lisp process.
;;;;
;;;; Loads the init files, follows the daemon's events, serves Swank on
;;;; loopback, and waits.  Swank has no authentication: it is bound to
;;;; 127.0.0.1 unless told otherwise; reach a remote one through ssh -L.

(in-package #:clbsd.control-plane)

(defvar *swank-port* 4005 "The Swank port (0: a free one).")
(defvar *swank-interface* "127.0.0.1" "The address Swank listens on.")

(defun swank-symbol (name)
  (or (find-symbol name "SWANK") (error "swank has no ~a" name)))

(defun start-swank (&key (port *swank-port*) (interface *swank-interface*))
  "Load Swank (Debian's cl-swank) and serve it on INTERFACE:PORT; REPL users
land in CLBSD-USER.  Returns the port."
  (unless (find-package "SWANK")
    (let ((*standard-output* *error-output*))
      (asdf:load-system "swank")))
  (let ((bindings (swank-symbol "*DEFAULT-WORKER-THREAD-BINDINGS*")))
    (setf (symbol-value bindings)
          (cons (cons '*package* (find-package '#:clbsd-user))
                (remove '*package* (symbol-value bindings) :key #'car))))
  (setf (symbol-value (swank-symbol "*LOG-EVENTS*")) nil)
  (let ((*standard-output* *error-output*))
    (funcall (swank-symbol "CREATE-SERVER") :port port :interface interface :dont-close t)))

(defun usage (stream)
  (format stream "usage: clbsd-lisp [--socket PATH] [--swank-port N] [--swank-interface ADDR]~%~
                  ~11t[--init FILE] [--init-dir DIR] [--no-swank] [--no-init]~%"))

(defun loopback-p (address)
  (or (string= address "localhost") (string= address "::1")
      (and (> (length address) 4) (string= "127." address :end2 4))))

(defun arguments ()
  "The user's arguments: SBCL leaves argv[0] and what follows
--end-toplevel-options in *POSIX-ARGV* (a saved core gets them all)."
  (rest sb-ext:*posix-argv*))

(defun main (&optional (args (arguments)))
  "The control plane: parse ARGS, load the init files, follow events, serve Swank."
  (let ((swank t) (init t) (remote-ok nil)
        (env-port (sb-posix:getenv "CLBSD_SWANK_PORT")))
    (when (and env-port (plusp (length env-port)))
      (setf *swank-port* (parse-integer env-port)))
    (loop while args
          do (let ((a (pop args)))
               (flet ((value () (or (pop args) (progn (usage *error-output*) (sb-ext:exit :code 2)))))
                 (cond ((string= a "--socket") (setf clbsd:*socket-path* (value)))
                       ((string= a "--swank-port") (setf *swank-port* (parse-integer (value))))
                       ((string= a "--swank-interface") (setf *swank-interface* (value)))
                       ((string= a "--init") (setf clbsd:*init-file* (pathname (value))))
                       ((string= a "--init-dir")
                        (setf clbsd:*init-dir* (uiop:ensure-directory-pathname (value))))
                       ((string= a "--swank-insecure-remote") (setf remote-ok t))
                       ((string= a "--no-swank") (setf swank nil))
                       ((string= a "--no-init") (setf init nil))
                       ((member a '("-h" "--help") :test #'string=)
                        (usage *standard-output*) (sb-ext:exit :code 0))
                       (t (format *error-output* "clbsd-lisp: unknown option ~a~%" a)
                          (usage *error-output*) (sb-ext:exit :code 2))))))
    ;; Swank runs any code for anyone who reaches it: loopback only, unless
    ;; the operator says twice that they mean it.
    (when (and swank (not (loopback-p *swank-interface*)) (not remote-ok))
      (format *error-output* "clbsd-lisp: refusing to serve Swank (unauthenticated) on ~a; ~
                              use 127.0.0.1 and ssh -L PORT:127.0.0.1:PORT HOST from elsewhere ~
                              (or add --swank-insecure-remote)~%" *swank-interface*)
      (sb-ext:exit :code 2))
    (setf (sb-ext:symbol-global-value '*package*) (find-package '#:clbsd-user))
    (clbsd:start-following)
    (when init
      (let ((errors (clbsd:load-init-files)))
        (format *error-output* "clbsd-lisp: init files loaded, ~d error~:p~%"
                (length errors))))
    (when swank
      (let ((port (start-swank)))
        (format t "clbsd-lisp: swank listening on ~a:~d~%" *swank-interface* port)
        (finish-output)))
    (format *error-output* "clbsd-lisp: following events of ~a~%" (clbsd.http:default-socket-path))
    (finish-output *error-output*)
    (loop (sleep 3600))))
