/* The Prometheus text format 0.0.4 (see prom_text.h). */
#include "core/prom_text.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

static const char *type_name(enum prom_type t)
{
	switch (t) {
	case PROM_COUNTER:
		return "counter";
	case PROM_GAUGE:
		return "gauge";
	case PROM_HISTOGRAM:
		return "histogram";
	}
	return "untyped";
}

void prom_escape_label(struct buf *b, const char *v)
{
	/* Runs without a character to escape go in whole: most values have none. */
	for (const char *s = v;;) {
		size_t run = strcspn(s, "\\\"\n");
		buf_add(b, s, run);
		s += run;
		if (!*s)
			break;
		buf_adds(b, *s == '\\' ? "\\\\" : *s == '"' ? "\\\"" : "\\n");
		s++;
	}
}

/* v in decimal, without printf (a scrape writes thousands of numbers). */
static void add_u64(struct buf *b, uint64_t v)
{
	char d[24];
	size_t i = sizeof(d);
	do {
		d[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	buf_add(b, d + i, sizeof(d) - i);
}

void prom_escape_help(struct buf *b, const char *v)
{
	for (const char *s = v; *s; s++) {
		if (*s == '\\')
			buf_adds(b, "\\\\");
		else if (*s == '\n')
			buf_adds(b, "\\n");
		else
			buf_addc(b, *s);
	}
}

void prom_family(struct buf *b, const char *name, enum prom_type type, const char *help)
{
	buf_addf(b, "# HELP %s ", name);
	prom_escape_help(b, help);
	buf_addf(b, "\n# TYPE %s %s\n", name, type_name(type));
}

void prom_value(struct buf *b, double v)
{
	if (isnan(v))
		buf_adds(b, "NaN");
	else if (isinf(v))
		buf_adds(b, v > 0 ? "+Inf" : "-Inf");
	else if (v >= 0 && v <= 9007199254740992.0 && v == (double)(uint64_t)v)
		add_u64(b, (uint64_t)v); /* no libm: the cast tests integrality */
	else if (v < 0 && v >= -9007199254740992.0 && v == (double)(int64_t)v) {
		buf_addc(b, '-');
		add_u64(b, (uint64_t)-v);
	} else
		buf_addf(b, "%.17g", v);
}

void prom_labels(struct buf *b, const struct prom_label *l, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (i)
			buf_addc(b, ',');
		buf_adds(b, l[i].name);
		buf_add(b, "=\"", 2);
		prom_escape_label(b, l[i].value);
		buf_addc(b, '"');
	}
}

static void labels(struct buf *b, const struct prom_label *l, size_t n, const char *le)
{
	if (!n && !le)
		return;
	buf_addc(b, '{');
	prom_labels(b, l, n);
	if (le)
		buf_addf(b, "%sle=\"%s\"", n ? "," : "", le);
	buf_addc(b, '}');
}

void prom_sample(struct buf *b, const char *name, const struct prom_label *l, size_t n, double v)
{
	buf_adds(b, name);
	labels(b, l, n, NULL);
	buf_addc(b, ' ');
	prom_value(b, v);
	buf_addc(b, '\n');
}

void prom_sample_u64(struct buf *b, const char *name, const struct prom_label *l, size_t n,
		     uint64_t v)
{
	buf_adds(b, name);
	labels(b, l, n, NULL);
	buf_addc(b, ' ');
	add_u64(b, v);
	buf_addc(b, '\n');
}

/* name{pre,l...} and the space before the value. */
static void head_pre(struct buf *b, const char *name, const char *pre, const struct prom_label *l,
		     size_t n)
{
	buf_adds(b, name);
	if (!*pre && !n) {
		buf_addc(b, ' ');
		return;
	}
	buf_addc(b, '{');
	buf_adds(b, pre);
	if (n) {
		if (*pre)
			buf_addc(b, ',');
		prom_labels(b, l, n);
	}
	buf_add(b, "} ", 2);
}

void prom_sample_pre(struct buf *b, const char *name, const char *pre, const struct prom_label *l,
		     size_t n, double v)
{
	head_pre(b, name, pre, l, n);
	prom_value(b, v);
	buf_addc(b, '\n');
}

void prom_sample_pre_u64(struct buf *b, const char *name, const char *pre,
			 const struct prom_label *l, size_t n, uint64_t v)
{
	head_pre(b, name, pre, l, n);
	add_u64(b, v);
	buf_addc(b, '\n');
}

void prom_sample_pre_ns(struct buf *b, const char *name, const char *pre,
			const struct prom_label *l, size_t n, int64_t ns)
{
	head_pre(b, name, pre, l, n);
	uint64_t a = ns < 0 ? (uint64_t)-ns : (uint64_t)ns;
	if (ns < 0)
		buf_addc(b, '-');
	add_u64(b, a / 1000000000u);
	char frac[11];
	uint64_t f = a % 1000000000u;
	frac[0] = '.';
	for (int i = 9; i >= 1; i--) {
		frac[i] = (char)('0' + f % 10);
		f /= 10;
	}
	buf_add(b, frac, 10);
	buf_addc(b, '\n');
}

void prom_histogram(struct buf *b, const char *name, const struct prom_label *l, size_t n,
		    const double *bounds, size_t nb, const uint64_t *counts, double sum)
{
	uint64_t cum = 0;
	for (size_t i = 0; i <= nb; i++) {
		cum += counts[i];
		char le[32];
		if (i < nb)
			snprintf(le, sizeof(le), "%g", bounds[i]);
		else
			snprintf(le, sizeof(le), "+Inf");
		buf_addf(b, "%s_bucket", name);
		labels(b, l, n, le);
		buf_addc(b, ' ');
		add_u64(b, cum);
		buf_addc(b, '\n');
	}
	buf_addf(b, "%s_sum", name);
	labels(b, l, n, NULL);
	buf_addc(b, ' ');
	prom_value(b, sum);
	buf_addf(b, "\n%s_count", name);
	labels(b, l, n, NULL);
	buf_addf(b, " %" PRIu64 "\n", cum);
}
