/*
 * Watching the configuration files: the main file and the *.conf files in
 * conf.d. A change calls changed(ctx), which is only a trigger: the caller
 * reloads (conf_load()) and reconciles.
 *
 * What is watched, and why:
 * - The directory of the main file, for events on the main file's name,
 *   not the file itself: editors save by writing a temporary file and
 *   renaming it over the old one, and a watch on the old inode would miss
 *   that and every later change.
 * - conf.d, for names conf_load() reads (conf_is_confd_name(): "*.conf",
 *   not starting with '.'), so editors' temporary files (".#x.conf",
 *   "x.conf~", "x.conf.swp", "4913") and half-written atomic-write
 *   temporaries trigger nothing.
 * - The parent of conf.d (usually the main file's directory), for conf.d
 *   itself: when it is created, renamed or removed after start the conf.d
 *   watch is added or dropped at once, and that counts as a change.
 * - A directory that does not exist yet (no /etc/clbsd at first boot) is
 *   polled every 2 s until it does; then it is watched and that counts as
 *   a change. Polling rather than watching the nearest existing ancestor
 *   keeps one simple rule for every missing directory, costs one stat-like
 *   call per 2 s only while something is missing, and a 2 s delay is
 *   acceptable for a directory an operator is creating.
 *
 * Invariants:
 * - Everything runs on the loop thread of `base`; changed() is called from
 *   a timer there, never from inside conf_watch_new().
 * - Bursts are coalesced: a relevant event arms a 100 ms timer, each
 *   further one re-arms it, but no later than 1 s after the first, so a
 *   stream of writes still reloads and a save (write temp, rename) gives
 *   one call.
 * - No call at creation: the caller loads the configuration once itself.
 * - changed() may free the watch (conf_watch_free()).
 * - Portable: the kernel's watch comes through sys_watch (sys/sys.h:
 *   inotify on Linux, kqueue on FreeBSD, which cannot name the entry that
 *   changed: such an event counts as a change of any entry).
 */
#ifndef CLBSD_DAEMON_WATCH_H
#define CLBSD_DAEMON_WATCH_H

#include <clbsd/error.h>

struct event_base;
struct conf_watch;

/*
 * Start watching `main_file` and `confd_dir` (either may be NULL, not
 * both; neither needs to exist yet). Fails when the kernel gives no watch
 * queue, or is out of instances or watches (on Linux the message names the
 * sysctl to raise).
 */
struct conf_watch *conf_watch_new(struct event_base *base, const char *main_file,
				  const char *confd_dir, void (*changed)(void *ctx), void *ctx,
				  struct clbsd_err *err);

/* Stop watching; a pending changed() call is dropped. NULL is a no-op. */
void conf_watch_free(struct conf_watch *w);

#endif
