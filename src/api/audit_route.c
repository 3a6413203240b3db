/*
 * The audit records of API requests (docs/audit.md) and GET /v1/audit.
 *
 * Every request other than a GET gets a record when it is dispatched
 * (api_audit_begin, from server.c with the peer's credentials the kernel
 * gave), filled by the router (route, container) and by handlers that have
 * more to say (exec's argv under AUDITCFG ex), and written when its answer
 * is known: when a reply goes out (api_reply_json, api_reply_empty), when a
 * streamed reply starts, or, for a client that went away first, when the
 * operation it started ends (the pending record carries it on).
 *
 * In-flight records are keyed by their request while the request lives, and
 * by the pending record once the client is gone; a request pointer freed
 * and reused finds its stale record written as unanswered first.
 */
#include "api.h"
#include "core/audit_rec.h"
#include "daemon/audit_log.h"
#include "util/json.h"
#include "util/util.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct inflight {
	struct daemon *d;
	const void *key; /* the request, or its pending record once the client is gone */
	json_t *rec;
	int64_t mono0;
	struct inflight *next;
};

static struct inflight *inflight;

static struct inflight **find(const void *key)
{
	for (struct inflight **p = &inflight; *p; p = &(*p)->next)
		if ((*p)->key == key)
			return p;
	return NULL;
}

/* Write the record of *pp with its result and forget it. */
static void finish(struct inflight **pp, int status, const json_t *body, const char *note)
{
	struct inflight *f = *pp;
	*pp = f->next;
	if (status)
		json_object_set_new(f->rec, "status", json_integer(status));
	else
		json_object_set_new(f->rec, "status", json_null());
	const json_t *e = body ? json_object_get(body, "error") : NULL;
	const char *msg = e ? json_str(e, "message") : NULL;
	if (msg)
		json_object_set_new(f->rec, "error", json_string(msg));
	else if (note)
		json_object_set_new(f->rec, "error", json_string(note));
	if (body && json_is_integer(json_object_get(body, "exit_code")))
		json_object_set(f->rec, "exit_code", json_object_get(body, "exit_code"));
	json_object_set_new(f->rec, "duration_ms",
			    json_integer((time_mono_ns() - f->mono0) / 1000000));
	daemon_audit(f->d, f->rec);
	free(f);
}

/* A header value fit for a record: printable ASCII, at most max bytes. */
static json_t *header_text(struct evhttp_request *req, const char *name, size_t max)
{
	const char *v = evhttp_find_header(evhttp_request_get_input_headers(req), name);
	if (!v || !*v)
		return NULL;
	size_t n = strnlen(v, max);
	char out[256];
	if (n >= sizeof(out))
		n = sizeof(out) - 1;
	for (size_t i = 0; i < n; i++)
		out[i] = v[i] >= 0x20 && v[i] < 0x7f ? v[i] : '?';
	out[n] = '\0';
	return json_string(out);
}

static bool request_id_ok(const char *s)
{
	size_t n = strlen(s);
	return n >= 1 && n <= 64 &&
	       strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == n;
}

/* The "name" of a JSON body, when the body is a small JSON object that has one. */
static json_t *body_name(struct evhttp_request *req)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t n = evbuffer_get_length(in);
	if (n == 0 || n > (64 << 10))
		return NULL;
	autofree char *text = xmalloc(n + 1);
	evbuffer_copyout(in, text, n);
	text[n] = '\0';
	if (text[strspn(text, " \t\r\n")] != '{')
		return NULL;
	json_t *j = json_loads(text, 0, NULL);
	const char *name = j ? json_str(j, "name") : NULL;
	json_t *v = name ? json_string(name) : NULL;
	json_decref(j);
	return v;
}

void api_audit_begin(struct daemon *d, struct evhttp_request *req, uid_t uid, gid_t gid, pid_t pid)
{
	enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
	if (cmd == EVHTTP_REQ_GET || cmd == EVHTTP_REQ_HEAD || !d->audit)
		return;
	struct inflight **old = find(req);
	if (old)
		finish(old, 0, NULL, "the request ended without an answer the daemon saw");
	static uint64_t counter;
	const char *method = cmd == EVHTTP_REQ_POST	? "POST"
			     : cmd == EVHTTP_REQ_PATCH	? "PATCH"
			     : cmd == EVHTTP_REQ_DELETE ? "DELETE"
							: "OTHER";
	const char *raw = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
	autofree char *path = evhttp_uridecode(raw ? raw : "/", 0, NULL);
	json_t *rec = json_pack("{s:s,s:I,s:I,s:I}", "event", "api", "uid", (json_int_t)uid, "gid",
				(json_int_t)gid, "pid", (json_int_t)pid);
	json_t *client = header_text(req, "X-Clbsd-Client", 64);
	if (!client)
		client = header_text(req, "User-Agent", 64);
	json_object_set_new(rec, "client", client ? client : json_null());
	json_object_set_new(rec, "method", json_string(method));
	json_object_set_new(rec, "path", json_string(path));
	json_object_set_new(rec, "container", json_null());
	const char *rid = evhttp_find_header(evhttp_request_get_input_headers(req), "X-Request-Id");
	char gen[48];
	if (!rid || !request_id_ok(rid)) {
		snprintf(gen, sizeof(gen), "%llx-%llu",
			 (unsigned long long)(d->started_ns / 1000000),
			 (unsigned long long)++counter);
		rid = gen;
	}
	json_object_set_new(rec, "request_id", json_string(rid));
	evhttp_add_header(evhttp_request_get_output_headers(req), "X-Request-Id", rid);
	json_t *name = body_name(req);
	if (name)
		json_object_set_new(rec, "name", name);
	struct inflight *f = xcalloc(1, sizeof(*f));
	*f = (struct inflight){
		.d = d, .key = req, .rec = rec, .mono0 = time_mono_ns(), .next = inflight};
	inflight = f;
}

void api_audit_route(struct evhttp_request *req, const char *pattern, const struct api_args *a)
{
	struct inflight **pp = find(req);
	if (!pp)
		return;
	json_t *rec = (*pp)->rec;
	json_object_set_new(rec, "route", json_string(pattern));
	const char *name = api_param(a, "name");
	const char *ref = api_param(a, "ref");
	if (name && strncmp(pattern, "/v1/containers/", 15) == 0)
		json_object_set_new(rec, "container", json_string(name));
	else if (name && strncmp(pattern, "/v1/declarations/", 17) == 0)
		json_object_set_new(rec, "container", json_string(name));
	else if (name)
		json_object_set_new(rec, "target", json_string(name));
	if (ref)
		json_object_set_new(rec, "image", json_string(ref));
	/* What a create names is the container it makes. */
	json_t *bn = json_object_get(rec, "name");
	if (bn &&
	    (strcmp(pattern, "/v1/containers") == 0 || strcmp(pattern, "/v1/declarations") == 0))
		json_object_set(rec, "container", bn);
}

void api_audit_set(struct evhttp_request *req, const char *key, json_t *v)
{
	struct inflight **pp = find(req);
	if (pp)
		json_object_set_new((*pp)->rec, key, v);
	else
		json_decref(v);
}

void api_audit_reply(struct evhttp_request *req, int status, const json_t *body)
{
	struct inflight **pp = find(req);
	if (pp)
		finish(pp, status, body, NULL);
}

void api_audit_dispatched(struct evhttp_request *req)
{
	struct inflight **pp = find(req);
	/* Still here and alive (no reply yet): a streamed reply may have started. */
	if (pp && evhttp_request_get_response_code(req) > 0)
		finish(pp, evhttp_request_get_response_code(req), NULL, NULL);
}

void api_audit_detach(struct evhttp_request *req, const void *key)
{
	struct inflight **pp = find(req);
	if (pp)
		(*pp)->key = key;
}

void api_audit_keyed(const void *key, int status, const json_t *body)
{
	struct inflight **pp = find(key);
	if (pp)
		finish(pp, status, body,
		       status ? "the client went away before the answer"
			      : "the client went away; the operation's result is unknown");
}

void api_audit_end(const void *key, int status, const json_t *body, const char *note)
{
	struct inflight **pp = find(key);
	if (pp)
		finish(pp, status, body, note);
}

void api_audit_abandon(struct evhttp_request *req)
{
	struct inflight **pp = find(req);
	if (pp)
		finish(pp, evhttp_request_get_response_code(req), NULL,
		       "the client went away before the answer");
}

/* ---- requests refused at accept (403) ---- */

/*
 * At most REFUSED_PER_SEC records a second per uid; more in that second are
 * counted and said in one record with "suppressed" (when the next second's
 * first comes, or a timer a second later), so a flood of refused
 * connections cannot fill the disk, and none passes unsaid.
 */
#define REFUSED_PER_SEC 10
#define REFUSED_UIDS	32

static struct refused {
	bool used;
	uid_t uid;
	int64_t t0; /* start of its second (monotonic) */
	unsigned n; /* recorded in that second */
	uint64_t suppressed;
} refused[REFUSED_UIDS];
static struct event *refused_ev;

static json_t *refused_uid(uid_t uid)
{
	return uid == (uid_t)-1 ? json_null() : json_integer((json_int_t)uid);
}

static void refused_summary(struct daemon *d, struct refused *s)
{
	if (!s->suppressed)
		return;
	json_t *f = json_pack("{s:s,s:o,s:I,s:s}", "event", "api.refused", "uid",
			      refused_uid(s->uid), "suppressed", (json_int_t)s->suppressed, "error",
			      "more refused requests of this uid in one second: counted, not "
			      "recorded one by one");
	daemon_audit(d, f);
	s->suppressed = 0;
}

static void on_refused_tick(evutil_socket_t fd, short what, void *arg)
{
	struct daemon *d = arg;
	int64_t now = time_mono_ns();
	bool more = false;
	for (size_t i = 0; i < REFUSED_UIDS; i++) {
		struct refused *s = &refused[i];
		if (!s->used || !s->suppressed)
			continue;
		if (now - s->t0 >= 1000000000LL)
			refused_summary(d, s);
		else
			more = true;
	}
	struct timeval sec = {1, 0};
	if (more)
		evtimer_add(refused_ev, &sec);
}

void api_audit_refused(struct daemon *d, uid_t uid, gid_t gid, pid_t pid, int status,
		       const char *why)
{
	if (!d->audit)
		return;
	int64_t now = time_mono_ns();
	struct refused *s = NULL, *victim = &refused[0];
	for (size_t i = 0; i < REFUSED_UIDS && !s; i++) {
		struct refused *t = &refused[i];
		if (t->used && t->uid == uid)
			s = t;
		else if (!t->used || (victim->used && t->t0 < victim->t0))
			victim = t;
	}
	if (!s) {
		s = victim;
		if (s->used)
			refused_summary(d, s);
		*s = (struct refused){.used = true, .uid = uid, .t0 = now};
	}
	if (now - s->t0 >= 1000000000LL) {
		refused_summary(d, s);
		s->t0 = now;
		s->n = 0;
	}
	if (s->n >= REFUSED_PER_SEC) {
		s->suppressed++;
		if (!refused_ev)
			refused_ev = evtimer_new(d->base, on_refused_tick, d);
		struct timeval sec = {1, 0};
		if (!evtimer_pending(refused_ev, NULL))
			evtimer_add(refused_ev, &sec);
		return;
	}
	s->n++;
	json_t *f = json_pack(
		"{s:s,s:o,s:o,s:o,s:i,s:s}", "event", "api.refused", "uid", refused_uid(uid), "gid",
		uid == (uid_t)-1 ? json_null() : json_integer((json_int_t)gid), "pid",
		uid == (uid_t)-1 || !pid ? json_null() : json_integer((json_int_t)pid), "status",
		status, "error", why);
	daemon_audit(d, f);
}

void api_audit_release_all(void)
{
	while (inflight)
		finish(&inflight, 0, NULL, "the daemon shut down before the answer");
	if (refused_ev) {
		/* What was counted still gets said (the log is still open). */
		for (size_t i = 0; i < REFUSED_UIDS; i++)
			if (refused[i].used)
				refused_summary(event_get_callback_arg(refused_ev), &refused[i]);
		event_free(refused_ev);
		refused_ev = NULL;
	}
	memset(refused, 0, sizeof(refused));
}

/* ---- GET /v1/audit[?since=TIME][&container=NAME][&follow=1] ---- */

/*
 * The files are opened, read and parsed on a worker (work_submit), a slice
 * at a time, so the loop never waits for the disk nor parses more than the
 * ring's lines; the ring's lines are copied out under its lock and parsed
 * after. Records a follower could no longer get (they left the ring before
 * it looked) are announced by an "audit.gap" line, never skipped silently.
 */

#define READ_CHUNK (64 << 10)
#define READ_SLICE (1 << 20) /* bytes a worker job reads before the loop sends them */

struct areader {
	struct daemon *d;
	struct evhttp_request *req;
	int64_t since;
	char *container;
	bool follow, live;
	bool opened;	 /* the files are open (by the first job) */
	bool busy, gone; /* a job runs; the client went away meanwhile */
	char *base;	 /* the newest file's path */
	int keep;
	int fds[AUDIT_KEEP_MAX + 1];
	int nfd, cur;
	struct buf part;      /* a line read in part */
	uint64_t upto;	      /* the last seq queued when the request came */
	uint64_t last;	      /* the last seq read or sent */
	struct evbuffer *out; /* lines for the next chunk */
	struct event *tick;
};

static void reader_free(struct areader *r)
{
	for (int i = r->cur; i < r->nfd; i++)
		close(r->fds[i]);
	if (r->tick)
		event_free(r->tick);
	evbuffer_free(r->out);
	buf_release(&r->part);
	free(r->container);
	free(r->base);
	free(r);
}

/* One record line: sent when it is new (seq) and passes the filters. */
static void take_line(struct areader *r, const char *line, size_t n, uint64_t max)
{
	json_t *j = json_loadb(line, n, 0, NULL);
	if (!j)
		return; /* half a line a crash left behind */
	int64_t seq = json_int(j, "seq", 0);
	if (seq > 0 && (uint64_t)seq > r->last && (uint64_t)seq <= max) {
		r->last = (uint64_t)seq;
		if (audit_rec_wanted(j, r->since, r->container)) {
			evbuffer_add(r->out, line, n);
			evbuffer_add(r->out, "\n", 1);
		}
	}
	json_decref(j);
}

/* Under the ring's lock: only copy (line, newline), parse later. */
static void from_ring(const char *line, uint64_t seq, void *arg)
{
	buf_adds(arg, line);
	buf_add(arg, "\n", 1);
}

static void flush_out(struct areader *r)
{
	if (evbuffer_get_length(r->out))
		evhttp_send_reply_chunk(r->req, r->out);
}

static void on_closed(struct evhttp_connection *conn, void *arg)
{
	struct areader *r = arg;
	api_request_abandon(r->req);
	if (r->busy)
		r->gone = true; /* the job's done() frees it */
	else
		reader_free(r);
}

/* Worker: open the files (oldest first; a rotated one last written before since holds nothing wanted). */
static void open_files(struct areader *r)
{
	r->opened = true;
	for (int i = r->keep; i >= 0; i--) {
		autofree char *p = audit_file_path(r->base, i);
		int fd = open(p, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		if (fd < 0)
			continue;
		struct stat st;
		if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
			close(fd);
			continue;
		}
		if (i > 0 && r->since &&
		    (int64_t)st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec < r->since) {
			/* Skipped, yet its records are not missing: they are older than wanted. */
			uint64_t s = audit_last_seq_of(p);
			if (s > r->last && s <= r->upto)
				r->last = s;
			close(fd);
			continue;
		}
		r->fds[r->nfd++] = fd;
	}
}

/* Worker: the next slice of the files into r->out. Touches r only (busy). */
static void read_run(void *arg)
{
	struct areader *r = arg;
	if (!r->opened)
		open_files(r);
	size_t got = 0;
	while (r->cur < r->nfd && got < READ_SLICE) {
		char buf[READ_CHUNK];
		ssize_t n = read(r->fds[r->cur], buf, sizeof(buf));
		if (n <= 0) {
			close(r->fds[r->cur++]);
			buf_reset(&r->part);
			continue;
		}
		got += (size_t)n;
		buf_add(&r->part, buf, (size_t)n);
		size_t start = 0;
		const char *nl;
		while ((nl = memchr(r->part.data + start, '\n', r->part.len - start))) {
			size_t len = (size_t)(nl - (r->part.data + start));
			take_line(r, r->part.data + start, len, r->upto);
			start += len + 1;
		}
		buf_consume(&r->part, start);
	}
}

static void read_done(void *arg)
{
	struct areader *r = arg;
	r->busy = false;
	if (r->gone) {
		reader_free(r);
		return;
	}
	flush_out(r);
	struct timeval soon = {0, 0};
	evtimer_add(r->tick, &soon);
}

/* The ring's records after r->last (up to upto), and a gap line for those it no longer has. */
static void take_ring(struct areader *r, uint64_t upto)
{
	struct buf lines = BUF_INIT;
	uint64_t oldest = audit_log_ring(r->d->audit, r->last, upto, from_ring, &lines);
	if (oldest > r->last + 1 && oldest - 1 <= upto) {
		/* Out of the ring before this reader got to them (a burst, a rotation). */
		char ts[32];
		audit_time_text(time_now_ns(), ts, sizeof(ts));
		json_t *g = json_pack("{s:s,s:s,s:I,s:I,s:I}", "time", ts, "event", "audit.gap",
				      "missed", (json_int_t)(oldest - 1 - r->last), "after",
				      (json_int_t)r->last, "before", (json_int_t)oldest);
		char *t = json_dumps(g, JSON_COMPACT | JSON_PRESERVE_ORDER);
		evbuffer_add(r->out, t, strlen(t));
		evbuffer_add(r->out, "\n", 1);
		free(t);
		json_decref(g);
		r->last = oldest - 1;
	}
	size_t start = 0;
	const char *nl;
	while (lines.len && (nl = memchr(lines.data + start, '\n', lines.len - start))) {
		size_t len = (size_t)(nl - (lines.data + start));
		take_line(r, lines.data + start, len, UINT64_MAX);
		start += len + 1;
	}
	buf_release(&lines);
}

static void step(evutil_socket_t fd, short what, void *arg)
{
	struct areader *r = arg;
	struct timeval later = {0, 250000};
	if (r->busy)
		return;
	if (api_output_pending(r->req) > API_STREAM_HIGH_WATER) {
		struct timeval wait = {0, 50000};
		evtimer_add(r->tick, &wait);
		return;
	}
	if (!r->opened || r->cur < r->nfd) {
		r->busy = true;
		work_submit(r->d, read_run, read_done, r);
		return;
	}
	/* Queued but maybe not on disk yet; then, following, whatever comes. */
	take_ring(r, r->live ? UINT64_MAX : r->upto);
	flush_out(r);
	if (!r->follow) {
		evhttp_connection_set_closecb(evhttp_request_get_connection(r->req), NULL, NULL);
		evhttp_send_reply_end(r->req);
		reader_free(r);
		return;
	}
	r->live = true;
	evtimer_add(r->tick, &later);
}

void api_audit(struct daemon *d, struct evhttp_request *req, const struct api_args *a)
{
	if (!d->audit) {
		api_reply_error(req, 503, "unavailable",
				"the audit log is not open (the daemon's log says why)");
		return;
	}
	autofree char *since = api_query(req, "since");
	int64_t since_ns = 0;
	if (since && time_parse_rfc3339(since, &since_ns) < 0) {
		api_reply_error(req, 400, "invalid_argument",
				"since=%s is not an RFC 3339 time like 2026-12-07T17:00:00Z",
				since);
		return;
	}
	char *container = api_query(req, "container");
	if (container && !valid_name(container)) {
		api_reply_error(req, 400, "invalid_argument",
				"container=%s is not a container name", container);
		free(container);
		return;
	}
	struct areader *r = xcalloc(1, sizeof(*r));
	r->d = d;
	r->req = req;
	r->since = since_ns;
	r->container = container;
	r->follow = api_query_bool(req, "follow");
	r->out = evbuffer_new();
	r->upto = audit_log_last_seq(d->audit);
	r->base = xstrdup(audit_log_path(d->audit));
	r->keep = audit_log_keep(d->audit);
	r->tick = evtimer_new(d->base, step, r);
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
			  "application/x-ndjson");
	evhttp_send_reply_start(req, 200, "OK");
	evhttp_connection_set_closecb(evhttp_request_get_connection(req), on_closed, r);
	struct timeval now = {0, 0};
	evtimer_add(r->tick, &now);
}
