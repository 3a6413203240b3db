/*
 * Request lines of the shim protocol (util/proto.h), parsed strictly: a field
 * of the wrong type is an error that names the field, never a silent default.
 */
#include "shim/shim.h"
#include "util/proto.h"

#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <string.h>

static int bad(struct clbsd_err *err, const char *key, const char *want)
{
	return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL, "request field \"%s\" must be %s",
				key, want);
}

static int get_bool(json_t *o, const char *key, bool *out, struct clbsd_err *err)
{
	json_t *v = json_object_get(o, key);
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_boolean(v))
		return bad(err, key, "true or false");
	*out = json_is_true(v);
	return 0;
}

static int get_uint(json_t *o, const char *key, json_int_t max, bool *has, json_int_t *out,
		    struct clbsd_err *err)
{
	json_t *v = json_object_get(o, key);
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > max)
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
					"request field \"%s\" must be an integer from 0 to %lld",
					key, (long long)max);
	*out = json_integer_value(v);
	if (has)
		*has = true;
	return 0;
}

/* A JSON array of strings as a NULL-terminated vector; each string must pass ok(). */
static int get_strv(json_t *o, const char *key, bool required, bool (*ok)(const char *),
		    const char *want, char ***out, struct clbsd_err *err)
{
	json_t *v = json_object_get(o, key);
	if (!v || json_is_null(v)) {
		if (required)
			return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
						"request field \"%s\" is required", key);
		*out = xcalloc(1, sizeof(char *));
		return 0;
	}
	if (!json_is_array(v))
		return bad(err, key, want);
	size_t n = json_array_size(v);
	if (required && n == 0)
		return bad(err, key, want);
	struct strv sv = STRV_INIT;
	for (size_t i = 0; i < n; i++) {
		json_t *e = json_array_get(v, i);
		if (!json_is_string(e) || (ok && !ok(json_string_value(e)))) {
			strv_release(&sv);
			return bad(err, key, want);
		}
		strv_push(&sv, json_string_value(e));
	}
	if (!sv.v)
		sv.v = xcalloc(1, sizeof(char *));
	*out = sv.v;
	return 0;
}

static bool env_ok(const char *s)
{
	const char *eq = strchr(s, '=');
	return eq && eq != s;
}

static int get_signal(json_t *o, int *out, struct clbsd_err *err)
{
	json_t *v = json_object_get(o, "signal");
	if (!v || json_is_null(v)) {
		*out = SIGTERM;
		return 0;
	}
	int sig = 0;
	if (json_is_integer(v) && json_integer_value(v) >= 1 && json_integer_value(v) <= SIGRTMAX)
		sig = (int)json_integer_value(v);
	else if (json_is_string(v) && parse_signal(json_string_value(v), &sig) < 0)
		sig = 0;
	if (sig < 1 || sig > SIGRTMAX)
		return bad(err, "signal", "a signal number or name, e.g. 15 or \"TERM\"");
	*out = sig;
	return 0;
}

static const struct {
	const char *name;
	enum shim_op op;
} ops[] = {
	{"state", SHIM_OP_STATE},	  {"wait", SHIM_OP_WAIT},     {"release", SHIM_OP_RELEASE},
	{"kill", SHIM_OP_KILL},		  {"attach", SHIM_OP_ATTACH}, {"exec", SHIM_OP_EXEC},
	{"net-ready", SHIM_OP_NET_READY},
};

static int parse_obj(json_t *o, struct shim_req *req, struct clbsd_err *err)
{
	json_t *opv = json_object_get(o, "op");
	if (!json_is_string(opv))
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
					"request needs an \"op\" string (state, wait, release, "
					"kill, attach, exec or net-ready)");
	const char *op = json_string_value(opv);
	size_t i;
	for (i = 0; i < ARRAY_SIZE(ops); i++)
		if (strcmp(op, ops[i].name) == 0)
			break;
	if (i == ARRAY_SIZE(ops))
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
					"unknown op \"%.64s\" (want state, wait, release, kill, "
					"attach, exec or net-ready)",
					op);
	req->op = ops[i].op;

	int r;
	json_int_t n;
	switch (req->op) {
	case SHIM_OP_STATE:
	case SHIM_OP_WAIT:
	case SHIM_OP_RELEASE:
		return 0;
	case SHIM_OP_NET_READY: {
		json_t *e = json_object_get(o, "error");
		if (e && !json_is_null(e)) {
			if (!json_is_string(e))
				return bad(err, "error", "a string");
			req->error = xstrdup(json_string_value(e));
		}
		return 0;
	}
	case SHIM_OP_KILL:
		if ((r = get_signal(o, &req->signal, err)) < 0)
			return r;
		return get_bool(o, "all", &req->all, err);
	case SHIM_OP_EXEC:
		if ((r = get_strv(o, "argv", true, NULL, "a non-empty array of strings", &req->argv,
				  err)) < 0)
			return r;
		if ((r = get_strv(o, "env", false, env_ok, "an array of \"KEY=VALUE\" strings",
				  &req->env, err)) < 0)
			return r;
		json_t *cwd = json_object_get(o, "cwd");
		if (cwd && !json_is_null(cwd)) {
			if (!json_is_string(cwd) || !fs_path_is_clean_abs(json_string_value(cwd)))
				return bad(err, "cwd", "an absolute path without . or ..");
			req->cwd = xstrdup(json_string_value(cwd));
		}
		if ((r = get_uint(o, "uid", UINT32_MAX - 1, &req->has_uid, &n, err)) < 0)
			return r;
		req->uid = (uint32_t)n;
		if ((r = get_uint(o, "gid", UINT32_MAX - 1, &req->has_gid, &n, err)) < 0)
			return r;
		req->gid = (uint32_t)n;
		if ((r = get_bool(o, "tty", &req->tty, err)) < 0)
			return r;
		break;
	case SHIM_OP_ATTACH:
		if ((r = get_bool(o, "replay", &req->replay, err)) < 0 ||
		    (r = get_bool(o, "release", &req->release, err)) < 0)
			return r;
		break;
	}
	/* attach and exec */
	if ((r = get_bool(o, "stdin", &req->in, err)) < 0)
		return r;
	n = 0;
	if ((r = get_uint(o, "rows", UINT16_MAX, NULL, &n, err)) < 0)
		return r;
	req->rows = (uint16_t)n;
	n = 0;
	if ((r = get_uint(o, "cols", UINT16_MAX, NULL, &n, err)) < 0)
		return r;
	req->cols = (uint16_t)n;
	return 0;
}

int shim_req_parse(const char *line, struct shim_req *req, struct clbsd_err *err)
{
	struct shim_req tmp;
	memset(&tmp, 0, sizeof(tmp));
	json_error_t je;
	json_t *o = json_loads(line, JSON_REJECT_DUPLICATES, &je);
	if (!o)
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
					"request is not valid JSON: %s at column %d", je.text,
					je.column);
	if (!json_is_object(o)) {
		json_decref(o);
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
					"request must be a JSON object");
	}
	int r = parse_obj(o, &tmp, err);
	json_decref(o);
	if (r < 0) {
		shim_req_release(&tmp);
		return r;
	}
	*req = tmp;
	return 0;
}

void shim_req_release(struct shim_req *req)
{
	strv_free(req->argv);
	free(req->error);
	strv_free(req->env);
	free(req->cwd);
	memset(req, 0, sizeof(*req));
}

static size_t key_len(const char *kv)
{
	const char *eq = strchr(kv, '=');
	return eq ? (size_t)(eq - kv) : strlen(kv);
}

char **shim_env_merge(char *const *base, char *const *over)
{
	struct strv out = STRV_INIT;
	for (size_t i = 0; base && base[i]; i++) {
		size_t kl = key_len(base[i]);
		bool replaced = false;
		for (size_t j = 0; over && over[j]; j++)
			if (key_len(over[j]) == kl && strncmp(base[i], over[j], kl) == 0)
				replaced = true;
		if (!replaced)
			strv_push(&out, base[i]);
	}
	for (size_t j = 0; over && over[j]; j++) {
		/* A key given twice in the request: the last one wins. */
		size_t kl = key_len(over[j]);
		bool later = false;
		for (size_t k = j + 1; over[k]; k++)
			if (key_len(over[k]) == kl && strncmp(over[j], over[k], kl) == 0)
				later = true;
		if (!later)
			strv_push(&out, over[j]);
	}
	if (!out.v)
		out.v = xcalloc(1, sizeof(char *));
	return out.v;
}
