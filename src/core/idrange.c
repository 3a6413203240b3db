/* Host id ranges for user namespaces: see idrange.h. */
#include "core/idrange.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static bool parse_u32(const char *s, size_t n, uint32_t *out)
{
	if (n == 0 || n > 10)
		return false;
	uint64_t v = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	if (v > UINT32_MAX)
		return false;
	*out = (uint32_t)v;
	return true;
}

bool idrange_subid_find(const char *text, const char *user, struct idrange_pool *out)
{
	size_t ul = strlen(user);
	for (const char *l = text; l && *l;) {
		const char *e = strchr(l, '\n');
		size_t n = e ? (size_t)(e - l) : strlen(l);
		const char *c1 = memchr(l, ':', n);
		const char *c2 = c1 ? memchr(c1 + 1, ':', n - (size_t)(c1 + 1 - l)) : NULL;
		struct idrange_pool p;
		if (l[0] != '#' && c1 && c2 && (size_t)(c1 - l) == ul && memcmp(l, user, ul) == 0 &&
		    parse_u32(c1 + 1, (size_t)(c2 - c1 - 1), &p.start) &&
		    parse_u32(c2 + 1, n - (size_t)(c2 + 1 - l), &p.count)) {
			*out = p;
			return true;
		}
		l = e ? e + 1 : NULL;
	}
	return false;
}

bool idrange_pool_ok(const struct idrange_pool *p)
{
	return p->start > 0 && p->count >= IDRANGE_SIZE &&
	       (uint64_t)p->start + p->count <= UINT32_MAX;
}

size_t idrange_slots(const struct idrange_pool *p)
{
	return idrange_pool_ok(p) ? p->count / IDRANGE_SIZE : 0;
}

bool idrange_is_slot(const struct idrange_pool *p, uint32_t base)
{
	return base >= p->start && (base - p->start) % IDRANGE_SIZE == 0 &&
	       (base - p->start) / IDRANGE_SIZE < idrange_slots(p);
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

static bool in(const uint32_t *sorted, size_t n, uint32_t v)
{
	return n && bsearch(&v, sorted, n, sizeof(v), cmp_u32) != NULL;
}

/* A sorted copy (the caller frees it). */
static uint32_t *sorted(const uint32_t *v, size_t n)
{
	uint32_t *s = malloc((n ? n : 1) * sizeof(*s));
	if (!s)
		abort();
	if (n)
		memcpy(s, v, n * sizeof(*s));
	qsort(s, n, sizeof(*s), cmp_u32);
	return s;
}

int idrange_pick(const struct idrange_pool *p, const uint32_t *used, size_t n_used,
		 const uint32_t *hinted, size_t n_hinted, uint32_t prefer, uint32_t *out)
{
	size_t slots = idrange_slots(p);
	uint32_t *u = sorted(used, n_used), *h = sorted(hinted, n_hinted);
	int rc = -ENOSPC;
	if (prefer && idrange_is_slot(p, prefer) && !in(u, n_used, prefer)) {
		*out = prefer;
		rc = 0;
		goto out;
	}
	/*
	 * Two passes: a slot no name ever had, then any unused one. Each
	 * pass costs a lookup per slot skipped, and only as many slots are
	 * skipped as there are containers and hints.
	 */
	for (int pass = 0; pass < 2 && rc < 0; pass++) {
		for (size_t i = 0; i < slots; i++) {
			uint32_t b = p->start + (uint32_t)i * IDRANGE_SIZE;
			if (in(u, n_used, b) || (pass == 0 && in(h, n_hinted, b)))
				continue;
			*out = b;
			rc = 0;
			break;
		}
	}
out:
	free(u);
	free(h);
	return rc;
}
