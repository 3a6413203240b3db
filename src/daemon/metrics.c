/*
 * Prometheus metrics, the loop's side (see metrics.h): the counters the
 * engine and the API bump, the snapshot of the containers a scrape reads,
 * the cache of snapshot counts and sizes (filled on a worker: a scrape
 * never runs zfs), and the listener's configuration. The listener itself
 * and the text it serves are metrics_serve.c's.
 */
#include "metrics.h"
#include "core/config.h"
#include "net/net.h"
#include "util/json.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

const double metrics_pass_bounds[MPASS_NB] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
					      0.1,   0.25,   0.5,   1,	  2.5,	 10};

/* Snapshots: refreshed this often, and this long after a snapshot changed. */
#define SNAPS_EVERY_S 600
#define SNAPS_AFTER_S 3
/* Events within this much of each other make one snapshot of the containers. */
#define REBUILD_MS 100

/* ---- counters ---- */

static bool same(const char *x, const char *y)
{
	return x == y || (x && y && strcmp(x, y) == 0);
}

/* The entry of (a, b, k), made when new; the "other" entry past the capacity. */
static struct mtab_ent *mtab_at(struct mtab *t, const char *a, const char *b, int k)
{
	size_t n = atomic_load_explicit(&t->n, memory_order_relaxed);
	for (size_t i = 0; i < n; i++)
		if (t->e[i].k == k && same(t->e[i].a, a) && same(t->e[i].b, b))
			return &t->e[i];
	if (n == MTAB_CAP)
		return &t->e[MTAB_CAP - 1];
	struct mtab_ent *e = &t->e[n];
	if (n == MTAB_CAP - 1) {
		a = "other";
		b = b ? "other" : NULL;
		k = 0;
	}
	e->a = t->own && a ? xstrdup(a) : a;
	e->b = t->own && b ? xstrdup(b) : b;
	e->k = k;
	atomic_store_explicit(&t->n, n + 1, memory_order_release);
	return e;
}

static void mtab_release(struct mtab *t)
{
	if (!t->own)
		return;
	size_t n = atomic_load(&t->n);
	for (size_t i = 0; i < n; i++) {
		free((char *)(uintptr_t)t->e[i].a);
		free((char *)(uintptr_t)t->e[i].b);
	}
}

static void bump(_Atomic uint64_t *v, uint64_t by)
{
	atomic_fetch_add_explicit(v, by, memory_order_relaxed);
}

void metrics_pass(struct daemon *d, int64_t took_ns)
{
	struct dmetrics *m = d->metrics;
	if (!m)
		return;
	double s = (double)took_ns / 1e9;
	size_t i = 0;
	while (i < MPASS_NB && s > metrics_pass_bounds[i])
		i++;
	bump(&m->pass_bucket[i], 1);
	bump(&m->pass_sum_ns, took_ns > 0 ? (uint64_t)took_ns : 0);
	bump(&m->passes, 1);
}

void metrics_action(struct daemon *d, const char *action, const char *result)
{
	if (d->metrics)
		bump(&mtab_at(&d->metrics->actions, action, result, 0)->v, 1);
}

void metrics_hook(struct daemon *d, const char *event, bool failed)
{
	if (!d->metrics)
		return;
	struct mtab_ent *e = mtab_at(&d->metrics->hooks, event, NULL, 0);
	bump(&e->v, 1);
	if (failed)
		bump(&e->v2, 1);
}

void metrics_api_request(struct daemon *d, const char *method, const char *route, int status)
{
	if (d->metrics)
		bump(&mtab_at(&d->metrics->api, method, route, status)->v, 1);
}

/* ---- the snapshot of the containers ---- */

static void msnap_free(struct msnap *s)
{
	for (size_t i = 0; i < s->n; i++) {
		free(s->c[i].name);
		free(s->c[i].kind);
		free(s->c[i].image);
		free(s->c[i].cgroup);
	}
	free(s->c);
	for (size_t i = 0; i < s->nbk; i++)
		free(s->bk[i].name);
	free(s->bk);
	free(s);
}

/*
 * A hazard pointer (one reader): announce s, then check that it is still
 * current. If it is, the loop's swap came after the announcement, and the
 * loop sees the hazard before it frees s (both sequentially consistent);
 * if not, try the new one. The loop swaps at most every 100 ms, so the
 * retry is rare and short.
 */
struct msnap *msnap_get(struct dmetrics *m)
{
	struct msnap *s = atomic_load(&m->cur);
	for (;;) {
		atomic_store(&m->hazard, s);
		struct msnap *now = atomic_load(&m->cur);
		if (now == s)
			return s;
		s = now;
	}
}

void msnap_put(struct dmetrics *m, struct msnap *s)
{
	(void)s;
	atomic_store(&m->hazard, NULL);
}

/* Loop: free the replaced snapshots no scrape reads (all of them with all). */
static void msnap_reclaim(struct dmetrics *m, bool all)
{
	struct msnap **l = &m->retired;
	struct msnap *h = all ? NULL : atomic_load(&m->hazard);
	while (*l) {
		struct msnap *s = *l;
		if (s == h) {
			l = &s->retired_next;
			continue;
		}
		*l = s->retired_next;
		msnap_free(s);
	}
}

static void snap_ctr(struct dmetrics *m, const struct container *c, struct msnap_ctr *o)
{
	struct daemon *d = m->d;
	o->name = xstrdup(c->name);
	o->kind = xstrdup(ctr_ops_of(c)->kind);
	o->image = xstrdup(c->image_ref ? c->image_ref : "");
	o->state = c->run.state;
	o->restarts = c->run.restart_count;
	o->exit_code = c->run.exit_code;
	o->ran = c->run.finished_ns > 0;
	o->health = health_of(d, c->name);
	bool running = c->run.state == CTR_RUNNING;
	o->started_ns = running ? c->run.started_ns : 0;
	o->pid = running ? c->run.pid : 0;
	o->own_net = c->net.mode != NET_MODE_HOST;
	o->docker = c->docker.on;
	o->cgroup = running ? ctr_stats_cgroup(c) : NULL;
	o->limits = c->cfg.limits;
	o->snapshots = o->snapshot_bytes = -1;
	json_t *sz = m->snaps ? json_object_get(m->snaps, c->name) : NULL;
	if (sz) {
		o->snapshots = json_integer_value(json_array_get(sz, 0));
		o->snapshot_bytes = json_integer_value(json_array_get(sz, 1));
	}
}

/* Build a new snapshot and publish it; the old one goes with its last reader. */
static void rebuild(struct dmetrics *m)
{
	struct daemon *d = m->d;
	struct msnap *s = xcalloc(1, sizeof(*s));
	size_t n = 0;
	for (struct container *c = d->ctrs; c; c = c->next)
		n++;
	s->c = xcalloc(n ? n : 1, sizeof(*s->c));
	for (struct container *c = d->ctrs; c; c = c->next)
		if (!c->run.removed)
			snap_ctr(m, c, &s->c[s->n++]);
	/* Backups: what `clbsd status` shows, copied (backup.c owns its list). */
	json_t *bks = backup_status(d);
	s->bk = xcalloc(json_array_size(bks) + 1, sizeof(*s->bk));
	size_t k;
	json_t *bj;
	json_array_foreach(bks, k, bj)
	{
		struct msnap_bk *o = &s->bk[s->nbk++];
		o->name = xstrdup(json_string_value(json_object_get(bj, "name")));
		o->enabled = json_is_true(json_object_get(bj, "enabled"));
		o->running = json_is_true(json_object_get(bj, "running"));
		o->last_ok_ns = json_time_get(bj, "last_success");
		o->last_try_ns = json_time_get(bj, "last_attempt");
		o->next_ns = json_time_get(bj, "next_run");
		o->bytes = json_integer_value(json_object_get(bj, "size"));
		o->duration_ms = json_integer_value(json_object_get(bj, "duration_ms"));
		o->failures = json_integer_value(json_object_get(bj, "failures"));
	}
	json_decref(bks);
	s->images = d->images.n;
	for (size_t i = 0; i < d->images.n; i++)
		s->image_bytes += d->images.imgs[i]->size;
	s->snaps_at_ns = m->snaps_at_ns;
	s->built_ns = time_now_ns();
	struct msnap *old = atomic_exchange(&m->cur, s);
	if (old) {
		old->retired_next = m->retired;
		m->retired = old;
	}
	msnap_reclaim(m, false);
}

static void on_rebuild(evutil_socket_t fd, short what, void *arg)
{
	rebuild(arg);
}

/*
 * What changes without an event of its own (a backup that began, a health
 * check's first result) shows within this long.
 */
#define REFRESH_S 15
static void on_refresh(evutil_socket_t fd, short what, void *arg)
{
	struct dmetrics *m = arg;
	rebuild(m);
	struct timeval tv = {REFRESH_S, 0};
	evtimer_add(m->refresh_ev, &tv);
}

static void rebuild_soon(struct dmetrics *m)
{
	if (!evtimer_pending(m->rebuild_ev, NULL)) {
		struct timeval tv = {0, REBUILD_MS * 1000};
		evtimer_add(m->rebuild_ev, &tv);
	}
}

/* ---- snapshot counts and sizes (a worker lists them) ---- */

struct snaps_job {
	struct daemon *d;
	struct strv names;
	json_t *out; /* name -> [count, bytes] */
};

static void snaps_run(void *arg)
{
	struct snaps_job *j = arg;
	struct storage *st = &j->d->storage;
	for (size_t i = 0; i < j->names.n; i++) {
		struct storage_snapshot *s = NULL;
		size_t n = 0;
		struct clbsd_err err;
		if (st->ops->snapshot_list(st, j->names.v[i], &s, &n, &err) < 0)
			continue;
		int64_t bytes = 0;
		for (size_t k = 0; k < n; k++)
			bytes += s[k].used;
		storage_snapshots_free(s, n);
		json_object_set_new(j->out, j->names.v[i],
				    json_pack("[I,I]", (json_int_t)n, (json_int_t)bytes));
	}
}

static void snaps_schedule(struct dmetrics *m, int seconds);

static void snaps_done(void *arg)
{
	struct snaps_job *j = arg;
	struct dmetrics *m = j->d->metrics;
	if (m && !j->d->shutting_down) {
		json_decref(m->snaps);
		m->snaps = j->out;
		j->out = NULL;
		m->snaps_at_ns = time_now_ns();
		m->snaps_busy = false;
		rebuild_soon(m);
		snaps_schedule(m, m->snaps_again ? SNAPS_AFTER_S : SNAPS_EVERY_S);
		m->snaps_again = false;
	}
	json_decref(j->out);
	strv_release(&j->names);
	free(j);
}

static void on_snaps(evutil_socket_t fd, short what, void *arg)
{
	struct dmetrics *m = arg;
	struct daemon *d = m->d;
	if (m->snaps_busy) {
		m->snaps_again = true;
		return;
	}
	if (!d->storage.ops || !d->storage.ops->snapshot_list)
		return;
	struct snaps_job *j = xcalloc(1, sizeof(*j));
	j->d = d;
	j->names = (struct strv)STRV_INIT;
	j->out = json_object();
	for (struct container *c = d->ctrs; c; c = c->next)
		if (!c->run.removed)
			strv_push(&j->names, c->name);
	m->snaps_busy = true;
	work_submit_background(d, snaps_run, snaps_done, j);
}

static void snaps_schedule(struct dmetrics *m, int seconds)
{
	struct timeval tv = {seconds, 0};
	evtimer_del(m->snaps_ev);
	evtimer_add(m->snaps_ev, &tv);
}

/* ---- events ---- */

static void on_event(const struct event_rec *e, void *arg)
{
	struct dmetrics *m = arg;
	bump(&mtab_at(&m->events, e->type, NULL, 0)->v, 1);
	if (strncmp(e->type, "container.", 10) == 0 || strncmp(e->type, "image.", 6) == 0 ||
	    strncmp(e->type, "backup.", 7) == 0 || strncmp(e->type, "config.", 7) == 0)
		rebuild_soon(m);
	if (strcmp(e->type, "container.snapshot") == 0 ||
	    strcmp(e->type, "container.snapshot_destroyed") == 0 ||
	    strcmp(e->type, "container.rollback") == 0 ||
	    strcmp(e->type, "container.removed") == 0) {
		if (m->snaps_busy)
			m->snaps_again = true;
		else
			snaps_schedule(m, SNAPS_AFTER_S);
	}
}

/* ---- life ---- */

void metrics_init(struct daemon *d)
{
	struct dmetrics *m = xcalloc(1, sizeof(*m));
	m->d = d;
	m->events.own = true;
	m->hooks.own = true;
	m->rebuild_ev = evtimer_new(d->base, on_rebuild, m);
	m->snaps_ev = evtimer_new(d->base, on_snaps, m);
	m->refresh_ev = evtimer_new(d->base, on_refresh, m);
	struct timeval tv = {REFRESH_S, 0};
	evtimer_add(m->refresh_ev, &tv);
	m->sub = events_subscribe(&d->events, on_event, m);
	d->metrics = m;
	rebuild(m);
	snaps_schedule(m, SNAPS_AFTER_S);
	metrics_sync(d);
}

void metrics_sync(struct daemon *d)
{
	struct dmetrics *m = d->metrics;
	if (!m)
		return;
	/* A pass in progress keeps its configuration; the new one is next. */
	const struct conf *c = d->decl.next ? d->decl.next : d->decl.conf;
	const char *want = c ? c->host.metrics_listen : NULL;
	if (same(want, m->listen) && (!want || m->srv))
		return;
	if (m->srv) {
		mserver_stop(m->srv);
		m->srv = NULL;
		log_info("metrics", NULL, "stopped serving metrics on %s", m->listen);
	}
	free(m->listen);
	m->listen = want ? xstrdup(want) : NULL;
	free(m->error);
	m->error = NULL;
	if (!want)
		return;
	struct clbsd_err err;
	clbsd_err_init(&err);
	if (mserver_start(m, want, &m->srv, &err) < 0) {
		m->error = xstrdup(err.msg);
		log_error("metrics", NULL,
			  "%s (containers are not affected; fix (host :metrics "
			  "(:listen ...)) and reload)",
			  err.msg);
		daemon_event(d, "metrics.failed", NULL,
			     json_pack("{s:s,s:s}", "listen", want, "error", err.msg));
		return;
	}
	log_info("metrics", NULL, "serving Prometheus metrics on http://%s/metrics", want);
	daemon_event(d, "metrics.listening", NULL, json_pack("{s:s}", "listen", want));
}

json_t *metrics_status(struct daemon *d)
{
	struct dmetrics *m = d->metrics;
	if (!m || !m->listen)
		return json_null();
	return json_pack("{s:s,s:s?}", "listen", m->listen, "error", m->error);
}

void metrics_add_source(struct daemon *d, metrics_source_fn *fn, void *arg)
{
	struct dmetrics *m = d->metrics;
	if (!m)
		return;
	struct msource *s = xcalloc(1, sizeof(*s));
	s->fn = fn;
	s->arg = arg;
	/*
	 * Appended whole before it is linked; a scrape running now sees the
	 * list with or without it. Sources are added at start, not removed.
	 */
	struct msource **l = &m->sources;
	while (*l)
		l = &(*l)->next;
	__atomic_store_n(l, s, __ATOMIC_RELEASE);
}

void metrics_release(struct daemon *d)
{
	struct dmetrics *m = d->metrics;
	if (!m)
		return;
	if (m->srv)
		mserver_stop(m->srv);
	events_unsubscribe(&d->events, m->sub);
	event_free(m->rebuild_ev);
	event_free(m->snaps_ev);
	event_free(m->refresh_ev);
	/* The listener's thread is gone (mserver_stop joins it): nothing reads them. */
	struct msnap *cur = atomic_exchange(&m->cur, NULL);
	if (cur)
		msnap_free(cur);
	msnap_reclaim(m, true);
	mtab_release(&m->events);
	mtab_release(&m->hooks);
	json_decref(m->snaps);
	while (m->sources) {
		struct msource *s = m->sources;
		m->sources = s->next;
		free(s);
	}
	free(m->listen);
	free(m->error);
	free(m);
	d->metrics = NULL;
}
