/*
 * Restore (docs/backup.md): POST /v1/restore imports a chain of archives
 * (a full one, then the incrementals after it) as container NAME. When
 * NAME is declared here the first import goes into the declaration
 * (ctr_import_declared: managed, the declaration's spec), else it is a
 * plain import. A container NAME that exists is replaced only when asked:
 * it is stopped and set aside with the undo mechanism (undo.c) first, the
 * name held from the reconciler meanwhile (d->importing) so it does not
 * make an empty one; when an import fails, what was imported is removed
 * and the old container put back (and started when it ran), and after a
 * success `clbsd undo NAME` still brings it back. The restored container
 * is started when the one it replaced ran.
 */
#include "core/config.h"
#include "daemon.h"
#include "util/util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct restore_job {
	struct daemon *d;
	char *name;
	char **files;
	size_t next; /* the file to import next */
	bool allow_host, declared, set_aside, was_running;
	bool held; /* the job holds the name in d->importing (the reconciler leaves it) */
	struct clbsd_err err; /* the failure being answered while the old one comes back */
	ctr_done_fn fn;
	void *arg;
};

static void job_free(struct restore_job *j)
{
	free(j->name);
	strv_free(j->files);
	free(j);
}

static void hold(struct restore_job *j)
{
	if (j->held)
		return;
	strv_push(&j->d->importing, j->name);
	j->held = true;
}

static void release(struct restore_job *j)
{
	if (!j->held)
		return;
	j->held = false;
	struct strv *v = &j->d->importing;
	for (size_t i = 0; i < v->n; i++)
		if (strcmp(v->v[i], j->name) == 0) {
			free(v->v[i]);
			memmove(v->v + i, v->v + i + 1, (v->n - i) * sizeof(char *));
			v->n--;
			return;
		}
}

static void put_back(struct container *c, const struct clbsd_err *err, void *arg)
{
	struct restore_job *j = arg;
	if (err)
		log_error("backup", j->name,
			  "restore failed, and putting the old container back "
			  "failed too: %s",
			  err->msg);
	else
		log_info("backup", j->name, "restore failed; the old container is back");
	release(j);
	j->fn(NULL, &j->err, j->arg);
	job_free(j);
}

static void failed_removed(struct container *c, const struct clbsd_err *err, void *arg)
{
	struct restore_job *j = arg;
	struct clbsd_err e2;
	clbsd_err_init(&e2);
	if (j->set_aside && ctr_undo(j->d, j->name, put_back, j, &e2) == 0)
		return;
	if (j->set_aside)
		log_error("backup", j->name, "restore: put the old container back: %s", e2.msg);
	release(j);
	j->fn(NULL, &j->err, j->arg);
	job_free(j);
}

/*
 * A step failed: remove what was imported, then put the old one back. The
 * name stays held until the old one is back, so that the reconciler does
 * not make a declared container of that name meanwhile.
 */
static void fail(struct restore_job *j, const struct clbsd_err *err)
{
	j->err = *err;
	clbsd_err_prefix(&j->err, "restore %s", j->name);
	hold(j);
	struct container *c = ctr_find(j->d, j->name);
	if (c)
		ctr_remove(c, true, failed_removed, j);
	else
		failed_removed(NULL, NULL, j);
}

static void started(struct container *c, const struct clbsd_err *err, void *arg)
{
	struct restore_job *j = arg;
	if (err)
		log_warn("backup", j->name, "restored, but it does not start: %s", err->msg);
	daemon_event(j->d, "backup.restored", j->name,
		     json_pack("{s:i,s:b}", "files", (int)j->next, "replaced", j->set_aside));
	j->fn(c, NULL, j->arg);
	job_free(j);
}

static void import_next(struct restore_job *j);

static void imported(struct container *c, const struct clbsd_err *err, void *arg)
{
	struct restore_job *j = arg;
	if (err) {
		fail(j, err);
		return;
	}
	j->next++;
	if (j->files[j->next]) {
		import_next(j);
		return;
	}
	if (j->was_running) {
		ctr_start(c, false, started, j);
		return;
	}
	started(c, NULL, j);
}

static void import_next(struct restore_job *j)
{
	struct clbsd_err err;
	clbsd_err_init(&err);
	const char *f = j->files[j->next];
	int r;
	if (j->next == 0) {
		/* The import holds the name itself from here on. */
		release(j);
		r = j->declared ? ctr_import_declared(j->d, f, j->name, imported, j, &err)
				: ctr_import(j->d, f, j->name, j->allow_host, imported, j, &err);
	} else {
		r = ctr_import(j->d, f, j->name, j->allow_host, imported, j, &err);
	}
	if (r < 0)
		fail(j, &err);
}

static void aside_done(struct container *c, const struct clbsd_err *err, void *arg)
{
	struct restore_job *j = arg;
	if (err) {
		/* Nothing was set aside: the old container stays as it is. */
		release(j);
		struct clbsd_err e = *err;
		clbsd_err_prefix(&e, "restore %s: set the old container aside", j->name);
		j->fn(NULL, &e, j->arg);
		job_free(j);
		return;
	}
	j->set_aside = true;
	import_next(j);
}

int ctr_restore(struct daemon *d, const char *name, char *const *files, bool replace,
		bool allow_host, ctr_done_fn fn, void *arg, struct clbsd_err *err)
{
	if (!valid_name(name))
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
					"restore: \"%s\" is not a container name", name);
	if (!files || !files[0])
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
					"restore %s: no archive to import", name);
	for (size_t i = 0; files[i]; i++)
		if (!fs_path_is_clean_abs(files[i]))
			return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
						"restore %s: \"%s\" is not an absolute path", name,
						files[i]);
	for (size_t i = 0; i < d->importing.n; i++)
		if (strcmp(d->importing.v[i], name) == 0)
			return clbsd_err_setmsg(err, CLBSD_E_CONFLICT, EBUSY,
						"an import into %s runs already", name);
	struct container *c = ctr_find(d, name);
	if (c && !replace)
		return clbsd_err_setmsg(err, CLBSD_E_CONFLICT, EEXIST,
					"container %s exists here: --replace replaces it (it is "
					"set aside: clbsd undo %s brings it back), or restore "
					"beside it with --as NEW",
					name, name);
	if (c && (c->run.removing || c->storage.busy))
		return clbsd_err_setmsg(
			err, CLBSD_E_CONFLICT, EBUSY,
			"container %s is busy (being removed, or a snapshot, backup "
			"or export runs); try again when it is done",
			name);
	struct restore_job *j = xcalloc(1, sizeof(*j));
	j->d = d;
	j->name = xstrdup(name);
	j->files = strv_dup(files);
	j->allow_host = allow_host;
	j->declared = d->decl.conf && conf_container_find(d->decl.conf, name);
	j->fn = fn;
	j->arg = arg;
	hold(j);
	if (!c) {
		import_next(j);
		return 0;
	}
	j->was_running = ctr_is_active(c) || c->run.state == CTR_RESTARTING;
	ctr_set_aside(c, aside_done, j);
	return 0;
}
