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

if [ "$(id -u)" -ne 0 ]; then
	echo "make demo: clbsd runs containers and needs root" >&2
	exit 1
fi

if [ "${1:-}" = stop ]; then
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
  make demo-stop                   stop the daemon (containers keep running)
EOT
