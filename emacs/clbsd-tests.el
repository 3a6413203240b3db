;;; clbsd-tests.el --- Tests of clbsd.el against a real daemon  -*- lexical-binding: t; -*-

;; Copyright (C) 2026 The clbsd authors

;; This file is not part of GNU Emacs.

;;; Commentary:

;; Run by tests/emacs/run.sh, which starts a private clbsdd with real
;; containers and exports CLBSD_SOCKET and CLBSD_CLI (the CLI, used as
;; the independent judge of the daemon's state).  The containers:
;; alpha (running, prints a numbered line every 0.2 s), beta (running),
;; gamma (created, never started).  Each test prints one "ok NAME" or
;; "FAIL NAME: why" line; the last line is "N passed, N failed".

;;; Code:

(require 'ert)
(require 'clbsd)

(defvar clbsd-tests-cli (or (getenv "CLBSD_CLI") "clbsd")
  "The CLI that judges the daemon's state.")

(setq clbsd-program clbsd-tests-cli)

(defun clbsd-tests--inspect (name)
  "The daemon's record of container NAME, as the CLI prints it."
  (with-temp-buffer
    (unless (zerop (call-process clbsd-tests-cli nil t nil "--json" "inspect" name))
      (error "Clbsd inspect %s failed: %s" name (buffer-string)))
    (goto-char (point-min))
    (car (json-parse-buffer :object-type 'alist :array-type 'list
                            :null-object nil :false-object nil))))

(defun clbsd-tests--state (name)
  "The state of container NAME according to the CLI."
  (alist-get 'state (clbsd-tests--inspect name)))

(defun clbsd-tests--cli (&rest args)
  "Run the CLI with ARGS; signal when it fails."
  (with-temp-buffer
    (unless (zerop (apply #'call-process clbsd-tests-cli nil t nil args))
      (error "Clbsd %s failed: %s" (string-join args " ") (buffer-string)))
    (buffer-string)))

(defun clbsd-tests--wait (pred &optional secs)
  "Wait up to SECS (default 10) seconds for PRED to return non-nil."
  (let ((deadline (+ (float-time) (or secs 10))) v)
    (while (and (not (setq v (funcall pred))) (< (float-time) deadline))
      (accept-process-output nil 0.05))
    v))

(defun clbsd-tests--block-row (name)
  "The table row of container NAME in the current buffer, as cells."
  (save-excursion
    (goto-char (point-min))
    (when (re-search-forward (format "^| %s +|" (regexp-quote name)) nil t)
      (mapcar #'string-trim
              (split-string (buffer-substring (line-beginning-position)
                                              (line-end-position))
                            "|" t)))))

(defun clbsd-tests--dashboard ()
  "A new Org buffer holding a rendered clbsd-containers block."
  (let ((buf (generate-new-buffer "dash.org")))
    (with-current-buffer buf
      (org-mode)
      (insert "* Homelab\n#+BEGIN: clbsd-containers :all t :columns \"name state image uptime actions\"\n#+END:\n")
      (goto-char (point-min))
      (re-search-forward "#\\+BEGIN")
      (beginning-of-line)
      (org-ctrl-c-ctrl-c))
    buf))

(ert-deftest clbsd-dblock-renders-real-state ()
  "The block has one row per container with the state the daemon reports."
  (with-current-buffer (clbsd-tests--dashboard)
    (let ((cli (with-temp-buffer
                 (insert (clbsd-tests--cli "--json" "ps" "-a"))
                 (goto-char (point-min))
                 (json-parse-buffer :object-type 'alist :array-type 'list
                                    :null-object nil :false-object nil))))
      (should (>= (length cli) 3))
      (dolist (c cli)
        (let ((row (clbsd-tests--block-row (alist-get 'name c))))
          (should row)
          (should (equal (nth 1 row) (alist-get 'state c)))
          (should (equal (nth 2 row) (alist-get 'image c)))))
      (should (string-match-p "\\[\\[clbsd:stop:alpha\\]\\[stop\\]\\]" (buffer-string)))
      (should (string-match-p "\\[\\[clbsd:start:gamma\\]\\[start\\]\\]" (buffer-string))))))

(ert-deftest clbsd-dblock-filters ()
  "The :match and :state parameters keep only the containers asked for."
  (with-temp-buffer
    (org-mode)
    (insert "#+BEGIN: clbsd-containers :match \"^al\" :columns (name state)\n#+END:\n"
            "#+BEGIN: clbsd-containers :state created :columns (name state)\n#+END:\n")
    (org-update-all-dblocks)
    (let ((text (buffer-string)))
      (should (string-match-p "^| alpha +| running" text))
      (should (string-match-p "^| gamma +| created" text))
      (should-not (string-match-p "^| beta" text)))))

;; Issue 18: the kind column shows the runtime (native or docker), and
;; declared-or-not has its own column.
(ert-deftest clbsd-dblock-kind-column ()
  "The kind column shows the daemon's kind field; declared is apart."
  (with-temp-buffer
    (org-mode)
    (insert "#+BEGIN: clbsd-containers :all t :match \"^\\\\(alpha\\\\|beta\\\\)$\""
            " :columns (name kind declared)\n#+END:\n")
    (goto-char (point-min))
    (org-update-dblock)
    (should (equal (clbsd-tests--block-row "alpha") '("alpha" "native" "declared")))
    (should (equal (clbsd-tests--block-row "beta") '("beta" "native" "ad hoc"))))
  ;; A docker container as the API reports it (tests/integration/docker.sh
  ;; checks the field on a real one).
  (should (equal (clbsd--cell 'kind '(:name "db" :kind "docker") nil) "docker"))
  (should (equal (clbsd--cell 'kind '(:name "old") nil) "native")))

(defun clbsd-tests--stats-block ()
  "Render a block of cpu and memory for alpha and gamma; return its rows."
  (let ((requests nil))
    (cl-letf* ((orig (symbol-function 'clbsd--request-start))
               ((symbol-function 'clbsd--request-start)
                (lambda (method path &rest rest)
                  (push path requests)
                  (apply orig method path rest))))
      (with-temp-buffer
        (org-mode)
        (insert "#+BEGIN: clbsd-containers :all t :match \"^\\\\(alpha\\\\|gamma\\\\)$\""
                " :columns (name state cpu memory pids)\n#+END:\n")
        (goto-char (point-min))
        (org-update-dblock)
        (list (clbsd-tests--block-row "alpha") (clbsd-tests--block-row "gamma")
              (nreverse requests))))))

(ert-deftest clbsd-dblock-cpu-memory ()
  "The cpu and memory columns show the use against the limits, in one request."
  (clrhash clbsd--cpu-samples)
  (pcase-let ((`(,alpha ,gamma ,requests) (clbsd-tests--stats-block)))
    ;; alpha: :limits (:memory "64M" :cpus 0.5); first render: CPU seconds.
    (should (equal (nth 1 alpha) "running"))
    (should (string-match-p "\\`[0-9.]+s\\'" (nth 2 alpha)))
    (should (string-match-p "\\`[0-9]+[BKM]/64M\\'" (nth 3 alpha)))
    (should (string-match-p "\\`[1-9][0-9]*\\'" (nth 4 alpha)))
    ;; Not running: no use to show.
    (should (equal (cdr gamma) (list (nth 1 gamma) "" "" "")))
    ;; One request answers the table: the list with its stats.
    (should (equal requests (list (car requests))))
    (should (string-match-p "\\`/v1/containers\\?all=1&fields=.*stats\\.cpu_usage_ns"
                            (car requests))))
  ;; The next render: the use since the previous one, against :cpus.
  (sleep-for 0.3)
  (let ((alpha (car (clbsd-tests--stats-block))))
    (should (string-match-p "\\`[0-9.]+%/50%\\'" (nth 2 alpha)))))

(ert-deftest clbsd-dblock-older-daemon-stats ()
  "Against a daemon whose list has no stats, the block asks /v1/stats."
  (cl-letf* ((orig (symbol-function 'clbsd--containers))
             ((symbol-function 'clbsd--containers)
              (lambda (&rest args)
                (mapcar (lambda (c)
                          (cl-loop for (k v) on c by #'cddr
                                   unless (eq k :stats) append (list k v)))
                        (apply orig args)))))
    (pcase-let ((`(,alpha ,_ ,requests) (clbsd-tests--stats-block)))
      (should (member "/v1/stats" requests))
      (should (string-match-p "\\`[0-9]+[BKM]/64M\\'" (nth 3 alpha))))))

;; Since the block writes them once per number, a cached text must be
;; the one `format' makes, for each row alike.
(ert-deftest clbsd-short-texts-read-as-format ()
  "Sizes and durations are the texts `format' makes, one per number."
  (let ((sizes (list 0 1 1023 1024 1535 1536 2560 2561 176128 1048063 1048064
                     1048575 1048576 (* 16 1048576) (* 3 524288) (1- (* 1024 1048576))
                     (* 3 1073741824))))
    (dotimes (_ 3000)
      (push (random (* 2 1073741824)) sizes)
      (push (* 512 (random 4096)) sizes))
    (dolist (b sizes)
      (should (equal (clbsd--size b)
                     (cond ((< b 1024) (format "%dB" b))
                           ((< b (* 1024 1024)) (format "%.0fK" (/ b 1024.0)))
                           ((< b (* 1024 1024 1024)) (format "%.0fM" (/ b 1048576.0)))
                           (t (format "%.1fG" (/ b 1073741824.0))))))))
  (dolist (s '(0 59 60 3599 3600 86399 86400 1000000))
    (should (equal (clbsd--duration s)
                   (cond ((< s 60) (format "%ds" s))
                         ((< s 3600) (format "%dm" (/ s 60)))
                         ((< s 86400) (format "%dh" (/ s 3600)))
                         (t (format "%dd" (/ s 86400)))))))
  ;; Made once: the rows of a render share it.
  (should (eq (clbsd--size 176128) (clbsd--size 176200)))
  (should (eq (clbsd--duration 300) (clbsd--duration 359))))

(ert-deftest clbsd-dblock-action-link-stops ()
  "Following a row's stop link stops the container and refreshes the block."
  (should (equal (clbsd-tests--state "beta") "running"))
  (with-current-buffer (clbsd-tests--dashboard)
    (goto-char (point-min))
    (search-forward "[[clbsd:stop:beta][stop]]")
    (backward-char 3)
    (let ((line (line-number-at-pos)))
      (org-open-at-point)
      ;; Point stays on the same row of the refreshed block.
      (should (= line (line-number-at-pos))))
    (should (equal (clbsd-tests--state "beta") "exited"))
    (should (equal (nth 1 (clbsd-tests--block-row "beta")) "exited"))
    (should (string-match-p "\\[\\[clbsd:start:beta\\]" (buffer-string)))
    ;; And back: the start link of the refreshed row works too.
    (goto-char (point-min))
    (search-forward "[[clbsd:start:beta][start]]")
    (backward-char 3)
    (org-open-at-point)
    (should (equal (clbsd-tests--state "beta") "running"))
    (should (equal (nth 1 (clbsd-tests--block-row "beta")) "running"))
    ;; The audit log tells Emacs's requests apart from the CLI's.
    (should (string-match-p
             "\"client\":\"emacs\",\"method\":\"POST\",\"path\":\"/v1/containers/beta/stop\""
             (clbsd-tests--cli "audit" "--json" "--container" "beta")))))

(ert-deftest clbsd-dblock-unreachable-daemon-error-row ()
  "A daemon that does not answer gives an error row, never a signal."
  (let ((dead (make-temp-file "clbsd-dead" nil ".sock")))
    (with-temp-buffer
      (org-mode)
      (insert "#+BEGIN: clbsd-containers :socket \"/nonexistent/clbsd.sock\"\n#+END:\n"
              (format "#+BEGIN: clbsd-status :socket %S\n#+END:\n" dead)
              "#+BEGIN: clbsd-events :socket \"/nonexistent/clbsd.sock\"\n#+END:\n"
              "#+BEGIN: clbsd-containers :columns (name state)\n#+END:\n")
      ;; org-update-all-dblocks stops at the first block that signals:
      ;; the last block is filled only if none did.
      (org-update-all-dblocks)
      (let ((text (buffer-string)))
        (should (string-match-p "^| error | cannot connect to /nonexistent/clbsd.sock" text))
        (should (string-match-p (format "^| error | cannot connect to %s" (regexp-quote dead)) text))
        (should (= 3 (how-many "^| error |" (point-min) (point-max))))
        (should (string-match-p "^| alpha +| running" text))))
    (delete-file dead)))

(ert-deftest clbsd-dblock-others ()
  "The events, status, plan and snapshots blocks show the daemon's data."
  (clbsd-tests--cli "snapshot" "gamma" "first")
  (with-temp-buffer
    (org-mode)
    (insert "#+BEGIN: clbsd-events :count 5 :container alpha\n#+END:\n"
            "#+BEGIN: clbsd-status\n#+END:\n"
            "#+BEGIN: clbsd-plan\n#+END:\n"
            "#+BEGIN: clbsd-snapshots :container gamma\n#+END:\n")
    (org-update-all-dblocks)
    (let ((text (buffer-string)))
      (should (string-match-p "| container\\.started +| alpha" text))
      (should (string-match-p "| containers +| [0-9]+ running of [0-9]+" text))
      (should (string-match-p "\\[\\[clbsd:apply:-\\]\\[apply\\]\\]" text))
      (should (string-match-p "^| first +|.*\\[\\[clbsd:rollback:gamma:first\\]\\[rollback\\]\\]" text))
      (should-not (string-match-p "| error |" text)))))

(ert-deftest clbsd-refresh-leaves-edited-block ()
  "A timer refresh updates a visible block but not one holding point."
  (with-current-buffer (clbsd-tests--dashboard)
    (switch-to-buffer (current-buffer))
    (goto-char (point-max))
    (insert "#+BEGIN: clbsd-containers :columns (name state)\n#+END:\n")
    (clbsd-dashboard-mode 1)
    (unwind-protect
        (progn
          ;; Point in the first block, the second never rendered.
          (goto-char (point-min))
          (search-forward "| alpha")
          (let ((pos (point))
                (first (clbsd-tests--block-text 0)))
            (clbsd-refresh-blocks)
            (should (= pos (point)))
            (should (equal first (clbsd-tests--block-text 0)))
            (should (string-match-p "| alpha +| running" (clbsd-tests--block-text 1)))
            ;; A user edit in the second block: the next refresh keeps it.
            (goto-char (point-min))
            (re-search-forward "^#\\+BEGIN: clbsd-" nil nil 2)
            (forward-line 1)
            (insert "| my note |\n")
            (goto-char (point-min))
            (should (= 1 (clbsd-refresh-blocks)))
            (should (string-match-p "my note" (clbsd-tests--block-text 1)))))
      (clbsd-dashboard-mode -1))))

(ert-deftest clbsd-dashboard-timer-refreshes ()
  "With the timer on, a change made elsewhere shows up; point does not move."
  (let ((clbsd-dashboard-refresh-interval 0.3)
        (buf (clbsd-tests--dashboard)))
    (switch-to-buffer buf)
    (goto-char (point-min))             ; on the heading, outside the block
    (clbsd-dashboard-mode 1)
    (unwind-protect
        (progn
          (should (equal (nth 1 (clbsd-tests--block-row "beta")) "running"))
          (clbsd-tests--cli "stop" "-t" "1" "beta")
          (should (clbsd-tests--wait
                   (lambda () (equal (nth 1 (clbsd-tests--block-row "beta")) "exited"))
                   10))
          (should (= (point) (point-min))))
      (clbsd-dashboard-mode -1)
      (should-not clbsd--dashboard-timer)
      (clbsd-tests--cli "start" "beta"))))

(defun clbsd-tests--block-text (n)
  "The content of the Nth clbsd block of the buffer."
  (save-excursion
    (goto-char (point-min))
    (re-search-forward "^#\\+BEGIN: clbsd-" nil nil (1+ n))
    (clbsd--block-text (line-beginning-position))))

(defun clbsd-tests--list-goto (name)
  "Move to the row of container NAME in a clbsd list."
  (goto-char (point-min))
  (while (and (not (eobp)) (not (equal (cdr (tabulated-list-get-id)) name)))
    (forward-line 1))
  (should (equal (cdr (tabulated-list-get-id)) name)))

(ert-deftest clbsd-list-keys-act ()
  "The list's keys stop and start a container and restart marked ones."
  (let ((buf (clbsd)))
    (with-current-buffer buf
      (should (derived-mode-p 'clbsd-list-mode))
      (clbsd-tests--list-goto "gamma")
      (should (string-match-p "created" (buffer-substring (line-beginning-position)
                                                          (line-end-position))))
      (execute-kbd-macro (kbd "S"))
      (should (equal (clbsd-tests--state "gamma") "running"))
      (clbsd-tests--list-goto "gamma")
      (should (string-match-p "running" (buffer-substring (line-beginning-position)
                                                          (line-end-position))))
      (execute-kbd-macro (kbd "O"))
      (should (equal (clbsd-tests--state "gamma") "exited"))
      ;; Marks: restart alpha and beta together.
      (let ((pa (alist-get 'pid (clbsd-tests--inspect "alpha")))
            (pb (alist-get 'pid (clbsd-tests--inspect "beta"))))
        (clbsd-tests--list-goto "alpha")
        (execute-kbd-macro (kbd "m"))
        (clbsd-tests--list-goto "beta")
        (execute-kbd-macro (kbd "m"))
        (should (= 2 (length clbsd--marked)))
        (execute-kbd-macro (kbd "R"))
        (should (null clbsd--marked))
        (should (equal (clbsd-tests--state "alpha") "running"))
        (should-not (equal pa (alist-get 'pid (clbsd-tests--inspect "alpha"))))
        (should-not (equal pb (alist-get 'pid (clbsd-tests--inspect "beta")))))
      ;; RET: the detail buffer.
      (clbsd-tests--list-goto "alpha")
      (execute-kbd-macro (kbd "RET"))
      (with-current-buffer "*clbsd container: alpha*"
        (should (string-match-p "^state +running" (buffer-string)))
        (should (string-match-p "^memory +64M" (buffer-string)))
        (should (string-match-p "container\\.started" (buffer-string)))))))

(ert-deftest clbsd-logs-follow ()
  "The logs buffer shows output written after it was opened."
  (let* ((buf (clbsd-logs "alpha" (clbsd--host)))
         (count (lambda ()
                  (with-current-buffer buf
                    (how-many "^line-[0-9]+$" (point-min) (point-max))))))
    (unwind-protect
        (let ((first (clbsd-tests--wait (lambda () (let ((n (funcall count))) (and (> n 0) n))))))
          (should first)
          ;; alpha prints a line every 0.2 s: five more arrive in about 1 s.
          (should (clbsd-tests--wait (lambda () (>= (funcall count) (+ first 5))) 10))
          (should (with-current-buffer buf (= (point) (point-max)))))
      (kill-buffer buf))))

(ert-deftest clbsd-events-buffer-follows ()
  "The events buffer shows an event that happens after it was opened."
  (let ((buf (clbsd-events)))
    (unwind-protect
        (progn
          (clbsd-tests--cli "snapshot" "beta" "evtest")
          (should (clbsd-tests--wait
                   (lambda () (with-current-buffer buf
                                (string-match-p "label=evtest" (buffer-string)))))))
      (kill-buffer buf))))

(defun clbsd-tests--term-text (buf)
  "The text of terminal buffer BUF."
  (with-current-buffer buf (buffer-substring-no-properties (point-min) (point-max))))

(ert-deftest clbsd-console-replays-and-detaches ()
  "The console buffer replays the scrollback, takes input, and Ctrl-Q detaches."
  (let ((buf (clbsd-console "delta" (clbsd--host))))
    (unwind-protect
        (progn
          (should (clbsd-tests--wait
                   (lambda () (string-match-p "delta-was-here" (clbsd-tests--term-text buf)))))
          (with-current-buffer buf
            (term-send-raw-string "echo typed-$((6*7))\r"))
          (should (clbsd-tests--wait
                   (lambda () (string-match-p "typed-42" (clbsd-tests--term-text buf)))))
          (with-current-buffer buf (term-send-raw-string "\C-q"))
          (should (clbsd-tests--wait
                   (lambda () (string-match-p "detached from delta"
                                              (clbsd-tests--term-text buf)))))
          (should (clbsd-tests--wait
                   (lambda () (not (process-live-p (get-buffer-process buf))))))
          (should (equal (clbsd-tests--state "delta") "running")))
      (when (buffer-live-p buf)
        (let ((kill-buffer-query-functions nil)) (kill-buffer buf))))))

(ert-deftest clbsd-exec-shell-runs-in-container ()
  "The shell buffer runs a shell inside the container."
  (let ((buf (clbsd-exec-shell "delta" (clbsd--host))))
    (unwind-protect
        (progn
          (with-current-buffer buf
            (term-send-raw-string "echo host-$(hostname) sum-$((40+2))\r"))
          ;; The output, not the echoed command line: only the shell can
          ;; make "host-delta" (the container's hostname) and "sum-42".
          (should (clbsd-tests--wait
                   (lambda () (string-match-p "sum-42" (clbsd-tests--term-text buf)))))
          (should (string-match-p "host-delta sum-42" (clbsd-tests--term-text buf)))
          (with-current-buffer buf (term-send-raw-string "exit\r"))
          (should (clbsd-tests--wait
                   (lambda () (not (process-live-p (get-buffer-process buf)))))))
      (when (buffer-live-p buf)
        (let ((kill-buffer-query-functions nil)) (kill-buffer buf))))))

(ert-deftest clbsd-remote-host-through-ssh ()
  "A host reached through ssh: its block renders and its stop link acts."
  (skip-unless (getenv "CLBSD_TEST_SSH_PORT"))
  (let ((clbsd-hosts `(("far" :ssh "root@127.0.0.1" :socket ,clbsd-socket
                        :ssh-options ("-p" ,(getenv "CLBSD_TEST_SSH_PORT")
                                      "-i" ,(getenv "CLBSD_TEST_SSH_ID")
                                      "-o" "StrictHostKeyChecking=no"
                                      "-o" "UserKnownHostsFile=/dev/null"
                                      "-o" "BatchMode=yes" "-o" "LogLevel=ERROR")))))
    (unwind-protect
        (with-temp-buffer
          (org-mode)
          (insert "#+BEGIN: clbsd-containers :host far :all t :columns (name state actions)\n#+END:\n")
          (org-update-all-dblocks)
          (should (string-match-p "^| beta +| running" (buffer-string)))
          ;; Through the tunnel, not the local socket.
          (should (string-match-p "\\`/.*clbsd-far-[0-9]+\\.sock\\'"
                                  (clbsd--host-socket (clbsd--host "far"))))
          (goto-char (point-min))
          (search-forward "[[clbsd:stop:beta][stop]]")
          (backward-char 3)
          (org-open-at-point)
          (should (equal (clbsd-tests--state "beta") "exited"))
          (should (string-match-p "^| beta +| exited" (buffer-string)))
          (clbsd-request "POST" "/v1/containers/beta/start" nil (clbsd--host "far"))
          (should (equal (clbsd-tests--state "beta") "running")))
      (let ((local (cddr (assoc "far" clbsd--tunnels))))
        (clbsd-stop-tunnels)
        (should-not (and local (file-exists-p local)))))))

(ert-deftest clbsd-dblock-rollback-link ()
  "A snapshots block's rollback link brings the container's files back."
  (clbsd-tests--cli "exec" "beta" "sh" "-c" "echo one > /state")
  (clbsd-tests--cli "snapshot" "beta" "before")
  (clbsd-tests--cli "exec" "beta" "sh" "-c" "echo two > /state")
  (with-temp-buffer
    (org-mode)
    (insert "#+BEGIN: clbsd-snapshots :container beta\n#+END:\n")
    (org-update-all-dblocks)
    (goto-char (point-min))
    (search-forward "[[clbsd:rollback:beta:before][rollback]]")
    (backward-char 3)
    (let ((clbsd-confirm nil)) (org-open-at-point))
    (should (clbsd-tests--wait (lambda () (equal (clbsd-tests--state "beta") "running"))))
    (should (equal (clbsd-tests--cli "exec" "beta" "cat" "/state") "one\n"))
    (should (string-match-p "^| before " (buffer-string)))))

(ert-deftest clbsd-other-buffers ()
  "The images, networks, snapshots and doctor buffers show the daemon's data."
  (with-current-buffer (clbsd-images)
    (should (string-match-p "forge:latest" (buffer-string))))
  (with-current-buffer (clbsd-networks)
    (should-not (string-match-p "^  error" (buffer-string))))
  (clbsd-tests--cli "snapshot" "gamma" "listed")
  (with-current-buffer (clbsd-snapshots "gamma" (clbsd--host))
    (should (string-match-p "listed" (buffer-string)))
    (goto-char (point-min))
    (while (and (not (eobp)) (not (equal (tabulated-list-get-id) "listed")))
      (forward-line 1))
    (let ((clbsd-confirm nil)) (execute-kbd-macro (kbd "D")))
    (should-not (string-match-p "listed" (buffer-string))))
  ;; alpha is on no network: the doctor says so rather than failing.
  (with-current-buffer (clbsd-doctor "alpha" (clbsd--host))
    (should (string-match-p "network\\|problem" (buffer-string)))))

(ert-deftest clbsd-completion-names ()
  "Container names are offered for completion."
  (let ((names (clbsd-container-names)))
    (should (member "alpha" names))
    (should (member "gamma" names))))

(ert-deftest clbsd-hosts-all ()
  "A block over every host shows each host's rows and an error for a dead one."
  (let ((clbsd-hosts `(("here" :socket ,clbsd-socket)
                       ("gone" :socket "/nonexistent/clbsd.sock"))))
    (with-temp-buffer
      (org-mode)
      (insert "#+BEGIN: clbsd-containers :host all :columns (name state actions)\n#+END:\n")
      (org-update-all-dblocks)
      (let ((text (buffer-string)))
        (should (string-match-p "^| here +| alpha +| running" text))
        (should (string-match-p "\\[\\[clbsd:stop:here/alpha\\]" text))
        (should (string-match-p "^| error | gone: cannot connect" text))))))

(defvar slime-net-processes)
(declare-function slime-connected-p "ext:slime" ())
(declare-function slime-lisp-package "ext:slime" (&optional connection))
(declare-function slime-output-buffer "ext:slime-repl" (&optional noprompt))
(declare-function slime-repl-return "ext:slime-repl" (&optional end-of-input))
(declare-function slime-disconnect-all "ext:slime" ())

(ert-deftest clbsd-repl-connects ()
  "The REPL command starts the control plane, lands in CLBSD-USER, runs (containers)."
  (skip-unless (and (getenv "CLBSD_LISP") (executable-find "sbcl")
                    (require 'slime nil t)))
  (let* ((port (clbsd--free-port))
         (clbsd-hosts `(("here" :socket ,clbsd-socket :swank-port ,port
                         :swank-start (,(getenv "CLBSD_LISP") "--socket" ,clbsd-socket
                                       "--swank-port" ,(number-to-string port)))))
         (proc-name "clbsd-control-plane-here"))
    (unwind-protect
        (progn
          (clbsd-repl)
          (should (clbsd-tests--wait
                   (lambda () (and (slime-connected-p)
                                   (equal (slime-lisp-package) "CLBSD-USER")))
                   30))
          (with-current-buffer (slime-output-buffer)
            (goto-char (point-max))
            (insert "(containers)")
            (slime-repl-return)
            (should (clbsd-tests--wait
                     (lambda () (string-match-p "#<CONTAINER alpha" (buffer-string)))
                     20)))
          ;; Again: no second connection, the REPL is shown.
          (switch-to-buffer "*scratch*")
          (clbsd-repl)
          (should (= 1 (length slime-net-processes)))
          (should (eq (window-buffer (selected-window)) (slime-output-buffer))))
      (when (fboundp 'slime-disconnect-all) (slime-disconnect-all))
      (when (get-process proc-name) (delete-process proc-name)))))

(ert-deftest clbsd-repl-explains-missing-control-plane ()
  "With nothing on the Swank port and no way to start it, clbsd-repl says so."
  (skip-unless (require 'slime nil t))
  (let ((clbsd-hosts `(("none" :socket ,clbsd-socket :swank-port ,(clbsd--free-port)))))
    (should (string-match-p "No Swank server on port [0-9]+ for host none"
                            (cadr (should-error (clbsd-repl) :type 'user-error))))))

(defun clbsd-tests-run ()
  "Run every test; print one ok or FAIL line each and a summary; exit."
  (let ((passed 0) (failed 0))
    (dolist (test (ert-select-tests (or (getenv "CLBSD_TESTS") t) t))
      (let* ((name (ert-test-name test))
             (result (ert-run-test test)))
        (cond
         ((ert-test-passed-p result)
          (setq passed (1+ passed))
          (princ (format "ok emacs.%s\n" name)))
         ((ert-test-skipped-p result)
          (princ (format "skip emacs.%s: %S\n" name
                         (ert-test-result-with-condition-condition result))))
         (t
          (setq failed (1+ failed))
          (princ (format "FAIL emacs.%s: %s\n" name
                         (replace-regexp-in-string
                          "\n" " "
                          (let ((c (and (ert-test-result-with-condition-p result)
                                        (ert-test-result-with-condition-condition result))))
                            (if c (format "%S" c) "did not pass")))))))))
    (princ (format "%d passed, %d failed\n" passed failed))
    (kill-emacs (if (zerop failed) 0 1))))

(provide 'clbsd-tests)
;;; clbsd-tests.el ends here
