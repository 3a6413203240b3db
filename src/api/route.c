/* Route matching (route.h): pure, unit-tested in tests/unit/api/test_route.c. */
#include "route.h"
#include "util/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct seg {
	const char *s;
	size_t n;
};

/* The segments of p[0..len) after its leading '/'; *count of them, caller frees. */
static struct seg *split(const char *p, size_t len, size_t *count)
{
	size_t k = 1;
	for (size_t i = 1; i < len; i++)
		k += p[i] == '/';
	struct seg *v = xcalloc(k, sizeof(*v));
	size_t n = 0, start = 1;
	for (size_t i = 1; i <= len; i++) {
		if (i == len || p[i] == '/') {
			v[n++] = (struct seg){p + start, i - start};
			start = i + 1;
		}
	}
	*count = n;
	return v;
}

static bool is_param(const struct seg *s)
{
	return s->n >= 3 && s->s[0] == '{' && s->s[s->n - 1] == '}';
}

static bool is_greedy(const struct seg *s)
{
	return is_param(s) && s->s[s->n - 2] == '*';
}

static bool seg_match(const struct seg *pat, const struct seg *got)
{
	if (is_param(pat))
		return got->n > 0;
	return pat->n == got->n && memcmp(pat->s, got->s, got->n) == 0;
}

static void add_param(struct route_match *m, const struct seg *pat, const char *v, size_t n)
{
	if (m->n == ROUTE_PARAMS_MAX)
		return; /* a table with more is a programming error the unit test catches */
	size_t name_len = pat->n - 2 - (is_greedy(pat) ? 1 : 0);
	m->params[m->n].name = pat->s + 1;
	m->params[m->n].name_len = name_len;
	m->params[m->n].value = xstrndup(v, n);
	m->n++;
}

bool route_pattern_match(const char *pattern, const char *path, struct route_match *m)
{
	size_t plen = strlen(path);
	if (plen == 0 || path[0] != '/')
		return false;
	if (plen > 1 && path[plen - 1] == '/')
		plen--;
	size_t np, nq;
	struct seg *pv = split(pattern, strlen(pattern), &np);
	struct seg *qv = split(path, plen, &nq);
	size_t g = np; /* the greedy parameter's index, np when none */
	for (size_t i = 0; i < np; i++)
		if (is_greedy(&pv[i]))
			g = i;
	bool ok = g == np ? nq == np : nq >= np;
	/* Segments before the greedy one (all, without one) pair up from the front... */
	for (size_t i = 0; ok && i < (g == np ? np : g); i++)
		ok = seg_match(&pv[i], &qv[i]);
	/* ...those after it from the back. */
	size_t tail = g == np ? 0 : np - g - 1;
	for (size_t i = 0; ok && i < tail; i++)
		ok = seg_match(&pv[np - 1 - i], &qv[nq - 1 - i]);
	if (ok) {
		size_t before = m->n;
		for (size_t i = 0; i < np; i++) {
			if (i == g) {
				/* The raw text of path segments g .. nq - tail - 1. */
				const struct seg *last = &qv[nq - tail - 1];
				size_t n = (size_t)(last->s + last->n - qv[g].s);
				if (n == 0) {
					ok = false;
					break;
				}
				add_param(m, &pv[i], qv[g].s, n);
			} else if (is_param(&pv[i])) {
				size_t j = i < g ? i : nq - (np - i);
				add_param(m, &pv[i], qv[j].s, qv[j].n);
			}
		}
		if (!ok) {
			while (m->n > before)
				free(m->params[--m->n].value);
		}
	}
	free(pv);
	free(qv);
	return ok;
}

long route_find(const struct route *table, size_t n, enum route_method method, const char *path,
		struct route_match *m, unsigned *allow)
{
	unsigned seen = 0;
	for (size_t i = 0; i < n; i++) {
		struct route_match tmp = {0};
		if (!route_pattern_match(table[i].pattern, path, &tmp))
			continue;
		if (table[i].method == method) {
			*m = tmp;
			return (long)i;
		}
		seen |= table[i].method;
		route_match_release(&tmp);
	}
	*allow = seen;
	return -1;
}

const char *route_param(const struct route_match *m, const char *name)
{
	size_t len = strlen(name);
	for (size_t i = 0; i < m->n; i++)
		if (m->params[i].name_len == len && memcmp(m->params[i].name, name, len) == 0)
			return m->params[i].value;
	return NULL;
}

void route_match_release(struct route_match *m)
{
	for (size_t i = 0; i < m->n; i++)
		free(m->params[i].value);
	m->n = 0;
}

const char *route_method_name(enum route_method method)
{
	switch (method) {
	case ROUTE_GET:
		return "GET";
	case ROUTE_POST:
		return "POST";
	case ROUTE_DELETE:
		return "DELETE";
	case ROUTE_PATCH:
		return "PATCH";
	}
	return NULL;
}

void route_allow_text(unsigned allow, char *buf, size_t len)
{
	static const enum route_method order[] = {ROUTE_GET, ROUTE_POST, ROUTE_PATCH, ROUTE_DELETE};
	size_t off = 0;
	buf[0] = '\0';
	for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
		if (!(allow & order[i]))
			continue;
		int w = snprintf(buf + off, len - off, "%s%s", off ? ", " : "",
				 route_method_name(order[i]));
		if (w < 0 || (size_t)w >= len - off)
			break;
		off += (size_t)w;
	}
}
