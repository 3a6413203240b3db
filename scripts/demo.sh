#!/bin/sh
# make demo: start clbsdd on the default paths (dir storage under
# /var/lib/clbsd), build the forge image, run a sample container, and print
# what to try. `make demo-stop` (scripts/demo.sh stop) stops the daemon; the
# containers keep their state and come back when it starts again.
set -eu
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
BIN="$(pwd)/$BUILD"
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
	setsid "$BIN/clbsdd" --socket "$SOCK" >>"$LOG" 2>&1 </dev/null &
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
if ! clbsd inspect hello >/dev/null 2>&1; then
	clbsd run -d -t --name hello --hostname hello --memory 64M --pids 64 \
		--restart on-failure:3 -e GREETING=hello forge \
		sh -c 'while true; do echo "$GREETING from $(hostname), pid $$, at $(date)"; sleep 5; done' >/dev/null
	echo "started container 'hello'"
fi
clbsd ps

cat <<EOT

clbsd is running. Try (as root):
  export PATH=$BIN:\$PATH
  clbsd ps -a                      what runs
  clbsd logs -f hello              its output (Ctrl-C to stop following)
  clbsd exec hello ps              processes inside: its own PID namespace
  clbsd run --rm -it forge sh      an interactive shell in a fresh container
  clbsd console hello              attach to its console (Ctrl-Q detaches)
  clbsd stats                      CPU, memory and pids against the limits
  clbsd inspect hello              everything about it, --json for scripts
  clbsd stop hello && clbsd rm hello
  make demo-stop                   stop the daemon (containers keep running)
EOT
