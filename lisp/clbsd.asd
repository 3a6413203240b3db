;;;; clbsd.asd -- the Common Lisp library and control plane for clbsd.
;;;;
;;;; Load with plain ASDF:  (asdf:load-asd "/path/to/lisp/clbsd.asd")
;;;;                        (asdf:load-system "clbsd")
;;;; or put (a symlink to) lisp/ in Quicklisp's local-projects/ and
;;;; (ql:quickload "clbsd").  Every dependency is a Debian package
;;;; (docs/lisp.md); SBCL's contribs provide the socket and the mailboxes.

(defsystem "clbsd"
  :description "Containers of a clbsd daemon as Lisp objects, event callbacks, a live REPL"
  :version "0.1.0"
  :license "ISC"
  :depends-on ("sb-bsd-sockets" "sb-posix" "sb-concurrency" "yason" "bordeaux-threads")
  :pathname "src/"
  :serial t
  :components ((:file "packages")
               (:file "http")
               (:file "conditions")
               (:file "json")
               (:file "client")
               (:file "container")
               (:file "api")
               (:file "events")
               (:file "timers")
               (:file "declare")
               (:file "hooks")
               (:file "control-plane"))
  :in-order-to ((test-op (test-op "clbsd/tests"))))

(defsystem "clbsd/tests"
  :description "FiveAM tests of clbsd against a real clbsdd (tests/lisp/run.sh starts one)"
  :depends-on ("clbsd" "fiveam")
  :pathname "tests/"
  :components ((:file "tests"))
  :perform (test-op (o c) (uiop:symbol-call '#:clbsd.tests '#:run-and-report)))
