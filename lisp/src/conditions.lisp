;;;; conditions.lisp -- the daemon's errors as Lisp conditions.
;;;;
;;;; Every failed request signals a subclass of CLBSD-ERROR carrying the
;;;; daemon's code ("not_found"), its message and the HTTP status.  Each API
;;;; call offers two restarts: RETRY (send the request again, e.g. after
;;;; starting the daemon or freeing a name) and USE-VALUE (return a value of
;;;; the caller's choice instead).

(in-package #:clbsd)

(define-condition clbsd-error (error)
  ((code :initarg :code :reader error-code
         :documentation "The daemon's error code: \"not_found\", \"conflict\", ...")
   (message :initarg :message :reader error-message
            :documentation "The daemon's message: what failed, on what, what to do.")
   (status :initarg :status :initform nil :reader error-status
           :documentation "The HTTP status (NIL for an error found before sending).")
   (request :initarg :request :initform nil :reader error-request
            :documentation "\"METHOD PATH\" of the failed request."))
  (:report (lambda (c s)
             (format s "clbsd: ~a~@[ (~a~@[, HTTP ~d~])~]"
                     (error-message c) (error-code c) (error-status c))))
  (:documentation "A request clbsdd refused or failed."))

(define-condition invalid-argument (clbsd-error) ()
  (:documentation "400: bad input (name, size, key, JSON)."))
(define-condition forbidden (clbsd-error) ()
  (:documentation "403: the peer may not use the socket, or host access was not allowed."))
(define-condition not-found (clbsd-error) ()
  (:documentation "404: no such container, image, network or snapshot (or route)."))
(define-condition conflict (clbsd-error) ()
  (:documentation "409: wrong state (not running, name in use, image in use)."))
(define-condition too-large (clbsd-error) ()
  (:documentation "413: a request body past the daemon's limit."))
(define-condition internal-failure (clbsd-error) ()
  (:documentation "500: a host failure; the message says what failed."))
(define-condition unavailable (clbsd-error) ()
  (:documentation "503: a part of the host the request needs is missing."))
(define-condition daemon-timeout (clbsd-error) ()
  (:documentation "504: an operation took too long."))
(define-condition unsupported-request (clbsd-error) ()
  (:documentation "405 or 501: this daemon has no such route (an older clbsdd)."))
(define-condition unsupported-key (invalid-argument) ()
  (:documentation "A key the Lisp side cannot send to the daemon (yet), found before sending."))

(defparameter *code-classes*
  '(("invalid_argument" . invalid-argument) ("forbidden" . forbidden)
    ("not_found" . not-found) ("conflict" . conflict) ("internal" . internal-failure)
    ("unavailable" . unavailable) ("timeout" . daemon-timeout)))

(defun status-class (status)
  (case status
    (400 'invalid-argument) (403 'forbidden) (404 'not-found) (405 'unsupported-request)
    (409 'conflict) (413 'too-large) (500 'internal-failure) (501 'unsupported-request)
    (503 'unavailable)
    (504 'daemon-timeout) (t 'clbsd-error)))

(defun error-class (code status)
  (or (cdr (assoc code *code-classes* :test #'equal)) (status-class status)))
