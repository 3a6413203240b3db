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
	for (const char *s = v; *s; s++) {
		if (*s == '\\')
			buf_adds(b, "\\\\");
		else if (*s == '"')
			buf_adds(b, "\\\"");
		else if (*s == '\n')
			buf_adds(b, "\\n");
		else
			buf_addc(b, *s);
	}
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
	else if (v >= -9007199254740992.0 && v <= 9007199254740992.0 && v == (double)(int64_t)v)
		buf_addf(b, "%" PRId64, (int64_t)v); /* no libm: the cast tests integrality */
	else
		buf_addf(b, "%.17g", v);
}

static void labels(struct buf *b, const struct prom_label *l, size_t n, const char *le)
{
	if (!n && !le)
		return;
	buf_addc(b, '{');
	for (size_t i = 0; i < n; i++) {
		buf_addf(b, "%s%s=\"", i ? "," : "", l[i].name);
		prom_escape_label(b, l[i].value);
		buf_addc(b, '"');
	}
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
	buf_addf(b, " %" PRIu64 "\n", v);
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
		buf_addf(b, " %" PRIu64 "\n", cum);
	}
	buf_addf(b, "%s_sum", name);
	labels(b, l, n, NULL);
	buf_addc(b, ' ');
	prom_value(b, sum);
	buf_addf(b, "\n%s_count", name);
	labels(b, l, n, NULL);
	buf_addf(b, " %" PRIu64 "\n", cum);
}
