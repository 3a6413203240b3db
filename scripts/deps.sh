#!/bin/sh
# Install every Debian package that building, the demo, the tests and the
# benchmarks need. Idempotent: packages already present are not fetched again,
# and apt's index is refreshed only when something is missing.
set -eu

build="gcc make pkg-config libevent-dev libjansson-dev libhttp-parser-dev
libseccomp-dev libcap-dev libssl-dev libarchive-dev libnl-3-dev libnl-route-3-dev
libnftables-dev libcurl4-openssl-dev libxxhash-dev libyaml-dev systemtap-sdt-dev"
# systemtap-sdt-dev is only <sys/sdt.h>, the USDT probe macros
# (src/util/trace.h, docs/tracing.md): without it the probes compile to nothing.
# Networking uses libnl and libnftables directly; nftables (the nft command)
# is there for the operator to look at clbsd's table, never on a start path.
# nginx is the ingress (the routing container is assembled from the host's
# binary and the libraries it links, so it is needed on the host).
runtime="busybox-static iproute2 util-linux procps libnl-3-200 libnl-route-3-200
libnftables1 nftables libarchive13 libcurl4 libxxhash0 libyaml-0-2 nginx"
# The zfs storage driver: a file-backed pool under zfs-fuse for the tests
# and the demo (OpenZFS needs a kernel module a container host may lack).
zfs="zfs-fuse"
# openssh-server: migrate over ssh is tested against an sshd the test starts
# on loopback (its package's own service is not started, see below).
# skopeo, docker-registry and docker.io: the OCI round trip (through a dockerd
# the test starts) and a local registry to pull from. mmdebstrap: a real
# Debian root file system (with redis-server) run as both kinds
# (tests/integration/docker_debian.sh; it needs a Debian mirror, else skips).
# bpftrace attaches to the daemon's USDT probes (tests/integration/tracing.sh;
# it skips where the kernel refuses BPF or uprobes). prometheus: only its
# promtool, which checks /metrics with Prometheus's own parser
# (tests/integration/metrics.sh); its service is not started (below).
# mtree-netbsd: NetBSD's mtree(8), which FreeBSD's is; tests/integration/integrity.sh
# checks an image's tree against clbsd's manifest with it (skips without).
tests="clang libclang-rt-14-dev shellcheck tmux curl python3 openssh-server openssh-client
skopeo docker-registry docker.io mmdebstrap bpftrace prometheus mtree-netbsd"
# prometheus-node-exporter: bench/metrics's peer (its own /metrics, scraped
# the same way); like the other services it is started only by the bench.
# time: GNU time, the CPU time of the hashing bench/integrity compares with.
bench="crun hyperfine docker.io docker-compose prometheus-node-exporter time"
# The Common Lisp library and control plane (lisp/, docs/lisp.md): SBCL and
# Debian's Lisp systems (yason needs alexandria and trivial-gray-streams but
# does not declare them), Swank for the REPL; the tests drive SLIME from
# emacs --batch.
lisp="sbcl cl-yason cl-alexandria cl-trivial-gray-streams cl-bordeaux-threads cl-swank"
lisptests="cl-fiveam slime emacs-nox"
# The Emacs package (emacs/): Emacs itself for its tests and the terminal
# test under tmux, package-lint for `make lint`, use-package for the README's
# install forms (tests/emacs/run.sh tries them), SLIME for clbsd-repl.
emacs="emacs-nox elpa-package-lint elpa-use-package slime"

want="$build $runtime"
case "${1:-all}" in
	build) ;;
	demo) want="$want $zfs $lisp" ;;
	check) want="$want $tests $zfs $lisp $lisptests $emacs" ;;
	bench) want="$want $bench $lisp" ;;
	all) want="$want $tests $zfs $bench $lisp $lisptests $emacs" ;;
	*) echo "usage: scripts/deps.sh [build|demo|check|bench|all]" >&2; exit 2 ;;
esac

missing=""
for p in $want; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed'; then
		missing="$missing $p"
	fi
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "scripts/deps.sh: missing packages:$missing; run as root to install them" >&2
	exit 1
fi
echo "scripts/deps.sh: installing$missing" >&2
export DEBIAN_FRONTEND=noninteractive
# Packages that ship a service (openssh-server, nginx, docker.io) must not
# start it here: the tests start what they need themselves.
policy=/usr/sbin/policy-rc.d
made_policy=""
if [ ! -e "$policy" ]; then
	printf '#!/bin/sh\nexit 101\n' >"$policy"
	chmod 755 "$policy"
	made_policy=1
fi
trap '[ -n "$made_policy" ] && rm -f "$policy"' EXIT
apt-get update -qq
# shellcheck disable=SC2086 # the package list is meant to split
apt-get install -y -qq --no-install-recommends $missing >/dev/null
