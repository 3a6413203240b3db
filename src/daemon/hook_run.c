/*
 * The configuration's :on hooks, run on per-container actors.
 *
 * (:start CMD) (:exit CMD) (:oom CMD) run when the container's event is
 * published; (:every DURATION CMD) on a timer; (:file-change PATH CMD) when a
 * file under PATH changes (PATH inside a volume, or in the container's own
 * layer; resolved inside that tree, never following its symlinks out). CMD is a string (/bin/sh -c
 * on the host), a list (argv on the host) or (:exec ...) (inside the running container). Each hook
 * gets CLBSD_CONTAINER, CLBSD_EVENT, CLBSD_PID and CLBSD_EXIT_CODE, its timeout (60 s unless
 * given), and its result as a hook.finished event (and hook.failed when it did not exit 0).
 * :integrity's :on-drift runs the same way on each integrity.drift event of
 * a check (not one `verify --update` accepted), with CLBSD_DRIFT_COUNT too;
 * its :every is a timer here, the check itself integrity_run.c's.
 *
 * One actor per container runs its hooks one at a time, in order; actors of
 * different containers run in parallel, so a hook that hangs delays only its
 * own container's later hooks, never another container or the API.
 */
#include "core/config.h"
#include "core/hook_actor.h"
#include "daemon.h"
#include "sys/sys.h"
#include "util/json.h"
#include "util/trace.h"
#include "util/util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define HOOK_EVENT_OUTPUT	4096
#define FILE_CHANGE_DEBOUNCE_MS 200

struct actor_entry {
	char *name;
	struct actor *actor;
	struct actor_entry *next;
};

struct timer_entry {
	struct daemon *d;
	char *ctr;
	size_t hook; /* index into the container's hooks; SNAP_TIMER, INTEGRITY_TIMER: its keys */
	struct event *ev;
	struct timer_entry *next;
};

struct watch_entry {
	struct daemon *d;
	int wd;
	char *ctr;
	size_t hook;
	char *path; /* host path watched */
	struct event *debounce;
	struct watch_entry *next;
};

struct hooks_state {
	struct actor_entry *actors;
	struct timer_entry *timers;
	struct watch_entry *watches;
	struct sys_watch *sw; /* NULL: the platform gave none */
	struct event *watch_ev;
	struct events_sub *sub;
};

struct hook_job {
	struct daemon *d;
	char *ctr;
	char *event;
	struct ctr_cmd cmd; /* owned copy */
	int64_t timeout_ns;
	char **env;
	char *what; /* the command as text, for events */
	struct actor *actor;
	int64_t t0; /* when it began to run (monotonic): its probe's duration */
};

static struct actor *actor_for(struct daemon *d, const char *name)
{
	struct hooks_state *hs = d->hooks;
	for (struct actor_entry *e = hs->actors; e; e = e->next)
		if (strcmp(e->name, name) == 0)
			return e->actor;
	struct actor_entry *e = xcalloc(1, sizeof(*e));
	e->name = xstrdup(name);
	e->actor = actor_new(name);
	e->next = hs->actors;
	hs->actors = e;
	return e->actor;
}

static char *cmd_text(const struct ctr_cmd *c)
{
	struct buf b = BUF_INIT;
	if (c->type == CTR_CMD_EXEC)
		buf_adds(&b, "(exec) ");
	for (size_t i = 0; c->argv[i]; i++)
		buf_addf(&b, "%s%s", i ? " " : "", c->argv[i]);
	return buf_detach(&b, NULL);
}

static void job_free(struct hook_job *j)
{
	free(j->ctr);
	free(j->event);
	strv_free(j->cmd.argv);
	strv_free(j->env);
	free(j->what);
	free(j);
}

static void job_free_arg(void *arg)
{
	job_free(arg);
}

static void report(struct hook_job *j, int code, bool timed_out, const char *out, size_t len,
		   int64_t ms, const char *failure)
{
	size_t n = len < HOOK_EVENT_OUTPUT ? len : HOOK_EVENT_OUTPUT;
	/* Do not cut a UTF-8 sequence in half. */
	while (n > 0 && n < len && ((unsigned char)out[n] & 0xC0) == 0x80)
		n--;
	json_t *attrs =
		json_pack("{s:s,s:s,s:i,s:b,s:I}", "event", j->event, "command", j->what,
			  "exit_code", code, "timed_out", timed_out, "duration_ms", (json_int_t)ms);
	json_t *o = json_stringn(out ? out : "", n);
	json_object_set_new(attrs, "output", o ? o : json_string("(the output is not UTF-8)"));
	if (failure)
		json_object_set_new(attrs, "error", json_string(failure));
	bool failed = failure || timed_out || code != 0;
	const char *result = timed_out ? "timeout" : failed ? "failed" : "ok";
	TRACE6(hook__done, j->ctr, j->event, code, result, time_mono_ns() - j->t0, j->what);
	metrics_hook(j->d, j->event, failed);
	if (failed)
		daemon_event(j->d, "hook.failed", j->ctr, json_deep_copy(attrs));
	daemon_event(j->d, "hook.finished", j->ctr, attrs);
	if (failed)
		log_warn("hook", j->ctr, "%s hook \"%s\" %s (exit %d)", j->event, j->what,
			 timed_out ? "timed out" : "failed", code);
	struct actor *a = j->actor;
	job_free(j);
	actor_done(a);
}

static void host_done(const struct hook_result *r, void *arg)
{
	report(arg, r->exit_code, r->timed_out, r->output, r->output_len, r->duration_ns / 1000000,
	       NULL);
}

static void exec_done(const struct ctr_exec_result *r, void *arg)
{
	struct hook_job *j = arg;
	struct buf b = BUF_INIT;
	buf_add(&b, r->out, r->out_len);
	buf_add(&b, r->err, r->err_len);
	report(j, r->exit_code, false, b.data, b.len, (time_mono_ns() - j->t0) / 1000000,
	       r->failure);
	buf_release(&b);
}

static void job_run(struct actor *a, void *arg)
{
	struct hook_job *j = arg;
	struct clbsd_err err;
	clbsd_err_init(&err);
	j->actor = a;
	j->t0 = time_mono_ns();
	TRACE3(hook__start, j->ctr, j->event, j->what);
	int r;
	if (j->cmd.type == CTR_CMD_EXEC) {
		struct container *c = ctr_find(j->d, j->ctr);
		if (!c || c->run.state != CTR_RUNNING) {
			report(j, 0, false, NULL, 0, 0, "the container is not running");
			return;
		}
		json_t *req =
			ctr_exec_request(c, j->cmd.argv, j->env, NULL, c->cfg.uid, c->cfg.gid);
		r = ctr_exec_start(c, req, HOOK_OUTPUT_MAX, exec_done, j, &err);
		json_decref(req);
	} else if (j->cmd.type == CTR_CMD_SHELL) {
		char *argv[] = {"/bin/sh", "-c", j->cmd.argv[0], NULL};
		r = hook_run(j->d->base, argv, j->env, j->timeout_ns, host_done, j, &err);
	} else {
		r = hook_run(j->d->base, j->cmd.argv, j->env, j->timeout_ns, host_done, j, &err);
	}
	if (r < 0)
		report(j, 0, false, NULL, 0, 0, err.msg);
}

/* extra: one more "NAME=value" for the environment, or NULL. */
static void post(struct daemon *d, const char *ctr, const struct ctr_hook *h, const char *event,
		 int pid, int exit_code, const char *extra)
{
	struct hook_job *j = xcalloc(1, sizeof(*j));
	j->d = d;
	j->ctr = xstrdup(ctr);
	j->event = xstrdup(event);
	j->cmd.type = h->cmd.type;
	j->cmd.argv = strv_dup(h->cmd.argv);
	j->timeout_ns = h->timeout_ns > 0 ? h->timeout_ns : CTR_HOOK_TIMEOUT_DEFAULT;
	j->what = cmd_text(&h->cmd);
	struct strv env = STRV_INIT;
	strv_push_owned(&env, xasprintf("CLBSD_CONTAINER=%s", ctr));
	strv_push_owned(&env, xasprintf("CLBSD_EVENT=%s", event));
	strv_push_owned(&env, xasprintf("CLBSD_PID=%d", pid));
	strv_push_owned(&env, xasprintf("CLBSD_EXIT_CODE=%d", exit_code));
	if (extra)
		strv_push(&env, extra);
	j->env = env.v;
	actor_post(actor_for(d, ctr), job_run, j);
}

/* The declared container behind an event, when clbsd made it from the config. */
static const struct ctr_spec *declared(struct daemon *d, const char *name)
{
	if (!d->decl.conf || !name)
		return NULL;
	struct container *c = ctr_find(d, name);
	if (!c || !c->decl.managed)
		return NULL;
	return conf_container_find(d->decl.conf, name);
}

/* :integrity :on-drift, for a drift a check found (not one --update accepted). */
static void on_drift(struct daemon *d, const struct event_rec *e)
{
	const struct ctr_spec *ct = declared(d, e->container);
	if (!ct || !ct->integrity_on_drift.argv || json_bool(e->attrs, "updated", false))
		return;
	struct ctr_hook h = {.event = CTR_HOOK_EVERY,
			     .cmd = ct->integrity_on_drift,
			     .timeout_ns = CTR_HOOK_TIMEOUT_DEFAULT};
	struct container *c = ctr_find(d, e->container);
	autofree char *count =
		xasprintf("CLBSD_DRIFT_COUNT=%lld", (long long)json_int(e->attrs, "count", 0));
	post(d, ct->name, &h, e->type, c ? c->run.pid : 0, c ? c->run.exit_code : 0, count);
}

static void on_event(const struct event_rec *e, void *arg)
{
	struct daemon *d = arg;
	enum ctr_hook_event kind;
	if (strcmp(e->type, "container.started") == 0) {
		/* AUDITCFG fc, fd, fw or fm: a check at each start (docs/integrity.md). */
		struct container *c = ctr_find(d, e->container);
		if (c && ctr_integrity_by_audit(c))
			ctr_integrity_scheduled(c);
	}
	if (strcmp(e->type, "container.started") == 0)
		kind = CTR_HOOK_START;
	else if (strcmp(e->type, "container.exited") == 0)
		kind = CTR_HOOK_EXIT;
	else if (strcmp(e->type, "container.oom") == 0)
		kind = CTR_HOOK_OOM;
	else if (strcmp(e->type, "container.health") == 0)
		kind = CTR_HOOK_HEALTH;
	else if (strcmp(e->type, "integrity.drift") == 0) {
		on_drift(d, e);
		return;
	} else
		return;
	const struct ctr_spec *ct = declared(d, e->container);
	if (!ct)
		return;
	struct container *c = ctr_find(d, e->container);
	int pid = (int)json_int(e->attrs, "pid", c ? c->run.pid : 0);
	int code = (int)json_int(e->attrs, "exit_code", c ? c->run.exit_code : 0);
	for (size_t i = 0; i < ct->nhooks; i++)
		if (ct->hooks[i].event == kind)
			post(d, ct->name, &ct->hooks[i], e->type, pid, code, NULL);
}

/* ---- :every ---- */

#define SNAP_TIMER	((size_t)-1)
#define INTEGRITY_TIMER ((size_t)-2)
#define AUDIT_TIMER	((size_t)-3) /* AUDITCFG's integrity schedule: every container's */

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct timer_entry *t = arg;
	if (t->hook == AUDIT_TIMER) {
		ctr_integrity_audit_tick(t->d);
		return;
	}
	const struct ctr_spec *ct = declared(t->d, t->ctr);
	if (ct && t->hook == INTEGRITY_TIMER) {
		struct container *c = ctr_find(t->d, t->ctr);
		if (c && ct->integrity_every_ns > 0)
			ctr_integrity_scheduled(c);
		return;
	}
	if (ct && t->hook == SNAP_TIMER) {
		struct container *c = ctr_find(t->d, t->ctr);
		if (c && ct->snap_every_ns > 0)
			ctr_snapshot_scheduled(c, ct->snap_keep);
		return;
	}
	if (!ct || t->hook >= ct->nhooks)
		return;
	const struct ctr_hook *h = &ct->hooks[t->hook];
	autofree char *every = conf_duration_str(h->every_ns);
	daemon_event(t->d, "timer.fired", t->ctr, json_pack("{s:s}", "every", every));
	struct container *c = ctr_find(t->d, t->ctr);
	post(t->d, t->ctr, h, "timer.fired", c ? c->run.pid : 0, c ? c->run.exit_code : 0, NULL);
}

/* ---- :file-change ---- */

/*
 * A :file-change path is a path inside the container; the daemon watches it
 * on the host, in a tree the container writes: a volume, or its own layer.
 * Whatever the container planted there (a symlink to /etc, a directory
 * symlink below a recursive watch) must not make the daemon watch, or walk,
 * host directories, and a huge tree must not stall the event loop. So:
 * - the path is resolved inside its tree (fs_open_path_in_root(): symlinks
 *   and ".." stay in the tree) to an O_PATH fd, and the watch is added
 *   on that fd (sys_watch_add_fd), so it is exactly that inode;
 * - a recursive walk goes from directory fd to directory fd with O_NOFOLLOW,
 *   so a symlink found inside is never followed;
 * - each container has at most HOOK_WATCHES_MAX watches and reads at most
 *   HOOK_SCAN_MAX directory entries per configuration load.
 */
#define HOOK_WATCHES_MAX 1024
#define HOOK_SCAN_MAX	 65536
#define HOOK_WATCH_DEPTH 16

struct watch_budget {
	size_t watches, entries;
	bool capped;
};

/*
 * The tree holding a path inside the container, as a directory the daemon
 * trusts (a volume's host directory, the container's own layer) and the rest
 * of the path below it, which the container controls.
 */
static char *watch_tree_root(struct daemon *d, const struct ctr_spec *ct, const char *path,
			     const char **rel)
{
	for (size_t i = 0; i < ct->nvolumes; i++) {
		const struct ctr_volume *v = &ct->volumes[i];
		size_t n = strlen(v->path);
		if (strncmp(path, v->path, n) != 0 || (path[n] && path[n] != '/'))
			continue;
		*rel = path + n;
		if (v->type == CTR_VOL_DATASET)
			return xasprintf("%s/volumes/%s/%s", d->root, ct->name, v->source);
		return xstrdup(v->source);
	}
	struct container *c = ctr_find(d, ct->name);
	if (!c)
		return NULL;
	*rel = path;
	/* The overlay's upper layer, or the copy when there is no overlay. */
	char *upper = xasprintf("%s/upper", c->dir);
	if (fs_is_dir(upper))
		return upper;
	free(upper);
	return xasprintf("%s/fs", c->dir);
}

static void watch_add(struct daemon *d, const char *ctr, size_t hook, int fd, const char *shown,
		      bool recursive, int depth, struct watch_budget *bud)
{
	struct hooks_state *hs = d->hooks;
	if (bud->watches >= HOOK_WATCHES_MAX) {
		bud->capped = true;
		return;
	}
	struct clbsd_err why;
	int wd = sys_watch_add_fd(hs->sw, fd, 0, &why);
	if (wd < 0) {
		log_warn("hook", ctr, ":file-change: cannot watch %s: %s", shown, strerror(-wd));
		return;
	}
	bud->watches++;
	struct watch_entry *w = xcalloc(1, sizeof(*w));
	w->d = d;
	w->wd = wd;
	w->ctr = xstrdup(ctr);
	w->hook = hook;
	w->path = xstrdup(shown);
	w->next = hs->watches;
	hs->watches = w;
	if (!recursive || depth >= HOOK_WATCH_DEPTH)
		return;
	int dfd = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return; /* a file: nothing below it */
	DIR *dir = fdopendir(dfd);
	if (!dir) {
		close(dfd);
		return;
	}
	struct dirent *de;
	while ((de = readdir(dir))) {
		if (++bud->entries > HOOK_SCAN_MAX) {
			bud->capped = true;
			break;
		}
		if (de->d_name[0] == '.' && (!de->d_name[1] || !strcmp(de->d_name, "..")))
			continue;
		if (de->d_type != DT_DIR && de->d_type != DT_UNKNOWN)
			continue;
		/* O_NOFOLLOW|O_DIRECTORY: a symlink, even to a directory, is not entered. */
		autoclose int sub = openat(dirfd(dir), de->d_name,
					   O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		struct stat st;
		if (sub < 0 || fstat(sub, &st) < 0 || !S_ISDIR(st.st_mode))
			continue;
		autofree char *subshown = xasprintf("%s/%s", shown, de->d_name);
		watch_add(d, ctr, hook, sub, subshown, true, depth + 1, bud);
	}
	closedir(dir);
}

/* Watch a :file-change hook's path (and below it, when recursive). */
static void watch_hook(struct daemon *d, const struct ctr_spec *ct, size_t k,
		       struct watch_budget *bud)
{
	const struct ctr_hook *h = &ct->hooks[k];
	const char *rel = NULL;
	autofree char *root = watch_tree_root(d, ct, h->path, &rel);
	if (!root)
		return;
	struct clbsd_err err;
	autoclose int rootfd = open(root, O_PATH | O_CLOEXEC);
	autoclose int fd = -1;
	if (rootfd >= 0 && !*rel)
		fd = steal_fd(&rootfd); /* the volume itself (maybe a single file) */
	else if (rootfd >= 0)
		fd = fs_open_path_in_root(rootfd, rel, 0, &err);
	if (fd < 0) {
		log_info("hook", ct->name,
			 ":file-change %s: not there (yet) in %s; watching starts with the next "
			 "configuration load",
			 h->path, root);
		return;
	}
	watch_add(d, ct->name, k, fd, h->path, h->recursive, 0, bud);
}

static void on_debounced(evutil_socket_t fd, short what, void *arg)
{
	struct watch_entry *w = arg;
	const struct ctr_spec *ct = declared(w->d, w->ctr);
	if (!ct || w->hook >= ct->nhooks)
		return;
	const struct ctr_hook *h = &ct->hooks[w->hook];
	daemon_event(w->d, "file.changed", w->ctr, json_pack("{s:s}", "path", h->path));
	struct container *c = ctr_find(w->d, w->ctr);
	post(w->d, w->ctr, h, "file.changed", c ? c->run.pid : 0, c ? c->run.exit_code : 0, NULL);
}

static void on_watch_event(void *arg, const struct sys_watch_event *ev)
{
	struct daemon *d = arg;
	for (struct watch_entry *w = d->hooks->watches; w; w = w->next) {
		if (w->wd != ev->wd)
			continue;
		/* Coalesce a burst of writes into one run. */
		struct timeval tv = {0, FILE_CHANGE_DEBOUNCE_MS * 1000};
		if (!w->debounce)
			w->debounce = evtimer_new(d->base, on_debounced, w);
		evtimer_add(w->debounce, &tv);
		break;
	}
}

static void on_watch(evutil_socket_t fd, short what, void *arg)
{
	struct daemon *d = arg;
	sys_watch_read(d->hooks->sw, on_watch_event, d);
}

/* ---- set-up from the configuration ---- */

static void clear(struct daemon *d)
{
	struct hooks_state *hs = d->hooks;
	while (hs->timers) {
		struct timer_entry *t = hs->timers;
		hs->timers = t->next;
		event_free(t->ev);
		free(t->ctr);
		free(t);
	}
	while (hs->watches) {
		struct watch_entry *w = hs->watches;
		hs->watches = w->next;
		sys_watch_rm(hs->sw, w->wd);
		if (w->debounce)
			event_free(w->debounce);
		free(w->ctr);
		free(w->path);
		free(w);
	}
}

/* A repeating timer for container ctr's hook (or SNAP_TIMER, INTEGRITY_TIMER: its keys). */
static void timer_add(struct daemon *d, const char *ctr, size_t hook, int64_t every_ns)
{
	struct hooks_state *hs = d->hooks;
	struct timer_entry *t = xcalloc(1, sizeof(*t));
	t->d = d;
	t->ctr = xstrdup(ctr);
	t->hook = hook;
	t->ev = event_new(d->base, -1, EV_PERSIST, on_timer, t);
	struct timeval tv = {.tv_sec = every_ns / 1000000000LL,
			     .tv_usec = (every_ns % 1000000000LL) / 1000};
	event_add(t->ev, &tv);
	t->next = hs->timers;
	hs->timers = t;
}

void hooks_sync(struct daemon *d)
{
	if (!d->hooks)
		return;
	struct hooks_state *hs = d->hooks;
	clear(d);
	timer_add(d, "", AUDIT_TIMER, AUDIT_INTEGRITY_EVERY_NS);
	if (!d->decl.conf)
		return;
	for (size_t i = 0; i < d->decl.conf->ncontainers; i++) {
		const struct ctr_spec *ct = d->decl.conf->containers[i];
		struct watch_budget bud = {0};
		if (ct->snap_every_ns > 0)
			timer_add(d, ct->name, SNAP_TIMER, ct->snap_every_ns);
		if (ct->integrity_every_ns > 0)
			timer_add(d, ct->name, INTEGRITY_TIMER, ct->integrity_every_ns);
		for (size_t k = 0; k < ct->nhooks; k++) {
			const struct ctr_hook *h = &ct->hooks[k];
			if (h->event == CTR_HOOK_EVERY)
				timer_add(d, ct->name, k, h->every_ns);
			else if (h->event == CTR_HOOK_FILE_CHANGE && hs->sw)
				watch_hook(d, ct, k, &bud);
		}
		if (bud.capped)
			log_warn("hook", ct->name,
				 ":file-change: watching only %zu directories (at most %d per "
				 "container, %d entries read); changes deeper are not seen",
				 bud.watches, HOOK_WATCHES_MAX, HOOK_SCAN_MAX);
	}
}

void hooks_init(struct daemon *d)
{
	struct hooks_state *hs = xcalloc(1, sizeof(*hs));
	d->hooks = hs;
	struct clbsd_err err;
	if (sys_watch_open(&hs->sw, &err) == 0) {
		hs->watch_ev =
			event_new(d->base, sys_watch_fd(hs->sw), EV_READ | EV_PERSIST, on_watch, d);
		event_add(hs->watch_ev, NULL);
	} else {
		log_warn("hook", NULL, "cannot watch files (%s): :file-change hooks will not fire",
			 err.msg);
	}
	hs->sub = events_subscribe(&d->events, on_event, d);
	/* Also without a configuration (hooks_sync makes it again on each reload). */
	timer_add(d, "", AUDIT_TIMER, AUDIT_INTEGRITY_EVERY_NS);
}

void hooks_release(struct daemon *d)
{
	struct hooks_state *hs = d->hooks;
	if (!hs)
		return;
	clear(d);
	events_unsubscribe(&d->events, hs->sub);
	if (hs->watch_ev)
		event_free(hs->watch_ev);
	sys_watch_close(hs->sw);
	/* At exit, hooks still running (a long :start hook) and those waiting are freed. */
	hook_forget_all(d->base, job_free_arg);
	while (hs->actors) {
		struct actor_entry *e = hs->actors;
		hs->actors = e->next;
		actor_free_with(e->actor, job_free_arg);
		free(e->name);
		free(e);
	}
	free(hs);
	d->hooks = NULL;
}
