/*
 * Live changes: the daemon records what an operator changes through the API
 * (clbsd stop / clbsd start of a declared container) as declarative forms
 * in <conf.d>/90-live.conf, a file the daemon owns, so that a live change
 * survives a restart and reproduces on another host from the files alone.
 *
 * A change is written as an override form, which conf_load() merges onto
 * the container declared elsewhere (a second (container NAME ...) form
 * would be a duplicate name):
 *
 *   (override web :state stopped)
 *
 * Invariants:
 * - This is the one writer in src/conf: everything else there only reads.
 *   The file is replaced atomically (fs_write_atomic), never edited in
 *   place, so conf_load() and the config watch see the old or the new
 *   file, never a mix; a write that would not change a byte is skipped, so
 *   a repeated change does not trigger a reload.
 * - A file that does not parse, or whose override for the container at hand
 *   is malformed, is never overwritten: the call fails naming the position,
 *   and the hand edit stays for the operator to fix.
 * - Forms the daemon does not manage (anything but override forms, and the
 *   keys of an override other than the one being changed) are kept, printed
 *   canonically; comments are not kept (the header says so).
 * - Calls read, change and replace the file, so they must be serialised by
 *   the caller (clbsdd makes them on its loop thread). They do not check
 *   that the container is declared: the caller does, because an override
 *   of an undeclared container makes the whole configuration invalid.
 */
#ifndef CLBSD_CONF_LIVE_H
#define CLBSD_CONF_LIVE_H

#include <clbsd/error.h>

#include <stdbool.h>
#include <stddef.h>

/* The file's name inside conf.d. */
#define LIVE_FILE_NAME "90-live.conf"

/*
 * Record `(override CONTAINER :state STATE)` in CONFD_DIR/90-live.conf,
 * replacing any :state recorded for CONTAINER before. `state` is "running"
 * or "stopped"; `container` a valid name. Creates conf.d (mode 0755) and
 * the file (mode 0644) when missing. Returns 0, -EINVAL (bad arguments, or
 * a file that cannot be parsed: it is left as it is) or another negative
 * errno from the file system.
 */
int live_set_state(const char *confd_dir, const char *container, const char *state,
		   struct clbsd_err *err);

/* One key of a container form (":limits") and its value as the form prints it. */
struct live_kv {
	const char *key;
	char *value; /* NULL: forget the key (the declaration applies again) */
};

/*
 * The text 90-live.conf would have with CONTAINER's override setting (or
 * forgetting) the keys of kv[0..n); the values are written as given, so
 * the caller validates them (conf_load_live()). *text (free()) and *len
 * are the new file, *changed whether it differs from the file on disk; a
 * forget with nothing recorded leaves *text NULL. Errors as for
 * live_set_state().
 */
int live_render(const char *confd_dir, const char *container, const struct live_kv *kv, size_t n,
		char **text, size_t *len, bool *changed, struct clbsd_err *err);
/*
 * The text 90-live.conf would have with every form about CONTAINER
 * (container, override, undeclare) dropped and `form` (one form's text,
 * or NULL) added at the end: a live declaration writes
 * (container NAME ...), a live removal (undeclare NAME), or nothing when
 * the container was declared in this file. Out values as live_render().
 */
int live_render_decl(const char *confd_dir, const char *container, const char *form, char **text,
		     size_t *len, bool *changed, struct clbsd_err *err);
/* Replace CONFD_DIR/90-live.conf with `text` atomically (creating conf.d). */
int live_write(const char *confd_dir, const char *text, size_t len, struct clbsd_err *err);
/* live_render() and, when the text changed, live_write(). */
int live_set(const char *confd_dir, const char *container, const struct live_kv *kv, size_t n,
	     struct clbsd_err *err);

/*
 * Forget the :state recorded for CONTAINER, so its declaration applies
 * again; the override form goes when it has no other key left. Nothing to
 * forget (no file, no override) is success and writes nothing. Errors as
 * for live_set_state().
 */
int live_clear_state(const char *confd_dir, const char *container, struct clbsd_err *err);

#endif
