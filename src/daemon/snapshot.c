/*
 * Snapshots, rollback and clones of containers: the daemon's side of the
 * storage driver's name-based operations (src/storage/storage.h). They block
 * (the dir driver copies trees, zfs runs commands), so they run on a worker
 * thread, one at a time per container (c->storage.busy); everything that
 * touches daemon state happens on the loop before and after.
 *
 * rollback stops a running container first and starts it again afterwards;
 * it puts back the root file system and the named volumes, not the
 * container's record (container.json stays what it is now). clone makes a
 * new, unmanaged container with the source's configuration and a copy (zfs:
 * a clone) of its root file system and volumes, now or at a snapshot.
 *
 * Docker containers go through the same code: their storage here is that of
 * a container of the empty image (docker_store.c), so what is snapshotted,
 * rolled back and cloned is their volumes (and state); a docker clone is
 * made from the source's recorded create request under the new name.
 */
#include "core/snapsched.h"
#include "daemon.h"
#include "util/json.h"
#include "util/trace.h"
#include "util/util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum snap_op { OP_SNAPSHOT, OP_DESTROY, OP_ROLLBACK, OP_CLONE };

struct snap_job {
	struct container *c;
	enum snap_op op;
	char *label;
	char *dst;	/* clone: the new container's name */
	bool force;	/* rollback: destroy newer snapshots */
	bool restart;	/* rollback: start again afterwards */
	ctr_done_fn fn; /* answered with c (clone: the new container) */
	void *arg;
	struct clbsd_err err;
	int rc;
	int64_t t0; /* when it was asked for (monotonic): a clone's probe's duration */
};

static void job_free(struct snap_job *j)
{
	free(j->label);
	free(j->dst);
	free(j);
}

static void job_run(void *arg)
{
	struct snap_job *j = arg;
	struct storage *st = &j->c->d->storage;
	const char *name = j->c->name;
	clbsd_err_init(&j->err);
	switch (j->op) {
	case OP_SNAPSHOT:
		j->rc = st->ops->snapshot(st, name, j->label, &j->err);
		break;
	case OP_DESTROY:
		j->rc = st->ops->snapshot_destroy(st, name, j->label, &j->err);
		break;
	case OP_ROLLBACK:
		j->rc = st->ops->rollback(
			st, name, j->label,
			STORAGE_PART_VOLUMES | (j->force ? STORAGE_DISCARD_NEWER : 0), &j->err);
		break;
	case OP_CLONE: {
		struct rt_rootfs r = {0};
		j->rc = st->ops->clone(st, name, j->label, j->dst, STORAGE_PART_VOLUMES, &r,
				       &j->err);
		if (j->rc == 0) {
			rt_rootfs_release(&r);
			autofree char *dst = xasprintf("%s/containers/%s", j->c->d->root, j->dst);
			ctr_integrity_copy(j->c->dir, dst);
		}
		break;
	}
	}
}

/* clone: the new container's record, from the source's, with an id of its own. */
static int clone_record(struct container *src, const char *dst, struct container **out,
			struct clbsd_err *err)
{
	json_t *j = ctr_to_json(src);
	char id[65];
	random_hex(id, 32);
	json_object_set_new(j, "id", json_string(id));
	json_object_set_new(j, "created_at", json_time(time_now_ns()));
	json_object_set_new(j, "cloned_from", json_string(src->name));
	int r = ctr_adopt_record(src->d, j, dst, out, err);
	json_decref(j);
	return r;
}

/* The rollback is answered once the container runs again (or failed to). */
static void start_after(struct container *c, const struct clbsd_err *err, void *arg)
{
	struct snap_job *j = arg;
	if (err)
		log_error("container", c->name, "start after rollback: %s", err->msg);
	j->fn(c, err, j->arg);
	job_free(j);
}

static void job_done(void *arg)
{
	struct snap_job *j = arg;
	struct container *c = j->c;
	struct daemon *d = c->d;
	c->storage.busy = false;
	if (j->rc < 0) {
		log_error("container", c->name, "%s", j->err.msg);
		if (j->op == OP_ROLLBACK && j->restart)
			ctr_start(c, false, NULL, NULL); /* as it was; the error is the answer */
		j->fn(c, &j->err, j->arg);
		job_free(j);
		return;
	}
	struct container *result = c;
	switch (j->op) {
	case OP_SNAPSHOT:
		daemon_event(d, "container.snapshot", c->name,
			     json_pack("{s:s}", "label", j->label));
		log_info("container", c->name, "snapshot %s taken", j->label);
		break;
	case OP_DESTROY:
		daemon_event(d, "container.snapshot_destroyed", c->name,
			     json_pack("{s:s}", "label", j->label));
		break;
	case OP_ROLLBACK:
		daemon_event(d, "container.rollback", c->name,
			     json_pack("{s:s}", "label", j->label));
		log_info("container", c->name, "rolled back to %s", j->label);
		if (j->restart) {
			ctr_start(c, false, start_after, j);
			return;
		}
		break;
	case OP_CLONE: {
		struct clbsd_err err;
		clbsd_err_init(&err);
		int r = c->docker.on ? docker_store_clone(c, j->dst, &result, &err)
				     : clone_record(c, j->dst, &result, &err);
		if (r < 0) {
			struct clbsd_err e2;
			d->storage.ops->ctr_remove(&d->storage, j->dst, true, &e2);
			j->fn(c, &err, j->arg);
			job_free(j);
			return;
		}
		TRACE4(container__create, j->dst, result->docker.on ? "docker" : "native",
		       time_mono_ns() - j->t0, "clone");
		daemon_event(
			d, "container.created", j->dst,
			json_pack("{s:s,s:s}", "image", result->image_ref, "cloned_from", c->name));
		break;
	}
	}
	j->fn(result, NULL, j->arg);
	job_free(j);
}

static int begin(struct container *c, struct clbsd_err *err)
{
	/* A docker container's own storage is its state and volumes (docker_store.c). */
	if (docker_store_check(c, err) < 0)
		return -err->code;
	if (c->run.removing)
		return clbsd_err_setmsg(err, CLBSD_E_CONFLICT, EBUSY,
					"container %s is being removed", c->name);
	if (c->storage.busy)
		return clbsd_err_setmsg(err, CLBSD_E_CONFLICT, EBUSY,
					"container %s: another snapshot, rollback or clone is "
					"running; try again when it is done",
					c->name);
	if (!c->d->storage.ops->snapshot)
		return clbsd_err_setmsg(err, CLBSD_E_UNAVAIL, ENOTSUP,
					"the %s storage driver has no snapshots",
					c->d->storage.ops->name);
	return 0;
}

static void submit(struct snap_job *j)
{
	j->c->storage.busy = true;
	work_submit(j->c->d, job_run, job_done, j);
}

static struct snap_job *job_new(struct container *c, enum snap_op op, const char *label,
				ctr_done_fn fn, void *arg)
{
	struct snap_job *j = xcalloc(1, sizeof(*j));
	j->t0 = time_mono_ns();
	j->c = c;
	j->op = op;
	j->label = label ? xstrdup(label) : NULL;
	j->fn = fn;
	j->arg = arg;
	return j;
}

int ctr_snapshot(struct container *c, const char *label, ctr_done_fn fn, void *arg,
		 struct clbsd_err *err)
{
	char made[32];
	if (!label || !*label) {
		time_t now = time(NULL);
		struct tm tm;
		gmtime_r(&now, &tm);
		strftime(made, sizeof(made), "%Y%m%d-%H%M%S", &tm);
		label = made;
	}
	if (begin(c, err) < 0 || storage_check_label(label, err) < 0)
		return -err->code;
	submit(job_new(c, OP_SNAPSHOT, label, fn, arg));
	return 0;
}

int ctr_snapshot_destroy(struct container *c, const char *label, ctr_done_fn fn, void *arg,
			 struct clbsd_err *err)
{
	if (begin(c, err) < 0 || storage_check_label(label, err) < 0)
		return -err->code;
	submit(job_new(c, OP_DESTROY, label, fn, arg));
	return 0;
}

json_t *ctr_snapshot_list(struct container *c, struct clbsd_err *err)
{
	struct storage *st = &c->d->storage;
	if (!st->ops->snapshot_list) {
		clbsd_err_setmsg(err, CLBSD_E_UNAVAIL, ENOTSUP,
				 "the %s storage driver has no snapshots", st->ops->name);
		return NULL;
	}
	struct storage_snapshot *s = NULL;
	size_t n = 0;
	if (st->ops->snapshot_list(st, c->name, &s, &n, err) < 0)
		return NULL;
	json_t *a = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, json_pack("{s:s,s:o,s:I}", "label", s[i].label,
						   "created_at", json_time(s[i].created_ns), "used",
						   (json_int_t)s[i].used));
	storage_snapshots_free(s, n);
	return a;
}

static void rollback_stopped(struct container *c, const struct clbsd_err *err, void *arg)
{
	struct snap_job *j = arg;
	if (err) {
		c->storage.busy = false;
		j->fn(c, err, j->arg);
		job_free(j);
		return;
	}
	work_submit(c->d, job_run, job_done, j);
}

/* Refuse a rollback that would fail before stopping anything: the label must exist, and newer ones only go with force. */
static int rollback_check(struct container *c, const char *label, bool force, struct clbsd_err *err)
{
	json_t *list = ctr_snapshot_list(c, err);
	if (!list)
		return -err->code;
	size_t i, at = (size_t)-1;
	json_t *s;
	json_array_foreach(list, i, s)
	{
		if (strcmp(json_string_value(json_object_get(s, "label")), label) == 0)
			at = i;
	}
	size_t n = json_array_size(list);
	int r = 0;
	if (at == (size_t)-1)
		r = clbsd_err_setmsg(
			err, CLBSD_E_NOTFOUND, ENOENT,
			"no snapshot %s of container %s ('clbsd snapshots %s' lists them)", label,
			c->name, c->name);
	else if (at + 1 < n && !force)
		r = clbsd_err_setmsg(
			err, CLBSD_E_CONFLICT, EEXIST,
			"container %s has %zu snapshot(s) newer than %s (the newest is "
			"%s); rolling back would destroy them: use --force",
			c->name, n - at - 1, label,
			json_string_value(json_object_get(json_array_get(list, n - 1), "label")));
	json_decref(list);
	return r;
}

int ctr_rollback(struct container *c, const char *label, bool force, int stop_s, ctr_done_fn fn,
		 void *arg, struct clbsd_err *err)
{
	if (begin(c, err) < 0 || storage_check_label(label, err) < 0 ||
	    rollback_check(c, label, force, err) < 0)
		return -err->code;
	struct snap_job *j = job_new(c, OP_ROLLBACK, label, fn, arg);
	j->force = force;
	j->restart = ctr_is_active(c);
	c->storage.busy = true;
	if (j->restart)
		ctr_stop(c, stop_s, rollback_stopped, j);
	else
		work_submit(c->d, job_run, job_done, j);
	return 0;
}

int ctr_clone(struct container *c, const char *label, const char *dst, ctr_done_fn fn, void *arg,
	      struct clbsd_err *err)
{
	if (begin(c, err) < 0 || (label && storage_check_label(label, err) < 0))
		return -err->code;
	if (!valid_name(dst))
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
					"clone name \"%s\": want a DNS label (a-z, 0-9, '-')", dst);
	autofree char *dir = xasprintf("%s/containers/%s", c->d->root, dst);
	if (ctr_find(c->d, dst) || fs_exists(dir))
		return clbsd_err_setmsg(err, CLBSD_E_CONFLICT, EEXIST,
					"a container named %s exists already", dst);
	struct snap_job *j = job_new(c, OP_CLONE, label, fn, arg);
	j->dst = xstrdup(dst);
	submit(j);
	return 0;
}

/* ---- scheduled snapshots: (:snapshots (:every D :keep N)) ---- */

struct sched {
	int keep;
};

static void prune_next(struct container *c, const struct clbsd_err *err, void *arg);

/* Destroy the oldest scheduled snapshot beyond keep, one at a time (each on the worker). */
static void prune(struct container *c, struct sched *s)
{
	struct clbsd_err err;
	clbsd_err_init(&err);
	json_t *list = ctr_snapshot_list(c, &err);
	if (!list) {
		log_warn("snapshot", c->name, "schedule: %s", err.msg);
		free(s);
		return;
	}
	size_t n = json_array_size(list);
	const char **labels = xcalloc(n ? n : 1, sizeof(char *));
	const char **out = xcalloc(n ? n : 1, sizeof(char *));
	for (size_t i = 0; i < n; i++)
		labels[i] = json_string_value(json_object_get(json_array_get(list, i), "label"));
	size_t k = snap_prune_select(labels, n, (size_t)s->keep, out);
	int r = 0;
	if (k > 0)
		r = ctr_snapshot_destroy(c, out[0], prune_next, s, &err);
	free(labels);
	free(out);
	json_decref(list);
	if (k == 0 || r < 0) {
		if (r < 0)
			log_warn("snapshot", c->name, "schedule: prune: %s", err.msg);
		free(s);
	}
}

static void prune_next(struct container *c, const struct clbsd_err *err, void *arg)
{
	struct sched *s = arg;
	if (err) {
		log_warn("snapshot", c->name, "schedule: prune: %s", err->msg);
		free(s);
		return;
	}
	prune(c, s);
}

static void scheduled_done(struct container *c, const struct clbsd_err *err, void *arg)
{
	struct sched *s = arg;
	if (err) {
		log_warn("snapshot", c->name, "scheduled snapshot: %s", err->msg);
		free(s);
		return;
	}
	prune(c, s);
}

void ctr_snapshot_scheduled(struct container *c, int keep)
{
	char label[64];
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	strftime(label, sizeof(label), SNAP_AUTO_PREFIX "%Y%m%d-%H%M%S", &tm);
	struct sched *s = xcalloc(1, sizeof(*s));
	s->keep = keep;
	struct clbsd_err err;
	clbsd_err_init(&err);
	if (ctr_snapshot(c, label, scheduled_done, s, &err) < 0) {
		/* Busy (a rollback, export...) or no snapshots here: the next tick tries again. */
		log_info("snapshot", c->name, "scheduled snapshot skipped: %s", err.msg);
		free(s);
	}
}
