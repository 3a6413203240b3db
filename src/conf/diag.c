/* The diagnostics list: every problem in the user's configuration, with its position. */
#include "conf/conf.h"
#include "util/util.h"

#include <stdarg.h>
#include <stdlib.h>

void conf_diags_init(struct conf_diags *d)
{
	*d = (struct conf_diags)CONF_DIAGS_INIT;
}

void conf_diags_release(struct conf_diags *d)
{
	for (size_t i = 0; i < d->n; i++) {
		free(d->v[i].file);
		free(d->v[i].msg);
	}
	free(d->v);
	conf_diags_init(d);
}

void conf_diags_add(struct conf_diags *d, const char *file, int line, int col, const char *fmt, ...)
{
	if (d->n >= CONF_DIAGS_MAX) {
		d->dropped++;
		return;
	}
	if (d->n == d->cap) {
		d->cap = d->cap ? d->cap * 2 : 8;
		d->v = xrealloc(d->v, d->cap * sizeof(*d->v));
	}
	va_list ap;
	va_start(ap, fmt);
	char *msg = xvasprintf(fmt, ap);
	va_end(ap);
	d->v[d->n++] = (struct conf_diag){
		.file = xstrdup(file ? file : "(config)"),
		.line = line,
		.col = col,
		.msg = msg,
	};
}

size_t conf_diags_count(const struct conf_diags *d)
{
	return d->n + d->dropped;
}

char *conf_diags_format(const struct conf_diags *d)
{
	struct buf b = BUF_INIT;
	buf_adds(&b, "");
	for (size_t i = 0; i < d->n; i++) {
		const struct conf_diag *g = &d->v[i];
		if (g->line > 0)
			buf_addf(&b, "%s:%d:%d: %s\n", g->file, g->line, g->col, g->msg);
		else
			buf_addf(&b, "%s: %s\n", g->file, g->msg);
	}
	if (d->dropped)
		buf_addf(&b, "... and %zu more error%s\n", d->dropped, d->dropped == 1 ? "" : "s");
	return buf_detach(&b, NULL);
}
