/*
 * The command table: every command's name, help, options and positional
 * arguments. The parser (cli_args.c), --help and `clbsd help`, the bash
 * completion and the clbsd(1) man page (cli_gen.c) all read it, so they
 * cannot disagree. A new option is one line here plus the code that uses it.
 */
#include "cli.h"

#include <string.h>

/* ---- options shared by several commands ---- */
#define OPT_JSON(help) CLI_OPT_JSON(help)
#define OPT_SECS(help)                                                                             \
	{                                                                                          \
		"time", 't', "SECS", help, CLI_K_NONE, "timeout", 0                                \
	}
#define OPT_END CLI_OPT_END

static const struct cli_opt json_only[] = {OPT_JSON("print the daemon's JSON"), OPT_END};
static const struct cli_opt json_plain[] = {OPT_JSON("print JSON"), OPT_END};
static const struct cli_opt json_habit[] = {
	OPT_JSON("accepted for habit; the output is always JSON"), OPT_END};
static const struct cli_opt json_image[] = {OPT_JSON("print the image's JSON instead of its id"),
					    OPT_END};
static const struct cli_opt no_opts[] = {OPT_END};
static const struct cli_opt stats_opts[] = {
	{"no-stream", 0, NULL, "print one table and exit instead of redrawing every second",
	 CLI_K_NONE, NULL, 0},
	OPT_JSON("print one sample as the daemon reports it (no streaming)"),
	OPT_END};
static const struct cli_opt diff_opts[] = {
	{"fold", 0, NULL,
	 "print the effective forms to put in the main file in place of the live\n"
	 "layer (then delete conf.d/90-live.conf)",
	 CLI_K_NONE, NULL, 0},
	OPT_JSON("print the daemon's JSON"),
	OPT_END};

static const struct cli_opt stop_opts[] = {OPT_SECS("seconds to wait before SIGKILL (default 10)"),
					   OPT_END};
static const struct cli_opt kill_opts[] = {{"signal", 's', "SIG",
					    "signal name (TERM, SIGHUP) or number (default KILL)",
					    CLI_K_SIGNAL, NULL, 0},
					   OPT_END};
static const struct cli_opt rm_opts[] = {
	{"force", 'f', NULL, "kill a running container first", CLI_K_NONE, NULL, 0},
	{"volumes", 'v', NULL, "remove its named volumes too", CLI_K_NONE, NULL, 0},
	OPT_END};
static const struct cli_opt ps_opts[] = {
	{"all", 'a', NULL, "also list created and exited containers, and what moved away",
	 CLI_K_NONE, NULL, 0},
	{"quiet", 'q', NULL, "print the names only", CLI_K_NONE, NULL, 0},
	{"format", 0, "TEMPLATE", "print each container through TEMPLATE (see below)", CLI_K_NONE,
	 NULL, 0},
	OPT_JSON("print the daemon's JSON"),
	OPT_END};
static const struct cli_opt inspect_opts[] = {
	{"format", 'f', "TEMPLATE", "print each container through TEMPLATE (see clbsd ps --help)",
	 CLI_K_NONE, NULL, 0},
	OPT_JSON("accepted for habit; the output is JSON without --format"),
	OPT_END};
static const struct cli_opt logs_opts[] = {
	{"follow", 'f', NULL, "keep printing new output until the container exits", CLI_K_NONE,
	 NULL, 0},
	{"tail", 'n', "N", "only the last N lines (or \"all\")", CLI_K_NONE, NULL, 0},
	{"since", 0, "TIME",
	 "only lines written at or after TIME: RFC 3339\n"
	 "(2026-11-22T20:07:46Z) or a duration ago (10m, 1h30m)",
	 CLI_K_NONE, NULL, 0},
	{"until", 0, "TIME", "only lines written before TIME (same forms)", CLI_K_NONE, NULL, 0},
	{"timestamps", 't', NULL, "prefix each line with its time (RFC 3339; also -T)", CLI_K_NONE,
	 NULL, 0},
	{"timestamps", 'T', NULL, "", CLI_K_NONE, NULL, CLI_OPT_HIDDEN},
	OPT_END};
static const struct cli_opt snapshots_opts[] = {
	{"rm", 0, "LABEL", "remove that snapshot first (refused while a clone uses it)", CLI_K_NONE,
	 NULL, 0},
	OPT_JSON("print the daemon's JSON"),
	OPT_END};
static const struct cli_opt verify_opts[] = {
	{"update", 0, NULL, "record the files as they are now as the new manifest", CLI_K_NONE,
	 NULL, 0},
	OPT_JSON("print the daemon's report"),
	OPT_END};
static const struct cli_opt rollback_opts[] = {
	{"force", 'f', NULL, "also remove the snapshots newer than LABEL (refused otherwise)",
	 CLI_K_NONE, NULL, 0},
	OPT_SECS("grace period of the stop before SIGKILL (default 10)"),
	OPT_JSON("print the daemon's JSON"),
	OPT_END};
static const struct cli_opt host_export_opts[] = {
	{"output", 'o', "FILE", "the archive to write (it must not exist); -: standard output",
	 CLI_K_NONE, NULL, 0},
	{"label", 0, "LABEL", "the snapshot's label on zfs (default host-YYYYmmdd-HHMMSS)",
	 CLI_K_NONE, NULL, 0},
	{"since", 0, "LABEL", "zfs: only what changed since the host export of that label",
	 CLI_K_NONE, NULL, 0},
	{"stop", 0, NULL, "dir: stop what runs for one consistent copy, then start it again",
	 CLI_K_NONE, NULL, 0},
	{"snapshots", 0, "none|all|L1,L2",
	 "zfs: each container's snapshots that travel too "
	 "(default none)",
	 CLI_K_NONE, NULL, 0},
	OPT_END};
static const struct cli_opt host_import_opts[] = {
	{"force", 'f', NULL, "replace this daemon's own configuration files", CLI_K_NONE, NULL, 0},
	{"allow-host-access", 0, NULL,
	 "install a configuration that runs host commands or uses host paths (listed)", CLI_K_NONE,
	 NULL, 0},
	OPT_END};
static const struct cli_opt build_opts[] = {
	{"tag", 't', "NAME[:TAG]", "the image's name (needed)", CLI_K_NONE, NULL, 0},
	{"file", 'f', "FILE", "the Cblockfile (default DIR/Cblockfile)", CLI_K_FILE, NULL, 0},
	{"no-cache", 0, NULL, "run every step again", CLI_K_NONE, NULL, 0},
	{"build-arg", 0, "K=V", "a build argument for ARG (repeatable)", CLI_K_NONE, NULL,
	 CLI_OPT_REPEAT},
	{"network", 0, "MODE", "what RUN steps get: none (default) or host", CLI_K_NONE, NULL, 0},
	{"kind", 0, "KIND", "native (default) or docker: build with dockerd (see below)",
	 CLI_K_NONE, NULL, 0},
	OPT_JSON("print the daemon's progress lines as they come"),
	OPT_END};
static const struct cli_opt export_opts[] = {
	{"output", 'o', "FILE", "where to write it; - for standard output", CLI_K_FILE, NULL, 0},
	{"snapshot", 0, "LABEL", "keep the snapshot the export is made from", CLI_K_NONE, NULL, 0},
	{"since", 0, "LABEL", "only the changes since this kept snapshot (zfs)", CLI_K_NONE, NULL,
	 0},
	{"with-image", 0, NULL, "a docker container: carry its image too (docker save)", CLI_K_NONE,
	 NULL, 0},
	{"snapshots", 0, "none|all|L1,L2",
	 "zfs: the container's snapshots that travel too "
	 "(default none)",
	 CLI_K_NONE, NULL, 0},
	OPT_JSON("print the daemon's JSON"),
	OPT_END};
static const struct cli_opt import_opts[] = {
	{"name", 0, "NEW", "the new container's name", CLI_K_NONE, NULL, 0},
	{"allow-host-access", 0, NULL, "allow host binds and host networking in FILE", CLI_K_NONE,
	 NULL, 0},
	{"declared", 0, NULL, "import into this host's declaration of the container", CLI_K_NONE,
	 NULL, 0},
	{"declaration", 0, "FORM", "with --declared: record this (container NAME ...) form first",
	 CLI_K_NONE, NULL, 0},
	{"pending", 0, NULL,
	 "with --declaration: provisional until --commit NAME (or --abort NAME)", CLI_K_NONE, NULL,
	 0},
	{"commit", 0, NULL, "keep the provisional import of the container named by the argument",
	 CLI_K_NONE, NULL, 0},
	{"abort", 0, NULL, "undo the provisional import of the container named by the argument",
	 CLI_K_NONE, NULL, 0},
	OPT_JSON("print the container's JSON"),
	OPT_END};
static const struct cli_opt backup_opts[] = {
	{"at", 0, "TIME",
	 "the backup's time (tests only: the daemon takes it with CLBSD_TEST_CLOCK=1)", CLI_K_NONE,
	 NULL, 0},
	OPT_JSON("print the daemon's JSON"),
	OPT_END};
static const struct cli_opt restore_opts[] = {
	{"from", 0, "DEST", "where the backups are (needed): a directory, unix:SOCKET or ssh://...",
	 CLI_K_NONE, NULL, 0},
	{"at", 0, "TIME",
	 "the newest backup at or before TIME (YYYY-mm-dd[THH:MM:SSZ], epoch seconds or a "
	 "label); default the newest",
	 CLI_K_NONE, NULL, 0},
	{"as", 0, "NEW", "restore under another name, beside the original", CLI_K_NONE, NULL, 0},
	{"replace", 0, NULL,
	 "replace the container of that name here: it is stopped and set aside (clbsd undo\n"
	 "brings it back), and put back if the restore fails",
	 CLI_K_NONE, NULL, 0},
	{"allow-host-access", 0, NULL, "allow host binds and host networking in the backup",
	 CLI_K_NONE, NULL, 0},
	OPT_JSON("print {\"name\",\"label\"}"),
	OPT_END};
static const struct cli_opt migrate_opts[] = {
	{"to", 0, "DEST", "where to move it (or give DEST as the last argument)", CLI_K_NONE, NULL,
	 0},
	{"all", 0, NULL, "move every container of this host, dependencies first", CLI_K_NONE, NULL,
	 0},
	{"keep", 0, NULL, "do not remove the container here", CLI_K_NONE, NULL, 0},
	{"with-image", 0, NULL, "a docker container: carry its image to the target's dockerd",
	 CLI_K_NONE, NULL, 0},
	OPT_SECS("grace period of the stop (default 10)"),
	OPT_JSON("accepted; the output is the name"),
	OPT_END};
static const struct cli_opt images_opts[] = {
	{"quiet", 'q', NULL, "print the ids only", CLI_K_NONE, NULL, 0},
	{"kind", 0, "KIND", "native (clbsd's store, the default) or docker (dockerd's)", CLI_K_NONE,
	 NULL, 0},
	{"format", 0, "TEMPLATE", "print each image through TEMPLATE (see below)", CLI_K_NONE, NULL,
	 0},
	OPT_JSON("print the daemon's JSON"),
	OPT_END};
static const struct cli_opt image_inspect_opts[] = {
	{"format", 'f', "TEMPLATE", "print each image through TEMPLATE (see clbsd images --help)",
	 CLI_K_NONE, NULL, 0},
	OPT_JSON("accepted for habit; the output is JSON without --format"),
	OPT_END};
static const struct cli_opt image_export_opts[] = {
	{"output", 'o', "FILE", "the archive to write (replaced when it exists)", CLI_K_FILE, NULL,
	 0},
	OPT_JSON("print the result as JSON"),
	OPT_END};
static const struct cli_opt load_opts[] = {
	{"input", 'i', "FILE", "the archive, or - for standard input (or give it as the argument)",
	 CLI_K_FILE, NULL, 0},
	{"name", 0, "NAME", "store the image under this name", CLI_K_NONE, NULL, 0},
	{"keep-created", 0, NULL, "keep its creation time, and so the id it had where it was saved",
	 CLI_K_NONE, NULL, 0},
	OPT_JSON("print the image's JSON"),
	OPT_END};
static const struct cli_opt pull_opts[] = {
	{"name", 0, "NAME", "store the image under this name", CLI_K_NONE, NULL, 0},
	{"kind", 0, "KIND", "native (into clbsd's store, the default) or docker (dockerd pulls)",
	 CLI_K_NONE, NULL, 0},
	OPT_JSON("print the image's JSON"),
	OPT_END};
static const struct cli_opt image_rm_opts[] = {
	{"force", 'f', NULL, "remove even when containers use the image", CLI_K_NONE, NULL, 0},
	OPT_END};
static const struct cli_opt forge_opts[] = {
	{"from-host", 0, NULL, "copy host programs instead of busybox", CLI_K_NONE, NULL, 0},
	{"name", 0, "NAME", "the image's name (needed with --from-host)", CLI_K_NONE, NULL, 0},
	OPT_JSON("print the image's JSON instead of its id"),
	OPT_END};
static const struct cli_opt net_create_opts[] = {
	{"subnet", 0, "CIDR", "the IPv4 subnet, like 10.89.0.0/24 (needed)", CLI_K_NONE, NULL, 0},
	{"subnet6", 0, "CIDR6", "an IPv6 subnet too", CLI_K_NONE, NULL, 0},
	{"internal", 0, NULL, "no way out: no NAT, no default route", CLI_K_NONE, NULL, 0},
	OPT_JSON("print the daemon's JSON"),
	OPT_END};
static const struct cli_opt apply_opts[] = {{"dry-run", 0, NULL,
					     "show the actions without taking them (as clbsd plan)",
					     CLI_K_NONE, NULL, 0},
					    OPT_JSON("print JSON"),
					    OPT_END};
static const struct cli_opt compose_opts[] = {
	{"output", 'o', "OUT", "write the forms to OUT (default: standard output)", CLI_K_FILE,
	 NULL, 0},
	{"native", 0, NULL, "every service a native container", CLI_K_NONE, NULL, 0},
	{"docker", 0, NULL, "every service a Docker container", CLI_K_NONE, NULL, 0},
	{"project", 'p', "NAME",
	 "the project's name (default: the file's name:, else its\n"
	 "directory's); it prefixes the networks",
	 CLI_K_NONE, NULL, 0},
	OPT_END};
static const struct cli_opt events_opts[] = {
	{"follow", 'f', NULL, "keep printing new events", CLI_K_NONE, NULL, 0},
	{"since", 0, "SEQ",
	 "only events after sequence number SEQ (older ones come\n"
	 "from the daemon's journal, across restarts)",
	 CLI_K_NONE, NULL, 0},
	{"container", 0, "NAME", "only events about this container", CLI_K_CONTAINER, NULL, 0},
	{"type", 0, "T", "only this type, or a prefix: container, image, daemon", CLI_K_NONE, NULL,
	 0},
	OPT_JSON("print the raw JSON lines"),
	OPT_END};

static const struct cli_opt audit_opts[] = {
	{"follow", 'f', NULL, "keep printing new records", CLI_K_NONE, NULL, 0},
	{"since", 0, "TIME",
	 "only records at or after TIME: RFC 3339, seconds since\n"
	 "the epoch, or a duration ago (10m, 1h30m)",
	 CLI_K_NONE, NULL, 0},
	{"container", 0, "NAME", "only records about this container", CLI_K_CONTAINER, NULL, 0},
	OPT_JSON("print the raw JSON lines"),
	OPT_END};

#define FORMAT_HELP_PS                                                                             \
	"TEMPLATE is a small subset of Go templates, as docker takes: text with\n"                 \
	"{{.Field}} actions, where Field is ID, Name (or Names), Image, Kind,\n"                   \
	"Command, State, Status, PID, Address, Ports, Networks, Mounts, CreatedAt or\n"            \
	"RunningFor, or a path into the container's JSON ({{.Config.Hostname}},\n"                 \
	"{{.Network.Mode}}; names match JSON keys without case or '_'); {{json .}}\n"              \
	"and {{json .Field}} print JSON. \\t and \\n are a tab and a newline; a\n"                 \
	"leading \"table \" prints aligned columns under a header. An unknown field\n"             \
	"is a usage error."

#define FORMAT_HELP_IMAGES                                                                         \
	"TEMPLATE is a small subset of Go templates (see clbsd ps --help); the fields\n"           \
	"are ID, Repository, Tag, Name, Digest, CreatedAt, CreatedSince and Size, or\n"            \
	"paths into the image's JSON ({{.Config.Entrypoint}}). An image with several\n"            \
	"names prints once per name."

const struct cli_cmd cli_cmds[] = {
	{.name = "info",
	 .summary = "show facts about the daemon",
	 .help = "Show the daemon's version, paths, runtime, storage and counts.",
	 .opts = json_only,
	 .get = "/v1/info",
	 .show = show_info},
	{.name = "run",
	 .summary = "create and start a container, attached",
	 .args = "IMAGE [CMD [ARG...]]",
	 .help = "Create a container from IMAGE and start it. Without -d the output is streamed\n"
		 "and clbsd exits with the container's exit status. What follows IMAGE is the\n"
		 "command and its arguments: options go before it.",
	 .opts = cli_run_opts,
	 .min_args = 1,
	 .max_args = -1,
	 .stop_at = 1,
	 .kinds = {CLI_K_IMAGE, CLI_K_NONE},
	 .fn = cmd_run},
	{.name = "create",
	 .summary = "create a container without starting it",
	 .args = "IMAGE [CMD [ARG...]]",
	 .help = "Create a container from IMAGE and print its name (with --json, the\n"
		 "container's JSON). What follows IMAGE is the command and its arguments.",
	 .opts = cli_create_opts,
	 .min_args = 1,
	 .max_args = -1,
	 .stop_at = 1,
	 .kinds = {CLI_K_IMAGE, CLI_K_NONE},
	 .fn = cmd_create},
	{.name = "start",
	 .summary = "start containers",
	 .args = "NAME...",
	 .help = "Start created or exited containers and print their names.",
	 .opts = no_opts,
	 .min_args = 1,
	 .max_args = -1,
	 .kinds = {CLI_K_CONTAINER, CLI_K_CONTAINER},
	 .flags = CLI_CHECK_ARGS,
	 .fn = cmd_start},
	{.name = "wait",
	 .summary = "wait until containers stop and print their exit codes",
	 .args = "NAME...",
	 .help = "Block until each container is no longer running, then print its exit code.",
	 .opts = no_opts,
	 .min_args = 1,
	 .max_args = -1,
	 .kinds = {CLI_K_CONTAINER, CLI_K_CONTAINER},
	 .flags = CLI_CHECK_ARGS,
	 .fn = cmd_wait},
	{.name = "stop",
	 .summary = "stop running containers",
	 .args = "NAME...",
	 .help = "Send the container's stop signal (SIGTERM unless --stop-signal said\n"
		 "otherwise), then SIGKILL after the timeout; print each name once stopped.",
	 .opts = stop_opts,
	 .min_args = 1,
	 .max_args = -1,
	 .kinds = {CLI_K_CONTAINER, CLI_K_CONTAINER},
	 .flags = CLI_CHECK_ARGS,
	 .fn = cmd_stop},
	{.name = "update",
	 .summary = "change keys of a declared container live, and keep the change",
	 .args = "NAME",
	 .help = "Change keys of a container declared in the configuration (Docker's update):\n"
		 "clbsd update web --memory 256M --restart always. The daemon checks the\n"
		 "change with the whole configuration, records it in conf.d/90-live.conf\n"
		 "and applies it: the limits (--memory, --cpus, --pids) in place, in the\n"
		 "running container's cgroup; a recreate when another key in the spec hash\n"
		 "changed. A limit the kernel refuses changes nothing. A container made\n"
		 "with clbsd run takes new limits the same way, and only those. A value\n"
		 "starting with [ or { is JSON; a FORM value is written as in the file.",
	 .opts = cli_update_opts,
	 .min_args = 1,
	 .max_args = 1,
	 .kinds = {CLI_K_CONTAINER, CLI_K_NONE},
	 .flags = CLI_CHECK_ARGS,
	 .fn = cmd_update},
	{.name = "declare",
	 .summary = "declare a container live, in the configuration's live layer",
	 .args = "NAME",
	 .help = "Declare the container NAME as a (container NAME ...) form would, with the\n"
		 "options of update (--image is needed): written to conf.d/90-live.conf\n"
		 "after the whole configuration was checked with it, then created by the\n"
		 "reconciler. clbsd undeclare NAME takes it back.",
	 .opts = cli_update_opts,
	 .min_args = 1,
	 .max_args = 1,
	 .kinds = {CLI_K_NONE, CLI_K_NONE},
	 .fn = cmd_declare},
	{.name = "undeclare",
	 .summary = "remove a container from the configuration live",
	 .args = "NAME",
	 .help = "The container NAME is no longer declared: its forms leave\n"
		 "conf.d/90-live.conf and, when another file declares it, (undeclare NAME)\n"
		 "is written there; the reconciler removes the container. Refused while a\n"
		 "declared container depends on it.",
	 .opts = no_opts,
	 .min_args = 1,
	 .max_args = 1,
	 .kinds = {CLI_K_CONTAINER, CLI_K_NONE},
	 .fn = cmd_undeclare},
	{.name = "kill",
	 .summary = "send a signal to containers",
	 .args = "NAME...",
	 .help = "Send a signal to the containers' init process.",
	 .opts = kill_opts,
	 .min_args = 1,
	 .max_args = -1,
	 .kinds = {CLI_K_CONTAINER, CLI_K_CONTAINER},
	 .flags = CLI_CHECK_ARGS,
	 .fn = cmd_kill},
	{.name = "restart",
	 .summary = "restart containers",
	 .args = "NAME...",
	 .help = "Stop (as with stop) and start the containers again.",
	 .opts = stop_opts,
	 .min_args = 1,
	 .max_args = -1,
	 .kinds = {CLI_K_CONTAINER, CLI_K_CONTAINER},
	 .flags = CLI_CHECK_ARGS,
	 .fn = cmd_restart},
	{.name = "rm",
	 .summary = "remove containers",
	 .args = "NAME...",
	 .help = "Remove containers with their file system, logs and state. Their named\n"
		 "volumes stay unless -v is given. A container the configuration\n"
		 "declares comes back at the next reconcile pass: remove it from the file.",
	 .opts = rm_opts,
	 .min_args = 1,
	 .max_args = -1,
	 .kinds = {CLI_K_CONTAINER, CLI_K_CONTAINER},
	 .flags = CLI_CHECK_ARGS,
	 .fn = cmd_rm},
	{.name = "ps",
	 .summary = "list containers",
	 .help = "List running containers: NAME, ID, IMAGE, KIND, COMMAND, STATE, STATUS,\n"
		 "PID, ADDRESS, PORTS.\n\n"
		 "-a lists every container, and each declared one that `clbsd migrate` moved\n"
		 "away (the (moved NAME ...) records `clbsd status` lists): STATE moved,\n"
		 "STATUS \"Moved to DEST 3 minutes ago\", no id; with --json such a row is\n"
		 "{\"name\", \"state\": \"moved\", \"moved\": {\"to\", \"at\"}}. -q prints\n"
		 "containers here only.\n\n" FORMAT_HELP_PS,
	 .opts = ps_opts,
	 .max_args = 0,
	 .fn = cmd_ps},
	{.name = "inspect",
	 .summary = "show containers as JSON",
	 .args = "NAME...",
	 .help = "Print a JSON array with the daemon's view of each container, or with\n"
		 "--format each container through a template (see clbsd ps --help):\n"
		 "clbsd inspect --format '{{.State}} {{.Config.Hostname}}' web",
	 .opts = inspect_opts,
	 .min_args = 1,
	 .max_args = -1,
	 .kinds = {CLI_K_CONTAINER, CLI_K_CONTAINER},
	 .flags = CLI_CHECK_ARGS,
	 .fn = cmd_inspect},
	{.name = "exec",
	 .summary = "run a command in a running container",
	 .args = "NAME CMD [ARG...]",
	 .help = "Run CMD inside the running container NAME and exit with its status. What\n"
		 "follows NAME is the command and its arguments: options go before it.",
	 .opts = cli_exec_opts,
	 .min_args = 1,
	 .max_args = -1,
	 .stop_at = 1,
	 .kinds = {CLI_K_CONTAINER, CLI_K_NONE},
	 .fn = cmd_exec},
	{.name = "logs",
	 .summary = "show a container's output",
	 .args = "NAME",
	 .help = "Print what the container wrote: its stdout to stdout, its stderr to stderr.\n"
		 "--tail counts from the end before --since and --until choose by time.",
	 .opts = logs_opts,
	 .min_args = 1,
	 .max_args = 1,
	 .kinds = {CLI_K_CONTAINER, CLI_K_NONE},
	 .flags = CLI_CHECK_ARGS,
	 .fn = cmd_logs},
	{.name = "console",
	 .summary = "attach to a container's console",
	 .args = "NAME",
	 .help = "Attach the terminal to the container's console, with recent output first.\n"
		 "Ctrl-Q detaches and leaves the container running. The window size follows\n"
		 "the terminal. clbsd exits with the container's status when it exits.",
	 .opts = no_opts,
	 .min_args = 1,
	 .max_args = 1,
	 .kinds = {CLI_K_CONTAINER, CLI_K_NONE},
	 .flags = CLI_CHECK_ARGS,
	 .fn = cmd_console},
	{.name = "snapshot",
	 .summary = "snapshot a container's files",
	 .args = "NAME [LABEL]",
	 .help = "Snapshot the container's root file system, its named volumes and its state\n"
		 "under LABEL (default: the UTC time, YYYYmmdd-HHMMSS) and print the label.\n"
		 "A running container is snapshotted as it runs. With zfs storage a snapshot\n"
		 "is O(1); with dir storage it is a copy.",
	 .opts = json_only,
	 .min_args = 1,
	 .max_args = 2,
	 .kinds = {CLI_K_CONTAINER, CLI_K_NONE},
	 .flags = CLI_CHECK_ARGS,
	 .fn = cmd_snapshot},
	{.name = "snapshots",
	 .summary = "list (or remove) a container's snapshots",
	 .args = "NAME",
	 .help = "List the container's snapshots, oldest first, with their age and the space\n"
		 "only they hold.",
	 .opts = snapshots_opts,
	 .min_args = 1,
	 .max_args = 1,
	 .kinds = {CLI_K_CONTAINER, CLI_K_NONE},
	 .flags = CLI_CHECK_ARGS,
	 .fn = cmd_snapshots},
	{.name = "verify",
	 .summary = "check a container's files against their manifest",
	 .args = "NAME",
	 .help = "Compare the container's root file system, running or not, with the mtree\n"
		 "manifest recorded when it was created (its image's) and list what was added\n"
		 "(A), removed (D) or changed (M, with what: type, mode, owner, size, digest,\n"
		 "target). Its volumes, its image's VOLUME paths, the mount points clbsd makes\n"
		 "(/dev, /proc, /sys, /etc/hosts, /etc/resolv.conf) and the :integrity :exclude\n"
		 "paths (run's --integrity-exclude) are left out, unless :integrity :include\n"
		 "(--integrity-include) takes them back.\n"
		 "With --update the files as they are now become the new manifest.\n"
		 "\n"
		 "Exit status: 0 clean (or updated), 1 the files differ, 2 usage, 3 the check\n"
		 "could not be made (no manifest, a docker container, another check running).\n"
		 "docs/integrity.md has the details.",
	 .opts = verify_opts,
	 .min_args = 1,
	 .max_args = 1,
	 .kinds = {CLI_K_CONTAINER, CLI_K_NONE},
	 .flags = CLI_CHECK_ARGS,
	 .fn = cmd_verify},
	{.name = "rollback",
	 .summary = "put a container's files back to a snapshot",
	 .args = "NAME LABEL",
	 .help = "Stop the container if it runs, put its root file system and named volumes\n"
		 "back to snapshot LABEL, and start it again if it ran. Its configuration is\n"
		 "not rolled back.",
	 .opts = rollback_opts,
	 .min_args = 2,
	 .max_args = 2,
	 .kinds = {CLI_K_CONTAINER, CLI_K_NONE},
	 .flags = CLI_CHECK_ARGS,
	 .fn = cmd_rollback},
	{.name = "build",
	 .summary = "build an image from a Cblockfile",
	 .args = "DIR",
	 .help = "Build an image named by -t from DIR/Cblockfile (or -f FILE) with DIR as the\n"
		 "context (docs/cblockfile.md). Each step prints \"step N/M INSTRUCTION\",\n"
		 "cached or running, and its time; RUN output streams. A step whose inputs did\n"
		 "not change is not run again (the layer cache); a failed build makes no image.\n\n"
		 "With --kind docker the image is made in dockerd: DIR/Dockerfile (or -f FILE,\n"
		 "which must be inside DIR) is built by dockerd from DIR sent as a tar (no\n"
		 ".dockerignore; --network unset is dockerd's default); a Cblockfile is built by\n"
		 "clbsd, exported as an OCI archive and loaded into dockerd under the same name.",
	 .opts = build_opts,
	 .min_args = 1,
	 .max_args = 1,
	 .kinds = {CLI_K_DIR, CLI_K_NONE},
	 .fn = cmd_build},
	{.name = "undo",
	 .summary = "go back to a container's state before its last recreate",
	 .args = "NAME...",
	 .help = "When the configuration changes a container so that it is recreated, the old\n"
		 "one is stopped and set aside (with :snapshot-before-change t, the default).\n"
		 "undo removes the new container, brings the old one back whole (files,\n"
		 "snapshots, settings), starts it if it ran, and keeps the reconciler from\n"
		 "recreating it until the configuration changes again. Named volumes are not\n"
		 "rolled back. Prints each name.",
	 .opts = no_opts,
	 .min_args = 1,
	 .max_args = -1,
	 .kinds = {CLI_K_CONTAINER, CLI_K_CONTAINER},
	 .flags = CLI_CHECK_ARGS,
	 .fn = cmd_undo},
	{.name = "clone",
	 .summary = "make a new container from another's files",
	 .args = "SRC[@LABEL] NEW",
	 .help = "Create container NEW (not started, not managed by the configuration) with\n"
		 "SRC's configuration and a copy of its root file system and named volumes,\n"
		 "as they are now or at snapshot LABEL. With zfs storage the copy is a clone.",
	 .opts = json_only,
	 .min_args = 2,
	 .max_args = 2,
	 .kinds = {CLI_K_CONTAINER, CLI_K_NONE},
	 .fn = cmd_clone},
	{.name = "export",
	 .summary = "write a container to one archive file",
	 .args = "NAME",
	 .help = "Write the container (its record, its image's name and id, and its root file\n"
		 "system, state and named volumes as the storage driver's stream of a fresh\n"
		 "snapshot, with checksums of both) to FILE (default NAME.clbsd here). A\n"
		 "running container is exported as it runs. The file is written by the daemon\n"
		 "and appears only when complete; an existing file is not overwritten.\n\n"
		 "With --snapshot the export's snapshot is kept under LABEL; --since LABEL (zfs)\n"
		 "writes only what changed since that kept snapshot: importing it updates the\n"
		 "stopped container that has LABEL, in place (incremental backups, and what\n"
		 "migrate does to send most of a running container before it stops it).\n\n"
		 "--snapshots all (or L1,L2,...) carries the container's own snapshots too\n"
		 "(zfs: a chain of increments inside the stream, oldest first); the import\n"
		 "makes them again under the same labels. Default none: only the export's\n"
		 "snapshot travels. Not with --since; the dir driver refuses it (its snapshots\n"
		 "are copies).",
	 .opts = export_opts,
	 .min_args = 1,
	 .max_args = 1,
	 .kinds = {CLI_K_CONTAINER, CLI_K_NONE},
	 .flags = CLI_CHECK_ARGS,
	 .fn = cmd_export},
	{.name = "import",
	 .summary = "recreate a container from an export",
	 .args = "FILE|-|NAME",
	 .help = "Check FILE (format, storage driver, checksums, image present) and recreate\n"
		 "the container from it, stopped, under its exported name or NEW. Its record\n"
		 "must pass the checks of `clbsd create`. A failure leaves nothing behind.\n"
		 "The image must be here already (same id). An incremental export (--since)\n"
		 "updates the existing stopped container instead. - reads the archive from\n"
		 "standard input.\n\n"
		 "An archive whose container binds host paths or uses the host's network is\n"
		 "refused, with a list of them, unless --allow-host-access is given: only\n"
		 "for archives you trust.\n\n"
		 "--declared imports into this host's declaration of the container (NEW or the\n"
		 "exported name): its record is made from the declaration as the reconciler\n"
		 "makes it (managed; `clbsd plan` stays empty), and only its files, state,\n"
		 "volumes and snapshots come from FILE. Refused when the name is not declared\n"
		 "here, is declared as the other kind, or on another image. It is left\n"
		 "created; `clbsd start` runs it. --declaration FORM records FORM (one\n"
		 "(container NAME ...) form) in the live layer first, and puts the live layer\n"
		 "back if the import fails; with --pending the import stays provisional until\n"
		 "`clbsd import --commit NAME`, and `clbsd import --abort NAME` (or the\n"
		 "daemon's next start, when neither came) removes it and its declaration again.\n"
		 "clbsd migrate uses these.",
	 .opts = import_opts,
	 .min_args = 1,
	 .max_args = 1,
	 .kinds = {CLI_K_FILE, CLI_K_NONE},
	 .fn = cmd_import},
	{.name = "backup",
	 .summary = "back a container up now, as its :backup says",
	 .args = "NAME",
	 .help = "Take a backup of the container now, as its :backup (or the host's) says: a\n"
		 "snapshot backup-YYYYmmdd-HHMMSS sent (incrementally where it can) to the\n"
		 "destination, both ends pruned by the :keep tiers. Waits until it is there;\n"
		 "the container keeps running. See docs/backup.md.",
	 .opts = backup_opts,
	 .min_args = 1,
	 .max_args = 1,
	 .kinds = {CLI_K_CONTAINER, CLI_K_NONE},
	 .flags = CLI_CHECK_ARGS,
	 .fn = cmd_backup},
	{.name = "backups",
	 .summary = "show each container's backups: last success, size, next run, errors",
	 .help = "Print one line per container with a :backup: NAME, LAST SUCCESS, SIZE, TOOK,\n"
		 "NEXT RUN, and where they go or why the last one failed.",
	 .opts = json_only,
	 .get = "/v1/backups",
	 .show = show_backups},
	{.name = "restore",
	 .summary = "bring a container back from its backups",
	 .args = "NAME",
	 .help = "Restore NAME from the backups at DEST (the newest at or before --at TIME):\n"
		 "from a directory, its full archive and the incrementals after it are\n"
		 "imported; from another clbsd (unix:SOCKET or ssh://...), that snapshot of its\n"
		 "copy is exported there and imported here. When NAME is declared here it is\n"
		 "restored into its declaration. A container of that name here is replaced only\n"
		 "with --replace (set aside: `clbsd undo NAME` brings it back; a failed restore\n"
		 "puts it back itself), and started when it ran; else restore beside it with\n"
		 "--as NEW (stopped).",
	 .opts = restore_opts,
	 .min_args = 1,
	 .max_args = 1,
	 .kinds = {CLI_K_NONE, CLI_K_NONE},
	 .fn = cmd_restore},
	{.name = "migrate",
	 .summary = "move a container, and its declaration, to another daemon",
	 .args = "NAME DEST | --all DEST",
	 .help = "Move the container to the daemon DEST (or --to DEST) names: stop it if it\n"
		 "runs, export it, import it there, start it there if it ran and check that it\n"
		 "runs, then remove it here. With zfs on both ends a running container is\n"
		 "exported while it runs, and is down for the last changes only. A native\n"
		 "container's image is sent first when the target lacks it (over ssh too,\n"
		 "piped into `clbsd image load --keep-created -` there), keeping its id,\n"
		 "which is checked there. Any failure puts things back: nothing is left on\n"
		 "the target (the image it sent included) and the container runs here\n"
		 "again. Progress goes to stderr, with how long it was down.\n\n"
		 "A declared container takes its declaration along: its effective form (main\n"
		 "file, conf.d and live layer merged) goes into the target's live layer and\n"
		 "the container is imported into it (`clbsd import --declared`), provisional\n"
		 "until the end; here, (moved NAME :to DEST :at TIME) replaces its live forms,\n"
		 "so this reconciler leaves the name alone and `apply` does not bring it back\n"
		 "(docs/config.md). `clbsd plan` is empty on both sides afterwards; `clbsd\n"
		 "status` lists what moved. Its volumes go with it (and from here).\n\n"
		 "--all moves every container of this host, dependencies first (:depends-on);\n"
		 "a failure stops there: what moved stays moved, and the rest is listed.\n\n"
		 "DEST is ssh://[user@]host[:port][/path/to/socket] (each step runs\n"
		 "`clbsd` on that host over ssh, non-interactively: use a key; CLBSD_SSH_COMMAND\n"
		 "replaces \"ssh\" and CLBSD_REMOTE the remote clbsd) or unix:/path/to/socket\n"
		 "(another daemon on this host).",
	 .opts = migrate_opts,
	 .min_args = 0,
	 .max_args = 2,
	 .kinds = {CLI_K_CONTAINER, CLI_K_NONE},
	 .fn = cmd_migrate},
	{.name = "host",
	 .summary = "export, import and compare a whole host (export, import, diff, state)",
	 .help = "A whole homelab in one checked archive: configuration, images, containers\n"
		 "with their data, networks, the ingress CA. See docs/host.md.",
	 .flags = CLI_GROUP},
	{.name = "host export",
	 .summary = "write the whole host to one archive",
	 .help = "Write the configuration files (main file, conf.d with the live layer, the\n"
		 "Lisp init file), the ingress CA, every image, every container's export\n"
		 "(record, files, state, volumes; docker images once, by docker save), the\n"
		 "networks made through the API, and a manifest with the source's versions\n"
		 "and every member's size and XXH3 checksum to FILE, which appears only when\n"
		 "complete. -o - writes it to standard output, for `clbsd host import -` on\n"
		 "the other side of a pipe (or of ssh): the import makes each container while\n"
		 "the next one is exported, and no copy of the archive is kept on either side.\n\n"
		 "On zfs every container is snapshotted at one moment (one `zfs snapshot -r`,\n"
		 "atomic across datasets) while it runs; the snapshot stays under LABEL\n"
		 "(default host-YYYYmmdd-HHMMSS) as the base of a later --since LABEL, which\n"
		 "carries only what changed since. On dir each container is copied at its own\n"
		 "moment, or with --stop all are stopped, copied and started again.\n\n"
		 "--snapshots all (or L1,L2,...) carries each container's own snapshots too\n"
		 "(zfs; a label a container lacks is skipped for it), as export --snapshots\n"
		 "does; default none. Not with --since.",
	 .opts = host_export_opts,
	 .fn = cmd_host_export},
	{.name = "host import",
	 .summary = "make this host what an archive holds",
	 .args = "FILE|-",
	 .help = "Check the whole archive (the manifest's checksum, every member's size and\n"
		 "checksum) before making anything, then install the ingress CA, load the\n"
		 "images, make the networks, import the containers, install the configuration\n"
		 "(this daemon keeps its own :storage) and apply it: containers that ran\n"
		 "there run here. Refused over a configuration of this daemon's own (the\n"
		 "differences are shown) unless --force, and when the archive's storage driver\n"
		 "is not this daemon's. A container that is here already is left as it is, so\n"
		 "an interrupted import can be run again. An archive of --since updates the\n"
		 "containers a previous import made, in place.\n\n"
		 "- reads the archive from standard input, front to back (clbsd host export\n"
		 "-o - | ssh there clbsd host import -): its plan, the first member, is checked\n"
		 "before anything is made, each member as it arrives, each container is made\n"
		 "as soon as it is read, and the configuration is installed only after the\n"
		 "manifest at the end has confirmed every member. A stream cut short leaves\n"
		 "the containers made so far (run it again) and no configuration of its own.\n\n"
		 "The archive's configuration runs with this host's trust. What it asks of\n"
		 "the host (commands run on the host by hooks, host paths bound or read, the\n"
		 "host's network, devices and capabilities, the Lisp control plane and its\n"
		 "init file, where backups go) is listed, and the import is refused before\n"
		 "anything is made unless --allow-host-access is given.",
	 .opts = host_import_opts,
	 .min_args = 1,
	 .max_args = 1,
	 .fn = cmd_host_import},
	{.name = "host diff",
	 .summary = "list the differences between this host and an archive or another daemon",
	 .args = "FILE|unix:SOCKET|ssh://[user@]host[:port][/socket]",
	 .help = "Compare the configuration files (line by line; the main file without its\n"
		 ":storage), images (names and sizes), networks (subnets) and containers\n"
		 "(kind, state, image, and a content checksum of their files and of each named\n"
		 "volume) with an archive (as its export saw the host), another daemon here,\n"
		 "or one over ssh (`clbsd host state` runs there). Exit status 1 when they\n"
		 "differ, 0 when not.",
	 .opts = json_plain,
	 .min_args = 1,
	 .max_args = 1,
	 .fn = cmd_host_diff},
	{.name = "host state",
	 .summary = "print what host diff compares, as JSON",
	 .help = "The configuration texts, images, networks and containers with the\n"
		 "checksums of their data, as host diff compares them (docs/host.md).",
	 .opts = json_habit,
	 .fn = cmd_host_state},
	{.name = "network",
	 .summary = "manage networks (ls, inspect, create, rm)",
	 .help = "The host's :network in the configuration is the network \"bridge\";\n"
		 "(network ...) forms declare others. See docs/network.md.",
	 .flags = CLI_GROUP},
	{.name = "network ls",
	 .alias = "list",
	 .summary = "list networks",
	 .help = "List networks: NAME, BRIDGE, SUBNET, GATEWAY, INTERNAL, CONTAINERS, SOURCE.",
	 .opts = json_only,
	 .get = "/v1/networks",
	 .show = show_networks},
	{.name = "network inspect",
	 .summary = "show networks as JSON",
	 .args = "NAME...",
	 .help = "Print a JSON array with each network.",
	 .opts = json_habit,
	 .min_args = 1,
	 .max_args = -1,
	 .kinds = {CLI_K_NETWORK, CLI_K_NETWORK},
	 .fn = cmd_network_inspect},
	{.name = "network create",
	 .summary = "make a network",
	 .args = "NAME",
	 .help = "Make a network: a bridge with NAT, or without a way out when --internal.",
	 .opts = net_create_opts,
	 .min_args = 1,
	 .max_args = 1,
	 .fn = cmd_network_create},
	{.name = "network rm",
	 .alias = "remove",
	 .summary = "remove networks no container uses",
	 .args = "NAME...",
	 .help = "Remove networks; a network a container uses is refused.",
	 .opts = json_only,
	 .min_args = 1,
	 .max_args = -1,
	 .kinds = {CLI_K_NETWORK, CLI_K_NETWORK},
	 .fn = cmd_network_rm},
	{.name = "doctor",
	 .summary = "explain why a container is unreachable",
	 .args = "CONTAINER",
	 .help = "Check a container's networking piece by piece: bridge, veth, address, route,\n"
		 "nftables rules, forwarding, published ports already bound by another program.\n"
		 "Each line says ok, or what is wrong and how to fix it. Exits 1 when a check\n"
		 "failed.",
	 .opts = json_only,
	 .min_args = 1,
	 .max_args = 1,
	 .kinds = {CLI_K_CONTAINER, CLI_K_NONE},
	 .flags = CLI_CHECK_ARGS,
	 .fn = cmd_doctor},
	{.name = "stats",
	 .summary = "show resource usage",
	 .args = "[NAME]",
	 .help = "Show CPU, memory and process use of running containers (or of NAME),\n"
		 "redrawn every second until interrupted (^C), as docker stats does. CPU % is\n"
		 "measured between two samples (the first over half a second); 100% is one\n"
		 "CPU. --no-stream prints one table and exits; --json prints one sample as the\n"
		 "daemon reports it and exits, for scripts.",
	 .opts = stats_opts,
	 .max_args = 1,
	 .kinds = {CLI_K_CONTAINER, CLI_K_NONE},
	 .flags = CLI_CHECK_ARGS,
	 .fn = cmd_stats},
	{.name = "images",
	 .summary = "list images",
	 .help = "List images: NAME:TAG, ID, DIGEST, CREATED, SIZE. --kind docker lists\n"
		 "dockerd's images instead of clbsd's.\n\n" FORMAT_HELP_IMAGES,
	 .opts = images_opts,
	 .fn = cmd_images},
	{.name = "image",
	 .summary = "manage images (import, export, load, pull, tag, prune, rm, ...)",
	 .help = "REF is NAME[:TAG] (TAG defaults to latest), an id or a unique id prefix.",
	 .flags = CLI_GROUP},
	{.name = "image import",
	 .summary = "copy a root file system directory into the store",
	 .args = "DIR NAME[:TAG]",
	 .help = "Copy the root file system directory DIR (or a directory holding rootfs/ and\n"
		 "an optional config.json) into the image store as NAME:TAG; print the id.",
	 .opts = json_image,
	 .min_args = 2,
	 .max_args = 2,
	 .kinds = {CLI_K_DIR, CLI_K_NONE},
	 .fn = cmd_image_import},
	{.name = "image export",
	 .alias = "save",
	 .summary = "write an OCI image layout archive; print its digest",
	 .args = "REF",
	 .help = "Write the image as an OCI image layout archive (one gzip layer) to the FILE\n"
		 "of -o and print its digest, the sha256 of its manifest. The same image always\n"
		 "gives the same digest. skopeo reads it as oci-archive:FILE.",
	 .opts = image_export_opts,
	 .min_args = 1,
	 .max_args = 1,
	 .kinds = {CLI_K_IMAGE, CLI_K_NONE},
	 .flags = CLI_CHECK_ARGS,
	 .fn = cmd_image_export},
	{.name = "image load",
	 .summary = "load an OCI archive or layout, or a docker save archive",
	 .args = "[FILE]",
	 .help = "Load an OCI image layout (archive or directory) or a docker save archive,\n"
		 "applying its layers with whiteouts, and store it under the name it carries\n"
		 "(or NAME). Members that would land outside the image are refused. FILE -\n"
		 "reads the archive from standard input. --keep-created gives an archive that\n"
		 "`clbsd image export` wrote the id it had there (clbsd migrate over ssh).",
	 .opts = load_opts,
	 .max_args = 1,
	 .kinds = {CLI_K_FILE, CLI_K_NONE},
	 .fn = cmd_load},
	{.name = "image pull",
	 .summary = "pull from a registry (OCI distribution API)",
	 .args = "REF",
	 .help = "Same as clbsd pull.",
	 .opts = pull_opts,
	 .min_args = 1,
	 .max_args = 1,
	 .fn = cmd_pull},
	{.name = "image tag",
	 .summary = "give an image another name",
	 .args = "REF NEW[:TAG]",
	 .help = "Point the name NEW at the image REF. An image that loses its last name that\n"
		 "way is removed unless a container uses it.",
	 .opts = json_only,
	 .min_args = 2,
	 .max_args = 2,
	 .kinds = {CLI_K_IMAGE, CLI_K_NONE},
	 .flags = CLI_CHECK_ARGS,
	 .fn = cmd_image_tag},
	{.name = "image prune",
	 .summary = "remove images without a name that no container uses",
	 .help = "Remove images that have no name and no container using them; print what\n"
		 "went and the space reclaimed.",
	 .opts = json_only,
	 .fn = cmd_image_prune},
	{.name = "image rm",
	 .alias = "remove",
	 .summary = "remove images (-f even when containers use them)",
	 .args = "REF...",
	 .help = "Remove images.",
	 .opts = image_rm_opts,
	 .min_args = 1,
	 .max_args = -1,
	 .kinds = {CLI_K_IMAGE, CLI_K_IMAGE},
	 .flags = CLI_CHECK_ARGS,
	 .fn = cmd_image_rm},
	{.name = "image inspect",
	 .summary = "print images as a JSON array",
	 .args = "REF...",
	 .help = "Print a JSON array with each image, or with --format each image through a\n"
		 "template (see clbsd images --help).",
	 .opts = image_inspect_opts,
	 .min_args = 1,
	 .max_args = -1,
	 .kinds = {CLI_K_IMAGE, CLI_K_IMAGE},
	 .flags = CLI_CHECK_ARGS,
	 .fn = cmd_image_inspect},
	{.name = "image ls",
	 .alias = "list",
	 .summary = "list images (same as clbsd images)",
	 .help = "List images: NAME:TAG, ID, DIGEST, CREATED, SIZE. --kind docker lists\n"
		 "dockerd's images instead of clbsd's.\n\n" FORMAT_HELP_IMAGES,
	 .opts = images_opts,
	 .fn = cmd_images},
	{.name = "pull",
	 .summary = "pull an image from a registry",
	 .args = "REF",
	 .help = "Pull REF, [HOST[:PORT]/]REPO[:TAG|@sha256:DIGEST], for linux and this host's\n"
		 "architecture, and store it as REPO:TAG (or NAME). Progress goes to stderr.\n"
		 "Plain http is used only for loopback registries (127.0.0.0/8, ::1,\n"
		 "localhost) and hosts in clbsdd's CLBSD_INSECURE_REGISTRIES.\n\n"
		 "With --kind docker, dockerd pulls REF into its own store (its registry\n"
		 "settings apply: --insecure-registry, credentials in its config); its\n"
		 "progress goes to stderr the same way.",
	 .opts = pull_opts,
	 .min_args = 1,
	 .max_args = 1,
	 .fn = cmd_pull},
	{.name = "load",
	 .summary = "load an image archive (same as image load)",
	 .args = "[FILE]",
	 .help = "Load an OCI image layout (archive or directory) or a docker save archive,\n"
		 "applying its layers with whiteouts, and store it under the name it carries\n"
		 "(or NAME). FILE - reads standard input. Same as clbsd image load.",
	 .opts = load_opts,
	 .max_args = 1,
	 .kinds = {CLI_K_FILE, CLI_K_NONE},
	 .fn = cmd_load},
	{.name = "forge",
	 .summary = "build a base image from busybox or host binaries",
	 .args = "[NAME[:TAG] | PROGRAM...]",
	 .help = "Build the layer-0 image from the host's busybox-static (default forge:latest)\n"
		 "and print its id. With --from-host --name NAME[:TAG] PROGRAM... the image holds\n"
		 "the given host programs, the dynamic loader and every library they link (read\n"
		 "from their ELF headers), at their host paths, and a minimal /etc; it works\n"
		 "offline (the ingress image is made this way from the host's nginx). The first\n"
		 "program is the entrypoint.",
	 .opts = forge_opts,
	 .max_args = -1,
	 .kinds = {CLI_K_FILE, CLI_K_FILE},
	 .fn = cmd_forge},
	{.name = "plan",
	 .summary = "show what applying the configuration would do",
	 .help = "Read the configuration files as they are now and print, one line each, the\n"
		 "actions that applying them would take, with their reasons\n"
		 "(\"recreate web: :env changed\"). Nothing is changed.",
	 .opts = json_plain,
	 .fn = cmd_plan},
	{.name = "config",
	 .summary = "the configuration's live layer (diff)",
	 .help = "What live changes (clbsd update, declare, undeclare, stop, start) recorded in\n"
		 "conf.d/90-live.conf change against the files. See docs/config.md.",
	 .flags = CLI_GROUP},
	{.name = "config diff",
	 .summary = "show what the live layer changes against the files",
	 .help = "For each container the live layer changes: declared, undeclared, or the\n"
		 "keys it amends with their value in the files and live. With --fold, the\n"
		 "forms to write in the main file instead: each changed container's\n"
		 "effective (container ...) form, and the ones to delete.",
	 .opts = diff_opts,
	 .fn = cmd_config_diff},
	{.name = "apply",
	 .summary = "reload the configuration and converge",
	 .help = "Reload the configuration files (like SIGHUP to clbsdd) and run a reconcile\n"
		 "pass; print each action and whether it worked. A configuration with errors\n"
		 "changes nothing: its errors are printed and the last good one stays in\n"
		 "force. Status 1 for errors in the files or a failed action (the daemon\n"
		 "retries failed actions with backoff).",
	 .opts = apply_opts,
	 .fn = cmd_apply},
	{.name = "import-compose",
	 .summary = "translate a docker-compose file into configuration forms",
	 .args = "FILE",
	 .help = "Translate the compose file FILE (version 2, 3 or the Compose Specification)\n"
		 "into (network ...), (image ...) and (container ...) forms for conf.d/.\n"
		 "Services become Docker containers, or native ones with --native (without\n"
		 "either option: native when a running daemon's store has the image). Every\n"
		 "key that does not translate is listed on stderr as FILE:LINE:COL: service\n"
		 "S: key K: why. Needs no daemon and no image. Status 0 when the output is a\n"
		 "usable configuration (it passes clbsdd -n), 1 when it is not (a YAML\n"
		 "error, no services), 2 for a usage error. docs/compose.md has every key.",
	 .opts = compose_opts,
	 .min_args = 1,
	 .max_args = 1,
	 .kinds = {CLI_K_FILE, CLI_K_NONE},
	 .flags = CLI_CHECK_ARGS,
	 .fn = cmd_import_compose},
	{.name = "status",
	 .summary = "show the configuration generation and the last pass",
	 .help = "Print the configuration in force (generation, when loaded, declared\n"
		 "containers), the errors of a rejected reload, and the last reconcile pass.",
	 .opts = json_plain,
	 .get = "/v1/status",
	 .show = show_status},
	{.name = "events",
	 .summary = "show daemon events",
	 .help = "Print events: TIME TYPE NAME key=value... Without -f, print the events the\n"
		 "daemon keeps and exit; with -f, follow new ones as they happen.",
	 .opts = events_opts,
	 .fn = cmd_events},
	{.name = "audit",
	 .summary = "show the audit log",
	 .help = "Print the audit log (docs/audit.md): every request that changed something,\n"
		 "who sent it (uid, pid, client), its result, and every configuration\n"
		 "reload, oldest first, across the rotated files. TIME STATUS METHOD PATH\n"
		 "key=value... With -f, follow new records as they are written.",
	 .opts = audit_opts,
	 .fn = cmd_audit},
	{.name = "version",
	 .summary = "show client and daemon versions",
	 .help = "Print the client's version and, when reachable, the daemon's.",
	 .opts = json_plain,
	 .fn = cmd_version},
	{.name = "help",
	 .summary = "show help for a command",
	 .args = "[COMMAND [SUBCOMMAND]]",
	 .help = "Show the usage of clbsd or of a command.",
	 .opts = no_opts,
	 .max_args = 2,
	 .kinds = {CLI_K_COMMAND, CLI_K_COMMAND},
	 .fn = cmd_help},
	{.name = "completion",
	 .summary = "print the bash completion script",
	 .args = "bash",
	 .help = "Print a bash completion script for clbsd, generated from its command table:\n"
		 "source <(clbsd completion bash). make install installs it.",
	 .opts = no_opts,
	 .min_args = 1,
	 .max_args = 1,
	 .fn = cmd_completion},
	{.name = "__complete",
	 .summary = "completion candidates (for the completion script)",
	 .args = "WORD...",
	 .help = "Print the candidates for the last WORD of a command line, one a line.",
	 .opts = no_opts,
	 .max_args = -1,
	 .stop_at = 1,
	 .flags = CLI_HIDDEN,
	 .fn = cmd_complete},
	{.name = "__man",
	 .summary = "print the clbsd(1) man page",
	 .help = "Print the clbsd(1) man page in roff, generated from the command table.",
	 .opts = no_opts,
	 .flags = CLI_HIDDEN,
	 .fn = cmd_man},
};
const size_t cli_ncmds = ARRAY_SIZE(cli_cmds);

const struct cli_cmd *cli_cmd_find(const char *name)
{
	const char *sp = strchr(name, ' ');
	for (size_t i = 0; i < cli_ncmds; i++) {
		const struct cli_cmd *c = &cli_cmds[i];
		if (strcmp(c->name, name) == 0)
			return c;
		/* "image remove": the group's word, then the alias. */
		const char *csp = strchr(c->name, ' ');
		if (sp && csp && c->alias && csp - c->name == sp - name &&
		    strncmp(c->name, name, (size_t)(sp - name)) == 0 &&
		    strcmp(c->alias, sp + 1) == 0)
			return c;
	}
	return NULL;
}

/* "  -t, --time SECS" for the options list. */
static char *opt_left(const struct cli_opt *o)
{
	if (o->short_name)
		return o->arg ? xasprintf("  -%c, --%s %s", o->short_name, o->name, o->arg)
			      : xasprintf("  -%c, --%s", o->short_name, o->name);
	return o->arg ? xasprintf("      --%s %s", o->name, o->arg)
		      : xasprintf("      --%s", o->name);
}

/* The options' lines, with help aligned after the longest left part (capped). */
static void add_options(struct buf *b, const struct cli_opt *opts)
{
	static const struct cli_opt help = {"help",	'h',  NULL, "show this help",
					    CLI_K_NONE, NULL, 0};
	size_t width = strlen("  -h, --help");
	for (const struct cli_opt *o = opts; o && o->name; o++) {
		autofree char *l = opt_left(o);
		if (strlen(l) > width && strlen(l) <= 26)
			width = strlen(l);
	}
	buf_adds(b, "Options:\n");
	for (const struct cli_opt *o = opts;; o++) {
		const struct cli_opt *cur = o && o->name ? o : &help;
		if (cur->flags & CLI_OPT_HIDDEN)
			continue;
		autofree char *l = opt_left(cur);
		buf_adds(b, l);
		if (strlen(l) > width)
			buf_addf(b, "\n%*s", (int)width, "");
		else
			buf_addf(b, "%*s", (int)(width - strlen(l)), "");
		for (const char *p = cur->help; *p; p++) {
			if (p == cur->help)
				buf_adds(b, "   ");
			buf_addc(b, *p);
			if (*p == '\n')
				buf_addf(b, "%*s", (int)width + 3, "");
		}
		buf_addc(b, '\n');
		if (cur == &help)
			break;
	}
}

char *cli_cmd_usage(const struct cli_cmd *cmd)
{
	struct buf b = BUF_INIT;
	if (cmd->flags & CLI_GROUP) {
		buf_addf(&b, "Usage: clbsd %s COMMAND\n\n", cmd->name);
		buf_addf(&b, "Commands:\n");
		size_t n = strlen(cmd->name);
		for (size_t i = 0; i < cli_ncmds; i++) {
			const struct cli_cmd *c = &cli_cmds[i];
			if (strncmp(c->name, cmd->name, n) != 0 || c->name[n] != ' ')
				continue;
			autofree char *left = xasprintf("%s%s%s", c->name + n + 1,
							c->args ? " " : "", c->args ? c->args : "");
			if (strlen(left) > 22)
				buf_addf(&b, "  %s\n  %-22s  %s\n", left, "", c->summary);
			else
				buf_addf(&b, "  %-22s  %s\n", left, c->summary);
		}
		buf_addf(&b, "\n%s\n\nRun 'clbsd %s COMMAND --help' for a command's options.\n",
			 cmd->help, cmd->name);
		return buf_detach(&b, NULL);
	}
	bool has_opts = cmd->opts && cmd->opts->name;
	buf_addf(&b, "Usage: clbsd %s%s%s%s\n\n%s\n\n", cmd->name, has_opts ? " [OPTIONS]" : "",
		 cmd->args ? " " : "", cmd->args ? cmd->args : "", cmd->help);
	add_options(&b, cmd->opts);
	return buf_detach(&b, NULL);
}

char *cli_main_usage(void)
{
	struct buf b = BUF_INIT;
	buf_adds(&b, "Usage: clbsd [--socket PATH] [--json] COMMAND [ARG...]\n\n"
		     "A client for clbsdd, the clbsd container daemon.\n\n"
		     "Options:\n"
		     "      --socket PATH   the daemon's API socket (default $CLBSD_SOCKET or\n"
		     "                      " CLBSD_DEFAULT_SOCKET ")\n"
		     "      --json          print JSON for scripts instead of tables\n"
		     "  -h, --help          show this help\n"
		     "  -V, --version       show the client's version\n\n"
		     "Commands:\n");
	for (size_t i = 0; i < cli_ncmds; i++) {
		const struct cli_cmd *c = &cli_cmds[i];
		if (strchr(c->name, ' ') || (c->flags & CLI_HIDDEN))
			continue;
		buf_addf(&b, "  %-10s %s\n", c->name, c->summary);
	}
	buf_adds(&b, "\nRun 'clbsd COMMAND --help' for a command's options.\n"
		     "Exit status: 0 ok, 1 failure, 2 usage error; run, exec and console exit\n"
		     "with the container's status.\n");
	return buf_detach(&b, NULL);
}
