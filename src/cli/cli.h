/*
 * Private interfaces of the clbsd command-line client.
 *
 * The CLI is split into pure parts (request.c: flag parsing into API request
 * JSON; format.c: tables, durations, sizes, CRI log lines, events), which the
 * unit tests include directly and which therefore must not call into the
 * other files or into libcurl, and the parts that talk to the daemon or the
 * terminal (main.c, client.c, attach.c, cmd_*.c).
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

/*
 * Parse `run` (is_run) or `create` arguments; argv[0] is the command name.
 * Returns 0 with *o filled, 1 when --help was asked for, or a negative errno
 * with a one-line reason in err (kind CLBSD_E_INVALID) for a usage error.
 */
int cli_parse_run(int argc, char **argv, bool is_run, struct run_opts *o, struct clbsd_err *err);

/* What `exec` parsed. */
struct exec_opts {
	bool tty, interactive;
	const char *name; /* borrowed from argv */
	json_t *req;	  /* POST /v1/containers/{name}/exec body (owned) */
};
void exec_opts_release(struct exec_opts *o);
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
/* "no", "always", "on-failure", "on-failure:N". */
int cli_check_restart(const char *s, struct clbsd_err *err);
/* "UID[:GID]" or a user name (optionally ":group"). */
int cli_check_user(const char *s, struct clbsd_err *err);
/* Seconds for stop/restart -t. */
int cli_parse_secs(const char *s, long long *out, struct clbsd_err *err);

/*
 * Describe a getopt_long() failure (c is '?' or ':' with a "+:" optstring)
 * in err: "unknown option '--foo'" or "option '--name' needs a value".
 */
int cli_getopt_err(int c, char **argv, struct clbsd_err *err);

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
/* STATUS column of `ps`: "Up 5 minutes", "Exited (0) 2 minutes ago", "Created". */
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
char *fmt_images(const json_t *images, int64_t now_ns);
/*
 * `stats` from two samples (arrays of stats objects) `interval_ns` apart;
 * `before` may be NULL (CPU% then shows "--"). host_mem stands in for an
 * unlimited memory_limit.
 */
char *fmt_stats(const json_t *before, const json_t *after, int64_t interval_ns, int64_t host_mem);
/* One `events` line: "TIME TYPE NAME key=value..." (no newline). */
char *fmt_event(const json_t *ev);
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

/* ---- main.c: the running command and the daemon connection ---- */
struct cli {
	const char *socket;
	bool json;
	const char *cmd; /* "run", "image rm": used in messages */
	struct clbsd_client *client;
};
extern struct cli cli;

/* Print "clbsd: CMD: reason" and the --help hint to stderr; returns EXIT_USAGE. */
int cli_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Report a getopt failure; returns EXIT_USAGE. */
int cli_bad_opt(int c, char **argv);
/* A command group's subcommand: its word, the command it runs as ("image rm"), its handler. */
struct cli_sub {
	const char *name;
	const char *full;
	int (*fn)(int argc, char **argv);
};
/*
 * Run the subcommand argv[1] of a group (argv[0]): help, a usage error
 * naming `expected` ("ls, inspect, create or rm") when it is missing or
 * unknown, else its handler with argv[1] as its argv[0].
 */
int cli_dispatch(int argc, char **argv, const struct cli_sub *subs, size_t n, const char *expected);
/* Print the usage of the running command to stdout; returns 0. */
int cli_help(void);
/*
 * Parse -h/--help, --json and, when dry_run is not NULL, --dry-run; leaves
 * optind at the first argument. Returns 0, -1 after printing the help (exit
 * 0), or the status of a usage error.
 */
int cli_opts_json(int argc, char **argv, bool *dry_run);
/* cli_opts_json() for commands that take no arguments. */
int cli_opts_noargs(int argc, char **argv, bool *dry_run);
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

/* ---- commands (cmd_*.c); argv[0] is the command name ---- */
int cmd_info(int argc, char **argv);
int cmd_network(int argc, char **argv);
int cmd_doctor(int argc, char **argv);
int cmd_plan(int argc, char **argv);
int cmd_apply(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_version(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_create(int argc, char **argv);
int cmd_start(int argc, char **argv);
int cmd_wait(int argc, char **argv);
int cmd_undo(int argc, char **argv);
int cmd_build(int argc, char **argv);
int cmd_snapshot(int argc, char **argv);
int cmd_snapshots(int argc, char **argv);
int cmd_rollback(int argc, char **argv);
int cmd_clone(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_import(int argc, char **argv);
int cmd_migrate(int argc, char **argv);
int cmd_stop(int argc, char **argv);
int cmd_kill(int argc, char **argv);
int cmd_restart(int argc, char **argv);
int cmd_rm(int argc, char **argv);
int cmd_ps(int argc, char **argv);
int cmd_inspect(int argc, char **argv);
int cmd_exec(int argc, char **argv);
int cmd_logs(int argc, char **argv);
int cmd_console(int argc, char **argv);
int cmd_stats(int argc, char **argv);
int cmd_images(int argc, char **argv);
int cmd_image(int argc, char **argv);
int cmd_forge(int argc, char **argv);
int cmd_pull(int argc, char **argv);
int cmd_load(int argc, char **argv);
int cmd_events(int argc, char **argv);

#endif
