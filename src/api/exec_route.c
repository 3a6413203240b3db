/*
 * POST /v1/containers/{name}/exec. The shim runs the process (it owns the
 * container's namespaces and is its parent); the daemon resolves user, env
 * and working directory, then either hands the prepared shim request to an
 * interactive client or runs it and collects the output.
 */
#include "api.h"
#include "core/audit_rec.h"
#include "util/json.h"
#include "util/proto.h"
#include "util/util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define EXEC_OUTPUT_MAX (4u << 20)

static void exec_done(const struct ctr_exec_result *r, void *arg)
{
	struct api_pending *p = arg;
	if (r->failure) {
		struct clbsd_err err;
		clbsd_err_setmsg(&err, CLBSD_E_INTERNAL, EIO, "exec: %s", r->failure);
		api_pending_err(p, &err);
		return;
	}
	json_t *j = json_pack("{s:i,s:s%,s:s%,s:b}", "exit_code", r->exit_code, "stdout", r->out,
			      r->out_len, "stderr", r->err, r->err_len, "truncated", r->truncated);
	if (!j) /* not UTF-8: hand back what survives */
		j = json_pack("{s:i,s:s,s:s,s:b}", "exit_code", r->exit_code, "stdout",
			      "(output is not UTF-8; use exec -i to see it raw)", "stderr", "",
			      "truncated", r->truncated);
	api_pending_json(p, 200, j);
}

void api_container_exec(struct daemon *d, struct evhttp_request *req, const struct api_args *a)
{
	struct container *c = a->c;
	struct clbsd_err err;
	clbsd_err_init(&err);
	if (c->run.state != CTR_RUNNING) {
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
	for (size_t i = 0; extra && extra[i]; i++) {
		const char *eq = strchr(extra[i], '=');
		if (!eq || eq == extra[i]) {
			api_reply_error(req, 400, "invalid_argument",
					"environment entry \"%s\" is not KEY=VALUE", extra[i]);
			strv_free(argv), strv_free(extra), json_decref(body);
			return;
		}
	}
	const char *wd = json_str(body, "workdir");
	if (wd && !fs_path_is_clean_abs(wd)) {
		api_reply_error(req, 400, "invalid_argument",
				"workdir \"%s\" must be an absolute path without . or ..", wd);
		strv_free(argv), strv_free(extra), json_decref(body);
		return;
	}
	/* AUDITCFG ex: the audit record of an exec says what ran (docs/audit.md). */
	if (ctr_audit_classes(d, c) & AUDIT_C_EX) {
		api_audit_set(req, "argv", json_strv(argv));
		if (json_str(body, "user"))
			api_audit_set(req, "user", json_string(json_str(body, "user")));
	}
	uint32_t uid = c->cfg.uid, gid = c->cfg.gid;
	const char *user = json_str(body, "user");
	if (user && *user && ctr_resolve_user(d, c->image_id, c->dir, user, &uid, &gid, &err) < 0) {
		api_reply_err(req, &err);
		strv_free(argv), strv_free(extra), json_decref(body);
		return;
	}
	json_t *shimreq = ctr_exec_request(c, argv, extra, wd, uid, gid);
	strv_free(argv);
	strv_free(extra);
	bool interactive = json_bool(body, "interactive", false);
	if (interactive && c->docker.on) {
		/* A session socket of clbsdd's speaks the shim protocol (docker_io.c). */
		json_t *ans = NULL;
		int r = docker_exec_session(c, shimreq, json_bool(body, "tty", false),
					    json_bool(body, "stdin", false), &ans, &err);
		json_decref(shimreq);
		json_decref(body);
		if (r < 0)
			api_reply_err(req, &err);
		else
			api_reply_json(req, 200, ans);
		return;
	}
	if (interactive) {
		/* The client speaks to the shim itself, with a terminal when asked. */
		json_object_set_new(shimreq, "tty", json_boolean(json_bool(body, "tty", false)));
		json_object_set_new(shimreq, "stdin",
				    json_boolean(json_bool(body, "stdin", false)));
		json_object_set_new(shimreq, "rows", json_integer(json_int(body, "rows", 24)));
		json_object_set_new(shimreq, "cols", json_integer(json_int(body, "cols", 80)));
		json_decref(body);
		api_reply_json(
			req, 200,
			json_pack("{s:s,s:o}", "socket", c->shim.socket, "request", shimreq));
		return;
	}
	json_decref(body);
	struct api_pending *p = api_pending_new(d, req);
	int r = ctr_exec_start(c, shimreq, EXEC_OUTPUT_MAX, exec_done, p, &err);
	json_decref(shimreq);
	if (r < 0)
		api_pending_err(p, &err);
}

/*
 * POST /v1/containers/{name}/attach: a docker container's console, through a
 * session socket of clbsdd's (docker_io.c). A native container's console is
 * its shim's socket ("shim_socket" in its record): 409 says so.
 */
void api_container_attach(struct daemon *d, struct evhttp_request *req, const struct api_args *a)
{
	struct container *c = a->c;
	if (!c->docker.on) {
		api_reply_error(req, 409, "conflict",
				"container %s is native: its console is its shim's socket "
				"(\"shim_socket\" in its record; clbsd console %s)",
				c->name, c->name);
		return;
	}
	struct clbsd_err err;
	clbsd_err_init(&err);
	json_t *ans = NULL;
	if (docker_attach_session(c, &ans, &err) < 0)
		api_reply_err(req, &err);
	else
		api_reply_json(req, 200, ans);
}
