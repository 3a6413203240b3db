;;;; init.lisp -- the demo's control plane init file (docs/lisp.md).
;;;; clbsd-lisp loads it in package CLBSD-USER at start; a form that fails
;;;; is reported in the log and the rest still loads.

;; Say every exit in the control plane's log.
(defhook log-exits (c :exited :event-var e)
  (format t "~&exited: ~a with ~a~%" (name c) (event-attr e :exit-code))
  (finish-output))

;; Health changes too.
(defhook log-health (c :health :event-var e)
  (format t "~&health: ~a is ~a~%" (name c) (event-attr e :status))
  (finish-output))
