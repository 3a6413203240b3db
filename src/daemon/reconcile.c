/*
 * The reconciler: the host converges on the configuration.
 *
 * The configuration (the main file, then conf.d/NAME.conf) is loaded at start, on
 * SIGHUP and on `clbsd apply`; a file that fails to load changes nothing:
 * the last good configuration stays and the errors go to status, an event
 * and the log. A pass computes plan_compute(desired, observed) (a pure
 * function, src/core/plan.c) and applies its actions, several at a time
 * (up to PASS_WIDTH): removals first, then stops (a container's dependants
 * before it), then creates, recreates and starts (a container's
 * dependencies before it). An action waits only for what it must: the
 * earlier actions of its own container, and those of the containers it
 * depends on (for a stop: of those that depend on it); independent
 * containers proceed side by side, so a pass of docker containers, each a
 * blocking create and start in dockerd, takes about as long as its
 * longest chain. One pass runs at a time; triggers during a pass schedule
 * another one.
 *
 * Ownership: only containers made by the reconciler (managed) are ever
 * recreated, stopped for a state change or removed; `clbsd run` containers
 * are never touched. A declared container that exists unmanaged is
 * reported as a conflict.
 *
 * Exits are the restart policy's business: a pass starts a declared
 * container when it makes it, when its :state turns to running, and at
 * daemon start (boot, in dependency order), not because it exited.
 *
 * A failed action marks its container failed for the pass and holds back
 * its dependants; the rest proceeds, and the next pass comes after a
 * backoff (1 s doubling up to 30 s). Every 30 s a resync pass repairs
 * drift.
 */
#include "audit_log.h"
#include "core/audit_rec.h"
#include "core/config.h"
#include "conf/live.h"
#include "net/net.h"
#include "core/backoff.h"
#include "core/plan.h"
#include "watch.h"
#include "daemon.h"
#include "util/json.h"
#include "util/trace.h"
#include "util/util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define RESYNC_S       30
#define BACKOFF_MAX_S  30
#define STOP_TIMEOUT_S 10
/*
 * Actions of one pass in flight at once. Docker actions are a create and a
 * start in dockerd, each on a worker thread of its own; eight keep a small
 * host's dockerd busy without queueing a burst of threads behind it.
 */
#define PASS_WIDTH 8

struct pass_waiter {
	pass_done_fn fn;
	void *arg;
	struct pass_waiter *next;
};

/*
 * One action of a pass and its place in the pass's graph: it starts once
 * `unmet` is 0 (the actions it waits for are done) and every action of a
 * lower rank is done (removals, then stops, then the rest). Edges only go
 * from an earlier action of the plan to a later one, so the graph has no
 * cycle.
 */
enum act_state { ACT_PENDING, ACT_RUNNING, ACT_DONE };

struct pass_act {
	struct reconcile_pass *p;
	size_t i; /* its index in p->plan */
	enum act_state state;
	unsigned rank;
	size_t unmet;
	size_t *then; /* the actions that wait for this one */
	size_t n_then;
	json_t *result; /* its entry in the pass's "actions", in plan order at the end */
	int64_t t0;	/* when it started (monotonic): its probe's duration */
};

#define PASS_RANKS 3

struct reconcile_pass {
	struct daemon *d;
	struct conf *conf; /* the configuration the pass works from (d->decl.conf) */
	struct plan plan;
	struct strv names; /* the actions' names, copied: inputs go away after planning */
	struct pass_act *acts;
	size_t left[PASS_RANKS]; /* actions of each rank not done yet */
	size_t n_done;
	size_t running;
	size_t cursor; /* actions before it are all started */
	bool pumping;  /* pass_pump() is on the stack: completions only count */
	char **failed; /* containers whose action failed in this pass */
	size_t n_failed;
	json_t *results;
	int64_t started_ns;
	uint64_t seq; /* its number, d->recon.n_passes when it started (0: a dry run) */
	bool dry_run;
	bool waiting; /* an action waits for a dependency: look again soon */
	struct pass_waiter *waiters;
};

static void pass_pump(struct reconcile_pass *p);
static void schedule(struct daemon *d, int64_t delay_ms);

/* ---- configuration ---- */
/* ---- keys that apply live ---- */

struct props_job {
	struct daemon *d;
	char *name;
	char *text;
	struct storage_props props;
	char *compression;
	struct clbsd_err err;
	int rc;
};

static void props_run(void *arg)
{
	struct props_job *j = arg;
	struct storage *st = &j->d->storage;
	clbsd_err_init(&j->err);
	j->rc = st->ops->ctr_set_props(st, j->name, &j->props, &j->err);
}

static void props_done(void *arg)
{
	struct props_job *j = arg;
	struct container *c = ctr_find(j->d, j->name);
	if (j->rc < 0) {
		log_error("reconcile", j->name, "storage properties: %s", j->err.msg);
		daemon_event(j->d, "reconcile.failed", j->name,
			     json_pack("{s:s,s:s}", "action", "storage", "error", j->err.msg));
	} else if (c) {
		free(c->storage.applied);
		c->storage.applied = xstrdup(j->text);
		struct clbsd_err err;
		if (ctr_save_config(c, &err) < 0)
			log_warn("container", c->name, "%s", err.msg);
		log_info("reconcile", j->name, "storage properties now %s", j->text);
		daemon_event(j->d, "container.updated", j->name,
			     json_pack("{s:s,s:s}", "key", ":storage", "value", j->text));
	}
	free(j->name);
	free(j->text);
	free(j->compression);
	free(j);
}

/*
 * Keys that change an existing container without a recreate: :restart
 * (the policy the next exit is judged by) and :storage (zfs properties,
 * set on its dataset). The others that apply live are read where they are
 * used (health, hooks, snapshots, routes).
 */
static void apply_live(struct daemon *d)
{
	if (!d->decl.conf)
		return;
	for (struct container *c = d->ctrs; c; c = c->next) {
		if (!c->decl.managed || c->run.removing || c->run.removed)
			continue;
		const struct ctr_spec *ct = conf_container_find(d->decl.conf, c->name);
		if (!ct)
			continue;
		/* One restart enum: the declaration's policy is the container's. */
		enum ctr_restart rp = ct->restart;
		int max = ct->restart == CTR_RESTART_ON_FAILURE ? ct->restart_max : 0;
		if (rp != c->cfg.restart || max != c->cfg.max_retries) {
			c->cfg.restart = rp;
			c->cfg.max_retries = max;
			struct clbsd_err err;
			if (ctr_save_config(c, &err) < 0)
				log_warn("container", c->name, "%s", err.msg);
			log_info("reconcile", c->name, "restart policy updated");
		}
		struct storage_props want = {.quota = ct->storage_quota,
					     .reservation = ct->storage_reservation,
					     .recordsize = ct->storage_recordsize,
					     .compression = ct->storage_compression};
		autofree char *text = ctr_storage_text(&want);
		const char *had = c->storage.applied ? c->storage.applied : "0/0/0/";
		if (strcmp(text, had) == 0 || c->storage.busy)
			continue;
		if (!(d->storage.caps & STORAGE_CAP_PROPS)) {
			log_warn("reconcile", c->name,
				 ":storage properties need zfs storage; ignored on %s",
				 d->storage.ops->name);
			free(c->storage.applied);
			c->storage.applied = xstrdup(text);
			continue;
		}
		/* Unset now means back to the default; set means that value. */
		struct props_job *j = xcalloc(1, sizeof(*j));
		j->d = d;
		j->name = xstrdup(c->name);
		j->text = steal_ptr(&text);
		j->compression = xstrdup(want.compression ? want.compression : "");
		j->props = (struct storage_props){
			.quota = want.quota ? want.quota : STORAGE_PROP_RESET,
			.reservation = want.reservation ? want.reservation : STORAGE_PROP_RESET,
			.recordsize = want.recordsize ? want.recordsize : STORAGE_PROP_RESET,
			.compression = j->compression,
		};
		free(c->storage.applied);
		c->storage.applied = xstrdup(j->text); /* one job per change */
		work_submit(d, props_run, props_done, j);
	}
}

/*
 * Load the files. With `if_changed`, files whose digest is the last
 * attempt's are not loaded again: *unchanged is set and nothing else
 * happens (no generation, no event, no record). That is the file watch's
 * case: it also sees the daemon's own writes (the live file of a PATCH or
 * a stop) and files a `clbsd apply` loaded already, and reloading those
 * would count one change twice. The last attempt's digest is kept whether
 * it was accepted or rejected: the load is a function of the bytes (and
 * main_seen, which a rejected load does not change), so the same bytes
 * would be rejected again with the same diagnostics.
 */
static int reload(struct daemon *d, bool if_changed, bool *unchanged, struct clbsd_err *err)
{
	struct conf_diags diags = CONF_DIAGS_INIT;
	struct conf *conf = NULL;
	char digest[65];
	bool exists = fs_exists(d->config);
	int lr = conf_load_digest(d->config, d->confd, &conf, digest, &diags);
	if (if_changed && strcmp(digest, d->decl.digest) == 0) {
		conf_free(conf);
		conf_diags_release(&diags);
		*unchanged = true;
		/* The same bytes as a rejected load: the same answer. */
		if (d->decl.error)
			return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL, "%s", d->decl.error);
		return 0;
	}
	memcpy(d->decl.digest, digest, sizeof(digest));
	/*
	 * A main file that was there and is gone is far more likely an editor
	 * or a mistake than a wish to remove every declared container.
	 */
	if (!exists && d->decl.main_seen) {
		conf_free(conf);
		conf = NULL;
		conf_diags_release(&diags);
		conf_diags_add(&diags, d->config, 0, 0,
			       "the configuration file disappeared; restore it (or write an "
			       "empty one to remove every declared container)");
		lr = -EINVAL;
	}
	if (lr < 0) {
		free(d->decl.error);
		d->decl.error = conf_diags_format(&diags);
		size_t n = conf_diags_count(&diags);
		daemon_event(d, "config.rejected", NULL,
			     json_pack("{s:s,s:I,s:I}", "errors", d->decl.error, "count",
				       (json_int_t)n, "generation",
				       (json_int_t)d->decl.generation));
		log_error("config", NULL, "%s rejected (%zu error%s); keeping generation %llu:\n%s",
			  d->config, n, n == 1 ? "" : "s", (unsigned long long)d->decl.generation,
			  d->decl.error);
		int r = clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL, "%s", d->decl.error);
		conf_diags_release(&diags);
		return r;
	}
	conf_diags_release(&diags);
	free(d->decl.error);
	d->decl.error = NULL;
	d->decl.main_seen = exists;
	d->decl.generation++;
	d->decl.loaded_ns = time_now_ns();
	const struct conf_host *h = &conf->host;
	const struct audit_settings aset = {
		h->audit_max_size ? h->audit_max_size : AUDIT_MAX_SIZE_DEFAULT,
		h->audit_files ? h->audit_files : AUDIT_KEEP_DEFAULT,
		h->audit_fsync != 0,
	};
	audit_log_configure(d->audit, &aset);
	/* A pass in progress keeps the configuration it started with. */
	if (d->recon.pass) {
		conf_free(d->decl.next);
		d->decl.next = conf;
	} else {
		conf_free(d->decl.conf);
		d->decl.conf = conf;
		free(d->decl.hashes);
		d->decl.hashes = NULL;
		hooks_sync(d);
		backup_sync(d);
		dnet_sync(d);
		apply_live(d);
	}
	lisp_sync(d);
	docker_sync(d);
	metrics_sync(d);
	daemon_event(d, "config.loaded", NULL,
		     json_pack("{s:I,s:I}", "generation", (json_int_t)d->decl.generation,
			       "containers", (json_int_t)conf->ncontainers));
	log_info("config", NULL, "generation %llu: %zu containers declared",
		 (unsigned long long)d->decl.generation, conf->ncontainers);
	/* The storage driver is chosen at start (daemon.c); say so when the file now differs. */
	bool zfs = conf->host.driver == CONF_STORAGE_ZFS;
	if (zfs != (d->storage.pool != NULL) ||
	    (zfs && strcmp(conf->host.root, d->storage.dataset) != 0))
		log_warn("config", NULL,
			 "(host :storage ...) now asks for %s storage%s%s; the daemon keeps %s "
			 "storage%s%s until it is restarted (and refuses to start on a different "
			 "driver than its containers use)",
			 zfs ? "zfs" : "dir", zfs ? " on " : "", zfs ? conf->host.root : "",
			 d->storage.ops->name, d->storage.pool ? " on " : "",
			 d->storage.pool ? d->storage.dataset : "");
	return 0;
}

int config_reload(struct daemon *d, struct clbsd_err *err)
{
	return reload(d, false, NULL, err);
}

/* ---- desired and observed ---- */

struct inputs {
	struct plan_desired *want;
	size_t n_want;
	struct plan_observed *have;
	size_t n_have;
	char (*hashes)[65];
	char (*uhashes)[65]; /* update_hash: with the existing container's live part */
	char **changed;
};

/* The keys whose printed lines differ between two printings of a container. */
static char *changed_keys(const char *old_text, const char *new_text)
{
	if (!old_text)
		return NULL;
	struct buf b = BUF_INIT;
	autofree char *a = xstrdup(old_text);
	autofree char *n = xstrdup(new_text);
	/* Lines start with "  :key"; compare the line of each key. */
	char *save = NULL;
	for (char *line = strtok_r(n, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		const char *k = line + strspn(line, " ");
		if (*k != ':')
			continue;
		size_t kl = strcspn(k, " ");
		const char *pos = strstr(a, line);
		bool same = pos && (pos == a || pos[-1] == '\n') &&
			    (pos[strlen(line)] == '\n' || pos[strlen(line)] == '\0' ||
			     pos[strlen(line)] == ')');
		if (!same)
			buf_addf(&b, "%s%.*s", b.len ? ", " : "", (int)kl, k);
	}
	/* Keys that disappeared. */
	char *save2 = NULL;
	autofree char *a2 = xstrdup(old_text);
	for (char *line = strtok_r(a2, "\n", &save2); line; line = strtok_r(NULL, "\n", &save2)) {
		const char *k = line + strspn(line, " ");
		if (*k != ':')
			continue;
		size_t kl = strcspn(k, " ");
		autofree char *key = xstrndup(k, kl);
		autofree char *needle = xasprintf("\n  %s ", key);
		autofree char *nn = xasprintf("\n%s", new_text);
		if (!strstr(nn, needle))
			buf_addf(&b, "%s%s", b.len ? ", " : "", key);
	}
	return b.len ? buf_detach(&b, NULL) : (buf_release(&b), NULL);
}

static int ctr_by_name(const void *a, const void *b)
{
	return strcmp((*(struct container *const *)a)->name, (*(struct container *const *)b)->name);
}

/* The spec hashes of the configuration in force, computed once per load. */
static const char (*hashes_of(struct daemon *d, const struct conf *conf))[65]
{
	if (conf != d->decl.conf || !conf)
		return NULL;
	if (!d->decl.hashes) {
		d->decl.hashes = xcalloc(conf->ncontainers + 1, sizeof(*d->decl.hashes));
		for (size_t i = 0; i < conf->ncontainers; i++)
			ctr_spec_hash(conf->containers[i], d->decl.hashes[i]);
	}
	return (const char(*)[65])d->decl.hashes;
}

/*
 * A declared container whose image is one the configuration builds
 * (image NAME :build ...) and that was built anew since the container was
 * made: it is recreated on the new image.
 */
static bool image_rebuilt(struct daemon *d, const struct conf *conf, const struct container *c)
{
	const struct ctr_spec *ct = conf ? conf_container_find(conf, c->name) : NULL;
	if (!ct || !c->decl.managed)
		return false;
	autofree char *want = image_ref_normalise(ct->image);
	bool built = false;
	for (size_t i = 0; i < conf->nimages; i++) {
		autofree char *n = image_ref_normalise(conf->images[i]->name);
		built |= conf->images[i]->build && strcmp(n, want) == 0;
	}
	if (!built)
		return false;
	const struct image *img = image_lookup(&d->images, want);
	return img && strcmp(img->id, c->image_id) != 0;
}

/*
 * The container's network is not the declared one although its spec hash
 * matches: it was made by a clbsd that did not plumb networks yet (its
 * record has none). It is recreated to get it.
 */
static bool net_outdated(const struct conf *conf, const struct container *c)
{
	const struct ctr_spec *ct = conf ? conf_container_find(conf, c->name) : NULL;
	if (!ct || !c->decl.managed)
		return false;
	switch (ct->netmode) {
	case CTR_NET_BRIDGE:
	case CTR_NET_NAMED:
		return !ctr_net_attached(c);
	case CTR_NET_HOST:
		return c->net.mode != NET_MODE_HOST;
	case CTR_NET_NONE:
		return c->net.mode != NET_MODE_NONE;
	}
	return false;
}

static void inputs_build(struct daemon *d, struct conf *conf, struct inputs *in)
{
	memset(in, 0, sizeof(*in));
	size_t nc = conf ? conf->ncontainers : 0;
	in->want = xcalloc(nc + 1, sizeof(*in->want));
	in->hashes = xcalloc(nc + 1, sizeof(*in->hashes));
	in->uhashes = xcalloc(nc + 1, sizeof(*in->uhashes));
	in->changed = xcalloc(nc + 1, sizeof(char *));
	/* Containers sorted by name, for lookups in O(log n). */
	size_t n = 0;
	for (struct container *c = d->ctrs; c; c = c->next)
		n++;
	struct container **sorted = xcalloc(n + 1, sizeof(*sorted));
	size_t ns = 0;
	for (struct container *c = d->ctrs; c; c = c->next)
		if (!c->run.removed)
			sorted[ns++] = c;
	qsort(sorted, ns, sizeof(*sorted), ctr_by_name);
	const char(*cached)[65] = hashes_of(d, conf);
	for (size_t i = 0; i < nc; i++) {
		const struct ctr_spec *ct = conf->containers[i];
		struct plan_desired *w = &in->want[in->n_want++];
		if (cached)
			memcpy(in->hashes[i], cached[i], 65);
		else
			ctr_spec_hash(ct, in->hashes[i]);
		w->name = ct->name;
		w->hash = in->hashes[i];
		w->running = ct->state == CTR_DESIRED_RUNNING;
		w->deps = (const char *const *)ct->depends_on;
		w->n_deps = strv_len(ct->depends_on);
		struct container key = {.name = ct->name}, *kp = &key;
		struct container **found = bsearch(&kp, sorted, ns, sizeof(*sorted), ctr_by_name);
		struct container *c = found ? *found : NULL;
		if (c && c->decl.managed && c->decl.spec_text &&
		    strcmp(c->decl.spec_hash, w->hash) != 0) {
			autofree char *now = ctr_spec_print(ct);
			in->changed[i] = changed_keys(c->decl.spec_text, now);
		} else if (c && image_rebuilt(d, conf, c)) {
			in->changed[i] = xstrdup(":image (rebuilt)");
		} else if (c && net_outdated(conf, c)) {
			in->changed[i] = xstrdup(":network (made before networking)");
		}
		w->changed = in->changed[i];
		/*
		 * Its :limits are written in place (a native container's cgroup;
		 * a docker one's through dockerd, unless a limit is lifted).
		 * Only a changed spec can be such an update: the second hash is
		 * not made on a pass where nothing changed.
		 */
		struct rt_limits to = {.memory = ct->memory, .cpus = ct->cpus, .pids = ct->pids};
		if (c && c->decl.managed && strcmp(c->decl.spec_hash, w->hash) != 0 &&
		    (ct->kind == CTR_KIND_NATIVE ||
		     (c->docker.on && docker_limits_in_place(&c->cfg.limits, &to)))) {
			struct ctr_live live = {.memory = c->cfg.limits.memory,
						.cpus = c->cfg.limits.cpus,
						.pids = c->cfg.limits.pids};
			ctr_spec_hash_live(ct, &live, in->uhashes[i]);
			w->update_hash = in->uhashes[i];
		}
	}
	in->have = xcalloc(n + d->importing.n + 1, sizeof(*in->have));
	/*
	 * A declared container an import is receiving is there as declared
	 * (transfer.c): the pass must not make it meanwhile.
	 */
	for (size_t k = 0; k < d->importing.n; k++) {
		char *name = d->importing.v[k];
		struct container key = {.name = name}, *kp = &key;
		if (bsearch(&kp, sorted, ns, sizeof(*sorted), ctr_by_name))
			continue;
		for (size_t i = 0; i < in->n_want; i++)
			if (strcmp(in->want[i].name, name) == 0)
				in->have[in->n_have++] =
					(struct plan_observed){.name = name,
							       .hash = in->want[i].hash,
							       .managed = true,
							       .running = in->want[i].running};
	}
	free(sorted);
	for (struct container *c = d->ctrs; c; c = c->next) {
		/* Moved away (clbsd migrate --keep left it): no longer managed here. */
		if (c->run.removed || conf_moved_find(conf, c->name))
			continue;
		struct plan_observed *h = &in->have[in->n_have++];
		h->name = c->name;
		h->hash = c->decl.managed ? c->decl.spec_hash : NULL;
		if (image_rebuilt(d, conf, c))
			h->hash = "image rebuilt"; /* differs from every spec hash: recreate */
		else if (net_outdated(conf, c))
			h->hash = "network outdated";
		/*
		 * `clbsd undo` turned it back from the declared spec: it counts as
		 * up to date until the configuration asks for something else.
		 */
		for (size_t k = 0; c->decl.managed && c->undo.undone_hash[0] && k < in->n_want; k++)
			if (strcmp(in->want[k].name, c->name) == 0 &&
			    strcmp(in->want[k].hash, c->undo.undone_hash) == 0)
				h->hash = in->want[k].hash;
		h->managed = c->decl.managed;
		/*
		 * Exits belong to the restart policy: a container the reconciler
		 * started for its current desired state counts as running.
		 */
		h->running = ctr_is_active(c) || c->run.state == CTR_RESTARTING || c->decl.booted;
	}
}

static void inputs_release(struct inputs *in, size_t nc)
{
	for (size_t i = 0; i < nc; i++)
		free(in->changed[i]);
	free(in->changed);
	free(in->hashes);
	free(in->uhashes);
	free(in->want);
	free(in->have);
}

static json_t *action_json(const struct plan_action *a)
{
	return json_pack("{s:s,s:s,s:b,s:s}", "op", plan_op_name(a->op), "name", a->name, "start",
			 a->start, "reason", a->reason);
}

json_t *reconcile_plan(struct daemon *d, struct clbsd_err *err)
{
	/* What applying the files as they are now would do. */
	struct conf_diags diags = CONF_DIAGS_INIT;
	struct conf *conf = NULL;
	if (conf_load(d->config, d->confd, &conf, &diags) < 0) {
		autofree char *text = conf_diags_format(&diags);
		conf_diags_release(&diags);
		clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL, "%s", text);
		return NULL;
	}
	conf_diags_release(&diags);
	struct inputs in;
	inputs_build(d, conf, &in);
	struct plan plan;
	json_t *out = NULL;
	if (plan_compute(in.want, in.n_want, in.have, in.n_have, &plan, err) == 0) {
		out = json_array();
		/* What apply would find: a docker action waits while its endpoint is down. */
		const char *down = docker_down(d);
		for (size_t i = 0; i < plan.n; i++) {
			const struct plan_action *a = &plan.actions[i];
			json_t *j = action_json(a);
			const struct ctr_spec *ct = conf_container_find(conf, a->name);
			if (down && ct && ct->kind == CTR_KIND_DOCKER &&
			    (a->op == PLAN_START || a->op == PLAN_CREATE ||
			     a->op == PLAN_RECREATE)) {
				json_object_set_new(j, "waiting", json_true());
				json_object_set_new(
					j, "error",
					json_sprintf("waiting for the docker endpoint: %s", down));
			}
			json_array_append_new(out, j);
		}
		plan_release(&plan);
	}
	inputs_release(&in, conf->ncontainers);
	conf_free(conf);
	return out;
}

/* ---- creating a declared container ---- */

static int create_declared(struct daemon *d, const struct ctr_spec *ct, struct container **out,
			   struct clbsd_err *err)
{
	char hash[65];
	ctr_spec_hash(ct, hash);
	autofree char *text = ctr_spec_print(ct);
	struct container *c;
	/* The declaration as it is: the spec the configuration reader made. */
	int r = ctr_create_managed(d, ct, hash, text, &c, err);
	if (r < 0)
		return r;
	*out = c;
	return 0;
}

/* ---- the pass ---- */

static bool failed_in_pass(struct reconcile_pass *p, const char *name)
{
	for (size_t i = 0; i < p->n_failed; i++)
		if (strcmp(p->failed[i], name) == 0)
			return true;
	return false;
}

static void record(struct pass_act *x, const char *error)
{
	struct reconcile_pass *p = x->p;
	const struct plan_action *a = &p->plan.actions[x->i];
	json_t *j = action_json(a);
	json_object_set_new(j, "ok", json_boolean(!error));
	if (error) {
		json_object_set_new(j, "error", json_string(error));
		p->failed = xrealloc(p->failed, (p->n_failed + 1) * sizeof(char *));
		p->failed[p->n_failed++] = xstrdup(a->name);
		metrics_action(p->d, plan_op_name(a->op), "failed");
		daemon_event(p->d, "reconcile.failed", a->name,
			     json_pack("{s:s,s:s}", "action", plan_op_name(a->op), "error", error));
		log_error("reconcile", a->name, "%s: %s", a->reason, error);
	} else {
		metrics_action(p->d, plan_op_name(a->op), "ok");
		log_info("reconcile", a->name, "%s", a->reason);
	}
	TRACE6(reconcile__action__done, p->seq, plan_op_name(a->op), a->name,
	       error ? "failed" : "ok", time_mono_ns() - x->t0, error ? error : "");
	json_decref(x->result);
	x->result = j;
}

/* The action is over: what waited for it may start. */
static void act_finish(struct pass_act *x)
{
	struct reconcile_pass *p = x->p;
	x->state = ACT_DONE;
	p->running--;
	p->left[x->rank]--;
	p->n_done++;
	for (size_t k = 0; k < x->n_then; k++)
		p->acts[x->then[k]].unmet--;
	pass_pump(p);
}

static void step_done(struct container *c, const struct clbsd_err *err, void *arg)
{
	struct pass_act *x = arg;
	const struct plan_action *a = &x->p->plan.actions[x->i];
	if (!err && c && a->start &&
	    (a->op == PLAN_CREATE || a->op == PLAN_RECREATE || a->op == PLAN_START))
		c->decl.booted = true;
	record(x, err ? err->msg : NULL);
	act_finish(x);
}

/* Not done and not failed: the next pass carries it out. */
static void act_waiting(struct pass_act *x, const char *msg)
{
	const struct plan_action *a = &x->p->plan.actions[x->i];
	json_t *j = action_json(a);
	json_object_set_new(j, "ok", json_false());
	json_object_set_new(j, "waiting", json_true());
	json_object_set_new(j, "error", json_string(msg));
	json_decref(x->result);
	x->result = j;
	metrics_action(x->p->d, plan_op_name(a->op), "waiting");
	log_debug("reconcile", a->name, "%s", msg);
	TRACE6(reconcile__action__done, x->p->seq, plan_op_name(a->op), a->name, "waiting",
	       time_mono_ns() - x->t0, msg);
	act_finish(x);
}

static void after_create(struct pass_act *x)
{
	struct reconcile_pass *p = x->p;
	const struct plan_action *a = &p->plan.actions[x->i];
	const struct ctr_spec *ct = p->conf ? conf_container_find(p->conf, a->name) : NULL;
	struct container *c = NULL;
	struct clbsd_err err;
	clbsd_err_init(&err);
	if (!ct || create_declared(p->d, ct, &c, &err) < 0) {
		if (!ct)
			clbsd_err_setmsg(&err, CLBSD_E_INTERNAL, ENOENT, "no longer declared");
		step_done(NULL, &err, x);
		return;
	}
	if (a->start)
		ctr_start(c, false, step_done, x);
	else
		step_done(c, NULL, x);
}

static void recreate_removed(struct container *c, const struct clbsd_err *err, void *arg)
{
	struct pass_act *x = arg;
	if (err) {
		step_done(c, err, x);
		return;
	}
	after_create(x);
}

/*
 * A container starts after its dependencies run, and are healthy where they
 * have a check: the first dependency that is not there yet, and why.
 */
static const char *dep_not_ready(struct reconcile_pass *p, const char *name, const char **why)
{
	const struct ctr_spec *ct = p->conf ? conf_container_find(p->conf, name) : NULL;
	for (size_t i = 0; ct && ct->depends_on && ct->depends_on[i]; i++) {
		const char *dep = ct->depends_on[i];
		/* Moved to another host (clbsd migrate): it runs there, not here. */
		if (conf_moved_find(p->conf, dep))
			continue;
		struct container *c = ctr_find(p->d, dep);
		if (!c || c->run.state != CTR_RUNNING) {
			*why = "is not running";
			return dep;
		}
		/* Its :health, or a check it has without one: its image's HEALTHCHECK. */
		const struct ctr_spec *dc = conf_container_find(p->conf, dep);
		const char *h = health_of(p->d, dep);
		if ((dc && dc->health.type != CTR_HEALTH_NONE) || h) {
			if (!h || strcmp(h, "healthy") != 0) {
				*why = h && strcmp(h, "unhealthy") == 0 ? "is unhealthy"
									: "is not healthy yet";
				return dep;
			}
		}
	}
	return NULL;
}

/* Does one of the container's declared dependencies fail in this pass? */
static const char *held_back(struct reconcile_pass *p, const char *name)
{
	const struct ctr_spec *ct = p->conf ? conf_container_find(p->conf, name) : NULL;
	for (size_t i = 0; ct && ct->depends_on && ct->depends_on[i]; i++)
		if (failed_in_pass(p, ct->depends_on[i]))
			return ct->depends_on[i];
	return NULL;
}

static void pass_end(struct reconcile_pass *p);

/* Carry out one action; its completion (now or later) goes through act_finish(). */
static void act_start(struct pass_act *x)
{
	struct reconcile_pass *p = x->p;
	struct daemon *d = p->d;
	const struct plan_action *a = &p->plan.actions[x->i];
	struct container *c = ctr_find(d, a->name);
	struct clbsd_err err;
	clbsd_err_init(&err);
	/*
	 * An import is receiving it (transfer.c): whatever was planned for
	 * the name waits; the pass after the import sees what it made.
	 */
	for (size_t k = 0; k < d->importing.n; k++) {
		if (strcmp(d->importing.v[k], a->name) == 0) {
			p->waiting = true;
			act_waiting(x, "an import is receiving it");
			return;
		}
	}
	const char *dep = held_back(p, a->name);
	if (dep && a->op != PLAN_STOP && a->op != PLAN_REMOVE && a->op != PLAN_UPDATE) {
		clbsd_err_setmsg(&err, CLBSD_E_CONFLICT, EAGAIN, "held back: dependency %s failed",
				 dep);
		step_done(c, &err, x);
		return;
	}
	const char *why;
	if ((a->op == PLAN_START ||
	     ((a->op == PLAN_CREATE || a->op == PLAN_RECREATE) && a->start)) &&
	    (dep = dep_not_ready(p, a->name, &why))) {
		/* Not a failure: the next pass (soon, or when it turns healthy) retries. */
		autofree char *msg = xasprintf("dependency %s %s", dep, why);
		p->waiting = true;
		act_waiting(x, msg);
		return;
	}
	/*
	 * A docker container while its endpoint does not answer: waiting, not
	 * failed; the pass that follows the endpoint's return carries it out.
	 * No retry timer: the endpoint's return (docker.up) triggers the pass.
	 */
	const struct ctr_spec *dspec = p->conf ? conf_container_find(p->conf, a->name) : NULL;
	const char *down = docker_down(d);
	if (down && dspec && dspec->kind == CTR_KIND_DOCKER &&
	    (a->op == PLAN_START || a->op == PLAN_CREATE || a->op == PLAN_RECREATE)) {
		autofree char *msg = xasprintf("waiting for the docker endpoint: %s", down);
		act_waiting(x, msg);
		return;
	}
	switch (a->op) {
	case PLAN_CONFLICT:
		clbsd_err_setmsg(&err, CLBSD_E_CONFLICT, EEXIST, "%s", a->reason);
		step_done(c, &err, x);
		return;
	case PLAN_REMOVE:
		if (!c) {
			step_done(NULL, NULL, x);
			return;
		}
		ctr_remove(c, true, step_done, x);
		return;
	case PLAN_STOP:
		if (!c) {
			step_done(NULL, NULL, x);
			return;
		}
		c->decl.booted = false;
		ctr_stop(c, STOP_TIMEOUT_S, step_done, x);
		return;
	case PLAN_START:
		if (!c) {
			clbsd_err_setmsg(&err, CLBSD_E_NOTFOUND, ENOENT, "gone");
			step_done(NULL, &err, x);
			return;
		}
		ctr_start(c, false, step_done, x);
		return;
	case PLAN_CREATE:
		after_create(x);
		return;
	case PLAN_UPDATE: {
		const struct ctr_spec *ct = p->conf ? conf_container_find(p->conf, a->name) : NULL;
		if (!c || !ct) {
			clbsd_err_setmsg(&err, CLBSD_E_NOTFOUND, ENOENT, "gone");
			step_done(c, &err, x);
			return;
		}
		char hash[65];
		ctr_spec_hash(ct, hash);
		autofree char *text = ctr_spec_print(ct);
		struct rt_limits lim = {.memory = ct->memory, .cpus = ct->cpus, .pids = ct->pids};
		if (ctr_update_limits(c, &lim, hash, text, step_done, x, &err) < 0)
			step_done(c, &err, x);
		return;
	}
	case PLAN_RECREATE: {
		if (!c) {
			after_create(x);
			return;
		}
		/* Keep the old one for `clbsd undo` unless the new spec says not to. */
		const struct ctr_spec *ct = p->conf ? conf_container_find(p->conf, a->name) : NULL;
		/* A docker container's volumes and state are set aside as a native one's. */
		if (ct && ct->snapshot_before_change && c->decl.managed &&
		    docker_store_can_aside(c))
			ctr_set_aside(c, recreate_removed, x);
		else
			ctr_remove(c, true, recreate_removed, x);
		return;
	}
	}
}

static bool rank_open(const struct reconcile_pass *p, unsigned rank)
{
	for (unsigned r = 0; r < rank; r++)
		if (p->left[r])
			return false;
	return true;
}

/*
 * Start every action that may start, up to PASS_WIDTH in flight, and end
 * the pass when all are done. Completions that come while it runs (an
 * action that finishes at once) only count; the loop here picks up what
 * they made ready, so the stack does not grow with the plan.
 */
static void pass_pump(struct reconcile_pass *p)
{
	if (p->pumping)
		return;
	p->pumping = true;
	bool again = true;
	while (again && !p->dry_run) {
		again = false;
		for (size_t i = p->cursor; i < p->plan.n && p->running < PASS_WIDTH; i++) {
			struct pass_act *x = &p->acts[i];
			if (x->state != ACT_PENDING) {
				if (i == p->cursor)
					p->cursor++;
				continue;
			}
			if (!rank_open(p, x->rank))
				break; /* ranks only grow along the plan */
			if (x->unmet)
				continue;
			x->state = ACT_RUNNING;
			p->running++;
			again = true;
			x->t0 = time_mono_ns();
			TRACE3(reconcile__action__start, p->seq,
			       plan_op_name(p->plan.actions[i].op), p->plan.actions[i].name);
			act_start(x);
		}
	}
	p->pumping = false;
	if (p->dry_run || p->n_done == p->plan.n)
		pass_end(p);
}

static unsigned rank_of(enum plan_op op)
{
	return op == PLAN_REMOVE ? 0 : op == PLAN_STOP ? 1 : 2;
}

static void edge(struct reconcile_pass *p, size_t from, size_t to)
{
	if (from >= to)
		return; /* only forward: the plan's order is already a valid one */
	struct pass_act *f = &p->acts[from];
	f->then = xrealloc(f->then, (f->n_then + 1) * sizeof(size_t));
	f->then[f->n_then++] = to;
	p->acts[to].unmet++;
}

static const struct plan_action *sort_actions;
static int act_by_name(const void *a, const void *b)
{
	size_t x = *(const size_t *)a, y = *(const size_t *)b;
	int c = strcmp(sort_actions[x].name, sort_actions[y].name);
	return c ? c : (x > y) - (x < y);
}

/* The actions on `name`, in plan order: *first in `by`, and their number. */
static size_t actions_of(const struct reconcile_pass *p, const size_t *by, const char *name,
			 size_t *first)
{
	size_t lo = 0, hi = p->plan.n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (strcmp(p->plan.actions[by[mid]].name, name) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	size_t n = 0;
	while (lo + n < p->plan.n && strcmp(p->plan.actions[by[lo + n]].name, name) == 0)
		n++;
	*first = lo;
	return n;
}

/*
 * What each action waits for: the earlier actions on its own container
 * (its events stay in order), and by :depends-on, for a stop the stops of
 * its dependants, for the rest the actions on its dependencies. Ranks
 * (removals, stops, the rest) are kept by pass_pump().
 */
static void pass_graph(struct reconcile_pass *p)
{
	size_t n = p->plan.n;
	p->acts = xcalloc(n + 1, sizeof(*p->acts));
	size_t *by = xcalloc(n + 1, sizeof(size_t));
	for (size_t i = 0; i < n; i++) {
		p->acts[i] =
			(struct pass_act){.p = p, .i = i, .rank = rank_of(p->plan.actions[i].op)};
		p->left[p->acts[i].rank]++;
		by[i] = i;
	}
	sort_actions = p->plan.actions;
	qsort(by, n, sizeof(size_t), act_by_name);
	sort_actions = NULL;
	for (size_t k = 1; k < n; k++)
		if (strcmp(p->plan.actions[by[k - 1]].name, p->plan.actions[by[k]].name) == 0)
			edge(p, by[k - 1], by[k]);
	for (size_t i = 0; i < n; i++) {
		const struct plan_action *a = &p->plan.actions[i];
		const struct ctr_spec *ct = p->conf ? conf_container_find(p->conf, a->name) : NULL;
		unsigned rank = p->acts[i].rank;
		for (size_t k = 0; ct && rank > 0 && ct->depends_on && ct->depends_on[k]; k++) {
			size_t first, m = actions_of(p, by, ct->depends_on[k], &first);
			for (size_t j = first; j < first + m; j++) {
				size_t o = by[j];
				if (p->acts[o].rank != rank)
					continue;
				if (rank == 1)
					edge(p, i, o); /* the dependency stops after this one */
				else
					edge(p, o, i);
			}
		}
	}
	free(by);
}

static void pass_free(struct reconcile_pass *p)
{
	for (size_t i = 0; p->acts && i < p->plan.n; i++) {
		free(p->acts[i].then);
		json_decref(p->acts[i].result);
	}
	free(p->acts);
	plan_release(&p->plan);
	strv_release(&p->names);
	for (size_t i = 0; i < p->n_failed; i++)
		free(p->failed[i]);
	free(p->failed);
	json_decref(p->results);
	free(p);
}

static void pass_end(struct reconcile_pass *p)
{
	struct daemon *d = p->d;
	int64_t took = time_now_ns() - p->started_ns;
	/* The actions' results in plan order, whatever order they finished in. */
	for (size_t i = 0; p->acts && i < p->plan.n; i++)
		if (p->acts[i].result)
			json_array_append(p->results, p->acts[i].result);
	json_t *summary = json_pack(
		"{s:o,s:o,s:I,s:I,s:I,s:b,s:O}", "started_at", json_time(p->started_ns),
		"finished_at", json_time(time_now_ns()), "duration_ms",
		(json_int_t)(took / 1000000), "generation", (json_int_t)d->decl.generation,
		"failures", (json_int_t)p->n_failed, "dry_run", p->dry_run, "actions", p->results);
	if (!p->dry_run) {
		TRACE4(reconcile__pass__end, p->seq, p->plan.n, p->n_failed, took);
		metrics_pass(d, took);
		d->recon.pass = NULL;
		json_decref(d->recon.last);
		d->recon.last = json_incref(summary);
		daemon_event(d, "reconcile.finished", NULL,
			     json_pack("{s:I,s:I,s:I}", "actions", (json_int_t)p->plan.n,
				       "failures", (json_int_t)p->n_failed, "duration_ms",
				       (json_int_t)(took / 1000000)));
		if (d->decl.next) {
			conf_free(d->decl.conf);
			d->decl.conf = d->decl.next;
			d->decl.next = NULL;
			free(d->decl.hashes);
			d->decl.hashes = NULL;
			d->recon.pending = true;
			hooks_sync(d);
			backup_sync(d);
			dnet_sync(d);
			docker_sync(d);
			apply_live(d);
		} else if (p->plan.n) {
			/* New containers have layers and volumes now: watch them. */
			hooks_sync(d);
			backup_sync(d);
		}
		d->recon.backoff = p->n_failed ? d->recon.backoff + 1 : 0;
	}
	struct pass_waiter *w = p->waiters;
	p->waiters = NULL;
	while (w) {
		struct pass_waiter *n = w->next;
		w->fn(d, summary, w->arg);
		free(w);
		w = n;
	}
	json_decref(summary);
	bool dry = p->dry_run;
	bool p_waiting = p->waiting;
	pass_free(p);
	if (dry)
		return;
	if (d->recon.pending) {
		d->recon.pending = false;
		schedule(d, 0);
	} else if (p_waiting) {
		schedule(d, 1000);
	} else if (d->recon.backoff) {
		/* The first failed pass waits 1 s. */
		schedule(d,
			 backoff_delay(1000, BACKOFF_MAX_S * 1000, (unsigned)d->recon.backoff - 1));
	} else {
		schedule(d, RESYNC_S * 1000);
	}
}

void reconcile_now(struct daemon *d, bool dry_run, pass_done_fn fn, void *arg)
{
	if (!d->decl.conf) {
		/*
		 * No good configuration yet (the file failed to load at start):
		 * planning against nothing would remove every managed container.
		 */
		json_t *summary = json_pack(
			"{s:s,s:o}", "error",
			"no valid configuration has been loaded; fix it and "
			"reload (SIGHUP or clbsd apply)",
			"config_error", d->decl.error ? json_string(d->decl.error) : json_null());
		if (fn)
			fn(d, summary, arg);
		json_decref(summary);
		return;
	}
	if (!dry_run && d->recon.pass) {
		/* One pass at a time: this request is answered by the next one. */
		d->recon.pending = true;
		if (fn) {
			struct pass_waiter *w = xcalloc(1, sizeof(*w));
			w->fn = fn;
			w->arg = arg;
			struct pass_waiter **pp = &d->recon.next_waiters;
			while (*pp)
				pp = &(*pp)->next;
			*pp = w;
		}
		return;
	}
	struct reconcile_pass *p = xcalloc(1, sizeof(*p));
	p->d = d;
	p->conf = d->decl.conf;
	p->dry_run = dry_run;
	p->results = json_array();
	p->started_ns = time_now_ns();
	if (!dry_run) {
		/* Requests that waited for this pass. */
		p->waiters = d->recon.next_waiters;
		d->recon.next_waiters = NULL;
	}
	if (fn) {
		struct pass_waiter *w = xcalloc(1, sizeof(*w));
		w->fn = fn;
		w->arg = arg;
		w->next = p->waiters;
		p->waiters = w;
	}
	struct clbsd_err err;
	clbsd_err_init(&err);
	if (!dry_run)
		images_sync(d);
	struct inputs in;
	inputs_build(d, d->decl.conf, &in);
	int r = plan_compute(in.want, in.n_want, in.have, in.n_have, &p->plan, &err);
	/* Actions point at names in the inputs; keep copies the pass owns. */
	for (size_t i = 0; r == 0 && i < p->plan.n; i++) {
		strv_push(&p->names, p->plan.actions[i].name);
		p->plan.actions[i].name = p->names.v[p->names.n - 1];
	}
	inputs_release(&in, d->decl.conf ? d->decl.conf->ncontainers : 0);
	if (r < 0) {
		log_error("reconcile", NULL, "cannot plan: %s", err.msg);
		json_array_append_new(p->results, json_pack("{s:s}", "error", err.msg));
		p->n_failed = 0;
	}
	if (!dry_run) {
		d->recon.pass = p;
		p->seq = ++d->recon.n_passes;
		TRACE2(reconcile__pass__start, p->seq, p->plan.n);
		daemon_event(d, "reconcile.started", NULL,
			     json_pack("{s:I,s:I}", "generation", (json_int_t)d->decl.generation,
				       "actions", (json_int_t)p->plan.n));
		pass_graph(p);
	}
	pass_pump(p);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	reconcile_now(arg, false, NULL, NULL);
}

static void schedule(struct daemon *d, int64_t delay_ms)
{
	struct timeval tv = {.tv_sec = delay_ms / 1000, .tv_usec = (delay_ms % 1000) * 1000};
	evtimer_del(d->recon.timer);
	evtimer_add(d->recon.timer, &tv);
}

void reconcile_trigger(struct daemon *d)
{
	if (d->recon.pass)
		d->recon.pending = true;
	else
		schedule(d, 0);
}

json_t *reconcile_status(struct daemon *d)
{
	json_t *j = json_pack("{s:s,s:s,s:I,s:o,s:b,s:b}", "config", d->config, "confd", d->confd,
			      "generation", (json_int_t)d->decl.generation, "loaded_at",
			      json_time(d->decl.loaded_ns), "pass_running", d->recon.pass != NULL,
			      "pass_pending", d->recon.pending);
	json_object_set_new(j, "declared",
			    json_integer(d->decl.conf ? (json_int_t)d->decl.conf->ncontainers : 0));
	json_object_set_new(j, "lisp", lisp_status(d));
	json_object_set_new(j, "backups", backup_status(d));
	json_object_set_new(j, "config_error",
			    d->decl.error ? json_string(d->decl.error) : json_null());
	json_object_set_new(j, "last_pass",
			    d->recon.last ? json_incref(d->recon.last) : json_null());
	/* What clbsd migrate moved away: (moved NAME :to DEST :at TIME) forms. */
	json_t *moved = json_array();
	for (size_t i = 0; d->decl.conf && i < d->decl.conf->nmoved; i++) {
		const struct conf_moved *m = &d->decl.conf->moved[i];
		json_array_append_new(moved, json_pack("{s:s,s:s,s:s?}", "name", m->name, "to",
						       m->to, "at", m->at));
	}
	json_object_set_new(j, "moved", moved);
	return j;
}

static int reload_by(struct daemon *d, const char *source, bool if_changed, bool *unchanged,
		     struct clbsd_err *err)
{
	int r = reload(d, if_changed, unchanged, err);
	if (unchanged && *unchanged)
		return r;
	json_t *f = json_pack("{s:s,s:s,s:s,s:I,s:s}", "event", "config.reload", "source", source,
			      "config", d->config, "generation", (json_int_t)d->decl.generation,
			      "result", r == 0 ? "loaded" : "rejected");
	if (r < 0)
		json_object_set_new(f, "error", json_string(err->msg));
	daemon_audit(d, f);
	return r;
}

int config_reload_by(struct daemon *d, const char *source, struct clbsd_err *err)
{
	return reload_by(d, source, false, NULL, err);
}

static void files_changed(void *arg)
{
	struct daemon *d = arg;
	struct clbsd_err err;
	bool unchanged = false;
	int r = reload_by(d, "watch", true, &unchanged, &err);
	if (unchanged) {
		log_debug("config", NULL, "%s: the files are as last loaded; no reload", d->config);
		return;
	}
	log_info("config", NULL, "%s changed; reloaded", d->config);
	if (r == 0)
		reconcile_trigger(d);
}

int reconcile_record_state(struct daemon *d, const char *name, bool running, struct clbsd_err *err)
{
	struct container *c = ctr_find(d, name);
	if (!d->decl.conf || !c || !c->decl.managed || !conf_container_find(d->decl.conf, name))
		return 0;
	if (live_set_state(d->confd, name, running ? "running" : "stopped", err) < 0)
		return -err->code;
	daemon_event(d, "config.live", name,
		     json_pack("{s:s}", "state", running ? "running" : "stopped"));
	/*
	 * Settled for the reconciler either way: it will not start a stopped
	 * container behind the operator's back, even while an unrelated error
	 * keeps the new configuration from loading.
	 */
	c->decl.booted = true;
	/* The watch would notice too; reloading now makes the answer consistent. */
	struct clbsd_err rerr;
	if (config_reload(d, &rerr) < 0)
		log_warn("config", name,
			 "recorded :state %s, but the configuration does not "
			 "load: %s",
			 running ? "running" : "stopped", rerr.msg);
	return 0;
}

int reconcile_live_check(struct daemon *d, const char *name, const char *text, size_t len,
			 struct conf **out, struct clbsd_err *err)
{
	struct conf_diags diags = CONF_DIAGS_INIT;
	struct conf *conf = NULL;
	if (conf_load_live(d->config, d->confd, text, len, &conf, &diags) < 0) {
		autofree char *msg = conf_diags_format(&diags);
		conf_diags_release(&diags);
		size_t l = strlen(msg);
		while (l && msg[l - 1] == '\n')
			msg[--l] = '\0';
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
					"%s: the change is refused, nothing was recorded or "
					"applied:\n%s",
					name, msg);
	}
	conf_diags_release(&diags);
	*out = conf;
	return 0;
}

int reconcile_live_write(struct daemon *d, const char *name, const char *text, size_t len,
			 json_t *what, struct clbsd_err *err)
{
	if (live_write(d->confd, text, len, err) < 0) {
		json_decref(what);
		return clbsd_err_prefix(err, "live change for %s", name);
	}
	daemon_event(d, "config.live", name, what);
	struct clbsd_err rerr;
	if (config_reload(d, &rerr) < 0)
		log_warn("config", name,
			 "recorded a live change, but the configuration does not "
			 "load: %s",
			 rerr.msg);
	return 0;
}

/*
 * Write `text` as the live file after checking the whole configuration
 * with it, announce the change, and reload. Nothing written on a refusal.
 */
static int record_live(struct daemon *d, const char *name, const char *text, size_t len,
		       json_t *what, struct clbsd_err *err)
{
	struct conf *conf = NULL;
	if (reconcile_live_check(d, name, text, len, &conf, err) < 0) {
		json_decref(what);
		return -err->code;
	}
	conf_free(conf);
	return reconcile_live_write(d, name, text, len, what, err);
}

/* A PATCH of the live part alone, waiting for the container to take it. */
struct patch_job {
	struct daemon *d;
	char *name;
	char *text;
	size_t len;
	json_t *what;
	struct rt_limits old_lim;
	char old_hash[65];
	char *old_text;
	record_done_fn fn;
	void *arg;
};

static void patch_taken(struct container *c, const struct clbsd_err *err, void *arg)
{
	struct patch_job *j = arg;
	struct clbsd_err werr;
	clbsd_err_init(&werr);
	if (err) {
		json_decref(j->what);
		j->fn(j->d, err, j->arg);
	} else if (reconcile_live_write(j->d, j->name, j->text, j->len, j->what, &werr) < 0) {
		/* Not recorded: the container goes back to what the files say. */
		struct clbsd_err e2;
		if (c && ctr_update_limits(c, &j->old_lim, j->old_hash, j->old_text, NULL, NULL,
					   &e2) < 0)
			log_error("reconcile", j->name, "putting back the old limits: %s", e2.msg);
		j->fn(j->d, &werr, j->arg);
	} else {
		j->fn(j->d, NULL, j->arg);
	}
	free(j->name);
	free(j->text);
	free(j->old_text);
	free(j);
}

/*
 * The limits the new configuration gives running native container c when
 * they are the only change to it (its hash with c's live part is c's):
 * true with *lim, *hash and *text set.
 */
static bool only_limits(const struct conf *conf, const struct container *c, struct rt_limits *lim,
			char hash[65], char **text)
{
	const struct ctr_spec *ns = conf_container_find(conf, c->name);
	if (!ns || !c->decl.managed || ns->kind != CTR_KIND_NATIVE || c->run.state != CTR_RUNNING ||
	    c->run.starting)
		return false;
	struct ctr_live live = {.memory = c->cfg.limits.memory,
				.cpus = c->cfg.limits.cpus,
				.pids = c->cfg.limits.pids};
	char uh[65];
	ctr_spec_hash(ns, hash);
	ctr_spec_hash_live(ns, &live, uh);
	if (strcmp(c->decl.spec_hash, hash) == 0 || strcmp(c->decl.spec_hash, uh) != 0)
		return false;
	*lim = (struct rt_limits){.memory = ns->memory, .cpus = ns->cpus, .pids = ns->pids};
	*text = ctr_spec_print(ns);
	return true;
}

void reconcile_record_keys(struct daemon *d, const char *name, const struct live_kv *kv, size_t n,
			   record_done_fn fn, void *arg)
{
	struct clbsd_err err;
	clbsd_err_init(&err);
	autofree char *text = NULL;
	size_t len = 0;
	bool changed = false;
	if (live_render(d->confd, name, kv, n, &text, &len, &changed, &err) < 0) {
		fn(d, &err, arg);
		return;
	}
	if (!changed) {
		fn(d, NULL, arg);
		return;
	}
	struct conf *conf = NULL;
	if (reconcile_live_check(d, name, text, len, &conf, &err) < 0) {
		fn(d, &err, arg);
		return;
	}
	json_t *keys = json_object();
	for (size_t i = 0; i < n; i++)
		json_object_set_new(keys, kv[i].key + 1,
				    kv[i].value ? json_string(kv[i].value) : json_null());
	json_t *what = json_pack("{s:o}", "keys", keys);
	struct container *c = ctr_find(d, name);
	struct rt_limits lim;
	char hash[65];
	char *ntext = NULL;
	bool in_place = c && only_limits(conf, c, &lim, hash, &ntext);
	conf_free(conf);
	if (!in_place) {
		if (reconcile_live_write(d, name, text, len, what, &err) < 0)
			fn(d, &err, arg);
		else
			fn(d, NULL, arg);
		return;
	}
	/*
	 * The container takes the limits first and they are recorded only
	 * then: when the kernel refuses them, nothing changes anywhere.
	 */
	struct patch_job *j = xcalloc(1, sizeof(*j));
	j->d = d;
	j->name = xstrdup(name);
	j->text = steal_ptr(&text);
	j->len = len;
	j->what = what;
	j->old_lim = c->cfg.limits;
	memcpy(j->old_hash, c->decl.spec_hash, sizeof(j->old_hash));
	j->old_text = c->decl.spec_text ? xstrdup(c->decl.spec_text) : NULL;
	j->fn = fn;
	j->arg = arg;
	int r = ctr_update_limits(c, &lim, hash, ntext, patch_taken, j, &err);
	free(ntext);
	if (r < 0) {
		json_decref(j->what);
		free(j->name);
		free(j->text);
		free(j->old_text);
		free(j);
		fn(d, &err, arg);
	}
}

int reconcile_declare(struct daemon *d, const char *name, const struct live_kv *kv, size_t n,
		      struct clbsd_err *err)
{
	struct buf f = BUF_INIT;
	buf_adds(&f, "(container ");
	sexp_print_name(&f, name);
	for (size_t i = 0; i < n; i++)
		if (kv[i].value)
			buf_addf(&f, " %s %s", kv[i].key, kv[i].value);
	buf_addc(&f, ')');
	autofree char *form = buf_detach(&f, NULL);
	autofree char *text = NULL;
	size_t len = 0;
	bool changed = false;
	if (live_render_decl(d->confd, name, form, &text, &len, &changed, err) < 0)
		return -err->code;
	if (!changed)
		return 0;
	return record_live(d, name, text, len, json_pack("{s:s}", "declared", form), err);
}

int reconcile_undeclare(struct daemon *d, const char *name, struct clbsd_err *err)
{
	const struct ctr_spec *s = d->decl.conf ? conf_container_find(d->decl.conf, name) : NULL;
	if (!s)
		return clbsd_err_setmsg(err, CLBSD_E_NOTFOUND, ENOENT,
					"no container \"%s\" is declared (clbsd plan lists "
					"what the configuration declares)",
					name);
	const char *base = s->pos.file ? strrchr(s->pos.file, '/') : NULL;
	bool live = base && strcmp(base + 1, LIVE_FILE_NAME) == 0;
	autofree char *form = NULL;
	if (!live) {
		struct buf f = BUF_INIT;
		buf_adds(&f, "(undeclare ");
		sexp_print_name(&f, name);
		buf_addc(&f, ')');
		form = buf_detach(&f, NULL);
	}
	autofree char *text = NULL;
	size_t len = 0;
	bool changed = false;
	if (live_render_decl(d->confd, name, form, &text, &len, &changed, err) < 0)
		return -err->code;
	if (!changed)
		return 0;
	return record_live(d, name, text, len, json_pack("{s:b}", "declared", 0), err);
}

void reconcile_init(struct daemon *d)
{
	d->recon.timer = evtimer_new(d->base, on_timer, d);
	hooks_init(d);
	backup_init(d);
	health_init_daemon(d);
	struct clbsd_err werr;
	d->decl.watch = conf_watch_new(d->base, d->config, d->confd, files_changed, d, &werr);
	if (!d->decl.watch)
		log_warn("config", NULL,
			 "not watching the configuration files (%s); reload with "
			 "SIGHUP or clbsd apply",
			 werr.msg);
	struct clbsd_err err;
	/* A bad file at start leaves nothing declared; running containers stay. */
	config_reload_by(d, "start", &err);
	if (!d->decl.conf)
		dnet_sync(d); /* networks made through the API still work */
	health_resume(d);
	schedule(d, 0);
}

void reconcile_release(struct daemon *d)
{
	lisp_release(d);
	if (d->decl.watch)
		conf_watch_free(d->decl.watch);
	health_release_daemon(d);
	hooks_release(d);
	backup_release(d);
	for (struct pass_waiter *w = d->recon.next_waiters, *n; w; w = n) {
		n = w->next;
		free(w);
	}
	if (d->recon.timer)
		event_free(d->recon.timer);
	conf_free(d->decl.conf);
	conf_free(d->decl.next);
	free(d->decl.hashes);
	free(d->decl.error);
	json_decref(d->recon.last);
}
