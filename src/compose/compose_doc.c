/*
 * Reading the YAML document and writing pieces of forms: node accessors
 * with YAML merge keys, scalars with Compose's interpolation, warnings with
 * their positions, names and paths made clbsd's.
 */
#include "compose/compose_int.h"
#include "core/spec.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* ---- messages ---- */

static void vwarn(struct ctx *c, const yaml_node_t *at, const char *key, const char *fmt,
		  va_list ap)
{
	autofree char *m = xvasprintf(fmt, ap);
	struct buf b = BUF_INIT;
	int line = at ? (int)at->start_mark.line + 1 : 1,
	    col = at ? (int)at->start_mark.column + 1 : 1;
	buf_addf(&b, "%s:%d:%d: ", c->o->file, line, col);
	if (c->svc)
		buf_addf(&b, "service %s: ", c->svc);
	if (key)
		buf_addf(&b, "key %s: ", key);
	/* One line each, whatever the values quoted in it hold. */
	for (const char *q = m; *q; q++) {
		if (*q == '\n')
			buf_adds(&b, "\\n");
		else if (*q == '\r')
			buf_adds(&b, "\\r");
		else if ((unsigned char)*q < 0x20 || *q == 0x7f)
			buf_addc(&b, '?');
		else
			buf_addc(&b, *q);
	}
	buf_addc(&b, '\n');
	/* The same words at the same place once (a merged anchor is read by each user). */
	for (size_t i = 0; i < c->nwarn; i++)
		if (!strcmp(c->w[i].text, b.data)) {
			buf_release(&b);
			return;
		}
	c->w = xrealloc(c->w, (c->nwarn + 1) * sizeof(*c->w));
	c->w[c->nwarn] = (struct warning){line, col, c->nwarn, buf_detach(&b, NULL)};
	c->nwarn++;
}

void cx_warn(struct ctx *c, const yaml_node_t *at, const char *key, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vwarn(c, at, key, fmt, ap);
	va_end(ap);
}

void cx_fatal(struct ctx *c, const yaml_node_t *at, const char *key, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vwarn(c, at, key, fmt, ap);
	va_end(ap);
	c->fatal = true;
}

/* ---- the document ---- */

yaml_node_t *cx_node(struct ctx *c, int i)
{
	return yaml_document_get_node(&c->doc, i);
}

bool cx_is_map(const yaml_node_t *n)
{
	return n && n->type == YAML_MAPPING_NODE;
}

bool cx_is_seq(const yaml_node_t *n)
{
	return n && n->type == YAML_SEQUENCE_NODE;
}

bool cx_is_scalar(const yaml_node_t *n)
{
	return n && n->type == YAML_SCALAR_NODE;
}

const char *cx_raw(const yaml_node_t *n)
{
	return cx_is_scalar(n) ? (const char *)n->data.scalar.value : NULL;
}

/* A plain (unquoted) scalar that YAML reads as null: "", ~, null. */
bool cx_is_null(const yaml_node_t *n)
{
	if (!n)
		return true;
	if (!cx_is_scalar(n) || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return false;
	const char *s = cx_raw(n);
	return !*s || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") ||
	       !strcmp(s, "NULL");
}

size_t cx_seq_len(const yaml_node_t *n)
{
	return cx_is_seq(n) ? (size_t)(n->data.sequence.items.top - n->data.sequence.items.start)
			    : 0;
}

yaml_node_t *cx_seq_at(struct ctx *c, const yaml_node_t *n, size_t i)
{
	return cx_node(c, n->data.sequence.items.start[i]);
}

/*
 * A mapping's pairs, with YAML merge keys (<<: *anchor, or a list of them)
 * folded in: keys written in the mapping win over merged ones.
 */
static size_t pairs_at(struct ctx *c, const yaml_node_t *m, struct kvp **out, int depth)
{
	*out = NULL;
	/* A merge that refers back to itself would never end. */
	if (!cx_is_map(m) || depth > 16)
		return 0;
	size_t cap = 8, n = 0;
	struct kvp *v = xcalloc(cap, sizeof(*v));
	struct kvp *merged = NULL;
	size_t nmerged = 0;
	for (yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top;
	     p++) {
		yaml_node_t *k = cx_node(c, p->key), *val = cx_node(c, p->value);
		if (cx_is_scalar(k) && !strcmp(cx_raw(k), "<<") &&
		    k->data.scalar.style == YAML_PLAIN_SCALAR_STYLE) {
			size_t nm = cx_is_seq(val) ? cx_seq_len(val) : 1;
			for (size_t i = 0; i < nm; i++) {
				yaml_node_t *src = cx_is_seq(val) ? cx_seq_at(c, val, i) : val;
				struct kvp *sub;
				size_t ns = pairs_at(c, src, &sub, depth + 1);
				merged = xrealloc(merged, (nmerged + ns + 1) * sizeof(*merged));
				if (ns)
					memcpy(merged + nmerged, sub, ns * sizeof(*sub));
				nmerged += ns;
				free(sub);
			}
			continue;
		}
		if (n == cap)
			v = xrealloc(v, (cap *= 2) * sizeof(*v));
		v[n++] = (struct kvp){k, val};
	}
	for (size_t i = 0; i < nmerged; i++) {
		bool have = false;
		for (size_t j = 0; j < n && !have; j++)
			have = cx_is_scalar(v[j].k) && cx_is_scalar(merged[i].k) &&
			       !strcmp(cx_raw(v[j].k), cx_raw(merged[i].k));
		if (have)
			continue;
		if (n == cap)
			v = xrealloc(v, (cap *= 2) * sizeof(*v));
		v[n++] = merged[i];
	}
	free(merged);
	*out = v;
	return n;
}

size_t cx_map_pairs(struct ctx *c, const yaml_node_t *m, struct kvp **out)
{
	return pairs_at(c, m, out, 0);
}

yaml_node_t *cx_map_get(struct ctx *c, const yaml_node_t *m, const char *key)
{
	autofree struct kvp *v = NULL;
	size_t n = cx_map_pairs(c, m, &v);
	for (size_t i = 0; i < n; i++)
		if (cx_is_scalar(v[i].k) && !strcmp(cx_raw(v[i].k), key))
			return v[i].v;
	return NULL;
}

const char *cx_dotenv_get(const char *name, void *arg)
{
	struct ctx *c = arg;
	const char *v = c->o->getenv ? c->o->getenv(name, c->o->env_arg) : NULL;
	for (size_t i = 0; !v && i < c->ndotenv; i++)
		if (!strcmp(c->dotenv[i].key, name))
			v = c->dotenv[i].value;
	return v;
}

/* A scalar's text with ${VAR} interpolated (new string), or NULL after a warning. */
char *cx_str(struct ctx *c, const yaml_node_t *n, const char *key)
{
	if (!cx_is_scalar(n)) {
		cx_warn(c, n, key, "expected a single value, got a %s; not translated",
			cx_is_seq(n) ? "list" : "mapping");
		return NULL;
	}
	char why[256];
	char *unset = NULL;
	char *s = compose_interpolate(cx_raw(n), cx_dotenv_get, c, &unset, why);
	if (!s) {
		cx_fatal(c, n, key, "%s", why);
		free(unset);
		return NULL;
	}
	if (unset) {
		bool seen = false;
		for (size_t i = 0; i < c->unset_seen.n && !seen; i++)
			seen = !strcmp(c->unset_seen.v[i], unset);
		if (!seen) {
			cx_warn(c, n, key, "variable %s is not set; it is replaced by \"\"", unset);
			strv_push(&c->unset_seen, unset);
		}
		free(unset);
	}
	return s;
}

/* A list of scalars, or one scalar; NULL (after a warning) for anything else. */
char **cx_strs(struct ctx *c, const yaml_node_t *n, const char *key)
{
	struct strv sv = STRV_INIT;
	if (cx_is_scalar(n)) {
		char *s = cx_str(c, n, key);
		if (!s)
			return NULL;
		strv_push_owned(&sv, s);
		return sv.v;
	}
	if (!cx_is_seq(n)) {
		cx_warn(c, n, key, "expected a list; not translated");
		return NULL;
	}
	for (size_t i = 0; i < cx_seq_len(n); i++) {
		char *s = cx_str(c, cx_seq_at(c, n, i), key);
		if (s)
			strv_push_owned(&sv, s);
	}
	if (!sv.v)
		sv.v = xcalloc(1, sizeof(char *));
	return sv.v;
}

/* A DNS label from a Compose name: lowercase, '_' and '.' as '-', at most 63. */
char *cx_label(const char *s)
{
	struct buf b = BUF_INIT;
	for (const char *p = s; *p && b.len < 63; p++) {
		char ch = (char)tolower((unsigned char)*p);
		if (!isalnum((unsigned char)ch))
			ch = '-';
		if (ch == '-' && (b.len == 0 || b.data[b.len - 1] == '-'))
			continue;
		buf_addc(&b, ch);
	}
	while (b.len && b.data[b.len - 1] == '-')
		b.data[--b.len] = '\0';
	if (!b.len) {
		buf_release(&b);
		return NULL;
	}
	return buf_detach(&b, NULL);
}

/* base + rel made clean and absolute: ".", ".." and repeated '/' resolved. */
char *cx_abs_path(const char *base, const char *rel)
{
	autofree char *joined = rel[0] == '/' ? xstrdup(rel) : xasprintf("%s/%s", base, rel);
	struct strv parts = STRV_INIT;
	autofree char *copy = xstrdup(joined);
	char *save = NULL;
	for (char *w = strtok_r(copy, "/", &save); w; w = strtok_r(NULL, "/", &save)) {
		if (!strcmp(w, "."))
			continue;
		if (!strcmp(w, "..")) {
			if (parts.n)
				free(parts.v[--parts.n]), parts.v[parts.n] = NULL;
			continue;
		}
		strv_push(&parts, w);
	}
	struct buf b = BUF_INIT;
	for (size_t i = 0; i < parts.n; i++)
		buf_addf(&b, "/%s", parts.v[i]);
	if (!b.len)
		buf_addc(&b, '/');
	strv_release(&parts);
	return buf_detach(&b, NULL);
}

void cx_comment(struct buf *b, const char *s)
{
	for (; *s; s++)
		buf_addc(b, (unsigned char)*s < 0x20 || *s == 0x7f ? '?' : *s);
}

bool cx_path_ok(const char *p)
{
	for (const char *q = p; *q; q++)
		if ((unsigned char)*q < 0x20 || *q == 0x7f)
			return false;
	return fs_path_is_clean_abs(p) && strlen(p) < 4096;
}

const char *cx_base_dir(struct ctx *c)
{
	return c->o->path_base ? c->o->path_base : c->o->dir ? c->o->dir : "/";
}

/* ---- pieces of a form ---- */

void cx_key_str(struct ctx *c, const char *key, const char *v)
{
	buf_addf(&c->f, "\n  %s ", key);
	sexp_print_string(&c->f, v);
}

void cx_key_strs(struct ctx *c, const char *key, char *const *v)
{
	buf_addf(&c->f, "\n  %s (", key);
	for (size_t i = 0; v && v[i]; i++) {
		if (i)
			buf_addc(&c->f, ' ');
		sexp_print_string(&c->f, v[i]);
	}
	buf_addc(&c->f, ')');
}

void cx_add_pair(struct buf *b, const char *k, const char *v)
{
	buf_addc(b, '(');
	sexp_print_string(b, k);
	buf_adds(b, " . ");
	sexp_print_string(b, v);
	buf_addc(b, ')');
}

bool cx_env_name_ok(const char *s)
{
	if (!isalpha((unsigned char)*s) && *s != '_')
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && *s != '_')
			return false;
	return true;
}

/* Set k=v in a pair list, a later value replacing an earlier one. */
void cx_kv_set(struct conf_kv **v, size_t *n, const char *k, const char *val)
{
	for (size_t i = 0; i < *n; i++)
		if (!strcmp((*v)[i].key, k)) {
			free((*v)[i].value);
			(*v)[i].value = xstrdup(val);
			return;
		}
	*v = xrealloc(*v, (*n + 1) * sizeof(**v));
	(*v)[*n].key = xstrdup(k);
	(*v)[*n].value = xstrdup(val);
	(*n)++;
}

/*
 * "KEY=VALUE" items of a list, or a mapping KEY: VALUE (Compose's two forms
 * of environment, labels, sysctls). A bare KEY (no '=', or a null value)
 * calls bare(); a value that is not a scalar is a warning.
 */
void cx_pairs(struct ctx *c, const yaml_node_t *n, const char *key, struct conf_kv **v, size_t *nv,
	      void (*bare)(struct ctx *, const yaml_node_t *, const char *, struct conf_kv **,
			   size_t *))
{
	if (cx_is_map(n)) {
		autofree struct kvp *p = NULL;
		size_t np = cx_map_pairs(c, n, &p);
		for (size_t i = 0; i < np; i++) {
			autofree char *k = cx_str(c, p[i].k, key);
			if (!k)
				continue;
			if (cx_is_null(p[i].v)) {
				if (bare)
					bare(c, p[i].k, k, v, nv);
				else
					cx_kv_set(v, nv, k, "");
				continue;
			}
			autofree char *val = cx_str(c, p[i].v, key);
			if (val)
				cx_kv_set(v, nv, k, val);
		}
		return;
	}
	if (!cx_is_seq(n)) {
		cx_warn(c, n, key, "expected a list of \"KEY=VALUE\" or a mapping; not translated");
		return;
	}
	for (size_t i = 0; i < cx_seq_len(n); i++) {
		yaml_node_t *it = cx_seq_at(c, n, i);
		autofree char *s = cx_str(c, it, key);
		if (!s)
			continue;
		char *eq = strchr(s, '=');
		if (!eq) {
			if (bare)
				bare(c, it, s, v, nv);
			else
				cx_kv_set(v, nv, s, "");
			continue;
		}
		*eq = '\0';
		cx_kv_set(v, nv, s, eq + 1);
	}
}

int cx_kv_cmp(const void *a, const void *b)
{
	return strcmp(((const struct conf_kv *)a)->key, ((const struct conf_kv *)b)->key);
}

void cx_key_pairs(struct ctx *c, const char *key, struct conf_kv *v, size_t n)
{
	if (!n)
		return;
	qsort(v, n, sizeof(*v), cx_kv_cmp);
	buf_addf(&c->f, "\n  %s (", key);
	for (size_t i = 0; i < n; i++) {
		if (i)
			buf_adds(&c->f, "\n    ");
		cx_add_pair(&c->f, v[i].key, v[i].value);
	}
	buf_addc(&c->f, ')');
}
