/*
 * clbsd-shim internals: the scrollback ring, the CRI log writer, request
 * parsing (pure parts, unit-tested in tests/unit/shim) and the event loop.
 *
 * The shim is one process per running native container, the parent of its
 * init. It is single-threaded and drives everything from one poll() loop, so
 * none of these structures are locked. Memory is kept small on purpose (the
 * target is <= 1 MiB RSS per container): buffers are allocated lazily and
 * large client buffers are released once drained.
 */
#ifndef CLBSD_SHIM_H
#define CLBSD_SHIM_H

#include "runtime/runtime.h"
#include "util/util.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* The two output streams of a process; the values index arrays. */
enum shim_stream { SHIM_STDOUT = 0, SHIM_STDERR = 1 };

/* ---- scrollback ring (ring.c) ---- */

/* A run of bytes in the ring that came from one stream. */
struct shim_ring_seg {
	uint32_t len;
	uint8_t stream;
};

/*
 * The last `cap` bytes of output, with the stream each byte came from, so
 * that a console replay of a non-TTY container keeps stdout and stderr apart.
 * Adjacent writes of one stream share a segment; when the segment table is
 * full the oldest segment is dropped with its bytes. The byte buffer is
 * allocated on the first write. cap == 0 disables the ring.
 */
struct shim_ring {
	char *data;
	size_t cap;
	size_t head; /* index of the oldest byte */
	size_t len;  /* bytes held */
	struct shim_ring_seg *segs;
	size_t seg_cap, seg_head, seg_n, seg_max;
};

void shim_ring_init(struct shim_ring *r, size_t cap);
void shim_ring_release(struct shim_ring *r);
void shim_ring_write(struct shim_ring *r, int stream, const void *data, size_t len);
/* Call fn for every piece of held data, oldest first. */
typedef void (*shim_ring_fn)(int stream, const char *data, size_t len, void *ctx);
void shim_ring_visit(const struct shim_ring *r, shim_ring_fn fn, void *ctx);

/* ---- CRI log writer (logw.c) ---- */

/* The longest record payload; a longer line is split into 'P' records. */
#define SHIM_LOG_LINE_MAX (16 * 1024)
/* A partial line is written as a 'P' record after this much quiet. */
#define SHIM_LOG_PAUSE_NS (250 * 1000000LL)

/*
 * Writes DIR/container.log in the CRI format, one record per line:
 * "RFC3339NANO stdout|stderr F|P data\n". 'F' closes a line, 'P' is a piece
 * of a line whose newline has not come yet (the buffer filled up or the
 * stream paused). Before a record would push the file past max_size, the
 * files are rotated: .log -> .log.1 -> ... keeping max_files files in all.
 * Write errors are logged once and otherwise ignored: a full disk must not
 * stop the container.
 */
struct shim_log {
	char *path;
	int fd;
	int64_t size;
	int64_t max_size;
	int max_files;
	bool strip_cr;		/* TTY output: drop the '\r' of "\r\n" */
	struct buf part[2];	/* pending partial line per stream */
	int64_t part_at[2];	/* monotonic time of the last byte added to part */
	int64_t (*clock)(void); /* wall clock for the time stamps (tests replace it) */
	bool warned;
};

int shim_log_open(struct shim_log *l, const char *dir, int64_t max_size, int max_files,
		  struct clbsd_err *err);
void shim_log_write(struct shim_log *l, int stream, const void *data, size_t len);
/* Write a stream's pending partial line as a 'P' record. */
void shim_log_flush(struct shim_log *l, int stream);
/* Flush partial lines that have been quiet since before now - SHIM_LOG_PAUSE_NS. */
void shim_log_tick(struct shim_log *l, int64_t mono_now);
/* When shim_log_tick() next has work (monotonic ns), or -1. */
int64_t shim_log_deadline(const struct shim_log *l);
/* Flush both partial lines and close the file. */
void shim_log_close(struct shim_log *l);

/* ---- requests (req.c) ---- */

enum shim_op {
	SHIM_OP_STATE,
	SHIM_OP_WAIT,
	SHIM_OP_RELEASE,
	SHIM_OP_KILL,
	SHIM_OP_ATTACH,
	SHIM_OP_EXEC,
	SHIM_OP_NET_READY, /* the daemon plumbed the network (or gave up: "error") */
};

/* One parsed request line (see util/proto.h for the fields). */
struct shim_req {
	enum shim_op op;
	int signal;   /* kill; SIGTERM when absent */
	bool all;     /* kill */
	bool in;      /* attach, exec: the "stdin" flag */
	bool replay;  /* attach */
	bool release; /* attach */
	bool tty;     /* exec */
	uint16_t rows, cols;
	char **argv; /* exec, NULL-terminated, at least one element */
	char **env;  /* exec, NULL-terminated "K=V" (may be empty) */
	char *cwd;   /* exec, NULL when absent */
	char *error; /* net-ready: why the network could not be made (the init is killed) */
	bool has_uid, has_gid;
	uint32_t uid, gid;
};

int shim_req_parse(const char *line, struct shim_req *req, struct clbsd_err *err);
void shim_req_release(struct shim_req *req);
/* The container's environment with `over` applied (same key replaces). */
char **shim_env_merge(char *const *base, char *const *over);

/* ---- the shim (main.c, loop.c) ---- */

struct shim_opts {
	const char *name;
	const char *spec_path;
	const char *sock_path;
	const char *state_path;
	const char *log_dir;
	int ready_fd;
	bool hold;
	bool net_hold; /* the init also waits for a net-ready request from the daemon */
	int64_t log_max_size;
	int log_max_files;
	int64_t scrollback;
};

/*
 * Create the container, report readiness, and serve clients until the init
 * exits. Returns the process exit status (0 after a clean container exit).
 * With prep (from the pool) its init is used instead of a new one; with
 * listen_fd >= 0 that socket (already bound to o->sock_path) is served.
 */
int shim_run(const struct shim_opts *o, struct rt_prepared *prep, int listen_fd);

/* Bind and listen on a Unix socket at path (mode 0600). Returns the fd. */
int shim_listen(const char *path, struct clbsd_err *err);

/*
 * Pool mode (pool.c): prepare an init in cgroup `cgroup`, listen on
 * o->sock_path, report {"ok":true,"pool":true,...} on o->ready_fd and wait.
 * A claim (one JSON line on the socket, see docs/runtime.md) turns this
 * process into that container's shim (shim_run); the daemon closing the
 * ready pipe, SIGTERM or the init dying discards it.
 */
int shim_pool(struct shim_opts *o, const char *cgroup);

/*
 * clbsd-shim --zygote (zygote.c): fork a shim for every request on ctl and
 * run shim_main in it with the request's argv; returns when ctl closes.
 */
int shim_zygote(int ctl, int (*shim_main)(int argc, char **argv));

/* Open DIR/shim.log for appending and make it the log sink. */
int shim_log_to(const char *log_dir, struct clbsd_err *err);

#endif
