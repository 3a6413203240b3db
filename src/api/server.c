#include "api.h"
#include "req_decode.h"
#include "sys/sys.h"
#include "util/json.h"
#include "util/trace.h"
#include "util/util.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/listener.h>
#include <grp.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

static int status_for(enum clbsd_err_kind k, const char **code)
{
	switch (k) {
	case CLBSD_E_INVALID:
		*code = "invalid_argument";
		return 400;
	case CLBSD_E_NOTFOUND:
		*code = "not_found";
		return 404;
	case CLBSD_E_CONFLICT:
		*code = "conflict";
		return 409;
	case CLBSD_E_FORBIDDEN:
		*code = "forbidden";
		return 403;
	case CLBSD_E_TIMEOUT:
		*code = "timeout";
		return 504;
	case CLBSD_E_UNAVAIL:
		*code = "unavailable";
		return 503;
	case CLBSD_E_NONE:
	case CLBSD_E_INTERNAL:
		break;
	}
	*code = "internal";
	return 500;
}

static const char *reason(int status)
{
	switch (status) {
	case 200:
		return "OK";
	case 201:
		return "Created";
	case 204:
		return "No Content";
	case 400:
		return "Bad Request";
	case 403:
		return "Forbidden";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 409:
		return "Conflict";
	case 413:
		return "Payload Too Large";
	case 431:
		return "Request Header Fields Too Large";
	case 503:
		return "Service Unavailable";
	case 504:
		return "Gateway Timeout";
	}
	return status >= 500 ? "Internal Server Error" : "Error";
}

void api_reply_json(struct evhttp_request *req, int status, json_t *body)
{
	char *text = json_dumps(body, JSON_COMPACT);
	struct evbuffer *out = evbuffer_new();
	evbuffer_add(out, text, strlen(text));
	evbuffer_add(out, "\n", 1);
	free(text);
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
			  "application/json");
	api_audit_reply(req, status, body);
	json_decref(body);
	evhttp_send_reply(req, status, reason(status), out);
	evbuffer_free(out);
}

void api_reply_empty(struct evhttp_request *req, int status)
{
	api_audit_reply(req, status, NULL);
	evhttp_send_reply(req, status, reason(status), NULL);
}

void api_reply_error(struct evhttp_request *req, int status, const char *code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	autofree char *msg = xvasprintf(fmt, ap);
	va_end(ap);
	api_reply_json(req, status,
		       json_pack("{s:{s:s,s:s}}", "error", "code", code, "message", msg));
}

void api_reply_err(struct evhttp_request *req, const struct clbsd_err *err)
{
	const char *code;
	int status = status_for(err->kind, &code);
	api_reply_error(req, status, code, "%s", err->msg);
}

json_t *api_body_json(struct evhttp_request *req)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t n = evbuffer_get_length(in);
	autofree char *text = xmalloc(n + 1);
	evbuffer_copyout(in, text, n);
	text[n] = '\0';
	char why[256];
	json_t *j = api_body_decode(text, n, why, sizeof(why));
	if (!j)
		api_reply_error(req, 400, "invalid_argument", "%s", why);
	return j;
}

char *api_query(struct evhttp_request *req, const char *key)
{
	return api_query_value(evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req)), key);
}

bool api_query_bool(struct evhttp_request *req, const char *key)
{
	autofree char *v = api_query(req, key);
	return api_flag_value(v);
}

int api_query_seconds(struct evhttp_request *req, const char *key, int def, int *out)
{
	autofree char *v = api_query(req, key);
	if (api_seconds_value(v, def, out) < 0) {
		api_reply_error(req, 400, "invalid_argument",
				"%s=%s is not a number of seconds between 0 and 86400", key, v);
		return -1;
	}
	return 0;
}

int api_query_fields(struct evhttp_request *req, struct api_fields *out)
{
	autofree char *v = api_query(req, "fields");
	if (!v)
		return 0;
	char why[256];
	if (api_fields_decode(v, out, why, sizeof(why)) < 0) {
		api_reply_error(req, 400, "invalid_argument", "%s", why);
		return -1;
	}
	return 1;
}

size_t api_output_pending(struct evhttp_request *req)
{
	struct evhttp_connection *conn = req ? evhttp_request_get_connection(req) : NULL;
	struct bufferevent *bev = conn ? evhttp_connection_get_bufferevent(conn) : NULL;
	return bev ? evbuffer_get_length(bufferevent_get_output(bev)) : 0;
}

/*
 * When a client goes away in the middle of a reply (EOF, a write error or a
 * timeout), evhttp 2.1 takes the unfinished request off the connection and
 * leaves it to whoever was replying, then frees the connection, which runs
 * its close callback: the request is ours to free there, or it leaks. When
 * the connection is freed with the request still on it (evhttp_free at
 * shutdown, a connection closed by the limits), evhttp frees it itself.
 */
void api_request_abandon(struct evhttp_request *req)
{
	api_audit_abandon(req);
	if (req && !evhttp_request_get_connection(req))
		evhttp_request_free(req);
}

/* ---- pending replies ---- */

static void pending_closed(struct evhttp_connection *conn, void *arg)
{
	struct api_pending *p = arg;
	p->gone = true;
	api_audit_detach(p->req, p);
	api_request_abandon(p->req);
	p->req = NULL;
}

/* Records not answered yet: what shutdown frees when their owner never does. */
static struct api_pending *pendings;

struct api_pending *api_pending_new(struct daemon *d, struct evhttp_request *req)
{
	struct api_pending *p = xcalloc(1, sizeof(*p));
	p->req = req;
	p->d = d;
	p->conn = evhttp_request_get_connection(req);
	evhttp_connection_set_closecb(p->conn, pending_closed, p);
	p->next = pendings;
	if (pendings)
		pendings->prev = p;
	pendings = p;
	return p;
}

static void pending_unlink(struct api_pending *p)
{
	if (p->prev)
		p->prev->next = p->next;
	else
		pendings = p->next;
	if (p->next)
		p->next->prev = p->prev;
}

void api_pending_free(struct api_pending *p)
{
	if (p->gone)
		api_audit_keyed(p, 0, NULL);
	if (!p->gone && p->conn)
		evhttp_connection_set_closecb(p->conn, NULL, NULL);
	pending_unlink(p);
	free(p);
}

void api_pending_release_all(void)
{
	while (pendings) {
		struct api_pending *p = pendings;
		pendings = p->next;
		free(p);
	}
}

void api_pending_json(struct api_pending *p, int status, json_t *body)
{
	if (!p->gone) {
		evhttp_connection_set_closecb(p->conn, NULL, NULL);
		api_reply_json(p->req, status, body);
		p->conn = NULL;
	} else {
		api_audit_keyed(p, status, body);
		json_decref(body);
	}
	pending_unlink(p);
	free(p);
}

void api_pending_err(struct api_pending *p, const struct clbsd_err *err)
{
	const char *code;
	int status = status_for(err->kind, &code);
	api_pending_json(p, status,
			 json_pack("{s:{s:s,s:s}}", "error", "code", code, "message", err->msg));
}

/* ---- access ---- */

/*
 * Who may talk to the socket: root, the daemon's own user, and members of group
 * clbsd (DESIGN.md). Decided from the kernel's record of the connection's
 * peer (sys_peer_cred), never from anything the peer sends.
 */
static bool peer_allowed(struct daemon *d, int fd, struct sys_peer *cred, char *who, size_t wlen)
{
	if (sys_peer_cred(fd, cred) < 0) {
		snprintf(who, wlen, "unknown peer");
		return false;
	}
	snprintf(who, wlen, "uid %u (pid %d)", cred->uid, (int)cred->pid);
	if (cred->uid == 0 || cred->uid == geteuid())
		return true;
	if (!d->api.have_gid)
		return false;
	if (cred->gid == d->api.gid)
		return true;
	struct passwd *pw = getpwuid(cred->uid);
	if (!pw)
		return false;
	int n = 64;
	gid_t groups[64];
	if (getgrouplist(pw->pw_name, pw->pw_gid, groups, &n) < 0)
		return false;
	for (int i = 0; i < n; i++)
		if (groups[i] == d->api.gid)
			return true;
	return false;
}

/* ---- connections: admission, limits, deadlines ---- */

/*
 * evhttp (libevent 2.1) reads a request as soon as it accepts the
 * connection and has no hook that sees the new fd. So the bufferevent it
 * asks us for (bevcb) is noted and a check event is activated; that event
 * runs in the same loop pass, after the accept callback returns and before
 * the loop polls again, so before a single byte of the new connection is
 * read. There the peer's credentials decide, and the connection limits.
 *
 * Each admitted connection has a record. evhttp tells nobody when it frees a
 * connection, so a record is alive while its fd still names the same socket
 * (device and inode from fstat at accept: the bufferevent closes the fd when
 * it is finalized, so until then its memory is valid) and the bufferevent's
 * callbacks still point at the connection (evhttp clears them when it frees
 * it, while the fd may stay open until the finalizer runs later in the same
 * pass). Dead records are swept lazily.
 */
struct api_conn {
	struct evhttp_connection *evcon;
	struct bufferevent *bev;
	int fd;
	dev_t dev;
	ino_t ino;
	uid_t uid;
	bool busy;	 /* a request was dispatched and its reply is not done */
	int64_t idle_ns; /* when it last became idle (accepted or reply done) */
	int64_t req_ns;	 /* when the request in flight was dispatched (its probe's duration) */
};

static struct {
	struct daemon *d;
	struct api_conn *v;
	size_t n, cap;
	struct bufferevent **fresh;
	size_t nfresh, capfresh;
	struct event *check_ev, *sweep_ev, *resume_ev;
	struct evconnlistener *lev;
	int64_t last_warn_ns, last_reap_ns;
} S;

static bool conn_alive(const struct api_conn *c)
{
	struct stat st;
	if (fstat(c->fd, &st) < 0 || st.st_dev != c->dev || st.st_ino != c->ino)
		return false;
	void *arg = NULL;
	bufferevent_getcb(c->bev, NULL, NULL, NULL, &arg);
	return arg == c->evcon;
}

static void conn_drop(size_t i)
{
	S.v[i] = S.v[--S.n];
	if (S.n == 0 && S.sweep_ev)
		evtimer_del(S.sweep_ev);
}

/* Forget records of connections evhttp has closed since. */
static void conn_reap(void)
{
	for (size_t i = 0; i < S.n;) {
		if (conn_alive(&S.v[i]))
			i++;
		else
			conn_drop(i);
	}
}

/* The live record of evcon, or NULL (a freed evcon's address may be reused). */
static struct api_conn *conn_of(struct evhttp_connection *evcon)
{
	for (size_t i = S.n; i > 0; i--)
		if (S.v[i - 1].evcon == evcon && conn_alive(&S.v[i - 1]))
			return &S.v[i - 1];
	return NULL;
}

/* Close the connection of record i, unless evhttp has already; forget the record. */
static void conn_close(size_t i, const char *why)
{
	struct api_conn c = S.v[i];
	conn_drop(i);
	if (!conn_alive(&c))
		return;
	log_debug("api", NULL, "closing the connection of uid %u: %s", c.uid, why);
	evhttp_connection_free(c.evcon);
}

/* A fixed answer written straight to a connection nobody reads from. */
static void refuse(struct evhttp_connection *evcon, int fd, int status, const char *code,
		   const char *msg)
{
	json_t *j = json_pack("{s:{s:s,s:s}}", "error", "code", code, "message", msg);
	autofree char *body = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	autofree char *text = xasprintf("HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
					"Content-Length: %zu\r\nConnection: close\r\n\r\n%s\n",
					status, reason(status), strlen(body) + 1, body);
	/* Best effort: the socket buffer of a fresh connection is empty. */
	if (send(fd, text, strlen(text), MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
		log_debug("api", NULL, "refusing a connection: %s", strerror(errno));
	evhttp_connection_free(evcon);
}

/* The oldest idle record (of uid, unless uid is (uid_t)-1), or -1. */
static ssize_t oldest_idle(uid_t uid)
{
	ssize_t best = -1;
	for (size_t i = 0; i < S.n; i++) {
		if (S.v[i].busy || (uid != (uid_t)-1 && S.v[i].uid != uid))
			continue;
		if (best < 0 || S.v[i].idle_ns < S.v[(size_t)best].idle_ns)
			best = (ssize_t)i;
	}
	return best;
}

static size_t count_uid(uid_t uid)
{
	size_t k = 0;
	for (size_t i = 0; i < S.n; i++)
		k += S.v[i].uid == uid;
	return k;
}

/*
 * Room for one more connection of uid: when a limit is reached, the oldest
 * idle connection (of that uid for its own limit) gives way, so idle or
 * half-sent requests can never lock out a client that sends a request.
 */
static bool make_room(uid_t uid)
{
	size_t uid_max = uid == 0 ? API_CONN_MAX : API_CONN_PER_UID;
	if (S.n < API_CONN_MAX && count_uid(uid) < uid_max)
		return true;
	/* Sweeping costs an fstat per connection: not for each of a flood. */
	int64_t now = time_mono_ns();
	if (now - S.last_reap_ns > 100000000LL) {
		conn_reap();
		S.last_reap_ns = now;
	}
	if (count_uid(uid) >= uid_max) {
		ssize_t i = oldest_idle(uid);
		if (i < 0)
			return false;
		conn_close((size_t)i,
			   "its uid has too many connections and it is the oldest idle one");
	}
	if (S.n >= API_CONN_MAX) {
		ssize_t i = oldest_idle((uid_t)-1);
		if (i < 0)
			return false;
		conn_close((size_t)i, "too many connections and it is the oldest idle one");
	}
	return true;
}

static void admit(struct bufferevent *bev)
{
	int fd = bufferevent_getfd(bev);
	void *arg = NULL;
	bufferevent_getcb(bev, NULL, NULL, NULL, &arg);
	struct evhttp_connection *evcon = arg;
	if (fd < 0 || !evcon || evhttp_connection_get_bufferevent(evcon) != bev)
		return; /* not (or no longer) an evhttp connection: evhttp handles it */
	struct sys_peer cred = {.uid = (uid_t)-1};
	char who[64];
	if (!peer_allowed(S.d, fd, &cred, who, sizeof(who))) {
		int64_t now = time_mono_ns();
		/* A flood of refused connections is one warning per second. */
		if (now - S.last_warn_ns > 1000000000LL) {
			log_warn("api", NULL, "refused a connection from %s", who);
			S.last_warn_ns = now;
		}
		autofree char *msg =
			xasprintf("%s may not use this socket: it needs root or group clbsd", who);
		api_audit_refused(S.d, cred.uid, cred.gid, cred.pid, 403, msg);
		refuse(evcon, fd, 403, "forbidden", msg);
		return;
	}
	struct stat st;
	if (fstat(fd, &st) < 0) {
		evhttp_connection_free(evcon);
		return;
	}
	if (!make_room(cred.uid)) {
		log_warn("api", NULL, "refused a connection from %s: %d connections are busy", who,
			 (int)S.n);
		refuse(evcon, fd, 503, "unavailable",
		       "too many connections to clbsdd are busy; try again later");
		return;
	}
	if (S.n == S.cap) {
		S.cap = S.cap ? 2 * S.cap : 64;
		S.v = xrealloc(S.v, S.cap * sizeof(*S.v));
	}
	S.v[S.n++] = (struct api_conn){
		.evcon = evcon,
		.bev = bev,
		.fd = fd,
		.dev = st.st_dev,
		.ino = st.st_ino,
		.uid = cred.uid,
		.idle_ns = time_mono_ns(),
	};
	if (!evtimer_pending(S.sweep_ev, NULL)) {
		struct timeval tv = {1, 0};
		evtimer_add(S.sweep_ev, &tv);
	}
}

static void on_check(evutil_socket_t fd, short what, void *arg)
{
	/* admit() may free connections, never a fresh one still listed. */
	for (size_t i = 0; i < S.nfresh; i++)
		admit(S.fresh[i]);
	S.nfresh = 0;
}

static struct bufferevent *new_bev(struct event_base *base, void *arg)
{
	struct bufferevent *bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
	if (!bev)
		return NULL;
	if (S.nfresh == S.capfresh) {
		S.capfresh = S.capfresh ? 2 * S.capfresh : 64;
		S.fresh = xrealloc(S.fresh, S.capfresh * sizeof(*S.fresh));
	}
	S.fresh[S.nfresh++] = bev;
	event_active(S.check_ev, EV_TIMEOUT, 0);
	return bev;
}

/* Idle connections that did not send a whole request in time are closed. */
static void on_sweep(evutil_socket_t fd, short what, void *arg)
{
	int64_t now = time_mono_ns();
	for (size_t i = 0; i < S.n;) {
		if (!conn_alive(&S.v[i])) {
			conn_drop(i);
		} else if (!S.v[i].busy &&
			   now - S.v[i].idle_ns > (int64_t)API_REQUEST_TIMEOUT_S * 1000000000LL) {
			conn_close(i, "no complete request in time");
		} else {
			i++;
		}
	}
	if (S.n) {
		struct timeval tv = {1, 0};
		evtimer_add(S.sweep_ev, &tv);
	}
}

/* For the probes: evhttp admits these four methods only (api_listen). */
static const char *method_text(struct evhttp_request *req)
{
	switch (evhttp_request_get_command(req)) {
	case EVHTTP_REQ_GET:
		return "GET";
	case EVHTTP_REQ_POST:
		return "POST";
	case EVHTTP_REQ_PATCH:
		return "PATCH";
	default:
		return "DELETE";
	}
}

static void on_reply_done(struct evhttp_request *req, void *arg)
{
	/* A request counts once its reply is written whole (docs/metrics.md). */
	const char *method, *rt;
	api_route_label(req, &method, &rt);
	metrics_api_request(S.d, method, rt, evhttp_request_get_response_code(req));
	struct api_conn *c = conn_of(evhttp_request_get_connection(req));
	if (c) {
		c->busy = false;
		c->idle_ns = time_mono_ns();
		TRACE4(api__request__done, method_text(req), evhttp_request_get_uri(req),
		       evhttp_request_get_response_code(req), c->idle_ns - c->req_ns);
	}
}

static void on_resume(evutil_socket_t fd, short what, void *arg)
{
	if (S.lev)
		evconnlistener_enable(S.lev);
}

/*
 * accept() failed. Out of fds (EMFILE, ENFILE) or memory, the listening socket
 * stays readable and retrying at once would spin: stop accepting for a
 * moment, and let the oldest idle connections go to make room.
 */
#define API_ACCEPT_EVICT 32
static void on_accept_error(struct evconnlistener *lev, void *arg)
{
	int e = errno;
	int64_t now = time_mono_ns();
	if (now - S.last_warn_ns > 1000000000LL) {
		log_warn("api", NULL, "accept on %s: %s; pausing new connections for %d ms",
			 S.d->socket, strerror(e), API_ACCEPT_BACKOFF_MS);
		S.last_warn_ns = now;
	}
	evconnlistener_disable(lev);
	conn_reap();
	/* Enough room for the next few waiting in the backlog. */
	for (int k = 0; k < API_ACCEPT_EVICT; k++) {
		ssize_t i = oldest_idle((uid_t)-1);
		if (i < 0)
			break;
		conn_close((size_t)i, "the daemon is out of file descriptors");
	}
	struct timeval tv = {0, API_ACCEPT_BACKOFF_MS * 1000};
	evtimer_add(S.resume_ev, &tv);
}

/* ---- routing ---- */

static void route(struct evhttp_request *req, void *arg)
{
	struct daemon *d = arg;
	char who[64];
	struct sys_peer cred = {.uid = (uid_t)-1};
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);
	struct bufferevent *bev = evhttp_connection_get_bufferevent(evcon);
	/* Checked at accept already; again here, as the line of last resort. */
	if (!peer_allowed(d, bev ? bufferevent_getfd(bev) : -1, &cred, who, sizeof(who))) {
		log_warn("api", NULL, "refused request from %s", who);
		autofree char *msg =
			xasprintf("%s may not use this socket: it needs root or group clbsd", who);
		api_audit_refused(d, cred.uid, cred.gid, cred.pid, 403, msg);
		api_reply_error(req, 403, "forbidden", "%s", msg);
		return;
	}
	/* Busy until the reply is written: no deadline, never evicted. */
	struct api_conn *c = conn_of(evcon);
	if (c) {
		c->busy = true;
		c->req_ns = time_mono_ns();
	}
	/* Counted in the metrics when the reply is written (on_reply_done). */
	evhttp_request_set_on_complete_cb(req, on_reply_done, NULL);
	TRACE2(api__request__start, method_text(req), evhttp_request_get_uri(req));
	api_audit_begin(d, req, cred.uid, cred.gid, cred.pid);
	api_dispatch(d, req);
	api_audit_dispatched(req);
}

int api_listen(struct daemon *d, struct clbsd_err *err)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (strlen(d->socket) >= sizeof(sa.sun_path))
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, ENAMETOOLONG,
					"socket path %s is longer than %zu bytes", d->socket,
					sizeof(sa.sun_path) - 1);
	strcpy(sa.sun_path, d->socket);
	autofree char *dir = xstrdup(d->socket);
	char *slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = '\0';
		if (fs_mkdir_p(dir, 0755, err) < 0)
			return -err->code;
	}
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "socket");
	/* A socket file nobody answers on is stale; a live one is another daemon. */
	int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (probe >= 0 && connect(probe, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
		close(probe);
		close(fd);
		return clbsd_err_setmsg(err, CLBSD_E_CONFLICT, EADDRINUSE,
					"another clbsdd is already serving %s", d->socket);
	}
	if (probe >= 0)
		close(probe);
	unlink(d->socket);
	mode_t old = umask(0117);
	int r = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (r < 0) {
		int e = errno;
		close(fd);
		return clbsd_err_set(err, CLBSD_E_INTERNAL, e, "bind %s", d->socket);
	}
	struct group *gr = getgrnam("clbsd");
	if (gr) {
		d->api.gid = gr->gr_gid;
		d->api.have_gid = true;
		if (chown(d->socket, 0, gr->gr_gid) < 0)
			log_warn("api", NULL, "chown %s: %s", d->socket, strerror(errno));
	}
	chmod(d->socket, 0660);
	if (listen(fd, 512) < 0) {
		int e = errno;
		close(fd);
		return clbsd_err_set(err, CLBSD_E_INTERNAL, e, "listen %s", d->socket);
	}
	d->api.http = evhttp_new(d->base);
	evhttp_set_gencb(d->api.http, route, d);
	/* Limits (docs/api.md): evhttp answers 413 past them and closes. */
	evhttp_set_max_headers_size(d->api.http, API_HEADER_MAX);
	evhttp_set_max_body_size(d->api.http, API_BODY_MAX);
	evhttp_set_allowed_methods(d->api.http, EVHTTP_REQ_GET | EVHTTP_REQ_POST |
							EVHTTP_REQ_DELETE | EVHTTP_REQ_PATCH);
	/* Per read or write: a stream may wait long for its reader. */
	evhttp_set_timeout(d->api.http, 3600);
	S.d = d;
	S.check_ev = event_new(d->base, -1, 0, on_check, NULL);
	S.sweep_ev = evtimer_new(d->base, on_sweep, NULL);
	S.resume_ev = evtimer_new(d->base, on_resume, NULL);
	evhttp_set_bevcb(d->api.http, new_bev, NULL);
	struct evhttp_bound_socket *bound = evhttp_accept_socket_with_handle(d->api.http, fd);
	if (!bound) {
		close(fd);
		return clbsd_err_setmsg(err, CLBSD_E_INTERNAL, EIO, "serve %s", d->socket);
	}
	S.lev = evhttp_bound_socket_get_listener(bound);
	evconnlistener_set_error_cb(S.lev, on_accept_error);
	d->api.listen_fd = fd;
	return 0;
}

void api_close(struct daemon *d)
{
	api_audit_release_all();
	if (d->api.http) {
		/*
		 * Frees every connection; each one's close callback frees the
		 * stream or pending record on it, and evhttp the requests still
		 * on them (api_request_abandon frees those it left earlier).
		 */
		evhttp_free(d->api.http);
		d->api.http = NULL;
		unlink(d->socket);
	}
	if (S.check_ev) {
		event_free(S.check_ev);
		event_free(S.sweep_ev);
		event_free(S.resume_ev);
	}
	free(S.v);
	free(S.fresh);
	memset(&S, 0, sizeof(S));
}
