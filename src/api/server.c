#include "api.h"
#include "util/json.h"
#include "util/util.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <sys/queue.h>
#include <event2/keyvalq_struct.h>
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
	json_decref(body);
	struct evbuffer *out = evbuffer_new();
	evbuffer_add(out, text, strlen(text));
	evbuffer_add(out, "\n", 1);
	free(text);
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
			  "application/json");
	evhttp_send_reply(req, status, reason(status), out);
	evbuffer_free(out);
}

void api_reply_empty(struct evhttp_request *req, int status)
{
	evhttp_send_reply(req, status, reason(status), NULL);
}

void api_reply_error(struct evhttp_request *req, int status, const char *code, const char *fmt,
		     ...)
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
	if (n == 0)
		return json_object();
	json_error_t je;
	json_t *j = json_loads(text, 0, &je);
	if (!j) {
		api_reply_error(req, 400, "invalid_argument", "request body is not JSON: %d:%d: %s",
				je.line, je.column, je.text);
		return NULL;
	}
	return j;
}

char *api_query(struct evhttp_request *req, const char *key)
{
	const char *q = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req));
	if (!q)
		return NULL;
	struct evkeyvalq kv;
	TAILQ_INIT(&kv);
	if (evhttp_parse_query_str(q, &kv) < 0)
		return NULL;
	const char *v = evhttp_find_header(&kv, key);
	char *r = v ? xstrdup(v) : NULL;
	evhttp_clear_headers(&kv);
	return r;
}

bool api_query_bool(struct evhttp_request *req, const char *key)
{
	autofree char *v = api_query(req, key);
	return v && (strcmp(v, "1") == 0 || strcmp(v, "true") == 0 || strcmp(v, "yes") == 0);
}

/* ---- pending replies ---- */

static void pending_closed(struct evhttp_connection *conn, void *arg)
{
	struct api_pending *p = arg;
	p->gone = true;
	p->req = NULL;
}

struct api_pending *api_pending_new(struct daemon *d, struct evhttp_request *req)
{
	struct api_pending *p = xcalloc(1, sizeof(*p));
	p->req = req;
	p->d = d;
	p->conn = evhttp_request_get_connection(req);
	evhttp_connection_set_closecb(p->conn, pending_closed, p);
	return p;
}

void api_pending_free(struct api_pending *p)
{
	if (!p->gone && p->conn)
		evhttp_connection_set_closecb(p->conn, NULL, NULL);
	free(p);
}

void api_pending_json(struct api_pending *p, int status, json_t *body)
{
	if (!p->gone) {
		evhttp_connection_set_closecb(p->conn, NULL, NULL);
		api_reply_json(p->req, status, body);
		p->conn = NULL;
	} else {
		json_decref(body);
	}
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

static bool peer_allowed(struct daemon *d, struct evhttp_request *req, char *who, size_t wlen)
{
	struct evhttp_connection *conn = evhttp_request_get_connection(req);
	struct bufferevent *bev = evhttp_connection_get_bufferevent(conn);
	int fd = bev ? bufferevent_getfd(bev) : -1;
	struct ucred cred;
	socklen_t len = sizeof(cred);
	if (fd < 0 || getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
		snprintf(who, wlen, "unknown peer");
		return false;
	}
	snprintf(who, wlen, "uid %u (pid %d)", cred.uid, (int)cred.pid);
	if (cred.uid == 0 || cred.uid == geteuid())
		return true;
	if (!d->have_api_gid)
		return false;
	if (cred.gid == d->api_gid)
		return true;
	struct passwd *pw = getpwuid(cred.uid);
	if (!pw)
		return false;
	int n = 64;
	gid_t groups[64];
	if (getgrouplist(pw->pw_name, pw->pw_gid, groups, &n) < 0)
		return false;
	for (int i = 0; i < n; i++)
		if (groups[i] == d->api_gid)
			return true;
	return false;
}

/* ---- routing ---- */

static void route(struct evhttp_request *req, void *arg)
{
	struct daemon *d = arg;
	char who[64];
	if (!peer_allowed(d, req, who, sizeof(who))) {
		log_warn("api", NULL, "refused request from %s", who);
		api_reply_error(req, 403, "forbidden",
				"%s may not use this socket: it needs root or group clbsd", who);
		return;
	}
	const char *raw = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
	autofree char *path = evhttp_uridecode(raw ? raw : "/", 0, NULL);
	enum evhttp_cmd_type m = evhttp_request_get_command(req);
	log_debug("api", NULL, "%s %s", m == EVHTTP_REQ_GET ? "GET" : m == EVHTTP_REQ_POST ? "POST"
								   : "DELETE",
		  path);
	if (strncmp(path, "/v1/", 4) != 0) {
		api_reply_error(req, 404, "not_found",
				"no such endpoint %s (this daemon speaks /v1/...)", path);
		return;
	}
	char *p = path + 4;
	/* Split into collection / id / action. */
	char *coll = p;
	char *id = NULL, *action = NULL;
	char *slash = strchr(coll, '/');
	if (slash) {
		*slash = '\0';
		id = slash + 1;
	}
	if (strcmp(coll, "images") == 0) {
		/* Image refs may contain '/': the whole rest is the ref. */
		api_images(d, req, id && *id ? id : NULL);
		return;
	}
	if (id) {
		slash = strchr(id, '/');
		if (slash) {
			*slash = '\0';
			action = slash + 1;
		}
		if (!*id)
			id = NULL;
	}
	if (strcmp(coll, "info") == 0 && !id) {
		if (m != EVHTTP_REQ_GET)
			goto method;
		api_info(d, req);
	} else if (strcmp(coll, "containers") == 0) {
		api_containers(d, req, id, action);
	} else if (strcmp(coll, "build") == 0 && !id) {
		if (m != EVHTTP_REQ_POST)
			goto method;
		api_build(d, req);
	} else if (strcmp(coll, "networks") == 0 && !action) {
		api_networks(d, req, id);
	} else if (strcmp(coll, "import") == 0 && !id) {
		if (m != EVHTTP_REQ_POST)
			goto method;
		api_import(d, req);
	} else if (strcmp(coll, "stats") == 0 && !id) {
		if (m != EVHTTP_REQ_GET)
			goto method;
		api_stats_all(d, req);
	} else if (strcmp(coll, "plan") == 0 && !id) {
		if (m != EVHTTP_REQ_GET)
			goto method;
		api_plan(d, req);
	} else if (strcmp(coll, "apply") == 0 && !id) {
		if (m != EVHTTP_REQ_POST)
			goto method;
		api_apply(d, req);
	} else if (strcmp(coll, "status") == 0 && !id) {
		if (m != EVHTTP_REQ_GET)
			goto method;
		api_status(d, req);
	} else if (strcmp(coll, "events") == 0 && !id) {
		if (m != EVHTTP_REQ_GET)
			goto method;
		api_events(d, req);
	} else {
		api_reply_error(req, 404, "not_found", "no such endpoint %s", path);
	}
	return;
method:
	api_reply_error(req, 405, "invalid_argument", "method not allowed on %s", path);
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
		d->api_gid = gr->gr_gid;
		d->have_api_gid = true;
		if (chown(d->socket, 0, gr->gr_gid) < 0)
			log_warn("api", NULL, "chown %s: %s", d->socket, strerror(errno));
	}
	chmod(d->socket, 0660);
	if (listen(fd, 64) < 0) {
		int e = errno;
		close(fd);
		return clbsd_err_set(err, CLBSD_E_INTERNAL, e, "listen %s", d->socket);
	}
	d->http = evhttp_new(d->base);
	evhttp_set_gencb(d->http, route, d);
	evhttp_set_max_body_size(d->http, 4 << 20);
	evhttp_set_allowed_methods(d->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_DELETE);
	evhttp_set_timeout(d->http, 3600);
	if (!evhttp_accept_socket_with_handle(d->http, fd)) {
		close(fd);
		return clbsd_err_setmsg(err, CLBSD_E_INTERNAL, EIO, "serve %s", d->socket);
	}
	d->listen_fd = fd;
	return 0;
}

void api_close(struct daemon *d)
{
	if (d->http) {
		evhttp_free(d->http);
		d->http = NULL;
		unlink(d->socket);
	}
}
