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
	";;; Live changes, written by clbsdd. `clbsd stop NAME`, `clbsd start NAME`\n"
	";;; and `clbsd update NAME ...` (PATCH /v1/containers/NAME) on a declared\n"
	";;; container record the keys they change here, so the change persists\n"
	";;; across restarts and reproduces from the configuration files alone.\n"
	";;;\n"
	";;; clbsdd owns this file: it rewrites it on every live change and does not\n"
	";;; keep comments. (override NAME :key value ...) amends the container NAME\n"
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

/* The entry of kv[0..n) for keyword `k` (no colon), or NULL. */
static const struct live_kv *kv_find(const struct live_kv *kv, size_t n, const char *k)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(kv[i].key + 1, k) == 0)
			return &kv[i];
	return NULL;
}

/*
 * Print `f`, an override of `name`, with the keys of kv[0..n) set to their
 * value in place (or at the end), or removed (value NULL). `set` false
 * removes every key of kv. Returns false, printing nothing, when no key
 * would be left.
 */
static bool print_override(struct buf *out, const struct sexp *f, const char *name,
			   const struct live_kv *kv, size_t n, bool set)
{
	struct buf b = BUF_INIT;
	bool any = false;
	bool *placed = xcalloc(n + 1, sizeof(bool));
	buf_adds(&b, "(override ");
	sexp_print_name(&b, name);
	for (size_t i = 2; i + 1 < f->n; i += 2) {
		const struct sexp *k = f->items[i], *v = f->items[i + 1];
		const struct live_kv *e = kv_find(kv, n, k->str);
		if (e) {
			size_t j = (size_t)(e - kv);
			if (set && e->value && !placed[j]) {
				buf_addf(&b, " %s %s", e->key, e->value);
				any = true;
			}
			placed[j] = true;
			continue;
		}
		buf_addc(&b, ' ');
		sexp_print_to(&b, k);
		buf_addc(&b, ' ');
		sexp_print_to(&b, v);
		any = true;
	}
	for (size_t j = 0; set && j < n; j++)
		if (!placed[j] && kv[j].value) {
			buf_addf(&b, " %s %s", kv[j].key, kv[j].value);
			any = true;
		}
	free(placed);
	buf_adds(&b, ")\n");
	if (any)
		buf_add(out, b.data, b.len);
	buf_release(&b);
	return any;
}

int live_render(const char *confd_dir, const char *container, const struct live_kv *kv, size_t n,
		char **text, size_t *len, bool *changed, struct clbsd_err *err)
{
	*text = NULL;
	*len = 0;
	*changed = false;
	if (!confd_dir || !*confd_dir)
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
					"live change: no conf.d directory is configured");
	if (!container || !valid_name(container))
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
					"live change: invalid container name \"%s\"; expected a "
					"DNS label like web",
					container ? container : "");
	bool set = false;
	for (size_t i = 0; i < n; i++) {
		if (!kv[i].key || kv[i].key[0] != ':' || !kv[i].key[1])
			return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
						"live change for %s: a key must be a keyword like "
						":memory",
						container);
		set |= kv[i].value != NULL;
	}

	autofree char *path = xasprintf("%s/%s", confd_dir, LIVE_FILE_NAME);
	autofree char *old = NULL;
	size_t old_len = 0;
	int r = fs_read_file(path, &old, &old_len, err);
	if (r == -ENOENT) {
		clbsd_err_init(err);
		if (!set)
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
			size_t l = strlen(msg);
			while (l && msg[l - 1] == '\n')
				msg[--l] = '\0';
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
		/* The values go into the first override; later ones lose those keys. */
		print_override(&out, f, container, kv, n, !placed);
		placed = true;
	}
	sexp_doc_free(doc);
	if (!placed && !set) {
		buf_release(&out);
		return 0; /* nothing recorded for it: leave the file as it is */
	}
	if (!placed) {
		static const struct sexp empty = {.type = SEXP_LIST};
		print_override(&out, &empty, container, kv, n, true);
	}
	*changed = !old || out.len != old_len || memcmp(out.data, old, old_len) != 0;
	*text = buf_detach(&out, len);
	return 0;
}

/* (container NAME ...), (override NAME ...), (undeclare NAME) or (moved NAME ...): about `name`. */
static bool is_form_of(const struct sexp *f, const char *name)
{
	if (f->type != SEXP_LIST || f->n < 2 || f->items[0]->type != SEXP_SYMBOL)
		return false;
	const char *h = f->items[0]->str;
	if (strcmp(h, "container") != 0 && strcmp(h, "override") != 0 &&
	    strcmp(h, "undeclare") != 0 && strcmp(h, "moved") != 0)
		return false;
	const struct sexp *n = f->items[1];
	return (n->type == SEXP_SYMBOL || n->type == SEXP_STRING) && strcmp(n->str, name) == 0;
}

int live_render_decl(const char *confd_dir, const char *container, const char *form, char **text,
		     size_t *len, bool *changed, struct clbsd_err *err)
{
	*text = NULL;
	*len = 0;
	*changed = false;
	if (!confd_dir || !*confd_dir)
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
					"live change: no conf.d directory is configured");
	if (!container || !valid_name(container))
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
					"live change: invalid container name \"%s\"; expected a "
					"DNS label like web",
					container ? container : "");
	autofree char *path = xasprintf("%s/%s", confd_dir, LIVE_FILE_NAME);
	autofree char *old = NULL;
	size_t old_len = 0;
	int r = fs_read_file(path, &old, &old_len, err);
	if (r == -ENOENT)
		clbsd_err_init(err);
	else if (r < 0)
		return clbsd_err_prefix(err, "live change for %s", container);
	struct sexp_doc *doc = NULL;
	if (old) {
		struct conf_diags d = CONF_DIAGS_INIT;
		if (sexp_read(path, old, old_len, &doc, &d) < 0) {
			autofree char *msg = conf_diags_format(&d);
			conf_diags_release(&d);
			size_t l = strlen(msg);
			while (l && msg[l - 1] == '\n')
				msg[--l] = '\0';
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
	for (size_t i = 0; doc && i < doc->n; i++) {
		if (is_form_of(doc->forms[i], container))
			continue;
		sexp_print_to(&out, doc->forms[i]);
		buf_addc(&out, '\n');
	}
	sexp_doc_free(doc);
	if (form) {
		buf_adds(&out, form);
		buf_addc(&out, '\n');
	}
	*changed = !old || out.len != old_len || memcmp(out.data, old, old_len) != 0;
	*text = buf_detach(&out, len);
	return 0;
}

int live_write(const char *confd_dir, const char *text, size_t len, struct clbsd_err *err)
{
	autofree char *path = xasprintf("%s/%s", confd_dir, LIVE_FILE_NAME);
	int r = fs_mkdir_p(confd_dir, 0755, err);
	if (r == 0)
		r = fs_write_atomic(path, text, len, 0644, err);
	return r;
}

int live_set(const char *confd_dir, const char *container, const struct live_kv *kv, size_t n,
	     struct clbsd_err *err)
{
	autofree char *text = NULL;
	size_t len;
	bool changed;
	int r = live_render(confd_dir, container, kv, n, &text, &len, &changed, err);
	if (r < 0 || !changed)
		return r; /* already so: do not touch the file (and wake no watcher) */
	r = live_write(confd_dir, text, len, err);
	if (r < 0)
		return clbsd_err_prefix(err, "live change for %s", container);
	return 0;
}

int live_set_state(const char *confd_dir, const char *container, const char *state,
		   struct clbsd_err *err)
{
	if (!state || (strcmp(state, "running") != 0 && strcmp(state, "stopped") != 0))
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
					"live change for %s: invalid state \"%s\"; expected "
					"running or stopped",
					container ? container : "", state ? state : "");
	autofree char *v = xstrdup(state);
	struct live_kv kv = {":state", v};
	return live_set(confd_dir, container, &kv, 1, err);
}

int live_clear_state(const char *confd_dir, const char *container, struct clbsd_err *err)
{
	struct live_kv kv = {":state", NULL};
	return live_set(confd_dir, container, &kv, 1, err);
}
