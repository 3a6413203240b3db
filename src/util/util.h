/*
 * Shared helpers for every clbsd program: allocation that aborts on failure,
 * scoped cleanup, a growable byte buffer, string vectors, file-system helpers
 * (atomic write, safe path join, recursive mkdir/remove), logging through a
 * sink, time stamps, and the validators for names, sizes and durations.
 *
 * Invariants: nothing here writes to stderr on its own (logging goes through
 * the sink the program installs); every fallible function follows the error
 * contract in <clbsd/error.h>.
 */
#ifndef CLBSD_UTIL_H
#define CLBSD_UTIL_H

#include <clbsd/error.h>

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* ---- allocation (aborts on failure; there are no OOM paths) ---- */
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
char *xvasprintf(const char *fmt, va_list ap);

/* ---- scoped cleanup ---- */
void freep(void *p);
void closep(int *fd);
void fclosep(FILE **f);
#define autofree   __attribute__((cleanup(freep)))
#define autoclose  __attribute__((cleanup(closep)))
#define autofclose __attribute__((cleanup(fclosep)))
/* Take ownership out of a cleanup-scoped pointer or fd. */
#define steal_ptr(pp)                                                                              \
	({                                                                                         \
		__typeof__(*(pp)) _s = *(pp);                                                      \
		*(pp) = NULL;                                                                      \
		_s;                                                                                \
	})
#define steal_fd(pfd)                                                                              \
	({                                                                                         \
		int _f = *(pfd);                                                                   \
		*(pfd) = -1;                                                                       \
		_f;                                                                                \
	})

/* ---- growable buffer (always NUL-terminated) ---- */
struct buf {
	char *data;
	size_t len;
	size_t cap;
};
#define BUF_INIT                                                                                   \
	{                                                                                          \
		NULL, 0, 0                                                                         \
	}
void buf_init(struct buf *b);
void buf_release(struct buf *b);
void buf_reset(struct buf *b);
void buf_grow(struct buf *b, size_t extra);
void buf_add(struct buf *b, const void *data, size_t n);
void buf_adds(struct buf *b, const char *s);
void buf_addc(struct buf *b, char c);
void buf_addf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void buf_vaddf(struct buf *b, const char *fmt, va_list ap);
/* Remove the first n bytes. */
void buf_consume(struct buf *b, size_t n);
/* Hand the data to the caller (never NULL) and reset the buffer. */
char *buf_detach(struct buf *b, size_t *len);

/* ---- string vectors (NULL-terminated, owned strings) ---- */
struct strv {
	char **v;
	size_t n;
	size_t cap;
};
#define STRV_INIT                                                                                  \
	{                                                                                          \
		NULL, 0, 0                                                                         \
	}
void strv_init(struct strv *s);
void strv_release(struct strv *s);
void strv_push(struct strv *s, const char *str);
void strv_push_owned(struct strv *s, char *str);
/* Free a NULL-terminated char** and its strings. */
void strv_free(char **v);
char **strv_dup(char *const *v);
size_t strv_len(char *const *v);

/* ---- file system ---- */
/* Read a whole file (NUL-terminated). */
int fs_read_file(const char *path, char **out, size_t *len, struct clbsd_err *err);
/* Write atomically: temp file in the same dir, fsync, rename, fsync dir. */
int fs_write_atomic(const char *path, const void *data, size_t len, mode_t mode,
		    struct clbsd_err *err);
/*
 * Replace atomically (temp file, rename) without waiting for the disk: for
 * run-time state that means nothing after a reboot (what runs, pids), where
 * two fsyncs per write would cost a millisecond on every container start.
 * Readers see the old or the new content, never a mix.
 */
int fs_replace(const char *path, const void *data, size_t len, mode_t mode, struct clbsd_err *err);
/* Write a small string to an existing file (sysfs, cgroupfs, /proc). */
int fs_write_str(const char *path, const char *s, struct clbsd_err *err);
int fs_mkdir_p(const char *path, mode_t mode, struct clbsd_err *err);
/* Remove a tree; does not cross mount points (refuses with EBUSY). */
int fs_rm_rf(const char *path, struct clbsd_err *err);
/* Delete everything in the directory path (not a symlink to one), and keep it. */
int fs_empty_dir(const char *path, struct clbsd_err *err);
/*
 * The deepest tree that sys_copy_tree and the stream and layer writers walk
 * (they recurse once per directory, holding its fds and its path): INVALID
 * (ELOOP) when the directory at `path`, `depth` levels below the root, is
 * deeper than FS_TREE_MAX_DEPTH or its path longer than FS_TREE_MAX_PATH.
 * Far beyond what software makes (a path inside a container is at most
 * PATH_MAX), well within a worker's stack and fds.
 */
#define FS_TREE_MAX_DEPTH 1024
#define FS_TREE_MAX_PATH  16384
int fs_tree_check_depth(int depth, const char *path, struct clbsd_err *err);
/*
 * Open the entry `name` of the directory dfd for reading only if it is a
 * regular file, never following a symlink and never opening anything else
 * (a FIFO, a device: they are only looked at through O_PATH). *st is the
 * fstat of the opened file, what a reader must trust rather than an earlier
 * stat by name. Returns the fd (O_RDONLY|O_NONBLOCK), -EINVAL when the entry
 * is not a regular file, or another -errno (-ENOENT when it is gone).
 */
struct stat;
int fs_open_reg_at(int dfd, const char *name, struct stat *st);
/*
 * A walk found an entry that is no longer what fstatat said (e: ENOENT when
 * it is gone, EINVAL when it is not a regular file any more): say so (debug
 * when gone, a warning otherwise) and leave it out. `doing` is what the walk
 * was doing ("the layer was written"), `whole` what the entry is left out of
 * ("the layer"). Returns 0, so a walk can go on with `return fs_left_out(...)`.
 */
int fs_left_out(const char *subsys, const char *path, const char *doing, const char *whole, int e);
bool fs_exists(const char *path);
bool fs_is_dir(const char *path);
/*
 * Join `rel` below `root` without letting it escape: rejects "..", empty
 * components are collapsed. The result is a new string.
 */
int fs_safe_join(const char *root, const char *rel, char **out, struct clbsd_err *err);
/* A path is absolute and has no "." or ".." components. */
bool fs_path_is_clean_abs(const char *path);
/*
 * An O_PATH fd for `rel` resolved inside the tree at rootfd as described for
 * fs_open_in_root() (flags may add O_DIRECTORY, O_NOFOLLOW). An O_PATH open
 * opens nothing, whatever the file is; watch it through /proc/self/fd/N.
 */
int fs_open_path_in_root(int rootfd, const char *rel, int flags, struct clbsd_err *err);
/*
 * Open `rel` inside the tree at rootfd the way the tree's own processes see
 * it, for a daemon that must not trust the tree (a container's or an image's
 * root): symlinks and ".." never leave the root, magic links are refused, and
 * anything but a regular file of at most `max` bytes is refused before it is
 * opened for reading, so a FIFO or a device node planted there is never opened
 * and the call never waits. Fails with CLBSD_E_NOTFOUND when absent,
 * CLBSD_E_INVALID (EINVAL, EFBIG, ELOOP) for what is refused, and
 * CLBSD_E_UNAVAIL without openat2. Returns the fd (O_RDONLY|O_NONBLOCK).
 */
int fs_open_in_root(int rootfd, const char *rel, size_t max, struct clbsd_err *err);
/* Read what fs_open_in_root() opens, whole (NUL-terminated); EFBIG past max. */
int fs_read_in_root(int rootfd, const char *rel, size_t max, char **out, size_t *len,
		    struct clbsd_err *err);
/* fs_read_in_root() below the directory `root` (a trusted path the daemon made). */
int fs_read_in_rootdir(const char *root, const char *rel, size_t max, char **out, size_t *len,
		       struct clbsd_err *err);
/* Total bytes used by regular files under a tree (no mount crossing). */
int64_t fs_du(const char *path);

/* ---- logging (to a sink the program sets) ---- */
enum log_level { LOG_ERROR = 0, LOG_WARN, LOG_INFO, LOG_DEBUG };
typedef void (*log_sink_fn)(enum log_level lvl, const char *subsys, const char *container,
			    const char *msg, void *ctx);
void log_set_sink(log_sink_fn fn, void *ctx);
void log_set_level(enum log_level lvl);
enum log_level log_get_level(void);
int log_parse_level(const char *s, enum log_level *out);
const char *log_level_name(enum log_level lvl);
void log_msg(enum log_level lvl, const char *subsys, const char *container, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* A sink writing "time level subsys[container]: msg" lines to a FILE* (ctx). */
void log_sink_stderr(enum log_level lvl, const char *subsys, const char *container, const char *msg,
		     void *ctx);
#define log_error(sub, ctr, ...) log_msg(LOG_ERROR, sub, ctr, __VA_ARGS__)
#define log_warn(sub, ctr, ...)	 log_msg(LOG_WARN, sub, ctr, __VA_ARGS__)
#define log_info(sub, ctr, ...)	 log_msg(LOG_INFO, sub, ctr, __VA_ARGS__)
#define log_debug(sub, ctr, ...)                                                                   \
	do {                                                                                       \
		if (log_get_level() >= LOG_DEBUG)                                                  \
			log_msg(LOG_DEBUG, sub, ctr, __VA_ARGS__);                                 \
	} while (0)

/* ---- time ---- */
/* Wall clock in nanoseconds since the epoch. */
int64_t time_now_ns(void);
/* Monotonic clock in nanoseconds. */
int64_t time_mono_ns(void);
/* RFC 3339 UTC with nanoseconds: "2026-11-22T20:07:46.123456789Z" (buf >= 40). */
void time_fmt_rfc3339(int64_t ns, char *buf, size_t len);
/* Parse what time_fmt_rfc3339() writes (also accepts fewer fraction digits). */
int time_parse_rfc3339(const char *s, int64_t *ns);

/* ---- validators and parsers for user input ---- */
/* DNS label: [a-z0-9]([a-z0-9-]{0,61}[a-z0-9])? */
bool valid_name(const char *s);
/*
 * Image reference "[host[:port]/]name[:tag]" with name made of DNS labels
 * joined by '/', '.', '_' or '-'; the host, as docker tells it, holds a '.'
 * or a ':' or is localhost ("127.0.0.1:5000/test/bb:1").
 */
bool valid_image_ref(const char *s);
/* Hostname: DNS labels joined by dots, 253 chars max. */
bool valid_hostname(const char *s);
/*
 * Where a volume may be mounted in a container: a clean absolute path, not
 * "/" and not /proc, /sys, /dev or anything below them (the runtime mounts
 * those with their masks, read-only parts and device list; a volume would
 * cover them). false with *why saying what is wrong.
 */
bool valid_volume_dest(const char *dest, const char **why);
/*
 * A domain: DNS labels of [a-z0-9-] (RFC 1123, no leading or trailing '-',
 * 1-63 characters each) joined by dots, 253 characters at most, optionally
 * starting with "*." (a wildcard for one or more labels); a bare label is
 * one too. false with why (n bytes, NUL-terminated) saying what is wrong
 * and what is expected. What the ingress writes into nginx.conf and the
 * configuration's :domain both check with it.
 */
bool valid_domain_check(const char *s, char *why, size_t n);
/* A URL path: "/" then [A-Za-z0-9._~%/-], no "//", "/./" or "/../", 1-256 characters. */
bool valid_url_path_check(const char *s, char *why, size_t n);
/*
 * "256M", "1G", "1024", "512k": bytes. Units k,m,g,t (1024-based),
 * case-insensitive, optional "b"/"iB". A size above 0 that rounds to 0
 * bytes ("0.0000001") is refused: callers read 0 as "no limit".
 */
int parse_size(const char *s, int64_t *out, struct clbsd_err *err);
/* "10s", "500ms", "1h", "2m", "1h30m": nanoseconds. */
int parse_duration(const char *s, int64_t *out, struct clbsd_err *err);
/* Signal name ("TERM", "SIGTERM") or number. */
int parse_signal(const char *s, int *out);
const char *signal_name(int sig);
/* Decimal int with range check. */
int parse_int(const char *s, long long min, long long max, long long *out);

/* ---- processes ---- */
/*
 * Run argv (no shell; argv[0] looked up on PATH), wait for it, and collect
 * its stdout (when out is not NULL; NUL-terminated). Fails with a message
 * holding the exit status and the first line of stderr.
 */
int proc_run(char *const argv[], char **out, struct clbsd_err *err);
/* proc_run() with standard input from in_fd (-1: /dev/null). */
int proc_run_in(char *const argv[], int in_fd, char **out, struct clbsd_err *err);
/*
 * Run argv whatever its exit: its stdout and stderr (each when not NULL;
 * NUL-terminated, maybe empty) and its wait status. Fails only when it
 * cannot run.
 */
int proc_run_full(char *const argv[], int in_fd, char **out, char **errout, int *status,
		  struct clbsd_err *err);

/*
 * Empty signal mask, and default handling for every signal the process
 * ignores (the kernel's SigIgn list; all of them without /proc). Caught
 * ones are left: exec resets those, and a freshly exec'd process has none.
 * One read instead of a system call for each of the 64 signals.
 */
void sig_reset_ignored(void);

/* ---- misc ---- */
/* n random bytes as 2n lowercase hex chars (buf >= 2n+1). */
void random_hex(char *buf, size_t nbytes);
/* Set FD_CLOEXEC / O_NONBLOCK. */
int fd_set_cloexec(int fd);
int fd_set_nonblock(int fd, bool on);
/* write() all, retrying on EINTR/partial writes (blocking fds). */
int write_all(int fd, const void *data, size_t len);
/* read() exactly n bytes or fail (-EPIPE on EOF). */
int read_exact(int fd, void *data, size_t len);

#endif
