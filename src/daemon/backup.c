/*
 * Backups of declared containers (:backup, docs/backup.md): on a timer, or
 * when POST /v1/containers/{name}/backup asks, a snapshot
 * backup-YYYYmmdd-HHMMSS is exported (incrementally since the newest
 * backup the destination has, where the storage driver can) and sent to
 * the destination, and both ends are pruned by the :keep tiers
 * (core/backup_plan.c decides; this file carries it out).
 *
 * One backup of a container runs at a time (b->running). Its steps:
 *   1. worker: list the local snapshots and what the destination holds;
 *      choose the base (the newest backup both have) and the archive's path
 *   2. loop:   ctr_export() of the container (a snapshot of it as it runs:
 *      nothing stops, nothing of the running container changes)
 *   3. worker: deliver (a directory: the archive is already in place and
 *      the index is updated; another clbsd: `clbsd import` there), prune
 *      the destination, choose the local backups to prune
 *   4. loop:   record the result, events, the next run; destroy the local
 *      snapshots pruned, one at a time, as the scheduled snapshots do
 * A failure at any step leaves the destination's older backups as they
 * were, is recorded, and the next run is moved to a capped exponential
 * backoff (core/backoff.c) instead of the schedule.
 *
 * Another clbsd is driven through its CLI (`clbsd --socket S ...` here, or
 * over ssh as migrate does, BatchMode, CLBSD_SSH_COMMAND and CLBSD_REMOTE
 * honoured): the backups are a stopped, unmanaged container of the same
 * name there, each backup one of its snapshots. A directory holds
 * NAME/LABEL.clbsd archives (full, or incremental since an earlier one)
 * and NAME/index.json listing them with their bases.
 *
 * The state of each container's backups (last success, size, duration,
 * error, next run) is kept in memory and in <root>/backup/NAME.json so
 * that a restarted daemon still shows it and does not back up again at
 * once.
 *
 * Test clock: with CLBSD_TEST_CLOCK=1 in the daemon's environment (and only
 * then), POST .../backup takes ?at=EPOCH_SECONDS as the backup's time, the
 * timers wait a whole period, and a failure is retried after 1 s doubling
 * up to 4 s, so that a test simulates a week in seconds.
 */
#include "core/backoff.h"
#include "core/backup_plan.h"
#include "core/config.h"
#include "daemon.h"
#include "sys/sys.h"
#include "util/json.h"
#include "util/util.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define NS 1000000000LL
/* Retries after a failure: 1 min doubling up to 6 h (never past the period). */
#define RETRY_BASE_NS (60 * NS)
#define RETRY_MAX_NS  (6 * 3600 * NS)

struct bk {
	struct daemon *d;
	char *name;
	struct ctr_backup cfg; /* the effective :backup; cfg.set false: no longer declared */
	struct event *timer;
	int64_t next_ns; /* the next run (wall clock); 0: none */
	bool running;
	unsigned failures; /* in a row */
	int64_t last_ok_ns, last_try_ns, bytes, duration_ns;
	char *last_label, *last_base, *error;
	struct bk *next;
};

struct dbackup {
	struct bk *list;
	bool test_clock;
};

struct bk_run {
	struct bk *b;
	struct daemon *d;
	char *name;
	struct backup_dest dest;
	struct backup_keep keep;
	char label[BACKUP_LABEL_MAX];
	int64_t started_ns;
	bool incremental; /* the driver sends increments: keep the snapshot, send since base */
	char *base;
	char *file;	   /* the archive */
	bool file_is_tmp;  /* remote: removed once sent */
	json_t *index;	   /* dir: the destination's index */
	char **local_drop; /* local backup snapshots to destroy afterwards */
	size_t pruned;	   /* at the destination */
	int64_t bytes;
	backup_done_fn fn;
	void *arg;
	struct clbsd_err err;
	int rc;
};

static void run_free(struct bk_run *r)
{
	free(r->name);
	backup_dest_release(&r->dest);
	free(r->base);
	free(r->file);
	json_decref(r->index);
	strv_free(r->local_drop);
	free(r);
}

/* ---- state on disk ---- */

static char *state_path(struct daemon *d, const char *name)
{
	return xasprintf("%s/backup/%s.json", d->root, name);
}

static void state_save(struct bk *b)
{
	struct clbsd_err err;
	autofree char *dir = xasprintf("%s/backup", b->d->root);
	autofree char *p = state_path(b->d, b->name);
	json_t *j = json_pack(
		"{s:I,s:I,s:I,s:I,s:i,s:s?,s:s?,s:s?}", "last_ok_ns", (json_int_t)b->last_ok_ns,
		"last_try_ns", (json_int_t)b->last_try_ns, "bytes", (json_int_t)b->bytes,
		"duration_ns", (json_int_t)b->duration_ns, "failures", (int)b->failures,
		"last_label", b->last_label, "last_base", b->last_base, "error", b->error);
	autofree char *text = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	if (fs_mkdir_p(dir, 0700, &err) < 0 || fs_replace(p, text, strlen(text), 0600, &err) < 0)
		log_warn("backup", b->name, "record the backup's state: %s", err.msg);
}

static char *dup_or_null(const char *s)
{
	return s ? xstrdup(s) : NULL;
}

static void state_load(struct bk *b)
{
	struct clbsd_err err;
	autofree char *p = state_path(b->d, b->name);
	autofree char *text = NULL;
	if (!fs_exists(p) || fs_read_file(p, &text, NULL, &err) < 0)
		return;
	json_t *j = json_loads(text, 0, NULL);
	if (!json_is_object(j)) {
		json_decref(j);
		return;
	}
	b->last_ok_ns = json_int(j, "last_ok_ns", 0);
	b->last_try_ns = json_int(j, "last_try_ns", 0);
	b->bytes = json_int(j, "bytes", 0);
	b->duration_ns = json_int(j, "duration_ns", 0);
	b->failures = (unsigned)json_int(j, "failures", 0);
	b->last_label = dup_or_null(json_string_value(json_object_get(j, "last_label")));
	b->last_base = dup_or_null(json_string_value(json_object_get(j, "last_base")));
	b->error = dup_or_null(json_string_value(json_object_get(j, "error")));
	json_decref(j);
}

/* ---- the other clbsd ---- */

/* `clbsd` next to clbsdd, else on PATH. */
static char *cli_path(void)
{
	autofree char *self = sys_self_exe();
	char *slash = self ? strrchr(self, '/') : NULL;
	autofree char *near = slash ? xasprintf("%.*s/clbsd", (int)(slash - self), self) : NULL;
	return xstrdup(near && access(near, X_OK) == 0 ? near : "clbsd");
}

/* Run `clbsd ARGS...` against the destination (blocking; a worker's). */
static int remote(const struct backup_dest *dst, const char *const *args, int in_fd, char **out,
		  struct clbsd_err *err)
{
	struct strv argv = STRV_INIT;
	if (dst->kind == BACKUP_DEST_UNIX) {
		strv_push_owned(&argv, cli_path());
		strv_push(&argv, "--socket");
		strv_push(&argv, dst->path);
		for (size_t i = 0; args[i]; i++)
			strv_push(&argv, args[i]);
	} else {
		/*
		 * Nobody watches a scheduled backup: a host that does not answer,
		 * or a connection that died, fails it (and it is retried) instead
		 * of holding the container's backups for the TCP timeouts.
		 */
		static const char *const opts[] = {"-o", "ConnectTimeout=30", "-o",
						   "ServerAliveInterval=30", NULL};
		backup_dest_ssh_argv(dst, args, opts, &argv);
	}
	int r = proc_run_in(argv.v, in_fd, out, err);
	strv_release(&argv);
	return r;
}

/*
 * The backup labels the destination holds of name, oldest first; a
 * destination without the container holds none (*exists false).
 */
static int remote_labels(struct bk_run *r, char ***labels, bool *exists)
{
	const char *ls[] = {"--json", "ps", "-a", NULL};
	autofree char *out = NULL;
	if (remote(&r->dest, ls, -1, &out, &r->err) < 0)
		return -r->err.code;
	json_t *all = json_loads(out ? out : "", 0, NULL);
	size_t i;
	json_t *e;
	*exists = false;
	json_array_foreach(all, i, e)
	{
		const char *n = json_string_value(json_object_get(e, "name"));
		if (n && strcmp(n, r->name) == 0)
			*exists = true;
	}
	json_decref(all);
	struct strv v = STRV_INIT;
	if (*exists) {
		const char *sn[] = {"--json", "snapshots", r->name, NULL};
		autofree char *o2 = NULL;
		if (remote(&r->dest, sn, -1, &o2, &r->err) < 0)
			return -r->err.code;
		json_t *a = json_loads(o2 ? o2 : "", 0, NULL);
		json_array_foreach(a, i, e)
		{
			const char *l = json_string_value(json_object_get(e, "label"));
			if (l)
				strv_push(&v, l);
		}
		json_decref(a);
	}
	*labels = v.v; /* NULL when none */
	return 0;
}

/* ---- a directory of archives ---- */

static char *dir_of(const struct bk_run *r)
{
	return xasprintf("%s/%s", r->dest.path, r->name);
}

static int index_load(struct bk_run *r)
{
	autofree char *dir = dir_of(r);
	autofree char *p = xasprintf("%s/index.json", dir);
	if (fs_mkdir_p(dir, 0700, &r->err) < 0)
		return clbsd_err_prefix(&r->err, "backup directory");
	if (!fs_exists(p)) {
		r->index = json_pack("{s:s,s:i,s:s,s:[]}", "format", "clbsd-backups", "version", 1,
				     "name", r->name, "backups");
		return 0;
	}
	autofree char *text = NULL;
	if (fs_read_file(p, &text, NULL, &r->err) < 0)
		return -r->err.code;
	r->index = json_loads(text, 0, NULL);
	if (!json_is_array(json_object_get(r->index, "backups")))
		return clbsd_err_setmsg(&r->err, CLBSD_E_INVALID, EINVAL,
					"%s is not a clbsd backup index; move it away", p);
	return 0;
}

static int index_save(struct bk_run *r)
{
	autofree char *dir = dir_of(r);
	autofree char *p = xasprintf("%s/index.json", dir);
	autofree char *text = json_dumps(r->index, JSON_INDENT(1));
	return fs_replace(p, text, strlen(text), 0600, &r->err);
}

/* The index's entries as backup_entry (labels borrowed from the index). */
static struct backup_entry *index_entries(json_t *list, size_t *n)
{
	*n = json_array_size(list);
	struct backup_entry *e = xcalloc(*n ? *n : 1, sizeof(*e));
	for (size_t i = 0; i < *n; i++) {
		json_t *x = json_array_get(list, i);
		e[i].label = json_string_value(json_object_get(x, "label"));
		e[i].base = -1;
		const char *base = json_string_value(json_object_get(x, "base"));
		for (size_t k = 0; base && k < *n; k++)
			if (strcmp(json_string_value(
					   json_object_get(json_array_get(list, k), "label"))
					   ?: "",
				   base) == 0)
				e[i].base = (long)k;
	}
	return e;
}

/* ---- 1. what is where ---- */

static bool has(char *const *v, const char *s)
{
	for (size_t i = 0; v && v[i]; i++)
		if (strcmp(v[i], s) == 0)
			return true;
	return false;
}

/* A directory: its index, and the newest archive here to build on, unless its chain is long. */
static int prep_dir(struct bk_run *r, char *const *local)
{
	if (index_load(r) < 0)
		return -r->err.code;
	json_t *list = json_object_get(r->index, "backups");
	size_t n;
	autofree struct backup_entry *e = index_entries(list, &n);
	for (size_t i = n; r->incremental && i-- > 0;) {
		if (!has(local, e[i].label))
			continue;
		autofree size_t *chain = xcalloc(n, sizeof(size_t));
		if (backup_chain(e, n, i, chain) <= BACKUP_CHAIN_MAX)
			r->base = xstrdup(e[i].label);
		break;
	}
	autofree char *dir = dir_of(r);
	r->file = xasprintf("%s/%s.clbsd", dir, r->label);
	return 0;
}

/* Another clbsd: the newest backup both ends have; the archive in <root>/tmp. */
static int prep_remote(struct bk_run *r, char *const *local)
{
	if (!r->incremental)
		return clbsd_err_setmsg(
			&r->err, CLBSD_E_UNAVAIL, ENOTSUP,
			"backups to another clbsd need incremental exports (the zfs driver); the "
			"%s driver here has none: back up to a directory instead",
			r->d->storage.ops->name);
	char **there = NULL;
	bool exists;
	if (remote_labels(r, &there, &exists) < 0)
		return clbsd_err_prefix(&r->err, "list the backups there");
	for (size_t i = 0; there && there[i]; i++) {
		int64_t t;
		if (backup_label_time(there[i], &t) && has(local, there[i])) {
			free(r->base);
			r->base = xstrdup(there[i]);
		}
	}
	strv_free(there);
	if (exists && !r->base)
		return clbsd_err_setmsg(&r->err, CLBSD_E_CONFLICT, EEXIST,
					"the destination has a container %s without a backup "
					"snapshot in common with this host: remove it there (clbsd "
					"rm %s) or back up elsewhere",
					r->name, r->name);
	autofree char *tmpdir = xasprintf("%s/tmp", r->d->root);
	if (fs_mkdir_p(tmpdir, 0700, &r->err) < 0)
		return -r->err.code;
	r->file = xasprintf("%s/backup-%s-%s.clbsd", tmpdir, r->name,
			    r->label + strlen(BACKUP_PREFIX));
	unlink(r->file);
	r->file_is_tmp = true;
	return 0;
}

static void prep_run(void *arg)
{
	struct bk_run *r = arg;
	struct storage *st = &r->d->storage;
	clbsd_err_init(&r->err);
	struct strv local = STRV_INIT;
	if (r->incremental) {
		struct storage_snapshot *s = NULL;
		size_t n = 0;
		if (st->ops->snapshot_list(st, r->name, &s, &n, &r->err) < 0) {
			r->rc = -r->err.code;
			return;
		}
		for (size_t i = 0; i < n; i++)
			strv_push(&local, s[i].label);
		storage_snapshots_free(s, n);
	}
	r->rc = r->dest.kind == BACKUP_DEST_DIR ? prep_dir(r, local.v) : prep_remote(r, local.v);
	strv_release(&local);
}

/* ---- 3. deliver and prune ---- */

/* An archive's name in the index: a plain file name of this directory. */
static bool file_ok(const char *f)
{
	size_t n = f ? strlen(f) : 0;
	return n > 6 && !strchr(f, '/') && f[0] != '.' && strcmp(f + n - 6, ".clbsd") == 0;
}

/* Prune the directory: the archives no kept backup needs go. */
static void dir_prune(struct bk_run *r)
{
	json_t *list = json_object_get(r->index, "backups");
	size_t n;
	autofree struct backup_entry *e = index_entries(list, &n);
	const char **labels = xcalloc(n ? n : 1, sizeof(char *));
	bool *keep = xcalloc(n ? n : 1, sizeof(bool));
	bool *need = xcalloc(n ? n : 1, sizeof(bool));
	for (size_t i = 0; i < n; i++)
		labels[i] = e[i].label ? e[i].label : "";
	backup_prune(labels, n, &r->keep, keep);
	backup_chain_needed(e, n, keep, need);
	autofree char *dir = dir_of(r);
	json_t *kept = json_array();
	for (size_t i = 0; i < n; i++) {
		json_t *x = json_array_get(list, i);
		if (need[i]) {
			json_array_append(kept, x);
			continue;
		}
		const char *f = json_string_value(json_object_get(x, "file"));
		autofree char *p = file_ok(f) ? xasprintf("%s/%s", dir, f) : NULL;
		if (p && unlink(p) < 0 && errno != ENOENT)
			log_warn("backup", r->name, "prune %s: %s", p, strerror(errno));
		r->pruned++;
	}
	json_object_set_new(r->index, "backups", kept);
	free(labels);
	free(keep);
	free(need);
}

static void deliver_run(void *arg)
{
	struct bk_run *r = arg;
	struct storage *st = &r->d->storage;
	clbsd_err_init(&r->err);
	r->rc = 0;
	if (r->dest.kind == BACKUP_DEST_DIR) {
		json_t *list = json_object_get(r->index, "backups");
		autofree char *fname = xasprintf("%s.clbsd", r->label);
		json_array_append_new(list, json_pack("{s:s,s:s?,s:s,s:I,s:o}", "label", r->label,
						      "base", r->base, "file", fname, "bytes",
						      (json_int_t)r->bytes, "created_at",
						      json_time(time_now_ns())));
		dir_prune(r);
		if (index_save(r) < 0) {
			r->rc = clbsd_err_prefix(&r->err, "write the backup index");
			return;
		}
	} else {
		int fd = open(r->file, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			r->rc = clbsd_err_set(&r->err, CLBSD_E_INTERNAL, errno, "open %s", r->file);
			return;
		}
		/*
		 * The archive is of the operator's own container, made a moment
		 * ago: what it reaches of the host was allowed when it was
		 * created here (migrate passes the same flag).
		 */
		const char *imp[] = {"import", "--allow-host-access", "-", NULL};
		int rr = remote(&r->dest, imp, fd, NULL, &r->err);
		close(fd);
		unlink(r->file);
		if (rr < 0) {
			r->rc = clbsd_err_prefix(&r->err, "import there");
			return;
		}
		char **there = NULL;
		bool exists;
		if (remote_labels(r, &there, &exists) == 0) {
			size_t n = 0;
			while (there && there[n])
				n++;
			bool *keep = xcalloc(n ? n : 1, sizeof(bool));
			backup_prune((const char *const *)there, n, &r->keep, keep);
			for (size_t i = 0; i < n; i++) {
				if (keep[i])
					continue;
				const char *rm[] = {"snapshots", "--rm", there[i], r->name, NULL};
				struct clbsd_err e2;
				if (remote(&r->dest, rm, -1, NULL, &e2) < 0)
					log_warn("backup", r->name, "prune %s there: %s", there[i],
						 e2.msg);
				else
					r->pruned++;
			}
			free(keep);
			strv_free(there);
		} else {
			log_warn("backup", r->name, "list the backups there to prune: %s",
				 r->err.msg);
			clbsd_err_init(&r->err);
		}
	}
	/* The local backups the tiers let go (the newest, the next base, always stays). */
	if (r->incremental) {
		struct storage_snapshot *s = NULL;
		size_t n = 0;
		struct clbsd_err e2;
		if (st->ops->snapshot_list(st, r->name, &s, &n, &e2) == 0) {
			const char **labels = xcalloc(n ? n : 1, sizeof(char *));
			bool *keep = xcalloc(n ? n : 1, sizeof(bool));
			for (size_t i = 0; i < n; i++)
				labels[i] = s[i].label;
			backup_prune(labels, n, &r->keep, keep);
			struct strv drop = STRV_INIT;
			for (size_t i = 0; i < n; i++)
				if (!keep[i])
					strv_push(&drop, labels[i]);
			r->local_drop = drop.v;
			free(labels);
			free(keep);
			storage_snapshots_free(s, n);
		}
	}
}

/* ---- the loop's side ---- */

static void arm(struct bk *b, int64_t at_ns);

static void local_prune_next(struct container *c, const struct clbsd_err *err, void *arg);

/* Destroy the next local snapshot the tiers let go (one at a time, as a worker's job). */
static void local_prune(struct daemon *d, const char *name, char **drop)
{
	struct container *c = ctr_find(d, name);
	if (!c || !drop || !drop[0]) {
		strv_free(drop);
		return;
	}
	struct clbsd_err err;
	clbsd_err_init(&err);
	autofree char *label = xstrdup(drop[0]);
	memmove(drop, drop + 1, strv_len(drop) * sizeof(char *));
	if (ctr_snapshot_destroy(c, label, local_prune_next, drop, &err) < 0) {
		/* Busy (an export, a rollback): the next backup prunes them. */
		log_info("backup", name, "prune %s here later: %s", label, err.msg);
		strv_free(drop);
	}
}

static void local_prune_next(struct container *c, const struct clbsd_err *err, void *arg)
{
	char **drop = arg;
	if (err) {
		log_warn("backup", c->name, "prune here: %s", err->msg);
		strv_free(drop);
		return;
	}
	local_prune(c->d, c->name, drop);
}

static json_t *result_json(const struct bk_run *r)
{
	return json_pack("{s:s,s:s,s:s?,s:I,s:I,s:s,s:b,s:I}", "name", r->name, "label", r->label,
			 "base", r->base, "size", (json_int_t)r->bytes, "duration_ms",
			 (json_int_t)((time_now_ns() - r->started_ns) / 1000000), "to",
			 r->b->cfg.to ? r->b->cfg.to : "", "incremental", r->base != NULL, "pruned",
			 (json_int_t)r->pruned);
}

static int64_t retry_delay(struct bk *b)
{
	bool test = b->d->backup->test_clock;
	int64_t base = test ? NS : RETRY_BASE_NS;
	int64_t max = test ? 4 * NS : RETRY_MAX_NS;
	if (b->cfg.every_ns > 0 && max > b->cfg.every_ns)
		max = b->cfg.every_ns;
	if (base > max)
		base = max;
	return backoff_delay(base, max, b->failures ? b->failures - 1 : 0);
}

/* The end of a run, either way: record, tell, schedule the next. */
static void finish(struct bk_run *r, const struct clbsd_err *err)
{
	struct bk *b = r->b;
	struct daemon *d = r->d;
	int64_t now = time_now_ns();
	b->running = false;
	b->last_try_ns = now;
	if (err) {
		b->failures++;
		free(b->error);
		b->error = xstrdup(err->msg);
		if (b->cfg.set && !b->cfg.off)
			arm(b, now + retry_delay(b));
		log_warn("backup", r->name,
			 "backup %s to %s failed (%u in a row; next try in %llds): %s", r->label,
			 b->cfg.to ? b->cfg.to : "?", b->failures,
			 (long long)((b->next_ns - now) / NS), err->msg);
		json_t *ev = json_pack("{s:s,s:s,s:s,s:i,s:o}", "label", r->label, "to",
				       b->cfg.to ? b->cfg.to : "", "error", err->msg, "failures",
				       (int)b->failures, "next_run",
				       b->next_ns ? json_time(b->next_ns) : json_null());
		daemon_event(d, "backup.failed", r->name, ev);
		state_save(b);
		if (r->fn)
			r->fn(NULL, err, r->arg);
		run_free(r);
		return;
	}
	b->failures = 0;
	free(b->error);
	b->error = NULL;
	b->last_ok_ns = now;
	b->bytes = r->bytes;
	b->duration_ns = now - r->started_ns;
	free(b->last_label);
	b->last_label = xstrdup(r->label);
	free(b->last_base);
	b->last_base = dup_or_null(r->base);
	if (b->cfg.set && !b->cfg.off)
		arm(b, now + b->cfg.every_ns);
	json_t *res = result_json(r);
	json_object_set_new(res, "next_run", b->next_ns ? json_time(b->next_ns) : json_null());
	log_info("backup", r->name, "backup %s (%s, %lld bytes) sent to %s", r->label,
		 r->base ? "incremental" : "full", (long long)r->bytes, b->cfg.to);
	daemon_event(d, "backup.done", r->name, json_deep_copy(res));
	state_save(b);
	if (r->fn)
		r->fn(res, NULL, r->arg);
	else
		json_decref(res);
	char **drop = r->local_drop;
	r->local_drop = NULL;
	autofree char *name = xstrdup(r->name);
	run_free(r);
	local_prune(d, name, drop);
}

static void deliver_done(void *arg)
{
	struct bk_run *r = arg;
	finish(r, r->rc < 0 ? &r->err : NULL);
}

static void exported(json_t *summary, const struct clbsd_err *err, void *arg)
{
	struct bk_run *r = arg;
	if (err) {
		struct clbsd_err e = *err;
		clbsd_err_prefix(&e, "export");
		finish(r, &e);
		return;
	}
	struct stat sb;
	r->bytes = stat(r->file, &sb) == 0 ? (int64_t)sb.st_size : 0;
	json_decref(summary);
	work_submit(r->d, deliver_run, deliver_done, r);
}

static void prep_done(void *arg)
{
	struct bk_run *r = arg;
	if (r->rc < 0) {
		finish(r, &r->err);
		return;
	}
	struct container *c = ctr_find(r->d, r->name);
	struct clbsd_err err;
	clbsd_err_init(&err);
	if (!c) {
		clbsd_err_setmsg(&err, CLBSD_E_NOTFOUND, ENOENT, "container %s is gone", r->name);
		finish(r, &err);
		return;
	}
	struct export_opts o = {.label = r->incremental ? r->label : NULL, .from = r->base};
	if (ctr_export(c, r->file, &o, exported, r, &err) < 0)
		finish(r, &err);
}

int backup_now(struct daemon *d, const char *name, int64_t at_s, backup_done_fn fn, void *arg,
	       struct clbsd_err *err)
{
	struct bk *b = d->backup ? d->backup->list : NULL;
	while (b && strcmp(b->name, name) != 0)
		b = b->next;
	if (!b || !b->cfg.set || b->cfg.off)
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
					"container %s has no :backup (declare one, or a host-wide "
					"(host :backup ...))",
					name);
	if (b->running)
		return clbsd_err_setmsg(err, CLBSD_E_CONFLICT, EBUSY,
					"a backup of %s is running; try again when it is done",
					name);
	struct container *c = ctr_find(d, name);
	if (!c)
		return clbsd_err_setmsg(err, CLBSD_E_NOTFOUND, ENOENT,
					"container %s is declared but not made yet", name);
	struct bk_run *r = xcalloc(1, sizeof(*r));
	char why[160];
	if (!backup_dest_parse(b->cfg.to, &r->dest, why, sizeof(why))) {
		free(r);
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL, ":backup :to %s: expected %s",
					b->cfg.to, why);
	}
	r->b = b;
	r->d = d;
	r->name = xstrdup(name);
	r->keep = b->cfg.keep;
	r->started_ns = time_now_ns();
	backup_label(at_s, r->label);
	r->incremental = (d->storage.caps & STORAGE_CAP_INCREMENTAL) && d->storage.ops->snapshot;
	r->fn = fn;
	r->arg = arg;
	b->running = true;
	work_submit(d, prep_run, prep_done, r);
	return 0;
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct bk *b = arg;
	b->next_ns = 0;
	struct clbsd_err err;
	clbsd_err_init(&err);
	if (b->running)
		return; /* its end arms the next */
	if (backup_now(b->d, b->name, time_now_ns() / NS, NULL, NULL, &err) < 0) {
		log_warn("backup", b->name, "scheduled backup: %s", err.msg);
		b->failures++;
		free(b->error);
		b->error = xstrdup(err.msg);
		b->last_try_ns = time_now_ns();
		arm(b, time_now_ns() + retry_delay(b));
		daemon_event(b->d, "backup.failed", b->name,
			     json_pack("{s:s,s:s,s:i,s:o}", "to", b->cfg.to ? b->cfg.to : "",
				       "error", err.msg, "failures", (int)b->failures, "next_run",
				       json_time(b->next_ns)));
		state_save(b);
	}
}

static void arm(struct bk *b, int64_t at_ns)
{
	if (!b->timer)
		b->timer = event_new(b->d->base, -1, 0, on_timer, b);
	int64_t now = time_now_ns(), dt = at_ns > now ? at_ns - now : 0;
	struct timeval tv = {.tv_sec = dt / NS, .tv_usec = (dt % NS) / 1000};
	event_add(b->timer, &tv);
	b->next_ns = at_ns;
}

static void bk_free(struct bk *b)
{
	if (b->timer)
		event_free(b->timer);
	free(b->name);
	ctr_backup_release(&b->cfg);
	free(b->last_label);
	free(b->last_base);
	free(b->error);
	free(b);
}

void backup_init(struct daemon *d)
{
	d->backup = xcalloc(1, sizeof(*d->backup));
	const char *t = getenv("CLBSD_TEST_CLOCK");
	d->backup->test_clock = t && strcmp(t, "1") == 0;
	if (d->backup->test_clock)
		log_warn("backup", NULL,
			 "CLBSD_TEST_CLOCK=1: backups take their time from the API");
}

static bool same_cfg(const struct ctr_backup *a, const struct ctr_backup *b)
{
	return a->set == b->set && a->off == b->off && a->every_ns == b->every_ns &&
	       a->keep.daily == b->keep.daily && a->keep.weekly == b->keep.weekly &&
	       a->keep.monthly == b->keep.monthly &&
	       strcmp(a->to ? a->to : "", b->to ? b->to : "") == 0;
}

void backup_sync(struct daemon *d)
{
	struct dbackup *db = d->backup;
	if (!db)
		return;
	const struct conf *conf = d->decl.conf;
	/* Forget the configuration of containers no longer declared (their state stays). */
	for (struct bk *b = db->list; b; b = b->next) {
		if (conf && conf_container_find(conf, b->name))
			continue;
		ctr_backup_release(&b->cfg);
		if (b->timer)
			event_del(b->timer);
		b->next_ns = 0;
	}
	if (!conf)
		return;
	int64_t now = time_now_ns();
	for (size_t i = 0; i < conf->ncontainers; i++) {
		const struct ctr_spec *ct = conf->containers[i];
		const struct ctr_backup *eff = ct->backup.set ? &ct->backup : &conf->host.backup;
		struct bk *b = db->list;
		while (b && strcmp(b->name, ct->name) != 0)
			b = b->next;
		if (!b) {
			if (!eff->set || eff->off)
				continue;
			b = xcalloc(1, sizeof(*b));
			b->d = d;
			b->name = xstrdup(ct->name);
			state_load(b);
			b->next = db->list;
			db->list = b;
		} else if (same_cfg(&b->cfg, eff)) {
			continue;
		}
		ctr_backup_release(&b->cfg);
		ctr_backup_copy(&b->cfg, eff);
		if (b->timer)
			event_del(b->timer);
		b->next_ns = 0;
		if (!eff->set || eff->off)
			continue;
		/*
		 * One period after the last success (a restart does not back up
		 * again at once), at least a minute from now; a full period
		 * under the test clock, whose times are the API's.
		 */
		int64_t at = now + eff->every_ns;
		if (!db->test_clock && b->last_ok_ns > 0) {
			at = b->last_ok_ns + eff->every_ns;
			if (at < now + 60 * NS)
				at = now + 60 * NS;
		}
		if (!b->running)
			arm(b, at);
	}
}

void backup_release(struct daemon *d)
{
	struct dbackup *db = d->backup;
	if (!db)
		return;
	while (db->list) {
		struct bk *b = db->list;
		db->list = b->next;
		bk_free(b);
	}
	free(db);
	d->backup = NULL;
}

bool backup_test_clock(struct daemon *d)
{
	return d->backup && d->backup->test_clock;
}

static json_t *bk_json(const struct bk *b)
{
	bool on = b->cfg.set && !b->cfg.off;
	json_t *j =
		json_pack("{s:s,s:b,s:b}", "name", b->name, "enabled", on, "running", b->running);
	if (on) {
		autofree char *every = conf_duration_str(b->cfg.every_ns);
		json_object_set_new(j, "to", json_string(b->cfg.to));
		json_object_set_new(j, "every", json_string(every));
		json_object_set_new(j, "keep",
				    json_pack("{s:i,s:i,s:i}", "daily", b->cfg.keep.daily, "weekly",
					      b->cfg.keep.weekly, "monthly", b->cfg.keep.monthly));
	}
	json_object_set_new(j, "last_success",
			    b->last_ok_ns ? json_time(b->last_ok_ns) : json_null());
	json_object_set_new(j, "last_label",
			    b->last_label ? json_string(b->last_label) : json_null());
	json_object_set_new(j, "incremental", json_boolean(b->last_base != NULL));
	json_object_set_new(j, "size", json_integer(b->bytes));
	json_object_set_new(j, "duration_ms", json_integer(b->duration_ns / 1000000));
	json_object_set_new(j, "last_attempt",
			    b->last_try_ns ? json_time(b->last_try_ns) : json_null());
	json_object_set_new(j, "error", b->error ? json_string(b->error) : json_null());
	json_object_set_new(j, "failures", json_integer(b->failures));
	json_object_set_new(j, "next_run", b->next_ns ? json_time(b->next_ns) : json_null());
	return j;
}

json_t *backup_status(struct daemon *d)
{
	json_t *a = json_array();
	for (struct bk *b = d->backup ? d->backup->list : NULL; b; b = b->next)
		json_array_append_new(a, bk_json(b));
	return a;
}

json_t *backup_status_of(struct daemon *d, const char *name)
{
	for (struct bk *b = d->backup ? d->backup->list : NULL; b; b = b->next)
		if (strcmp(b->name, name) == 0)
			return bk_json(b);
	return NULL;
}
