/*
 * Live changes in conf.d/90-live.conf: read the file, change the override
 * of one container, and replace the file atomically. See live.h.
 */
#include "conf/live.h"
#include "conf/conf.h"
#include "util/util.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

static const char live_header[] =
	";;; Live changes, written by clbsdd. `clbsd stop NAME` and `clbsd start NAME`\n"
	";;; on a declared container record its :state here, so the change persists\n"
	";;; across restarts and reproduces from the configuration files alone.\n"
	";;;\n"
	";;; clbsdd owns this file: it rewrites it on every live change and does not\n"
	";;; keep comments. (override NAME :state S) amends the container NAME\n"
	";;; declared in another file; delete a form to return to the declaration.\n"
	";;; See \"Live changes and reloading\" in docs/config.md.\n"
	"\n";

/* (override ...) with any arguments. */
static bool is_override(const struct sexp *f)
{
	return f->type == SEXP_LIST && f->n >= 1 && f->items[0]->type == SEXP_SYMBOL &&
	       strcmp(f->items[0]->str, "override") == 0;
}

/* (override NAME ...) for this name, written as a symbol or a string. */
static bool is_override_of(const struct sexp *f, const char *name)
{
	if (!is_override(f) || f->n < 2)
		return false;
	const struct sexp *n = f->items[1];
	return (n->type == SEXP_SYMBOL || n->type == SEXP_STRING) && strcmp(n->str, name) == 0;
}

/* An override we are about to rewrite must be a proper :key value list. */
static int check_shape(const char *path, const struct sexp *f, const char *name,
		       struct clbsd_err *err)
{
	const struct sexp *bad = f->tail;
	if (!bad && (f->n - 2) % 2 != 0)
		bad = f->items[f->n - 1];
	for (size_t i = 2; !bad && i < f->n; i += 2)
		if (f->items[i]->type != SEXP_KEYWORD)
			bad = f->items[i];
	if (!bad)
		return 0;
	return clbsd_err_setmsg(
		err, CLBSD_E_CONFLICT, EINVAL,
		"%s:%d:%d: override %s: malformed, expected (override %s :key value "
		"...); not recording the live change: fix or remove the form "
		"(clbsdd does not overwrite what it cannot read)",
		path, bad->line, bad->col, name, name);
}

/*
 * Print `f`, an override of `name`, without its :state and with `state`
 * (when not NULL) in its place or at the end. Returns false, printing
 * nothing, when no key would be left.
 */
static bool print_override(struct buf *out, const struct sexp *f, const char *name,
			   const char *state)
{
	struct buf b = BUF_INIT;
	bool any = false, placed = false;
	buf_adds(&b, "(override ");
	sexp_print_name(&b, name);
	for (size_t i = 2; i + 1 < f->n; i += 2) {
		const struct sexp *k = f->items[i], *v = f->items[i + 1];
		if (strcmp(k->str, "state") == 0) {
			if (state && !placed)
				buf_addf(&b, " :state %s", state);
			any |= state && !placed;
			placed = true;
			continue;
		}
		buf_addc(&b, ' ');
		sexp_print_to(&b, k);
		buf_addc(&b, ' ');
		sexp_print_to(&b, v);
		any = true;
	}
	if (state && !placed) {
		buf_addf(&b, " :state %s", state);
		any = true;
	}
	buf_adds(&b, ")\n");
	if (any)
		buf_add(out, b.data, b.len);
	buf_release(&b);
	return any;
}

/* Set (state != NULL) or clear the :state override of `container`. */
static int live_update(const char *confd_dir, const char *container, const char *state,
		       struct clbsd_err *err)
{
	if (!confd_dir || !*confd_dir)
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
					"live change: no conf.d directory is configured");
	if (!container || !valid_name(container))
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
					"live change: invalid container name \"%s\"; expected a "
					"DNS label like web",
					container ? container : "");
	if (state && strcmp(state, "running") != 0 && strcmp(state, "stopped") != 0)
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
					"live change for %s: invalid state \"%s\"; expected "
					"running or stopped",
					container, state);

	autofree char *path = xasprintf("%s/%s", confd_dir, LIVE_FILE_NAME);
	autofree char *old = NULL;
	size_t old_len = 0;
	int r = fs_read_file(path, &old, &old_len, err);
	if (r == -ENOENT) {
		clbsd_err_init(err);
		if (!state)
			return 0; /* nothing recorded, nothing to forget */
	} else if (r < 0) {
		return clbsd_err_prefix(err, "live change for %s", container);
	}

	struct sexp_doc *doc = NULL;
	if (old) {
		struct conf_diags d = CONF_DIAGS_INIT;
		if (sexp_read(path, old, old_len, &doc, &d) < 0) {
			autofree char *msg = conf_diags_format(&d);
			conf_diags_release(&d);
			size_t n = strlen(msg);
			while (n && msg[n - 1] == '\n')
				msg[--n] = '\0';
			return clbsd_err_setmsg(
				err, CLBSD_E_CONFLICT, EINVAL,
				"%s; not recording the live change for %s: fix or "
				"remove the file (clbsdd does not overwrite what it "
				"cannot read)",
				msg, container);
		}
		conf_diags_release(&d);
	}

	struct buf out = BUF_INIT;
	buf_adds(&out, live_header);
	bool placed = false;
	for (size_t i = 0; doc && i < doc->n; i++) {
		const struct sexp *f = doc->forms[i];
		if (!is_override_of(f, container)) {
			sexp_print_to(&out, f);
			buf_addc(&out, '\n');
			continue;
		}
		r = check_shape(path, f, container, err);
		if (r < 0) {
			sexp_doc_free(doc);
			buf_release(&out);
			return r;
		}
		/* The state goes into the first override; later ones lose theirs. */
		print_override(&out, f, container, placed ? NULL : state);
		placed = true;
	}
	sexp_doc_free(doc);
	if (!placed && !state) {
		buf_release(&out);
		return 0; /* nothing recorded for it: leave the file as it is */
	}
	if (!placed) {
		buf_adds(&out, "(override ");
		sexp_print_name(&out, container);
		buf_addf(&out, " :state %s)\n", state);
	}

	if (old && out.len == old_len && memcmp(out.data, old, old_len) == 0) {
		buf_release(&out);
		return 0; /* already so: do not touch the file (and wake no watcher) */
	}
	r = fs_mkdir_p(confd_dir, 0755, err);
	if (r == 0)
		r = fs_write_atomic(path, out.data, out.len, 0644, err);
	buf_release(&out);
	if (r < 0)
		return clbsd_err_prefix(err, "live change for %s", container);
	return 0;
}

int live_set_state(const char *confd_dir, const char *container, const char *state,
		   struct clbsd_err *err)
{
	if (!state)
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
					"live change: no state given; expected running or stopped");
	return live_update(confd_dir, container, state, err);
}

int live_clear_state(const char *confd_dir, const char *container, struct clbsd_err *err)
{
	return live_update(confd_dir, container, NULL, err);
}
