/* sys_watch_* on Linux: one inotify instance per queue. See sys.h. */
#include "sys/sys.h"
#include "util/util.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/inotify.h>
#include <unistd.h>

struct sys_watch {
	int fd;
};

/* What every watch reports; SYS_WATCH_ON_SELF and SYS_WATCH_ONLYDIR add to it. */
#define BASE_EVENTS                                                                                \
	(IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_CREATE | IN_ATTRIB)

int sys_watch_open(struct sys_watch **out, struct clbsd_err *err)
{
	int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		return clbsd_err_set(
			err, CLBSD_E_UNAVAIL, e, "inotify_init1%s",
			e == EMFILE ? " (raise the sysctl fs.inotify.max_user_instances)" : "");
	}
	struct sys_watch *w = xcalloc(1, sizeof(*w));
	w->fd = fd;
	*out = w;
	return 0;
}

void sys_watch_close(struct sys_watch *w)
{
	if (!w)
		return;
	close(w->fd); /* drops every watch */
	free(w);
}

int sys_watch_fd(const struct sys_watch *w)
{
	return w->fd;
}

static int add(struct sys_watch *w, const char *path, const char *shown, int flags,
	       struct clbsd_err *err)
{
	uint32_t mask = BASE_EVENTS;
	if (flags & SYS_WATCH_ON_SELF)
		mask |= IN_DELETE_SELF | IN_MOVE_SELF;
	if (flags & SYS_WATCH_ONLYDIR)
		mask |= IN_ONLYDIR;
	int wd = inotify_add_watch(w->fd, path, mask);
	if (wd >= 0)
		return wd;
	int e = errno;
	const char *hint = e == ENOSPC ? " (raise the sysctl fs.inotify.max_user_watches)" : "";
	return clbsd_err_set(err, CLBSD_E_UNAVAIL, e, "watch %s%s", shown, hint);
}

int sys_watch_add(struct sys_watch *w, const char *path, int flags, struct clbsd_err *err)
{
	return add(w, path, path, flags, err);
}

int sys_watch_add_fd(struct sys_watch *w, int fd, int flags, struct clbsd_err *err)
{
	/* The magic link names exactly the inode open at fd, whatever its path is now. */
	char proc[64];
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	return add(w, proc, proc, flags, err);
}

void sys_watch_rm(struct sys_watch *w, int wd)
{
	if (wd >= 0)
		inotify_rm_watch(w->fd, wd); /* EINVAL when the kernel already dropped it */
}

static unsigned what_of(uint32_t mask)
{
	unsigned what = 0;
	if (mask & IN_Q_OVERFLOW)
		what |= SYS_WATCH_OVERFLOW;
	if (mask & IN_IGNORED)
		what |= SYS_WATCH_DROPPED;
	if (mask & (IN_DELETE_SELF | IN_MOVE_SELF))
		what |= SYS_WATCH_SELF;
	if (mask & (IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO))
		what |= SYS_WATCH_NAMES;
	if (mask & (IN_CLOSE_WRITE | IN_ATTRIB))
		what |= SYS_WATCH_DATA;
	return what;
}

int sys_watch_read(struct sys_watch *w, void (*fn)(void *ctx, const struct sys_watch_event *ev),
		   void *ctx)
{
	/* Room for many events; the kernel only returns whole ones. */
	char buf[16 * (sizeof(struct inotify_event) + NAME_MAX + 1)]
		__attribute__((aligned(__alignof__(struct inotify_event))));
	for (;;) {
		ssize_t n = read(w->fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno == EAGAIN ? 0 : -errno;
		if (n == 0)
			return 0;
		for (char *p = buf; p < buf + n;) {
			const struct inotify_event *ie = (const struct inotify_event *)(void *)p;
			p += sizeof(*ie) + ie->len;
			struct sys_watch_event ev = {
				.wd = ie->wd,
				.what = what_of(ie->mask),
				.name = ie->len && ie->name[0] ? ie->name : NULL,
			};
			fn(ctx, &ev);
		}
	}
}
