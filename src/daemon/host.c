/*
 * What a host export (clbsd host export, docs/host.md) asks of the daemon
 * as a whole: a description of the host (versions, driver, where its
 * configuration, Lisp init file and ingress CA live) and one snapshot of
 * every container taken at one moment. The archive itself is assembled by
 * the CLI from the per-container exports (transfer.c), image exports and
 * these; only what needs the daemon's view or its storage is here.
 */
#include "daemon.h"
#include "core/config.h"
#include "docker/docker.h"
#include "util/json.h"
#include "util/util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>

json_t *host_describe(struct daemon *d)
{
	struct utsname u;
	const struct conf *c = d->decl.conf;
	json_t *j =
		json_pack("{s:s,s:s,s:s,s:s,s:s}", "version", CLBSD_VERSION, "root", d->root,
			  "config", d->config, "confd", d->confd, "driver", d->storage.ops->name);
	autofree char *live = xasprintf("%s/90-live.conf", d->confd);
	json_object_set_new(j, "live", json_string(live));
	if (uname(&u) == 0)
		json_object_set_new(j, "kernel",
				    json_pack("{s:s,s:s,s:s}", "sysname", u.sysname, "release",
					      u.release, "machine", u.machine));
	if (d->storage.pool)
		json_object_set_new(j, "zfs",
				    json_pack("{s:s,s:s}", "pool", d->storage.pool, "dataset",
					      d->storage.dataset));
	json_object_set_new(j, "snapshot_all", json_boolean(d->storage.ops->snapshot_all != NULL));
	if (c && c->host.lisp_init)
		json_object_set_new(j, "lisp_init", json_string(c->host.lisp_init));
	if (c && c->host.tls_ca && strcmp(c->host.tls_ca, "auto") == 0) {
		autofree char *ca = xasprintf("%s/ingress/ca", d->root);
		json_object_set_new(j, "ingress_ca", json_string(ca));
	}
	json_object_set_new(j, "docker", json_boolean(docker_endpoint(d) != NULL));
	/* Made by this daemon from its own nginx: an export leaves them out. */
	json_object_set_new(
		j, "routing",
		json_pack("{s:s,s:s}", "container", INGRESS_CTR_NAME, "image", INGRESS_CTR_IMAGE));
	return j;
}

struct host_job {
	struct daemon *d;
	char *label;
	struct strv names; /* the containers marked busy for the snapshot */
	struct dk_client *dk;
	json_t *docker_version;
	host_done_fn fn;
	void *arg;
	struct clbsd_err err;
	int rc;
};

static void snap_run(void *arg)
{
	struct host_job *j = arg;
	struct storage *st = &j->d->storage;
	clbsd_err_init(&j->err);
	j->rc = st->ops->snapshot_all(st, j->label, &j->err);
	/* The source's dockerd version goes into the archive's manifest. */
	struct clbsd_err ignore;
	if (j->rc == 0 && j->dk)
		dk_call(j->dk, "GET", "/version", NULL, 10, &j->docker_version, NULL, &ignore);
}

static void snap_done(void *arg)
{
	struct host_job *j = arg;
	for (size_t i = 0; i < j->names.n; i++) {
		struct container *c = ctr_find(j->d, j->names.v[i]);
		if (c)
			c->storage.busy = false;
	}
	json_t *res = NULL;
	if (j->rc == 0) {
		res = json_pack("{s:s,s:o}", "label", j->label, "containers", json_array());
		for (size_t i = 0; i < j->names.n; i++)
			json_array_append_new(json_object_get(res, "containers"),
					      json_string(j->names.v[i]));
		if (j->docker_version)
			json_object_set_new(
				res, "docker",
				json_pack("{s:O?,s:O?}", "version",
					  json_object_get(j->docker_version, "Version"),
					  "api_version",
					  json_object_get(j->docker_version, "ApiVersion")));
		daemon_event(j->d, "host.snapshot", NULL, json_pack("{s:s}", "label", j->label));
	} else {
		log_error("storage", NULL, "host snapshot %s: %s", j->label, j->err.msg);
	}
	j->fn(res, j->rc < 0 ? &j->err : NULL, j->arg);
	json_decref(j->docker_version);
	dk_client_free(j->dk);
	strv_release(&j->names);
	free(j->label);
	free(j);
}

int host_snapshot(struct daemon *d, const char *label, host_done_fn fn, void *arg,
		  struct clbsd_err *err)
{
	struct storage *st = &d->storage;
	if (!st->ops->snapshot_all)
		return clbsd_err_setmsg(err, CLBSD_E_UNAVAIL, ENOTSUP,
					"the %s storage driver cannot snapshot every container at "
					"one moment (zfs can); clbsd host export --stop stops them "
					"for a consistent copy",
					st->ops->name);
	if (storage_check_label(label, err) < 0)
		return -err->code;
	for (struct container *c = d->ctrs; c; c = c->next)
		if (c->storage.busy || c->run.removing)
			return clbsd_err_setmsg(
				err, CLBSD_E_CONFLICT, EBUSY,
				"container %s is busy (removing, or a snapshot, "
				"rollback, clone or export runs); try again when it "
				"is done",
				c->name);
	struct host_job *j = xcalloc(1, sizeof(*j));
	j->d = d;
	j->label = xstrdup(label);
	for (struct container *c = d->ctrs; c; c = c->next) {
		c->storage.busy = true;
		strv_push(&j->names, c->name);
	}
	j->dk = docker_client(d);
	j->fn = fn;
	j->arg = arg;
	work_submit(d, snap_run, snap_done, j);
	return 0;
}
