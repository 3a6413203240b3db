;;; clbsd.el --- Manage a clbsd homelab from Org and special buffers  -*- lexical-binding: t; -*-

;; Copyright (C) 2026 The clbsd authors

;; Author: The clbsd authors
;; Version: 0.1.0
;; Package-Requires: ((emacs "27.1"))
;; Keywords: tools, processes, unix
;; URL: https://github.com/clbsd/clbsd

;; This file is not part of GNU Emacs.

;; This program is free software; you can redistribute it and/or modify
;; it under the terms of the GNU General Public License as published by
;; the Free Software Foundation, either version 3 of the License, or
;; (at your option) any later version.

;; This program is distributed in the hope that it will be useful,
;; but WITHOUT ANY WARRANTY; without even the implied warranty of
;; MERCHANTABILITY or FITNESS FOR A PARTICULAR PURPOSE.  See the
;; GNU General Public License for more details.

;; You should have received a copy of the GNU General Public License
;; along with this program.  If not, see <https://www.gnu.org/licenses/>.

;;; Commentary:

;; A client of clbsdd, the clbsd container daemon.  It speaks HTTP/JSON
;; to the daemon's Unix socket itself (no CLI in between, no third-party
;; packages) and offers:
;;
;; - Org dynamic blocks that show the live state and act on it:
;;   #+BEGIN: clbsd-containers :all t
;;   #+END:
;;   and clbsd-events, clbsd-snapshots, clbsd-plan and clbsd-status.
;;   C-c C-c on the BEGIN line refreshes one; the links in the rows
;;   (start, stop, restart, logs, console, snapshot, rollback, apply) run
;;   the action and refresh the block.  `clbsd-dashboard-mode' refreshes
;;   the visible blocks on a timer.
;; - `M-x clbsd': a container list with keys for the life cycle, a detail
;;   buffer, logs that follow, the console and a shell in a terminal,
;;   snapshots and the network doctor; `clbsd-images', `clbsd-networks'
;;   and `clbsd-events' for the rest.
;; - Several daemons: `clbsd-hosts' lists them (local sockets or remote
;;   ones reached through ssh), `clbsd-select-host' picks the current one.
;; - `clbsd-repl': SLIME connected to the Lisp control plane's Swank
;;   server, in package clbsd-user.
;;
;; The package binds no global keys.  A suggestion:
;;   (global-set-key (kbd "C-c L") #'clbsd-repl)
;;   (global-set-key (kbd "C-c D") #'clbsd)
;;
;; See docs/emacs.md in the clbsd repository.

;;; Code:

(require 'cl-lib)
(require 'subr-x)
(require 'org)
(require 'ol)
(require 'tabulated-list)
(require 'term)

(defgroup clbsd nil
  "Manage clbsd containers."
  :group 'tools
  :prefix "clbsd-")

(defcustom clbsd-socket
  (or (getenv "CLBSD_SOCKET") "/run/clbsd/clbsd.sock")
  "The API socket of the daemon used when no host says otherwise.
The default is $CLBSD_SOCKET, then /run/clbsd/clbsd.sock, as for the CLI."
  :type 'file)

(defcustom clbsd-program "clbsd"
  "The clbsd command, run in a terminal for the console and exec'd shells."
  :type 'string)

(defcustom clbsd-ssh-program "ssh"
  "The ssh command used to reach remote hosts."
  :type 'string)

(defcustom clbsd-ssh-options nil
  "Options given to ssh for every remote host, e.g. (\"-p\" \"2222\").
A host's :ssh-options come after these."
  :type '(repeat string))

(defcustom clbsd-hosts nil
  "The daemons this package knows, as a list of (NAME . PLIST).
PLIST keys:
  :socket PATH      the API socket; a TRAMP ssh file name such as
                    \"/ssh:root@nas:/run/clbsd/clbsd.sock\" makes the
                    host remote
  :ssh DEST         reach the host through ssh (user@host); :socket is
                    then the path on that host (default the usual one)
  :ssh-options LIST more ssh options for this host (see
                    `clbsd-ssh-options')
  :swank-port PORT  the port of the control plane's Swank server there
  :swank-start CMD  how to start the control plane when Swank does not
                    answer: a list (program and arguments) or a string
                    (a shell command), run on the host (through ssh
                    when remote), e.g. (\"clbsd-lisp\" \"--swank-port\"
                    \"4005\")
With no hosts configured there is one, \"local\", on `clbsd-socket'."
  :type '(alist :key-type string :value-type plist))

(defcustom clbsd-host nil
  "Name of the current host in `clbsd-hosts' (nil: the first one)."
  :type '(choice (const :tag "First host" nil) string))

(defcustom clbsd-timeout 60
  "Seconds to wait for an answer from the daemon."
  :type 'number)

(defcustom clbsd-confirm t
  "Non-nil means ask before remove and rollback."
  :type 'boolean)

(defcustom clbsd-logs-tail 200
  "Log records shown before a logs buffer follows new output."
  :type 'integer)

(defcustom clbsd-events-count 50
  "Past events shown before an events buffer follows new ones."
  :type 'integer)

(defcustom clbsd-dashboard-refresh-interval 5
  "Seconds between refreshes of visible blocks in `clbsd-dashboard-mode'."
  :type 'number)

(defcustom clbsd-swank-port 4005
  "Default port of the control plane's Swank server."
  :type 'integer)

(defcustom clbsd-repl-package "CLBSD-USER"
  "The package the REPL lands in."
  :type 'string)

(defcustom clbsd-repl-start-timeout 120
  "Seconds to wait for a control plane started by `clbsd-repl'.
Its first start compiles the Lisp library."
  :type 'number)

(defcustom clbsd-containers-columns
  '(name state health image address ports domain uptime cpu memory actions)
  "Default columns of the clbsd-containers dynamic block.
Known columns: name, kind (native or docker), declared (declared or ad
hoc), state, exit, health, image, address, ports, domain, uptime, cpu,
memory, pids, restarts, host, actions."
  :type '(repeat symbol))

(define-error 'clbsd-error "clbsd")

(defface clbsd-running '((t :inherit success)) "Face of running containers.")
(defface clbsd-stopped '((t :inherit shadow)) "Face of stopped containers.")
(defface clbsd-failed '((t :inherit error)) "Face of failures.")
(defface clbsd-stderr '((t :inherit warning)) "Face of stderr log lines.")

;;;; Hosts

(defvar clbsd--tunnels nil
  "Alist of host name to (PROCESS . LOCAL-SOCKET) for ssh tunnels.")

(defun clbsd--hosts ()
  "The configured hosts, or the single default one."
  (or clbsd-hosts (list (list "local" :socket nil))))

(defun clbsd--host (&optional name)
  "The host entry called NAME, or the current one when NAME is nil."
  (let ((hosts (clbsd--hosts)))
    (if (null name)
        (or (and clbsd-host (assoc clbsd-host hosts)) (car hosts))
      (or (assoc name hosts)
          (signal 'clbsd-error
                  (list (format "no host %s in clbsd-hosts (known: %s)"
                                name (mapconcat #'car hosts ", "))))))))

(defun clbsd--host-name (host)
  "HOST's name."
  (car host))

(defun clbsd--host-remote (host)
  "The ssh destination of HOST, or nil when it is local."
  (let ((plist (cdr host)))
    (or (plist-get plist :ssh)
        (let ((s (plist-get plist :socket)))
          (when (and s (file-remote-p s))
            (let ((user (file-remote-p s 'user))
                  (h (file-remote-p s 'host)))
              (if user (concat user "@" h) h)))))))

(defun clbsd--ssh-argv (host &rest args)
  "The ssh command line reaching HOST, with ARGS before the destination."
  (append (list clbsd-ssh-program) clbsd-ssh-options
          (plist-get (cdr host) :ssh-options) args
          (list (clbsd--host-remote host))))

(defun clbsd--host-remote-socket (host)
  "The socket path of HOST on its own machine."
  (let ((s (plist-get (cdr host) :socket)))
    (cond ((null s) "/run/clbsd/clbsd.sock")
          ((file-remote-p s) (file-remote-p s 'localname))
          (t s))))

(defun clbsd--tunnel (host)
  "The local end of an ssh tunnel to HOST's socket, starting it if needed."
  (let* ((name (clbsd--host-name host))
         (cell (assoc name clbsd--tunnels)))
    (if (and cell (process-live-p (cadr cell)) (file-exists-p (cddr cell)))
        (cddr cell)
      (let* ((local (expand-file-name
                     (format "clbsd-%s-%d.sock" name (emacs-pid))
                     temporary-file-directory))
             (proc (progn
                     (when (file-exists-p local) (delete-file local))
                     (apply #'start-process
                            (format "clbsd-tunnel-%s" name) nil
                            (clbsd--ssh-argv
                             host "-nNT" "-o" "ExitOnForwardFailure=yes"
                             "-o" "StreamLocalBindUnlink=yes"
                             "-L" (concat local ":" (clbsd--host-remote-socket host))))))
             (deadline (+ (float-time) 15)))
        (set-process-query-on-exit-flag proc nil)
        (while (and (process-live-p proc) (not (file-exists-p local))
                    (< (float-time) deadline))
          (accept-process-output proc 0.05))
        (unless (file-exists-p local)
          (when (process-live-p proc) (delete-process proc))
          (signal 'clbsd-error
                  (list (format "ssh tunnel to %s did not come up"
                                (clbsd--host-remote host)))))
        (setq clbsd--tunnels (cons (cons name (cons proc local))
                                   (assoc-delete-all name clbsd--tunnels)))
        local))))

(defun clbsd-stop-tunnels ()
  "Stop the ssh tunnels to remote hosts and remove their local sockets."
  (interactive)
  (dolist (cell clbsd--tunnels)
    (when (process-live-p (cadr cell)) (delete-process (cadr cell)))
    (when (file-exists-p (cddr cell)) (delete-file (cddr cell))))
  (setq clbsd--tunnels nil))

(add-hook 'kill-emacs-hook #'clbsd-stop-tunnels)

(defun clbsd--host-socket (host)
  "The local socket through which HOST's daemon answers."
  (if (clbsd--host-remote host)
      (clbsd--tunnel host)
    (or (plist-get (cdr host) :socket) clbsd-socket)))

(defun clbsd--socket-host (socket)
  "An anonymous host entry for SOCKET."
  (list socket :socket socket))

;;;###autoload
(defun clbsd-select-host (name)
  "Make the host called NAME in `clbsd-hosts' the current one."
  (interactive
   (list (completing-read "clbsd host: " (mapcar #'car (clbsd--hosts)) nil t)))
  (clbsd--host name)
  (setq clbsd-host name)
  (message "clbsd: current host is %s" name))

;;;; HTTP over the Unix socket

(defun clbsd--open (host buffer)
  "Connect to HOST's socket with output going to BUFFER."
  (let ((socket (clbsd--host-socket host)))
    (condition-case err
        (make-network-process
         :name "clbsd" :buffer buffer :family 'local :service socket
         :coding 'binary :noquery t :sentinel #'ignore)
      (file-error
       (signal 'clbsd-error
               (list (format "cannot connect to %s: %s: is clbsdd running?"
                             socket (or (nth 2 err) (cadr err)))))))))

(defun clbsd--request-text (method path body)
  "The bytes of an HTTP/1.0 request METHOD PATH with JSON BODY."
  (let ((payload (if body (encode-coding-string (json-serialize body) 'utf-8) "")))
    ;; X-Clbsd-Client: the audit log tells this client apart.
    (concat method " " path " HTTP/1.0\r\nHost: clbsd\r\nX-Clbsd-Client: emacs\r\n"
            (if body "Content-Type: application/json\r\n" "")
            (format "Content-Length: %d\r\n\r\n" (length payload))
            payload)))

(defun clbsd--parse-head ()
  "Parse the response head at the start of the buffer.
Return (STATUS BODY-START CONTENT-LENGTH) or nil while it is incomplete."
  (goto-char (point-min))
  (when (search-forward "\r\n\r\n" nil t)
    (let ((start (point)) status len)
      (goto-char (point-min))
      (when (looking-at "HTTP/[0-9.]+ \\([0-9]+\\)")
        (setq status (string-to-number (match-string 1))))
      (when (re-search-forward "^content-length: *\\([0-9]+\\)" start t)
        (setq len (string-to-number (match-string 1))))
      (list (or status 0) start len))))

(defun clbsd--json-read (start end &optional plist)
  "Parse the JSON between START and END of the current buffer.
Objects become alists, or plists with keyword keys when PLIST."
  (if (= start end)
      nil
    (save-restriction
      (narrow-to-region start end)
      (goto-char start)
      ;; Emacs 28 makes a string of every key of an alist (then interns
      ;; it) but interns a plist's keys from the C string: in the list
      ;; of 500 containers, 9,500 strings and 370 KB fewer.
      (json-parse-buffer :object-type (if plist 'plist 'alist) :array-type 'list
                         :null-object nil :false-object nil))))

(defun clbsd--error-message (status start end)
  "The message of an error answer with STATUS whose body is START..END."
  (let ((body (condition-case nil (clbsd--json-read start end) (error nil))))
    (or (alist-get 'message (alist-get 'error body))
        (format "HTTP %d" status))))

(defun clbsd--await (proc what)
  "Read PROC's whole answer into the current buffer; return its head.
The head is as `clbsd--parse-head' returns it, or nil when the
connection closed before one came.  WHAT names the request in errors."
  (let ((deadline (+ (float-time) clbsd-timeout))
        (read-process-output-max (* 1024 1024))
        head)
    (while (and (not (and (or head (setq head (clbsd--parse-head)))
                          (nth 2 head)
                          (>= (- (point-max) (nth 1 head)) (nth 2 head))))
                (process-live-p proc))
      (when (> (float-time) deadline)
        (signal 'clbsd-error (list (format "%s: no answer in %s s" what clbsd-timeout))))
      (accept-process-output proc 0.05 nil t))
    (or head (clbsd--parse-head))))

(defun clbsd--request-start (method path &optional body host)
  "Send METHOD PATH with JSON BODY to HOST's daemon without waiting.
Return a handle for `clbsd--request-finish', which must be called (it
frees the connection).  Several requests can be in flight at once."
  (let* ((host (or host (clbsd--host)))
         (buf (generate-new-buffer " *clbsd-request*" t)))
    (with-current-buffer buf (set-buffer-multibyte nil))
    (condition-case err
        (let ((proc (clbsd--open host buf)))
          (process-send-string proc (clbsd--request-text method path body))
          (list proc buf (format "%s %s" method path)))
      (error (kill-buffer buf) (signal (car err) (cdr err))))))

(defun clbsd--request-finish (handle &optional plist)
  "Wait for the answer of HANDLE from `clbsd--request-start'; parse it.
Its objects are alists, or plists when PLIST."
  (pcase-let ((`(,proc ,buf ,what) handle))
    (unwind-protect
        (with-current-buffer buf
          (let ((head (clbsd--await proc what)))
            (unless head
              (signal 'clbsd-error
                      (list (format "%s: the daemon closed the connection" what))))
            (let* ((status (nth 0 head))
                   (start (nth 1 head))
                   (end (min (point-max)
                             (if (nth 2 head) (+ start (nth 2 head)) (point-max)))))
              (when (>= status 300)
                (signal 'clbsd-error (list (clbsd--error-message status start end))))
              ;; The buffer stays unibyte: json-parse-buffer reads its
              ;; bytes as UTF-8, which spares a copy of a large answer.
              (clbsd--json-read start end plist))))
      (when (process-live-p proc) (delete-process proc))
      (kill-buffer buf))))

(defun clbsd-request (method path &optional body host)
  "Send METHOD PATH with JSON BODY to HOST's daemon; return the parsed answer.
HOST is an entry of `clbsd-hosts' (nil: the current host).  Objects
come back as alists, arrays as lists, null and false as nil.  A
failure signals `clbsd-error' with the daemon's message."
  (clbsd--request-finish (clbsd--request-start method path body host)))

(defun clbsd--stream (path host on-line &optional on-end)
  "Stream GET PATH from HOST, calling ON-LINE with each line as a string.
ON-END is called with a message (nil on a clean end) when it ends.
Return the process; delete it to stop."
  (let* ((buf (generate-new-buffer " *clbsd-stream*" t))
         (proc (clbsd--open host buf))
         (state (list nil)))          ; car: body started
    (with-current-buffer buf (set-buffer-multibyte nil))
    (set-process-filter
     proc
     (lambda (p text)
       (when (buffer-live-p (process-buffer p))
         (with-current-buffer (process-buffer p)
           (goto-char (point-max))
           (insert text)
           (unless (car state)
             (let ((head (clbsd--parse-head)))
               (when head
                 (if (>= (nth 0 head) 300)
                     (let ((msg (clbsd--error-message (nth 0 head) (nth 1 head)
                                                      (point-max))))
                       (erase-buffer)
                       (setcar state 'error)
                       (delete-process p)
                       (when on-end (funcall on-end msg)))
                   (delete-region (point-min) (nth 1 head))
                   (setcar state t)))))
           (when (eq (car state) t)
             (goto-char (point-min))
             (let ((start (point-min)))
               (while (search-forward "\n" nil t)
                 (let ((line (decode-coding-string
                              (buffer-substring-no-properties start (1- (point)))
                              'utf-8)))
                   (setq start (point))
                   (funcall on-line line)))
               (delete-region (point-min) start)))))))
    (set-process-sentinel
     proc
     (lambda (p _event)
       (unless (process-live-p p)
         (let ((ok (eq (car state) t)))
           (when (buffer-live-p (process-buffer p)) (kill-buffer (process-buffer p)))
           (when (and on-end (not (eq (car state) 'error)))
             (funcall on-end (unless ok "the connection closed")))))))
    (process-send-string proc (clbsd--request-text "GET" path nil))
    proc))

(defun clbsd--q (s)
  "S escaped for a URL path or query."
  (url-hexify-string (format "%s" s)))

;;;; Data

(defun clbsd--containers (&optional host all fields)
  "The containers of HOST (ALL: also the stopped ones), as plists.
FIELDS, a list of strings, asks for only those members of each
container (docs/api.md, fields=), and \"stats\" for its stats.
Plists, with keyword keys, because they cost the least to parse."
  (clbsd--request-finish
   (clbsd--request-start "GET" (clbsd--containers-path all fields) nil host) t))

(defun clbsd--containers-path (all fields)
  "The path of GET /v1/containers with ALL and FIELDS."
  (let ((query (delq nil (list (and all "all=1")
                               (and fields (concat "fields=" (string-join fields ",")))))))
    (if query (concat "/v1/containers?" (string-join query "&")) "/v1/containers")))

(defconst clbsd--column-fields
  '((name "name") (host) (kind "kind") (declared "managed") (state "state")
    (exit "exit_code")
    (health "health.status") (image "image")
    (address "network.mode" "network.networks") (ports "network.publish")
    (domain) (uptime "started_at")
    (cpu "stats.cpu_usage_ns" "stats.read_at" "config.limits")
    (memory "stats.memory_usage" "config.limits") (pids "stats.pids_current")
    (restarts "restart_count") (actions))
  "The members of a container each column of a block or list shows.
Every request also asks for name and state (filters, actions).")

(defun clbsd--fields-for (columns)
  "The fields= list that COLUMNS need."
  (let ((fields (list "state" "name")))
    (dolist (col columns)
      (dolist (f (cdr (assq col clbsd--column-fields)))
        (unless (member f fields) (push f fields))))
    (nreverse fields)))

(defun clbsd-container-names (&optional host)
  "The names of HOST's containers, stopped ones too."
  (mapcar (lambda (c) (plist-get c :name)) (clbsd--containers host t '("name"))))

(defvar clbsd--container-history nil "History of container names read.")

(defun clbsd-read-container (prompt &optional host)
  "Read a container name of HOST with completion, prompting with PROMPT."
  (let ((names (condition-case nil (clbsd-container-names host)
                 (clbsd-error nil))))
    (completing-read prompt names nil nil nil 'clbsd--container-history
                     (let ((at (clbsd--name-at-point)))
                       (and at (member at names) at)))))

(defun clbsd--name-at-point ()
  "The container named at point in a clbsd buffer, or nil."
  (cond ((derived-mode-p 'clbsd-list-mode)
         (let ((id (tabulated-list-get-id))) (and id (cdr id))))
        ((bound-and-true-p clbsd--buffer-container) clbsd--buffer-container)))

(defun clbsd--digits (s from to)
  "The number written in decimal digits in S from FROM to TO."
  (let ((n 0))
    (while (< from to)
      (setq n (+ (* n 10) (- (aref s from) ?0))
            from (1+ from)))
    n))

(defun clbsd--time (s)
  "The time of the RFC 3339 UTC string S, or nil."
  ;; Digits read in place and the days counted by hand: the dashboard
  ;; parses two per row, and substrings and `encode-time' allocate.
  (when (and (stringp s) (>= (length s) 19) (eq (aref s 10) ?T))
    (let* ((y (clbsd--digits s 0 4)) (m (clbsd--digits s 5 7)) (d (clbsd--digits s 8 10))
           ;; Days since 1970-01-01 of a proleptic Gregorian date
           ;; (the civil-from-days inverse, years starting in March).
           (y (if (<= m 2) (1- y) y))
           (era (/ y 400))
           (yoe (- y (* era 400)))
           (doy (+ (/ (+ (* 153 (+ m (if (> m 2) -3 9))) 2) 5) (1- d)))
           (doe (+ (* yoe 365) (/ yoe 4) (- (/ yoe 100)) doy))
           (days (+ (* era 146097) doe -719468))
           (secs (+ (* days 86400) (* 3600 (clbsd--digits s 11 13))
                    (* 60 (clbsd--digits s 14 16)) (clbsd--digits s 17 19)))
           (end 20))
      (if (not (and (> (length s) 20) (eq (aref s 19) ?.)))
          (float secs)
        ;; The fraction as an integer, then one division: floats are
        ;; allocated, fixnums are not.
        (while (and (< end (length s)) (<= ?0 (aref s end) ?9))
          (setq end (1+ end)))
        (+ secs (/ (float (clbsd--digits s 20 end)) (expt 10 (- end 20))))))))

(defvar clbsd--short-strings (make-hash-table)
  "Short texts made before, by a number coding what they show.
A dashboard of 500 containers shows much the same uptimes, sizes and
CPU shares on every row, and makes them again on every render.")

(defmacro clbsd--short (key form)
  "The text coded by KEY (a fixnum), made by FORM when new."
  `(let ((k ,key))
     (or (gethash k clbsd--short-strings)
         (progn (when (> (hash-table-count clbsd--short-strings) 4096)
                  (clrhash clbsd--short-strings))
                (puthash k ,form clbsd--short-strings)))))

(defun clbsd--duration (secs)
  "SECS as a short duration (45s, 3m, 2h, 5d)."
  (cond ((null secs) "")
        ((< secs 60) (clbsd--short (* 16 secs) (format "%ds" secs)))
        ((< secs 3600) (let ((n (/ secs 60))) (clbsd--short (+ (* 16 n) 1) (format "%dm" n))))
        ((< secs 86400) (let ((n (/ secs 3600))) (clbsd--short (+ (* 16 n) 2) (format "%dh" n))))
        (t (let ((n (/ secs 86400))) (clbsd--short (+ (* 16 n) 3) (format "%dd" n))))))

(defun clbsd--size (bytes)
  "BYTES in a short human form."
  (cond ((null bytes) "")
        ((< bytes 1024) (clbsd--short (+ (* 16 bytes) 4) (format "%dB" bytes)))
        ;; Rounded as %.0f would (half to even), then one text per number.
        ((< bytes (* 1024 1024))
         (let ((n (round (/ bytes 1024.0)))) (clbsd--short (+ (* 16 n) 5) (format "%dK" n))))
        ((< bytes (* 1024 1024 1024))
         (let ((n (round (/ bytes 1048576.0)))) (clbsd--short (+ (* 16 n) 6) (format "%dM" n))))
        (t (format "%.1fG" (/ bytes 1073741824.0)))))

(defvar clbsd--cpu-samples (make-hash-table :test 'equal)
  "Last CPU samples per host name: a table of container name to (CPU-NS . TIME).")

(defun clbsd--stats (host)
  "A hash table of container name to stats (plists) for HOST's running containers."
  (let ((table (make-hash-table :test 'equal)))
    (dolist (s (clbsd--request-finish (clbsd--request-start "GET" "/v1/stats" nil host) t))
      (puthash (plist-get s :name) s table))
    table))

(defun clbsd--ctr-stats (c stats)
  "The stats of container C: its own stats member, else from STATS.
STATS is nil or a table from `clbsd--stats' (a daemon without
fields=stats in its list)."
  (or (plist-get c :stats)
      (and stats (gethash (plist-get c :name) stats))))

(defun clbsd--cpu (host c stats)
  "CPU use of container C of HOST from STATS, against its limit."
  (let* ((s (clbsd--ctr-stats c stats))
         (name (plist-get c :name))
         (ns (and s (plist-get s :cpu_usage_ns)))
         (at (and s (clbsd--time (plist-get s :read_at))))
         (samples (or (gethash (car host) clbsd--cpu-samples)
                      (puthash (car host) (make-hash-table :test 'equal)
                               clbsd--cpu-samples)))
         (prev (gethash name samples))
         (pct (and prev ns at (> at (cdr prev))
                   (/ (* 100.0 (- ns (car prev))) 1e9 (- at (cdr prev)))))
         (limit (plist-get (plist-get (plist-get c :config) :limits) :cpus)))
    ;; The sample is kept in its cons, changed in place: nothing to
    ;; allocate per row and render.
    (when (and ns at)
      (if prev
          (progn (setcar prev ns) (setcdr prev at))
        (puthash name (cons ns at) samples)))
    (cond ((null ns) "")
          (pct (if (and limit (> limit 0))
                   (format "%.1f%%/%d%%" pct (round (* 100 limit)))
                 (format "%.1f%%" pct)))
          (t (format "%.1fs" (/ ns 1e9))))))

(defun clbsd--memory (c stats)
  "Memory use of container C from STATS, against its limit."
  (let* ((s (clbsd--ctr-stats c stats))
         (use (and s (plist-get s :memory_usage)))
         (limit (plist-get (plist-get (plist-get c :config) :limits) :memory)))
    (cond ((null use) "")
          ((and limit (> limit 0)) (format "%s/%s" (clbsd--size use) (clbsd--size limit)))
          (t (clbsd--size use)))))

(defvar clbsd--config-cache nil
  "(KEY . DECLS) of the last configuration read: see `clbsd--declared'.")

(defun clbsd--config-files (status)
  "The configuration files named by the daemon's STATUS."
  (let ((main (alist-get 'config status))
        (confd (alist-get 'confd status)))
    (append (and main (file-readable-p main) (list main))
            (and confd (file-directory-p confd)
                 (directory-files confd t "\\.conf\\'")))))

(defun clbsd--declared (host)
  "A hash table of container name to its declaration's plist, for HOST.
The daemon's API does not report a container's :domain or hooks, so
they are read from its configuration files when they are on this
machine; nil otherwise."
  (condition-case nil
      (unless (clbsd--host-remote host)
        (let* ((files (clbsd--config-files (clbsd-request "GET" "/v1/status" nil host)))
               (key (mapcar (lambda (f)
                              (cons f (file-attribute-modification-time
                                       (file-attributes f))))
                            files)))
          (if (equal key (car clbsd--config-cache))
              (cdr clbsd--config-cache)
            ;; A table: the block looks up each of its rows.
            (let ((decls (make-hash-table :test 'equal)))
              (dolist (f files)
                (with-temp-buffer
                  (insert-file-contents f)
                  (goto-char (point-min))
                  (condition-case nil
                      (while t
                        (let ((form (read (current-buffer))))
                          (when (and (consp form) (eq (car form) 'container))
                            (puthash (format "%s" (cadr form)) (cddr form) decls))))
                    (error nil))))
              (setq clbsd--config-cache (cons key decls))
              decls))))
    (error nil)))

(defun clbsd--domain (c decls)
  "The domains of container C from its declaration in DECLS."
  (let ((d (and decls (plist-get (gethash (plist-get c :name) decls) :domain))))
    (cond ((stringp d) d)
          ((consp d) (mapconcat (lambda (x) (format "%s" x)) d ","))
          (t ""))))

(defun clbsd--address (c)
  "The addresses of container C."
  (let ((net (plist-get c :network)))
    (cond ((equal (plist-get net :mode) "host") "host")
          ((null (plist-get net :networks)) "")
          (t (mapconcat (lambda (n) (or (plist-get n :ip) "")) (plist-get net :networks)
                        ",")))))

(defvar clbsd--start-times (make-hash-table :test 'equal)
  "The times of the start timestamps read before (they stay the same).")

(defun clbsd--uptime (c now)
  "How long container C has been running at time NOW."
  (if (clbsd--running-p c)
      (let* ((s (plist-get c :started_at))
             ;; A render reads one per row, the same as the last render's.
             (t0 (and s (or (gethash s clbsd--start-times)
                            (let ((v (clbsd--time s)))
                              (when (> (hash-table-count clbsd--start-times) 4096)
                                (clrhash clbsd--start-times))
                              (and v (puthash s v clbsd--start-times)))))))
        (if t0 (clbsd--duration (max 0 (truncate (- now t0)))) ""))
    ""))

(defun clbsd--running-p (c)
  "Non-nil when container C is running or restarting."
  (member (plist-get c :state) '("running" "restarting")))

(defun clbsd--cell (column c ctx)
  "The text of COLUMN for container C (a plist); CTX is a plist of shared data."
  (pcase column
    ('name (plist-get c :name))
    ('host (or (plist-get ctx :host-name) ""))
    ('kind (or (plist-get c :kind) "native"))
    ('declared (if (plist-get c :managed) "declared" "ad hoc"))
    ('state (plist-get c :state))
    ('exit (if (equal (plist-get c :state) "exited")
               (format "%s" (or (plist-get c :exit_code) ""))
             ""))
    ('health (or (plist-get (plist-get c :health) :status) ""))
    ('image (or (plist-get c :image) ""))
    ('address (clbsd--address c))
    ('ports (let ((p (plist-get (plist-get c :network) :publish)))
              (if p (mapconcat #'identity p ",") "")))
    ('domain (clbsd--domain c (plist-get ctx :declared)))
    ('uptime (clbsd--uptime c (plist-get ctx :now)))
    ('cpu (clbsd--cpu (plist-get ctx :host) c (plist-get ctx :stats)))
    ('memory (clbsd--memory c (plist-get ctx :stats)))
    ('pids (let ((s (clbsd--ctr-stats c (plist-get ctx :stats))))
             (if s (format "%s" (plist-get s :pids_current)) "")))
    ('restarts (format "%s" (or (plist-get c :restart_count) 0)))
    (_ "")))

;;;; Org dynamic blocks

(defun clbsd--org-cell (s)
  "S made safe for an Org table cell."
  (cond ((null s) "")
        ((string-match-p "[|\n]" s)
         (replace-regexp-in-string "|" "¦" (replace-regexp-in-string "\n" " " s t t) t t))
        (t s)))

(defun clbsd--link (action target label)
  "An Org link running ACTION on TARGET, shown as LABEL."
  (format "[[clbsd:%s:%s][%s]]" action target label))

(defvar clbsd--table-buffer nil "A scratch buffer tables are written in.")

(defun clbsd--insert-table (header rows)
  "Insert an Org table with HEADER and ROWS (lists of cells), aligned.
A cell is a string, (STRING . WIDTH) when only WIDTH columns of it
show (a link shows only its description), or a container's action
links from `clbsd--container-actions'."
  (let* ((ncol (length header))
         (widths (make-vector ncol 0))
         (width (lambda (cell)
                  (cond ((stringp cell) (string-width cell))
                        ((eq (car cell) 'clbsd-actions) (clbsd--actions-width (cddr cell)))
                        (t (cdr cell))))))
    (dolist (row (cons header rows))
      (let ((i 0))
        (dolist (cell row)
          (let ((w (funcall width cell)))
            (when (> w (aref widths i)) (aset widths i w)))
          (setq i (1+ i)))))
    ;; Written in a scratch buffer, then inserted at once: no padding
    ;; strings to allocate, and Org's change hooks run once, not per row.
    (unless (buffer-live-p clbsd--table-buffer)
      (setq clbsd--table-buffer (generate-new-buffer " *clbsd-table*" t)))
    (let ((line (lambda (row)
                  (let ((i 0))
                    (insert "|")
                    (dolist (cell row)
                      (cond ((stringp cell) (insert " " cell))
                            ((eq (car cell) 'clbsd-actions)
                             (insert " ")
                             (clbsd--insert-actions (cadr cell) (cddr cell)))
                            (t (insert " " (car cell))))
                      (insert-char ?\s (1+ (- (aref widths i) (funcall width cell))))
                      (insert "|")
                      (setq i (1+ i))))))
          ;; Nobody watches the scratch buffer, and each insertion that
          ;; runs the (empty) change hooks conses: 16,000 in a table of
          ;; 500 rows.
          (inhibit-modification-hooks t))
      (with-current-buffer clbsd--table-buffer
        (erase-buffer)
        (funcall line header)
        (insert "\n|")
        (dotimes (i ncol)
          (when (> i 0) (insert "+"))
          (insert-char ?- (+ 2 (aref widths i))))
        (insert "|")
        (dolist (row rows)
          (insert "\n")
          (funcall line row))))
    (insert-buffer-substring clbsd--table-buffer)))

(defun clbsd--error-row (err)
  "Insert a one-row table saying what ERR was."
  (insert (format "| error | %s |"
                  (clbsd--org-cell (if (eq (car err) 'clbsd-error)
                                       (cadr err)
                                     (error-message-string err))))))

(defmacro clbsd--safely (&rest body)
  "Run BODY; on any error insert an error row instead of signalling.
Org stops updating blocks at the first error, so writers never signal."
  (declare (indent 0) (debug t))
  `(condition-case err
       (progn ,@body)
     (error (clbsd--error-row err))))

(defun clbsd--block-hosts (params)
  "The hosts for a block with PARAMS: one, or every one for :host all."
  (let ((socket (plist-get params :socket))
        (h (plist-get params :host)))
    (cond (socket (list (clbsd--socket-host (format "%s" socket))))
          ((member (format "%s" h) '("all" "t")) (clbsd--hosts))
          (h (list (clbsd--host (format "%s" h))))
          (t (list (clbsd--host))))))

(defun clbsd--param-list (v)
  "V, a list or a space-separated string, as a list of symbols."
  (cond ((null v) nil)
        ((stringp v) (mapcar #'intern (split-string v "[ ,]+" t)))
        ((symbolp v) (list v))
        (t (mapcar (lambda (x) (if (symbolp x) x (intern (format "%s" x)))) v))))

(defun clbsd--container-actions (c target)
  "The cell of the action links for container C, named TARGET in links.
A cell of `clbsd--insert-table' that writes them as the table is
written: (clbsd-actions TARGET . RUNNING)."
  (cons 'clbsd-actions (cons target (and (clbsd--running-p c) t))))

(defun clbsd--actions-width (running)
  "The width the action links of a container show.
RUNNING is non-nil when the container is running."
  (if running
      (eval-when-compile (length "stop restart logs console snapshot"))
    (eval-when-compile (length "start logs snapshot"))))

(defun clbsd--insert-actions (target running)
  "Insert the action links of container TARGET.
RUNNING is non-nil when it is running."
  (if running
      (insert "[[clbsd:stop:" target "][stop]] [[clbsd:restart:" target
              "][restart]] [[clbsd:logs:" target "][logs]] [[clbsd:console:"
              target "][console]] [[clbsd:snapshot:" target "][snapshot]]")
    (insert "[[clbsd:start:" target "][start]] [[clbsd:logs:" target
            "][logs]] [[clbsd:snapshot:" target "][snapshot]]")))

(defun clbsd--filter (containers params)
  "CONTAINERS kept by the :match and :state filters of PARAMS."
  (let ((re (plist-get params :match))
        (states (mapcar #'symbol-name (clbsd--param-list (plist-get params :state)))))
    (cl-remove-if-not
     (lambda (c)
       (and (or (null re) (string-match-p (format "%s" re) (plist-get c :name)))
            (or (null states) (member (plist-get c :state) states))))
     containers)))

;;;###autoload
(defun org-dblock-write:clbsd-containers (params)
  "Write the clbsd-containers dynamic block for PARAMS.
Parameters: :columns (list or string of column names, see
`clbsd-containers-columns'), :all (include stopped containers),
:match (a regexp on names), :state (a state or list of them), :socket
\(another daemon's socket), :host (a host of `clbsd-hosts', or all)."
  (clbsd--safely
    (let* ((gc-cons-threshold (max gc-cons-threshold (* 64 1024 1024)))
           (hosts (clbsd--block-hosts params))
           (multi (cdr hosts))
           (columns (or (clbsd--param-list (plist-get params :columns))
                        clbsd-containers-columns))
           (columns (if (and multi (not (memq 'host columns))) (cons 'host columns) columns))
           (data-cols (remq 'actions columns))
           (all (or (plist-get params :all) (plist-get params :state)))
           (now (float-time))
           (actions (memq 'actions columns))
           (data-cols-reversed (reverse data-cols))
           rows errors)
      (dolist (host hosts)
        (condition-case err
            (let* ((want-stats (cl-intersection '(cpu memory pids) columns))
                   ;; One request: only the members the columns show,
                   ;; the stats of each running container among them.
                   (cs (clbsd--filter (clbsd--containers
                                       host all (clbsd--fields-for columns))
                                      params))
                   (ctx (list :host host :host-name (car host) :now now
                              ;; A daemon without fields= (older) answers
                              ;; whole records, without stats.
                              :stats (and want-stats cs
                                          (not (cl-some (lambda (c) (plist-member c :stats)) cs))
                                          (clbsd--stats host))
                              :declared (and (memq 'domain columns)
                                             (clbsd--declared host)))))
              (dolist (c cs)
                (let ((row (and actions
                                (list (clbsd--container-actions
                                       c (if multi (concat (car host) "/" (plist-get c :name))
                                           (plist-get c :name)))))))
                  (dolist (col data-cols-reversed)
                    (push (clbsd--org-cell (clbsd--cell col c ctx)) row))
                  (push row rows))))
          (error (push (concat (if multi (concat (car host) ": ") "")
                               (if (eq (car err) 'clbsd-error) (cadr err)
                                 (error-message-string err)))
                       errors))))
      (if (and errors (not multi))
          (insert (format "| error | %s |" (clbsd--org-cell (car errors))))
        (clbsd--insert-table (append (mapcar #'symbol-name data-cols)
                                     (and actions '("actions")))
                             (nreverse rows))
        (dolist (e (nreverse errors))
          (insert (format "\n| error | %s |" (clbsd--org-cell e))))))))

(defun clbsd--attrs-text (attrs)
  "ATTRS of an event as k=v pairs."
  (mapconcat (lambda (kv) (format "%s=%s" (car kv)
                                  (let ((v (cdr kv)))
                                    (if (stringp v) v (format "%S" v)))))
             attrs " "))

(defun clbsd--events (host &optional count container type)
  "The last COUNT events of HOST, for CONTAINER and of TYPE when given."
  (let* ((query (string-join
                 (delq nil (list (and container (concat "container=" (clbsd--q container)))
                                 (and type (concat "type=" (clbsd--q type)))))
                 "&"))
         (lines (clbsd--get-lines (concat "/v1/events" (if (string-empty-p query) ""
                                                         (concat "?" query)))
                                  host))
         (events (mapcar (lambda (l) (json-parse-string l :object-type 'alist
                                                        :array-type 'list
                                                        :null-object nil
                                                        :false-object nil))
                         lines)))
    (if (and count (> (length events) count))
        (last events count)
      events)))

(defun clbsd--get-lines (path host)
  "GET PATH from HOST and return the body's lines (for text and NDJSON)."
  (let* ((host (or host (clbsd--host)))
         (buf (generate-new-buffer " *clbsd-lines*" t))
         proc)
    (unwind-protect
        (with-current-buffer buf
          (set-buffer-multibyte nil)
          (setq proc (clbsd--open host buf))
          (process-send-string proc (clbsd--request-text "GET" path nil))
          (let ((head (clbsd--await proc (concat "GET " path))))
            (unless head
              (signal 'clbsd-error (list (format "GET %s: no answer" path))))
            (when (>= (nth 0 head) 300)
              (signal 'clbsd-error
                      (list (clbsd--error-message (nth 0 head) (nth 1 head) (point-max)))))
            (split-string (decode-coding-string
                           (buffer-substring-no-properties (nth 1 head) (point-max))
                           'utf-8)
                          "\n" t)))
      (when (and proc (process-live-p proc)) (delete-process proc))
      (kill-buffer buf))))

;;;###autoload
(defun org-dblock-write:clbsd-events (params)
  "Write the clbsd-events dynamic block for PARAMS.
Parameters: :count (default 10), :container, :type (a type or prefix),
:socket, :host."
  (clbsd--safely
    (let* ((host (car (clbsd--block-hosts params)))
           (evs (clbsd--events host (or (plist-get params :count) 10)
                               (and (plist-get params :container)
                                    (format "%s" (plist-get params :container)))
                               (and (plist-get params :type)
                                    (format "%s" (plist-get params :type))))))
      (clbsd--insert-table
       '("seq" "time" "type" "container" "attrs")
       (mapcar (lambda (e)
                 (mapcar #'clbsd--org-cell
                         (list (format "%s" (alist-get 'seq e))
                               (let ((tm (alist-get 'time e)))
                                 (if (and tm (>= (length tm) 19))
                                     (replace-regexp-in-string "T" " " (substring tm 0 19))
                                   (or tm "")))
                               (or (alist-get 'type e) "")
                               (or (alist-get 'container e) "")
                               (clbsd--attrs-text (alist-get 'attrs e)))))
               evs)))))

;;;###autoload
(defun org-dblock-write:clbsd-snapshots (params)
  "Write the clbsd-snapshots dynamic block for PARAMS.
Parameters: :container (required), :socket, :host."
  (clbsd--safely
    (let* ((host (car (clbsd--block-hosts params)))
           (name (format "%s" (or (plist-get params :container)
                                  (signal 'clbsd-error
                                          '("the block needs :container NAME")))))
           (snaps (clbsd-request "GET" (format "/v1/containers/%s/snapshots"
                                               (clbsd--q name))
                                 nil host)))
      (clbsd--insert-table
       '("label" "created" "used" "actions")
       (mapcar (lambda (s)
                 (list (clbsd--org-cell (alist-get 'label s))
                       (clbsd--org-cell (alist-get 'created_at s))
                       (clbsd--size (alist-get 'used s))
                       (cons (clbsd--link "rollback" (concat name ":" (alist-get 'label s))
                                          "rollback")
                             (length "rollback"))))
               snaps))
      (insert "\n" (clbsd--link "snapshot" name "take a snapshot")))))

;;;###autoload
(defun org-dblock-write:clbsd-plan (params)
  "Write the clbsd-plan dynamic block for PARAMS: what apply would do.
Parameters: :socket, :host."
  (clbsd--safely
    (let* ((host (car (clbsd--block-hosts params)))
           (plan (clbsd-request "GET" "/v1/plan" nil host))
           (actions (alist-get 'actions plan)))
      (insert (format "generation %s: %s  %s\n"
                      (alist-get 'generation plan)
                      (if actions (format "%d action(s)" (length actions)) "nothing to do")
                      (clbsd--link "apply" "-" "apply")))
      (clbsd--insert-table
       '("op" "name" "start" "reason")
       (mapcar (lambda (a)
                 (mapcar #'clbsd--org-cell
                         (list (or (alist-get 'op a) "")
                               (or (alist-get 'name a) "")
                               (if (alist-get 'start a) "yes" "no")
                               (or (alist-get 'reason a) ""))))
               actions)))))

;;;###autoload
(defun org-dblock-write:clbsd-status (params)
  "Write the clbsd-status dynamic block for PARAMS: the daemon's state.
Parameters: :socket, :host."
  (clbsd--safely
    (let* ((host (car (clbsd--block-hosts params)))
           (info (clbsd-request "GET" "/v1/info" nil host))
           (st (clbsd-request "GET" "/v1/status" nil host))
           (pass (alist-get 'last_pass st))
           (cs (alist-get 'containers info)))
      (clbsd--insert-table
       '("what" "value")
       (mapcar
        (lambda (kv) (list (car kv) (clbsd--org-cell (format "%s" (or (cdr kv) "")))))
        `(("host" . ,(car host))
          ("version" . ,(alist-get 'version info))
          ("pid" . ,(alist-get 'pid info))
          ("root" . ,(alist-get 'root info))
          ("containers" . ,(format "%s running of %s" (alist-get 'running cs)
                                   (alist-get 'total cs)))
          ("images" . ,(alist-get 'images info))
          ("cgroup" . ,(alist-get 'cgroup info))
          ("config" . ,(alist-get 'config st))
          ("generation" . ,(alist-get 'generation st))
          ("loaded" . ,(alist-get 'loaded_at st))
          ("declared" . ,(alist-get 'declared st))
          ("config error" . ,(or (alist-get 'config_error st) "none"))
          ("last pass" . ,(if pass
                              (format "%s: %s action(s), %s failure(s), %s ms"
                                      (alist-get 'finished_at pass)
                                      (length (alist-get 'actions pass))
                                      (alist-get 'failures pass)
                                      (alist-get 'duration_ms pass))
                            "none"))
          ("pass running" . ,(if (alist-get 'pass_running st) "yes" "no"))))))))

(defun clbsd--insert-block (name params)
  "Insert a NAME dynamic block with PARAMS (a string) and fill it."
  (unless (bolp) (insert "\n"))
  (let ((start (point)))
    (insert "#+BEGIN: " name (if (string-empty-p params) "" (concat " " params))
            "\n#+END:\n")
    (goto-char start)
    (org-update-dblock)))

;;;###autoload
(defun clbsd-insert-containers-block ()
  "Insert a clbsd-containers dynamic block at point."
  (interactive)
  (clbsd--insert-block "clbsd-containers" ":all t"))

;;;###autoload
(defun clbsd-insert-events-block ()
  "Insert a clbsd-events dynamic block at point."
  (interactive)
  (clbsd--insert-block "clbsd-events" ":count 10"))

;;;###autoload
(defun clbsd-insert-snapshots-block (name)
  "Insert a clbsd-snapshots dynamic block for container NAME at point."
  (interactive (list (clbsd-read-container "Snapshots of container: ")))
  (clbsd--insert-block "clbsd-snapshots" (format ":container %s" name)))

;;;###autoload
(defun clbsd-insert-plan-block ()
  "Insert a clbsd-plan dynamic block at point."
  (interactive)
  (clbsd--insert-block "clbsd-plan" ""))

;;;###autoload
(defun clbsd-insert-status-block ()
  "Insert a clbsd-status dynamic block at point."
  (interactive)
  (clbsd--insert-block "clbsd-status" ""))

(org-dynamic-block-define "clbsd-containers" #'clbsd-insert-containers-block)
(org-dynamic-block-define "clbsd-events" #'clbsd-insert-events-block)
(org-dynamic-block-define "clbsd-snapshots" #'clbsd-insert-snapshots-block)
(org-dynamic-block-define "clbsd-plan" #'clbsd-insert-plan-block)
(org-dynamic-block-define "clbsd-status" #'clbsd-insert-status-block)

;;;; Links: actions from a block

(defun clbsd--block-bounds ()
  "The (BEGIN . END) of the clbsd dynamic block around point, or nil."
  (save-excursion
    (let ((pos (point)))
      (end-of-line)
      (when (re-search-backward "^[ \t]*#\\+BEGIN:[ \t]+clbsd-" nil t)
        (let ((begin (point)))
          (when (and (re-search-forward "^[ \t]*#\\+END:" nil t)
                     (>= (point) pos))
            (cons begin (line-end-position))))))))

(defun clbsd--block-params (begin)
  "The parameters of the dynamic block whose BEGIN line is at BEGIN."
  (save-excursion
    (goto-char begin)
    (when (looking-at org-dblock-start-re)
      (condition-case nil
          (read (concat "(" (match-string 3) ")"))
        (error nil)))))

(defun clbsd--refresh-block-at (begin)
  "Refresh the dynamic block at BEGIN, keeping point on the same row."
  (let* ((line (- (line-number-at-pos) (line-number-at-pos begin)))
         (col (current-column)))
    (save-excursion
      (goto-char begin)
      (let ((inhibit-message t)) (org-update-dblock)))
    (goto-char begin)
    (forward-line line)
    (move-to-column col)))

(defun clbsd-run-action (action target &optional host)
  "Run ACTION on TARGET of HOST.
ACTION is start, stop, restart, logs, console, snapshot, rollback or
apply; TARGET is a container name, NAME:LABEL for rollback.  Return
non-nil when the state may have changed."
  (let* ((parts (split-string target ":"))
         (name (car parts))
         (q (clbsd--q name)))
    (pcase action
      ((or "start" "stop" "restart")
       (clbsd-request "POST" (format "/v1/containers/%s/%s" q action) nil host)
       (message "clbsd: %s %s: done" action name)
       t)
      ("snapshot"
       (clbsd-request "POST" (format "/v1/containers/%s/snapshots" q) nil host)
       (message "clbsd: snapshot of %s taken" name)
       t)
      ("rollback"
       (let ((label (mapconcat #'identity (cdr parts) ":")))
         (when (or (not clbsd-confirm)
                   (yes-or-no-p (format "Roll %s back to %s? " name label)))
           (clbsd-request "POST" (format "/v1/containers/%s/rollback?label=%s"
                                         q (clbsd--q label))
                          nil host)
           (message "clbsd: %s rolled back to %s" name label)
           t)))
      ("apply"
       (let* ((r (clbsd-request "POST" "/v1/apply" nil host)))
         (message "clbsd: apply: %d action(s), %s failure(s)"
                  (length (alist-get 'actions r)) (alist-get 'failures r))
         t))
      ("logs" (clbsd-logs name host) nil)
      ("console" (clbsd-console name host) nil)
      (_ (user-error "Unknown clbsd action %s" action)))))

(defun clbsd-link-follow (path &optional _arg)
  "Follow a clbsd: link with PATH (ACTION:TARGET): run it, refresh the block.
In a block with :host all, TARGET is HOST/NAME."
  (let* ((i (string-match ":" path))
         (action (if i (substring path 0 i) path))
         (target (if i (substring path (1+ i)) ""))
         (bounds (clbsd--block-bounds))
         (params (and bounds (clbsd--block-params (car bounds))))
         (host (if (string-match "\\`\\([^/:]+\\)/\\(.*\\)\\'" target)
                   (prog1 (clbsd--host (match-string 1 target))
                     (setq target (match-string 2 target)))
                 (car (clbsd--block-hosts params)))))
    (when (and (condition-case err
                   (clbsd-run-action action target host)
                 (clbsd-error (message "clbsd: %s" (cadr err)) t))
               bounds)
      (clbsd--refresh-block-at (car bounds)))))

(org-link-set-parameters "clbsd" :follow #'clbsd-link-follow)

;;;; Refreshing visible blocks

(defvar clbsd--dashboard-timer nil "The timer of `clbsd-dashboard-mode'.")

(defvar-local clbsd--rendered nil
  "Alist of block BEGIN marker to the hash of the text written there.")

(defun clbsd--block-text (begin)
  "The content of the block whose BEGIN line is at BEGIN."
  (save-excursion
    (goto-char begin)
    (forward-line 1)
    (let ((start (point)))
      (if (re-search-forward "^[ \t]*#\\+END:" nil t)
          (buffer-substring-no-properties start (match-beginning 0))
        ""))))

(defun clbsd--block-edited-p (begin)
  "Non-nil when the block at BEGIN changed since it was last refreshed."
  (let ((cell (cl-find-if (lambda (c) (= (marker-position (car c)) begin)) clbsd--rendered)))
    (and cell (not (equal (cdr cell) (secure-hash 'md5 (clbsd--block-text begin)))))))

(defun clbsd--note-rendered (begin)
  "Remember the current content of the block at BEGIN."
  (let ((cell (cl-find-if (lambda (c) (= (marker-position (car c)) begin)) clbsd--rendered))
        (hash (secure-hash 'md5 (clbsd--block-text begin))))
    (if cell
        (setcdr cell hash)
      (push (cons (copy-marker begin) hash) clbsd--rendered))))

(defun clbsd-refresh-blocks (&optional all)
  "Refresh the clbsd blocks shown in windows of the current buffer.
With ALL, every clbsd block in the buffer.  A block holding point or
a window's point, or edited since it was last refreshed, is left alone;
point and the window start do not move.  Return how many were refreshed."
  (interactive "P")
  (let* ((windows (get-buffer-window-list nil nil t))
         ;; Taken now: in the selected window, `window-point' is point,
         ;; which the loop below moves.
         (points (cons (point) (mapcar #'window-point windows)))
         (inhibit-message t)
         (done 0))
    (save-excursion
      (goto-char (point-min))
      (while (re-search-forward "^[ \t]*#\\+BEGIN:[ \t]+clbsd-" nil t)
        (let* ((begin (line-beginning-position))
               (end (save-excursion (and (re-search-forward "^[ \t]*#\\+END:" nil t)
                                         (line-end-position)))))
          (when (and end
                     (or all
                         (cl-some (lambda (w) (and (<= begin (window-end w t))
                                                   (>= end (window-start w))))
                                  windows))
                     (not (cl-some (lambda (p) (<= begin p end)) points))
                     (not (clbsd--block-edited-p begin)))
            (goto-char begin)
            (org-update-dblock)
            (clbsd--note-rendered begin)
            (setq done (1+ done)))
          (goto-char begin)
          (end-of-line))))
    done))

(defun clbsd--dashboard-tick ()
  "Refresh the visible blocks of every buffer in `clbsd-dashboard-mode'."
  (dolist (w (window-list-1 nil 'nomini 'visible))
    (let ((b (window-buffer w)))
      (when (buffer-local-value 'clbsd-dashboard-mode b)
        (with-current-buffer b
          (condition-case err
              (clbsd-refresh-blocks)
            (error (message "clbsd: refresh: %s" (error-message-string err)))))))))

;;;###autoload
(define-minor-mode clbsd-dashboard-mode
  "Refresh the clbsd blocks shown on screen every few seconds.
The interval is `clbsd-dashboard-refresh-interval'.  A block that holds
point or that was edited since its last refresh is not touched."
  :lighter " clbsd"
  (if clbsd-dashboard-mode
      (progn
        (save-excursion
          (goto-char (point-min))
          (while (re-search-forward "^[ \t]*#\\+BEGIN:[ \t]+clbsd-" nil t)
            (clbsd--note-rendered (line-beginning-position))))
        (unless clbsd--dashboard-timer
          (setq clbsd--dashboard-timer
                (run-with-timer clbsd-dashboard-refresh-interval
                                clbsd-dashboard-refresh-interval
                                #'clbsd--dashboard-tick))))
    (unless (cl-some (lambda (b) (buffer-local-value 'clbsd-dashboard-mode b))
                     (buffer-list))
      (when clbsd--dashboard-timer
        (cancel-timer clbsd--dashboard-timer)
        (setq clbsd--dashboard-timer nil)))))

;;;; The container list

(defvar-local clbsd--list-all-hosts nil "Non-nil: the list shows every host.")
(defvar-local clbsd--list-stopped t "Non-nil: the list shows stopped containers.")
(defvar-local clbsd--marked nil "Ids of the marked entries.")
(defvar-local clbsd--buffer-host nil "The host a clbsd buffer is about.")
(defvar-local clbsd--buffer-container nil "The container a clbsd buffer is about.")

(defvar clbsd-list-mode-map
  (let ((map (make-sparse-keymap)))
    (set-keymap-parent map tabulated-list-mode-map)
    (define-key map (kbd "RET") #'clbsd-describe)
    (define-key map "S" #'clbsd-start)
    (define-key map "O" #'clbsd-stop)
    (define-key map "R" #'clbsd-restart)
    (define-key map "K" #'clbsd-kill)
    (define-key map "D" #'clbsd-remove)
    (define-key map "P" #'clbsd-snapshot)
    (define-key map "m" #'clbsd-mark)
    (define-key map "u" #'clbsd-unmark)
    (define-key map "U" #'clbsd-unmark-all)
    (define-key map "l" #'clbsd-logs)
    (define-key map "c" #'clbsd-console)
    (define-key map "e" #'clbsd-exec-shell)
    (define-key map "s" #'clbsd-snapshots)
    (define-key map "d" #'clbsd-doctor)
    (define-key map "a" #'clbsd-list-toggle-stopped)
    (define-key map "H" #'clbsd-list-toggle-hosts)
    (define-key map "h" #'clbsd-list-select-host)
    (define-key map "E" #'clbsd-events)
    (define-key map "I" #'clbsd-images)
    (define-key map "N" #'clbsd-networks)
    map)
  "Keymap of `clbsd-list-mode'.")

(define-derived-mode clbsd-list-mode tabulated-list-mode "clbsd"
  "The containers of a clbsd daemon.
Life-cycle keys act on the marked containers, or on the one at point.

\\{clbsd-list-mode-map}"
  (setq tabulated-list-format
        [("Name" 16 t) ("State" 12 t) ("Health" 9 t) ("Image" 22 t)
         ("Address" 16 t) ("Ports" 14 nil) ("Uptime" 7 nil) ("Host" 10 t)])
  (setq tabulated-list-padding 2)
  (setq tabulated-list-sort-key nil)
  (setq-local tabulated-list-printer #'clbsd--list-print-entry)
  ;; g: the refresh that keeps the marks shown.
  (setq-local revert-buffer-function (lambda (&rest _) (clbsd-list-revert)))
  (add-hook 'tabulated-list-revert-hook #'clbsd--list-refresh nil t)
  (tabulated-list-init-header))

(defun clbsd--list-print-entry (id cols)
  "Insert the list entry ID with columns COLS: `tabulated-list-printer'.
Like `tabulated-list-print-entry', which allocates a propertized
string per cell and so takes most of a refresh of 500 containers: a
cell is inserted as it is, padded to its column's width, and cut
with an ellipsis only when wider."
  (let ((beg (point))
        (n (length tabulated-list-format))
        (i 0))
    (insert-char ?\s tabulated-list-padding)
    (while (< i n)
      (let* ((cell (aref cols i))
             (last (= i (1- n)))
             (width (nth 1 (aref tabulated-list-format i)))
             (w (string-width cell)))
        (if (and (> w width) (not last))
            (insert (truncate-string-to-width cell width nil nil t))
          (insert cell))
        (unless last
          (insert-char ?\s (1+ (max 0 (- width w))))))
      (setq i (1+ i)))
    (insert "\n")
    (add-text-properties beg (point) (list 'tabulated-list-id id
                                           'tabulated-list-entry cols))))

(defun clbsd--state-face (state)
  "The face showing STATE."
  (cond ((member state '("running")) 'clbsd-running)
        ((member state '("restarting")) 'warning)
        ((equal state "exited") 'clbsd-failed)
        (t 'clbsd-stopped)))

(defun clbsd--list-refresh ()
  "Fill `tabulated-list-entries' from the daemon(s)."
  (let ((hosts (if clbsd--list-all-hosts (clbsd--hosts) (list clbsd--buffer-host)))
        (now (float-time))
        entries)
    (dolist (host hosts)
      (condition-case err
          (dolist (c (clbsd--containers host clbsd--list-stopped
                                        (clbsd--fields-for
                                         '(state health image address ports uptime))))
            (let ((ctx (list :now now))
                  (state (clbsd--cell 'state c nil)))
              (push (list (cons (car host) (plist-get c :name))
                          (vector (plist-get c :name)
                                  (propertize state 'face (clbsd--state-face state))
                                  (clbsd--cell 'health c ctx)
                                  (clbsd--cell 'image c ctx)
                                  (clbsd--cell 'address c ctx)
                                  (clbsd--cell 'ports c ctx)
                                  (clbsd--cell 'uptime c ctx)
                                  (car host)))
                    entries)))
        (clbsd-error
         (push (list (cons (car host) nil)
                     (vector (propertize "error" 'face 'clbsd-failed)
                             (cadr err) "" "" "" "" "" (car host)))
               entries))))
    (setq tabulated-list-entries (nreverse entries))))

(defun clbsd--list-retag ()
  "Put the tags of the marked entries back after a refresh."
  (save-excursion
    (goto-char (point-min))
    (while (not (eobp))
      (when (member (tabulated-list-get-id) clbsd--marked)
        (tabulated-list-put-tag "*"))
      (forward-line 1))))

(defun clbsd-list-revert ()
  "Refresh the container list."
  (interactive)
  ;; One collection after, not one per 800 KB during (see the block).
  (let ((gc-cons-threshold (max gc-cons-threshold (* 64 1024 1024))))
    (clbsd--list-refresh)
    (tabulated-list-print t)
    (clbsd--list-retag)))

;;;###autoload
(defun clbsd (&optional host-name)
  "List the containers of the current host (HOST-NAME with a prefix argument)."
  (interactive
   (list (and current-prefix-arg
              (completing-read "clbsd host: " (mapcar #'car (clbsd--hosts)) nil t))))
  (let* ((host (clbsd--host host-name))
         (buf (get-buffer-create (format "*clbsd: %s*" (car host)))))
    (with-current-buffer buf
      (clbsd-list-mode)
      (setq clbsd--buffer-host host)
      (clbsd-list-revert))
    (pop-to-buffer-same-window buf)
    buf))

(defun clbsd-list-toggle-stopped ()
  "Show or hide stopped containers."
  (interactive)
  (setq clbsd--list-stopped (not clbsd--list-stopped))
  (clbsd-list-revert))

(defun clbsd-list-toggle-hosts ()
  "Show every host or only this buffer's."
  (interactive)
  (setq clbsd--list-all-hosts (not clbsd--list-all-hosts))
  (clbsd-list-revert))

(defun clbsd-list-select-host (name)
  "Show the host NAME in this list."
  (interactive
   (list (completing-read "clbsd host: " (mapcar #'car (clbsd--hosts)) nil t)))
  (setq clbsd--buffer-host (clbsd--host name))
  (clbsd-list-revert))

(defun clbsd-mark ()
  "Mark the container at point."
  (interactive)
  (let ((id (tabulated-list-get-id)))
    (when id
      (cl-pushnew id clbsd--marked :test #'equal)
      (tabulated-list-put-tag "*" t))))

(defun clbsd-unmark ()
  "Unmark the container at point."
  (interactive)
  (let ((id (tabulated-list-get-id)))
    (when id
      (setq clbsd--marked (delete id clbsd--marked))
      (tabulated-list-put-tag " " t))))

(defun clbsd-unmark-all ()
  "Unmark every container."
  (interactive)
  (setq clbsd--marked nil)
  (clbsd-list-revert))

(defun clbsd--targets (prompt)
  "The (HOST . NAME) pairs for a command; PROMPT is to read one.
In a list: the marked containers, else the one at point.  Elsewhere the
container of the buffer, or one read with completion."
  (cond ((and (derived-mode-p 'clbsd-list-mode) clbsd--marked)
         (mapcar (lambda (id) (cons (clbsd--host (car id)) (cdr id))) clbsd--marked))
        ((derived-mode-p 'clbsd-list-mode)
         (let ((id (tabulated-list-get-id)))
           (unless (cdr id) (user-error "No container at point"))
           (list (cons (clbsd--host (car id)) (cdr id)))))
        (clbsd--buffer-container
         (list (cons clbsd--buffer-host clbsd--buffer-container)))
        (t (list (cons (clbsd--host) (clbsd-read-container prompt))))))

(defun clbsd--act (verb prompt fn)
  "Apply FN to each target (HOST NAME); VERB and PROMPT are for messages."
  (let ((targets (clbsd--targets prompt)) (errors nil))
    (dolist (tg targets)
      (condition-case err
          (funcall fn (car tg) (cdr tg))
        (clbsd-error (push (format "%s: %s" (cdr tg) (cadr err)) errors))))
    (when (derived-mode-p 'clbsd-list-mode)
      (setq clbsd--marked nil)
      (clbsd-list-revert))
    (if errors
        (message "clbsd: %s failed: %s" verb (string-join (nreverse errors) "; "))
      (message "clbsd: %s %s: done" verb
               (mapconcat #'cdr targets " ")))))

(defun clbsd-start ()
  "Start the marked containers, the one at point, or one read."
  (interactive)
  (clbsd--act "start" "Start container: "
              (lambda (h n) (clbsd-request "POST" (format "/v1/containers/%s/start" (clbsd--q n)) nil h))))

(defun clbsd-stop ()
  "Stop the marked containers, the one at point, or one read."
  (interactive)
  (clbsd--act "stop" "Stop container: "
              (lambda (h n) (clbsd-request "POST" (format "/v1/containers/%s/stop" (clbsd--q n)) nil h))))

(defun clbsd-restart ()
  "Restart the marked containers, the one at point, or one read."
  (interactive)
  (clbsd--act "restart" "Restart container: "
              (lambda (h n) (clbsd-request "POST" (format "/v1/containers/%s/restart" (clbsd--q n)) nil h))))

(defun clbsd-kill ()
  "Kill the marked containers, the one at point, or one read."
  (interactive)
  (clbsd--act "kill" "Kill container: "
              (lambda (h n) (clbsd-request "POST" (format "/v1/containers/%s/kill" (clbsd--q n)) nil h))))

(defun clbsd-remove ()
  "Remove the marked containers, the one at point, or one read."
  (interactive)
  (let ((targets (clbsd--targets "Remove container: ")))
    (when (or (not clbsd-confirm)
              (yes-or-no-p (format "Remove %s? " (mapconcat #'cdr targets " "))))
      (clbsd--act "remove" "Remove container: "
                  (lambda (h n) (clbsd-request "DELETE" (format "/v1/containers/%s?force=1"
                                                                (clbsd--q n))
                                               nil h))))))

(defun clbsd-snapshot ()
  "Snapshot the marked containers, the one at point, or one read."
  (interactive)
  (clbsd--act "snapshot" "Snapshot container: "
              (lambda (h n) (clbsd-request "POST" (format "/v1/containers/%s/snapshots" (clbsd--q n)) nil h))))

(defun clbsd--one-target (prompt &optional name host)
  "The (HOST . NAME) of one container: NAME on HOST, or as `clbsd--targets'.
PROMPT reads a name when needed."
  (if name
      (cons (or host (clbsd--host)) name)
    (let ((tg (let ((clbsd--marked nil)) (clbsd--targets prompt))))
      (car tg))))

;;;; Detail buffer

(define-derived-mode clbsd-container-mode special-mode "clbsd-container"
  "Details of one clbsd container."
  (setq-local revert-buffer-function (lambda (&rest _) (clbsd--describe-fill))))

(dolist (k '(("l" . clbsd-logs) ("c" . clbsd-console) ("e" . clbsd-exec-shell)
             ("s" . clbsd-snapshots) ("d" . clbsd-doctor) ("S" . clbsd-start)
             ("O" . clbsd-stop) ("R" . clbsd-restart) ("P" . clbsd-snapshot)))
  (define-key clbsd-container-mode-map (car k) (cdr k)))

(defun clbsd--kv (key value)
  "Insert KEY and VALUE as one line."
  (insert (propertize (format "%-14s" key) 'face 'bold) (format "%s" (or value "")) "\n"))

(defun clbsd--describe-fill ()
  "Fill the detail buffer of its container."
  (let ((inhibit-read-only t)
        (host clbsd--buffer-host)
        (name clbsd--buffer-container)
        (pos (point)))
    (erase-buffer)
    (condition-case err
        (let* ((c (clbsd--request-finish
                  (clbsd--request-start "GET" (format "/v1/containers/%s" (clbsd--q name))
                                        nil host)
                  t))
               (cfg (plist-get c :config))
               (limits (plist-get cfg :limits))
               (health (plist-get c :health))
               (decls (clbsd--declared host))
               (decl (and decls (gethash name decls)))
               (stats (and (clbsd--running-p c)
                           (condition-case nil
                               (clbsd--request-finish
                                (clbsd--request-start
                                 "GET" (format "/v1/containers/%s/stats" (clbsd--q name))
                                 nil host)
                                t)
                             (clbsd-error nil)))))
          (insert (propertize name 'face 'bold) "  on " (car host) "\n\n")
          (clbsd--kv "state" (clbsd--cell 'state c nil))
          (clbsd--kv "kind" (clbsd--cell 'kind c nil))
          (clbsd--kv "declared" (clbsd--cell 'declared c nil))
          (clbsd--kv "image" (plist-get c :image))
          (clbsd--kv "id" (plist-get c :id))
          (clbsd--kv "pid" (plist-get c :pid))
          (clbsd--kv "started" (plist-get c :started_at))
          (clbsd--kv "finished" (plist-get c :finished_at))
          (clbsd--kv "uptime" (clbsd--uptime c (float-time)))
          (clbsd--kv "restarts" (plist-get c :restart_count))
          (when (plist-get c :start_error) (clbsd--kv "start error" (plist-get c :start_error)))
          (clbsd--kv "command" (mapconcat #'identity (plist-get cfg :command) " "))
          (clbsd--kv "address" (clbsd--address c))
          (clbsd--kv "ports" (clbsd--cell 'ports c nil))
          (clbsd--kv "domain" (clbsd--domain c decls))
          (clbsd--kv "storage" (plist-get c :storage))
          (insert "\n" (propertize "Limits" 'face 'bold) "\n")
          (clbsd--kv "memory" (if (and (plist-get limits :memory) (> (plist-get limits :memory) 0))
                                  (clbsd--size (plist-get limits :memory)) "none"))
          (clbsd--kv "cpus" (if (and (plist-get limits :cpus) (> (plist-get limits :cpus) 0))
                                (plist-get limits :cpus) "none"))
          (clbsd--kv "pids" (if (and (plist-get limits :pids) (> (plist-get limits :pids) 0))
                                (plist-get limits :pids) "none"))
          (when stats
            (clbsd--kv "memory used" (clbsd--size (plist-get stats :memory_usage)))
            (clbsd--kv "cpu time" (format "%.2fs" (/ (plist-get stats :cpu_usage_ns) 1e9)))
            (clbsd--kv "processes" (plist-get stats :pids_current)))
          (insert "\n" (propertize "Health" 'face 'bold) "\n")
          (if (null health)
              (insert "no health check\n")
            (clbsd--kv "status" (plist-get health :status))
            (clbsd--kv "failures" (plist-get health :failures))
            (dolist (l (plist-get health :log))
              (insert (format "  %s %s %s\n" (if (plist-get l :ok) "ok " "bad")
                              (plist-get l :exit_code) (or (plist-get l :output) "")))))
          (insert "\n" (propertize "Hooks" 'face 'bold) "\n")
          (let ((hooks (plist-get decl :on)))
            (if (null hooks)
                (insert (if decl "none declared\n" "not declared in a configuration on this machine\n"))
              (dolist (h hooks) (insert (format "  %S\n" h)))))
          (insert "\n" (propertize "Recent events" 'face 'bold) "\n")
          (dolist (e (clbsd--events host 15 name))
            (insert (format "  %s %-22s %s\n" (alist-get 'time e) (alist-get 'type e)
                            (clbsd--attrs-text (alist-get 'attrs e))))))
      (clbsd-error (insert (propertize (format "error: %s\n" (cadr err)) 'face 'clbsd-failed))))
    (goto-char (min pos (point-max)))))

(defun clbsd-describe (&optional name host)
  "Show the details of container NAME on HOST (or the one at point)."
  (interactive)
  (let* ((tg (clbsd--one-target "Describe container: " name host))
         (buf (get-buffer-create (format "*clbsd container: %s*" (cdr tg)))))
    (with-current-buffer buf
      (clbsd-container-mode)
      (setq clbsd--buffer-host (car tg) clbsd--buffer-container (cdr tg))
      (clbsd--describe-fill)
      (goto-char (point-min)))
    (pop-to-buffer buf)
    buf))

;;;; Logs and events that follow

(define-derived-mode clbsd-logs-mode special-mode "clbsd-logs"
  "A container's logs, following new output."
  (setq-local revert-buffer-function (lambda (&rest _) (clbsd--logs-start))))

(defvar-local clbsd--stream-process nil "The process following a stream.")
(defvar-local clbsd--partial nil "Non-nil when the last log line is partial.")

(defun clbsd--append (buf text &optional face)
  "Append TEXT to BUF with FACE, following windows at its end."
  (when (buffer-live-p buf)
    (with-current-buffer buf
      (let* ((inhibit-read-only t)
             (at-end (mapcar (lambda (w) (cons w (= (window-point w) (point-max))))
                             (get-buffer-window-list buf nil t)))
             (follow (= (point) (point-max))))
        (save-excursion
          (goto-char (point-max))
          (insert (if face (propertize text 'face face) text)))
        (when follow (goto-char (point-max)))
        (dolist (w at-end)
          (when (cdr w) (set-window-point (car w) (point-max))))))))

(defun clbsd--log-line (buf line)
  "Show the CRI log LINE in BUF."
  (if (string-match "\\`\\([^ ]+\\) \\(stdout\\|stderr\\) \\([FP]\\) ?\\(.*\\)\\'" line)
      (let ((text (match-string 4 line))
            (err (equal (match-string 2 line) "stderr"))
            (partial (equal (match-string 3 line) "P")))
        (clbsd--append buf (if partial text (concat text "\n")) (and err 'clbsd-stderr)))
    (clbsd--append buf (concat line "\n"))))

(defun clbsd--logs-start ()
  "Start following the logs of this buffer's container."
  (when (process-live-p clbsd--stream-process) (delete-process clbsd--stream-process))
  (let ((inhibit-read-only t)) (erase-buffer))
  (let ((buf (current-buffer)))
    (setq clbsd--stream-process
          (clbsd--stream (format "/v1/containers/%s/logs?follow=1&tail=%d"
                                 (clbsd--q clbsd--buffer-container) clbsd-logs-tail)
                         clbsd--buffer-host
                         (lambda (line) (clbsd--log-line buf line))
                         (lambda (msg)
                           (clbsd--append buf (format "[%s]\n" (or msg "end of the logs: the container is not running"))
                                          'shadow))))))

(defun clbsd-logs (&optional name host)
  "Show the logs of container NAME on HOST, following new output."
  (interactive)
  (let* ((tg (clbsd--one-target "Logs of container: " name host))
         (buf (get-buffer-create (format "*clbsd logs: %s*" (cdr tg)))))
    (with-current-buffer buf
      (unless (derived-mode-p 'clbsd-logs-mode) (clbsd-logs-mode))
      (setq clbsd--buffer-host (car tg) clbsd--buffer-container (cdr tg))
      (add-hook 'kill-buffer-hook
                (lambda () (when (process-live-p clbsd--stream-process)
                             (delete-process clbsd--stream-process)))
                nil t)
      (clbsd--logs-start))
    (pop-to-buffer buf)
    buf))

(define-derived-mode clbsd-events-mode special-mode "clbsd-events"
  "The daemon's events, following new ones."
  (setq-local revert-buffer-function (lambda (&rest _) (clbsd--events-start))))

(defun clbsd--event-text (e)
  "One line showing event E."
  (format "%6s %s %-22s %-12s %s\n" (alist-get 'seq e)
          (let ((tm (or (alist-get 'time e) ""))) (if (>= (length tm) 19) (substring tm 0 19) tm))
          (alist-get 'type e) (or (alist-get 'container e) "-")
          (clbsd--attrs-text (alist-get 'attrs e))))

(defun clbsd--events-start ()
  "Show the last events of this buffer's host and follow new ones."
  (when (process-live-p clbsd--stream-process) (delete-process clbsd--stream-process))
  (let ((inhibit-read-only t) (buf (current-buffer)) (seq 0))
    (erase-buffer)
    (dolist (e (clbsd--events clbsd--buffer-host clbsd-events-count))
      (setq seq (max seq (or (alist-get 'seq e) 0)))
      (insert (clbsd--event-text e)))
    (setq clbsd--stream-process
          (clbsd--stream (format "/v1/events?follow=1&since=%d" seq) clbsd--buffer-host
                         (lambda (line)
                           (condition-case nil
                               (clbsd--append buf (clbsd--event-text
                                                   (json-parse-string line :object-type 'alist
                                                                      :array-type 'list
                                                                      :null-object nil
                                                                      :false-object nil)))
                             (error nil)))
                         (lambda (msg) (clbsd--append buf (format "[%s]\n" (or msg "end")) 'shadow))))))

;;;###autoload
(defun clbsd-events (&optional host-name)
  "Show the events of the current host (HOST-NAME), following new ones."
  (interactive)
  (let* ((host (if (derived-mode-p 'clbsd-list-mode 'clbsd-container-mode)
                   clbsd--buffer-host
                 (clbsd--host host-name)))
         (buf (get-buffer-create (format "*clbsd events: %s*" (car host)))))
    (with-current-buffer buf
      (unless (derived-mode-p 'clbsd-events-mode) (clbsd-events-mode))
      (setq clbsd--buffer-host host)
      (add-hook 'kill-buffer-hook
                (lambda () (when (process-live-p clbsd--stream-process)
                             (delete-process clbsd--stream-process)))
                nil t)
      (clbsd--events-start)
      (goto-char (point-max)))
    (pop-to-buffer buf)
    buf))

;;;; Console and shell in a terminal

(defun clbsd--cli-args (host &rest args)
  "The program and arguments that run the CLI with ARGS for HOST."
  (let ((remote (clbsd--host-remote host)))
    (if remote
        (append (clbsd--ssh-argv host "-t")
                (list clbsd-program "--socket" (clbsd--host-remote-socket host))
                args)
      (append (list clbsd-program "--socket" (clbsd--host-socket host)) args))))

(defun clbsd--term (name argv)
  "Run ARGV in a terminal buffer called NAME and show it."
  (let ((buf (apply #'make-term name (car argv) nil (cdr argv))))
    (with-current-buffer buf
      (term-mode)
      (term-char-mode))
    (pop-to-buffer buf)
    buf))

(defun clbsd-console (&optional name host)
  "Attach to the console of container NAME on HOST in a terminal buffer.
The recent output is replayed first.  Ctrl-Q detaches and leaves the
container running."
  (interactive)
  (let ((tg (clbsd--one-target "Console of container: " name host)))
    (clbsd--term (format "clbsd console: %s" (cdr tg))
                 (clbsd--cli-args (car tg) "console" (cdr tg)))))

(defun clbsd-exec-shell (&optional name host)
  "Run a shell in container NAME on HOST in a terminal buffer."
  (interactive)
  (let ((tg (clbsd--one-target "Shell in container: " name host)))
    (clbsd--term (format "clbsd shell: %s" (cdr tg))
                 (clbsd--cli-args (car tg) "exec" "-t" "-i" (cdr tg) "/bin/sh"))))

;;;; Snapshots and doctor

(defvar clbsd-snapshots-mode-map
  (let ((map (make-sparse-keymap)))
    (set-keymap-parent map tabulated-list-mode-map)
    (define-key map "r" #'clbsd-snapshots-rollback)
    (define-key map "+" #'clbsd-snapshots-take)
    (define-key map "D" #'clbsd-snapshots-delete)
    map)
  "Keymap of `clbsd-snapshots-mode'.")

(define-derived-mode clbsd-snapshots-mode tabulated-list-mode "clbsd-snapshots"
  "The snapshots of a container.

\\{clbsd-snapshots-mode-map}"
  (setq tabulated-list-format [("Label" 28 t) ("Created" 32 t) ("Used" 8 nil)])
  (setq tabulated-list-padding 2)
  (add-hook 'tabulated-list-revert-hook #'clbsd--snapshots-refresh nil t)
  (tabulated-list-init-header))

(defun clbsd--snapshots-refresh ()
  "Fill the snapshot list."
  (setq tabulated-list-entries
        (condition-case err
            (mapcar (lambda (s)
                      (list (alist-get 'label s)
                            (vector (alist-get 'label s) (or (alist-get 'created_at s) "")
                                    (clbsd--size (alist-get 'used s)))))
                    (clbsd-request "GET" (format "/v1/containers/%s/snapshots"
                                                 (clbsd--q clbsd--buffer-container))
                                   nil clbsd--buffer-host))
          (clbsd-error (list (list nil (vector "error" (cadr err) "")))))))

(defun clbsd-snapshots (&optional name host)
  "List the snapshots of container NAME on HOST."
  (interactive)
  (let* ((tg (clbsd--one-target "Snapshots of container: " name host))
         (buf (get-buffer-create (format "*clbsd snapshots: %s*" (cdr tg)))))
    (with-current-buffer buf
      (clbsd-snapshots-mode)
      (setq clbsd--buffer-host (car tg) clbsd--buffer-container (cdr tg))
      (clbsd--snapshots-refresh)
      (tabulated-list-print))
    (pop-to-buffer buf)
    buf))

(defun clbsd-snapshots-take ()
  "Take a snapshot of this buffer's container."
  (interactive)
  (clbsd-request "POST" (format "/v1/containers/%s/snapshots" (clbsd--q clbsd--buffer-container))
                 nil clbsd--buffer-host)
  (revert-buffer))

(defun clbsd-snapshots-rollback ()
  "Roll this buffer's container back to the snapshot at point."
  (interactive)
  (let ((label (or (tabulated-list-get-id) (user-error "No snapshot at point"))))
    (clbsd-run-action "rollback" (concat clbsd--buffer-container ":" label) clbsd--buffer-host)
    (revert-buffer)))

(defun clbsd-snapshots-delete ()
  "Delete the snapshot at point."
  (interactive)
  (let ((label (or (tabulated-list-get-id) (user-error "No snapshot at point"))))
    (when (or (not clbsd-confirm) (yes-or-no-p (format "Delete snapshot %s? " label)))
      (clbsd-request "DELETE" (format "/v1/containers/%s/snapshots/%s"
                                      (clbsd--q clbsd--buffer-container) (clbsd--q label))
                     nil clbsd--buffer-host)
      (revert-buffer))))

(defun clbsd-doctor (&optional name host)
  "Check the networking of container NAME on HOST, piece by piece."
  (interactive)
  (let* ((tg (clbsd--one-target "Doctor container: " name host))
         (buf (get-buffer-create (format "*clbsd doctor: %s*" (cdr tg)))))
    (with-current-buffer buf
      (special-mode)
      (let ((inhibit-read-only t))
        (erase-buffer)
        (condition-case err
            (let ((r (clbsd-request "GET" (format "/v1/containers/%s/doctor" (clbsd--q (cdr tg)))
                                    nil (car tg))))
              (dolist (line (alist-get 'checks r))
                (insert (propertize line 'face (if (string-prefix-p "ok" line)
                                                   'clbsd-running 'clbsd-failed))
                        "\n"))
              (insert (format "\n%d problem(s)\n" (or (alist-get 'problems r) 0))))
          (clbsd-error (insert (propertize (format "error: %s\n" (cadr err)) 'face 'clbsd-failed))))
        (goto-char (point-min))))
    (pop-to-buffer buf)
    buf))

;;;; Images and networks

(define-derived-mode clbsd-images-mode tabulated-list-mode "clbsd-images"
  "The images of a clbsd daemon."
  (setq tabulated-list-format [("Name" 32 t) ("Id" 14 t) ("Size" 8 nil) ("Created" 20 t)])
  (setq tabulated-list-padding 2)
  (add-hook 'tabulated-list-revert-hook #'clbsd--images-refresh nil t)
  (tabulated-list-init-header))

(defun clbsd--images-refresh ()
  "Fill the image list."
  (setq tabulated-list-entries
        (condition-case err
            (mapcar (lambda (i)
                      (let ((id (alist-get 'id i)))
                        (list id (vector (string-join (alist-get 'names i) ",")
                                         (substring id 0 (min 12 (length id)))
                                         (clbsd--size (alist-get 'size i))
                                         (let ((c (or (alist-get 'created i) "")))
                                           (if (>= (length c) 19) (substring c 0 19) c))))))
                    (clbsd-request "GET" "/v1/images" nil clbsd--buffer-host))
          (clbsd-error (list (list nil (vector "error" (cadr err) "" "")))))))

;;;###autoload
(defun clbsd-images (&optional host-name)
  "List the images of the current host (HOST-NAME)."
  (interactive)
  (let* ((host (if (derived-mode-p 'clbsd-list-mode) clbsd--buffer-host (clbsd--host host-name)))
         (buf (get-buffer-create (format "*clbsd images: %s*" (car host)))))
    (with-current-buffer buf
      (clbsd-images-mode)
      (setq clbsd--buffer-host host)
      (clbsd--images-refresh)
      (tabulated-list-print))
    (pop-to-buffer buf)
    buf))

(define-derived-mode clbsd-networks-mode tabulated-list-mode "clbsd-networks"
  "The networks of a clbsd daemon."
  (setq tabulated-list-format [("Name" 14 t) ("Bridge" 10 t) ("Subnet" 18 t)
                               ("Gateway" 14 nil) ("Used" 8 nil) ("Containers" 30 nil)])
  (setq tabulated-list-padding 2)
  (add-hook 'tabulated-list-revert-hook #'clbsd--networks-refresh nil t)
  (tabulated-list-init-header))

(defun clbsd--networks-refresh ()
  "Fill the network list."
  (setq tabulated-list-entries
        (condition-case err
            (mapcar (lambda (n)
                      (list (alist-get 'name n)
                            (vector (alist-get 'name n) (or (alist-get 'bridge n) "")
                                    (or (alist-get 'subnet n) "") (or (alist-get 'gateway n) "")
                                    (format "%s/%s" (alist-get 'used n) (alist-get 'capacity n))
                                    (mapconcat (lambda (c) (format "%s" (alist-get 'name c)))
                                               (alist-get 'containers n) ","))))
                    (clbsd-request "GET" "/v1/networks" nil clbsd--buffer-host))
          (clbsd-error (list (list nil (vector "error" (cadr err) "" "" "" "")))))))

;;;###autoload
(defun clbsd-networks (&optional host-name)
  "List the networks of the current host (HOST-NAME)."
  (interactive)
  (let* ((host (if (derived-mode-p 'clbsd-list-mode) clbsd--buffer-host (clbsd--host host-name)))
         (buf (get-buffer-create (format "*clbsd networks: %s*" (car host)))))
    (with-current-buffer buf
      (clbsd-networks-mode)
      (setq clbsd--buffer-host host)
      (clbsd--networks-refresh)
      (tabulated-list-print))
    (pop-to-buffer buf)
    buf))

;;;; The REPL

(defvar slime-net-processes)
(defvar slime-connected-hook)
(defvar slime-dispatching-connection)
(declare-function slime-connect "ext:slime" (host port &optional coding-system interactive-p &rest parameters))
(declare-function slime-connection-port "ext:slime" (connection))
(declare-function slime-eval "ext:slime" (sexp &optional package))
(declare-function slime-repl-set-package "ext:slime-repl" (package))
(declare-function slime-switch-to-output-buffer "ext:slime-repl" ())
(declare-function slime-setup "ext:slime" (&optional contribs))

(defvar clbsd--swank-tunnels nil
  "Alist of host name to (PROCESS . LOCAL-PORT) for Swank tunnels.")

(defun clbsd--free-port ()
  "A free local TCP port."
  (let* ((p (make-network-process :name "clbsd-port" :server t :host "127.0.0.1"
                                  :service t :noquery t))
         (port (process-contact p :service)))
    (delete-process p)
    port))

(defun clbsd--port-open-p (port)
  "Non-nil when something listens on 127.0.0.1:PORT."
  (condition-case nil
      (progn (delete-process (make-network-process :name "clbsd-probe" :host "127.0.0.1"
                                                   :service port :noquery t))
             t)
    (error nil)))

(defun clbsd--swank-endpoint (host)
  "The local port through which HOST's Swank server answers."
  (let ((port (or (plist-get (cdr host) :swank-port) clbsd-swank-port))
        (remote (clbsd--host-remote host)))
    (if (not remote)
        port
      (let ((cell (assoc (car host) clbsd--swank-tunnels)))
        (if (and cell (process-live-p (cadr cell)))
            (cddr cell)
          (let* ((local (clbsd--free-port))
                 (proc (apply #'start-process (format "clbsd-swank-tunnel-%s" (car host)) nil
                              (clbsd--ssh-argv host "-nNT" "-o" "ExitOnForwardFailure=yes"
                                               "-L" (format "%d:127.0.0.1:%d" local port))))
                 (deadline (+ (float-time) 15)))
            (set-process-query-on-exit-flag proc nil)
            (while (and (process-live-p proc) (not (clbsd--port-open-p local))
                        (< (float-time) deadline))
              (accept-process-output nil 0.1))
            (unless (process-live-p proc)
              (signal 'clbsd-error (list (format "ssh tunnel to %s's Swank did not come up"
                                                 remote))))
            (setq clbsd--swank-tunnels (cons (cons (car host) (cons proc local))
                                             (assoc-delete-all (car host) clbsd--swank-tunnels)))
            local))))))

(defun clbsd--swank-start (host port)
  "Start HOST's control plane with its :swank-start and wait for PORT."
  (let ((cmd (plist-get (cdr host) :swank-start))
        (remote (clbsd--host-remote host)))
    (when cmd
      (message "clbsd: starting the control plane of %s..." (car host))
      (let* ((name (format "clbsd-control-plane-%s" (car host)))
             (buf (format " *clbsd control plane: %s*" (car host)))
             (proc (cond (remote
                          (apply #'start-process name buf
                                 (append (clbsd--ssh-argv host "-n")
                                         (list (if (stringp cmd) cmd
                                                 (mapconcat #'shell-quote-argument cmd " "))))))
                         ((stringp cmd) (start-process-shell-command name buf cmd))
                         (t (apply #'start-process name buf cmd))))
             (deadline (+ (float-time) clbsd-repl-start-timeout)))
        (set-process-query-on-exit-flag proc nil)
        (while (and (process-live-p proc) (not (clbsd--port-open-p port))
                    (< (float-time) deadline))
          (accept-process-output nil 0.2))))))

(defun clbsd--slime-connection (port)
  "The live SLIME connection to 127.0.0.1:PORT, or nil."
  (and (boundp 'slime-net-processes)
       (cl-find-if (lambda (p) (and (process-live-p p)
                                    (equal (slime-connection-port p) port)))
                   slime-net-processes)))

;;;###autoload
(defun clbsd-repl (&optional host-name)
  "Connect SLIME to the Lisp control plane of the current host (HOST-NAME).
Land in the REPL in package `clbsd-repl-package' with the control
plane's library loaded.  When already connected, switch to that REPL."
  (interactive
   (list (and current-prefix-arg
              (completing-read "clbsd host: " (mapcar #'car (clbsd--hosts)) nil t))))
  (unless (require 'slime nil t)
    (user-error "The clbsd REPL needs SLIME: install it (apt install slime, or M-x package-install RET slime)"))
  (unless (featurep 'slime-repl) (slime-setup '(slime-repl)))
  (let* ((host (clbsd--host host-name))
         (port (clbsd--swank-endpoint host))
         (conn (clbsd--slime-connection port)))
    (if conn
        (let ((slime-dispatching-connection conn))
          (slime-switch-to-output-buffer))
      (unless (clbsd--port-open-p port) (clbsd--swank-start host port))
      (unless (clbsd--port-open-p port)
        (user-error "No Swank server on port %d for host %s: start the control plane (docs/lisp.md)"
                    port (car host)))
      (let ((hook nil))
        (setq hook (lambda ()
                     (remove-hook 'slime-connected-hook hook)
                     (slime-repl-set-package clbsd-repl-package)
                     (slime-switch-to-output-buffer)))
        (add-hook 'slime-connected-hook hook 90)
        (slime-connect "127.0.0.1" port)))))

(provide 'clbsd)
;;; clbsd.el ends here
