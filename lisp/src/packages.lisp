;;;; packages.lisp -- one package per concern.
;;;;
;;;; clbsd.http     HTTP/1.1 over the daemon's Unix socket (no JSON, no policy)
;;;; clbsd          the public library: conditions, containers, the API,
;;;;                events and callbacks, timers, declarations, hooks
;;;; clbsd.control-plane  the long-running process: init files, Swank
;;;; clbsd-user     where a REPL user lands: COMMON-LISP and CLBSD

(defpackage #:clbsd.http
  (:use #:cl)
  (:documentation "HTTP/1.1 client over a Unix-domain socket, with chunked and streamed bodies.")
  (:export #:*socket-path* #:default-socket-path
           #:daemon-unreachable #:daemon-unreachable-path #:daemon-unreachable-reason
           #:open-request #:connection-status #:connection-headers
           #:read-body #:read-body-line #:close-connection #:with-request
           #:url-encode))

(defpackage #:clbsd
  (:use #:cl)
  ;; EVERY is CL's; clbsd:every is the timer (`(clbsd:every "1h" fn)`).
  (:shadow #:every)
  (:import-from #:clbsd.http #:*socket-path* #:daemon-unreachable
                #:daemon-unreachable-path #:daemon-unreachable-reason)
  (:documentation "Containers of a clbsd daemon as CLOS objects; the whole API as functions;
event callbacks run on one worker thread per container; timers; live declarations.")
  (:export
   ;; connection
   #:*socket-path* #:daemon-unreachable #:daemon-unreachable-path #:daemon-unreachable-reason
   #:info
   ;; conditions
   #:clbsd-error #:error-code #:error-message #:error-status #:error-request
   #:invalid-argument #:forbidden #:not-found #:conflict #:internal-failure
   #:unavailable #:daemon-timeout #:too-large #:unsupported-key #:unsupported-request
   #:retry
   ;; containers: the object and its readers
   #:container #:name #:id #:image #:image-id #:state #:running-p #:pid #:exit-code
   #:exit-signal #:oom-killed-p #:created-at #:started-at #:finished-at #:restart-count
   #:start-error #:managed-p #:spec-hash #:spec #:kind #:health #:health-details
   #:command #:env #:workdir #:user #:hostname #:tty-p #:volumes #:memory-limit
   #:pids-limit #:cpu-limit #:restart-policy #:auto-remove-p #:network-mode #:addresses
   #:address #:aliases #:ports #:domain #:service-port #:rootfs #:cgroup #:removed-p
   #:storage-driver #:shim-pid #:userns #:undo-info
   #:raw #:refresh
   ;; the API
   #:containers #:find-container #:create-container #:run-container #:start-container
   #:stop-container #:restart-container #:kill-container #:remove-container
   #:wait-container #:exec-in #:logs #:follow-logs #:log-stream #:stats #:all-stats
   #:snapshot #:snapshots #:remove-snapshot #:rollback #:clone-container
   #:export-container #:import-container #:undo-container
   #:plan #:apply-config #:status #:events #:follow-events
   #:images #:find-image #:build-image #:import-image #:forge-image #:remove-image
   #:tag-image #:networks #:find-network #:create-network #:remove-network #:doctor
   #:update-container
   ;; events and callbacks
   #:event #:event-seq #:event-type #:event-time #:event-container #:event-attrs #:event-attr
   #:on #:off #:callbacks #:callback-errors #:start-following #:stop-following
   #:following-p #:last-seq #:*log-function*
   ;; timers
   #:every #:cancel-timer #:timers #:parse-duration
   ;; declarations and hooks
   #:declare-container #:undeclare-container #:undeclare #:defhook #:deftimer #:hooks #:persist #:*init-file* #:*init-dir*
   #:load-init-files #:init-errors #:init-error #:init-error-file #:init-error-form
   #:init-error-condition))

(defpackage #:clbsd.control-plane
  (:use #:cl #:clbsd)
  (:shadowing-import-from #:clbsd #:every)
  (:documentation "The clbsd-lisp process: load init files, serve Swank, follow events.")
  (:export #:main #:start-swank #:*swank-port* #:*swank-interface*))

(defpackage #:clbsd-user
  (:use #:cl #:clbsd)
  (:shadowing-import-from #:clbsd #:every)
  (:documentation "The package a REPL user of the control plane lands in."))
