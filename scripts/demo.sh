#!/bin/sh
# make demo: start clbsdd on the default paths (dir storage under
# /var/lib/clbsd), build the forge image, run a sample container, and print
# what to try. `make demo-stop` (scripts/demo.sh stop) stops the daemon; the
# containers keep their state and come back when it starts again.
set -eu
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
BIN="$(pwd)/$BUILD"
CONFIG="$(pwd)/examples/homelab.conf"
RUN=/run/clbsd
SOCK=$RUN/clbsd.sock
LOG=/var/log/clbsd/clbsdd.log
# The Lisp control plane (docs/lisp.md): the core `make lisp` saves, else
# the script that runs it from source. Its init.d is under /var/lib so the
# demo's (clbsd:persist) writes nothing in /etc.
LISP_BIN="$BIN/clbsd-lisp"
[ -x "$LISP_BIN" ] || LISP_BIN="$(pwd)/lisp/clbsd-lisp"
LISP_INIT="$(pwd)/examples/init.lisp"
LISP_INIT_DIR=/var/lib/clbsd/lisp/init.d
LISP_LOG=/var/log/clbsd/clbsd-lisp.log
LISP_PIDFILE=$RUN/clbsd-lisp.pid
SWANK_PORT=${CLBSD_SWANK_PORT:-4005}

if [ "$(id -u)" -ne 0 ]; then
	echo "make demo: clbsd runs containers and needs root" >&2
	exit 1
fi

if [ "${1:-}" = stop ]; then
	if [ -f "$LISP_PIDFILE" ] && kill "$(cat "$LISP_PIDFILE")" 2>/dev/null; then
		echo "stopped clbsd-lisp (pid $(cat "$LISP_PIDFILE"))"
		rm -f "$LISP_PIDFILE"
	fi
	if [ -f "$RUN/clbsdd.pid" ]; then
		pid=$(cat "$RUN/clbsdd.pid")
		kill "$pid" 2>/dev/null && echo "stopped clbsdd (pid $pid); containers keep running"
	else
		echo "clbsdd is not running"
	fi
	exit 0
fi

clbsd() { "$BIN/clbsd" --socket "$SOCK" "$@"; }

if ! clbsd info >/dev/null 2>&1; then
	mkdir -p /var/log/clbsd
	# setsid: the daemon outlives this shell and make.
	setsid "$BIN/clbsdd" --socket "$SOCK" --config "$CONFIG" >>"$LOG" 2>&1 </dev/null &
	i=0
	until clbsd info >/dev/null 2>&1; do
		i=$((i + 1))
		if [ $i -gt 100 ]; then
			echo "clbsdd did not start; see $LOG" >&2
			tail -n 20 "$LOG" >&2
			exit 1
		fi
		sleep 0.1
	done
	echo "clbsdd started (log: $LOG)"
fi

clbsd forge >/dev/null
echo "built forge:latest from busybox-static"
# The homelab in examples/homelab.conf runs on forge: converge on it now.
clbsd apply || true
# Dependants start once db's health check passes: give it a few seconds.
i=0
while [ "$(clbsd plan 2>/dev/null)" != "nothing to do: the host matches the configuration" ] &&
	[ $i -lt 40 ]; do
	i=$((i + 1))
	sleep 0.5
done
clbsd ps -a

# The control plane: callbacks from examples/init.lisp, Swank on loopback.
lisp_note="  (the Lisp control plane is not running: see $LISP_LOG)"
if [ -f "$LISP_PIDFILE" ] && kill -0 "$(cat "$LISP_PIDFILE")" 2>/dev/null; then
	lisp_note=""
elif command -v sbcl >/dev/null || [ -x "$BIN/clbsd-lisp" ]; then
	mkdir -p "$LISP_INIT_DIR"
	: >>"$LISP_LOG"
	lines=$(wc -l <"$LISP_LOG")
	setsid "$LISP_BIN" --socket "$SOCK" --swank-port "$SWANK_PORT" --init "$LISP_INIT" \
		--init-dir "$LISP_INIT_DIR" >>"$LISP_LOG" 2>&1 </dev/null &
	echo $! >"$LISP_PIDFILE"
	i=0
	until tail -n +"$((lines + 1))" "$LISP_LOG" | grep -q 'swank listening on'; do
		i=$((i + 1))
		if [ $i -gt 600 ] || ! kill -0 "$(cat "$LISP_PIDFILE")" 2>/dev/null; then
			echo "clbsd-lisp did not start; see $LISP_LOG" >&2
			tail -n 20 "$LISP_LOG" >&2
			break
		fi
		sleep 0.1
	done
	tail -n +"$((lines + 1))" "$LISP_LOG" | grep -q 'swank listening on' && lisp_note=""
fi
[ -z "$lisp_note" ] && echo "clbsd-lisp started (Swank on 127.0.0.1:$SWANK_PORT, log: $LISP_LOG)"

cat <<EOT

clbsd is running the homelab declared in examples/homelab.conf. Try (as root):
  export PATH=$BIN:\$PATH
  clbsd ps -a                      what runs (toolbox is declared stopped)
  clbsd status                     the configuration in force and the last pass
  clbsd logs -f db                 a container's output (Ctrl-C stops following)
  clbsd exec web ps                processes inside: its own PID namespace
  curl http://127.0.0.1:8080/      web, published on the host (clbsd ps shows ports)
  clbsd exec worker cat /etc/hosts  containers find each other by name (kept current)
  curl -H 'Host: web.home.lan' http://127.0.0.1/
                                   the ingress: nginx routes web's :domain to it
  clbsd network ls                 the bridge, its subnet and who is on it
  clbsd doctor web                 why a container would be unreachable
  clbsd events --since 0           everything that happened
  edit examples/homelab.conf, then
  clbsd plan                       what would change, and why
  clbsd apply                      converge (or: kill -HUP \$(cat $RUN/clbsdd.pid))
  clbsd run --rm -it forge sh      an imperative container, never touched by the config
  clbsd stats                      CPU, memory and pids against the limits
  clbsd snapshot db before         snapshot its files (then: clbsd rollback db before)
  clbsd export -o /tmp/db.clbsd db one checked archive of it (clbsd import to recreate)
  make demo-stop                   stop the daemon and clbsd-lisp (containers keep running)

The Lisp control plane (docs/lisp.md) follows the daemon's events and runs
the callbacks of $LISP_INIT.
$lisp_note
  In Emacs (SLIME):  M-x slime-connect RET 127.0.0.1 RET $SWANK_PORT RET
  then, in package CLBSD-USER:
    (containers)                         every container, as objects
    (on "web" :exited (lambda (c e) (print (list (name c) (exit-code c)))))
    (stop-container "worker")            and watch the callback of init.lisp
    (defhook ...) then (persist)         saved to $LISP_INIT_DIR/90-live.lisp
  From another machine: ssh -L $SWANK_PORT:127.0.0.1:$SWANK_PORT root@THIS-HOST
EOT
