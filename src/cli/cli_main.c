/*
 * clbsd: the command-line client. Global options, command dispatch, usage
 * texts, and the error reporting every command shares.
 */
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct cli cli;

struct command {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *summary;
	const char *usage;
};

#define RUN_FLAGS                                                                                  \
	"  -t, --tty               give the container a terminal\n"                                \
	"  -i, --interactive       keep stdin open and forward it\n"                               \
	"      --name NAME         container name (a DNS label; default: generated)\n"             \
	"  -e, --env K=V           set an environment variable; a bare K passes\n"                 \
	"                          this shell's value (repeatable)\n"                              \
	"  -v, --volume SRC:DST[:ro]\n"                                                            \
	"                          bind the host directory SRC at DST; both absolute\n"            \
	"                          (repeatable; :ro makes it read-only)\n"                         \
	"  -w, --workdir DIR       working directory inside the container (absolute)\n"            \
	"  -u, --user UID[:GID]    user (and group) to run as; a name from the image works\n"      \
	"      --hostname H        host name inside the container\n"                               \
	"      --memory SIZE       memory limit, like 256M or 1G\n"                                \
	"      --pids N            maximum number of processes\n"                                  \
	"      --cpus F            CPU limit in CPUs, like 0.5\n"                                  \
	"      --restart POLICY    no, on-failure[:N] or always\n"                                 \
	"      --network NET       bridge, host, none or network names (repeatable or\n"           \
	"                          a,b); default bridge when the host has a :network\n"            \
	"  -p, --publish [IP:]HOST:CTR[/udp]\n"                                                    \
	"                          publish a container port on the host (repeatable)\n"            \
	"      --ip ADDR           pin the address on the first network\n"                         \
	"      --dns ADDR          nameserver for /etc/resolv.conf (repeatable)\n"                 \
	"      --network-alias N   another name peers reach it by (repeatable)\n"                  \
	"      --userns MODE       auto: root inside is an unprivileged host uid (a\n"             \
	"                          private id range); host: the host's ids (default:\n"            \
	"                          the host config's :userns, else host)\n"                        \
	"      --rm                remove the container when it exits\n"                           \
	"  -h, --help              show this help\n"

static const struct command commands[] = {
	{"info", cmd_info, "show facts about the daemon",
	 "Usage: clbsd info [--json]\n\n"
	 "Show the daemon's version, paths, runtime, storage and counts.\n\n"
	 "Options:\n"
	 "      --json   print the daemon's JSON\n"
	 "  -h, --help   show this help\n"},
	{"run", cmd_run, "create and start a container, attached",
	 "Usage: clbsd run [OPTIONS] IMAGE [CMD [ARG...]]\n\n"
	 "Create a container from IMAGE and start it. Without -d the output is streamed\n"
	 "and clbsd exits with the container's exit status. Options end at IMAGE: what\n"
	 "follows is the command and its arguments.\n\n"
	 "Options:\n"
	 "  -d, --detach            start in the background and print the name\n" RUN_FLAGS},
	{"create", cmd_create, "create a container without starting it",
	 "Usage: clbsd create [OPTIONS] IMAGE [CMD [ARG...]]\n\n"
	 "Create a container from IMAGE and print its name ('clbsd --json create'\n"
	 "prints the container's JSON).\n\n"
	 "Options:\n" RUN_FLAGS},
	{"start", cmd_start, "start containers",
	 "Usage: clbsd start NAME...\n\n"
	 "Start created or exited containers and print their names.\n\n"
	 "Options:\n"
	 "  -h, --help   show this help\n"},
	{"wait", cmd_wait, "wait until containers stop and print their exit codes",
	 "Usage: clbsd wait NAME...\n\n"
	 "Block until each container is no longer running, then print its exit code.\n\n"
	 "Options:\n"
	 "  -h, --help   show this help\n"},
	{"stop", cmd_stop, "stop running containers",
	 "Usage: clbsd stop [-t SECS] NAME...\n\n"
	 "Send SIGTERM, then SIGKILL after the timeout; print each name once stopped.\n\n"
	 "Options:\n"
	 "  -t, --time SECS   seconds to wait before SIGKILL (default 10)\n"
	 "  -h, --help        show this help\n"},
	{"kill", cmd_kill, "send a signal to containers",
	 "Usage: clbsd kill [-s SIG] NAME...\n\n"
	 "Send a signal to the containers' init process.\n\n"
	 "Options:\n"
	 "  -s, --signal SIG   signal name (TERM, SIGHUP) or number (default KILL)\n"
	 "  -h, --help         show this help\n"},
	{"restart", cmd_restart, "restart containers",
	 "Usage: clbsd restart [-t SECS] NAME...\n\n"
	 "Stop (as with stop) and start the containers again.\n\n"
	 "Options:\n"
	 "  -t, --time SECS   seconds to wait before SIGKILL (default 10)\n"
	 "  -h, --help        show this help\n"},
	{"rm", cmd_rm, "remove containers",
	 "Usage: clbsd rm [-f] [-v] NAME...\n\n"
	 "Remove containers with their file system, logs and state. Their named\n"
	 "volumes (:dataset) stay unless -v is given. A container the configuration\n"
	 "declares comes back at the next reconcile pass: remove it from the file.\n\n"
	 "Options:\n"
	 "  -f, --force     kill a running container first\n"
	 "  -v, --volumes   remove its named volumes too\n"
	 "  -h, --help      show this help\n"},
	{"ps", cmd_ps, "list containers",
	 "Usage: clbsd ps [-a] [--json]\n\n"
	 "List running containers: NAME, ID, IMAGE, COMMAND, STATE, STATUS, PID.\n\n"
	 "Options:\n"
	 "  -a, --all     also list created and exited containers\n"
	 "      --json    print the daemon's JSON\n"
	 "  -h, --help    show this help\n"},
	{"inspect", cmd_inspect, "show containers as JSON",
	 "Usage: clbsd inspect NAME...\n\n"
	 "Print a JSON array with the daemon's view of each container.\n\n"
	 "Options:\n"
	 "      --json   accepted for habit; the output is always JSON\n"
	 "  -h, --help   show this help\n"},
	{"exec", cmd_exec, "run a command in a running container",
	 "Usage: clbsd exec [OPTIONS] NAME CMD [ARG...]\n\n"
	 "Run CMD inside the running container NAME and exit with its status.\n"
	 "Options end at NAME.\n\n"
	 "Options:\n"
	 "  -t, --tty              give the command a terminal\n"
	 "  -i, --interactive      forward stdin\n"
	 "  -e, --env K=V          set an environment variable; a bare K passes\n"
	 "                         this shell's value (repeatable)\n"
	 "  -w, --workdir DIR      working directory (absolute)\n"
	 "  -u, --user UID[:GID]   user (and group) to run as\n"
	 "  -h, --help             show this help\n"},
	{"logs", cmd_logs, "show a container's output",
	 "Usage: clbsd logs [-f] [--tail N] [--timestamps] NAME\n\n"
	 "Print what the container wrote: its stdout to stdout, its stderr to stderr.\n\n"
	 "Options:\n"
	 "  -f, --follow       keep printing new output until the container exits\n"
	 "  -n, --tail N       only the last N lines (or \"all\")\n"
	 "  -T, --timestamps   prefix each line with its time (RFC 3339)\n"
	 "  -h, --help         show this help\n"},
	{"console", cmd_console, "attach to a container's console",
	 "Usage: clbsd console NAME\n\n"
	 "Attach the terminal to the container's console, with recent output first.\n"
	 "Ctrl-Q detaches and leaves the container running. The window size follows\n"
	 "the terminal. clbsd exits with the container's status when it exits.\n\n"
	 "Options:\n"
	 "  -h, --help   show this help\n"},
	{"snapshot", cmd_snapshot, "snapshot a container's files",
	 "Usage: clbsd snapshot [--json] NAME [LABEL]\n\n"
	 "Snapshot the container's root file system, its named volumes and its state\n"
	 "under LABEL (default: the UTC time, YYYYmmdd-HHMMSS) and print the label.\n"
	 "A running container is snapshotted as it runs. With zfs storage a snapshot\n"
	 "is O(1); with dir storage it is a copy.\n\n"
	 "Options:\n"
	 "  -h, --help   show this help\n"},
	{"snapshots", cmd_snapshots, "list (or remove) a container's snapshots",
	 "Usage: clbsd snapshots [--json] [--rm LABEL] NAME\n\n"
	 "List the container's snapshots, oldest first, with their age and the space\n"
	 "only they hold.\n\n"
	 "Options:\n"
	 "  --rm LABEL   remove that snapshot first (refused while a clone uses it)\n"
	 "  -h, --help   show this help\n"},
	{"rollback", cmd_rollback, "put a container's files back to a snapshot",
	 "Usage: clbsd rollback [-f] [-t SECS] NAME LABEL\n\n"
	 "Stop the container if it runs, put its root file system and named volumes\n"
	 "back to snapshot LABEL, and start it again if it ran. Its configuration is\n"
	 "not rolled back.\n\n"
	 "Options:\n"
	 "  -f, --force     also remove the snapshots newer than LABEL (refused otherwise)\n"
	 "  -t, --time SECS grace period of the stop before SIGKILL (default 10)\n"
	 "  -h, --help      show this help\n"},
	{"build", cmd_build, "build an image from a Cblockfile",
	 "Usage: clbsd build -t NAME[:TAG] [-f FILE] [--no-cache] [--build-arg K=V]...\n"
	 "                   [--network host|none] DIR\n\n"
	 "Build an image from DIR/Cblockfile (or -f FILE) with DIR as the context\n"
	 "(docs/cblockfile.md). Each step prints \"step N/M INSTRUCTION\", cached or\n"
	 "running, and its time; RUN output streams. A step whose inputs did not change\n"
	 "is not run again (the layer cache); a failed build makes no image.\n\n"
	 "Options:\n"
	 "  -t, --tag NAME[:TAG]   the image's name\n"
	 "  -f, --file FILE        the Cblockfile (default DIR/Cblockfile)\n"
	 "      --no-cache         run every step again\n"
	 "      --build-arg K=V    a build argument for ARG (repeatable)\n"
	 "      --network MODE     what RUN steps get: none (default) or host\n"
	 "      --json             print the daemon's progress lines as they come\n"
	 "  -h, --help             show this help\n"},
	{"undo", cmd_undo, "go back to a container's state before its last recreate",
	 "Usage: clbsd undo NAME...\n\n"
	 "When the configuration changes a container so that it is recreated, the old\n"
	 "one is stopped and set aside (with :snapshot-before-change t, the default).\n"
	 "undo removes the new container, brings the old one back whole (files,\n"
	 "snapshots, settings), starts it if it ran, and keeps the reconciler from\n"
	 "recreating it until the configuration changes again. Named volumes are not\n"
	 "rolled back. Prints each name.\n\n"
	 "Options:\n"
	 "  -h, --help   show this help\n"},
	{"clone", cmd_clone, "make a new container from another's files",
	 "Usage: clbsd clone [--json] SRC[@LABEL] NEW\n\n"
	 "Create container NEW (not started, not managed by the configuration) with\n"
	 "SRC's configuration and a copy of its root file system and named volumes,\n"
	 "as they are now or at snapshot LABEL. With zfs storage the copy is a clone.\n\n"
	 "Options:\n"
	 "  -h, --help   show this help\n"},
	{"export", cmd_export, "write a container to one archive file",
	 "Usage: clbsd export [--json] [-o FILE|-] [--snapshot LABEL [--since LABEL]] NAME\n\n"
	 "Write the container (its record, its image's name and id, and its root file\n"
	 "system, state and named volumes as the storage driver's stream of a fresh\n"
	 "snapshot, with checksums of both) to FILE (default NAME.clbsd here). A\n"
	 "running container is exported as it runs. The file is written by the daemon\n"
	 "and appears only when complete; an existing file is not overwritten.\n\n"
	 "With --snapshot the export's snapshot is kept under LABEL; --since LABEL (zfs)\n"
	 "writes only what changed since that kept snapshot: importing it updates the\n"
	 "stopped container that has LABEL, in place (incremental backups, and what\n"
	 "migrate does to send most of a running container before it stops it).\n\n"
	 "Options:\n"
	 "  -o, --output FILE  where to write it; - for standard output\n"
	 "  --snapshot LABEL   keep the snapshot the export is made from\n"
	 "  --since LABEL      only the changes since this kept snapshot (zfs)\n"
	 "  -h, --help         show this help\n"},
	{"import", cmd_import, "recreate a container from an export",
	 "Usage: clbsd import [--json] [--name NEW] [--allow-host-access] FILE|-\n\n"
	 "Check FILE (format, storage driver, checksums, image present) and recreate\n"
	 "the container from it, stopped, under its exported name or NEW. Its record\n"
	 "must pass the checks of `clbsd create`. A failure leaves nothing behind.\n"
	 "The image must be here already (same id). An incremental export (--since)\n"
	 "updates the existing stopped container instead. - reads the archive from\n"
	 "standard input.\n\n"
	 "An archive whose container binds host paths or uses the host's network is\n"
	 "refused, with a list of them, unless --allow-host-access is given: only\n"
	 "for archives you trust.\n\n"
	 "Options:\n"
	 "  --name NEW            the new container's name\n"
	 "  --allow-host-access   allow host binds and host networking in FILE\n"
	 "  -h, --help            show this help\n"},
	{"migrate", cmd_migrate, "move a container to another daemon",
	 "Usage: clbsd migrate [--keep] [-t SECS] NAME --to TARGET\n\n"
	 "Move the container to another daemon: stop it if it runs, export it, import\n"
	 "it there, start it there if it ran and check that it runs, then remove it\n"
	 "here. Any failure puts things back: nothing is left on the target and the\n"
	 "container runs here again. The image must be on the target already.\n"
	 "Progress goes to stderr.\n\n"
	 "TARGET is ssh://[user@]host[:port][/path/to/socket] (each step runs\n"
	 "`clbsd` on that host over ssh, non-interactively: use a key; CLBSD_SSH_COMMAND\n"
	 "replaces \"ssh\" and CLBSD_REMOTE the remote clbsd) or unix:/path/to/socket\n"
	 "(another daemon on this host).\n\n"
	 "Options:\n"
	 "  --to TARGET      where to move it\n"
	 "  --keep           do not remove the container here\n"
	 "  -t, --time SECS  grace period of the stop (default 10)\n"
	 "  -h, --help       show this help\n"},
	{"network", cmd_network, "manage networks (ls, inspect, create, rm)",
	 "Usage: clbsd network COMMAND\n\n"
	 "Commands:\n"
	 "  ls                                    list networks\n"
	 "  inspect NAME...                       show networks as JSON\n"
	 "  create --subnet CIDR [--subnet6 CIDR6] [--internal] NAME\n"
	 "                                        make a network (a bridge with NAT, or\n"
	 "                                        without a way out when --internal)\n"
	 "  rm NAME...                            remove networks no container uses\n\n"
	 "The host's :network in the configuration is the network \"bridge\";\n"
	 "(network ...) forms declare others. See docs/network.md.\n\n"
	 "Options:\n"
	 "      --json   print the daemon's JSON\n"
	 "  -h, --help   show this help\n"},
	{"doctor", cmd_doctor, "explain why a container is unreachable",
	 "Usage: clbsd doctor [--json] CONTAINER\n\n"
	 "Check a container's networking piece by piece: bridge, veth, address, route,\n"
	 "nftables rules, forwarding, published ports already bound by another program.\n"
	 "Each line says ok, or what is wrong and how to fix it. Exits 1 when a check\n"
	 "failed.\n\n"
	 "Options:\n"
	 "      --json   print the daemon's JSON\n"
	 "  -h, --help   show this help\n"},
	{"stats", cmd_stats, "show resource usage",
	 "Usage: clbsd stats [--json] [NAME]\n\n"
	 "Show CPU, memory and process use of running containers (or of NAME). CPU %\n"
	 "is measured over half a second; 100% is one CPU.\n\n"
	 "Options:\n"
	 "      --json   print the daemon's JSON (one sample)\n"
	 "  -h, --help   show this help\n"},
	{"images", cmd_images, "list images",
	 "Usage: clbsd images [--json]\n\n"
	 "List images: NAME:TAG, ID, DIGEST, CREATED, SIZE.\n\n"
	 "Options:\n"
	 "      --json   print the daemon's JSON\n"
	 "  -h, --help   show this help\n"},
	{"image", cmd_image, "manage images (import, export, load, pull, tag, prune, rm, ...)",
	 "Usage: clbsd image COMMAND\n\n"
	 "Commands:\n"
	 "  import DIR NAME[:TAG]   copy a root file system directory into the store\n"
	 "  export REF -o FILE      write an OCI image layout archive; print its digest\n"
	 "  load FILE               load an OCI archive or layout, or a docker save archive\n"
	 "  pull REF                pull from a registry (OCI distribution API)\n"
	 "  tag REF NEW[:TAG]       give an image another name\n"
	 "  prune                   remove images without a name that no container uses\n"
	 "  rm [-f] REF...          remove images (-f even when containers use them)\n"
	 "  inspect REF...          print images as a JSON array\n"
	 "  ls                      list images (same as clbsd images)\n\n"
	 "REF is NAME[:TAG] (TAG defaults to latest), an id or a unique id prefix.\n"
	 "Run 'clbsd image COMMAND --help' for a command's options.\n"},
	{"pull", cmd_pull, "pull an image from a registry",
	 "Usage: clbsd pull [--name NAME[:TAG]] REF\n\n"
	 "Pull REF, [HOST[:PORT]/]REPO[:TAG|@sha256:DIGEST], for linux and this host's\n"
	 "architecture, and store it as REPO:TAG (or NAME). Progress goes to stderr.\n"
	 "Plain http is used only for loopback registries (127.0.0.0/8, ::1,\n"
	 "localhost) and hosts in clbsdd's CLBSD_INSECURE_REGISTRIES.\n\n"
	 "Options:\n"
	 "      --name NAME   store the image under this name\n"
	 "      --json        print the image's JSON\n"
	 "  -h, --help        show this help\n"},
	{"load", cmd_load, "load an image archive (same as image load)",
	 "Usage: clbsd load [--name NAME[:TAG]] [-i] FILE\n\n"
	 "Load an OCI image layout (archive or directory) or a docker save archive,\n"
	 "applying its layers with whiteouts, and store it under the name it carries\n"
	 "(or NAME).\n\n"
	 "Options:\n"
	 "  -i, --input FILE  the archive (or give it as the argument)\n"
	 "      --name NAME   store the image under this name\n"
	 "      --json        print the image's JSON\n"
	 "  -h, --help        show this help\n"},
	{"forge", cmd_forge, "build a base image from busybox or host binaries",
	 "Usage: clbsd forge [NAME[:TAG]]\n"
	 "       clbsd forge --from-host --name NAME[:TAG] PROGRAM...\n\n"
	 "Build the layer-0 image from the host's busybox-static (default forge:latest)\n"
	 "and print its id. With --from-host the image holds the given host programs,\n"
	 "the dynamic loader and every library they link (read from their ELF\n"
	 "headers), at their host paths, and a minimal /etc; it works offline (the\n"
	 "ingress image is made this way from the host's nginx). The first program is\n"
	 "the entrypoint.\n\n"
	 "Options:\n"
	 "      --from-host      copy host programs instead of busybox\n"
	 "      --name NAME      the image's name (needed with --from-host)\n"
	 "      --json           print the image's JSON instead of its id\n"
	 "  -h, --help           show this help\n"},
	{"plan", cmd_plan, "show what applying the configuration would do",
	 "Usage: clbsd plan [--json]\n\n"
	 "Read the configuration files as they are now and print, one line each, the\n"
	 "actions that applying them would take, with their reasons\n"
	 "(\"recreate web: :env changed\"). Nothing is changed.\n\n"
	 "Options:\n"
	 "      --json   print JSON\n"
	 "  -h, --help   show this help\n"},
	{"apply", cmd_apply, "reload the configuration and converge",
	 "Usage: clbsd apply [--dry-run] [--json]\n\n"
	 "Reload the configuration files (like SIGHUP to clbsdd) and run a reconcile\n"
	 "pass; print each action and whether it worked. A configuration with errors\n"
	 "changes nothing: its errors are printed and the last good one stays in\n"
	 "force. Status 1 for errors in the files or a failed action (the daemon\n"
	 "retries failed actions with backoff).\n\n"
	 "Options:\n"
	 "      --dry-run   show the actions without taking them (as clbsd plan)\n"
	 "      --json      print JSON\n"
	 "  -h, --help      show this help\n"},
	{"status", cmd_status, "show the configuration generation and the last pass",
	 "Usage: clbsd status [--json]\n\n"
	 "Print the configuration in force (generation, when loaded, declared\n"
	 "containers), the errors of a rejected reload, and the last reconcile pass.\n\n"
	 "Options:\n"
	 "      --json   print JSON\n"
	 "  -h, --help   show this help\n"},
	{"events", cmd_events, "show daemon events",
	 "Usage: clbsd events [-f] [--since SEQ] [--container NAME] [--type T] [--json]\n\n"
	 "Print events: TIME TYPE NAME key=value... Without -f, print the events the\n"
	 "daemon keeps and exit; with -f, follow new ones as they happen.\n\n"
	 "Options:\n"
	 "  -f, --follow           keep printing new events\n"
	 "      --since SEQ        only events after sequence number SEQ (older ones come\n"
	 "                         from the daemon's journal, across restarts)\n"
	 "      --container NAME   only events about this container\n"
	 "      --type T           only this type, or a prefix: container, image, daemon\n"
	 "      --json             print the raw JSON lines\n"
	 "  -h, --help             show this help\n"},
	{"version", cmd_version, "show client and daemon versions",
	 "Usage: clbsd version [--json]\n\n"
	 "Print the client's version and, when reachable, the daemon's.\n\n"
	 "Options:\n"
	 "      --json   print JSON\n"
	 "  -h, --help   show this help\n"},
	{"help", NULL, "show help for a command",
	 "Usage: clbsd help [COMMAND [SUBCOMMAND]]\n\n"
	 "Show the usage of clbsd or of a command.\n\n"
	 "Options:\n"
	 "  -h, --help   show this help\n"},
};

/* Usage texts of the image subcommands, found as "image <sub>". */
static const struct command image_commands[] = {
	{"image import", NULL, NULL,
	 "Usage: clbsd image import DIR NAME[:TAG]\n\n"
	 "Copy the root file system directory DIR (or a directory holding rootfs/ and\n"
	 "an optional config.json) into the image store as NAME:TAG; print the id.\n\n"
	 "Options:\n"
	 "      --json   print the image's JSON instead of its id\n"
	 "  -h, --help   show this help\n"},
	{"image export", NULL, NULL,
	 "Usage: clbsd image export REF -o FILE\n\n"
	 "Write the image as an OCI image layout archive (one gzip layer) to FILE and\n"
	 "print its digest, the sha256 of its manifest. The same image always gives\n"
	 "the same digest. skopeo reads it as oci-archive:FILE.\n\n"
	 "Options:\n"
	 "  -o, --output FILE   the archive to write (replaced when it exists)\n"
	 "      --json          print the result as JSON\n"
	 "  -h, --help          show this help\n"},
	{"image load", NULL, NULL,
	 "Usage: clbsd image load [--name NAME[:TAG]] [-i] FILE\n\n"
	 "Load an OCI image layout (archive or directory) or a docker save archive,\n"
	 "applying its layers with whiteouts, and store it under the name it carries\n"
	 "(or NAME). Members that would land outside the image are refused.\n\n"
	 "Options:\n"
	 "  -i, --input FILE  the archive (or give it as the argument)\n"
	 "      --name NAME   store the image under this name\n"
	 "      --json        print the image's JSON\n"
	 "  -h, --help        show this help\n"},
	{"image pull", NULL, NULL,
	 "Usage: clbsd image pull [--name NAME[:TAG]] REF\n\n"
	 "Same as clbsd pull.\n\n"
	 "Options:\n"
	 "      --name NAME   store the image under this name\n"
	 "      --json        print the image's JSON\n"
	 "  -h, --help        show this help\n"},
	{"image tag", NULL, NULL,
	 "Usage: clbsd image tag REF NEW[:TAG]\n\n"
	 "Point the name NEW at the image REF. An image that loses its last name that\n"
	 "way is removed unless a container uses it.\n\n"
	 "Options:\n"
	 "  -h, --help   show this help\n"},
	{"image prune", NULL, NULL,
	 "Usage: clbsd image prune [--json]\n\n"
	 "Remove images that have no name and no container using them; print what\n"
	 "went and the space reclaimed.\n\n"
	 "Options:\n"
	 "      --json   print the daemon's JSON\n"
	 "  -h, --help   show this help\n"},
	{"image rm", NULL, NULL,
	 "Usage: clbsd image rm [-f] REF...\n\n"
	 "Remove images.\n\n"
	 "Options:\n"
	 "  -f, --force   remove even when containers use the image\n"
	 "  -h, --help    show this help\n"},
	{"image inspect", NULL, NULL,
	 "Usage: clbsd image inspect REF...\n\n"
	 "Print a JSON array with each image.\n\n"
	 "Options:\n"
	 "      --json   accepted for habit; the output is always JSON\n"
	 "  -h, --help   show this help\n"},
	{"image ls", NULL, NULL,
	 "Usage: clbsd image ls [--json]\n\n"
	 "List images: NAME:TAG, ID, DIGEST, CREATED, SIZE.\n\n"
	 "Options:\n"
	 "      --json   print the daemon's JSON\n"
	 "  -h, --help   show this help\n"},
};

static const char main_usage_head[] =
	"Usage: clbsd [--socket PATH] [--json] COMMAND [ARG...]\n\n"
	"A client for clbsdd, the clbsd container daemon.\n\n"
	"Options:\n"
	"      --socket PATH   the daemon's API socket (default $CLBSD_SOCKET or\n"
	"                      " CLBSD_DEFAULT_SOCKET ")\n"
	"      --json          print JSON for scripts instead of tables\n"
	"  -h, --help          show this help\n"
	"  -V, --version       show the client's version\n\n"
	"Commands:\n";

static const char main_usage_tail[] =
	"\nRun 'clbsd COMMAND --help' for a command's options.\n"
	"Exit status: 0 ok, 1 failure, 2 usage error; run, exec and console exit\n"
	"with the container's status.\n";

static void print_main_usage(FILE *f)
{
	fputs(main_usage_head, f);
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
		fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
	fputs(main_usage_tail, f);
}

static const struct command *find_usage(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
		if (strcmp(commands[i].name, name) == 0)
			return &commands[i];
	for (size_t i = 0; i < ARRAY_SIZE(image_commands); i++)
		if (strcmp(image_commands[i].name, name) == 0)
			return &image_commands[i];
	/* "network create": the group's usage lists its commands. */
	const char *sp = strchr(name, ' ');
	for (size_t i = 0; sp && i < ARRAY_SIZE(commands); i++)
		if (strlen(commands[i].name) == (size_t)(sp - name) &&
		    strncmp(commands[i].name, name, (size_t)(sp - name)) == 0)
			return &commands[i];
	return NULL;
}

int cli_opts_json(int argc, char **argv, bool *dry_run)
{
	static const struct option lo[] = {
		{"help", no_argument, NULL, 'h'},
		{"json", no_argument, NULL, 'j'},
		{"dry-run", no_argument, NULL, 'n'},
		{NULL, 0, NULL, 0},
	};
	int c;
	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+:h", lo, NULL)) != -1) {
		switch (c) {
		case 'h':
			cli_help();
			return -1;
		case 'j':
			cli.json = true;
			break;
		case 'n':
			if (!dry_run)
				return cli_bad_opt(c, argv);
			*dry_run = true;
			break;
		default:
			return cli_bad_opt(c, argv);
		}
	}
	return 0;
}

int cli_opts_noargs(int argc, char **argv, bool *dry_run)
{
	int r = cli_opts_json(argc, argv, dry_run);
	if (r)
		return r;
	if (optind < argc)
		return cli_usage("unexpected argument \"%s\"", argv[optind]);
	return 0;
}

int cli_dispatch(int argc, char **argv, const struct cli_sub *subs, size_t n, const char *expected)
{
	if (argc < 2)
		return cli_usage("missing COMMAND (%s)", expected);
	const char *sub = argv[1];
	if (strcmp(sub, "-h") == 0 || strcmp(sub, "--help") == 0)
		return cli_help();
	for (size_t i = 0; i < n; i++) {
		if (strcmp(subs[i].name, sub) == 0) {
			cli.cmd = subs[i].full;
			return subs[i].fn(argc - 1, argv + 1);
		}
	}
	return cli_usage("unknown command \"%s\" (expected %s)", sub, expected);
}

int cli_help(void)
{
	const struct command *c = find_usage(cli.cmd);
	if (c)
		fputs(c->usage, stdout);
	else
		print_main_usage(stdout);
	return 0;
}

static int vusage(const char *cmd, const char *fmt, va_list ap)
{
	fflush(stdout);
	fprintf(stderr, "clbsd: ");
	if (cmd)
		fprintf(stderr, "%s: ", cmd);
	vfprintf(stderr, fmt, ap);
	if (cmd)
		fprintf(stderr, "\nTry 'clbsd %s --help'.\n", cmd);
	else
		fprintf(stderr, "\nTry 'clbsd --help'.\n");
	return EXIT_USAGE;
}

int cli_usage(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = vusage(cli.cmd, fmt, ap);
	va_end(ap);
	return r;
}

int cli_bad_opt(int c, char **argv)
{
	struct clbsd_err err;
	clbsd_err_init(&err);
	cli_getopt_err(c, argv, &err);
	return cli_usage("%s", err.msg);
}

int cli_fail(const struct clbsd_err *err)
{
	if (err->kind == CLBSD_E_INVALID)
		return cli_usage("%s", err->msg);
	fflush(stdout);
	fprintf(stderr, "clbsd: %s\n", err->msg);
	return 1;
}

struct clbsd_client *cli_client(void)
{
	if (!cli.client)
		cli.client = clbsd_client_new(cli.socket);
	return cli.client;
}

int cli_call(const char *method, const char *path, const json_t *body, json_t **out,
	     struct clbsd_err *err)
{
	autofree char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
	autofree char *resp = NULL;
	int r = clbsd_client_request(cli_client(), method, path, text, out ? &resp : NULL, NULL,
				     err);
	if (r < 0 || !out)
		return r;
	json_error_t je;
	json_t *j = json_loads(resp, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
	if (!j)
		return clbsd_err_setmsg(err, CLBSD_E_INTERNAL, EPROTO,
					"%s %s: clbsdd answered with invalid JSON: %s", method,
					path, je.text);
	*out = j;
	return 0;
}

void cli_print_json(const json_t *j)
{
	json_dumpf(j, stdout, JSON_INDENT(2) | JSON_ENCODE_ANY);
	fputc('\n', stdout);
}

int cli_send(const char *method, const char *path, json_t *body, const char *text,
	     const char *field)
{
	struct clbsd_err err;
	clbsd_err_init(&err);
	json_t *res = NULL;
	int r = cli_call(method, path, body, &res, &err);
	json_decref(body);
	if (r < 0)
		return cli_fail(&err);
	const char *v = field ? json_string_value(json_object_get(res, field)) : NULL;
	if (cli.json)
		cli_print_json(res);
	else if (text || v)
		printf("%s\n", text ? text : v);
	json_decref(res);
	return 0;
}

static int cmd_help(int argc, char **argv)
{
	if (argc >= 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0))
		return cli_help();
	if (argc < 2) {
		print_main_usage(stdout);
		return 0;
	}
	autofree char *name = argc >= 3 ? xasprintf("%s %s", argv[1], argv[2]) : xstrdup(argv[1]);
	const struct command *c = find_usage(name);
	if (!c)
		return cli_usage("unknown command \"%s\"", name);
	fputs(c->usage, stdout);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{"socket", required_argument, NULL, 'S'},
		{"json", no_argument, NULL, 'j'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	signal(SIGPIPE, SIG_IGN);
	const char *env = getenv("CLBSD_SOCKET");
	cli.socket = env && *env ? env : CLBSD_DEFAULT_SOCKET;
	cli.cmd = NULL;
	opterr = 0;
	int c;
	while ((c = getopt_long(argc, argv, "+:hV", lo, NULL)) != -1) {
		switch (c) {
		case 'S':
			if (!*optarg)
				return cli_usage("--socket needs a path");
			cli.socket = optarg;
			break;
		case 'j':
			cli.json = true;
			break;
		case 'h':
			print_main_usage(stdout);
			return 0;
		case 'V':
			printf("clbsd version %s\n", CLBSD_VERSION);
			return 0;
		default:
			return cli_bad_opt(c, argv);
		}
	}
	if (optind >= argc) {
		print_main_usage(stderr);
		return EXIT_USAGE;
	}
	char **cargv = argv + optind;
	int cargc = argc - optind;
	const struct command *cmd = NULL;
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
		if (strcmp(commands[i].name, cargv[0]) == 0)
			cmd = &commands[i];
	if (!cmd)
		return cli_usage("unknown command \"%s\"", cargv[0]);
	cli.cmd = cmd->name;
	int r = cmd->fn ? cmd->fn(cargc, cargv) : cmd_help(cargc, cargv);
	fflush(stdout);
	clbsd_client_free(cli.client);
	return r;
}
