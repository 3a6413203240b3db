/*
 * Changing a container's limits in place (Docker's `update`): the runtime
 * writes the running container's cgroup (rt_ops.update, on a worker: a
 * lower memory limit makes the kernel reclaim, which can take a while),
 * and only when it took them are they the container's: recorded in
 * container.json, used by its next start, shown by inspect. A stopped
 * container only has them recorded. The reconciler calls this for a
 * declared container whose :limits alone changed (PLAN_UPDATE, and PATCH
 * before it records the change); PATCH for one made with `clbsd run`.
 * A docker container's are changed by dockerd (`update`, running or
 * stopped), which can set and change a limit but not lift one.
 */
#include "daemon.h"
#include "docker/docker.h"
#include "util/util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct update_job {
	struct daemon *d;
	char *name;
	struct dk_client *dk; /* a docker container: dockerd's update, on this client */
	char *dk_id;
	struct rt_spec spec; /* cgroup only */
	struct rt_limits lim;
	char *hash, *text; /* managed: the spec it now matches, or NULL */
	ctr_done_fn fn;
	void *arg;
	struct clbsd_err err;
	int rc;
};

static void update_run(void *arg)
{
	struct update_job *j = arg;
	clbsd_err_init(&j->err);
	if (j->dk)
		j->rc = docker_limits_call(j->dk, j->dk_id, &j->lim, &j->err);
	else
		j->rc = j->d->rt->update(&j->spec, &j->lim, &j->err);
}

/* The container takes the limits: its record, its next start, an event. */
static void take(struct container *c, const struct rt_limits *lim, const char *hash,
		 const char *text, bool live)
{
	c->cfg.limits = *lim;
	if (c->docker.on)
		docker_limits_taken(c, lim);
	if (hash && c->decl.managed) {
		snprintf(c->decl.spec_hash, sizeof(c->decl.spec_hash), "%s", hash);
		free(c->decl.spec_text);
		c->decl.spec_text = text ? xstrdup(text) : NULL;
	}
	struct clbsd_err err;
	if (ctr_save_config(c, &err) < 0)
		log_warn("container", c->name, "%s", err.msg);
	log_info("container", c->name, "limits now memory %lld, cpus %.2f, pids %lld%s",
		 (long long)lim->memory, lim->cpus, (long long)lim->pids,
		 live ? " (in place)" : " (from its next start)");
	daemon_event(c->d, "container.updated", c->name,
		     json_pack("{s:s,s:{s:I,s:f,s:I},s:b}", "key", ":limits", "limits", "memory",
			       (json_int_t)lim->memory, "cpus", lim->cpus, "pids",
			       (json_int_t)lim->pids, "in_place", live));
}

static void update_done(void *arg)
{
	struct update_job *j = arg;
	struct container *c = ctr_find(j->d, j->name);
	const struct clbsd_err *err = NULL;
	if (c)
		c->limits_busy = false;
	if (!c || c->run.removing) {
		clbsd_err_setmsg(&j->err, CLBSD_E_NOTFOUND, ENOENT, "container %s is gone",
				 j->name);
		err = &j->err;
	} else if (j->rc < 0 && !j->dk && !ctr_is_active(c)) {
		/* It stopped meanwhile: its next start takes them. */
		take(c, &j->lim, j->hash, j->text, false);
	} else if (j->rc < 0) {
		clbsd_err_prefix(&j->err, "container %s", j->name);
		log_warn("container", j->name, "%s", j->err.msg);
		err = &j->err;
	} else {
		take(c, &j->lim, j->hash, j->text, !j->dk || ctr_is_active(c));
	}
	if (j->fn)
		j->fn(c, err, j->arg);
	free(j->name);
	dk_client_free(j->dk);
	free(j->dk_id);
	free(j->spec.cgroup);
	free(j->hash);
	free(j->text);
	free(j);
}

int ctr_update_limits(struct container *c, const struct rt_limits *lim, const char *hash,
		      const char *text, ctr_done_fn fn, void *arg, struct clbsd_err *err)
{
	struct daemon *d = c->d;
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	if (lim->cpus < 0.0 || lim->cpus > (double)(ncpu > 0 ? ncpu : 1024))
		return clbsd_err_setmsg(
			err, CLBSD_E_INVALID, EINVAL,
			"\"cpus\" %.2f is out of range: expected more than 0 and at "
			"most %ld (this host's CPUs)",
			lim->cpus, ncpu);
	if (c->limits_busy)
		return clbsd_err_setmsg(err, CLBSD_E_CONFLICT, EBUSY,
					"container %s: its limits are being changed; try again "
					"when that is done",
					c->name);
	if (c->run.starting || c->run.removing)
		return clbsd_err_setmsg(err, CLBSD_E_CONFLICT, EBUSY,
					"container %s is %s; change its limits once it is done",
					c->name, c->run.starting ? "starting" : "being removed");
	/* A docker container dockerd has made keeps its limits there, running or not. */
	bool in_dockerd = c->docker.on && c->docker.id;
	if (c->run.state != CTR_RUNNING && !in_dockerd) {
		take(c, lim, hash, text, false);
		if (fn)
			fn(c, NULL, arg);
		return 0;
	}
	struct dk_client *dk = NULL;
	if (in_dockerd) {
		if (!docker_limits_in_place(&c->cfg.limits, lim))
			return clbsd_err_setmsg(
				err, CLBSD_E_INVALID, EINVAL,
				"container %s: dockerd cannot lift a limit of a container it "
				"made; remove it and make it again without the limit",
				c->name);
		if (!(dk = docker_client_new(d, err)))
			return -err->code;
	} else if (!d->rt->update)
		return clbsd_err_setmsg(err, CLBSD_E_UNAVAIL, ENOTSUP,
					"the %s runtime cannot change a running container's "
					"limits; restart it to apply them",
					d->rt->name);
	struct update_job *j = xcalloc(1, sizeof(*j));
	j->d = d;
	j->name = xstrdup(c->name);
	j->spec.name = j->name;
	j->dk = dk;
	j->dk_id = dk ? xstrdup(c->docker.id) : NULL;
	if (!dk)
		j->spec.cgroup = ctr_cgroup(c);
	j->lim = *lim;
	j->hash = hash ? xstrdup(hash) : NULL;
	j->text = text ? xstrdup(text) : NULL;
	j->fn = fn;
	j->arg = arg;
	c->limits_busy = true;
	work_submit(d, update_run, update_done, j);
	return 0;
}
