/*
 * A declaration that moves between daemons with its container (clbsd
 * migrate, docs/storage.md "Migrate"): the target records the source's
 * effective declaration in its live layer before it imports the container
 * into it (transfer.c, ctr_import_declared), and the source records
 * (moved NAME :to DEST :at TIME) in its own, so that its reconciler lets
 * the name be (core/config.c reads the form as an undeclare that is never
 * an error, and reconcile.c leaves a container of that name alone).
 *
 * Invariants: every edit goes through the live layer (conf/live.h), is
 * checked by loading the whole configuration with it before it is
 * written, and reloads the configuration after; callers run on the loop
 * thread (live layer edits are serialised there). The live file's text
 * before an edit is handed back, so that an import that fails, or a
 * migration undone, puts it back exactly (decl_live_restore).
 */
#include "conf/live.h"
#include "core/config.h"
#include "daemon.h"
#include "util/json.h"
#include "util/util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The live file's text now (NULL and 0 when there is none). */
int decl_live_text(struct daemon *d, char **text, struct clbsd_err *err)
{
	autofree char *path = xasprintf("%s/%s", d->confd, LIVE_FILE_NAME);
	size_t len = 0;
	*text = NULL;
	int r = fs_read_file(path, text, &len, err);
	if (r == -ENOENT) {
		clbsd_err_init(err);
		return 0;
	}
	return r;
}

/* `form` is one (container NAME ...) form naming `name`. */
static int form_names(const char *form, const char *name, struct clbsd_err *err)
{
	struct conf_diags diags = CONF_DIAGS_INIT;
	struct sexp_doc *doc = NULL;
	int r = sexp_read("declaration", form, strlen(form), &doc, &diags);
	conf_diags_release(&diags);
	const struct sexp *f = r == 0 && doc->n == 1 ? doc->forms[0] : NULL;
	bool ok = f && f->type == SEXP_LIST && f->n >= 2 && f->items[0]->type == SEXP_SYMBOL &&
		  strcmp(f->items[0]->str, "container") == 0 &&
		  (f->items[1]->type == SEXP_SYMBOL || f->items[1]->type == SEXP_STRING) &&
		  strcmp(f->items[1]->str, name) == 0;
	sexp_doc_free(doc);
	if (!ok)
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
					"the declaration must be one (container %s ...) form",
					name);
	return 0;
}

int decl_live_declare(struct daemon *d, const char *name, const char *form, char **before,
		      struct clbsd_err *err)
{
	*before = NULL;
	if (!d->confd || !*d->confd)
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
					"no conf.d directory is configured for the live layer");
	if (form_names(form, name, err) < 0)
		return -err->code;
	autofree char *old = NULL;
	if (decl_live_text(d, &old, err) < 0)
		return clbsd_err_prefix(err, "live change for %s", name);
	autofree char *text = NULL;
	size_t len = 0;
	bool changed = false;
	if (live_render_decl(d->confd, name, form, &text, &len, &changed, err) < 0)
		return -err->code;
	struct clbsd_err first;
	clbsd_err_init(&first);
	struct conf *conf = NULL;
	reconcile_live_check(d, name, text, len, &conf, &first);
	if (!conf) {
		/*
		 * Another file may declare it (a migration back to where it came
		 * from): then only the live forms about it go, and that file's
		 * declaration must be the one that travels.
		 */
		free(text);
		text = NULL;
		if (live_render_decl(d->confd, name, NULL, &text, &len, &changed, err) < 0)
			return -err->code;
		struct clbsd_err e2;
		reconcile_live_check(d, name, text, len, &conf, &e2);
		const struct ctr_spec *ct = conf ? conf_container_find(conf, name) : NULL;
		autofree char *here = ct ? ctr_spec_print(ct) : NULL;
		if (!here) {
			conf_free(conf);
			*err = first;
			return -err->code;
		}
		if (strcmp(here, form) != 0) {
			int r = clbsd_err_setmsg(
				err, CLBSD_E_CONFLICT, EEXIST,
				"container %s is declared here (%s:%d) differently from the "
				"declaration it comes with: make the two the same, or remove "
				"it here first",
				name, ct->pos.file ? ct->pos.file : "?", ct->pos.line);
			conf_free(conf);
			return r;
		}
	}
	conf_free(conf);
	*before = steal_ptr(&old);
	if (!changed)
		return 0;
	return reconcile_live_write(d, name, text, len, json_pack("{s:s}", "declared", form), err);
}

int decl_live_restore(struct daemon *d, const char *name, const char *before, struct clbsd_err *err)
{
	autofree char *now = NULL;
	if (decl_live_text(d, &now, err) < 0)
		return clbsd_err_prefix(err, "live change for %s", name);
	if ((!now && !before) || (now && before && strcmp(now, before) == 0))
		return 0;
	if (!before) {
		autofree char *path = xasprintf("%s/%s", d->confd, LIVE_FILE_NAME);
		if (unlink(path) < 0 && errno != ENOENT)
			return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "remove %s", path);
		daemon_event(d, "config.live", name, json_pack("{s:b}", "restored", 1));
		struct clbsd_err rerr;
		config_reload(d, &rerr);
		return 0;
	}
	return reconcile_live_write(d, name, before, strlen(before),
				    json_pack("{s:b}", "restored", 1), err);
}

int decl_live_moved(struct daemon *d, const char *name, const char *to, char **before,
		    struct clbsd_err *err)
{
	*before = NULL;
	if (!d->confd || !*d->confd)
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
					"no conf.d directory is configured for the live layer");
	if (!to || !*to || strlen(to) > 1024)
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
					"\"to\": expected where the container went");
	autofree char *old = NULL;
	if (decl_live_text(d, &old, err) < 0)
		return clbsd_err_prefix(err, "live change for %s", name);
	char at[64];
	time_fmt_rfc3339(time_now_ns(), at, sizeof(at));
	struct buf f = BUF_INIT;
	buf_adds(&f, "(moved ");
	sexp_print_name(&f, name);
	buf_adds(&f, " :to ");
	sexp_print_string(&f, to);
	buf_adds(&f, " :at ");
	sexp_print_string(&f, at);
	buf_addc(&f, ')');
	autofree char *form = buf_detach(&f, NULL);
	autofree char *text = NULL;
	size_t len = 0;
	bool changed = false;
	if (live_render_decl(d->confd, name, form, &text, &len, &changed, err) < 0)
		return -err->code;
	struct conf *conf = NULL;
	if (reconcile_live_check(d, name, text, len, &conf, err) < 0)
		return -err->code;
	conf_free(conf);
	*before = steal_ptr(&old);
	return reconcile_live_write(d, name, text, len,
				    json_pack("{s:s,s:s}", "moved_to", to, "at", at), err);
}

int decl_live_forget(struct daemon *d, const char *name, struct clbsd_err *err)
{
	autofree char *text = NULL;
	size_t len = 0;
	bool changed = false;
	if (live_render_decl(d->confd, name, NULL, &text, &len, &changed, err) < 0)
		return -err->code;
	if (!changed)
		return 0;
	struct conf *conf = NULL;
	if (reconcile_live_check(d, name, text, len, &conf, err) < 0)
		return -err->code;
	conf_free(conf);
	return reconcile_live_write(d, name, text, len, json_pack("{s:b}", "moved", 0), err);
}
