/*
 * Running a command inside a running container and collecting its output,
 * without blocking the loop: used by POST .../exec and by :exec hooks. The
 * shim starts the process (it owns the container's namespaces) and streams
 * its output as frames (src/util/proto.h) until the exit frame.
 */
#include "daemon.h"
#include "util/json.h"
#include "util/proto.h"
#include "util/trace.h"
#include "util/util.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct ctr_exec {
	struct daemon *d;
	struct ctr_exec *next, **pprev; /* d->execs */
	struct bufferevent *bev;
	struct ctr_exec_result r;
	struct buf out, err;
	size_t max;
	ctr_exec_fn fn;
	void *arg;
};

static void finish(struct ctr_exec *x, int code, const char *failure)
{
	x->r.exit_code = code;
	x->r.failure = failure;
	x->r.out = x->out.data ? x->out.data : (char *)(uintptr_t) "";
	x->r.out_len = x->out.len;
	x->r.err = x->err.data ? x->err.data : (char *)(uintptr_t) "";
	x->r.err_len = x->err.len;
	if (x->pprev) {
		*x->pprev = x->next;
		if (x->next)
			x->next->pprev = x->pprev;
	}
	x->fn(&x->r, x->arg);
	if (x->bev)
		bufferevent_free(x->bev);
	buf_release(&x->out);
	buf_release(&x->err);
	free(x);
}

/* Handle the frames buffered so far; true once finished (x is freed). */
static bool frames(struct ctr_exec *x)
{
	struct evbuffer *in = bufferevent_get_input(x->bev);
	for (;;) {
		unsigned char hdr[PROTO_HDR_LEN];
		if (evbuffer_copyout(in, hdr, sizeof(hdr)) < (ssize_t)sizeof(hdr))
			return false;
		uint32_t len = proto_hdr_len(hdr);
		if (len > PROTO_FRAME_MAX) {
			finish(x, 0, "shim sent an oversized frame");
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
			size_t room = x->max > b->len ? x->max - b->len : 0;
			if (len > room)
				x->r.truncated = true;
			buf_add(b, data, len < room ? len : room);
		} else if (hdr[0] == PROTO_EXIT) {
			json_t *j = json_loads(data, 0, NULL);
			int code = (int)json_int(j, "exit_code", 255);
			json_decref(j);
			finish(x, code, NULL);
			return true;
		}
	}
}

static void on_read(struct bufferevent *bev, void *arg)
{
	frames(arg);
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
	if (!(what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)))
		return;
	/* Whatever the shim sent before closing still counts, the exit above all. */
	struct evbuffer *in = bufferevent_get_input(bev);
	while (evbuffer_read(in, bufferevent_getfd(bev), 65536) > 0)
		;
	if (!frames(arg))
		finish(arg, 0, "the shim closed the stream before the process exited");
}

json_t *ctr_exec_request(struct container *c, char *const *argv, char *const *extra_env,
			 const char *cwd, uint32_t uid, uint32_t gid)
{
	/* Every exec is asked for here: the API's (interactive too), hooks', health checks'. */
	TRACE2(container__exec, c->name, argv[0]);
	struct strv env = STRV_INIT;
	for (size_t i = 0; c->cfg.env && c->cfg.env[i]; i++)
		strv_push(&env, c->cfg.env[i]);
	for (size_t i = 0; extra_env && extra_env[i]; i++) {
		size_t kl = strcspn(extra_env[i], "=");
		for (size_t k = 0; k < env.n; k++) {
			if (strncmp(env.v[k], extra_env[i], kl) == 0 && env.v[k][kl] == '=') {
				free(env.v[k]);
				env.v[k] = env.v[--env.n];
				env.v[env.n] = NULL;
				break;
			}
		}
		strv_push(&env, extra_env[i]);
	}
	json_t *req = json_pack("{s:s,s:o,s:o,s:s,s:i,s:i,s:b,s:b,s:i,s:i}", "op", "exec", "argv",
				json_strv(argv), "env", json_strv(env.v), "cwd",
				cwd ? cwd : c->cfg.workdir, "uid", (int)uid, "gid", (int)gid, "tty",
				0, "stdin", 0, "rows", 24, "cols", 80);
	strv_release(&env);
	return req;
}

/*
 * An exec's end for the container__exec__done probe, whatever the kind:
 * the caller's fn and arg, and what the probe says (the container may be
 * gone by then, so its name is a copy).
 */
struct exec_end {
	ctr_exec_fn fn;
	void *arg;
	char *name, *argv0;
	int64_t started_ns;
};

static void exec_ended(const struct ctr_exec_result *r, void *arg)
{
	struct exec_end *e = arg;
	ctr_exec_fn fn = e->fn;
	void *fn_arg = e->arg;
	TRACE4(container__exec__done, e->name, e->argv0, r->failure ? -1 : r->exit_code,
	       time_mono_ns() - e->started_ns);
	free(e->name);
	free(e->argv0);
	free(e);
	fn(r, fn_arg);
}

int ctr_exec_start(struct container *c, json_t *req, size_t max_output, ctr_exec_fn fn, void *arg,
		   struct clbsd_err *err)
{
	if (c->run.state != CTR_RUNNING)
		return clbsd_err_setmsg(err, CLBSD_E_CONFLICT, ESRCH, "container %s is not running",
					c->name);
	if (c->d->shutting_down)
		return clbsd_err_setmsg(err, CLBSD_E_CONFLICT, ESHUTDOWN,
					"clbsdd is shutting down");
	struct exec_end *e = xmalloc(sizeof(*e));
	const char *argv0 = json_string_value(json_array_get(json_object_get(req, "argv"), 0));
	*e = (struct exec_end){fn, arg, xstrdup(c->name), xstrdup(argv0 ? argv0 : ""),
			       time_mono_ns()};
	int r = ctr_ops_of(c)->exec(c, req, max_output, exec_ended, e, err);
	if (r < 0) {
		/* Not started, fn not called: nothing ended. */
		free(e->name);
		free(e->argv0);
		free(e);
	}
	return r;
}

int ctr_native_exec(struct container *c, json_t *req, size_t max_output, ctr_exec_fn fn, void *arg,
		    struct clbsd_err *err)
{
	autofree char *line = json_line(req);
	int fd = -1;
	autofree char *rep = NULL;
	if (proto_request(c->shim.socket, line, &fd, &rep, err) < 0)
		return -err->code;
	struct ctr_exec *x = xcalloc(1, sizeof(*x));
	x->max = max_output;
	x->fn = fn;
	x->arg = arg;
	json_t *rj = json_loads(rep, 0, NULL);
	if (!json_bool(rj, "ok", false)) {
		/* The process could not be started: report it like a shell would. */
		const char *m = json_str(rj, "error");
		buf_addf(&x->err, "%s\n", m ? m : rep);
		int code = strstr(x->err.data, "ermission") ? 126 : 127;
		json_decref(rj);
		close(fd);
		finish(x, code, NULL);
		return 0;
	}
	json_decref(rj);
	x->d = c->d;
	x->next = c->d->execs;
	if (x->next)
		x->next->pprev = &x->next;
	x->pprev = &c->d->execs;
	c->d->execs = x;
	fd_set_nonblock(fd, true);
	x->bev = bufferevent_socket_new(c->d->base, fd, BEV_OPT_CLOSE_ON_FREE);
	bufferevent_setcb(x->bev, on_read, NULL, on_event, x);
	/* Nothing is written: this exec has no stdin (/dev/null). */
	bufferevent_enable(x->bev, EV_READ);
	return 0;
}

/*
 * At close: each exec still collecting output is told the daemon is going
 * (its caller frees what it holds); the process inside the container runs on.
 */
void exec_release_daemon(struct daemon *d)
{
	while (d->execs)
		finish(d->execs, -1, "clbsdd is shutting down");
}
