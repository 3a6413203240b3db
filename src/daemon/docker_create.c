/*
 * Docker containers as records: made from a create request whose kind is
 * docker, checked as a native one's are (ctr_config.c), with storage of
 * the empty image (docker_store.c).
 */
#include "daemon.h"
#include "util/trace.h"
#include "util/util.h"

#include <errno.h>
#include <stdio.h>

/*
 * A docker container's record: no image from the store, no addresses; its
 * named volumes are clbsd's volumes, bound into it. Its storage on this
 * host is that of a container of the empty image (docker_store.c): its
 * state and, beside it, its volumes, snapshotted, cloned and sent as a
 * native container's are. The dockerd container comes at its first start
 * (docker_ctr.c). `how` says whether the storage is made here
 * (DOCKER_MAKE), is there already (DOCKER_ON: a clone, an import), or
 * whether the request is only checked (DOCKER_CHECK: nothing is made).
 */
int ctr_docker_make(struct daemon *d, const struct ctr_spec *spec, struct container *c,
		    const char *spec_hash, const char *spec_text, enum docker_make how,
		    struct container **out, struct clbsd_err *err)
{
	const char *name = c->name;
	autofree char *logs = NULL;
	bool made = false;
	int r = 0;
	int64_t t0 = time_mono_ns();
	if ((r = ctr_check_name(d, name, err)) < 0)
		goto fail;
	ctr_place(c, spec_hash, spec_text);
	if (how != DOCKER_ON && (r = ctr_dir_unclaimed(c, err)) < 0)
		goto fail;
	/*
	 * clbsd's networks with a local dockerd (docker_net.c); addresses before
	 * the rest (a check only checks the request's networks).
	 */
	if ((r = docker_spec_net(d, spec, &c->net, err)) < 0 ||
	    (how != DOCKER_CHECK && (r = dnet_assign(d, c, err)) < 0))
		goto fail;
	if ((r = docker_store_check_volumes(d, spec, err)) < 0 ||
	    (r = ctr_volumes_of(d, spec, name, how != DOCKER_CHECK, &c->cfg, err)) < 0 ||
	    (r = docker_ctr_config(d, spec, c, err)) < 0)
		goto fail;
	if (how == DOCKER_CHECK) {
		ctr_free(c);
		return 0;
	}
	random_hex(c->id, 32);
	c->image_ref = xstrdup(spec->image);
	c->run.state = CTR_CREATED;
	c->created_ns = time_now_ns();
	/* Storage first: with zfs the directory becomes a dataset's mount point. */
	if (how == DOCKER_MAKE) {
		r = docker_store_make(d, c->dir, &c->storage.mode, err);
		made = r == 0;
	} else {
		c->storage.mode = docker_store_mode(d, c->dir);
	}
	logs = xasprintf("%s/logs", c->dir);
	if (r == 0)
		r = fs_mkdir_p(logs, 0700, err);
	if (r == 0)
		r = ctr_save_config(c, err);
	if (r < 0) {
		struct clbsd_err ignore;
		if (made)
			d->storage.ops->remove(&d->storage, c->dir, &ignore);
		if (how == DOCKER_MAKE)
			fs_rm_rf(c->dir, &ignore);
		goto fail;
	}
	c->next = d->ctrs;
	d->ctrs = c;
	dnet_peers_changed(d, c);
	TRACE4(container__create, c->name, "docker", time_mono_ns() - t0, "create");
	daemon_event(
		d, "container.created", c->name,
		json_pack("{s:s,s:s,s:s}", "image", c->image_ref, "id", c->id, "kind", "docker"));
	*out = c;
	return 0;
fail:
	clbsd_err_prefix(err, "create container %s", name);
	if (c->net.addrs)
		dnet_forget(c); /* its addresses back */
	ctr_free(c);
	return r < 0 ? r : -EINVAL;
}

int ctr_docker_create(struct daemon *d, const struct ctr_spec *spec, enum docker_make how,
		      struct container **out, struct clbsd_err *err)
{
	if (spec->kind != CTR_KIND_DOCKER || !spec->name)
		return ctr_bad(err, "a docker container's request must say \"kind\": \"docker\" "
				    "and name it");
	struct container *c = xcalloc(1, sizeof(*c));
	c->d = d;
	c->name = xstrdup(spec->name);
	c->shim.ready_fd = -1;
	struct container *made = NULL;
	int r = ctr_docker_make(d, spec, c, NULL, NULL, how, &made, err);
	if (r == 0 && out)
		*out = made;
	return r;
}
