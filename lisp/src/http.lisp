;;;; http.lisp -- HTTP/1.1 over clbsdd's Unix socket.
;;;;
;;;; One connection per request ("Connection: close"): connecting to a Unix
;;;; socket costs microseconds, and a connection that ends with its answer
;;;; never leaves a half-read body behind for the next request.  Bodies come
;;;; with Content-Length, chunked (every stream: events, logs -f, build), or
;;;; until EOF.  Only octets cross this layer's reading functions; text is
;;;; decoded as UTF-8 on whole bodies or whole lines, never mid-character.

(in-package #:clbsd.http)

(defvar *socket-path* nil
  "The daemon's API socket.  NIL means $CLBSD_SOCKET, else /run/clbsd/clbsd.sock.")

(defun default-socket-path ()
  "The socket path in force: *SOCKET-PATH*, $CLBSD_SOCKET or /run/clbsd/clbsd.sock."
  (or *socket-path*
      (let ((e (sb-posix:getenv "CLBSD_SOCKET"))) (and e (plusp (length e)) e))
      "/run/clbsd/clbsd.sock"))

(define-condition daemon-unreachable (error)
  ((path :initarg :path :reader daemon-unreachable-path)
   (reason :initarg :reason :reader daemon-unreachable-reason))
  (:report (lambda (c s)
             (format s "cannot reach clbsdd at ~a: ~a~%(is the daemon running? set ~
                        $CLBSD_SOCKET or clbsd:*socket-path* to its socket)"
                     (daemon-unreachable-path c) (daemon-unreachable-reason c))))
  (:documentation "The daemon's socket cannot be connected to, or the connection broke."))

(defstruct (connection (:constructor %make-connection))
  socket stream
  (status 0 :type fixnum)
  (headers '())
  ;; :length (REMAINING bytes), :chunked, :eof or :none
  (mode :none)
  (remaining 0)
  (done nil)
  ;; octets read past the last line handed out by READ-BODY-LINE
  (pending (make-array 0 :element-type '(unsigned-byte 8) :adjustable t :fill-pointer 0)))

(defun octets (string)
  (sb-ext:string-to-octets string :external-format :utf-8))

(defun text (octets &key (start 0) end)
  (sb-ext:octets-to-string octets :external-format :utf-8 :start start :end end))

(defun url-encode (string)
  "Percent-encode STRING for a query value or a path segment."
  (with-output-to-string (out)
    (loop for byte across (octets (princ-to-string string))
          for ch = (code-char byte)
          do (if (or (alphanumericp ch) (find ch "-._~"))
                 (write-char ch out)
                 (format out "%~2,'0X" byte)))))

(defun read-crlf-line (stream)
  "One header or chunk-size line, without its CR LF; NIL at EOF."
  (let ((buf (make-array 64 :element-type '(unsigned-byte 8) :adjustable t :fill-pointer 0)))
    (loop for b = (read-byte stream nil nil)
          do (cond ((null b) (return (and (plusp (length buf)) (text buf))))
                   ((= b 10)
                    (let ((n (length buf)))
                      (return (text buf :end (if (and (plusp n) (= (aref buf (1- n)) 13))
                                                 (1- n) n)))))
                   (t (vector-push-extend b buf))))))

(defun header (conn name)
  (cdr (assoc name (connection-headers conn) :test #'string-equal)))

(defun open-request (method path &key body (socket (default-socket-path))
                                      (content-type "application/json"))
  "Send METHOD PATH (with BODY, a string, when given) and read the answer's
head.  Returns a CONNECTION whose body is read with READ-BODY or
READ-BODY-LINE; close it with CLOSE-CONNECTION."
  (let ((sock (make-instance 'sb-bsd-sockets:local-socket :type :stream)))
    (handler-case (sb-bsd-sockets:socket-connect sock socket)
      (error (e)
        (ignore-errors (sb-bsd-sockets:socket-close sock))
        (error 'daemon-unreachable :path socket :reason (princ-to-string e))))
    (let* ((stream (sb-bsd-sockets:socket-make-stream
                    sock :input t :output t :element-type '(unsigned-byte 8)
                         :buffering :full))
           (conn (%make-connection :socket sock :stream stream))
           (body-octets (and body (octets body)))
           (crlf (coerce '(#\Return #\Newline) 'string)))
      (handler-case
          (progn
            (write-sequence
             (octets (with-output-to-string (h)
                       ;; X-Clbsd-Client: the audit log tells this client apart.
                       (format h "~a ~a HTTP/1.1~aHost: clbsd~aX-Clbsd-Client: lisp~aConnection: close~a"
                               method path crlf crlf crlf crlf)
                       (when body-octets
                         (format h "Content-Type: ~a~aContent-Length: ~d~a"
                                 content-type crlf (length body-octets) crlf))
                       (write-string crlf h)))
             stream)
            (when body-octets (write-sequence body-octets stream))
            (finish-output stream)
            (let ((status-line (read-crlf-line stream)))
              (unless (and status-line (> (length status-line) 12)
                           (string= "HTTP/" status-line :end2 5))
                (error "bad status line ~s" status-line))
              (setf (connection-status conn) (parse-integer status-line :start 9 :end 12)))
            (loop for line = (read-crlf-line stream)
                  until (or (null line) (string= line ""))
                  do (let ((colon (position #\: line)))
                       (when colon
                         (push (cons (subseq line 0 colon)
                                     (string-trim " " (subseq line (1+ colon))))
                               (connection-headers conn)))))
            (let ((te (header conn "Transfer-Encoding"))
                  (cl (header conn "Content-Length"))
                  (status (connection-status conn)))
              (cond ((or (= status 204) (= status 304) (string= method "HEAD"))
                     (setf (connection-mode conn) :none (connection-done conn) t))
                    ((and te (search "chunked" te :test #'char-equal))
                     (setf (connection-mode conn) :chunked))
                    (cl (setf (connection-mode conn) :length
                              (connection-remaining conn) (parse-integer cl)))
                    (t (setf (connection-mode conn) :eof))))
            conn)
        (error (e)
          (close-connection conn)
          (error 'daemon-unreachable :path socket :reason (princ-to-string e)))))))

(defun close-connection (conn)
  "Close CONN's socket (idempotent)."
  (when (connection-socket conn)
    (ignore-errors (close (connection-stream conn) :abort t))
    (ignore-errors (sb-bsd-sockets:socket-close (connection-socket conn)))
    (setf (connection-socket conn) nil)))

(defun next-piece (conn)
  "The next octets of CONN's body, or NIL at its end."
  (when (connection-done conn)
    (return-from next-piece nil))
  (let ((stream (connection-stream conn)))
    (flet ((read-n (n)
             (let* ((buf (make-array n :element-type '(unsigned-byte 8)))
                    (got (read-sequence buf stream)))
               (when (< got n) (setf (connection-done conn) t))
               (if (< got n) (subseq buf 0 got) buf))))
      (ecase (connection-mode conn)
        (:none nil)
        (:length
         (let ((n (connection-remaining conn)))
           (setf (connection-done conn) t)
           (and (plusp n) (read-n n))))
        (:eof
         (let* ((buf (make-array 65536 :element-type '(unsigned-byte 8)))
                (got (read-sequence buf stream)))
           (when (zerop got) (setf (connection-done conn) t))
           (and (plusp got) (subseq buf 0 got))))
        (:chunked
         (let* ((line (read-crlf-line stream))
                (size (and line (parse-integer line :end (position #\; line)
                                                    :radix 16 :junk-allowed t))))
           (cond ((or (null size) (zerop size))
                  ;; The last chunk (or a broken stream): skip the trailers.
                  (when size
                    (loop for l = (read-crlf-line stream) until (or (null l) (string= l ""))))
                  (setf (connection-done conn) t)
                  nil)
                 (t (prog1 (read-n size) (read-crlf-line stream))))))))))

(defun read-body (conn)
  "The rest of CONN's body as one octet vector."
  (let ((out (make-array 0 :element-type '(unsigned-byte 8) :adjustable t :fill-pointer 0)))
    (loop for b across (connection-pending conn) do (vector-push-extend b out))
    (setf (fill-pointer (connection-pending conn)) 0)
    (loop for piece = (next-piece conn)
          while piece
          do (let ((start (length out)))
               (adjust-array out (+ start (length piece)) :fill-pointer (+ start (length piece)))
               (replace out piece :start1 start)))
    (coerce out '(simple-array (unsigned-byte 8) (*)))))

(defun read-body-line (conn)
  "The next line of CONN's body (UTF-8, without its newline), or NIL at the
end.  Blocks until a whole line has arrived."
  (let ((pending (connection-pending conn)))
    (loop
      (let ((nl (position 10 pending)))
        (when nl
          (let ((line (text pending :end nl)))
            (replace pending pending :start2 (1+ nl))
            (setf (fill-pointer pending) (- (length pending) nl 1))
            (return line))))
      (let ((piece (handler-case (next-piece conn)
                     (error () (setf (connection-done conn) t) nil))))
        (unless piece
          (return (when (plusp (length pending))
                    (prog1 (text pending) (setf (fill-pointer pending) 0)))))
        (let ((start (length pending)))
          (adjust-array pending (+ start (length piece)) :fill-pointer (+ start (length piece)))
          (replace pending piece :start1 start))))))

(defmacro with-request ((conn method path &rest args) &body body)
  "Run BODY with CONN open on METHOD PATH; the connection is closed after."
  `(let ((,conn (open-request ,method ,path ,@args)))
     (unwind-protect (progn ,@body) (close-connection ,conn))))
