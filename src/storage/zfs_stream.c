/*
 * Send and receive of the zfs driver: one container (its dataset, and
 * volumes) at one snapshot as a single stream that wraps a `zfs send` per
 * dataset. The format and the undo on a cut stream are in docs/storage.md.
 */
#include "storage.h"
#include "internal.h"
#include "util/json.h"
#include "util/util.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#define STREAM_MAGIC	 "CLBSD-ZFS-SEND 1\n"
#define STREAM_MAGIC_LEN (sizeof(STREAM_MAGIC) - 1)
#define FRAME_MAX	 (1u << 20)
#define FOOTER_MAGIC	 "CLBE"

/* ---- send and receive ---- */

/*
 * The stream: STREAM_MAGIC, then frames (a 4-byte big-endian length and
 * that many bytes). The first frame is a JSON header naming the parts; each
 * part is the output of one `zfs send` cut into frames and ended by an empty
 * frame; the last frame is a JSON trailer {"end":N}. A reader that does not
 * find the trailer knows the stream was cut short.
 */
static int put_frame(int fd, void *data, uint32_t len)
{
	unsigned char h[4] = {len >> 24, len >> 16, len >> 8, len};
	struct iovec iov[2] = {{h, 4}, {data, len}};
	/* One writev for the common case; what it leaves goes with write_all. */
	ssize_t n;
	do
		n = writev(fd, iov, len ? 2 : 1);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	size_t done = (size_t)n;
	if (done < 4) {
		int r = write_all(fd, h + done, 4 - done);
		if (r < 0)
			return r;
		done = 4;
	}
	return done - 4 < len ? write_all(fd, (char *)data + (done - 4), len - (done - 4)) : 0;
}

/*
 * zfs-fuse writes a send stream into, and reads a receive stream from, the
 * pipe: at the default 64 KiB every 64 KiB costs two context switches, and
 * the stream moved at half the speed of `zfs send > file`.
 */
static void pipe_widen(int fd)
{
	fcntl(fd, F_SETPIPE_SZ, FRAME_MAX);
}

/*
 * Move exactly len bytes from in to out with splice: -EINVAL when they
 * cannot splice (nothing moved), -ENODATA when in ends first.
 */
static int splice_all(int in, int out, size_t len)
{
	while (len > 0) {
		ssize_t n = splice(in, NULL, out, NULL, len, SPLICE_F_MOVE | SPLICE_F_MORE);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -ENODATA; /* in ended */
		len -= (size_t)n;
	}
	return 0;
}

/*
 * What a `zfs send` writes into the pipe, as frames onto fd until the pipe
 * ends. Each frame is what the pipe holds at that moment (up to FRAME_MAX),
 * spliced into fd without passing through this process; a fd that cannot
 * take a splice (a terminal, say) gets read and written.
 */
static int frames_from_pipe(int pipe_fd, int fd)
{
	char *b = NULL;
	int r = 0;
	bool can_splice = true;
	for (;;) {
		struct pollfd pfd = {pipe_fd, POLLIN, 0};
		if (poll(&pfd, 1, -1) < 0) {
			if (errno == EINTR)
				continue;
			r = -errno;
			break;
		}
		int avail = 0;
		if (ioctl(pipe_fd, FIONREAD, &avail) < 0) {
			r = -errno;
			break;
		}
		if (avail <= 0) { /* the writer closed it and all was read */
			if (pfd.revents & (POLLHUP | POLLERR))
				break;
			continue;
		}
		uint32_t n = avail > (int)FRAME_MAX ? FRAME_MAX : (uint32_t)avail;
		if (can_splice) {
			unsigned char h[4] = {n >> 24, n >> 16, n >> 8, n};
			if ((r = write_all(fd, h, 4)) < 0)
				break;
			r = splice_all(pipe_fd, fd, n);
			if (r == -EINVAL) { /* nothing was moved: fall back for the data */
				can_splice = false;
				b = xmalloc(FRAME_MAX);
				r = read_exact(pipe_fd, b, n);
				if (r == 0)
					r = write_all(fd, b, n);
			}
		} else {
			r = read_exact(pipe_fd, b, n);
			if (r == 0)
				r = put_frame(fd, b, n);
		}
		if (r < 0)
			break;
	}
	free(b);
	return r;
}

/* Read one frame into b (reset first). -EPIPE when the stream ends early. */
static int get_frame(int fd, struct buf *b, struct clbsd_err *err)
{
	unsigned char h[4];
	buf_reset(b);
	int r = read_exact(fd, h, 4);
	if (r < 0)
		return clbsd_err_set(err, CLBSD_E_INVALID, r, "read stream");
	uint32_t len = (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 | (uint32_t)h[2] << 8 | h[3];
	if (len > FRAME_MAX)
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
					"damaged stream: a frame of %u bytes", len);
	buf_grow(b, len);
	if (len && (r = read_exact(fd, b->data, len)) < 0)
		return clbsd_err_set(err, CLBSD_E_INVALID, r, "read stream");
	b->len = len;
	b->data[len] = '\0';
	return 0;
}

/* Fork argv with stdin/stdout as given (-1: /dev/null) and stderr to errfd. */
static pid_t spawn(char *const argv[], int in, int out, int errfd)
{
	pid_t pid = fork();
	if (pid != 0)
		return pid;
	int null = open("/dev/null", O_RDWR);
	dup2(in >= 0 ? in : null, 0);
	dup2(out >= 0 ? out : null, 1);
	dup2(errfd, 2);
	signal(SIGPIPE, SIG_DFL);
	execvp(argv[0], argv);
	dprintf(2, "exec %s: %s\n", argv[0], strerror(errno));
	_exit(127);
}

/* Wait for pid; on failure the message holds the first line of its stderr (errfd). */
static int reap(pid_t pid, const char *what, int errfd, struct clbsd_err *err)
{
	int status = 0;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	char msg[512] = "";
	ssize_t n = pread(errfd, msg, sizeof(msg) - 1, 0);
	msg[n > 0 ? n : 0] = '\0';
	msg[strcspn(msg, "\n")] = '\0';
	if (WIFEXITED(status))
		return clbsd_err_setmsg(err, CLBSD_E_INTERNAL, EIO, "%s exited with %d%s%s", what,
					WEXITSTATUS(status), *msg ? ": " : "", msg);
	return clbsd_err_setmsg(err, CLBSD_E_INTERNAL, EIO, "%s killed by signal %d", what,
				WTERMSIG(status));
}

/*
 * `zfs send` into a regular file, written by zfs itself as with
 * `zfs send > file` (through a pipe and this process it ran at half the
 * speed); *len gets how much it wrote.
 */
static int send_raw(struct strv *v, const char *snap, int fd, uint64_t *len, struct clbsd_err *err)
{
	autoclose int efd = memfd_create("zfs-send-stderr", MFD_CLOEXEC);
	off_t at = lseek(fd, 0, SEEK_END);
	if (efd < 0 || at < 0) {
		strv_release(v);
		return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "zfs send %s", snap);
	}
	int64_t t0 = time_mono_ns();
	pid_t pid = spawn(v->v, -1, fd, efd);
	if (pid < 0) {
		strv_release(v);
		return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "zfs send %s: fork", snap);
	}
	int r = reap(pid, "zfs send", efd, err);
	zfs_log_cmd(v->v, t0, r);
	strv_release(v);
	if (r < 0)
		return clbsd_err_prefix(err, "send %s", snap);
	off_t end = lseek(fd, 0, SEEK_END);
	if (end < at)
		return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "send %s: write stream", snap);
	*len = (uint64_t)(end - at);
	return 0;
}

/* zfs send [-i @from] snap onto fd: raw (len not NULL) or framed. */
static int send_one(const char *snap, const char *from, int fd, uint64_t *len,
		    struct clbsd_err *err)
{
	struct strv v = STRV_INIT;
	strv_push(&v, "zfs");
	strv_push(&v, "send");
	if (from) {
		strv_push(&v, "-i");
		strv_push_owned(&v, xasprintf("@%s", from));
	}
	strv_push(&v, snap);
	if (len)
		return send_raw(&v, snap, fd, len, err);
	int p[2];
	autoclose int efd = memfd_create("zfs-send-stderr", MFD_CLOEXEC);
	if (efd < 0 || pipe2(p, O_CLOEXEC) < 0) {
		strv_release(&v);
		return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "zfs send %s: pipe", snap);
	}
	pipe_widen(p[0]);
	int64_t t0 = time_mono_ns();
	pid_t pid = spawn(v.v, -1, p[1], efd);
	close(p[1]);
	if (pid < 0) {
		strv_release(&v);
		close(p[0]);
		return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "zfs send %s: fork", snap);
	}
	int werr = frames_from_pipe(p[0], fd);
	if (werr < 0)
		kill(pid, SIGTERM);
	close(p[0]);
	int r = reap(pid, "zfs send", efd, err);
	zfs_log_cmd(v.v, t0, r < 0 ? r : werr);
	strv_release(&v);
	if (werr < 0)
		return clbsd_err_set(err, CLBSD_E_INTERNAL, werr, "send %s: write stream", snap);
	if (r < 0)
		return clbsd_err_prefix(err, "send %s", snap);
	if ((werr = put_frame(fd, NULL, 0)) < 0)
		return clbsd_err_set(err, CLBSD_E_INTERNAL, werr, "send %s: write stream", snap);
	return 0;
}

/*
 * len bytes of stream from fd into the pipe to zfs recv: spliced while both
 * allow it (*can_splice), else through b. A short stream is a read error
 * (*rerr, -errno returned); a dead zfs recv sets *werr (it says why when it
 * is reaped).
 */
static int move_chunk(int fd, int pipe_fd, uint32_t len, bool *can_splice, struct buf *b, int *werr,
		      struct clbsd_err *rerr)
{
	int s2 = *can_splice ? splice_all(fd, pipe_fd, len) : -EINVAL;
	if (s2 == -EINVAL) {
		*can_splice = false;
		buf_reset(b);
		buf_grow(b, len);
		int r = read_exact(fd, b->data, len);
		if (r < 0)
			return clbsd_err_set(rerr, CLBSD_E_INVALID, r, "read stream");
		s2 = write_all(pipe_fd, b->data, len);
	} else if (s2 == -ENODATA) {
		return clbsd_err_set(rerr, CLBSD_E_INVALID, EPIPE, "read stream");
	}
	*werr = s2;
	return 0;
}

/* The DRR_BEGIN record: drr_type, drr_payloadlen, drr_magic, drr_versioninfo. */
#define DRR_MAGIC 0x2F5bacbacULL

int zfs_stream_hdrtype(const unsigned char *rec, size_t n)
{
	if (n < 24)
		return -1;
	uint64_t magic = 0, vi = 0;
	uint32_t type = 0;
	memcpy(&type, rec, 4);
	memcpy(&magic, rec + 8, 8);
	memcpy(&vi, rec + 16, 8);
	/* Written in the sender's byte order. */
	if (magic == __builtin_bswap64(DRR_MAGIC)) {
		magic = DRR_MAGIC;
		vi = __builtin_bswap64(vi);
		type = __builtin_bswap32(type);
	}
	if (magic != DRR_MAGIC || type != 0 /* DRR_BEGIN */)
		return -1;
	return (int)(vi & 3); /* DMU_GET_STREAM_HDRTYPE */
}

int zfs_stream_incremental(const unsigned char *rec, size_t n)
{
	if (n < 56 || zfs_stream_hdrtype(rec, n) < 0)
		return -1;
	uint64_t from = 0;
	memcpy(&from, rec + 48, 8); /* drr_fromguid, after drr_toguid */
	return from != 0;
}

/*
 * The part about to be received (at fd's offset: raw, or a first frame) is
 * a plain stream. A compound one (`zfs send -R` or `-p`) would bring
 * properties (a mountpoint over a host directory, setuid) and child
 * datasets, and zfs-fuse's recv has no -u or -x to keep them out; the
 * driver's own send never makes one. The archive is a file (import reads
 * it from one); a stream that cannot be read ahead is not checked. *incr
 * says whether the stream was seen to be the changes since a snapshot (1),
 * a whole dataset (0), or could not be read ahead (-1).
 */
static int check_plain(int fd, int64_t raw_len, const char *target, int *incr,
		       struct clbsd_err *err)
{
	off_t pos = lseek(fd, 0, SEEK_CUR);
	unsigned char rec[56], h[4];
	size_t have = sizeof(rec);
	*incr = -1;
	if (pos < 0)
		return 0;
	off_t at = pos;
	if (raw_len < 0) {
		if (pread(fd, h, 4, pos) != 4)
			return 0; /* short: the receive says so */
		at = pos + 4;
		/* A first frame shorter than the record's fields read: only what it holds. */
		uint32_t len =
			(uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 | (uint32_t)h[2] << 8 | h[3];
		have = len < have ? len : have;
	}
	ssize_t n = pread(fd, rec, have, at);
	if (n < 0)
		return 0;
	if (zfs_stream_hdrtype(rec, (size_t)n) != 1)
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
					"receive %s: the stream is not a plain zfs send stream "
					"(a replication or property stream could set mount "
					"points and add datasets); refusing it",
					target);
	*incr = zfs_stream_incremental(rec, (size_t)n);
	return 0;
}

/*
 * One `zfs recv` (argv) fed raw_len bytes from fd, or with raw_len < 0
 * frames until the empty one. *by_zfs: it failed in zfs recv, not in
 * reading the stream.
 */
static int recv_feed(int fd, char *const *argv, const char *target, int64_t raw_len, bool *by_zfs,
		     struct clbsd_err *err)
{
	*by_zfs = false;
	int p[2];
	autoclose int efd = memfd_create("zfs-recv-stderr", MFD_CLOEXEC);
	if (efd < 0 || pipe2(p, O_CLOEXEC) < 0)
		return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "zfs recv %s: pipe", target);
	pipe_widen(p[1]);
	int64_t t0 = time_mono_ns();
	pid_t pid = spawn(argv, p[0], -1, efd);
	close(p[0]);
	if (pid < 0) {
		close(p[1]);
		return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "zfs recv %s: fork", target);
	}
	struct buf b = BUF_INIT;
	struct clbsd_err rerr;
	int r = 0, werr = 0;
	bool can_splice = true;
	/* Spliced from fd into the pipe when both allow it. */
	while (raw_len > 0 && werr == 0) {
		uint32_t n = raw_len > FRAME_MAX ? FRAME_MAX : (uint32_t)raw_len;
		if ((r = move_chunk(fd, p[1], n, &can_splice, &b, &werr, &rerr)) < 0)
			break;
		raw_len -= n;
	}
	while (raw_len < 0 && werr == 0) {
		unsigned char h[4];
		if ((r = read_exact(fd, h, 4)) < 0) {
			clbsd_err_set(&rerr, CLBSD_E_INVALID, r, "read stream");
			break;
		}
		uint32_t len =
			(uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 | (uint32_t)h[2] << 8 | h[3];
		if (len > FRAME_MAX) {
			r = clbsd_err_setmsg(&rerr, CLBSD_E_INVALID, EINVAL,
					     "damaged stream: a frame of %u bytes", len);
			break;
		}
		if (len == 0)
			break;
		if ((r = move_chunk(fd, p[1], len, &can_splice, &b, &werr, &rerr)) < 0)
			break;
	}
	buf_release(&b);
	/* Closing the pipe early makes zfs recv see a short stream: it keeps nothing. */
	close(p[1]);
	int w = reap(pid, "zfs recv", efd, err);
	zfs_log_cmd(argv, t0, r < 0 ? r : w);
	if (r < 0) {
		*err = rerr;
		return clbsd_err_prefix(err, "receive %s: the stream ends early or is damaged",
					target);
	}
	*by_zfs = w < 0;
	if (w < 0)
		return clbsd_err_prefix(err, "receive %s", target);
	if (werr < 0)
		return clbsd_err_set(err, CLBSD_E_INTERNAL, werr, "receive %s", target);
	return 0;
}

/*
 * Into `zfs recv target`: raw_len bytes from fd (a raw part), or, with
 * raw_len < 0, frames until the empty one. base (a snapshot of the
 * dataset, or NULL): the stream is the changes since it, and they apply to
 * the dataset as it was there, whatever changed since (zfs-fuse's atime
 * updates count as changes, and the importer's record). A stream seen to be
 * an increment is received with -F, which discards those changes in the
 * same step (a separate `zfs rollback` first cost 40-300 ms on zfs-fuse);
 * -F still refuses a base that is not the dataset's newest snapshot, as
 * the rollback did. Like that rollback, it may meet zfs-fuse's passing
 * "I/O error" right after the unmount: a failed try keeps nothing, and the
 * part is read again from where it began (a file: check_plain read ahead
 * in it) with the rollback's backoff. A stream that could not be read
 * ahead is rolled back first.
 */
static int recv_one(int fd, const char *target, int64_t raw_len, const char *base,
		    struct clbsd_err *err)
{
	int incr = -1;
	if (check_plain(fd, raw_len, target, &incr, err) < 0)
		return -err->code;
	if (base && incr == 0)
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
					"receive %s: damaged stream: a whole dataset where the "
					"changes since %s were expected",
					target, base);
	if (base && incr < 0 && zfs_rollback_snap(base, false, err) < 0)
		return -err->code;
	bool force = base && incr == 1;
	struct strv v = STRV_INIT;
	strv_push(&v, "zfs");
	strv_push(&v, "recv");
	if (force)
		strv_push(&v, "-F");
	strv_push(&v, target);
	off_t pos = lseek(fd, 0, SEEK_CUR);
	useconds_t delay = 25000;
	int r;
	for (int attempt = 0;; attempt++) {
		bool by_zfs = false;
		r = recv_feed(fd, v.v, target, raw_len, &by_zfs, err);
		bool transient =
			by_zfs && (strstr(err->msg, "I/O error") || strstr(err->msg, "busy"));
		if (r == 0 || !force || !transient || pos < 0)
			break;
		/*
		 * zfs-fuse has also said "I/O error" after the increment was in
		 * (its snapshot made): then it is not fed again, which the
		 * dataset, at that snapshot now, would refuse.
		 */
		enum zfs_dstate now;
		struct clbsd_err e2;
		if (zfs_ds_state(target, &now, &e2) == 0 && now != ZFS_DS_ABSENT) {
			log_warn("zfs", NULL, "recv -F %s: zfs said \"%s\", but the snapshot is in",
				 target, err->msg);
			r = 0;
			break;
		}
		log_debug("zfs", NULL, "recv -F %s: try %d failed (%s); again in %u ms", target,
			  attempt + 1, err->msg, (unsigned)(delay / 1000));
		if (lseek(fd, pos, SEEK_SET) < 0 || !zfs_retry_wait(attempt, 11, &delay))
			break;
	}
	strv_release(&v);
	return r;
}

/* The labels of ds's own snapshots, in the order they were taken (createtxg). */
static int snaps_in_order(const char *ds, struct strv *out, struct clbsd_err *err)
{
	autofree char *o = NULL;
	if (zfs_run(&o, err, "list", "-H", "-t", "snapshot", "-o", "name", "-s", "createtxg", "-d",
		    "1", ds, NULL) < 0)
		return clbsd_err_prefix(err, "snapshots of %s", ds);
	char *p = o, *l;
	while ((l = zfs_next_line(&p))) {
		char *at = strchr(l, '@');
		if (at && strncmp(l, ds, (size_t)(at - l)) == 0 && strlen(ds) == (size_t)(at - l))
			strv_push(out, at + 1);
	}
	return 0;
}

int zfs_send(struct storage *st, const char *name, const char *label, const char *from,
	     char *const *snaps, int fd, struct clbsd_err *err)
{
	if (storage_check_name("container", name, err) < 0 || storage_check_label(label, err) < 0 ||
	    (from && storage_check_label(from, err) < 0))
		return -err->code;
	for (size_t k = 0; snaps && snaps[k]; k++)
		if (storage_check_label(snaps[k], err) < 0)
			return -err->code;
	if (snaps && *snaps && from)
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
					"send container %s: older snapshots travel only in a whole "
					"stream, not with the changes since %s",
					name, from);
	autofree char *top = zfs_ds_ctr(st, name);
	autofree char *swhat = xasprintf("snapshot %s of container %s", label, name);
	autofree char *snap = xasprintf("%s@%s", top, label);
	struct strv ds = STRV_INIT, vols = STRV_INIT;
	json_t *hdr = json_object(), *parts = json_array();
	json_object_set_new(hdr, "format", json_string("clbsd-zfs-send"));
	json_object_set_new(hdr, "name", json_string(name));
	json_object_set_new(hdr, "label", json_string(label));
	json_object_set_new(hdr, "from", from ? json_string(from) : json_null());
	size_t nctr = 0;
	/* One look at the container's and its volumes' trees answers every question. */
	autofree char *vtop = zfs_ds_vols(st, name);
	struct zfs_view view;
	int r = zfs_view_load(&view, top, vtop, err);
	if (r == 0)
		r = zfs_need_managed_as(swhat, snap, zfs_view_state(&view, snap), err);
	if (r == 0)
		zfs_view_parts(&view, st, name, &ds, &vols, &nctr);
	/* Decide every part first, so a missing snapshot fails before any byte is sent. */
	bool *incr = xcalloc(ds.n + 1, sizeof(bool));
	bool *skip = xcalloc(ds.n + 1, sizeof(bool));
	/*
	 * Each part's chain: the chosen snapshots it has before label, in the
	 * order they were taken. A volume's are those of the container's own
	 * (part 0) it has, so that every part's chain follows the header's.
	 */
	struct strv *chains = xcalloc(ds.n + 1, sizeof(struct strv));
	json_t *hsnaps = json_array();
	for (size_t i = 0; r == 0 && snaps && *snaps && i < ds.n; i++) {
		struct strv have = STRV_INIT;
		r = snaps_in_order(ds.v[i], &have, err);
		if (r == 0)
			storage_snaps_chain(have.v, have.n, i == 0 ? snaps : chains[0].v, label,
					    &chains[i]);
		strv_release(&have);
	}
	for (size_t k = 0; k < chains[0].n; k++)
		json_array_append_new(hsnaps, json_string(chains[0].v[k]));
	json_object_set_new(hdr, "snapshots", hsnaps);
	for (size_t i = 0; r == 0 && i < ds.n; i++) {
		autofree char *s = xasprintf("%s@%s", ds.v[i], label);
		autofree char *f = from ? xasprintf("%s@%s", ds.v[i], from) : NULL;
		bool here = zfs_view_state(&view, s) == ZFS_DS_MANAGED;
		bool base = f && zfs_view_state(&view, f) == ZFS_DS_MANAGED;
		if (!here) { /* a volume made after the snapshot */
			skip[i] = true;
			continue;
		}
		if (f && !base && i < nctr) {
			r = clbsd_err_setmsg(err, CLBSD_E_NOTFOUND, ENOENT,
					     "no snapshot %s of %s to send changes from", from,
					     ds.v[i]);
			break;
		}
		incr[i] = base;
		/*
		 * A whole part carries its local settings (quota, ...), which the
		 * receiver sets on the dataset it makes; an increment updates a
		 * dataset that has them already and carries none (a `zfs get`
		 * fewer per part in a migration's downtime).
		 */
		struct strv kv = STRV_INIT;
		if (!base)
			r = zfs_local_props(ds.v[i], &kv, err);
		json_t *pj = json_object(), *props = json_object();
		const char *kind = i >= nctr   ? "volume"
				   : nctr == 1 ? "container"
				   : i == 0    ? "state"
					       : "rootfs";
		json_object_set_new(pj, "kind", json_string(kind));
		if (i >= nctr)
			json_object_set_new(pj, "volume", json_string(vols.v[i - nctr]));
		json_object_set_new(pj, "incremental", json_boolean(base));
		if (chains[i].n) {
			json_t *cj = json_array();
			for (size_t k = 0; k < chains[i].n; k++)
				json_array_append_new(cj, json_string(chains[i].v[k]));
			json_object_set_new(pj, "chain", cj);
		}
		for (size_t k = 0; k < kv.n; k++) {
			char *eq = strchr(kv.v[k], '=');
			*eq = '\0';
			json_object_set_new(props, kv.v[k], json_string(eq + 1));
		}
		json_object_set_new(pj, "props", props);
		json_array_append_new(parts, pj);
		strv_release(&kv);
	}
	json_object_set_new(hdr, "parts", parts);
	/*
	 * Into a regular file the parts go raw, one after the other, and the
	 * trailer lists their lengths; a footer (the trailer's offset and
	 * FOOTER_MAGIC) lets the reader find it first. Elsewhere each part is
	 * cut into frames.
	 */
	struct stat fsb;
	bool raw = fstat(fd, &fsb) == 0 && S_ISREG(fsb.st_mode) && lseek(fd, 0, SEEK_CUR) >= 0;
	json_t *lens = json_array();
	if (raw)
		json_object_set_new(hdr, "raw", json_true());
	size_t sent = 0;
	if (r == 0) {
		autofree char *line = json_line(hdr);
		int w = write_all(fd, STREAM_MAGIC, STREAM_MAGIC_LEN);
		if (w == 0)
			w = put_frame(fd, line, (uint32_t)strlen(line));
		if (w < 0)
			r = clbsd_err_set(err, CLBSD_E_INTERNAL, w, "write stream");
	}
	for (size_t i = 0; r == 0 && i < ds.n; i++) {
		if (skip[i])
			continue;
		/* The chain oldest first, then label: each the changes since the one before. */
		const struct strv *c = &chains[i];
		for (size_t k = 0; r == 0 && k <= c->n; k++) {
			autofree char *s = xasprintf("%s@%s", ds.v[i], k < c->n ? c->v[k] : label);
			const char *base = k > 0     ? c->v[k - 1]
					   : c->n    ? NULL
					   : incr[i] ? from
						     : NULL;
			uint64_t len = 0;
			r = send_one(s, base, fd, raw ? &len : NULL, err);
			if (r == 0 && raw)
				json_array_append_new(lens, json_integer((json_int_t)len));
		}
		sent++;
	}
	if (r == 0) {
		json_t *t = json_pack("{s:I}", "end", (json_int_t)sent);
		if (raw)
			json_object_set(t, "raw", lens);
		autofree char *end = json_line(t);
		json_decref(t);
		off_t at = raw ? lseek(fd, 0, SEEK_END) : 0;
		int w = at < 0 ? -errno : put_frame(fd, end, (uint32_t)strlen(end));
		if (w == 0 && raw) {
			unsigned char foot[12];
			for (int i = 0; i < 8; i++)
				foot[i] = (unsigned char)((uint64_t)at >> (56 - 8 * i));
			memcpy(foot + 8, FOOTER_MAGIC, 4);
			w = write_all(fd, foot, sizeof(foot));
		}
		if (w < 0)
			r = clbsd_err_set(err, CLBSD_E_INTERNAL, -w, "write stream");
	}
	json_decref(lens);
	json_decref(hdr);
	zfs_view_release(&view);
	free(incr);
	free(skip);
	for (size_t i = 0; i < ds.n + 1; i++)
		strv_release(&chains[i]);
	free(chains);
	strv_release(&ds);
	strv_release(&vols);
	if (r < 0)
		return clbsd_err_prefix(err, "send container %s@%s", name, label);
	return 0;
}

/* What receive made or changed, to undo on failure. */
struct recv_undo {
	struct strv made;    /* datasets received whole: destroy */
	struct strv touched; /* datasets that got an increment: back to @from */
	bool made_vols;
};

/*
 * Mount what a receive unmounted or made. zfs-fuse refuses now and then
 * right after a `zfs recv` (the FUSE mount of the old tree not yet
 * released); a dataset left unmounted would take the record the import
 * writes next into its bare mount point, and never mount again
 * ("directory is not empty"). So: retried, with the back-off of destroy.
 */
static int mount_again(const char *ds, const char *ds2, struct clbsd_err *err)
{
	useconds_t delay = 25000;
	for (int attempt = 0;; attempt++) {
		if (zfs_mount_trees(ds, ds2, err) == 0)
			return 0;
		log_debug("zfs", NULL, "mount %s: try %d failed (%s); again in %u ms", ds,
			  attempt + 1, err->msg, (unsigned)(delay / 1000));
		if (!zfs_retry_wait(attempt, 24, &delay)) {
			log_warn("storage", NULL, "%s", err->msg);
			return -err->code;
		}
	}
}

int zfs_ctr_mount(struct storage *st, const char *name, struct clbsd_err *err)
{
	if (storage_check_name("container", name, err) < 0)
		return -err->code;
	autofree char *top = zfs_ds_ctr(st, name);
	autofree char *vols = zfs_ds_vols(st, name);
	/* One `zfs list` of both trees when all is mounted (the volumes' may be missing). */
	if (mount_again(top, vols, err) < 0)
		return clbsd_err_prefix(err, "container %s", name);
	return 0;
}

static void recv_rollback(struct recv_undo *u, const char *vols, const char *label,
			  const char *from)
{
	struct clbsd_err ignore;
	for (size_t i = u->touched.n; i > 0; i--) {
		autofree char *s = xasprintf("%s@%s", u->touched.v[i - 1], label);
		autofree char *f = xasprintf("%s@%s", u->touched.v[i - 1], from);
		zfs_destroy(s, false, &ignore);
		zfs_rollback_snap(f, false, &ignore);
	}
	for (size_t i = u->made.n; i > 0; i--)
		zfs_destroy_tree(u->made.v[i - 1], &ignore);
	if (u->made_vols)
		zfs_destroy_tree(vols, &ignore);
}

/* Apply the props of a stream part ({"quota":"123",...}) to ds. */
static int apply_stream_props(const char *ds, json_t *props, struct clbsd_err *err)
{
	const char *k;
	json_t *v;
	json_object_foreach(props, k, v)
	{
		static const char *const ok[] = {"quota", "reservation", "compression",
						 "recordsize", PROP_HASH};
		bool known = false;
		for (size_t i = 0; i < ARRAY_SIZE(ok) && !known; i++)
			known = strcmp(k, ok[i]) == 0;
		if (!known || !json_is_string(v))
			return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
						"damaged stream: property \"%s\"", k);
		autofree char *kv = xasprintf("%s=%s", k, json_string_value(v));
		if (zfs_run(NULL, err, "set", kv, ds, NULL) < 0)
			return clbsd_err_prefix(err, "zfs set %s on %s", kv, ds);
	}
	return 0;
}

/*
 * The part lengths of a raw stream in fd (a regular file, read at its end
 * without moving the position): np non-negative integers that, with the
 * header, fill the file up to the trailer.
 */
static int raw_lengths(int fd, size_t np, json_t **out, struct clbsd_err *err)
{
	struct stat sb;
	off_t pos = lseek(fd, 0, SEEK_CUR);
	unsigned char foot[12], h[4];
	if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode) || pos < 0 || sb.st_size < pos + 12)
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
					"a raw stream is read from a file (not a pipe)");
	if (pread(fd, foot, sizeof(foot), sb.st_size - 12) != 12 ||
	    memcmp(foot + 8, FOOTER_MAGIC, 4) != 0)
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
					"the stream has no end mark: cut short?");
	uint64_t at = 0;
	for (int i = 0; i < 8; i++)
		at = at << 8 | foot[i];
	if ((off_t)at < pos || (off_t)at + 4 > sb.st_size - 12 || pread(fd, h, 4, (off_t)at) != 4)
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL, "damaged stream: footer");
	uint32_t tl = (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 | (uint32_t)h[2] << 8 | h[3];
	if ((off_t)at + 4 + tl != sb.st_size - 12 || tl > FRAME_MAX)
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL, "damaged stream: trailer");
	autofree char *t = xmalloc(tl + 1);
	if (pread(fd, t, tl, (off_t)at + 4) != (ssize_t)tl)
		return clbsd_err_set(err, CLBSD_E_INVALID, EIO, "read stream");
	json_t *tj = json_loadb(t, tl, 0, NULL);
	json_t *lens = json_object_get(tj, "raw");
	uint64_t sum = 0;
	bool ok = json_is_array(lens) && json_array_size(lens) == np;
	for (size_t i = 0; ok && i < np; i++) {
		json_t *l = json_array_get(lens, i);
		ok = json_is_integer(l) && json_integer_value(l) >= 0;
		sum += ok ? (uint64_t)json_integer_value(l) : 0;
	}
	if (!ok || (off_t)(pos + sum) != (off_t)at) {
		json_decref(tj);
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
					"damaged stream: the part lengths do not add up");
	}
	*out = json_incref(lens);
	json_decref(tj);
	return 0;
}

/*
 * Check that container `name` can take the stream: a whole one needs the
 * name free, an increment the container with snapshot `from` and without
 * `label`, unmounted (pages cached by the mounted FUSE file system would
 * hide the update), as are its volumes. *view gets the container's and its
 * volumes' trees as they are before the receive (one `zfs get` answers
 * every question about them), *vols_there whether its volumes' dataset
 * exists.
 */
static int recv_prepare(struct storage *st, const char *name, const char *label, const char *from,
			struct zfs_view *view, bool *vols_there, struct clbsd_err *err)
{
	autofree char *top = zfs_ds_ctr(st, name);
	autofree char *vols = zfs_ds_vols(st, name);
	int r = zfs_view_load(view, top, vols, err);
	if (r < 0)
		return r;
	if (!from) {
		autofree char *what = xasprintf("container %s", name);
		autofree char *dir = storage_ctr_dir(st, name);
		r = zfs_need_absent_as(what, top, zfs_view_state(view, top), err);
		if (r == 0)
			r = zfs_need_empty_dir(dir, err);
	} else {
		autofree char *f = xasprintf("%s@%s", top, from);
		autofree char *s = xasprintf("%s@%s", top, label);
		autofree char *fwhat = xasprintf("snapshot %s of container %s", from, name);
		autofree char *lwhat = xasprintf("snapshot %s of container %s", label, name);
		r = zfs_need_managed_as(fwhat, f, zfs_view_state(view, f), err);
		if (r == 0)
			r = zfs_need_absent_as(lwhat, s, zfs_view_state(view, s), err);
	}
	*vols_there = zfs_view_state(view, vols) == ZFS_DS_MANAGED;
	/* The volumes' group receives nothing (it gets an empty snapshot): it stays. */
	if (r == 0 && from)
		r = zfs_unmount_trees(top, *vols_there ? vols : NULL, vols, err);
	return r;
}

/*
 * The dataset part i of the stream goes to (a new string), NULL when the
 * part does not belong there. The container's own parts come first:
 * "container" (tree), or "state" then "rootfs" (flat), which *nctr counts;
 * then its volumes.
 */
static char *part_target(const char *top, const char *vols, size_t i, const char *kind,
			 const char *vol, size_t *nctr)
{
	if (i == 0 && (!strcmp(kind, "container") || !strcmp(kind, "state"))) {
		*nctr = strcmp(kind, "state") == 0 ? 2 : 1;
		return xstrdup(top);
	}
	if (i == 1 && *nctr == 2 && !strcmp(kind, "rootfs"))
		return xasprintf("%s/rootfs", top);
	if (i >= *nctr && !strcmp(kind, "volume") && vol && valid_name(vol))
		return xasprintf("%s/%s", vols, vol);
	return NULL;
}

/* The end mark after the np parts: a stream cut short has none. */
static int recv_end(int fd, struct buf *b, size_t np, struct clbsd_err *err)
{
	int r = get_frame(fd, b, err);
	json_t *end = r == 0 ? json_loadb(b->data, b->len, 0, NULL) : NULL;
	if (r == 0 && json_int(end, "end", -1) != (int64_t)np)
		r = clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
				     "the stream has no end mark: cut short?");
	json_decref(end);
	return r;
}

/*
 * The chains of a stream's parts, checked: the header's "snapshots" are
 * valid labels, each once, none of them the stream's label, and not with
 * an increment (from); a part's "chain" lists some of them in the header's
 * order, and not on an incremental part. chains[i] gets part i's; *nsub
 * the count of zfs streams (each part's chain and its last one).
 */
static int recv_chains(json_t *hdr, json_t *parts, const char *label, const char *from,
		       struct strv *chains, size_t *nsub, struct clbsd_err *err)
{
	json_t *hs = json_object_get(hdr, "snapshots");
	size_t nh = json_array_size(hs);
	struct clbsd_err e;
	if (hs && !json_is_array(hs))
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
					"damaged stream header: \"snapshots\"");
	if (nh && from)
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
					"damaged stream: older snapshots with the changes since "
					"%s",
					from);
	for (size_t k = 0; k < nh; k++) {
		const char *l = json_string_value(json_array_get(hs, k));
		bool bad = !l || storage_check_label(l, &e) < 0 || strcmp(l, label) == 0;
		for (size_t q = 0; q < k && !bad; q++)
			bad = strcmp(l, json_string_value(json_array_get(hs, q))) == 0;
		if (bad)
			return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
						"damaged stream header: snapshot %zu of the chain",
						k + 1);
	}
	*nsub = 0;
	for (size_t i = 0; i < json_array_size(parts); i++) {
		json_t *pj = json_array_get(parts, i);
		json_t *c = json_object_get(pj, "chain");
		size_t at = 0; /* the next chain label is at this place of the header's or after */
		bool ok = !c || (json_is_array(c) &&
				 !(json_array_size(c) && json_bool(pj, "incremental", false)));
		for (size_t k = 0; ok && k < json_array_size(c); k++) {
			const char *l = json_string_value(json_array_get(c, k));
			while (at < nh && l && strcmp(json_string_value(json_array_get(hs, at)), l))
				at++;
			ok = l && at < nh;
			if (ok)
				strv_push(&chains[i], l);
			at++;
		}
		if (!ok)
			return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
						"damaged stream: the snapshot chain of part %zu",
						i + 1);
		*nsub += chains[i].n + 1;
	}
	return 0;
}

int zfs_receive(struct storage *st, const char *name, int fd, struct clbsd_err *err)
{
	if (storage_check_name("container", name, err) < 0)
		return -err->code;
	char magic[STREAM_MAGIC_LEN];
	int r = read_exact(fd, magic, sizeof(magic));
	if (r < 0 || memcmp(magic, STREAM_MAGIC, sizeof(magic)) != 0)
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
					"receive container %s: not a stream from the zfs driver's "
					"send (a dir driver stream is a tar archive)",
					name);
	struct buf b = BUF_INIT;
	json_t *hdr = NULL;
	if (get_frame(fd, &b, err) < 0) {
		buf_release(&b);
		return clbsd_err_prefix(err, "receive container %s", name);
	}
	hdr = json_loadb(b.data, b.len, 0, NULL);
	json_t *parts = json_object_get(hdr, "parts");
	const char *label = json_str(hdr, "label");
	const char *from = json_str(hdr, "from");
	size_t np = json_array_size(parts);
	autofree char *top = zfs_ds_ctr(st, name);
	autofree char *vols = zfs_ds_vols(st, name);
	autofree char *dir = storage_ctr_dir(st, name);
	struct recv_undo u = {STRV_INIT, STRV_INIT, false};
	struct zfs_view view = {0};
	bool vols_there = false;
	struct strv *chains = xcalloc(np + 1, sizeof(struct strv));
	size_t nsub = np;
	if (!json_is_object(hdr) || !json_is_array(parts) || np < 1 || !label ||
	    storage_check_label(label, err) < 0 || (from && storage_check_label(from, err) < 0))
		r = clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL, "damaged stream header");
	else
		r = recv_chains(hdr, parts, label, from, chains, &nsub, err);
	if (r == 0)
		r = recv_prepare(st, name, label, from, &view, &vols_there, err);
	bool vols_before = vols_there;
	/* A raw stream: the zfs streams' lengths are in the trailer, which the footer finds. */
	json_t *raw_lens = NULL;
	if (r == 0 && json_bool(hdr, "raw", false)) {
		r = raw_lengths(fd, nsub, &raw_lens, err);
		if (r < 0)
			clbsd_err_prefix(err, "receive container %s", name);
	}
	size_t nctr = 1; /* how many parts are the container's own */
	size_t sub = 0;	 /* the zfs streams received so far */
	for (size_t i = 0; r == 0 && i < np; i++) {
		json_t *pj = json_array_get(parts, i);
		const char *kind = json_str(pj, "kind");
		const char *vol = json_str(pj, "volume");
		bool incr = json_bool(pj, "incremental", false);
		autofree char *target = part_target(top, vols, i, kind ? kind : "", vol, &nctr);
		if (!target || (incr && !from)) {
			r = clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
					     "damaged stream: part %zu", i + 1);
			break;
		}
		if (!incr && i >= nctr) {
			autofree char *vwhat = xasprintf("volume %s of container %s", vol, name);
			bool made = false;
			r = zfs_need_absent_as(vwhat, target, zfs_view_state(&view, target), err);
			if (r == 0 && !vols_there)
				r = zfs_ensure_vols(st, name, &made, err);
			vols_there = vols_there || made;
			u.made_vols = u.made_vols || made;
			if (r < 0)
				break;
		}
		/*
		 * The part's chain, oldest first, then label, each received
		 * under the header's label (not the name inside the zfs
		 * stream): the first whole (or the changes since from), each
		 * next one the changes since the one before, which zfs recv
		 * refuses unless it is the target's newest snapshot.
		 */
		const struct strv *c = &chains[i];
		for (size_t k = 0; r == 0 && k <= c->n; k++) {
			const char *to = k < c->n ? c->v[k] : label;
			const char *base = k > 0 ? c->v[k - 1] : incr ? from : NULL;
			/*
			 * An increment applies to the target as it was at @base
			 * (recv_one), unmounted (see recv_prepare; the whole
			 * stream before it in a chain mounted it).
			 */
			if (base && k > 0)
				r = zfs_unmount_tree(target, err);
			int64_t raw_len =
				raw_lens ? json_integer_value(json_array_get(raw_lens, sub)) : -1;
			autofree char *snap = xasprintf("%s@%s", target, to);
			autofree char *f = base ? xasprintf("%s@%s", target, base) : NULL;
			if (r == 0)
				r = recv_one(fd, snap, raw_len, f, err);
			sub++;
			if (r == 0 && k == 0 && !incr) {
				strv_push(&u.made, target);
				r = zfs_run(NULL, err, "set", OPT_MANAGED, target, NULL);
				if (r == 0)
					r = apply_stream_props(target, json_object_get(pj, "props"),
							       err);
			} else if (r == 0 && k == 0) {
				strv_push(&u.touched, target);
			}
		}
	}
	if (r == 0)
		r = recv_end(fd, &b, np, err);
	if (r < 0)
		recv_rollback(&u, vols, label ? label : "", from ? from : "");
	/*
	 * The volumes' group dataset gets the stream's labels too (empty
	 * snapshots), as `zfs snapshot -r` gave them to it on the sender:
	 * without them destroying a snapshot (`zfs destroy -r <vols>@L`)
	 * would miss the volumes' and leave their label taken.
	 */
	json_t *hs = json_object_get(hdr, "snapshots");
	for (size_t k = 0; r == 0 && np > nctr && k <= json_array_size(hs); k++) {
		const char *l =
			k < json_array_size(hs) ? json_string_value(json_array_get(hs, k)) : label;
		autofree char *gs = xasprintf("%s@%s", vols, l);
		struct clbsd_err ignore;
		/* The receive made no snapshot of the group: the view before it says. */
		if (zfs_view_state(&view, gs) != ZFS_DS_MANAGED &&
		    zfs_run(NULL, &ignore, "snapshot", gs, NULL) < 0)
			log_warn("storage", name, "%s", ignore.msg);
	}
	/*
	 * Mount again what was unmounted, and mount what arrived (one `zfs
	 * list` of both trees): the volumes' dataset when it was there before
	 * or the receive made it and kept it.
	 */
	struct clbsd_err e2;
	bool vols_now = r == 0 ? vols_there : vols_before;
	if (r == 0 || from)
		mount_again(top, vols_now ? vols : NULL, &e2);
	else if (vols_now)
		mount_again(vols, NULL, &e2);
	if (r < 0 && !from)
		rmdir(dir);
	strv_release(&u.made);
	strv_release(&u.touched);
	for (size_t i = 0; i < np + 1; i++)
		strv_release(&chains[i]);
	free(chains);
	json_decref(raw_lens);
	json_decref(hdr);
	zfs_view_release(&view);
	buf_release(&b);
	if (r < 0)
		return clbsd_err_prefix(err, "receive container %s", name);
	return 0;
}

/*
 * zfs recv makes each dataset, and clbsd:managed is set on it only once it
 * is in: a receive cut short can leave datasets without it. Those made
 * since the receive began are its own and are claimed; an older one is
 * someone else's and stays. Then everything goes, as ctr_remove does.
 */
int zfs_receive_undo(struct storage *st, const char *name, int64_t since, const char *const *keep,
		     struct clbsd_err *err)
{
	if (storage_check_name("container", name, err) < 0)
		return -err->code;
	autofree char *top = zfs_ds_ctr(st, name);
	autofree char *vols = zfs_ds_vols(st, name);
	struct zfs_view v;
	if (zfs_view_load(&v, top, vols, err) < 0)
		return clbsd_err_prefix(err, "undo the receive of container %s", name);
	int r = 0;
	for (size_t i = 0; r == 0 && i < v.n; i++) {
		const char *ds = v.f[4 * i];
		if (strchr(ds, '@') || zfs_view_state(&v, ds) != ZFS_DS_FOREIGN)
			continue;
		autofree char *out = NULL;
		r = zfs_run(&out, err, "get", "-H", "-p", "-o", "value", "creation", ds, NULL);
		if (r == 0 && strtoll(out, NULL, 10) < since)
			r = clbsd_err_setmsg(
				err, CLBSD_E_CONFLICT, EPERM,
				"zfs dataset %s is not clbsd's and is older than the "
				"receive; clbsd will not change it: rename or destroy it "
				"yourself",
				ds);
		if (r == 0)
			r = zfs_run(NULL, err, "set", OPT_MANAGED, ds, NULL);
	}
	/* Volumes that were there before stay: only those the receive made go. */
	struct strv gone = STRV_INIT;
	if (r == 0 && keep) {
		struct strv parts = STRV_INIT, names = STRV_INIT;
		size_t nctr;
		zfs_view_parts(&v, st, name, &parts, &names, &nctr);
		for (size_t i = 0; i < names.n; i++) {
			bool k = false;
			for (size_t j = 0; keep[j] && !k; j++)
				k = strcmp(keep[j], names.v[i]) == 0;
			if (!k)
				strv_push(&gone, parts.v[nctr + i]);
		}
		strv_release(&parts);
		strv_release(&names);
	}
	zfs_view_release(&v);
	if (r == 0)
		r = st->ops->ctr_remove(st, name, keep == NULL, err);
	for (size_t i = 0; r == 0 && i < gone.n; i++)
		r = zfs_destroy_tree(gone.v[i], err);
	strv_release(&gone);
	if (r < 0)
		return clbsd_err_prefix(err, "undo the receive of container %s", name);
	return 0;
}
