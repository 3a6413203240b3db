#include "api.h"
#include "core/config.h"
#include "req_decode.h"
#include "util/json.h"
#include "util/util.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

void api_info(struct daemon *d, struct evhttp_request *req, const struct api_args *a)
{
	int total = 0, running = 0;
	for (struct container *c = d->ctrs; c; c = c->next) {
		total++;
		if (c->run.state == CTR_RUNNING)
			running++;
	}
	json_t *j = json_pack(
		"{s:s,s:i,s:s,s:s,s:s,s:s,s:s,s:o,s:{s:i,s:i},s:i,s:o,s:o}", "version",
		CLBSD_VERSION, "pid", (int)getpid(), "root", d->root, "run", d->run, "socket",
		d->socket, "runtime", d->rt->name, "cgroup", d->rt->cgroup_layout(), "storage",
		json_pack("{s:s,s:b}", "driver", d->storage.ops->name, "overlay",
			  d->storage.have_overlay),
		"containers", "total", total, "running", running, "images", (int)d->images.n,
		"started_at", json_time(d->started_ns), "metrics", metrics_status(d));
	api_reply_json(req, 200, j);
}

json_t *api_container_stats(struct daemon *d, const struct container *c, struct clbsd_err *err)
{
	if (c->run.state != CTR_RUNNING) {
		clbsd_err_setmsg(err, CLBSD_E_CONFLICT, ESRCH, "container %s is not running",
				 c->name);
		return NULL;
	}
	struct rt_spec spec = {0};
	spec.name = c->name;
	spec.cgroup = ctr_stats_cgroup(c);
	spec.limits = c->cfg.limits;
	struct rt_stats st = {0};
	/*
	 * A native container's cgroup has the limits of its record (start and
	 * update write them): no need to read them back. dockerd sets a
	 * docker container's, so those are read.
	 */
	int r = d->rt->stats(&spec, c->docker.on ? NULL : &c->cfg.limits, &st, err);
	free(spec.cgroup);
	if (r < 0)
		return NULL;
	return json_pack("{s:s,s:I,s:I,s:I,s:I,s:I,s:I,s:o}", "name", c->name, "cpu_usage_ns",
			 (json_int_t)st.cpu_usage_ns, "memory_usage", (json_int_t)st.memory_usage,
			 "memory_limit", (json_int_t)st.memory_limit, "pids_current",
			 (json_int_t)st.pids_current, "pids_limit", (json_int_t)st.pids_limit,
			 "oom_kills", (json_int_t)st.oom_kills, "read_at",
			 json_time(time_now_ns()));
}

void api_stats_all(struct daemon *d, struct evhttp_request *req, const struct api_args *a)
{
	json_t *arr = json_array();
	for (struct container *c = d->ctrs; c; c = c->next) {
		if (c->run.state != CTR_RUNNING)
			continue;
		struct clbsd_err err;
		json_t *s = api_container_stats(d, c, &err);
		if (s)
			json_array_append_new(arr, s);
		else
			log_warn("api", c->name, "stats: %s", err.msg);
	}
	api_reply_json(req, 200, arr);
}

/* The "stats" member: null when not running (no error then). */
static json_t *m_stats(const struct container *c)
{
	struct clbsd_err err;
	json_t *s = c->run.state == CTR_RUNNING ? api_container_stats(c->d, c, &err) : NULL;
	if (!s && c->run.state == CTR_RUNNING)
		log_warn("api", c->name, "stats: %s", err.msg);
	return s ? s : json_null();
}

static json_t *m_health(const struct container *c)
{
	json_t *h = health_json(c->d, c->name);
	return h ? h : json_null();
}

static json_t *m_undo(const struct container *c)
{
	json_t *u = undo_info(c->d, c->name);
	return u ? u : json_null();
}

/*
 * What a reply adds to the record, and so may be asked for by fields= too:
 * the record's own members (ctr_members) are made alone from the engine's
 * table, so that a list of many containers asking for a few columns does
 * not make each whole record first.
 */
static const struct ctr_member api_members[] = {
	{"health", m_health, NULL},
	{"undo", m_undo, NULL},
	{"stats", m_stats, NULL},
	{NULL, NULL, NULL},
};

static const struct ctr_member *member_find(const char *name)
{
	const struct ctr_member *m = ctr_member_find(ctr_members, name);
	return m ? m : ctr_member_find(api_members, name);
}

/*
 * The value of member m holding what f asks of it: only the parts asked
 * for when they are all made alone, else the whole member.
 */
static json_t *member_value(struct container *c, const struct ctr_member *m,
			    const struct api_fields *f)
{
	bool parts = m->parts != NULL;
	for (size_t i = 0; parts && i < f->n; i++)
		if (strcmp(f->key[i], m->name) == 0 &&
		    (!f->sub[i] || !ctr_member_find(m->parts, f->sub[i])))
			parts = false;
	if (!parts)
		return m->get(c);
	json_t *v = json_object();
	for (size_t i = 0; i < f->n; i++)
		if (strcmp(f->key[i], m->name) == 0 && !json_object_get(v, f->sub[i]))
			json_object_set_new(v, f->sub[i],
					    ctr_member_find(m->parts, f->sub[i])->get(c));
	return v;
}

/*
 * A native container's members that f names, made alone; NULL when f
 * names one that is not in the table (or the container is a docker one,
 * whose record has more): the caller then makes the whole record.
 */
static json_t *members_json(struct container *c, const struct api_fields *f)
{
	if (c->docker.on)
		return NULL;
	for (size_t i = 0; i < f->n; i++)
		if (!member_find(f->key[i]))
			return NULL;
	json_t *j = json_object();
	for (size_t i = 0; i < f->n; i++) {
		if (json_object_get(j, f->key[i]))
			continue;
		json_t *v = member_value(c, member_find(f->key[i]), f);
		if (v)
			json_object_set_new(j, f->key[i], v);
	}
	return j;
}

/* The container as the API shows it: its record plus its health, if checked (api.h). */
json_t *api_ctr_json_fields(struct container *c, const struct api_fields *f)
{
	json_t *j = f ? members_json(c, f) : NULL;
	if (!j) {
		j = ctr_to_json(c);
		if (!f || api_fields_want(f, "health"))
			json_object_set_new(j, "health", m_health(c));
		if (!f || api_fields_want(f, "undo"))
			json_object_set_new(j, "undo", m_undo(c));
		if (!f || api_fields_want(f, "backup")) {
			json_t *bk = backup_status_of(c->d, c->name);
			json_object_set_new(j, "backup", bk ? bk : json_null());
		}
		if (!f)
			return j;
		if (api_fields_want(f, "stats"))
			json_object_set_new(j, "stats", m_stats(c));
	}
	json_t *picked = api_fields_pick(j, f);
	json_decref(j);
	return picked;
}

json_t *api_ctr_json(struct container *c)
{
	return api_ctr_json_fields(c, NULL);
}

void api_ctr_list(struct daemon *d, struct evhttp_request *req, const struct api_args *a)
{
	bool all = api_query_bool(req, "all");
	struct api_fields f;
	int have = api_query_fields(req, &f);
	if (have < 0)
		return;
	json_t *arr = json_array();
	for (struct container *c = d->ctrs; c; c = c->next)
		if (all || c->run.state == CTR_RUNNING || c->run.state == CTR_RESTARTING)
			json_array_append_new(arr, api_ctr_json_fields(c, have ? &f : NULL));
	if (have)
		api_fields_release(&f);
	api_reply_json(req, 200, arr);
}

/* Completion of an asynchronous operation: answer with the container. */
static void done_json(struct container *c, const struct clbsd_err *err, void *arg)
{
	struct api_pending *p = arg;
	if (err)
		api_pending_err(p, err);
	else
		api_pending_json(p, 200, api_ctr_json(c));
}

/* wait: the exit code (and whether it was removed) once the condition holds. */
static void done_wait(struct container *c, const struct clbsd_err *err, void *arg)
{
	struct api_pending *p = arg;
	if (err) {
		api_pending_err(p, err);
		return;
	}
	api_pending_json(p, 200,
			 json_pack("{s:s,s:i,s:i,s:b,s:b}", "name", c->name, "exit_code",
				   c->run.exit_code, "signal", c->run.signal, "oom_killed",
				   c->run.oom_killed, "removed", c->run.removed));
}

/* A failed start of create?start=1 with --rm: the error is the answer, once the container is gone. */
static void done_gone(struct container *c, const struct clbsd_err *err, void *arg)
{
	struct api_pending *p = arg;
	struct clbsd_err *why = p->data;
	p->data = NULL;
	api_pending_err(p, why);
	free(why);
}

/* create?start=1: 201 with the started container, or the start's error. */
static void done_created_started(struct container *c, const struct clbsd_err *err, void *arg)
{
	struct api_pending *p = arg;
	if (!err) {
		api_pending_json(p, 201, api_ctr_json(c));
		return;
	}
	/* The request was good (the container was made): a failed start is no usage error. */
	struct clbsd_err *why = xmalloc(sizeof(*why));
	*why = *err;
	if (why->kind == CLBSD_E_INVALID)
		why->kind = CLBSD_E_CONFLICT;
	if (c->cfg.auto_remove && !c->run.removed && !c->run.removing) {
		/* Nobody else will remove it: the client never learnt its name. */
		p->data = why;
		ctr_remove(c, true, done_gone, p);
		return;
	}
	api_pending_err(p, why);
	free(why);
}

/* Answer with the container whatever the outcome (its start_error tells). */
static void done_json_always(struct container *c, const struct clbsd_err *err, void *arg)
{
	api_pending_json(arg, 200, api_ctr_json(c));
}

static void done_removed(struct container *c, const struct clbsd_err *err, void *arg)
{
	struct api_pending *p = arg;
	autofree char *volumes_of = p->data; /* set for ?volumes=1 */
	p->data = NULL;
	if (err) {
		api_pending_err(p, err);
		return;
	}
	if (volumes_of) {
		/*
		 * Named volumes outlive the container unless asked for with it
		 * (zfs: their datasets; the container's own are gone already).
		 */
		struct storage *st = &p->d->storage;
		struct clbsd_err e2;
		if (st->ops->ctr_remove(st, volumes_of, true, &e2) < 0) {
			api_pending_err(p, &e2);
			return;
		}
	}
	if (!p->gone)
		api_reply_empty(p->req, 204);
	api_pending_free(p);
}

static void restart_stopped(struct container *c, const struct clbsd_err *err, void *arg)
{
	struct api_pending *p = arg;
	if (err) {
		api_pending_err(p, err);
		return;
	}
	ctr_start(c, false, done_json, p);
}

/* The container is made: start it (`clbsd run`) or answer with it. */
static void created(struct daemon *d, struct evhttp_request *req, struct container *c)
{
	struct clbsd_err err;
	clbsd_err_init(&err);
	if (api_query_bool(req, "start")) {
		/* One request for `clbsd run`: create, then start as POST .../start. */
		if (reconcile_record_state(d, c->name, true, &err) < 0)
			api_reply_err(req, &err);
		else
			ctr_start(c, api_query_bool(req, "hold"), done_created_started,
				  api_pending_new(d, req));
	} else {
		api_reply_json(req, 201, api_ctr_json(c));
	}
}

static void done_prepared(struct container *c, const struct clbsd_err *err, void *arg)
{
	struct api_pending *p = arg;
	if (err) {
		api_pending_err(p, err);
		return;
	}
	struct evhttp_request *req = p->req;
	struct daemon *d = p->d;
	bool gone = p->gone;
	api_pending_free(p);
	if (!gone)
		created(d, req, c);
}

void api_ctr_create(struct daemon *d, struct evhttp_request *req, const struct api_args *a)
{
	struct clbsd_err err;
	clbsd_err_init(&err);
	json_t *body = api_body_json(req);
	if (!body)
		return;
	struct container *c;
	struct ctr_spec *spec;
	int r = ctr_spec_from_json(body, &spec, &err);
	json_decref(body);
	if (r == 0) {
		r = ctr_create(d, spec, &c, &err);
		ctr_spec_free(spec);
	}
	if (r < 0)
		api_reply_err(req, &err);
	else if (c->docker.on)
		/* Made in dockerd before the answer: a refusal there leaves nothing. */
		docker_ctr_prepare(c, done_prepared, api_pending_new(d, req));
	else
		created(d, req, c);
}

void api_ctr_undo(struct daemon *d, struct evhttp_request *req, const struct api_args *a)
{
	struct clbsd_err err;
	clbsd_err_init(&err);
	struct api_pending *p = api_pending_new(d, req);
	if (ctr_undo(d, api_param(a, "name"), done_json, p, &err) < 0)
		api_pending_err(p, &err);
}

/*
 * One container, with what its declaration says of it: "declaration", the
 * effective form (main file, conf.d and live layer merged) of a managed,
 * declared container, which clbsd migrate carries to the target; "moved",
 * {"to", "at"} when a (moved NAME ...) form says it went elsewhere.
 */
static json_t *ctr_get_json(struct daemon *d, struct container *c)
{
	json_t *j = api_ctr_json(c);
	const struct ctr_spec *ct =
		d->decl.conf ? conf_container_find(d->decl.conf, c->name) : NULL;
	if (ct && c->decl.managed) {
		autofree char *form = ctr_spec_print(ct);
		json_object_set_new(j, "declaration", json_string(form));
		json_t *deps = json_array();
		for (size_t i = 0; ct->depends_on && ct->depends_on[i]; i++)
			json_array_append_new(deps, json_string(ct->depends_on[i]));
		json_object_set_new(j, "depends_on", deps);
	}
	const struct conf_moved *mv = d->decl.conf ? conf_moved_find(d->decl.conf, c->name) : NULL;
	if (mv)
		json_object_set_new(j, "moved",
				    json_pack("{s:s,s:s?}", "to", mv->to, "at", mv->at));
	return j;
}

void api_ctr_get(struct daemon *d, struct evhttp_request *req, const struct api_args *a)
{
	if (api_query_bool(req, "wait_start") && a->c->run.starting)
		/* Answer once the start in progress is done, either way. */
		ctr_on_started(a->c, done_json_always, api_pending_new(d, req));
	else
		api_reply_json(req, 200, ctr_get_json(d, a->c));
}

void api_ctr_remove(struct daemon *d, struct evhttp_request *req, const struct api_args *a)
{
	bool force = api_query_bool(req, "force");
	struct api_pending *p = api_pending_new(d, req);
	if (api_query_bool(req, "volumes"))
		p->data = xstrdup(a->c->name);
	ctr_remove(a->c, force, done_removed, p);
}

static void done_fetched(json_t *result, const char *text, size_t len, const struct clbsd_err *err,
			 void *arg)
{
	if (err)
		api_pending_err(arg, err);
	else
		api_pending_json(arg, 200, json_incref(result));
}

void api_ctr_stats(struct daemon *d, struct evhttp_request *req, const struct api_args *a)
{
	struct clbsd_err err;
	clbsd_err_init(&err);
	if (a->c->docker.on) {
		struct api_pending *p = api_pending_new(d, req);
		if (docker_ctr_stats(a->c, done_fetched, p, &err) < 0)
			api_pending_err(p, &err);
		return;
	}
	json_t *s = api_container_stats(d, a->c, &err);
	if (s)
		api_reply_json(req, 200, s);
	else
		api_reply_err(req, &err);
}

/*
 * Whether a start or stop records :state in the live layer: not with
 * ?record=0, which clbsd migrate passes (its stop and start of a moving
 * container are not the operator's decision about its state).
 */
static bool record_state(struct evhttp_request *req)
{
	autofree char *v = api_query(req, "record");
	return !v || strcmp(v, "0") != 0;
}

void api_ctr_start(struct daemon *d, struct evhttp_request *req, const struct api_args *a)
{
	struct clbsd_err err;
	clbsd_err_init(&err);
	/* A declared container: the operator's word becomes its :state. */
	if (record_state(req) && reconcile_record_state(d, a->c->name, true, &err) < 0) {
		api_reply_err(req, &err);
		return;
	}
	ctr_start(a->c, api_query_bool(req, "hold"), done_json, api_pending_new(d, req));
}

void api_ctr_stop(struct daemon *d, struct evhttp_request *req, const struct api_args *a)
{
	struct clbsd_err err;
	clbsd_err_init(&err);
	int t;
	if (api_query_seconds(req, "t", 10, &t) < 0)
		return;
	if (record_state(req) && reconcile_record_state(d, a->c->name, false, &err) < 0) {
		api_reply_err(req, &err);
		return;
	}
	ctr_stop(a->c, t, done_json, api_pending_new(d, req));
}

void api_ctr_restart(struct daemon *d, struct evhttp_request *req, const struct api_args *a)
{
	int t;
	if (api_query_seconds(req, "t", 10, &t) == 0)
		ctr_stop(a->c, t, restart_stopped, api_pending_new(d, req));
}

void api_ctr_kill(struct daemon *d, struct evhttp_request *req, const struct api_args *a)
{
	struct clbsd_err err;
	clbsd_err_init(&err);
	autofree char *s = api_query(req, "signal");
	int sig = SIGKILL;
	if (s && parse_signal(s, &sig) < 0) {
		api_reply_error(req, 400, "invalid_argument",
				"unknown signal \"%s\" (use a name like TERM or a number)", s);
		return;
	}
	if (ctr_kill(a->c, sig, &err) < 0)
		api_reply_err(req, &err);
	else
		api_reply_json(req, 200, ctr_get_json(d, a->c));
}

void api_ctr_wait(struct daemon *d, struct evhttp_request *req, const struct api_args *a)
{
	autofree char *cond = api_query(req, "condition");
	bool removed = cond && strcmp(cond, "removed") == 0;
	if (cond && !removed && strcmp(cond, "not-running") != 0) {
		api_reply_error(req, 400, "invalid_argument",
				"condition \"%s\": want not-running or removed", cond);
		return;
	}
	ctr_wait(a->c, removed, done_wait, api_pending_new(d, req));
}
