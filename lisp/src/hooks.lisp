;;;; hooks.lisp -- DEFHOOK, DEFTIMER, PERSIST, and loading init files.
;;;;
;;;; DEFHOOK and DEFTIMER register a callback or a timer under a name and
;;;; remember the form that defined it.  PERSIST writes those forms, as
;;;; plain readable Lisp, to init.d/90-live.lisp, which the control plane
;;;; loads at its next start.  Loading an init file evaluates its forms one
;;;; by one: a form that fails is reported (file, form, condition) and the
;;;; rest still loads.

(in-package #:clbsd)

(defvar *init-file* #p"/etc/clbsd/init.lisp" "The control plane's first init file.")
(defvar *init-dir* #p"/etc/clbsd/init.d/"
  "Directory of more init files (*.lisp, loaded in name order); PERSIST writes 90-live.lisp here.")

(defvar *hook-forms* '()
  "(NAME FORM . ORIGIN) of every DEFHOOK and DEFTIMER, oldest first.  ORIGIN
is the init file that defined it, or NIL for the REPL (and 90-live.lisp).")

(defvar *loading-init-file* nil "The init file being loaded, or NIL.")

(defun live-file-p (file)
  (equal (file-namestring file) "90-live.lisp"))

(defun remember-form (name form)
  (let ((origin (and *loading-init-file* (not (live-file-p *loading-init-file*))
                     (namestring *loading-init-file*))))
    (bt:with-recursive-lock-held (*lock*)
      (let ((cell (assoc name *hook-forms* :test #'equal)))
        (if cell
            (setf (cdr cell) (cons form origin))
            (setf *hook-forms* (append *hook-forms* (list (list* name form origin)))))))))

(defun hooks ()
  "The hooks and timers PERSIST would write: (NAME . FORM), oldest first.
Those an init file other than 90-live.lisp defined (and the REPL did not
redefine) are left to that file."
  (loop for (name form . origin) in *hook-forms*
        unless origin collect (cons name form)))

(defmacro defhook (&whole form name (container-var event &key (on :any) (event-var nil))
                   &body body)
  "Define (or redefine) the callback NAME: BODY runs with CONTAINER-VAR
bound to the container for each EVENT (a keyword or type, as for ON) of
the container ON (default :ANY); EVENT-VAR, when given, is bound to the
event.  PERSIST saves the form.
  (defhook log-exits (c :exited :event-var e)
    (format t \"~a exited with ~a~%\" (name c) (event-attr e :exit-code)))"
  (let ((ev (or event-var (gensym "EVENT"))))
    `(progn
       (remember-form ,(string-downcase (string name)) ',form)
       (on ,on ,event
           (lambda (,container-var ,ev)
             (declare (ignorable ,container-var ,ev))
             ,@body)
           :name ,(string-downcase (string name)))
       ',name)))

(defmacro deftimer (&whole form name (interval &key container (var nil)) &body body)
  "Define (or redefine) the timer NAME running BODY every INTERVAL; with
CONTAINER, on that container's worker with VAR bound to it.  PERSIST saves it.
  (deftimer nightly (\"24h\" :container \"db\" :var c) (snapshot c))"
  (let ((v (or var (gensym "CONTAINER"))))
    `(progn
       (remember-form ,(string-downcase (string name)) ',form)
       (every ,interval
              ,(if container
                   `(lambda (,v) (declare (ignorable ,v)) ,@body)
                   `(lambda () ,@body))
              :container ,container :name ,(string-downcase (string name)))
       ',name)))

(defun persist (&key (file (merge-pathnames "90-live.lisp" *init-dir*)))
  "Write the forms of the DEFHOOKs and DEFTIMERs made at the REPL (or read
from 90-live.lisp) to FILE (init.d/90-live.lisp), replacing it atomically,
so the next start of the control plane has them; those of other init
files stay theirs.  Returns FILE."
  (let* ((file (pathname file))
         (tmp (make-pathname :name (format nil ".~a.tmp" (pathname-name file)) :defaults file)))
    (ensure-directories-exist file)
    (with-open-file (out tmp :direction :output :if-exists :supersede
                             :external-format :utf-8)
      (with-standard-io-syntax
        (let ((*package* (find-package '#:clbsd-user))
              (*print-case* :downcase)
              (*print-pretty* t)
              (*print-right-margin* 90)
              (*print-readably* nil))
          (format out ";;;; ~a -- written by (clbsd:persist); plain Lisp, edit freely.~%~
                       ;;;; The control plane loads it at start, after the files before it.~%~%~
                       (in-package #:clbsd-user)~%"
                  (file-namestring file))
          (dolist (cell (hooks))
            (terpri out)
            (pprint (cdr cell) out)
            (terpri out)))))
    (rename-file tmp file)
    file))

;;; Init files

(defstruct (init-error (:print-object
                        (lambda (e s)
                          (print-unreadable-object (e s :type t)
                            (format s "~a form ~a: ~a" (init-error-file e) (init-error-index e)
                                    (init-error-message e))))))
  file index form condition message)

(defvar *init-errors* '() "Errors of the last LOAD-INIT-FILES, in order.")

(defun init-errors ()
  "The errors of the last LOAD-INIT-FILES: INIT-ERROR objects (file, form, condition)."
  *init-errors*)

(defun report-init-error (file index form condition)
  (let* ((message (ignore-errors (princ-to-string condition)))
         (e (make-init-error :file (namestring file) :index index :form form
                             :condition condition :message message)))
    (setf *init-errors* (append *init-errors* (list e)))
    (let ((*print-length* 4) (*print-level* 2) (*print-case* :downcase) (*print-pretty* nil))
      (log-msg "init file ~a, form ~a ~s: ~a: ~a"
               (namestring file) index form (type-of condition) message))
    e))

(defun load-init-file (file)
  "Evaluate FILE's forms in package CLBSD-USER one by one; a failing form is
reported and the next one runs; a form that does not read ends the file."
  (with-open-file (in file :external-format :utf-8)
    (let ((*package* (find-package '#:clbsd-user))
          (*loading-init-file* (pathname file))
          (*readtable* (copy-readtable nil))
          (*load-pathname* (pathname file))
          (*load-truename* (truename file)))
      (loop for index from 1
            for form = (handler-case (read in nil in)
                         (error (e)
                           (report-init-error file index :unreadable e)
                           in))
            until (eq form in)
            do (handler-case
                   (handler-bind ((warning #'muffle-warning))
                     (eval form))
                 (error (e) (report-init-error file index form e)))))))

(defun init-files (&key (file *init-file*) (dir *init-dir*))
  (append (and file (probe-file file) (list (probe-file file)))
          (and dir (probe-file dir)
               (sort (directory (merge-pathnames "*.lisp" (probe-file dir)))
                     #'string< :key #'file-namestring))))

(defun load-init-files (&key (file *init-file*) (dir *init-dir*))
  "Load FILE (/etc/clbsd/init.lisp), then DIR's *.lisp in name order.
Returns the list of INIT-ERRORs (also in INIT-ERRORS); a bad file never
stops the others."
  (setf *init-errors* '())
  (dolist (f (init-files :file file :dir dir))
    (handler-case (load-init-file f)
      (error (e) (report-init-error f 0 :file e))))
  *init-errors*)


