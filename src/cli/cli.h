/*
 * Private interfaces of the clbsd command-line client.
 *
 * Every command is an entry of the command table (cli_table.c): its name,
 * help, options and positional arguments. cli_main.c finds the entry,
 * cli_args.c parses argv against it, and the command's function (cmd_*.c)
 * gets the parsed options; --help, the completion and the man page
 * (cli_gen.c) are generated from the same entries.
 *
 * The pure parts (cli_args.c: argv against an entry; request.c: parsed
 * options into API request JSON; format.c: tables, durations, sizes, CRI
 * log lines, events; template.c: --format), which the unit tests include
 * directly, must not call into the other files or do I/O; the parts that
 * talk to the daemon or the terminal are cli_main.c, client.c, attach.c,
 * cli_gen.c and cmd_*.c.
 *
 * Exit statuses: 0 success, 1 failure, 2 usage error (also for an HTTP 400
 * from the daemon); run, exec and console exit with the container's status.
 */
#ifndef CLBSD_CLI_H
#define CLBSD_CLI_H

#include <clbsd/clbsd.h>
#include <clbsd/client.h>
#include <clbsd/error.h>

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/util.h"

#ifndef CLBSD_VERSION
#endif

#define EXIT_USAGE 2

/* ---- the command table (cli_table.c) and its parser (cli_args.c, pure) ---- */

/*
 * What an option's value or a positional argument names: the completion
 * offers those, and the parser checks CLI_K_CONTAINER and CLI_K_IMAGE
 * arguments of a command with CLI_CHECK_ARGS before its function runs.
 */
enum cli_kind {
	CLI_K_NONE,
	CLI_K_CONTAINER, /* a container name (a DNS label) */
	CLI_K_IMAGE,	 /* an image reference NAME[:TAG] or an id */
	CLI_K_NETWORK,	 /* a network name */
	CLI_K_FILE,	 /* a path on this host */
	CLI_K_DIR,	 /* a directory on this host */
	CLI_K_COMMAND,	 /* a command (of clbsd, for help) */
	CLI_K_SIGNAL,	 /* a signal name */
};

/* Option flags. */
#define CLI_OPT_REPEAT 0x1u /* may be given again; every value is kept, in order */
/*
 * Another spelling of the option declared before it with the same long name
 * (docker's -t beside our -T): parsed as that option, not listed.
 */
#define CLI_OPT_HIDDEN 0x2u

/* One option of a command, as --help, the parser, completion and man show it. */
struct cli_opt {
	const char *name;   /* long name without "--" */
	char short_name;    /* the letter of "-t", or 0 */
	const char *arg;    /* the value's placeholder ("SECS"); NULL for a flag */
	const char *help;   /* what it does; '\n' breaks lines */
	enum cli_kind kind; /* what the value names */
	const char *alias;  /* another long name that means the same ("timeout"), or NULL */
	unsigned flags;	    /* CLI_OPT_* */
};

#define CLI_OPT_END                                                                                \
	{                                                                                          \
		NULL, 0, NULL, NULL, CLI_K_NONE, NULL, 0                                           \
	}
#define CLI_OPT_JSON(help)                                                                         \
	{                                                                                          \
		"json", 0, NULL, help, CLI_K_NONE, NULL, 0                                         \
	}

struct cli_args;

/* Command flags. */
#define CLI_GROUP      0x1u /* "image": its commands are the entries "image ..." */
#define CLI_HIDDEN     0x2u /* not listed in the usage, the completion or the man page */
#define CLI_CHECK_ARGS 0x4u /* container and image positionals are checked before fn runs */

/*
 * One command: its name, help, options and positional arguments, as tmux's
 * cmd_entry declares them. argv is parsed in one place (cli_args_parse) from
 * this; fn receives the result. A command without fn but with `get` is the
 * common "GET a resource, print it as JSON or for people" body (cli_show).
 */
struct cli_cmd {
	const char *name;	    /* "stop", "image rm" */
	const char *alias;	    /* another last word: "remove" for "image rm"; or NULL */
	const char *summary;	    /* one line for the command list */
	const char *args;	    /* the positionals' synopsis: "NAME...", "[NAME]"; or NULL */
	const char *help;	    /* what it does: paragraphs separated by blank lines */
	const struct cli_opt *opts; /* ends with an entry whose name is NULL; NULL: none */
	int min_args, max_args;	    /* how many positionals (max -1: no limit) */
	int stop_at;		/* options end at this positional (run: 1, IMAGE); 0: anywhere */
	enum cli_kind kinds[2]; /* what the first positional names, and the ones after it */
	unsigned flags;		/* CLI_* */
	int (*fn)(const struct cli_args *a);
	const char *get; /* without fn: the API path to GET */
	int (*show)(const struct cli_args *a, const json_t *res); /* without --json */
};

/* The commands, top-level and "group sub" entries, in the order --help lists them. */
extern const struct cli_cmd cli_cmds[];
extern const size_t cli_ncmds;

/* One option as given on the command line, in order. */
struct cli_given {
	const struct cli_opt *opt;
	const char *val; /* borrowed from argv; NULL for a flag */
};

/* A command line parsed against its table entry. */
struct cli_args {
	const struct cli_cmd *cmd;
	int argc;      /* positionals */
	char **argv;   /* the positionals (the array is owned, the strings borrowed) */
	size_t ngiven; /* options given */
	struct cli_given *given;
};

/*
 * Parse argv (argv[0] is the command's name) against cmd. Options may come
 * anywhere before the command's own argv: up to the stop_at-th positional,
 * or everywhere when stop_at is 0; "--" ends them. Returns 0, 1 when
 * -h/--help was given, or -EINVAL with a one-line reason naming the option
 * or argument in err (kind CLBSD_E_INVALID).
 */
int cli_args_parse(const struct cli_cmd *cmd, int argc, char **argv, struct cli_args *a,
		   struct clbsd_err *err);
void cli_args_release(struct cli_args *a);
/* Whether the option (by long name; it must be declared) was given. */
bool cli_has(const struct cli_args *a, const char *name);
/* Its last value, or NULL. */
const char *cli_get(const struct cli_args *a, const char *name);
/* The i-th value of a repeatable option in the order given, NULL past the last. */
const char *cli_get_nth(const struct cli_args *a, const char *name, size_t i);
/* The declared option of cmd by long name, or NULL. */
const struct cli_opt *cli_opt_find(const struct cli_cmd *cmd, const char *name);
/* Whether cmd declares that option. */
bool cli_declares(const struct cli_cmd *cmd, const char *name);

/* The entry of `name` ("stop", "image rm", or an alias "image remove"), or NULL. */
const struct cli_cmd *cli_cmd_find(const char *name);
/* The usage of a command, generated from its entry (caller frees). */
char *cli_cmd_usage(const struct cli_cmd *cmd);
/* The main usage with the list of commands (caller frees). */
char *cli_main_usage(void);

/* ---- request.c (pure) ---- */

/* What `run`/`create` parsed: local behaviour plus the create request. */
struct run_opts {
	bool detach;	  /* -d (run only) */
	bool rm;	  /* --rm */
	bool tty;	  /* -t */
	bool interactive; /* -i */
	json_t *req;	  /* POST /v1/containers body (owned) */
};
void run_opts_release(struct run_opts *o);
/* Print a container's logs as `clbsd logs -f NAME` does, until it stops. */
int cli_follow_logs(const char *name, struct clbsd_err *err);

/*
 * The create request of a parsed `run` (is_run) or `create` command line.
 * Returns 0 with *o filled or a negative errno with a one-line reason in err
 * (kind CLBSD_E_INVALID) for a usage error.
 */
int cli_run_request(const struct cli_args *a, bool is_run, struct run_opts *o,
		    struct clbsd_err *err);
/*
 * Parse `run` (is_run) or `create` arguments (argv[0] is the command name)
 * and make the request. Returns 0 with *o filled, 1 when --help was asked
 * for, or a negative errno (err filled) for a usage error.
 */
int cli_parse_run(int argc, char **argv, bool is_run, struct run_opts *o, struct clbsd_err *err);

/* What `exec` parsed. */
struct exec_opts {
	bool tty, interactive;
	const char *name; /* borrowed from argv */
	json_t *req;	  /* POST /v1/containers/{name}/exec body (owned) */
};
void exec_opts_release(struct exec_opts *o);
/* The exec request of a parsed `exec` command line (as cli_run_request). */
int cli_exec_request(const struct cli_args *a, struct exec_opts *o, struct clbsd_err *err);
/* Parse `exec` arguments and make the request (as cli_parse_run). */
int cli_parse_exec(int argc, char **argv, struct exec_opts *o, struct clbsd_err *err);

/* Validators shared by the commands; each fills err with a one-line reason. */
/*
 * Append a -e argument to env: "KEY=VALUE" as is, a bare "KEY" with the
 * client's own value (skipped when unset). Fails on a malformed key.
 */
int cli_env_add(json_t *env, const char *arg, struct clbsd_err *err);
/* "SRC:DST[:ro|:rw]" -> {"source","dest","readonly"}. */
int cli_parse_volume(const char *spec, json_t **out, struct clbsd_err *err);
/*
 * An absolute, clean path (what the daemon takes) for a file that may not
 * exist yet; its directory must. NULL when it does not, or path names no file.
 */
char *cli_abs_target(const char *path);
/* Copy in to out until the end of in; what names them in an error. */
int cli_copy_fd(int in, int out, const char *what, struct clbsd_err *err);
/*
 * Standard input (an archive piped in: `import -`, `image load -`) copied
 * into a private file for the daemon on this host to read: *path (caller
 * frees with cli_spool_drop(), which removes it and its directory) in a
 * new directory of mode 0700 under /tmp. 0, or the exit status after
 * saying why (a terminal on stdin is a usage error); nothing is left then.
 */
int cli_spool_stdin(const char *cmd, char **path);
void cli_spool_drop(char *path);
/* "no", "always", "on-failure", "on-failure:N". */
int cli_check_restart(const char *s, struct clbsd_err *err);
/* "UID[:GID]" or a user name (optionally ":group"). */
int cli_check_user(const char *s, struct clbsd_err *err);
/*
 * A --since/--until TIME of logs (opt names it in messages) as RFC 3339 with
 * nanoseconds into out (>= 40 bytes): RFC 3339 as is, seconds since the
 * epoch, or a duration ("10m", "1h30m") before now_ns.
 */
int cli_log_time(const char *opt, const char *v, int64_t now_ns, char *out, size_t len,
		 struct clbsd_err *err);
/* Seconds for stop/restart -t. */
int cli_parse_secs(const char *s, long long *out, struct clbsd_err *err);

/* ---- format.c (pure) ---- */

/* Docker-style human durations: "Less than a second", "5 minutes", "About an hour". */
void fmt_duration(int64_t ns, char *buf, size_t len);
/* "2 minutes ago" for a time `then` seen at `now` (both ns since the epoch). */
void fmt_ago(int64_t then_ns, int64_t now_ns, char *buf, size_t len);
/* Decimal units, 3 significant digits: "1.23MB" (images). */
void fmt_size(int64_t bytes, char *buf, size_t len);
/* Binary units, 4 significant digits: "1.523MiB" (stats). */
void fmt_bytes(int64_t bytes, char *buf, size_t len);
/* First 12 characters of an id, without a "sha256:" prefix. */
char *fmt_short_id(const char *id);
/* A quoted, truncated command line: "\"/bin/sh -c 'whi…\"". */
char *fmt_command(const json_t *argv, size_t max);
/*
 * STATUS column of `ps`: "Up 5 minutes", "Exited (0) 2 minutes ago", "Created",
 * "Moved to unix:/x 3 minutes ago" (state "moved", see fmt_ps_moved()).
 */
char *fmt_status(const json_t *ctr, int64_t now_ns);

/* A table of strings with aligned columns for people. */
struct table {
	size_t ncols;
	struct strv cells; /* row-major, first row is the header */
};
void table_init(struct table *t, size_t ncols, const char *const *header);
/* Add a row of ncols strings (copied; NULL prints as ""). */
void table_add(struct table *t, const char *const *row);
/* Render with columns padded to their widest cell plus 3 spaces, no trailing blanks. */
char *table_render(const struct table *t);
void table_release(struct table *t);

/* The `ps`, `images` and `stats` tables (caller frees). */
char *fmt_ps(const json_t *containers, int64_t now_ns);
/*
 * `ps -a`: the (moved NAME ...) records of GET /v1/status ("moved": [{name,
 * to, at}]) into the list of GET /v1/containers?all=1. A name that has no
 * container here becomes a row {name, state: "moved", moved: {to, at}}; a
 * container kept here (migrate --keep) gains "moved": {to, at}.
 */
void fmt_ps_moved(json_t *list, const json_t *moved);
char *fmt_images(const json_t *images, int64_t now_ns);
/*
 * `stats` from two samples (arrays of stats objects) `interval_ns` apart;
 * `before` may be NULL (CPU% then shows "--"). host_mem stands in for an
 * unlimited memory_limit.
 */
char *fmt_stats(const json_t *before, const json_t *after, int64_t interval_ns, int64_t host_mem);
/* One `events` line: "TIME TYPE NAME key=value..." (no newline). */
char *fmt_event(const json_t *ev);
/*
 * An audit record as one line: TIME STATUS METHOD PATH key=value... for a
 * request, TIME EVENT key=value... for anything else (docs/audit.md).
 */
char *fmt_audit(const json_t *rec);
/*
 * s (len bytes) for a terminal: control bytes (C0, DEL, C1 in UTF-8) and
 * backslashes written as \ooo, so text from elsewhere cannot drive it.
 */
void fmt_add_safe(struct buf *b, const char *s, size_t len);
/* `info` for people: "key: value" lines, nested objects indented. */
char *fmt_info(const json_t *info);

/* One CRI log record: "TIME STREAM F|P DATA". Pointers into the line. */
struct cri_rec {
	const char *time;
	size_t time_len;
	bool is_stderr;
	bool partial;
	const char *data;
	size_t data_len;
};
/* Parse one line (without its '\n'). Returns 0 or -EINVAL. */
int cri_parse(const char *line, size_t len, struct cri_rec *rec);

/* Turns a stream of CRI lines into the container's stdout and stderr bytes. */
struct logw {
	bool timestamps;
	bool mid[2];	 /* a partial line is open on stdout [0] / stderr [1] */
	struct buf line; /* an incomplete input line */
};
void logw_init(struct logw *w, bool timestamps);
void logw_release(struct logw *w);
/* Feed raw bytes; decoded output is appended to out and errb. */
void logw_feed(struct logw *w, const char *data, size_t len, struct buf *out, struct buf *errb);
/* End of input: decode a last line that lacked its newline. */
void logw_finish(struct logw *w, struct buf *out, struct buf *errb);

/*
 * The fields docker's ps --format knows, computed from a container's JSON:
 * ID (12 characters, or whole with full_id), Name, Names, Image, Command,
 * State, Status, PID, Address, Ports, Networks, Mounts, CreatedAt, RunningFor.
 */
json_t *fmt_ps_fields(const json_t *ctr, int64_t now_ns, bool full_id);
/*
 * The rows of `images`: one per name (one for an image without a name), in
 * *items (the images, repeated) and *extras (ID, Repository, Tag, Name,
 * Digest, CreatedAt, CreatedSince, Size); full_id keeps ids whole.
 */
void fmt_image_rows(const json_t *images, int64_t now_ns, bool full_id, json_t **items,
		    json_t **extras);

/* ---- template.c (pure): --format templates, a subset of Go's ---- */
struct tmpl;
/* Parse a template; a usage error (err) names what is wrong. */
int tmpl_parse(const char *text, struct tmpl **out, struct clbsd_err *err);
void tmpl_free(struct tmpl *t);
/* Whether it began with "table ": aligned columns under a header. */
bool tmpl_is_table(const struct tmpl *t);
/* Every field must name something in at least one of items (with extras). */
int tmpl_check(const struct tmpl *t, const json_t *items, const json_t *extras,
	       struct clbsd_err *err);
/* Append one item's text (without a newline). */
void tmpl_render(const struct tmpl *t, json_t *item, json_t *extra, struct buf *out);
/* The table header: each field's name in capitals (caller frees). */
char *tmpl_header(const struct tmpl *t);

/* ---- attach.c: the shim frame protocol from the terminal ---- */
struct attach_opts {
	const char *socket;  /* shim socket */
	const char *request; /* request line (JSON, no newline) */
	bool fwd_stdin;	     /* forward stdin as 'I' frames, 'C' at EOF */
	bool raw;	     /* raw terminal mode when stdin is a TTY */
	bool detach_key;     /* Ctrl-Q detaches */
	/* Called for SIGINT/SIGTERM/SIGHUP/SIGQUIT when not in raw mode; NULL ends the session. */
	void (*on_signal)(int sig, void *ctx);
	void *ctx;
};
/*
 * Run a session. Returns 0 with *exit_code from the 'X' frame, 1 when the
 * user detached (or a signal ended the session; *exit_code is then 128+sig),
 * or a negative errno (err filled) when the shim refused or went away.
 */
int cli_attach(const struct attach_opts *o, int *exit_code, struct clbsd_err *err);
/* The terminal size of stdin (or stdout), 0 when not a terminal. */
void cli_term_size(unsigned *rows, unsigned *cols);

/* ---- cli_main.c: the running command and the daemon connection ---- */
struct cli {
	const char *socket;
	bool json;
	const char *cmd; /* "run", "image rm": used in messages */
	struct clbsd_client *client;
};
extern struct cli cli;

/* Print "clbsd: CMD: reason" and the --help hint to stderr; returns EXIT_USAGE. */
int cli_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Report an error: usage style and EXIT_USAGE for invalid input, else "clbsd: msg" and 1. */
int cli_fail(const struct clbsd_err *err);
/* The daemon connection, made on first use. */
struct clbsd_client *cli_client(void);
/* Call the API with JSON in and out; out may be NULL. */
int cli_call(const char *method, const char *path, const json_t *body, json_t **out,
	     struct clbsd_err *err);
/* Pretty-print JSON (2 spaces) to stdout. */
void cli_print_json(const json_t *j);
/*
 * Call the API with body (taken; may be NULL) for a command whose output is
 * the answer under --json, else the line `text`, or else the answer's
 * string `field` (both NULL: nothing). Returns the command's exit status.
 */
int cli_send(const char *method, const char *path, json_t *body, const char *text,
	     const char *field);
/*
 * The body most commands share: call METHOD path, then print the answer as
 * JSON under --json (unless a --format was given), else through show().
 * Returns the command's exit status (show's, or that of a failed call).
 */
int cli_show(const struct cli_args *a, const char *method, const char *path,
	     int (*show)(const struct cli_args *a, const json_t *res));
/*
 * Print each of items (an array) through the --format template of a, with
 * the computed fields of the same index in extras (an array of objects); a
 * "table " format aligns columns under a header. Returns the exit status
 * (EXIT_USAGE for a bad template or an unknown field).
 */
int cli_print_format(const struct cli_args *a, const json_t *items, const json_t *extras);

/*
 * ---- host_tar.c, host_state.c: clbsd host export/import/diff (docs/host.md) ----
 * The outer archive is a ustar file of regular members; a member's data
 * is read in place (never extracted by a name the archive chooses).
 */
struct host_tarw {
	int fd;
	const char *path; /* for messages */
	off_t off;
};
struct host_member {
	char name[100];
	uint64_t size;
	off_t data; /* offset of its data in the file */
	char *mem;  /* read from a stream: a small member's data, in memory (NUL-terminated) */
	char xxh3[33];
};
int host_tar_add_mem(struct host_tarw *w, const char *name, const void *data, size_t len,
		     char hex[33], struct clbsd_err *err);
/* Copy the file at path in as member name; its XXH3-128 in hex, its size in *size. */
int host_tar_add_file(struct host_tarw *w, const char *name, const char *path, char hex[33],
		      uint64_t *size, struct clbsd_err *err);
int host_tar_end(struct host_tarw *w, struct clbsd_err *err);
/* The members of the archive open as fd (CONFLICT naming path when it is damaged or cut). */
int host_tar_list(int fd, const char *path, struct host_member **out, size_t *n,
		  struct clbsd_err *err);
/* Hash member m (XXH3-128 hex), copying it to a new file dst when dst is not NULL. */
int host_member_copy(int fd, const struct host_member *m, const char *dst, char hex[33],
		     struct clbsd_err *err);
/* An archive read front to back from a stream (host import -): no seeking. */
struct host_tarr {
	int fd;
	const char *path; /* for messages */
	uint64_t off;	  /* bytes read */
};
/* The next member's header: 0 with *m (its data is what follows), 1 at the end of the archive. */
int host_tarr_next(struct host_tarr *rd, struct host_member *m, struct clbsd_err *err);
/*
 * Member m's data, which follows its header, with its padding: written to
 * out when >= 0, read into mem (m->size bytes) when not NULL; its
 * XXH3-128 in hex. CONFLICT when the stream ends first.
 */
int host_tarr_data(struct host_tarr *rd, const struct host_member *m, int out, char *mem,
		   char hex[33], struct clbsd_err *err);
void host_xxh3_hex(const void *data, size_t len, char hex[33]);
/* ---- cmd_host.c: what host_export.c and host_import.c share ---- */
#define HOST_MANIFEST "manifest.json"
/* The first member: the manifest as known before any data, for an import that streams. */
#define HOST_PLAN "plan.json"
/* What a signal must remove: the staging directory and the unfinished archive. */
extern char host_stage_dir[4096], host_tmp_out[4096];
/* A private directory (host_stage_dir) for the pieces: beside path, or ($TMPDIR, /var/tmp) none. */
int host_stage_make(const char *path, struct clbsd_err *err);
void host_stage_rm(void);
/* SIGINT, SIGTERM, SIGHUP and SIGPIPE remove the staging directory and the unfinished archive. */
void host_catch_signals(void);
/* "clbsd: host: " and the message, on stderr. */
void host_say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
bool host_valid_label(const char *s);
/* A manifest's text with its own checksum; and that text checked and parsed (a new object). */
char *host_manifest_text(const json_t *m);
int host_manifest_check(char *text, size_t len, json_t **out, const char *path,
			struct clbsd_err *err);
/*
 * An archive's containers (manifest entries) in the order import makes
 * them: those nothing declares, then the declared ones, each after what
 * it depends on that the archive holds; a cycle's rest in listed order.
 * A new array of the same entries; export writes them in this order.
 */
json_t *host_import_order(const json_t *all);
/* Whether a manifest's container entry is declared (imported into its declaration). */
bool host_entry_declared(const json_t *c);
/* host_import.c: the state a host archive's export recorded (what host diff compares), checked. */
json_t *host_archive_state(const char *file, struct clbsd_err *err);
/*
 * The main file's text without its `:storage VALUE` (each daemon keeps its
 * own), and the same with `storage` (the text of a value, or NULL: none)
 * put in its place. Both new strings.
 */
char *host_conf_without_storage(const char *text, char **storage);
char *host_conf_with_storage(const char *text, const char *storage);
/* A text with nothing but comments and white space, or "(host)" left. */
bool host_conf_trivial(const char *text);
/*
 * The (host ...), (image ...) and (network ...) forms of a configuration
 * text, in their order, without its containers (and their overrides): what
 * the containers' declarations need loaded before they are imported into
 * them. A new string ("" when there are none).
 */
char *host_conf_settings(const char *text);
/*
 * Whether a container or an image (an element of GET /v1/containers or
 * /v1/images) is the routing container or its image of the daemon host
 * describes (GET /v1/host's "routing"). Each daemon makes its own from its
 * routes and its nginx, so host export, import and diff leave them out.
 */
bool host_is_routing_ctr(const json_t *host, const json_t *c);
bool host_is_routing_image(const json_t *host, const json_t *img);
/*
 * What `host diff` compares, of the daemon cl talks to (NULL: clbsd's own):
 * {"config": {FILE: text}, "images": {NAME: size}, "networks": {NAME: subnet},
 *  "containers": {NAME: {"kind","state","image","layer"?,"rootfs"?,"volumes"}}}
 * where rootfs and each volume are a content checksum of the tree (mode,
 * owner, size, bytes of every file, symlink targets), taken by walking it.
 */
json_t *host_state(struct clbsd_client *cl, struct clbsd_err *err);
/* The differences between two states, one line each, into *lines; their count. */
size_t host_state_diff(json_t *here, json_t *there, const char *there_name, struct strv *lines);

/* ---- commands (cmd_*.c), run with their parsed command line ---- */
/* The options of run, create and exec (request.c), shared with the table. */
extern const struct cli_opt cli_run_opts[], cli_create_opts[], cli_exec_opts[];
/* The options of update (cmd_update.c): one per declarable key. */
extern const struct cli_opt cli_update_opts[];
int cmd_update(const struct cli_args *a);
int cmd_declare(const struct cli_args *a);
int cmd_undeclare(const struct cli_args *a);
int cmd_config_diff(const struct cli_args *a);
int cmd_import_compose(const struct cli_args *a);
int cmd_run(const struct cli_args *a);
int cmd_create(const struct cli_args *a);
int cmd_start(const struct cli_args *a);
int cmd_wait(const struct cli_args *a);
int cmd_stop(const struct cli_args *a);
int cmd_kill(const struct cli_args *a);
int cmd_restart(const struct cli_args *a);
int cmd_rm(const struct cli_args *a);
int cmd_undo(const struct cli_args *a);
int cmd_ps(const struct cli_args *a);
int cmd_inspect(const struct cli_args *a);
int cmd_stats(const struct cli_args *a);
int cmd_exec(const struct cli_args *a);
int cmd_console(const struct cli_args *a);
int cmd_logs(const struct cli_args *a);
int cmd_events(const struct cli_args *a);
int cmd_audit(const struct cli_args *a);
int cmd_snapshot(const struct cli_args *a);
int cmd_snapshots(const struct cli_args *a);
int cmd_rollback(const struct cli_args *a);
int cmd_verify(const struct cli_args *a);
int cmd_clone(const struct cli_args *a);
int cmd_export(const struct cli_args *a);
/*
 * --snapshots SPEC of export and host export: none, all or LABEL[,LABEL...];
 * 0, or cli_usage's status after saying what is wrong.
 */
int cli_check_snapshots(const char *spec);
/* cmd_backup.c: backup, backups, restore (docs/backup.md) */
int cmd_backup(const struct cli_args *a);
int cmd_restore(const struct cli_args *a);
int show_backups(const struct cli_args *a, const json_t *list);
/* The backups' state, one line per container (clbsd backups, clbsd status). */
void print_backups(const json_t *list, bool header);
int cmd_import(const struct cli_args *a);
int cmd_migrate(const struct cli_args *a);
/* cmd_host.c: clbsd host export, import, diff, state */
int cmd_host_export(const struct cli_args *a);
int cmd_host_import(const struct cli_args *a);
int cmd_host_diff(const struct cli_args *a);
int cmd_host_state(const struct cli_args *a);
int cmd_build(const struct cli_args *a);
int cmd_network_inspect(const struct cli_args *a);
int cmd_network_create(const struct cli_args *a);
int cmd_network_rm(const struct cli_args *a);
int cmd_doctor(const struct cli_args *a);
int cmd_image_import(const struct cli_args *a);
int cmd_image_export(const struct cli_args *a);
int cmd_image_tag(const struct cli_args *a);
int cmd_image_prune(const struct cli_args *a);
int cmd_image_rm(const struct cli_args *a);
int cmd_image_inspect(const struct cli_args *a);
int cmd_pull(const struct cli_args *a);
int cmd_load(const struct cli_args *a);
int cmd_forge(const struct cli_args *a);
int cmd_plan(const struct cli_args *a);
int cmd_apply(const struct cli_args *a);
int cmd_events(const struct cli_args *a);
int cmd_version(const struct cli_args *a);
int cmd_help(const struct cli_args *a);
int cmd_completion(const struct cli_args *a);
int cmd_complete(const struct cli_args *a);
int cmd_man(const struct cli_args *a);
/* What the GET-and-show commands print for people. */
int show_info(const struct cli_args *a, const json_t *res);
int show_status(const struct cli_args *a, const json_t *res);
int show_networks(const struct cli_args *a, const json_t *res);
int show_images(const struct cli_args *a, const json_t *res);
/* clbsd images [--kind docker] */
int cmd_images(const struct cli_args *a);

#endif
