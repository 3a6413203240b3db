/*
 * The audit log's writer: a ring the loop fills and a thread that empties
 * it into <root>/audit/audit.log (audit_log.h states the invariants; the
 * encoding and the rotation rule are core/audit_rec.c's).
 */
#include "daemon/audit_log.h"
#include "core/audit_rec.h"
#include "util/json.h"
#include "util/util.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

struct slot {
	uint64_t seq;
	char *line;
	size_t len;
};

struct audit_log {
	char *dir, *path;
	pthread_t thread;
	bool started;
	pthread_mutex_t mu;
	pthread_cond_t wake, done; /* wake: the writer; done: flushers */
	/* Under mu. */
	struct slot ring[AUDIT_RING];
	uint64_t head;	   /* records ever queued (slot of n: n % AUDIT_RING) */
	uint64_t tail;	   /* records written or given up */
	uint64_t next_seq; /* seq of the next record */
	uint64_t dropped;  /* found the ring full, not reported yet */
	uint64_t failed;   /* not written (I/O error), not reported yet */
	char failed_why[128];
	bool stop;
	struct audit_settings set;
	/* Writer thread only. */
	int fd;
	int64_t size;
	int64_t last_warn_ns;
};

/* Queue line under mu; the caller knows there is room. */
static void push_locked(struct audit_log *log, int64_t ns, const json_t *fields)
{
	struct slot *s = &log->ring[log->head % AUDIT_RING];
	free(s->line);
	s->seq = log->next_seq++;
	s->line = audit_rec_line(ns ? ns : time_now_ns(), s->seq, fields);
	s->len = strlen(s->line);
	log->head++;
	pthread_cond_signal(&log->wake);
}

/* The lost records, as a record, when there is room for it (under mu). */
static void report_lost_locked(struct audit_log *log)
{
	if (log->head - log->tail >= AUDIT_RING)
		return;
	if (log->dropped) {
		json_t *f = json_pack("{s:s,s:I,s:s}", "event", "audit.lost", "lost",
				      (json_int_t)log->dropped, "reason",
				      "the audit queue was full (the disk is slower than the "
				      "requests)");
		push_locked(log, 0, f);
		json_decref(f);
		log->dropped = 0;
	}
	if (log->failed && log->head - log->tail < AUDIT_RING) {
		json_t *f = json_pack("{s:s,s:I,s:s}", "event", "audit.lost", "lost",
				      (json_int_t)log->failed, "reason", log->failed_why);
		push_locked(log, 0, f);
		json_decref(f);
		log->failed = 0;
	}
}

void audit_log_append(struct audit_log *log, int64_t time_ns, const json_t *fields)
{
	if (!log)
		return;
	pthread_mutex_lock(&log->mu);
	report_lost_locked(log);
	if (log->head - log->tail >= AUDIT_RING)
		log->dropped++;
	else
		push_locked(log, time_ns, fields);
	pthread_mutex_unlock(&log->mu);
}

/* ---- the writer thread ---- */

static int open_file(struct audit_log *log)
{
	int fd = open(log->path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return -errno;
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return -EINVAL;
	}
	/* A file made by someone else's umask or hand is made ours again. */
	if ((st.st_mode & 07777) != 0600 && fchmod(fd, 0600) < 0) {
		close(fd);
		return -errno;
	}
	/* Half a line a crash left: the next record starts a line of its own. */
	char last;
	if (st.st_size > 0 && pread(fd, &last, 1, st.st_size - 1) == 1 && last != '\n' &&
	    write(fd, "\n", 1) == 1)
		st.st_size++;
	log->fd = fd;
	log->size = st.st_size;
	return 0;
}

/*
 * Rotated files past keep (audit.log.<keep+1> ..): left by a larger :files
 * before; they go, or they would stay forever.
 */
static void prune(const char *path, int keep)
{
	for (int i = keep + 1; i <= AUDIT_KEEP_MAX; i++) {
		autofree char *p = audit_file_path(path, i);
		if (unlink(p) < 0 && errno != ENOENT)
			log_warn("audit", NULL, "removing %s (past :files %d): %s", p, keep,
				 strerror(errno));
	}
}

/* audit.log.<keep-1> -> .<keep> ... audit.log -> .1, and a new audit.log. */
static int rotate(struct audit_log *log, int keep)
{
	if (log->fd >= 0) {
		fdatasync(log->fd);
		close(log->fd);
		log->fd = -1;
	}
	for (int i = keep - 1; i >= 0; i--) {
		autofree char *from = audit_file_path(log->path, i);
		autofree char *to = audit_file_path(log->path, i + 1);
		if (rename(from, to) < 0 && errno != ENOENT)
			log_warn("audit", NULL, "rotating %s: %s", from, strerror(errno));
	}
	prune(log->path, keep);
	return open_file(log);
}

static void warn_io(struct audit_log *log, const char *what, int e)
{
	int64_t now = time_mono_ns();
	if (now - log->last_warn_ns > 10000000000LL) {
		log_error("audit", NULL, "%s %s: %s; records are counted as lost until it works",
			  what, log->path, strerror(e));
		log->last_warn_ns = now;
	}
}

/* Write n slots (copied out of the ring); how many could not be written. */
static uint64_t write_batch(struct audit_log *log, const struct slot *v, size_t n,
			    const struct audit_settings *set, char *why, size_t wlen)
{
	uint64_t lost = 0;
	bool wrote = false;
	for (size_t i = 0; i < n; i++) {
		int r = 0;
		if (log->fd < 0 || audit_rotate_due(log->size, v[i].len + 1, set->max_size))
			r = log->fd < 0 ? open_file(log) : rotate(log, set->keep);
		if (r < 0) {
			warn_io(log, log->fd < 0 ? "open" : "rotate", -r);
			snprintf(why, wlen, "opening %s: %s", log->path, strerror(-r));
			lost++;
			continue;
		}
		struct iovec iov[2] = {{v[i].line, v[i].len}, {(void *)(uintptr_t) "\n", 1}};
		ssize_t w = writev(log->fd, iov, 2);
		if (w < 0 || (size_t)w != v[i].len + 1) {
			int e = w < 0 ? errno : EIO;
			warn_io(log, "write", e);
			snprintf(why, wlen, "writing %s: %s", log->path, strerror(e));
			lost++;
			/* A short write leaves half a line: the next record starts a new one. */
			if (w > 0 && write(log->fd, "\n", 1) == 1)
				log->size += w + 1;
			continue;
		}
		log->size += w;
		wrote = true;
	}
	if (wrote && set->fsync && fdatasync(log->fd) < 0)
		warn_io(log, "fdatasync", errno);
	return lost;
}

static void *writer(void *arg)
{
	struct audit_log *log = arg;
	struct slot *batch = xcalloc(AUDIT_RING, sizeof(*batch));
	pthread_mutex_lock(&log->mu);
	for (;;) {
		while (log->tail == log->head && !log->stop) {
			pthread_cond_broadcast(&log->done);
			pthread_cond_wait(&log->wake, &log->mu);
		}
		if (log->tail == log->head && log->stop)
			break;
		/* Copies: the loop may reuse a slot only once tail has passed it. */
		size_t n = 0;
		for (uint64_t i = log->tail; i < log->head; i++, n++) {
			const struct slot *s = &log->ring[i % AUDIT_RING];
			batch[n] = (struct slot){s->seq, xstrdup(s->line), s->len};
		}
		struct audit_settings set = log->set;
		pthread_mutex_unlock(&log->mu);
		char why[128] = "";
		uint64_t lost = write_batch(log, batch, n, &set, why, sizeof(why));
		for (size_t i = 0; i < n; i++)
			free(batch[i].line);
		pthread_mutex_lock(&log->mu);
		log->tail += n;
		if (lost) {
			log->failed += lost;
			snprintf(log->failed_why, sizeof(log->failed_why), "%s", why);
		} else {
			report_lost_locked(log);
		}
	}
	pthread_cond_broadcast(&log->done);
	pthread_mutex_unlock(&log->mu);
	free(batch);
	return NULL;
}

/* ---- open, close ---- */

/* The seq of the line line (n bytes), 0 when it is not a record. */
static uint64_t seq_of_line(const char *line, size_t n)
{
	json_t *j = json_loadb(line, n, 0, NULL);
	int64_t seq = j ? json_int(j, "seq", 0) : 0;
	json_decref(j);
	return seq > 0 ? (uint64_t)seq : 0;
}

#define SCAN_CHUNK (64 << 10)

uint64_t audit_last_seq_of(const char *path)
{
	autoclose int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size == 0)
		return 0;
	/*
	 * From the end, a chunk at a time: the last line that reads as a record,
	 * however long the lines after it (half a line a crash left, a record
	 * from before records were bounded). b holds the bytes [lo, lo + b.len)
	 * of which the lines after the last newline are not yet tried.
	 */
	struct buf b = BUF_INIT;
	off_t lo = st.st_size;
	uint64_t seq = 0;
	for (;;) {
		while (b.len && b.data[b.len - 1] == '\n')
			b.len--;
		const char *nl = b.len ? memrchr(b.data, '\n', b.len) : NULL;
		if (nl || (lo == 0 && b.len)) {
			size_t start = nl ? (size_t)(nl - b.data) + 1 : 0;
			seq = seq_of_line(b.data + start, b.len - start);
			if (seq || start == 0)
				break;
			b.len = start;
			continue;
		}
		if (lo == 0)
			break;
		size_t want = lo > SCAN_CHUNK ? SCAN_CHUNK : (size_t)lo;
		char *chunk = xmalloc(want + b.len + 1);
		ssize_t n = pread(fd, chunk, want, lo - (off_t)want);
		if (n != (ssize_t)want) {
			free(chunk);
			break;
		}
		memcpy(chunk + want, b.data, b.len);
		size_t len = want + b.len;
		buf_release(&b);
		b.data = chunk;
		b.len = len;
		b.cap = len + 1;
		lo -= (off_t)want;
	}
	buf_release(&b);
	return seq;
}

int audit_log_open(const char *dir, const struct audit_settings *set, struct audit_log **out,
		   struct clbsd_err *err)
{
	if (fs_mkdir_p(dir, 0700, err) < 0)
		return clbsd_err_prefix(err, "audit log");
	struct audit_log *log = xcalloc(1, sizeof(*log));
	log->dir = xstrdup(dir);
	log->path = xasprintf("%s/audit.log", dir);
	log->set = *set;
	log->fd = -1;
	/*
	 * Numbers go on where the last daemon stopped: the highest seq of the
	 * files (audit.log's last record when it has one; an older file only
	 * adds when audit.log has no record at all, and never lowers it).
	 */
	uint64_t last = 0;
	for (int i = 0; i <= AUDIT_KEEP_MAX; i++) {
		autofree char *p = audit_file_path(log->path, i);
		uint64_t s = audit_last_seq_of(p);
		if (s > last)
			last = s;
		if (i >= set->keep && access(p, F_OK) < 0)
			break;
	}
	log->next_seq = last + 1;
	prune(log->path, set->keep);
	int r = open_file(log);
	if (r < 0) {
		clbsd_err_set(err, CLBSD_E_INTERNAL, -r, "audit log: open %s", log->path);
		free(log->dir);
		free(log->path);
		free(log);
		return r;
	}
	pthread_mutex_init(&log->mu, NULL);
	pthread_cond_init(&log->wake, NULL);
	pthread_cond_init(&log->done, NULL);
	r = pthread_create(&log->thread, NULL, writer, log);
	if (r != 0) {
		clbsd_err_set(err, CLBSD_E_INTERNAL, r, "audit log: start its writer");
		audit_log_close(log);
		return -r;
	}
	log->started = true;
	*out = log;
	return 0;
}

void audit_log_configure(struct audit_log *log, const struct audit_settings *set)
{
	if (!log)
		return;
	pthread_mutex_lock(&log->mu);
	log->set = *set;
	pthread_mutex_unlock(&log->mu);
}

void audit_log_flush(struct audit_log *log)
{
	if (!log || !log->started)
		return;
	pthread_mutex_lock(&log->mu);
	uint64_t want = log->head;
	while (log->tail < want)
		pthread_cond_wait(&log->done, &log->mu);
	pthread_mutex_unlock(&log->mu);
}

void audit_log_close(struct audit_log *log)
{
	if (!log)
		return;
	if (log->started) {
		pthread_mutex_lock(&log->mu);
		log->stop = true;
		pthread_cond_signal(&log->wake);
		pthread_mutex_unlock(&log->mu);
		pthread_join(log->thread, NULL);
	}
	if (log->fd >= 0) {
		fdatasync(log->fd);
		close(log->fd);
	}
	for (size_t i = 0; i < AUDIT_RING; i++)
		free(log->ring[i].line);
	pthread_mutex_destroy(&log->mu);
	pthread_cond_destroy(&log->wake);
	pthread_cond_destroy(&log->done);
	free(log->dir);
	free(log->path);
	free(log);
}

const char *audit_log_path(const struct audit_log *log)
{
	return log->path;
}

int audit_log_keep(const struct audit_log *log)
{
	return log->set.keep;
}

uint64_t audit_log_last_seq(struct audit_log *log)
{
	pthread_mutex_lock(&log->mu);
	uint64_t s = log->next_seq - 1;
	pthread_mutex_unlock(&log->mu);
	return s;
}

uint64_t audit_log_ring(struct audit_log *log, uint64_t after, uint64_t upto,
			void (*fn)(const char *line, uint64_t seq, void *arg), void *arg)
{
	pthread_mutex_lock(&log->mu);
	uint64_t first = log->head > AUDIT_RING ? log->head - AUDIT_RING : 0;
	uint64_t oldest = log->head > first ? log->ring[first % AUDIT_RING].seq : 0;
	for (uint64_t i = first; i < log->head; i++) {
		const struct slot *s = &log->ring[i % AUDIT_RING];
		if (s->seq > after && s->seq <= upto)
			fn(s->line, s->seq, arg);
	}
	pthread_mutex_unlock(&log->mu);
	return oldest;
}
