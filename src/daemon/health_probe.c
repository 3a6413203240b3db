/*
 * Health checks of declared containers (:health): a command inside the
 * container (:cmd, through the shim), or a TCP or HTTP probe run by the
 * runtime in the container's network namespace (:tcp, :http). The result
 * feeds the state machine in src/core/health_state.c (start period, retries);
 * changes are published as container.health events, shown by ps and
 * inspect, gate dependants in the reconciler, and restart the container
 * when it turns unhealthy and :restart-unhealthy is set.
 *
 * Checks never block the loop: probes are child processes watched through
 * a pipe, commands are asynchronous execs, and a check that outlives its
 * timeout counts as failed (a late answer is ignored).
 */
#include "core/config.h"
#include "core/health_state.h"
#include "daemon.h"
#include "util/json.h"
#include "util/trace.h"
#include "util/util.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

struct health_run {
	struct daemon *d;
	char *name;
	struct health_state st;
	struct ctr_health cfg; /* copied: the configuration may be replaced */
	char **cmd;	       /* owned copy of cfg.cmd */
	char *http_path;
	struct event *timer;	/* next check */
	struct event *deadline; /* the check in flight ran out of time */
	struct event *probe_ev;
	struct event *reap_ev;
	int probe_fd;
	pid_t probe_pid;
	struct buf out;
	uint64_t gen; /* of the check in flight; late results of older ones are dropped */
	int64_t t0;   /* when the check in flight began (monotonic): its probe's duration */
	bool in_flight;
	bool reading_done;
	bool external; /* health_external(): no checks of ours, no timers */
	struct health_run *next;
};

static struct health_run **runs_of(struct daemon *d)
{
	return &d->health.runs;
}

static struct health_run *find_run(struct daemon *d, const char *name)
{
	for (struct health_run *r = *runs_of(d); r; r = r->next)
		if (strcmp(r->name, name) == 0)
			return r;
	return NULL;
}

static void probe_close(struct health_run *r)
{
	if (r->probe_ev) {
		event_free(r->probe_ev);
		r->probe_ev = NULL;
	}
	if (r->probe_fd >= 0) {
		close(r->probe_fd);
		r->probe_fd = -1;
	}
	if (r->reap_ev) {
		event_free(r->reap_ev);
		r->reap_ev = NULL;
	}
	if (r->probe_pid > 0) {
		/* Gone with the check: stop it and collect it. */
		kill(r->probe_pid, SIGKILL);
		waitpid(r->probe_pid, NULL, 0);
		r->probe_pid = 0;
	}
}

static void run_free(struct health_run *r)
{
	probe_close(r);
	if (r->timer)
		event_free(r->timer);
	if (r->deadline)
		event_free(r->deadline);
	buf_release(&r->out);
	strv_free(r->cmd);
	free(r->http_path);
	free(r->name);
	free(r);
}

static void health_stop(struct daemon *d, const char *name)
{
	for (struct health_run **p = runs_of(d); *p; p = &(*p)->next) {
		if (strcmp((*p)->name, name) == 0) {
			struct health_run *r = *p;
			*p = r->next;
			run_free(r);
			return;
		}
	}
}

static void schedule_check(struct health_run *r)
{
	int64_t now = time_mono_ns();
	int64_t at = health_next_check(&r->st, &r->cfg, now);
	int64_t delay = at > now ? at - now : 0;
	struct timeval tv = {.tv_sec = delay / 1000000000LL,
			     .tv_usec = (delay % 1000000000LL) / 1000};
	evtimer_add(r->timer, &tv);
}

static void restarted(struct container *c, const struct clbsd_err *err, void *arg)
{
	if (err)
		log_error("health", c->name, "restart after unhealthy: %s", err->msg);
}

static void stopped_for_restart(struct container *c, const struct clbsd_err *err, void *arg)
{
	if (!err && !c->run.removed)
		ctr_start(c, false, restarted, NULL);
}

static void finish(struct health_run *r, bool ok, int code, const char *out, size_t len)
{
	struct daemon *d = r->d;
	r->in_flight = false;
	if (r->deadline)
		evtimer_del(r->deadline);
	probe_close(r);
	int64_t now = time_mono_ns();
	enum health_change ch = health_record(&r->st, &r->cfg, now, ok, code, out, len);
	TRACE5(health__check, r->name, ok ? "ok" : "failed", code, now - r->t0,
	       health_status_name(r->st.status));
	if (ch != HEALTH_SAME) {
		const char *status = health_status_name(r->st.status);
		json_t *attrs = json_pack("{s:s,s:i,s:i}", "status", status, "exit_code", code,
					  "failures", r->st.failures);
		json_t *o = json_stringn(r->st.last.output, r->st.last.output_len);
		json_object_set_new(attrs, "output", o ? o : json_string(""));
		log_info("health", r->name, "%s (%.*s)", status, (int)r->st.last.output_len,
			 r->st.last.output);
		daemon_event(d, "container.health", r->name, attrs);
		if (ch == HEALTH_BECAME_UNHEALTHY && r->cfg.restart_unhealthy) {
			struct container *c = ctr_find(d, r->name);
			if (c && c->run.state == CTR_RUNNING) {
				log_warn("health", r->name,
					 "unhealthy: restarting it (:restart-unhealthy)");
				ctr_stop(c, 10, stopped_for_restart, NULL);
			}
		}
		/* Dependants may have been waiting for this. */
		if (ch == HEALTH_BECAME_HEALTHY)
			reconcile_trigger(d);
	}
	if (find_run(d, r->name) == r && !r->external)
		schedule_check(r);
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
	struct health_run *r = arg;
	if (!r->in_flight)
		return;
	r->gen++; /* whatever comes later is not this check's answer */
	char msg[64];
	snprintf(msg, sizeof(msg), "timed out after %llds",
		 (long long)(r->cfg.timeout_ns / 1000000000LL));
	finish(r, false, -1, msg, strlen(msg));
}

/* The probe child has closed its end: reap it for the verdict. */
static void on_reap(evutil_socket_t fd, short what, void *arg)
{
	struct health_run *r = arg;
	int status;
	pid_t p = waitpid(r->probe_pid, &status, WNOHANG);
	if (p == 0) {
		struct timeval tv = {0, 5000};
		evtimer_add(r->reap_ev, &tv);
		return;
	}
	r->probe_pid = 0;
	bool ok = p > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0;
	int code = p > 0 && WIFEXITED(status) ? WEXITSTATUS(status) : 1;
	/* The line without its newline. */
	while (r->out.len && (r->out.data[r->out.len - 1] == '\n'))
		r->out.data[--r->out.len] = '\0';
	finish(r, ok, code, r->out.data ? r->out.data : "", r->out.len);
}

static void on_probe(evutil_socket_t fd, short what, void *arg)
{
	struct health_run *r = arg;
	char b[512];
	ssize_t n = read(fd, b, sizeof(b));
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n > 0) {
		if (r->out.len < 1024)
			buf_add(&r->out, b, (size_t)n);
		return;
	}
	event_del(r->probe_ev);
	r->reap_ev = evtimer_new(r->d->base, on_reap, r);
	on_reap(-1, 0, r);
}

struct cmd_ctx {
	struct daemon *d;
	char *name;
	uint64_t gen;
};

static void on_cmd(const struct ctr_exec_result *res, void *arg)
{
	struct cmd_ctx *x = arg;
	struct health_run *r = x->d->shutting_down ? NULL : find_run(x->d, x->name);
	if (r && r->in_flight && r->gen == x->gen) {
		struct buf b = BUF_INIT;
		if (res->failure)
			buf_adds(&b, res->failure);
		buf_add(&b, res->out, res->out_len);
		buf_add(&b, res->err, res->err_len);
		finish(r, !res->failure && res->exit_code == 0, res->exit_code,
		       b.data ? b.data : "", b.len);
		buf_release(&b);
	}
	free(x->name);
	free(x);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct health_run *r = arg;
	struct daemon *d = r->d;
	struct container *c = ctr_find(d, r->name);
	if (!c || c->run.state != CTR_RUNNING) {
		health_stop(d, r->name);
		return;
	}
	if (r->in_flight)
		return;
	struct clbsd_err err;
	clbsd_err_init(&err);
	r->in_flight = true;
	r->gen++;
	r->t0 = time_mono_ns();
	buf_reset(&r->out);
	struct timeval tv = {.tv_sec = r->cfg.timeout_ns / 1000000000LL,
			     .tv_usec = (r->cfg.timeout_ns % 1000000000LL) / 1000};
	evtimer_add(r->deadline, &tv);
	int rc;
	if (r->cfg.type == CTR_HEALTH_CMD) {
		struct cmd_ctx *x = xcalloc(1, sizeof(*x));
		x->d = d;
		x->name = xstrdup(r->name);
		x->gen = r->gen;
		json_t *req = ctr_exec_request(c, r->cmd, NULL, NULL, c->cfg.uid, c->cfg.gid);
		rc = ctr_exec_start(c, req, HEALTH_OUTPUT_MAX, on_cmd, x, &err);
		json_decref(req);
		if (rc < 0) {
			free(x->name);
			free(x);
		}
	} else {
		struct rt_probe p = {
			.kind = r->cfg.type == CTR_HEALTH_HTTP ? RT_PROBE_HTTP : RT_PROBE_TCP,
			.port = r->cfg.port,
			.path = r->http_path ? r->http_path : "/",
			.timeout_ns = r->cfg.timeout_ns,
		};
		rc = d->rt->probe(c->run.pid, &p, &r->probe_fd, &r->probe_pid, &err);
		if (rc == 0) {
			r->probe_ev =
				event_new(d->base, r->probe_fd, EV_READ | EV_PERSIST, on_probe, r);
			event_add(r->probe_ev, NULL);
		}
	}
	if (rc < 0)
		finish(r, false, -1, err.msg, strlen(err.msg));
}

static void health_start(struct daemon *d, struct container *c)
{
	/*
	 * dockerd's report of the image's HEALTHCHECK comes with the start
	 * (health_external, before this event): it stays unless a check of
	 * clbsd's replaces it below.
	 */
	struct health_run *old = find_run(d, c->name);
	if (!old || !old->external)
		health_stop(d, c->name);
	if (!c->decl.managed || !d->decl.conf)
		return;
	const struct ctr_spec *ct = conf_container_find(d->decl.conf, c->name);
	if (!ct)
		return;
	/*
	 * Without :health, the image's HEALTHCHECK (a Cblockfile's) is the
	 * container's default check; HEALTHCHECK NONE has an empty test.
	 */
	struct ctr_health h = ct->health;
	const struct image *img = image_by_id(&d->images, c->image_id);
	const struct image_health *ih = img ? img->config.health : NULL;
	if (h.type == CTR_HEALTH_NONE && ih && ih->test && ih->test[0]) {
		h = (struct ctr_health){
			.type = CTR_HEALTH_CMD,
			.cmd = ih->test,
			.interval_ns = ih->interval_ns > 0 ? ih->interval_ns : 30000000000LL,
			.timeout_ns = ih->timeout_ns > 0 ? ih->timeout_ns : 30000000000LL,
			.start_period_ns = ih->start_period_ns,
			.retries = ih->retries > 0 ? ih->retries : 3,
		};
	}
	if (h.type == CTR_HEALTH_NONE)
		return;
	health_stop(d, c->name);
	struct health_run *r = xcalloc(1, sizeof(*r));
	r->d = d;
	r->name = xstrdup(c->name);
	r->cfg = h;
	r->cmd = h.cmd ? strv_dup(h.cmd) : NULL;
	r->cfg.cmd = r->cmd;
	r->http_path = h.http_path ? xstrdup(h.http_path) : NULL;
	r->cfg.http_path = r->http_path;
	if (r->cfg.type != CTR_HEALTH_CMD && r->cfg.port <= 0)
		r->cfg.port = ct->port;
	if (r->cfg.timeout_ns <= 0)
		r->cfg.timeout_ns = 5000000000LL;
	r->probe_fd = -1;
	r->timer = evtimer_new(d->base, on_timer, r);
	r->deadline = evtimer_new(d->base, on_deadline, r);
	health_init(&r->st, time_mono_ns(), r->cfg.start_period_ns);
	r->next = d->health.runs;
	d->health.runs = r;
	schedule_check(r);
}

static void on_event(const struct event_rec *e, void *arg)
{
	struct daemon *d = arg;
	if (!e->container)
		return;
	if (strcmp(e->type, "container.started") == 0 ||
	    strcmp(e->type, "container.adopted") == 0) {
		struct container *c = ctr_find(d, e->container);
		if (c)
			health_start(d, c);
	} else if (strcmp(e->type, "container.exited") == 0 ||
		   strcmp(e->type, "container.removed") == 0) {
		health_stop(d, e->container);
	}
}

void health_external(struct daemon *d, const char *name, const char *status, int code,
		     const char *out, size_t len)
{
	struct health_run *r = find_run(d, name);
	if (r && !r->external)
		return; /* clbsd's own check wins */
	if (!r) {
		r = xcalloc(1, sizeof(*r));
		r->d = d;
		r->name = xstrdup(name);
		r->external = true;
		r->probe_fd = -1;
		/* One report is the verdict: dockerd has counted its retries already. */
		r->cfg.type = CTR_HEALTH_NONE;
		r->cfg.retries = 1;
		health_init(&r->st, time_mono_ns(), 0);
		r->next = d->health.runs;
		d->health.runs = r;
		log_info("health", name, "the image's HEALTHCHECK, run by dockerd: %s", status);
	}
	if (strcmp(status, "healthy") == 0 && r->st.status != HEALTH_HEALTHY)
		finish(r, true, code, out, len);
	else if (strcmp(status, "unhealthy") == 0 && r->st.status != HEALTH_UNHEALTHY)
		finish(r, false, code ? code : 1, out, len);
}

const char *health_of(struct daemon *d, const char *name)
{
	struct health_run *r = find_run(d, name);
	return r ? health_status_name(r->st.status) : NULL;
}

json_t *health_json(struct daemon *d, const char *name)
{
	struct health_run *r = find_run(d, name);
	if (!r)
		return NULL;
	json_t *log = json_array();
	for (size_t i = 0; i < r->st.log_len; i++) {
		const struct health_result *h = health_log_at(&r->st, i);
		json_t *o = json_stringn(h->output, h->output_len);
		json_array_append_new(log,
				      json_pack("{s:b,s:i,s:o}", "ok", h->ok, "exit_code",
						h->exit_code, "output", o ? o : json_string("")));
	}
	return json_pack("{s:s,s:i,s:I,s:o}", "status", health_status_name(r->st.status),
			 "failures", r->st.failures, "checks", (json_int_t)r->st.checks, "log",
			 log);
}

void health_init_daemon(struct daemon *d)
{
	d->health.sub = events_subscribe(&d->events, on_event, d);
}

void health_resume(struct daemon *d)
{
	/* Containers adopted before the configuration was loaded. */
	for (struct container *c = d->ctrs; c; c = c->next)
		if (c->run.state == CTR_RUNNING && !find_run(d, c->name))
			health_start(d, c);
}

void health_release_daemon(struct daemon *d)
{
	if (d->health.sub)
		events_unsubscribe(&d->events, d->health.sub);
	while (d->health.runs) {
		struct health_run *r = d->health.runs;
		d->health.runs = r->next;
		run_free(r);
	}
}
