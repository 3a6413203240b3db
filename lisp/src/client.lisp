;;;; client.lisp -- JSON requests with restarts.

(in-package #:clbsd)

(defun obj (&rest plist)
  "A JSON object (an EQUAL hash table) from alternating string keys and
values; pairs whose value is :OMIT are left out."
  (let ((h (make-hash-table :test #'equal)))
    (loop for (k v) on plist by #'cddr
          unless (eq v :omit) do (setf (gethash k h) v))
    h))

(defun to-json (value)
  (with-output-to-string (s) (yason:encode value s)))

(defun from-json (string)
  (and string (plusp (length string)) (parse-json string)))

(defun jget (object &rest keys)
  "Walk OBJECT (parsed JSON) down string KEYS; NIL where a key is missing."
  (loop for k in keys
        while object
        do (setf object (and (hash-table-p object) (gethash k object))))
  object)

(defun query (path &rest plist)
  "PATH with the non-NIL values of PLIST (string keys) as its query string."
  (let ((pairs (loop for (k v) on plist by #'cddr
                     when v collect (format nil "~a=~a" k
                                            (clbsd.http:url-encode
                                             (if (eq v t) "1" (princ-to-string v)))))))
    (if pairs (format nil "~a?~{~a~^&~}" path pairs) path)))

(defun seg (designator)
  "A path segment for a name (container, image, network)."
  (clbsd.http:url-encode designator))

(defun signal-daemon-error (status body request)
  (let* ((parsed (ignore-errors (from-json body)))
         (err (jget parsed "error"))
         (code (or (jget err "code") (format nil "http_~d" status)))
         (message (or (jget err "message")
                      (and (member status '(405 501))
                           (format nil "this clbsdd does not implement ~a (it predates that ~
                                        route: upgrade the daemon)" request))
                      (let ((b (string-trim '(#\Space #\Newline #\Return) (or body ""))))
                        (if (plusp (length b)) b (format nil "HTTP status ~d" status))))))
    (error (error-class code status) :code code :message message :status status
                                     :request request)))

(defun request-once (method path body raw)
  (clbsd.http:with-request (conn method path :body (and body (to-json body)))
    (let* ((status (clbsd.http::connection-status conn))
           (octets (clbsd.http:read-body conn))
           (text (sb-ext:octets-to-string octets :external-format :utf-8)))
      (when (>= status 400)
        (signal-daemon-error status text (format nil "~a ~a" method path)))
      (if raw text (from-json text)))))

(defun call (method path &key body raw)
  "Send METHOD PATH with BODY (a JSON value) and return the parsed answer
(the text when RAW).  A failure signals a CLBSD-ERROR (or
DAEMON-UNREACHABLE) with the restarts RETRY and USE-VALUE."
  (loop
    (restart-case (return (request-once method path body raw))
      (retry ()
        :report (lambda (s) (format s "Send ~a ~a to clbsdd again." method path)))
      (use-value (value)
        :report "Return a value of your choice instead."
        :interactive (lambda ()
                       (format *query-io* "~&Value to return (evaluated): ")
                       (finish-output *query-io*)
                       (list (eval (read *query-io*))))
        (return value)))))

(defun info ()
  "The daemon's facts (GET /v1/info) as a hash table: version, pid, root, ..."
  (call "GET" "/v1/info"))
