#include "plan.h"
#include "util/util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

const char *plan_op_name(enum plan_op op)
{
	switch (op) {
	case PLAN_STOP:
		return "stop";
	case PLAN_REMOVE:
		return "remove";
	case PLAN_RECREATE:
		return "recreate";
	case PLAN_CREATE:
		return "create";
	case PLAN_START:
		return "start";
	case PLAN_CONFLICT:
		return "conflict";
	case PLAN_UPDATE:
		return "update";
	}
	return "?";
}

/*
 * Name lookups go through sorted index arrays: a pass over a thousand
 * containers must not cost a million string comparisons.
 */
struct index {
	const char **names;
	size_t *pos;
	size_t n;
};

static const char *const *sort_names;
static int by_name(const void *a, const void *b)
{
	return strcmp(sort_names[*(const size_t *)a], sort_names[*(const size_t *)b]);
}

static void index_build(struct index *ix, const char **names, size_t n)
{
	ix->names = names;
	ix->n = n;
	ix->pos = xcalloc(n + 1, sizeof(size_t));
	for (size_t i = 0; i < n; i++)
		ix->pos[i] = i;
	sort_names = names;
	qsort(ix->pos, n, sizeof(size_t), by_name);
	sort_names = NULL;
}

/* Position of name in the original array, or n when absent. */
static size_t index_find(const struct index *ix, const char *name)
{
	size_t lo = 0, hi = ix->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(ix->names[ix->pos[mid]], name);
		if (c == 0)
			return ix->pos[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return ix->n;
}

static void index_release(struct index *ix)
{
	free(ix->pos);
}

static const char **want_names(const struct plan_desired *want, size_t n)
{
	const char **v = xcalloc(n + 1, sizeof(char *));
	for (size_t i = 0; i < n; i++)
		v[i] = want[i].name;
	return v;
}

enum mark { WHITE, GREY, BLACK };

struct topo {
	const struct plan_desired *want;
	size_t n;
	const struct index *ix;
	enum mark *mark;
	size_t *stack; /* the current path, for naming a cycle */
	size_t depth;
	size_t *order;
	size_t n_order;
};

static int visit(struct topo *t, size_t i, struct clbsd_err *err)
{
	if (t->mark[i] == BLACK)
		return 0;
	if (t->mark[i] == GREY) {
		/* The cycle is the path from where i first appears back to i. */
		struct buf b = BUF_INIT;
		size_t from = 0;
		while (from < t->depth && t->stack[from] != i)
			from++;
		for (size_t k = from; k < t->depth; k++)
			buf_addf(&b, "%s -> ", t->want[t->stack[k]].name);
		buf_adds(&b, t->want[i].name);
		int r = clbsd_err_setmsg(err, CLBSD_E_INVALID, ELOOP, ":depends-on has a cycle: %s",
					 b.data);
		buf_release(&b);
		return r;
	}
	t->mark[i] = GREY;
	t->stack[t->depth++] = i;
	const struct plan_desired *w = &t->want[i];
	for (size_t d = 0; d < w->n_deps; d++) {
		size_t j = index_find(t->ix, w->deps[d]);
		if (j == t->n)
			return clbsd_err_setmsg(err, CLBSD_E_INVALID, ENOENT,
						"container %s: :depends-on names %s, which is not "
						"declared",
						w->name, w->deps[d]);
		int r = visit(t, j, err);
		if (r < 0)
			return r;
	}
	t->depth--;
	t->mark[i] = BLACK;
	t->order[t->n_order++] = i;
	return 0;
}

int plan_order(const struct plan_desired *want, size_t n_want, size_t **order,
	       struct clbsd_err *err)
{
	autofree const char **names = want_names(want, n_want);
	struct index ix;
	index_build(&ix, names, n_want);
	struct topo t = {
		.want = want,
		.n = n_want,
		.ix = &ix,
		.mark = xcalloc(n_want + 1, sizeof(enum mark)),
		.stack = xcalloc(n_want + 1, sizeof(size_t)),
		.order = xcalloc(n_want + 1, sizeof(size_t)),
	};
	int r = 0;
	/* Visiting in declaration order keeps unrelated containers in file order. */
	for (size_t i = 0; i < n_want && r == 0; i++)
		r = visit(&t, i, err);
	free(t.mark);
	free(t.stack);
	index_release(&ix);
	if (r < 0) {
		free(t.order);
		return r;
	}
	*order = t.order;
	return 0;
}

static void add(struct plan *p, size_t *cap, enum plan_op op, const char *name, bool start,
		char *reason)
{
	if (p->n == *cap) {
		*cap = *cap ? *cap * 2 : 16;
		p->actions = xrealloc(p->actions, *cap * sizeof(*p->actions));
	}
	p->actions[p->n++] = (struct plan_action){op, name, start, reason};
}

/* The container is what the declaration asks for. */
static bool same(const struct plan_observed *h, const struct plan_desired *w)
{
	return h->hash && strcmp(h->hash, w->hash) == 0;
}

/* Only its live part differs: it is updated in place. */
static bool in_place(const struct plan_observed *h, const struct plan_desired *w)
{
	return h->hash && w->update_hash && strcmp(h->hash, w->hash) != 0 &&
	       strcmp(h->hash, w->update_hash) == 0;
}

int plan_compute(const struct plan_desired *want, size_t n_want, const struct plan_observed *have,
		 size_t n_have, struct plan *out, struct clbsd_err *err)
{
	size_t *order;
	int r = plan_order(want, n_want, &order, err);
	if (r < 0)
		return r;
	struct plan p = {0};
	size_t cap = 0;
	autofree const char **wn = want_names(want, n_want);
	struct index wix;
	index_build(&wix, wn, n_want);
	autofree const char **hn = xcalloc(n_have + 1, sizeof(char *));
	for (size_t i = 0; i < n_have; i++)
		hn[i] = have[i].name;
	struct index hix;
	index_build(&hix, hn, n_have);

	/*
	 * Stops and removals first, dependants before what they depend on:
	 * walk the dependency order backwards. Undeclared managed containers
	 * have no declared dependants, so they go first of all.
	 */
	for (size_t i = 0; i < n_have; i++) {
		const struct plan_observed *h = &have[i];
		if (h->managed && index_find(&wix, h->name) == n_want)
			add(&p, &cap, PLAN_REMOVE, h->name, false,
			    xasprintf("remove %s: no longer declared", h->name));
	}
	for (size_t k = n_want; k-- > 0;) {
		const struct plan_desired *w = &want[order[k]];
		size_t hi = index_find(&hix, w->name);
		const struct plan_observed *h = hi < n_have ? &have[hi] : NULL;
		if (h && h->managed && h->running && !w->running && (same(h, w) || in_place(h, w)))
			add(&p, &cap, PLAN_STOP, w->name, false,
			    xasprintf("stop %s: :state stopped", w->name));
	}
	/* Then creates, recreates and starts, dependencies first. */
	for (size_t k = 0; k < n_want; k++) {
		const struct plan_desired *w = &want[order[k]];
		size_t hi = index_find(&hix, w->name);
		const struct plan_observed *h = hi < n_have ? &have[hi] : NULL;
		if (h && !h->managed) {
			add(&p, &cap, PLAN_CONFLICT, w->name, false,
			    xasprintf("conflict %s: a container of that name exists that the "
				      "configuration did not create; remove or rename it",
				      w->name));
		} else if (!h) {
			add(&p, &cap, PLAN_CREATE, w->name, w->running,
			    xasprintf("create %s: declared, does not exist", w->name));
		} else if (!same(h, w) && !in_place(h, w)) {
			add(&p, &cap, PLAN_RECREATE, w->name, w->running,
			    xasprintf("recreate %s: %s changed", w->name,
				      w->changed && *w->changed ? w->changed : "its spec"));
		} else {
			if (in_place(h, w))
				add(&p, &cap, PLAN_UPDATE, w->name, false,
				    xasprintf("update %s: :limits changed (in place)", w->name));
			if (w->running && !h->running)
				add(&p, &cap, PLAN_START, w->name, true,
				    xasprintf("start %s: :state running, not running", w->name));
		}
	}
	index_release(&wix);
	index_release(&hix);
	free(order);
	*out = p;
	return 0;
}

void plan_release(struct plan *p)
{
	for (size_t i = 0; i < p->n; i++)
		free(p->actions[i].reason);
	free(p->actions);
	p->actions = NULL;
	p->n = 0;
}
