/*
 * The Prometheus text exposition format, version 0.0.4: what a GET /metrics
 * answers (docs/metrics.md). Pure: it appends text to a struct buf and
 * knows nothing of the daemon, so the unit tests check its escaping and
 * its histograms (tests/unit/core/test_prom_text.c).
 *
 * Invariants:
 * - A family is announced once, with its HELP and TYPE lines, before its
 *   samples (prom_family), and its samples follow it without another
 *   family in between; the callers keep that order.
 * - Label values are escaped (backslash, double quote, line feed) and HELP
 *   text too (backslash, line feed); metric and label names are the
 *   callers' constants, never data.
 * - Values are written exactly for integers up to 2^53 and with 17
 *   significant digits otherwise; NaN and infinities as the format spells
 *   them ("NaN", "+Inf", "-Inf").
 * - A histogram's buckets are written cumulative, "+Inf" last, and its
 *   _count is the "+Inf" bucket's value, so the two always agree even when
 *   the per-bucket counts were read while they moved.
 */
#ifndef CLBSD_CORE_PROM_TEXT_H
#define CLBSD_CORE_PROM_TEXT_H

#include "util/util.h"

#include <stddef.h>
#include <stdint.h>

/* The Content-Type of the format. */
#define PROM_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

enum prom_type { PROM_COUNTER, PROM_GAUGE, PROM_HISTOGRAM };

struct prom_label {
	const char *name;
	const char *value; /* any bytes but NUL; escaped when written */
};

/* "# HELP name help" and "# TYPE name type". */
void prom_family(struct buf *b, const char *name, enum prom_type type, const char *help);

/* One sample: name{labels} value. n may be 0 (no braces then). */
void prom_sample(struct buf *b, const char *name, const struct prom_label *l, size_t n, double v);
/* The same with an integer value (counters of bytes, nanoseconds ...). */
void prom_sample_u64(struct buf *b, const char *name, const struct prom_label *l, size_t n,
		     uint64_t v);

/*
 * For many samples sharing labels (a container's): the labels l[0..n) as
 * text, name="value" pairs escaped and comma-separated, without braces,
 * appended to b once; prom_sample_pre() then writes them as they are,
 * followed by its own labels.
 */
void prom_labels(struct buf *b, const struct prom_label *l, size_t n);
void prom_sample_pre(struct buf *b, const char *name, const char *pre, const struct prom_label *l,
		     size_t n, double v);
void prom_sample_pre_u64(struct buf *b, const char *name, const char *pre,
			 const struct prom_label *l, size_t n, uint64_t v);
/* A duration or time in nanoseconds, written as seconds with nine exact decimals. */
void prom_sample_pre_ns(struct buf *b, const char *name, const char *pre,
			const struct prom_label *l, size_t n, int64_t ns);

/* A label value between its quotes: \ as \\, " as \", line feed as \n. */
void prom_escape_label(struct buf *b, const char *v);
/* HELP text: \ as \\, line feed as \n. */
void prom_escape_help(struct buf *b, const char *v);
/* A sample value as the format writes it. */
void prom_value(struct buf *b, double v);

/*
 * A histogram's samples (the family announced before): name_bucket{labels,
 * le="bound"} for each of the nb upper bounds (ascending) and "+Inf",
 * name_sum and name_count. counts holds nb + 1 per-bucket counts (not
 * cumulative): counts[i] observations <= bounds[i] and > bounds[i-1],
 * counts[nb] those above the last bound.
 */
void prom_histogram(struct buf *b, const char *name, const struct prom_label *l, size_t n,
		    const double *bounds, size_t nb, const uint64_t *counts, double sum);

#endif
