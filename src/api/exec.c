/*
 * POST /v1/containers/{name}/exec. The shim runs the process (it owns the
 * container's namespaces and is its parent); the daemon resolves user, env
 * and working directory, then either hands the prepared shim request to an
 * interactive client or runs it and collects the output.
 */
#include "api.h"
#include "util/json.h"
#include "util/proto.h"
#include "util/util.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define EXEC_OUTPUT_MAX (4u << 20)

struct exec_run {
	struct api_pending *p;
	struct bufferevent *bev;
	struct buf out;
	struct buf err;
	bool truncated;
};

static void exec_finish(struct exec_run *x, int code, const char *failure)
{
	if (failure) {
		struct clbsd_err err;
		clbsd_err_setmsg(&err, CLBSD_E_INTERNAL, EIO, "exec: %s", failure);
		api_pending_err(x->p, &err);
	} else {
		json_t *j = json_pack("{s:i,s:s%,s:s%,s:b}", "exit_code", code, "stdout",
				      x->out.data ? x->out.data : "", x->out.len, "stderr",
				      x->err.data ? x->err.data : "", x->err.len, "truncated",
				      x->truncated);
		if (!j) /* not UTF-8: hand back what survives */
			j = json_pack("{s:i,s:s,s:s,s:b}", "exit_code", code, "stdout",
				      "(output is not UTF-8; use exec -i to see it raw)", "stderr",
				      "", "truncated", x->truncated);
		api_pending_json(x->p, 200, j);
	}
	bufferevent_free(x->bev);
	buf_release(&x->out);
	buf_release(&x->err);
	free(x);
}

/* Handle the frames buffered so far; true once the exec finished (x is freed). */
static bool exec_frames(struct exec_run *x)
{
	struct evbuffer *in = bufferevent_get_input(x->bev);
	for (;;) {
		unsigned char hdr[PROTO_HDR_LEN];
		if (evbuffer_copyout(in, hdr, sizeof(hdr)) < (ssize_t)sizeof(hdr))
			return false;
		uint32_t len = proto_hdr_len(hdr);
		if (len > PROTO_FRAME_MAX) {
			exec_finish(x, 0, "shim sent an oversized frame");
			return true;
		}
		if (evbuffer_get_length(in) < sizeof(hdr) + len)
			return false;
		evbuffer_drain(in, sizeof(hdr));
		autofree char *data = xmalloc(len + 1);
		evbuffer_remove(in, data, len);
		data[len] = '\0';
		if (hdr[0] == PROTO_STDOUT || hdr[0] == PROTO_STDERR) {
			struct buf *b = hdr[0] == PROTO_STDOUT ? &x->out : &x->err;
			if (b->len + len <= EXEC_OUTPUT_MAX)
				buf_add(b, data, len);
			else
				x->truncated = true;
		} else if (hdr[0] == PROTO_EXIT) {
			json_t *j = json_loads(data, 0, NULL);
			int code = (int)json_int(j, "exit_code", 255);
			json_decref(j);
			exec_finish(x, code, NULL);
			return true;
		}
	}
}

static void exec_read(struct bufferevent *bev, void *arg)
{
	exec_frames(arg);
}

static void exec_event(struct bufferevent *bev, short what, void *arg)
{
	struct exec_run *x = arg;
	if (!(what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)))
		return;
	/* Whatever the shim sent before closing still counts, the exit above all. */
	struct evbuffer *in = bufferevent_get_input(bev);
	while (evbuffer_read(in, bufferevent_getfd(bev), 65536) > 0)
		;
	if (!exec_frames(x))
		exec_finish(x, 0, "the shim closed the stream before the process exited");
}

void api_container_exec(struct daemon *d, struct evhttp_request *req, struct container *c)
{
	struct clbsd_err err;
	clbsd_err_init(&err);
	if (c->state != CTR_RUNNING) {
		api_reply_error(req, 409, "conflict", "container %s is not running", c->name);
		return;
	}
	json_t *body = api_body_json(req);
	if (!body)
		return;
	char **argv = json_to_strv(json_object_get(body, "command"));
	if (!argv || !argv[0]) {
		strv_free(argv);
		json_decref(body);
		api_reply_error(req, 400, "invalid_argument",
				"\"command\" must be a non-empty array of strings");
		return;
	}
	json_t *envj = json_object_get(body, "env");
	char **extra = envj ? json_to_strv(envj) : NULL;
	if (envj && !extra) {
		strv_free(argv);
		json_decref(body);
		api_reply_error(req, 400, "invalid_argument",
				"\"env\" must be an array of KEY=VALUE strings");
		return;
	}
	struct strv env = STRV_INIT;
	for (size_t i = 0; c->cfg.env && c->cfg.env[i]; i++)
		strv_push(&env, c->cfg.env[i]);
	for (size_t i = 0; extra && extra[i]; i++) {
		const char *eq = strchr(extra[i], '=');
		if (!eq || eq == extra[i]) {
			api_reply_error(req, 400, "invalid_argument",
					"environment entry \"%s\" is not KEY=VALUE", extra[i]);
			strv_free(argv), strv_free(extra), strv_release(&env), json_decref(body);
			return;
		}
		size_t kl = (size_t)(eq - extra[i]);
		for (size_t k = 0; k < env.n; k++) {
			if (strncmp(env.v[k], extra[i], kl) == 0 && env.v[k][kl] == '=') {
				free(env.v[k]);
				env.v[k] = env.v[--env.n];
				env.v[env.n] = NULL;
				break;
			}
		}
		strv_push(&env, extra[i]);
	}
	strv_free(extra);
	const char *wd = json_str(body, "workdir");
	if (wd && !fs_path_is_clean_abs(wd)) {
		api_reply_error(req, 400, "invalid_argument",
				"workdir \"%s\" must be an absolute path without . or ..", wd);
		strv_free(argv), strv_release(&env), json_decref(body);
		return;
	}
	uint32_t uid = c->cfg.uid, gid = c->cfg.gid;
	const char *user = json_str(body, "user");
	if (user && *user &&
	    ctr_resolve_user(d, c->image_id, c->dir, user, &uid, &gid, &err) < 0) {
		api_reply_err(req, &err);
		strv_free(argv), strv_release(&env), json_decref(body);
		return;
	}
	bool tty = json_bool(body, "tty", false);
	bool interactive = json_bool(body, "interactive", false);
	json_t *shimreq = json_pack("{s:s,s:o,s:o,s:s,s:i,s:i,s:b,s:b,s:i,s:i}", "op", "exec",
				    "argv", json_strv(argv), "env", json_strv(env.v), "cwd",
				    wd ? wd : c->cfg.workdir, "uid", (int)uid, "gid", (int)gid,
				    "tty", tty, "stdin", interactive && json_bool(body, "stdin", false), "rows",
				    (int)json_int(body, "rows", 24), "cols",
				    (int)json_int(body, "cols", 80));
	strv_free(argv);
	strv_release(&env);
	json_decref(body);
	if (interactive) {
		api_reply_json(req, 200,
			       json_pack("{s:s,s:o}", "socket", c->shim_socket, "request", shimreq));
		return;
	}
	autofree char *line = json_line(shimreq);
	json_decref(shimreq);
	int fd = -1;
	autofree char *rep = NULL;
	if (proto_request(c->shim_socket, line, &fd, &rep, &err) < 0) {
		api_reply_err(req, &err);
		return;
	}
	json_t *rj = json_loads(rep, 0, NULL);
	if (!json_bool(rj, "ok", false)) {
		/* The process could not be started: report it like a shell would. */
		const char *m = json_str(rj, "error");
		autofree char *msg = xasprintf("%s\n", m ? m : rep);
		int code = strstr(msg, "ermission") ? 126 : 127;
		api_reply_json(req, 200,
			       json_pack("{s:i,s:s,s:s,s:b}", "exit_code", code, "stdout", "",
					 "stderr", msg, "truncated", 0));
		json_decref(rj);
		close(fd);
		return;
	}
	json_decref(rj);
	struct exec_run *x = xcalloc(1, sizeof(*x));
	x->p = api_pending_new(d, req);
	fd_set_nonblock(fd, true);
	x->bev = bufferevent_socket_new(d->base, fd, BEV_OPT_CLOSE_ON_FREE);
	bufferevent_setcb(x->bev, exec_read, NULL, exec_event, x);
	/* Nothing is written: a non-interactive exec has no stdin (/dev/null). */
	bufferevent_enable(x->bev, EV_READ);
}
