/* Manifests compared (integrity.h): pure. */
#include "integrity/integrity.h"
#include "util/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void mtree_set_release(struct mtree_set *s)
{
	for (size_t i = 0; i < s->n; i++) {
		free(s->v[i].path);
		free(s->v[i].link);
	}
	free(s->v);
	s->v = NULL;
	s->n = 0;
}

static int entry_cmp(const void *a, const void *b)
{
	const struct mtree_entry *x = a, *y = b;
	int c = strcmp(x->path, y->path);
	/* Equal paths keep their order (qsort is not stable): the later one wins. */
	if (c == 0)
		return x < y ? -1 : x > y;
	return c;
}

void mtree_set_sort(struct mtree_set *s)
{
	if (s->n < 2)
		return;
	qsort(s->v, s->n, sizeof(*s->v), entry_cmp);
	size_t k = 0;
	for (size_t i = 0; i < s->n; i++) {
		if (k > 0 && strcmp(s->v[k - 1].path, s->v[i].path) == 0) {
			free(s->v[k - 1].path);
			free(s->v[k - 1].link);
			s->v[k - 1] = s->v[i];
			continue;
		}
		s->v[k++] = s->v[i];
	}
	s->n = k;
}

/* How deep the deepest of paths that holds path is: its length, 1 for "/", 0 for none. */
static size_t deepest_holder(const char *path, char *const *paths)
{
	size_t best = 0;
	for (size_t i = 0; paths && paths[i]; i++) {
		const char *x = paths[i];
		size_t n = strlen(x);
		while (n > 1 && x[n - 1] == '/')
			n--;
		if (n == 1 && x[0] == '/') {
			best = best ? best : 1; /* "/" holds everything */
			continue;
		}
		if (n > best && strncmp(path, x, n) == 0 && (path[n] == '\0' || path[n] == '/'))
			best = n;
	}
	return best;
}

bool integrity_excluded(const char *path, char *const *excludes, char *const *includes)
{
	size_t ex = deepest_holder(path, excludes);
	return ex > 0 && ex > deepest_holder(path, includes);
}

static bool str_eq(const char *a, const char *b)
{
	if (!a || !b)
		return a == b;
	return strcmp(a, b) == 0;
}

static unsigned compare(const struct mtree_entry *a, const struct mtree_entry *b)
{
	unsigned w = 0;
	if (a->type != b->type)
		return DRIFT_TYPE; /* the rest says nothing more once the type changed */
	if (a->mode != b->mode)
		w |= DRIFT_MODE;
	if (a->uid != b->uid || a->gid != b->gid)
		w |= DRIFT_OWNER;
	if (a->type == 'f') {
		if (a->size != b->size)
			w |= DRIFT_SIZE;
		/* A digest missing on one side is a change: it cannot be vouched for. */
		if (strcmp(a->sha256, b->sha256) != 0)
			w |= DRIFT_DIGEST;
	}
	if (a->type == 'l' && !str_eq(a->link, b->link))
		w |= DRIFT_TARGET;
	return w;
}

/*
 * Whether directory path is on the way to an excluded path (a proper
 * ancestor of one that stays excluded): the runtime makes such parents
 * for a volume's or an image VOLUME's mount point the image lacks.
 */
static bool leads_to_excluded(const char *path, char *const *excludes, char *const *includes)
{
	size_t n = strlen(path);
	for (size_t i = 0; excludes && excludes[i]; i++) {
		const char *x = excludes[i];
		if (strncmp(x, path, n) == 0 && x[n] == '/' && x[n + 1] &&
		    integrity_excluded(x, excludes, includes))
			return true;
	}
	return false;
}

size_t integrity_diff(const struct mtree_set *was, const struct mtree_set *now,
		      char *const *excludes, char *const *includes, struct drift **out)
{
	struct drift *v = NULL;
	size_t n = 0, cap = 0;
	size_t i = 0, j = 0;
	while (i < was->n || j < now->n) {
		const struct mtree_entry *a = i < was->n ? &was->v[i] : NULL;
		const struct mtree_entry *b = j < now->n ? &now->v[j] : NULL;
		int c = !a ? 1 : !b ? -1 : strcmp(a->path, b->path);
		struct drift d = {0};
		if (c < 0) {
			d = (struct drift){.kind = DRIFT_REMOVED, .was = a};
			i++;
		} else if (c > 0) {
			d = (struct drift){.kind = DRIFT_ADDED, .now = b};
			j++;
		} else {
			d = (struct drift){.kind = DRIFT_CHANGED, .was = a, .now = b};
			d.what = compare(a, b);
			i++;
			j++;
			if (!d.what)
				continue;
		}
		const char *path = d.was ? d.was->path : d.now->path;
		if (integrity_excluded(path, excludes, includes))
			continue;
		if (d.kind == DRIFT_ADDED && d.now->type == 'd' &&
		    leads_to_excluded(path, excludes, includes))
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			v = xrealloc(v, cap * sizeof(*v));
		}
		v[n++] = d;
	}
	*out = v;
	return n;
}

static const char *const what_names[] = {"type", "mode", "owner", "size", "digest", "target"};

void integrity_what_str(unsigned what, char *buf, size_t n)
{
	size_t at = 0;
	buf[0] = '\0';
	for (size_t i = 0; i < ARRAY_SIZE(what_names); i++) {
		if (!(what & (1u << i)))
			continue;
		int k = snprintf(buf + at, n - at, "%s%s", at ? "," : "", what_names[i]);
		if (k < 0 || (size_t)k >= n - at)
			break;
		at += (size_t)k;
	}
}

static const char *type_name(char t)
{
	switch (t) {
	case 'f':
		return "file";
	case 'd':
		return "dir";
	case 'l':
		return "link";
	case 'c':
		return "char";
	case 'b':
		return "block";
	case 'p':
		return "fifo";
	case 's':
		return "socket";
	}
	return "unknown";
}

/* A path as JSON: a string when it is UTF-8, else with the bytes escaped (\ooo). */
static json_t *path_json(const char *p)
{
	json_t *s = json_string(p);
	if (s)
		return s;
	struct buf b = BUF_INIT;
	for (const unsigned char *c = (const unsigned char *)p; *c; c++) {
		if (*c < 0x80 && *c != '\\')
			buf_addc(&b, (char)*c);
		else
			buf_addf(&b, "\\%03o", *c);
	}
	s = json_string(b.data ? b.data : "");
	buf_release(&b);
	return s;
}

json_t *mtree_entry_json(const struct mtree_entry *e)
{
	char mode[8];
	snprintf(mode, sizeof(mode), "%04o", (unsigned)(e->mode & 07777));
	json_t *j = json_pack("{s:s,s:s,s:I,s:I}", "type", type_name(e->type), "mode", mode, "uid",
			      (json_int_t)e->uid, "gid", (json_int_t)e->gid);
	if (e->type == 'f') {
		json_object_set_new(j, "size", json_integer(e->size));
		if (e->sha256[0])
			json_object_set_new(j, "sha256", json_string(e->sha256));
	}
	if (e->type == 'l' && e->link)
		json_object_set_new(j, "link", path_json(e->link));
	return j;
}

json_t *integrity_report_json(const struct drift *v, size_t n, size_t max)
{
	size_t counts[3] = {0, 0, 0};
	json_t *items = json_array();
	for (size_t i = 0; i < n; i++) {
		const struct drift *d = &v[i];
		counts[d->kind]++;
		if (json_array_size(items) >= max)
			continue;
		static const char *const kinds[] = {"added", "removed", "changed"};
		const struct mtree_entry *e = d->was ? d->was : d->now;
		json_t *o =
			json_pack("{s:o,s:s}", "path", path_json(e->path), "kind", kinds[d->kind]);
		if (d->kind == DRIFT_CHANGED) {
			json_t *w = json_array();
			for (size_t k = 0; k < ARRAY_SIZE(what_names); k++)
				if (d->what & (1u << k))
					json_array_append_new(w, json_string(what_names[k]));
			json_object_set_new(o, "what", w);
		}
		if (d->was)
			json_object_set_new(o, "was", mtree_entry_json(d->was));
		if (d->now)
			json_object_set_new(o, "now", mtree_entry_json(d->now));
		json_array_append_new(items, o);
	}
	return json_pack("{s:b,s:I,s:I,s:I,s:o,s:b}", "clean", n == 0, "added",
			 (json_int_t)counts[DRIFT_ADDED], "removed",
			 (json_int_t)counts[DRIFT_REMOVED], "changed",
			 (json_int_t)counts[DRIFT_CHANGED], "drift", items, "truncated",
			 json_array_size(items) < n);
}
