/*
 * The configuration watch: a sys_watch (inotify, kqueue) on the directories
 * that hold the main file, conf.d and conf.d's parent, a debounce timer, and a poll timer for
 * directories that do not exist yet. See watch.h.
 */
#include "daemon/watch.h"
#include "core/config.h"
#include "sys/sys.h"
#include "util/util.h"

#include <errno.h>
#include <event2/event.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Tests may shorten these by defining them before including this file. */
#ifndef WATCH_DEBOUNCE_MS
#define WATCH_DEBOUNCE_MS 100
#endif
#ifndef WATCH_MAX_DELAY_MS
#define WATCH_MAX_DELAY_MS 1000
#endif
#ifndef WATCH_POLL_MS
#define WATCH_POLL_MS 2000
#endif

/*
 * The same flags on every directory: refuse a path that is not a directory,
 * and tell us when the directory itself went away.
 */
#define DIR_WATCH (SYS_WATCH_ONLYDIR | SYS_WATCH_ON_SELF)

/* What names in a watched directory matter. */
enum {
	MATCH_MAIN = 1,	 /* the main file's name */
	MATCH_CONFD = 2, /* conf.d's name (in its parent) */
	MATCH_CONF = 4,	 /* conf_is_confd_name() (in conf.d) */
};

enum { SLOT_MAIN, SLOT_CONFD, SLOT_PARENT, SLOT_N };

struct slot {
	char *path; /* the directory; NULL: slot unused */
	int match;  /* MATCH_* */
	int wd;	    /* -1: not watched (missing, or dropped) */
};

struct conf_watch {
	struct event_base *base;
	struct sys_watch *sw;
	struct event *read_ev, *debounce_ev, *poll_ev;
	void (*changed)(void *ctx);
	void *ctx;
	char *main_base;  /* NULL: no main file */
	char *confd_base; /* NULL: no conf.d, or conf.d has no parent ("/") */
	struct slot slots[SLOT_N];
	int64_t first_pending_ns; /* monotonic time of the burst's first event, 0: none */
	bool polling;
	bool warned; /* a watch failed for a reason other than a missing directory */
};

/* Split a path into its directory and last component; trailing slashes are ignored. */
static void split_path(const char *path, char **dir, char **base)
{
	autofree char *p = xstrdup(path);
	size_t n = strlen(p);
	while (n > 1 && p[n - 1] == '/')
		p[--n] = '\0';
	char *slash = strrchr(p, '/');
	while (slash && slash > p && slash[-1] == '/')
		slash--; /* "etc//conf.d": the directory is "etc" */
	if (!slash) {
		*dir = xstrdup(".");
		*base = xstrdup(p);
	} else if (slash == p) {
		*dir = xstrdup("/");
		*base = xstrdup(slash + strspn(slash, "/"));
	} else {
		*dir = xstrndup(p, (size_t)(slash - p));
		*base = xstrdup(slash + strspn(slash, "/"));
	}
}

/* A directory path without trailing slashes. */
static char *clean_dir(const char *path)
{
	char *p = xstrdup(path);
	size_t n = strlen(p);
	while (n > 1 && p[n - 1] == '/')
		p[--n] = '\0';
	return p;
}

/* Stop watching `wd` in every slot that shares it (the same directory). */
static void drop_wd(struct conf_watch *w, int wd, bool rm)
{
	if (wd < 0)
		return;
	if (rm)
		sys_watch_rm(w->sw, wd);
	for (int i = 0; i < SLOT_N; i++)
		if (w->slots[i].wd == wd)
			w->slots[i].wd = -1;
}

/*
 * Watch every slot's directory that exists and is not watched yet, and
 * poll while a directory whose appearance no watch would report is
 * missing. Returns true when a watch was added (new files may be there).
 */
static bool resync(struct conf_watch *w, struct clbsd_err *err, int *errp)
{
	bool added = false;
	for (int i = 0; i < SLOT_N; i++) {
		struct slot *s = &w->slots[i];
		if (!s->path || s->wd >= 0)
			continue;
		struct clbsd_err why;
		int wd = sys_watch_add(w->sw, s->path, DIR_WATCH, &why);
		if (wd >= 0) {
			s->wd = wd;
			added = true;
			continue;
		}
		if (wd == -ENOENT || wd == -ENOTDIR)
			continue; /* not there (yet): polled or reported by the parent */
		if (err && errp && *errp == 0) {
			*err = why;
			*errp = wd;
		} else if (!w->warned) {
			log_warn("conf", NULL, "cannot %s; polling it every %d ms instead", why.msg,
				 WATCH_POLL_MS);
			w->warned = true;
		}
	}
	/* conf.d's creation is reported by a watched slot that matches its name. */
	bool confd_covered = false;
	for (int i = 0; i < SLOT_N; i++)
		if (w->slots[i].path && w->slots[i].wd >= 0 && (w->slots[i].match & MATCH_CONFD))
			confd_covered = true;
	bool need_poll = false;
	for (int i = 0; i < SLOT_N; i++) {
		const struct slot *s = &w->slots[i];
		if (s->path && s->wd < 0 && !(i == SLOT_CONFD && confd_covered))
			need_poll = true;
	}
	if (need_poll && !w->polling) {
		struct timeval tv = {WATCH_POLL_MS / 1000, (WATCH_POLL_MS % 1000) * 1000};
		event_add(w->poll_ev, &tv);
		w->polling = true;
	} else if (!need_poll && w->polling) {
		event_del(w->poll_ev);
		w->polling = false;
	}
	return added;
}

/* Arm (or re-arm) the debounce timer, never past the burst's deadline. */
static void schedule(struct conf_watch *w)
{
	int64_t now = time_mono_ns();
	if (!w->first_pending_ns)
		w->first_pending_ns = now;
	int64_t delay = (int64_t)WATCH_DEBOUNCE_MS * 1000000;
	int64_t left = w->first_pending_ns + (int64_t)WATCH_MAX_DELAY_MS * 1000000 - now;
	if (left < delay)
		delay = left > 0 ? left : 0;
	struct timeval tv = {(time_t)(delay / 1000000000),
			     (suseconds_t)(delay % 1000000000 / 1000)};
	evtimer_add(w->debounce_ev, &tv);
}

static void on_debounce(evutil_socket_t fd, short what, void *arg)
{
	struct conf_watch *w = arg;
	w->first_pending_ns = 0;
	log_debug("conf", NULL, "configuration files changed");
	w->changed(w->ctx); /* last: it may free w */
}

static void on_poll(evutil_socket_t fd, short what, void *arg)
{
	struct conf_watch *w = arg;
	w->polling = false; /* the timer is one-shot; resync() re-arms it if still needed */
	if (resync(w, NULL, NULL))
		schedule(w);
}

struct read_state {
	struct conf_watch *w;
	bool relevant, rescan;
};

static void handle_event(void *arg, const struct sys_watch_event *ev)
{
	struct read_state *rs = arg;
	struct conf_watch *w = rs->w;
	bool *relevant = &rs->relevant, *rescan = &rs->rescan;
	if (ev->what & SYS_WATCH_OVERFLOW) {
		/* Events were lost: assume anything changed. */
		*relevant = *rescan = true;
		return;
	}
	if (ev->wd < 0)
		return;
	/* Collect the slots first: dropping a watch below clears their wd. */
	int hit[SLOT_N], nhit = 0;
	for (int i = 0; i < SLOT_N; i++)
		if (w->slots[i].path && w->slots[i].wd == ev->wd)
			hit[nhit++] = i;
	if (nhit == 0)
		return; /* a watch we dropped: its last events and IN_IGNORED */
	if (ev->what & (SYS_WATCH_DROPPED | SYS_WATCH_SELF)) {
		/*
		 * The directory went away or moved (a moved watch would follow
		 * the inode to its new name): watch the path again when it
		 * exists, and reload since what it held is gone.
		 */
		drop_wd(w, ev->wd, !(ev->what & SYS_WATCH_DROPPED));
		*relevant = *rescan = true;
		return;
	}
	if (ev->what & SYS_WATCH_UNNAMED) {
		/* Some entry changed and the platform cannot say which: any may matter. */
		*relevant = *rescan = true;
		return;
	}
	if (!ev->name)
		return;
	const char *name = ev->name;
	for (int k = 0; k < nhit; k++) {
		const struct slot *s = &w->slots[hit[k]];
		if ((s->match & MATCH_MAIN) && strcmp(name, w->main_base) == 0)
			*relevant = true;
		if ((s->match & MATCH_CONF) && conf_is_confd_name(name))
			*relevant = true;
		if ((s->match & MATCH_CONFD) && strcmp(name, w->confd_base) == 0) {
			*relevant = *rescan = true;
			/*
			 * conf.d appeared, went or was replaced: its watch must not
			 * follow the old directory. resync() watches the path anew.
			 */
			if (ev->what & SYS_WATCH_NAMES)
				drop_wd(w, w->slots[SLOT_CONFD].wd, true);
		}
	}
}

static void on_read(evutil_socket_t fd, short what, void *arg)
{
	struct conf_watch *w = arg;
	struct read_state rs = {.w = w};
	int r = sys_watch_read(w->sw, handle_event, &rs);
	if (r < 0)
		log_warn("conf", NULL, "read file watch events: %s", strerror(-r));
	if (rs.rescan && resync(w, NULL, NULL))
		rs.relevant = true;
	if (rs.relevant)
		schedule(w);
}

struct conf_watch *conf_watch_new(struct event_base *base, const char *main_file,
				  const char *confd_dir, void (*changed)(void *ctx), void *ctx,
				  struct clbsd_err *err)
{
	if (!main_file && !confd_dir) {
		clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
				 "watch the configuration: neither a main file nor conf.d given");
		return NULL;
	}
	struct sys_watch *sw;
	if (sys_watch_open(&sw, err) < 0) {
		clbsd_err_prefix(err, "watch the configuration");
		return NULL;
	}
	struct conf_watch *w = xcalloc(1, sizeof(*w));
	w->base = base;
	w->sw = sw;
	w->changed = changed;
	w->ctx = ctx;
	for (int i = 0; i < SLOT_N; i++)
		w->slots[i].wd = -1;
	if (main_file) {
		split_path(main_file, &w->slots[SLOT_MAIN].path, &w->main_base);
		w->slots[SLOT_MAIN].match = MATCH_MAIN;
	}
	if (confd_dir) {
		w->slots[SLOT_CONFD].path = clean_dir(confd_dir);
		w->slots[SLOT_CONFD].match = MATCH_CONF;
		char *parent, *name;
		split_path(confd_dir, &parent, &name);
		if (*name) {
			w->confd_base = name;
			name = NULL;
			/* Usually conf.d sits next to the main file: one watch serves both. */
			if (w->slots[SLOT_MAIN].path &&
			    strcmp(parent, w->slots[SLOT_MAIN].path) == 0) {
				w->slots[SLOT_MAIN].match |= MATCH_CONFD;
				free(parent);
			} else {
				w->slots[SLOT_PARENT].path = parent;
				w->slots[SLOT_PARENT].match = MATCH_CONFD;
			}
		} else {
			free(parent); /* conf.d is "/": nothing above it to watch */
		}
		free(name);
	}
	w->read_ev = event_new(base, sys_watch_fd(sw), EV_READ | EV_PERSIST, on_read, w);
	w->debounce_ev = evtimer_new(base, on_debounce, w);
	w->poll_ev = evtimer_new(base, on_poll, w);
	if (!w->read_ev || !w->debounce_ev || !w->poll_ev || event_add(w->read_ev, NULL) < 0) {
		clbsd_err_setmsg(err, CLBSD_E_INTERNAL, ENOMEM,
				 "watch the configuration: cannot register with the event loop");
		conf_watch_free(w);
		return NULL;
	}
	int r = 0;
	resync(w, err, &r);
	if (r < 0) {
		clbsd_err_prefix(err, "watch the configuration");
		conf_watch_free(w);
		return NULL;
	}
	return w;
}

void conf_watch_free(struct conf_watch *w)
{
	if (!w)
		return;
	if (w->read_ev)
		event_free(w->read_ev);
	if (w->debounce_ev)
		event_free(w->debounce_ev);
	if (w->poll_ev)
		event_free(w->poll_ev);
	sys_watch_close(w->sw); /* drops every watch */
	for (int i = 0; i < SLOT_N; i++)
		free(w->slots[i].path);
	free(w->main_base);
	free(w->confd_base);
	free(w);
}
