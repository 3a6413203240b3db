/*
 * The daemon's side of ingress (docs/ingress.md): keep the routing container
 * and its nginx.conf in step with the configuration and the containers.
 *
 * - Routes come from the configuration (a container with :domain and
 *   :port); the daemon tells each route's address (its first network's
 *   address, 127.0.0.1 on the host network) and state (up only when it runs
 *   and, with a health check, is healthy).
 * - A sync is asked for on every event that can change a route (config
 *   loaded, a container started, exited, removed, its health changed; the
 *   manager subscribes to the event bus for them) and runs a little later,
 *   coalesced; one runs at a time, and a request that comes during one runs
 *   again after it.
 * - A sync renders and applies on a worker thread (local CA leaves, render,
 *   `nginx -t`, rename, SIGHUP to the routing container's nginx). Applying
 *   an unchanged text does nothing. A rejected text leaves the old one
 *   serving and is announced as an ingress.rejected event.
 * - The routing container `ingress` is a native container on the host
 *   network running the host's nginx, from the image clbsd-ingress:latest
 *   the daemon assembles from the host's nginx binary and its libraries
 *   (image_stage_from_host). Its directory <root>/ingress is mounted at the
 *   same path, so `nginx -t` on the host reads what nginx in the container
 *   reads. It is made when the first route appears and removed when the
 *   last goes. The reconciler never touches it (it is not declared, and the
 *   name is reserved).
 */
#include "daemon.h"
#include "core/config.h"
#include "daemon/ingress_conf.h"
#include "ingress/ingress.h"
#include "net/net.h"
#include "util/json.h"
#include "util/trace.h"
#include "util/util.h"

#include <errno.h>
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SYNC_DELAY_MS 20

struct dingress {
	struct event *timer;
	bool busy;     /* a job (image, apply) runs */
	bool pending;  /* a sync was asked for while busy */
	bool starting; /* the routing container is being made or started */
	char *dir;     /* <root>/ingress */
	char *nginx;   /* the host's nginx, or NULL */
	bool warned_nginx;
	int n_routes; /* of the last sync */
	struct events_sub *sub;
};

static void sync_now(struct daemon *d);

/* Whether an event of this type can change a route. */
static bool event_matters(const char *type)
{
	static const char *const types[] = {"config.loaded",	    "container.started",
					    "container.exited",	    "container.removed",
					    "container.health",	    "container.adopted",
					    "container.restarting", "container.created"};
	for (size_t i = 0; i < ARRAY_SIZE(types); i++)
		if (strcmp(type, types[i]) == 0)
			return true;
	return false;
}

static void on_event(const struct event_rec *ev, void *ctx)
{
	if (event_matters(ev->type))
		ingress_trigger(ctx);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	sync_now(arg);
}

void ingress_trigger(struct daemon *d)
{
	struct dingress *g = d->ingress;
	if (!g || d->shutting_down)
		return;
	if (g->busy) {
		g->pending = true;
		return;
	}
	if (!evtimer_pending(g->timer, NULL)) {
		struct timeval tv = {0, SYNC_DELAY_MS * 1000};
		evtimer_add(g->timer, &tv);
	}
}

/* The host's nginx: the binary both `nginx -t` and the image use. */
static char *find_nginx(void)
{
	static const char *const candidates[] = {"/usr/sbin/nginx", "/usr/bin/nginx",
						 "/usr/local/sbin/nginx"};
	for (size_t i = 0; i < ARRAY_SIZE(candidates); i++)
		if (access(candidates[i], X_OK) == 0)
			return xstrdup(candidates[i]);
	return NULL;
}

void ingress_init(struct daemon *d)
{
	struct dingress *g = xcalloc(1, sizeof(*g));
	g->timer = evtimer_new(d->base, on_timer, d);
	g->dir = xasprintf("%s/ingress", d->root);
	g->nginx = find_nginx();
	d->ingress = g;
	g->sub = events_subscribe(&d->events, on_event, d);
}

void ingress_release(struct daemon *d)
{
	struct dingress *g = d->ingress;
	if (!g)
		return;
	events_unsubscribe(&d->events, g->sub);
	event_free(g->timer);
	free(g->dir);
	free(g->nginx);
	free(g);
	d->ingress = NULL;
}

/* ---- routes ---- */

static int lookup(void *ctx, const char *name, const char **address, enum ingress_state *state)
{
	struct daemon *d = ctx;
	struct container *c = ctr_find(d, name);
	*address = NULL;
	*state = INGRESS_DOWN;
	if (!c)
		return 0;
	if (c->net.mode == NET_MODE_HOST)
		*address = "127.0.0.1";
	else if (ctr_net_attached(c) && c->net.addrs && c->net.addrs[0] && *c->net.addrs[0])
		*address = c->net.addrs[0];
	if (c->run.starting || c->run.state == CTR_CREATED || c->run.state == CTR_RESTARTING) {
		*state = INGRESS_STARTING;
		return 0;
	}
	if (c->run.state != CTR_RUNNING)
		return 0;
	const char *h = health_of(d, name);
	if (!h || strcmp(h, "healthy") == 0)
		*state = INGRESS_UP;
	else if (strcmp(h, "starting") == 0)
		*state = INGRESS_STARTING;
	return 0;
}

/* ---- the apply job ---- */

struct apply_job {
	struct daemon *d;
	struct ingress_set set;
	struct ingress_target target;
	char *nginx;
	char *text;
	struct ingress_outcome outcome;
	struct clbsd_err err;
	int rc;
	int issued;
	int64_t t0; /* when it was handed to a worker (monotonic): its probe's duration */
};

static void apply_run(void *arg)
{
	struct apply_job *j = arg;
	const struct ingress_settings *s = &j->set.settings;
	clbsd_err_init(&j->err);
	j->rc = ingress_prepare_dir(s->dir, &j->err);
	if (j->rc == 0 && s->tls_mode == INGRESS_TLS_AUTO) {
		j->rc = ingress_ca_ensure(s->ca_dir, &j->err);
		if (j->rc == 0) {
			j->issued = ingress_ca_ensure_routes(s, j->set.routes, j->set.n, &j->err);
			j->rc = j->issued < 0 ? j->issued : 0;
		}
	}
	if (j->rc == 0)
		j->rc = ingress_render(s, j->set.routes, j->set.n, &j->text, &j->err);
	if (j->rc == 0)
		j->rc = ingress_nginx_ops()->apply(&j->target, j->text, &j->outcome, &j->err);
}

static void ensure_container(struct daemon *d);

/* The ingress__reload probe's result (docs/tracing.md). */
static const char *outcome_text(const struct apply_job *j)
{
	if (j->outcome.rejected)
		return "rejected";
	if (j->rc < 0)
		return "failed";
	if (!j->outcome.changed)
		return "unchanged";
	return j->outcome.reloaded ? "reloaded" : "written";
}

static void apply_done(void *arg)
{
	struct apply_job *j = arg;
	struct daemon *d = j->d;
	struct dingress *g = d->ingress;
	if (j->outcome.rejected) {
		log_error("ingress", NULL, "%s", j->err.msg);
		daemon_event(d, "ingress.rejected", NULL,
			     json_pack("{s:s}", "message",
				       j->outcome.message ? j->outcome.message : j->err.msg));
	} else if (j->rc < 0) {
		log_error("ingress", NULL, "%s", j->err.msg);
		daemon_event(d, "ingress.failed", NULL, json_pack("{s:s}", "message", j->err.msg));
	} else if (j->outcome.changed) {
		log_info("ingress", NULL, "%zu route%s, nginx %s", j->set.n,
			 j->set.n == 1 ? "" : "s",
			 j->outcome.reloaded ? "reloaded" : "takes it when it starts");
		daemon_event(d, "ingress.applied", NULL,
			     json_pack("{s:i,s:b}", "routes", (int)j->set.n, "reloaded",
				       j->outcome.reloaded));
	}
	if (j->issued > 0)
		log_info("ingress", NULL, "the local CA issued %d certificate%s", j->issued,
			 j->issued == 1 ? "" : "s");
	bool written = j->rc == 0;
	TRACE4(ingress__reload, (int)j->set.n, outcome_text(j), time_mono_ns() - j->t0,
	       j->rc < 0 ? j->err.msg : "");
	ingress_set_release(&j->set);
	ingress_outcome_release(&j->outcome);
	free(j->text);
	free(j->nginx);
	free(j);
	g->busy = false;
	/* The first good text is on disk: nginx can start on it. */
	if (written)
		ensure_container(d);
	if (g->pending) {
		g->pending = false;
		ingress_trigger(d);
	}
}

/* ---- the routing container and its image ---- */

struct image_job {
	struct daemon *d;
	char *staging;
	char *nginx;
	struct image_config cfg;
	struct clbsd_err err;
	int rc;
};

static void image_run(void *arg)
{
	struct image_job *j = arg;
	const char *bins[] = {j->nginx, NULL};
	clbsd_err_init(&j->err);
	j->rc = image_stage_from_host(j->staging, bins, &j->cfg, &j->err);
}

static void image_done(void *arg)
{
	struct image_job *j = arg;
	struct daemon *d = j->d;
	struct dingress *g = d->ingress;
	struct image *img = NULL;
	if (j->rc == 0)
		j->rc = image_commit(&d->images, j->staging, &j->cfg, INGRESS_CTR_IMAGE,
				     ctr_image_in_use, d, &img, &j->err);
	else
		fs_rm_rf(j->staging, &(struct clbsd_err){0});
	if (j->rc < 0) {
		log_error("ingress", NULL, "the routing image: %s", j->err.msg);
		daemon_event(d, "ingress.failed", NULL, json_pack("{s:s}", "message", j->err.msg));
	} else {
		log_info("ingress", NULL, "made image %s from the host's %s", INGRESS_CTR_IMAGE,
			 j->nginx);
	}
	bool made = j->rc == 0;
	image_config_release(&j->cfg);
	free(j->staging);
	free(j->nginx);
	free(j);
	g->busy = false;
	if (g->pending || made) {
		g->pending = false;
		ingress_trigger(d);
	}
}

static void started(struct container *c, const struct clbsd_err *err, void *arg)
{
	struct daemon *d = arg;
	d->ingress->starting = false;
	if (err)
		log_error("ingress", NULL, "the routing container: %s", err->msg);
	/* Its nginx read the file as it started; a later change reloads it. */
	ingress_trigger(d);
}

/* Make and start the routing container once its nginx.conf exists. */
static void ensure_container(struct daemon *d)
{
	struct dingress *g = d->ingress;
	if (g->starting || g->n_routes == 0 || d->shutting_down)
		return;
	struct container *c = ctr_find(d, INGRESS_CTR_NAME);
	/* A restarting one is the restart policy's (with its backoff). */
	if (c && (ctr_is_active(c) || c->run.removing || c->run.starting ||
		  c->run.state == CTR_RESTARTING))
		return;
	struct clbsd_err err;
	clbsd_err_init(&err);
	if (!c) {
		autofree char *prefix = xasprintf("%s/", g->dir);
		autofree char *conf = xasprintf("%s/nginx.conf", g->dir);
		autofree char *elog = xasprintf("%s/logs/error.log", g->dir);
		json_t *vols = json_array();
		json_array_append_new(vols,
				      json_pack("{s:s,s:s}", "source", g->dir, "dest", g->dir));
		/* :tls files are read by nginx at their host paths. */
		struct strv dirs = STRV_INIT;
		for (size_t i = 0; d->decl.conf && i < d->decl.conf->ncontainers; i++) {
			const struct ctr_spec *ct = d->decl.conf->containers[i];
			const char *files[] = {ct->tls_cert, ct->tls_key};
			for (size_t k = 0; k < 2; k++) {
				if (!files[k])
					continue;
				autofree char *dir = xstrdup(files[k]);
				char *slash = strrchr(dir, '/');
				if (slash && slash != dir)
					*slash = '\0';
				bool seen = false;
				for (size_t m = 0; m < dirs.n; m++)
					seen |= strcmp(dirs.v[m], dir) == 0;
				if (!seen && fs_is_dir(dir)) {
					strv_push(&dirs, dir);
					json_array_append_new(vols, json_pack("{s:s,s:s,s:b}",
									      "source", dir, "dest",
									      dir, "readonly", 1));
				}
			}
		}
		strv_release(&dirs);
		/* The image's entrypoint is the nginx binary; these are its arguments. */
		json_t *req =
			json_pack("{s:s,s:s,s:[s,s,s,s,s,s,s,s],s:s,s:o,s:s,s:s}", "name",
				  INGRESS_CTR_NAME, "image", INGRESS_CTR_IMAGE, "command", "-p",
				  prefix, "-c", conf, "-e", elog, "-g", "daemon off;", "network",
				  "host", "volumes", vols, "restart", "always", "user", "0:0");
		struct ctr_spec *spec;
		int r = ctr_spec_from_json(req, &spec, &err);
		json_decref(req);
		if (r == 0) {
			r = ctr_create(d, spec, &c, &err);
			ctr_spec_free(spec);
		}
		if (r < 0) {
			log_error("ingress", NULL, "the routing container: %s", err.msg);
			daemon_event(d, "ingress.failed", NULL,
				     json_pack("{s:s}", "message", err.msg));
			return;
		}
		log_info("ingress", NULL, "made the routing container %s", INGRESS_CTR_NAME);
	}
	g->starting = true;
	ctr_start(c, false, started, d);
}

static void removed(struct container *c, const struct clbsd_err *err, void *arg)
{
	struct daemon *d = arg;
	d->ingress->starting = false;
	if (err)
		log_warn("ingress", NULL, "removing the routing container: %s", err->msg);
}

static void sync_now(struct daemon *d)
{
	struct dingress *g = d->ingress;
	if (g->busy) {
		g->pending = true;
		return;
	}
	struct ingress_set set;
	struct clbsd_err err;
	clbsd_err_init(&err);
	if (!d->decl.conf)
		return;
	if (ingress_set_from_conf(d->decl.conf, g->dir, lookup, d, &set, &err) < 0) {
		log_error("ingress", NULL, "%s", err.msg);
		daemon_event(d, "ingress.failed", NULL, json_pack("{s:s}", "message", err.msg));
		return;
	}
	g->n_routes = (int)set.n;
	struct container *c = ctr_find(d, INGRESS_CTR_NAME);
	/*
	 * While its nginx starts it holds the listen addresses without being
	 * the master to signal yet: wait for the start (started() triggers).
	 */
	if (set.n > 0 && (g->starting || (c && c->run.starting))) {
		ingress_set_release(&set);
		return;
	}
	if (set.n == 0) {
		ingress_set_release(&set);
		/* No route left: the routing container goes (its directory stays). */
		if (c && !c->run.removing && !g->starting) {
			g->starting = true;
			log_info("ingress", NULL, "no route left; removing the routing container");
			ctr_remove(c, true, removed, d);
		}
		return;
	}
	if (!g->nginx) {
		ingress_set_release(&set);
		if (!g->warned_nginx)
			log_error("ingress", NULL,
				  "containers have :domain, but nginx is not "
				  "installed on this host (scripts/deps.sh installs it)");
		g->warned_nginx = true;
		return;
	}
	g->busy = true;
	if (!image_lookup(&d->images, INGRESS_CTR_IMAGE)) {
		ingress_set_release(&set);
		struct image_job *ij = xcalloc(1, sizeof(*ij));
		ij->d = d;
		ij->nginx = xstrdup(g->nginx);
		if (image_staging_new(&d->images, &ij->staging, &err) < 0) {
			log_error("ingress", NULL, "%s", err.msg);
			free(ij->nginx);
			free(ij);
			g->busy = false;
			return;
		}
		work_submit(d, image_run, image_done, ij);
		return;
	}
	struct apply_job *j = xcalloc(1, sizeof(*j));
	j->d = d;
	j->set = set;
	j->nginx = xstrdup(g->nginx);
	j->target = (struct ingress_target){
		.dir = j->set.settings.dir,
		.nginx = j->nginx,
		/* Never the pid in nginx.pid: that one is of the container's pid namespace. */
		.master = c && c->run.state == CTR_RUNNING && c->run.pid > 0 ? c->run.pid : -1,
	};
	j->t0 = time_mono_ns();
	work_submit(d, apply_run, apply_done, j);
}

void ingress_doctor(struct daemon *d, const char *name, json_t *checks, int *bad)
{
	const struct ctr_spec *ct = d->decl.conf ? conf_container_find(d->decl.conf, name) : NULL;
	if (!ct || !ct->domains || !ct->port || !d->ingress)
		return;
	struct dingress *g = d->ingress;
	const char *addr;
	enum ingress_state state;
	lookup(d, name, &addr, &state);
	struct container *r = ctr_find(d, INGRESS_CTR_NAME);
#define LINE(ok, ...)                                                                              \
	do {                                                                                       \
		json_array_append_new(checks, json_sprintf(__VA_ARGS__));                          \
		if (!(ok))                                                                         \
			(*bad)++;                                                                  \
	} while (0)
	if (!r || r->run.state != CTR_RUNNING)
		LINE(false, "bad ingress: the routing container is not running; fix: see 'clbsd "
			    "logs ingress' and 'clbsd events --type ingress'");
	else
		LINE(true, "ok ingress: the routing container runs nginx (pid %d)",
		     (int)r->run.pid);
	if (!addr)
		LINE(false,
		     "bad ingress: %s has no address to route to; fix: give it a network "
		     "(:network bridge or a network name, or host)",
		     name);
	else if (state == INGRESS_UP)
		LINE(true, "ok ingress: %s takes traffic at %s:%d", name, addr, ct->port);
	else if (state == INGRESS_STARTING)
		LINE(false,
		     "bad ingress: %s is starting or its health check has not passed yet; "
		     "its names answer 503 until then",
		     name);
	else
		LINE(false,
		     "bad ingress: %s is stopped, failed or unhealthy; its names answer "
		     "503; fix: start it, or see 'clbsd inspect %s' (health)",
		     name, name);
	/* What nginx serves: the rendered file names each routed host. */
	autofree char *path = xasprintf("%s/nginx.conf", g->dir);
	autofree char *text = NULL;
	struct clbsd_err err;
	if (fs_read_file(path, &text, NULL, &err) < 0) {
		LINE(false,
		     "bad ingress: no nginx.conf yet; fix: see 'clbsd events --type ingress'");
	} else {
		for (size_t i = 0; ct->domains[i]; i++) {
			autofree char *full = NULL;
			if (ingress_domain_normalise(ct->domains[i],
						     d->decl.conf->host.default_domain, &full,
						     &err) < 0)
				continue;
			if (strstr(text, full))
				LINE(true, "ok ingress: nginx.conf routes %s", full);
			else
				LINE(false,
				     "bad ingress: nginx.conf does not route %s yet (an apply "
				     "is pending or was rejected); fix: see 'clbsd events "
				     "--type ingress'",
				     full);
		}
	}
#undef LINE
}
